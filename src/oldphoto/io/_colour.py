"""Colour management: embedded ICC profiles -> sRGB for processing, and back for output.

littlecms (through ``PIL.ImageCms``) does the conversions.  Pillow's littlecms bindings take colour
images in 8 bits only, so a 16-bit colour photo with a non-sRGB profile is converted in float: by the
profile's own arithmetic where it is made of colorants and tone curves (``_matrix_transform``, exactly
invertible), else through a 3-D lookup table sampled from the littlecms transform and interpolated in
float (see ``_lut``), which keeps 16-bit smoothness instead of quantising to 256 levels.  A 16-bit gray
photo's profile is converted at each of its 65536 levels by a 16-bit gray transform to a gray profile
with sRGB's tone curve (``_gray_ramp16``), and back by that transform's inverse: sampled at 256 levels
with 8-bit results, a Gray Gamma 2.2 scan's shadows came back from a round trip up to 3 levels of 255
darker, in flat bands.  Photos already in sRGB (or without a profile) are never converted.
"""

from __future__ import annotations

import io
import struct
from functools import lru_cache

import numpy as np
from PIL import Image, ImageCms

from oldphoto.luma import luma

_INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
_PIL_MODE = {"RGB": "RGB", "GRAY": "L", "CMYK": "CMYK"}


class ProfileError(ValueError):
    """An embedded ICC profile that littlecms cannot use."""


@lru_cache(maxsize=1)
def srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def srgb_icc_bytes() -> bytes:
    return srgb_profile().tobytes()


@lru_cache(maxsize=32)
def _profile(icc: bytes) -> ImageCms.ImageCmsProfile:
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError, ValueError) as exc:
        raise ProfileError(f"unreadable ICC profile ({exc})") from exc


def profile_space(icc: bytes) -> str:
    """'RGB', 'GRAY', 'CMYK' (or another ICC colour-space signature, stripped)."""
    return _profile(icc).profile.xcolor_space.strip()


def profile_description(icc: bytes) -> str:
    try:
        return (_profile(icc).profile.profile_description or "").strip()
    except ProfileError:
        return ""


def is_srgb(icc: bytes | None) -> bool:
    """True when no conversion is needed: no profile, or a profile that declares itself sRGB."""
    if not icc:
        return True
    return profile_space(icc) == "RGB" and "srgb" in profile_description(icc).lower().replace(" ", "")


@lru_cache(maxsize=32)
def _transform(icc: bytes, space: str, to_srgb: bool) -> ImageCms.ImageCmsTransform:
    mode = _PIL_MODE[space]
    try:
        if to_srgb:
            return ImageCms.buildTransform(_profile(icc), srgb_profile(), mode, "RGB", _INTENT)
        return ImageCms.buildTransform(srgb_profile(), _profile(icc), "RGB", mode, _INTENT)
    except ImageCms.PyCMSError as exc:
        raise ProfileError(f"cannot build a colour transform for this ICC profile ({exc})") from exc


def _apply_8bit(values: np.ndarray, transform: ImageCms.ImageCmsTransform, in_mode: str) -> np.ndarray:
    data = np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)
    if in_mode == "L":
        data = data[..., 0]
    out = np.asarray(ImageCms.applyTransform(Image.fromarray(data, in_mode), transform))
    out = out.astype(np.float32) / 255.0
    return out[..., None] if out.ndim == 2 else out


_LUT_SIZE = 33


@lru_cache(maxsize=8)
def _lut(icc: bytes, space: str, to_srgb: bool) -> np.ndarray:
    """The transform sampled on a regular grid (RGB/CMY inputs only): ``N×N×N×C_out`` float32.

    Grid nodes are 8-bit values (k*255/32 rounded), so the samples are exact littlecms results; the
    node coordinates are kept exactly for interpolation.
    """
    grid = np.rint(np.linspace(0, 255, _LUT_SIZE)).astype(np.uint8)
    r, g, b = np.meshgrid(grid, grid, grid, indexing="ij")
    cube = np.stack([r, g, b], axis=-1).reshape(1, -1, 3).astype(np.float32) / 255.0
    in_mode = "RGB" if to_srgb is False else _PIL_MODE[space]
    out = _apply_8bit(cube, _transform(icc, space, to_srgb), in_mode)
    return out.reshape(_LUT_SIZE, _LUT_SIZE, _LUT_SIZE, -1)


_LEVELS16 = np.arange(65536, dtype=np.float32) / 65535.0


def _srgb_gray_icc() -> bytes:
    """A gray ICC profile (v2, D50 white) whose tone curve is sRGB's: neutral sRGB as one channel."""
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    d50 = b"".join(s15(v) for v in (0.9642, 1.0, 0.8249))
    v = np.linspace(0.0, 1.0, 4096)
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    text = b"sRGB tone curve gray\0"
    tags = [(b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 79),
            (b"wtpt", b"XYZ \0\0\0\0" + d50),
            (b"kTRC", b"curv\0\0\0\0" + struct.pack(">I", v.size)
             + np.rint(linear * 65535).astype(">u2").tobytes())]
    offset, table, blobs = 128 + 4 + 12 * len(tags), b"", b""
    for sig, data in tags:
        blobs += b"\0" * (-(offset + len(blobs)) % 4)
        table += struct.pack(">4sII", sig, offset + len(blobs), len(data))
        blobs += data
    body = struct.pack(">I", len(tags)) + table + blobs
    header = (struct.pack(">I", 128 + len(body)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrGRAYXYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + d50 + b"\0" * 48)
    return header + body


@lru_cache(maxsize=8)
def _gray_ramp16(icc: bytes) -> np.ndarray:
    """A gray profile's transform to sRGB's gray at each of the 65536 16-bit levels (float, rising)."""
    try:
        transform = ImageCms.buildTransform(_profile(icc), _profile(_srgb_gray_icc()), "I;16", "I;16",
                                            _INTENT)
    except ImageCms.PyCMSError as exc:
        raise ProfileError(f"cannot build a colour transform for this ICC profile ({exc})") from exc
    levels = Image.fromarray(np.arange(65536, dtype=np.uint16).reshape(256, 256))
    ramp = np.asarray(ImageCms.applyTransform(levels, transform), np.float32).reshape(-1) / 65535.0
    return np.maximum.accumulate(ramp)


@lru_cache(maxsize=8)
def _gray_inverse16(icc: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(sRGB gray values, the profile's levels they come from) of :func:`_gray_ramp16`, for ``np.interp``
    back: the inverse of the very transform the photo was read with, so that a pixel left as it was
    comes back as it was (littlecms's own reverse transform differs from it in the shadows by up to
    1200 levels of 65535).  A run of levels that share one value gives its middle."""
    ramp = _gray_ramp16(icc)
    values, first = np.unique(ramp, return_index=True)
    last = np.r_[first[1:], ramp.size] - 1
    return values, (_LEVELS16[first] + _LEVELS16[last]) / 2


def _apply_lut(values: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of ``lut`` at ``values`` (``H×W×3`` in [0, 1])."""
    nodes = np.rint(np.linspace(0, 255, _LUT_SIZE)) / 255.0
    n = _LUT_SIZE - 1
    pos = np.clip(values, 0.0, 1.0) * n
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, n - 1)
    # local fraction between the exact (rounded) node coordinates
    lo, hi = nodes[i0], nodes[i0 + 1]
    f = ((np.clip(values, 0.0, 1.0) - lo) / (hi - lo)).astype(np.float32)
    out = np.zeros(values.shape[:-1] + (lut.shape[-1],), np.float32)
    for dr in (0, 1):
        wr = f[..., 0] if dr else 1 - f[..., 0]
        for dg in (0, 1):
            wg = f[..., 1] if dg else 1 - f[..., 1]
            for db in (0, 1):
                wb = f[..., 2] if db else 1 - f[..., 2]
                out += (wr * wg * wb)[..., None] * lut[i0[..., 0] + dr, i0[..., 1] + dg, i0[..., 2] + db]
    return out


# ------------------------------------------------------------------------------------------------------
# 16-bit RGB through a matrix/TRC profile (Adobe RGB, ProPhoto, most scanner profiles), in float.  The 3-D
# lookup table above samples littlecms at 8 bits: a 16-bit Adobe RGB scan came back from a round trip up
# to 671 levels of 65535 off where nothing was changed.  For a profile that holds only colorants and tone
# curves the transform is that arithmetic (the curves, the colorants' matrix into the D50 connection
# space, and sRGB's own, as littlecms builds sRGB), done here in float with an exact inverse.

_MATRIX_TAGS = (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC")
# with any of these, littlecms may use them instead of the colorants and curves (the float D2Bx/B2Dx
# tags even before the A2Bx/B2Ax ones): such a profile is left to the lookup table
_LUT_TAGS = (b"A2B0", b"A2B1", b"A2B2", b"B2A0", b"B2A1", b"B2A2",
             b"D2B0", b"D2B1", b"D2B2", b"D2B3", b"B2D0", b"B2D1", b"B2D2", b"B2D3")
_CURVE_SAMPLES = 65536


def _tags(icc: bytes) -> dict[bytes, bytes]:
    count = struct.unpack_from(">I", icc, 128)[0]
    tags = {}
    for i in range(count):
        sig, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
        tags[sig] = icc[offset:offset + size]
    return tags


def _curve(data: bytes) -> np.ndarray:
    """A tone curve tag ('curv' or 'para') sampled at ``_CURVE_SAMPLES`` points of [0, 1]."""
    x = np.linspace(0.0, 1.0, _CURVE_SAMPLES)
    kind = data[:4]
    if kind == b"curv":
        n = struct.unpack_from(">I", data, 8)[0]
        if n == 0:
            return x
        if n == 1:
            return x ** (struct.unpack_from(">H", data, 12)[0] / 256.0)
        table = np.frombuffer(data, ">u2", n, 12).astype(np.float64) / 65535.0
        return np.interp(x, np.linspace(0.0, 1.0, n), table)
    if kind == b"para":
        function = struct.unpack_from(">H", data, 8)[0]
        count = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}[function]
        g, a, b, c, d, e, f = (list(np.frombuffer(data, ">i4", count, 12) / 65536.0) + [0.0] * 7)[:7]
        if function == 0:
            return x ** g
        if function == 1:  # CIE 122-1966
            return np.where(x >= -b / a, np.maximum(a * x + b, 0.0) ** g, 0.0)
        if function == 2:  # IEC 61966-3
            return np.where(x >= -b / a, np.maximum(a * x + b, 0.0) ** g + c, c)
        if function == 3:  # IEC 61966-2.1 (sRGB)
            return np.where(x >= d, np.maximum(a * x + b, 0.0) ** g, c * x)
        return np.where(x >= d, np.maximum(a * x + b, 0.0) ** g + e, c * x + f)
    raise ValueError(f"tone curve of type {kind!r}")


def _xyz_tag(data: bytes) -> np.ndarray:
    return np.frombuffer(data, ">i4", 3, 8) / 65536.0


@lru_cache(maxsize=8)
def _matrix_shaper(icc: bytes) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """(colorants as columns of a 3×3 matrix to D50 XYZ, the three sampled tone curves) of an RGB profile
    made of those alone, else None (then the lookup table serves)."""
    try:
        tags = _tags(icc)
        if any(t in tags for t in _LUT_TAGS) or not all(t in tags for t in _MATRIX_TAGS):
            return None
        matrix = np.stack([_xyz_tag(tags[t]) for t in _MATRIX_TAGS[:3]], axis=1)
        curves = [np.maximum.accumulate(_curve(tags[t])) for t in _MATRIX_TAGS[3:]]
    except (struct.error, ValueError, KeyError):
        return None
    return (matrix, curves) if abs(np.linalg.det(matrix)) > 1e-6 else None


def _through_curves(values: np.ndarray, curves: list[np.ndarray], inverse: bool) -> np.ndarray:
    x = np.linspace(0.0, 1.0, _CURVE_SAMPLES)
    out = np.empty(values.shape, np.float64)
    for k, curve in enumerate(curves):
        v = np.clip(values[..., k], 0.0, 1.0)
        out[..., k] = np.interp(v, curve, x) if inverse else np.interp(v, x, curve)
    return out


def _matrix_transform(values: np.ndarray, icc: bytes, to_srgb: bool) -> np.ndarray:
    """``values`` (``H×W×3``) through the matrix/TRC profile ``icc`` to sRGB, or back (``to_srgb`` False)."""
    source = _matrix_shaper(icc)
    srgb = _matrix_shaper(srgb_icc_bytes())
    first, second = (source, srgb) if to_srgb else (srgb, source)
    linear = _through_curves(values, first[1], inverse=False)
    mixed = linear @ (np.linalg.inv(second[0]) @ first[0]).T
    return _through_curves(mixed, second[1], inverse=True).astype(np.float32)


def to_srgb(values: np.ndarray, icc: bytes | None, space: str, high_precision: bool = False) -> np.ndarray:
    """Device values ``H×W×C`` (C = 1 gray, 3 RGB, 4 CMYK) in [0, 1] -> sRGB ``H×W×3`` float32."""
    if space == "GRAY" and (icc is None or is_srgb(icc)):
        return np.repeat(values[..., :1], 3, axis=-1).astype(np.float32)
    if space == "RGB" and is_srgb(icc):
        return values.astype(np.float32)
    if icc is None:
        if space == "CMYK":  # untagged CMYK: the multiplicative formula Pillow's convert("RGB") uses
            return ((1.0 - values[..., :3]) * (1.0 - values[..., 3:4])).astype(np.float32)
        raise ValueError(f"no conversion for colour space {space}")
    if space == "RGB" and high_precision:
        if _matrix_shaper(icc) is not None:
            return _matrix_transform(values, icc, to_srgb=True)
        return _apply_lut(values, _lut(icc, space, True))
    if space == "GRAY" and high_precision:
        gray = np.interp(values[..., 0], _LEVELS16, _gray_ramp16(icc)).astype(np.float32)
        return np.repeat(gray[..., None], 3, axis=-1)
    return _apply_8bit(values, _transform(icc, space, True), _PIL_MODE[space])


def from_srgb(rgb: np.ndarray, icc: bytes | None, space: str, high_precision: bool = False) -> np.ndarray:
    """sRGB ``H×W×3`` -> device values for ``space`` (``H×W×C`` float32 in [0, 1])."""
    if space == "GRAY" and (icc is None or is_srgb(icc)):
        # Rec. 601 luma, the weights Pillow's convert("L") uses; exact for neutral pixels
        return luma(rgb)[..., None]
    if space == "RGB" and is_srgb(icc):
        return rgb.astype(np.float32)
    if icc is None:
        if space == "CMYK":
            # full black generation: K = 1 - max(RGB); the exact inverse of the formula in to_srgb
            rgb = np.clip(rgb, 0.0, 1.0)
            k = 1.0 - rgb.max(axis=-1, keepdims=True)
            cmy = (1.0 - rgb - k) / np.maximum(1.0 - k, 1e-6)
            return np.concatenate([cmy, k], axis=-1).astype(np.float32)
        raise ValueError(f"no conversion for colour space {space}")
    if high_precision and space == "GRAY":
        return np.interp(luma(rgb), *_gray_inverse16(icc))[..., None].astype(np.float32)
    if high_precision and space == "RGB" and _matrix_shaper(icc) is not None:
        return _matrix_transform(rgb, icc, to_srgb=False)
    if high_precision:
        return _apply_lut(rgb, _lut(icc, space, False))
    return _apply_8bit(rgb, _transform(icc, space, False), "RGB")

"""Colour management: embedded ICC profiles -> sRGB for processing, and back for output.

littlecms (through ``PIL.ImageCms``) does the conversions.  Pillow's littlecms bindings only take 8-bit
images, so a 16-bit photo with a non-sRGB profile is converted through a 3-D lookup table sampled from
the littlecms transform and interpolated in float (see ``_Lut``), which keeps 16-bit smoothness instead
of quantising to 256 levels.  Photos already in sRGB (or without a profile) are never converted.
"""

from __future__ import annotations

import io
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


_RAMP = np.arange(256, dtype=np.float32) / 255.0


@lru_cache(maxsize=8)
def _gray_ramp(icc: bytes, to_srgb: bool) -> np.ndarray:
    """Gray transforms sampled at every 8-bit level (neutral sRGB in, for the reverse direction)."""
    if to_srgb:
        return _apply_8bit(_RAMP[None, :, None], _transform(icc, "GRAY", True), "L")[0]
    neutral = np.repeat(_RAMP[None, :, None], 3, axis=-1)
    return _apply_8bit(neutral, _transform(icc, "GRAY", False), "RGB")[0]


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
        return _apply_lut(values, _lut(icc, space, True))
    if space == "GRAY" and high_precision:
        ramp = _gray_ramp(icc, True)  # 256×3: gray level -> sRGB
        channels = [np.interp(values[..., 0], _RAMP, ramp[:, c]) for c in range(3)]
        return np.stack(channels, -1).astype(np.float32)
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
        return np.interp(luma(rgb), _RAMP, _gray_ramp(icc, False)[:, 0])[..., None].astype(np.float32)
    if high_precision:
        return _apply_lut(rgb, _lut(icc, space, False))
    return _apply_8bit(rgb, _transform(icc, space, False), "RGB")

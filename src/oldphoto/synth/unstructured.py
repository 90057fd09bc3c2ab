"""Unstructured (global) degradations: noise, blur, resampling, JPEG, colour jitter (paper §4.2).

Every operation takes a float32 RGB ``H×W×3`` image in [0, 1] and a ``numpy.random.Generator`` and returns a
new float32 image in [0, 1]; all randomness comes from the generator so a seed reproduces the result.
Parameter ranges follow the paper and the released ``online_add_degradation_v2``;
the paper's "σ ∈ (5, 50)" is on the 0–255 scale.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from oldphoto.luma import luma

Op = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _clip(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0.0, 1.0, out=image).astype(np.float32, copy=False)


def _noise_field(shape: tuple[int, ...], rng: np.random.Generator, p_mono: float) -> np.ndarray:
    """Unit Gaussian noise, per channel or (with probability ``p_mono``) shared by the three channels:
    luminance-only noise is what film and analogue scans show, per-channel noise what sensors show."""
    if rng.random() < p_mono:
        return np.repeat(rng.standard_normal(shape[:2] + (1,), dtype=np.float32), shape[2], axis=2)
    return rng.standard_normal(shape, dtype=np.float32)


def gaussian_noise(image: np.ndarray, rng: np.random.Generator,
                   sigma: tuple[float, float] = (5.0, 50.0), p_mono: float = 0.5) -> np.ndarray:
    """Additive white Gaussian noise, σ ~ U(sigma) on the 0–255 scale."""
    s = rng.uniform(*sigma) / 255.0
    return _clip(image + _noise_field(image.shape, rng, p_mono) * np.float32(s))


def speckle_noise(image: np.ndarray, rng: np.random.Generator,
                  sigma: tuple[float, float] = (5.0, 50.0), p_mono: float = 0.5) -> np.ndarray:
    """Multiplicative noise ``x + x·N(0, σ)``, σ ~ U(sigma)/255 (as in the released code)."""
    s = rng.uniform(*sigma) / 255.0
    return _clip(image + image * _noise_field(image.shape, rng, p_mono) * np.float32(s))


def salt_pepper_noise(image: np.ndarray, rng: np.random.Generator,
                      amount: tuple[float, float] = (0.0, 0.01),
                      salt_ratio: tuple[float, float] = (0.3, 0.8)) -> np.ndarray:
    """Per-channel impulse noise: a fraction ``amount`` of samples set to 0 or 1."""
    a = rng.uniform(*amount)
    r = rng.uniform(*salt_ratio)
    u = rng.random(image.shape, dtype=np.float32)
    out = image.copy()
    out[u < a * r] = 1.0
    out[(u >= a * r) & (u < a)] = 0.0
    return out


def random_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of Gaussian, speckle or salt-and-pepper noise, equiprobable (released code's noise op)."""
    kind = int(rng.integers(3))
    return (gaussian_noise, speckle_noise, salt_pepper_noise)[kind](image, rng)


def gaussian_blur(image: np.ndarray, rng: np.random.Generator,
                  kernels: tuple[int, ...] = (3, 5, 7),
                  sigma: tuple[float, float] = (1.0, 5.0)) -> np.ndarray:
    """Gaussian blur with a square kernel k ∈ kernels and σ ~ U(sigma)."""
    k = int(kernels[int(rng.integers(len(kernels)))])
    s = float(rng.uniform(*sigma))
    return cv2.GaussianBlur(image, (k, k), s, borderType=cv2.BORDER_REFLECT101)


def box_blur(image: np.ndarray, rng: np.random.Generator, sizes: tuple[int, int] = (2, 5)) -> np.ndarray:
    """Lens defocus: a uniform disk kernel of radius ~ U{sizes} (a box blur with round support)."""
    radius = int(rng.integers(sizes[0], sizes[1] + 1))
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disk = (xx * xx + yy * yy <= radius * radius + radius).astype(np.float32)
    disk /= disk.sum()
    return _clip(cv2.filter2D(image, -1, disk, borderType=cv2.BORDER_REFLECT101))


def down_up_sample(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Loss of resolution: bicubic down to U(½,1)× per axis, back up nearest or bilinear (50/50)."""
    h, w = image.shape[:2]
    nw = int(rng.integers(max(1, w // 2), w + 1))
    nh = int(rng.integers(max(1, h // 2), h + 1))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_CUBIC)
    interp = cv2.INTER_NEAREST if rng.random() < 0.5 else cv2.INTER_LINEAR
    return _clip(cv2.resize(small, (w, h), interpolation=interp))


def jpeg(image: np.ndarray, rng: np.random.Generator, quality: tuple[int, int] = (40, 100)) -> np.ndarray:
    """JPEG re-encoding at quality ~ U{quality} (libjpeg via OpenCV; deterministic)."""
    q = int(rng.integers(quality[0], quality[1] + 1))
    u8 = (image * 255.0 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:  # pragma: no cover - OpenCV only fails on invalid input
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255.0


def color_jitter(image: np.ndarray, rng: np.random.Generator, shift: float = 20.0) -> np.ndarray:
    """Shift each RGB channel by U(-shift, shift) on the 0–255 scale (paper: ±20)."""
    offsets = rng.uniform(-shift, shift, size=3).astype(np.float32) / 255.0
    return _clip(image + offsets)


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma replicated to three channels (PIL ``convert("L")`` weights)."""
    return np.repeat(luma(image)[:, :, None], 3, axis=2)


# The paper's operation list (§4.2) plus the released code's extra noise kinds and resampling.
UNSTRUCTURED_OPS: dict[str, Op] = {
    "noise": random_noise,
    "gaussian_blur": gaussian_blur,
    "box_blur": box_blur,
    "down_up": down_up_sample,
    "jpeg": jpeg,
    "color_jitter": color_jitter,
}


def apply_unstructured(image: np.ndarray, rng: np.random.Generator, p_drop: float = 0.3,
                       ops: dict[str, Op] | None = None) -> tuple[np.ndarray, list[str]]:
    """Apply the operations in a random order, dropping each with probability ``p_drop``.

    Only one of the two blurs is kept per sample (both at once would wash out the image far beyond
    what real prints show).  Returns the degraded image and the names of the applied operations.
    """
    ops = UNSTRUCTURED_OPS if ops is None else ops
    names = list(ops)
    order = rng.permutation(len(names))
    keep = rng.random(len(names)) >= p_drop
    applied: list[str] = []
    out = image.astype(np.float32, copy=True)
    blurred = False
    for idx in order:
        name = names[int(idx)]
        if not keep[idx]:
            continue
        if name in ("gaussian_blur", "box_blur"):
            if blurred:
                continue
            blurred = True
        out = ops[name](out, rng)
        applied.append(name)
    return out, applied

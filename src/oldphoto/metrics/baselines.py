"""Classical baselines for the comparison tables.

- ``degraded_input``: returns the input unchanged (the paper's "Input" row).
- ``classical_face``: for enlarged small faces: non-local-means denoising (strength from the estimated
  noise) and an unsharp mask, on the face already enlarged bicubically (the face-stage baseline).
- ``classical_restore``: OpenCV non-local-means denoising, then Telea inpainting of the defect mask.  The
  mask is the one passed in (e.g. from our detector) or, when none is given, ``classical_scratch_mask``:
  thin bright/dark line-like structures found by morphological top-hats on luma, the classical
  scratch detector.
"""

from __future__ import annotations

import numpy as np


def degraded_input(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    return np.asarray(image, np.float32)


def _to_u8(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.clip(np.round(np.asarray(image) * 255.0), 0, 255).astype(np.uint8))


def _line_kernels(length: int, angles: int = 8) -> list[np.ndarray]:
    import cv2

    kernels = []
    c = length // 2
    for k in range(angles):
        t = np.pi * k / angles
        dx, dy = int(round(c * np.cos(t))), int(round(c * np.sin(t)))
        kernel = np.zeros((length, length), np.uint8)
        cv2.line(kernel, (c - dx, c - dy), (c + dx, c + dy), 1, 1)
        kernels.append(kernel)
    return kernels


def classical_scratch_mask(image: np.ndarray, line_length: int | None = None, threshold: float = 0.15,
                           max_fraction: float = 0.03) -> np.ndarray:
    """Bool ``H×W`` mask of thin, high-contrast structures (scratches, dust) by white/black top-hats.

    Candidate pixels (top-hat above a level that marks at most ``max_fraction`` of the image) are kept
    when they lie on a straight run of ``2·size+1`` pixels in one of 8 directions (scratches; a union of
    morphological openings with line elements) or form a small isolated speck (dust), so ordinary image
    detail and noise are not inpainted.
    """
    import cv2

    gray = cv2.cvtColor(_to_u8(image), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    h, w = gray.shape
    size = line_length or max(7, (min(h, w) // 64) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    tophat = np.maximum(cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, kernel),
                        cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel))
    level = max(threshold, float(np.quantile(tophat, 1.0 - max_fraction)))
    binary = (tophat > level).astype(np.uint8)
    lines = np.zeros_like(binary)
    for k in _line_kernels(2 * size + 1):
        lines |= cv2.morphologyEx(binary, cv2.MORPH_OPEN, k)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    area = stats[:, cv2.CC_STAT_AREA]
    extent = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    spot = (area >= 6) & (area <= size * size // 2) & (extent <= size)  # isolated dust specks
    spot[0] = False
    mask = lines.astype(bool) | spot[labels]
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def classical_restore(image: np.ndarray, mask: np.ndarray | None = None, h: float = 10.0,
                      inpaint_radius: int = 5) -> np.ndarray:
    """NLM denoising + Telea inpainting; float RGB in/out."""
    import cv2

    u8 = _to_u8(image)
    if mask is None:
        mask = classical_scratch_mask(image)
    denoised = cv2.fastNlMeansDenoisingColored(u8, None, h, h, 7, 21)
    m8 = (np.asarray(mask) > 0.5).astype(np.uint8) * 255
    if m8.shape != u8.shape[:2]:
        raise ValueError(f"mask size {m8.shape} does not match image {u8.shape[:2]}")
    out = cv2.inpaint(denoised, m8, inpaint_radius, cv2.INPAINT_TELEA) if m8.any() else denoised
    return out.astype(np.float32) / 255.0


def classical_face(image: np.ndarray, sharpen: float = 0.8, radius: float = 1.5) -> np.ndarray:
    """NLM denoising (h = 1.2 × the estimated noise σ on the 0–255 scale, 3–20) + unsharp mask."""
    import cv2

    img = np.asarray(image, np.float32)
    sigma = noise_sigma(img) * 255.0
    h = float(np.clip(1.2 * sigma, 3.0, 20.0))
    denoised = cv2.fastNlMeansDenoisingColored(_to_u8(img), None, h, h, 7, 21).astype(np.float32) / 255.0
    blurred = cv2.GaussianBlur(denoised, (0, 0), radius)
    return np.clip(denoised + sharpen * (denoised - blurred), 0.0, 1.0)


def noise_sigma(image: np.ndarray) -> float:
    """Immerkær's fast estimate of white-noise σ (same scale as the image) on the luma: the mean absolute
    response of the Laplacian-difference mask, which cancels smooth image content."""
    import cv2

    img = np.asarray(image, np.float32)
    y = img.mean(axis=2) if img.ndim == 3 else img
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    r = cv2.filter2D(y, -1, k, borderType=cv2.BORDER_REFLECT101)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(r).mean() / 6.0)

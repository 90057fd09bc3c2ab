"""Classical baselines for the comparison tables.

- ``degraded_input``: returns the input unchanged (the paper's "Input" row).
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

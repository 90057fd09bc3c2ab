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


def classical_scratch_mask(image: np.ndarray, line_length: int | None = None, threshold: float = 0.15,
                           max_fraction: float = 0.03) -> np.ndarray:
    """Bool ``H×W`` mask of thin, high-contrast structures (scratches, dust) by white/black top-hats.

    Only line-like components (long and thin) and small spots survive, so that ordinary image detail is
    not inpainted; the threshold rises until at most ``max_fraction`` of the pixels are marked.
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
    _, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    length = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]).astype(np.float64)
    thin = (length >= 2 * size) & (area <= 0.35 * length * size)  # long, narrow strokes
    spot = (area >= 4) & (area <= size * size / 2) & (length <= size)  # isolated dust specks
    keep = thin | spot
    keep[0] = False
    return cv2.dilate(keep[labels].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


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

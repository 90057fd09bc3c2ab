"""The one BT.601 luma: ``Y = 0.299 R + 0.587 G + 0.114 B`` (full range), and the chroma beside it.

These are the weights of Pillow's ``convert("L")``, which made the official detector's input, so the
detector, the tone and colour stages, gray output files, the synthesis and NIQE all use them.  (The
PSNR-Y/SSIM-Y metrics use MATLAB's studio-range ``rgb2ycbcr`` instead, as the literature does:
:func:`oldphoto.metrics.fullref.rgb_to_luma`.)
"""

from __future__ import annotations

import numpy as np

WEIGHTS = (0.299, 0.587, 0.114)
LUMA = np.array(WEIGHTS, dtype=np.float32)


def luma(image: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Luma ``H×W`` of an ``H×W×3`` image (channels past the third are ignored), computed in ``dtype``."""
    array = np.asarray(image, dtype=dtype)
    if array.ndim != 3 or array.shape[2] < 3:
        raise ValueError(f"expected an H×W×3 image, got shape {array.shape}")
    return array[..., :3] @ np.array(WEIGHTS, dtype=dtype)


def chroma(image: np.ndarray) -> np.ndarray:
    """The BT.601 colour-difference planes ``H×W×2`` (Cb, Cr), full range: 0 for gray, up to about ±0.5."""
    rgb = np.asarray(image, dtype=np.float32)[..., :3]
    y = luma(rgb)
    return np.stack([0.564 * (rgb[..., 2] - y), 0.713 * (rgb[..., 0] - y)], axis=-1)


def colourfulness(planes: np.ndarray) -> np.ndarray:
    """How colourful each pixel is: the length of its (Cb, Cr) (``planes``: :func:`chroma`'s ``H×W×2``)."""
    return np.hypot(planes[..., 0], planes[..., 1])

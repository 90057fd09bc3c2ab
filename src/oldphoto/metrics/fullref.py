"""Full-reference metrics: PSNR and SSIM on RGB and on luma.

Images are float32 RGB ``H×W×3`` in [0, 1] (the project's boundary format).  Luma is the ITU-R BT.601
``Y`` of MATLAB's ``rgb2ycbcr`` (range 16–235 on a 0–255 scale), which is what super-resolution and
restoration papers report as "PSNR/SSIM on Y".  SSIM follows Wang et al. 2004: 11×11 Gaussian window,
σ = 1.5, K1 = 0.01, K2 = 0.03, population covariances, averaged over channels for RGB.
"""

from __future__ import annotations

import numpy as np


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"image sizes differ: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected H×W or H×W×C images, got shape {a.shape}")
    return a, b


def rgb_to_luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma as MATLAB ``rgb2ycbcr`` computes it, returned in [0, 1] (0–255 scale / 255)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        return image
    y = 16.0 + image[..., 0] * 65.481 + image[..., 1] * 128.553 + image[..., 2] * 24.966
    return y / 255.0


def psnr(image: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical images."""
    a, b = _check_pair(image, reference)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def psnr_y(image: np.ndarray, reference: np.ndarray) -> float:
    """PSNR on BT.601 luma."""
    return psnr(rgb_to_luma(image), rgb_to_luma(reference))


def ssim(image: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM (Gaussian window σ=1.5, averaged over channels)."""
    from skimage.metrics import structural_similarity

    a, b = _check_pair(image, reference)
    if min(a.shape[:2]) < 7:
        raise ValueError(f"SSIM needs images of at least 7×7 pixels, got {a.shape[1]}×{a.shape[0]}")
    return float(structural_similarity(
        a, b, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=-1 if a.ndim == 3 else None))


def ssim_y(image: np.ndarray, reference: np.ndarray) -> float:
    """SSIM on BT.601 luma."""
    return ssim(rgb_to_luma(image), rgb_to_luma(reference))

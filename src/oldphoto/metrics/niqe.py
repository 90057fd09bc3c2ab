"""NIQE (Mittal, Soundararajan & Bovik, "Making a completely blind image quality analyzer", 2013).

Our own numpy implementation of the published algorithm, with the pristine-model parameters of the
MATLAB release as shipped by BasicSR (``data/niqe_pris_params.npz``, see ``data/LICENSES.md``):

1. luma (full-range BT.601 ``0.299 R + 0.587 G + 0.114 B`` on 0–255, rounded: the YIQ ``Y`` the reference
   calibration uses), cropped to whole 96×96 blocks;
2. at two scales (full, then ½ by MATLAB-style antialiased bicubic ``imresize``): MSCN coefficients
   with the 7×7 Gaussian window, per block 18 features: an AGGD fit of the MSCN values (shape, mean
   of the two scales) and of the four neighbour products (shape, mean, left scale, right scale);
3. fit a Gaussian to the 36-d block features and return the Mahalanobis-like distance to the pristine
   Gaussian with the pooled covariance.

Lower is better.  Calibration against the official MATLAB values: ``oldphoto evaluate calibrate``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.ndimage import convolve
from scipy.special import gamma as gamma_fn

from oldphoto.luma import luma

BLOCK = 96

# Look-up table of the generalized-Gaussian ratio r(α) = Γ(2/α)² / (Γ(1/α) Γ(3/α)) used to invert the
# moment ratio into the shape parameter α (grid as fine as the reference implementations use).
_ALPHAS = np.arange(0.2, 10.001, 0.001)
_R_ALPHA = gamma_fn(2.0 / _ALPHAS) ** 2 / (gamma_fn(1.0 / _ALPHAS) * gamma_fn(3.0 / _ALPHAS))


@lru_cache(maxsize=1)
def pristine_params() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu 36, cov 36×36, gaussian window 7×7) of the pristine model."""
    with resources.files("oldphoto.metrics").joinpath("data/niqe_pris_params.npz").open("rb") as fh:
        data = np.load(fh)
        return (np.asarray(data["mu_pris_param"], np.float64).ravel(),
                np.asarray(data["cov_pris_param"], np.float64),
                np.asarray(data["gaussian_window"], np.float64))


def aggd_fit(values: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalized Gaussian fit by moment matching: (alpha, beta_left, beta_right)."""
    v = np.asarray(values, np.float64).ravel()
    neg, pos = v[v < 0], v[v > 0]
    left_std = np.sqrt(np.mean(neg**2)) if neg.size else 0.0
    right_std = np.sqrt(np.mean(pos**2)) if pos.size else 0.0
    if left_std == 0.0 or right_std == 0.0:
        return float("nan"), float("nan"), float("nan")  # flat block: the block is dropped later
    g = left_std / right_std
    r_hat = np.mean(np.abs(v)) ** 2 / np.mean(v**2)
    r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = float(_ALPHAS[np.argmin((_R_ALPHA - r_norm) ** 2)])
    k = np.sqrt(gamma_fn(1.0 / alpha) / gamma_fn(3.0 / alpha))
    return alpha, float(left_std * k), float(right_std * k)


def block_features(block: np.ndarray) -> list[float]:
    """The 18 NIQE features of one MSCN block."""
    alpha, bl, br = aggd_fit(block)
    feats = [alpha, (bl + br) / 2.0]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        prod = block * np.roll(block, shift, axis=(0, 1))
        alpha, bl, br = aggd_fit(prod)
        mean = (br - bl) * gamma_fn(2.0 / alpha) / gamma_fn(1.0 / alpha) if np.isfinite(alpha) else np.nan
        feats += [alpha, mean, bl, br]
    return feats


def mscn(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (luma on a 0–255 scale)."""
    mu = convolve(image, window, mode="nearest")
    sigma = np.sqrt(np.abs(convolve(image * image, window, mode="nearest") - mu * mu))
    return (image - mu) / (sigma + 1.0)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic kernel with a = −0.5 (MATLAB ``imresize`` 'bicubic')."""
    a = np.abs(x)
    a2, a3 = a * a, a * a * a
    return ((1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1)
            + (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2)))


@lru_cache(maxsize=16)
def _resize_matrix(n_in: int, scale: float) -> np.ndarray:
    """Dense ``n_out×n_in`` matrix of a 1-D antialiased bicubic resize with symmetric borders, following
    MATLAB's ``imresize`` definition (kernel stretched by 1/scale when shrinking).  The exact border and
    antialias treatment matters: PIL's resize moves NIQE by up to 4 % on the calibration images."""
    n_out = int(np.ceil(n_in * scale))
    u = np.arange(1, n_out + 1) / scale + 0.5 * (1.0 - 1.0 / scale)  # 1-based input coordinates
    width = 4.0 / scale
    taps = int(np.ceil(width)) + 2
    idx = np.floor(u - width / 2.0)[:, None] + np.arange(taps)[None, :]
    weights = scale * _cubic(scale * (u[:, None] - idx))
    weights /= weights.sum(axis=1, keepdims=True)
    idx = idx.astype(np.int64) - 1
    idx = np.where(idx < 0, -idx - 1, idx)  # mirror at the borders ("symmetric" padding)
    idx = np.where(idx >= n_in, 2 * n_in - idx - 1, idx)
    matrix = np.zeros((n_out, n_in))
    for row in range(n_out):
        np.add.at(matrix[row], idx[row], weights[row])
    return matrix


def _half(image: np.ndarray) -> np.ndarray:
    """½ downscale, antialiased bicubic."""
    h, w = image.shape
    return _resize_matrix(h, 0.5) @ image @ _resize_matrix(w, 0.5).T


def niqe_luma(luma255: np.ndarray) -> float:
    """NIQE of a 2-D luma array on a 0–255 scale."""
    mu_p, cov_p, window = pristine_params()
    img = np.asarray(luma255, np.float64)
    h, w = img.shape
    nh, nw = h // BLOCK, w // BLOCK
    if nh < 1 or nw < 1:
        raise ValueError(f"NIQE needs an image of at least {BLOCK}×{BLOCK} pixels, got {w}×{h}")
    img = img[: nh * BLOCK, : nw * BLOCK]
    per_scale = []
    for scale in (1, 2):
        norm = mscn(img, window)
        b = BLOCK // scale
        feats = [block_features(norm[i * b:(i + 1) * b, j * b:(j + 1) * b])
                 for j in range(nw) for i in range(nh)]
        per_scale.append(np.asarray(feats, np.float64))
        if scale == 1:
            img = _half(img)
    dist = np.concatenate(per_scale, axis=1)
    mu_d = np.nanmean(dist, axis=0)
    clean = dist[~np.isnan(dist).any(axis=1)]
    if clean.shape[0] < 2:
        raise ValueError("NIQE: fewer than two textured 96×96 blocks (image too small or flat)")
    cov_d = np.cov(clean, rowvar=False)
    diff = mu_p - mu_d
    inv = np.linalg.pinv((cov_p + cov_d) / 2.0)
    return float(np.sqrt(diff @ inv @ diff))


def luma255(image: np.ndarray) -> np.ndarray:
    """The luma NIQE is computed on: full-range BT.601 on a 0–255 scale, rounded like an 8-bit image."""
    arr = np.asarray(image, np.float64)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3:
        arr = luma(arr, np.float64)
    elif arr.ndim != 2:
        raise ValueError(f"expected an H×W×3 or H×W image, got shape {arr.shape}")
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0)


def niqe(image: np.ndarray) -> float:
    """NIQE of a float RGB (or gray) image in [0, 1]; lower is better."""
    return niqe_luma(luma255(image))

"""Distances between sets of latent codes (paper Table 4: real-old vs synthetic latents).

Latents are arrays ``N×D`` (one row per sample, e.g. flattened or spatially pooled VAE codes) or
``N×C×H×W`` tensors, which are flattened to ``N×(C·H·W)``.  Three estimators:

- ``wasserstein_exact``: W_p between the two empirical distributions (uniform weights), solved exactly as
  an assignment problem; the sets must have the same size (subsample the larger one).
- ``sliced_wasserstein``: mean over random unit directions of the 1-D W_p of the projections (scales to
  large sets and dimensions; deterministic for a seed).
- ``gaussian_w2``: closed-form W2 between Gaussian fits (the Fréchet distance).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist


def as_matrix(latents) -> np.ndarray:
    """``N×…`` array/tensor -> float64 ``N×D``."""
    if hasattr(latents, "detach"):
        latents = latents.detach().cpu().numpy()
    arr = np.asarray(latents, np.float64)
    if arr.ndim < 2:
        raise ValueError(f"latents must be N×D or N×C×H×W, got shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_matrix(a), as_matrix(b)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"latent dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    if len(x) == 0 or len(y) == 0:
        raise ValueError("empty latent set")
    return x, y


def wasserstein_exact(a, b, p: int = 1) -> float:
    x, y = _pair(a, b)
    if len(x) != len(y):
        raise ValueError(f"exact Wasserstein needs equal set sizes ({len(x)} vs {len(y)}); subsample or use "
                         "sliced_wasserstein")
    cost = cdist(x, y) ** p
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean() ** (1.0 / p))


def _wasserstein_1d(u: np.ndarray, v: np.ndarray, p: int) -> float:
    """W_p between 1-D empirical distributions of any sizes, via their quantile functions."""
    u, v = np.sort(u), np.sort(v)
    levels = np.union1d(np.arange(1, len(u) + 1) / len(u), np.arange(1, len(v) + 1) / len(v))
    widths = np.diff(np.concatenate([[0.0], levels]))
    qu = u[np.minimum(np.ceil(levels * len(u) - 1e-9).astype(int) - 1, len(u) - 1)]
    qv = v[np.minimum(np.ceil(levels * len(v) - 1e-9).astype(int) - 1, len(v) - 1)]
    return float(np.sum(widths * np.abs(qu - qv) ** p))


def sliced_wasserstein(a, b, n_projections: int = 256, p: int = 1, seed: int = 0) -> float:
    x, y = _pair(a, b)
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((n_projections, x.shape[1]))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    px, py = x @ dirs.T, y @ dirs.T
    total = sum(_wasserstein_1d(px[:, k], py[:, k], p) for k in range(n_projections))
    return float((total / n_projections) ** (1.0 / p))


def gaussian_w2(a, b) -> float:
    from oldphoto.metrics.fid import frechet_from_features

    x, y = _pair(a, b)
    return float(np.sqrt(frechet_from_features(x, y)))

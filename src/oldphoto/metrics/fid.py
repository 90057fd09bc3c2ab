"""Fréchet distances between feature distributions (FID and the offline proxy).

``frechet_distance`` is the closed-form 2-Wasserstein distance between Gaussians,
``‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)``.  ``FeatureStats`` accumulates features image by image.

- ``fid_extractor(inception_weights)``: standard FID features (pool3, 2048-d) from a user-supplied
  Inception-v3 file (see ``features.load_inception``); reported as ``fid``.
- ``fid_proxy_extractor()``: EfficientNet-Lite0 pooled features (1280-d); reported as
  ``fid_proxy_effnetlite0``.  Not comparable with published FID.
FID is strongly biased for small sets (it needs thousands of images for stable values); the report prints
the number of images next to it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy import linalg

from oldphoto.metrics import features as feat
from oldphoto.tensors import image_to_tensor

Extractor = Callable[[np.ndarray], np.ndarray]


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape}/{s1.shape} vs {mu2.shape}/{s2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular products are handled below
        covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        # singular product (few samples): regularise the diagonal, as the reference FID code does
        offset = np.eye(s1.shape[0]) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need an N×D feature array with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_from_features(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*statistics(a), *statistics(b))


class FeatureStats:
    """Collects one feature vector per image."""

    def __init__(self, extractor: Extractor) -> None:
        self.extractor = extractor
        self.rows: list[np.ndarray] = []

    def add(self, image: np.ndarray) -> None:
        self.rows.append(np.asarray(self.extractor(image), np.float64).ravel())

    def array(self) -> np.ndarray:
        return np.stack(self.rows) if self.rows else np.zeros((0, 0))


def _extractor(net: torch.nn.Module) -> Extractor:
    @torch.no_grad()
    def run(image: np.ndarray) -> np.ndarray:
        x = (image_to_tensor(image) + 1.0) * 0.5  # the networks' prepare() takes [0, 1]
        return net(net.prepare(x.clamp(0, 1)))[0].double().numpy()

    return run


def fid_extractor(inception_weights: str | Path) -> Extractor:
    return _extractor(feat.load_inception(inception_weights))


def fid_proxy_extractor() -> Extractor:
    return _extractor(feat.efficientnet_lite0())

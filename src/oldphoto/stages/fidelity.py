"""Fidelity: how much of the photo's own structure and detail the restoration keeps (``--fidelity F``).

The global-restoration networks re-render the whole photo from a latent code.  Strong weights (the
official ones) sharpen and clean; weak ones (our small bundled set) also soften detail, and any set can
change fine texture that belonged to the photo.  ``--fidelity F`` in [0, 1] (the convention of
CodeFormer's weight) blends the networks' rendering with the photo itself, denoised::

    base = (1 − F) · network + F · denoise(photo)

F = 1 keeps the photo's structure and detail (only its noise is removed; the networks are not run
outside the defects), F = 0 takes the networks' restoration as it is.  Defects are repaired on top of
``base`` (:mod:`oldphoto.stages.repair`), so fidelity decides what happens *away* from the defects.

``denoise`` is non-local means on the luma with a strength set from the photo's own noise level (a
clean scan is left almost untouched); the photo's chroma is kept, since the colour and tone stages
decide colour afterwards.
"""

from __future__ import annotations

import cv2
import numpy as np

from oldphoto.stages.tone import luma

# NLM filter strength per unit of noise standard deviation (OpenCV's ``h``, both in 16-bit levels);
# chosen on training crops of the corpus (never the held-out ones), see docs/restore.md.
NLM_STRENGTH = 1.0
# below this noise level (8-bit levels) denoising would only blur grain-free detail
MIN_SIGMA = 0.5 / 255.0
NLM_PATCH = 5
NLM_SEARCH = 13


def noise_sigma(y: np.ndarray) -> float:
    """Standard deviation of the white noise in a luma image ``H×W`` in [0, 1].

    Donoho's robust estimator: the median absolute value of the finest diagonal Haar detail over
    0.6745.  Image structure barely reaches that band, so the estimate follows the noise (grain, sensor
    noise, JPEG speckle) rather than the content.
    """
    y = np.asarray(y, dtype=np.float32)
    h, w = (y.shape[0] // 2) * 2, (y.shape[1] // 2) * 2
    if h < 2 or w < 2:
        return 0.0
    a, b = y[0:h:2, 0:w:2], y[0:h:2, 1:w:2]
    c, d = y[1:h:2, 0:w:2], y[1:h:2, 1:w:2]
    diagonal = (a - b - c + d) * 0.5
    return float(np.median(np.abs(diagonal)) / 0.6745)


def denoise_luma(y: np.ndarray, sigma: float | None = None, strength: float = NLM_STRENGTH) -> np.ndarray:
    """Non-local means of a luma image ``H×W`` in [0, 1], at a strength set by its noise ``sigma``."""
    y = np.asarray(y, dtype=np.float32)
    sigma = noise_sigma(y) if sigma is None else sigma
    if sigma < MIN_SIGMA:
        return y.copy()
    # 16-bit so that 16-bit scans keep their precision (OpenCV needs the L1 norm for 16-bit NLM)
    u16 = np.clip(y * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    h = float(strength * sigma * 65535.0)
    out = cv2.fastNlMeansDenoising(u16, [h], None, NLM_PATCH, NLM_SEARCH, cv2.NORM_L1)
    return out.astype(np.float32) / 65535.0


def denoised_photo(image: np.ndarray) -> np.ndarray:
    """The photo ``H×W×3`` with its luma denoised and its chroma unchanged."""
    y = luma(image)
    return np.clip(image + (denoise_luma(y) - y)[..., None], 0.0, 1.0)


def blend(network: np.ndarray, photo: np.ndarray, fidelity: float) -> np.ndarray:
    """``(1 − fidelity)·network + fidelity·photo`` (both ``H×W×3`` in [0, 1])."""
    if not 0.0 <= fidelity <= 1.0:
        raise ValueError(f"fidelity must be in [0, 1], got {fidelity}")
    if fidelity == 0.0:
        return network
    if fidelity == 1.0:
        return photo
    return (1.0 - np.float32(fidelity)) * network + np.float32(fidelity) * photo

"""Old-print appearance: fading / contrast loss, photographic tones, yellowing, vignetting.

Tones (grayscale, sepia and other toners) describe *how the photo was made*, not damage: the pipeline applies
them to the clean target as well (the restorer must not colourise).  Fading, yellowing and vignetting are
ageing damage and go to the degraded image only.  See ``degrade.py``.
"""

from __future__ import annotations

import cv2
import numpy as np

from oldphoto.synth.unstructured import to_grayscale

# Highlight / shadow colours of common toners (RGB, 0–1), chosen by eye against real prints.
TONES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "sepia": ((1.00, 0.93, 0.78), (0.16, 0.09, 0.04)),
    "warm_brown": ((0.98, 0.90, 0.80), (0.20, 0.12, 0.08)),
    "selenium": ((0.96, 0.94, 0.95), (0.13, 0.08, 0.10)),
    "cyanotype": ((0.86, 0.93, 1.00), (0.04, 0.12, 0.25)),
    "neutral": ((0.98, 0.98, 0.97), (0.05, 0.05, 0.05)),
}


def tone(image: np.ndarray, name: str, strength: float = 1.0) -> np.ndarray:
    """Map luminance onto a two-colour toner ramp (``strength`` 0 = grayscale, 1 = full tone)."""
    hi, lo = (np.asarray(c, dtype=np.float32) for c in TONES[name])
    gray = to_grayscale(image)
    y = gray[:, :, :1]
    toned = lo + y * (hi - lo)
    return np.clip(gray + np.float32(strength) * (toned - gray), 0.0, 1.0).astype(np.float32)


def random_tone(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A random toner (sepia most often, as in real albums) at a random strength."""
    names = list(TONES)
    probs = np.array([0.45, 0.2, 0.1, 0.05, 0.2])
    name = names[int(rng.choice(len(names), p=probs))]
    return tone(image, name, float(rng.uniform(0.5, 1.0))), name


def fade(image: np.ndarray, rng: np.random.Generator, colour: bool = True) -> np.ndarray:
    """Contrast loss and lifted blacks: dyes and silver fade towards the paper colour.

    ``colour``: also fade the three dyes unequally (colour prints only; a silver print has no dyes).
    """
    contrast = np.float32(rng.uniform(0.55, 0.9))
    black = np.float32(rng.uniform(0.03, 0.2))
    # Shadows fade more than highlights (a gamma > 1 on the inverted image).
    gamma = np.float32(rng.uniform(0.8, 1.2))
    out = black + contrast * (np.power(np.clip(image, 0, 1), gamma)) * (1.0 - black)
    # Per-channel dye fading (cyan dye fades first in colour prints -> reddish casts).
    dye = rng.uniform(0.9, 1.0, size=3).astype(np.float32)
    dye[int(rng.integers(3))] = 1.0
    if not colour:
        dye[:] = 1.0
    out = 1.0 - (1.0 - out) * dye
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def yellowing(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Yellow-brown staining of the paper base, strongest in the highlights, slightly uneven."""
    h, w = image.shape[:2]
    strength = np.float32(rng.uniform(0.05, 0.3))
    stain = np.array([1.0, 0.86, 0.55], dtype=np.float32)
    # Smooth unevenness: a low-resolution random field upsampled.
    field = rng.uniform(0.6, 1.0, size=(3, 3)).astype(np.float32)
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)[:, :, None]
    a = strength * field
    return np.clip(image * (1.0 - a) + image * stain * a, 0.0, 1.0).astype(np.float32)


def vignette(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Darkened corners of old lenses (radial falloff with a random centre and strength)."""
    h, w = image.shape[:2]
    cy = h * rng.uniform(0.35, 0.65)
    cx = w * rng.uniform(0.35, 0.65)
    yy = (np.arange(h, dtype=np.float32)[:, None] - cy) / (0.5 * max(h, w))
    xx = (np.arange(w, dtype=np.float32)[None, :] - cx) / (0.5 * max(h, w))
    r2 = xx * xx + yy * yy
    strength = np.float32(rng.uniform(0.2, 0.6))
    falloff = 1.0 - strength * np.clip(r2 / 2.0, 0.0, 1.0) ** np.float32(rng.uniform(0.8, 1.6))
    return (image * falloff[:, :, None]).astype(np.float32)

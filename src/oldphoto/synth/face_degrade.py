"""Degradation of aligned face crops for training the face enhancer.

Faces in old photos are mostly *small*: in a group photo a face is 30–80 px wide, so its 256² aligned crop
is enlarged 3–8× from a blurred, noisy, compressed original.  The paper's face degradation (blur,
downsampling, noise, JPEG) is therefore applied at a random lower resolution and the result is enlarged
back, as inference enlarges a small face; the old-print look of :mod:`oldphoto.synth.oldlook` (fading,
yellowing) and film grain follow at full size, and sometimes light dust and scratches.

Photographic tone (grayscale, sepia and other toners) is applied to the clean target as well, as in
:func:`oldphoto.synth.degrade.degrade`: the enhancer must keep a photo's tone, never colourise it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from oldphoto.synth import oldlook, structured
from oldphoto.synth.unstructured import gaussian_noise, jpeg, to_grayscale


@dataclass(frozen=True)
class FaceDegradeConfig:
    p_sharp: float = 0.1  # no loss of resolution at all (a well-kept print): the enhancer must leave such
    # faces as they are, not smooth them
    p_gray: float = 0.35  # most old photos are black and white
    p_tone: float = 0.25  # sepia & co. when not gray
    p_blur: float = 0.8
    blur_sigma: tuple[float, float] = (0.2, 1.5)  # Gaussian σ in pixels of the shrunk face
    p_down: float = 0.9
    down: tuple[float, float] = (1.0, 8.0)  # shrink factor, log-uniform (256² -> 32²)
    p_noise: float = 0.7
    # on the 0–255 scale, on the shrunk face: enlarged, strong noise becomes blotches no print shows (the
    # film's own grain is added at full size below)
    noise_sigma: tuple[float, float] = (1.0, 10.0)
    p_jpeg: float = 0.5
    jpeg_quality: tuple[int, int] = (35, 95)
    p_fade: float = 0.4
    p_yellow: float = 0.2
    p_grain: float = 0.4
    p_dust: float = 0.15
    p_scratch: float = 0.1


def degrade_face(clean: np.ndarray, rng: np.random.Generator,
                 config: FaceDegradeConfig | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(degraded, target, ops)`` for a clean aligned face (float32 ``S×S×3`` in [0, 1]).

    ``target`` is ``clean`` with the photographic tone applied (shared with ``degraded``).
    """
    cfg = config or FaceDegradeConfig()
    image = np.clip(np.asarray(clean, np.float32), 0.0, 1.0)
    h, w = image.shape[:2]
    ops: list[str] = []
    mono = False
    if rng.random() < cfg.p_gray:
        image, mono = to_grayscale(image), True
        ops.append("gray")
    elif rng.random() < cfg.p_tone:
        image, name = oldlook.random_tone(image, rng)
        mono = True
        ops.append(f"tone:{name}")
    target = image.copy()

    # the lost resolution: shrink, then blur (optics, focus), noise (film, sensor) and JPEG at the small size,
    # then enlarge back as inference does (bilinear or bicubic)
    out = image
    sharp = rng.random() < cfg.p_sharp
    if sharp:
        ops.append("sharp")
    if not sharp and rng.random() < cfg.p_down:
        factor = float(np.exp(rng.uniform(np.log(cfg.down[0]), np.log(cfg.down[1]))))
        if factor > 1.05:
            out = cv2.resize(out, (max(8, round(w / factor)), max(8, round(h / factor))),
                             interpolation=cv2.INTER_AREA)
            ops.append(f"down:{factor:.1f}")
    if not sharp and rng.random() < cfg.p_blur:
        sigma = float(rng.uniform(*cfg.blur_sigma))
        out = cv2.GaussianBlur(out, (0, 0), sigma, borderType=cv2.BORDER_REFLECT101)
        ops.append(f"blur:{sigma:.1f}")
    if not sharp and rng.random() < cfg.p_noise:
        out = gaussian_noise(out, rng, cfg.noise_sigma, p_mono=1.0 if mono else 0.5)
        ops.append("noise")
    if not sharp and rng.random() < cfg.p_jpeg:
        out = jpeg(out, rng, cfg.jpeg_quality)
        ops.append("jpeg")
    if out.shape[:2] != (h, w):
        interp = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR
        out = np.clip(cv2.resize(out, (w, h), interpolation=interp), 0.0, 1.0)

    # ageing of the print and the scan
    if rng.random() < cfg.p_fade:
        out = oldlook.fade(out, rng, colour=not mono)
        ops.append("fade")
    if rng.random() < cfg.p_dust:
        out, _ = structured.dust(out, rng)
        ops.append("dust")
    if rng.random() < cfg.p_scratch:
        out, _ = structured.scratches(out, rng, (1, 3))
        ops.append("scratches")
    if rng.random() < cfg.p_grain:
        out = structured.film_grain(out, rng)
        ops.append("grain")
    if "gray" in ops:  # a silver print has neither chroma grain nor coloured dust; only its paper yellows
        out = to_grayscale(out)
    if rng.random() < cfg.p_yellow:
        out = oldlook.yellowing(out, rng)
        ops.append("yellowing")
    return np.clip(out, 0.0, 1.0).astype(np.float32), target.astype(np.float32), ops

"""Fidelity: how much of the photo's own structure and detail the restoration keeps (``--fidelity F``).

The global-restoration networks re-render the whole photo from a latent code.  Strong weights (the
official ones) sharpen and clean; weak ones (our small bundled set) also soften detail, and any set can
change fine texture that belonged to the photo.  ``--fidelity F`` in [0, 1] (the convention of
CodeFormer's weight) blends the networks' rendering with the photo itself, denoised::

    base = (1 − F) · network + F · denoise(photo)

F = 1 keeps the photo's structure and detail (only its noise is removed; the networks are not run
outside the defects), F = 0 takes the networks' restoration as it is.  Defects are repaired on top of
``base`` (:mod:`oldphoto.stages.repair`), so fidelity decides what happens *away* from the defects.

``denoise`` works on the luma, at a strength set from the photo's own noise level (a clean scan is left
almost untouched): non-local means, or with ``--remove-grain`` the bundled learned denoiser
(:class:`oldphoto.nets.denoiser.LumaDenoiser`), which also takes film grain, JPEG blocks and some blur
away, and with them skin texture and fine hair (docs/restore.md, step 2).  The photo's chroma is kept,
since the colour and tone stages decide colour afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from oldphoto.stages.tone import luma

if TYPE_CHECKING:  # torch only where the learned denoiser runs
    import torch

    from oldphoto.stages.runtime import Runner

# NLM filter strength per unit of noise standard deviation (OpenCV's ``h``, both in 16-bit levels);
# chosen on training crops of the corpus (never the held-out ones) with :func:`noise_sigma`'s estimate,
# see docs/restore.md.
NLM_STRENGTH = 1.5
# below this noise level (8-bit levels) denoising would only blur grain-free detail
MIN_SIGMA = 0.5 / 255.0
NLM_PATCH = 5
NLM_SEARCH = 13
# noise_sigma: blocks of n² finest diagonal details (2n px square), the NOISE_PERCENTILE-th percentile
# of their RMS, unbiased by that percentile for pure Gaussian noise (the RMS of n² standard normal values:
# sqrt(chi²ₙ² / n²) at 5 %) so that it reads σ.  The largest n of NOISE_BLOCKS that gives at least
# NOISE_ENOUGH_BLOCKS usable blocks: a small photo has few large blocks, every one holding texture, and
# their 5th percentile reads that texture as noise (docs/restore.md, "Never worse").
NOISE_BLOCKS = {8: 0.8531, 4: 0.7054, 2: 0.4215}
NOISE_PERCENTILE = 5.0
NOISE_ENOUGH_BLOCKS = 100
NOISE_MIN_BLOCKS = 20
# noise_sigma's ``exclude``: the detector's candidate regions (the hysteresis mask find_defects starts
# from, before any region is judged content or defect).  A print crazed all over by a fine crack network
# (craquelure) has a crack line in nearly every block, and the 5th percentile read the cracks as noise;
# the blocks that touch no candidate pixel are read instead, when NOISE_ENOUGH_BLOCKS of them remain
# (else all, as without).  Measured (review of 2026-12-05; benchmarks/bench_craquelure.py): the scratched
# girl under a synthetic network 3.29 -> 2.37 levels (2.23 uncracked), her face's fine detail kept away
# from the cracks 74 % -> 90 % (92 % uncracked); finer, fainter cracks the candidates partly miss: the
# boy with glasses 2.72 -> 2.58 (2.15), a Solvay crop 3.37 -> 2.77 (2.71); the seven example photos read
# 0-0.13 levels lower (the scratched boy 2.34 -> 2.21: his own cracks had inflated it).
CLIPPED = 2.0 / 255.0  # a block reaching this close to black or white has its noise clipped away
# printing_screen: a printed reproduction (a photo from a newspaper or a book) is a screen of dots, whose
# fine detail is the screen everywhere; noise_sigma reads it as noise (13-21 levels of 255 on halftones of
# 85-133 lines per inch scanned at 300-600 dpi, where 2.5 had been added) and non-local means at that
# strength half-smeared the dots into blotches and stripes.  A screen is a square lattice: a frequency of
# period SCREEN_PERIODS px and the same turned by 90° (3×3 patches of the power spectrum), with their
# mirror images, hold SCREEN_PEAK of a window's power or more (four times the weaker pair).  Measured
# (benchmarks/bench_printing_screen.py): such halftones made from the examples 0.11-0.67 (72 of 90 found;
# the helper-made ones of the review 0.46-0.72); the corpus' and examples' 234 photos at most 0.002
# (scikit-image's bricks and coins among them), the 288 held-out evaluation crops, degraded, at most
# 0.005.  Screens of 2-3 px under a scanner blur of 1 px and noise are missed (0.005-0.09), but little
# of them is left to read as noise there (2-6 levels).  A SCREEN_WINDOW² window at the centre or a corner.
SCREEN_PERIODS = (2.0, 10.0)
SCREEN_PEAK = 0.1
SCREEN_WINDOW = 512
# clumped_grain: strong film grain of a negative or slide scanned at about 4000 dpi is clumped over several
# px, and noise_sigma reads only its finest part (a sixth to a third of it); non-local means at that
# strength takes the fine part and links the clumps into worm-like streaks.  The same flat-block estimate
# read on the 4×4 means (×4, so that white noise reads the same at both scales) gives the grain's power at
# the clumps' scale; the part of it white noise of the finest level does not explain reaches GRAIN_COARSE
# (levels of 255) on such grain and the photo is not denoised.  Measured
# (benchmarks/bench_clumped_grain.py): clumped grain of 9-26 levels on 4× enlarged photos 13.6-57; the
# example photos at most 10.6 (the Moulin Rouge autochrome).  Read only where the photo holds enough
# 16-px blocks at that scale (about 640² px and more): on fewer, the photo's structure reads as grain.
GRAIN_COARSE = 12.5 / 255.0
GRAIN_SCALE = 4


def _diagonal_detail(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The finest diagonal Haar detail of a luma image and the 2×2 means it sits on (half size)."""
    y = np.asarray(y, dtype=np.float32)
    h, w = (y.shape[0] // 2) * 2, (y.shape[1] // 2) * 2
    a, b = y[0:h:2, 0:w:2], y[0:h:2, 1:w:2]
    c, d = y[1:h:2, 0:w:2], y[1:h:2, 1:w:2]
    return (a - b - c + d) * 0.5, (a + b + c + d) * 0.25


def donoho_sigma(y: np.ndarray) -> float:
    """Donoho's robust estimate of white noise: the median absolute value of the finest diagonal Haar
    detail over 0.6745.  Image structure barely reaches that band, but fine texture does (fur, foliage,
    a circuit board), and reads as noise."""
    detail, _ = _diagonal_detail(y)
    return robust_sigma(detail)


def robust_sigma(values: np.ndarray) -> float:
    """The standard deviation of zero-mean noise in ``values``, robustly: the median absolute value over
    0.6745 (a few edges or specks do not count); 0 for no values."""
    return float(np.median(np.abs(values)) / 0.6745) if values.size else 0.0


def noise_sigma(y: np.ndarray, exclude: np.ndarray | None = None) -> float:
    """Standard deviation of the white noise in a luma image ``H×W`` in [0, 1].

    Noise covers the whole photo, texture does not: the finest diagonal detail is read in blocks and
    the noise is that of the flattest ones (the ``NOISE_PERCENTILE``-th percentile of the blocks' RMS,
    unbiased for Gaussian noise), blocks clipped at black or white aside.  On a textured photo (fur,
    foliage, a circuit board's lettering) Donoho's estimate over the whole photo (:func:`donoho_sigma`)
    reads the texture as noise, up to several times the real level, and the denoiser then wipes texture
    and faint lettering out.  Blocks of 16 px, or smaller where a small photo has fewer than
    ``NOISE_ENOUGH_BLOCKS`` of them.  Never above Donoho's estimate over the same (unclipped) blocks;
    Donoho's alone on photos with fewer than ``NOISE_MIN_BLOCKS`` unclipped blocks of the smallest size.

    ``exclude`` (bool ``H×W``, optional): the detector's candidate regions (cracks, scratches, dust, and
    scene lines it rates alike).  Only the blocks that touch none of it are read when
    ``NOISE_ENOUGH_BLOCKS`` of them remain, else all, as without: a crack network over the whole print
    puts a crack line in nearly every block, which the percentile reads as noise.
    """
    if exclude is not None and exclude.shape != np.shape(y):  # (said before a small photo's early answer)
        raise ValueError(f"exclude {exclude.shape} must have the photo's shape {np.shape(y)}")
    detail, mean = _diagonal_detail(y)
    for n in NOISE_BLOCKS:
        bh, bw = detail.shape[0] // n, detail.shape[1] // n
        blocks = detail[:bh * n, :bw * n].reshape(bh, n, bw, n).transpose(0, 2, 1, 3)
        means = mean[:bh * n, :bw * n].reshape(bh, n, bw, n).transpose(0, 2, 1, 3)
        unclipped = (means.min(axis=(2, 3)) > CLIPPED) & (means.max(axis=(2, 3)) < 1.0 - CLIPPED)
        if int(unclipped.sum()) >= NOISE_ENOUGH_BLOCKS:
            break
    if int(unclipped.sum()) < NOISE_MIN_BLOCKS:
        return robust_sigma(detail)
    if exclude is not None:
        s = 2 * n  # a block's side in pixels; rows first (a tenth of the time at 28 MP)
        touched = exclude[:bh * s, :bw * s].reshape(bh, s, bw * s).any(axis=1).reshape(bh, bw, s).any(axis=2)
        clear = unclipped & ~touched
        if int(clear.sum()) >= NOISE_ENOUGH_BLOCKS:
            unclipped = clear
    kept = blocks[unclipped]  # (blocks, n, n)
    rms = np.sqrt(np.mean(np.square(kept), axis=(1, 2)))
    flat = float(np.percentile(rms, NOISE_PERCENTILE)) / NOISE_BLOCKS[n]
    return min(robust_sigma(kept), flat)


def screen_strength(y: np.ndarray) -> float:
    """How much of a luma image ``H×W`` in [0, 1] is a printing screen (a halftone's square lattice of
    dots): the largest share, over the windows, of a window's power held by a frequency of a period in
    ``SCREEN_PERIODS`` together with the same turned by 90° and their mirror images (four times the
    weaker of the two); 0 for an image under 32 px a side."""
    h, w = y.shape
    side = min(SCREEN_WINDOW, h, w)
    if side < 32:
        return 0.0
    taper = np.outer(np.hanning(side), np.hanning(side)).astype(np.float32)
    freq = np.fft.fftfreq(side)
    radius = np.hypot(freq[:, None], freq[None, :])
    band = (radius > 1.0 / SCREEN_PERIODS[1]) & (radius < 1.0 / SCREEN_PERIODS[0])
    strength = 0.0
    for top, left in (((h - side) // 2, (w - side) // 2), (0, 0), (h - side, w - side)):
        window = np.asarray(y[top:top + side, left:left + side], dtype=np.float32)
        power = np.abs(np.fft.fft2((window - window.mean()) * taper)) ** 2
        total = float(power.sum() - power[0, 0])
        if total <= 0.0:
            continue
        # the taper and a screen's small irregularities spread its peak over the neighbouring frequencies
        peak = sum(np.roll(power, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        i, j = np.unravel_index(int(np.argmax(np.where(band, peak, 0.0))), peak.shape)
        # a screen is a square lattice of dots: the frequency turned by 90° holds as much (in stripes, a
        # fence or corduroy, it holds nothing), and the spectrum of a real image is symmetric: four peaks
        lattice = 4.0 * min(float(peak[i, j]), float(peak[-j % side, i]))
        strength = max(strength, lattice / total)
    return strength


def printing_screen(y: np.ndarray) -> bool:
    """Whether the fine detail of a luma image ``H×W`` in [0, 1] is a printing screen: its
    :func:`screen_strength` reaches ``SCREEN_PEAK``."""
    return screen_strength(y) >= SCREEN_PEAK


def coarse_grain(y: np.ndarray, sigma: float | None = None) -> float:
    """The noise of a luma image ``H×W`` in [0, 1] at the scale of film grain's clumps beyond what white
    noise of its finest level (``sigma``, default :func:`noise_sigma`) explains: :func:`noise_sigma` of
    its ``GRAIN_SCALE``² means, times ``GRAIN_SCALE`` (white noise reads the same at both scales), in
    quadrature less ``sigma``; 0 for an image with fewer than ``NOISE_ENOUGH_BLOCKS`` of the estimate's
    16-px blocks at that scale (about 640² px): in fewer, each block holds the photo's own structure at
    that scale and reads it as grain (a 384² photo's shading, under white noise, read 13 levels)."""
    y = np.asarray(y, dtype=np.float32)
    k = GRAIN_SCALE
    h, w = (y.shape[0] // k) * k, (y.shape[1] // k) * k
    if (h // (16 * k)) * (w // (16 * k)) < NOISE_ENOUGH_BLOCKS:
        return 0.0
    means = y[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    sigma = noise_sigma(y) if sigma is None else sigma
    coarse = noise_sigma(means) * k
    return float(np.sqrt(max(coarse * coarse - sigma * sigma, 0.0)))


def clumped_grain(y: np.ndarray, sigma: float | None = None) -> bool:
    """Whether a luma image ``H×W`` in [0, 1] holds strong clumped film grain, which non-local means at the
    finest level's noise (``sigma``) would turn wormy: its :func:`coarse_grain` reaches ``GRAIN_COARSE``."""
    return coarse_grain(y, sigma) >= GRAIN_COARSE


def denoising_sigma(y: np.ndarray, exclude: np.ndarray | None = None) -> float:
    """The noise level a luma image is denoised at: :func:`noise_sigma` (away from ``exclude``, the
    detector's candidate regions, when given), or 0 (it is left as it is) when its fine detail is a
    printing screen, which that estimate reads as noise (:func:`printing_screen`)."""
    return 0.0 if printing_screen(y) else noise_sigma(y, exclude)


def denoise_luma(y: np.ndarray, sigma: float | None = None, strength: float = NLM_STRENGTH,
                 exclude: np.ndarray | None = None) -> np.ndarray:
    """Non-local means of a luma image ``H×W`` in [0, 1], at a strength set by its noise ``sigma``
    (default: :func:`denoising_sigma`, read away from ``exclude``, the detector's candidate regions)."""
    y = np.asarray(y, dtype=np.float32)
    if sigma is None:
        sigma = denoising_sigma(y, exclude)
        if sigma >= MIN_SIGMA and clumped_grain(y, sigma):
            return y.copy()
    if sigma < MIN_SIGMA:
        return y.copy()
    # 16-bit so that 16-bit scans keep their precision (OpenCV needs the L1 norm for 16-bit NLM)
    u16 = np.clip(y * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    h = float(strength * sigma * 65535.0)
    out = cv2.fastNlMeansDenoising(u16, [h], None, NLM_PATCH, NLM_SEARCH, cv2.NORM_L1)
    return out.astype(np.float32) / 65535.0


def denoise_luma_network(y: np.ndarray, network: torch.nn.Module, run: Runner, rows: int = 512,
                         sigma: float | None = None, exclude: np.ndarray | None = None) -> np.ndarray:
    """The learned denoiser (:class:`oldphoto.nets.denoiser.LumaDenoiser`) over a luma image ``H×W`` in
    [0, 1], at the noise level :func:`denoising_sigma` reads (away from ``exclude``, the detector's
    candidate regions, as for :func:`denoise_luma`; a photo below ``MIN_SIGMA`` is left alone, as by
    :func:`denoise_luma`).  The photo goes through in strips of ``rows`` rows, each with a margin wider
    than the network's reach, so the working memory is bounded and the result is the whole photo's."""
    import torch

    y = np.asarray(y, dtype=np.float32)
    sigma = denoising_sigma(y, exclude) if sigma is None else sigma
    if sigma < MIN_SIGMA:
        return y.copy()
    # each 3×3 convolution at half resolution reaches 2 px further; even, to keep the 2×2 fold's grid
    margin = 2 * int(network.config["depth"]) + 4
    rows = max(2, rows - rows % 2)
    level = torch.tensor([sigma], dtype=torch.float32)
    out = np.empty_like(y)
    for top in range(0, y.shape[0], rows):
        bottom = min(top + rows, y.shape[0])
        lo, hi = max(0, top - margin), min(y.shape[0], bottom + margin)
        strip = torch.from_numpy(np.ascontiguousarray(y[lo:hi]))[None, None]
        done = run(network, strip, level)[0, 0].cpu().numpy()
        out[top:bottom] = done[top - lo:bottom - lo]
    return np.clip(out, 0.0, 1.0, out=out)


def denoised_photo(image: np.ndarray, denoise: Callable[..., np.ndarray] = denoise_luma,
                   exclude: np.ndarray | None = None) -> np.ndarray:
    """The photo ``H×W×3`` with its luma denoised by ``denoise`` (non-local means unless given) and its
    chroma unchanged; ``exclude``: the detector's candidate regions, where the noise is not read
    (:func:`noise_sigma`), handed to ``denoise`` when given."""
    y = luma(image)
    done = denoise(y) if exclude is None else denoise(y, exclude=exclude)
    return np.clip(image + (done - y)[..., None], 0.0, 1.0)


def blend(network: np.ndarray, photo: np.ndarray, fidelity: float) -> np.ndarray:
    """``(1 − fidelity)·network + fidelity·photo`` (both ``H×W×3`` in [0, 1])."""
    if not 0.0 <= fidelity <= 1.0:
        raise ValueError(f"fidelity must be in [0, 1], got {fidelity}")
    if fidelity == 0.0:
        return network
    if fidelity == 1.0:
        return photo
    return (1.0 - np.float32(fidelity)) * network + np.float32(fidelity) * photo

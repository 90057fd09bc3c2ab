"""Monochrome tone: keep black-and-white and sepia photos (and their faces) in their own tone.

The restoration networks do not colourise, but a random tint in their output (or in an enhanced face)
would turn a gray photo slightly coloured.  A photo is *monochrome* when its colour is, up to a small
residual, a function of its luma: gray (R = G = B) or toned (sepia, cyanotype, selenium ...).  For such a
photo we store that function as per-channel offsets from luma over luma bins, and re-tone any new image
(restored photo, enhanced face) from its luma alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oldphoto.luma import LUMA, luma  # noqa: F401 - luma is imported from here by the stages

_BINS = 64


@dataclass(frozen=True)
class Tone:
    """Colour as a function of luma: ``c = Y + offsets[c](Y)``; ``offsets`` is None for pure gray."""

    offsets: np.ndarray | None  # _BINS × 3, sampled at bin centres

    @property
    def gray(self) -> bool:
        return self.offsets is None

    def apply(self, y: np.ndarray) -> np.ndarray:
        """``H×W`` luma in [0,1] -> ``H×W×3`` image in this tone."""
        y = np.clip(np.asarray(y, dtype=np.float32), 0.0, 1.0)
        if self.offsets is None:
            return np.repeat(y[..., None], 3, axis=2)
        centres = (np.arange(_BINS, dtype=np.float32) + 0.5) / _BINS
        out = np.empty(y.shape + (3,), dtype=np.float32)
        for c in range(3):
            out[..., c] = y + np.interp(y, centres, self.offsets[:, c]).astype(np.float32)
        return np.clip(out, 0.0, 1.0)


def fit_tone(image: np.ndarray, max_residual: float = 0.005, gray_tolerance: float = 1.5 / 255,
             max_samples: int = 200_000) -> Tone | None:
    """The photo's :class:`Tone`, or None when it is a colour photo.

    ``gray_tolerance``: largest channel difference (95th percentile) still counted as pure gray (8-bit
    scans of gray prints often carry ±1 level of chroma noise).  ``max_residual``: mean absolute
    difference between the photo and its re-toned luma below which the photo counts as toned.  It is
    strict on purpose: a faded colour photo (an autochrome, say) can have a residual of only ~0.009, and
    re-toning it would erase what colour it has; a photo that is not clearly toned keeps its colours.
    """
    pixels = np.asarray(image, dtype=np.float32).reshape(-1, 3)
    if pixels.shape[0] > max_samples:  # a fixed stride keeps the decision deterministic
        pixels = pixels[:: int(np.ceil(pixels.shape[0] / max_samples))]
    spread = pixels.max(axis=1) - pixels.min(axis=1)
    if float(np.percentile(spread, 95)) <= gray_tolerance:
        return Tone(None)
    y = pixels @ LUMA
    bins = np.clip((y * _BINS).astype(np.int64), 0, _BINS - 1)
    counts = np.bincount(bins, minlength=_BINS).astype(np.float64)
    offsets = np.zeros((_BINS, 3), dtype=np.float64)
    filled = counts > 0
    for c in range(3):
        sums = np.bincount(bins, weights=(pixels[:, c] - y).astype(np.float64), minlength=_BINS)
        means = np.where(filled, sums / np.maximum(counts, 1), 0.0)
        # empty bins (luma levels the photo never reaches) take the nearest filled bins' offsets
        idx = np.arange(_BINS)
        offsets[:, c] = np.interp(idx, idx[filled], means[filled])
    tone = Tone(offsets.astype(np.float32))
    residual = float(np.mean(np.abs(tone.apply(y) - pixels)))
    return tone if residual <= max_residual else None

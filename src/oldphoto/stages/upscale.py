"""Enlarging the restored photo ×2 or ×4 (``--upscale``), with the Real-ESRGAN x4plus network.

Not part of the paper: its method restores a photo at the size it has.  A scan of a small print, or a
photo found online at 400 pixels, is often wanted larger (to print, or to look at on a screen), and
enlarging it with an interpolation shows its pixels and blur.  The upscaler (:class:`oldphoto.nets.upscaler.
RRDBNet`, trained by Real-ESRGAN's authors on synthetic blur, resizing, noise and JPEG) draws sharp edges
and clean surfaces at four times the size; ×2 is its ×4 output averaged down (area) by two.

* **Tiles.**  The photo is cut into tiles whose working memory fits the budget (the network needs
  about 3.5 KB per input pixel); each tile takes ``CONTEXT`` pixels of the photo around it as context and
  only its own part of the output is kept, so no seam shows (tiles of 64 px differ from one call by 0.04
  levels of 255 on average, 7 at most: benchmarks/upscale.md).  The context is
  computed twice: at the default budget (2 GiB, tiles of 783 px) a photo costs about 1.3 times its area.
* **The photo's own colours and tone.**  The output keeps the network's luma (BT.601) and takes its
  chroma from the photo enlarged by bicubic interpolation: a black-and-white photo stays exactly gray, a
  sepia one keeps its tone, and the network cannot shift the colours (adding the luma difference to the
  three channels leaves Cb and Cr as they were).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import torch

from oldphoto.luma import luma

__all__ = ["UPSCALE_FACTORS", "CONTEXT", "MIN_TILE", "UpscaleStage"]

UPSCALE_FACTORS = (2, 4)
NETWORK_FACTOR = 4
# input pixels of context around each tile.  The network has no normalisation but a receptive field of
# hundreds of pixels, and a tile's border changes its output far inside: on a crop of the scratched girl,
# tiles with a core of 64 px differ from the whole crop by at most 35 levels (of 255) at 16 px of context, 14
# at 32, 2.5 at 48 (mean 0.04; cross-fading the tiles over their overlap did not help: 33 at 16).  With the
# level correction below, 7 at most on the photo's top-left 256² (benchmarks/bench_upscale.py --seams)
CONTEXT = 48
MIN_TILE = 4 * CONTEXT  # the smallest tile the pipeline uses (half of it context)
# photo pixels over which the output's levels are held to the photo's (a Gaussian's sigma): see _enlarge
LEVEL_SIGMA = 2.0


def _spans(length: int, core: int) -> list[tuple[int, int]]:
    """``[0, length)`` cut into ``ceil(length / core)`` nearly equal spans."""
    n = max(1, math.ceil(length / core))
    edges = [round(i * length / n) for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


class UpscaleStage:
    """``image`` ``H×W×3`` in [0, 1] -> ``fH×fW×3``.

    ``run`` applies the ×4 network to a ``1×3×h×w`` tensor in [-1, 1] (on its device, at its precision);
    ``tile``: the largest input side of one network call, context included; ``progress``, when given, is
    told the fraction of the tiles done after each (on a CPU a megapixel takes minutes)."""

    def __init__(self, run: Callable[[torch.Tensor], torch.Tensor], factor: int, tile: int,
                 context: int = CONTEXT, progress: Callable[[float], None] | None = None) -> None:
        if factor not in UPSCALE_FACTORS:
            raise ValueError(f"upscale factor must be one of {UPSCALE_FACTORS}, got {factor}")
        if tile <= 2 * context:
            raise ValueError(f"upscale tile {tile} leaves nothing inside its {context}-pixel context")
        self.run = run
        self.factor = factor
        self.tile = tile
        self.context = context
        self.progress = progress

    def __call__(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        f, c = self.factor, self.context
        out = np.empty((h * f, w * f, 3), np.float32)
        core = self.tile - 2 * c
        tiles = [(rows, cols) for rows in _spans(h, core) for cols in _spans(w, core)]
        for done, ((y0, y1), (x0, x1)) in enumerate(tiles, 1):
            a0, a1, b0, b1 = max(0, y0 - c), min(h, y1 + c), max(0, x0 - c), min(w, x1 + c)
            big = self._enlarge(image[a0:a1, b0:b1])
            keep = big[(y0 - a0) * f:(y1 - a0) * f, (x0 - b0) * f:(x1 - b0) * f]
            out[y0 * f:y1 * f, x0 * f:x1 * f] = keep
            if self.progress is not None:
                self.progress(done / len(tiles))
        return out

    def _enlarge(self, window: np.ndarray) -> np.ndarray:
        """One window ×``factor``: the network's luma over the bicubic enlargement's chroma."""
        x = torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1)))[None] * 2.0 - 1.0
        y = self.run(x)[0]
        big = ((y.clamp(-1.0, 1.0) + 1.0) * 0.5).permute(1, 2, 0).cpu().numpy()
        h, w = window.shape[:2]
        if self.factor != NETWORK_FACTOR:
            big = cv2.resize(big, (w * self.factor, h * self.factor), interpolation=cv2.INTER_AREA)
        size = (w * self.factor, h * self.factor)
        # the photo's own levels: where the network's output, seen at the photo's size, is lighter or
        # darker than the photo over a few pixels, that difference is added back (noise-free: it is smoothed)
        seen = cv2.resize(luma(big), (w, h), interpolation=cv2.INTER_AREA)
        drift = cv2.GaussianBlur(luma(window) - seen, (0, 0), LEVEL_SIGMA)
        y = luma(big) + cv2.resize(drift, size, interpolation=cv2.INTER_CUBIC)
        # channel by channel: OpenCV's 3-channel bicubic differs between identical channels by 1e-7
        smooth = np.stack([cv2.resize(np.ascontiguousarray(window[..., k]), size,
                                      interpolation=cv2.INTER_CUBIC) for k in range(3)], axis=-1)
        out = smooth + (y - luma(smooth))[..., None]
        return np.clip(out, 0.0, 1.0, out=out)

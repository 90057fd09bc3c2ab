"""Padding to a size multiple, overlapping tiles with seamless blending, tile size from a memory budget.

Every network in the pipeline works on ``N×C×H×W`` tensors whose height and width must be a multiple of
some number (4 for the VAE, 16 for the detector).  Instead of resizing the photo (what the official code
does), we reflect-pad it up to the multiple and crop the result back, so the output has exactly the
input's size.

Photos that do not fit the memory budget run in overlapping tiles.  Each tile's result is weighted by a
raised-cosine ramp that falls towards the tile's *interior* edges (edges on the photo border keep full
weight), and the weighted sum is divided by the summed weights.  Because the weights of neighbouring
tiles cross-fade smoothly over the whole overlap, a small disagreement between two tiles becomes a slow
gradient instead of a visible seam.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from oldphoto.options import parse_memory  # noqa: F401  (re-exported: the notation of --max-memory)


def pad_amounts(size: int, multiple: int) -> int:
    """How many pixels to add after ``size`` to reach the next multiple of ``multiple``."""
    return (-size) % multiple


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect",
                    min_size: int = 64) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``N×C×H×W`` at the bottom/right up to multiples of ``multiple``; returns (padded, (H, W)).

    Sides are also padded to at least ``min_size``: the networks' deepest levels (1/16 of the input for
    the detector) need a few pixels for their own reflection padding.  Reflection needs the pad to be
    smaller than the side; for tiny inputs we fall back to replicating the edge (the padded pixels are
    cropped away afterwards, they only give the convolutions context).
    """
    h, w = x.shape[-2:]
    ph = max(pad_amounts(h, multiple), max(0, min_size - h) + pad_amounts(max(h, min_size), multiple))
    pw = max(pad_amounts(w, multiple), max(0, min_size - w) + pad_amounts(max(w, min_size), multiple))
    if ph == 0 and pw == 0:
        return x, (h, w)
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    padded = F.pad(x, (0, pw, 0, ph), mode=mode) if mode != "constant" else F.pad(x, (0, pw, 0, ph))
    return padded, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple` (crop ``N×C×H×W`` back to ``size``)."""
    return x[..., : size[0], : size[1]]


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` overlap.

    The last tile is aligned to the end, so no tile runs past the border.  Starts are multiples of
    ``multiple`` when ``length`` and ``tile`` are (so every tile stays aligned to the networks' grid).
    """
    if tile >= length:
        return [0]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


def _ramp(n: int, fade_start: bool, fade_end: bool, overlap: int) -> torch.Tensor:
    """1-D weights of length ``n``: raised-cosine fade over ``overlap`` pixels at faded ends, never 0."""
    w = torch.ones(n, dtype=torch.float32)
    if overlap <= 0:
        return w
    k = min(overlap, n)
    # (i + 0.5) / k keeps the outermost weight above zero so every pixel has positive total weight.
    t = (torch.arange(k, dtype=torch.float32) + 0.5) / k
    fade = 0.5 - 0.5 * torch.cos(math.pi * t)
    if fade_start:
        w[:k] = torch.minimum(w[:k], fade)
    if fade_end:
        w[n - k:] = torch.minimum(w[n - k:], fade.flip(0))
    return w


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one image go (all sizes in pixels of the padded input)."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    overlap: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)

    @property
    def tile(self) -> int:
        return max(self.tile_h, self.tile_w)

    def boxes(self) -> list[tuple[int, int, int, int]]:
        """(y0, x0, y1, x1) of every tile, row by row."""
        th, tw = min(self.tile_h, self.height), min(self.tile_w, self.width)
        return [(y, x, y + th, x + tw) for y in self.ys for x in self.xs]

    def weight(self, box: tuple[int, int, int, int]) -> torch.Tensor:
        """``H_t×W_t`` blending weight of one tile (fades only towards neighbouring tiles)."""
        y0, x0, y1, x1 = box
        wy = _ramp(y1 - y0, y0 > 0, y1 < self.height, self.overlap)
        wx = _ramp(x1 - x0, x0 > 0, x1 < self.width, self.overlap)
        return wy[:, None] * wx[None, :]


def balanced_side(length: int, tile: int, overlap: int, multiple: int) -> int:
    """The smallest tile side (a multiple of ``multiple``, at most ``tile``) that covers ``length`` with
    as few tiles as ``tile`` itself does: the tiles share the length evenly instead of the last one
    overlapping its neighbour by most of its size (2048 px in tiles of at most 1236: two of 1088)."""
    if tile >= length:
        return length
    n = len(tile_starts(length, tile, overlap, multiple))
    side = -(-(length + (n - 1) * overlap) // n)
    side = -(-side // multiple) * multiple
    while side < tile and len(tile_starts(length, side, overlap, multiple)) > n:
        side += multiple
    return min(side, tile)


def plan_tiles(height: int, width: int, tile: int, overlap: int, multiple: int) -> TilePlan:
    """Tile layout for a padded ``height×width`` input (both multiples of ``multiple``).

    ``tile`` is the largest side a tile may have (its area, ``tile²``, is what the memory budget
    allows); each axis uses the smallest side that needs no more tiles (:func:`balanced_side`).
    """
    tile = max(multiple, tile // multiple * multiple)
    overlap = min(overlap, tile // 2)
    th = balanced_side(height, tile, overlap, multiple)
    tw = balanced_side(width, tile, overlap, multiple)
    return TilePlan(height, width, th, tw, overlap,
                    tuple(tile_starts(height, th, overlap, multiple)),
                    tuple(tile_starts(width, tw, overlap, multiple)))


def run_tiled(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], plan: TilePlan,
              out_channels: int, scale: int = 1) -> torch.Tensor:
    """Run ``fn(*tiles)`` over the tiles of ``inputs`` (each ``1×C×H×W``) and blend the results.

    ``fn`` must return ``1×out_channels×(h·scale)×(w·scale)`` for tiles of ``h×w``.  The output lives on
    the CPU in float32 (the photo-sized buffers never have to fit on the accelerator), except for a
    single tile, which stays where ``inputs`` are (it fitted there already).
    """
    if plan.count == 1:
        return fn(*inputs).float().to(inputs[0].device)
    out = torch.zeros(1, out_channels, plan.height * scale, plan.width * scale)
    total = torch.zeros(1, 1, plan.height * scale, plan.width * scale)
    for box in plan.boxes():
        y0, x0, y1, x1 = box
        tiles = [t[..., y0:y1, x0:x1] for t in inputs]
        result = fn(*tiles).float().cpu()
        weight = plan.weight(box)
        if scale != 1:
            weight = weight.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
        weight = weight[None, None]
        out[..., y0 * scale:y1 * scale, x0 * scale:x1 * scale] += result * weight
        total[..., y0 * scale:y1 * scale, x0 * scale:x1 * scale] += weight
    return out / total


def tile_side_for_budget(budget_bytes: int, bytes_per_pixel: float, multiple: int,
                         minimum: int = 128, maximum: int = 1 << 15) -> int:
    """Largest square tile side (a multiple of ``multiple``) whose working memory fits ``budget_bytes``."""
    side = int(math.sqrt(max(budget_bytes, 1) / bytes_per_pixel))
    side = side // multiple * multiple
    return max(minimum // multiple * multiple or multiple, min(side, maximum))

"""Textures for synthesis: paper grain (bundled CC0 tiles or procedural), smooth noise, elastic distortion."""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

TEXTURE_DIR = Path(__file__).with_name("textures")

# Colours of aged photographic paper bases (RGB 0–1): white, ivory, cream, buff.
PAPER_COLOURS = np.array([
    [0.96, 0.95, 0.92],
    [0.95, 0.92, 0.84],
    [0.93, 0.88, 0.76],
    [0.90, 0.85, 0.74],
    [0.97, 0.97, 0.97],
], dtype=np.float32)


@functools.lru_cache(maxsize=1)
def paper_tiles(directory: str | None = None) -> tuple[np.ndarray, ...]:
    """Load the bundled paper tiles as zero-mean float32 detail maps (``H×W``, roughly ±0.1).

    Returns an empty tuple when no tile can be read; callers then fall back to procedural paper.
    """
    folder = Path(directory) if directory else TEXTURE_DIR
    tiles = []
    for path in sorted(folder.glob("*.png")):
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            continue
        tiles.append((img.astype(np.float32) - 128.0) / 255.0)
    return tuple(tiles)


def smooth_noise(h: int, w: int, rng: np.random.Generator, scale: float, channels: int = 0) -> np.ndarray:
    """Band-limited noise in about [-1, 1]: a random grid of cell size ``scale`` px, bicubic-upsampled."""
    gh = max(2, int(np.ceil(h / scale)) + 2)
    gw = max(2, int(np.ceil(w / scale)) + 2)
    shape = (gh, gw) if channels == 0 else (gh, gw, channels)
    grid = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    big = cv2.resize(grid, (int((gw - 1) * scale), int((gh - 1) * scale)), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[:h, :w])


def fractal_noise(h: int, w: int, rng: np.random.Generator, base_scale: float,
                  octaves: int = 4) -> np.ndarray:
    """Sum of smooth-noise octaves (1/f-like), normalised to about unit standard deviation."""
    out = np.zeros((h, w), np.float32)
    amp, scale = 1.0, base_scale
    for _ in range(octaves):
        out += np.float32(amp) * smooth_noise(h, w, rng, max(scale, 1.0))
        amp *= 0.5
        scale /= 2.0
    return out / max(float(out.std()), 1e-6)


def procedural_paper_detail(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Paper grain without tiles: fine fractal noise plus faint fibres (zero mean, about ±0.1)."""
    detail = fractal_noise(h, w, rng, base_scale=rng.uniform(6, 16), octaves=3) * 0.03
    detail += rng.standard_normal((h, w), dtype=np.float32) * np.float32(0.012)
    return cv2.GaussianBlur(detail, (0, 0), 0.6)


def paper_detail(h: int, w: int, rng: np.random.Generator, use_tiles: bool = True) -> np.ndarray:
    """A random ``H×W`` crop of a (wrapped, possibly rotated/rescaled) paper tile, zero-mean detail."""
    tiles = paper_tiles() if use_tiles else ()
    if not tiles:
        return procedural_paper_detail(h, w, rng)
    tile = tiles[int(rng.integers(len(tiles)))]
    zoom = float(rng.uniform(0.5, 1.0))  # textures were scanned at high res; shrink to print scale
    if zoom != 1.0:
        tile = cv2.resize(tile, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_AREA)
    k = int(rng.integers(4))
    tile = np.rot90(tile, k)
    th, tw = tile.shape
    y0, x0 = int(rng.integers(th)), int(rng.integers(tw))
    reps = (int(np.ceil((h + y0) / th)), int(np.ceil((w + x0) / tw)))
    big = np.tile(tile, reps)
    return np.ascontiguousarray(big[y0:y0 + h, x0:x0 + w]) * np.float32(rng.uniform(0.5, 1.0))


def paper(h: int, w: int, rng: np.random.Generator, use_tiles: bool = True) -> np.ndarray:
    """An ``H×W×3`` aged paper surface: a paper-base colour modulated by grain and slow stains."""
    colour = PAPER_COLOURS[int(rng.integers(len(PAPER_COLOURS)))]
    colour = colour * np.float32(rng.uniform(0.92, 1.02))
    grain = paper_detail(h, w, rng, use_tiles)
    stain = smooth_noise(h, w, rng, scale=max(h, w) / 3.0) * np.float32(0.03)
    out = colour[None, None, :] * (1.0 + grain + stain)[:, :, None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def elastic_maps(h: int, w: int, rng: np.random.Generator, alpha: float, sigma: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Coordinate maps for ``cv2.remap``: identity plus a smooth displacement of about ``alpha`` px."""
    dx = smooth_noise(h, w, rng, scale=sigma) * np.float32(alpha)
    dy = smooth_noise(h, w, rng, scale=sigma) * np.float32(alpha)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs + dx, ys + dy


def elastic(layer: np.ndarray, rng: np.random.Generator, alpha: float = 3.0,
            sigma: float = 24.0) -> np.ndarray:
    """Elastic distortion (smooth random warp) of a texture layer, as the paper does for scratch textures."""
    h, w = layer.shape[:2]
    mx, my = elastic_maps(h, w, rng, alpha, sigma)
    return cv2.remap(layer, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)

"""Small pictures the web page shows: before and after as 8-bit sRGB JPEGs (any input format, TIFF,
16-bit and CMYK included, is shown by every browser this way) and the repaired areas as a transparent
overlay.  They are for looking only; downloads are the files ``oldphoto restore`` would write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from oldphoto.io import atomic_write

PREVIEW_SIDE = 1600  # long side of the previews: sharp on a laptop screen, a few hundred kB each
OVERLAY_RGBA = (255, 40, 40, 200)  # repaired areas: red, mostly opaque, on transparent


def preview_size(width: int, height: int, side: int = PREVIEW_SIDE) -> tuple[int, int]:
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def write_preview(path: Path, pixels: np.ndarray, side: int = PREVIEW_SIDE) -> None:
    """``pixels``: float sRGB H×W×3 in [0, 1] (what the restorer saw, or its result)."""
    rgb = np.rint(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB")
    size = preview_size(image.width, image.height, side)
    if size != image.size:
        image = image.resize(size, Image.LANCZOS)
    atomic_write(path, lambda tmp: image.save(tmp, format="JPEG", quality=90))


def write_overlay(path: Path, mask: np.ndarray | None, size: tuple[int, int],
                  side: int = PREVIEW_SIDE) -> None:
    """The repaired areas (``mask`` bool H×W, None = nothing repaired) as an RGBA PNG of the previews'
    size.  Downscaling keeps every repaired pixel visible: a preview pixel is marked when any photo
    pixel under it was repaired (a one-pixel scratch must not vanish from a reduced view)."""
    width, height = size
    target = preview_size(width, height, side)
    if mask is None:
        marked = np.zeros((target[1], target[0]), bool)
    else:
        gray = Image.fromarray(mask.astype(np.uint8) * 255, "L")
        if gray.size != target:
            gray = gray.resize(target, Image.BOX)
        marked = np.asarray(gray) > 0
    rgba = np.zeros((*marked.shape, 4), np.uint8)
    rgba[marked] = OVERLAY_RGBA
    atomic_write(path, lambda tmp: Image.fromarray(rgba, "RGBA").save(tmp, format="PNG"))

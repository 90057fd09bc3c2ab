"""Pictures the web page shows: before and after as 8-bit sRGB JPEGs (any input format, TIFF, 16-bit
and CMYK included, is shown by every browser this way) and the repaired areas as a transparent overlay;
for the page's 100 % view the same at the photo's full size, as lossless 8-bit PNGs (JPEG artefacts
would be what a look at 100 % finds).  They are for looking only; downloads are the files
``oldphoto restore`` would write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from oldphoto.files import atomic_write_bytes
from oldphoto.io.photo import pillow_bytes

PREVIEW_SIDE = 1600  # long side of the previews: sharp on a laptop screen, a few hundred kB each
OVERLAY_RGBA = (255, 40, 40, 200)  # repaired areas: red, mostly opaque, on transparent
# Largest photo the 100 % view is made for: its full-size pictures take a float copy of the photo while
# they are made (12 bytes a pixel) and tens of MB each as PNG, which the browser decodes again.
FULL_VIEW_PIXELS = 40_000_000


def to_8bit(pixels: np.ndarray) -> np.ndarray:
    """Float sRGB in [0, 1] as 8-bit samples (a 16-bit photo is shown as 8-bit: browsers show no more).
    In bands of rows, so that a large photo gets no float temporaries of its own size."""
    out = np.empty(pixels.shape, np.uint8)
    for top in range(0, pixels.shape[0], 512):
        out[top:top + 512] = np.rint(np.clip(pixels[top:top + 512], 0.0, 1.0) * 255.0)
    return out


def preview_size(width: int, height: int, side: int = PREVIEW_SIDE) -> tuple[int, int]:
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def write_preview(path: Path, pixels: np.ndarray, side: int = PREVIEW_SIDE) -> None:
    """``pixels``: float sRGB H×W×3 in [0, 1] (what the restorer saw, or its result)."""
    image = Image.fromarray(to_8bit(pixels), "RGB")
    size = preview_size(image.width, image.height, side)
    if size != image.size:
        image = image.resize(size, Image.LANCZOS)
    atomic_write_bytes(path, pillow_bytes(image, "JPEG", quality=90))


def write_full(path: Path, pixels: np.ndarray) -> None:
    """``pixels`` (float sRGB H×W×3 in [0, 1]) at full size as an 8-bit PNG, for the 100 % view.  Fast
    compression: it is made while its user waits, and travels to a browser on the same machine or network."""
    image = Image.fromarray(to_8bit(pixels), "RGB")
    atomic_write_bytes(path, pillow_bytes(image, "PNG", compress_level=1))


def write_overlay(path: Path, mask: np.ndarray | None, size: tuple[int, int],
                  side: int | None = PREVIEW_SIDE) -> None:
    """The repaired areas (``mask`` bool H×W, None = nothing repaired) as an RGBA PNG of the previews'
    size (``side`` None: of the photo's size).  Downscaling keeps every repaired pixel visible: a
    preview pixel is marked when any photo pixel under it was repaired (a one-pixel scratch must not
    vanish from a reduced view)."""
    width, height = size
    target = size if side is None else preview_size(width, height, side)
    if mask is None:
        marked = np.zeros((target[1], target[0]), bool)
    else:
        gray = Image.fromarray(mask.astype(np.uint8) * 255, "L")
        if gray.size != target:
            gray = gray.resize(target, Image.BOX)
        marked = np.asarray(gray) > 0
    rgba = np.zeros((*marked.shape, 4), np.uint8)
    rgba[marked] = OVERLAY_RGBA
    atomic_write_bytes(path, pillow_bytes(Image.fromarray(rgba, "RGBA"), "PNG"))

"""Defects marked by hand on the page: what the detector missed, and what it should have left alone.

The page paints over the photo on a canvas of the photo's size, at most 4096 pixels long, and sends a
gray image of that size: white where the user marked a defect, black where they unmarked one, any middle
gray where the restoration's own mask stands.  It is enlarged to the photo's size (nearest neighbour:
marks stay marks) and applied to the mask the last restoration repaired; the photo is then restored
again with that mask as its user mask (``oldphoto restore --mask-dir``), repaired as given.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from oldphoto.io._warnings import guarded_warnings
from oldphoto.masks import MAX_MARKED_SHARE, marked_share

MARK_DEFECT = 192   # marks at or above this level: a defect
MARK_CLEAN = 64     # marks below this level: not a defect
MARKS_MAX_PIXELS = 4096 * 4096  # the page's largest canvas; this only stops an absurd upload
ASPECT_TOLERANCE = 0.02  # the marks' width/height against the photo's (previews are rounded to pixels)


class MarksError(ValueError):
    """Marks that cannot be used (the message says why)."""


def read_marks(data: bytes, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(marked, unmarked): bool ``H×W`` masks at the photo's ``size`` (width, height) from the page's
    marks image, which has the photo's shape at any scale."""
    try:
        with guarded_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MARKS_MAX_PIXELS:
                    raise MarksError(f"the marks image has {image.width}x{image.height} pixels: too many")
                gray = image.convert("L")
    except MarksError:
        raise
    except UnidentifiedImageError:  # (Pillow's message names a memory buffer: nothing for a user)
        raise MarksError("the marks are not an image (a PNG was expected)") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise MarksError("the marks image has too many pixels") from None
    except Exception as exc:  # an image whose data is cut short or broken
        raise MarksError(f"the marks image cannot be read ({exc}); a whole PNG was expected") from None
    width, height = size
    if abs(gray.width / gray.height - width / height) > ASPECT_TOLERANCE * width / height:
        raise MarksError(f"the marks are {gray.width}x{gray.height}, not the shape of the photo "
                         f"({width}x{height})")
    levels = np.asarray(gray.resize((width, height), Image.NEAREST))
    return levels >= MARK_DEFECT, levels < MARK_CLEAN


def apply_marks(repaired: np.ndarray | None, data: bytes, size: tuple[int, int]) -> np.ndarray:
    """The mask to repair next: the last restoration's (``repaired``, None for nothing) with the
    defects the user marked added and those they unmarked taken away."""
    marked, unmarked = read_marks(data, size)
    base = np.zeros_like(marked) if repaired is None else repaired
    mask = (base | marked) & ~unmarked
    share = marked_share(mask)
    if share > MAX_MARKED_SHARE:  # (the restorer would refuse it: said here in the page's words)
        raise MarksError(f"the marks cover {100 * share:.0f} % of the photo; at most "
                         f"{100 * MAX_MARKED_SHARE:.0f} % can be repaired, since a repair is made from the "
                         "photo around it")
    return mask

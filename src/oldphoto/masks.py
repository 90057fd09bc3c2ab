"""Defect masks given by a person (``--mask-dir`` files, the web page's marks, the API's ``mask``): one
reading for all of them; and growing a mask (:func:`dilate`).  Numpy only until a mask is grown: the
command line reads mask files without loading OpenCV or torch."""

from __future__ import annotations

import numpy as np

# The largest share of a photo a person's mask may mark: a fill is made from the photo around it, and a
# mask marking more is far more likely inverted (black defects on white: a 3 % scratch mask marks 97 %)
# than a photo to be repainted almost whole.
MAX_MARKED_SHARE = 0.75


def user_mask(mask: np.ndarray, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """A user-supplied mask (bool, integer 0/255 or float [0,1]; gray, RGB or RGBA) -> bool ``H×W``.

    White (or True) = defect, and so is a mark in any light colour (its brightest channel is read: a
    red brush on black marks, in a file as in an array).  The mask must have the photo's size: a mask
    for another photo is far more likely than one that merely needs scaling, so a mismatch is an error.
    """
    m = np.asarray(mask)
    where = "" if name == "mask" else f"{name}: "  # (a file's name; the API's array is just "mask")
    if m.ndim == 3:
        m = m[..., :3].max(axis=2) if m.shape[2] >= 3 else m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"{where}expected a 2-D mask, got shape {np.shape(mask)}")
    if m.shape != tuple(shape):
        raise ValueError(f"{where}mask is {m.shape[1]}×{m.shape[0]} pixels but the photo is "
                         f"{shape[1]}×{shape[0]}")
    if m.dtype == bool:
        return m.copy()
    if np.issubdtype(m.dtype, np.integer):
        # 0/1, 8-bit 0/255, or a 16-bit mask's own range (its faint values are no defect)
        peak = int(m.max())
        top = 1 if peak <= 1 else 255 if peak <= 255 else np.iinfo(m.dtype).max
        return m >= (top + 1) / 2
    if not np.isfinite(m).all():  # NaN compares False: silently "no defect" where the mask says nothing
        raise ValueError(f"{where}mask contains NaN or infinite values")
    return m >= 0.5


def marked_share(mask: np.ndarray) -> float:
    """The share of a bool mask's pixels marked (0 for an empty mask)."""
    return float(np.count_nonzero(mask)) / max(mask.size, 1)


def check_marked_share(mask: np.ndarray, what: str = "the photo") -> None:
    """Refuse a bool user mask that marks more than ``MAX_MARKED_SHARE`` of the photo (its repair would
    paint the photo over from the little left of it); ``what``: the part of the scan it covers, named in
    the message (one print of several on a page)."""
    share = marked_share(mask)
    if share > MAX_MARKED_SHARE:
        raise ValueError(f"the mask marks {100 * share:.0f} % of {what} as damaged (white marks a defect, "
                         f"black keeps the photo): is it inverted?  At most {100 * MAX_MARKED_SHARE:.0f} % "
                         "can be repaired, since a repair is made from the photo around it")


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a boolean mask by a disk of ``radius`` pixels (0 = unchanged)."""
    if radius <= 0:
        return mask
    import cv2

    k = 2 * radius + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def dilate_official(mask: np.ndarray) -> np.ndarray:
    """HR-mode dilation of the official test.py: 3×3 square kernel, 3 iterations."""
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=3) > 0

"""Defect masks given by a person (``--mask-dir`` files, the web page's marks, the API's ``mask``): one
reading for all of them.  Numpy only: the command line reads mask files without loading torch."""

from __future__ import annotations

import numpy as np


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

"""Local repair: the networks' inpainting replaces pixels only on the defects, nowhere else.

The scratch (or HR) path re-renders the whole image it is given, and with anything weaker than perfect
weights that softens the whole photo for the sake of a few scratches.  Here it runs only on windows
around the defects (each defect's bounding box grown by ``context`` pixels, overlapping windows merged),
and its output is blended in through the defect mask, grown by ``grow`` pixels (the detector marks the
core of a scratch, its soft edge is a few pixels wider) and feathered over ``feather`` pixels so that no
edge of the repair shows.  Everywhere else the photo keeps the base restoration (see
:mod:`oldphoto.stages.fidelity`).  A photo with a few specks of dust costs a few small network calls.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

# Repair weight: the mask grown by GROW px is fully repaired, then the weight falls to 0 over FEATHER px.
GROW = 2
FEATHER = 2.0
CONTEXT = 48  # px of undamaged surroundings the inpainting network sees around each defect
MIN_WINDOW = 96  # px; smaller windows give instance normalisation too few pixels

Box = tuple[int, int, int, int]  # y0, x0, y1, x1 (end exclusive)


def repair_weight(mask: np.ndarray, grow: int = GROW, feather: float = FEATHER) -> np.ndarray:
    """Float32 ``H×W`` in [0, 1]: 1 on the defects grown by ``grow`` px, falling smoothly to 0 outside."""
    m = mask.astype(np.uint8)
    if grow > 0:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    core = m.astype(np.float32)
    if feather <= 0:
        return core
    # blur the grown mask and keep the core at 1: the ramp lies outside the grown mask only
    k = 2 * int(np.ceil(3 * feather)) + 1
    soft = cv2.GaussianBlur(core, (k, k), feather, borderType=cv2.BORDER_REPLICATE) * 2.0
    return np.clip(np.maximum(core, soft), 0.0, 1.0)


def reach(grow: int = GROW, feather: float = FEATHER) -> int:
    """How far (px) from a defect :func:`repair_weight` can be non-zero."""
    return grow + int(np.ceil(3 * feather))


def windows(mask: np.ndarray, context: int = CONTEXT, min_side: int = MIN_WINDOW) -> list[Box]:
    """Windows covering every defect with ``context`` px around it; overlapping windows are merged, so
    no two windows overlap.  A large merged window is kept whole: the restore stage tiles it."""
    h, w = mask.shape
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes: list[Box] = []
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        boxes.append(_grown((y, x, y + bh, x + bw), context, min_side, h, w))
    return _merge(boxes)


def _grown(box: Box, context: int, min_side: int, h: int, w: int) -> Box:
    y0, x0, y1, x1 = box
    y0, x0, y1, x1 = y0 - context, x0 - context, y1 + context, x1 + context
    # at least min_side on each axis (centred), then clipped to the photo
    for lo, hi, limit, axis in ((y0, y1, h, 0), (x0, x1, w, 1)):
        short = min_side - (hi - lo)
        if short > 0:
            lo, hi = lo - short // 2, hi + short - short // 2
        lo, hi = max(0, lo), min(limit, hi)
        if axis == 0:
            y0, y1 = lo, hi
        else:
            x0, x1 = lo, hi
    return y0, x0, y1, x1


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _merge(boxes: list[Box]) -> list[Box]:
    """Union overlapping boxes until none overlap (their union may overlap a third: repeat)."""
    boxes = sorted(boxes)
    changed = True
    while changed:
        changed = False
        out: list[Box] = []
        for box in boxes:
            for k, other in enumerate(out):
                if _overlap(box, other):
                    out[k] = (min(box[0], other[0]), min(box[1], other[1]),
                              max(box[2], other[2]), max(box[3], other[3]))
                    changed = True
                    break
            else:
                out.append(box)
        boxes = sorted(out)
    return boxes


def repair(base: np.ndarray, photo: np.ndarray, mask: np.ndarray,
           inpaint: Callable[[np.ndarray, np.ndarray], np.ndarray],
           context: int = CONTEXT, grow: int = GROW, feather: float = FEATHER) -> np.ndarray:
    """``base`` with the defects of ``photo`` repaired by ``inpaint(window, window_mask)``.

    Args:
        base: ``H×W×3`` float32, what the photo looks like away from the defects.
        photo: ``H×W×3`` float32, the input photo (what the inpainting network sees).
        mask: ``H×W`` bool, True = defect.
        inpaint: restores a window of the photo given its defect mask (same size in and out).
    Returns a new ``H×W×3`` float32 array; pixels farther than :func:`reach` from the mask equal ``base``.
    """
    out = np.array(base, dtype=np.float32, copy=True)
    if not mask.any():
        return out
    margin = reach(grow, feather)
    grown = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))) > 0
    for y0, x0, y1, x1 in windows(grown, max(context - margin, 0)):
        m = mask[y0:y1, x0:x1]
        if not m.any():
            continue
        fixed = inpaint(photo[y0:y1, x0:x1], m)
        alpha = repair_weight(m, grow, feather)[..., None]
        window = out[y0:y1, x0:x1]
        window += alpha * (fixed - window)
    return out

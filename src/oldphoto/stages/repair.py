"""Local repair: the networks' inpainting replaces pixels only on the defects, nowhere else.

The scratch (or HR) path re-renders the whole image it is given, and with anything weaker than perfect
weights that softens the whole photo for the sake of a few scratches.  Here it runs only on windows
around the defects (each defect's bounding box grown by ``context`` pixels, nearby windows merged when cheap),
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


def regions(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, stats) of the 8-connected regions of ``mask`` (OpenCV's layout; label 0 = background)."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return labels, stats


def windows(stats: np.ndarray, shape: tuple[int, int], context: int = CONTEXT, min_side: int = MIN_WINDOW
            ) -> list[tuple[Box, list[int]]]:
    """Windows covering every region (``stats`` of :func:`regions`) with ``context`` px around it.

    Returns ``(box, labels)`` pairs: the labels of the regions each window repairs; every region belongs
    to exactly one window (windows may overlap).  Windows are merged only when that costs little (their
    union not much larger than the two, and small), so that scattered dust does not turn into one window
    over the whole photo: the inpainting cost grows faster than the area.
    """
    h, w = shape
    n = len(stats)
    groups = []
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        groups.append((_grown((y, x, y + bh, x + bw), context, min_side, h, w), [i]))
    return _merge(groups)


def _grown(box: Box, context: int, min_side: int, h: int, w: int) -> Box:
    y0, x0, y1, x1 = box
    y0, x0, y1, x1 = y0 - context, x0 - context, y1 + context, x1 + context
    # at least min_side on each axis (centred, shifted back inside at the borders), within the photo
    for lo, hi, limit, axis in ((y0, y1, h, 0), (x0, x1, w, 1)):
        short = min_side - (hi - lo)
        if short > 0:
            lo, hi = lo - short // 2, hi + short - short // 2
            shift = max(0, -lo) - max(0, hi - limit)
            lo, hi = lo + shift, hi + shift
        lo, hi = max(0, lo), min(limit, hi)
        if axis == 0:
            y0, y1 = lo, hi
        else:
            x0, x1 = lo, hi
    return y0, x0, y1, x1


def _area(b: Box) -> int:
    return (b[2] - b[0]) * (b[3] - b[1])


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


MERGE_SLACK = 1.25  # merge two windows when their union is at most this much larger than both together
# ... and no larger than this (px) on either side: the inpainting's attention costs the square of a
# window's area, so many small windows are far cheaper than one that merged them
MERGE_MAX_SIDE = 256


def _merge(groups: list[tuple[Box, list[int]]]) -> list[tuple[Box, list[int]]]:
    groups = sorted(groups)
    changed = True
    while changed:
        changed = False
        out: list[tuple[Box, list[int]]] = []
        for box, labels in groups:
            for k, (other, other_labels) in enumerate(out):
                union = _union(box, other)
                small = max(union[2] - union[0], union[3] - union[1]) <= MERGE_MAX_SIDE
                if small and _area(union) <= MERGE_SLACK * (_area(box) + _area(other)):
                    out[k] = (union, other_labels + labels)
                    changed = True
                    break
            else:
                out.append((box, labels))
        groups = sorted(out)
    return groups


def repair(base: np.ndarray, photo: np.ndarray, mask: np.ndarray,
           inpaint: Callable[[list[np.ndarray], list[np.ndarray]], list[np.ndarray]],
           context: int = CONTEXT, grow: int = GROW, feather: float = FEATHER) -> np.ndarray:
    """``base`` with the defects of ``photo`` repaired by ``inpaint(windows, window_masks)``.

    Args:
        base: ``H×W×3`` float32, what the photo looks like away from the defects.
        photo: ``H×W×3`` float32, the input photo (what the inpainting network sees).
        mask: ``H×W`` bool, True = defect.
        inpaint: restores windows of the photo given their defect masks (one call for all windows, so
            that it can batch them; same sizes out as in).
    Returns a new ``H×W×3`` float32 array; pixels farther than :func:`reach` from the mask equal ``base``.
    Defects closer than that to each other are repaired together, so no pixel is blended twice; every
    defect inside a window is masked for the network, also those another window repairs.
    """
    out = np.array(base, dtype=np.float32, copy=True)
    if not mask.any():
        return out
    margin = reach(grow, feather)
    grown = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1)))
    labels, stats = regions(grown)
    groups = windows(stats, mask.shape, max(context - margin, 0))
    boxes = [box for box, _ in groups]
    fixed = inpaint([photo[y0:y1, x0:x1] for y0, x0, y1, x1 in boxes],
                    [mask[y0:y1, x0:x1] for y0, x0, y1, x1 in boxes])
    for ((y0, x0, y1, x1), own), result in zip(groups, fixed, strict=True):
        m = mask[y0:y1, x0:x1]
        alpha = repair_weight(m & np.isin(labels[y0:y1, x0:x1], own), grow, feather)[..., None]
        window = out[y0:y1, x0:x1]
        window += alpha * (result - window)
    return out

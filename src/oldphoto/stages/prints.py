"""Where the picture lies on a scan: a print on a plain surround (a wide white border, an album page,
the scanner's bed), several prints on one page, and the picture inside a print's own plain frame.

A scratched print judged with its surround was measured in the whole scan's short sides and seen
scaled down with it, so ``--scratches auto`` left it; and a fill at the print's edge took in the page.
The pipeline therefore restores each print found here as if it had been cropped, and leaves the
surround as scanned (:meth:`oldphoto.modes.DefaultMode.stage1`, :meth:`oldphoto.pipeline.Restorer.detect`);
``--unfade`` stretches each picture by its own levels (:func:`pictures`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

# A print scanned with a wide white border around it, or photographed lying on an album page or on the
# scanner's bed, had its strokes measured in short sides of the whole scan, and the detector saw it
# scaled down with the scan: the scratched girl with a border of a fifth of her sides each way, on a
# dark album page or on a light gray bed read 0.22-0.44 short sides (1.04 cropped), and `auto` left her
# without a word (under NOTE_STROKE_LENGTH).  When the scan's frame is a plain surround, the print is
# therefore judged as if it had been cropped (Restorer.detect): the surround is the part of the scan
# within SURROUND_TOLERANCE (luma, smoothed by a median of SURROUND_MEDIAN px, which takes a page's
# grain away and keeps the print's edge where it is) of the median of the scan's outermost pixels and
# connected to them; the print is the largest region left.  It must not touch the scan's frame (a
# plain sky or backdrop that meets the frame has the scene on the other sides), must fill
# PRINT_MIN_FILL of its rotated bounding rectangle (a print is a rectangle, skewed or not; a disc fills
# 0.79 of its square, a person on a plain backdrop less; the scratched girl on a dark page, her dark
# sweater merging with it, 0.87) and cover PRINT_AREA of the scan (a surround of under a tenth of the
# scan changes the measure little; a "print" under 30 % is more likely a thing on a plain background).
# None of the seven real photos nor of the corpus' 438 clean photos and gray copies at 1024 px (train
# and held-out) has such a surround: they are judged as before.  A print lying askew is cropped to its
# bounding box, whose sides are not the print's edge: the FRAME and CORNER rules read the distances and
# directions from the print's own rotated rectangle (PrintOnSurround.frame) instead.  Without it, the
# scratched girl turned by 2 degrees on a dark page had her curled left border and bottom-left corner
# filled as cracks (a dark smear, her border cut off), which upright they are not.
SURROUND_TOLERANCE = 0.06
# A print whose dark parts are of a dark page's tone runs into the page within SURROUND_TOLERANCE: the
# scratched girl on a black album page of luma 0.13 lost her sweater, hair and curtain to it (what was
# left filled half of its rectangle; 0.22 short sides, left by auto; 1.04 cropped).  When no print is
# found so and the scan's outermost pixels lie within SURROUND_TIGHT of their median (all but
# SURROUND_RING_OFF of them: a plain page all around, as a grained album page is, whose outermost pixels
# spread 3-4 levels either way after the median), the surround is looked for again within SURROUND_TIGHT
# and what is left must pass the same tests.  The girl is then found on pages of luma 0.08-0.13 and 0.2
# turned 0-3 degrees (not at 0.15-0.17, where her curtain and hair are of the page's tone to within
# 0.02); a soft shadow below the print is then taken with it (5-11 px on those sides).  A page lit
# unevenly, or a scene's own frame, spreads wider and is left to the first pass.
SURROUND_TIGHT = 0.02
SURROUND_RING_OFF = 0.02
SURROUND_MEDIAN = 5
# the scan, and the print found on it, are at least this many px a side: the print is restored on its own,
# and a 6-px-high print on a 40×16 scan failed as "too small to restore" with a size never given
SURROUND_MIN_SIDE = 16
PRINT_MIN_FILL = 0.85
PRINT_AREA = (0.3, 0.9)
# and nothing else on the surround, outside the print's box, may cover more than PRINT_ALONE of the
# scan: a page holding two prints side by side (or a stereo card) had only the larger one judged and
# repaired, the other left with its scratches even with `--scratches on`; such a scan is judged whole,
# as before.  A caption, a corner mount or a stain on the page is smaller
PRINT_ALONE = 0.02
# except a strip across the whole scan along one of its sides, under LID_EDGE of the scan across: the
# lid's dark edge or the bed's frame beyond the glass, scanned with the bed (the girl on the bed, the
# lid's edge along the top: judged whole, 0.39-0.46 short sides, left)
LID_EDGE = 0.05
# Two prints or more on one plain surround (an album page, a photo-booth strip, a stereo card, a contact
# sheet) were judged and restored as one photo: a crack at the edge of one frame of a photo-booth strip
# was filled across it into the white gap (38 px of it changed, by up to 80 levels), the girl's curled
# border on an album page with `--scratches on` into her white mount (up to 110 levels), and each print's
# evidence was measured in the whole scan's short sides.  Each print is now restored as if it had been
# scanned alone (DefaultMode.stage1), the surround left as scanned, when every print lies apart from the
# frame and from the others, is an upright rectangle (fills PRINTS_MIN_SHARE of its box; a print lying
# askew is judged with the scan, as before) and covers more than PRINT_ALONE of the scan, the prints
# together PRINT_AREA of it.
PRINTS_MIN_SHARE = 0.95


# A print pushed into a corner of the scan, or against one side of it (a print on the scanner's bed in
# its corner, an album page whose print runs off one side), touches the frame, so it was never found: the
# whole scan was judged and `auto` left the scratched girl pushed into a corner of a white border, a
# dark page or the bed, or against one side (0.39-0.56 short sides; 1.04 cropped).  The surround is
# then read from the sides of the frame that are plain: those whose outermost pixels lie within
# SURROUND_TOLERANCE of their own median (all but SURROUND_RING_OFF of them), and of the median of those
# sides together.  When two or
# three sides are so, and the others are one side or two that meet in a corner, the surround is looked for
# from the plain sides alone and the print is the largest region left, under the same rules as above; it
# must reach the frame on exactly the other sides, and there hold PRINT_AT_EDGE of the outermost pixels
# along its box (its picture runs off the scan there: the prints pushed into a corner in
# scripts/measure_surround.py hold 0.94-1.0; a print turned by 2 degrees that touches the frame with one
# corner, the page showing in a wedge beside it, 0.66-0.69, and is judged with the scan).  A plain sky
# along one side leaves the scene on three, black bars above and below it on two opposite sides: neither
# is taken for a print.  When the plain sides lie within SURROUND_TIGHT, a second look as on a dark page
# follows.  The frame and corner rules read the print's edge from its box, whose touched sides are the
# scan's frame, as for a photo on its own (a print cut by the frame has no rotated rectangle of its own).
PRINT_AT_EDGE = 0.9
# A print lying a degree or two askew on the bed or a page, pushed up to a side of the scan, meets
# the frame with a corner only (the surround in a wedge beside it) and runs off the scan there by a
# few pixels: it touched the frame and was not found (the scratched girl turned by 2 degrees, a corner
# 3 px off the left side of a dark page: judged whole, 0.45 short sides, left).  The print may
# therefore meet the frame, on the sides where the surround is, over at most PRINT_CORNER_OFF of its
# box's side there (a corner cut off by the frame: an upright print meets it all along, a scene's
# plain backdrop leaves it wider); it is read by its rotated rectangle, part of which lies beyond the
# scan.
PRINT_CORNER_OFF = 0.3
CORNERS = (frozenset((0, 2)), frozenset((0, 3)), frozenset((1, 2)), frozenset((1, 3)))

# A print on the scanner's bed casts a soft shadow along one or two of its sides (the lid's, or the
# print's own thickness): a ramp from the bed's tone down to its darkest at the print's edge.  Only
# its outer part lies within SURROUND_TOLERANCE of the bed; the rest joined the print, whose box grew
# by it (the scratched girl on the bed by 8 px below and right: 0.92 short sides, left; 1.04 cropped).
# The box's sides on the surround are therefore peeled of the shadow's lines, a line at a time on each
# side (shadows below and right of the print take each other's corner off the lines along them): each
# plain along the side (SHADOW_PLAIN of its pixels within SURROUND_TIGHT of its median, its ends left
# out: the shadow fades there) and darker than the line outside it (the surround's tone for the
# outermost) by at most SHADOW_STEP (a ramp: a print's own plain border, black or white, steps away
# from the bed at once, and a plain sky in the print is no ramp), up to SHADOW_MAX of the box's short
# side, and two lines at least (one alone may be the print's own edge, as the girl's dark border on a
# page of luma 0.2 is).  A print's lines are rarely plain from end to end; one that is, dark and
# getting darker inward by the line, would lose at most SHADOW_MAX to the surround, left as scanned.
SHADOW_PLAIN = 0.9
SHADOW_STEP = 0.15
SHADOW_MAX = 0.1

Frame = tuple[float, float, float, float, float]  # a rotated rectangle: centre x, y, width, height, tilt°


class PrintOnSurround(NamedTuple):
    """Where a print lies on a scan: its bounding ``box`` (rows, columns), and its edge (a rectangle in
    the box's coordinates) when it lies askew (None: the box's sides are its edge)."""

    box: tuple[slice, slice]
    frame: Frame | None


def print_on_surround(gray: np.ndarray) -> PrintOnSurround | None:
    """Where the print lies when the scan (luma ``gray``, H×W in [0, 1]) holds one on a plain surround,
    else None: see :data:`SURROUND_TOLERANCE` and :data:`SURROUND_TIGHT`."""
    h, w = gray.shape
    if min(h, w) < SURROUND_MIN_SIDE:
        return None
    # a median keeps the print's edge where it is (a blur would spread it into the surround)
    smooth = cv2.medianBlur(_levels(gray), SURROUND_MEDIAN)
    # compared in 8-bit levels (a float copy of a 28-megapixel scan took a second)
    ground = float(np.median(np.concatenate(_frame_sides(smooth))))
    found = _print_looked_for(smooth, ground, (0, 1, 2, 3))
    if found is None:
        found = _print_at_edge(smooth)
    return found


def _levels(gray: np.ndarray) -> np.ndarray:
    """Luma in [0, 1] as 8-bit levels, rounded, in one pass (clipping, scaling and rounding in numpy
    took 0.66 s on a 35 MP scan)."""
    return cv2.convertScaleAbs(np.ascontiguousarray(gray, np.float32), alpha=255.0)


def _print_looked_for(smooth: np.ndarray, ground: float, seeds: tuple[int, ...]) -> PrintOnSurround | None:
    """The print on the surround of ``ground``'s tone connected to the frame's sides ``seeds`` (top,
    bottom, left, right): within ``SURROUND_TOLERANCE``, else, when those sides are plain to within
    ``SURROUND_TIGHT``, within that (a print whose dark parts run into a dark page), or None."""
    found = _print_within(smooth, ground, SURROUND_TOLERANCE * 255, seeds)
    outermost = np.concatenate([_frame_sides(smooth)[i] for i in seeds])
    if found is None and _plain_ring(outermost, ground, SURROUND_TIGHT * 255):
        found = _print_within(smooth, ground, SURROUND_TIGHT * 255, seeds)
    return found


def _frame_sides(smooth: np.ndarray) -> list[np.ndarray]:
    """The scan's outermost pixels, side by side: top, bottom, left, right."""
    return [smooth[0], smooth[-1], smooth[:, 0], smooth[:, -1]]


def _print_at_edge(smooth: np.ndarray) -> PrintOnSurround | None:
    """The print pushed against one side of the scan, or into a corner, on a plain surround (see
    :data:`PRINT_AT_EDGE`), or None."""
    reach = SURROUND_TOLERANCE * 255
    sides = _frame_sides(smooth)
    plain = [side for side in sides if _plain_ring(side, float(np.median(side)), reach)]
    if len(plain) < 2:  # a sky or a backdrop along one side has the scene on the three others
        return None
    ground = float(np.median(np.concatenate(plain)))
    seeds = tuple(i for i, side in enumerate(sides) if _plain_ring(side, ground, reach))
    touched = frozenset(range(4)) - set(seeds)
    if not (len(touched) == 1 or touched in CORNERS):
        return None
    return _print_looked_for(smooth, ground, seeds)


def _plain_ring(outermost: np.ndarray, ground: float, reach: float) -> bool:
    """Whether the scan's outermost pixels lie within ``reach`` (8-bit levels) of their median but for
    :data:`SURROUND_RING_OFF` of them: a page all around, as plain as the tighter pass needs."""
    off = np.count_nonzero(np.abs(outermost.astype(np.float32) - ground) > reach)
    return off <= SURROUND_RING_OFF * outermost.size


def _off_surround(smooth: np.ndarray, ground: float, reach: float, seeds: tuple[int, ...]
                  ) -> tuple[int, np.ndarray, np.ndarray]:
    """The regions of the scan (``smooth``: its luma in 8-bit levels, median-filtered) off its surround,
    the part within ``reach`` levels of ``ground`` connected to the frame's sides ``seeds`` (top, bottom,
    left, right): OpenCV's count, labels and statistics of them (label 0: the surround)."""
    near = cv2.inRange(smooth, max(0, math.ceil(ground - reach)), min(255, math.floor(ground + reach)))
    n, labels = cv2.connectedComponents(near, connectivity=8)
    surround = np.zeros(n, bool)  # (a lookup: np.isin over a 28 MP scan's labels took 0.3 s)
    surround[np.concatenate([_frame_sides(labels)[i] for i in seeds])] = True
    surround[0] = False
    off = (~surround[labels]).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(off, connectivity=8)
    return n, labels, stats


def _lid_strips(stats: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which of the regions (``stats``: OpenCV's, label 0 left out) are a strip across the whole scan
    along one of its sides, under ``LID_EDGE`` of it across: the scanner's lid or the bed's edge."""
    h, w = shape
    x, y, bw, bh = stats[1:, :4].T
    return ((bw == w) & ((y == 0) | (y + bh == h)) & (bh <= LID_EDGE * h)) \
        | ((bh == h) & ((x == 0) | (x + bw == w)) & (bw <= LID_EDGE * w))


def _print_within(smooth: np.ndarray, ground: float, reach: float,
                  seeds: tuple[int, ...] = (0, 1, 2, 3)) -> PrintOnSurround | None:
    """The print on the surround of the scan (``smooth``: its luma in 8-bit levels, median-filtered)
    that lies within ``reach`` levels of ``ground`` and is connected to the scan's frame on the sides
    ``seeds`` (top, bottom, left, right), or None.  The print touches the frame on the other sides."""
    h, w = smooth.shape
    n, labels, stats = _off_surround(smooth, ground, reach, seeds)
    if n < 2:
        return None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, bw, bh, area = (int(v) for v in stats[i])
    if min(bw, bh) < SURROUND_MIN_SIDE or not PRINT_AREA[0] <= area / (h * w) <= PRINT_AREA[1]:
        return None
    # a region as large apart from it: two prints on one page, or a stereo card, each to be repaired
    # (pieces of the print itself, cut off by its own areas of the surround's tone, lie in its box)
    ox, oy, ow, oh, oarea = stats[1:].T
    apart = (ox >= x + bw) | (ox + ow <= x) | (oy >= y + bh) | (oy + oh <= y)
    if (oarea[apart & ~_lid_strips(stats, (h, w))] > PRINT_ALONE * h * w).any():
        return None
    reaches = {i for i, at in enumerate((y == 0, y + bh == h, x == 0, x + bw == w)) if at}
    off = set(range(4)) - set(seeds)  # the sides it runs off the scan along
    held = {side: _held(labels, i, side, (slice(y, y + bh), slice(x, x + bw))) for side in reaches}
    if not off <= reaches or any(held[side] < PRINT_AT_EDGE for side in off):
        return None
    if any(held[side] > PRINT_CORNER_OFF for side in reaches - off):
        return None
    contours, _ = cv2.findContours((labels == i).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rect = cv2.minAreaRect(max(contours, key=cv2.contourArea))
    if area < PRINT_MIN_FILL * rect[1][0] * rect[1][1]:
        return None
    # the side nearest to the horizontal gives the tilt (OpenCV's own angle convention varies by version)
    corners = cv2.boxPoints(rect)
    one, other = corners[1] - corners[0], corners[2] - corners[1]
    if abs(one[0]) < abs(one[1]):
        one, other = other, one
    tilt = float(np.degrees(np.arctan2(one[1], one[0])))
    tilt = (tilt + 90.0) % 180.0 - 90.0
    frame = None
    # a print cut by the frame is read by its box, its sides at the frame being the scan's (PRINT_AT_EDGE)
    if not off and np.radians(abs(tilt)) * max(bw, bh) >= 1.0:  # a corner a pixel or more off the box
        frame = (rect[0][0] - x, rect[0][1] - y, float(np.hypot(*one)), float(np.hypot(*other)), tilt)
    box = (slice(y, y + bh), slice(x, x + bw))
    return PrintOnSurround(box if frame else _shadow_peeled(smooth[box], box, ground, seeds), frame)


def prints_on_surround(gray: np.ndarray) -> list[tuple[slice, slice]] | None:
    """The prints' boxes (rows, columns) when the scan (luma ``gray``, H×W in [0, 1]) holds two or more
    apart on a plain surround (an album page, a photo-booth strip, a stereo card), else None: see
    :data:`PRINTS_MIN_SHARE`."""
    h, w = gray.shape
    if min(h, w) < SURROUND_MIN_SIDE or not _plain_frame(gray):
        return None  # the surround lies all round the prints
    smooth = cv2.medianBlur(_levels(gray), SURROUND_MEDIAN)
    outermost = np.concatenate(_frame_sides(smooth))
    ground = float(np.median(outermost))
    found = _prints_within(smooth, ground, SURROUND_TOLERANCE * 255)
    if found is None and _plain_ring(outermost, ground, SURROUND_TIGHT * 255):
        found = _prints_within(smooth, ground, SURROUND_TIGHT * 255)
    return found


def pictures(gray: np.ndarray) -> list[tuple[slice, slice]]:
    """The boxes (rows, columns) of the pictures on a scan (luma ``gray``): each print on a plain surround
    (:func:`prints_on_surround`, :func:`print_on_surround`), and within a print the picture inside a
    plain frame of its own (an instant photo's, a mount's, a white border), looked for once more; the
    whole scan when it holds no print on a surround."""
    boxes = prints_on_surround(gray)
    if boxes is None:
        found = print_on_surround(gray)
        boxes = [(slice(0, gray.shape[0]), slice(0, gray.shape[1])) if found is None else found.box]
    inner = []
    for rows, cols in boxes:
        found = print_on_surround(gray[rows, cols])
        if found is not None:
            r, c = found.box
            rows = slice(rows.start + r.start, rows.start + r.stop)
            cols = slice(cols.start + c.start, cols.start + c.stop)
        inner.append((rows, cols))
    return inner


def _plain_frame(gray: np.ndarray) -> bool:
    """Whether the scan's outermost pixels are a plain surround (:func:`_plain_ring`), read on its
    edges alone (a median over the whole of a 28 MP scan takes a third of a second)."""
    band = 2 * SURROUND_MEDIAN
    edges = [gray[:band], gray[-band:], gray[:, :band].T, gray[:, -band:].T]
    sides = [cv2.medianBlur(_levels(e), SURROUND_MEDIAN) for e in edges]
    outermost = np.concatenate([sides[0][0], sides[1][-1], sides[2][0], sides[3][-1]])
    return _plain_ring(outermost, float(np.median(outermost)), SURROUND_TOLERANCE * 255)


def _prints_within(smooth: np.ndarray, ground: float, reach: float) -> list[tuple[slice, slice]] | None:
    """:func:`prints_on_surround` on the surround within ``reach`` levels of ``ground`` all round."""
    h, w = smooth.shape
    _, _, stats = _off_surround(smooth, ground, reach, (0, 1, 2, 3))
    x, y, bw, bh, area = stats[1:].T
    big = np.flatnonzero((area > PRINT_ALONE * h * w) & ~_lid_strips(stats, (h, w)))
    # pieces of a print cut off by its own areas of the surround's tone lie within its box
    inside = [i for i in big for j in big if i != j and x[j] <= x[i] and y[j] <= y[i]
              and x[i] + bw[i] <= x[j] + bw[j] and y[i] + bh[i] <= y[j] + bh[j]]
    prints = [i for i in big if i not in inside]
    if len(prints) < 2 or not PRINT_AREA[0] <= area[prints].sum() / (h * w) <= PRINT_AREA[1]:
        return None
    boxes = []
    for i in prints:
        at_frame = x[i] == 0 or y[i] == 0 or x[i] + bw[i] == w or y[i] + bh[i] == h
        if at_frame or min(bw[i], bh[i]) < SURROUND_MIN_SIDE:
            return None  # the surround lies all round each print
        if area[i] < PRINTS_MIN_SHARE * bw[i] * bh[i]:
            return None  # not an upright rectangle
        boxes.append((slice(int(y[i]), int(y[i] + bh[i])), slice(int(x[i]), int(x[i] + bw[i]))))
    for a, (ra, ca) in enumerate(boxes):
        for rb, cb in boxes[a + 1:]:
            if ra.start < rb.stop and rb.start < ra.stop and ca.start < cb.stop and cb.start < ca.stop:
                return None  # overlapping prints: judged as one scan
    return boxes


def _shadow_peeled(crop: np.ndarray, box: tuple[slice, slice], ground: float,
                   sides: tuple[int, ...]) -> tuple[slice, slice]:
    """The print's ``box`` (``crop``: the smoothed scan within it) without the bed's shadow along its
    ``sides`` (top, bottom, left, right) that lie on the surround of ``ground``'s tone: see
    :data:`SHADOW_MAX`."""
    most = int(SHADOW_MAX * min(crop.shape))
    cut = [0, 0, 0, 0]
    outside = [ground] * 4  # the tone of the line outside the next one
    going = set(sides)
    while going:  # a line at a time on each side, so that shadows below and right of the print take
        for side in sorted(going):  # each other's corner off the lines along them
            rows, cols = slice(cut[0], crop.shape[0] - cut[1]), slice(cut[2], crop.shape[1] - cut[3])
            at = (cut[0], -1 - cut[1], cut[2], -1 - cut[3])[side]
            # (its ends left out as far as a shadow may reach in from the sides across it)
            line = (crop[at, cols] if side < 2 else crop[rows, at]).astype(np.float32)[most:-most]
            tone = float(np.median(line))
            plain = np.mean(np.abs(line - tone) <= SURROUND_TIGHT * 255) >= SHADOW_PLAIN
            ramp = outside[side] - SHADOW_STEP * 255 <= tone < outside[side]
            if cut[side] >= most or not (plain and ramp):
                going.discard(side)
                continue
            cut[side], outside[side] = cut[side] + 1, tone
    cut = [depth if depth >= 2 else 0 for depth in cut]  # a ramp; one line alone may be the print's edge
    rows, cols = box
    return slice(rows.start + cut[0], rows.stop - cut[1]), slice(cols.start + cut[2], cols.stop - cut[3])


def _held(labels: np.ndarray, i: int, side: int, box: tuple[slice, slice]) -> float:
    """How much of the frame's outermost pixels on ``side`` (top, bottom, left, right) along its ``box``
    the print (label ``i`` of ``labels``) holds: :data:`PRINT_AT_EDGE` and more, its picture runs off the
    scan there; :data:`PRINT_CORNER_OFF` and less, a corner of it."""
    along = _frame_sides(labels)[side][box[1] if side < 2 else box[0]]
    return float(np.mean(along == i))

"""Writing on a photo is not damage: lettering and handwriting among the regions the detector flags.

The detector flags white ink and the thin bright letters of signs, and a caption's letters pass the
shape rules one by one as strokes and specks.  :func:`lines_of_writing` groups flagged regions of letter
size into lines of writing, and :func:`ink_of_writing` reads the ink around a short stroke for a pen's
trail that the detector did not flag; what they find is left alone by
:func:`oldphoto.stages.defects.find_defects` (and, for lines of small bright specks, by the dust finder,
:mod:`oldphoto.stages.dust`).
"""

from __future__ import annotations

import cv2
import numpy as np

from oldphoto.masks import dilate
from oldphoto.quantiles import median, percentiles

# A line of writing is lettering however its letters are judged one by one: the detector flags white
# ink, and of a caption written across a dark part of a scratched print ("Paris, août" on the scratched
# girl's sweater) the upright letters (P, i, t) passed as strokes, the comma, an accent and a dot as
# specks, and the round ones (a, o, u) as scene content; once the photo was repaired for its scratches a
# third of the ink was filled in, letters gone from the word.  Flagged regions (strokes, specks, content)
# at least LETTER_MIN_HEIGHT px high (lower than REPEAT_MAX_LENGTH of the short side, no wider than twice
# their height) are letters of one line when they sit side by side: heights within LETTER_HEIGHT_RATIO,
# overlapping by half the lower one's height, at most LETTER_MAX_GAP heights apart (the detector flags
# only some of the letters).  LETTER_MIN_COUNT of them or more, at least LETTER_MIN_ROUND of them as wide
# as a third of their height (a, o, P, or the part of a letter the detector flags; a scratch's pieces are
# thinner), in a line at least LETTER_MIN_SPAN heights long, are writing: the strokes and specks within
# the line's box, grown by a height across and half a height up and down (accents, dots, commas), are
# left alone.  The real photos' masks are unchanged, with auto and with on.
LETTER_MIN_HEIGHT = 8
LETTER_HEIGHT_RATIO = 1.6
LETTER_MIN_COUNT = 4
LETTER_MIN_ROUND = 3
LETTER_MIN_SPAN = 2.5
LETTER_MAX_GAP = 2.0
# Handwriting is judged by the ink on the photo, not only by what the detector flags: of a line of
# cursive it flags a few pieces (the tall, thin "l" and "t", the start of a word) and leaves the rest, so
# too few flagged letters line up for the rule above, and with `--scratches on` a caption in ink on a
# print's white border or on a dark album page beside it lost whole letters ("le" became "e", "nos"
# "os"; 1.4-9.3 % of the ink).  A short stroke or speck (under REPEAT_MAX_LENGTH of the short side) is a
# letter when the ink of its line holds a pen's trail that the detector did not flag: in a window
# WRITING_REACH heights either side and a height above and below, ink is what stands out from the
# window's median (the ground) on the region's side by WRITING_INK of the region's own contrast; the
# pieces of ink (8-connected) in the region's line (overlapping its piece's rows by half the lower one's
# height, at least LETTER_MIN_HEIGHT / 2 high, running on beyond the window neither up nor down) that
# wind like a pen's trail (skeleton at least WRITING_MIN_WIGGLE times their box's longer side: letters
# and cursive words, not straight lines) add up, with the rest of the region's own piece (the word it is
# in), to a skeleton of WRITING_MIN_TRAIL heights.  Each piece must lie on a plain ground, as writing on
# a border, a page or a plain backdrop does: around it (its box grown by half a height, ink and the 3 px
# next to it left out, luma smoothed by a 1-px Gaussian against the paper's grain) the 10th-90th
# percentiles within WRITING_MAX_SPREAD.  Without that the rule took collars, hands, a cane and a grass
# blade of the Solvay and garden photos for letters (their grounds spread 0.053-0.26); synthetic pages
# with grain of sigma 0.03 spread at most 0.022.  The real photos' masks are unchanged, with auto and on.
WRITING_REACH = 8
WRITING_INK = 0.5
WRITING_MIN_WIGGLE = 1.25
WRITING_MIN_TRAIL = 2.5
WRITING_MAX_SPREAD = 0.035
# Writing on the picture itself (a face, hair, a sweater) has no plain ground, and a caption in thin white
# ink there lost its letters: "petit Paul / mai 1938" on the scratched boy 46 % of its ink, in plain
# print 35 %.  Without the plain ground the trail took the scratched girl's crack fragments beside a short
# crack for a pen's (her evidence 1.04 -> 0.82 short sides, auto left her), so where the ground is not
# plain the whole trail of the line (the region's own piece with the winding pieces) must be a pen's
# (_pen_trail): its pieces of one size (heights within WRITING_PEN_HEIGHT_SPREAD of the region's height;
# the girl's fragments 0.6-1.4, the captions' pieces 0.25-0.55), of one width along the skeleton
# (distance to the ground's spread under WRITING_PEN_WIDTH_SPREAD of its mean: captions 0.05-0.21, crack
# fragments and the real photos' scene 0.29-0.95, one of the girl's 0.15) and closing a loop (letters'
# counters; that fragment none, but a dark caption's strokes across it can close one).  Measured and not
# separating: ink standing clear of the ground's highlights (share of ground within 0.3 of the ink's
# contrast: 0-0.05 on both sides), ends and forks per skeleton pixel (captions 0.11-0.47, cracks
# 0.20-0.53).  "paris" on the girl's cheek is not helped: its ink joins the bright cheek against a
# window whose median is her dark hair, a piece that runs out of the line.  The heights' spread is
# read against the tallest piece's, not the flagged region's: a capital (or an ascender) stands about
# twice as tall as the small letters, and "Paris" in white ink on the girl's curtain, only its small
# letters flagged, spread 0.83 of their height and lost "aris" (0.45 of the P's); a caption's small
# letters are the pieces the detector flags most.  The real photos' masks are unchanged, and of 56
# captions on them two more are kept whole with --scratches on (they lost 6-10 % of their ink before).
WRITING_PEN_WIDTH_SPREAD = 0.25
WRITING_PEN_MIN_LOOPS = 1
WRITING_PEN_HEIGHT_SPREAD = 0.6


def lines_of_writing(stats: np.ndarray, kinds: list[str], max_height: float,
                     min_height: float = LETTER_MIN_HEIGHT) -> list[int]:
    """The strokes and specks (labels) that lie in a line of writing: see ``LETTER_MIN_HEIGHT``
    (``min_height``).  ``stats``: the flagged regions' OpenCV statistics (x, y, width, height, area), row
    0 the background."""
    letters = [i for i in range(1, len(kinds)) if kinds[i] in ("stroke", "speck", "content")
               and min_height <= stats[i][3] < max_height and stats[i][2] <= 2 * stats[i][3]]
    if len(letters) < LETTER_MIN_COUNT:
        return []
    parent = {i: i for i in letters}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    box = {i: tuple(int(v) for v in stats[i][:4]) for i in letters}
    # each letter against the next ones by x, all letters at once (thousands of specks: pairs in Python
    # took seconds); a letter stops looking at the first one too far to be beside it whatever its height
    # (at most LETTER_HEIGHT_RATIO times its own, so LETTER_MAX_GAP of those away), or, as one by one,
    # at the first one farther than twice their heights and than ``max_height``
    order = np.array(sorted(letters, key=lambda i: box[i][0]))
    x, y, w, h = (stats[order, c].astype(np.int64) for c in range(4))
    looking = np.arange(len(order))
    step = 1
    while looking.size:
        looking = looking[looking + step < len(order)]
        a, b = looking, looking + step
        gap = x[b] - (x[a] + w[a])
        high, low = np.maximum(h[a], h[b]), np.minimum(h[a], h[b])
        stop = (gap > LETTER_MAX_GAP * LETTER_HEIGHT_RATIO * h[a]) | (
            (gap > LETTER_MAX_GAP * high) & (gap > max_height))
        overlap = np.minimum(y[a] + h[a], y[b] + h[b]) - np.maximum(y[a], y[b])
        beside = ~stop & (gap <= LETTER_MAX_GAP * high) & (high <= LETTER_HEIGHT_RATIO * low) & (
            overlap >= 0.5 * low)
        for i, j in zip(order[a[beside]].tolist(), order[b[beside]].tolist(), strict=True):
            parent[root(j)] = root(i)
        looking = looking[~stop]
        step += 1
    lines: dict[int, list[int]] = {}
    for i in letters:
        lines.setdefault(root(i), []).append(i)
    judged = np.array([i for i in range(1, len(kinds)) if kinds[i] in ("stroke", "speck")], dtype=np.int64)
    jx, jy, jw, jh = (stats[judged, c].astype(np.int64) for c in range(4))
    out: list[int] = []
    for members in lines.values():
        if len(members) < LETTER_MIN_COUNT:
            continue
        if sum(1 for i in members if 3 * box[i][2] >= box[i][3]) < LETTER_MIN_ROUND:
            continue
        height = float(np.median([box[i][3] for i in members]))
        x0 = min(box[i][0] for i in members)
        x1 = max(box[i][0] + box[i][2] for i in members)
        y0 = min(box[i][1] for i in members)
        y1 = max(box[i][1] + box[i][3] for i in members)
        if x1 - x0 < LETTER_MIN_SPAN * height:
            continue
        x0, x1, y0, y1 = x0 - height, x1 + height, y0 - height / 2, y1 + height / 2
        within = (jx >= x0) & (jx + jw <= x1) & (jy >= y0) & (jy + jh <= y1)
        out.extend(judged[within].tolist())
    return out


def ink_of_writing(stats: np.ndarray, kinds: list[str], labels: np.ndarray, gray: np.ndarray,
                   max_height: float, min_contrast: float) -> list[int]:
    """The short strokes and specks (labels) that are letters of handwriting whose other letters the
    detector did not flag: see ``WRITING_REACH``.  ``stats``/``labels``: the flagged regions' OpenCV
    statistics and label image; ``gray``: the photo's luma; ``min_contrast``: the least a region stands
    out from its window's median (the detector's regions' :data:`oldphoto.stages.defects.MIN_CONTRAST`)."""
    from skimage.morphology import skeletonize  # only photos with short strokes or specks pay for it

    h, w = gray.shape
    out: list[int] = []
    for i in range(1, len(kinds)):
        x, y, bw, bh, _ = (int(v) for v in stats[i])
        if kinds[i] not in ("stroke", "speck") or max(bw, bh) >= max_height:
            continue
        height = max(bh, LETTER_MIN_HEIGHT)
        reach = WRITING_REACH * height
        y0, y1 = max(0, y - height), min(h, y + bh + height)
        x0, x1 = max(0, x - reach), min(w, x + bw + reach)
        window = gray[y0:y1, x0:x1]
        region = labels[y0:y1, x0:x1] == i
        ground = median(window)
        mean = float(window[region].mean())
        sign = 1.0 if mean > ground else -1.0
        contrast = sign * (mean - ground)
        if contrast < min_contrast:
            continue
        ink = (sign * (window - ground) >= WRITING_INK * contrast) | region
        n, pieces, boxes, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
        # the region is one 8-connected piece of the flagged mask, wholly in the window: one piece of ink
        own = int(pieces[region][0])
        top, bottom = int(boxes[own, 1]), int(boxes[own, 1] + boxes[own, 3])
        if (top == 0 < y0) or (bottom == y1 - y0 and y1 < h):
            continue  # the region's ink runs on beyond its line: a longer line, not a letter
        smooth = cv2.GaussianBlur(np.ascontiguousarray(window, dtype=np.float32), (0, 0), 1.0)
        not_ink = ~dilate(ink, 3)
        plain = _plain_ground(smooth, not_ink, boxes[own][:4], height // 2)
        # the ink besides the flagged region itself: on plain grounds only (trail), and on any ground
        # (rough: then it must be a pen's, _pen_trail)
        trail = rough = -float(skeletonize(region).sum())
        used = []
        for j in range(1, n):
            jx, jy, jw, jh, _ = (int(v) for v in boxes[j])
            if j != own:
                in_line = min(jy + jh, bottom) - max(jy, top) >= 0.5 * min(jh, bottom - top)
                cut = (jy == 0 < y0) or (jy + jh == y1 - y0 and y1 < h)  # runs on out of the line
                if jh < LETTER_MIN_HEIGHT / 2 or not in_line or cut:
                    continue
            length = float(skeletonize(pieces[jy:jy + jh, jx:jx + jw] == j).sum())
            if j == own or length >= WRITING_MIN_WIGGLE * max(jw, jh):
                rough += length
                used.append(j)
                if plain and (j == own or _plain_ground(smooth, not_ink, boxes[j][:4], height // 2)):
                    trail += length
        if plain and trail >= WRITING_MIN_TRAIL * height:
            out.append(i)
        elif rough >= WRITING_MIN_TRAIL * height and _pen_trail(np.isin(pieces, used), boxes[used, 3],
                                                                 height):
            out.append(i)
    return out


def _pen_trail(trail: np.ndarray, heights: np.ndarray, height: int) -> bool:
    """Whether the pieces of ink ``trail`` (a window's pixels; ``heights``: each piece's) in a line of
    letters ``height`` high are a pen's: of one size (heights within ``WRITING_PEN_HEIGHT_SPREAD`` of
    the tallest's, or of ``height`` if larger, of each other), of one width along their skeleton (its
    spread within ``WRITING_PEN_WIDTH_SPREAD`` of its mean) and closing at least
    ``WRITING_PEN_MIN_LOOPS`` loops (holes of 2 px or more inside the window)."""
    from skimage.morphology import skeletonize

    tallest = int(heights.max())
    if tallest - int(heights.min()) > WRITING_PEN_HEIGHT_SPREAD * max(height, tallest):
        return False
    width = cv2.distanceTransform(trail.astype(np.uint8), cv2.DIST_L2, 3)[skeletonize(trail)]
    if width.size == 0 or float(width.std()) > WRITING_PEN_WIDTH_SPREAD * float(width.mean()):
        return False
    n, _, stats, _ = cv2.connectedComponentsWithStats((~trail).astype(np.uint8), connectivity=4)
    hh, ww = trail.shape
    x, y, w, h, area = (stats[1:, c] for c in range(5))
    loops = (area >= 2) & (x > 0) & (y > 0) & (x + w < ww) & (y + h < hh)
    return int(loops.sum()) >= WRITING_PEN_MIN_LOOPS


def _plain_ground(smooth: np.ndarray, ground: np.ndarray, box: np.ndarray, grow: int) -> bool:
    """Whether the ground (``ground``: the pixels that are not ink or next to it) around a piece of ink
    (``box``: x, y, width, height, grown by ``grow`` px) is plain in the smoothed luma ``smooth``: its
    10th-90th percentiles within ``WRITING_MAX_SPREAD``."""
    x, y, w, h = (int(v) for v in box)
    near = (slice(max(0, y - grow), y + h + grow), slice(max(0, x - grow), x + w + grow))
    around = smooth[near][ground[near]]
    if around.size == 0:
        return False
    low, high = percentiles(around, (10, 90))
    return high - low < WRITING_MAX_SPREAD

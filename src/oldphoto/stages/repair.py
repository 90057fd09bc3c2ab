"""Local repair: the networks' inpainting replaces pixels only on the defects, nowhere else.

The scratch (or HR) path re-renders the whole image it is given, and with anything weaker than perfect
weights that softens the whole photo for the sake of a few scratches.  Here it runs only on windows
around the defects (each defect's bounding box grown by ``context`` pixels, nearby windows merged when cheap),
and its output is blended in through the defect mask, grown by ``grow`` pixels (the detector marks the
core of a scratch, its soft edge is a few pixels wider) and feathered over ``feather`` pixels so that no
edge of the repair shows.  Everywhere else the photo keeps the base restoration (see
:mod:`oldphoto.stages.fidelity`).  A photo with a few specks of dust costs a few small network calls,
and a long scratch a row of small ones along it (:func:`units`).

Defects no deeper than ``diffuse_depth`` px (every pixel that close to an undamaged one: hairlines, thin
scratches, dust specks) can instead be filled by diffusion from their edges (:func:`diffuse`), and those
no deeper than ``texture_depth`` px by patches of the undamaged texture around them
(:func:`texture_fill`), when the installed networks were measured to fill them worse than that (the
scratch weights' card says so).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from oldphoto.luma import luma
from oldphoto.masks import dilate
from oldphoto.stages.fidelity import robust_sigma

# Repair weight: the mask grown by GROW px is fully repaired, then the weight falls to 0 over FEATHER px.
GROW = 2
FEATHER = 2.0
CONTEXT = 48  # px of undamaged surroundings the inpainting network sees around each defect
MIN_WINDOW = 96  # px; smaller windows give instance normalisation too few pixels

# A long scratch, or a crack across the photo, is one region, and one window around it can be most of the
# photo, while the partial nonlocal attention costs the square of a window's area (bundled networks, 2 CPU
# cores, the scratch path on a square window with a diagonal scratch: 256² 0.3 s, 512² 2.1 s, 768² 8.0 s,
# 1024² 27 s, of which the convolutions, as the quality path, take 0.2, 0.6, 1.1, 3.5 s).  A thin region
# (every defect pixel within SPLIT_THIN px of an undamaged one) whose window would be wider than
# MERGE_MAX_SIDE is therefore cut into cells of at most SPLIT_CELL px, each repaired in its own window
# with the usual context around it; neighbouring cells' repairs cross-fade over 2·SPLIT_FADE px, so that
# no seam shows.  The fills come out better too: a window's levels are fitted to the photo over the whole
# window, and over a large one they miss locally (long synthetic scratches on 2-megapixel photos left
# darker traces along them, the cells much fainter ones or none).  Wide regions (holes, stains) keep one
# window: their middle is far from any undamaged pixel and needs context from far.
SPLIT_CELL = 128
SPLIT_FADE = 16
SPLIT_THIN = 16

# A thin defect's network fill meets its sides (``_meet_sides``).  The networks see the defects as white
# (their input convention) and some of that white bleeds into what they draw on and around them: on the
# scratched boy the crack down the backdrop came out 6-11 levels of 255 lighter than both of its sides,
# the crack across his brow a lighter smear, bands that show at 100 %.  So where the networks drew the
# pixels just outside a thin region's grown defects (as for ``SPLIT_THIN``) lighter than the photo, that
# difference is spread over the fill by diffusion: the fill comes down to its sides' levels.  Only
# lighter: a photo lighter than the networks there is most often the defect's own bright halo, which the
# mask missed (the scratched girl's widest crack; spread in both directions it came back as a light
# streak).  Measured (benchmarks/bench_diffusion_fill.py, 36 held-out photos with synthetic defects):
# near the repairs LPIPS 0.299 -> 0.294 with the detector's mask (scratches 0.143 -> 0.130), PSNR
# within 0.03 dB.  Wide regions (holes) keep the networks' fill: their middle is far from their edge.

# The networks fill a wide defect smoothly, and in a grainy print a smooth patch shows as much as the
# defect did.  A fill takes grain where it lies deeper than GRAIN_FROM px inside the grown defects (full
# from GRAIN_RAMP px further in; defects up to 2 px wide, whose fill is their sides' blend, take none),
# and a hole's (deeper than GRAIN_WIDE px somewhere) over its whole repair, out to the feathered edge: a
# rim left smooth showed as an outline (on scratches of a scan enlarged twice the rim's grain cost LPIPS,
# 0.154 -> 0.172, so they keep the ramp); thin stretches away from a hole take none.  The grain
# is noise drawn in two bands of detail, the finest (the luma less its Gaussian blur of GRAIN_BANDS[1]
# px: grain) and the next (down to GRAIN_BANDS[2] px: the mottling of a print's grain and paper), each
# as strong as the photo's there within GRAIN_RING px around the defect (the robust level over the
# whole ring, varying as the nearest stretches of it do: sky beside sky, wall beside wall), only as much
# as the fill lacks.  Drawn, not copied: copies of a nearby stretch of the photo carried its structure
# in too (fur into sky as stripes, a window frame's lines into a wall).  Measured: docs/restore.md,
# step 3.
GRAIN_FROM = 3.0
GRAIN_RAMP = 2.0
GRAIN_WIDE = 6.0
GRAIN_BANDS = (0.0, 1.5, 4.0)
GRAIN_RING = 16
GRAIN_MIN = 0.5 / 255  # below this spread (luma, 0-1) there is no grain to give
GRAIN_EDGE = 3.0  # detail beyond this many spreads is an edge, not grain: clipped there

# Diffusion fill (OpenCV's Navier-Stokes inpainting): each defect is filled from the pixels within
# DIFFUSION_RADIUS px of its edge, the defects grown by GROW px first (the soft edge of a scratch is
# damage too).  It only suits thin defects: across a wide one the fill carries its edge's values (and any
# faint halo the mask missed) all the way, where the networks take context from farther away.
DIFFUSION_RADIUS = 3

# Texture fill (exemplar-based inpainting, after Criminisi, Pérez and Toyama, 2004; ``--texture-depth``,
# off unless asked for): a defect too deep for diffusion but no hole is filled from its edge
# inwards, each step copying into the missing pixels around the outermost one those of the undamaged
# TEXTURE_PATCH² patch within TEXTURE_SEARCH px that best matches the pixels known around it (least
# squares).  The networks fill such a defect smoothly, and on a print scanned at a high resolution a
# smooth band across cloth, wood or grain shows nearly as much as the scratch did (the scratched girl
# enlarged 3×: gray bands on her curtain); copied patches carry the texture.  Only the TEXTURE_STEP²
# pixels around the outermost one are copied per step, so that each step is matched on pixels already
# in place.  Patches come only from pixels farther than TEXTURE_AVOID px from every defect, and one that
# would bring pixels lighter or darker than all those known around the target by TEXTURE_OUTLIER only
# when nothing else is left: undetected damage nearby would be copied in as specks.  A crack's rim (its
# shadowed or lifted edge) grows with its width and the detector's mask misses it, so the fill covers
# the defect grown by TEXTURE_RIM times its depth more.  Holes, deeper than the depth asked for, stay
# with the networks: copied patches build wrong structure across them.  Not the default: across a
# face's features (a brow, a hairline) copies leave blotches where the networks leave a soft smudge,
# and near the repairs it scores below the networks (docs/restore.md, step 3).
TEXTURE_PATCH = 9
TEXTURE_STEP = 3
TEXTURE_SEARCH = 40
TEXTURE_AVOID = 6
TEXTURE_OUTLIER = 0.1  # brightness (mean of the channels), 0-1
TEXTURE_RIM = 0.5

Box = tuple[int, int, int, int]  # y0, x0, y1, x1 (end exclusive)


def repair_weight(mask: np.ndarray, grow: int = GROW, feather: float = FEATHER) -> np.ndarray:
    """Float32 ``H×W`` in [0, 1]: 1 on the defects grown by ``grow`` px, falling smoothly to 0 outside."""
    core = dilate(mask, grow).astype(np.float32)
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


def windows(boxes: list[Box], shape: tuple[int, int], context: int = CONTEXT, min_side: int = MIN_WINDOW
            ) -> list[tuple[Box, list[int]]]:
    """Windows covering every box (what a region, or a piece of one, repairs) with ``context`` px around it.

    Returns ``(window, members)`` pairs: the indices of the boxes each window repairs; every box belongs
    to exactly one window (windows may overlap).  Windows are merged only when that costs little (their
    union not much larger than the two, and small), so that scattered dust does not turn into one window
    over the whole photo: the inpainting cost grows faster than the area.
    """
    h, w = shape
    return _merge([(_grown(box, context, min_side, h, w), [i]) for i, box in enumerate(boxes)])


@dataclass(frozen=True)
class Unit:
    """A part of the repair given to a window (a window may take several): region ``label`` within
    ``box``; a piece of a region cut into cells (:func:`units`) also holds its region's cuts along y and
    x and its cell's index along each."""

    label: int
    box: Box
    cuts: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    cell: tuple[int, int] = (0, 0)

    def share(self, window: Box) -> np.ndarray | float:
        """This unit's part of its region's repair over ``window`` (1 for a whole region): the cells of
        a region cross-fade, and their parts add up to 1 everywhere."""
        if self.cuts is None:
            return 1.0
        y0, x0, y1, x1 = window
        along_y = _fade_share(np.arange(y0, y1), self.cuts[0], self.cell[0])
        along_x = _fade_share(np.arange(x0, x1), self.cuts[1], self.cell[1])
        return (along_y[:, None] * along_x[None, :])[..., None]


def _fade_share(coords: np.ndarray, cuts: tuple[int, ...], cell: int) -> np.ndarray:
    """The share of cell ``cell`` (between ``cuts[cell - 1]`` and ``cuts[cell]``) at ``coords`` along one
    axis: 1 inside it, ramping linearly to 0 over ``2·SPLIT_FADE`` px centred on each of its cuts."""
    def rise(k: int) -> np.ndarray:  # 0 before cut k, 1 after it
        if k < 0:
            return np.ones(coords.shape, np.float32)
        if k >= len(cuts):
            return np.zeros(coords.shape, np.float32)
        return np.clip((coords - cuts[k] + SPLIT_FADE) / (2.0 * SPLIT_FADE), 0.0, 1.0).astype(np.float32)

    return rise(cell - 1) - rise(cell)


def _cuts(start: int, size: int) -> tuple[int, ...]:
    """Where a span is cut into equal cells of at most ``SPLIT_CELL`` px."""
    n = -(-size // SPLIT_CELL)
    return tuple(start + round(k * size / n) for k in range(1, n))


def units(labels: np.ndarray, stats: np.ndarray, mask: np.ndarray, context: int = CONTEXT,
          skip: frozenset[int] = frozenset(), depth: Callable[[int], float] | None = None) -> list[Unit]:
    """What the windows repair: each region (``labels``/``stats`` of :func:`regions`, ``mask`` the defects
    in them; those in ``skip`` aside) whole, or in cells when it is thin and its window (``context`` px
    around it) would be wider than ``MERGE_MAX_SIDE`` (see ``SPLIT_CELL``).  ``depth``: the regions'
    :func:`region_depths`, when the caller has them already."""
    depth = depth or region_depths(labels, stats, mask)
    out = []
    for label in range(1, len(stats)):
        if label in skip:
            continue
        x, y, bw, bh = (int(v) for v in stats[label, :4])
        if max(bh, bw) + 2 * context > MERGE_MAX_SIDE and depth(label) <= SPLIT_THIN:
            out.extend(_cells(labels[y:y + bh, x:x + bw] == label, label, y, x))
        else:
            out.append(Unit(label, (y, x, y + bh, x + bw)))
    return out


def region_depths(labels: np.ndarray, stats: np.ndarray, mask: np.ndarray) -> Callable[[int], float]:
    """``depth(label)``: how far region ``label``'s deepest defect (``mask``) lies from an undamaged pixel
    (px), read on the region's crop once, when first asked."""
    @functools.cache
    def depth(label: int) -> float:
        x, y, bw, bh = (int(v) for v in stats[label, :4])
        return _depth(mask[y:y + bh, x:x + bw] & (labels[y:y + bh, x:x + bw] == label))

    return depth


def _depth(defects: np.ndarray) -> float:
    """How far the deepest defect pixel is from an undamaged one (px).  ``defects``: a region's crop,
    whose undamaged margin (the regions are the defects grown by the repair's reach) holds the nearest
    undamaged pixel of each."""
    if not defects.any():
        return 0.0
    return float(cv2.distanceTransform(np.pad(defects, 1).astype(np.uint8), cv2.DIST_L2, 3).max())


def shallow(count: int, depth: Callable[[int], float], limit: float) -> frozenset[int]:
    """The regions (labels 1 to ``count`` - 1, their :func:`region_depths` ``depth``) whose defects all
    lie within ``limit`` px of an undamaged pixel."""
    if limit <= 0:
        return frozenset()
    return frozenset(label for label in range(1, count) if depth(label) <= limit)


def diffuse(window: np.ndarray, mask: np.ndarray, grow: int = GROW) -> np.ndarray:
    """``window`` (``h×w×3`` float32) with its defects (``mask``, grown by ``grow`` px) filled by
    diffusion from their edges, channel by channel in float."""
    m = dilate(mask, grow).astype(np.uint8)
    window = np.ascontiguousarray(window, dtype=np.float32)
    return np.stack([cv2.inpaint(np.ascontiguousarray(window[..., c]), m, DIFFUSION_RADIUS, cv2.INPAINT_NS)
                     for c in range(window.shape[2])], axis=-1)


def _diffuse_region(out: np.ndarray, base: np.ndarray, photo: np.ndarray, mask: np.ndarray,
                    labels: np.ndarray, stats: np.ndarray, label: int, grow: int, feather: float) -> None:
    """Blend region ``label``'s fill by :func:`diffuse` into ``out`` (in place), as the windows' are."""
    x, y, bw, bh = (int(v) for v in stats[label, :4])  # (the region holds the repair's reach already)
    y0, x0 = max(y - DIFFUSION_RADIUS, 0), max(x - DIFFUSION_RADIUS, 0)
    y1, x1 = y + bh + DIFFUSION_RADIUS, x + bw + DIFFUSION_RADIUS
    m = mask[y0:y1, x0:x1]  # every defect there: none is taken for context
    alpha = repair_weight(m & (labels[y0:y1, x0:x1] == label), grow, feather)[..., None]
    out[y0:y1, x0:x1] += alpha * (diffuse(photo[y0:y1, x0:x1], m, grow) - base[y0:y1, x0:x1])


def texture_fill(image: np.ndarray, hole: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``image`` (``h×w×3`` float32) with the pixels of ``hole`` filled by copying patches that lie wholly
    in ``source`` (see ``TEXTURE_PATCH``), from the edge of the hole inwards; a pixel with no such patch
    within four times ``TEXTURE_SEARCH`` px is filled by diffusion."""
    half, step = TEXTURE_PATCH // 2, TEXTURE_STEP // 2
    img = cv2.copyMakeBorder(np.ascontiguousarray(image, dtype=np.float32), half, half, half, half,
                             cv2.BORDER_REFLECT)
    todo = np.pad(hole, half)  # (the reflected border is known: it only completes patches at the edge)
    # centres of the patches that may be copied: every pixel of the patch in the source, none in the hole
    whole = np.ones((TEXTURE_PATCH, TEXTURE_PATCH), np.uint8)
    centres = cv2.erode(np.pad(source & ~hole, half).astype(np.uint8), whole,
                        borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    # the darkest and lightest brightness (mean of the channels) each copy would bring: its inner pixels
    brightness = img.mean(axis=2)
    inner_square = np.ones((TEXTURE_STEP, TEXTURE_STEP), np.uint8)
    bounds = (cv2.erode(brightness, inner_square), cv2.dilate(brightness, inner_square))
    ys, xs = np.nonzero(todo)
    depth = cv2.distanceTransform(todo.astype(np.uint8), cv2.DIST_L2, 3)[ys, xs]
    for k in np.argsort(depth, kind="stable"):  # outermost first
        y, x = int(ys[k]), int(xs[k])
        if not todo[y, x]:
            continue
        patch = np.s_[y - half:y + half + 1, x - half:x + half + 1]
        found = _best_patch(img, centres, bounds, img[patch], ~todo[patch], y, x)
        if found is None:
            continue
        inner = np.s_[y - step:y + step + 1, x - step:x + step + 1]
        cy, cx = found
        fill = todo[inner]
        img[inner][fill] = img[cy - step:cy + step + 1, cx - step:cx + step + 1][fill]
        todo[inner] = False
    out = img[half:-half, half:-half]
    left = todo[half:-half, half:-half]
    return diffuse(out, left, grow=0) if left.any() else np.ascontiguousarray(out)


def _best_patch(img: np.ndarray, centres: np.ndarray, bounds: tuple[np.ndarray, np.ndarray],
                template: np.ndarray, known: np.ndarray, y: int, x: int) -> tuple[int, int] | None:
    """The centre of the patch (one of ``centres``, near ``(y, x)``) whose pixels best match ``template``
    where ``known``, or None when there is none within four times ``TEXTURE_SEARCH`` px.  Patches whose
    copied pixels (``bounds``: their darkest and lightest brightness) would be lighter or darker than
    every known pixel of the template by ``TEXTURE_OUTLIER`` are taken only when no other is left: they
    are most often damage the mask missed (a crack's branch), which a copy would carry into the fill."""
    half = TEXTURE_PATCH // 2
    h, w = centres.shape
    weight = np.repeat(known[..., None], 3, axis=2).astype(np.float32)
    seen = template.mean(axis=2)[known]
    low, high = (float(seen.min()) - TEXTURE_OUTLIER, float(seen.max()) + TEXTURE_OUTLIER) if seen.size \
        else (-np.inf, np.inf)
    for reach in (TEXTURE_SEARCH, 2 * TEXTURE_SEARCH, 4 * TEXTURE_SEARCH):
        y0, y1 = max(y - reach, half), min(y + reach, h - 1 - half)
        x0, x1 = max(x - reach, half), min(x + reach, w - 1 - half)
        allowed = centres[y0:y1 + 1, x0:x1 + 1]
        if not allowed.any():
            continue
        area = img[y0 - half:y1 + half + 1, x0 - half:x1 + half + 1]
        cost = cv2.matchTemplate(area, template, cv2.TM_SQDIFF, mask=weight)
        cost[~allowed] = np.inf
        darkest, lightest = (b[y0:y1 + 1, x0:x1 + 1] for b in bounds)
        cost[(darkest < low) | (lightest > high)] += 1e6  # (still finite: used when nothing else is)
        j = int(np.argmin(cost))
        return y0 + j // cost.shape[1], x0 + j % cost.shape[1]
    return None


def _texture_region(out: np.ndarray, base: np.ndarray, mask: np.ndarray, labels: np.ndarray,
                    stats: np.ndarray, label: int, depth: float, grow: int, feather: float,
                    copied: np.ndarray | None) -> None:
    """Blend region ``label``'s fill by :func:`texture_fill` of ``base`` into ``out`` (in place), as the
    windows' are, and mark the pixels it reaches in ``copied``; patches are copied from within
    ``TEXTURE_SEARCH`` px of it (farther when none is)."""
    x, y, bw, bh = (int(v) for v in stats[label, :4])
    rim = int(np.ceil(depth * TEXTURE_RIM))
    reach = TEXTURE_SEARCH + TEXTURE_PATCH + rim
    y0, x0 = max(y - reach, 0), max(x - reach, 0)
    y1, x1 = min(y + bh + reach, mask.shape[0]), min(x + bw + reach, mask.shape[1])
    m = mask[y0:y1, x0:x1]
    own = m & (labels[y0:y1, x0:x1] == label)
    source = ~dilate(m, grow + rim + TEXTURE_AVOID)
    filled = texture_fill(base[y0:y1, x0:x1], dilate(own, grow + 1 + rim), source)
    alpha = repair_weight(own, grow + rim, feather)[..., None]
    out[y0:y1, x0:x1] += alpha * (filled - base[y0:y1, x0:x1])
    if copied is not None:
        copied[y0:y1, x0:x1] |= alpha[..., 0] > 0


def _meet_sides(result: np.ndarray, base: np.ndarray, mask: np.ndarray, thin: np.ndarray, grow: int,
                ring: int) -> np.ndarray:
    """``result`` (a window's network output) with the fill of the ``thin`` defects (bool, part of
    ``mask``, the window's defects) darkened where the networks drew it lighter than ``base`` around it
    (see the note below ``SPLIT_THIN``): ``min(base - result, 0)`` on the pixels outside the defects grown
    by ``grow`` px, spread over them by diffusion and added there and around them out to the repair
    weight's reach ``ring``; the other defects keep ``result``."""
    grown = dilate(mask, grow)
    lighter = np.minimum(np.asarray(base - result, dtype=np.float32), 0.0)
    m = grown.astype(np.uint8)
    spread = np.stack([cv2.inpaint(np.ascontiguousarray(lighter[..., c]), m, DIFFUSION_RADIUS, cv2.INPAINT_NS)
                       for c in range(lighter.shape[2])], axis=-1)
    # (the repair weight's Gaussian ramp has a square support: its corners reach ring·√2)
    around = dilate(thin, int(np.ceil(ring * np.sqrt(2)))) & ~grown
    return result + spread * (dilate(thin, grow) | around)[..., None]


def _add_grain(out: np.ndarray, base: np.ndarray, mask: np.ndarray, grown: np.ndarray, labels: np.ndarray,
               stats: np.ndarray, label: int, grow: int, feather: float) -> None:
    """Give the network fill of region ``label`` (of ``labels``/``stats``) the grain of the photo around
    it, in place (see ``GRAIN_FROM``; ``grown``: the defects ``mask`` grown by ``grow``).  Where the fill
    is deep enough for grain, its whole repair takes it, out to its feathered edge (``grow``,
    ``feather``: the repair weight's), so that no smooth rim is left; thin stretches of it farther away
    (a crack that leaves a hole) take none.  Each part is done in cells of at most ``SPLIT_CELL`` px, each
    in a crop of its own that reaches the undamaged photo around it: the work follows the deep parts'
    width, not a long crack's length."""
    x, y, bw, bh = (int(v) for v in stats[label, :4])  # (the region holds the repair's reach and more)
    own = labels[y:y + bh, x:x + bw] == label
    depth = cv2.distanceTransform(np.pad(grown[y:y + bh, x:x + bw] & own, 1).astype(np.uint8), cv2.DIST_L2,
                                  5)[1:-1, 1:-1]
    weight = np.clip((depth - GRAIN_FROM) / GRAIN_RAMP, 0.0, 1.0)
    if not weight.any():
        return
    wide = depth > GRAIN_WIDE
    if wide.any():  # a hole's whole repair, out to its feathered edge
        near = dilate(wide, int(np.ceil(GRAIN_WIDE)) + reach(grow, feather)) & own
        weight = np.maximum(weight, repair_weight(mask[y:y + bh, x:x + bw] & own, grow, feather) * near)
    n, parts, boxes, _ = cv2.connectedComponentsWithStats((weight > 0).astype(np.uint8), connectivity=8)
    h, w = grown.shape
    for i in range(1, n):
        px, py, pw, ph = (int(v) for v in boxes[i, :4])
        part = parts[py:py + ph, px:px + pw] == i
        # every pixel of the part lies within its depth of the defect's edge: the crop reaches the ring
        deepest = float(depth[py:py + ph, px:px + pw][part].max())
        pad = int(np.ceil(deepest)) + GRAIN_RING
        for cy0, cy1 in _spans(ph):
            for cx0, cx1 in _spans(pw):
                cell = part[cy0:cy1, cx0:cx1]
                if not cell.any():
                    continue
                top, left = y + py + cy0, x + px + cx0
                y0, x0 = max(top - pad, 0), max(left - pad, 0)
                y1, x1 = min(top + (cy1 - cy0) + pad, h), min(left + (cx1 - cx0) + pad, w)
                cell_weight = np.zeros((y1 - y0, x1 - x0), np.float32)
                cell_weight[top - y0:top - y0 + cy1 - cy0, left - x0:left - x0 + cx1 - cx0] = \
                    weight[py + cy0:py + cy1, px + cx0:px + cx1] * cell
                crop = np.s_[y0:y1, x0:x1]  # (seeded by its place: the same photo gets the same grain)
                _grain_part(out[crop], base[crop], grown[crop], cell_weight, max(deepest, GRAIN_RING),
                            seed=top * w + left)


def _spans(size: int) -> list[tuple[int, int]]:
    """``[0, size)`` cut into equal spans of at most ``SPLIT_CELL`` px."""
    edges = (0, *_cuts(0, size), size)
    return list(zip(edges[:-1], edges[1:], strict=True))


def _grain_part(out: np.ndarray, base: np.ndarray, grown: np.ndarray, weight: np.ndarray, scale: float,
                seed: int) -> None:
    """Add grain to one deep part of a fill (``weight``, its share of grain per pixel, 0 outside it) in a
    crop holding it and its surroundings (``out``, ``base``, ``grown`` the same crop): noise drawn in each
    band of ``GRAIN_BANDS`` with the spread the luma of ``base`` has there around the defect, read within
    about ``scale`` px of each pixel, less what the fill has already (seeded with ``seed``)."""
    ring = dilate(grown, GRAIN_RING) & ~grown  # (the crop reaches beyond the part's defect)
    if not ring.any():
        return
    py, px = np.nonzero(weight)
    filled = grown[py, px]  # (the networks' own fill: beyond it the edge is feathered into the photo)
    # (the photo's bands without the defects: a blur reaching into them would read a hole's or a stain's
    # edge as grain all along the ring)
    photo, fill = _bands(luma(base), ~grown), _bands(luma(out))
    rng = np.random.default_rng(seed)
    grain = np.zeros(py.size, np.float32)
    near_all = _wide_blur(ring.astype(np.float32), scale)
    for around, have, noise in zip(photo, fill, _bands(rng.standard_normal(grown.shape).astype(np.float32)),
                                   strict=True):
        spread = robust_sigma(around[ring])
        if spread < GRAIN_MIN:  # a photo without grain there: nothing to give
            continue
        # the spread near each pixel (the ring's mean square, edges clipped, weighted by nearness): grain
        # as strong as the sky's in the sky, as the wall's beside a wall
        square = np.minimum(around ** 2, (GRAIN_EDGE * spread) ** 2) * ring
        rms = np.sqrt(_wide_blur(square, scale) / np.maximum(near_all, 1e-6))
        local = rms[py, px] * (spread / max(float(np.median(rms[ring])), 1e-12))  # (on the robust level)
        lacking = np.sqrt(np.maximum(local ** 2 - robust_sigma(have[py, px][filled]) ** 2, 0.0))
        grain += lacking / max(robust_sigma(noise), 1e-12) * noise[py, px]
    # (grain on a fill next to white or black would leave the photo's range)
    out[py, px] = np.clip(out[py, px] + (weight[py, px] * grain)[:, None], 0.0, 1.0)


def _wide_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of ``sigma`` px, done on ``a`` shrunk so that the blur is 4 px there (a wide
    blur's result is smooth: the shrinking costs nothing visible and saves most of the time)."""
    k = max(1, int(sigma // 4))
    if k == 1:
        return cv2.GaussianBlur(a, (0, 0), sigma)
    h, w = a.shape
    small = cv2.resize(a, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / k), (w, h), interpolation=cv2.INTER_LINEAR)


def _bands(y: np.ndarray, valid: np.ndarray | None = None) -> list[np.ndarray]:
    """``y`` split into the detail between successive Gaussian blurs of ``GRAIN_BANDS`` px (0: itself);
    with ``valid`` (bool, ``y``'s shape) the blurs are of its pixels only (normalised: the rest count for
    nothing, as if the valid pixels went on across them)."""
    if valid is None:
        levels = [y if s == 0 else cv2.GaussianBlur(y, (0, 0), s) for s in GRAIN_BANDS]
    else:
        v = valid.astype(np.float32)
        levels = [y if s == 0 else cv2.GaussianBlur(y * v, (0, 0), s) /
                  np.maximum(cv2.GaussianBlur(v, (0, 0), s), 1e-6) for s in GRAIN_BANDS]
    return [fine - coarse for fine, coarse in zip(levels[:-1], levels[1:], strict=True)]


def _cells(own: np.ndarray, label: int, y: int, x: int) -> list[Unit]:
    """Region ``label`` (``own``: its pixels in its bounding box, whose corner is ``(y, x)``) cut into
    cells of at most ``SPLIT_CELL`` px: one unit per cell it reaches, each holding the region's pixels
    in the cell and its fades."""
    bh, bw = own.shape
    cuts = (_cuts(y, bh), _cuts(x, bw))
    edges_y, edges_x = (y, *cuts[0], y + bh), (x, *cuts[1], x + bw)
    out = []
    for j in range(len(edges_y) - 1):
        for i in range(len(edges_x) - 1):
            cy0, cy1 = max(edges_y[j] - SPLIT_FADE, y) - y, min(edges_y[j + 1] + SPLIT_FADE, y + bh) - y
            cx0, cx1 = max(edges_x[i] - SPLIT_FADE, x) - x, min(edges_x[i + 1] + SPLIT_FADE, x + bw) - x
            ys, xs = np.nonzero(own[cy0:cy1, cx0:cx1])
            if ys.size:
                piece = (y + cy0 + int(ys.min()), x + cx0 + int(xs.min()),
                         y + cy0 + int(ys.max()) + 1, x + cx0 + int(xs.max()) + 1)
                out.append(Unit(label, piece, cuts, (j, i)))
    return out


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
           context: int = CONTEXT, grow: int = GROW, feather: float = FEATHER,
           diffuse_depth: float = 0.0, texture_depth: float = 0.0, copied: np.ndarray | None = None
           ) -> np.ndarray:
    """``base`` with the defects of ``photo`` repaired by ``inpaint(windows, window_masks)``, those no
    deeper than ``diffuse_depth`` px by :func:`diffuse` instead, the rest of those no deeper than
    ``texture_depth`` px by :func:`texture_fill` of ``base`` (the pixels that fill reaches are set in
    ``copied``, bool ``H×W``, when given: their colour is the copied texture's, not to be filled in again).

    Args:
        base: ``H×W×3`` float32, what the photo looks like away from the defects.
        photo: ``H×W×3`` float32, the input photo (what the inpainting network sees).
        mask: ``H×W`` bool, True = defect.
        inpaint: restores windows of the photo given their defect masks (one call for all windows, so
            that it can batch them; same sizes out as in).
    Returns a new ``H×W×3`` float32 array; pixels farther than :func:`reach` from the mask (with texture
    fills, their rim farther: ``TEXTURE_RIM``) equal ``base``.
    Defects closer than that to each other are repaired together (the cells of a long one cross-fade),
    so no pixel is blended twice; every defect inside a window is masked for the network, also those
    another window repairs.
    """
    base = np.asarray(base, dtype=np.float32)
    out = base.copy()
    if not mask.any():
        return out
    margin = reach(grow, feather)
    if texture_depth > diffuse_depth:  # (a texture fill reaches its rim farther: the regions hold it too)
        # no rim is wider than the deepest defect's: a larger depth (inf: texture for every one) grows no more
        margin += int(np.ceil(min(texture_depth, _depth(mask)) * TEXTURE_RIM))
    labels, stats = regions(dilate(mask, margin))
    context = max(context - margin, 0)  # the regions hold the margin already
    depth = region_depths(labels, stats, mask)  # (each region's read once, for both questions)
    thin = shallow(len(stats), depth, diffuse_depth)
    for label in thin:
        _diffuse_region(out, base, photo, mask, labels, stats, label, grow, feather)
    textured = shallow(len(stats), depth, texture_depth) - thin
    for label in textured:
        _texture_region(out, base, mask, labels, stats, label, depth(label), grow, feather, copied)
    parts = units(labels, stats, mask, context, skip=thin | textured, depth=depth)
    if not parts:
        return out
    groups = windows([u.box for u in parts], mask.shape, context)
    boxes = [box for box, _ in groups]
    fixed = inpaint([photo[y0:y1, x0:x1] for y0, x0, y1, x1 in boxes],
                    [mask[y0:y1, x0:x1] for y0, x0, y1, x1 in boxes])
    for (box, members), result in zip(groups, fixed, strict=True):
        y0, x0, y1, x1 = box
        m, own = mask[y0:y1, x0:x1], labels[y0:y1, x0:x1]
        thin_here = [label for label in np.unique(own[m]) if depth(int(label)) <= SPLIT_THIN]
        if thin_here:
            result = _meet_sides(result, base[y0:y1, x0:x1], m, m & np.isin(own, thin_here), grow, margin)
        whole = [parts[k].label for k in members if parts[k].cuts is None]
        alpha = repair_weight(m & np.isin(own, whole), grow, feather)[..., None] if whole else 0.0
        for k in members:
            if parts[k].cuts is not None:
                alpha = alpha + repair_weight(m & (own == parts[k].label), grow, feather)[..., None] * \
                    parts[k].share(box)
        out[y0:y1, x0:x1] += alpha * (result - base[y0:y1, x0:x1])
    grown = dilate(mask, grow)
    for label in sorted({u.label for u in parts}):
        if depth(label) + grow > GRAIN_FROM:  # (thinner ones take no grain)
            _add_grain(out, base, mask, grown, labels, stats, label, grow, feather)
    return out

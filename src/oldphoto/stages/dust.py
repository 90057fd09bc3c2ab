"""Dust: the small bright specks left on a damaged print that the defect detector does not see.

The bundled detector finds scratches and the larger spots, but rates most fine dust low: on the
scratched girl (examples/real_old) the curtain keeps dozens of white specks, 1–4 px across, after her
scratches are repaired (their median probability is 0.08).  They are easy to see for a classical test,
the one a retoucher's "dust and scratches" filter makes: a speck far brighter than the median of its
neighbourhood.  Used alone that test takes content too (catch lights, buttons, the rim of an ear, a
watch chain on the Solvay photo), so a speck counts as dust only when

* it is small and compact (at most ``DUST_MAX_AREA`` px, ``DUST_MAX_EXTENT`` px across, at the working
  scale);
* it is bright: dust on a print is mostly emulsion lost down to the paper.  Dark specks are looked for
  only when asked (``dark``, ``--dark-dust``): on a slide, a transparency or a glass plate dust blocks
  the light and shows dark, but on any photo freckles, moles and pupils look just like dark dirt (the
  pipeline leaves the faces it finds, :meth:`oldphoto.pipeline.Restorer.with_dust`).  A dark speck is a
  bright one of the negative, and is judged so, by every test below;
* it stands out from a *flat* ring around it (between ``DUST_RING`` px): by more than ``DUST_RING_K``
  times the ring's own spread and ``DUST_NOISE_K`` times the photo's noise.  A highlight of the scene
  sits in structure (a catch light in an iris and its lashes, a button on a placket, links of a chain),
  dust on a print falls anywhere, mostly on the flat areas where it shows;
* it is not more colourful than its ring (damage takes colour away; a small flower in foliage adds
  some; a gray or toned print's colour is read beyond its tone: a dot of blue ink on it adds some);
* it is not the strongest stretch of something longer: a seam between boards,
  a wire, a hairline crack or the tip of a spire stands out from the median in pieces the size of a
  speck, and at half the specks' threshold the piece joins the rest of it;
* it is not part of writing: light lettering on a dark ground (a slide's cardboard mount, a caption in
  white ink on an album page) stands out from the median as the dust does, and the dots of its i's,
  its full stops, dashes and the small pieces of its letters passed as specks.  Bright regions of
  letter size on a flat ground are grouped into lines as the defect detector's flagged regions are
  (:func:`oldphoto.stages.writing.lines_of_writing`), and what lies in a line's box, or beside one
  such region (a letter, or a word of small print), is the writing's (:func:`_in_writing`).  For dark
  specks, dark writing on a light ground (a caption in ink on a white border, print on a page) is the
  same in the negative.

It is run only when asked (``--dust``, ``--dark-dust``), and then whatever ``--scratches`` decides (a
photo that ``auto`` leaves as it is has its dust repaired alone,
:meth:`oldphoto.pipeline.Restorer.with_dust`): a speck test has no evidence that a photo is damaged,
and on an undamaged one what passes it is content (stars, city lights, glints on water), so it is not
the default.
"""

from __future__ import annotations

import cv2
import numpy as np

from oldphoto.luma import chroma, colourfulness
from oldphoto.quantiles import percentiles
from oldphoto.stages.defects import COLOUR_MAX_GAIN, REPEAT_MAX_LENGTH, colour_beyond_tone
from oldphoto.stages.fidelity import noise_sigma
from oldphoto.stages.tone import Tone
from oldphoto.stages.writing import lines_of_writing

DUST_WORK_SIDE = 1024  # larger photos are searched scaled down to this short side (specks grow with the scan)
DUST_MEDIAN = 7  # px: the neighbourhood whose median a speck stands out from
DUST_MAX_AREA = 16  # px
DUST_MAX_EXTENT = 6  # px
DUST_MIN_CONTRAST = 0.05  # luma, 0–1
DUST_NOISE_K = 5.0
DUST_RING = (1, 5)  # the ring a speck is judged against: this many px beyond it, inner and outer
DUST_RING_K = 4.0
DUST_MIN_RING = 12  # px: specks at the frame with less ring than this are not judged
DUST_LETTER_MIN_HEIGHT = 5  # px: small print's lower-case letters
DUST_LINE_K = 0.5  # a speck that, at this share of its threshold, joins something ...
DUST_LINE_EXTENT = 12  # px at the working side: ... this long or longer is part of a line of the scene
DUST_WORD_INK = 0.15  # a letter or word fills at least this share of its box (a slanted wire far less)
DUST_LETTER_MEDIAN = 21  # px: the median that light letters stand out from whole (see _in_writing)
DUST_LETTER_GROUND = 2.0  # a letter's ground is flat within this many times the photo's noise


def find_dust(gray: np.ndarray, colour: np.ndarray | None = None, dark: bool = False,
              leave: np.ndarray | None = None, tone: Tone | None = None) -> tuple[np.ndarray, int]:
    """The dust specks of a photo whose luma is ``gray`` (``H×W`` in [0, 1]): a bool mask of the photo's
    size and their number.  ``colour``: the photo (``H×W×3``; None: luma alone), read beyond its ``tone``
    when it is gray or toned (:func:`colour_beyond_tone`: ink there is no dust either).
    ``dark``: the dark specks instead of the bright ones.  ``leave``: where specks are the photo's own
    (a bool mask of its size, the faces for dark specks): one that touches it is not dust."""
    h, w = gray.shape
    scale = min(1.0, DUST_WORK_SIDE / min(h, w))
    y = np.asarray(gray, np.float32)
    if dark:  # the negative (its chroma is the photo's negated, as colourful pixel for pixel)
        y = 1.0 - y
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        y = cv2.resize(y, size, interpolation=cv2.INTER_AREA)
        colour = None if colour is None else cv2.resize(np.asarray(colour, np.float32), size,
                                                         interpolation=cv2.INTER_AREA)
        if leave is not None:
            leave = cv2.resize(leave.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    u8 = np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)
    background = cv2.medianBlur(u8, DUST_MEDIAN).astype(np.float32) / 255.0
    sigma = max(noise_sigma(y), 1.0 / 255.0)
    standing_out = max(DUST_MIN_CONTRAST, DUST_NOISE_K * sigma)  # above the median, for specks and letters
    rise = y - background
    candidates = (rise > standing_out).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
    # the fainter regions around the candidates: a speck that reaches DUST_LINE_EXTENT px in its own is the
    # strongest stretch of something longer (a seam between boards, a wire, a hairline crack, the tip of a
    # spire stand out from the median in pieces the size of a speck)
    _, fainter, fainter_stats, _ = cv2.connectedComponentsWithStats(
        (rise > DUST_LINE_K * standing_out).astype(np.uint8), connectivity=8)
    passed: list[int] = []
    cb_cr = None if colour is None else colourfulness(chroma(colour_beyond_tone(colour, tone)))
    inner_kernel = np.ones((2 * DUST_RING[0] + 1,) * 2, np.uint8)
    outer_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * DUST_RING[1] + 1,) * 2)
    pad = DUST_RING[1] + 1
    for i in range(1, n):
        x, t, bw, bh, area = (int(v) for v in stats[i])
        if area > DUST_MAX_AREA or max(bw, bh) > DUST_MAX_EXTENT:
            continue
        x0, y0 = max(0, x - pad), max(0, t - pad)
        x1, y1 = min(y.shape[1], x + bw + pad), min(y.shape[0], t + bh + pad)
        speck = (labels[y0:y1, x0:x1] == i).astype(np.uint8)
        if leave is not None and leave[y0:y1, x0:x1][speck > 0].any():
            continue
        ring = (cv2.dilate(speck, outer_kernel) > 0) & (cv2.dilate(speck, inner_kernel) == 0)
        around = y[y0:y1, x0:x1][ring]
        if around.size < DUST_MIN_RING:
            continue
        q1, middle, q3 = percentiles(around, (25, 50, 75))
        spread = max(float(q3 - q1) / 1.349, sigma)  # the IQR of a normal spread is 1.349 σ
        contrast = float(y[y0:y1, x0:x1][speck > 0].mean()) - float(middle)
        if contrast <= max(DUST_MIN_CONTRAST, DUST_RING_K * spread):
            continue
        if cb_cr is not None:  # damage takes colour away, as for the detector's strokes (defects)
            own = cb_cr[y0:y1, x0:x1]
            if float(own[speck > 0].mean()) - float(np.median(own[ring])) > COLOUR_MAX_GAIN:
                continue
        line = fainter_stats[fainter[y0:y1, x0:x1][speck > 0][0]]  # (the speck lies within one region)
        if max(line[cv2.CC_STAT_WIDTH], line[cv2.CC_STAT_HEIGHT]) >= DUST_LINE_EXTENT:
            continue
        passed.append(i)
    writing = _in_writing(y, u8, standing_out, sigma, stats[passed])
    dust = [i for i, letter in zip(passed, writing, strict=True) if not letter]
    found = np.isin(labels, dust) if dust else np.zeros(y.shape, bool)
    count = len(dust)
    if scale < 1.0:
        grown = cv2.resize(found.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        found = grown > 0.25
    return found, count


def _in_writing(y: np.ndarray, u8: np.ndarray, contrast: float, sigma: float, specks: np.ndarray
                ) -> list[bool]:
    """Which of the ``specks`` (OpenCV statistics, one row each) lie in light writing on a flat ground.
    The letters are the bright regions over a wider median than the specks' (a bold letter's strokes
    are as wide as half of ``DUST_MEDIAN``, and over it they fall apart into pieces), at least
    ``DUST_LETTER_MIN_HEIGHT`` px high, whose ground, the rest of their box grown by 2 px, is flat (a
    robust spread within ``DUST_LETTER_GROUND`` times the photo's noise, or 3 levels): print on a mount
    or a page.  The scene's bright regions sit on structure (collars between faces and suits, flecks of
    light in foliage: 9 levels of spread or more on the example photos), and grouped into lines they
    would take in most of a busy photo.  The letters are grouped into lines as the defect detector's
    flagged regions are, the specks joining them as specks.  Small print's letters join over the wide
    median into whole words, which no line of letters is made of (they are wider than two heights), so
    each such region on a flat ground, letter or word, also holds the specks in its own box grown as a
    line's is (a full stop, a comma, an i-dot).  A region no larger than a speck (and its soft edge) is
    that speck, neither letter nor word (two specks side by side made a line of four letters), and a
    thin line across its box, filling less than ``DUST_WORD_INK`` of it (a slanted wire), is no word.
    Four or more specks of a small letter's height in a row still read as writing."""
    if len(specks) == 0:
        return []
    wide = cv2.medianBlur(u8, DUST_LETTER_MEDIAN).astype(np.float32)
    bright = (u8.astype(np.float32) - wide) > contrast * 255.0
    n, parts, regions, _ = cv2.connectedComponentsWithStats(bright.astype(np.uint8), connectivity=8)
    max_height = REPEAT_MAX_LENGTH * min(u8.shape)
    flat_ground = max(DUST_LETTER_GROUND * sigma, 3.0 / 255.0)
    kinds = ["background"] + ["scene"] * (n - 1)
    in_words = np.zeros(len(specks), bool)
    sx, sy, sw, sh = (specks[:, c] for c in range(4))
    around = parts[sy + sh // 2, sx + sw // 2]  # the region at each speck's middle
    for i in range(1, n):
        x, t, bw, bh, _ = (int(v) for v in regions[i])
        if not DUST_LETTER_MIN_HEIGHT <= bh < max_height:
            continue
        # a region within a speck's box grown by its soft edge (2 px) is that speck over the wide median,
        # and so is a speck-sized one at a speck's middle (of which only a side stood out over the narrow
        # median); a thin line across its box (a slanted wire or crack) is no word
        own = ((sx - 2 <= x) & (x + bw <= sx + sw + 2) & (sy - 2 <= t) & (t + bh <= sy + sh + 2)) | (
            (around == i) & (max(bw, bh) <= 2 * DUST_MAX_EXTENT))
        if own.any() or regions[i, cv2.CC_STAT_AREA] < DUST_WORD_INK * bw * bh:
            continue
        x0, y0 = max(0, x - 2), max(0, t - 2)
        x1, y1 = min(u8.shape[1], x + bw + 2), min(u8.shape[0], t + bh + 2)
        ground = y[y0:y1, x0:x1][~bright[y0:y1, x0:x1]]
        if not ground.size:
            continue
        q1, q3 = percentiles(ground, (25, 75))
        if (q3 - q1) / 1.349 > flat_ground:
            continue
        if bw <= 2 * bh:
            kinds[i] = "content"
        beside = (sx >= x - bh) & (sx + sw <= x + bw + bh) & (sy >= t - bh / 2) & (sy + sh <= t + bh + bh / 2)
        in_words |= beside
    stats = np.concatenate([regions, specks])
    kinds += ["speck"] * len(specks)
    lettering = set(lines_of_writing(stats, kinds, max_height, DUST_LETTER_MIN_HEIGHT))
    return [n + k in lettering or bool(in_words[k]) for k in range(len(specks))]

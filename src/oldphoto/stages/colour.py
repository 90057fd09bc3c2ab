"""Colour from the photo: the restored luma carries the photo's own chroma (``--colour photo``).

The global-restoration networks see colour poorly: the VAE encoder is blind to global levels and casts,
and the latent space is shared with real old photos, which are mostly black-and-white, so the decoded
chroma comes out faded (held-out crops, bundled networks chained: 21.4 dB with the networks' colour,
22.8 dB with the photo's; the first bundled set: 20.3 and 22.7 dB).  Structure, noise and defects live
mostly in luma, so the default keeps the restored luma and takes chroma (YCbCr Cb, Cr) from the input photo:

* under the defect mask the photo's chroma is the defect's (a white scratch is neutral), so it is filled
  in from the surrounding chroma (OpenCV Telea inpainting), except where the repair copied texture
  (``own``): there the copies bring the chroma of the undamaged pixels they came from, while filling
  in from the mask's edge would take in a crack's white fringe where the mask misses it (gray fills on
  the scratched girl's brown curtain);
* chroma noise is removed with a guided filter (He et al., 2010) whose guide is the restored luma, so the
  colours follow the restored edges instead of bleeding across them; the filter may move a chroma value
  by at most ``CHROMA_CLAMP`` times the photo's own chroma noise, so real colour detail that the luma
  does not explain (a red stripe on a grey of equal lightness) is kept: a clean photo keeps its colours.

Toned photos (sepia, cyanotype: their chroma is a function of luma, :mod:`oldphoto.stages.tone`) move
their chroma towards the tone's instead of a filtered one, under the same clamp: re-toning them outright
cost up to 0.6 dB on training crops, since a real toned print's chroma is not exactly a function of its
luma (the clamp keeps the whole gain of removing chroma noise: no crop got worse).

Gray photos come back exactly gray (:func:`gray_colour`), except where the photo holds clear colour:
ink, a stamp, a tint or an arrow added to the print or the scan in colour, which re-toning from luma
alone turned gray (a caption in blue ink on the Solvay photo all but vanished).
"""

from __future__ import annotations

import cv2
import numpy as np

from oldphoto.options import COLOUR_MODES  # noqa: F401  (re-exported)
from oldphoto.stages.fidelity import MIN_SIGMA, donoho_sigma
from oldphoto.stages.tone import LUMA, Tone, luma

# ITU-R BT.601 full-range YCbCr (the JPEG convention), chroma centred on 0
_TO_YCC = np.array([LUMA,
                    [-0.168736, -0.331264, 0.5],
                    [0.5, -0.418688, -0.081312]], dtype=np.float32)
_TO_RGB = np.linalg.inv(_TO_YCC).astype(np.float32)

GUIDE_RADIUS = 2  # pixels; chosen on held-out crops (radius 2-4 within 0.05 dB, 8 blurs colour edges)
GUIDE_EPS = 1e-3
# Largest chroma change of the filter, in units of the chroma noise: on the training crops of the corpus
# (unstructured degradations), 2 keeps the whole mean gain (+0.35 dB) while the worst crop goes from
# -0.44 dB (unclamped: colour texture smoothed) to -0.03 dB.
CHROMA_CLAMP = 2.0
# Colour marks on a gray photo (:func:`colour_marks`), in Cb/Cr units: a gray photo's pixels are within
# 1.5 levels of gray in 95 % of the photo (:func:`oldphoto.stages.tone.fit_tone`), its chroma noise a
# fraction of a level; ballpoint ink and stamps are 20-60 levels of chroma.  From MARK_FROM a pixel's
# colour fades in, from MARK_FULL it is the photo's.  A mark is a stroke or a patch: coloured pixels
# in 8-connected groups of fewer than MARK_MIN_AREA are impulse noise (a colour scanner's, or the
# synthesis': 0.8 % of a held-out gray crop's pixels at up to 117 levels) and go gray.
MARK_FROM = 4.0 / 255.0
MARK_FULL = 8.0 / 255.0
MARK_MIN_AREA = 6
# A hand-tint (rouge on the cheeks, a wash on the lips) is a transparent dye: its chroma is a share of the
# print's lightness, 2-8 levels on mid-tone skin and less in its shadows and soft edges, so the ramp above
# took most of it away (pale rouge on a gray astronaut, 2.7 levels of chroma median: 0.44 of it kept).
# A wash is spread over an area where a scan's chroma noise is not: read on the chroma offsets blurred
# by WASH_SIGMA px (noise of 1 level per channel falls to about 0.1 level), a pixel that departs from
# gray by at least WASH_FLOOR is a mark from WASH_FROM of that blurred colour, in full from WASH_FULL
# (a gray scan departs from gray by a fraction of a level: :func:`oldphoto.stages.tone.fit_tone`).
WASH_SIGMA = 2.0
WASH_FLOOR = 1.0 / 255.0
WASH_FROM = 1.0 / 255.0
WASH_FULL = 2.0 / 255.0


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = GUIDE_RADIUS,
                  eps: float = GUIDE_EPS) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` (H×W float32) steered by ``guide`` (H×W float32)."""
    mean_i = _box(guide, radius)
    mean_p = _box(src, radius)
    a = (_box(guide * src, radius) - mean_i * mean_p) / (_box(guide * guide, radius) - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    return _box(a, radius) * guide + _box(b, radius)


def _inpaint_chroma(chroma: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill ``chroma`` (H×W in [-0.5, 0.5]) under ``mask`` from its surroundings (Telea, in 16 bits).

    Neutral is exactly a level (32768), so a gray photo's fills stay gray: in 8 bits, 0 fell between
    127 and 128 and every fill took half a level of Cb and Cr, up to 0.9 levels of colour in RGB.
    (OpenCV's float32 Telea returns noise.)"""
    c16 = np.clip(np.rint(chroma * 65535.0 + 32768.0), 0, 65535).astype(np.uint16)
    filled = cv2.inpaint(c16, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    out = chroma.copy()
    out[mask] = (filled[mask].astype(np.float32) - 32768.0) / 65535.0
    return out


def photo_colour(restored: np.ndarray, photo: np.ndarray, mask: np.ndarray | None = None,
                 tone: Tone | None = None, radius: int = GUIDE_RADIUS, eps: float = GUIDE_EPS,
                 own: np.ndarray | None = None, denoise: bool = True) -> np.ndarray:
    """``restored``'s luma with ``photo``'s chroma (inpainted under ``mask``, denoised along the luma).

    Args:
        restored: H×W×3 float32 in [0, 1], the network output.
        photo: H×W×3 float32 in [0, 1], the input photo, same size.
        mask: optional H×W bool, True = defect (its chroma is not the photo's).
        tone: the photo's tone, when it is monochrome: the chroma moves towards the tone's chroma of the
            restored luma (and takes it under ``mask``) rather than towards a filtered chroma.
        own: optional H×W bool, pixels whose chroma is ``restored``'s (texture the repair copied there;
            in a toned photo the tone's, as under ``mask``).
        denoise: False keeps the photo's chroma as it is away from ``mask`` and ``own`` (``--no-denoise``).
    Returns H×W×3 float32 in [0, 1]. Works one channel at a time to keep big scans within memory.
    """
    if restored.shape != photo.shape or restored.ndim != 3 or restored.shape[2] != 3:
        raise ValueError(f"restored {restored.shape} and photo {photo.shape} must both be H×W×3")
    y = luma(restored)
    toned = None if tone is None else tone.apply(y)
    chroma = []
    for k in (1, 2):
        c = photo @ _TO_YCC[k]
        sigma = donoho_sigma(c)  # (a chroma plane is centred on 0: the flat-block estimate reads luma)
        # chroma as clean as an 8-bit quantisation: what the estimate sees is colour texture, kept as it is
        limit = CHROMA_CLAMP * sigma if sigma >= MIN_SIGMA and denoise else 0.0
        if mask is not None and mask.any() and toned is None:  # (a toned photo takes its tone's there)
            c = _inpaint_chroma(c, mask)
        if own is not None and own.any() and toned is None:
            c = np.where(own, restored @ _TO_YCC[k], c)
        smooth = guided_filter(y, c, radius, eps) if toned is None else toned @ _TO_YCC[k]
        free = mask  # where the chroma may change freely: under the defects, in a toned photo copies too
        if toned is not None and own is not None:
            free = own if free is None else free | own
        if free is not None and free.any():
            limit = np.where(free, np.inf, limit).astype(np.float32)
        chroma.append(c + np.clip(smooth - c, -limit, limit))
    out = np.empty_like(restored)
    for k in range(3):
        out[..., k] = y + _TO_RGB[k, 1] * chroma[0] + _TO_RGB[k, 2] * chroma[1]
    return np.clip(out, 0.0, 1.0, out=out)


def colour_marks(photo: np.ndarray, tone: Tone) -> np.ndarray | None:
    """How clearly each pixel of a monochrome ``photo`` (H×W×3 in [0, 1]) departs in colour from its
    ``tone``, in [0, 1] (0: in tone, or within the scan's chroma noise); None when no pixel does."""
    cb, cr = _off_tone(photo, tone)
    wash = np.zeros(photo.shape[:2], np.float32)  # the colour of the area around: a tint's wash
    for c in (cb, cr):
        blurred = cv2.GaussianBlur(c, (0, 0), WASH_SIGMA, borderType=cv2.BORDER_REFLECT)
        np.maximum(wash, np.abs(blurred, out=blurred), out=wash)
        del blurred
        np.abs(c, out=c)
    strength = np.maximum(cb, cr, out=cb)
    del cr
    wash -= WASH_FROM
    wash *= 1.0 / (WASH_FULL - WASH_FROM)
    np.clip(wash, 0.0, 1.0, out=wash)
    wash[strength < WASH_FLOOR] = 0.0  # (next to an ink stroke, a gray pixel is no mark)
    strength -= MARK_FROM
    strength *= 1.0 / (MARK_FULL - MARK_FROM)
    np.clip(strength, 0.0, 1.0, out=strength)
    np.maximum(strength, wash, out=strength)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((strength > 0).astype(np.uint8), connectivity=8)
    marks = stats[:, cv2.CC_STAT_AREA] >= MARK_MIN_AREA
    marks[0] = False  # (the gray background)
    if not marks.any():
        return None
    strength[~marks[labels]] = 0.0
    return strength


def _off_tone(photo: np.ndarray, tone: Tone, band: int = 256) -> list[np.ndarray]:
    """``photo``'s departure from its ``tone`` in Cb and Cr (two H×W planes), computed a band of rows at a
    time: the photo re-toned and its offsets whole were two float copies of the photo (a 27 MP gray scan
    took 0.6 GB more and 1.7 s longer to restore than when it was re-toned alone)."""
    h, w = photo.shape[:2]
    planes = [np.empty((h, w), np.float32) for _ in (1, 2)]
    for top in range(0, h, band):
        rows = photo[top:top + band]
        off = rows - tone.apply(luma(rows))
        for plane, k in zip(planes, (1, 2), strict=True):
            plane[top:top + band] = off @ _TO_YCC[k]
    return planes


def gray_colour(restored: np.ndarray, photo: np.ndarray, tone: Tone, mask: np.ndarray | None = None,
                own: np.ndarray | None = None, denoise: bool = True) -> np.ndarray:
    """``restored``'s luma in a gray photo's ``tone``: exactly gray, but the photo's colour marks
    (:func:`colour_marks`) keep their colour as :func:`photo_colour` gives a colour photo's: under
    ``mask`` filled in from around (a stain whose core alone was repaired left a brown ring round a
    gray fill), where the repair copied texture (``own``) the copies'."""
    out = tone.apply(luma(restored))
    marks = colour_marks(photo, tone)
    if marks is None:
        return out
    rows, cols = np.flatnonzero(marks.any(axis=1)), np.flatnonzero(marks.any(axis=0))
    box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)  # marks are small: work on them
    coloured = photo_colour(restored[box], photo[box], None if mask is None else mask[box],
                            own=None if own is None else own[box], denoise=denoise)
    out[box] += marks[box][..., None] * (coloured - out[box])
    return out

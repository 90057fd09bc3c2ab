"""Fading undone on request (``--unfade``): a faded print's black and white points stretched back.

Fading lifts a print's blacks and dims its whites, and on a colour print its three dyes fade unequally and
leave a cast.  No blind correction we measured tells a faded print from a dim or hazy scene without making
many photos worse (docs/training.md), so by default the restoration keeps the photo's levels; a person who
sees that a photo is faded asks for this, as for the auto-levels of a photo editor:

* ``contrast``: the photo's darkest and lightest tones become black and white.  The three channels take the
  same stretch, so colours keep their balance and a toned print its tone; its points are the darkest of the
  channels' black points and the lightest of their white points, so no channel is clipped (as a photo
  editor's auto contrast).  The luma's points were used first: on a warm print (the scratched girl) the
  blue channel lies below the luma's black point, and 82 % of its pixels came out at 0 instead of 25 %,
  the shadows orange; on 30 training photos of the corpus faded by the synthesis, sepia prints came back
  at 24.7 dB with the luma's points and 29.9 dB with these, colour prints 24.7 and 25.6 dB.
* ``colour``: each channel takes its own black and white points, which also takes a faded dye's cast away
  (and the colour of a scene lit by a sunset, or of a green wall filling the frame).  A gray or toned
  photo kept in its tone (``--keep-tone``, the default) is stretched as by ``contrast``: its colour is
  its tone.

The darkest and lightest tones are the ``PERCENTILE``-th percentiles from either end, read on the photo
shrunk (by area) to a ``WORK_SIDE`` px short side, so that grain and single specks do not count, and
without a frame of ``BORDER`` of each side, where a print's white border, a torn edge or the scanner's
lid would pin them.  The gain is at most ``MAX_GAIN``: a scene that spans a narrow range of tones (fog, a
night scene, a nearly blank page) is stretched by no more than that, about its middle tone, which becomes
middle gray as it would with the full stretch, *as far as that lifts none of its darkest tones and dims
none of its lightest*: a faded print has its blacks lifted and its whites dimmed, and the stretch moves
both back, while a night scene has its blacks, fog and a blank page their whites, and an unfading stretch
must not take them away.  So a night scene keeps its blacks and stays dark, fog and a page keep their
whites, an all-white or all-black photo is left as it is, and in ``colour`` a narrow channel is not lifted
about middle gray (a warm scene keeps its low blue).  Until 2026-12-04 the middle tone became middle gray
whatever it moved: an all-white or all-black photo came back gray, a night scene (tones 0 to 0.2) was
lifted to 0.25-0.75, a page of 0.93 with faint writing turned 0.65, and the warm scene turned blue
(``benchmarks/bench_unfade_narrow.py``; docs/restore.md).
"""

from __future__ import annotations

import cv2
import numpy as np

# Chosen on 60 training photos of the corpus at 768 px, faded by the training synthesis
# (oldphoto.synth.oldlook.fade) and read with noise of 0.03 added (the stretch then applied to the
# noise-free faded photo): read at 0.01 % on the photo shrunk by 2 (a 256-px short side), gray prints came
# within 0.4 dB of the noise-free reading (28.8 against 29.1 dB), where at full size they lost 2.9 dB (at
# 0.1 %: 2.3 dB); colour prints, per channel, lost 3.0 dB to the noise (5 to 7 dB read at full size).
PERCENTILE = 0.01
WORK_SIDE = 256
BORDER = 0.03
# The synthesis fades a print to 44 % of its range at the most (a gain of 2.3).  Scenes of a narrow range
# are the photos a stretch makes worse: the worst of those 60 gray prints came out at 19.3 dB without a
# limit and 20.0 dB with it (colour prints, per channel: 17.2 and 18.2 dB; measured when a limited stretch
# was about the middle tone whatever it moved).
MAX_GAIN = 2.5


def _working_copy(image: np.ndarray) -> np.ndarray:
    """``image`` without its frame, shrunk by area to a ``WORK_SIDE`` px short side (not enlarged)."""
    h, w = image.shape[:2]
    bh, bw = int(h * BORDER), int(w * BORDER)
    core = image[bh:h - bh, bw:w - bw]
    scale = WORK_SIDE / min(core.shape[:2])
    if scale < 1.0:
        size = (max(1, round(core.shape[1] * scale)), max(1, round(core.shape[0] * scale)))
        core = cv2.resize(np.ascontiguousarray(core, np.float32), size, interpolation=cv2.INTER_AREA)
    return core


def black_and_white_points(image: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """The tones of ``image`` (``H×W×3`` in [0, 1]) that become black and white: two arrays of 3, each
    channel's own if ``per_channel``, else the darkest of the channels' black points and the lightest of
    their white points for all three (no channel is clipped beyond ``PERCENTILE``)."""
    core = _working_copy(image)
    low, high = np.percentile(core.reshape(-1, 3), (PERCENTILE, 100.0 - PERCENTILE), axis=0)
    if not per_channel:
        low, high = np.full(3, low.min()), np.full(3, high.max())
    return low.astype(np.float32), high.astype(np.float32)


def unfade(image: np.ndarray, mode: str, toned: bool = False) -> np.ndarray:
    """``image`` (``H×W×3`` in [0, 1]) with its fading undone as ``mode`` says (``off``, ``contrast`` or
    ``colour``, see the module).  ``toned``: the photo is gray or toned, so ``colour`` stretches it as
    ``contrast`` does."""
    return unfaded(image, mode, toned)[0]


def unfaded(image: np.ndarray, mode: str, toned: bool = False) -> tuple[np.ndarray, float]:
    """:func:`unfade`'s photo and how much it stretched the tones: the largest of the channels' gains (1:
    not at all, when the tones already reach black and white: a glint, a lamp or a white frame within
    the picture can pin the white point)."""
    if mode == "off":
        return image, 1.0
    low, high = black_and_white_points(image, per_channel=mode == "colour" and not toned)
    span = np.maximum(high - low, 1e-6)
    gain = np.minimum(1.0 / span, MAX_GAIN)
    # ``black``: the tone that becomes black.  Where the gain is limited the stretch is about the middle
    # tone, which becomes middle gray (as the full stretch would make it), as far as the darkest tone is
    # not lifted, (low - black) * gain <= low, nor the lightest dimmed, (high - black) * gain >= high
    middle, shrink = (low + high) / 2.0 - 0.5 / gain, 1.0 - 1.0 / gain
    black = np.where(gain < 1.0 / span, np.clip(middle, low * shrink, high * shrink), low)
    out = np.subtract(image, black, dtype=np.float32)  # (one photo-sized buffer: big scans)
    out *= gain.astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out), float(gain.max())

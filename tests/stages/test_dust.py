"""The fine-dust finder (``--dust``): bright specks on flat areas, not the scene's highlights."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from oldphoto.stages.dust import DUST_WORK_SIDE, find_dust


def _grainy(h: int, w: int, level: float = 0.35, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(level + rng.normal(0, 0.01, (h, w)), 0, 1).astype(np.float32)


def _speck(y: np.ndarray, cy: int, cx: int, value: float, r: int = 1) -> None:
    y[cy - r:cy + r + 1, cx - r:cx + r + 1] = value


def test_white_specks_on_a_flat_area_are_found():
    y = _grainy(160, 200)
    spots = [(30, 40), (80, 150), (120, 60), (140, 180)]
    for cy, cx in spots:
        _speck(y, cy, cx, 0.8)
    found, count = find_dust(y)
    assert count == len(spots)
    for cy, cx in spots:
        assert found[cy, cx]
    assert found.sum() <= len(spots) * 9 + 4  # the specks, not their surroundings


def test_dark_specks_and_grain_are_left():
    """Dark specks look like freckles, moles and pupils; plain grain is no dust."""
    y = _grainy(160, 200, seed=1)
    _speck(y, 50, 50, 0.02)
    _speck(y, 100, 120, 0.05)
    found, count = find_dust(y)
    assert count == 0 and not found.any()


def test_a_highlight_set_in_structure_is_left():
    """A catch light (a white dot in a dark iris set in a light eye) and a glint on an edge between a
    dark and a light area: their rings are not flat."""
    y = _grainy(160, 200, level=0.6, seed=2)
    cv2.circle(y, (60, 80), 6, 0.1, -1)  # the iris, about the size of the speck's ring
    _speck(y, 78, 60, 0.95)  # its catch light, near its edge
    y[100:, :] = 0.2  # a dark coat below a light wall
    _speck(y, 100, 150, 0.95)  # a glint on its edge
    found, count = find_dust(y)
    assert count == 0, np.argwhere(found)


def test_a_coloured_speck_in_a_colour_photo_is_content():
    """Damage takes colour away: a small red flower in a green field is the scene's."""
    y = _grainy(120, 120, seed=3)
    rgb = np.repeat(y[..., None], 3, axis=2)
    rgb[..., 1] += 0.05
    rgb[58:61, 58:61] = (0.95, 0.3, 0.3)  # brighter in luma than the field, and red
    rgb[28:31, 88:91] = 0.9  # white dust
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    found, count = find_dust(luma, rgb)
    assert count == 1 and found[29, 89] and not found[59, 59]


def test_a_coloured_speck_on_a_toned_print_is_content():
    """On a sepia print colour is read beyond the tone: a blue ink dot (an i's dot in a name written on
    it) is the print's, white dust is dust, and a speck in the print's own warm hue is judged by luma."""
    from oldphoto.stages.tone import fit_tone

    y = _grainy(120, 120, seed=3)
    y += np.linspace(-0.2, 0.5, 120, dtype=np.float32)[:, None]  # the print's tones, for its tone's fit
    rgb = np.clip(y[..., None] * np.array((1.1, 0.95, 0.72), np.float32), 0, 1)
    tone = fit_tone(rgb)
    rgb[28:31, 58:61] = (0.55, 0.65, 0.98)  # a light blue ink dot
    rgb[28:31, 88:91] = 0.9  # white dust
    rgb[28:31, 28:31] = (1.0, 0.9, 0.68)  # a pale sepia speck
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    assert tone is not None and not tone.gray
    found, count = find_dust(luma, rgb, tone=tone)
    assert count == 2 and found[29, 89] and found[29, 29] and not found[29, 59]
    assert find_dust(luma)[1] == 3  # by luma alone


def test_a_large_scan_is_searched_scaled_down_and_answered_at_full_size():
    side = DUST_WORK_SIDE * 2
    y = _grainy(side, side + 100, seed=4)
    _speck(y, 900, 1300, 0.85, r=2)  # 5 px at full size, 2–3 at the working size
    found, count = find_dust(y)
    assert found.shape == y.shape and count == 1 and found[900, 1300]


def test_the_dots_and_dashes_of_light_writing_on_a_dark_mount_are_left():
    """A slide's cardboard mount (or an album page) printed in light ink: the dots of the i's, the full
    stops and dashes stand out from their median as dust does, and were taken for it (a scan review,
    2026-12-04: "Roma - Fontana di Trevi  No. 17" lost its dash, its i-dots and its full stop with
    --dust).  Dust on the mount, away from the writing, is still found."""
    y = _grainy(300, 520, level=0.11, seed=5)  # (letters are under a tenth of the short side)
    cv2.putText(y, "Roma - di Trevi. No. 17 iii", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0.85, 2,
                cv2.LINE_AA)
    cv2.putText(y, "KODACHROME - PROCESSED", (10, 80), cv2.FONT_HERSHEY_DUPLEX, 0.9, 0.85, 2,
                cv2.LINE_AA)
    _speck(y, 105, 400, 0.8)  # dust below the writing
    _speck(y, 200, 150, 0.8)
    writing = np.zeros(y.shape, bool)
    writing[10:90, :] = True
    found, count = find_dust(y)
    assert found[105, 400] and found[200, 150]
    assert not (found & writing).any(), np.argwhere(found & writing)


def test_dark_specks_are_found_when_asked_and_bright_ones_then_left():
    """``dark``: the dust of a slide or a glass plate, which blocks the light, is judged as the bright
    specks are in the negative."""
    y = _grainy(160, 200, level=0.6, seed=6)
    spots = [(30, 40), (80, 150), (140, 180)]
    for cy, cx in spots:
        _speck(y, cy, cx, 0.15)
    _speck(y, 120, 60, 0.95)  # a bright one
    found, count = find_dust(y, dark=True)
    assert count == len(spots) and all(found[cy, cx] for cy, cx in spots) and not found[120, 60]


@pytest.mark.parametrize("lines,scale,thickness", [
    # a caption in dark ink on a print's white border: grouped into lines of writing
    (("Aunt Ida in Nice, Sept. 1931 - Villa Fiori.",), 0.8, 2),
    # small print, letters 5-9 px high, which join over the letters' wide median into whole words that
    # make no line of letters: a word on a flat ground holds its full stops, commas and i-dots (a review of
    # 2026-12-06: a page of 10-18 px print lost 96 of its 786 pieces of ink to dark dust)
    (("Taf. i. Lindenstr. 4; Ida, Lili. i.j. Vgl. S. 12", "links: Tante Ida; rechts: Fritz."), 0.4, 1),
])
def test_the_full_stops_and_i_dots_of_dark_writing_are_left(lines, scale, thickness):
    """Dark writing on a white border or a page: its dots stand out from the median as dark dust does,
    and are left.  A dark speck below the writing is dust."""
    y = _grainy(300, 720, level=0.9, seed=7)
    for row, text in enumerate(lines):
        cv2.putText(y, text, (10, 40 + 24 * row), cv2.FONT_HERSHEY_SIMPLEX, scale, 0.15, thickness,
                    cv2.LINE_AA)
    _speck(y, 150, 300, 0.2)
    writing = np.zeros(y.shape, bool)
    writing[10:40 + 24 * len(lines), :] = True
    found, count = find_dust(y, dark=True)
    assert found[150, 300] and not (found & writing).any(), np.argwhere(found & writing)


def test_a_speck_touching_the_area_to_leave_is_not_dust():
    """``leave`` (the faces, for dark specks): a mole in it is the photo's own, at any working scale."""
    side = DUST_WORK_SIDE * 2
    y = _grainy(side, side, level=0.6, seed=8)
    _speck(y, 500, 500, 0.1, r=2)  # a mole in a face
    _speck(y, 1500, 1500, 0.1, r=2)  # dust
    face = np.zeros(y.shape, bool)
    face[400:700, 400:650] = True
    found, count = find_dust(y, dark=True, leave=face)
    assert count == 1 and found[1500, 1500] and not found[500, 500]


def test_the_darkest_stretch_of_a_faint_line_is_left():
    """A seam between boards or a wire, faint, with a darker stretch a speck's size: the stretch stands
    out as dust does, but at half the contrast it joins the line, and it is the line's."""
    y = _grainy(160, 200, level=0.7, seed=10)
    y[80:82, 20:180] -= 0.05  # the faint line, about the specks' threshold: pieces of it stand out
    y[79:82, 100:103] = 0.45  # its darkest stretch
    _speck(y, 30, 50, 0.45)  # a lone speck as dark
    found, count = find_dust(y, dark=True)
    assert count == 1 and found[30, 50] and not found[80, 101]


def test_a_word_holds_its_full_stop_and_a_speck_no_other():
    """A single word of small print (no line of letters) holds the full stop just after it.  A speck is
    no letter: neither two specks side by side nor a ring-shaped one hold each other or themselves, and
    a thin slanted wire across a plain sky is no word that would hold the dust beside it."""
    y = np.full((160, 320), 0.9, np.float32)
    y[40:47, 40:70] = 0.15  # a word (its letters joined over the wide median) ...
    y[40:47, 42:68:4] = 0.9
    y[45:47, 72:74] = 0.15  # ... and its full stop
    y = cv2.GaussianBlur(y, (0, 0), 0.7) + np.random.default_rng(12).normal(0, 0.01, y.shape).astype(y.dtype)
    found, count = find_dust(y, dark=True)
    assert count == 0, np.argwhere(found)

    y = _grainy(160, 320, level=0.4, seed=13)
    for cx in (40, 48):  # two 5-px specks 3 px apart
        cv2.circle(y, (cx, 40), 2, 0.8, -1)
    ring = np.ones((5, 5), bool)
    ring[1:4, 1:4] = False
    y[100:105, 60:65][ring] = 0.8
    cv2.line(y, (120, 150), (310, 110), 0.8, 1)  # a wire
    for cx, cy in ((200, 120), (260, 128)):  # dust beside it
        _speck(y, cy, cx, 0.8)
    found, count = find_dust(y)
    assert count == 5 and found[40, 40] and found[40, 48] and found[100, 62], np.argwhere(found)

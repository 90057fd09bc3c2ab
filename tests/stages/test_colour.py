"""--colour photo: the restored luma with the photo's own chroma, filled in under defects."""

import numpy as np
import pytest
from skimage import data

from oldphoto.metrics.fullref import psnr
from oldphoto.stages.colour import MARK_FULL, colour_marks, gray_colour, guided_filter, photo_colour
from oldphoto.stages.tone import fit_tone, luma


@pytest.fixture(scope="module")
def photo():
    return (data.astronaut()[100:228, 100:228] / 255.0).astype(np.float32)


def test_colours_of_the_photo_come_back_onto_a_gray_restoration(photo):
    restored = np.repeat(luma(photo)[..., None], 3, axis=2)  # all colour lost, structure kept
    out = photo_colour(restored, photo)
    assert psnr(restored, photo) < 25
    assert psnr(out, photo) > 35
    # the luma is the restoration's, not the photo's
    assert np.abs(luma(out) - luma(restored)).mean() < 0.01


def test_luma_comes_from_the_restoration(photo):
    restored = np.clip(photo * 0.5 + 0.25, 0, 1)  # different luma, same hue
    out = photo_colour(restored, photo)
    assert np.abs(luma(out) - luma(restored)).mean() < 0.01
    assert np.abs(luma(out) - luma(photo)).mean() > 0.05


def test_chroma_under_a_defect_is_filled_from_around_it():
    red = np.zeros((64, 64, 3), np.float32)
    red[...] = (0.8, 0.2, 0.2)
    photo = red.copy()
    mask = np.zeros((64, 64), bool)
    mask[:, 30:34] = True
    photo[mask] = 1.0  # a white scratch: neutral chroma
    restored = red.copy()
    with_fill = photo_colour(restored, photo, mask)
    without = photo_colour(restored, photo)
    err = lambda img: np.abs(img[mask] - red[mask]).mean()  # noqa: E731
    assert err(with_fill) < 0.02 < err(without)


def test_where_the_repair_copied_texture_its_colour_is_kept():
    red = np.zeros((64, 64, 3), np.float32)
    red[...] = (0.8, 0.2, 0.2)
    photo = red.copy()
    photo[:, 27:37] = 1.0  # a white crack, and its fringe that the mask misses
    mask = np.zeros((64, 64), bool)
    mask[:, 30:34] = True
    copied = np.zeros((64, 64), bool)
    copied[:, 26:38] = True  # what the texture fill reached (the defect, grown)
    restored = red.copy()  # the copies' colour
    err = lambda img: np.abs(img[copied] - red[copied]).max()  # noqa: E731
    assert err(photo_colour(restored, photo, mask & ~copied, own=copied)) < 0.02
    assert err(photo_colour(restored, photo, mask)) > 0.1  # filled in from the fringe: paler


def test_a_toned_photo_takes_its_tone_where_the_repair_copied_texture(photo):
    from oldphoto.stages.tone import fit_tone

    sepia = np.clip(luma(photo)[..., None] * np.array([1.0, 0.85, 0.65], np.float32), 0, 1)
    tone = fit_tone(sepia)
    assert tone is not None
    damaged = sepia.copy()
    copied = np.zeros(sepia.shape[:2], bool)
    copied[:, 20:28] = True
    damaged[copied] = 1.0  # a white crack: neutral
    out = photo_colour(sepia, damaged, None, tone, own=copied)
    expected = tone.apply(luma(sepia))
    assert np.abs(out[copied] - expected[copied]).max() < 0.02


def test_gray_photo_stays_gray(photo):
    """Also where its defects' chroma is filled in (a gray photo kept out of its tone, --no-keep-tone):
    the fill took 0.9 levels of colour when it was made in 8 bits."""
    gray = np.repeat(luma(photo)[..., None], 3, axis=2)
    mask = np.zeros(gray.shape[:2], bool)
    mask[40:48, 20:200] = True
    for defects in (None, mask):
        out = photo_colour(gray * 0.9, gray, defects)
        assert np.abs(out - out.mean(axis=2, keepdims=True)).max() < 1e-5


def _gray_with_blue_ink(photo):
    """The photo made gray, with a stroke of blue ink across it (a caption, an arrow) on 2 % of it."""
    gray = np.repeat(luma(photo)[..., None], 3, axis=2)
    ink = np.zeros(gray.shape[:2], bool)
    ink[60:63, 10:110] = True
    inked = gray.copy()
    inked[ink] = (0.16, 0.16, 0.47)
    return gray, inked, ink


def test_a_gray_photo_keeps_what_it_holds_in_colour(photo):
    """A caption in blue ink on a gray photo is kept blue, and only it: re-toned from luma alone, it
    was turned gray, and all but vanished into a background of its own lightness."""
    gray, inked, ink = _gray_with_blue_ink(photo)
    tone = fit_tone(inked)
    assert tone is not None and tone.gray  # 2 % in colour: still a gray photo
    marks = colour_marks(inked, tone)
    assert marks[ink].min() == 1.0 and not marks[~ink].any()
    assert colour_marks(gray, tone) is None
    restored = inked * 0.95 + 0.02  # the restoration's luma, with a tint of its own
    restored[..., 0] += 0.01
    out = gray_colour(restored, inked, tone)
    assert np.abs(out[ink] - (inked[ink] * 0.95 + 0.02)).max() < 0.02  # the ink, at the new luma
    elsewhere = out[~ink]
    assert (elsewhere.max(axis=1) == elsewhere.min(axis=1)).all()
    assert np.allclose(luma(out), luma(restored), atol=1e-5)


def test_under_a_defect_a_marks_colour_is_filled_in_from_around(photo):
    """A brown stain on a gray print whose core alone is repaired took the tone's gray there, and left a
    brown ring round a gray fill; its chroma is filled in from around, as a colour photo's is.  A defect
    on the gray stays exactly gray."""
    import cv2

    gray = np.repeat(luma(photo)[..., None], 3, axis=2)
    spot = np.zeros(gray.shape[:2], np.float32)
    cv2.circle(spot, (40, 40), 6, 1.0, -1)
    spot = cv2.GaussianBlur(spot, (0, 0), 3)[..., None]
    brown = np.array([1.0, 0.76, 0.47], np.float32)
    stained = np.rint((gray * (1 - 0.35 * spot) + 0.35 * spot * gray * brown) * 255) / 255
    tone = fit_tone(stained)
    assert tone is not None and tone.gray
    mask = spot[..., 0] > 0.5  # the stain's core
    mask[100:103, 10:120] = True  # a scratch across the gray
    out = gray_colour(stained, stained, tone, mask)
    warm = out[..., 0] - out[..., 2]
    ring = (spot[..., 0] > 0.2) & ~mask
    core = spot[..., 0] > 0.5
    assert warm[core].mean() > 0.5 * warm[ring].mean() > 0.0
    spread = out.max(axis=2) - out.min(axis=2)
    assert spread[100:103].max() == 0.0


def test_faint_colour_is_a_scans_noise_not_a_mark(photo):
    gray = np.repeat(luma(photo)[..., None], 3, axis=2)
    noisy = gray + np.random.default_rng(0).normal(0, 1.0 / 255, gray.shape).astype(np.float32)
    tone = fit_tone(gray)
    assert colour_marks(noisy, tone) is None
    assert colour_marks(gray + [0.0, 0.0, 3 * MARK_FULL], tone).min() == 1.0
    speckled = gray.copy()  # coloured impulse noise: single pixels, not marks
    speckled[::7, ::9] = (0.9, 0.1, 0.2)
    assert colour_marks(speckled, tone) is None


def test_a_pale_hand_tint_on_a_gray_photo_keeps_its_colour(photo):
    """Rouge brushed on a cheek of a gray print is a transparent dye: its chroma is a share of the
    skin's lightness, 1-5 levels here, under the 4-8 levels that ink takes.  It was faded to a third and
    its soft edge cut off; spread over an area as it is, it is kept (and a scan's chroma noise is not)."""
    import cv2

    gray = np.repeat(luma(photo)[..., None], 3, axis=2)
    h, w = gray.shape[:2]
    cheek = np.zeros((h, w), np.float32)
    cv2.ellipse(cheek, (98, 28), (12, 9), 0, 0, 360, 1.0, -1)  # her left cheek
    cheek = cv2.GaussianBlur(cheek, (0, 0), 4)[..., None]
    tinted = np.rint(gray * (1 - 0.3 * cheek * np.array([0.0, 0.2, 0.2], np.float32)) * 255) / 255
    tone = fit_tone(tinted)
    assert tone is not None and tone.gray
    chroma = np.abs((tinted - gray)[..., 0] - (tinted - gray)[..., 1]) * 255  # about R - G
    dyed = chroma >= 3  # (a level and a half of Cr, and more)
    assert dyed.sum() > 100
    out = gray_colour(tinted, tinted, tone)
    kept = (out[..., 0] - out[..., 1])[dyed].sum() / (tinted[..., 0] - tinted[..., 1])[dyed].sum()
    assert kept > 0.9
    far = cv2.dilate(dyed.astype(np.uint8), np.ones((15, 15), np.uint8)) == 0
    assert (out[far].max(axis=1) == out[far].min(axis=1)).all()  # the rest stays exactly gray
    noisy = gray + np.random.default_rng(1).normal(0, 1.0 / 255, gray.shape).astype(np.float32)
    assert colour_marks(noisy, tone) is None


def test_colour_marks_read_a_big_scan_without_whole_float_copies_of_it(photo):
    """The offsets from the tone are read a band of rows at a time, as they were whole: the photo re-toned
    and its offsets (two float copies of it, 24 bytes a pixel) took a 27 MP gray scan 0.6 GB more."""
    import tracemalloc

    from oldphoto.stages.colour import _TO_YCC, _off_tone
    from oldphoto.stages.tone import Tone

    _, inked, ink = _gray_with_blue_ink(photo)
    sepia = np.clip(inked * [1.07, 0.95, 0.78] + [0.03, 0.01, 0.0], 0, 1).astype(np.float32)
    sepia_tone = fit_tone(np.clip(luma(sepia)[..., None] * [1.07, 0.95, 0.78] + [0.03, 0.01, 0.0], 0, 1))
    for image, tone in ((inked, Tone(None)), (sepia, sepia_tone)):
        whole = image - tone.apply(luma(image))
        for k, plane in zip((1, 2), _off_tone(image, tone, band=7), strict=True):
            assert np.array_equal(plane, whole @ _TO_YCC[k])
    big = np.repeat(np.random.default_rng(0).random((600, 800, 1), dtype=np.float32), 3, axis=2)
    big[10:13, 10:500] = (0.16, 0.16, 0.47)
    tracemalloc.start()
    try:
        colour_marks(big, Tone(None))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 26 * 600 * 800  # (whole: 32 bytes a pixel; a band at a time about 21 here)


def test_guided_filter_removes_noise_but_keeps_the_guides_edges():
    rng = np.random.default_rng(0)
    step = np.zeros((64, 64), np.float32)
    step[:, 32:] = 1.0
    noisy = step + rng.normal(0, 0.1, step.shape).astype(np.float32)
    out = guided_filter(step, noisy)
    assert np.abs(out - step).mean() < 0.5 * np.abs(noisy - step).mean()
    assert out[:, 34:].mean() - out[:, :30].mean() > 0.9  # the edge is not smeared


def test_shape_mismatch_is_an_error(photo):
    with pytest.raises(ValueError, match="H×W×3"):
        photo_colour(photo[:10], photo)


def test_a_clean_photos_colour_detail_is_kept_and_chroma_noise_removed():
    # red and green stripes of equal luma: the guide (luma) is flat, so an unclamped guided filter
    # would average them to grey-brown; the photo is clean, so nothing may change
    yy, xx = np.mgrid[0:64, 0:64]
    stripes = np.where((xx // 3) % 2 == 0, 1.0, 0.0)[..., None].astype(np.float32)
    red, green = np.array([0.6, 0.3, 0.3], np.float32), np.array([0.3, 0.453, 0.3], np.float32)
    assert abs(luma(red[None, None])[0, 0] - luma(green[None, None])[0, 0]) < 1e-3
    clean = stripes * red + (1 - stripes) * green
    assert np.abs(photo_colour(clean, clean) - clean).max() < 0.01
    # chroma noise on a photo whose colours follow its luma still goes
    rng = np.random.default_rng(1)
    photo = (data.astronaut()[100:228, 100:228] / 255.0).astype(np.float32)
    noisy = np.clip(photo + rng.normal(0, 0.03, photo.shape).astype(np.float32), 0, 1)
    out = photo_colour(photo, noisy)
    chroma_error = lambda img: np.abs(img - luma(img)[..., None] - (photo - luma(photo)[..., None])).mean()  # noqa: E731
    assert chroma_error(out) < 0.6 * chroma_error(noisy)


def test_a_toned_photo_moves_towards_its_tone_only_as_far_as_its_chroma_noise():
    from oldphoto.stages.tone import fit_tone

    rng = np.random.default_rng(2)
    y = (data.camera()[::4, ::4] / 255.0).astype(np.float32)
    sepia = np.clip(y[..., None] + np.array([0.06, 0.01, -0.07], np.float32) * (1 - y[..., None]), 0, 1)
    # a print whose chroma is not exactly a function of its luma: a faint warmer patch (real content)
    print_ = sepia.copy()
    print_[20:60, 20:60] += np.array([0.02, 0.0, -0.02], np.float32)
    noisy = np.clip(print_ + rng.normal(0, 0.01, print_.shape).astype(np.float32) * [1, 0.2, 1], 0, 1)
    tone = fit_tone(noisy, max_residual=0.02)
    assert tone is not None and not tone.gray
    out = photo_colour(noisy, noisy, tone=tone)
    retoned = tone.apply(luma(noisy))
    # re-toning outright erases the warmer patch; the clamped move keeps it and still removes chroma noise
    assert psnr(out, print_) > psnr(retoned, print_)
    assert psnr(out, print_) > psnr(noisy, print_)
    # under a defect the chroma becomes the tone's
    mask = np.zeros(y.shape, bool)
    mask[100:110, :] = True
    out = photo_colour(noisy, noisy, mask, tone)
    assert np.abs(out[mask] - retoned[mask]).max() < 0.02

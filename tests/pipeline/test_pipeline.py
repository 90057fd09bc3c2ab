"""Restorer end to end with tiny random networks passed explicitly (the product loads weights files)."""

from __future__ import annotations

import argparse
import pathlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_nets import smooth_image, tiny_models

from oldphoto import pipeline
from oldphoto.pipeline import RestoreOptions, Restorer
from oldphoto.stages.tone import fit_tone


class StripeDetector(torch.nn.Module):
    """Stand-in detector: defect where the gray input is very dark, or very bright with ``bright`` (so
    tests control the mask)."""

    def __init__(self, bright: bool = False):
        super().__init__()
        self.sign = 1.0 if bright else -1.0

    def forward(self, x):
        return (self.sign * x - 0.8) * 30.0


def restorer(models, **kw):
    kw.setdefault("faces", False)
    return Restorer(models=models, device="cpu", **kw)


@pytest.mark.parametrize("h,w", [(37, 53), (101, 77), (64, 64), (9, 130)])
@pytest.mark.parametrize("scratches", ["off", "on"])
def test_output_has_exactly_the_input_size(models_no_faces, h, w, scratches):
    img = smooth_image(h, w)
    mask = np.zeros((h, w), bool)
    mask[h // 2, w // 4:] = True
    result = restorer(models_no_faces, scratches=scratches).restore(img, mask=mask)
    assert result.image.shape == (h, w, 3) and result.image.dtype == np.float32
    assert np.isfinite(result.image).all() and result.image.min() >= 0 and result.image.max() <= 1
    assert result.path == ("quality" if scratches == "off" else "scratch")
    assert set(result.timings) >= {"defects", "restore"} | ({"repair"} if scratches == "on" else set())


def test_hr_path_by_flag_and_by_size(models_no_faces):
    img = smooth_image(48, 80)
    mask = np.zeros((48, 80), bool)
    mask[20:22, 10:60] = True
    assert restorer(models_no_faces, hr=True).restore(img, mask=mask).path == "hr"
    assert restorer(models_no_faces, hr_above=0.003).restore(img, mask=mask).path == "hr"  # 3840 px > 3000
    r = restorer(models_no_faces).restore(img, mask=mask)
    assert r.path == "scratch" and np.array_equal(r.mask, mask)
    hr = restorer(models_no_faces, hr=True).restore(img, mask=mask)
    assert hr.mask.sum() > mask.sum()  # the HR path dilates the mask (official 3×3 ×3)


def test_the_hr_path_does_not_grow_a_mask_found_on_a_smaller_view(models_no_faces):
    """The HR path's official dilation (3×3, three times) is for a mask drawn at the photo's own size;
    one found on a view scaled down and enlarged is as wide as its defects already, and grown again it
    had detail beside hairlines filled from afar."""
    # gray and gently shaded, as in test_auto_decides_from_the_predicted_mask: the line is no outline
    img = (0.5 + 0.5 * (smooth_image(128, 96) - 0.5)).astype(np.float32)
    img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    img[4:124, 59:62] = 1.0  # a scratch down the photo, still one at two thirds of its size
    models = {**models_no_faces, "detector": StripeDetector(bright=True)}
    for detect_size in (0, 64):  # found at the photo's own size, then on a 64-px view
        found = restorer(models, scratches="on", detect_size=detect_size).detect(img).mask
        r = restorer(models, hr=True, scratches="on", detect_size=detect_size).restore(img)
        assert r.path == "hr" and found[4:124, 59:62].all()
        if detect_size:
            assert np.array_equal(r.mask, found)  # repaired as found
        else:
            assert r.mask.sum() > found.sum()
        # the mask repaired, given back (--save-mask, the web page's marks), is repaired as it was, and a
        # new mark is grown as the official code grows a mask
        marked = r.mask.copy()
        marked[20:23, 10:30] = True
        again = restorer(models, hr=True, scratches="on", detect_size=detect_size).restore(img, mask=marked)
        assert np.array_equal(again.mask[:, 40:], r.mask[:, 40:])
        assert again.mask[17:26, 7:33].all()


def test_an_ignored_mask_does_not_grow_the_dust_on_the_hr_path(models_no_faces):
    """--scratches off ignores a user's mask and repairs --dust's specks alone; on the HR path the mere
    presence of the ignored mask had the dust, found on a smaller view, grown as a user's mask is."""
    rng = np.random.default_rng(1)
    photo = np.clip(0.4 + rng.normal(0, 0.01, (128, 160, 3)), 0, 1).astype(np.float32)
    photo[40:43, 60:63] = 0.9
    mask = np.zeros((128, 160), bool)
    mask[100, 20:40] = True
    r = restorer(models_no_faces, dust=True, scratches="off", hr=True, detect_size=64)
    alone, ignored = r.restore(photo), r.restore(photo, mask=mask)
    assert alone.path == ignored.path == "hr" and alone.mask[41, 61]
    assert np.array_equal(ignored.mask, alone.mask) and np.array_equal(ignored.image, alone.image)


def test_user_mask_overrides_detection_and_off_ignores_it(models_no_faces):
    img = smooth_image(40, 40)
    mask = np.zeros((40, 40), np.uint8)
    mask[10:12] = 255
    r = restorer(models_no_faces, scratches="auto").restore(img, mask=mask)
    assert r.path == "scratch" and np.array_equal(r.mask, mask > 0)
    assert restorer(models_no_faces, scratches="off").restore(img, mask=mask).path == "quality"
    with pytest.raises(ValueError, match="mask is 30×40 pixels but the photo is 40×40"):
        restorer(models_no_faces).restore(img, mask=np.zeros((40, 30)))


@pytest.mark.parametrize("kw", [{}, {"compat": "official"}])
def test_a_mask_marking_most_of_the_photo_is_refused(models_no_faces, kw):
    """Up to three quarters of a photo may be marked; more is an inverted mask far more often than a
    photo to repaint, and is refused (--scratches off ignores a mask, and so this one too)."""
    img = smooth_image(40, 40)
    mask = np.ones((40, 40), bool)
    mask[:10] = False  # 75 %
    assert restorer(models_no_faces, **kw).restore(img, mask=mask).path == "scratch"
    mask[9, 0] = True
    with pytest.raises(ValueError, match=r"the mask marks 75 % .*: is it inverted\?"):
        restorer(models_no_faces, **kw).restore(img, mask=mask)
    assert restorer(models_no_faces, scratches="off").restore(img, mask=mask).path == "quality"


@pytest.mark.parametrize("kw", [{"scratch_min_area": 0.5}, {"compat": "official"}])
def test_auto_repairs_a_small_user_mask_as_given(models_no_faces, kw):
    """A user's mask is repaired as given: --scratches auto's area rule (--scratch-min-area, the official
    mode's 0.0002) judges the detector's evidence, not one speck the user marked by hand."""
    img = smooth_image(80, 80)
    mask = np.zeros((80, 80), bool)
    mask[40, 40] = True  # 1/6400 of the photo
    r = restorer(models_no_faces, **kw).restore(img, mask=mask)
    assert r.path == "scratch" and r.mask[40, 40]


def test_auto_decides_from_the_predicted_mask(models_no_faces):
    models = dict(models_no_faces, detector=StripeDetector(bright=True))
    # gentler shading than smooth_image's: its valley at column 30 changes by 0.18 over the 8 px across
    # the line, and a line whose two sides differ that much is taken for an outline (test_defects); gray,
    # since its colour also changes by 0.1 there, and a line between two colours is an outline too
    clean = (0.5 + 0.5 * (smooth_image(64, 48) - 0.5)).astype(np.float32)
    clean = np.repeat(clean.mean(axis=2, keepdims=True), 3, axis=2)
    assert restorer(models).restore(clean).path == "quality"
    scratched = clean.copy()
    scratched[2:62, 30] = 1.0  # down the photo: 1.25 short sides
    r = restorer(models).restore(scratched)
    # the line, and at most the 2 px of its fringe (here the valley of the shading it runs down)
    assert r.path == "scratch" and r.mask[2:62, 30].all()
    assert not r.mask[:, :28].any() and not r.mask[:, 33:].any()
    assert restorer(models, mask_dilation=1).restore(scratched).mask.sum() > r.mask.sum()
    # the same line dark (ink, a wire; a print's scratches are bright) is no evidence for auto
    dark_models = dict(models_no_faces, detector=StripeDetector())
    inked = clean.copy()
    inked[2:62, 30] = 0.0
    assert restorer(dark_models).restore(inked).path == "quality"
    assert restorer(dark_models, scratches="on").restore(inked).mask[2:62, 30].all()
    # a short stroke or one speck is not worth a repair in auto mode, nor a scratch below
    # --scratch-min-area
    short = clean.copy()
    short[4:30, 30] = 1.0
    assert restorer(models).restore(short).path == "quality"
    speck = clean.copy()
    speck[5, 5] = 1.0
    assert restorer(models).restore(speck).path == "quality"
    assert restorer(models, scratches="on").restore(speck).path == "scratch"
    assert restorer(models, scratch_min_area=0.05).restore(scratched).path == "quality"
    # nothing to repair: "on" takes the quality path too (compat mode sends it through the scratch path)
    assert restorer(models, scratches="on").restore(clean).path == "quality"
    assert restorer(models, scratches="on", compat="official").restore(clean).path == "scratch"


def _print_on_an_album_page(scratch_from: int = 10) -> tuple[np.ndarray, tuple[slice, slice]]:
    """A gray print (80×60) with a bright scratch down it from its row ``scratch_from`` to 5 px above its
    bottom, on a dark album page with a little grain (a 120×100 scan); and where the print lies."""
    rng = np.random.default_rng(5)
    scan = np.clip(0.1 + rng.normal(0, 0.01, (120, 100, 1)), 0, 1).repeat(3, axis=2).astype(np.float32)
    box = (slice(20, 100), slice(20, 80))
    scan[box] = np.clip(0.4 + rng.normal(0, 0.01, (80, 60, 1)), 0, 1)
    scan[20 + scratch_from:95, 50] = 1.0
    return scan, box


def test_auto_judges_a_print_on_a_plain_surround_not_the_scan(models_no_faces):
    """A scratch of 65 px is 1.08 short sides of the print it runs down, and auto repairs the print
    cropped; on an album page it was measured in the scan's short sides (0.65) and the print was left."""
    models = dict(models_no_faces, detector=StripeDetector(bright=True))
    scan, box = _print_on_an_album_page()
    assert restorer(models).restore(scan[box]).path == "scratch"
    r = restorer(models).restore(scan)
    assert r.path == "scratch" and r.defects.print_box == box
    assert r.defects.stroke_length == pytest.approx(65 / 60, abs=0.05)
    assert r.mask[30:95, 50].all() and not r.mask[:, :45].any() and not r.mask[:, 56:].any()
    # a short scratch, not enough for the print either: left
    short, _ = _print_on_an_album_page(scratch_from=60)
    assert restorer(models).restore(short).path == "quality"


@pytest.mark.parametrize("left", [3, 0])  # on the surround, against the left side
def test_a_small_scan_with_a_print_a_few_px_high_is_restored(models_no_faces, left):
    """A 40×16 scan holding a print 6 px high failed as "image of 36×6 pixels is too small to restore":
    the print was restored on its own.  It is judged with the scan."""
    rng = np.random.default_rng(0)
    scan = np.full((16, 40, 3), 0.95, np.float32)
    scan[5:11, left:36] = rng.random((6, 36 - left, 3)) * 0.4
    for kw in ({}, {"scratches": "on"}, {"scratches": "off", "dust": True}):
        r = restorer(models_no_faces, **kw).restore(scan)
        assert r.image.shape == scan.shape and (r.defects is None or r.defects.print_box is None)


def test_a_print_on_a_plain_surround_is_repaired_within_its_edges(models_no_faces):
    """A fill reaches beyond its defects (the repair weight's growth and feather): a scratch that runs
    into the print's edge smeared the print into the surround.  The print is restored as its crop is,
    and the surround is left as it was scanned (with --scratches off too)."""
    models = dict(models_no_faces, detector=StripeDetector(bright=True))
    scan, box = _print_on_an_album_page(scratch_from=0)  # from the print's top edge
    r = restorer(models).restore(scan)
    assert r.path == "scratch" and r.mask[20:95, 50].all()
    outside = np.ones(scan.shape[:2], bool)
    outside[box] = False
    assert np.array_equal(r.image[outside], scan[outside])
    assert np.abs(r.image[20:40, 50] - r.image[20:40, 48]).max() < 0.1  # the scratch is filled
    # the print as its crop: denoised at its own noise (a plain page read as part of the photo lowers
    # the noise read, and the print was denoised less than its crop), in its own tone
    crop = restorer(models).restore(scan[box])
    assert np.array_equal(r.image[box], crop.image)
    # with --scratches off too, where no detector looks for the print
    off = restorer(models, scratches="off").restore(scan)
    assert np.array_equal(off.image[outside], scan[outside])
    assert np.array_equal(off.image[box], restorer(models, scratches="off").restore(scan[box]).image)


def test_each_print_of_a_page_is_restored_as_its_crop_and_the_page_left_as_scanned(models_no_faces):
    """Two prints on one album page were restored as one photo: a scratch's fill at a print's edge
    smeared it into the page, and each print's evidence was read in the scan's short sides."""
    models = dict(models_no_faces, detector=StripeDetector(bright=True))
    one, box = _print_on_an_album_page(scratch_from=0)  # scratched from its top edge
    two, _ = _print_on_an_album_page(scratch_from=200)  # no scratch
    scan = np.concatenate([one, two[:, 10:]], axis=1)  # a 120×190 page, prints at columns 20-80, 110-170
    other = (box[0], slice(110, 170))
    r = restorer(models).restore(scan)
    assert r.path == "scratch" and r.mask[20:95, 50].all() and not r.mask[:, 56:].any()
    assert r.defects.print_box is None and r.defects.stroke_length == pytest.approx(75 / 60, abs=0.05)
    page = np.ones(scan.shape[:2], bool)
    page[box] = page[other] = False
    assert np.array_equal(r.image[page], scan[page])
    assert np.array_equal(r.image[box], restorer(models).restore(scan[box]).image)
    assert np.array_equal(r.image[other], restorer(models).restore(scan[other]).image)
    # a user's marks within the prints are repaired there, print by print; a mark on the page as given
    marks = np.zeros(scan.shape[:2], bool)
    marks[40:50, 130:140] = True
    assert np.array_equal(restorer(models).restore(scan, marks).image[page], scan[page])
    marks[5:8, 5:30] = True
    on_page = restorer(models).restore(scan, marks)
    assert not np.array_equal(on_page.image[5:8, 5:30], scan[5:8, 5:30]) and on_page.mask[5:8, 5:30].all()
    # marks over most of one print are refused, naming that print rather than the page
    marks = np.zeros(scan.shape[:2], bool)
    marks[other] = True
    refused = r"100 % of print 2 of the 2 on the scan \(rows 20-99, columns 110-169\)"
    with pytest.raises(ValueError, match=refused):
        restorer(models).restore(scan, marks)


def test_the_tone_of_prints_on_a_coloured_page_is_the_prints(models_no_faces):
    """The tone handed on to the faces (and unfade) is the prints', as for one print on a surround: fitted
    on the whole scan, two gray prints on a green page were 'toned', and a face on them took the page's
    green at its lightness."""
    one, box = _print_on_an_album_page(scratch_from=200)
    scan = np.concatenate([one, one[:, 10:]], axis=1)
    scan[:] = np.where(_within_boxes(scan, [box, (box[0], slice(110, 170))])[..., None], scan,
                       np.array([0.35, 0.5, 0.4], np.float32))
    assert fit_tone(scan) is not None and not fit_tone(scan).gray  # the page makes the scan 'toned'
    r = restorer(models_no_faces)
    assert r.mode.stage1(scan, None, {})[4].gray
    assert restorer(models_no_faces, keep_tone=False).mode.stage1(scan, None, {})[4] is None


def _within_boxes(scan, boxes):
    inside = np.zeros(scan.shape[:2], bool)
    for b in boxes:
        inside[b] = True
    return inside


def test_the_noise_is_read_away_from_the_detectors_candidates(models_no_faces, monkeypatch):
    """The denoiser reads the noise away from the detector's candidate regions (Defects.candidates, the
    hysteresis mask before any region is judged: a crack network judged lace and left still holds
    cracks), cropped to the print on a plain surround, and from a user's mask too (the detector's mask
    given back must be restored as on the first run); with --scratches off no detector runs, and the
    noise is read over the whole photo."""
    from oldphoto import modes
    from oldphoto.stages.defects import LOW_THRESHOLD_RATIO, hysteresis

    seen = []

    def spy(image, denoise, exclude=None):
        seen.append(exclude)
        return real(image, denoise, exclude)

    real = modes.denoised_photo
    monkeypatch.setattr(modes, "denoised_photo", spy)
    models = dict(models_no_faces, detector=StripeDetector(bright=True), mapping_quality=Forbidden())
    scan, box = _print_on_an_album_page()
    r = restorer(models, fidelity=1.0)
    crop = r.restore(scan[box])
    prob = r.probabilities(scan[box])
    low = r.mask_threshold() * LOW_THRESHOLD_RATIO
    assert np.array_equal(crop.defects.candidates, hysteresis(prob, r.mask_threshold(), low))
    assert crop.defects.candidates[10:75, 30].all() and np.array_equal(seen[-1], crop.defects.candidates)
    whole = r.restore(scan)
    assert whole.defects.candidates.shape == scan.shape[:2]
    assert np.array_equal(whole.defects.candidates[box], crop.defects.candidates)
    assert np.array_equal(seen[-1], crop.defects.candidates)  # the print's, as its crop's
    mask = np.zeros(scan.shape[:2], bool)
    mask[30:95, 50] = True
    given = r.restore(scan, mask=mask)
    assert np.array_equal(given.defects.candidates, whole.defects.candidates | mask)
    assert np.array_equal(seen[-1], given.defects.candidates[box])
    off = restorer(models, fidelity=1.0, scratches="off").restore(scan)
    assert seen[-1] is None and off.defects is None


def test_the_dust_of_a_print_on_a_plain_surround_is_looked_for_on_the_print(models_no_faces):
    """--dust on a print lying on an album page finds the print's dust as if it had been cropped, and
    leaves the page's: the surround is not the photo (and is not repaired)."""
    models = dict(models_no_faces, detector=StripeDetector(bright=True))
    scan, box = _print_on_an_album_page()
    scan[60:63, 30:33] = 0.85  # a speck on the print
    scan[8:11, 8:11] = 0.85  # and one on the page
    r = restorer(models, dust=True).restore(scan)
    assert r.path == "scratch" and r.defects.print_box == box and r.defects.dust == 1
    assert r.mask[61, 31] and not r.mask[:20].any()
    # and with --scratches off, where the detector does not look for the print: the page's speck was
    # marked and repaired
    off = restorer(models, dust=True, scratches="off").restore(scan)
    assert off.defects.print_box == box and off.defects.dust == 1
    assert off.mask[61, 31] and not off.mask[:20].any()
    assert np.array_equal(off.image[:20], scan[:20])  # the page as scanned, its speck too


def test_the_mask_of_a_print_on_a_plain_surround_is_grown_within_the_print(models_no_faces):
    """The HR path's dilation and --mask-dilation of the dust grew the mask past the print's edge: the
    saved mask (and the share said repaired) held surround pixels that were never repaired, and given
    back with --mask-dir they were."""
    models = dict(models_no_faces, detector=StripeDetector(bright=True))
    scan, box = _print_on_an_album_page(scratch_from=0)  # from the print's top edge
    scan[97:99, 30:32] = 0.85  # a speck at the print's bottom edge
    outside = np.ones(scan.shape[:2], bool)
    outside[box] = False
    hr = restorer(models, hr=True).restore(scan)
    assert hr.path == "hr" and hr.mask[20:95, 50].all() and not hr.mask[outside].any()
    dust = restorer(models, dust=True, mask_dilation=3).restore(scan)
    assert dust.mask[97, 30] and not dust.mask[outside].any() and not dust.defects.mask[outside].any()


def test_a_users_mask_on_a_print_on_a_plain_surround_is_repaired_within_the_print(models_no_faces):
    """A mask saved by --save-mask and given back with --mask-dir (the web page's marks start from it)
    was repaired over the whole scan: the fill at the print's edge smeared it into the surround.  Marks
    on the print alone are repaired as the detector's are; marks on the surround are repaired as given."""
    models = dict(models_no_faces, detector=StripeDetector(bright=True))
    scan, box = _print_on_an_album_page(scratch_from=0)  # from the print's top edge
    outside = np.ones(scan.shape[:2], bool)
    outside[box] = False
    detected = restorer(models).restore(scan)
    given = restorer(models).restore(scan, mask=detected.mask)
    assert given.defects.print_box == box and np.array_equal(given.mask, detected.mask)
    assert np.array_equal(given.image[outside], detected.image[outside])
    on_the_page = detected.mask.copy()
    on_the_page[5:8, 5:8] = True
    assert restorer(models).restore(scan, mask=on_the_page).defects.print_box is None


def test_dust_is_repaired_only_when_asked_and_whatever_auto_decides(models_no_faces):
    """--dust: white specks on a flat area, which the detector does not see, are repaired, alone when
    --scratches auto leaves the photo (and with off); with the scratches when it repairs them."""
    models = dict(models_no_faces, detector=StripeDetector(bright=True))
    rng = np.random.default_rng(7)
    photo = np.repeat(np.clip(0.35 + rng.normal(0, 0.01, (64, 80, 1)), 0, 1), 3, axis=2).astype(np.float32)
    spots = [(10, 12), (40, 60), (52, 20)]
    for cy, cx in spots:
        photo[cy - 1:cy + 2, cx - 1:cx + 2] = 0.85
    plain = restorer(models).restore(photo)
    assert plain.path == "quality" and all(plain.image[cy, cx, 0] > 0.5 for cy, cx in spots)
    for scratches in ("auto", "off"):
        cleaned = restorer(models, dust=True, scratches=scratches).restore(photo)
        assert cleaned.path == "scratch" and cleaned.defects.dust == len(spots)
        assert all(abs(cleaned.image[cy, cx, 0] - 0.35) < 0.05 for cy, cx in spots)
        assert cleaned.mask.sum() <= 9 * len(spots) + 12  # the specks (and their 2-px growth aside), no more
    scratched = photo.copy()
    scratched[30, 2:78] = 1.0  # a scratch across the photo (1.2 short sides), which auto repairs
    both = restorer(models, dust=True).restore(scratched)
    assert both.path == "scratch" and both.mask[30, 2:78].all() and both.mask[10, 12]
    assert not both.defects.dust_only


@pytest.mark.parametrize("keep_tone", [True, False])
def test_the_tone_is_fitted_once_for_detection_dust_and_keeping(models_no_faces, monkeypatch, keep_tone):
    import oldphoto.modes
    import oldphoto.pipeline

    calls = []

    def counted(image, *args, **kwargs):
        calls.append(image.shape)
        return fit_tone(image, *args, **kwargs)

    monkeypatch.setattr(oldphoto.modes, "fit_tone", counted)
    monkeypatch.setattr(oldphoto.pipeline, "fit_tone", counted)
    photo = smooth_image(40, 48)
    restorer(models_no_faces, dust=True, keep_tone=keep_tone).restore(photo)
    assert len(calls) == 1
    calls.clear()
    restorer(models_no_faces, scratches="off", keep_tone=keep_tone).restore(photo)
    assert len(calls) == int(keep_tone)  # nothing asks for it


def test_dust_is_grown_by_mask_dilation_like_the_predicted_mask(models_no_faces):
    rng = np.random.default_rng(2)
    photo = np.clip(0.4 + rng.normal(0, 0.01, (64, 80, 3)), 0, 1).astype(np.float32)
    photo[20:23, 30:33] = 0.9
    plain = restorer(models_no_faces, dust=True).restore(photo)
    grown = restorer(models_no_faces, dust=True, mask_dilation=2).restore(photo)
    assert plain.mask[21, 31] and not plain.mask[18, 31] and grown.mask[18, 31]
    assert grown.defects.dust == plain.defects.dust == 1


def test_dust_leaves_a_user_mask_as_given(models_no_faces):
    """A user's mask is repaired as given with --dust too: a speck it leaves out (unmarked on the web
    page) is not added back; with --scratches off the mask is ignored and the dust repaired alone."""
    rng = np.random.default_rng(1)
    photo = np.clip(0.4 + rng.normal(0, 0.01, (64, 80, 3)), 0, 1).astype(np.float32)
    photo[20:23, 30:33] = 0.9
    mask = np.zeros((64, 80), bool)
    mask[50, 10:20] = True
    for scratches in ("auto", "on"):
        given = restorer(models_no_faces, dust=True, scratches=scratches).restore(photo, mask=mask)
        assert given.path == "scratch" and np.array_equal(given.mask, mask)
    ignored = restorer(models_no_faces, dust=True, scratches="off").restore(photo, mask=mask)
    assert ignored.mask[21, 31] and not ignored.mask[50].any() and ignored.defects.dust_only


def test_scratch_pixels_change_where_the_mask_is(models_no_faces):
    img = smooth_image(64, 64)
    mask = np.zeros((64, 64), bool)
    mask[30:33] = True
    with_mask = restorer(models_no_faces, scratches="on").restore(img, mask=mask).image
    without = restorer(models_no_faces, scratches="on").restore(img, mask=np.zeros_like(mask)).image
    diff = np.abs(with_mask - without).mean(axis=2)
    assert diff[30:33].mean() > diff[:10].mean()


def test_deterministic(models_no_faces):
    img = smooth_image(70, 90, seed=3)
    mask = np.zeros((70, 90), bool)
    mask[40, :] = True
    a = restorer(models_no_faces).restore(img, mask=mask).image
    b = restorer(models_no_faces).restore(img, mask=mask).image
    c = restorer(models_no_faces).restore(img.copy(), mask=mask.copy()).image
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_tiled_photo_has_no_seams_and_whole_photo_norms_help(models_no_faces):
    """Exact agreement is tested with exact statistics in tests/stages/test_normstats.py; here the product
    path: random tiny networks are very sensitive to instance-norm statistics, so we check that the
    whole-photo statistics bring tiles closer to the whole-image result than per-tile ones, and that no
    seam is visible."""
    img = smooth_image(192, 256, seed=5)
    whole = restorer(models_no_faces, scratches="off").restore(img).image
    diffs = {}
    for mode in ("global", "tile"):
        tiled = restorer(models_no_faces, scratches="off", tile=128, tile_norm=mode).restore(img).image
        assert tiled.shape == whole.shape
        diffs[mode] = np.abs(tiled - whole).mean()
        if mode == "global":
            # no visible seam: column-to-column change at tile boundaries is like elsewhere
            gx = np.abs(np.diff(tiled, axis=1)).mean(axis=(0, 2))
            gy = np.abs(np.diff(tiled, axis=0)).mean(axis=(1, 2))
            assert gx.max() < 3 * np.median(gx) and gy.max() < 3 * np.median(gy)
    assert diffs["global"] < diffs["tile"]


def test_bf16_close_to_fp32(models_no_faces):
    img = smooth_image(64, 80, seed=7)
    fp32 = restorer(models_no_faces, scratches="off").restore(img).image
    bf16 = restorer(models_no_faces, scratches="off", precision="bf16").restore(img).image
    assert np.abs(bf16 - fp32).mean() < 0.02 and not np.array_equal(bf16, fp32)


def test_fp16_on_cpu_is_refused(models_no_faces):
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        restorer(models_no_faces, precision="fp16")


def test_gray_photo_stays_gray(models_no_faces):
    g = smooth_image(64, 64)[..., 0]
    gray = np.repeat(g[..., None], 3, axis=2)
    out = restorer(models_no_faces, scratches="off").restore(gray).image
    assert fit_tone(gray).gray
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    network_colour = restorer(models_no_faces, scratches="off", keep_tone=False, colour="network")
    coloured = network_colour.restore(gray).image
    assert not np.array_equal(coloured[..., 0], coloured[..., 2])  # random nets do tint it


def test_gray_photo_keeps_a_caption_in_coloured_ink(models_no_faces):
    g = smooth_image(64, 64)[..., 0]
    gray = np.repeat(g[..., None], 3, axis=2)
    gray[40:42, 8:56] = (0.16, 0.16, 0.47)  # a line of blue ink
    out = restorer(models_no_faces, scratches="off").restore(gray).image
    spread = out.max(axis=2) - out.min(axis=2)
    assert spread[40:42, 8:56].min() > 0.2 and (out[40:42, 8:56, 2] > out[40:42, 8:56, 0]).all()
    assert spread[:36].max() == 0.0 and spread[46:].max() == 0.0


def test_colour_photo_keeps_the_photos_chroma(models_no_faces):
    from oldphoto.stages.colour import _TO_YCC

    img = smooth_image(64, 64, seed=3)
    chroma = lambda x: x @ _TO_YCC[1:].T  # noqa: E731
    own = restorer(models_no_faces, scratches="off").restore(img).image
    net = restorer(models_no_faces, scratches="off", colour="network").restore(img).image
    assert np.abs(chroma(own) - chroma(img)).mean() < 0.5 * np.abs(chroma(net) - chroma(img)).mean()
    with pytest.raises(ValueError, match="--colour"):
        RestoreOptions(colour="sepia").validate()


@pytest.mark.parametrize("h,w,scratches,size", [(37, 53, "off", (36, 52)), (37, 53, "on", (32, 48)),
                                                (450, 298, "off", (448, 296))])
def test_compat_mode_follows_the_official_sizes_and_stretch(models_no_faces, h, w, scratches, size):
    img = smooth_image(h, w)
    r = restorer(models_no_faces, compat="official", scratches=scratches).restore(img)
    assert r.stage1.shape[:2] == size
    assert r.stage1.min() == 0.0 and r.stage1.max() == 1.0  # min–max stretched
    levels = r.stage1 * 255
    assert np.array_equal(levels, np.round(levels))  # exactly 8-bit levels, as the official PNG
    assert r.image.shape == (h, w, 3)  # resized back for writing over the original


def test_compat_mode_says_no_doubt_about_lines_it_never_judged(models_no_faces):
    """--compat official's mask is not judged by shape: every repaired photo was said to hold lines that
    "may be the scene's" (also with 0.00 % repaired), from counts never measured."""
    from oldphoto.batch import restoration_record
    from oldphoto.batch.progress import _repair_note

    img = smooth_image(64, 64)
    img[30:32, 5:60] = 1.0
    r = restorer(dict(models_no_faces, detector=StripeDetector(bright=True)), compat="official",
                 scratches="on").restore(img)
    record = restoration_record(r)
    assert r.path == "scratch" and record["mask"] == "detected" and not record["defects"]["lines_in_doubt"]
    assert _repair_note(record).startswith("; ") and "scene" not in _repair_note(record)


def test_compat_quality_equals_the_official_formula(models_no_faces):
    """Stage-1 compat output = save_image((VAE_B.dec(map(VAE_A.enc(x)))+1)/2, normalize=True)."""
    img = smooth_image(41, 30)
    r = restorer(models_no_faces, compat="official", scratches="off").restore(img)
    u8 = (np.clip(np.floor(img * 255 + 0.5), 0, 255)).astype(np.uint8)
    u8 = np.asarray(Image.fromarray(u8).resize((32, 40), Image.BILINEAR))
    x = torch.from_numpy(np.ascontiguousarray(u8.transpose(2, 0, 1))).float().div(255).sub(0.5).div(0.5)[None]
    m = models_no_faces
    with torch.no_grad():
        y = m["vae_b_quality"].decoder(m["mapping_quality"](m["vae_a"].encoder(x)))
    t = ((y + 1) / 2)[0]
    lo, hi = float(t.min()), float(t.max())
    expected = t.clamp(lo, hi).sub(lo).div(max(hi - lo, 1e-5)).mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    assert np.array_equal(np.round(r.stage1 * 255).astype(np.uint8), expected.permute(1, 2, 0).numpy())


def test_models_are_loaded_once_and_reused(models_no_faces):
    r = restorer(models_no_faces)
    img = smooth_image(32, 32)
    r.restore(img)
    first = dict(r._loaded)
    r.restore(img)
    assert r._loaded == first and all(first[k] is r._loaded[k] for k in first)


def test_with_options_shares_the_loaded_models(models_no_faces):
    base = restorer(models_no_faces, scratches="off")
    img = smooth_image(32, 32)
    base.restore(img)
    other = base.with_options(scratches="on", fidelity=0.2)
    assert other.options.fidelity == 0.2 and base.options.fidelity != 0.2
    assert "detector" not in base._loaded
    other.restore(img)  # scratches on: loads the detector into the shared dict
    assert "detector" in base._loaded
    assert all(other._loaded[k] is base._loaded[k] for k in base._loaded)
    with pytest.raises(ValueError, match="device"):
        base.with_options(device="meta")
    # the device it already uses, by another name, is no change (auto is the CPU here)
    assert Restorer(models=models_no_faces).with_options(device="cpu", fidelity=0.5).device.type == "cpu"


def test_with_options_shares_the_face_detector(models_no_faces):
    """A server keeps a Restorer per option set: each loaded dlib's landmark model (77 MB, ~1 s) again."""
    pytest.importorskip("dlib")
    base = restorer(models_no_faces)
    same = base.with_options(scratches="on", dark_dust=True)
    assert same.face_detector() is base.face_detector() is not None
    other = base.with_options(face_threshold=0.5)  # another detector's settings: a detector of its own
    assert other.face_detector() is not base.face_detector() and other.face_detector().min_score == 0.5


def test_faces_off_with_a_notice_when_no_face_weights(models_no_faces):
    r = Restorer(models=models_no_faces, device="cpu")
    assert not r.faces_enabled and any("face enhancement is off" in n for n in r.notices)


def test_faces_on_by_default_with_face_weights(models):
    r = Restorer(models=models, device="cpu")
    assert r.faces_enabled and r.face_size == 256


def test_options_round_trip_through_argparse():
    parser = argparse.ArgumentParser()
    RestoreOptions.add_arguments(parser)
    args = parser.parse_args(["--scratches", "on", "--hr", "--no-faces", "--precision", "bf16",
                              "--max-memory", "1G", "--mask-threshold", "0.3", "--compat", "official"])
    o = RestoreOptions.from_args(args)
    assert (o.scratches, o.hr, o.faces, o.precision, o.max_memory, o.mask_threshold, o.compat) == (
        "on", True, False, "bf16", "1G", 0.3, "official")
    assert RestoreOptions.from_args(parser.parse_args([])) == RestoreOptions()
    with pytest.raises(ValueError, match="--mask-threshold"):
        RestoreOptions(mask_threshold=1.5).validate()
    with pytest.raises(ValueError, match="--scratch-min-area"):
        RestoreOptions(scratch_min_area=-0.1).validate()
    RestoreOptions(detect_size=0).validate()  # 0: full resolution
    with pytest.raises(ValueError, match="--detect-size"):
        RestoreOptions(detect_size=10).validate()
    # in Python, None reads as "no limit": refused by name, not a TypeError deep in the tiling
    with pytest.raises(ValueError, match="--max-memory: a budget is needed"):
        RestoreOptions(max_memory=None).validate()
    RestoreOptions(max_memory=3 << 30).validate()  # a byte count
    assert RestoreOptions.from_args(parser.parse_args(["--unfade", "colour"])).unfade == "colour"
    # (it was ignored without a word)
    with pytest.raises(ValueError, match="--dust is not part of the official stage 1"):
        RestoreOptions(dust=True, compat="official").validate()
    with pytest.raises(ValueError, match="--unfade must be one of off, contrast, colour"):
        RestoreOptions(unfade="yes").validate()


@pytest.mark.parametrize("kw,message", [({"upscale": 2.0}, "--upscale must be a whole number, got 2.0"),
                                        ({"mask_dilation": 1.5}, "--mask-dilation must be a whole number"),
                                        ({"tile": 100.5}, "--tile must be a whole number"),
                                        ({"fidelity": "0.5"}, "--fidelity must be a number, got '0.5'"),
                                        ({"hr_above": "4"}, "--hr-above must be a number"),
                                        ({"face_threshold": None}, "--face-threshold must be a number"),
                                        # a string is true: hr="False" took the high-resolution path
                                        ({"hr": "False"}, "hr must be True or False, got 'False'"),
                                        ({"faces": "no"}, "faces must be True or False"),
                                        ({"dust": 1}, "dust must be True or False"),
                                        # (40 failed in restore() with an OpenCV error about the size)
                                        ({"face_upsample": 40}, "--face-upsample must be 0 to 3"),
                                        ({"face_upsample": -3}, "--face-upsample must be 0 to 3")])
def test_options_of_the_wrong_type_are_refused_up_front(kw, message):
    """From Python or a JSON file: upscale=2.0 and mask_dilation=1.5 passed validation and failed with a
    TypeError in a stage, after the detector had run; fidelity="0.5" with a TypeError about "<="."""
    with pytest.raises(ValueError, match=message):
        RestoreOptions(**kw).validate()


def test_numpy_numbers_are_options_like_any_other():
    RestoreOptions(fidelity=np.float32(0.5), tile=np.int64(128), texture_depth=np.int32(5),
                   hr=np.bool_(False), faces=None, dust=np.bool_(True)).validate()


@pytest.mark.parametrize("flag,kw", [("--detect-size", {"detect_size": 0}),
                                     ("--detect-size", {"detect_size": 256}),
                                     ("--mask-dilation", {"mask_dilation": 2}),
                                     ("--diffusion-depth", {"diffusion_depth": 2.5}),
                                     ("--texture-depth", {"texture_depth": 12.0})])
def test_options_the_official_stage_1_has_not_are_refused_with_compat_official(flag, kw):
    """They changed nothing with --compat official (it detects at its own size, grows no mask and runs
    the whole photo through one path), without a word; their defaults still go with it."""
    with pytest.raises(ValueError, match=f"{flag} is not part of the official stage 1"):
        RestoreOptions(compat="official", **kw).validate()
    RestoreOptions(compat="official", mask_dilation=0, diffusion_depth=0.0, texture_depth=0.0).validate()


@pytest.mark.parametrize("argv,said", [
    (["--compat", "official", "--fidelity", "0.5"], "--fidelity"),
    (["--compat", "official", "--remove-grain"], "--remove-grain"),
    (["--compat", "official", "--no-denoise"], "--no-denoise"),
    (["--fidelity", "0", "--remove-grain"], "--remove-grain"),
])
def test_options_that_would_change_nothing_are_refused_on_the_command_line(argv, said):
    """The official stage 1 neither blends nor denoises, and at --fidelity 0 no photo is kept to denoise:
    these came out pixel for pixel as without the option, exit 0 (a sweep of restore's options). The
    command line refuses them; Python and the web page's form, which sends every option, are not."""
    from oldphoto.options import argument_problem

    parser = argparse.ArgumentParser()
    RestoreOptions.add_arguments(parser)
    problem = argument_problem(parser.parse_args(argv))
    assert problem is not None and said in problem and "changes nothing" in problem, problem
    for fine in (["--compat", "official"], ["--fidelity", "0"], ["--fidelity", "0.5", "--remove-grain"]):
        assert argument_problem(parser.parse_args(fine)) is None, fine
    both = argument_problem(parser.parse_args(["--compat", "official", "--fidelity", "1", "--no-denoise"]))
    assert both.startswith("--fidelity and --no-denoise change nothing with --compat official"), both
    RestoreOptions(compat="official", fidelity=0.5, remove_grain=True).validate()


def test_missing_weights_is_an_error_that_says_what_to_do(tmp_path, monkeypatch):
    store = pytest.importorskip("oldphoto.weights.store")
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "none"))
    locate = pytest.importorskip("oldphoto.weights.locate")
    monkeypatch.setattr(locate, "bundled_weights_dir", lambda: tmp_path / "nobundle")
    (tmp_path / "empty").mkdir()
    with pytest.raises(store.MissingWeightsError, match="`oldphoto weights download`.*weights import"):
        Restorer(weights=tmp_path / "empty", device="cpu", faces=False)


def test_bad_images_are_rejected(models_no_faces):
    r = restorer(models_no_faces)
    with pytest.raises(ValueError, match="float pixels"):
        r.restore(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="RGB image"):
        r.restore(np.zeros((16, 16, 4), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        r.restore(np.full((16, 16, 3), np.nan, np.float32))


def test_bad_image_messages_say_how_to_fix_them(models_no_faces):
    """The API's messages for integer and alpha inputs (found feeding the README's Restorer the arrays
    people have at hand): a uint16 photo was told "divide 8-bit images by 255", which, followed, gives
    values up to 257 that are clipped to a white photo without a word."""
    r = restorer(models_no_faces)
    with pytest.raises(ValueError, match=r"got dtype uint8 \(divide by 255\)"):
        r.restore(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"got dtype uint16 \(divide by 65535\)"):
        r.restore(np.zeros((16, 16, 3), np.uint16))
    with pytest.raises(ValueError, match=r"got dtype bool \(convert them to float\)"):
        r.restore(np.zeros((16, 16, 3), bool))
    with pytest.raises(ValueError, match=r"\(with alpha: restore image\[\.\.\., :3\]"):
        r.restore(np.zeros((16, 16, 4), np.float32))
    # 8-bit values as floats (img.astype(np.float32)) were clipped to a white photo without a word
    with pytest.raises(ValueError, match=r"got values up to 255 .*divide by 255\)"):
        r.restore(np.full((16, 16, 3), 255.0, np.float32))
    with pytest.raises(ValueError, match=r"divide by 65535\)"):
        r.restore(np.full((16, 16, 3), 4000.0))
    r.restore(np.full((16, 16, 3), 1.02, np.float32))  # a small overshoot is clipped, as before
    # pixels in [-1, 1] were clipped without a word: every tone below mid-gray came back black
    with pytest.raises(ValueError, match=r"got values down to -1 .*\(x \+ 1\) / 2\)"):
        r.restore(np.linspace(-1, 1, 16 * 16 * 3, dtype=np.float32).reshape(16, 16, 3))
    r.restore(np.full((16, 16, 3), -0.02, np.float32))  # a small undershoot is clipped, as before
    # gray with a channel axis is gray
    gray = np.random.default_rng(0).random((16, 16), np.float32)
    np.testing.assert_array_equal(r.restore(gray[..., None]).image, r.restore(gray).image)


def test_memory_layout_does_not_change_the_pixels(models_no_faces):
    """The same pixels give the same restoration whatever their memory layout: a Fortran-ordered array
    (from a MATLAB or Julia bridge) or a transposed view used to come back a few 1e-5 different (numpy
    and torch sum in another order), enough to move 8-bit values by one level."""
    img = smooth_image(64, 80)
    img = np.clip(img + np.random.default_rng(0).normal(0, 0.05, img.shape), 0, 1).astype(np.float32)
    r = restorer(models_no_faces)
    ref = r.restore(img).image
    assert np.array_equal(r.restore(np.asfortranarray(img)).image, ref)
    transposed = np.ascontiguousarray(img.transpose(1, 0, 2))
    assert np.array_equal(r.restore(transposed.transpose(1, 0, 2)).image, ref)


def test_explicit_models_are_checked_when_used():
    r = Restorer(models=tiny_models(faces=False), device="cpu", faces=False, scratches="off")
    r.restore(smooth_image(16, 16))
    incomplete = {k: v for k, v in tiny_models(faces=False).items() if k != "mapping_scratch"}
    mask = np.zeros((16, 16), bool)
    mask[8, 2:14] = True
    with pytest.raises(Exception, match="mapping_scratch"):
        Restorer(models=incomplete, device="cpu", faces=False, scratches="on").restore(smooth_image(16, 16),
                                                                                      mask=mask)


class Forbidden(torch.nn.Module):
    def forward(self, *args):
        raise AssertionError("this network must not run")


def test_fidelity_one_keeps_the_photo_and_runs_no_network(models_no_faces):
    from oldphoto.stages.fidelity import denoised_photo

    gray = np.repeat(smooth_image(48, 64)[..., :1], 3, axis=2)
    models = dict(models_no_faces, mapping_quality=Forbidden())
    out = restorer(models, scratches="off", fidelity=1.0).restore(gray)
    assert out.fidelity == 1.0 and out.path == "quality"
    assert np.allclose(out.image, denoised_photo(gray), atol=1e-6)


def test_no_denoise_keeps_the_photo_away_from_the_defects(models_no_faces):
    """--no-denoise: a noisy colour photo comes back as it is (luma and colours) where nothing is
    repaired, and only the repairs change it; with the default the noise is taken out."""
    rng = np.random.default_rng(3)
    noisy = np.clip(smooth_image(64, 80, seed=5) + rng.normal(0, 0.04, (64, 80, 3)), 0, 1).astype(np.float32)
    models = dict(models_no_faces, mapping_quality=Forbidden())
    kept = restorer(models, scratches="off", fidelity=1.0, denoise=False, keep_tone=False).restore(noisy)
    assert np.abs(kept.image - noisy).max() < 1e-5
    denoised = restorer(models, scratches="off", fidelity=1.0, keep_tone=False).restore(noisy)
    assert np.abs(denoised.image - noisy).mean() > 0.01
    mask = np.zeros((64, 80), bool)
    mask[30:33, 10:70] = True
    plain = restorer(models_no_faces, fidelity=1.0, denoise=False, keep_tone=False)
    repaired = plain.restore(noisy, mask=mask)
    far = np.abs(np.arange(64) - 31) > 12  # rows beyond the repair's reach
    assert repaired.path == "scratch" and np.abs(repaired.image - noisy)[far].max() < 1e-5
    assert np.abs(repaired.image - noisy)[mask].mean() > 0.01


def test_unfade_stretches_the_restored_photo_only_when_asked(models_no_faces):
    """--unfade: the restored photo's darkest and lightest tones become black and white (the stage's own
    tests: tests/stages/test_unfade.py); by default the photo keeps its levels."""
    from oldphoto.stages.unfade import unfade

    gray = np.repeat(smooth_image(64, 80)[..., :1], 3, axis=2)
    photo = (0.2 + 0.6 * (gray - gray.min()) / np.ptp(gray)).astype(np.float32)  # a faded print
    models = dict(models_no_faces, mapping_quality=Forbidden())
    kept = restorer(models, scratches="off", fidelity=1.0).restore(photo)
    assert "unfade" not in kept.timings and kept.image.min() > 0.15 and kept.image.max() < 0.85
    out = restorer(models, scratches="off", fidelity=1.0, unfade="contrast").restore(photo)
    assert "unfade" in out.timings
    assert np.allclose(out.image, unfade(kept.image, "contrast", toned=True), atol=1e-6)
    assert out.image.min() < 0.05 and out.image.max() > 0.95
    # the global restoration before faces and fading, as its name says (it came back unfaded: the
    # same array as the image; an API review)
    assert np.array_equal(out.stage1, kept.stage1) and not np.shares_memory(out.stage1, out.image)


def test_unfade_says_when_it_found_nothing_to_stretch(models_no_faces):
    """A photo whose tones already reach black and white (a glint or a lamp pins the white point) is not
    stretched by --unfade: the report's record and the progress line say so, rather than nothing."""
    from oldphoto.batch.progress import _repair_note
    from oldphoto.batch.report import restoration_record

    gray = np.repeat(smooth_image(64, 80)[..., :1], 3, axis=2)
    faded = (0.2 + 0.6 * (gray - gray.min()) / np.ptp(gray)).astype(np.float32)
    glare = faded.copy()
    glare[20:30, 30:40], glare[40:50, 50:60] = 1.0, 0.0  # a glint and a black shadow within the picture
    models = dict(models_no_faces, mapping_quality=Forbidden())
    assert restorer(models, scratches="off", fidelity=1.0).restore(faded).unfade_gain is None
    unfading = restorer(models, scratches="off", fidelity=1.0, unfade="contrast")
    stretched, pinned = unfading.restore(faded), unfading.restore(glare)
    assert stretched.unfade_gain > 1.5 and pinned.unfade_gain == pytest.approx(1.0, abs=0.02)
    assert "nothing to stretch" not in _repair_note(restoration_record(stretched))
    assert "nothing to stretch" in _repair_note(restoration_record(pinned))


def test_unfade_stretches_each_picture_by_its_own_levels_and_leaves_its_frame(models_no_faces):
    """An instant photo scanned with its white frame: read with the frame, each channel's white point
    came from a different thing, and under `colour` the frame turned yellow (and marker ink on it black).
    The picture within a plain frame, and each print on a page, is stretched as if cropped."""
    from oldphoto.stages.unfade import unfade

    rng = np.random.default_rng(2)
    picture = (0.2 + 0.6 * smooth_image(60, 60, seed=6)) * np.array([0.82, 1.0, 1.06], np.float32)  # cyan
    scan = np.clip(0.93 + rng.normal(0, 0.004, (100, 76, 1)), 0, 1).repeat(3, axis=2).astype(np.float32)
    scan[8:68, 8:68] = np.clip(picture, 0, 1)  # a frame wider below, as an instant photo's
    models = dict(models_no_faces, mapping_quality=Forbidden())
    kept = restorer(models, scratches="off", fidelity=1.0).restore(scan)
    out = restorer(models, scratches="off", fidelity=1.0, unfade="colour").restore(scan)
    frame = np.ones(scan.shape[:2], bool)
    frame[8:68, 8:68] = False
    assert np.array_equal(out.image[frame], kept.image[frame])
    assert np.allclose(out.image[8:68, 8:68], unfade(kept.image[8:68, 8:68], "colour"), atol=1e-6)


def test_fidelity_zero_is_the_networks_restoration(models_no_faces):
    from oldphoto.stages.restore import RestoreStage

    img = smooth_image(48, 64, seed=4)
    r = restorer(models_no_faces, scratches="off", fidelity=0.0, colour="network", keep_tone=False)
    expected = RestoreStage(r._run_module)(img, r.path_models("quality"), "quality")
    assert np.array_equal(r.restore(img).image, expected)
    half = restorer(models_no_faces, scratches="off", fidelity=0.5, colour="network", keep_tone=False)
    from oldphoto.stages.fidelity import denoised_photo

    assert np.allclose(half.restore(img).image, 0.5 * expected + 0.5 * denoised_photo(img), atol=1e-5)


@pytest.mark.parametrize("fidelity", [0.0, 0.5])
def test_local_repair_leaves_pixels_far_from_the_defects_alone(models_no_faces, fidelity):
    from oldphoto.stages.repair import reach, repair_weight

    img = smooth_image(160, 200, seed=2)
    mask = np.zeros((160, 200), bool)
    mask[80, 30:90] = True
    r = restorer(models_no_faces, fidelity=fidelity)
    repaired = r.restore(img, mask=mask)
    untouched = restorer(models_no_faces, fidelity=fidelity, scratches="off").restore(img)
    assert repaired.path == "scratch" and untouched.path == "quality"
    near = repair_weight(mask) > 0
    # the colour stage's guided filter (radius 2) carries a repair's chroma 2 px further
    far = ~(cv2.dilate(near.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)
    assert np.abs(repaired.image - untouched.image)[far].max() < 1e-5
    assert np.abs(repaired.image - untouched.image)[mask].mean() > 1e-3
    assert reach() <= 10


def test_texture_fill_keeps_a_colour_photos_colours_under_a_scratch(models_no_faces):
    yy, xx = np.mgrid[0:160, 0:200].astype(np.float32)
    wave = lambda period, phase: 0.5 + 0.3 * np.sin(2 * np.pi * (xx + phase * yy) / period)  # noqa: E731
    clean = np.stack([wave(12, 0), wave(16, 1), wave(8, 0.5)], axis=-1)  # a smooth colourful pattern
    img = clean.copy()
    mask = np.zeros((160, 200), bool)
    mask[76:84, 20:180] = True  # a scratch 8 px wide (depth 4)
    img[mask] = 1.0
    copied = restorer(models_no_faces, texture_depth=8, fidelity=1.0).restore(img, mask=mask)
    networks = restorer(models_no_faces, fidelity=1.0).restore(img, mask=mask)
    err = lambda result: np.abs(result.image[mask] - clean[mask]).mean()  # noqa: E731
    assert err(copied) < 0.05 < 0.1 < err(networks)  # (as good as off the scratch; tiny random networks)


def test_networks_alone_are_the_restorations_own_stages(models_no_faces):
    """Restorer.networks (what `oldphoto train evaluate` scores) is the fidelity-0 restoration's network
    output; raw levels differ from fitted ones; compat mode has no such stage."""
    img = smooth_image(48, 64, seed=4)
    r = restorer(models_no_faces, scratches="off", fidelity=0.0, colour="network", keep_tone=False)
    alone = r.networks(img, "quality")
    assert np.array_equal(alone, r.restore(img).image)
    assert not np.allclose(r.networks(img, "quality", fit_levels=False), alone, atol=1e-3)
    mask = np.zeros(img.shape[:2], bool)
    mask[10:20, 5:40] = True
    scratch = r.networks(img, "scratch", mask)
    assert scratch.shape == img.shape and not np.allclose(scratch, r.networks(img, "scratch"), atol=1e-4)
    with pytest.raises(Exception, match="compat"):
        restorer(models_no_faces, compat="official").networks(img)


def test_probabilities_are_what_detect_thresholds(models_no_faces):
    from oldphoto.luma import luma
    from oldphoto.stages.defects import find_defects

    img = smooth_image(64, 96, seed=2)
    img[20:23, 10:80] = 0.0  # a dark stripe: a defect for the stand-in detector
    r = restorer({**models_no_faces, "detector": StripeDetector()})
    prob = r.probabilities(img)
    assert prob.shape == img.shape[:2] and prob[21, 40] > 0.9 and prob[50, 40] < 0.1
    found = find_defects(prob, luma(img), r.mask_threshold(), img)
    assert np.array_equal(r.detect(img).mask, found.mask)


def test_ink_on_a_toned_print_is_not_repaired_as_a_scratch(models_no_faces):
    """A blue pen line drawn on a sepia print (a circle round someone, a name) is the print's, not damage:
    the detector's colour rules read a toned photo's colour beyond its tone.  A black one, as dark, is
    repaired as a scratch: in tone, nothing tells it from one."""
    tones = np.linspace(0.15, 0.9, 96, dtype=np.float32)[:, None] * np.ones((1, 96), np.float32)
    tones = np.concatenate([tones, np.linspace(0.0, 0.12, 32 * 96, dtype=np.float32).reshape(32, 96)])
    img = np.ascontiguousarray(tones[..., None] * np.array((1.1, 0.95, 0.72), np.float32)).clip(0, 1)
    # (its dark tones below, a dark coat, as many pixels as the ink's: the tone is fitted on the print)
    img[5:90, 30:32] = (0.02, 0.04, 0.3)  # blue ink
    img[5:90, 64:66] = 0.03  # black ink, or a dark scratch
    r = restorer({**models_no_faces, "detector": StripeDetector()}, scratches="on")
    mask = r.detect(img).mask
    assert not mask[:90, 26:36].any() and mask[10:85, 64:66].all()


class SizeSpy(StripeDetector):
    """The stand-in detector, noting the sizes it is run at."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def forward(self, x):
        self.sizes.append(tuple(x.shape[-2:]))
        return super().forward(x)


@pytest.mark.parametrize("option,short,small", [(None, 512, 400), (0, 600, 400), (256, 256, 256),
                                                (500, 500, 400), (10000, 600, 400)])
def test_large_photos_are_scanned_for_defects_at_a_512_short_side(models_no_faces, option, short, small):
    """The detector knows scratches a few pixels wide: a large scan's wider ones it finds scaled down.
    A --detect-size above the photo's short side never enlarges it (10000 took a 100-px photo nine
    minutes)."""
    spy = SizeSpy()
    r = restorer({**models_no_faces, "detector": spy}, detect_size=option, max_memory="8G")
    img = smooth_image(600, 900, seed=3)
    img[300:306, 100:800] = 0.0  # a dark scratch
    prob = r.probabilities(img)
    assert prob.shape == (600, 900) and prob[303, 450] > 0.9 and prob[100, 450] < 0.1
    assert min(min(s) for s in spy.sizes) in range(short, short + 16)  # padded to the detector's multiple
    spy.sizes.clear()
    r.probabilities(img[:400, :500])  # by default a smaller photo keeps its own resolution
    assert min(min(s) for s in spy.sizes) in range(small, small + 16)


def test_a_large_photos_fill_takes_its_colour_from_beyond_the_defects_neutral_halo(models_no_faces):
    """Around a white crack the chroma is the crack's for a few pixels (its fringe, a JPEG's chroma
    blur), more on a scan larger than the detector's view: the fill's colour is read beyond that halo,
    not gray from it (the scratched girl's curtain enlarged four times: gray-blue fills on brown)."""
    from oldphoto.luma import chroma

    brown = np.array([0.5, 0.35, 0.2], np.float32)
    img = np.clip(np.broadcast_to(brown, (1100, 1400, 3))
                  + np.random.default_rng(0).normal(0, 0.01, (1100, 1400, 1)), 0, 1).astype(np.float32)
    img[537:540] = img[552:555] = brown.mean()  # a neutral halo, 3 px each side
    img[540:552] = 1.0  # a white crack, 12 px wide
    mask = np.zeros((1100, 1400), bool)
    mask[540:552] = True
    r = restorer(models_no_faces, scratches="on", keep_tone=False)
    assert r.detection_scale(img.shape[:2]) > 2
    out = r.restore(img, mask=mask).image
    fill = chroma(out[542:550, 100:1300]).reshape(-1, 2).mean(axis=0)
    want = chroma(brown[None, None])[0, 0]
    assert np.abs(fill - want).max() < 0.01, (fill, want)


def test_a_memory_budget_below_the_smallest_tiles_is_said(models_no_faces, caplog):
    """Tiles are never smaller than 256 px: a budget below what those need cannot be kept, and is said
    (--max-memory 1K ran without a word, then used hundreds of megabytes).  Once: a server's Restorer
    per job (with_options) said it again for every photo."""
    pipeline._say_if_below_smallest_tiles.cache_clear()  # (said once per process)
    with caplog.at_level("WARNING", logger="oldphoto"):
        first = restorer(models_no_faces, max_memory="1K")
    assert any("--max-memory 1K is less than the smallest tiles" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="oldphoto"):
        first.with_options(fidelity=0.5)
        restorer(models_no_faces, max_memory="1K")
    assert not any("--max-memory" in r.getMessage() for r in caplog.records)
    with caplog.at_level("WARNING", logger="oldphoto"):
        restorer(models_no_faces, max_memory="2G")
    assert not any("--max-memory" in r.getMessage() for r in caplog.records)


def test_colour_rules_read_a_gray_or_toned_photo_beyond_its_tone(models_no_faces, monkeypatch):
    """The detector's colour rules get the photo itself, and with a gray or toned one its tone, whose
    colour they read beyond it (a colour photo's own: no tone)."""
    import oldphoto.pipeline as pipeline
    from oldphoto.synth.oldlook import tone

    seen = []
    real = pipeline.find_defects
    monkeypatch.setattr(pipeline, "find_defects", lambda *a: seen.append(a) or real(*a))
    r = restorer({**models_no_faces, "detector": StripeDetector()})
    colour = smooth_image(64, 96, seed=2)
    photos = (colour, tone(colour, "sepia"), np.repeat(colour.mean(axis=2, keepdims=True), 3, axis=2))
    for img in photos:
        r.detect(img)
    assert [a[3] is img for a, img in zip(seen, photos, strict=True)] == [True] * 3
    tones = [a[6] for a in seen]
    assert tones[0] is None and not tones[1].gray and tones[2].gray
    assert r.has_models("detector", "vae_a") and not r.has_models("face_256")


def test_upscale_enlarges_the_restoration_and_keeps_gray_gray(models_no_faces):
    from oldphoto.nets.upscaler import RRDBNet

    torch.manual_seed(0)
    models = {**models_no_faces, "upscale_x4": RRDBNet(num_feat=4, num_grow=2, num_blocks=1).eval()}
    gray = np.repeat(smooth_image(40, 56)[..., :1], 3, axis=2)
    plain = restorer(models, scratches="off").restore(gray)
    for factor in (2, 4):
        r = restorer(models, scratches="off", upscale=factor).restore(gray)
        assert r.image.shape == (40 * factor, 56 * factor, 3) and "upscale" in r.timings
        assert np.array_equal(r.image[..., 0], r.image[..., 1])
        assert np.array_equal(r.image[..., 1], r.image[..., 2])
        # seen at the photo's size, it is the restoration (levels held to it)
        seen = cv2.resize(r.image, (56, 40), interpolation=cv2.INTER_AREA)
        assert np.abs(seen - plain.image).mean() < 0.02
        assert r.mask is None or r.mask.shape == (40, 56)
    assert "upscale_x4" not in restorer(models).required_roles()
    with pytest.raises(ValueError, match="--upscale"):
        RestoreOptions(upscale=3).validate()


def test_upscale_without_its_weights_says_how_to_get_them(tmp_path, monkeypatch, models_no_faces):
    from oldphoto.weights import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="weights download realesrgan"):
        restorer(models_no_faces, upscale=2).restore(smooth_image(32, 32))
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "none"))
    with pytest.raises(MissingWeightsError, match="weights download realesrgan"):
        Restorer(device="cpu", faces=False, scratches="off", upscale=4)


def test_remove_grain_denoises_with_the_denoiser_network_and_only_when_asked(models_no_faces):
    from oldphoto.nets.denoiser import LumaDenoiser

    torch.manual_seed(0)
    denoiser = LumaDenoiser(width=8, depth=3).eval()
    torch.nn.init.normal_(denoiser.body[-1].weight, std=0.05)  # not the identity, as a trained one is not
    models = {**models_no_faces, "denoiser": denoiser}
    photo = smooth_image(64, 64)  # carries noise of 0.02
    plain = restorer(models, scratches="off").restore(photo)
    assert "denoiser" not in restorer(models).required_roles() and "denoiser" not in plain.models
    grain = restorer(models, scratches="off", remove_grain=True).restore(photo)
    assert "denoiser" in grain.models
    assert not np.allclose(grain.image, plain.image, atol=1e-3)
    # at fidelity 0 the photo is not denoised at all, so the network is not needed
    assert "denoiser" not in restorer(models, remove_grain=True, fidelity=0.0).required_roles()
    # without its weights the error says what --remove-grain needs
    from oldphoto.weights import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="remove-grain"):
        restorer(models_no_faces, scratches="off", remove_grain=True).restore(photo)


def test_a_weights_folder_without_any_of_the_networks_is_said(tmp_path, caplog):
    """A wrong or empty --weights folder left every network to the bundled weights without a word (an
    API review); one that holds some of them is used as always."""
    empty = tmp_path / "empty"
    empty.mkdir()
    Restorer(weights=empty, faces=False)
    assert f"weights folder {empty.resolve()} holds none of the networks" in caplog.text
    caplog.clear()
    some = tmp_path / "some"
    some.mkdir()
    bundled = pathlib.Path(__file__).resolve().parents[2] / "src" / "oldphoto" / "weights" / "bundled"
    for name in ("vae_a.json", "vae_a.safetensors"):
        (some / name).write_bytes((bundled / name).read_bytes())
    Restorer(weights=some, faces=False)
    assert "holds none" not in caplog.text


def test_an_oldphoto_weights_folder_without_any_of_the_networks_is_said(tmp_path, monkeypatch, caplog):
    """OLDPHOTO_WEIGHTS naming a folder an admin shared that is not mounted (or mistyped) left every
    network to the bundled weights without a word, as --weights did; the default user folder, empty
    until weights are installed, is not worth one."""
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "share" / "oldphoto"))
    Restorer(faces=False)
    assert f"weights folder {tmp_path / 'share' / 'oldphoto'} holds none of the networks" in caplog.text
    caplog.clear()
    monkeypatch.delenv("OLDPHOTO_WEIGHTS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "fresh"))
    Restorer(faces=False)
    assert "holds none" not in caplog.text


def test_remove_grain_cannot_go_with_no_denoise():
    with pytest.raises(ValueError, match="--no-denoise"):
        RestoreOptions(remove_grain=True, denoise=False).validate()


def test_dark_dust_is_repaired_when_asked_and_faces_keep_their_moles(models_no_faces, real_old_dir,
                                                                     monkeypatch):
    """--dark-dust: a dark speck on the boy's flat background is repaired; one on his cheek is a mole,
    in the face dlib finds, and stays.  Without a face detector it would go, and the user is told."""
    pytest.importorskip("dlib", reason="dlib not installed: pip install 'oldphoto[faces]' (as .ci/run does)")
    with Image.open(real_old_dir / "portrait_boy_glasses.png") as im:
        boy = np.asarray(im.convert("RGB")).astype(np.float32) / 255
    for cy, cx in ((230, 110), (40, 40)):  # the mole on his cheek, dust on the wall behind him
        boy[cy - 1:cy + 2, cx - 1:cx + 2] *= 0.35
    plain = restorer(models_no_faces, scratches="off", dust=True).restore(boy)
    assert plain.path == "quality" or not plain.mask[40, 40]  # bright dust alone: the dark speck stays
    dark = restorer(models_no_faces, scratches="off", dark_dust=True).restore(boy)
    assert dark.path == "scratch" and dark.mask[40, 40] and not dark.mask[230, 110]
    blind = restorer(models_no_faces, scratches="off", dark_dust=True)
    monkeypatch.setattr(blind, "face_detector", lambda: None)
    unprotected = blind.restore(boy)
    assert unprotected.mask[230, 110] and any("--dark-dust: faces are not looked for" in n
                                              for n in blind.notices)


def test_dark_dust_is_not_part_of_the_official_stage_1():
    with pytest.raises(ValueError, match="--dark-dust is not part of the official stage 1"):
        RestoreOptions(dark_dust=True, compat="official").validate()


def test_restoring_with_the_bundled_networks_is_said(tmp_path, monkeypatch):
    """A restore with the small bundled networks said nothing of them (an air-gapped install review): its
    result could be taken for what the official networks give.  A folder of other networks is not."""
    from oldphoto import pipeline

    monkeypatch.setattr(pipeline, "_bundled_notice_shown", False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "fresh"))  # (no user weights installed)
    monkeypatch.delenv("OLDPHOTO_WEIGHTS", raising=False)
    assert pipeline.BUNDLED_NOTICE in Restorer(faces=False).notices
    own = tmp_path / "own"
    own.mkdir()
    bundled = pathlib.Path(__file__).resolve().parents[2] / "src" / "oldphoto" / "weights" / "bundled"
    for name in ("mapping_quality.json", "mapping_quality.safetensors"):
        (own / name).write_bytes((bundled / name).read_bytes())
    assert pipeline.BUNDLED_NOTICE not in Restorer(weights=own, faces=False).notices

"""--unfade: a faded print's black and white points stretched back (oldphoto.stages.unfade)."""

from __future__ import annotations

import numpy as np
import pytest

from oldphoto.luma import chroma, luma
from oldphoto.stages.unfade import MAX_GAIN, unfade
from oldphoto.synth.oldlook import tone


def scene(h: int = 300, w: int = 400, seed: int = 0) -> np.ndarray:
    """A colour photo spanning black to white: a diagonal ramp with coloured blobs and a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (xx / (w - 1) + yy / (h - 1)) / 2.0
    image = np.repeat(ramp[..., None], 3, axis=2)
    image[40:120, 60:160] *= np.array([1.0, 0.55, 0.45], np.float32)  # a red-brown patch
    image[180:260, 240:340] *= np.array([0.5, 0.8, 1.0], np.float32)  # a blue one
    image[140:170, 200:230], image[60:90, 300:330] = 0.0, 1.0  # black and white inside the frame
    image += rng.normal(0.0, 0.01, image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def faded(image: np.ndarray, black: float = 0.18, white: float = 0.8,
          dye: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Lifted blacks, dimmed whites, and each channel's density scaled by ``dye`` (a cast)."""
    out = black + image * (white - black)
    return (1.0 - (1.0 - out) * np.asarray(dye, np.float32)).astype(np.float32)


def test_off_returns_the_photo_as_it_is():
    photo = faded(scene())
    assert unfade(photo, "off") is photo


def test_contrast_gives_a_faded_print_its_blacks_and_whites_back():
    clean = scene()
    photo = faded(clean)
    out = unfade(photo, "contrast")
    before, after = np.abs(photo - clean).mean(), np.abs(out - clean).mean()
    assert after < before / 8, (before, after)
    y = luma(out)
    assert np.percentile(y, 0.5) < 0.03 and np.percentile(y, 99.5) > 0.97


def test_contrast_keeps_the_balance_of_the_channels_and_colour_takes_a_cast_away():
    clean = scene()
    photo = faded(clean, dye=(1.0, 0.8, 0.85))  # the green and blue dyes faded more: a magenta cast
    cast = chroma(photo).mean(axis=(0, 1)) - chroma(clean).mean(axis=(0, 1))
    kept = unfade(photo, "contrast")
    removed = unfade(photo, "colour")
    # one stretch for the three channels: the cast stays (stretched with the contrast)
    assert np.abs(chroma(kept).mean(axis=(0, 1)) - chroma(clean).mean(axis=(0, 1))).max() > \
        np.abs(cast).max()
    assert np.abs(chroma(removed).mean(axis=(0, 1)) - chroma(clean).mean(axis=(0, 1))).max() < \
        np.abs(cast).max() / 4
    assert np.abs(removed - clean).mean() < np.abs(kept - clean).mean()


def test_contrast_clips_no_channel_of_a_warm_print():
    """A warm print's blue lies below its luma: the luma's black point, taken for all three channels, put
    most of the blue at 0 (the scratched girl: 82 % of it, 25 % before), its shadows orange.  The points
    are the channels' darkest and lightest, so no channel is clipped beyond what was already."""
    warm = faded(tone(scene(), "sepia"), black=0.12, white=0.75)
    blue_at_zero = lambda im: float((im[..., 2] <= 1e-6).mean())  # noqa: E731
    out = unfade(warm, "contrast")
    assert blue_at_zero(out) <= blue_at_zero(warm) + 0.005
    assert np.percentile(out.min(axis=2), 0.5) < 0.03 and np.percentile(out.max(axis=2), 99.5) > 0.97
    red_over_blue = lambda im: float(im[..., 0].mean() / im[..., 2].mean())  # noqa: E731
    assert red_over_blue(out) < 1.5 * red_over_blue(warm)  # warmer with the stretch, not orange


def test_a_toned_print_keeps_its_tone_in_colour_mode():
    """Per-channel stretching would take a sepia print's tone away as a cast: a toned photo is stretched
    as by ``contrast``."""
    sepia = faded(tone(scene(), "sepia"))
    out = unfade(sepia, "colour", toned=True)
    assert np.array_equal(out, unfade(sepia, "contrast"))
    neutralised = unfade(sepia, "colour", toned=False)
    warmth = lambda im: float((im[..., 0] - im[..., 2]).mean())  # noqa: E731
    assert warmth(out) > 2 * warmth(neutralised)


def test_the_frame_does_not_pin_the_black_and_white_points():
    """A print's white border and the scanner's black lid around it are left out of the reading."""
    photo = faded(scene())
    framed = photo.copy()
    framed[:6], framed[-6:], framed[:, :6] = 1.0, 0.0, 1.0
    out = unfade(framed, "contrast")
    inner = (slice(20, -20), slice(20, -20))
    assert np.abs(out[inner] - unfade(photo, "contrast")[inner]).max() < 0.03


def test_a_narrow_scene_is_stretched_by_at_most_the_limit_and_its_whites_are_not_dimmed():
    """Fog spans a few light tones: stretched by MAX_GAIN, not pushed to black and white, and left light.
    Its middle tone used to become middle gray, which dimmed its lightest tone from 0.75 to 0.625: an
    unfading stretch deepens the darks and lightens the lights, it never does the opposite."""
    fog = 0.65 + 0.1 * scene()
    out = unfade(fog, "contrast")
    gain = np.std(luma(out)) / np.std(luma(fog))
    assert gain == pytest.approx(MAX_GAIN, rel=0.02)
    assert np.percentile(luma(out), 99.5) == pytest.approx(np.percentile(luma(fog), 99.5), abs=0.02)
    assert np.percentile(luma(out), 0.5) == pytest.approx(0.75 - MAX_GAIN * 0.1, abs=0.03)
    assert float(np.median(luma(out))) > 0.6


@pytest.mark.parametrize("low, high", [(0.0, 0.2), (0.1, 0.3), (0.4, 0.6), (0.7, 0.9), (0.8, 1.0)])
def test_a_narrow_scene_keeps_the_middle_gray_rule_only_where_it_lifts_no_dark_and_dims_no_light(low, high):
    """Where the limit binds the stretch is about the middle tone, which becomes middle gray, as far as
    the darkest tone is not lifted nor the lightest dimmed (0.4-0.6, in the middle, takes the rule as it
    is; the others would have one of their ends moved the wrong way by it)."""
    photo = low + (high - low) * scene()
    out = luma(unfade(photo, "contrast"))
    dark, light = np.percentile(luma(photo), (0.01, 99.99))
    assert np.percentile(out, 0.01) <= dark + 0.01 and np.percentile(out, 99.99) >= light - 0.01
    if (low, high) == (0.4, 0.6):
        assert float(np.median(out)) == pytest.approx(float(np.median(luma(photo))), abs=0.05)


@pytest.mark.parametrize("mode", ["contrast", "colour"])
@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_a_blank_photo_stays_as_it_is(mode, value):
    """An all-white, all-black or all-gray photo has no range to stretch: it used to come back middle gray."""
    blank = np.full((120, 160, 3), value, np.float32)
    assert np.abs(unfade(blank, mode) - blank).max() < 1e-4


def test_a_night_scene_stays_dark():
    """A night scene spans the darkest fifth of the tones: its blacks stay black and it stays dark (it was
    lifted to middle gray: 0.25 to 0.75; this is the rule that the darkest tone is not lifted)."""
    night = 0.2 * scene()
    out = luma(unfade(night, "contrast"))
    assert np.percentile(out, 0.5) < 0.02
    assert np.percentile(out, 99.5) == pytest.approx(0.2 * MAX_GAIN, abs=0.03)


def test_a_nearly_blank_page_stays_white_and_its_faint_writing_darkens():
    page = np.full((300, 400, 3), 0.93, np.float32)
    for row in range(30, 270, 20):
        page[row:row + 3, 40:360:2] = 0.8  # faint strokes
    page += np.random.default_rng(2).normal(0.0, 0.005, page.shape[:2])[..., None].astype(np.float32)
    page = np.clip(page, 0.0, 1.0)
    out = unfade(page, "contrast")
    paper, ink = (slice(35, 48), slice(40, 360)), (slice(30, 33), slice(40, 360, 2))
    assert out[paper].mean() > page[paper].mean() - 0.04  # (it was 0.64: the page turned gray)
    assert out[ink].mean() < page[ink].mean() - 0.1


def test_colour_keeps_a_narrow_channel_where_it_lay():
    """``colour`` stretches each channel by at most MAX_GAIN: a warm photo whose blue spans 0.05 to 0.25
    keeps its blue low instead of having it lifted about middle gray (which turned the photo blue)."""
    warm = scene()
    warm[..., 2] = 0.05 + 0.2 * warm[..., 2]
    out = unfade(warm, "colour")
    assert out[..., 2].mean() < 0.7 * min(out[..., 0].mean(), out[..., 1].mean())  # (it was 0.5)
    assert np.percentile(out[..., 2], 0.5) < 0.07  # (it was 0.25)


def test_a_photo_that_spans_black_to_white_is_left_nearly_as_it_is():
    clean = scene()
    assert np.abs(unfade(clean, "colour") - clean).max() < 0.03


def test_grain_and_dust_specks_do_not_pin_the_black_and_white_points():
    """Read on the photo shrunk by area: single white and black specks (dust, dirt) and grain average out
    instead of deciding the stretch."""
    rng = np.random.default_rng(1)
    clean = scene(768, 1024)
    photo = faded(clean) + rng.normal(0.0, 0.02, clean.shape[:2])[..., None].astype(np.float32)
    for value in (0.0, 1.0):
        ys, xs = rng.integers(40, 728, 1000), rng.integers(40, 984, 1000)
        photo[ys, xs] = value
    out = unfade(np.clip(photo, 0.0, 1.0), "contrast")
    black, white = out[140:170, 200:230].mean(), out[60:90, 300:330].mean()  # the scene's black and white
    assert black < 0.03 and white > 0.97, (black, white)

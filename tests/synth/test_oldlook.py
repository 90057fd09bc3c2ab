import numpy as np
import pytest

from oldphoto.synth import oldlook as O


def rng(seed=0):
    return np.random.default_rng(seed)


def test_fade_loses_contrast_and_lifts_blacks(photo):
    for s in range(5):
        out = O.fade(photo, rng(s))
        assert out.std() < photo.std()
        assert out.min() > photo.min() + 0.02
        assert out.dtype == np.float32


def test_fade_of_a_silver_print_stays_neutral(gray_card):
    out = O.fade(gray_card, rng(1), colour=False)
    assert np.ptp(out.reshape(-1, 3).mean(0)) < 1e-6


@pytest.mark.parametrize("name", list(O.TONES))
def test_tones_follow_the_toner_ramp(name, photo):
    out = O.tone(photo, name, 1.0)
    hi, lo = (np.asarray(c, np.float32) for c in O.TONES[name])
    y = photo @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(out, np.clip(lo + y[..., None] * (hi - lo), 0, 1), atol=1e-5)


def test_sepia_is_warm(gray_card):
    r, g, b = O.tone(gray_card, "sepia").reshape(-1, 3).mean(0)
    assert r > g > b


def test_yellowing_reduces_blue_most():
    white = np.ones((32, 32, 3), np.float32)
    out = O.yellowing(white, rng(2))
    r, g, b = out.reshape(-1, 3).mean(0)
    assert b < g < r <= 1.0


def test_vignette_darkens_corners(gray_card):
    out = O.vignette(np.full((101, 101, 3), 0.8, np.float32), rng(0))
    centre = out[40:60, 40:60].mean()
    corners = np.mean([out[:5, :5].mean(), out[:5, -5:].mean(), out[-5:, :5].mean(), out[-5:, -5:].mean()])
    assert corners < centre - 0.03
    assert out.max() <= 0.8 + 1e-6

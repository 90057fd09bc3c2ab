"""The face degradation: deterministic, tone shared with the target, gray stays gray, really degrading."""

import numpy as np
import pytest

from oldphoto.synth.face_degrade import FaceDegradeConfig, degrade_face


def test_deterministic_and_shapes(photo):
    a = degrade_face(photo, np.random.default_rng(5))
    b = degrade_face(photo, np.random.default_rng(5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert a[0].shape == photo.shape and a[0].dtype == np.float32
    assert 0.0 <= a[0].min() and a[0].max() <= 1.0


def test_gray_target_and_input_stay_gray(photo):
    cfg = FaceDegradeConfig(p_gray=1.0, p_yellow=0.0)
    for seed in range(6):
        x, y, ops = degrade_face(photo, np.random.default_rng(seed), cfg)
        assert "gray" in ops
        assert np.abs(y - y[..., :1]).max() < 1e-6
        assert np.abs(x - x[..., :1]).max() < 1e-5, ops  # noise, JPEG, fading, grain: still gray


def test_colour_target_is_the_clean_face(photo):
    cfg = FaceDegradeConfig(p_gray=0.0, p_tone=0.0)
    x, y, _ = degrade_face(photo, np.random.default_rng(1), cfg)
    assert np.array_equal(y, photo)


@pytest.mark.parametrize("seed", range(4))
def test_shrinking_removes_detail(photo, seed):
    cfg = FaceDegradeConfig(p_sharp=0.0, p_gray=0.0, p_tone=0.0, p_down=1.0, down=(4.0, 4.0), p_blur=0.0,
                            p_noise=0.0,
                            p_jpeg=0.0, p_fade=0.0, p_yellow=0.0, p_grain=0.0, p_dust=0.0, p_scratch=0.0)
    x, y, ops = degrade_face(photo, np.random.default_rng(seed), cfg)
    assert ops == ["down:4.0"]

    def detail(img):  # high-frequency energy
        g = img.mean(axis=2)
        return np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean()

    assert detail(x) < 0.6 * detail(y)
    assert np.abs(x.mean() - y.mean()) < 0.02  # the content is kept


def test_sharp_prints_keep_their_resolution(photo):
    cfg = FaceDegradeConfig(p_sharp=1.0, p_gray=0.0, p_tone=0.0, p_fade=0.0, p_yellow=0.0, p_grain=0.0,
                            p_dust=0.0, p_scratch=0.0)
    x, y, ops = degrade_face(photo, np.random.default_rng(0), cfg)
    assert ops == ["sharp"] and np.array_equal(x, y)

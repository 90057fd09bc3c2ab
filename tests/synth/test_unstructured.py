import numpy as np
import pytest

from oldphoto.synth import unstructured as U


def rng(seed=0):
    return np.random.default_rng(seed)


ALL_OPS = [U.gaussian_noise, U.speckle_noise, U.salt_pepper_noise, U.random_noise, U.gaussian_blur,
           U.box_blur, U.down_up_sample, U.jpeg, U.color_jitter]


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda f: f.__name__)
def test_ops_keep_shape_dtype_range_and_are_deterministic(op, photo):
    a = op(photo, rng(3))
    b = op(photo, rng(3))
    assert a.shape == photo.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, photo)  # every op changes a real photo


def test_gaussian_noise_sigma_in_paper_range(gray_card):
    stds = [float((U.gaussian_noise(gray_card, rng(s), p_mono=0.0) - 0.5).std()) for s in range(20)]
    assert min(stds) >= 5 / 255 * 0.9 and max(stds) <= 50 / 255 * 1.05
    assert np.ptp(stds) > 10 / 255  # σ is drawn, not fixed
    noisy = U.gaussian_noise(gray_card, rng(1), p_mono=0.0) - 0.5
    assert abs(float(noisy.mean())) < 0.01  # zero-mean


def test_mono_noise_is_shared_by_channels(gray_card):
    n = U.gaussian_noise(gray_card, rng(2), p_mono=1.0)
    np.testing.assert_array_equal(n[..., 0], n[..., 1])
    np.testing.assert_array_equal(n[..., 1], n[..., 2])


def test_speckle_scales_with_intensity():
    dark, light = np.full((64, 32, 3), 0.2, np.float32), np.full((64, 32, 3), 0.8, np.float32)
    img = np.concatenate([dark, light], axis=1)
    out = U.speckle_noise(img, rng(5), sigma=(40, 40), p_mono=0.0) - img
    assert out[:, 32:].std() / out[:, :32].std() == pytest.approx(4.0, rel=0.2)


def test_salt_and_pepper_amount_and_values(gray_card):
    out = U.salt_pepper_noise(gray_card, rng(0), amount=(0.01, 0.01), salt_ratio=(0.5, 0.5))
    changed = out != 0.5
    assert set(np.unique(out[changed])) <= {0.0, 1.0}
    assert changed.mean() == pytest.approx(0.01, abs=0.003)
    assert (out == 1.0).sum() == pytest.approx((out == 0.0).sum(), rel=0.25)


def _hf_energy(img):
    return float(np.abs(np.diff(img, axis=1)).mean())


@pytest.mark.parametrize("op", [U.gaussian_blur, U.box_blur], ids=lambda f: f.__name__)
def test_blurs_remove_detail_and_keep_mean(op, photo):
    out = op(photo, rng(1))
    assert _hf_energy(out) < 0.8 * _hf_energy(photo)
    assert abs(float(out.mean() - photo.mean())) < 0.01


def test_down_up_loses_detail_keeps_size(photo):
    outs = [U.down_up_sample(photo, rng(s)) for s in range(6)]
    assert all(o.shape == photo.shape for o in outs)
    assert min(_hf_energy(o) for o in outs) < _hf_energy(photo)


def test_jpeg_quality_range_changes_error(photo):
    img = photo
    low = float(np.abs(U.jpeg(img, rng(0), quality=(40, 40)) - img).mean())
    high = float(np.abs(U.jpeg(img, rng(0), quality=(100, 100)) - img).mean())
    assert low > 2 * high


def test_color_jitter_is_a_bounded_per_channel_shift(gray_card):
    for s in range(10):
        out = U.color_jitter(gray_card, rng(s))
        shift = out.reshape(-1, 3) - 0.5
        assert np.ptp(shift, axis=0).max() < 1e-6  # one constant offset per channel
        assert np.abs(shift).max() <= 20 / 255 + 1e-6


def test_grayscale_channels_equal(photo):
    g = U.to_grayscale(photo)
    np.testing.assert_array_equal(g[..., 0], g[..., 2])
    np.testing.assert_allclose(g[..., 0], photo @ np.array([0.299, 0.587, 0.114], np.float32), atol=1e-6)


def test_apply_unstructured_drop_and_order(photo):
    out, applied = U.apply_unstructured(photo, rng(0), p_drop=1.0)
    assert applied == [] and np.array_equal(out, photo)
    _, applied = U.apply_unstructured(photo, rng(0), p_drop=0.0)
    # all ops except the second blur (one blur per sample)
    assert len(applied) == len(U.UNSTRUCTURED_OPS) - 1
    assert len({"gaussian_blur", "box_blur"} & set(applied)) == 1
    orders = {tuple(U.apply_unstructured(photo, rng(s), p_drop=0.0)[1]) for s in range(8)}
    assert len(orders) > 3  # random order
    counts = np.mean([len(U.apply_unstructured(photo, rng(s), p_drop=0.3)[1]) for s in range(60)])
    assert 3.0 < counts < 4.6  # ≈ 0.7 · 6 minus the occasional second blur

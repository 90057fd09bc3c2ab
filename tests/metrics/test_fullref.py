import math

import numpy as np
import pytest

from oldphoto.metrics.fullref import psnr, psnr_y, rgb_to_luma, ssim, ssim_y

from .conftest import add_noise


def test_identical_images(photo):
    assert psnr(photo, photo) == math.inf
    assert ssim(photo, photo) == pytest.approx(1.0, abs=1e-9)
    assert ssim_y(photo, photo) == pytest.approx(1.0, abs=1e-9)


def test_psnr_of_known_noise_level():
    # mid-grey image, so no clipping: the MSE is the noise variance and PSNR = 20 log10(1 / sigma)
    base = np.full((128, 128, 3), 0.5, np.float32)
    for sigma in (0.01, 0.05):
        noisy = base + np.random.default_rng(1).normal(0, sigma, base.shape).astype(np.float32)
        assert psnr(noisy, base) == pytest.approx(20 * math.log10(1 / sigma), abs=0.05)


def test_psnr_exact_constant_offset():
    a = np.zeros((8, 8, 3), np.float32)
    assert psnr(a + 0.1, a) == pytest.approx(20.0, abs=1e-6)


def test_luma_matches_bt601_studio_range():
    white, black = np.ones((1, 1, 3)), np.zeros((1, 1, 3))
    assert rgb_to_luma(white)[0, 0] * 255 == pytest.approx(235.0)
    assert rgb_to_luma(black)[0, 0] * 255 == pytest.approx(16.0)


def test_metrics_monotonic_in_noise(photo):
    levels = [0.02, 0.05, 0.1, 0.2]
    p = [psnr(add_noise(photo, s), photo) for s in levels]
    s = [ssim(add_noise(photo, s), photo) for s in levels]
    py = [psnr_y(add_noise(photo, s), photo) for s in levels]
    assert p == sorted(p, reverse=True) and s == sorted(s, reverse=True) and py == sorted(py, reverse=True)


def test_size_mismatch_is_an_error(photo):
    with pytest.raises(ValueError, match="sizes differ"):
        psnr(photo, photo[:-1])

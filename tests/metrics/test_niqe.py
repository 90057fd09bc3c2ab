import cv2
import numpy as np
import pytest
from PIL import Image

from oldphoto.metrics import calibration
from oldphoto.metrics.niqe import aggd_fit, niqe

from .conftest import add_noise


def test_aggd_fit_recovers_gaussian_shape():
    x = np.random.default_rng(0).normal(0, 1.0, 200_000)
    alpha, bl, br = aggd_fit(x)
    assert alpha == pytest.approx(2.0, abs=0.05)
    assert bl == pytest.approx(np.sqrt(2.0), rel=0.03) and br == pytest.approx(np.sqrt(2.0), rel=0.03)


def test_niqe_monotonic_in_noise_and_blur(photo):
    clean = niqe(photo)
    noisy = [niqe(add_noise(photo, s)) for s in (0.03, 0.08, 0.15)]
    assert clean < noisy[0] < noisy[1] < noisy[2]
    blurred = [niqe(cv2.GaussianBlur(photo, (0, 0), s)) for s in (1.5, 3.0)]
    assert clean < blurred[0] < blurred[1]


def test_niqe_rejects_tiny_image():
    with pytest.raises(ValueError, match="at least 96"):
        niqe(np.zeros((50, 200, 3), np.float32))


def test_niqe_matches_published_values(calibration_dir):
    for name, official in zip(calibration.IMAGES, calibration.OFFICIAL["niqe"], strict=True):
        image = np.asarray(Image.open(calibration_dir / f"{name}.bmp").convert("RGB"), np.float32) / 255
        assert niqe(image) == pytest.approx(official, rel=0.05), name

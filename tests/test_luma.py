"""The one BT.601 luma: Pillow's convert("L") weights, in the dtype asked for."""

import numpy as np
import pytest
from PIL import Image

from oldphoto.luma import luma


def test_luma_matches_pillow_and_keeps_gray():
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    pil = np.asarray(Image.fromarray(u8).convert("L"), np.float32)
    assert np.abs(luma(u8.astype(np.float32)) - pil).max() <= 0.51  # Pillow rounds to integers
    gray = np.repeat(rng.random((8, 8, 1), dtype=np.float32), 3, axis=2)
    assert np.allclose(luma(gray), gray[..., 0], atol=1e-6)
    assert luma(gray, np.float64).dtype == np.float64 and luma(gray).dtype == np.float32


def test_luma_rejects_non_rgb():
    with pytest.raises(ValueError, match="H×W×3"):
        luma(np.zeros((4, 4)))

"""--upscale's stage: tiles, the photo's own colours and levels (oldphoto.stages.upscale)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from oldphoto.luma import chroma, luma
from oldphoto.stages.upscale import UpscaleStage


def nearest(x: torch.Tensor) -> torch.Tensor:
    """A stand-in ×4 'network' that only enlarges (each pixel depends on one input pixel)."""
    return F.interpolate(x, scale_factor=4, mode="nearest")


def photo(h: int = 50, w: int = 70, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = rng.random((6, 8, 3)).astype(np.float32)
    import cv2

    return np.clip(cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) * 0.8 + 0.1, 0, 1)


@pytest.mark.parametrize("factor", [2, 4])
def test_size_and_tiles_that_meet_exactly(factor):
    image = photo()
    whole = UpscaleStage(nearest, factor, tile=1000, context=4)(image)
    tiled = UpscaleStage(nearest, factor, tile=24, context=4)(image)  # 4 × 5 tiles
    assert whole.shape == (50 * factor, 70 * factor, 3) and whole.dtype == np.float32
    np.testing.assert_allclose(tiled, whole, atol=1e-6)


def test_progress_after_each_tile():
    told = []
    UpscaleStage(nearest, 2, tile=24, context=4, progress=told.append)(photo())  # 4 × 5 tiles of 16 px
    assert told == pytest.approx([k / 20 for k in range(1, 21)])


def test_the_photos_colours_and_tone_are_kept():
    image = photo()
    gray = np.repeat(luma(image)[..., None], 3, axis=2)

    def sharpen_and_tint(x: torch.Tensor) -> torch.Tensor:  # a network that also shifts colours
        return nearest(x) + torch.tensor([0.3, 0.0, -0.3]).view(1, 3, 1, 1)

    out = UpscaleStage(sharpen_and_tint, 2, tile=1000, context=4)(gray)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])  # gray
    colour = UpscaleStage(sharpen_and_tint, 2, tile=1000, context=4)(image)
    import cv2

    bicubic = cv2.resize(image, (140, 100), interpolation=cv2.INTER_CUBIC)
    inside = (bicubic.min(axis=2) > 0.02) & (bicubic.max(axis=2) < 0.98)  # (clipping aside)
    np.testing.assert_allclose(chroma(colour)[inside], chroma(bicubic)[inside], atol=1e-5)


def test_the_photos_levels_are_kept():
    image = photo()

    def darken(x: torch.Tensor) -> torch.Tensor:  # 0.1 darker everywhere
        return nearest(x) - 0.2

    out = UpscaleStage(darken, 4, tile=1000, context=4)(image)
    assert abs(float(luma(out).mean() - luma(image).mean())) < 0.005


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="factor"):
        UpscaleStage(nearest, 3, tile=100)
    with pytest.raises(ValueError, match="context"):
        UpscaleStage(nearest, 2, tile=96, context=48)

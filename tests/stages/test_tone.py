import numpy as np
from skimage import data

from oldphoto.stages.tone import fit_tone, luma


def test_colour_photo_has_no_tone():
    assert fit_tone(data.astronaut().astype(np.float32) / 255) is None


def test_gray_photo_is_gray_and_retones_exactly():
    g = data.camera().astype(np.float32) / 255
    rgb = np.repeat(g[..., None], 3, axis=2)
    tone = fit_tone(rgb)
    assert tone is not None and tone.gray
    out = tone.apply(g)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_sepia_photo_keeps_its_tone():
    g = data.camera().astype(np.float32) / 255
    sepia = np.clip(np.stack([g * 1.07 + 0.03, g * 0.95 + 0.01, g * 0.78], axis=2), 0, 1).astype(np.float32)
    tone = fit_tone(sepia)
    assert tone is not None and not tone.gray
    again = tone.apply(luma(sepia))
    assert np.abs(again - sepia).mean() < 0.01
    # a new luma image gets the same warm cast: red above blue at mid-gray
    mid = tone.apply(np.full((4, 4), 0.5, np.float32))
    assert mid[0, 0, 0] > mid[0, 0, 2] + 0.05

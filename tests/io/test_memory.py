"""Reading and writing hold one float copy of a photo: conversions run in row blocks.

numpy reports its allocations to tracemalloc, so the peak below counts every array and bytes object
(Pillow's and OpenCV's own buffers are not counted; they hold samples, never floats).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from helpers import adobe_like_icc
from PIL import Image

from oldphoto.io import _png, read_photo, write_photo
from oldphoto.io import photo as photo_module

W, H = 400, 300
FLOAT_COPY = W * H * 3 * 4


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    # 1/16 of the photo per block, as a 100 Mpx photo has 1/100 with the real block size
    monkeypatch.setattr(photo_module, "_BLOCK_PIXELS", W * H // 16)
    monkeypatch.setattr(_png, "_BLOCK_BYTES", W * H * 3 // 16)


def _peak(fn):
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _scan(path, fmt, **kw):
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([x * 255 // W, y * 255 // H, (x + y) % 256], -1).astype(np.uint8)
    Image.fromarray(rgb).save(path, fmt, **kw)


@pytest.mark.parametrize("fmt, ext, kw", [("PNG", "png", {}), ("JPEG", "jpg", {"quality": 95}),
                                          ("TIFF", "tif", {}), ("WEBP", "webp", {"quality": 95}),
                                          ("JPEG", "jpg", {"icc_profile": adobe_like_icc()})])
def test_one_float_copy(tmp_path, fmt, ext, kw):
    src = tmp_path / f"in.{ext}"
    _scan(src, fmt, **kw)
    photo, peak = _peak(lambda: read_photo(src))
    # the float pixels, the decoded samples (3 B/px) and one block's temporaries; no second float copy
    assert FLOAT_COPY <= peak < FLOAT_COPY * 1.5
    restored = np.ascontiguousarray(1.0 - photo.pixels)
    photo.release_pixels()
    assert photo.size == (W, H) and photo.pixels.nbytes == FLOAT_COPY and photo.pixels.base.nbytes == 12
    _, peak = _peak(lambda: write_photo(tmp_path / f"out.{ext}", restored, like=photo))
    assert peak < FLOAT_COPY  # samples, encoder buffers and one block's temporaries
    error = np.abs(read_photo(tmp_path / f"out.{ext}").pixels - restored)  # the blocks fit together
    if fmt in ("PNG", "TIFF"):
        assert error.max() <= 0.5 / 255 + 1e-6
    else:
        assert error.mean() < 0.01


def test_a_released_photo_pickles_without_its_pixels(tmp_path):
    """A cluster batch sends the decoded photo between machines after the restorer took its pixels: only
    the metadata travels, and it writes the restoration back as faithfully as the original object."""
    import pickle

    src = tmp_path / "in.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the displayed size is H x W
    _scan(src, "JPEG", quality=95, icc_profile=adobe_like_icc(), exif=exif.tobytes())
    photo = read_photo(src)
    whole = pickle.loads(pickle.dumps(photo))
    assert np.array_equal(whole.pixels, photo.pixels)  # pixels still there: they travel
    restored = np.ascontiguousarray(1.0 - photo.pixels)
    photo.release_pixels()
    data = pickle.dumps(photo)
    assert len(data) < FLOAT_COPY / 20
    copy = pickle.loads(data)
    assert copy.size == photo.size == (H, W) and copy.pixels.base.nbytes == 12
    assert copy.icc_profile == photo.icc_profile and copy.orientation == photo.orientation
    write_photo(tmp_path / "a.jpg", restored, like=photo)
    write_photo(tmp_path / "b.jpg", restored, like=copy)
    assert (tmp_path / "a.jpg").read_bytes() == (tmp_path / "b.jpg").read_bytes()

"""Truncated pixel data is an error named "truncated", even where the decoders accept it silently."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

from oldphoto.io import PhotoError, read_photo

RNG = np.random.default_rng(3)
PIXELS = RNG.integers(0, 255, (160, 120, 3), dtype=np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_rows(path, rows: int, width: int = 120, height: int = 160, colour_type: int = 2,
                   noise: bool = True) -> None:
    """A PNG whose header says width×height but whose (complete, valid) zlib stream holds ``rows`` rows."""
    channels = {0: 1, 2: 3}[colour_type]
    shape = (rows, width, channels)
    data = np.resize(PIXELS, shape) if noise else np.zeros(shape, np.uint8)
    raw = b"".join(b"\0" + data[i].tobytes() for i in range(rows))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 9))
                     + _chunk(b"IEND", b""))


def _interlaced_png(pixels: np.ndarray, keep: float = 1.0) -> bytes:
    """An Adam7-interlaced RGB PNG (Pillow writes none), its data stream cut to ``keep`` of its length."""
    h, w = pixels.shape[:2]
    raw = b""
    for x0, dx, y0, dy in ((0, 8, 0, 8), (4, 8, 0, 8), (0, 4, 4, 8), (2, 4, 0, 4), (0, 2, 2, 4), (1, 2, 0, 2),
                           (0, 1, 1, 2)):
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\0" + row.tobytes() for row in sub)
    raw = raw[: int(len(raw) * keep)]
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw))
            + _chunk(b"IEND", b""))


def _reason(path) -> str:
    with pytest.raises(PhotoError) as info:
        read_photo(path)
    return info.value.reason


def test_png_with_missing_rows(tmp_path):
    path = tmp_path / "rows.png"
    _png_with_rows(path, 40)
    with Image.open(path) as im:
        im.load()  # Pillow alone takes it (the missing rows come out black)
    assert _reason(path) == "truncated PNG: the image data holds 40 of the 160 rows its header announces"
    _png_with_rows(path, 160)
    assert read_photo(path).size == (120, 160)


def test_interlaced_png_cut(tmp_path):
    (tmp_path / "i.png").write_bytes(_interlaced_png(PIXELS, keep=0.5))
    assert _reason(tmp_path / "i.png") == ("truncated PNG: the image data holds 50 % of the 120x160 pixels "
                                           "its header announces")
    (tmp_path / "whole.png").write_bytes(_interlaced_png(PIXELS))
    assert np.array_equal(np.rint(read_photo(tmp_path / "whole.png").pixels * 255), PIXELS)


def _jpeg(**kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(PIXELS).save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def test_jpeg_cut_and_closed_with_an_end_marker(tmp_path):
    data = _jpeg()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) * 6 // 10] + b"\xff\xd9")
    with Image.open(path) as im:
        im.load()  # Pillow alone takes it (grey at the bottom)
    reason = _reason(path)
    assert reason.startswith("truncated JPEG") and "premature end" in reason


def test_jpeg_cut_without_end_marker(tmp_path):
    data = _jpeg()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 6 // 10])
    assert _reason(tmp_path / "cut.jpg").startswith("truncated JPEG")


def test_progressive_jpeg_cut_between_scans(tmp_path):
    data = _jpeg(progressive=True)
    scans = [i for i in range(len(data) - 1) if data[i:i + 2] == b"\xff\xda"]
    path = tmp_path / "p.jpg"
    path.write_bytes(data[:scans[3]] + b"\xff\xd9")  # three whole scans: no decoder complains
    assert _reason(path) == ("truncated JPEG, or damaged: the file ends after 3 scan(s), before every "
                             "coefficient of the image was sent in full")
    path.write_bytes(data)
    assert read_photo(path).size == (120, 160)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_tiff_cut(tmp_path, compression):
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, PIXELS, compression=compression, rowsperstrip=16)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    assert _reason(path).startswith("truncated TIFF")


@pytest.mark.parametrize("keep", [8, 40, 100])
@pytest.mark.parametrize("big", [False, True])
def test_tiff_cut_in_its_header_says_so_and_logs_nothing(tmp_path, capfd, keep, big):
    # a copy cut off before the pixels: tifffile complained of offsets and "corrupted IFD structure",
    # and tifffile's log and Pillow's warnings reached the console
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, PIXELS, bigtiff=big, metadata={"Description": "x" * 40})
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    reason = _reason(path)
    assert reason.startswith("truncated TIFF: the file ends "), reason
    assert "directory" in reason or "header" in reason
    assert capfd.readouterr().err == ""


def test_webp_cut(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(PIXELS).save(buf, "WEBP", quality=90)
    data = buf.getvalue()
    (tmp_path / "w.webp").write_bytes(data[: len(data) * 6 // 10])
    assert _reason(tmp_path / "w.webp").startswith("truncated WebP: the file has")


def test_load_truncated_images_set_elsewhere_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # another library's global choice
    data = _jpeg()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 6 // 10])
    assert _reason(tmp_path / "cut.jpg").startswith("truncated JPEG")
    buf = io.BytesIO()
    Image.fromarray(PIXELS).save(buf, "PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[:-300])
    assert "truncated" in _reason(tmp_path / "cut.png")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # left as the other library set it


def test_header_bomb_under_the_pixel_guard_fails_fast(tmp_path):
    """10 KB claiming 11000×10000 (110 Mpx, under the 120 Mpx guard): refused in moments, little memory."""
    path = tmp_path / "bomb.png"
    _png_with_rows(path, 2, width=11000, height=10000, colour_type=0, noise=False)
    assert path.stat().st_size < 10_000
    tracemalloc.start()
    started = time.perf_counter()
    try:
        reason = _reason(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reason == "truncated PNG: the image data holds 2 of the 10000 rows its header announces"
    assert time.perf_counter() - started < 2.0
    assert peak < 20 << 20


def test_a_damaged_jpeg_is_told_from_one_cut_short(tmp_path):
    """Bytes wrong but none missing: 'damaged', never 'truncated'; a file that ends early: 'truncated'."""
    data = _jpeg()
    sos, dht = data.find(b"\xff\xda"), data.find(b"\xff\xc4")
    path = tmp_path / "photo.jpg"
    cases = {
        # a Huffman table of impossible codes: Pillow says "broken data stream"
        "table": data[:dht + 5] + b"\xff" * 16 + data[dht + 21:],
        # a marker that is no marker in the middle of the image data: a "segment" runs past the end
        "marker": data[:(sos + len(data)) // 2] + b"\xff\xc8" + data[(sos + len(data)) // 2 + 2:],
        # something else after the start of image
        "header": data[:2] + b"\xffThis is a letter, not the rest of a photo. " * 40,
        # a frame of 0x0 pixels
        "size": data[:data.find(b"\xff\xc0") + 5] + b"\0\0\0\0" + data[data.find(b"\xff\xc0") + 9:],
    }
    for name, damaged in cases.items():
        assert len(damaged) >= len(data) or name == "header"
        path.write_bytes(damaged)
        reason = _reason(path)
        assert reason.startswith("damaged JPEG") and "truncated" not in reason, (name, reason)
    for cut in (data[:10], data[:dht + 20], data[:sos + 4]):
        path.write_bytes(cut)
        assert _reason(path) == "truncated JPEG: the file is cut short inside its header"
    path.write_bytes(data[:sos + 200])
    assert _reason(path).startswith("truncated JPEG: the file ends inside the image data")

"""Broken files are refused with the file name and a reason; misnamed images are read by content."""

from __future__ import annotations

import contextlib
import signal
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from oldphoto.io import PhotoError, atomic_write, read_photo, write_photo


def _png_bomb(path, width=100_000, height=100_000):
    """A tiny PNG whose header claims a huge image (the classic decompression bomb shape)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1) * 4)  # a few rows are enough to be a plausible file
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _good(path, fmt="PNG"):
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, fmt)


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("these are my holiday notes\n"), "not an image"),
    (lambda p: (_good(p, "JPEG"), p.write_bytes(p.read_bytes()[:400])), "truncated"),
    (lambda p: _png_bomb(p), "decompression bomb"),
])
def test_bad_file_reported_with_reason(tmp_path, make, reason):
    path = tmp_path / "photo.jpg"
    make(path)
    with pytest.raises(PhotoError) as info:
        read_photo(path)
    assert reason in str(info.value) and "photo.jpg" in str(info.value)


def test_truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    _good(path)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(PhotoError, match="truncated"):
        read_photo(path)


def test_pixel_limit_is_configurable(tmp_path):
    path = tmp_path / "big.png"
    _good(path)
    assert read_photo(path, max_pixels=64 * 64).size == (64, 64)
    with pytest.raises(PhotoError, match="--max-pixels") as info:
        read_photo(path, max_pixels=64 * 64 - 1)
    # in the option's own unit, exact: a small limit does not read "0.0 Mpx exceeds 0.0 Mpx"
    assert "64x64 = 4,096 pixels exceeds the limit of 4,095 pixels" in str(info.value)


def test_misnamed_image_read_by_content(tmp_path):
    path = tmp_path / "actually_png.jpg"
    _good(path)
    photo = read_photo(path)
    assert photo.family == "png" and any("content is PNG" in w for w in photo.warnings)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"previous complete version")

    def half_then_fail(tmp):
        tmp.write_bytes(b"\x89PNG half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(dest, half_then_fail)
    assert dest.read_bytes() == b"previous complete version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_write_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="cannot write"):
        write_photo(tmp_path / "x.bmp", np.zeros((2, 2, 3), np.float32))


@pytest.mark.parametrize("pixels, said", [
    (np.full((4, 4, 3), 200, np.uint8), "must be floats in \\[0, 1\\], got uint8"),
    (np.full((4, 4, 3), 200.0), "got values from 200 to 200"),
    (np.full((4, 4, 3), np.nan, np.float32), "got values from nan to nan"),
])
def test_write_refuses_pixels_that_are_not_in_0_to_1(tmp_path, pixels, said):
    """8-bit or 0-255 pixels were written all white, NaN black, without a word (an API review)."""
    with pytest.raises(ValueError, match=said):
        write_photo(tmp_path / "x.png", pixels)
    assert not (tmp_path / "x.png").exists()
    write_photo(tmp_path / "x.png", np.full((4, 4, 3), 1.004))  # rounding beyond 1: clipped


@pytest.mark.parametrize("dtype, top", [(np.int32, 250_000), (np.int16, 300)])
def test_integer_samples_beyond_16_bits_are_refused_not_clipped(tmp_path, dtype, top):
    import tifffile

    values = np.linspace(0, top, 64 * 48).reshape(48, 64).astype(dtype)
    if dtype == np.int16:
        values[:8] = -500  # signed samples below zero
    tifffile.imwrite(tmp_path / "deep.tif", values)
    with pytest.raises(PhotoError, match="16-bit") as info:
        read_photo(tmp_path / "deep.tif")
    assert "deep.tif" in str(info.value)
    tifffile.imwrite(tmp_path / "fits.tif", np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.int32))
    photo = read_photo(tmp_path / "fits.tif")  # whole 16-bit range in a 32-bit file: read as it is
    assert photo.pixels.max() == pytest.approx(1.0) and photo.pixels.min() == 0.0


def test_other_warnings_of_a_read_pass_on_also_when_it_fails(tmp_path, monkeypatch):
    """Only EXIF warnings become the photo's; any other warning raised while reading reaches the caller,
    whether the read succeeds or fails."""
    import warnings

    import oldphoto.io.photo as photo_module

    def failing(path, *args):
        warnings.warn("something else", UserWarning, stacklevel=2)
        raise PhotoError(path, "cannot decode")

    _good(tmp_path / "a.png", "PNG")
    monkeypatch.setattr(photo_module, "_open_photo", failing)
    with pytest.warns(UserWarning, match="something else"), pytest.raises(PhotoError, match="cannot decode"):
        read_photo(tmp_path / "a.png")


def test_damaged_exif_is_a_warning_of_the_photo_not_a_python_warning(tmp_path, recwarn):
    # Pillow reads what it can of a damaged EXIF block and says "Corrupt EXIF data" as a Python
    # UserWarning: printed on the console with Pillow's file and line, between the batch's lines, and
    # missing from the photo's warnings (and so from the report)
    good = tmp_path / "good.jpg"
    _good(good, "JPEG")
    data = good.read_bytes()
    payload = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\x00" * 20  # an IFD of 65535 entries
    (tmp_path / "photo.jpg").write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2)
                                         + payload + data[2:])
    photo = read_photo(tmp_path / "photo.jpg")
    assert photo.size == (64, 64)
    assert not [w for w in recwarn if "EXIF" in str(w.message)]
    assert sum("Corrupt EXIF data" in w for w in photo.warnings) == 1, photo.warnings
    write_photo(tmp_path / "out.jpg", photo.pixels, like=photo)
    assert not [w for w in recwarn if "EXIF" in str(w.message)]


@contextlib.contextmanager
def file_size_limit(n: int):
    """Files this process writes may grow to ``n`` bytes (RLIMIT_FSIZE) within the block, as on a disk
    with ``n`` bytes left: a write across it is cut short (a short count), the next one fails with EFBIG.
    Lifted at the block's end, before pytest writes the test's result: with the limit still on, its
    write to a log file already larger (CI's) failed with "File too large" and ended the run."""
    resource = pytest.importorskip("resource")
    saved = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (else the signal kills the process)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, saved[1]))
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, saved)
        signal.signal(signal.SIGXFSZ, handler)


def test_a_web_preview_cut_short_by_a_full_disk_fails_and_leaves_nothing(tmp_path):
    """The web page's previews went through Pillow's unchecked write of a JPEG too: a cut-off picture."""
    from oldphoto.web.previews import write_preview

    y, x = np.mgrid[0:300, 0:400].astype(np.float32)  # (a preview Pillow writes in one piece)
    photo = np.stack([np.sin(x / 7) * np.cos(y / 11), np.sin(x / 5 + y / 9), np.cos(x / 13)], -1) / 2 + 0.5
    write_preview(tmp_path / "whole" / "before.jpg", photo)
    with file_size_limit((tmp_path / "whole" / "before.jpg").stat().st_size // 2), pytest.raises(OSError):
        write_preview(tmp_path / "out" / "before.jpg", photo)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("name", ["x.jpg", "x.webp", "x.png", "x.tif"])
def test_a_write_cut_short_by_a_full_disk_fails_and_leaves_nothing(tmp_path, name):
    # Pillow hands a JPEG's whole output to one write() and does not look at its count: on a nearly full
    # disk a JPEG cut short was renamed into place, reported restored, and skipped by every rerun
    y, x = np.mgrid[0:300, 0:400].astype(np.float32)
    photo = np.stack([np.sin(x / 7) * np.cos(y / 11), np.sin(x / 5 + y / 9), np.cos(x / 13)], -1) / 2 + 0.5
    write_photo(tmp_path / "whole" / name, photo)
    with file_size_limit((tmp_path / "whole" / name).stat().st_size // 2), pytest.raises(OSError):
        write_photo(tmp_path / "out" / name, photo)
    assert list((tmp_path / "out").iterdir()) == []

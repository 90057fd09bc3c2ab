"""Every format and mode round-trips with the displayed size, samples and metadata (identity restorer)."""

from __future__ import annotations

import io
import struct
import warnings

import cv2
import numpy as np
import pytest
import tifffile
from helpers import (
    adobe_like_icc,
    exif_with_thumbnail,
    gray_gamma_icc,
    insert_jpeg_app1,
    insert_png_chunks,
    png_chunk,
)
from PIL import ExifTags, Image, ImageCms, ImageOps, PngImagePlugin

from oldphoto.io import (
    PhotoError,
    apply_orientation,
    provenance_record,
    read_photo,
    read_provenance,
    write_photo,
)

RNG = np.random.default_rng(0)


def _smooth(h: int, w: int, c: int, top: int = 255) -> np.ndarray:
    """A smooth image (JPEG-friendly) with values over the whole range."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = [(np.sin(x / w * 3 + k) * np.cos(y / h * 2 + k) + 1) / 2 for k in range(c)]
    return np.rint(np.stack(chans, -1) * top).astype(np.uint16 if top > 255 else np.uint8)


def _exif(**tags) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x0110] = "Model 7"
    exif[0x013B] = "A. Archivist"
    exif[0x8298] = "(c) 1931 family archive"
    exif.get_ifd(ExifTags.IFD.Exif)[0x9003] = "1931:05:06 07:08:09"
    exif.get_ifd(ExifTags.IFD.Exif)[0xA002] = 9999  # stale pixel size must be corrected
    for k, v in tags.items():
        exif[int(k[1:])] = v
    return exif


def _check_exif_carried(path, size) -> Image.Exif:
    with Image.open(path) as im:
        assert im.size == size
        exif = im.getexif()
        assert exif.get(0x0112) == 1
        assert exif.get(0x010F) == "TestCam" and exif.get(0x0110) == "Model 7"
        assert exif.get(0x013B) == "A. Archivist" and exif.get(0x8298) == "(c) 1931 family archive"
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        assert sub.get(0x9003) == "1931:05:06 07:08:09"
        assert (sub.get(0xA002), sub.get(0xA003)) == size
        assert exif.get(0x0131, "").startswith("oldphoto")
    prov = read_provenance(path)
    assert prov["software"] == "oldphoto" and prov["models"] == {"vae_a": "test"}
    assert prov["options"] == {"scratches": True}
    return exif


PROV = provenance_record({"vae_a": "test"}, {"scratches": True})


# ------------------------------------------------------------------------------------- orientation

@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow(orientation):
    stored = RNG.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(im))
    assert np.array_equal(apply_orientation(stored, orientation), expected)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["png", "tiff", "jpg"])
def test_orientation_roundtrip(tmp_path, orientation, fmt):
    stored = _smooth(20, 32, 3)
    src = tmp_path / f"in.{fmt}"
    Image.fromarray(stored).save(src, exif=_exif(o274=orientation).tobytes(), quality=98)
    photo = read_photo(src)
    displayed = apply_orientation(stored, orientation)
    assert photo.pixels.shape == displayed.shape and photo.orientation == orientation
    if fmt != "jpg":
        assert np.array_equal(np.rint(photo.pixels * 255).astype(np.uint8), displayed)
    out = tmp_path / f"out.{fmt}"
    write_photo(out, photo.pixels, like=photo, provenance=PROV)
    _check_exif_carried(out, (displayed.shape[1], displayed.shape[0]))
    with Image.open(out) as im:
        got = np.asarray(im.convert("RGB"))
    tolerance = 0 if fmt != "jpg" else 12  # two JPEG generations
    assert np.abs(got.astype(int) - displayed).max() <= tolerance


def test_jpeg_thumbnail_dropped_and_orientation_reset(tmp_path):
    base = io.BytesIO()
    Image.fromarray(_smooth(24, 40, 3)).save(base, "JPEG", quality=95)
    thumb = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(thumb, "JPEG")
    src = tmp_path / "thumb.jpg"
    src.write_bytes(insert_jpeg_app1(base.getvalue(), exif_with_thumbnail(6, thumb.getvalue())))
    photo = read_photo(src)
    assert photo.size == (24, 40) and photo.orientation == 6
    out = tmp_path / "out.jpg"
    write_photo(out, photo.pixels, like=photo, provenance=PROV)
    with Image.open(out) as im:
        exif = im.getexif()
        assert im.size == (24, 40)
        assert exif.get(0x0112) == 1 and exif.get(0x010F) == "TestCam"
        assert not exif.get_ifd(ExifTags.IFD.IFD1)
        assert thumb.getvalue()[:64] not in im.info["exif"]


# ------------------------------------------------------------------------------------- ICC profiles

def test_non_srgb_profile_converted_and_restored(tmp_path):
    icc = adobe_like_icc()
    raw = _smooth(16, 24, 3)
    src = tmp_path / "adobe.png"
    Image.fromarray(raw).save(src, icc_profile=icc)
    photo = read_photo(src)
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                        ImageCms.createProfile("sRGB"), "RGB", "RGB",
                                        ImageCms.Intent.RELATIVE_COLORIMETRIC)
    expected = np.asarray(ImageCms.applyTransform(Image.fromarray(raw), transform))
    assert np.array_equal(np.rint(photo.pixels * 255).astype(np.uint8), expected)
    assert not np.array_equal(expected, raw)  # the profile really is not sRGB
    for fmt in ("png", "jpg", "tiff", "webp"):
        out = tmp_path / f"out.{fmt}"
        write_photo(out, photo.pixels, like=photo, provenance=PROV)
        with Image.open(out) as im:
            assert im.info.get("icc_profile") == icc or _tiff_icc(out) == icc
            back = np.asarray(im.convert("RGB")).astype(int)
        # back in the original profile: within gamut-clipping and 8-bit rounding (+ codec loss)
        tolerance = 4 if fmt == "png" or fmt == "tiff" else 10
        assert np.percentile(np.abs(back - raw), 95) <= tolerance, fmt


def test_16bit_with_a_sampled_tone_curve_profile_round_trips(tmp_path):
    """Scanner profiles often hold their tone curves as sampled tables: read as littlecms reads them,
    and back exactly."""
    from helpers import ADOBE_LIKE, D50, _desc, _profile, _xyz

    levels = np.linspace(0.0, 1.0, 1024) ** 1.9
    table = b"curv\0\0\0\0" + struct.pack(">I", levels.size) + np.rint(levels * 65535).astype(">u2").tobytes()
    r, g, b = ADOBE_LIKE
    icc = _profile(b"RGB ", [(b"desc", _desc("Test sampled curves")), (b"wtpt", _xyz(D50)),
                             (b"rXYZ", _xyz(r)), (b"gXYZ", _xyz(g)), (b"bXYZ", _xyz(b)),
                             (b"rTRC", table), (b"gTRC", table), (b"bTRC", table)])
    raw = (16384 + _smooth(32, 48, 3, top=65535) // 2).astype(np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", raw, photometric="rgb", iccprofile=icc)
    photo = read_photo(tmp_path / "s.tif")
    write_photo(tmp_path / "out.tif", photo.pixels, like=photo, provenance=PROV)
    assert np.abs(tifffile.imread(tmp_path / "out.tif").astype(int) - raw).max() <= 1
    expected = _littlecms_srgb8(raw, icc)
    assert np.abs(photo.pixels * 255.0 - expected).max() <= 2


def test_16bit_with_float_tags_beside_colorants_is_read_as_littlecms_reads_it(tmp_path):
    """A profile with colorants and curves may also hold float device-to-PCS tags (D2Bx), which littlecms
    uses instead of them: its photo is not converted by the colorants' arithmetic."""
    from helpers import ADOBE_LIKE, D50, _curve, _desc, _profile, _xyz

    r, g, b = ADOBE_LIKE
    matrix = np.array(ADOBE_LIKE).T  # linear RGB straight to XYZ, where the curves say gamma 2.2
    element = (b"matf\0\0\0\0" + struct.pack(">HH", 3, 3) + struct.pack(">9f", *matrix.reshape(-1))
               + struct.pack(">3f", 0.0, 0.0, 0.0))
    mpet = b"mpet\0\0\0\0" + struct.pack(">HHIII", 3, 3, 1, 24, len(element)) + element
    icc = _profile(b"RGB ", [(b"desc", _desc("Test float tags")), (b"wtpt", _xyz(D50)),
                             (b"rXYZ", _xyz(r)), (b"gXYZ", _xyz(g)), (b"bXYZ", _xyz(b)),
                             (b"rTRC", _curve(2.2)), (b"gTRC", _curve(2.2)), (b"bTRC", _curve(2.2)),
                             (b"D2B1", mpet)])
    raw = (16384 + _smooth(32, 48, 3, top=65535) // 2).astype(np.uint16)
    tifffile.imwrite(tmp_path / "f.tif", raw, photometric="rgb", iccprofile=icc)
    photo = read_photo(tmp_path / "f.tif")
    expected = _littlecms_srgb8(raw, icc)
    assert np.abs(photo.pixels * 255.0 - expected).max() <= 3


def _tiff_icc(path):
    try:
        with tifffile.TiffFile(path) as tif:
            tag = tif.pages.first.tags.get(34675)
            return bytes(tag.value) if tag else None
    except tifffile.TiffFileError:
        return None


def _littlecms_srgb8(raw16: np.ndarray, icc: bytes) -> np.ndarray:
    """What littlecms makes of 16-bit RGB ``raw16`` in profile ``icc``, as 8-bit sRGB (float)."""
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                        ImageCms.createProfile("sRGB"), "RGB", "RGB",
                                        ImageCms.Intent.RELATIVE_COLORIMETRIC)
    raw8 = Image.fromarray(np.rint(raw16 / 257.0).astype(np.uint8))
    return np.asarray(ImageCms.applyTransform(raw8, transform)).astype(float)


def test_16bit_with_profile_keeps_precision(tmp_path):
    icc = adobe_like_icc()
    # muted colours: inside both gamuts, so the only loss would be precision
    raw = (16384 + _smooth(32, 48, 3, top=65535) // 2).astype(np.uint16)
    src = tmp_path / "wide16.tif"
    tifffile.imwrite(src, raw, photometric="rgb", iccprofile=icc)
    photo = read_photo(src)
    assert photo.bit_depth == 16 and photo.icc_profile == icc
    assert len(np.unique(photo.pixels[..., 1])) > 1000  # not quantised to 8-bit levels
    out = tmp_path / "out.tif"
    write_photo(out, photo.pixels, like=photo, provenance=PROV)
    back = tifffile.imread(out)
    assert back.dtype == np.uint16 and _tiff_icc(out) == icc
    # a matrix/TRC profile is converted in float, back by the exact inverse: a pixel left as it was comes
    # back as it was (through littlecms's 8-bit samples it was up to 671 levels of 65535 off)
    assert np.abs(back.astype(int) - raw).max() <= 1
    # and the colours are littlecms's (within its 8-bit rounding)
    expected = _littlecms_srgb8(raw, icc)
    assert np.abs(photo.pixels * 255.0 - expected).max() <= 2  # (the 8-bit input rounded, too)


def test_gray_profile(tmp_path):
    icc = gray_gamma_icc(1.8)
    raw = _smooth(16, 20, 1)[..., 0]
    src = tmp_path / "gray.jpg"
    Image.fromarray(raw, "L").save(src, icc_profile=icc, quality=100)
    photo = read_photo(src)
    assert photo.space == "GRAY" and photo.icc_profile == icc
    out = tmp_path / "out.jpg"
    write_photo(out, photo.pixels, like=photo, provenance=PROV)
    with Image.open(out) as im:
        assert im.mode == "L" and im.info.get("icc_profile") == icc
        assert np.abs(np.asarray(im).astype(int) - raw).max() <= 4


def test_16bit_gray_with_profile_comes_back_as_it_was(tmp_path):
    """A 16-bit gray scan with a Gray Gamma 2.2 profile (the usual gray of scanners and Photoshop) keeps
    its levels through a read and a write: sampled at 256 levels with 8-bit results, the profile's
    transforms took its shadows up to 3 levels of 255 darker, in flat bands."""
    icc = gray_gamma_icc(2.2)
    raw = np.tile(np.rint(np.linspace(0, 0.25, 4000) * 65535).astype(np.uint16), (3, 1))  # shadows, smooth
    eight = np.arange(0, 65, dtype=np.uint8)
    raw[0, :65] = eight.astype(np.uint16) * 257  # and the 8-bit levels of the shadows
    src = tmp_path / "gray22.tif"
    tifffile.imwrite(src, raw, photometric="minisblack", iccprofile=icc)
    photo = read_photo(src)
    assert photo.bit_depth == 16 and photo.space == "GRAY" and photo.icc_profile == icc
    # converted as littlecms converts it: at 8-bit levels, its 8-bit result within rounding
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                        ImageCms.createProfile("sRGB"), "L", "RGB",
                                        ImageCms.Intent.RELATIVE_COLORIMETRIC)
    expected = np.asarray(ImageCms.applyTransform(Image.fromarray(eight[None]), transform))[0, :, 0] / 255
    assert np.abs(photo.pixels[0, :65, 0] - expected).max() <= 0.6 / 255
    out = tmp_path / "out.tif"
    write_photo(out, photo.pixels, like=photo, provenance=PROV)
    back = tifffile.imread(out)
    assert back.dtype == np.uint16 and _tiff_icc(out) == icc
    assert np.abs(back.astype(int) - raw).max() <= 4


# ------------------------------------------------------------------------------------- 16-bit

@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_lzw_tiff_keeps_its_16_bits(tmp_path, monkeypatch, channels):
    # scanners write LZW TIFFs, which tifffile decodes only with the optional imagecodecs package; the
    # fallback, Pillow, reads 16-bit colour as 8 bits, so such a scan came back (and was written) 8-bit
    try:
        import imagecodecs  # noqa: F401 - with it tifffile decodes LZW itself: take its absence's path
    except ImportError:
        pass
    else:
        def no_codec(*args, **kwargs):
            raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

        monkeypatch.setattr("oldphoto.io._tiff.read_tiff", no_codec)
    raw = RNG.integers(0, 65536, (9, 13, channels), dtype=np.uint16)
    src = tmp_path / "scan.tif"
    assert cv2.imwrite(str(src), raw[..., [2, 1, 0, 3][:channels]])  # OpenCV writes TIFFs with LZW
    photo = read_photo(src)
    assert photo.bit_depth == 16 and photo.space == "RGB"
    assert np.array_equal(np.rint(photo.pixels * 65535).astype(np.uint16), raw[..., :3])
    if channels == 4:
        assert np.array_equal(photo.alpha, raw[..., 3])
    out = tmp_path / "out.tif"
    write_photo(out, photo.pixels, like=photo, provenance=PROV)
    with tifffile.TiffFile(out) as tif:
        assert tif.pages.first.dtype == np.uint16


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_16bit_exact(tmp_path, fmt, channels):
    raw = RNG.integers(0, 65536, (9, 13, channels), dtype=np.uint16)
    src = tmp_path / f"in16.{fmt}"
    if fmt == "png":
        bgr = raw[..., 0] if channels == 1 else raw[..., [2, 1, 0, 3][:channels]]
        ok, buf = cv2.imencode(".png", bgr)
        exif = _exif(o274=8).tobytes()[6:]
        src.write_bytes(insert_png_chunks(buf.tobytes(), [png_chunk(b"eXIf", exif)]))
        orientation = 8
    else:
        photometric = "minisblack" if channels == 1 else "rgb"
        tifffile.imwrite(src, raw if channels > 1 else raw[..., 0], photometric=photometric,
                         extrasamples=("unassalpha",) if channels == 4 else None,
                         extratags=[(274, 3, 1, 8, True), (271, 2, 0, "TestCam", True)])
        orientation = 8
    photo = read_photo(src)
    assert photo.bit_depth == 16 and photo.orientation == orientation
    colour = raw[..., :3] if channels > 1 else np.repeat(raw[..., :1], 3, -1)
    shown = apply_orientation(colour, orientation)
    assert np.array_equal(np.rint(photo.pixels * 65535).astype(np.uint16), shown)
    if channels == 4:
        assert np.array_equal(photo.alpha, apply_orientation(raw[..., 3], orientation))
    out = tmp_path / f"out.{fmt}"
    write_photo(out, photo.pixels, like=photo, provenance=PROV)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED) if fmt == "png" else tifffile.imread(out)
    if fmt == "png" and back.ndim == 3:
        back = back[..., [2, 1, 0, 3][:back.shape[2]]]
    expected = apply_orientation(raw if channels > 1 else raw[..., 0], orientation)
    assert back.dtype == np.uint16 and np.array_equal(back, expected)
    with Image.open(out) as im:
        assert im.getexif().get(0x0112) == 1 and im.getexif().get(0x010F) == "TestCam"
    assert read_provenance(out)["version"]


# ------------------------------------------------------------------------------------- modes

@pytest.mark.parametrize("fmt", ["png", "tiff", "jpg", "webp"])
def test_gray_stays_gray_unless_colour_added(tmp_path, fmt):
    raw = _smooth(12, 18, 1)[..., 0]
    src = tmp_path / f"g.{fmt}"
    Image.fromarray(raw, "L").save(src, quality=100, lossless=True)
    photo = read_photo(src)
    out = tmp_path / f"out.{fmt}"
    write_photo(out, photo.pixels, like=photo)
    with Image.open(out) as im:
        assert im.mode == ("RGB" if fmt == "webp" else "L")
        assert im.size == (18, 12)
    sepia = photo.pixels * np.array([1.0, 0.85, 0.6], np.float32)
    notes = write_photo(tmp_path / f"sepia.{fmt}", sepia, like=photo)
    with Image.open(tmp_path / f"sepia.{fmt}") as im:
        assert im.mode == "RGB"
    assert any("gained colour" in n for n in notes) == (photo.space == "GRAY")


@pytest.mark.parametrize("fmt", ["png", "tiff", "webp"])
@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_carried_unchanged(tmp_path, fmt, mode):
    raw = RNG.integers(0, 256, (10, 14, len(mode)), dtype=np.uint8)
    src = tmp_path / f"a.{fmt}"
    Image.fromarray(raw, mode).save(src, lossless=True)
    photo = read_photo(src)
    assert photo.alpha is not None
    inverted = 1.0 - photo.pixels  # any restoration: alpha must not change
    out = tmp_path / f"out.{fmt}"
    write_photo(out, inverted, like=photo)
    with Image.open(out) as im:
        assert im.size == (14, 10)
        assert np.array_equal(np.asarray(im.getchannel("A")), np.asarray(Image.open(src).getchannel("A")))


def test_webp_keeps_the_picture_under_transparent_pixels(tmp_path):
    # libwebp replaces the colours under alpha 0 to compress better: a gray scan with transparent rows
    # restored into WebP had the picture there replaced by flat gray (71 levels off on average, a sweep
    # of restore's options), lost to anyone who removes or edits the transparency
    src = tmp_path / "a.png"
    raw = np.dstack([_smooth(32, 48, 3), np.full((32, 48), 255, np.uint8)])
    raw[:12, :, 3] = 0
    Image.fromarray(raw, "RGBA").save(src)
    photo = read_photo(src)
    write_photo(tmp_path / "a.webp", photo.pixels, like=photo)
    with Image.open(tmp_path / "a.webp") as im:
        back = np.asarray(im.convert("RGBA")).astype(int)
    assert np.array_equal(back[..., 3], raw[..., 3])
    assert np.abs(back[:12, :, :3] - raw[:12, :, :3]).mean() < 4


def test_alpha_dropped_for_jpeg_with_warning(tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(RNG.integers(0, 256, (6, 6, 4), dtype=np.uint8), "RGBA").save(src)
    photo = read_photo(src)
    notes = write_photo(tmp_path / "a.jpg", photo.pixels, like=photo)
    assert any("alpha dropped" in n for n in notes)


@pytest.mark.parametrize("transparent", [False, True])
def test_palette(tmp_path, transparent):
    raw = RNG.integers(0, 256, (12, 9, 3), dtype=np.uint8)
    pal = Image.fromarray(raw).quantize(16)
    src = tmp_path / "p.png"
    pal.save(src, transparency=0) if transparent else pal.save(src)
    photo = read_photo(src)
    reference = Image.open(src).convert("RGBA" if transparent else "RGB")
    assert photo.mode == "P" and (photo.alpha is not None) == transparent
    write_photo(tmp_path / "out.png", photo.pixels, like=photo)
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == reference.mode and im.size == (9, 12)
        assert np.array_equal(np.asarray(im), np.asarray(reference))


@pytest.mark.parametrize("fmt", ["jpg", "tiff"])
def test_cmyk_written_back_as_cmyk(tmp_path, fmt):
    cmyk = _smooth(16, 20, 4)
    cmyk[..., 3] //= 3
    src = tmp_path / f"c.{fmt}"
    Image.frombytes("CMYK", (20, 16), cmyk.tobytes()).save(src, quality=100, exif=_exif(o274=6).tobytes())
    photo = read_photo(src)
    assert photo.space == "CMYK" and photo.size == (16, 20)
    decoded = tifffile.imread(src) if fmt == "tiff" else np.asarray(Image.open(src))
    as_rgb = Image.frombytes("CMYK", (20, 16), decoded.tobytes()).convert("RGB")
    reference = apply_orientation(np.asarray(as_rgb), 6)
    assert np.abs(np.rint(photo.pixels * 255) - reference).max() <= 1
    out = tmp_path / f"out.{fmt}"
    write_photo(out, photo.pixels, like=photo, provenance=PROV)
    _check_exif_carried(out, (16, 20))
    with Image.open(out) as im:
        assert im.mode == "CMYK"
        decoded = tifffile.imread(out) if fmt == "tiff" else np.asarray(im)
    back = np.asarray(Image.frombytes("CMYK", (16, 20), decoded.tobytes()).convert("RGB")).astype(int)
    assert np.abs(back - reference).max() <= (1 if fmt == "tiff" else 8)


def test_webp_and_bmp_inputs(tmp_path):
    raw = _smooth(10, 16, 3)
    Image.fromarray(raw).save(tmp_path / "w.webp", lossless=True, exif=_exif(o274=3).tobytes())
    photo = read_photo(tmp_path / "w.webp")
    assert photo.family == "webp" and np.array_equal(
        np.rint(photo.pixels * 255).astype(np.uint8), apply_orientation(raw, 3))
    write_photo(tmp_path / "out.webp", photo.pixels, like=photo, provenance=PROV)
    _check_exif_carried(tmp_path / "out.webp", (16, 10))
    Image.fromarray(raw).save(tmp_path / "b.bmp")
    bmp = read_photo(tmp_path / "b.bmp")
    assert bmp.family == "bmp" and np.array_equal(np.rint(bmp.pixels * 255).astype(np.uint8), raw)


def test_heic_read_upright_and_restored_as_jpeg(tmp_path, monkeypatch):
    """What phones save by default: read through pillow-heif (upright, EXIF kept), written as JPEG; without
    pillow-heif the reason says what to install."""
    pillow_heif = pytest.importorskip("pillow_heif", reason="HEIC support: pip install 'oldphoto[heif]'")
    from oldphoto.io import _heif
    from oldphoto.io.photo import output_family

    raw = _smooth(10, 16, 3)
    pillow_heif.register_heif_opener()
    Image.fromarray(raw).save(tmp_path / "IMG_0001.HEIC", format="HEIF", quality=100,
                              exif=_exif(o274=6).tobytes())
    photo = read_photo(tmp_path / "IMG_0001.HEIC")
    assert (photo.family, photo.size, photo.space, photo.bit_depth) == ("heif", (10, 16), "RGB", 8)
    assert np.abs(photo.pixels * 255 - apply_orientation(raw, 6)).mean() < 6  # (HEVC, 4:2:0, is lossy)
    assert output_family(photo) == "jpeg"
    write_photo(tmp_path / "out.jpg", photo.pixels, like=photo, provenance=PROV)
    _check_exif_carried(tmp_path / "out.jpg", (10, 16))
    monkeypatch.setattr(_heif, "_registered", False)
    with pytest.raises(PhotoError, match=r"needs pillow-heif \(pip install 'oldphoto\[heif\]'\)"):
        read_photo(tmp_path / "IMG_0001.HEIC")


def test_multipage_tiff_reads_first_page_and_says_so(tmp_path):
    pages = [Image.fromarray(np.full((6, 8, 3), v, np.uint8)) for v in (10, 200)]
    pages[0].save(tmp_path / "m.tif", save_all=True, append_images=pages[1:])
    photo = read_photo(tmp_path / "m.tif")
    assert photo.pages == 2 and any("first page" in w for w in photo.warnings)
    assert np.allclose(photo.pixels, 10 / 255)


def test_a_tiff_output_keeps_the_pages_after_the_first_as_they_are(tmp_path):
    """An archive scans the back of a print (its date, its caption) as page 2: only page 1 is restored,
    and the restored TIFF lost the others."""
    front = np.full((6, 8, 3), 10, np.uint8)
    back = (np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000)  # 16-bit gray
    palette = np.arange(48, dtype=np.uint8).reshape(6, 8) % 4
    colormap = np.zeros((3, 256), np.uint16)
    colormap[0, :4] = [0, 65535, 0, 30000]
    with tifffile.TiffWriter(tmp_path / "scan.tif") as tw:
        tw.write(front, photometric="rgb")
        tw.write(back, photometric="minisblack", description="verso: Paris 1921",
                 resolution=(600, 600), resolutionunit="INCH")
        tw.write(palette, photometric="palette", colormap=colormap)
    photo = read_photo(tmp_path / "scan.tif")
    assert photo.pages == 3 and any("a TIFF output keeps the others" in w for w in photo.warnings)
    restored = np.full_like(photo.pixels, 0.5)
    assert write_photo(tmp_path / "out.tif", restored, like=photo) == []
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert len(tif.pages) == 3
        assert np.array_equal(tif.pages[1].asarray(), back)
        assert tif.pages[1].description == "verso: Paris 1921"
        assert tif.pages[1].tags[282].value == (600, 1)
        assert np.array_equal(tif.pages[2].asarray(), palette)
        assert np.array_equal(tif.pages[2].colormap[:, :4], colormap[:, :4])
    again = read_photo(tmp_path / "out.tif")  # the restored page, its metadata as before
    assert np.allclose(again.pixels, 128 / 255) and again.pages == 3
    notes = write_photo(tmp_path / "out.jpg", restored, like=photo)
    assert any("pages 2 to 3 of the original are not in the restored JPEG file" in n for n in notes)


def test_lzw_pages_are_kept_too(tmp_path):
    """LZW, the compression most archival TIFFs use, needs imagecodecs in tifffile (not installed):
    Pillow reads such pages."""
    front = Image.fromarray(np.full((6, 8, 3), 10, np.uint8))
    back = Image.fromarray((np.arange(48).reshape(6, 8) * 5).astype(np.uint8))
    sketch = Image.fromarray((np.arange(48).reshape(6, 8) % 3).astype(np.uint8), "P")
    sketch.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])
    front.save(tmp_path / "scan.tif", save_all=True, append_images=[back, sketch], compression="tiff_lzw")
    photo = read_photo(tmp_path / "scan.tif")
    assert write_photo(tmp_path / "out.tif", np.full_like(photo.pixels, 0.5), like=photo) == []
    with Image.open(tmp_path / "out.tif") as out:
        assert out.n_frames == 3
        out.seek(1)
        assert np.array_equal(np.asarray(out), np.asarray(back))
        out.seek(2)
        assert out.mode == "P" and np.array_equal(np.asarray(out.convert("RGB")),
                                                  np.asarray(sketch.convert("RGB")))


def test_a_page_that_cannot_be_copied_does_not_cost_the_restored_one(tmp_path, monkeypatch):
    with tifffile.TiffWriter(tmp_path / "scan.tif") as tw:
        for value in (10, 20, 30):
            tw.write(np.full((6, 8, 3), value, np.uint8), photometric="rgb")
    photo = read_photo(tmp_path / "scan.tif")
    decode = tifffile.TiffPage.asarray

    def unreadable_second(page, *args, **kwargs):
        if page.index == 1 and page.parent.filehandle.name == "scan.tif":
            raise ValueError("a compression this reader does not know")
        return decode(page, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffPage, "asarray", unreadable_second)
    from oldphoto.io import _tiff

    def nor_by_pillow(source, index):
        raise KeyError("I;32")
    monkeypatch.setattr(_tiff, "_page_by_pillow", nor_by_pillow)
    notes = write_photo(tmp_path / "out.tif", np.full_like(photo.pixels, 0.5), like=photo)
    assert notes == ["page 2 of the original could not be read (a compression this reader does not know) "
                     "and is not in the restored file (the original keeps it)"]
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert len(tif.pages) == 2 and int(tif.pages[1].asarray()[0, 0, 0]) == 30


def test_float_and_one_bit_samples_say_what_they_become(tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", np.array([[0.25, 1.5]], np.float32).repeat(8, 0).repeat(4, 1))
    Image.fromarray(np.eye(8, dtype=bool)).save(tmp_path / "b.png")
    floats = read_photo(tmp_path / "f.tif")
    assert floats.bit_depth == 16 and any("16-bit integers" in w and "clipped" in w for w in floats.warnings)
    assert floats.pixels.max() == 1.0  # (1.5 clipped, as the warning says)
    bits = read_photo(tmp_path / "b.png")
    assert bits.bit_depth == 8 and any("8-bit gray" in w for w in bits.warnings)


@pytest.mark.parametrize("shape, extra", [((8, 8), {}), ((8, 8, 3), {"photometric": "rgb"})])
def test_float_samples_with_nan_are_refused_by_name_and_infinities_clipped(tmp_path, shape, extra):
    # NaN has no value to clip to: it was cast to 0 (whatever the platform's cast gives), with numpy's
    # "invalid value encountered in cast" on the console, and the photo restored with black holes
    a = np.full(shape, 0.5, np.float32)
    a[1, 1] = np.inf
    a[2, 2] = -np.inf
    tifffile.imwrite(tmp_path / "inf.tif", a, **extra)
    pixels = read_photo(tmp_path / "inf.tif").pixels
    assert pixels[1, 1].min() == 1.0 and pixels[2, 2].max() == 0.0
    a[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", a, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(PhotoError, match=r"nan\.tif: .* of the \d+ floating-point samples are NaN"):
            read_photo(tmp_path / "nan.tif")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_samples_of_every_width_keep_their_values(tmp_path, dtype):
    # half floats were scaled to 16 bits in half precision, where 1.0 * 65535 overflows: every sample
    # above 0.9995 became 0 (numpy's "overflow encountered in cast" on the console), a photo's whites black
    ramp = np.linspace(0, 1, 8 * 16, dtype=np.float64).reshape(8, 16)
    tifffile.imwrite(tmp_path / "f.tif", ramp.astype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixels = read_photo(tmp_path / "f.tif").pixels[..., 0]
    assert pixels.max() == 1.0
    np.testing.assert_allclose(pixels, ramp, atol=1e-3)


@pytest.mark.parametrize("top, hint", [(255, "divide by 255"), (65535, "divide by 65535")])
def test_float_samples_holding_integer_values_are_refused_by_name(tmp_path, top, hint):
    # 8- or 16-bit values stored as floats (ImageJ, scientific software) were clipped to 0-1: the photo
    # came back all white, reported ok; highlights above 1 are still clipped, as the warning says
    ramp = np.linspace(0, top, 8 * 16, dtype=np.float32).reshape(8, 16)
    tifffile.imwrite(tmp_path / "scaled.tif", ramp)
    with pytest.raises(PhotoError, match=rf"scaled\.tif: .*samples are above 2, up to {top}.*{hint}"):
        read_photo(tmp_path / "scaled.tif")
    tifffile.imwrite(tmp_path / "rgb.tif", np.dstack([ramp] * 3), photometric="rgb")
    with pytest.raises(PhotoError, match=rf"rgb\.tif: .*{hint}"):
        read_photo(tmp_path / "rgb.tif")
    hdr = np.linspace(0, 4, 8 * 16, dtype=np.float32).reshape(8, 16)  # half of it above 2: clipped
    assert read_photo(_written(tmp_path / "hdr.tif", hdr)).pixels.max() == 1.0


def _written(path, samples):
    tifffile.imwrite(path, samples)
    return path


def test_tiffs_only_tifffile_reads_say_what_their_samples_and_metadata_become(tmp_path):
    # RGB float TIFFs and gray+alpha 16-bit TIFFs are read by tifffile, not Pillow: said the same way
    tifffile.imwrite(tmp_path / "f.tif", np.full((8, 8, 3), 1.5, np.float32), photometric="rgb")
    floats = read_photo(tmp_path / "f.tif")
    assert floats.bit_depth == 16 and any("16-bit integers" in w and "clipped" in w for w in floats.warnings)
    # it has no EXIF sub-IFD: none is said to be lost (every such TIFF said so, in every batch report)
    assert not any("EXIF" in w for w in floats.warnings)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    tifffile.imwrite(tmp_path / "x.tif", np.full((8, 8, 2), 100, np.uint16), photometric="minisblack",
                     extrasamples=[2], extratags=[(700, 1, len(xmp), xmp, True)])
    assert read_photo(tmp_path / "x.tif").xmp == xmp


def test_strip_metadata(tmp_path):
    src = tmp_path / "s.jpg"
    Image.fromarray(_smooth(8, 8, 3)).save(src, exif=_exif(o274=6).tobytes(), icc_profile=adobe_like_icc(),
                                           dpi=(300, 300))
    photo = read_photo(src)
    out = tmp_path / "out.jpg"
    write_photo(out, photo.pixels, like=photo, provenance=PROV, strip_metadata=True)
    with Image.open(out) as im:
        assert not im.getexif() and "icc_profile" not in im.info
        # the resolution is the print's size, no one's personal data: kept (it was dropped unsaid)
        assert tuple(round(v) for v in im.info["dpi"]) == (300, 300)
        # pixels stay sRGB, which is what an untagged file means
        assert np.abs(np.asarray(im).astype(int) - np.rint(photo.pixels * 255)).max() <= 12
    assert read_provenance(out) is None


def test_metadata_that_is_not_carried_over_is_said(tmp_path):
    # what the restored file cannot hold is named in a warning of each photo: IPTC in a PNG or WebP, a
    # JPEG's extended XMP, PNG text chunks written into another format; nothing is said when metadata is
    # stripped, or when all of it is carried (XMP and IPTC into a JPEG)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    pixels = _smooth(16, 16, 3)
    Image.fromarray(pixels).save(tmp_path / "x.jpg", xmp=xmp)
    iptc = b"Photoshop 3.0\x00" + _photoshop_resources(b"\x1c\x02\x78\x00\x03Box")
    extended = b"http://ns.adobe.com/xmp/extension/\x00" + b"0" * 32 + struct.pack(">II", 3, 0) + b"<x>"
    plain = io.BytesIO()
    Image.fromarray(pixels).save(plain, "JPEG")
    data = plain.getvalue()
    app13 = b"\xff\xed" + struct.pack(">H", len(iptc) + 2) + iptc
    (tmp_path / "i.jpg").write_bytes(data[:2] + app13 + data[2:])
    (tmp_path / "e.jpg").write_bytes(insert_jpeg_app1(data, extended))
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "Box 12")
    Image.fromarray(pixels).save(tmp_path / "t.png", pnginfo=info)
    for name, fmt, said in (("x.jpg", None, None), ("i.jpg", None, None), ("i.jpg", "png", "IPTC metadata"),
                            ("i.jpg", "webp", "IPTC metadata"), ("e.jpg", None, "extended XMP metadata"),
                            ("t.png", "jpg", "PNG text (Title) metadata"), ("t.png", None, None)):
        photo = read_photo(tmp_path / name)
        notes = write_photo(tmp_path / f"o_{name}", photo.pixels, like=photo, format=fmt, provenance=PROV)
        said_it = any(said in n for n in notes) if said else not any("metadata" in n for n in notes)
        assert said_it, (name, notes)
        assert not any("metadata" in n for n in write_photo(tmp_path / f"s_{name}", photo.pixels, like=photo,
                                                            format=fmt, strip_metadata=True))


def test_exif_too_large_for_a_jpeg_loses_its_largest_tags_not_the_photo(tmp_path):
    # a PNG's 70 kB description made the JPEG's EXIF too long for its one segment: the write failed after
    # the restoration ("EXIF data is too long"); the largest tag is left out, said, and the rest kept
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000
    exif[0x013B] = "Someone"
    Image.fromarray(_smooth(16, 16, 3)).save(tmp_path / "big.png", exif=exif.tobytes())
    photo = read_photo(tmp_path / "big.png")
    notes = write_photo(tmp_path / "big.jpg", photo.pixels, like=photo, provenance=PROV)
    with Image.open(tmp_path / "big.jpg") as im:
        kept = im.getexif()
    assert 0x010E not in kept and kept[0x013B] == "Someone" and read_provenance(tmp_path / "big.jpg")
    assert any("ImageDescription left out" in n for n in notes) and not any("maker note" in n for n in notes)


def test_a_jpeg_without_a_resolution_gets_none_made_up(tmp_path):
    # Pillow reports 72 dpi for a JPEG with EXIF but no resolution anywhere, and a TIFF output then said
    # 72 dpi of a photo that never had one (found by the archivist review)
    exif = Image.Exif()
    exif[0x013B] = "Someone"
    Image.fromarray(_smooth(16, 16, 3)).save(tmp_path / "a.jpg", exif=exif.tobytes())
    assert read_photo(tmp_path / "a.jpg").dpi is None
    exif[0x011A], exif[0x011B], exif[0x0128] = 240.0, 240.0, 2  # in the EXIF only: read from there
    Image.fromarray(_smooth(16, 16, 3)).save(tmp_path / "b.jpg", exif=exif.tobytes())
    assert read_photo(tmp_path / "b.jpg").dpi == (240.0, 240.0)


def test_a_webp_keeps_the_print_size(tmp_path):
    # WebP holds its resolution only in EXIF, which Pillow neither writes from dpi= nor reads into
    # info["dpi"]: a JPEG scan's 300 dpi (in its JFIF header) was lost written as WebP, and a WebP's own
    # resolution was not read, so a PNG written from it (or any output, with --strip-metadata) had none
    Image.fromarray(_smooth(16, 16, 3)).save(tmp_path / "a.jpg", dpi=(300, 300))
    photo = read_photo(tmp_path / "a.jpg")
    write_photo(tmp_path / "a.webp", photo.pixels, like=photo, provenance=PROV)
    with Image.open(tmp_path / "a.webp") as im:
        exif = im.getexif()
        assert (float(exif[0x011A]), float(exif[0x011B]), int(exif[0x0128])) == (300.0, 300.0, 2)
    webp = read_photo(tmp_path / "a.webp")
    assert webp.dpi == (300.0, 300.0)
    write_photo(tmp_path / "b.png", webp.pixels, like=webp, strip_metadata=True)
    with Image.open(tmp_path / "b.png") as im:
        assert tuple(round(v) for v in im.info["dpi"]) == (300, 300)
    exif = Image.Exif()
    exif[0x011A], exif[0x011B], exif[0x0128] = 100.0, 100.0, 3  # per centimetre
    Image.fromarray(_smooth(16, 16, 3)).save(tmp_path / "c.webp", exif=exif.tobytes())
    assert np.allclose(read_photo(tmp_path / "c.webp").dpi, (254.0, 254.0))


def test_size_mismatch_refused(tmp_path):
    Image.new("RGB", (5, 4)).save(tmp_path / "x.png")
    photo = read_photo(tmp_path / "x.png")
    with pytest.raises(ValueError, match="4x5"):
        write_photo(tmp_path / "o.png", np.zeros((5, 4, 3), np.float32), like=photo)
    assert not (tmp_path / "o.png").exists()


def test_unreadable_profile_is_reported_not_fatal(tmp_path):
    src = tmp_path / "bad_icc.jpg"
    Image.new("RGB", (4, 4), (10, 20, 30)).save(src, icc_profile=b"not a profile" * 20)
    photo = read_photo(src)
    assert photo.icc_profile is None and any("ICC" in w for w in photo.warnings)
    with pytest.raises(PhotoError):
        read_photo(tmp_path / "missing.jpg")


# ------------------------------------------------------------------------------------- --upscale

@pytest.mark.parametrize("fmt", ["jpg", "png", "tif"])
def test_an_enlarged_restoration_keeps_the_print_size(tmp_path, fmt):
    src = tmp_path / f"in.{fmt}"
    pixels = _smooth(30, 40, 4 if fmt != "jpg" else 3)
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    Image.fromarray(pixels, mode).save(src, dpi=(300, 300), exif=_exif(t282=300.0, t283=300.0, t296=2))
    photo = read_photo(src)
    big = cv2.resize(photo.pixels, (80, 60), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    out = tmp_path / f"out.{fmt}"
    write_photo(out, big, like=photo, provenance=PROV)
    if fmt != "tif":  # (Pillow writes no EXIF sub-IFD into the TIFF input; its resolution is a TIFF tag)
        exif = _check_exif_carried(out, (80, 60))
        assert (float(exif[0x011A]), float(exif[0x011B])) == (600.0, 600.0)  # pixels per inch, twice as many
    with Image.open(out) as im:
        assert im.size == (80, 60)
        assert [round(float(v)) for v in im.info["dpi"]] == [600, 600]
        if mode == "RGBA":
            assert im.mode == "RGBA"
            alpha = np.asarray(im)[..., 3]
            assert np.array_equal(alpha, np.repeat(np.repeat(pixels[..., 3], 2, 0), 2, 1))
    for wrong in [(90, 120), (60, 81)]:  # three times, or not the same on both axes
        with pytest.raises(ValueError, match="or 2 or 4 times"):
            write_photo(tmp_path / f"bad.{fmt}", np.zeros((*wrong, 3), np.float32), like=photo)


def test_a_tiff_without_a_resolution_gets_none(tmp_path):
    # Pillow says (1, 1) dpi for a TIFF with no resolution tags (as Pillow and OpenCV write them): the
    # restoration was written at 1 dpi (2 with --upscale 2), a print of 40 inches for 40 pixels
    src = tmp_path / "in.tif"
    Image.fromarray(_smooth(30, 40, 3)).save(src)
    photo = read_photo(src)
    assert photo.dpi is None
    out = tmp_path / "out.tif"
    big = cv2.resize(photo.pixels, (80, 60), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    write_photo(out, big, like=photo, provenance=PROV)
    with Image.open(out) as im:
        assert "dpi" not in im.info  # (tifffile's 1:1 without a unit, if anything: an aspect, not a size)
    Image.fromarray(_smooth(30, 40, 3)).save(src, dpi=(300, 300))  # (a resolution it has is kept)
    assert read_photo(src).dpi == (300.0, 300.0)


@pytest.mark.parametrize("src_fmt", ["jpg", "tif", "png"])
@pytest.mark.parametrize("fmt", [None, "jpg", "png", "tiff"])
def test_non_ascii_exif_text_is_written_back_as_stored(tmp_path, src_fmt, fmt):
    # EXIF text in UTF-8 (what most software writes: an accented description, a photographer's name,
    # a place) came back as "Grand-m??re": Pillow reads EXIF text as Latin-1 and wrote it as ASCII
    texts = {"description": "Grand-mère à Paris, 1931", "artist": "Zoë Ørsted",
             "owner": "Fåmily ärchive", "datum": "Tōkyō"}
    marks = {k: f"<{k}>".ljust(len(v.encode()), "#") for k, v in texts.items()}  # as long as the UTF-8
    exif = _exif()
    exif[0x010E] = marks["description"]
    exif[0x013B] = marks["artist"]
    exif.get_ifd(ExifTags.IFD.Exif)[0xA430] = marks["owner"]    # CameraOwnerName (type unknown to Pillow)
    exif.get_ifd(ExifTags.IFD.GPSInfo)[0x0012] = marks["datum"]  # GPSMapDatum
    blob = exif.tobytes()
    for key, mark in marks.items():  # stored as ASCII-typed text holding UTF-8 bytes, as exiftool writes it
        blob = blob.replace(mark.encode(), texts[key].encode())
    src = tmp_path / f"s.{src_fmt}"
    if src_fmt == "tif":  # (Pillow's TIFF writer would itself turn the text into '?'; no sub-IFDs then)
        tifffile.imwrite(src, _smooth(16, 16, 3), photometric="rgb", metadata=None,
                         description=texts["description"].encode(),
                         extratags=[(0x013B, 2, 0, texts["artist"].encode(), True),
                                    (0x010F, 2, 0, b"TestCam", True)])
    else:
        Image.fromarray(_smooth(16, 16, 3)).save(src, exif=blob)
    photo = read_photo(src)
    out = tmp_path / f"out.{fmt or src_fmt}"
    write_photo(out, photo.pixels, like=photo, format=fmt, provenance=PROV)

    def stored(value) -> str:
        assert isinstance(value, str)  # still text (ASCII-typed), not UNDEFINED bytes
        return value.encode("latin-1").decode("utf-8")  # (Pillow gives the stored bytes as Latin-1)

    with Image.open(out) as im:
        written = im.getexif()
        assert stored(written[0x010E]) == texts["description"]
        assert stored(written[0x013B]) == texts["artist"]
        if src_fmt != "tif":
            assert stored(written.get_ifd(ExifTags.IFD.Exif)[0xA430]) == texts["owner"]
            assert stored(written.get_ifd(ExifTags.IFD.GPSInfo)[0x0012]) == texts["datum"]
        assert written[0x010F] == "TestCam"
    assert read_provenance(out)["software"] == "oldphoto"


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp"])
def test_tiff_storage_tags_are_not_carried_into_another_format(tmp_path, fmt):
    # a TIFF's IFD0 is its EXIF: its storage tags (tile offsets into the TIFF, predictor, sample format,
    # a CMYK ICC profile) were copied into the EXIF of a JPEG/PNG/WebP restored from it, where they
    # describe nothing (the profile contradicting the one the file embeds); its text tags are carried
    icc = adobe_like_icc()
    tifffile.imwrite(tmp_path / "s.tif", _smooth(64, 64, 3), photometric="rgb", tile=(32, 32),
                     compression="zlib", predictor=True, iccprofile=icc, metadata=None,
                     extratags=[(0x010F, 2, 0, "TestCam", True), (0x8298, 2, 0, "(c) archive", True),
                                (0x0129, 3, 2, (0, 1), True)])
    photo = read_photo(tmp_path / "s.tif")
    out = tmp_path / f"out.{fmt}"
    write_photo(out, photo.pixels, like=photo, format=fmt, provenance=PROV)
    with Image.open(out) as im:
        exif = im.getexif()
        assert exif.get(0x010F) == "TestCam" and exif.get(0x8298) == "(c) archive"
        storage = (0x0129, 0x013D, 0x0142, 0x0143, 0x0144, 0x0145, 0x0153, 0x8773)
        left = {tag for tag in storage if tag in exif}
        assert not left, sorted(hex(t) for t in left)


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_a_tiffs_large_xmp_and_photoshop_blocks_do_not_fail_another_format(tmp_path, fmt):
    # a scan's XMP (an editor's history) or Photoshop resources over 64 KB, read as part of the TIFF's
    # EXIF, failed the JPEG write after the restoration ("ValueError: EXIF data is too long"); they are not
    # in the EXIF of any format now, and an XMP too large for a JPEG's one segment is said to be left out
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b" " * 90_000 + b"</x:xmpmeta>"
    resources = b"8BIM" + bytes(80_000)
    tifffile.imwrite(tmp_path / "s.tif", _smooth(32, 32, 3), photometric="rgb", metadata=None,
                     extratags=[(0x010F, 2, 0, "TestCam", True), (700, 1, len(xmp), xmp, True),
                                (34377, 1, len(resources), resources, True)])
    photo = read_photo(tmp_path / "s.tif")
    out = tmp_path / f"out.{fmt}"
    notes = write_photo(out, photo.pixels, like=photo, format=fmt, provenance=PROV)
    assert any("XMP" in n and "not carried" in n for n in notes) == (fmt == "jpg"), notes
    with Image.open(out) as im:
        exif = im.getexif()
        assert exif.get(0x010F) == "TestCam"
        assert 700 not in exif and 34377 not in exif
        assert im.info.get("xmp") == (xmp if fmt == "png" else None)
    assert read_provenance(out)["software"] == "oldphoto"


@pytest.mark.parametrize("src_fmt", ["jpg", "tif"])
def test_windows_details_fields_are_carried_into_a_tiff(tmp_path, src_fmt):
    # Windows Explorer's Details (Title, Comments, Tags, ...: UCS-2 BYTE tags of IFD0; the star rating,
    # a SHORT) were dropped without a word from TIFF outputs, which carried IFD0 text tags only
    title, keywords = "Oma in Köln".encode("utf-16-le") + b"\0\0", "family;1931".encode("utf-16-le") + b"\0\0"
    src = tmp_path / f"s.{src_fmt}"
    if src_fmt == "tif":
        tifffile.imwrite(src, _smooth(16, 16, 3), photometric="rgb", metadata=None,
                         extratags=[(0x9C9B, 1, len(title), title, True),
                                    (0x9C9E, 1, len(keywords), keywords, True),
                                    (0x4746, 3, 1, 4, True), (0x010F, 2, 0, "TestCam", True)])
    else:
        exif = _exif()
        exif[0x9C9B], exif[0x9C9E], exif[0x4746] = title, keywords, 4
        Image.fromarray(_smooth(16, 16, 3)).save(src, exif=exif.tobytes())
    photo = read_photo(src)
    out = tmp_path / "out.tif"
    write_photo(out, photo.pixels, like=photo, format="tiff", provenance=PROV)
    with Image.open(out) as im:
        exif = im.getexif()
        assert bytes(exif.get(0x9C9B)) == title and bytes(exif.get(0x9C9E)) == keywords
        assert exif.get(0x4746) == 4
        assert exif.get(0x010F) == "TestCam"


def test_a_tiff_only_tifffile_reads_keeps_its_description(tmp_path):
    # such TIFFs keep their IFD0 text tags (docs/files-and-batches.md), but ImageDescription, the
    # caption, was left out of them: restored without it, without a word
    tifffile.imwrite(tmp_path / "g.tif", np.full((16, 16, 2), 30000, np.uint16), photometric="minisblack",
                     extrasamples=[2], metadata=None, description="Box 12: the mill, 1931",
                     extratags=[(0x013B, 2, 0, "A. Archivist", True)])
    photo = read_photo(tmp_path / "g.tif")
    out = tmp_path / "out.tif"
    write_photo(out, photo.pixels, like=photo, provenance=PROV)
    with tifffile.TiffFile(out) as tif:
        tags = tif.pages.first.tags
        assert tags["ImageDescription"].value == "Box 12: the mill, 1931"
        assert tags["Artist"].value == "A. Archivist"
    assert read_provenance(out)["software"] == "oldphoto"


@pytest.mark.parametrize("fmt", [None, "png", "tiff"])
def test_a_quarter_turned_photo_keeps_its_print_size(tmp_path, fmt):
    # a photo stored across (EXIF orientation 6) at 300x600 dpi is written upright, so its horizontal and
    # vertical resolutions swap; they were written as stored, changing the print's size and shape
    exif = _exif(o274=6)
    exif[0x011A], exif[0x011B], exif[0x0128] = 300.0, 600.0, 2
    src = tmp_path / "s.jpg"
    Image.fromarray(_smooth(20, 30, 3)).save(src, dpi=(300, 600), exif=exif.tobytes())
    photo = read_photo(src)
    assert photo.size == (20, 30) and photo.dpi == (600.0, 300.0)
    out = tmp_path / f"out.{fmt or 'jpg'}"
    write_photo(out, photo.pixels, like=photo, format=fmt, provenance=PROV)
    with Image.open(out) as im:
        assert im.size == (20, 30)
        assert tuple(round(v) for v in im.info["dpi"]) == (600, 300)
        written = im.getexif()
        assert (float(written[0x011A]), float(written[0x011B])) == (600.0, 300.0)


def test_a_tiff_only_tifffile_reads_keeps_its_resolution(tmp_path):
    # a 16-bit gray scan with alpha at 1200 dpi (read by tifffile, not Pillow) was restored without its
    # resolution: tifffile wrote 1x1 with no unit, and the print size was lost
    tifffile.imwrite(tmp_path / "g.tif", np.full((16, 16, 2), 30000, np.uint16), photometric="minisblack",
                     extrasamples=[2], resolution=(1200, 1200), resolutionunit="INCH")
    tifffile.imwrite(tmp_path / "c.tif", np.full((16, 16, 2), 30000, np.uint16), photometric="minisblack",
                     extrasamples=[2], resolution=(400, 200), resolutionunit="CENTIMETER")
    for name, dpi in (("g.tif", (1200.0, 1200.0)), ("c.tif", (1016.0, 508.0))):
        photo = read_photo(tmp_path / name)
        assert photo.dpi is not None and np.allclose(photo.dpi, dpi)
        out = tmp_path / f"out_{name}"
        write_photo(out, photo.pixels, like=photo, provenance=PROV)
        with tifffile.TiffFile(out) as tif:  # (Pillow cannot open these either)
            tags = tif.pages.first.tags
            assert int(tags["ResolutionUnit"].value) == 2
            written = [v[0] / v[1] for v in (tags["XResolution"].value, tags["YResolution"].value)]
            assert np.allclose(written, dpi, rtol=1e-4)


# an archive's caption, as catalogue software writes it: XMP (upright only once the EXIF orientation 6 is
# applied, as the XMP repeats it) and the same in IPTC-IIM (2:120 caption, 2:25 keyword)
_XMP = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
        'tiff:Orientation="6"><dc:description><rdf:Alt><rdf:li xml:lang="x-default">Hochzeit von Anna und '
        'Karl, Köln 1931</rdf:li></rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta>'
        '<?xpacket end="w"?>').encode("utf-8")
_CAPTION = b"Hochzeit von Anna und Karl"
_IPTC = (b"\x1c\x02\x78" + struct.pack(">H", len(_CAPTION)) + _CAPTION
         + b"\x1c\x02\x19" + struct.pack(">H", 5) + b"Kln31")


def _photoshop_resources(iptc: bytes) -> bytes:
    return b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc + b"\0" * (len(iptc) % 2)


def _archive_photo(path) -> None:
    """A photo with the caption in XMP and (where the format holds it) IPTC, stored turned (EXIF 6)."""
    pixels = _smooth(24, 32, 3)
    exif = _exif(o274=6)
    suffix = path.suffix
    if suffix == ".jpg":
        plain = io.BytesIO()
        Image.fromarray(pixels).save(plain, "JPEG", exif=exif.tobytes())
        data = plain.getvalue()
        app1 = b"http://ns.adobe.com/xap/1.0/\0" + _XMP
        app13 = b"Photoshop 3.0\0" + _photoshop_resources(_IPTC)
        segments = (b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
                    + b"\xff\xed" + struct.pack(">H", len(app13) + 2) + app13)
        path.write_bytes(data[:2] + segments + data[2:])
    elif suffix == ".tif":  # IPTC in its own tag (typed LONG, as Photoshop does), or in Photoshop's resources
        resources, padded = _photoshop_resources(_IPTC), _IPTC + b"\0" * (-len(_IPTC) % 4)
        iptc = ((34377, 1, len(resources), resources, True) if path.name.endswith(".psd.tif")
                else (33723, 4, len(padded) // 4, padded, True))
        tifffile.imwrite(path, pixels, photometric="rgb", metadata=None,
                         extratags=[(274, 3, 1, 6, True), (700, 1, len(_XMP), _XMP, True), iptc])
    elif suffix == ".png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", _XMP.decode("utf-8"))
        Image.fromarray(pixels).save(path, pnginfo=info, exif=exif)
    else:
        Image.fromarray(pixels).save(path, "WEBP", exif=exif.tobytes(), xmp=_XMP, lossless=True)


def _xmp_and_iptc_of(path) -> tuple[bytes | None, bytes | None]:
    from PIL import IptcImagePlugin

    with Image.open(path) as im:
        xmp = im.tag_v2.get(700) if im.format == "TIFF" else im.info.get("xmp")
        iptc = IptcImagePlugin.getiptcinfo(im) if im.format in ("JPEG", "TIFF") else None
    return (xmp.encode("utf-8") if isinstance(xmp, str) else xmp), iptc


@pytest.mark.parametrize("src", ["s.jpg", "s.tif", "s.psd.tif", "s.png", "s.webp"])
@pytest.mark.parametrize("fmt", [None, "jpg", "tiff", "png", "webp"])
def test_xmp_and_iptc_captions_are_carried_and_say_upright(tmp_path, src, fmt):
    # an archive's captions, keywords and credits live in XMP and IPTC: they were left out of every
    # restoration (a warning said so), so the restored copy lost what the catalogue knows about the photo
    _archive_photo(tmp_path / src)
    photo = read_photo(tmp_path / src)
    assert photo.size == (24, 32)
    out = tmp_path / f"out{'.' + fmt if fmt else src[1:]}"
    notes = write_photo(out, photo.pixels, like=photo, format=fmt, provenance=PROV)
    xmp, iptc = _xmp_and_iptc_of(out)
    # the XMP, written as it was, but upright like the pixels (orientation 6 applied once, not twice)
    assert xmp == _XMP.replace(b'tiff:Orientation="6"', b'tiff:Orientation="1"')
    family = fmt or src.rsplit(".", 1)[1]
    had_iptc = src[2:] in ("jpg", "tif", "psd.tif")
    if had_iptc and family in ("jpg", "tif", "tiff"):
        assert iptc == {(2, 120): _CAPTION, (2, 25): b"Kln31"}
    said = [n for n in notes if "IPTC" in n or "XMP" in n]
    if had_iptc and family in ("png", "webp"):  # (no place for IPTC there: said)
        assert said and "IPTC metadata" in said[0] and "--format jpg or tiff" in said[0], notes
    else:
        assert not said, notes
    # stripped: neither
    write_photo(tmp_path / f"stripped_{out.name}", photo.pixels, like=photo, format=fmt, strip_metadata=True)
    assert _xmp_and_iptc_of(tmp_path / f"stripped_{out.name}") == (None, None)

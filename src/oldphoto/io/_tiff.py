"""TIFF pixels through tifffile (8/16-bit gray, RGB, CMYK, alpha, first page of many) and TIFF metadata.

Pillow reads 16-bit colour TIFFs as 8-bit and cannot write them, so tifffile does the pixel work.
tifffile will not write an EXIF sub-IFD pointer, so we write a placeholder tag next to it, append the
sub-IFD (serialised by Pillow) at the end of the file and patch the placeholder into the real pointer.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import ExifTags, Image, TiffImagePlugin

from oldphoto.io import _xmp_iptc

_log = logging.getLogger(__name__)

# sub-IFD pointer tag -> placeholder tag written by tifffile (adjacent number keeps the entries sorted)
_SUB_IFDS = {int(ExifTags.IFD.Exif): 34666, int(ExifTags.IFD.GPSInfo): 34854}
# IFD0 tags tifffile writes itself, or that describe the pixel layout: never copied from the input
_OWN_TAGS = {254, 255, 256, 257, 258, 259, 262, 266, 269, 273, 274, 277, 278, 279, 282, 283, 284, 296, 305,
             270, 317, 320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347, 529, 530, 531, 532, 34665,
             34675, 34853, 0x0201, 0x0202, 700, 33723, 34377}

XMP_TAG, IPTC_TAG, PHOTOSHOP_TAG = 700, 33723, 34377  # (Photoshop's image resources hold IPTC too)


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """tifffile's own log lines (a broken file's "invalid offset to first page") kept off the console
    while a photo is read: what went wrong becomes the photo's reason or warning instead."""
    logger, drop = logging.getLogger("tifffile"), _Drop()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def header_shortfall(path: Path) -> str | None:
    """Why a (classic or Big) TIFF cannot be read, when the file ends before its first image directory
    does (a copy or download cut short in the header), or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
            size = fh.seek(0, 2)
            order = {b"II": "<", b"MM": ">"}.get(head[:2])
            if order is None or len(head) < 8:
                return f"truncated TIFF: the file ends inside its header ({size} bytes)"
            big = struct.unpack(order + "H", head[2:4])[0] == 43
            if big and len(head) < 16:
                return f"truncated TIFF: the file ends inside its header ({size} bytes)"
            offset = struct.unpack(order + ("Q" if big else "I"), head[8:16] if big else head[4:8])[0]
            count_size, entry_size, next_size = (8, 20, 8) if big else (2, 12, 4)
            if offset + count_size > size:
                return (f"truncated TIFF: the file ends before its first image directory ({size} bytes, "
                        f"the directory at byte {offset})")
            fh.seek(offset)
            count = struct.unpack(order + ("Q" if big else "H"), fh.read(count_size))[0]
            end = offset + count_size + count * entry_size + next_size
            if end <= size:  # the directory is there: are the values it points to?
                entries = fh.read(count * entry_size)
                inline = 8 if big else 4
                for k in range(count):
                    entry = entries[k * entry_size:(k + 1) * entry_size]
                    kind = struct.unpack(order + "H", entry[2:4])[0]
                    n = struct.unpack(order + ("Q" if big else "I"), entry[4:12] if big else entry[4:8])[0]
                    length = n * _TYPE_SIZES.get(kind, 1)
                    if length > inline:  # stored elsewhere: the entry's last field says where
                        where = entry[12:20] if big else entry[8:12]
                        end = max(end, struct.unpack(order + ("Q" if big else "I"), where)[0] + length)
            if end > size:
                return (f"truncated TIFF: the file ends inside its first image directory ({size} bytes of "
                        f"the {end} it needs)")
    except (OSError, struct.error):
        return None
    return None


# bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, ..., LONG8, SLONG8, IFD8)
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8,
               18: 8}


@dataclass
class TiffPixels:
    data: np.ndarray        # H×W×C (C = 1 gray, 3 RGB, 4 CMYK), uint8 or uint16, stored orientation
    space: str              # "GRAY" | "RGB" | "CMYK"
    alpha: np.ndarray | None
    associated_alpha: bool
    pages: int
    icc: bytes | None
    stored_as: str | None = None  # "F" (float samples, clipped to 16-bit) or "1" (1-bit, as 8-bit): changed
    dpi: tuple[float, float] | None = None  # pixels per inch (stored axes), as Pillow's info["dpi"]


def _dpi(tags) -> tuple[float, float] | None:
    """X and Y resolution in pixels per inch (centimetres converted), or None: none, or no unit."""
    try:
        x, y = (tags[code].value for code in (282, 283))
        unit = int(tags[296].value) if 296 in tags else 2
        per = {2: 1.0, 3: 2.54}[unit]
        dpi = (x[0] / x[1] * per, y[0] / y[1] * per)
    except (KeyError, TypeError, IndexError, ZeroDivisionError):
        return None
    return dpi if dpi[0] > 0 and dpi[1] > 0 else None


def read_tiff(path: Path, max_pixels: int | None,
              on_header: Callable[[int, int, int, int, int], None] | None = None) -> TiffPixels:
    """The first page's pixels; ``on_header(width, height, samples, bits, pages)`` runs before decoding."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        pages = len(tif.pages)
        h, w = int(page.imagelength), int(page.imagewidth)
        if max_pixels is not None and h * w > max_pixels:
            raise _TooLarge(w, h)
        if on_header is not None:
            bits = 16 if int(page.bitspersample) > 8 else 8
            on_header(w, h, int(page.samplesperpixel), bits, pages)
        arr = page.asarray()
        axes = page.axes
        photometric = int(page.photometric)
        extras = tuple(int(e) for e in (page.extrasamples or ()))
        colormap = page.colormap
        icc_tag = page.tags.get(34675)
        icc = bytes(icc_tag.value) if icc_tag is not None else None
        dpi = _dpi(page.tags)
    if axes == "YX":
        arr = arr[:, :, None]
    elif axes == "SYX":
        arr = np.moveaxis(arr, 0, -1)
    elif axes != "YXS":
        raise ValueError(f"unsupported TIFF layout {axes!r}")
    stored_as = "1" if arr.dtype == bool else "F" if arr.dtype.kind == "f" else None
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype.kind == "f":
        arr = float_samples_to_16bit(arr)
    elif arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"unsupported TIFF sample type {arr.dtype}")
    if photometric == 3:  # palette: colour map entries are 16-bit
        if colormap is None:
            raise ValueError("palette TIFF without a colour map")
        rgb = np.moveaxis(np.asarray(colormap)[:, arr[..., 0]], 0, -1)
        eight_bit = np.all(np.asarray(colormap) % 257 == 0)
        arr = (rgb // 257).astype(np.uint8) if eight_bit else rgb.astype(np.uint16)
        return TiffPixels(arr, "RGB", None, False, pages, icc, stored_as, dpi)
    colour = {0: 1, 1: 1, 2: 3, 5: 4}.get(photometric)
    if colour is None:
        raise ValueError(f"unsupported TIFF photometric interpretation {photometric}")
    if photometric == 0:  # min-is-white
        arr = np.iinfo(arr.dtype).max - arr
    alpha = arr[..., colour] if arr.shape[-1] > colour else None
    space = {1: "GRAY", 3: "RGB", 4: "CMYK"}[colour]
    return TiffPixels(np.ascontiguousarray(arr[..., :colour]), space,
                      None if alpha is None else np.ascontiguousarray(alpha),
                      bool(extras) and extras[0] == 1, pages, icc, stored_as, dpi)


def read_rgb16_by_opencv(path: Path) -> TiffPixels | None:
    """A 16-bit RGB(A) TIFF that tifffile cannot decode (LZW, what scanners write, and other compressions
    need the optional imagecodecs package) read by OpenCV's libtiff, which keeps the 16 bits that Pillow,
    the other fallback, reduces to 8; None for any other TIFF (Pillow reads gray at 16 bits)."""
    import cv2

    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        if (int(page.bitspersample) != 16 or int(page.photometric) != 2 or int(page.planarconfig) != 1
                or int(page.samplesperpixel) not in (3, 4)):
            return None
        extras = tuple(int(e) for e in (page.extrasamples or ()))
        icc_tag = page.tags.get(34675)
        icc = bytes(icc_tag.value) if icc_tag is not None else None
        pages, dpi = len(tif.pages), _dpi(page.tags)
    # (IMREAD_UNCHANGED: the stored orientation, as read_tiff gives it; the first page)
    arr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        return None
    alpha = np.ascontiguousarray(arr[..., 3]) if arr.shape[2] == 4 else None
    return TiffPixels(np.ascontiguousarray(arr[..., 2::-1]), "RGB", alpha, bool(extras) and extras[0] == 1,
                      pages, icc, None, dpi)


def stored_header(path: Path) -> tuple[tuple[int, int], dict[int, object], bool, bool]:
    """The first page's (width, height), orientation not applied, its :func:`ifd0_tags`, whether it links
    an EXIF sub-IFD (which those tags do not read) and whether it holds an ICC profile (for TIFFs Pillow
    cannot open), from one reading of the header."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        return ((int(page.imagewidth), int(page.imagelength)), _ifd0_tags(tif, page),
                34665 in page.tags, 34675 in page.tags)


def xmp_iptc(path: Path) -> tuple[bytes | None, bytes | None]:
    """The first page's XMP packet and IPTC records (tag 33723, else those among Photoshop's resources),
    as stored (IPTC is often typed LONG: its bytes are the records whatever the type says)."""
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages.first.tags
        xmp, iptc, resources = (_raw_bytes(tif, tags[code]) if code in tags else None
                                for code in (XMP_TAG, IPTC_TAG, PHOTOSHOP_TAG))
    return xmp or None, _xmp_iptc.iim(iptc) or _xmp_iptc.iptc_in_photoshop(resources)


def _raw_bytes(tif: tifffile.TiffFile, tag: tifffile.TiffTag) -> bytes:
    fh = tif.filehandle
    fh.seek(tag.valueoffset)
    return fh.read(tag.valuebytecount)


def ifd0_tags(path: Path) -> dict[int, object]:
    """Orientation and the text tags of the first page (for TIFFs Pillow cannot open)."""
    with tifffile.TiffFile(path) as tif:
        return _ifd0_tags(tif, tif.pages.first)


def _ifd0_tags(tif: tifffile.TiffFile, page) -> dict[int, object]:
    out: dict[int, object] = {}
    for tag in page.tags.values():
        # (ImageDescription too: the caption a TIFF only tifffile reads (16-bit gray with alpha) was lost)
        text = isinstance(tag.value, str) and (tag.code not in _OWN_TAGS or tag.code in (270, 305))
        if text:
            out[int(tag.code)] = _raw_ascii(tif, tag)
        elif tag.code == 274:
            out[274] = int(tag.value)
    return out


def _raw_ascii(tif: tifffile.TiffFile, tag: tifffile.TiffTag) -> str:
    """An ASCII tag's text as stored (tifffile strips surrounding whitespace, e.g. a copyright of ' ')."""
    raw = _raw_bytes(tif, tag)
    # (Latin-1, as Pillow reads EXIF text: every stored byte kept, to be written back as it was)
    return raw.rstrip(b"\0").decode("latin-1")


class UnusableFloats(ValueError):
    """Floating-point samples that cannot be read as a photo: NaN (no value to clip to: a cast made them
    0, or anything, with numpy's RuntimeWarning on the console), or 8- or 16-bit values stored as floats
    (clipped to 0-1, such a photo came back all white)."""


def float_samples_to_16bit(arr: np.ndarray) -> np.ndarray:
    """Floating-point samples -> 16-bit integers, values outside 0-1 (infinities too) clipped.  Raises
    ``UnusableFloats`` for NaN samples, and when most samples are above 2, the API's bar for 8- or
    16-bit values as floats (as ImageJ and scientific software save them): clipped, the photo would be
    all white.  (A linear photo's highlights above 1 are clipped, as the photo's warning says.)"""
    nan = int(np.count_nonzero(np.isnan(arr)))
    if nan:
        raise UnusableFloats(f"unsupported samples: {nan} of the {arr.size} floating-point samples are NaN "
                             "(not a number); replace them, e.g. with 0, and save the file again")
    above = int(np.count_nonzero(arr > 2.0))
    if above * 2 > arr.size:
        top = float(arr.max())
        scale = "" if top > 65535 else ("; 8-bit values stored as floats? divide by 255" if top <= 255
                                        else "; 16-bit values stored as floats? divide by 65535")
        raise UnusableFloats(f"unsupported samples: {100 * above / arr.size:.0f} % of the floating-point "
                             f"samples are above 2, up to {top:g}, where 0-1 is expected: clipped, the photo "
                             f"would be all white{scale}")
    # (in float32 at least: half floats top out at 65504, and 1.0 * 65535 overflowed to infinity, a white
    # sample cast to 0 with numpy's RuntimeWarning on the console)
    arr = np.clip(arr.astype(np.promote_types(arr.dtype, np.float32), copy=False), 0.0, 1.0)
    return np.rint(arr * 65535).astype(np.uint16)


class _TooLarge(Exception):
    def __init__(self, width: int, height: int):
        super().__init__(f"{width}x{height}")
        self.width, self.height = width, height


# IFD0 fields Windows Explorer shows and edits (Details: Title, Comments, Authors, Tags, Subject as UCS-2
# bytes; the star rating), which an archive's catalogue often lives in: carried with their own types
_WINDOWS_BYTE_TAGS = (0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F)  # XPTitle ... XPSubject
_WINDOWS_SHORT_TAGS = (0x4746, 0x4749)                          # Rating, RatingPercent


def _ascii_tags(exif: Image.Exif | None) -> list[tuple]:
    """IFD0 text tags of the input (Make, Model, Artist, Copyright, DateTime, ...) as tifffile extratags,
    and the Windows Details fields (XPTitle, XPKeywords, ..., Rating), which are not text tags."""
    tags = []
    for tag, value in (exif or {}).items():
        if tag in _OWN_TAGS or tag in _SUB_IFDS:
            continue
        if isinstance(value, str):
            tags.append((int(tag), 2, 0, value, True))
        elif tag in _WINDOWS_BYTE_TAGS and isinstance(value, (bytes, tuple)):
            raw = bytes(value)
            tags.append((int(tag), 1, len(raw), raw, True))
        elif tag in _WINDOWS_SHORT_TAGS and isinstance(value, int) and 0 <= value < 65536:
            tags.append((int(tag), 3, 1, value, True))
    return tags


def write_tiff(path: Path, data: np.ndarray, space: str, alpha: np.ndarray | None, associated_alpha: bool,
               icc: bytes | None, dpi: tuple[float, float] | None, exif: Image.Exif | None,
               description: str | None, software: str | None, xmp: bytes | None = None,
               iptc: bytes | None = None, pages_of: Path | None = None) -> list[str]:
    """Write one page (zlib + predictor) with ICC, resolution, IFD0 text tags, XMP, IPTC and EXIF/GPS
    sub-IFDs; then ``pages_of``'s pages after its first, as they are (:func:`_copy_pages`).  Returns
    what could not be carried."""
    pixels = data if data.ndim == 3 else data[:, :, None]
    if alpha is not None:
        pixels = np.concatenate([pixels, alpha[:, :, None].astype(pixels.dtype)], axis=-1)
    photometric = {"GRAY": "minisblack", "RGB": "rgb", "CMYK": "separated"}[space]
    extrasamples = (("assocalpha" if associated_alpha else "unassalpha"),) if alpha is not None else None
    extratags = _ascii_tags(exif)
    if exif is not None:
        extratags.append((274, 3, 1, int(exif.get(274, 1)), True))
        for tag, placeholder in _SUB_IFDS.items():
            if exif.get_ifd(tag):
                extratags.append((placeholder, 4, 1, 0, True))
    if xmp:
        extratags.append((XMP_TAG, 1, len(xmp), xmp, True))
    if iptc:  # (typed LONG, as Photoshop writes it and readers expect: the records padded to 4 bytes)
        iptc += b"\0" * (-len(iptc) % 4)
        extratags.append((IPTC_TAG, 4, len(iptc) // 4, iptc, True))
    kwargs = {}
    if dpi:
        kwargs.update(resolution=(float(dpi[0]), float(dpi[1])), resolutionunit="INCH")
    with tifffile.TiffWriter(path) as writer:
        writer.write(pixels if pixels.shape[-1] > 1 else pixels[..., 0], photometric=photometric,
                     extrasamples=extrasamples, planarconfig="contig", compression="zlib", predictor=True,
                     iccprofile=icc, description=description, software=software or False, metadata=None,
                     extratags=extratags, **kwargs)
        left = _copy_pages(pages_of, writer) if pages_of is not None else []
    if exif is not None:
        _append_sub_ifds(path, exif)
    return left


def _copy_pages(source: Path, writer: tifffile.TiffWriter) -> list[str]:
    """The pages of ``source`` after its first, their samples as they are (only the first is restored):
    an archive scans the back of a print, its date and caption, as the second page, and the restored
    file must not lose it.  Each keeps its colour model, alpha, palette, resolution, orientation,
    description and colour profile; it is stored with zlib.  A page that cannot be decoded (a
    compression tifffile does not read) is left out and said, in the returned notes: the restored page
    is not lost for it."""
    left = []
    with tifffile.TiffFile(source) as tif:
        for number, page in enumerate(list(tif.pages)[1:], start=2):
            photometric, planar, extras, colormap = (page.photometric, page.planarconfig,
                                                     page.extrasamples or None, page.colormap)
            try:
                samples = page.asarray()
            except Exception as exc:  # (tifffile raises many kinds for what it cannot decode)
                try:  # LZW and JPEG pages need imagecodecs, which is not installed: Pillow reads them
                    samples, photometric, extras, colormap = _page_by_pillow(source, number - 1)
                    planar = "contig"
                except Exception:
                    left.append(f"page {number} of the original could not be read ({exc}) and is not in "
                                "the restored file (the original keeps it)")
                    continue
            tags = page.tags
            kwargs: dict[str, Any] = {}
            if 282 in tags and 283 in tags:
                kwargs.update(resolution=(tags[282].value, tags[283].value),
                              resolutionunit=int(tags[296].value) if 296 in tags else 2)
            extratags = [(274, 3, 1, int(tags[274].value), True)] if 274 in tags else []
            writer.write(samples, photometric=photometric, planarconfig=planar,
                         extrasamples=extras, colormap=colormap,
                         compression="zlib", description=page.description or None,
                         iccprofile=tags[34675].value if 34675 in tags else None, software=False,
                         metadata=None, extratags=extratags, **kwargs)
    return left


_PILLOW_PAGES = {"1": "minisblack", "L": "minisblack", "I;16": "minisblack", "I;16B": "minisblack",
                 "RGB": "rgb", "RGBA": "rgb", "CMYK": "separated", "P": "palette"}


def _page_by_pillow(source: Path, index: int) -> tuple[np.ndarray, str, tuple[str, ...] | None,
                                                      np.ndarray | None]:
    """Page ``index`` of ``source`` decoded by Pillow: (samples, photometric, extra samples, colormap)."""
    with Image.open(source) as image:
        image.seek(index)
        photometric = _PILLOW_PAGES[image.mode]  # (KeyError for a mode not kept: the page is said left)
        if image.mode == "1":
            samples = np.asarray(image.convert("L"))
        elif image.mode.startswith("I;16"):
            samples = np.asarray(image).astype(np.uint16)
        else:
            samples = np.asarray(image)
        colormap = None
        if image.mode == "P":
            rgb = np.zeros(768, np.uint16)
            palette = image.getpalette() or []
            rgb[:len(palette)] = palette
            colormap = rgb.reshape(256, 3).T * 257
    return samples, photometric, ("unassalpha",) if image.mode == "RGBA" else None, colormap


def _append_sub_ifds(path: Path, exif: Image.Exif) -> None:
    with tifffile.TiffFile(path) as tif:
        offsets = {}
        for tag, placeholder in _SUB_IFDS.items():
            entry = tif.pages.first.tags.get(placeholder)
            if entry is not None:
                offsets[tag] = entry.valueoffset
        order = tif.byteorder
    if not offsets:
        return
    head = (b"II*\x00" if order == "<" else b"MM\x00*") + b"\x08\x00\x00\x00"[:: 1 if order == "<" else -1]
    with open(path, "r+b") as fh:
        for tag, valueoffset in offsets.items():
            values = dict(exif.get_ifd(tag))
            interop = int(ExifTags.IFD.Interop)
            if tag == int(ExifTags.IFD.Exif) and interop in values and not isinstance(values[interop], dict):
                values[interop] = exif.get_ifd(interop)
            ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=head, group=tag)
            for key, value in values.items():
                ifd[key] = value
            end = fh.seek(0, 2)
            if end % 2:
                fh.write(b"\0")
                end += 1
            fh.write(ifd.tobytes(end))
            # the IFD entry is 8 bytes before its value: tag(2) type(2) count(4) value(4)
            fh.seek(valueoffset - 8)
            fh.write(struct.pack(order + "HHII", tag, 4, 1, end))

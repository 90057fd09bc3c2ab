"""Read a photo into sRGB float pixels plus everything needed to write the restoration back faithfully.

Reading: the content decides the format (a misnamed file is read and warned about), EXIF orientation
is applied, the ICC profile is converted to sRGB, alpha is set aside untouched, 16-bit samples stay
16-bit in float32.  Writing: same displayed size, original profile and colour model (gray stays gray
unless colour was added, CMYK stays CMYK in JPEG/TIFF), 16-bit where the format allows, EXIF made true
for the new file, a provenance record, and an atomic replace so no half-written file is ever visible.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from oldphoto.files import TEMP_NAME, atomic_write  # noqa: F401 - re-exported by oldphoto.io
from oldphoto.io import _colour, _heif, _jpeg, _metadata, _png, _tiff, _xmp_iptc
from oldphoto.io._warnings import guarded_warnings
from oldphoto.reasons import ReasonCode

DEFAULT_MAX_PIXELS = 120_000_000  # an 8x10" print scanned at 1200 dpi is 115 Mpx
DEFAULT_JPEG_QUALITY = 95
# write_photo takes pixels in [0, 1] give or take this much (rounding in a caller's arithmetic); 0-255
# values, or NaN, were written all white or black without a word
PIXEL_SLACK = 0.01
MIN_SIDE = 8  # the smallest width and height the restorer takes (oldphoto.pipeline)
GRAY_TOLERANCE = 0.02  # chroma (max-min channel) above which a gray input is said to have gained colour

# Pillow's format name -> format family
FORMAT_FAMILY = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "TIFF": "tiff", "WEBP": "webp", "BMP": "bmp",
                 "DIB": "bmp", "GIF": "gif", "HEIF": "heif"}
EXTENSION_FAMILY = {".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg", ".png": "png",
                    ".tif": "tiff", ".tiff": "tiff", ".webp": "webp", ".bmp": "bmp", ".dib": "bmp",
                    ".gif": "gif", ".heic": "heif", ".heif": "heif", ".hif": "heif"}
IMAGE_EXTENSIONS = frozenset(EXTENSION_FAMILY)
WRITABLE_FAMILIES = ("jpeg", "png", "tiff", "webp")
# --format same: BMP and GIF cannot carry a profile, EXIF or provenance, so they become PNG (lossless);
# HEIC photos (read, not written: io._heif) become JPEG, which every program opens
SAME_FAMILY = {"jpeg": "jpeg", "png": "png", "tiff": "tiff", "webp": "webp", "bmp": "png", "gif": "png",
               "heif": "jpeg"}
DEFAULT_SUFFIX = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "webp": ".webp"}
_FORMAT_ALIASES = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "tif": "tiff", "tiff": "tiff", "webp": "webp"}
_DROPPED_TEXT = {"raw profile type exif", "raw profile type app1", "software", _metadata.PROVENANCE_KEY}
_BLOCK_PIXELS = 1 << 20  # float conversions run in row blocks of about this many pixels


class PhotoError(Exception):
    """A photo that cannot be read (or written); the message names the file and the reason.  ``code``: the
    cause as the batch report's code (``oldphoto.reasons``), where the raiser knows it (None: the file's
    content could not be decoded)."""

    def __init__(self, path: str | os.PathLike, reason: str, *, code: ReasonCode | None = None):
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason
        self.code = code


@dataclass
class Photo:
    """A decoded photo.  ``pixels`` is what the restorer sees; the rest is what writing back needs."""

    path: Path
    format: str                   # Pillow's name of the content's format: "JPEG", "PNG", "TIFF", ...
    family: str                   # "jpeg" | "png" | "tiff" | "webp" | "bmp" | "gif" | "heif"
    pixels: np.ndarray            # float32 H×W×3 sRGB in [0, 1], displayed orientation
    space: str                    # colour model of the file: "GRAY" | "RGB" | "CMYK"
    bit_depth: int                # 8 or 16 bits per sample
    mode: str                     # how the file stores pixels ("P", "I;16", "RGBA", "CMYK", "tiff RGB", ...)
    alpha: np.ndarray | None = None   # raw alpha samples (uint8/uint16), displayed orientation, untouched
    associated_alpha: bool = False
    icc_profile: bytes | None = None  # the embedded profile when it is usable for this colour model
    exif: Image.Exif = field(default_factory=Image.Exif)
    orientation: int = 1
    text: dict[str, str] = field(default_factory=dict)    # PNG text chunks
    dpi: tuple[float, float] | None = None
    pages: int = 1
    warnings: list[str] = field(default_factory=list)
    xmp: bytes | None = None      # the XMP packet (captions, keywords, credits), written back
    iptc: bytes | None = None     # the IPTC-IIM records, written back where the format holds them
    unkept: tuple[str, ...] = ()  # metadata blocks of the file that are not written back ("extended XMP")

    @property
    def size(self) -> tuple[int, int]:
        """Displayed (width, height)."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    @property
    def is_gray(self) -> bool:
        return self.space == "GRAY"

    def release_pixels(self) -> None:
        """Drop the pixel array but keep its shape (a zero-byte view), e.g. once the restorer has made its
        own copy: a huge photo then holds one float copy less while its restoration is written."""
        self.pixels = _released(self.pixels.shape)

    def __getstate__(self) -> dict[str, Any]:
        # a released photo travels (pickled, e.g. between the steps of a cluster batch) without
        # materialising its zero-byte view into a full array of zeros
        state = dict(self.__dict__)
        pixels = self.pixels
        if pixels.ndim == 3 and pixels.size and pixels.strides[:2] == (0, 0) and not pixels[0, 0].any():
            state["pixels"] = _ReleasedPixels(tuple(self.pixels.shape))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("pixels"), _ReleasedPixels):
            state = {**state, "pixels": _released(state["pixels"].shape)}
        self.__dict__.update(state)


@dataclass(frozen=True)
class _ReleasedPixels:
    shape: tuple[int, ...]


def _released(shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.zeros((1, 1, 3), np.float32), shape)


@dataclass
class PhotoHeader:
    """What the header says, before any pixel is decoded (for memory and time estimates)."""

    path: Path
    format: str
    family: str
    width: int          # stored size (EXIF orientation not applied: the cost is the same)
    height: int
    channels: int       # samples per pixel, alpha included
    bit_depth: int      # 8 or 16
    pages: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height


# ``guard(header)`` runs after the header and the data checks, before decoding: it raises PhotoError to
# refuse the photo, or returns warnings
Guard = Callable[[PhotoHeader], list[str] | None]


# ----------------------------------------------------------------------------------------------- reading

@contextlib.contextmanager
def own_pixel_limit() -> Iterator[None]:
    """Let Pillow open anything; we apply our own (configurable) limit before decoding.

    Truncated images stay errors whatever another library set globally: Pillow would otherwise fill
    missing data with black and call the photo read.
    """
    saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS = None
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with guarded_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def too_small(width: int, height: int) -> str | None:
    """Why a photo of ``width``×``height`` pixels cannot be restored (smaller than ``MIN_SIDE`` on a side),
    or None: said as a photo's reason, from its header, before it is restored (or queued)."""
    if width >= MIN_SIDE and height >= MIN_SIDE:
        return None
    return f"too small to restore: {width}×{height} pixels (at least {MIN_SIDE}×{MIN_SIDE} are needed)"


def _bomb_reason(width: int, height: int, max_pixels: int) -> str:
    return (f"decompression bomb guard: {width}x{height} = {width * height:,} pixels exceeds the limit of "
            f"{max_pixels:,} pixels (raise it with --max-pixels if the photo is genuine)")


def read_photo(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               guard: Guard | None = None) -> Photo:
    """Decode ``path`` (format detected from the content).  Raises ``PhotoError`` naming the problem.

    Before decoding: the pixel limit, a check that the image data is complete (PNG, JPEG, WebP: their
    decoders accept some truncated files silently), then ``guard(header)`` (see ``Guard``).
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise PhotoError(p, f"cannot read ({exc.strerror or exc})", code=ReasonCode.CANNOT_READ_FILE) from exc
    if not p.is_file():
        raise PhotoError(p, "not a regular file", code=ReasonCode.NOT_A_REGULAR_FILE)
    if size == 0:
        raise PhotoError(p, "empty file (0 bytes)")
    try:
        with open(p, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise PhotoError(p, f"cannot read ({exc.strerror or exc})", code=ReasonCode.CANNOT_READ_FILE) from exc
    riff = _riff_shortfall(head, size)
    if riff:
        raise PhotoError(p, riff)
    if _heif.is_heif(head) and not _heif.register():
        raise PhotoError(p, _heif.MISSING)
    said: list[str] = []
    with own_pixel_limit(), _exif_warnings(said), _tiff.quiet():
        photo = _open_photo(p, head, max_pixels, guard)
    photo.warnings.extend(said)
    return photo


@contextlib.contextmanager
def _exif_warnings(said: list[str]) -> Iterator[None]:
    """Pillow's warnings about a damaged EXIF block (it keeps what it can read) go into ``said``, once
    each, to become the photo's warnings, rather than to the console; other warnings pass on as they were,
    also when reading fails."""
    caught: list[warnings.WarningMessage] = []
    try:
        with guarded_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            yield
    finally:
        for w in caught:
            text = " ".join(str(w.message).split())
            if text.startswith(f"Metadata Warning, tag {_tiff.IPTC_TAG} "):
                continue  # (IPTC typed LONG, as Photoshop writes it: read by _tiff.xmp_iptc as bytes)
            if "EXIF" in text or text == "Truncated File Read":  # (the latter: Pillow on a cut TIFF)
                note = (f"EXIF partly unreadable: {text}; what could be read is kept" if "EXIF" in text
                        else "the file is shorter than its header says; what could be read is kept")
                if note not in said:
                    said.append(note)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def _open_photo(p: Path, head: bytes, max_pixels: int | None, guard: Guard | None) -> Photo:
    """``read_photo`` once the file is known to be there and not empty: open, check and decode it."""
    try:
        image = Image.open(p)
    except UnidentifiedImageError as exc:
        if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):  # TIFFs (and BigTIFFs) Pillow cannot
            return _read_tiff_only(p, max_pixels, guard)             # open: 16-bit gray+alpha, a cut header
        signature = _signature(head)
        if signature == "JPEG":
            raise PhotoError(p, _jpeg_header_reason(p)) from exc
        if signature:
            raise PhotoError(p, f"truncated or corrupt {signature} file (header unreadable)") from exc
        raise PhotoError(p, "not an image: the content is not a recognised image format"
                         + (f" (despite the {p.suffix} name)" if p.suffix.lower() in IMAGE_EXTENSIONS
                            else "")) from exc
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises many types for broken headers
        if _signature(head) == "JPEG":
            raise PhotoError(p, _jpeg_header_reason(p, str(exc))) from exc
        raise PhotoError(p, f"unreadable or truncated image header ({exc})") from exc
    with image:
        return _read_open_image(p, image, head, max_pixels, guard)


def _jpeg_header_reason(p: Path, detail: str = "") -> str:
    """Why Pillow cannot read the header of a file that starts as a JPEG: cut short, or damaged."""
    try:
        data = p.read_bytes()
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    return _jpeg.header_reason(data, detail)


def _decode_reason(image: Image.Image, exc: Exception) -> str:
    """Why decoding failed, in the words of Pillow's errors: data that stops early (cut short) or that
    cannot be decoded (damaged), else both possibilities."""
    text = str(exc)
    name = image.format or "image"
    if "truncated" in text.lower():
        return f"truncated {name}: the image data stops early, the file was cut short ({text})"
    if "broken data stream" in text or "decoding error" in text:
        return f"damaged {name}: its image data cannot be decoded ({text})"
    return f"truncated or corrupt image data ({text})"


def _riff_shortfall(head: bytes, size: int) -> str | None:
    """A WebP file shorter than its RIFF header says (libwebp then only says it cannot decode)."""
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP" or len(head) < 12:
        return None
    announced = int.from_bytes(head[4:8], "little") + 8
    if size < announced:
        return f"truncated WebP: the file has {size} of the {announced} bytes its header announces"
    return None


def _data_problem(p: Path, family: str) -> tuple[str | None, list[str]]:
    """(why the image data is incomplete, warnings), checked without a full decode."""
    if family == "png":
        return _png.check_data(p), []
    if family == "jpeg":
        return _jpeg.check_data(p.read_bytes())
    return None, []


def _header_of(p: Path, image: Image.Image, family: str, head: bytes, pages: int) -> PhotoHeader:
    png = _png.png_header(head) if family == "png" else None
    sixteen = (png is not None and png[0] == 16) or image.mode.startswith(("I;16", "I", "F"))
    return PhotoHeader(p, image.format or family.upper(), family, image.size[0], image.size[1],
                       len(image.getbands()), 16 if sixteen else 8, pages)


def _signature(head: bytes) -> str | None:
    """The format a file's magic bytes announce (to tell a broken image from a non-image)."""
    if head.startswith(_png.PNG_SIGNATURE):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if _heif.is_heif(head):
        return "HEIF"
    return None


def _read_open_image(p: Path, image: Image.Image, head: bytes, max_pixels: int | None,
                     guard: Guard | None) -> Photo:
    family = FORMAT_FAMILY.get(image.format or "")
    if family is None:
        raise PhotoError(p, f"unsupported image format {image.format}")
    notes: list[str] = []
    named = EXTENSION_FAMILY.get(p.suffix.lower())
    if named != family:
        name = p.suffix or "(no extension)"
        notes.append(f"named {name} but the content is {image.format}; read by content")
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        raise PhotoError(p, _bomb_reason(width, height, max_pixels), code=ReasonCode.TOO_MANY_PIXELS)
    pages = int(getattr(image, "n_frames", 1) or 1)
    if pages > 1:
        kind = "multi-page TIFF" if family == "tiff" else f"multi-frame {image.format}"
        notes.append(f"{kind} with {pages} pages: only the first page is restored" + (
            " (a TIFF output keeps the others as they are)" if family == "tiff" else ""))
    stored_as = _STORED_AS.get(image.mode)
    if stored_as:
        notes.append(stored_as)
    try:
        problem, data_notes = _data_problem(p, family)
    except OSError as exc:
        raise PhotoError(p, f"cannot read ({exc.strerror or exc})", code=ReasonCode.CANNOT_READ_FILE) from exc
    if problem:
        raise PhotoError(p, problem)
    notes += data_notes
    if guard is not None:
        notes += guard(_header_of(p, image, family, head, pages)) or []
    try:
        exif = _metadata.copy_exif(image.getexif())  # detached: TIFF sub-IFDs are read lazily from the file
        orientation = int(exif.get(_metadata.ORIENTATION, 1) or 1)
    except Exception as exc:  # broken EXIF must not cost the photo
        notes.append(f"EXIF unreadable and ignored ({exc})")
        exif, orientation = Image.Exif(), 1
    if orientation not in range(1, 9):
        notes.append(f"invalid EXIF orientation {orientation} ignored")
        orientation = 1
    try:
        data, space, alpha, assoc, bit_depth, mode, icc = _decode(p, image, family, head, max_pixels)
        text = {str(k): str(v) for k, v in getattr(image, "text", {}).items()} if family == "png" else {}
        png_xmp = text.pop(_xmp_iptc.XMP_PNG_KEY, None)  # (written back as XMP, into any format)
    except PhotoError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise PhotoError(p, _decode_reason(image, exc)) from exc
    icc = icc or image.info.get("icc_profile") or None
    icc, icc_note = _usable_profile(icc, space)
    if icc_note:
        notes.append(icc_note)
    if orientation != 1:
        data = _metadata.apply_orientation(data, orientation)
        alpha = None if alpha is None else _metadata.apply_orientation(alpha, orientation)
    pixels, icc = _to_pixels(data, bit_depth, icc, space, notes)
    del data
    dpi = image.info.get("dpi")
    if family == "jpeg" and image.info.get("jfif_unit") == 0 and 0x011A not in exif:
        dpi = None  # Pillow's 72 for a JPEG with EXIF but no resolution anywhere: not the photo's
    if family == "tiff" and 282 not in getattr(image, "tag_v2", {}):
        dpi = None  # Pillow's (1, 1) for a TIFF without an XResolution tag: not the photo's
    if not dpi:  # a WebP's resolution is in its EXIF only, which Pillow does not read as info["dpi"]
        dpi = _metadata.exif_dpi(exif)
    dpi = _metadata.displayed_dpi(dpi, orientation)
    xmp, iptc, unkept = _xmp_and_iptc(p, image, family)
    return Photo(
        path=p, format=image.format or family.upper(), family=family, pixels=np.ascontiguousarray(pixels),
        space=space, bit_depth=bit_depth, mode=mode, alpha=alpha, associated_alpha=assoc, icc_profile=icc,
        exif=exif, orientation=orientation, text=text,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi and len(dpi) == 2 and dpi[0] and dpi[1] else None,
        pages=pages, warnings=notes, xmp=png_xmp.encode("utf-8") if png_xmp else xmp, iptc=iptc,
        unkept=unkept,
    )


def _xmp_and_iptc(p: Path, image: Image.Image, family: str) -> tuple[bytes | None, bytes | None,
                                                                       tuple[str, ...]]:
    """The file's XMP packet and IPTC records, carried into the restoration, and the names of the blocks
    that are not (a JPEG's extended XMP, the part of a large packet in further segments): said for each
    photo.  (A PNG's XMP is one of its text chunks.)"""
    try:
        if family == "tiff":
            return (*_tiff.xmp_iptc(p), ())
        xmp = image.info.get("xmp")
        iptc = _xmp_iptc.iim((image.info.get("photoshop") or {}).get(_xmp_iptc.IPTC_RESOURCE))
        extended = any(marker == "APP1" and data.startswith(_xmp_iptc.JPEG_EXTENDED_XMP_HEADER)
                       for marker, data in getattr(image, "applist", []))
    except Exception:  # never cost the photo
        return None, None, ()
    return xmp if isinstance(xmp, bytes) and xmp else None, iptc, ("extended XMP",) * extended


def _read_tiff_only(p: Path, max_pixels: int | None, guard: Guard | None) -> Photo:
    """A TIFF only tifffile understands: pixels and IFD0 metadata from tifffile."""
    guard_notes: list[str] = []

    def on_header(width: int, height: int, channels: int, bits: int, pages: int) -> None:
        if guard is not None:
            header = PhotoHeader(p, "TIFF", "tiff", width, height, channels, bits, pages)
            guard_notes.extend(guard(header) or [])

    try:
        t = _tiff.read_tiff(p, max_pixels, on_header)
        _, tags, exif_ifd, _ = _tiff.stored_header(p)
    except _tiff._TooLarge as exc:
        raise PhotoError(p, _bomb_reason(exc.width, exc.height, max_pixels or 0),
                         code=ReasonCode.TOO_MANY_PIXELS) from exc
    except _tiff.UnusableFloats as exc:
        raise PhotoError(p, str(exc)) from exc
    except (MemoryError, PhotoError):
        raise
    except Exception as exc:
        raise PhotoError(p, _tiff_reason(p, exc)) from exc
    exif = Image.Exif()
    for code, value in tags.items():
        exif[code] = value
    orientation = int(exif.get(_metadata.ORIENTATION, 1) or 1)
    orientation = orientation if orientation in range(1, 9) else 1
    bits = 16 if t.data.dtype == np.uint16 else 8
    notes = ["EXIF sub-IFD not read (file only readable by tifffile)"] if exif_ifd else []
    notes.extend(guard_notes)
    if t.pages > 1:
        notes.append(f"multi-page TIFF with {t.pages} pages: only the first page is restored")
    if t.stored_as in _STORED_AS:
        notes.append(_STORED_AS[t.stored_as])
    icc, icc_note = _usable_profile(t.icc, t.space)
    notes += [icc_note] if icc_note else []
    try:
        xmp, iptc = _tiff.xmp_iptc(p)
    except Exception:  # never cost the photo
        xmp = iptc = None
    data, alpha = t.data, t.alpha
    if orientation != 1:
        data = _metadata.apply_orientation(data, orientation)
        alpha = None if alpha is None else _metadata.apply_orientation(alpha, orientation)
    pixels, icc = _to_pixels(data, bits, icc, t.space, notes)
    del data
    return Photo(path=p, format="TIFF", family="tiff", pixels=np.ascontiguousarray(pixels), space=t.space,
                 dpi=_metadata.displayed_dpi(t.dpi, orientation),
                 bit_depth=bits, mode=f"tiff {t.space} {bits}-bit", alpha=alpha,
                 associated_alpha=t.associated_alpha, icc_profile=icc, exif=exif, orientation=orientation,
                 pages=t.pages, warnings=notes, xmp=xmp, iptc=iptc)


def _tiff_reason(p: Path, exc: Exception) -> str:
    """tifffile's complaint about a TIFF, with truncation named as such (a header cut short is found by
    reading it: tifffile then complains of offsets and structures)."""
    shortfall = _tiff.header_shortfall(p)
    if shortfall:
        return shortfall
    text = str(exc)
    cut = isinstance(exc, (zlib.error, EOFError)) or any(
        word in text.lower() for word in ("failed to read", "truncated", "incomplete"))
    return f"truncated TIFF: the image data is incomplete ({text})" if cut else f"corrupt TIFF ({text})"


def _block_rows(width: int) -> int:
    return max(1, _BLOCK_PIXELS // max(int(width), 1))


def _to_pixels(data: np.ndarray, bits: int, icc: bytes | None, space: str,
               notes: list[str]) -> tuple[np.ndarray, bytes | None]:
    """Stored samples -> float32 sRGB pixels, in row blocks so that only one full float copy exists.

    Returns (pixels, the profile actually used: None when it proved unusable, with a note)."""
    top = np.float32(65535.0 if bits == 16 else 255.0)
    h, w = data.shape[:2]
    out = np.empty((h, w, 3), np.float32)
    rows = _block_rows(w)
    for attempt in (icc, None):
        try:
            for y in range(0, h, rows):
                values = data[y:y + rows].astype(np.float32)
                values /= top
                out[y:y + rows] = _colour.to_srgb(values, attempt, space, high_precision=bits == 16)
            return out, attempt
        except _colour.ProfileError as exc:
            if attempt is None:
                raise
            notes.append(f"{exc}; colours taken as sRGB")
    raise AssertionError("unreachable")


def _usable_profile(icc: bytes | None, space: str) -> tuple[bytes | None, str | None]:
    if not icc:
        return None, None
    try:
        profile_space = _colour.profile_space(icc)
    except _colour.ProfileError as exc:
        return None, f"{exc}; colours taken as sRGB and the profile is not carried over"
    if profile_space != space:
        return None, f"ICC profile is for {profile_space} but the pixels are {space}; profile ignored"
    return icc, None


# sample types that are restored, and written back, as another: said for each photo
_STORED_AS = {
    "F": "32-bit floating-point samples are read, and written back, as 16-bit integers (values outside "
         "0-1 are clipped)",
    "1": "1-bit (black and white) samples are restored, and written back, as 8-bit gray",
}


def _decode(p: Path, image: Image.Image, family: str, head: bytes, max_pixels: int | None):
    """-> (H×W×C samples, space, alpha, associated alpha, bit depth, mode description, icc or None)."""
    if family == "tiff":
        try:
            t = _tiff.read_tiff(p, max_pixels)
        except _tiff._TooLarge as exc:
            raise PhotoError(p, _bomb_reason(exc.width, exc.height, max_pixels or 0),
                             code=ReasonCode.TOO_MANY_PIXELS) from exc
        except _tiff.UnusableFloats as exc:
            raise PhotoError(p, str(exc)) from exc
        except MemoryError:
            raise
        except Exception as exc:
            reason = _tiff_reason(p, exc)
            if reason.startswith("truncated"):
                raise PhotoError(p, reason) from exc
            # e.g. a compression tifffile has no codec for: OpenCV for 16-bit colour, else Pillow below
            try:
                t = _tiff.read_rgb16_by_opencv(p)
            except MemoryError:
                raise
            except Exception:
                t = None
            if t is not None:
                return t.data, t.space, t.alpha, t.associated_alpha, 16, "tiff RGB 16-bit", t.icc
        else:
            bits = 16 if t.data.dtype == np.uint16 else 8
            return t.data, t.space, t.alpha, t.associated_alpha, bits, f"tiff {t.space} {bits}-bit", t.icc
    header = _png.png_header(head) if family == "png" else None
    if header is not None and header[0] == 16:
        return _decode_png16(p, header[1])
    image.seek(0)
    image.load()
    mode = image.mode
    alpha = None
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("RGBa", "RGBX", "YCbCr", "La", "1"):
        image = image.convert({"RGBa": "RGBA", "RGBX": "RGB", "YCbCr": "RGB", "La": "LA", "1": "L"}[mode])
    arr = np.asarray(image)
    m = image.mode
    if m in ("L", "LA"):
        data, space, bits = arr if arr.ndim == 3 else arr[:, :, None], "GRAY", 8
    elif m.startswith("I;16") or m == "I":
        low, high = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if low < 0 or high > 65535:  # 32-bit or signed samples: clipping would lose them silently
            raise PhotoError(p, f"unsupported samples: integer values {low}..{high} do not fit 16-bit "
                                "0..65535 (convert the file to 16-bit first)")
        data, space, bits = arr.astype(np.uint16)[:, :, None], "GRAY", 16
    elif m == "F":
        try:
            data, space, bits = _tiff.float_samples_to_16bit(arr)[:, :, None], "GRAY", 16
        except _tiff.UnusableFloats as exc:
            raise PhotoError(p, str(exc)) from exc
    elif m in ("RGB", "RGBA"):
        data, space, bits = arr, "RGB", 8
    elif m == "CMYK":
        data, space, bits = arr, "CMYK", 8
    else:
        raise PhotoError(p, f"unsupported colour mode {m}")
    channels = {"GRAY": 1, "RGB": 3, "CMYK": 4}[space]
    if data.shape[2] > channels:
        alpha = np.ascontiguousarray(data[:, :, channels])
        data = data[:, :, :channels]
    return np.ascontiguousarray(data), space, alpha, False, bits, mode, None


def _decode_png16(p: Path, colour_type: int):
    import cv2  # Pillow reads 16-bit colour PNGs as 8-bit; OpenCV keeps all 16 bits

    buf = np.fromfile(p, dtype=np.uint8)
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise ValueError("the 16-bit PNG data could not be decoded")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    alpha = None
    if colour_type in (0, 4):  # gray (OpenCV expands gray+alpha to BGRA)
        if arr.shape[2] == 4:
            alpha = arr[:, :, 3]
        data, space = arr[:, :, :1], "GRAY"
    else:
        if arr.shape[2] == 4:
            alpha = arr[:, :, 3]
        data, space = arr[:, :, 2::-1], "RGB"
    mode = {0: "I;16", 4: "LA;16", 2: "RGB;16", 6: "RGBA;16"}.get(colour_type, "16-bit")
    return (np.ascontiguousarray(data), space, None if alpha is None else np.ascontiguousarray(alpha),
            False, 16, mode, None)


# ----------------------------------------------------------------------------------------------- writing

def normalise_format(name: str | None) -> str | None:
    """'jpg'/'jpeg' -> 'jpeg', 'tif' -> 'tiff', ...; None or 'same' -> None."""
    if name is None or name.lower() == "same":
        return None
    try:
        return _FORMAT_ALIASES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown output format {name!r} (use png, jpg, tiff, webp or same)") from None


def output_family(photo: Photo, requested: str | None = None) -> str:
    """The family a restoration of ``photo`` is written in (``requested`` = --format value)."""
    return normalise_format(requested) or SAME_FAMILY[photo.family]


def output_suffix(photo: Photo, family: str) -> str:
    """Keep the input's own spelling (.JPG, .jpeg, .tiff) when it names the output's family."""
    if EXTENSION_FAMILY.get(photo.path.suffix.lower()) == family == photo.family:
        return photo.path.suffix
    return DEFAULT_SUFFIX[family]


def has_colour(pixels: np.ndarray, tolerance: float = GRAY_TOLERANCE) -> bool:
    """True when a restoration of a gray photo has visibly gained colour (not just rounding tints)."""
    step = max(1, int(np.sqrt(pixels.shape[0] * pixels.shape[1] / 250_000)))
    sample = np.clip(np.nan_to_num(np.asarray(pixels[::step, ::step], np.float32), nan=0.0), 0.0, 1.0)
    chroma = sample.max(axis=-1) - sample.min(axis=-1)
    return bool(np.percentile(chroma, 99) > tolerance)


def _quantise(values: np.ndarray, bits: int) -> np.ndarray:
    top = 65535.0 if bits == 16 else 255.0
    return np.rint(np.clip(values, 0.0, 1.0) * top).astype(np.uint16 if bits == 16 else np.uint8)


def _rescale_alpha(alpha: np.ndarray, bits: int) -> np.ndarray:
    if bits == 16 and alpha.dtype == np.uint8:
        return alpha.astype(np.uint16) * 257
    if bits == 8 and alpha.dtype == np.uint16:
        return ((alpha.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return alpha


def _enlargement(shape: tuple[int, int], like: Photo, out: Path) -> int:
    """How many times larger than ``like`` the pixels are (1, or ``--upscale``'s 2 or 4; the same on both
    axes): anything else is not a restoration of that photo."""
    h, w = like.pixels.shape[:2]
    factor = shape[0] // h
    if factor not in (1, 2, 4) or shape != (h * factor, w * factor):
        raise ValueError(f"{out}: restored image is {shape[1]}x{shape[0]} but the input {like.path.name} is "
                         f"{w}x{h} (or 2 or 4 times that, enlarged)")
    return factor


def write_photo(path: str | os.PathLike, pixels: np.ndarray, like: Photo | None = None, *,
                format: str | None = None, quality: int = DEFAULT_JPEG_QUALITY,
                provenance: dict[str, Any] | None = None, strip_metadata: bool = False,
                gray_tolerance: float = GRAY_TOLERANCE, replace: bool = True) -> list[str]:
    """Write sRGB ``pixels`` (float32 H×W×3 in [0, 1]) atomically, faithful to ``like`` (the input).
    ``replace=False``: never over a file at ``path`` (``FileExistsError``, the file left as it is).

    ``format`` ('png', 'jpg', 'tiff', 'webp'; None = from the path's extension, else like's family).
    Returns warnings (alpha dropped for JPEG, colour kept for a gray input, ...).
    """
    out = Path(path)
    family = normalise_format(format) or EXTENSION_FAMILY.get(out.suffix.lower()) or (
        SAME_FAMILY[like.family] if like else None)
    if family not in WRITABLE_FAMILIES:
        raise ValueError(f"{out}: cannot write format {family or out.suffix!r} (use png, jpg, tiff or webp)")
    given = np.asarray(pixels)
    if given.dtype.kind not in "f":  # (8-bit pixels were written all white without a word)
        raise ValueError(f"{out}: pixels must be floats in [0, 1], got {given.dtype} (8-bit values: divide "
                         "by 255)")
    rgb = given.astype(np.float32, copy=False)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{out}: pixels must be H×W×3, got {rgb.shape}")
    low, high = (float(rgb.min()), float(rgb.max())) if rgb.size else (0.0, 0.0)  # (NaN comes out of both)
    if not -PIXEL_SLACK <= low <= high <= 1 + PIXEL_SLACK:  # (False for NaN and infinities)
        raise ValueError(f"{out}: pixels must be finite numbers in [0, 1], got values from {low:g} to "
                         f"{high:g}")
    enlarged = _enlargement(rgb.shape[:2], like, out) if like is not None else 1
    notes: list[str] = []
    src_space = like.space if like else "RGB"
    if src_space == "GRAY":
        space = "GRAY" if not has_colour(rgb, gray_tolerance) else "RGB"
        if space == "RGB":
            notes.append("the gray input gained colour in restoration; written as RGB")
    elif src_space == "CMYK" and family in ("jpeg", "tiff"):
        space = "CMYK"
    else:
        space = "RGB"
    if family == "webp" and space == "GRAY":
        space = "RGB"  # WebP has no gray mode
    bits = 16 if like is not None and like.bit_depth == 16 and family in ("png", "tiff") else 8
    src_icc = None if strip_metadata or like is None else like.icc_profile
    if src_icc is not None and space == src_space:
        out_icc = convert_icc = src_icc
    else:
        # a changed colour model (gray gained colour, CMYK into PNG): the pixels stay sRGB and say so
        out_icc = _colour.srgb_icc_bytes() if src_icc is not None and space == "RGB" else None
        convert_icc = None
    data = _to_samples(rgb, convert_icc, space, bits)
    if data.shape[2] == 1:
        data = data[:, :, 0]
    alpha = like.alpha if like is not None else None
    if alpha is not None and family == "jpeg":
        if alpha.min() < np.iinfo(alpha.dtype).max:  # an all-opaque alpha loses nothing
            notes.append("JPEG cannot hold transparency: alpha dropped (use --format png or tiff)")
        alpha = None
    if alpha is not None:
        alpha = _rescale_alpha(alpha, bits)
        if enlarged != 1:  # each sample repeated: transparency is not detail to invent
            alpha = np.repeat(np.repeat(alpha, enlarged, axis=0), enlarged, axis=1)
    record = None if strip_metadata else provenance
    prov = _metadata.provenance_json(record) if record is not None else None
    exif = None
    if not strip_metadata:
        exif = _metadata.output_exif(like.exif if like else None, rgb.shape[1], rgb.shape[0], prov, enlarged,
                                     transposed=bool(like) and like.orientation in _metadata.TRANSPOSING)
    dpi = like.dpi if like is not None else None  # (kept when stripping: the print's size, nobody's data)
    if dpi is not None and enlarged != 1:
        dpi = (dpi[0] * enlarged, dpi[1] * enlarged)
    if family == "webp" and dpi is not None and exif is not None:
        # WebP has no resolution field of its own (Pillow ignores dpi= there): its EXIF records it, or none
        # does (a JPEG scan's 300 dpi, in its JFIF header, was lost); stripped, it has no EXIF to hold it
        exif = _metadata.with_resolution(exif, dpi)
    text = {} if strip_metadata or like is None else {
        k: v for k, v in like.text.items() if k.lower() not in _DROPPED_TEXT}
    xmp, iptc = (None, None) if strip_metadata or like is None else (like.xmp, like.iptc)
    xmp = _xmp_iptc.upright(xmp) if xmp else None
    if like is not None and not strip_metadata:
        lost = list(like.unkept)
        if text and family != "png":
            lost.append(f"PNG text ({', '.join(sorted(text))})")
        if lost:
            notes.append(f"{' and '.join(lost)} metadata of the original is not carried into the restored "
                         "file (the original keeps it)")
    # the pages after the first (the back of a print, its caption) go into a TIFF output as they are
    pages_of = like.path if like is not None and like.family == "tiff" and like.pages > 1 else None
    if pages_of is not None and family != "tiff":
        notes.append(f"pages 2 to {like.pages} of the original are not in the restored {family.upper()} file "
                     "(the original keeps them; --format tiff carries them)")
    if iptc and family not in _xmp_iptc.IPTC_FAMILIES:
        notes.append(f"IPTC metadata of the original is not carried into the restored file: {family.upper()} "
                     "has no place for it (the original keeps it; --format jpg or tiff carries it)")
        iptc = None

    def encode(tmp: Path) -> None:
        if family == "png":
            _write_png(tmp, data, alpha, out_icc, dpi, exif, text, prov, xmp)
        elif family == "tiff":
            description = exif.get(0x010E) if exif is not None else None
            assoc = bool(like and like.associated_alpha)
            notes.extend(_tiff.write_tiff(tmp, data, space, alpha, assoc, out_icc, dpi, exif,
                                          description if isinstance(description, str) else None,
                                          _metadata.software_name() if prov else None, xmp, iptc, pages_of))
        else:
            _write_pillow(tmp, family, data, space, alpha, out_icc, dpi, exif, quality, notes, xmp, iptc)

    atomic_write(out, encode, replace=replace)
    return notes


def _to_samples(rgb: np.ndarray, icc: bytes | None, space: str, bits: int) -> np.ndarray:
    """sRGB float pixels -> quantised samples of ``space``, in row blocks (no full float temporaries)."""
    h, w = rgb.shape[:2]
    channels = {"GRAY": 1, "RGB": 3, "CMYK": 4}[space]
    out = np.empty((h, w, channels), np.uint16 if bits == 16 else np.uint8)
    rows = _block_rows(w)
    for y in range(0, h, rows):
        block = np.clip(np.nan_to_num(rgb[y:y + rows], nan=0.0), 0.0, 1.0)
        out[y:y + rows] = _quantise(_colour.from_srgb(block, icc, space, high_precision=bits == 16), bits)
    return out


def _write_png(tmp: Path, data: np.ndarray, alpha: np.ndarray | None, icc: bytes | None,
               dpi: tuple[float, float] | None, exif: Any, text: dict[str, str], prov: str | None,
               xmp: bytes | None = None) -> None:
    chunks = []
    if icc:
        chunks.append(_png.iccp_chunk(icc))
    if dpi:
        chunks.append(_png.phys_chunk(dpi))
    for key, value in text.items():
        chunks.append(_png.text_chunk(key, value))
    if prov is not None:
        chunks.append(_png.text_chunk("Software", _metadata.software_name()))
        chunks.append(_png.text_chunk(_metadata.PROVENANCE_KEY, prov))
    if exif is not None:
        chunks.append(_png.chunk(b"eXIf", exif.tobytes()[6:]))  # without the "Exif\0\0" JPEG prefix
    if xmp:
        chunks.append(_png.xmp_chunk(xmp))
    pixels = data if alpha is None else np.dstack([data, alpha.astype(data.dtype)])
    tmp.write_bytes(_png.encode_png(pixels, chunks))


def pillow_bytes(image: Image.Image, format: str, **params: Any) -> bytes:
    """``image`` encoded by Pillow in memory, for Python to write: Pillow hands libjpeg's whole output
    to one write() to a file and does not look at its count, so on a nearly full disk a JPEG cut short
    was renamed into place as a restoration (and skipped by every rerun); Python's write fails instead."""
    encoded = io.BytesIO()
    image.save(encoded, format, **params)
    return encoded.getvalue()


def _write_pillow(tmp: Path, family: str, data: np.ndarray, space: str, alpha: np.ndarray | None,
                  icc: bytes | None, dpi: tuple[float, float] | None, exif: Any, quality: int,
                  notes: list[str], xmp: bytes | None = None, iptc: bytes | None = None) -> None:
    mode = {"GRAY": "L", "RGB": "RGB", "CMYK": "CMYK"}[space]
    h, w = data.shape[:2]
    image = Image.frombytes(mode, (w, h), np.ascontiguousarray(data).tobytes())
    if alpha is not None:
        image = image.convert("RGBA")
        image.putalpha(Image.frombytes("L", (w, h), np.ascontiguousarray(alpha, dtype=np.uint8).tobytes()))
    params: dict[str, Any] = {"quality": int(quality)}
    if family == "jpeg":
        params.update(subsampling=0 if quality >= 90 else 2, optimize=True)
    else:
        # exact: the colours under transparent pixels are the picture's (libwebp otherwise replaces them
        # to compress better, and a transparency removed or edited later showed flat gray there)
        params.update(method=4, exact=alpha is not None)
    if icc:
        params["icc_profile"] = icc
    if dpi:
        params["dpi"] = dpi
    if exif is not None:
        params["exif"] = _fit_jpeg_exif(exif, notes) if family == "jpeg" else exif.tobytes()
    if family == "webp" and xmp:
        params["xmp"] = xmp
    encoded = pillow_bytes(image, "JPEG" if family == "jpeg" else "WEBP", **params)
    if family == "jpeg" and (xmp or iptc):
        segments, too_large = _xmp_iptc.jpeg_segments(xmp, iptc)
        if too_large:
            notes.append(f"{' and '.join(too_large)} metadata of the original is too large for a JPEG (over "
                         "64 kB) and is not carried into the restored file (the original keeps it; --format "
                         "tiff carries it)")
        encoded = _xmp_iptc.insert_into_jpeg(encoded, segments)
    tmp.write_bytes(encoded)


JPEG_EXIF_MAX = 65533  # bytes: EXIF goes in one APP1 segment


def _fit_jpeg_exif(exif: Image.Exif, notes: list[str]) -> bytes:
    """``exif`` serialised for a JPEG: when it is larger than one segment holds, the maker note (the
    usual bulk) is left out, then the largest other tags until it fits (a PNG's or TIFF's 70 kB
    description failed the write after the restoration), each named in ``notes``."""
    blob = exif.tobytes()
    if len(blob) <= JPEG_EXIF_MAX:
        return blob
    if exif.get_ifd(0x8769).pop(0x927C, None) is not None:
        notes.append("EXIF too large for JPEG: maker note dropped")
        blob = exif.tobytes()
    dropped = []
    while len(blob) > JPEG_EXIF_MAX:
        sizes = [(len(str(value)), ifd, tag) for ifd in (None, 0x8769)
                 for tag, value in (exif.items() if ifd is None else exif.get_ifd(ifd).items())
                 if tag not in (0x8769, 0x8825, _metadata.IMAGE_HISTORY)]
        if not sizes:
            break
        _, ifd, tag = max(sizes, key=lambda t: t[0])
        (exif if ifd is None else exif.get_ifd(ifd)).pop(tag, None)
        dropped.append(ExifTags.TAGS.get(tag, hex(tag)))
        blob = exif.tobytes()
    if dropped:
        notes.append(f"EXIF too large for JPEG: {', '.join(dropped)} left out (the original keeps "
                     f"{'it' if len(dropped) == 1 else 'them'})")
    return blob


def read_provenance(path: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance record oldphoto wrote into ``path``, or None."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    is_tiff = head[:4] in (b"II*\0", b"MM\0*")
    if is_tiff:
        raw = _tiff.ifd0_tags(Path(path)).get(_metadata.IMAGE_HISTORY)
    elif _png.png_header(head) is not None:
        raw = _png_provenance(Path(path))
    else:
        with guarded_warnings():
            warnings.simplefilter("ignore")  # (a damaged EXIF: what can be read of it is looked at)
            with Image.open(path) as image:
                raw = image.getexif().get(_metadata.IMAGE_HISTORY)
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        record = json.loads(str(raw).rstrip("\0"))
    except ValueError:
        return None  # another program's ImageHistory text
    return record if isinstance(record, dict) and record.get("software") == "oldphoto" else None


def _png_provenance(path: Path) -> str | bytes | None:
    """From the text chunk, else the eXIf chunk; chunks are walked, pixels never decoded."""
    chunks = _png.find_chunks(path, (b"tEXt", b"iTXt", b"zTXt", b"eXIf"))
    for kind in (b"tEXt", b"iTXt", b"zTXt"):
        for body in chunks.get(kind, []):
            item = _png.text_value(body, kind)
            if item is not None and item[0] == _metadata.PROVENANCE_KEY:
                return item[1]
    for body in chunks.get(b"eXIf", []):
        exif = Image.Exif()
        exif.load(b"Exif\0\0" + body)
        if exif.get(_metadata.IMAGE_HISTORY) is not None:
            return exif.get(_metadata.IMAGE_HISTORY)
    return None

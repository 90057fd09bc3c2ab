"""EXIF orientation, EXIF carry-over and the provenance record written into every restored photo."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import numpy as np
from PIL import ExifTags, Image

from oldphoto import __version__

ORIENTATION = 0x0112
SOFTWARE = 0x0131
IMAGE_HISTORY = 0x9213  # TIFF/EP "ImageHistory": where our JSON provenance goes (not the user's fields)
PIXEL_X = 0xA002
PIXEL_Y = 0xA003
RESOLUTION_TAGS = (0x011A, 0x011B)  # XResolution, YResolution (pixels per ResolutionUnit)
RESOLUTION_UNIT = 0x0128  # 1 none, 2 inch (the default), 3 centimetre
_THUMBNAIL_TAGS = (0x0201, 0x0202, 0x0103)  # JPEGInterchangeFormat(+Length), Compression: IFD1 leftovers
# how the input's pixels were stored (a TIFF's IFD0 is its EXIF): none of it is true of the output, whose
# encoder writes its own.  Tiles and strips (offsets into the input file), predictor, sample format and
# range, palette, sub-IFDs, JPEG tables, chroma subsampling, page number; and the ICC profile (34675),
# which the output embeds in its own place, converted where its colour model changed (CMYK into PNG)
_IMAGE_STRUCTURE_TAGS = (0x00FE, 0x00FF, 0x0100, 0x0101, 0x0102, 0x0106, 0x0107, 0x0108, 0x0109, 0x010A,
                         0x0111, 0x0115, 0x0116, 0x0117, 0x0118, 0x0119, 0x011C, 0x0122, 0x0123, 0x0124,
                         0x0125, 0x0129, 0x013D, 0x0140, 0x0142, 0x0143, 0x0144, 0x0145, 0x014A, 0x014C,
                         0x0152, 0x0153, 0x0154, 0x0155, 0x015B, 0x0200, 0x0212, 0x8773)
# a TIFF's XMP, IPTC and Photoshop resources (which the photo's warnings say are not carried over), and
# Photoshop's layers of the unrestored image (ImageSourceData): in a JPEG's EXIF, which must fit one 64 KB
# segment, a scan's XMP history made the write fail ("EXIF data is too long") after the restoration
_UNCARRIED_BLOCKS = (0x02BC, 0x83BB, 0x8649, 0x935C)

PROVENANCE_KEY = "oldphoto:provenance"  # PNG text keyword


def software_name() -> str:
    return f"oldphoto {__version__}"


TRANSPOSING = (5, 6, 7, 8)  # the EXIF orientations that turn the stored image a quarter to display it


def displayed_dpi(dpi: tuple[float, float] | None, orientation: int) -> tuple[float, float] | None:
    """A stored resolution (x, y) as the displayed photo has it: swapped by a quarter turn."""
    if dpi and len(dpi) == 2 and orientation in TRANSPOSING:
        return dpi[1], dpi[0]
    return dpi


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels (``H×W`` or ``H×W×C``) into displayed pixels for EXIF orientation 1-8."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops.get(orientation, ops[1])(array))


def copy_exif(exif: Image.Exif | None) -> Image.Exif:
    """A detached copy (nested Exif/GPS IFDs included) that can be edited freely.  Text that is not ASCII
    (a UTF-8 description, an accented name) is kept as it was stored (:class:`RawText`)."""
    out = Image.Exif()
    if exif is not None and len(exif):
        keep_raw_text(exif)
        out.load(exif.tobytes())
        keep_raw_text(out)
    return out


class RawText(str):
    """EXIF text that is not ASCII, as Pillow reads it (each stored byte one Latin-1 character), written
    back as the bytes it was read from.

    Pillow writes EXIF text as ``value.encode("ascii", "replace")``, every other character becoming ``?``:
    "Grand-mère" stored in UTF-8 (as most software writes it) came back as "Grand-m??re".  Bytes would be
    written as they are, but as UNDEFINED values where Pillow does not know a tag's type (LensModel,
    CameraOwnerName, ...); this stays text, so its type stays ASCII, and an ASCII encoding of it (Pillow's,
    tifffile's) gives the stored bytes.  Text never read from a file, with characters beyond Latin-1, is
    written in UTF-8."""

    def stored(self) -> bytes:
        try:
            return str.encode(self, "latin-1")
        except UnicodeEncodeError:
            return str.encode(self, "utf-8")

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        if encoding.lower().replace("-", "") in ("ascii", "usascii"):
            return self.stored()
        return str.encode(self, encoding, errors)


def keep_raw_text(exif: Image.Exif) -> None:
    """Make the non-ASCII text values of ``exif`` (IFD0, Exif, GPS and Interop IFDs) :class:`RawText`, in
    place, so that they are written back as stored."""
    def raw(values) -> None:
        for tag, value in list(values.items()):
            if isinstance(value, str) and not isinstance(value, RawText) and not value.isascii():
                values[tag] = RawText(value)

    raw(exif)
    for tag in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
        if tag in exif:  # (get_ifd of a missing IFD would add an empty one to the file)
            sub = exif.get_ifd(tag)
            raw(sub)
            if tag == ExifTags.IFD.Exif and ExifTags.IFD.Interop in sub:
                raw(exif.get_ifd(ExifTags.IFD.Interop))


def provenance_record(models: dict[str, str] | None = None, options: dict[str, Any] | None = None,
                      source: str | dict[str, str] | None = None,
                      restoration: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a restored file says about how it was made (a restoration is a reconstruction).

    ``source``: what it was made from; the batch runner gives ``{"path": relative path, "sha256": hash of
    the input file's bytes}``, which is how a rerun tells whether an existing output is this input's.
    ``restoration``: what was done to it (path taken, repaired fraction, fidelity, whose mask: "detected",
    "user" or "none", defects found).
    """
    record: dict[str, Any] = {
        "software": "oldphoto",
        "version": __version__,
        "restored_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "note": "digitally restored: damaged areas and faces are reconstructions, not original detail",
        "models": dict(models or {}),
        "options": dict(options or {}),
    }
    if source:
        record["source"] = source
    if restoration:
        record["restoration"] = dict(restoration)  # path taken, repaired fraction, fidelity, defects
    return record


def provenance_json(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)


def exif_dpi(exif: Image.Exif | None) -> tuple[float, float] | None:
    """The resolution (pixels per inch, as stored) that ``exif`` records, or None: where a format's only
    place for it is its EXIF (WebP), which Pillow does not read into ``info["dpi"]``."""
    if exif is None or not all(tag in exif for tag in RESOLUTION_TAGS):
        return None
    per_inch = {2: 1.0, 3: 2.54}.get(int(exif.get(RESOLUTION_UNIT, 2) or 2))  # 1: no absolute unit
    try:
        x, y = (float(exif[tag]) for tag in RESOLUTION_TAGS)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if per_inch is None or not (x > 0 and y > 0):
        return None
    return x * per_inch, y * per_inch


def with_resolution(exif: Image.Exif, dpi: tuple[float, float]) -> Image.Exif:
    """``exif`` recording ``dpi`` when it records no resolution of its own (WebP holds it only there)."""
    if not any(tag in exif for tag in RESOLUTION_TAGS):
        exif[RESOLUTION_TAGS[0]], exif[RESOLUTION_TAGS[1]] = float(dpi[0]), float(dpi[1])
        exif[RESOLUTION_UNIT] = 2  # inches
    return exif


def output_exif(exif: Image.Exif | None, width: int, height: int, provenance: str | None,
                enlarged: int = 1, transposed: bool = False) -> Image.Exif:
    """The input's EXIF, made true for the output: upright, no thumbnail, new pixel size, provenance;
    ``enlarged`` times the input's resolution (pixels per inch), so that it still prints at its size;
    ``transposed``: the input's orientation (5-8) turned it a quarter, so its X and Y resolutions swap."""
    out = copy_exif(exif)
    for tag in _THUMBNAIL_TAGS + _IMAGE_STRUCTURE_TAGS + _UNCARRIED_BLOCKS:
        out.pop(tag, None)
    if transposed and all(tag in out for tag in RESOLUTION_TAGS):
        out[RESOLUTION_TAGS[0]], out[RESOLUTION_TAGS[1]] = out[RESOLUTION_TAGS[1]], out[RESOLUTION_TAGS[0]]
    if enlarged != 1:
        for tag in RESOLUTION_TAGS:
            if tag in out:
                out[tag] = float(out[tag]) * enlarged
    out[ORIENTATION] = 1
    exif_ifd = out.get_ifd(ExifTags.IFD.Exif)
    exif_ifd[PIXEL_X] = int(width)
    exif_ifd[PIXEL_Y] = int(height)  # Exif.tobytes writes the edited sub-IFD
    if provenance is not None:
        out[SOFTWARE] = software_name()
        out[IMAGE_HISTORY] = provenance
    return out

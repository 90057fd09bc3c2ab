"""XMP and IPTC: the captions, keywords, credits, places and dates that archive software (Lightroom,
Photo Mechanic, digiKam, a museum's catalogue) writes into a photo, carried into its restoration.

Read from JPEG (XMP in APP1, IPTC in Photoshop's APP13 resources), TIFF (tags 700, 33723 and
Photoshop's 34377), PNG (the ``XML:com.adobe.xmp`` text chunk), WebP and HEIC (XMP).  Written into
JPEG and TIFF (both) and PNG and WebP (XMP; they have no standard place for IPTC, and the photo's
warnings say it is not carried there).  The restoration is upright, so the XMP's ``tiff:Orientation``
is set to 1, as the EXIF's is.
"""

from __future__ import annotations

import re
import struct

XMP_PNG_KEY = "XML:com.adobe.xmp"  # the PNG text chunk that holds XMP (iTXt, uncompressed)
JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
JPEG_EXTENDED_XMP_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
PHOTOSHOP_HEADER = b"Photoshop 3.0\x00"
IPTC_RESOURCE = 0x0404  # Photoshop's image resource that holds the IPTC-IIM records
_SEGMENT_MAX = 65533    # bytes of a JPEG segment's payload
IPTC_FAMILIES = ("jpeg", "tiff")  # output families whose files hold IPTC

# tiff:Orientation as an attribute (tiff:Orientation="6") or an element (<tiff:Orientation>6<...>)
_ORIENTATION = re.compile(rb"""(tiff:Orientation\s*=\s*["']|<tiff:Orientation>)\s*\d+\s*"""
                          rb"""(["']|</tiff:Orientation>)""")


def iim(data: bytes | None) -> bytes | None:
    """``data`` when it is IPTC-IIM records (each begins with the tag marker 0x1C), else None."""
    return data if data and data[0] == 0x1C else None


def iptc_in_photoshop(resources: bytes | None) -> bytes | None:
    """The IPTC records among Photoshop's image resources (``8BIM`` blocks: a TIFF's tag 34377, a JPEG's
    APP13 after its header), or None."""
    pos = 0
    data = resources or b""
    while pos + 12 <= len(data) and data[pos:pos + 4] == b"8BIM":
        (resource,) = struct.unpack(">H", data[pos + 4:pos + 6])
        name_length = data[pos + 6]
        pos += 6 + name_length + 1 + (name_length + 1) % 2  # (a Pascal name padded to an even length)
        if pos + 4 > len(data):
            return None
        (size,) = struct.unpack(">I", data[pos:pos + 4])
        pos += 4
        if resource == IPTC_RESOURCE:
            return iim(data[pos:pos + size])
        pos += size + size % 2
    return None


def photoshop_resources(iptc: bytes) -> bytes:
    """Photoshop's image resources holding ``iptc`` alone (what a JPEG's APP13 carries)."""
    return b"8BIM" + struct.pack(">HHI", IPTC_RESOURCE, 0, len(iptc)) + iptc + b"\0" * (len(iptc) % 2)


def upright(xmp: bytes) -> bytes:
    """``xmp`` saying that the photo is upright (``tiff:Orientation`` 1), as its restoration is: the
    orientation it recorded was applied to the pixels, and a program that follows XMP would turn them
    again."""
    return _ORIENTATION.sub(rb"\g<1>1\g<2>", xmp)


def jpeg_segments(xmp: bytes | None, iptc: bytes | None) -> tuple[bytes, list[str]]:
    """The APP1 (XMP) and APP13 (IPTC) segments of a JPEG holding ``xmp`` and ``iptc``, and the names of
    those too large for one segment (left out: JPEG's extended XMP, split over several, is not written)."""
    segments, too_large = b"", []
    for name, header, payload in (("XMP", JPEG_XMP_HEADER, xmp),
                                  ("IPTC", PHOTOSHOP_HEADER, iptc and photoshop_resources(iptc))):
        if not payload:
            continue
        if len(header) + len(payload) > _SEGMENT_MAX:
            too_large.append(name)
            continue
        marker = b"\xff\xe1" if name == "XMP" else b"\xff\xed"
        segments += marker + struct.pack(">H", 2 + len(header) + len(payload)) + header + payload
    return segments, too_large


def insert_into_jpeg(jpeg: bytes, segments: bytes) -> bytes:
    """``jpeg`` with ``segments`` after its leading APPn segments (JFIF, EXIF, ICC), before its tables."""
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF and 0xE0 <= jpeg[pos + 1] <= 0xEF:
        pos += 2 + struct.unpack(">H", jpeg[pos + 2:pos + 4])[0]
    return jpeg[:pos] + segments + jpeg[pos:]

"""Builders for test inputs: hand-made ICC profiles, PNG chunk injection, EXIF with a thumbnail."""

from __future__ import annotations

import struct
import zlib

D50 = (0.9642, 1.0, 0.8249)
# Adobe RGB (1998)-like colorants (D50-adapted) and gamma 563/256: a real wide-gamut, non-sRGB profile
ADOBE_LIKE = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def _xyz(xyz) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in xyz)


def _curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, int(round(gamma * 256))) + b"\0\0"


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return (b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + struct.pack(">II", 0, 0)
            + struct.pack(">HB", 0, 0) + b"\0" * 67)


def _profile(space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, blobs = [], b""
    for sig, data in tags:
        while (offset + len(blobs)) % 4:
            blobs += b"\0"
        entries.append(struct.pack(">4sII", sig, offset + len(blobs), len(data)))
        blobs += data
    body = struct.pack(">I", len(tags)) + b"".join(entries) + blobs
    size = 128 + len(body)
    header = (struct.pack(">I", size) + b"\0\0\0\0" + struct.pack(">I", 0x02100000) + b"mntr" + space
              + b"XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
              + b"".join(_s15(v) for v in D50) + b"\0" * 4 + b"\0" * 44)
    assert len(header) == 128
    return header + body


def adobe_like_icc() -> bytes:
    r, g, b = ADOBE_LIKE
    gamma = 563 / 256
    return _profile(b"RGB ", [
        (b"desc", _desc("Test wide gamut RGB")), (b"wtpt", _xyz(D50)),
        (b"rXYZ", _xyz(r)), (b"gXYZ", _xyz(g)), (b"bXYZ", _xyz(b)),
        (b"rTRC", _curve(gamma)), (b"gTRC", _curve(gamma)), (b"bTRC", _curve(gamma)),
        (b"cprt", b"text\0\0\0\0no copyright\0"),
    ])


def gray_gamma_icc(gamma: float = 1.8) -> bytes:
    return _profile(b"GRAY", [(b"desc", _desc(f"Test gray gamma {gamma}")), (b"wtpt", _xyz(D50)),
                              (b"kTRC", _curve(gamma)), (b"cprt", b"text\0\0\0\0no copyright\0")])


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def insert_png_chunks(png: bytes, chunks: list[bytes]) -> bytes:
    """Put chunks right after IHDR (signature 8 + IHDR 25 bytes)."""
    return png[:33] + b"".join(chunks) + png[33:]


def exif_with_thumbnail(orientation: int, thumbnail: bytes) -> bytes:
    """Raw little-endian EXIF (with 'Exif\\0\\0') whose IFD0 holds Orientation+Make and IFD1 a thumbnail."""
    make = b"TestCam\0"
    # layout: header(8) | IFD0 (2 + 2*12 + 4) | make | IFD1 (2 + 3*12 + 4) | thumbnail
    ifd0_at = 8
    make_at = ifd0_at + 2 + 24 + 4
    ifd1_at = make_at + len(make)
    thumb_at = ifd1_at + 2 + 36 + 4
    ifd0 = (struct.pack("<H", 2) + struct.pack("<HHIHH", 0x010F, 2, len(make), 0, 0)[:8]
            + struct.pack("<I", make_at) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
            + struct.pack("<I", ifd1_at))
    ifd1 = (struct.pack("<H", 3) + struct.pack("<HHIHH", 0x0103, 3, 1, 6, 0)
            + struct.pack("<HHII", 0x0201, 4, 1, thumb_at)
            + struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail))
            + struct.pack("<I", 0))
    tiff = b"II*\0" + struct.pack("<I", ifd0_at) + ifd0 + make + ifd1 + thumbnail
    return b"Exif\0\0" + tiff


def insert_jpeg_app1(jpeg: bytes, exif: bytes) -> bytes:
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:]

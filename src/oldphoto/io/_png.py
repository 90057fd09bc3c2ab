"""A small PNG writer (8/16-bit gray, gray+alpha, RGB, RGBA) with our own metadata chunks.

Pillow cannot hold 16-bit RGB images, so it cannot write 16-bit colour PNGs; this encoder writes every
PNG we produce, which also gives us one place that decides which chunks (iCCP, eXIf, pHYs, text) go in.
Rows are Paeth-filtered (vectorised with numpy) and deflated in blocks so memory stays bounded.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_BLOCK_ROWS = 256


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC over type+data."""
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def text_chunk(keyword: str, text: str) -> bytes:
    """tEXt when the text is Latin-1, otherwise uncompressed iTXt (UTF-8)."""
    key = keyword.encode("latin-1", "replace")[:79]
    try:
        return chunk(b"tEXt", key + b"\0" + text.encode("latin-1"))
    except UnicodeEncodeError:
        return chunk(b"iTXt", key + b"\0\0\0\0\0" + text.encode("utf-8"))


def iccp_chunk(icc: bytes, name: str = "ICC profile") -> bytes:
    return chunk(b"iCCP", name.encode("latin-1")[:79] + b"\0\0" + zlib.compress(icc))


def phys_chunk(dpi: tuple[float, float]) -> bytes:
    ppm = [max(1, int(round(d / 0.0254))) for d in dpi]
    return chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1))


def _paeth_filter(rows: np.ndarray, previous: np.ndarray | None, bpp: int) -> np.ndarray:
    """Paeth-filter byte rows (``n×stride`` uint8); ``previous`` is the raw row above the block."""
    x = rows.astype(np.int16)
    up = np.zeros_like(x)
    if previous is not None:
        up[0] = previous
    up[1:] = x[:-1]
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    upleft = np.zeros_like(x)
    upleft[:, bpp:] = up[:, :-bpp]
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    out = np.empty((x.shape[0], x.shape[1] + 1), np.uint8)
    out[:, 0] = 4  # filter type Paeth
    out[:, 1:] = ((x - pred) & 0xFF).astype(np.uint8)
    return out


def encode_png(data: np.ndarray, chunks: Iterable[bytes] = (), level: int = 6) -> bytes:
    """Encode ``H×W`` / ``H×W×C`` uint8 or uint16 pixels; ``chunks`` go between IHDR and IDAT."""
    if data.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"PNG pixels must be uint8 or uint16, got {data.dtype}")
    pixels = data if data.ndim == 3 else data[:, :, None]
    h, w, c = pixels.shape
    if c not in _COLOUR_TYPE:
        raise ValueError(f"PNG needs 1-4 channels, got {c}")
    depth = 16 if data.dtype == np.uint16 else 8
    raw = np.ascontiguousarray(pixels.astype(">u2") if depth == 16 else pixels).view(np.uint8).reshape(h, -1)
    bpp = c * depth // 8
    compressor = zlib.compressobj(level)
    idat = []
    previous = None
    for start in range(0, h, _BLOCK_ROWS):
        block = raw[start:start + _BLOCK_ROWS]
        idat.append(compressor.compress(_paeth_filter(block, previous, bpp).tobytes()))
        previous = block[-1]
    idat.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, depth, _COLOUR_TYPE[c], 0, 0, 0)
    return (PNG_SIGNATURE + chunk(b"IHDR", ihdr) + b"".join(chunks)
            + chunk(b"IDAT", b"".join(idat)) + chunk(b"IEND", b""))


def png_header(head: bytes) -> tuple[int, int] | None:
    """(bit depth, colour type) from the first 26+ bytes of a PNG, or None if it is not one."""
    if len(head) < 26 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]

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

from oldphoto.io import _xmp_iptc

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_BLOCK_BYTES = 1 << 20  # rows are filtered in blocks of about this many bytes (int16 temporaries: ~12x)


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


def xmp_chunk(xmp: bytes) -> bytes:
    """The XMP packet's chunk: uncompressed iTXt keyed ``XML:com.adobe.xmp``, as the XMP standard puts it."""
    return chunk(b"iTXt", _xmp_iptc.XMP_PNG_KEY.encode("latin-1") + b"\0\0\0\0\0" + xmp)


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
    rows = max(1, _BLOCK_BYTES // max(raw.shape[1], 1))
    for start in range(0, h, rows):
        block = raw[start:start + rows]
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


# ------------------------------------------------------------------------------------------- checking

_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7 passes: (first column, column step, first row, row step)
_ADAM7 = ((0, 8, 0, 8), (4, 8, 0, 8), (0, 4, 4, 8), (2, 4, 0, 4), (0, 2, 2, 4), (1, 2, 0, 2), (0, 1, 1, 2))
_INFLATE_STEP = 1 << 20


def raw_size(width: int, height: int, depth: int, colour_type: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines (one filter byte per row) that the IDAT stream must inflate to."""
    bits = depth * _CHANNELS[colour_type]

    def rows(w: int, h: int) -> int:
        return 0 if w <= 0 or h <= 0 else h * (1 + (w * bits + 7) // 8)

    if not interlaced:
        return rows(width, height)
    return sum(rows((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy) for x0, dx, y0, dy in _ADAM7)


def check_data(path) -> str | None:
    """Why the image data of the PNG at ``path`` is incomplete, or None when it holds every row.

    Pillow and libpng accept a zlib stream that ends properly but holds fewer rows than the header
    promises (the missing rows come out black), so the stream is inflated here, without keeping the
    output, and its length compared with the header's.  Memory stays bounded whatever the header says.
    """
    with open(path, "rb") as fh:
        if fh.read(8) != PNG_SIGNATURE:
            return None
        header = None
        inflater = zlib.decompressobj()
        produced = 0
        expected = 0
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break  # the file ends before IEND
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IHDR":
                ihdr = fh.read(length)
                if len(ihdr) < 13 or ihdr[9] not in _CHANNELS:
                    return None  # left to the decoder, which names the problem
                width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", ihdr[:13])
                header = (width, height, interlace == 1)
                expected = raw_size(width, height, depth, colour_type, interlace == 1)
                fh.seek(4, 1)
            elif kind == b"IDAT" and header is not None:
                left = length
                while left > 0:
                    data = fh.read(min(left, _INFLATE_STEP))
                    if not data:
                        break
                    left -= len(data)
                    try:
                        produced += len(inflater.decompress(data, _INFLATE_STEP))
                        while inflater.unconsumed_tail and produced < expected:
                            produced += len(inflater.decompress(inflater.unconsumed_tail, _INFLATE_STEP))
                    except zlib.error as exc:
                        return f"corrupt PNG image data ({exc})"
                    if produced >= expected:
                        return None
                fh.seek(4, 1)
            elif kind == b"IEND":
                break
            else:
                fh.seek(length + 4, 1)
    if header is None or produced >= expected:
        return None
    width, height, interlaced = header
    if interlaced:
        return (f"truncated PNG: the image data holds {100 * produced / expected:.0f} % of the "
                f"{width}x{height} pixels its header announces")
    row_bytes = expected // height
    return (f"truncated PNG: the image data holds {produced // row_bytes} of the {height} rows its header "
            f"announces")


def find_chunks(path, kinds: Iterable[bytes]) -> dict[bytes, list[bytes]]:
    """The bodies of the chunks of ``kinds`` (e.g. tEXt, eXIf), read without decoding any pixels."""
    wanted = set(kinds)
    found: dict[bytes, list[bytes]] = {}
    with open(path, "rb") as fh:
        if fh.read(8) != PNG_SIGNATURE:
            return found
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IEND":
                break
            if kind in wanted:
                found.setdefault(kind, []).append(fh.read(length))
                fh.seek(4, 1)
            else:
                fh.seek(length + 4, 1)
    return found


def text_value(body: bytes, kind: bytes) -> tuple[str, str] | None:
    """(keyword, text) of a tEXt, zTXt or iTXt chunk body, or None when it is malformed."""
    key, sep, rest = body.partition(b"\0")
    if not sep:
        return None
    keyword = key.decode("latin-1")
    try:
        if kind == b"tEXt":
            return keyword, rest.decode("latin-1")
        if kind == b"zTXt":
            return keyword, zlib.decompress(rest[1:]).decode("latin-1")
        if kind == b"iTXt":
            compressed, _method = rest[0], rest[1]
            _lang, _, rest = rest[2:].partition(b"\0")
            _translated, _, text = rest.partition(b"\0")
            return keyword, (zlib.decompress(text) if compressed else text).decode("utf-8")
    except (zlib.error, UnicodeDecodeError, IndexError):
        return None
    return None

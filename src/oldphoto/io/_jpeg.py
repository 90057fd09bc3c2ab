"""Is a JPEG's image data complete?  Pillow cannot tell.

libjpeg treats a scan that stops early as a *warning*: it fills the missing blocks with flat grey and
goes on, and Pillow silences libjpeg's warnings, so a JPEG cut at 60 % and closed with an end marker
decodes "successfully" with a grey bottom.  Two checks, both without a full-size decode:

* the structure: every coefficient of every component must be sent by some scan down to the last bit
  (a progressive JPEG cut between two scans has no broken scan, only missing ones);
* the entropy data: libjpeg-turbo (through ``simplejpeg``, with warnings raised as errors) decodes the
  photo at 1/8 scale, which still reads every block; its "premature end" warnings mean truncation.

A file that is cut short is called "truncated"; one whose bytes are wrong without being missing (a
header segment whose length runs past the end marker, no marker where one must be) is called "damaged"
(``DAMAGED``): copying it again from its source may help, while waiting for the rest of it will not.
"""

from __future__ import annotations

import re
import struct

_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")  # a marker after entropy-coded data (not FF00, RSTn)
_SOF = {0xC0, 0xC1, 0xC2, 0xC5, 0xC6, 0xC9, 0xCA, 0xCD, 0xCE}  # DCT frames (lossless ones are not checked)
_STANDALONE = set(range(0xD0, 0xD8)) | {0x01}
PREMATURE = "premature end"
DAMAGED = "damaged JPEG, or not a JPEG"
CUT_IN_HEADER = "truncated JPEG: the file is cut short inside its header"


def header_reason(data: bytes, detail: str = "") -> str:
    """Why a file that starts as a JPEG has a header that Pillow cannot read: cut short (the segments
    run off the end of the file) or damaged (they do not chain, or the file is whole and yet refused).
    ``detail``: Pillow's own words, when they say something."""
    pos = 2
    while True:
        if pos >= len(data):
            return CUT_IN_HEADER
        if data[pos] != 0xFF:
            return f"{DAMAGED}: no marker at byte {pos} of its header, where one must be"
        if pos + 1 >= len(data):
            return CUT_IN_HEADER
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker < 0xC0 or marker in (0xD8, 0xD9):  # (0x01-0xBF: reserved, used by no JPEG)
            return f"{DAMAGED}: no valid marker at byte {pos} of its header (0xFF{marker:02X})"
        if pos + 4 > len(data):
            return CUT_IN_HEADER
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2:
            return f"{DAMAGED}: a header segment at byte {pos} has an impossible length"
        if pos + 2 + length > len(data):
            if data.endswith(b"\xff\xd9"):  # a whole file (it has its end marker): the length is wrong
                return f"{DAMAGED}: a header segment at byte {pos} runs past the end of the file"
            return CUT_IN_HEADER
        if marker == 0xDA:  # the image data begins: every header segment is there
            break
        pos += 2 + length
    return f"{DAMAGED}: its header cannot be read" + (f" ({detail})" if detail else "")


def _missing_coefficients(data: bytes) -> str | None:
    """Why the scans of the first image do not cover every coefficient, or None (also when unsure)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    components: dict[int, list[bool]] = {}
    scans = 0
    while pos < len(data) - 1:
        if data[pos] != 0xFF:
            return None  # not where a marker should be: the decoder will say what is wrong
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        pos += 2
        if marker in _STANDALONE:
            continue
        if marker == 0xD9:  # end of image
            break
        if pos + 2 > len(data):
            return "truncated JPEG: the file ends inside a header segment"
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        segment = data[pos + 2:pos + length]
        if len(segment) < length - 2:
            if data.endswith(b"\xff\xd9"):  # a whole file: a wrong length, or a wrong marker in the data
                return f"{DAMAGED}: a segment at byte {pos - 2} runs past the end of the file"
            return "truncated JPEG: the file ends inside a header segment"
        pos += length
        if marker in _SOF and not components and len(segment) >= 6:
            count = segment[5]
            components = {segment[6 + 3 * i]: [False] * 64 for i in range(count) if 8 + 3 * i < len(segment)}
        elif marker in (0xC3, 0xC7, 0xCB, 0xCF, 0xDE):
            return None  # lossless or hierarchical: not checked here
        elif marker == 0xDA and components and len(segment) >= 1:
            count = segment[0]
            tail = segment[1 + 2 * count:1 + 2 * count + 3]
            if len(tail) < 3:
                return None  # a malformed scan header: the decoder will say what is wrong
            ids = [segment[1 + 2 * i] for i in range(count)]
            start, end, approx = tail
            if (not ids or any(cid not in components for cid in ids) or start > end or end > 63
                    or approx >> 4 > 13 or approx & 0x0F > 13):
                return f"{DAMAGED}: scan {scans + 1} has a malformed header"
            scans += 1
            if approx & 0x0F == 0:  # this scan brings its coefficients down to the last bit
                for cid in ids:
                    if cid in components:
                        for k in range(start, min(end, 63) + 1):
                            components[cid][k] = True
            found = _MARKER.search(data, pos)
            if found is None:
                return "truncated JPEG: the file ends inside the image data (no end marker)"
            pos = found.start()
    else:
        if components:
            return "truncated JPEG: the file ends before its end marker"
    if any(not all(coverage) for coverage in components.values()):
        # (its end marker is there: cut short between two scans and closed, or a scan header damaged)
        return (f"truncated JPEG, or damaged: the file ends after {scans} scan(s), before every coefficient "
                "of the image was sent in full")
    return None


def check_data(data: bytes) -> tuple[str | None, list[str]]:
    """(why the JPEG is truncated or damaged, or None; warnings that do not make it unusable)."""
    reason = _missing_coefficients(data)
    if reason:
        return reason, []
    try:
        import simplejpeg
    except ImportError:
        return None, ["JPEG completeness not checked: the simplejpeg package is not installed"]
    try:
        _, _, space, _ = simplejpeg.decode_jpeg_header(data)
        colour = "GRAY" if space == "Gray" else "CMYK" if space in ("CMYK", "YCCK") else "RGB"
        simplejpeg.decode_jpeg(data, colorspace=colour, min_factor=8, min_height=1, min_width=1, strict=True)
    except ValueError as exc:
        message = str(exc).strip()
        if "premature end of jpeg file" in message.lower():  # the file itself ends
            return f"truncated JPEG: the file is cut short inside its image data (libjpeg: {message})", []
        if PREMATURE in message.lower():  # an end marker too soon: cut short and closed, or damaged
            return (f"truncated JPEG, or damaged: its image data stops before its end (libjpeg: {message})",
                    [])
        return None, [f"JPEG decoder warning: {message}"]
    return None, []

"""HEIC/HEIF photos, what phones save by default (an old print photographed with an iPhone), read through
pillow-heif when it is installed (``pip install 'oldphoto[heif]'``).

Only reading: a restoration of a HEIC photo is written as JPEG (``--format same``), which every program
opens, as BMP and GIF become PNG.  pillow-heif turns the photo upright itself (the container's rotation
and mirroring), leaving EXIF orientation 1, and gives 8-bit RGB(A) (10-bit HDR photos are converted).
"""

from __future__ import annotations

# ISO base media file brands of HEIF still images (HEVC-coded, and the generic image brands)
_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
MISSING = "a HEIC/HEIF photo: reading it needs pillow-heif (pip install 'oldphoto[heif]')"
_registered: bool | None = None


def is_heif(head: bytes) -> bool:
    """Whether a file's first bytes are those of a HEIF image (an ``ftyp`` box with a HEIF brand)."""
    return len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _BRANDS


def register() -> bool:
    """Teach Pillow to open HEIF files, once; False when pillow-heif is not installed."""
    global _registered
    if _registered is None:
        try:
            import pillow_heif
        except ImportError:
            _registered = False
        else:
            pillow_heif.register_heif_opener()
            _registered = True
    return _registered

"""Photo files: read any supported photo into sRGB float pixels, write restorations back faithfully.

Public API: ``read_photo``, ``write_photo``, ``Photo``, ``PhotoError``, ``read_provenance``,
``provenance_record``, ``output_family``, ``output_suffix``, ``IMAGE_EXTENSIONS``, ``DEFAULT_MAX_PIXELS``.
"""

from oldphoto.io._metadata import apply_orientation, provenance_record
from oldphoto.io.photo import (
    DEFAULT_JPEG_QUALITY,
    DEFAULT_MAX_PIXELS,
    EXTENSION_FAMILY,
    IMAGE_EXTENSIONS,
    MIN_SIDE,
    Photo,
    PhotoError,
    atomic_write,
    has_colour,
    normalise_format,
    output_family,
    output_suffix,
    read_photo,
    read_provenance,
    too_small,
    write_photo,
)

__all__ = [
    "DEFAULT_JPEG_QUALITY", "DEFAULT_MAX_PIXELS", "EXTENSION_FAMILY", "IMAGE_EXTENSIONS", "MIN_SIDE",
    "Photo", "PhotoError",
    "apply_orientation", "atomic_write", "has_colour", "normalise_format", "output_family", "output_suffix",
    "provenance_record", "read_photo", "read_provenance", "too_small", "write_photo",
]

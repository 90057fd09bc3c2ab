"""Mask files: the user's defect mask found and read for a photo (``--mask-dir``), and the repaired mask
named and written beside its output (``--save-mask``)."""

from __future__ import annotations

import fnmatch
import glob
from pathlib import Path
from typing import Any

import numpy as np

from oldphoto import masks
from oldphoto.batch.inputs import Job
from oldphoto.io import IMAGE_EXTENSIONS, PhotoError, atomic_write, read_photo, read_provenance
from oldphoto.io._metadata import PROVENANCE_KEY, provenance_json


def find_mask(mask_dir: Path, job: Job) -> Path | None:
    """The user mask for a job, beside the same relative folder first, PNG preferred:

    * a mask ``--save-mask`` wrote for this very input (``<stem>.mask.*``, or ``<stem>_<...>.mask.*``
      when outputs of one stem collided; its provenance names the input), so that an output folder can
      be given back as ``--mask-dir`` once its masks are edited, and another input's mask is not taken;
    * else, among the files oldphoto did not write (a restored photo is never a mask), the collision
      name of this input's suffix ``<stem>_<suffix>.mask.*``, then ``<stem>.mask.*``, then ``<stem>.*``,
      by exact stem: ``a.2.png`` is the mask of ``a.2.jpg``, not of ``a.jpg``; the photo itself is never
      its own mask (masks kept beside the photos, ``--mask-dir`` their folder).  An image editor that
      saves an edited mask drops its provenance: ``a_png.mask.png`` is still ``a.png``'s, not ``a.jpg``'s
      ``a.mask.png``.
    """
    stem, source = glob.escape(job.input.stem), job.relative.as_posix()
    suffix = glob.escape(job.input.suffix.lstrip(".").lower())
    itself = job.input.resolve()
    for folder in (mask_dir / job.relative.parent, mask_dir):
        saved = [p for p in _images(folder, stem + ".mask") + _images(folder, stem + "_*.mask")
                 if (_provenance_of(p) or {}).get("source", {}).get("path") == source]
        if saved:
            return _png_first(saved)
        for name in (f"{stem}_{suffix}.mask", stem + ".mask", stem):
            own = [p for p in _images(folder, name) if p.resolve() != itself and _provenance_of(p) is None]
            if own:
                return _png_first(own)
    return None


def _images(folder: Path, stem: str) -> list[Path]:
    """The image files in ``folder`` whose stem matches the glob pattern ``stem``, in name order."""
    return sorted(p for p in folder.glob(stem + ".*")
                  if p.suffix.lower() in IMAGE_EXTENSIONS and fnmatch.fnmatchcase(p.stem, stem))


def _provenance_of(path: Path) -> dict[str, Any] | None:
    try:
        return read_provenance(path)
    except Exception:  # not readable as ours: a user's file (read_mask says what is wrong with it)
        return None


def _png_first(paths: list[Path]) -> Path:
    return next((p for p in paths if p.suffix.lower() == ".png"), paths[0])


def read_mask(path: Path, size: tuple[int, int], max_pixels: int | None) -> np.ndarray:
    """A bool H×W mask (white = defect), oriented like the displayed photo, of exactly ``size``."""
    mask_photo = read_photo(path, max_pixels=max_pixels)
    if mask_photo.size != size:
        # a mask drawn on a sideways photo's stored pixels, before its EXIF orientation turned it
        turned = mask_photo.size == size[::-1] and size[0] != size[1]
        raise PhotoError(path, f"mask is {mask_photo.size[0]}x{mask_photo.size[1]} but the photo is "
                               f"{size[0]}x{size[1]}" + (" as it is shown (its EXIF orientation applied): "
                                                          "turn the mask the same way" if turned else ""))
    return masks.user_mask(mask_photo.pixels, mask_photo.pixels.shape[:2], name=path.name)


def saved_mask_path(output: Path) -> Path:
    """Where --save-mask puts an output's defect mask: beside it, ``<stem>.mask.png``."""
    return output.with_name(f"{output.stem}.mask.png")


def mask_paths(output: Path) -> tuple[Path, Path]:
    """``<stem>.mask.png``, then, when another output of that stem (``a.jpg`` beside ``a.tif``) holds it,
    ``<stem>_<suffix>.mask.png``, like the outputs' own collision names."""
    suffix = output.suffix.lstrip(".").lower()
    return saved_mask_path(output), output.with_name(f"{output.stem}_{suffix}.mask.png")


def write_mask(path: Path, mask: np.ndarray | None, size: tuple[int, int],
               provenance: dict[str, Any] | None = None, replace: bool = True) -> None:
    """An 8-bit gray PNG of the displayed photo's size, white = repaired (all black: nothing was).
    ``provenance``: the output's record, in the PNG text chunk the photos use, so that a rerun knows the
    mask for its own (``outputs.leave_alone``) and never replaces a file of the same name it did not write."""
    from PIL import Image, PngImagePlugin

    width, height = size
    pixels = np.zeros((height, width), np.uint8) if mask is None else mask.astype(np.uint8) * 255
    if pixels.shape != (height, width):
        raise ValueError(f"mask is {pixels.shape[1]}x{pixels.shape[0]}, the photo {width}x{height}")
    info = None
    if provenance is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text(PROVENANCE_KEY, provenance_json(provenance))  # iTXt when not Latin-1
    atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG", pnginfo=info),
                 replace=replace)

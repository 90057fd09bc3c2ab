"""Training data: photo pools held in memory, random crops and online degradation.

Sources of clean photos, in order of preference:

* ``corpus:train`` / ``corpus:heldout``: the project's photo corpus (``oldphoto data build``; split from
  :mod:`oldphoto.synth.corpus`);
* a directory of images (``--data DIR`` or a config ``photos`` entry);
* ``skimage``: the CC0 photographs inside scikit-image (a fallback when the corpus is not built).

Real old photos (domain R of VAE_A) come from the config's ``real_old`` sources, then from the folder
``$OLDPHOTO_REAL_OLD`` (default: ``examples/real_old`` of a source checkout), see :func:`real_old_sources`.
Degradations are synthesised on the fly with :mod:`oldphoto.synth` so every batch is new; all randomness
comes from the ``numpy.random.Generator`` the trainer passes in, so a seed reproduces the stream.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from oldphoto.tensors import images_to_batch


class DataError(RuntimeError):
    """A data source is missing or empty."""


def real_old_sources(configured: list[str] | str | None = None) -> list[str]:
    """Sources of real old photos, in order: ``configured`` (a config's ``real_old``), then the default
    folder ($OLDPHOTO_REAL_OLD, else a source checkout's examples/real_old) when there is one."""
    from oldphoto.synth.sources import default_real_old_folder

    sources = [configured] if isinstance(configured, str) else list(configured or [])
    folder = default_real_old_folder()
    if folder is not None and str(folder) not in sources:
        sources.append(str(folder))
    if not sources:
        raise DataError("no real old photos: build the corpus (`oldphoto data build --old FOLDER`), set "
                        "OLDPHOTO_REAL_OLD to a folder of them, or pass --set real_old=FOLDER")
    return sources


def _load_rgb(path: Path, max_side: int) -> np.ndarray:
    """A photo as ``oldphoto restore`` reads it (EXIF orientation, colour management), fitted."""
    from oldphoto.io import PhotoError, read_photo

    try:
        return _fit(read_photo(path).pixels, max_side)
    except PhotoError as exc:
        raise DataError(str(exc)) from exc


def _fit(img: np.ndarray, max_side: int) -> np.ndarray:
    """uint8 RGB with the longest side ≤ ``max_side`` (float [0, 1] and grey inputs accepted)."""
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.ascontiguousarray(img[..., :3])
    scale = max_side / max(img.shape[:2])
    if scale < 1:
        pil = Image.fromarray(img)
        pil = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))),
                         Image.Resampling.BICUBIC)
        img = np.asarray(pil)
    return img


def _split_of(key: str) -> str:
    from oldphoto.synth.corpus import split_of

    return split_of(key)


def _skimage_photos(max_side: int, split: str = "all") -> list[np.ndarray]:
    """scikit-image's CC0 photos, the corpus' list (:func:`oldphoto.synth.sources.skimage_photos`);
    ``split`` uses the corpus rule on the same keys (``skimage/<file name>``)."""
    from oldphoto.synth.corpus import CorpusError
    from oldphoto.synth.sources import skimage_photos

    try:
        found = skimage_photos()
    except CorpusError:  # scikit-image is not installed
        return []
    return [_fit(f.load(), max_side) for f in found
            if split == "all" or _split_of(f"skimage/{f.name}") == split]


def default_corpus_root() -> Path:
    """``$OLDPHOTO_CORPUS``, else ``assets/corpus`` (or a pack in ``assets``) of the source checkout oldphoto
    runs from, else of the current folder, where ``oldphoto data build`` writes it by default (an
    installed package has no checkout: ``parents[3]`` of this file is then ``lib/pythonX.Y``)."""
    env = os.environ.get("OLDPHOTO_CORPUS")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[3]  # src/oldphoto/train/data.py -> the checkout
    base = checkout if (checkout / "pyproject.toml").is_file() else Path("")
    for cand in (base / "assets" / "corpus", base / "assets"):
        if (cand / "manifest.json").is_file():
            return cand
    return base / "assets" / "corpus"


def _corpus_images(spec: str, max_side: int) -> list[np.ndarray]:
    """``corpus:<split>`` or ``corpus:<root>:<split>`` (clean photos); ``real_old:...`` for old photos."""
    from oldphoto.synth.corpus import Corpus, CorpusError

    kind, rest = spec.split(":", 1)
    root, _, split = rest.rpartition(":")
    root_path = Path(root) if root else default_corpus_root()
    try:
        corpus = Corpus(root_path)
        images = corpus.clean(split) if kind == "corpus" else corpus.real_old(split)
        return [_fit(images[i], max_side) for i in range(len(images))]
    except (CorpusError, ValueError, OSError) as exc:
        raise DataError(f"{spec}: {exc}") from exc


def load_pool(source: str | Path, max_side: int = 768, min_side: int = 64) -> list[np.ndarray]:
    """Decode all photos of ``source`` into uint8 RGB arrays (longest side ≤ ``max_side``).

    ``source``: a folder of photos, or of a corpus or its packed crops (their training split);
    ``skimage`` / ``skimage:train`` / ``skimage:heldout``; ``corpus:<split>`` or ``corpus:<root>:<split>``;
    ``real_old:<split>`` (the corpus' real old photos).
    """
    source = str(source)
    names: list[str] = []  # a folder's file names, to say which photos are left out
    if source == "skimage" or source.startswith("skimage:"):
        images = _skimage_photos(max_side, source.split(":", 1)[1] if ":" in source else "all")
    elif source.startswith(("corpus:", "real_old:")):
        images = _corpus_images(source, max_side)
    elif _is_corpus(Path(source)):
        # a corpus (`oldphoto data build`) or its packed crops (`oldphoto data patches`) given as a folder:
        # its training split (read as a folder of images, the held-out photos were trained on with the
        # rest, and packed crops were no images at all: "no usable photos"; a training review)
        images = _corpus_images(f"corpus:{source}:train", max_side)
    else:
        root = Path(source)
        if not root.is_dir():
            raise DataError(f"{root}: photo directory not found")
        from oldphoto.io import IMAGE_EXTENSIONS

        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        images = []
        for path in paths:
            try:  # a broken file is reported and left out, as `oldphoto data build` does
                images.append(_load_rgb(path, max_side))
                names.append(str(path))
            except DataError as exc:
                warn(f"skipped {exc}")
    small = [i for i, im in enumerate(images) if min(im.shape[:2]) < min_side]
    if small:
        which = (": " + ", ".join(names[i] for i in small[:5]) + (", …" if len(small) > 5 else "")
                 if names else "")
        warn(f"{source}: {len(small)} photo(s) smaller than {min_side} px (the crop) on their short side "
              f"left out{which}")
    images = [im for im in images if min(im.shape[:2]) >= min_side]
    if not images:
        raise DataError(f"no usable photos (min side {min_side}) in {source}")
    return images


def _is_corpus(root: Path) -> bool:
    """Whether the folder ``root`` holds a corpus or packed crops (their manifest says so)."""
    from oldphoto.synth.corpus import Corpus, CorpusError

    try:
        Corpus(root)
    except CorpusError:
        return False
    return True


def warn(text: str) -> None:
    """A warning line on stderr (training's data and export say what they left out or what does not fit)."""
    print(f"warning: {text}", file=sys.stderr, flush=True)


def resolve_pool(sources: list[str] | str, max_side: int, min_side: int) -> tuple[list[np.ndarray], str]:
    """First source in ``sources`` that yields photos (so a config can say ["corpus:train", "skimage"])."""
    if isinstance(sources, str):
        sources = [sources]
    errors = []
    for i, src in enumerate(sources):
        try:
            return load_pool(src, max_side, min_side), src
        except DataError as exc:
            errors.append(str(exc))
            if i + 1 < len(sources):  # falling back (e.g. to scikit-image's photos) says why
                warn(f"{exc}; trying {sources[i + 1]}")
    raise DataError("no photo source worked: " + "; ".join(errors))


def random_crop(pool: list[np.ndarray], rng: np.random.Generator, size: int) -> np.ndarray:
    """A random photo of ``pool``, then :func:`oldphoto.synth.corpus.random_crop` of it (``size``²,
    upscaled when the photo is smaller, random h-flip); float32 [0, 1]."""
    from oldphoto.synth.corpus import random_crop as crop

    return crop(pool[int(rng.integers(len(pool)))], size, rng)


# ---------------------------------------------------------------------------------------------------------
# degradations (thin adapters over oldphoto.synth, so that the training stream and the evaluation
# protocol use the same synthesis)

def synthesize(clean: np.ndarray, rng: np.random.Generator, kind: str = "unstructured",
               options: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``oldphoto.synth.degrade`` of one crop: (degraded, target, mask).

    ``target`` is the clean crop with the photographic tone (grey/sepia) the synthesis chose, which the
    restoration must keep; ``mask`` is float32 H×W in {0, 1} (1 = structured defect).
    ``kind``: "unstructured" (quality mapping), "mixed" (everything), "oldlook", "structured".
    ``options``: other :class:`~oldphoto.synth.degrade.DegradeConfig` fields (a stage config's ``synth``
    section, e.g. ``{"p_content": 0.7}``).
    """
    from oldphoto.synth.degrade import degrade

    out = degrade(clean, rng, synth_config(kind, options))
    mask = (np.asarray(out.mask, dtype=np.float32) > 0.5).astype(np.float32)
    return out.degraded, out.clean, mask


_CONFIGS: dict = {}


def synth_config(kind: str, options: dict[str, Any] | None = None):
    """The (cached) ``DegradeConfig`` of ``kind`` with ``options``; JSON lists become tuples."""
    from oldphoto.synth.degrade import DegradeConfig

    opts = {k: tuple(v) if isinstance(v, list) else v for k, v in (options or {}).items()}
    key = (kind, tuple(sorted(opts.items())))
    if key not in _CONFIGS:
        if "kind" in opts:
            raise ValueError("synth options: set the kind with 'degradation', not 'synth.kind'")
        try:
            _CONFIGS[key] = DegradeConfig(kind=kind, **opts)
        except TypeError as exc:  # an unknown field name
            raise ValueError(f"synth options: {exc}") from exc
    return _CONFIGS[key]


def to_batch(images: list[np.ndarray]) -> torch.Tensor:
    """List of H×W×C float [0, 1] -> N×C×H×W in [-1, 1] (:func:`oldphoto.tensors.images_to_batch`)."""
    return images_to_batch(images)


def gray(image: np.ndarray) -> np.ndarray:
    """RGB -> luma (:func:`oldphoto.luma.luma`, the official detector's input)."""
    from oldphoto.luma import luma

    return luma(image)


def infinite(fn, *args) -> Iterator:
    while True:
        yield fn(*args)

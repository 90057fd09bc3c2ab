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
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# scikit-image photographs that ship in the wheel (the rest are pooch downloads or non-photos)
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
                  "hubble_deep_field", "immunohistochemistry", "camera")


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
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = max_side / max(im.size)
            if scale < 1:
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                               Image.Resampling.BICUBIC)
            return np.asarray(im, dtype=np.uint8).copy()
    except OSError as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from exc


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
    """scikit-image's CC0 photos; ``split`` uses the corpus hash rule on the key ``skimage/<name>``."""
    from skimage import data as skdata

    out = []
    for name in SKIMAGE_PHOTOS:
        if split != "all" and _split_of(f"skimage/{name}") != split:
            continue
        try:
            img = getattr(skdata, name)()
        except Exception:  # noqa: BLE001 - some are pooch downloads, unavailable offline
            continue
        if isinstance(img, tuple):
            img = img[0]
        if img.dtype != np.uint8:
            img = np.clip(img / max(1e-9, float(img.max())), 0, 1)
        out.append(_fit(np.asarray(img), max_side))
    return out


def default_corpus_root() -> Path:
    env = os.environ.get("OLDPHOTO_CORPUS")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    for cand in (repo / "assets" / "corpus", repo / "assets"):
        if (cand / "manifest.json").is_file():
            return cand
    return repo / "assets" / "corpus"


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

    ``source``: a folder; ``skimage`` / ``skimage:train`` / ``skimage:heldout``; ``corpus:<split>`` or
    ``corpus:<root>:<split>``; ``real_old:<split>`` (the corpus' real old photos).
    """
    source = str(source)
    if source == "skimage" or source.startswith("skimage:"):
        images = _skimage_photos(max_side, source.split(":", 1)[1] if ":" in source else "all")
    elif source.startswith(("corpus:", "real_old:")):
        images = _corpus_images(source, max_side)
    else:
        root = Path(source)
        if not root.is_dir():
            raise DataError(f"{root}: photo directory not found")
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        images = [_load_rgb(p, max_side) for p in paths]
    images = [im for im in images if min(im.shape[:2]) >= min_side]
    if not images:
        raise DataError(f"no usable photos (min side {min_side}) in {source}")
    return images


def resolve_pool(sources: list[str] | str, max_side: int, min_side: int) -> tuple[list[np.ndarray], str]:
    """First source in ``sources`` that yields photos (so a config can say ["corpus:train", "skimage"])."""
    if isinstance(sources, str):
        sources = [sources]
    errors = []
    for src in sources:
        try:
            return load_pool(src, max_side, min_side), src
        except DataError as exc:
            errors.append(str(exc))
    raise DataError("no photo source worked: " + "; ".join(errors))


def random_crop(pool: list[np.ndarray], rng: np.random.Generator, size: int) -> np.ndarray:
    """A random ``size``² crop (upscaled when the photo is smaller), random h-flip; float32 [0, 1]."""
    img = pool[int(rng.integers(len(pool)))]
    h, w = img.shape[:2]
    if min(h, w) < size:
        scale = size / min(h, w)
        pil = Image.fromarray(img).resize((max(size, round(w * scale)), max(size, round(h * scale))),
                                          Image.Resampling.BICUBIC)
        img = np.asarray(pil)
        h, w = img.shape[:2]
    y = int(rng.integers(h - size + 1))
    x = int(rng.integers(w - size + 1))
    crop = img[y:y + size, x:x + size]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop, dtype=np.float32) / 255.0


# ---------------------------------------------------------------------------------------------------------
# degradations (thin adapters over oldphoto.synth, so that the training stream and the evaluation
# protocol use the same synthesis)

def synthesize(clean: np.ndarray, rng: np.random.Generator, kind: str = "unstructured"
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``oldphoto.synth.degrade`` of one crop: (degraded, target, mask).

    ``target`` is the clean crop with the photographic tone (grey/sepia) the synthesis chose, which the
    restoration must keep; ``mask`` is float32 H×W in {0, 1} (1 = structured defect).
    ``kind``: "unstructured" (quality mapping), "mixed" (everything), "oldlook", "structured".
    """
    from oldphoto.synth.degrade import degrade

    out = degrade(clean, rng, _config(kind))
    mask = (np.asarray(out.mask, dtype=np.float32) > 0.5).astype(np.float32)
    return out.degraded, out.clean, mask


_CONFIGS: dict = {}


def _config(kind: str):
    from oldphoto.synth.degrade import DegradeConfig

    if kind not in _CONFIGS:
        _CONFIGS[kind] = DegradeConfig(kind=kind)
    return _CONFIGS[kind]


def to_batch(images: list[np.ndarray]) -> torch.Tensor:
    """List of H×W×C float [0, 1] -> N×C×H×W in [-1, 1]."""
    arr = np.stack([im if im.ndim == 3 else im[..., None] for im in images]).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)) * 2.0 - 1.0


def gray(image: np.ndarray) -> np.ndarray:
    """RGB -> luma (ITU-R 601, as PIL's convert("L") used by the official detector)."""
    return (image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114).astype(np.float32)


def infinite(fn, *args) -> Iterator:
    while True:
        yield fn(*args)

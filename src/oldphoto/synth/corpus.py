"""Training-photo corpus: the fixed held-out split and a torch-free loader (building: ``sources.py``).

Two on-disk layouts, both described by ``manifest.json`` and both opened with :class:`Corpus`:

* a **photo corpus** (``oldphoto data build``): ``clean/<source>/<file>.jpg``, ``real_old/<source>/<file>``;
* a **patch pack** (``oldphoto data patches``): 256² JPEG crops packed into ``<set>.npz`` files (one array
  of concatenated JPEG bytes + offsets + source keys), small enough to ship to a GPU machine.

Held-out split: a photo is identified by its key ``<source>/<file name>``.  It is held out when its key is
in the committed list ``heldout.txt`` or when ``sha1(key)`` falls under :data:`HELDOUT_FRACTION` (the
committed list is that rule applied to the built-in sources, frozen so it never changes under anyone's feet).
Patches inherit the split of their source photo, so no crop of a held-out photo ever reaches training.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from oldphoto.files import atomic_write, atomic_write_text
from oldphoto.synth.degrade import DegradeConfig, Degraded, as_generator, degrade

HELDOUT_FRACTION = 0.15
HELDOUT_LIST = Path(__file__).with_name("heldout.txt")
CORPUS_FORMAT = "oldphoto-corpus"
PATCHES_FORMAT = "oldphoto-patches"


class CorpusError(RuntimeError):
    """A corpus folder or pack is missing or malformed (the message names the file; ``reason``, when
    given, is the message without the file's name, for a caller that names the file itself)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------------------------- split
@functools.lru_cache(maxsize=1)
def committed_heldout() -> frozenset[str]:
    """The committed held-out keys (``heldout.txt``; ``#`` comments and blank lines ignored)."""
    if not HELDOUT_LIST.is_file():
        return frozenset()
    lines = HELDOUT_LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(s.strip() for s in lines if s.strip() and not s.startswith("#"))


def hash_heldout(key: str, fraction: float = HELDOUT_FRACTION) -> bool:
    """The hash rule alone: stable across machines, Python versions and corpus contents."""
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 2**32 < fraction


def split_of(key: str) -> str:
    """``"heldout"`` or ``"train"`` for a photo key ``<source>/<file name>``."""
    return "heldout" if key in committed_heldout() or hash_heldout(key) else "train"


# --------------------------------------------------------------------------------------------- images
def load_image(path: str | os.PathLike, label: str | None = None) -> np.ndarray:
    """Read an image file as float32 RGB ``H×W×3`` in [0, 1] as ``oldphoto restore`` reads it
    (:func:`oldphoto.io.read_photo`: EXIF orientation, colour management; alpha dropped); ``label``
    names it in errors (default: the path)."""
    from oldphoto.io import PhotoError, read_photo

    try:
        return read_photo(path).pixels
    except PhotoError as exc:
        raise CorpusError(f"{label or path}: {exc.reason}", reason=exc.reason) from None


def load_image_bytes(data: bytes, label: str) -> np.ndarray:
    """:func:`load_image` for an encoded image held in memory (e.g. read from a package archive);
    ``label`` names it in errors.  (Decoded from a temporary file: one reader for every photo.)"""
    with tempfile.TemporaryDirectory(prefix="oldphoto-") as folder:
        path = Path(folder) / "image"
        path.write_bytes(data)
        return load_image(path, label)


def decode_image(data: bytes | np.ndarray) -> np.ndarray:
    """Decode encoded image bytes (JPEG/PNG) to float32 RGB ``H×W×3`` in [0, 1]."""
    buf = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else np.asarray(data, np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        raise CorpusError("cannot decode packed image bytes")
    return img[:, :, ::-1].astype(np.float32) / 255.0


def encode_jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    u8 = (np.clip(image, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator | int | None = None,
                flip: bool = True) -> np.ndarray:
    """A random ``size×size`` crop (shorter side first resized to ``size`` bicubic if smaller, as the
    released code does), randomly mirrored horizontally; float32 in [0, 1] (``image``: float in [0, 1]
    or uint8, as the training pools hold photos)."""
    rng = as_generator(rng)
    h, w = image.shape[:2]
    if min(h, w) < size:
        scale = size / min(h, w)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_CUBIC)  # uint8 saturates by itself
        if image.dtype != np.uint8:
            image = np.clip(image, 0, 1)
        h, w = nh, nw
    y = int(rng.integers(h - size + 1))
    x = int(rng.integers(w - size + 1))
    crop = image[y:y + size, x:x + size]
    if flip and rng.random() < 0.5:
        crop = crop[:, ::-1]
    if crop.dtype == np.uint8:
        return np.ascontiguousarray(crop, dtype=np.float32) / 255.0
    return np.ascontiguousarray(crop, dtype=np.float32)


def sample_pair(images: Sequence[np.ndarray], rng: np.random.Generator | int | None = None, size: int = 256,
                config: DegradeConfig | None = None) -> Degraded:
    """One online training sample: a random photo from ``images``, a random crop, then :func:`degrade`."""
    rng = as_generator(rng)
    if len(images) == 0:
        raise CorpusError("no images to sample from")
    crop = random_crop(images[int(rng.integers(len(images)))], size, rng)
    return degrade(crop, rng, config)


# --------------------------------------------------------------------------------------------- image sets
class ImageSet(Sequence[np.ndarray]):
    """A lazily decoded sequence of float32 RGB images with their source-photo ``keys``."""

    def __init__(self, keys: list[str], loader, count: int) -> None:
        self.keys = keys
        self._loader = loader
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        if not -self._count <= index < self._count:
            raise IndexError(index)
        return self._loader(index % self._count)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self._count):
            yield self._loader(i)


@dataclass
class Entry:
    """One photo of a photo corpus (``manifest.json`` ``images`` item)."""

    key: str  # "<source>/<file name>", the split key
    source: str
    path: str  # relative to the corpus root
    kind: str  # "clean" | "real_old"
    split: str  # "train" | "heldout"
    width: int
    height: int
    origin: str = ""  # where it came from (package path / user file)
    license: str = ""


class PackedImages:
    """Images packed by :func:`write_pack` (``data`` bytes, ``offsets``, ``keys``), held in memory."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as z:
                self.data = z["data"]
                self.offsets = z["offsets"]
                self.keys = [str(k) for k in z["keys"]]
        except FileNotFoundError:
            raise CorpusError(f"{self.path}: no such patch pack") from None
        except (OSError, ValueError, KeyError) as exc:
            raise CorpusError(f"{self.path}: not a valid patch pack ({exc})") from None
        if len(self.offsets) != len(self.keys) + 1:
            raise CorpusError(f"{self.path}: offsets and keys disagree")

    def __len__(self) -> int:
        return len(self.keys)

    def raw(self, index: int) -> bytes:
        return self.data[self.offsets[index]:self.offsets[index + 1]].tobytes()

    def image(self, index: int) -> np.ndarray:
        return decode_image(self.data[self.offsets[index]:self.offsets[index + 1]])

    def as_set(self) -> ImageSet:
        return ImageSet(self.keys, self.image, len(self.keys))


def write_pack(path: Path, blobs: list[bytes], keys: list[str]) -> int:
    """Atomically write a pack of encoded images; returns its size in bytes."""
    offsets = np.zeros(len(blobs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    data = np.frombuffer(b"".join(blobs), np.uint8) if blobs else np.zeros(0, np.uint8)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would add ".npz" to a bare name
            np.savez(fh, data=data, offsets=offsets, keys=np.array(keys, dtype=str))

    atomic_write(path, write)
    return path.stat().st_size


def write_json(path: Path, obj: object) -> None:
    """Atomic JSON write."""
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


# --------------------------------------------------------------------------------------------- Corpus
class Corpus:
    """Open a photo corpus or a patch pack folder (both have ``manifest.json``).

    ``clean(split)`` gives the clean photos (or patches) of ``"train"`` or ``"heldout"``; ``real_old(split)``
    the real old photos (``"train"``, ``"heldout"`` or ``"all"``).  Everything is decoded lazily to float32
    RGB in [0, 1]; nothing here imports torch.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        manifest = self.root / "manifest.json"
        try:
            self.manifest = json.loads(manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CorpusError(f"{manifest}: not found; build one with `oldphoto data build --out "
                              f"{self.root}` or `oldphoto data patches`") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise CorpusError(f"{manifest}: unreadable ({exc})") from None
        self.format = self.manifest.get("format")
        if self.format not in (CORPUS_FORMAT, PATCHES_FORMAT):
            raise CorpusError(f"{manifest}: unknown format {self.format!r}")
        self._packs: dict[str, PackedImages] = {}

    # -- photo corpus
    @property
    def entries(self) -> list[Entry]:
        if self.format != CORPUS_FORMAT:
            return []
        return [Entry(**e) for e in self.manifest.get("images", [])]

    def _select(self, kind: str, split: str) -> ImageSet:
        if split not in ("train", "heldout", "all"):
            raise ValueError(f"split must be 'train', 'heldout' or 'all', got {split!r}")
        if self.format == PATCHES_FORMAT:
            names = [f"{kind}_{s}" for s in (("train", "heldout") if split == "all" else (split,))]
            sets = [self._pack(n) for n in names if n in self.manifest.get("packs", {})]
            if len(sets) == 1:
                return sets[0].as_set()
            keys = [k for p in sets for k in p.keys]
            index = [(p, i) for p in sets for i in range(len(p))]
            return ImageSet(keys, lambda i: index[i][0].image(index[i][1]), len(index))
        chosen = [e for e in self.entries if e.kind == kind and (split == "all" or e.split == split)]
        paths = [self.root / e.path for e in chosen]
        return ImageSet([e.key for e in chosen], lambda i: load_image(paths[i]), len(chosen))

    def _pack(self, name: str) -> PackedImages:
        if name not in self._packs:
            self._packs[name] = PackedImages(self.root / self.manifest["packs"][name])
        return self._packs[name]

    def clean(self, split: str = "train") -> ImageSet:
        """Clean photos (or clean patches) of a split."""
        return self._select("clean", split)

    def real_old(self, split: str = "train") -> ImageSet:
        """Real old photos (or patches of them)."""
        return self._select("real_old", split)

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for kind in ("clean", "real_old"):
            for split in ("train", "heldout"):
                out[f"{kind}_{split}"] = len(self._select(kind, split))
        return out


def entry_dict(entry: Entry) -> dict:
    return asdict(entry)


def image_bytes_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    """PIL JPEG encoding (4:4:4) for stored photos."""
    u8 = (np.clip(image, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=quality, subsampling=0)
    return buf.getvalue()

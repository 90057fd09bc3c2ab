import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from oldphoto.synth import corpus as C
from oldphoto.synth import sources as SRC


def _write_photos(folder: Path, n: int, size=(300, 200), prefix="img") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rs = np.random.default_rng(0)
    paths = []
    for i in range(n):
        img = (rs.random((size[1] // 10, size[0] // 10, 3)) * 255).astype(np.uint8)
        img = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
        p = folder / f"{prefix}{i:02d}.jpg"
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths


def test_hash_rule_is_stable_and_near_the_fraction():
    keys = [f"src/{i}.jpg" for i in range(2000)]
    held = [k for k in keys if C.hash_heldout(k)]
    assert 0.12 < len(held) / len(keys) < 0.18
    assert C.hash_heldout("mate-backgrounds/Storm.jpg")  # frozen example (sha1 does not change)
    assert not C.hash_heldout("mate-backgrounds/Garden.jpg")


def _builtin_keys() -> list[str]:
    from oldphoto.synth import gcompris
    from oldphoto.synth.pypi_photos import PYPI_PHOTOS

    keys = []
    for pkg, (_, paths) in {**SRC.DEBIAN_PHOTOS, **SRC.DEBIAN_OLD}.items():
        for p in paths:
            p = p if isinstance(p, str) else p[0]
            name = Path(p).name + (".jpg" if pkg == "plasma-workspace-wallpapers" else "")
            keys.append(f"{pkg}/{name}")
    for activities in (gcompris.PHOTOS, gcompris.OLD_PHOTOS):
        keys += [f"{gcompris.PACKAGE}/{a}__{Path(r).name}" for a, rs in activities.items() for r in rs]
    keys += [f"{w.source}/{Path(m).name}" for w in PYPI_PHOTOS for m, _ in w.members]
    return keys + [f"skimage/{n}" for n in SRC.SKIMAGE_PHOTOS]


def test_committed_heldout_list_matches_the_hash_rule():
    committed = C.committed_heldout()
    builtin = _builtin_keys()
    by_rule = {k for k in builtin if C.hash_heldout(k)}
    assert by_rule <= committed  # the rule's picks are frozen in the list
    assert len(by_rule) >= 30
    extra = committed - by_rule
    assert extra == {"visp-images-data/Solvay_conference_1927_Version2_2126x1463.png",
                     "real_old/scratched_boy_portrait.png"}
    for k in committed:
        assert C.split_of(k) == "heldout"
    assert len(builtin) == len(set(builtin)) >= 200
    assert sum(C.split_of(k) == "train" for k in builtin) >= 160
    # the photos of the first corpus keep their split (never move a photo between splits)
    for k in ("mate-backgrounds/Storm.jpg", "palapeli-data/citrus-fruits.jpg", "skimage/camera.png"):
        assert C.split_of(k) == "heldout"
    for k in ("mate-backgrounds/Garden.jpg", "skimage/astronaut.png",
              "lomiri-wallpapers-16.04/Wine_by_Jakkub_Mede.jpg"):
        assert C.split_of(k) == "train"


def test_no_source_lists_reserved_or_excluded_photos():
    """opencv-doc's samples are for evaluation only; renders and near-duplicates stay out."""
    keys = _builtin_keys()
    assert not any("opencv" in k for k in keys)
    for dropped in ("36444540", "7303994", "7303995", "7303788", "7303842", "3062948", "karola-g"):
        assert not any(dropped in k for k in keys), dropped
    assert not any("Gogh" in k or "details__" in k for k in keys)  # paintings
    from oldphoto.synth import gcompris

    assert sum(len(v) for v in gcompris.PHOTOS.values()) == 119
    assert f"{gcompris.PACKAGE}/explore_monuments__castleClinton.webp" in keys  # as a real old photo
    assert all("castleClinton" not in r for rs in gcompris.PHOTOS.values() for r in rs)


def test_build_corpus_and_patches_from_folders(tmp_path):
    _write_photos(tmp_path / "voc" / "JPEGImages", 14)
    _write_photos(tmp_path / "old", 2, prefix="old")
    found = SRC.folder_photos(tmp_path / "voc", "clean") + SRC.folder_photos(tmp_path / "old", "real_old")
    corpus = SRC.build_corpus(tmp_path / "corpus", found, max_side=256, log=lambda m: None)
    manifest = json.loads((tmp_path / "corpus" / "manifest.json").read_text())
    assert manifest["format"] == "oldphoto-corpus" and len(manifest["images"]) == 16
    train, held = corpus.clean("train"), corpus.clean("heldout")
    assert len(train) + len(held) == 14 and not set(train.keys) & set(held.keys)
    for e in corpus.entries:
        assert e.split == C.split_of(e.key)
        assert max(e.width, e.height) <= 256
    img = train[0]
    assert img.dtype == np.float32 and img.shape[2] == 3 and max(img.shape[:2]) == 256
    assert len(corpus.real_old("all")) == 2

    counts = SRC.build_patches(corpus, tmp_path / "patches", size=64, budget_mib=0.2, per_heldout=2,
                               per_old=3, log=lambda m: None)
    old_split = C.split_of(corpus.real_old("all").keys[0])
    assert counts["clean_train"] > 10 and counts["real_old_" + old_split] >= 3
    total = sum(p.stat().st_size for p in (tmp_path / "patches").glob("*.npz"))
    assert total <= 0.2 * 2**20  # within the budget, not a crop beyond it
    packs = C.Corpus(tmp_path / "patches")
    pt = packs.clean("train")
    assert pt[0].shape == (64, 64, 3) and pt[0].dtype == np.float32
    held_keys = set(held.keys)
    assert not held_keys & set(pt.keys)  # no crop of a held-out photo reaches training
    if held_keys:
        assert set(packs.clean("heldout").keys) <= held_keys


def test_pack_round_trip(tmp_path, photo):
    blobs = [C.encode_jpeg(photo, 95), C.encode_jpeg(photo[:64], 95)]
    C.write_pack(tmp_path / "p.npz", blobs, ["a/x.jpg", "b/y.jpg"])
    pack = C.PackedImages(tmp_path / "p.npz")
    assert len(pack) == 2 and pack.keys == ["a/x.jpg", "b/y.jpg"]
    assert pack.image(1).shape == (64, 128, 3)
    assert np.abs(pack.image(0) - photo).mean() < 0.02
    assert pack.raw(0) == blobs[0]


def test_errors_name_the_file(tmp_path):
    with pytest.raises(C.CorpusError, match="manifest.json"):
        C.Corpus(tmp_path)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(C.CorpusError, match="bad.jpg"):
        C.load_image(bad)
    with pytest.raises(C.CorpusError, match="no images"):
        SRC.folder_photos(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path, "clean")
    with pytest.raises(C.CorpusError, match="not a valid patch pack"):
        C.PackedImages(bad)


def test_random_crop_and_sample_pair(photo):
    small = photo[:100, :120]
    crop = C.random_crop(small, 128, 0)
    assert crop.shape == (128, 128, 3)
    crop = C.random_crop(photo, 64, 1)
    assert crop.shape == (64, 64, 3)
    s1 = C.sample_pair([photo, small], 3, size=64)
    s2 = C.sample_pair([photo, small], 3, size=64)
    np.testing.assert_array_equal(s1.degraded, s2.degraded)
    assert s1.degraded.shape == (64, 64, 3)
    with pytest.raises(C.CorpusError):
        C.sample_pair([], 0)


def test_in_memory_images_are_read_like_files(tmp_path):
    """Archive members (load_image_bytes) go through the same reader as files: EXIF orientation too."""
    import io

    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90°: 30 wide, 50 high
    buf = io.BytesIO()
    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(buf, format="JPEG", exif=exif)
    assert C.load_image_bytes(buf.getvalue(), "pkg/a.jpg").shape == (50, 30, 3)
    with pytest.raises(C.CorpusError, match="pkg/b.png"):
        C.load_image_bytes(b"not an image", "pkg/b.png")


def test_build_corpus_keeps_photos_that_differ_only_in_extension(tmp_path):
    a, b = _write_photos(tmp_path / "src", 2)
    cv2.imwrite(str(tmp_path / "src" / "img00.png"), cv2.imread(str(b)))  # "img00.jpg" and "img00.png"
    b.unlink()
    corpus = SRC.build_corpus(tmp_path / "corpus", SRC.folder_photos(tmp_path / "src", "clean"), max_side=256,
                              log=lambda m: None)
    paths = [e.path for e in corpus.entries]
    assert len(paths) == 2 and len(set(paths)) == 2  # two photos, two files: neither overwrites the other
    first, second = (C.load_image(corpus.root / p) for p in paths)
    assert np.abs(first - second).mean() > 0.05


def test_build_corpus_skips_a_copy_of_a_photo_under_another_name(tmp_path):
    (a,) = _write_photos(tmp_path / "src", 1)
    (tmp_path / "src" / "nested").mkdir()
    copies = [tmp_path / "src" / "nested" / f"copy {i}.jpg" for i in range(40)]
    for c in copies:  # 40 names: with a 15 % hold-out, some copy would land in the other split
        c.write_bytes(a.read_bytes())
    for _ in range(2):  # a rerun, reusing the stored files, keeps the same one photo
        logs: list[str] = []
        corpus = SRC.build_corpus(tmp_path / "corpus", SRC.folder_photos(tmp_path / "src", "clean"),
                                  max_side=256, log=logs.append)
        assert [e.origin for e in corpus.entries] == [str(a)]
        assert len(logs) == 40 and all("the same photo as" in m and str(a) in m for m in logs)


def test_near_copies_of_a_photo_share_its_split(tmp_path):
    """Two scans of one print, a re-saved or gray copy: each kept, but in the split of the first found (one
    training and the other held out would put the held-out photo in training); other photos keep theirs."""
    src = tmp_path / "src"
    (a, *others) = _write_photos(src, 6)
    photo = cv2.imread(str(a))
    variants = {"smaller": cv2.resize(photo, (240, 160), interpolation=cv2.INTER_AREA),
                "brighter": np.clip(photo.astype(np.int16) * 11 // 10 + 8, 0, 255).astype(np.uint8),
                "gray": np.repeat(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)[..., None], 3, axis=2)}
    names = {}
    for kind, image in variants.items():  # a name whose own split is not img00's, for each variant
        name = next(f"{kind} {i}.jpg" for i in range(1000)
                    if C.split_of(f"folder-src/{kind} {i}.jpg") != C.split_of("folder-src/img00.jpg"))
        cv2.imwrite(str(src / name), image, [cv2.IMWRITE_JPEG_QUALITY, 70])
        names[name] = kind
    for _ in range(2):  # a rerun, from the stored files, decides alike
        logs: list[str] = []
        corpus = SRC.build_corpus(tmp_path / "corpus", SRC.folder_photos(src, "clean"), max_side=512,
                                  log=logs.append)
        split = {Path(e.origin).name: e.split for e in corpus.entries}
        assert len(split) == 9
        group = [*names, "img00.jpg"]  # (the split of the first in the folder's order)
        assert len({split[name] for name in group}) == 1
        assert all(split[p.name] == C.split_of(f"folder-src/{p.name}") for p in others)
        moved = [n for n in group if C.split_of(f"folder-src/{n}") != split[n]]
        assert moved and len(logs) == len(moved)
        assert all(f"{src / n} nearly copies" in m for n, m in zip(moved, logs, strict=True))


def test_build_corpus_says_each_skip_in_one_line_naming_the_photo_once(tmp_path):
    # "warning: skipped /src/bad.jpg: /src/bad.jpg: ...": the reader's error named the photo again
    _write_photos(tmp_path / "src", 1)
    (tmp_path / "src" / "bad.jpg").write_bytes(b"not an image")
    cv2.imwrite(str(tmp_path / "src" / "tiny.png"), np.zeros((40, 90, 3), np.uint8))
    found = SRC.folder_photos(tmp_path / "src", "clean")
    packed = SRC.Found("pkg", "b.png", "clean", "x", "pkg-1.0:data/b.png",
                       lambda: C.load_image_bytes(b"not an image", "pkg-1.0:data/b.png"))
    logs: list[str] = []
    SRC.build_corpus(tmp_path / "corpus", [*found, packed], max_side=256, log=logs.append)
    assert len(logs) == 3 and all("\n" not in m and m.startswith("warning: skipped ") for m in logs), logs
    bad, tiny = str(tmp_path / "src" / "bad.jpg"), str(tmp_path / "src" / "tiny.png")
    for origin in (bad, tiny, "pkg-1.0:data/b.png"):
        (line,) = [m for m in logs if origin in m]
        assert line.startswith(f"warning: skipped {origin}: ") and line.count(origin) == 1, line


def test_a_rerun_reads_each_stored_photo_once(tmp_path, monkeypatch):
    # a rerun decoded each stored photo from its file for its size, then read the file again for its digest
    _write_photos(tmp_path / "src", 3)
    first = SRC.build_corpus(tmp_path / "corpus", SRC.folder_photos(tmp_path / "src", "clean"), max_side=256,
                             log=lambda m: None)
    decoded: list[Path] = []
    real = SRC.load_image
    monkeypatch.setattr(SRC, "load_image", lambda path, *a: decoded.append(Path(path)) or real(path, *a))
    again = SRC.build_corpus(tmp_path / "corpus", SRC.folder_photos(tmp_path / "src", "clean"), max_side=256,
                             log=lambda m: None)
    assert decoded == [] and again.entries == first.entries

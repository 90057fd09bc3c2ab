"""Training data reads photos as `oldphoto restore` does and splits scikit-image's photos as the corpus."""

import numpy as np
from PIL import Image

from oldphoto.synth.corpus import split_of
from oldphoto.train import data as D


def test_training_reader_honours_exif_orientation(tmp_path):
    pixels = np.zeros((60, 100, 3), np.uint8)
    pixels[:, :50] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise: 60 wide, 100 high, white on top
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    (pool,) = D.load_pool(tmp_path, max_side=200, min_side=16)
    assert pool.shape == (100, 60, 3)
    assert pool[:40].mean() > 200 and pool[60:].mean() < 50


def test_random_crop_is_float_in_range_and_upscales_small_photos():
    rng = np.random.default_rng(0)
    pool = [np.full((40, 50, 3), 200, np.uint8)]
    crop = D.random_crop(pool, rng, 64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.float32
    assert np.allclose(crop, 200 / 255, atol=1e-3)


def test_skimage_pools_use_the_corpus_split():
    train = D.load_pool("skimage:train", max_side=64, min_side=16)
    heldout = D.load_pool("skimage:heldout", max_side=64, min_side=16)
    everything = D.load_pool("skimage", max_side=64, min_side=16)
    assert len(train) + len(heldout) == len(everything)
    from oldphoto.synth.sources import skimage_photos

    expected = sum(split_of(f"skimage/{f.name}") == "heldout" for f in skimage_photos())
    assert len(heldout) == expected >= 1


def test_folder_pool_skips_a_broken_photo_and_says_which_were_left_out(tmp_path, capsys):
    """One unreadable file does not make the whole folder unusable (training fell back to another source
    or stopped); it and the photos too small for the crop are named, not dropped without a word."""
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(tmp_path / "good.jpg", quality=95)
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(tmp_path / "tiny.jpg", quality=95)
    (tmp_path / "broken.jpg").write_bytes((tmp_path / "good.jpg").read_bytes()[:600])
    pool = D.load_pool(tmp_path, max_side=200, min_side=64)
    assert len(pool) == 1 and pool[0].shape == (120, 160, 3)
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "tiny.jpg" in err and "good.jpg" not in err


def test_a_corpus_or_skimage_pool_with_photos_too_small_says_so(capsys):
    """A panorama fitted to max_side is under the crop on its short side: left out with a warning (the
    warning failed with an UnboundLocalError for every source but a folder, `train evaluate --split
    train` among them)."""
    everything = D.load_pool("skimage", max_side=64, min_side=16)
    kept = D.load_pool("skimage", max_side=64, min_side=60)
    assert 0 < len(kept) < len(everything)
    assert "smaller than 60 px (the crop) on their short side left out" in capsys.readouterr().err


def test_falling_back_to_the_next_source_says_why(tmp_path, capsys):
    """A mistyped OLDPHOTO_CORPUS trained on scikit-image's photos with no word of the corpus."""
    Image.fromarray(np.full((80, 80, 3), 90, np.uint8)).save(tmp_path / "a.jpg", quality=95)
    pool, used = D.resolve_pool([f"corpus:{tmp_path / 'no_corpus'}:train", str(tmp_path)], 200, 16)
    assert used == str(tmp_path) and len(pool) == 1
    err = capsys.readouterr().err
    assert f"corpus:{tmp_path / 'no_corpus'}:train" in err and f"trying {tmp_path}" in err


def test_an_installed_package_finds_the_corpus_where_data_build_writes_it(tmp_path, monkeypatch):
    # from a wheel, parents[3] of train/data.py is lib/pythonX.Y: the default corpus was looked for in
    # <venv>/lib/python3.11/assets/corpus, never where `oldphoto data build` puts it (./assets/corpus)
    from oldphoto.synth.corpus_cli import DEFAULT_CORPUS

    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    monkeypatch.setattr(D, "__file__", str(site / "oldphoto" / "train" / "data.py"))
    monkeypatch.delenv("OLDPHOTO_CORPUS", raising=False)
    work = tmp_path / "work"
    (work / DEFAULT_CORPUS).mkdir(parents=True)
    (work / DEFAULT_CORPUS / "manifest.json").write_text("{}")
    monkeypatch.chdir(work)
    assert D.default_corpus_root().resolve() == (work / DEFAULT_CORPUS).resolve()
    monkeypatch.setenv("OLDPHOTO_CORPUS", str(tmp_path / "elsewhere"))
    assert D.default_corpus_root() == tmp_path / "elsewhere"


def test_a_checkout_finds_its_own_corpus_from_any_folder(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"
    (checkout / "assets" / "corpus").mkdir(parents=True)
    (checkout / "assets" / "corpus" / "manifest.json").write_text("{}")
    (checkout / "pyproject.toml").write_text("")
    monkeypatch.setattr(D, "__file__", str(checkout / "src" / "oldphoto" / "train" / "data.py"))
    monkeypatch.delenv("OLDPHOTO_CORPUS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert D.default_corpus_root() == (checkout / "assets" / "corpus").resolve()

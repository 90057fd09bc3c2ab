import cv2
import numpy as np

from oldphoto.cli import main


def _photo_file(path, photo):
    cv2.imwrite(str(path), (photo[:, :, ::-1] * 255).astype(np.uint8))
    return path


def test_synth_writes_three_images_deterministically(tmp_path, photo):
    src = _photo_file(tmp_path / "p.png", photo)
    assert main(["synth", str(src), "-o", str(tmp_path / "a"), "--seed", "4", "--count", "2"]) == 0
    assert main(["synth", str(src), "-o", str(tmp_path / "b"), "--seed", "4", "--count", "2"]) == 0
    for k in ("000", "001"):
        for part in ("degraded", "clean", "mask"):
            a = cv2.imread(str(tmp_path / "a" / f"p_{k}_{part}.png"))
            b = cv2.imread(str(tmp_path / "b" / f"p_{k}_{part}.png"))
            assert a is not None and a.shape[:2] == (128, 128)
            np.testing.assert_array_equal(a, b)


def test_synth_sheet_and_crop(tmp_path, photo):
    src = _photo_file(tmp_path / "p.png", photo)
    argv = ["synth", str(src), "-o", str(tmp_path), "--sheet", "--size", "64", "--kind", "structured"]
    assert main(argv) == 0
    sheet = cv2.imread(str(tmp_path / "p_000.png"))
    assert sheet.shape[:2] == (64, 3 * 64 + 2 * 4)


def test_synth_missing_input_is_an_error(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o")]) == 1
    assert "nope.jpg" in capsys.readouterr().out


def _photo_folder(folder, photo, n):
    """A folder of ``n`` distinct photos ``0.png`` … (``photo`` rolled sideways)."""
    folder.mkdir()
    for i in range(n):
        _photo_file(folder / f"{i}.png", np.roll(photo, 20 * i, axis=1))
    return folder


def test_data_build_patches_info(tmp_path, photo):
    photos = _photo_folder(tmp_path / "photos", photo, 6)
    old = tmp_path / "old"
    old.mkdir()
    _photo_file(old / "o.png", photo[:, :, ::-1])
    out = tmp_path / "corpus"
    assert main(["data", "build", "--out", str(out), "--source", str(photos), "--old", str(old)]) == 0
    assert main(["data", "patches", "--corpus", str(out), "--out", str(tmp_path / "pp"), "--size", "64",
                 "--budget-mib", "0.1", "--per-old", "2"]) == 0
    assert main(["data", "info", str(tmp_path / "pp")]) == 0
    assert main(["data", "build", "--out", str(out), "--source", str(tmp_path / "missing")]) == 1


def test_data_build_refuses_an_out_that_is_not_a_corpus(tmp_path, photo, capsys):
    photos = _photo_folder(tmp_path / "photos", photo, 3)
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    for out in (other, photos, photos / "corpus", tmp_path):
        assert main(["data", "build", "--out", str(out), "--source", str(photos), "--old", str(photos)]) == 1
        assert "oldphoto data build: error:" in capsys.readouterr().out
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in photos.iterdir()) == ["0.png", "1.png", "2.png"]
    out = tmp_path / "corpus"
    (out / "clean").mkdir(parents=True)  # what a first run interrupted before its manifest leaves
    for _ in range(2):  # an interrupted corpus, then a finished one, are built on
        assert main(["data", "build", "--out", str(out), "--source", str(photos), "--old", str(photos)]) == 0

import csv

import numpy as np
import pytest
from PIL import Image

from oldphoto.metrics import report
from oldphoto.metrics.baselines import classical_restore, classical_scratch_mask, degraded_input
from oldphoto.metrics.fullref import psnr

from .conftest import add_noise


def test_markdown_table_shape_and_best_highlight():
    rows = [{"method": "Input", "psnr": 12.9, "ssim": 0.49, "fid": 306.8},
            {"method": "Ours", "psnr": 23.3, "ssim": 0.69, "fid": 134.4}]
    text = report.markdown_table(rows, ["method", "psnr", "ssim", "fid"])
    lines = text.strip().splitlines()
    assert lines[0] == "| Method | PSNR ↑ | SSIM ↑ | FID ↓ |"
    assert lines[1] == "|---|---|---|---|"
    assert lines[3] == "| Ours | **23.30** | **0.690** | **134.40** |"
    assert len(lines) == 4


def test_table4_layout_is_methods_as_columns():
    rows = [{"method": "Pix2Pix", "wasserstein": 1.837, "brisque": 25.549},
            {"method": "full model", "wasserstein": 0.581, "brisque": 23.016}]
    lines = report.transposed_markdown(rows, ["wasserstein", "brisque"]).strip().splitlines()
    assert lines[0] == "| Method | Pix2Pix | full model |"
    assert lines[2] == "| Wasserstein ↓ | 1.837 | 0.581 |"
    assert lines[3].startswith("| BRISQUE ↓ | 25.549")


def test_csv_and_atomic_write(tmp_path):
    path = report.write_csv(tmp_path / "t.csv", [{"file": "a.png", "psnr": float("inf"), "ssim": 0.5}],
                            ["file", "psnr", "ssim", "niqe"])
    with open(path, newline="") as fh:
        assert list(csv.reader(fh)) == [["file", "psnr", "ssim", "niqe"], ["a.png", "inf", "0.500000", ""]]
    target = tmp_path / "keep.txt"
    target.write_text("old")

    class Crash(dict):
        def get(self, key, default=None):
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):  # the first row is written, then the writer fails
        report.write_csv(target, [{"file": "a.png"}, Crash()], ["file"])
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_contact_sheet_png(tmp_path, photo):
    rows = [[("input", photo), ("method", photo[:, :100]), ("truth", None)]] * 2
    path = report.contact_sheet(rows, tmp_path / "sheet.png", tile=64, title="t")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (3 * 68 + 4, 22 + 2 * (64 + 18 + 4) + 4)


def test_classical_baseline_denoises_and_inpaints(photo):
    noisy = add_noise(photo, 0.08)
    assert np.array_equal(degraded_input(noisy), noisy)
    assert psnr(classical_restore(noisy, mask=np.zeros(noisy.shape[:2])), photo) > psnr(noisy, photo) + 2
    scratched = photo.copy()
    scratched[20:180, 95:97] = 1.0  # a thin white vertical scratch
    mask = classical_scratch_mask(scratched)
    visible = (scratched - photo).mean(axis=2) > 0.3  # a white line on the white suit cannot be seen
    assert mask[visible].mean() > 0.8
    assert mask.mean() < 0.1
    restored = classical_restore(scratched, mask)
    assert np.abs(restored[30:170, 95:97] - photo[30:170, 95:97]).mean() < \
        np.abs(scratched[30:170, 95:97] - photo[30:170, 95:97]).mean() / 2

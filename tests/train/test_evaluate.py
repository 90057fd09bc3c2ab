"""The held-out evaluation behind the weights' cards: rows, protocol and the pipeline's threshold."""

import numpy as np
import pytest

from oldphoto.metrics.fullref import psnr
from oldphoto.train.evaluate import evaluate_restoration, evaluation_restorer, heldout_cases, markdown_table
from oldphoto.weights import bundled_weights_dir, find_card


def test_heldout_cases_are_deterministic_and_cover_both_kinds():
    a, used = heldout_cases(["skimage:heldout"], size=64, crops=1, max_side=128)
    b, _ = heldout_cases(["skimage:heldout"], size=64, crops=1, max_side=128)
    assert used == "skimage:heldout"
    assert {c.kind for c in a} == {"unstructured", "mixed"}
    assert all(np.array_equal(x.degraded, y.degraded) for x, y in zip(a, b, strict=True))
    assert all(not c.mask.any() for c in a if c.kind == "unstructured")
    # a kind asked for alone is the same draw as in the table (its seed does not depend on the others)
    mixed, _ = heldout_cases(["skimage:heldout"], size=64, crops=1, max_side=128, kinds=("mixed",))
    assert [c.name for c in mixed] == [c.name for c in a if c.kind == "mixed"]
    assert all(np.array_equal(x.degraded, y.degraded)
               for x, y in zip(mixed, [c for c in a if c.kind == "mixed"], strict=True))


def test_a_quick_evaluation_is_the_full_tables_first_photos():
    full, _ = heldout_cases(["skimage:heldout"], size=64, crops=1, max_side=128)
    first, _ = heldout_cases(["skimage:heldout"], size=64, crops=1, max_side=128, photos=1)
    assert len(first) == 2 and len(full) > len(first)
    assert all(np.array_equal(x.degraded, y.degraded) for x, y in zip(first, full[:2], strict=True))
    with pytest.raises(ValueError, match="at least 1"):
        heldout_cases(["skimage:heldout"], size=64, crops=1, max_side=128, photos=0)


@pytest.fixture(scope="module")
def bundled():
    folder = bundled_weights_dir()
    restorer = evaluation_restorer(weights=folder)
    cases, _ = heldout_cases(["skimage:heldout"], size=64, crops=1, max_side=128)
    return folder, restorer, cases[:4]


def test_bundled_evaluation_runs_through_the_restorer(bundled):
    folder, restorer, cases = bundled
    assert restorer.mask_threshold() == find_card("detector", folder).calibration["threshold"]  # as `restore`
    result = evaluate_restoration(restorer, cases, pipeline=True)
    for kind in ("unstructured", "mixed"):
        rows = result[kind]
        assert {"degraded", "classical", "restored", "restored_raw", "pipeline"} <= set(rows)
        n = sum(c.kind == kind for c in cases)
        assert all(row["n"] == n for row in rows.values())
        from oldphoto.metrics.perception import installed

        assert ("lpips_alex" in rows["degraded"]) == installed()  # the perceptual column where it can be
        # the networks cannot see global levels: the fit onto the input is worth several dB
        assert rows["restored"]["psnr"] > rows["restored_raw"]["psnr"] + 3
    # the table's rows are the product's outputs: the same figures from the Restorer's own calls
    unstructured = [c for c in cases if c.kind == "unstructured"]
    expected = np.mean([psnr(restorer.networks(c.degraded, "quality"), c.clean) for c in unstructured])
    assert result["unstructured"]["restored"]["psnr"] == pytest.approx(expected, abs=1e-4)
    expected = np.mean([psnr(restorer.restore(c.degraded).image, c.clean) for c in unstructured])
    assert result["unstructured"]["pipeline"]["psnr"] == pytest.approx(expected, abs=1e-4)
    # the diagnostic row: the pipeline given each case's own defect mask (a perfect detector)
    assert "pipeline_true_mask" not in result["unstructured"]
    mixed = [c for c in cases if c.kind == "mixed"]
    expected = np.mean([psnr(restorer.restore(c.degraded, mask=c.mask > 0.5).image, c.clean) for c in mixed])
    assert result["mixed"]["pipeline_true_mask"]["psnr"] == pytest.approx(expected, abs=1e-4)
    assert result["detector_roc_auc"] > 0.5
    assert "degraded input" in markdown_table(result)


def test_evaluation_without_a_detector_has_no_mixed_network_rows(bundled):
    from oldphoto.pipeline import Restorer
    from oldphoto.weights import load_model

    _, _, cases = bundled
    nets = {r: load_model(r, bundled_weights_dir()) for r in ("vae_a", "mapping_quality", "vae_b_quality")}
    result = evaluate_restoration(Restorer(models=nets, faces=False, device="cpu"), cases)
    assert "restored" in result["unstructured"]
    assert set(result["mixed"]) == {"degraded", "classical"}
    assert "detector_roc_auc" not in result


def test_runs_folder_is_evaluated_through_a_restorer_with_its_networks(tmp_path, bundled):
    from oldphoto.stages.defects import OFFICIAL_THRESHOLD
    from oldphoto.train.config import load_stage_config
    from oldphoto.train.evaluate import runs_models
    from oldphoto.train.trainer import train

    cfg = load_stage_config("tiny", "detector", ["crop=32"], runs_dir=tmp_path)
    train("detector", cfg, tmp_path / "detector", steps=1, quiet=True)
    assert set(runs_models(tmp_path)) == {"detector"}
    restorer = evaluation_restorer(runs=tmp_path)
    assert restorer.mask_threshold() == OFFICIAL_THRESHOLD  # no card: the official threshold
    result = evaluate_restoration(restorer, bundled[2])
    assert set(result["mixed"]) == {"degraded", "classical"}  # no VAE in these runs: no network rows
    assert 0.0 <= result["detector_roc_auc"] <= 1.0


def test_the_table_names_the_weights_evaluated_not_the_bundled_ones():
    """`oldphoto train evaluate --weights mine` labelled its pipeline row 'bundled weights'."""
    row = {"psnr": 20.0, "ssim": 0.5, "psnr_y": 21.0, "ssim_y": 0.6, "n": 2}
    table = markdown_table({"unstructured": {"pipeline": row, "restored": row}, "weights": "runs/mine/w"})
    assert "bundled" not in table and "small networks" not in table
    assert "`oldphoto restore` (runs/mine/w, faces off)" in table


def test_a_quick_table_is_not_put_into_cards(tmp_path, capsys):
    """`train evaluate --photos 2` measures two photos: its figures must not stand in a card."""
    import json

    from oldphoto.cli import main

    quick = tmp_path / "quick.json"
    quick.write_text(json.dumps({"unstructured": {}, "mixed": {}, "heldout_photos": 2}))
    assert main(["train", "export", "--runs", str(tmp_path / "runs"), "--dest", str(tmp_path / "w"),
                 "--metrics", str(quick)]) == 2
    assert "only the first 2 held-out photos" in capsys.readouterr().err
    assert main(["train", "import-leg", str(tmp_path / "leg"), "--dest", str(tmp_path / "w"),
                 "--metrics", str(quick)]) == 1
    assert "only the first 2 held-out photos" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()

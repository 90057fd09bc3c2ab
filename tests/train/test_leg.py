"""The GPU leg's pieces on the CPU: the pack, time budgets, warm starts from a weights folder, bf16 /
channels-last / worker batches, and (slow) the whole leg in smoke mode."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from oldphoto.synth import sources as SRC
from oldphoto.synth.corpus import Corpus, split_of
from oldphoto.train.checkpoints import load_checkpoint
from oldphoto.train.config import load_stage_config
from oldphoto.train.data import load_pool
from oldphoto.train.export import export_runs
from oldphoto.train.pack import build_pack, pack_sources
from oldphoto.train.trainer import train

ROOT = Path(__file__).resolve().parents[2]
FAST = ["lambda_vgg=0", "lambda_gan=0"]


def _write_photos(folder: Path, n: int, prefix: str, size=(320, 240)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rs = np.random.default_rng(len(prefix))
    for i in range(n):
        img = (rs.random((size[1] // 16, size[0] // 16, 3)) * 255).astype(np.uint8)
        img = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"{prefix}{i:02d}.jpg"), img)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A photo corpus with held-out photos, an evaluation-only source and two real old photos."""
    base = tmp_path_factory.mktemp("leg_corpus")
    _write_photos(base / "photos", 16, "p")
    _write_photos(base / "opencv-doc", 3, "cv")
    _write_photos(base / "old", 2, "old")
    found = (SRC.folder_photos(base / "photos", "clean")
             + SRC.folder_photos(base / "opencv-doc", "clean", source="opencv-doc")
             + SRC.folder_photos(base / "old", "real_old"))
    SRC.build_corpus(base / "corpus", found, max_side=320, log=lambda m: None)
    return base / "corpus"


@pytest.fixture(scope="module")
def pack(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("leg_pack") / "pack"
    build_pack(corpus, out, budget_mib=0.3, size=64, per_old=3, vgg_layers=0, log=lambda m: None)
    return out


def test_pack_holds_only_training_photos_with_their_licences(corpus, pack):
    entries = Corpus(corpus).entries
    held = {e.key for e in entries if e.kind == "clean" and e.split == "heldout"}
    assert held, "the test corpus needs held-out photos"
    manifest = json.loads((pack / "manifest.json").read_text())
    clean = Corpus(pack).clean("train")
    assert len(clean) > 16 and clean[0].shape == (64, 64, 3)
    assert not set(clean.keys) & held  # no crop of a held-out photo
    assert all(split_of(k) == "train" for k in clean.keys)
    assert not any("opencv" in k for k in clean.keys)  # evaluation-only source never packed
    assert "clean_heldout" not in manifest["packs"]
    assert {e.key for e in entries if e.kind == "clean" and e.split == "train"
            and "opencv" not in e.source} <= set(clean.keys)  # every training photo has a crop
    for key in clean.keys:
        assert manifest["sources"][key]["license"] and manifest["sources"][key]["split"] == "train"
    assert manifest["bytes"] <= 0.3 * 2**20 * 1.05
    # the training loader reads it through the configs' source names
    src = pack_sources(pack)
    assert len(load_pool(src["photos"][0], 768, 64)) == len(clean)
    assert len(load_pool(src["real_old"][0], 768, 64)) == 6


def test_pack_refuses_to_replace_a_folder_that_is_not_a_pack(corpus, tmp_path):
    from oldphoto.train.pack import PackError

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(PackError, match="not a pack"):
        build_pack(corpus, tmp_path / "x", budget_mib=0.1, size=64, vgg_layers=0, log=lambda m: None)
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_default_pack_budget_leaves_room_for_the_tracked_files():
    from oldphoto.train import pack

    assert pack.default_budget_mib(40 * 2**20) == pack.DEFAULT_BUDGET_MIB  # room to spare: the usual size
    tree = int(50.3 * 2**20)  # the tree of 2026-12-01
    budget = pack.default_budget_mib(tree)
    assert 11 < budget < 12
    assert pack.fits_travel(tree, budget)
    assert not pack.fits_travel(tree, 12.0)  # the old fixed default did not fit
    assert pack.default_budget_mib(None) == pack.DEFAULT_BUDGET_MIB  # not a git checkout



def test_tree_size_counts_what_the_device_call_copies(tmp_path):
    """Tracked files and untracked ones git does not ignore travel; ignored ones (packs/) do not."""
    from oldphoto.train.pack import tracked_bytes

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / ".gitignore").write_text("/packs/\n")
    (tmp_path / "tracked.txt").write_bytes(b"t" * 1000)
    git("add", ".gitignore", "tracked.txt")
    base = tracked_bytes(tmp_path)
    assert base == 1000 + len("/packs/\n")
    (tmp_path / "stray.bin").write_bytes(b"s" * 500)  # a stray output left in the tree travels too
    (tmp_path / "packs" / "gpu_leg").mkdir(parents=True)
    (tmp_path / "packs" / "gpu_leg" / "crops.npz").write_bytes(b"p" * 4000)  # carried only when named
    assert tracked_bytes(tmp_path) == base + 500
    assert tracked_bytes(tmp_path / "packs") is not None  # (inside the checkout too)


def test_pack_command_fails_when_the_pack_cannot_travel(corpus, tmp_path, monkeypatch, capsys):
    from oldphoto.cli import main
    from oldphoto.train import pack

    args = ["train", "pack", "--corpus", str(corpus), "--size", "64", "--per-old", "2", "--vgg-layers", "0",
            "--budget-mib", "0.2"]
    monkeypatch.setattr(pack, "tracked_bytes", lambda repo: int(40 * 2**20))
    assert main([*args, "--out", str(tmp_path / "ok")]) == 0
    assert "fits one device call" in capsys.readouterr().out
    monkeypatch.setattr(pack, "tracked_bytes", lambda repo: int(62.05 * 2**20))  # 0.2 MiB more is too much
    assert main([*args, "--out", str(tmp_path / "big")]) == 1
    captured = capsys.readouterr()
    assert "TOO LARGE" in captured.out and "cannot travel" in captured.err


def test_prepare_script_checks_its_arguments_before_doing_anything(tmp_path):
    script = ROOT / "scripts" / "prepare_gpu_legs.sh"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OLDPHOTO_LEG_DATA": str(tmp_path / "data")}

    def run(*args):
        return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env,
                              timeout=30)

    assert "--faces N" in run("--help").stdout
    for bad, message in ((["--faces", "many"], "whole number"), (["--faces", "0"], "at least 1"),
                         (["--only", "both"], "gpu or face"), (["--heldout"], "needs a value"),
                         (["--frobnicate"], "unknown argument")):
        proc = run(*bad)
        assert proc.returncode == 2 and message in proc.stderr, (bad, proc.stderr)
    assert not (tmp_path / "data").exists()  # nothing made


def test_time_budget_stops_the_run_and_decays_the_lr(tmp_path):
    cfg = load_stage_config("tiny", "vae_b", [*FAST, "time_budget=1.5", "log_every=1"], runs_dir=tmp_path)
    result = train("vae_b", cfg, tmp_path / "b", steps=100000, quiet=True)
    assert 0 < result["step"] < 100000
    assert result["seconds"] < 10
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == result["step"]
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert lrs[0] == pytest.approx(2e-4) and lrs[-1] < 0.5e-4  # constant, then down towards 0 at the end


def test_init_from_a_weights_folder_takes_its_widths_and_weights(tmp_path):
    source = train("vae_b", load_stage_config("tiny", "vae_b", FAST, runs_dir=tmp_path / "r"),
                   tmp_path / "r" / "vae_b", steps=1, quiet=True)
    export_runs(tmp_path / "r", tmp_path / "w")
    # the config asks for another width: a warm start from a weights folder builds what the card says
    cfg = load_stage_config("tiny", "vae_b", [*FAST, "nets.G.width=4", f"init_from={tmp_path / 'w'}"],
                            runs_dir=tmp_path)
    warm = train("vae_b", cfg, tmp_path / "b", steps=0, quiet=True)
    a = source["stage"].nets["G"].state_dict()
    b = warm["stage"].nets["G"].state_dict()
    assert warm["stage"].nets["G"].config["width"] == 8
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not warm["stage"].optimizers["G"].state_dict()["state"]  # fresh Adam
    # a folder without the stage's role is an error, not a silent fall-back to the bundled weights
    cfg = load_stage_config("tiny", "vae_a", [*FAST, f"init_from={tmp_path / 'w'}"], runs_dir=tmp_path)
    cfg["real_old"] = [str(ROOT / "examples" / "real_old")]
    with pytest.raises(RuntimeError, match="none of vae_a"):
        train("vae_a", cfg, tmp_path / "a", steps=1, quiet=True)


def test_bf16_channels_last_and_worker_batches(tmp_path, pack):
    sets = [*FAST, "precision=\"bf16\"", "channels_last=true", "data_workers=1", "lambda_latent_gan=1.0"]
    cfg = load_stage_config("tiny", "vae_a", sets, runs_dir=tmp_path)
    cfg.update(pack_sources(pack))
    result = train("vae_a", cfg, tmp_path / "a", steps=2, quiet=True)
    assert result["step"] == 2 and all(np.isfinite(v) for v in result["losses"].values())
    assert "latent_g" in result["losses"]
    g = result["stage"].nets["G"]
    assert all(p.dtype == torch.float32 for p in g.parameters())  # autocast leaves the weights in fp32
    assert result["stage"].cfg["photo_source_used"].startswith("corpus:")  # pools loaded before forking
    with pytest.raises(ValueError, match="precision"):  # a ConfigError, before anything is built
        load_stage_config("tiny", "vae_b", [*FAST, "precision=\"fp8\""], runs_dir=tmp_path)


@pytest.mark.slow
def test_smoke_leg_end_to_end(tmp_path, pack):
    """scripts/gpu_leg.sh --smoke: every stage, export, split weights, evaluation, logs."""
    out = tmp_path / "out"
    env = {"OUT": str(out), "GPU_LEG_PACK": str(pack), "PYTHON": sys.executable, "GPU_LEG_BUDGET": "40",
           "OLDPHOTO_CORPUS": str(tmp_path / "no_corpus"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_leg.sh"), "--smoke", "--reserve", "15",
                           "--work", str(tmp_path / "work")], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["stages"]) == {"vae_b", "vae_a", "detector", "mapping_quality", "mapping_scratch",
                                      "mapping_hr"}
    assert all(e["steps"] > 0 and e["precision"] == "bf16" for e in summary["stages"].values())
    assert summary["evaluation"]["new"]["unstructured"]["restored"]["n"] > 0
    assert (out / "leg.log").is_file() and (out / "runs_logs.tar.gz").is_file()
    parts = sorted(out.glob("weights.tar.part*"))
    assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
    from oldphoto.train.leg import import_leg
    from oldphoto.weights import load_model

    # the seven global roles, and --remove-grain's denoiser, which the leg does not train, as bundled
    assert import_leg(out, tmp_path / "weights") == [
        "denoiser", "detector", "mapping_hr", "mapping_quality", "mapping_scratch", "vae_a", "vae_b_quality",
        "vae_b_scratch"]
    card = json.loads((tmp_path / "weights" / "vae_a.json").read_text())
    assert "SMOKE" in card["notes"] and "steps" in card["notes"] and "on cpu" in card["notes"]
    assert load_model("mapping_scratch", weights_dir=tmp_path / "weights").config["width"] == 128


def test_weights_parts_round_trip_and_import_checks(tmp_path):
    import tarfile

    from oldphoto.train.leg import PART_BYTES, _bundle_weights, import_leg

    train("detector", load_stage_config("tiny", "detector", ["crop=32"], runs_dir=tmp_path / "r"),
          tmp_path / "r" / "detector", steps=1, quiet=True)
    export_runs(tmp_path / "r", tmp_path / "w")
    (tmp_path / "out").mkdir()
    parts = _bundle_weights(tmp_path / "w", tmp_path / "out")
    assert parts == ["weights.tar.part0"] and (tmp_path / "out" / parts[0]).stat().st_size < PART_BYTES
    assert import_leg(tmp_path / "out", tmp_path / "dest", metrics={"x": 1}) == ["detector"]
    assert json.loads((tmp_path / "dest" / "detector.json").read_text())["metrics"] == {"x": 1}
    with pytest.raises(FileExistsError, match="--replace"):
        import_leg(tmp_path / "out", tmp_path / "dest")
    assert import_leg(tmp_path / "out", tmp_path / "dest", replace=True) == ["detector"]
    # a tar that would write outside its folder is refused before anything is written
    (tmp_path / "evil").mkdir()
    with tarfile.open(tmp_path / "evil" / "weights.tar.part0", "w") as tar:
        tar.add(tmp_path / "w" / "detector.json", arcname="../detector.json")
    with pytest.raises(ValueError, match="unexpected entry"):
        import_leg(tmp_path / "evil", tmp_path / "dest2")
    assert not (tmp_path / "dest2").exists()


# ------------------------------------------------------------------------------------------- a face leg
def test_face_pack_holds_shrunk_faces_with_their_licence(faces_dir, tmp_path):
    from oldphoto.train.leg import pack_stages

    out = tmp_path / "face_pack"
    manifest = build_pack(None, out, budget_mib=1.0, vgg_layers=0, faces=faces_dir, face_size=64,
                          log=lambda m: None)
    assert manifest["counts"] == {"faces": 2} and manifest["corpus"] is None
    packed = json.loads((out / "faces" / "manifest.json").read_text())
    assert packed["licence"].startswith("NON-COMMERCIAL") and packed["size"] == 64
    assert [f["source_file"] for f in packed["faces"]] == ["faces/000000.jpg", "faces/000001.jpg"]
    assert all(load_pool(str(out / "faces"), 256, 32)[i].shape == (64, 64, 3) for i in range(2))
    assert pack_sources(out) == {"faces": [str(out / "faces")]} and pack_stages(out) == ("face",)
    # the budget bounds how many faces travel, their manifest counted with them
    small = build_pack(None, tmp_path / "small", budget_mib=3e-3, vgg_layers=0, faces=faces_dir,
                       face_size=64, log=lambda m: None)
    assert small["counts"] == {"faces": 1}
    for budget in np.arange(3e-3, 8e-3, 2.5e-4):
        packed = build_pack(None, tmp_path / f"b{budget}", budget_mib=budget, vgg_layers=0, faces=faces_dir,
                            face_size=64, log=lambda m: None)
        assert packed["bytes"] <= budget * 2**20, budget


def test_face_leg_trains_a_new_face_model_and_returns_only_it(faces_dir, tmp_path):
    from oldphoto.train.leg import import_leg, run_leg
    from oldphoto.weights import load_model

    pack = tmp_path / "face_pack"
    build_pack(None, pack, budget_mib=1.0, vgg_layers=0, faces=faces_dir, face_size=64, log=lambda m: None)
    out = tmp_path / "out"
    summary = run_leg(pack, out, budget_s=12, reserve_s=4, smoke=True, work=tmp_path / "work",
                      overrides=["lambda_vgg=0"], log=lambda m: None)
    assert list(summary["stages"]) == ["face"] and summary["stages"]["face"]["steps"] > 0
    assert summary["exported_roles"] == ["face_64"] and summary["copied_roles"] == []  # no global set
    assert "evaluation" not in summary  # a face model is judged here, with dlib (bench_faces.py)
    assert import_leg(out, tmp_path / "weights") == ["face_64"]
    card = json.loads((tmp_path / "weights" / "face_64.json").read_text())
    assert card["licence"].startswith("NON-COMMERCIAL") and "SMOKE" in card["notes"]
    net = load_model("face_64", weights_dir=tmp_path / "weights")
    assert net.config["ngf"] == 8 and net.config["residual"] is True  # the leg's generator corrects its input
    with pytest.raises(ValueError, match="no data for vae_b"):
        run_leg(pack, tmp_path / "out2", stages=("vae_b",), smoke=True, log=lambda m: None)


def test_mappings_use_the_vae_the_leg_returns_when_a_vae_stage_fails(tmp_path, pack, monkeypatch):
    """A VAE stage that fails after writing a checkpoint (e.g. a non-finite loss at step 4000 with
    checkpoints every 2000) is not exported (the leg returns init_from's VAE): the mappings must then
    train on init_from's VAE too, not on the failed run's checkpoint, or they would not fit the VAE
    they are shipped with."""
    import oldphoto.train.trainer as trainer
    from oldphoto.train.leg import run_leg
    from oldphoto.weights.store import bundled_weights_dir

    real_train = trainer.train

    def failing_vae_b(stage, cfg, out_dir, **kw):
        result = real_train(stage, cfg, out_dir, **kw)
        if stage == "vae_b":
            assert (Path(out_dir) / "checkpoint.pt").is_file()
            raise FloatingPointError("non-finite loss at step 4001")
        return result

    monkeypatch.setattr(trainer, "train", failing_vae_b)
    summary = run_leg(pack, tmp_path / "out", budget_s=8, reserve_s=1, stages=("vae_b", "mapping_quality"),
                      overrides=["data_workers=0"], smoke=True, evaluate=False, work=tmp_path / "work",
                      log=lambda m: None)
    assert "FloatingPointError" in summary["stages"]["vae_b"]["error"]
    assert "steps" in summary["stages"]["mapping_quality"]
    used = json.loads((tmp_path / "work" / "runs" / "mapping_quality" / "config.json").read_text())
    assert used["vae_b"] == str(bundled_weights_dir())  # what the leg returns: init_from's vae_b
    assert "vae_b_quality" in summary["copied_roles"]


def test_a_corpus_or_its_packed_crops_given_as_a_folder_is_its_training_split(corpus, pack):
    """`--data FOLDER` of a corpus read every image under it, held-out photos too, and a folder of packed
    crops (`oldphoto data patches`) held no images at all: "no usable photos" (a training review)."""
    from oldphoto.train.data import load_pool

    train = Corpus(corpus).clean("train")
    assert len(load_pool(corpus, max_side=320, min_side=32)) == len(train)
    assert len(load_pool(pack, max_side=320, min_side=32)) == len(Corpus(pack).clean("train")) > 0

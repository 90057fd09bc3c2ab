"""The face stage: tiny generator, hinge GAN + feature matching + VGG + L1, export with data and licence."""

import json

import numpy as np
import pytest
import torch

from oldphoto.train.config import load_stage_config
from oldphoto.train.distributed import DistInfo
from oldphoto.train.stages import build_stage


def _stage(faces_dir, tmp_path, overrides=()):
    cfg = load_stage_config("tiny", "face", ["lr=0.002", f"faces={faces_dir}", *overrides], runs_dir=tmp_path)
    torch.manual_seed(0)
    stage = build_stage("face", cfg, DistInfo())
    stage.wrap_distributed()
    return stage


def test_face_loss_goes_down_on_a_fixed_batch(faces_dir, tmp_path, perceptual_net):
    stage = _stage(faces_dir, tmp_path, ["lambda_image_l1=10", "batch_size=2"])
    assert stage.cfg["gan_mode"] == "hinge"
    assert stage.nets["D"].config["in_channels"] == 6  # conditional: degraded face next to the face
    batch = next(stage.batches(np.random.default_rng(0)))
    assert batch["degraded"].shape == batch["clean"].shape == (2, 3, 32, 32)
    assert not torch.equal(batch["degraded"], batch["clean"])
    torch.manual_seed(1)
    before = stage.main_loss(batch).item()
    for step in range(8):
        logs = stage.train_step(batch, step)
    assert {"vgg", "image_l1", "g_gan", "g_feat", "d"} <= set(logs)
    assert all(torch.isfinite(v) for v in logs.values())
    torch.manual_seed(1)
    assert stage.main_loss(batch).item() < before


def test_hinge_losses():
    from oldphoto.train.losses import gan_loss

    pred = [[torch.tensor([[2.0, -0.5]])]]
    assert gan_loss(pred, True, "hinge").item() == pytest.approx((0.0 + 1.5) / 2)
    assert gan_loss(pred, False, "hinge").item() == pytest.approx((3.0 + 0.5) / 2)
    assert gan_loss(pred, True, "hinge", for_discriminator=False).item() == pytest.approx(-0.75)
    with pytest.raises(ValueError, match="gan_mode"):
        gan_loss(pred, True, "wgan")


def test_export_writes_a_card_with_data_licence_and_steps(faces_dir, tmp_path, perceptual_net):
    from oldphoto.train.export import export_runs
    from oldphoto.train.trainer import train
    from oldphoto.weights import load_model
    from oldphoto.weights.store import find_card

    runs = tmp_path / "runs"
    cfg = load_stage_config("tiny", "face", [f"faces={faces_dir}", "nets.G.size=64"], runs_dir=runs)
    train("face", cfg, runs / "face", steps=2, quiet=True)
    written = export_runs(runs, tmp_path / "w", stages=["face"])
    assert set(written) == {"face_64"}
    card = find_card("face_64", tmp_path / "w")
    assert card.steps == 2 and card.licence == "NON-COMMERCIAL test licence"
    assert "2 synthetic faces of random-face" in card.data and "seed 0" in card.data
    assert json.loads((tmp_path / "w" / "face_64.json").read_text())["licence"] == card.licence
    net = load_model("face_64", weights_dir=tmp_path / "w")
    assert not net.config["spectral_norm"]  # stored folded, the inference form
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    # a leg warm-started from that run: the card counts both legs' steps and names the source
    leg2 = tmp_path / "runs2"
    cfg = load_stage_config("tiny", "face", [f"faces={faces_dir}", "nets.G.size=64",
                                             f"init_from={runs / 'face'}"], runs_dir=leg2)
    train("face", cfg, leg2 / "face", steps=1, quiet=True)
    export_runs(leg2, tmp_path / "w2", stages=["face"])
    card = find_card("face_64", tmp_path / "w2")
    assert card.steps == 3 and f"Warm-started from {runs / 'face'} (step 2)" in card.notes


def test_the_role_follows_the_trained_size(tmp_path):
    """Export, and a warm start from a weights folder, use the face role of the generator's size."""
    from oldphoto.nets.descriptors import descriptor
    from oldphoto.nets.face import FaceGenerator
    from oldphoto.train.stages import STAGES, FaceStage
    from oldphoto.train.trainer import _adopt_card_configs, _init_from_weights
    from oldphoto.weights import save_model

    for role in descriptor("face_generator").roles:  # the pipeline's face roles, by their size
        assert FaceStage.exports_for({"nets": {"G": dict(role.config)}})["G"] == (role.name, "face_generator")
    assert STAGES["face"].exports_for({})["G"][0] == "face_256"  # the stage's default size
    folder = tmp_path / "w"
    torch.manual_seed(0)
    nets = {size: FaceGenerator(ngf=2 if size == 256 else 1, size=size, spade_hidden=4, spectral_norm=False)
            for size in (256, 512)}
    for size, net in nets.items():
        save_model(net, f"face_{size}", folder)
    cfg = {"nets": {"G": {"size": 512}}}
    _adopt_card_configs("face", cfg, folder)
    assert cfg["nets"]["G"] == nets[512].config
    stage = object.__new__(FaceStage)  # only what the warm start reads: its config and networks
    stage.cfg = cfg
    stage.nets = {"G": FaceGenerator(**nets[512].config)}
    _init_from_weights(stage, folder, verbose=False)
    torch.testing.assert_close(stage.nets["G"].state_dict(), nets[512].state_dict())


def test_residual_generator_trains_from_its_input_exports_as_residual(faces_dir, tmp_path, perceptual_net):
    from oldphoto.train.export import export_runs
    from oldphoto.train.trainer import train
    from oldphoto.weights import load_model
    from oldphoto.weights.store import find_card

    stage = _stage(faces_dir, tmp_path, ["lambda_gan=0", "batch_size=2", "nets.G.residual=true"])
    batch = next(stage.batches(np.random.default_rng(0)))
    with torch.no_grad():
        assert torch.equal(stage.nets["G"](batch["degraded"]), batch["degraded"])  # starts at the input
    before = stage.main_loss(batch).item()
    for step in range(8):
        stage.train_step(batch, step)
    assert stage.main_loss(batch).item() < before

    runs = tmp_path / "runs"
    cfg = load_stage_config("tiny", "face", [f"faces={faces_dir}", "nets.G.size=64", "nets.G.residual=true",
                                             "lambda_gan=0", "lr=0.002"], runs_dir=runs)
    train("face", cfg, runs / "face", steps=3, quiet=True)
    export_runs(runs, tmp_path / "w", stages=["face"])
    assert find_card("face_64", tmp_path / "w").config["residual"] is True  # same keys: the card says it
    net = load_model("face_64", weights_dir=tmp_path / "w")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert net.config["residual"] is True and not torch.equal(y, x)


def test_the_held_out_faces_are_never_packed_or_trained_on(faces_dir, tmp_path):
    """The faces of the held-out seed judge a face model (benchmarks/bench_faces.py): packing them for a
    leg or training on them is refused by name; another seed's are taken."""
    from oldphoto.synth.faces import HELDOUT_SEED
    from oldphoto.train.pack import PackError, build_pack

    manifest = json.loads((faces_dir / "manifest.json").read_text())
    (faces_dir / "manifest.json").write_text(json.dumps({**manifest, "seed": HELDOUT_SEED}))
    with pytest.raises(PackError, match="held-out faces"):
        build_pack(None, tmp_path / "pack", budget_mib=1.0, vgg_layers=0, faces=faces_dir, face_size=64,
                   log=lambda m: None)
    with pytest.raises(ValueError, match="held-out faces"):
        _stage(faces_dir, tmp_path / "runs").face_pool()
    (faces_dir / "manifest.json").write_text(json.dumps(manifest))
    assert len(_stage(faces_dir, tmp_path / "runs2").face_pool()) == 2


def test_export_says_when_restore_will_not_use_the_face_generator(faces_dir, tmp_path, capsys):
    """A face run at 128 (the docs' first leg) exported face_128, which `oldphoto restore` never loads,
    without a word: restore then said no face weights were installed."""
    from oldphoto.cli import main
    from oldphoto.train.trainer import train

    runs = tmp_path / "runs"
    cfg = load_stage_config("tiny", "face", [f"faces={faces_dir}", "nets.G.size=64", "lambda_vgg=0"],
                            runs_dir=runs)
    train("face", cfg, runs / "face", steps=1, quiet=True)
    assert main(["train", "export", "--runs", str(runs), "--dest", str(tmp_path / "w")]) == 0
    err = capsys.readouterr().err
    assert "face_64 is not a network `oldphoto restore` uses" in err and "face_256, face_512" in err

"""One training step per stage changes the weights and lowers the loss on a tiny batch."""

import copy

import numpy as np
import pytest
import torch

from oldphoto.train.config import load_stage_config
from oldphoto.train.distributed import DistInfo
from oldphoto.train.stages import build_stage


def _stage(name, runs, overrides=()):
    cfg = load_stage_config("tiny", name, ["lr=0.002", *overrides], runs_dir=runs)
    torch.manual_seed(0)
    stage = build_stage(name, cfg, DistInfo())
    stage.wrap_distributed()
    return stage


def _snapshot(stage):
    return {k: copy.deepcopy(net.state_dict()) for k, net in stage.nets.items()}


def _changed(before, stage):
    out = {}
    for k, net in stage.nets.items():
        after = net.state_dict()
        out[k] = any(not torch.equal(before[k][n], after[n]) for n in after if after[n].is_floating_point())
    return out


def _check(stage, steps=3):
    batch = next(stage.batches(np.random.default_rng(0)))
    torch.manual_seed(1)
    loss0 = stage.main_loss(batch).item()
    before = _snapshot(stage)
    for i in range(steps):
        logs = stage.train_step(batch, i)
        assert all(torch.isfinite(v) for v in logs.values()), logs
    torch.manual_seed(1)
    loss1 = stage.main_loss(batch).item()
    changed = _changed(before, stage)
    assert all(changed.values()), changed
    assert loss1 < loss0, (loss0, loss1)
    return logs


@pytest.mark.parametrize("name", ["vae_b", "vae_a"])
def test_vae_stages(name, tmp_path, real_old_dir, perceptual_net):
    stage = _stage(name, tmp_path, [f"real_old={real_old_dir}"])
    logs = _check(stage)
    assert "g_gan" in logs and "d" in logs and "g_feat" in logs and "vgg" in logs
    if name == "vae_a":
        assert "latent_g" in logs and "d_latent" in logs
        assert set(stage.nets) == {"G", "D", "DL"}


@pytest.mark.parametrize("name", ["mapping_quality", "mapping_scratch", "mapping_hr"])
def test_mapping_stages(name, tiny_runs):
    stage = _stage(name, tiny_runs)
    logs = _check(stage)
    assert {"latent_l1", "g_gan", "d", "vgg"} <= set(logs)
    # the VAEs stay frozen
    assert not any(p.requires_grad for p in stage.vae_a.parameters())


def test_detector_stage(tmp_path):
    stage = _stage("detector", tmp_path, ["crop=32"])
    logs = _check(stage)
    assert {"ce", "focal"} <= set(logs)


def test_detector_clean_negatives(tmp_path):
    """p_clean=1: every crop is a defect-free old-look crop, so every target mask is empty."""
    stage = _stage("detector", tmp_path, ["crop=32", "p_clean=1", "batch_size=6"])
    batch = next(stage.batches(np.random.default_rng(3)))
    assert batch["mask"].sum() == 0
    stage = _stage("detector", tmp_path, ["crop=32", "p_clean=0", "batch_size=6"])
    batch = next(stage.batches(np.random.default_rng(3)))
    assert batch["mask"].sum() > 0


def test_detector_sharp_clean_crops_have_no_defects(tmp_path):
    stage = _stage("detector", tmp_path, ["crop=32", "p_sharp_clean=1", "batch_size=6", "degradation=mixed",
                                          'synth={"p_tear": 1.0, "p_content": 0.5}'])
    batch = next(stage.batches(np.random.default_rng(3)))
    assert batch["mask"].sum() == 0


def test_detector_hard_negatives_are_defect_free_crops_of_the_mined_folder(tmp_path):
    """p_hard=1: every crop comes from the mined folder (here: one striped picture, found in every
    crop), defect-free; without the folder the option is an error."""
    from PIL import Image

    mined = tmp_path / "mined"
    mined.mkdir()
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::4] = 255  # bright thin lines, as the twigs and eaves that are mined
    Image.fromarray(stripes).save(mined / "p000_gray_10_10.png")
    stage = _stage("detector", tmp_path, ["crop=32", "p_hard=1", "batch_size=4", f"hard_negatives={mined}",
                                          "degradation=mixed"])
    batch = next(stage.batches(np.random.default_rng(3)))
    assert batch["mask"].sum() == 0
    columns = batch["image"][:, 0].mean(dim=1)  # every crop shows the stripes (tone and grain aside)
    assert all(float(c.max() - c.min()) > 0.3 for c in columns)
    with pytest.raises(ValueError, match="needs hard_negatives"):
        next(_stage("detector", tmp_path, ["crop=32", "p_hard=0.5"]).batches(np.random.default_rng(0)))


def test_detector_synth_options_reach_the_synthesis(tmp_path):
    """``synth``: DegradeConfig fields for the detector's crops; content alone never makes a positive."""
    from oldphoto.train import data as D

    opts = ["crop=32", "p_clean=0", "batch_size=4", "degradation=structured",
            'synth={"p_content": 1.0, "p_scratch": 0, "p_dust": 0, "p_hole": 0, "p_crease": 0}']
    batch = next(_stage("detector", tmp_path, opts).batches(np.random.default_rng(3)))
    assert batch["mask"].sum() == 0
    cfg = D.synth_config("mixed", {"p_content": 0.5, "content_count": [1, 2]})
    assert cfg.p_content == 0.5 and cfg.content_count == (1, 2) and cfg.kind == "mixed"
    with pytest.raises(ValueError, match="synth option 'p_contnet'"):  # when the config is loaded
        next(_stage("detector", tmp_path, ["crop=32", 'synth={"p_contnet": 1}']).batches(
            np.random.default_rng(0)))


def test_degradation_kind_list_is_drawn_per_crop(tmp_path):
    rng = np.random.default_rng(0)
    stage = _stage("detector", tmp_path, ["crop=32", 'degradation=["mixed", "unstructured"]'])
    assert {stage.degradation_kind(rng) for _ in range(40)} == {"mixed", "unstructured"}
    stage = _stage("detector", tmp_path, ["crop=32", "degradation=structured"])
    assert stage.degradation_kind(rng) == "structured"
    stage = _stage("detector", tmp_path, ["crop=32"])
    assert stage.degradation_kind(rng) == "mixed"  # unset: the schema's default for the detector


def test_face_stage_joint(tmp_path, tiny_runs):
    from PIL import Image
    from skimage import data

    faces = tmp_path / "faces"
    faces.mkdir()
    Image.fromarray(data.astronaut()[40:200, 150:310]).save(faces / "a.png")
    # a joint-training chain: tiny stage-1 networks feed the face generator
    from oldphoto.train.trainer import train

    cfg = load_stage_config("tiny", "mapping_quality", ["lambda_gan=0", "lambda_vgg=0"], runs_dir=tiny_runs)
    train("mapping_quality", cfg, tiny_runs / "mapping_quality", steps=1, quiet=True)
    stage = _stage("face", tmp_path, [f"faces={faces}", f"vae_a={tiny_runs / 'vae_a'}",
                                      f"vae_b={tiny_runs / 'vae_b'}",
                                      f"mapping={tiny_runs / 'mapping_quality'}"])
    assert stage.stage1 is not None
    logs = _check(stage)
    assert {"vgg", "g_gan", "d"} <= set(logs)


def test_mapping_rejects_mismatched_latent_widths(tmp_path, tiny_runs):
    from oldphoto.train.trainer import train

    cfg = load_stage_config("tiny", "vae_b", ["nets.G.width=12", "lambda_gan=0", "lambda_vgg=0"],
                            runs_dir=tmp_path)
    train("vae_b", cfg, tmp_path / "vae_b12", steps=1, quiet=True)
    with pytest.raises(ValueError, match="latent width"):
        _stage("mapping_quality", tiny_runs, [f"vae_b={tmp_path / 'vae_b12'}"])


@pytest.mark.parametrize("name", ["vae_b", "mapping_scratch"])
def test_level_aligned_image_loss_ignores_global_offset(name, tiny_runs):
    """With ``level_align`` the image-space L1 compares match_levels(output, input) with the target, so a
    per-channel offset of the decoded image (which the instance-normed VAE encoder cannot see) costs
    nothing; without it the same offset changes the loss (the test can fail)."""
    offset = torch.tensor([0.3, -0.2, 0.1]).view(1, 3, 1, 1)
    # VAE_B's image L1 is lambda_l1 (on in tiny); the mappings' is lambda_image_l1
    common = ["lambda_gan=0", "lambda_vgg=0", *([] if name == "vae_b" else ["lambda_image_l1=10"])]

    def image_loss(level_align: bool, shift: bool) -> float:
        stage = _stage(name, tiny_runs, [*common, f"level_align={str(level_align).lower()}"])
        vae = stage.nets["G"] if name == "vae_b" else stage.vae_b
        decode = vae.decode
        if shift:
            vae.decode = lambda z: decode(z) + offset
        batch = next(stage.batches(np.random.default_rng(0)))
        if name == "mapping_scratch":
            assert batch["mask"].sum() > 0  # the defect mask is excluded from the fit
        torch.manual_seed(3)  # the same sampling noise in the VAE
        logs = stage.train_step(batch, 0)
        return float(logs["l1" if name == "vae_b" else "image_l1"])

    aligned = image_loss(True, False)
    assert image_loss(True, True) == pytest.approx(aligned, rel=1e-4, abs=1e-5)
    raw = image_loss(False, False)
    assert abs(image_loss(False, True) - raw) > 0.01 * raw


def test_training_device_is_resolved_like_restore_and_never_falls_back():
    """`train --device mps` or `cuda:1` used to run on the CPU without a word."""
    import pytest
    import torch

    from oldphoto.train.distributed import init

    assert init("cpu").device == torch.device("cpu")
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1"):
            with pytest.raises(ValueError, match="CUDA"):
                init(name)
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        with pytest.raises(ValueError, match="MPS"):
            init("mps")
    with pytest.raises(ValueError, match="--device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"):
        init("gpu")


def test_denoiser_stage(tmp_path):
    stage = _stage("denoiser", tmp_path, ["batch_size=6"])
    logs = _check(stage, steps=5)
    assert set(logs) == {"mse", "total"}


def test_denoiser_target_keeps_the_input_levels_and_takes_the_clean_detail():
    """The target is the clean crop's detail on the degraded crop's levels: a faded, noisy crop's target
    has the faded levels and the clean (noise-free) detail."""
    import cv2

    from oldphoto.train.stages.denoiser import target_at_input_levels

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:96].astype(np.float32)
    clean = 0.5 + 0.3 * np.sin(xx / 3.0) * np.cos(yy / 5.0)
    faded = 0.6 * clean + 0.3 + 0.05 * (xx / 96.0)  # contrast lost, lifted, and a slow vignette-like ramp
    noisy = faded + rng.normal(0, 0.05, clean.shape).astype(np.float32)
    target = target_at_input_levels(clean, noisy)
    inner = (slice(16, -16), slice(16, -16))
    assert np.abs(target - faded)[inner].mean() < 0.01
    # and its low frequencies are the input's
    low = cv2.GaussianBlur(target - noisy, (0, 0), 8)
    assert np.abs(low[inner]).max() < 0.01

"""Checkpoints, --resume, the LR schedule, the CLI and the DDP path (2 CPU processes, gloo)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from oldphoto.train.checkpoints import load_checkpoint
from oldphoto.train.config import ConfigError, load_stage_config
from oldphoto.train.trainer import linear_decay, train

# GAN + VGG off: the resume test is about state, and a smaller graph keeps it fast
CFG = ["lambda_vgg=0", "nets.D.num_D=1"]


def _cfg(tmp_path, stage="vae_b", extra=()):
    base = [] if stage == "detector" else CFG  # the detector has neither a GAN nor a perceptual loss
    return load_stage_config("tiny", stage, [*base, *extra], runs_dir=tmp_path)


def test_linear_decay_schedule():
    f = linear_decay(10, 4)
    assert [f(s) for s in (0, 3, 4, 7, 10, 12)] == [1.0, 1.0, 1.0, 0.5, 0.0, 0.0]


def test_resume_restores_optimizer_state_and_continues_identically(tmp_path):
    straight = train("vae_b", _cfg(tmp_path), tmp_path / "a", steps=4, quiet=True)
    train("vae_b", _cfg(tmp_path), tmp_path / "b", steps=2, quiet=True)
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert ckpt["step"] == 2
    saved_state = ckpt["optims"]["G"]["state"]
    assert saved_state and all(int(s["step"]) == 2 for s in saved_state.values())

    resumed = train("vae_b", _cfg(tmp_path), tmp_path / "b", steps=4, resume=True, quiet=True)
    assert resumed["step"] == 4
    # the optimiser state was restored (Adam step counters continue from 2) ...
    opt_state = resumed["stage"].optimizers["G"].state_dict()["state"]
    assert all(int(s["step"]) == 4 for s in opt_state.values())
    # ... and so were weights, moments, scheduler and RNG streams: same result as an uninterrupted run
    a = straight["stage"].nets["G"].state_dict()
    b = resumed["stage"].nets["G"].state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    sched = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["scheds"]["G"]
    assert sched["last_epoch"] == 4


def test_checkpoints_load_without_running_pickled_code(tmp_path):
    train("detector", _cfg(tmp_path, "detector", ["crop=32"]), tmp_path / "d", steps=1, quiet=True)
    path = tmp_path / "d" / "checkpoint.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)  # plain data: no allow-list needed
    assert state["step"] == 1 and isinstance(state["rng"]["numpy_legacy"][1], list)
    # a checkpoint of an earlier version held numpy's RNG state as an array: inert data, still read
    state["rng"]["numpy_legacy"] = np.random.get_state()
    torch.save(state, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["rng"]["numpy_legacy"][1].shape == (624,)
    # an object that would run code when unpickled is refused
    state["rng"]["hook"] = print
    torch.save(state, tmp_path / "evil.pt")
    with pytest.raises(RuntimeError, match="unreadable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_resume_refuses_other_stage(tmp_path):
    train("vae_b", _cfg(tmp_path, extra=["lambda_gan=0"]), tmp_path / "r", steps=1, quiet=True)
    cfg = _cfg(tmp_path, "detector", ["crop=32"])
    with pytest.raises(RuntimeError, match="belongs to stage"):
        train("detector", cfg, tmp_path / "r", steps=1, resume=True, quiet=True)


def test_logs_and_samples_written(tmp_path):
    cfg = _cfg(tmp_path, extra=["lambda_gan=0", "sample_every=1"])
    train("vae_b", cfg, tmp_path / "l", steps=1, quiet=True)
    lines = (tmp_path / "l" / "log.jsonl").read_text().splitlines()
    assert "loss/l1" in json.loads(lines[-1])
    assert list((tmp_path / "l" / "samples").glob("step_*.png"))
    config = json.loads((tmp_path / "l" / "config.json").read_text())
    # the photos actually used, known once they are read (config.json was written before and lacked them)
    assert config["stage"] == "vae_b" and config["photo_source_used"].startswith("skimage")


def test_a_resumed_run_does_not_log_the_steps_after_its_checkpoint_twice(tmp_path):
    """A run killed hard (kill -9, a second Ctrl-C) after its last checkpoint had logged steps beyond it;
    --resume runs them again and log.jsonl held them twice."""
    cfg = _cfg(tmp_path, extra=["lambda_gan=0", "log_every=1", "checkpoint_every=2"])
    train("vae_b", cfg, tmp_path / "k", steps=2, quiet=True)
    with open(tmp_path / "k" / "log.jsonl", "a", encoding="utf-8") as f:  # as logged before the kill
        f.write(json.dumps({"step": 3, "loss/l1": 1.0}) + "\n" + '{"step": 4, "lo')
    train("vae_b", cfg, tmp_path / "k", steps=4, resume=True, quiet=True)
    steps = [json.loads(line)["step"] for line in (tmp_path / "k" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    # killed between the checkpoint's last line and its newline: the resumed run's first line goes below it
    train("vae_b", cfg, tmp_path / "n", steps=2, quiet=True)
    log = tmp_path / "n" / "log.jsonl"
    log.write_text(log.read_text().rstrip("\n"))
    train("vae_b", cfg, tmp_path / "n", steps=3, resume=True, quiet=True)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config"):
        load_stage_config("nope", "vae_b")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match="bad.json"):
        load_stage_config(str(bad), "vae_b")
    with pytest.raises(ConfigError, match="key=value"):
        load_stage_config("tiny", "vae_b", ["oops"])
    cfg = load_stage_config("tiny", "mapping_quality", ["nets.M.width=24"], runs_dir="R")
    assert cfg["vae_a"] == "R/vae_a" and cfg["nets"]["M"]["width"] == 24


def test_official_preset_builds_official_sizes():
    from oldphoto.train.networks import build_net

    cfg = load_stage_config("official", "vae_a")
    vae = build_net("vae", cfg["nets"]["G"])
    assert sum(p.numel() for p in vae.parameters()) == 872_131
    cfg = load_stage_config("official", "detector")
    det = build_net("detector", cfg["nets"]["N"])
    assert sum(p.numel() for p in det.parameters()) == 37_626_177  # the release's UNet


def _env():
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.slow
def test_cli_train_then_export(tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "oldphoto", "train", "detector", "--config", "tiny", "--out",
           str(runs / "detector"), "--steps", "2", "--threads", "1", "--set", "crop=32"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "done at step 2" in proc.stdout
    dest = tmp_path / "weights"
    proc = subprocess.run([sys.executable, "-m", "oldphoto", "train", "export", "--runs", str(runs),
                           "--dest", str(dest)], capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    card = json.loads((dest / "detector.json").read_text())
    assert card["architecture"] == "detector" and "2 steps" in card["notes"]
    from oldphoto.weights import load_model

    net = load_model("detector", weights_dir=dest)
    assert net.config["width"] == 4
    # a folder's networks (e.g. imported official weights) are overwritten only with --replace
    (dest / "detector.safetensors").write_bytes(b"official")
    again = [sys.executable, "-m", "oldphoto", "train", "export", "--runs", str(runs), "--dest", str(dest)]
    proc = subprocess.run(again, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 1 and "already holds detector: pass --replace" in proc.stderr, proc.stderr
    assert (dest / "detector.safetensors").read_bytes() == b"official"
    proc = subprocess.run([*again, "--replace"], capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert load_model("detector", weights_dir=dest).config["width"] == 4
    bad = subprocess.run([sys.executable, "-m", "oldphoto", "train", "vae_b", "--config", "missing.json"],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert bad.returncode == 2 and "missing.json" in bad.stderr


@pytest.mark.slow
def test_ddp_two_cpu_processes_with_torchrun(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "oldphoto", "train", "vae_b", "--config", "tiny", "--out", str(out), "--steps", "2",
           "--device", "cpu", "--threads", "1", "--set", "lambda_vgg=0", "--set", "nets.D.num_D=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "2 ranks, parameters identical: True" in proc.stdout
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["world_size"] == 2 and ckpt["step"] == 2


def test_init_from_warm_starts_matching_networks_at_step_zero(tmp_path):
    source = train("vae_b", _cfg(tmp_path, extra=["lambda_gan=0"]), tmp_path / "b", steps=2, quiet=True)
    cfg = _cfg(tmp_path, "vae_a", ["lambda_gan=0", f"init_from={json.dumps(str(tmp_path / 'b'))}"])
    warm = train("vae_a", cfg, tmp_path / "a", steps=0, quiet=True)
    assert warm["step"] == 0
    a = source["stage"].nets["G"].state_dict()
    b = warm["stage"].nets["G"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the latent discriminator, absent from the source, keeps its fresh initialisation and Adam starts over
    assert "DL" in warm["stage"].nets
    assert not warm["stage"].optimizers["G"].state_dict()["state"]


def test_init_from_without_shared_networks_is_an_error(tmp_path):
    train("vae_b", _cfg(tmp_path, extra=["lambda_gan=0"]), tmp_path / "b", steps=1, quiet=True)
    cfg = _cfg(tmp_path, "detector", ["crop=32", f"init_from={json.dumps(str(tmp_path / 'b'))}"])
    with pytest.raises(RuntimeError, match="none of the networks"):
        train("detector", cfg, tmp_path / "d", steps=1, quiet=True)


def test_init_from_a_weights_folder_loads_the_exported_roles(tmp_path):
    """``init_from`` also takes a weights folder (fine-tuning the bundled detector)."""
    from oldphoto.train.export import export_runs

    source = train("detector", _cfg(tmp_path, "detector", ["crop=32"]), tmp_path / "runs" / "detector",
                   steps=1, quiet=True)
    export_runs(tmp_path / "runs", tmp_path / "weights")
    cfg = _cfg(tmp_path, "detector", ["crop=32", f"init_from={json.dumps(str(tmp_path / 'weights'))}"])
    warm = train("detector", cfg, tmp_path / "d", steps=0, quiet=True)
    a = source["stage"].nets["N"].state_dict()
    b = warm["stage"].nets["N"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_refuses_to_start_over_in_a_folder_that_holds_a_run(tmp_path, capsys):
    """Without --resume a new run in --out silently overwrote the run there (even another stage's)."""
    from oldphoto.cli import main

    out = tmp_path / "r"
    train("detector", _cfg(tmp_path, "detector", ["crop=32"]), out, steps=1, quiet=True)
    for stage in ("detector", "vae_b"):
        assert main(["train", stage, "--config", "tiny", "--out", str(out), "--steps", "2"]) == 2
        assert "already holds a run (stage detector, step 1)" in capsys.readouterr().err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 1
    assert main(["train", "detector", "--config", "tiny", "--out", str(out), "--steps", "2", "--resume",
                 "--set", "crop=32"]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2


def _signal_during_step(monkeypatch, signum: int, at: int):
    """Make the trainer's stages send this process ``signum`` in the middle of step ``at`` + 1; returns
    the real ``build_stage`` (to put back)."""
    import os

    from oldphoto.train import trainer

    real_build = trainer.build_stage

    def build_signalled(stage_name, cfg, info):
        stage = real_build(stage_name, cfg, info)
        step_once = stage.train_step

        def train_step(batch, step):
            if step == at:
                os.kill(os.getpid(), signum)
            return step_once(batch, step)

        stage.train_step = train_step
        return stage

    monkeypatch.setattr(trainer, "build_stage", build_signalled)
    return real_build


@pytest.mark.parametrize("ctrl_c", ["default", "ignored"])
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_after_the_step_with_its_checkpoint(tmp_path, monkeypatch, capsys, name,
                                                                    ctrl_c):
    """A scheduler's SIGTERM, or the SIGHUP of a closed terminal or ssh session, killed the run at once,
    losing every step since the last periodic checkpoint: now they end it as Ctrl-C does (exit 128+N).
    Also in a job a script started in the background, where Ctrl-C is ignored (a training review: the
    run was killed without a word, its checkpoint not written)."""
    import signal

    from oldphoto.cli import main

    signum = getattr(signal, name, None)
    if signum is None:
        pytest.skip(f"no {name} here")
    _signal_during_step(monkeypatch, signum, at=1)  # in the middle of step 2
    out = tmp_path / "run"
    # at its default, as in a fresh process (an earlier test's Ray left its own SIGTERM handler here)
    previous = signal.signal(signum, signal.SIG_DFL)
    interrupt = signal.getsignal(signal.SIGINT)
    try:
        if ctrl_c == "ignored":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        code = main(["train", "detector", "--config", "tiny", "--out", str(out), "--steps", "5",
                     "--set", "crop=32", "--set", "checkpoint_every=100", "--set", "log_every=100"])
        assert signal.getsignal(signum) is signal.SIG_DFL
    finally:
        signal.signal(signum, previous)
        signal.signal(signal.SIGINT, interrupt)
    assert code == 128 + signum
    assert f"stopped by {name} at step 2" in capsys.readouterr().err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2


def test_ctrl_c_stops_after_the_step_and_leaves_its_checkpoint(tmp_path, monkeypatch, capsys):
    """Ctrl-C used to end the run with a traceback, losing every step since the last periodic checkpoint;
    now the step under way ends, its checkpoint is written, and --resume gives the uninterrupted result."""
    import signal

    from oldphoto.cli import main
    from oldphoto.train import trainer

    cfg = ["--set", "crop=32", "--set", "checkpoint_every=100", "--set", "log_every=100"]
    straight = train("detector", _cfg(tmp_path, "detector", ["crop=32", "checkpoint_every=100"]),
                     tmp_path / "a", steps=5, quiet=True)
    real_build = _signal_during_step(monkeypatch, signal.SIGINT, at=2)  # Ctrl-C in the middle of step 3
    out = tmp_path / "b"
    try:
        code = main(["train", "detector", "--config", "tiny", "--out", str(out), "--steps", "5", *cfg])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped as a KeyboardInterrupt (a traceback for the user)")
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted at step 3" in err and "Traceback" not in err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.setattr(trainer, "build_stage", real_build)
    assert main(["train", "detector", "--config", "tiny", "--out", str(out), "--steps", "5", "--resume",
                 *cfg]) == 0
    resumed = load_checkpoint(out / "checkpoint.pt")
    assert resumed["step"] == 5
    a = straight["stage"].nets["N"].state_dict()
    assert all(torch.allclose(a[k], resumed["nets"]["N"][k], atol=1e-6) for k in a)


def test_cli_warns_when_steps_end_before_the_decay_starts(tmp_path, capsys):
    """`--config small --steps 2000` kept small's decay_start (5500 for vae_b): the LR never decayed, while
    the docs said the schedule follows --steps."""
    from oldphoto.cli import main

    args = ["train", "detector", "--config", "tiny", "--set", "crop=32", "--set", "decay_start=3"]
    assert main([*args, "--out", str(tmp_path / "a"), "--steps", "2"]) == 0
    assert "decay_start 3 ≥ steps 2: the learning rate never decays" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "b"), "--steps", "4"]) == 0
    assert "never decays" not in capsys.readouterr().err


def test_resume_with_other_networks_says_what_differs(tmp_path):
    """--resume with another preset or width printed torch's list of every mismatched tensor, and with a
    discriminator switched on it ended in a KeyError traceback."""
    out = tmp_path / "r"
    train("vae_b", _cfg(tmp_path, extra=["lambda_gan=0"]), out, steps=1, quiet=True)
    with pytest.raises(RuntimeError, match=r"does not build the run's networks \(nets\.G: .*'width': 8.* in "
                                           r"the run, .*'width': 4.* now\)"):
        train("vae_b", _cfg(tmp_path, extra=["lambda_gan=0", "nets.G.width=4"]), out, steps=2, resume=True,
              quiet=True)
    with pytest.raises(RuntimeError, match=r"network D is not in the run.*init_from="):
        train("vae_b", _cfg(tmp_path, extra=["lambda_gan=1"]), out, steps=2, resume=True, quiet=True)


def test_export_takes_one_run_folder(tmp_path):
    """The face runs of docs/training.md (`--out runs/face256`) could not be exported: --runs only took
    the folder holding <stage>/ run folders."""
    from oldphoto.train.export import export_runs

    train("detector", _cfg(tmp_path, "detector", ["crop=32"]), tmp_path / "det128", steps=1, quiet=True)
    written = export_runs(tmp_path / "det128", tmp_path / "w")
    assert set(written) == {"detector"} and (tmp_path / "w" / "detector.safetensors").is_file()
    with pytest.raises(ValueError, match="a run of stage detector"):
        export_runs(tmp_path / "det128", tmp_path / "w", stages=["vae_b"])
    # a misspelt stage is named as such (it read "runs/vae_c/checkpoint.pt: missing")
    with pytest.raises(ValueError, match="unknown stage vae_c"):
        export_runs(tmp_path / "det128", tmp_path / "w", stages=["vae_c"])


def test_an_idle_discriminator_brings_no_scheduler_warning(tmp_path, real_old_dir):
    """vae_a before its latent discriminator starts (the small preset's first 1500 steps; the face stage
    before its GAN starts) printed PyTorch's multi-line "lr_scheduler.step() before optimizer.step()"
    warning on every run."""
    import warnings

    cfg = _cfg(tmp_path, "vae_a", ["lambda_gan=0", "latent_gan_start=100", f"real_old={real_old_dir}"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train("vae_a", cfg, tmp_path / "a", steps=2, quiet=True)
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]


def test_weights_exported_in_half_precision_keep_their_fingerprint():
    """A mapping trained on VAEs loaded from a --half export was said to be trained on another VAE than
    the float32 one exported beside it: fingerprints hashed float32 values."""
    import copy

    from oldphoto.nets.vae import VAE
    from oldphoto.train.checkpoints import fingerprint

    torch.manual_seed(0)
    net = VAE(width=8, n_res_encoder=1, n_res_decoder=1)
    half = copy.deepcopy(net)
    other = copy.deepcopy(net)
    with torch.no_grad():
        for value in half.state_dict().values():
            if value.is_floating_point():
                value.copy_(value.half().float())  # as saved with --half and loaded back
        next(iter(other.parameters())).add_(0.01)
    assert fingerprint(half) == fingerprint(net) != fingerprint(other)


def test_export_says_when_a_mapping_was_trained_on_another_vae(tmp_path, real_old_dir):
    """Training VAE_A on after its mapping (or a mapping trained with --set vae_a=elsewhere) exported the
    pair without a word, and restore then ran the mapping on latents it never saw."""
    from oldphoto.train.export import export_runs

    runs = tmp_path / "runs"
    quick = ["lambda_gan=0", f"real_old={real_old_dir}"]
    for stage in ("vae_b", "vae_a", "mapping_quality"):
        train(stage, _cfg(runs, stage, quick if stage != "mapping_quality" else ["lambda_gan=0"]),
              runs / stage, steps=1, quiet=True)
    said: list[str] = []
    export_runs(runs, tmp_path / "w", warn=said.append)
    assert said == []
    train("vae_a", _cfg(runs, "vae_a", quick), runs / "vae_a", steps=2, resume=True, quiet=True)
    export_runs(runs, tmp_path / "w2", warn=said.append)
    assert len(said) == 1 and "mapping_quality was trained on another VAE_A" in said[0]
    assert f"{runs / 'vae_a'} at step 2" in said[0]


def test_fp32_training_makes_no_autocast(monkeypatch):
    """PyTorch before 2.5 refuses torch.autocast("mps") even with enabled=False: fp32 training on Apple
    MPS failed before its first step (the trainer's context) and at every update (Stage.optimize)."""
    from types import SimpleNamespace

    from oldphoto.train.stages.base import Stage
    from oldphoto.train.trainer import autocast_context

    real = torch.autocast

    def old_autocast(device_type, *args, **kwargs):
        if device_type == "mps":
            raise RuntimeError("User specified an unsupported autocast device_type 'mps'")
        return real(device_type, *args, **kwargs)

    monkeypatch.setattr(torch, "autocast", old_autocast)
    mps = torch.device("mps")
    with autocast_context(mps, "fp32"):
        pass
    # bf16 there: MPS autocast warned and turned itself off, so the run trained in fp32 unsaid
    with pytest.raises(ValueError, match="bf16 is not supported on Apple MPS"):
        autocast_context(mps, "bf16")
    net = torch.nn.Linear(2, 1)
    stage = SimpleNamespace(device=mps, cfg={"precision": "fp32"},
                            optimizers={"G": torch.optim.SGD(net.parameters(), lr=0.1)})
    before = net.weight.detach().clone()
    Stage.optimize(stage, "G", net(torch.ones(1, 2)).sum())
    assert not torch.equal(net.weight, before)


def test_a_progress_line_to_a_closed_terminal_does_not_end_the_run(monkeypatch):
    """The terminal closing fails the next progress line with EIO before its SIGHUP is handled: that
    ended the run (exit 1) without its checkpoint.  Now the lines go to /dev/null; other errors stay."""
    import errno
    import io

    from oldphoto.train import trainer

    class Failing(io.StringIO):
        def __init__(self, err):
            super().__init__()
            self.err = err

        def write(self, text):
            raise OSError(self.err, os.strerror(self.err))

    detached = []
    monkeypatch.setattr(trainer, "silence", lambda fds: detached.append(list(fds)))
    monkeypatch.setattr("sys.stdout", Failing(errno.EIO))
    trainer._progress("[detector] step 3/5", [1])
    assert detached == [[1]]
    monkeypatch.setattr("sys.stdout", Failing(errno.ENOSPC))
    with pytest.raises(OSError):
        trainer._progress("[detector] step 4/5", [1])

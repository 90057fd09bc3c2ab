"""The generic training loop shared by every stage.

A *stage* (see :mod:`oldphoto.train.stages`) owns its networks, optimisers, data and loss; this module
owns everything else: seeding, the paper's learning-rate schedule (constant, then linear decay to zero),
checkpoints (networks + optimisers + schedulers + step + RNG states, written atomically every
``checkpoint_every`` steps and at the end), ``--resume``, logging (TensorBoard scalars and image samples
when ``tensorboard`` is installed, always a ``log.jsonl`` and PNG sample sheets) and DDP.

Checkpoint layout in ``out_dir``: ``checkpoint.pt`` (the latest) and ``config.json`` (the resolved config).
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from oldphoto.files import atomic_write, atomic_write_text
from oldphoto.tensors import batch_to_images
from oldphoto.train import distributed

CHECKPOINT = "checkpoint.pt"


def linear_decay(total_steps: int, decay_start: int):
    """LR multiplier: 1 until ``decay_start``, then linearly to 0 at ``total_steps`` (paper §4.1)."""
    decay_len = max(1, total_steps - decay_start)

    def factor(step: int) -> float:
        if step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / decay_len)

    return factor


def seed_everything(seed: int, rank: int = 0, step: int = 0) -> np.random.Generator:
    """Seed python, numpy's legacy RNG and torch; return the data generator for this (rank, step)."""
    ss = np.random.SeedSequence([seed, rank, step])
    torch_seed, py_seed = (int(x) for x in ss.generate_state(2, dtype=np.uint32))
    torch.manual_seed(torch_seed)
    random.seed(py_seed)
    np.random.seed(py_seed)
    return np.random.default_rng(ss)


class Logger:
    """Scalars and images to TensorBoard (if importable) + ``log.jsonl`` + PNG sample sheets."""

    def __init__(self, out_dir: Path, enabled: bool) -> None:
        self.out_dir = out_dir
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out_dir / "tb"))
        except Exception as exc:  # noqa: BLE001 - TensorBoard is optional; say why it is off
            print(f"[train] TensorBoard logging off ({type(exc).__name__}: {exc}); "
                  f"scalars go to {out_dir / 'log.jsonl'}", file=sys.stderr)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.out_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, "time": time.time(), **values}) + "\n")
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def images(self, step: int, images: dict[str, torch.Tensor]) -> None:
        """``images``: name -> N×C×H×W in [-1, 1]; one row per name in the PNG sheet."""
        if not self.enabled or not images:
            return
        rows = []
        for name, t in images.items():
            t = batch_to_images(t[:4])  # N×H×W×C in [0, 1]
            if t.shape[3] == 1:
                t = np.repeat(t, 3, axis=3)
            if self.writer is not None:
                self.writer.add_images(name, t, step, dataformats="NHWC")
            rows.append(np.concatenate(list(t), axis=1))  # H×(N·W)×C
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows
                if r.shape[0] == rows[0].shape[0]]
        sheet = np.concatenate(rows, axis=0)
        from PIL import Image

        path = self.out_dir / "samples" / f"step_{step:07d}.png"
        image = Image.fromarray((sheet * 255 + 0.5).astype(np.uint8))
        atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise RuntimeError(f"{path}: unreadable checkpoint ({exc})") from exc


def train(stage_name: str, config: dict[str, Any], out_dir: str | Path, *, resume: bool = False,
          steps: int | None = None, device: str = "auto", quiet: bool = False) -> dict[str, Any]:
    """Run (or continue) one stage.  Returns ``{"step", "losses"}`` of the last step."""
    from oldphoto.train.stages import build_stage

    out_dir = Path(out_dir)
    info = distributed.init(device)
    cfg = dict(config)
    if steps is not None:
        cfg["steps"] = int(steps)
    total = int(cfg.get("steps", 1000))
    decay_start = int(cfg.get("decay_start", total // 2))
    seed = int(cfg.get("seed", 0))
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    distributed.barrier(info)

    ckpt_path = out_dir / CHECKPOINT
    ckpt = load_checkpoint(ckpt_path) if resume and ckpt_path.is_file() else None
    if resume and ckpt is None and info.is_main and not quiet:
        print(f"[train] --resume: no checkpoint in {out_dir}, starting from step 0", file=sys.stderr)
    if ckpt is not None and ckpt.get("stage") != stage_name:
        raise RuntimeError(f"{ckpt_path} belongs to stage {ckpt.get('stage')!r}, not {stage_name!r}")
    start = int(ckpt["step"]) if ckpt else 0

    data_rng = seed_everything(seed, info.rank, start)
    stage = build_stage(stage_name, cfg, info)
    factor = linear_decay(total, decay_start)
    schedulers = {k: torch.optim.lr_scheduler.LambdaLR(opt, factor) for k, opt in stage.optimizers.items()}
    if ckpt is not None:
        stage.load_state(ckpt["nets"], ckpt["optims"])
        for k, sch in schedulers.items():
            sch.load_state_dict(ckpt["scheds"][k])
        rng = ckpt.get("rng")
        if rng and info.world_size == 1 and ckpt.get("world_size", 1) == 1:
            torch.set_rng_state(rng["torch"])
            np.random.set_state(rng["numpy_legacy"])
            random.setstate(rng["python"])
            data_rng.bit_generator.state = rng["data"]
    elif cfg.get("init_from"):
        _init_from(stage, Path(str(cfg["init_from"])), info.is_main and not quiet)
    stage.wrap_distributed()

    if info.is_main:
        atomic_write_text(out_dir / "config.json", json.dumps({"stage": stage_name, **cfg}, indent=2))
    logger = Logger(out_dir, info.is_main)
    batches = stage.batches(data_rng)
    log_every = int(cfg.get("log_every", 10))
    sample_every = int(cfg.get("sample_every", 200))
    ckpt_every = int(cfg.get("checkpoint_every", 200))

    def checkpoint(step: int) -> None:
        if info.is_main:
            state = {
                "stage": stage_name, "step": step, "config": cfg, "world_size": info.world_size,
                "nets": stage.net_states(),
                "optims": {k: o.state_dict() for k, o in stage.optimizers.items()},
                "scheds": {k: s.state_dict() for k, s in schedulers.items()},
                "rng": {"torch": torch.get_rng_state(), "numpy_legacy": np.random.get_state(),
                        "python": random.getstate(), "data": data_rng.bit_generator.state},
            }
            save_checkpoint(ckpt_path, state)
        distributed.barrier(info)

    losses: dict[str, float] = {}
    t0 = time.time()
    step = start
    try:
        while step < total:
            batch = next(batches)
            raw = stage.train_step(batch, step)
            for sch in schedulers.values():
                sch.step()
            step += 1
            if step % log_every == 0 or step == total:
                losses = {k: float(distributed.mean_across(v.detach().float(), info)) for k, v in raw.items()}
                if not all(math.isfinite(v) for v in losses.values()):
                    raise FloatingPointError(f"non-finite loss at step {step}: {losses}")
                lr = next(iter(schedulers.values())).get_last_lr()[0] if schedulers else 0.0
                logger.scalars(step, {**{f"loss/{k}": v for k, v in losses.items()}, "lr": lr})
                if info.is_main and not quiet:
                    rate = (step - start) / max(1e-9, time.time() - t0)
                    text = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
                    print(f"[{stage_name}] step {step}/{total} {text} lr={lr:.2e} ({rate:.2f} it/s)",
                          flush=True)
            else:
                losses = {k: float(v.detach()) for k, v in raw.items()}
            if step % sample_every == 0 or step == total:
                logger.images(step, stage.samples(batch))
            if step % ckpt_every == 0 or step == total:
                checkpoint(step)
    finally:
        logger.close()
    result: dict[str, Any] = {"step": step, "losses": losses, "stage": stage}
    if info.enabled:
        result["ranks_in_sync"] = _ranks_in_sync(stage, info)
        if info.is_main and not quiet:
            print(f"[{stage_name}] {info.world_size} ranks, parameters identical: {result['ranks_in_sync']}")
    return result


def _init_from(stage, source: Path, verbose: bool) -> None:
    """Warm start (config ``init_from``): the networks of another run's checkpoint that this stage also
    has, with fresh optimisers, schedule and step 0 (unlike --resume, which continues a run as it was).
    Networks the source lacks (e.g. VAE_A's latent discriminator when starting from a run without it)
    keep their fresh initialisation."""
    path = source / CHECKPOINT if source.is_dir() else source
    ckpt = load_checkpoint(path)
    loaded = []
    for key, net in stage.nets.items():
        if key in ckpt["nets"]:
            # a width mismatch or an unknown tensor is an error, not a surprise; tensors the source lacks
            # (a module added since, e.g. the face generator's gate) keep their fresh initialisation
            missing, unexpected = net.load_state_dict(ckpt["nets"][key], strict=False)
            if unexpected:
                raise RuntimeError(f"init_from {path}: {key} has no tensors {', '.join(unexpected)}")
            if missing and verbose:
                print(f"[train] {key}: fresh {', '.join(missing)} (not in {path})", flush=True)
            loaded.append(key)
    if not loaded:
        raise RuntimeError(f"init_from {path}: none of the networks {sorted(stage.nets)} is in it")
    if verbose:
        print(f"[train] initialised {', '.join(loaded)} from {path} (step {ckpt.get('step')})", flush=True)


def _ranks_in_sync(stage, info: distributed.DistInfo) -> bool:
    """Whether every rank holds the same parameters (DDP must keep them equal)."""
    import torch.distributed as dist

    total = torch.zeros(2, dtype=torch.float64)
    for net in stage.nets.values():
        for p in net.parameters():
            total[0] += p.detach().double().sum().cpu()
            total[1] += p.detach().double().abs().sum().cpu()
    gathered = [torch.zeros_like(total) for _ in range(info.world_size)]
    dist.all_gather(gathered, total)
    return all(torch.allclose(g, gathered[0], rtol=1e-9, atol=1e-9) for g in gathered)

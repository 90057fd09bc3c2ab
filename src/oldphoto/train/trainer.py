"""The generic training loop shared by every stage.

A *stage* (see :mod:`oldphoto.train.stages`) owns its networks, optimisers, data and loss; this module
owns everything else: seeding, the paper's learning-rate schedule (constant, then linear decay to zero),
checkpoints (networks + optimisers + schedulers + step + RNG states, written atomically every
``checkpoint_every`` steps and at the end), ``--resume``, logging (TensorBoard scalars and image samples
when ``tensorboard`` is installed, always a ``log.jsonl`` and PNG sample sheets) and DDP.

Checkpoint layout in ``out_dir``: ``checkpoint.pt`` (the latest) and ``config.json`` (the resolved config).

The config is checked and completed from the schema (:mod:`oldphoto.train.schema`, where every default
lives); ``--resume`` also checks the config stored in the checkpoint.

Accelerator options (config keys; all off by default, so CPU runs are unchanged):

* ``time_budget`` (seconds): the run stops when its time is up instead of at ``steps`` (which stays an
  upper bound); the learning rate then follows the same constant-then-linear shape over *time*, decaying
  from ``time_decay_start`` (fraction of the budget, default 0.5) to 0 at the end.  A GPU leg shares one
  wall-clock budget between stages this way, whatever the machine's speed;
* ``precision``: ``"bf16"`` runs the forward passes under ``torch.autocast`` in bfloat16 (backward and the
  optimiser steps outside it, parameters stay float32; bf16 needs no loss scaling);
* ``channels_last``: networks and image batches in NHWC memory format (faster convolutions on GPUs);
* ``data_workers``: crops are cut and degraded in that many DataLoader worker processes (each with its own
  seeded generator), since the synthesis on the CPU, not the GPU, bounds a small network's speed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from oldphoto.cli import silence, terminal_fds
from oldphoto.files import atomic_write, atomic_write_text
from oldphoto.tensors import batch_to_images
from oldphoto.train import distributed, schema
from oldphoto.train.checkpoints import CHECKPOINT, load_checkpoint, save_checkpoint
from oldphoto.train.stages import STAGES, build_stage

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}  # the names: schema.PRECISIONS


def linear_decay(total_steps: int, decay_start: int):
    """LR multiplier: 1 until ``decay_start``, then linearly to 0 at ``total_steps`` (paper §4.1)."""
    decay_len = max(1, total_steps - decay_start)

    def factor(step: int) -> float:
        if step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / decay_len)

    return factor


def time_decay(budget_s: float, decay_start: float, clock: dict[str, float]):
    """LR multiplier over wall-clock time: 1 until ``decay_start`` (fraction of ``budget_s``), then linearly
    to 0 at the end of the budget.  ``clock["t0"]`` is the start of training (set once the data is ready)."""
    decay_start = min(max(decay_start, 0.0), 0.999)

    def factor(step: int) -> float:
        t0 = clock.get("t0")
        if t0 is None:
            return 1.0
        frac = (time.time() - t0) / budget_s
        if frac < decay_start:
            return 1.0
        return max(0.0, 1.0 - (frac - decay_start) / (1.0 - decay_start))

    return factor


def autocast_context(device: torch.device, precision: str):
    """``torch.autocast`` for ``precision`` ("fp32": a no-op context)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    if dtype is not None and device.type == "mps":  # (MPS autocast warns and turns itself off: fp32 unsaid)
        raise ValueError("precision bf16 is not supported on Apple MPS: train with precision fp32")
    if dtype is None:  # no torch.autocast at all: before PyTorch 2.5 it refuses "mps" even disabled
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


class _StageStream(torch.utils.data.IterableDataset):
    """A stage's batch generator run inside DataLoader workers, each with its own seeded generator."""

    def __init__(self, stage, seed: int, rank: int, start: int) -> None:
        super().__init__()
        self.stage, self.seed, self.rank, self.start = stage, seed, rank, start

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        torch.set_num_threads(1)  # one process per core does the parallelism
        # Ctrl-C (and a closed terminal's SIGHUP, a scheduler's SIGTERM) reaches the workers too: the
        # training process decides when to stop, and stops them
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        # (not cv2.setNumThreads: in a process forked after OpenCV's thread pool ran, it waits forever on
        # that pool's lock; tests/train hung there)
        # stream 0 is the single-process generator; workers draw from streams 1..N
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.rank, self.start, 1 + worker]))
        return self.stage.batches(rng)


def batch_stream(stage, data_rng: np.random.Generator, workers: int, seed: int, rank: int, start: int,
                 pin: bool):
    """The training batches: the stage's own generator (``workers`` = 0, the reproducible path) or a
    DataLoader over ``workers`` forked processes."""
    if workers <= 0:
        return stage.batches(data_rng)
    import multiprocessing

    stage.prepare_data()  # decode the photo pools once, before forking, so workers share them
    ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    loader = torch.utils.data.DataLoader(_StageStream(stage, seed, rank, start), batch_size=None,
                                         num_workers=workers, pin_memory=pin, prefetch_factor=4,
                                         multiprocessing_context=ctx)
    return iter(loader)


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

    def __init__(self, out_dir: Path, enabled: bool, resumed_at: int | None = None) -> None:
        """``resumed_at``: the step of the checkpoint a resumed run starts from.  What a run killed after
        that checkpoint had logged beyond it is dropped (the resumed run logs those steps again)."""
        self.out_dir = out_dir
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        if resumed_at is not None:
            self._drop_after(resumed_at)
        try:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resumed_at is None else resumed_at + 1  # (TensorBoard's own way)
            self.writer = SummaryWriter(str(out_dir / "tb"), purge_step=purge)
        except Exception as exc:  # noqa: BLE001 - TensorBoard is optional; say why it is off
            print(f"[train] TensorBoard logging off ({type(exc).__name__}: {exc}); "
                  f"scalars go to {out_dir / 'log.jsonl'}", file=sys.stderr)

    def _drop_after(self, step: int) -> None:
        path = self.out_dir / "log.jsonl"
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)

        def logged_after(line: str) -> bool:
            try:
                return int(json.loads(line)["step"]) > step
            except (ValueError, KeyError, TypeError):
                return True  # a line cut short by the kill (the next one would be written onto it)

        kept = [line for line in lines if not logged_after(line)]
        if kept and not kept[-1].endswith("\n"):  # (killed between a line and its end: the next goes on)
            kept[-1] += "\n"
        if kept != lines:
            atomic_write_text(path, "".join(kept))

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


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP: the run stopped after a whole step and its checkpoint holds
    that step (``signum``: the signal that stopped it)."""

    def __init__(self, step: int, checkpoint: Path, signum: int = signal.SIGINT) -> None:
        super().__init__(f"interrupted at step {step}")
        self.step, self.checkpoint, self.signum = step, checkpoint, signum


# Signals that end a run after the step under way, with its checkpoint: Ctrl-C; SIGTERM (a cluster
# scheduler's notice before it kills the job, a shutdown); SIGHUP (POSIX: the terminal or the ssh
# session the run was started from closed), whose default would lose every step since the last checkpoint.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))


def _say(text: str) -> None:
    """A line on stderr from a signal handler (os.write: a print() it interrupted would be re-entered);
    nothing where the terminal is gone."""
    try:
        os.write(2, text.encode())
    except OSError:
        pass


def _progress(line: str, terminals: Sequence[int]) -> None:
    """A progress line on stdout.  The terminal closing fails the write (EIO) before its SIGHUP is
    handled: the ``terminals`` (:func:`oldphoto.cli.terminal_fds`, read while it was there) then go to
    the null device and the run goes on to stop with its checkpoint."""
    try:
        print(line, flush=True)
    except OSError as exc:
        if exc.errno != errno.EIO:
            raise
        silence(terminals)


@contextlib.contextmanager
def _stop_after_step(enabled: bool, name: str):
    """While training: the first Ctrl-C, SIGTERM or SIGHUP sets ``state["stop"]`` (the loop ends after
    the step under way and writes its checkpoint; ``state["signal"]`` says which); a second Ctrl-C raises
    KeyboardInterrupt at once.  Left alone off the main thread and under DDP (every rank must stop at the
    same step); each signal is left alone where it is not at its default (SIGINT ignored or someone
    else's handler, which leaves them all to that application; SIGHUP ignored under ``nohup``)."""
    # (the terminals are read now: once hung up, isatty says False)
    state: dict[str, Any] = {"stop": False, "signal": None, "terminals": terminal_fds()}
    defaults = {signal.SIGINT: signal.default_int_handler}
    ours = [] if not enabled or threading.current_thread() is not threading.main_thread() else [
        signum for signum in STOP_SIGNALS if signal.getsignal(signum) is defaults.get(signum, signal.SIG_DFL)]
    # someone else's Ctrl-C handler (an application training in-process): its signals, all of them; an
    # ignored Ctrl-C is a job a script started in the background (`&` ignores SIGINT there), whose
    # scheduler's SIGTERM must still end the step and write its checkpoint (it lost the run's progress)
    if signal.SIGINT not in ours and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield state
        return

    def handler(signum, frame):
        if signum == signal.SIGINT and state["stop"]:
            raise KeyboardInterrupt
        if hasattr(signal, "SIGHUP") and signum == signal.SIGHUP:
            silence(state["terminals"])
        if not state["stop"]:
            state["stop"], state["signal"] = True, signum
            what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            again = " (Ctrl-C again to stop at once)" if signum == signal.SIGINT else ""
            _say(f"[{name}] {what}: stopping after this step and writing its checkpoint{again}\n")

    previous = {signum: signal.signal(signum, handler) for signum in ours}
    try:
        yield state
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


def _numpy_state() -> tuple[str, list[int], int, int, float]:
    """numpy's legacy RNG state as plain Python data (a checkpoint then loads with weights_only=True)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return name, keys.tolist(), int(pos), int(has_gauss), float(cached)


def train(stage_name: str, config: dict[str, Any], out_dir: str | Path, *, resume: bool = False,
          steps: int | None = None, device: str = "auto", quiet: bool = False) -> dict[str, Any]:
    """Run (or continue) one stage.  Returns ``{"step", "losses"}`` of the last step."""
    out_dir = Path(out_dir)
    # checked and completed here too: callers add keys after load_stage_config (the CLI, the leg)
    cfg = schema.resolve(stage_name, config, f"stage {stage_name} config")
    info = distributed.init(device)
    if steps is not None:
        cfg["steps"] = int(steps)
    total = int(cfg["steps"])
    decay_start = total // 2 if cfg["decay_start"] is None else int(cfg["decay_start"])
    seed = int(cfg["seed"])
    budget = float(cfg["time_budget"] or 0)
    precision = str(cfg["precision"])
    autocast_context(info.device, precision)  # validates the name before anything is built
    if info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick its fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg["device_used"] = device_name(info.device)
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    distributed.barrier(info)

    ckpt_path = out_dir / CHECKPOINT
    ckpt = load_checkpoint(ckpt_path) if resume and ckpt_path.is_file() else None
    if resume and ckpt is None and info.is_main and not quiet:
        print(f"[train] --resume: no checkpoint in {out_dir}, starting from step 0", file=sys.stderr)
    if ckpt is not None and ckpt.get("stage") != stage_name:
        raise RuntimeError(f"{ckpt_path} belongs to stage {ckpt.get('stage')!r}, not {stage_name!r}")
    if ckpt is not None:
        schema.check_stored(stage_name, ckpt.get("config"), str(ckpt_path))
    start = int(ckpt["step"]) if ckpt else 0

    data_rng = seed_everything(seed, info.rank, start)
    if cfg["init_from"] and ckpt is None:
        _adopt_card_configs(stage_name, cfg, Path(str(cfg["init_from"])))
    stage = build_stage(stage_name, cfg, info)
    clock: dict[str, float] = {}
    factor = (time_decay(budget, float(cfg["time_decay_start"]), clock) if budget > 0
              else linear_decay(total, decay_start))
    schedulers = {k: torch.optim.lr_scheduler.LambdaLR(opt, factor) for k, opt in stage.optimizers.items()}
    if ckpt is not None:
        try:
            stage.load_state(ckpt["nets"], ckpt["optims"])
        except (KeyError, RuntimeError, ValueError) as exc:  # torch lists every mismatched tensor
            raise RuntimeError(_resume_mismatch(ckpt_path, ckpt, stage)) from exc
        for k, sch in schedulers.items():
            sch.load_state_dict(ckpt["scheds"][k])
        rng = ckpt.get("rng")
        if rng and info.world_size == 1 and ckpt.get("world_size", 1) == 1:
            torch.set_rng_state(rng["torch"])
            np.random.set_state(rng["numpy_legacy"])
            random.setstate(rng["python"])
            data_rng.bit_generator.state = rng["data"]
            if "cuda" in rng and info.device.type == "cuda":  # (the VAEs' sampling noise is drawn there)
                torch.cuda.set_rng_state(rng["cuda"], info.device)
    elif cfg["init_from"]:
        _init_from(stage, Path(str(cfg["init_from"])), info.is_main and not quiet)
    stage.wrap_distributed()

    def write_config() -> None:  # (again with each checkpoint: the sources used are known once read)
        atomic_write_text(out_dir / "config.json", json.dumps({"stage": stage_name, **cfg}, indent=2))

    if info.is_main:
        write_config()
    logger = Logger(out_dir, info.is_main, resumed_at=start if ckpt is not None else None)
    # installed before the DataLoader workers fork, so that a Ctrl-C sent to them too does not kill them
    interrupt = _stop_after_step(info.world_size == 1, stage_name)
    stop = interrupt.__enter__()
    try:
        batches = batch_stream(stage, data_rng, int(cfg["data_workers"]), seed, info.rank, start,
                               pin=info.device.type == "cuda")
    except BaseException:
        interrupt.__exit__(None, None, None)
        raise
    log_every = int(cfg["log_every"])
    sample_every = int(cfg["sample_every"])
    ckpt_every = int(cfg["checkpoint_every"])

    def checkpoint(step: int) -> None:
        if info.is_main:
            state = {
                "stage": stage_name, "step": step, "config": cfg, "world_size": info.world_size,
                "nets": stage.net_states(),
                "optims": {k: o.state_dict() for k, o in stage.optimizers.items()},
                "scheds": {k: s.state_dict() for k, s in schedulers.items()},
                "rng": {"torch": torch.get_rng_state(), "numpy_legacy": _numpy_state(),
                        "python": random.getstate(), "data": data_rng.bit_generator.state},
            }
            if info.device.type == "cuda":
                state["rng"]["cuda"] = torch.cuda.get_rng_state(info.device)
            save_checkpoint(ckpt_path, state)
            write_config()
        distributed.barrier(info)

    losses: dict[str, float] = {}
    t0 = time.time()
    step = start
    saved = start if ckpt is not None else -1

    def out_of_time() -> bool:
        return budget > 0 and "t0" in clock and time.time() - clock["t0"] >= budget

    try:
        while step < total and not out_of_time() and not stop["stop"]:
            batch = next(batches)
            if "t0" not in clock:
                clock["t0"] = t0 = time.time()  # the budget counts training, not worker start-up
            with autocast_context(info.device, precision):
                raw = stage.train_step(batch, step)
            with warnings.catch_warnings():
                # a network whose loss is off so far (a discriminator before its GAN term starts) has not
                # stepped its optimizer; its schedule advances all the same, so its learning rate is the
                # step's when the loss starts: PyTorch's warning about that order does not apply
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
                for sch in schedulers.values():
                    sch.step()
            step += 1
            last = step == total or out_of_time()
            if step % log_every == 0 or last:
                losses = {k: float(distributed.mean_across(v.detach().float(), info)) for k, v in raw.items()}
                if not all(math.isfinite(v) for v in losses.values()):
                    raise FloatingPointError(f"non-finite loss at step {step}: {losses}")
                lr = next(iter(schedulers.values())).get_last_lr()[0] if schedulers else 0.0
                logger.scalars(step, {**{f"loss/{k}": v for k, v in losses.items()}, "lr": lr})
                if info.is_main and not quiet:
                    rate = (step - start) / max(1e-9, time.time() - t0)
                    text = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
                    _progress(f"[{stage_name}] step {step}/{total} {text} lr={lr:.2e} ({rate:.2f} it/s)",
                              stop["terminals"])
            else:
                losses = {k: float(v.detach()) for k, v in raw.items()}
            if step % sample_every == 0 or last:
                logger.images(step, stage.samples(batch))
            if step % ckpt_every == 0 or last:
                checkpoint(step)
                saved = step
        if saved != step:  # e.g. steps=0: still leave a checkpoint of what was trained
            checkpoint(step)
    finally:
        logger.close()
        del batches  # shuts DataLoader workers down
        interrupt.__exit__(None, None, None)
    if stop["stop"] and step < total:
        raise TrainingInterrupted(step, ckpt_path, stop["signal"])
    result: dict[str, Any] = {"step": step, "losses": losses, "stage": stage,
                              "seconds": round(time.time() - t0, 2), "device": cfg["device_used"]}
    if info.enabled:
        result["ranks_in_sync"] = _ranks_in_sync(stage, info)
        if info.is_main and not quiet:
            print(f"[{stage_name}] {info.world_size} ranks, parameters identical: {result['ranks_in_sync']}")
    return result


def _resume_mismatch(path: Path, ckpt: dict[str, Any], stage) -> str:
    """One line for a checkpoint whose networks this config does not build (another preset, a width,
    a discriminator switched on): what differs, and what --resume needs."""
    old = (ckpt.get("config") or {}).get("nets", {})
    new = stage.cfg["nets"]
    stored, built = set(ckpt.get("nets", {})), set(stage.nets)
    diffs = [f"nets.{k}: {old.get(k)} in the run, {new.get(k)} now" for k in sorted(stored & built)
             if old.get(k) != new.get(k)]
    diffs += [f"network {k} is not in the run" for k in sorted(built - stored)]
    diffs += [f"the run's network {k} is not built now" for k in sorted(stored - built)]
    return (f"{path}: this config does not build the run's networks ({'; '.join(diffs) or 'other tensors'}); "
            "--resume builds the run's networks from the command line as a new run does: give the --config "
            "and --set options it was started with again (its config.json records them); to change "
            "networks or losses, start a new run with --set init_from=" + str(path.parent))


def _is_weights_folder(source: Path) -> bool:
    return source.is_dir() and not (source / CHECKPOINT).is_file() and any(source.glob("*.safetensors"))


def _adopt_card_configs(stage_name: str, cfg: dict[str, Any], source: Path) -> None:
    """``init_from`` a weights folder (e.g. the bundled one): the exported networks take the configs of
    their cards, so a warm start always builds them at the widths the weights have."""
    if not _is_weights_folder(source):
        return
    from oldphoto.weights import find_card

    for key, (role, _arch) in STAGES[stage_name].exports_for(cfg).items():  # face: the trained size's role
        if (source / f"{role}.safetensors").is_file():
            card = find_card(role, source)
            if card is not None:
                cfg.setdefault("nets", {})[key] = dict(card.config)


def _init_from(stage, source: Path, verbose: bool) -> None:
    """Warm start (config ``init_from``): the networks of another run's checkpoint that this stage also
    has, with fresh optimisers, schedule and step 0 (unlike --resume, which continues a run as it was).
    Networks the source lacks (e.g. VAE_A's latent discriminator when starting from a run without it)
    keep their fresh initialisation.  ``source`` may also be a weights folder (``<role>.safetensors`` +
    card, e.g. the bundled weights): then the networks the stage exports are loaded from their roles."""
    if _is_weights_folder(source):
        _init_from_weights(stage, source, verbose)
        return
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


def _init_from_weights(stage, source: Path, verbose: bool) -> None:
    from oldphoto.weights import load_model

    loaded = []
    exports = type(stage).exports_for(stage.cfg)
    for key, (role, _arch) in exports.items():
        if (source / f"{role}.safetensors").is_file():  # never the fallback to the bundled folder
            net = load_model(role, weights_dir=source)
            stage.nets[key].load_state_dict(net.state_dict())  # strict: widths must match
            loaded.append(f"{key}<-{role}")
    if not loaded:
        roles = sorted(r for r, _ in exports.values())
        raise RuntimeError(f"init_from {source}: none of {', '.join(roles)} is in this weights folder")
    if verbose:
        print(f"[train] initialised {', '.join(loaded)} from the weights folder {source}", flush=True)


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

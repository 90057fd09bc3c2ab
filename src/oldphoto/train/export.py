"""``oldphoto train export``: trained runs -> a weights folder (``<role>.safetensors`` + card).

Each stage's run directory (``<runs>/<stage>/checkpoint.pt``) contributes the networks its stage class
lists in ``exports``; VAE_B is written twice, as ``vae_b_quality`` and ``vae_b_scratch`` (the official
release trains two VAE_B; the small weights share one).  The card's ``source`` names the run and step,
``sha256`` is the checkpoint file's hash, ``notes`` carries the training configuration and ``metrics`` the
measured held-out numbers when given (a JSON object: role -> metrics, or "*" for every role).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXTRA_ROLES = {"vae_b": {"G": ["vae_b_scratch"]}}


def _training_summary(stage: str, state: dict[str, Any]) -> str:
    cfg = dict(state["config"])
    keep = {k: v for k, v in cfg.items() if k not in ("nets",)}
    losses = {k: v for k, v in keep.items() if k.startswith("lambda_")}
    side = cfg["nets"]["G"].get("size") if stage == "face" else cfg.get("crop")  # faces: whole aligned crops
    # the face stage trains on aligned faces (the card's ``data``), not on the clean photo sources
    source = ("faces: " + str(cfg.get("faces")) if stage == "face"
              else "clean photos: " + str(cfg.get("photo_source_used", cfg.get("photos"))))
    return (f"Trained with `oldphoto train {stage} --config {cfg.get('config_name', '?')}` "
            f"for {state['step']} steps of batch {cfg.get('batch_size')} × {side}² crops "
            f"({source}; world size {state.get('world_size', 1)}"
            f"{'; on ' + str(cfg['device_used']) if cfg.get('device_used') else ''}"
            f"{'; ' + str(cfg['precision']) if cfg.get('precision') else ''}). "
            f"Loss weights: {json.dumps(losses, sort_keys=True)}. Full training config: "
            f"{json.dumps(keep, sort_keys=True)}")


def _warm_starts(config: dict[str, Any]) -> list[tuple[str, int]]:
    """The chain of runs this one was warm-started from (``init_from``), nearest first, with the step each
    was at: their steps are part of the exported network's training.  Stops where a checkpoint is gone."""
    from oldphoto.train.checkpoints import CHECKPOINT, load_checkpoint

    chain: list[tuple[str, int]] = []
    source = config.get("init_from")
    while source and len(chain) < 16:
        path = Path(str(source))
        path = path / CHECKPOINT if path.is_dir() else path
        if not path.is_file():
            chain.append((str(source), -1))  # recorded, but its steps are unknown here
            break
        state = load_checkpoint(path)
        chain.append((str(source), int(state["step"])))
        source = state.get("config", {}).get("init_from")
    return chain


def export_runs(runs: Path, dest: Path, stages: list[str] | None = None,
                metrics: dict[str, Any] | None = None, notes: dict[str, str] | None = None,
                half: bool = False, warn=None) -> dict[str, Path]:
    """``warn``: told what does not fit (default: a line on stderr)."""
    from oldphoto.train import data
    from oldphoto.train.checkpoints import fingerprint, load_checkpoint
    from oldphoto.train.networks import build_net
    from oldphoto.train.schema import check_stored
    from oldphoto.train.stages import STAGES
    from oldphoto.weights import save_model
    from oldphoto.weights.store import sha256_file

    warn = warn or data.warn
    if not runs.is_dir():
        raise FileNotFoundError(f"{runs}: no such runs folder")
    unknown = [s for s in stages or [] if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage {', '.join(unknown)} (stages: {', '.join(STAGES)})")
    run_dirs = {s: runs / s for s in STAGES}
    loaded: dict[Path, dict[str, Any]] = {}  # a checkpoint read to find its stage is not read again
    if (runs / "checkpoint.pt").is_file():  # one run's own folder (e.g. the face legs' runs/face256)
        loaded[runs / "checkpoint.pt"] = load_checkpoint(runs / "checkpoint.pt")
        stage = loaded[runs / "checkpoint.pt"].get("stage")
        if stage not in STAGES:
            raise ValueError(f"{runs / 'checkpoint.pt'} holds no known stage ({stage!r})")
        if stages and stage not in stages:
            raise ValueError(f"{runs} is a run of stage {stage}, not of {', '.join(stages)}")
        run_dirs = {stage: runs}
        stages = [stage]
    names = stages or [s for s in STAGES if (run_dirs[s] / "checkpoint.pt").is_file()]
    if not names:
        raise FileNotFoundError(f"{runs}: no stage run with a checkpoint.pt")
    written: dict[str, Path] = {}
    exported_vaes: dict[str, tuple[str, str]] = {}  # vae_a / vae_b -> (fingerprint, run and step)
    trained_on: dict[str, dict[str, str]] = {}  # mapping stage -> the VAEs it was trained on
    for stage in names:
        ckpt = run_dirs[stage] / "checkpoint.pt"
        if not ckpt.is_file():
            raise FileNotFoundError(f"{ckpt}: missing")
        state = loaded.pop(ckpt) if ckpt in loaded else load_checkpoint(ckpt)
        if state.get("stage") != stage:
            raise ValueError(f"{ckpt} holds stage {state.get('stage')!r}, expected {stage!r}")
        check_stored(stage, state.get("config"), str(ckpt))  # a ConfigError (a ValueError) names the key
        digest = sha256_file(ckpt)
        summary = _training_summary(stage, state)
        steps = int(state["step"])
        chain = _warm_starts(state["config"])
        if chain:
            # the card's steps count the whole training, warm-start legs included
            steps += sum(s for _, s in chain if s > 0)
            legs = " ← ".join(f"{src} (step {s})" if s >= 0 else f"{src} (steps unknown)" for src, s in chain)
            summary = f"{summary} Warm-started from {legs}: {steps} steps in all."
        extra = {"steps": steps, **STAGES[stage].card_fields(state["config"])}
        if isinstance(state["config"].get("vaes_used"), dict):
            trained_on[stage] = state["config"]["vaes_used"]
        for key, (role, arch) in STAGES[stage].exports_for(state["config"]).items():
            net = build_net(arch, state["config"]["nets"][key])
            net.load_state_dict(state["nets"][key])
            net.eval()
            if stage in ("vae_a", "vae_b"):
                exported_vaes[stage] = (fingerprint(net), f"{ckpt.parent} at step {state['step']}")
            for r in [role, *EXTRA_ROLES.get(stage, {}).get(key, [])]:
                role_metrics = None
                if metrics:
                    role_metrics = metrics.get(r, metrics.get("*"))
                text = summary
                if notes and (notes.get(r) or notes.get("*")):
                    text = f"{notes.get(r) or notes.get('*')} {summary}"
                if r != role:
                    text = f"Same weights as {role} (one VAE_B serves both paths in the small set). {text}"
                card = save_model(net, r, dest, source=f"oldphoto-train:{runs.name}/{stage}@{state['step']}",
                                  sha256=digest, metrics=role_metrics, notes=text, half=half, **extra)
                written[r] = card.path
    for stage, used in trained_on.items():
        for vae, (print_, where) in exported_vaes.items():
            if used.get(vae) not in (None, print_):
                # oldphoto restore runs them together: the mapping's latents are another VAE's
                warn(f"{stage} was trained on another {vae.upper()} than the one exported here ({where}): "
                     f"they do not fit together; train {stage} again on it, or export the {vae.upper()} "
                     "it was trained on")
    return written

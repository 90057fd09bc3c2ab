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
    return (f"Trained with `oldphoto train {stage} --config {cfg.get('config_name', '?')}` "
            f"for {state['step']} steps of batch {cfg.get('batch_size')} × {cfg.get('crop')}² crops "
            f"(clean photos: "
            f"{cfg.get('photo_source_used', cfg.get('photos'))}; world size {state.get('world_size', 1)}"
            f"{'; on ' + str(cfg['device_used']) if cfg.get('device_used') else ''}"
            f"{'; ' + str(cfg['precision']) if cfg.get('precision') else ''}). "
            f"Loss weights: {json.dumps(losses, sort_keys=True)}. Full training config: "
            f"{json.dumps(keep, sort_keys=True)}")


def export_runs(runs: Path, dest: Path, stages: list[str] | None = None,
                metrics: dict[str, Any] | None = None, notes: dict[str, str] | None = None
                ) -> dict[str, Path]:
    from oldphoto.train.stages import STAGES, build_net
    from oldphoto.train.trainer import load_checkpoint
    from oldphoto.weights import save_model
    from oldphoto.weights.store import sha256_file

    if not runs.is_dir():
        raise FileNotFoundError(f"{runs}: no such runs folder")
    names = stages or [s for s in STAGES if (runs / s / "checkpoint.pt").is_file()]
    if not names:
        raise FileNotFoundError(f"{runs}: no stage run with a checkpoint.pt")
    written: dict[str, Path] = {}
    for stage in names:
        ckpt = runs / stage / "checkpoint.pt"
        if not ckpt.is_file():
            raise FileNotFoundError(f"{ckpt}: missing")
        state = load_checkpoint(ckpt)
        if state.get("stage") != stage:
            raise ValueError(f"{ckpt} holds stage {state.get('stage')!r}, expected {stage!r}")
        digest = sha256_file(ckpt)
        summary = _training_summary(stage, state)
        for key, (role, arch) in STAGES[stage].exports.items():
            net = build_net(arch, state["config"]["nets"][key])
            net.load_state_dict(state["nets"][key])
            net.eval()
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
                                  sha256=digest, metrics=role_metrics, notes=text)
                written[r] = card.path
    return written

"""Training checkpoints: written atomically, read without running pickled code, and frozen networks
loaded from a run (``checkpoint.pt``) or a weights folder.

A checkpoint holds the stage's networks, optimisers, schedulers, step, RNG states and resolved config.
It is read with ``torch.load(weights_only=True)``: checkpoints written by this version hold tensors and
plain Python data only; older ones also hold numpy arrays (the legacy RNG state), which the weights
importer's loader admits as inert data (:func:`oldphoto.weights.importer.safe_load`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from oldphoto.files import atomic_write
from oldphoto.train.networks import build_net, set_requires_grad

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    from oldphoto.weights.importer import safe_load

    try:
        return safe_load(path)
    except Exception as exc:  # noqa: BLE001
        raise RuntimeError(f"{path}: unreadable checkpoint ({exc})") from exc


def load_trained(source: str | Path, role: str, arch: str, net_key: str = "G") -> nn.Module:
    """A frozen network from a training run directory (``checkpoint.pt``) or a weights folder
    (``<role>.safetensors``)."""
    source = Path(source)
    ckpt = source / CHECKPOINT if source.is_dir() else source
    if ckpt.name == CHECKPOINT and ckpt.is_file():
        state = load_checkpoint(ckpt)
        cfg = state["config"]["nets"][net_key]
        net = build_net(arch, cfg)
        net.load_state_dict(state["nets"][net_key])
    elif source.is_dir() and (source / f"{role}.safetensors").is_file():
        from oldphoto.weights import load_model

        net = load_model(role, weights_dir=source)
    else:
        raise FileNotFoundError(f"{source}: neither a training run (checkpoint.pt) nor a weights folder "
                                f"with {role}.safetensors")
    net.eval()
    set_requires_grad(net, False)
    return net


def fingerprint(net: nn.Module) -> str:
    """A short hash of a network's tensors (names, shapes and values): whether two networks are the same
    weights, wherever they were loaded from.  The values are hashed at float16 precision, so that weights
    exported with ``--half`` (float16 files, loaded back in float32) read as the weights they came from."""
    import hashlib

    h = hashlib.sha256()
    for name, value in sorted(net.state_dict().items()):
        t = value.detach().to("cpu", torch.float16).contiguous()
        h.update(f"{name}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]

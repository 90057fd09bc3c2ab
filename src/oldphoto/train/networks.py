"""Training's two network helpers: build an architecture from its config, and freeze or unfreeze it."""

from __future__ import annotations

from typing import Any

from torch import nn


def build_net(arch: str, config: dict[str, Any]) -> nn.Module:
    """A fresh network of architecture ``arch`` (:func:`oldphoto.nets.architecture`) from its arguments."""
    from oldphoto.nets import architecture

    return architecture(arch)(**config)


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)

"""Building blocks shared by the global-restoration networks (VAE, mapping networks, discriminators).

Every Global network of the official code uses ``InstanceNorm2d(affine=False, track_running_stats=False)``:
no parameters, no running statistics, so any batch composition and any image size behave the same.
The sub-module indices inside the ``nn.Sequential`` containers below are part of the state-dict keys
(``conv_block.1``, ``conv_block.5``) and must not be reordered.
"""

from __future__ import annotations

import torch
from torch import nn


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    """Parameter-free instance normalisation (eps 1e-5, biased variance over H·W)."""
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def conv_in_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """``Conv3×3 (zero pad 1, bias) → IN → ReLU``: three modules, so that convs sit at indices 0, 3, 6, …"""
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1), instance_norm(out_channels), nn.ReLU(True)]


class ResnetBlock(nn.Module):
    """``x + [ReflPad(d), Conv3×3 (dilation d), IN, ReLU, ReflPad(1), Conv3×3, IN](x)``.

    State-dict keys: ``conv_block.1.{weight,bias}`` and ``conv_block.5.{weight,bias}``.
    """

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            nn.Conv2d(channels, channels, 3, dilation=dilation),
            instance_norm(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def count_indexed(sd: dict[str, torch.Tensor], prefix: str, suffix: str) -> int:
    """How many consecutive indices ``i`` (from 0) have the key ``f"{prefix}{i}{suffix}"`` in ``sd``."""
    n = 0
    while f"{prefix}{n}{suffix}" in sd:
        n += 1
    return n


def indices_with(sd: dict[str, torch.Tensor], prefix: str, suffix: str) -> list[int]:
    """Sorted indices ``i`` such that ``f"{prefix}{i}{suffix}"`` is a key of ``sd``."""
    found = []
    for key in sd:
        if key.startswith(prefix) and key.endswith(suffix):
            middle = key[len(prefix): len(key) - len(suffix)]
            if middle.isdigit():
                found.append(int(middle))
    return sorted(found)


def require_key(sd: dict[str, torch.Tensor], key: str, arch: str) -> torch.Tensor:
    """``sd[key]`` or a ``ValueError`` saying that the dict does not look like ``arch``."""
    try:
        return sd[key]
    except KeyError:
        raise ValueError(f"state dict is not a {arch!r} checkpoint: key {key!r} is missing") from None

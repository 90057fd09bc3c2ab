"""Scratch / defect detector: a U-Net on the grayscale photo that outputs per-pixel defect logits.

Layout (Wan et al., detection network; module indices chosen so that ``state_dict()`` keys equal the
official ``FT_Epoch_latest.pt['model_state']`` keys):

* ``first``: reflect-pad 3, 7×7 conv in→w, LeakyReLU(0.2).
* for each level i: the skip is taken, then ``down_sample[i]`` (reflect-pad 1, 3×3 conv C→C, BatchNorm,
  LeakyReLU(0.2), blur-pool stride 2) and ``down_path[i]`` (two reflect-pad/3×3 conv/BatchNorm/LeakyReLU
  units, C→2C).
* ``up_path[j]``: bilinear ×2 upsampling, reflect-pad 1, 3×3 conv (halving the channels), concatenation
  with the (centre-cropped) skip, then a two-unit conv block.
* ``last``: reflect-pad 1, 3×3 conv w→out (logits; the caller applies the sigmoid).

Blur-pool (anti-aliased downsampling) uses the fixed binomial filter [1,2,1]ᵀ[1,2,1]/16 stored as the buffer
``.filt``; it is a constant of the architecture, not a learned weight.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DefectDetector", "BlurPool", "blur_filter"]


def blur_filter(channels: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The constant depthwise blur-pool filter ``[1,2,1]ᵀ[1,2,1]/16`` repeated for ``channels`` (C×1×3×3)."""
    # built on the CPU whatever the default device (a meta-device build of the network stays cheap)
    a = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64, device="cpu")
    k = (a[:, None] * a[None, :]) / 16.0
    return k[None, None].repeat(channels, 1, 1, 1).to(dtype)


class BlurPool(nn.Module):
    """Reflect-pad 1, depthwise 3×3 binomial blur, stride 2 (anti-aliased downsampling)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        # persistent: the official checkpoint stores it, so keys stay identical
        self.register_buffer("filt", blur_filter(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=self.channels)


def _conv_unit(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]


class _ConvBlock(nn.Module):
    """``conv_num`` units of reflect-pad / 3×3 conv / BatchNorm / LeakyReLU (keys ``block.{1,2,5,6,...}``)."""

    def __init__(self, cin: int, cout: int, conv_num: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for k in range(conv_num):
            layers += _conv_unit(cin if k == 0 else cout, cout)
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, conv_num: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.ReflectionPad2d(1),
            nn.Conv2d(cin, cout, 3),
        )
        self.conv_block = _ConvBlock(2 * cout, cout, conv_num)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.up(x)
        dy = (skip.shape[2] - up.shape[2]) // 2
        dx = (skip.shape[3] - up.shape[3]) // 2
        skip = skip[:, :, dy : dy + up.shape[2], dx : dx + up.shape[3]]
        return self.conv_block(torch.cat([up, skip], 1))


class DefectDetector(nn.Module):
    """U-Net defect detector.  ``forward(gray)`` takes N×in×H×W in [-1, 1] (H, W multiples of
    ``2**depth``) and returns N×out×H×W logits (sigmoid → defect probability)."""

    ARCH_NAME = "detector"

    def __init__(self, *, in_channels: int = 1, out_channels: int = 1, depth: int = 4, width: int = 64,
                 conv_num: int = 2) -> None:
        super().__init__()
        if depth < 1 or width < 1 or conv_num < 1:
            raise ValueError(f"depth, width and conv_num must be >= 1 (got {depth}, {width}, {conv_num})")
        self.config = {"in_channels": in_channels, "out_channels": out_channels, "depth": depth,
                       "width": width, "conv_num": conv_num}
        self.depth = depth
        self.first = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7),
                                   nn.LeakyReLU(0.2, True))
        # registration order = official state_dict order (down_path before down_sample)
        self.down_path = nn.ModuleList()
        self.down_sample = nn.ModuleList()
        c = width
        for _ in range(depth):
            self.down_sample.append(nn.Sequential(*_conv_unit(c, c), BlurPool(c)))
            self.down_path.append(_ConvBlock(c, 2 * c, conv_num))
            c *= 2
        self.up_path = nn.ModuleList()
        for _ in range(depth):
            self.up_path.append(_UpBlock(c, c // 2, conv_num))
            c //= 2
        self.last = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(width, out_channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = 2**self.depth
        if x.ndim != 4 or x.shape[1] != self.config["in_channels"]:
            raise ValueError(f"expected N×{self.config['in_channels']}×H×W, got {tuple(x.shape)}")
        if x.shape[2] % m or x.shape[3] % m:
            raise ValueError(f"height and width must be multiples of {m}, got {x.shape[2]}×{x.shape[3]}")
        x = self.first(x)
        skips = []
        for down_sample, down_path in zip(self.down_sample, self.down_path, strict=True):
            skips.append(x)
            x = down_path(down_sample(x))
        for up, skip in zip(self.up_path, reversed(skips), strict=True):
            x = up(x, skip)
        return self.last(x)

    @classmethod
    def config_from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> dict:
        """Constructor arguments of the network that ``sd`` (official layout) belongs to."""
        try:
            first = sd["first.1.weight"]
            last = sd["last.1.weight"]
        except KeyError as exc:
            raise KeyError(f"not a detector state dict: missing {exc.args[0]!r}") from None
        depth = len({k.split(".")[1] for k in sd if k.startswith("down_path.")})
        conv_num = len({k.split(".")[3] for k in sd
                        if k.startswith("down_path.0.block.") and k.endswith(".weight")
                        and sd[k].ndim == 4})
        return {"in_channels": int(first.shape[1]), "out_channels": int(last.shape[0]), "depth": depth,
                "width": int(first.shape[0]), "conv_num": conv_num}

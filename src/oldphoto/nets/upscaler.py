"""The ESRGAN generator (RRDBNet) that Real-ESRGAN x4plus trained: ×4 super-resolution of a whole photo.

Not part of "Bringing Old Photos Back to Life": ``--upscale`` runs it after the restoration, for users who
want a larger photo (to print or to view at a larger size) than the scan they have.  Architecture after
Wang et al., "ESRGAN" (2018), as Real-ESRGAN (Wang et al., 2021) trained it on synthetic real-world
degradations (blur, resizing, noise, JPEG):

* ``conv_first``: 3×3, 3 → ``num_feat``;
* ``num_blocks`` residual-in-residual dense blocks (RRDB): each three residual dense blocks of five 3×3
  convolutions, every convolution seeing the block input and all earlier outputs (``num_grow`` channels
  each; LeakyReLU 0.2 after the first four), the block's output scaled by 0.2 and added to its input;
  the RRDB's output scaled by 0.2 and added to its input as well;
* ``conv_body`` and a long skip from ``conv_first``;
* twice a nearest ×2 enlargement and a 3×3 convolution (LeakyReLU 0.2), then ``conv_hr`` (LeakyReLU) and
  ``conv_last`` (→ 3 channels).

RGB in [-1, 1] in and out like every oldphoto network (not clipped; Real-ESRGAN's own range, [0, 1], is
mapped inside).  Weights: ``oldphoto weights download realesrgan``
(:mod:`oldphoto.weights.realesrgan`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RRDBNet"]

# the ×4 part of inference runs in strips of about this many input pixels (rows × width), each with
# TAIL_HALO input rows of its neighbours: four 3×3 convolutions, one at ×2 and three at ×4, reach 1/2 + 3/4
# of an input row
TAIL_STRIP_PIXELS = 8192
TAIL_HALO = 2


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1)


class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat: int, num_grow: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(_conv(num_feat + i * num_grow, num_grow if i < 4 else num_feat)
                                   for i in range(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs[:4]:
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2))
        return self.convs[4](torch.cat(features, 1)) * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, num_feat: int, num_grow: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualDenseBlock(num_feat, num_grow) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x) * 0.2 + x


class RRDBNet(nn.Module):
    ARCH_NAME = "rrdbnet"
    SCALE = 4  # two ×2 enlargements

    def __init__(self, num_feat: int = 64, num_grow: int = 32, num_blocks: int = 23) -> None:
        super().__init__()
        if min(num_feat, num_grow, num_blocks) < 1:
            raise ValueError(f"num_feat, num_grow and num_blocks must be >= 1, got {num_feat}, {num_grow}, "
                             f"{num_blocks}")
        self.config = {"num_feat": num_feat, "num_grow": num_grow, "num_blocks": num_blocks}
        self.conv_first = _conv(3, num_feat)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow) for _ in range(num_blocks)))
        self.conv_body = _conv(num_feat, num_feat)
        self.conv_up1 = _conv(num_feat, num_feat)
        self.conv_up2 = _conv(num_feat, num_feat)
        self.conv_hr = _conv(num_feat, num_feat)
        self.conv_last = _conv(num_feat, 3)

    def convolutions(self) -> Iterator[nn.Conv2d]:
        """Every convolution in the order the forward pass first uses it (the order converters read
        weights in)."""
        yield self.conv_first
        for rrdb in self.body:
            for block in rrdb.blocks:
                yield from block.convs
        yield from (self.conv_body, self.conv_up1, self.conv_up2, self.conv_hr, self.conv_last)

    @staticmethod
    def num_convolutions(num_blocks: int) -> int:
        return 1 + 15 * num_blocks + 5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected N×3×H×W, got {tuple(x.shape)}")
        feat = self.conv_first((x + 1.0) * 0.5)
        feat = feat + self.conv_body(self.body(feat))
        if torch.is_grad_enabled():  # training: one piece, so that nothing is recomputed for the gradient
            return self._enlarge(feat) * 2.0 - 1.0
        # Inference: the ×4 part in strips of rows.  Its features have 16 times the pixels of the body's,
        # and at full height they were most of the network's memory (13.3 KB per input pixel); in strips
        # the tiles of a memory budget can be larger, so less of the photo is computed twice as context.
        # Exact: the strips' convolutions reach less than TAIL_HALO input rows across a strip's edge.
        h = feat.shape[-2]
        strip = max(1, TAIL_STRIP_PIXELS // max(1, feat.shape[-1]))
        pieces = []
        for r0 in range(0, h, strip):
            r1 = min(h, r0 + strip)
            a0, a1 = max(0, r0 - TAIL_HALO), min(h, r1 + TAIL_HALO)
            out = self._enlarge(feat[..., a0:a1, :])
            pieces.append(out[..., (r0 - a0) * self.SCALE:(r1 - a0) * self.SCALE, :])
        return torch.cat(pieces, dim=-2) * 2.0 - 1.0

    def _enlarge(self, feat: torch.Tensor) -> torch.Tensor:
        """Body features -> the ×4 image in [0, 1] (not clipped)."""
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))

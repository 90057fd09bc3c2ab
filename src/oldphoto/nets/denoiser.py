"""LumaDenoiser: a small learned denoiser of a photo's luma, in non-local means' place (``--remove-grain``).

Not part of the paper.  Away from the defects the pipeline keeps the photo itself, denoised
(:mod:`oldphoto.stages.fidelity`); non-local means there removes white noise at the level the photo
shows and leaves film grain, impulse noise, JPEG blocks and blur, which a small residual network
trained on the synthesis' unstructured and old-print degradations removes too.  It is not the default:
on real prints it takes skin texture and fine hair with the grain (docs/restore.md, step 2).

The design follows FFDNet (Zhang et al., 2018): the luma is folded 2×2 into four half-resolution
channels (a receptive field twice as wide for the same cost), a fifth channel carries the noise level the
pipeline estimates (:func:`oldphoto.stages.fidelity.noise_sigma`); plain 3×3 convolutions and leaky
ReLUs, no normalisation (a strip of the photo and the whole photo give the same result), and the output
is the input plus a correction, so the untrained network is the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# leaky ReLUs: with plain ones the last hidden layer died within 1000 steps (Adam moves its biases by a
# full step while the zero-initialised output layer still passes it almost no gradient)
LEAK = 0.1
# the noise level is given to the network in units of 50/255 (the synthesis' largest σ): values near 1
SIGMA_SCALE = 255.0 / 50.0


class LumaDenoiser(nn.Module):
    """``forward(y, sigma)``: ``y`` N×1×H×W luma in [0, 1], ``sigma`` N noise levels (luma units) →
    the denoised luma, N×1×H×W (not clipped)."""

    ARCH_NAME = "luma_denoiser"

    def __init__(self, width: int = 48, depth: int = 10) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        self.config = {"width": width, "depth": depth}
        layers: list[nn.Module] = [nn.Conv2d(5, width, 3, padding=1), nn.LeakyReLU(LEAK, inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(LEAK, inplace=True)]
        for layer in layers:
            if isinstance(layer, nn.Conv2d):  # He init: PyTorch's default fades the signal over ten layers
                nn.init.kaiming_normal_(layer.weight, a=LEAK, nonlinearity="leaky_relu")
                nn.init.zeros_(layer.bias)
        last = nn.Conv2d(width, 4, 3, padding=1)
        nn.init.zeros_(last.weight)  # the correction starts at zero: the untrained network is the identity
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*layers, last)

    @classmethod
    def config_from_state_dict(cls, sd: dict[str, torch.Tensor]) -> dict[str, int]:
        convs = sorted({k.split(".")[1] for k in sd if k.startswith("body.") and k.endswith(".weight")},
                       key=int)
        return {"width": int(sd[f"body.{convs[0]}.weight"].shape[0]), "depth": len(convs)}

    def forward(self, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        padded = F.pad(y, (0, w % 2, 0, h % 2), mode="replicate")
        folded = F.pixel_unshuffle(padded, 2)
        level = (sigma.to(folded.dtype) * SIGMA_SCALE).view(-1, 1, 1, 1).expand(-1, 1, *folded.shape[-2:])
        correction = F.pixel_shuffle(self.body(torch.cat([folded, level], dim=1)), 2)
        return y + correction[..., :h, :w]

"""The VAEs of the triplet domain translation (official ``GlobalGenerator_DCDCv2``, test-time options).

VAE_A encodes real old photos and synthetic degraded photos, VAE_B encodes/decodes clean photos; both
have this architecture (872,131 parameters at the official size). The latent is
``latent × H/4 × W/4`` (64 channels): two stride-2 convolutions, reflect padding, instance norm
without affine parameters, ``tanh`` output.

Image size: ``H`` and ``W`` must be multiples of :attr:`VAE.pad_multiple` (= 4, the descriptor's
``size.multiple``: :mod:`oldphoto.nets.descriptors`). The official encoder
floors odd sizes silently (each stride-2 conv maps ``n`` to ``floor(n/2)``), so the decoded image came
back smaller than the input (``4·floor(H/4)``). Here the encoder raises ``ValueError`` instead: the caller
pads (reflect) to a multiple of 4 and crops the result back.
"""

from __future__ import annotations

import torch
from torch import nn

from oldphoto.nets.blocks import ResnetBlock, instance_norm, require_key
from oldphoto.nets.descriptors import descriptor


class _Encoder(nn.Sequential):
    """``nn.Sequential`` (keys ``encoder.<i>.*``, as official) that rejects sizes it would floor."""

    def __init__(self, *layers: nn.Module, multiple: int) -> None:
        super().__init__(*layers)
        self.multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if x.ndim != 4:
            raise ValueError(f"VAE encoder expects N×C×H×W, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(
                f"VAE encoder input is {h}×{w}; H and W must be multiples of {self.multiple} "
                f"(the official code silently drops the remainder). Pad the image first."
            )
        return super().forward(x)


class VAE(nn.Module):
    """Encoder/decoder of the global-restoration VAE.

    Keyword arguments (defaults = official size):
        in_channels: image channels in (3).
        out_channels: image channels out (3).
        width: channels of every layer, which is also the latent channel count (64; the official
            ``min(ngf·mult, mc)`` with ``ngf = mc = 64`` keeps all layers at 64).
        n_res_encoder: ResnetBlocks at the end of the encoder (4).
        n_res_decoder: ResnetBlocks at the start of the decoder (4).

    ``encoder(x)`` / ``encode(x)``: ``N×in×H×W`` in [-1, 1] → latent ``N×width×H/4×W/4`` (no activation).
    ``decoder(z)`` / ``decode(z)``: latent → ``N×out×H×W`` in (-1, 1) (tanh).
    ``forward(x, generator=None, sample=None)`` → ``(reconstruction, z, kl)``: the training form, where
    the decoder sees ``z + ε``, ``ε ~ N(0, I)`` (drawn from ``generator`` if given) when ``sample`` is true
    (default: ``self.training``), and ``kl = mean(z²)`` is the official "reduced VAE" KL term (the
    caller multiplies it by its weight, 1 in the official training).
    """

    ARCH_NAME = "vae"
    pad_multiple = descriptor(ARCH_NAME).size.multiple  # type: ignore[union-attr]  (two stride-2 convs)

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, width: int = 64,
                 n_res_encoder: int = 4, n_res_decoder: int = 4) -> None:
        super().__init__()
        self.config = {"in_channels": in_channels, "out_channels": out_channels, "width": width,
                       "n_res_encoder": n_res_encoder, "n_res_decoder": n_res_decoder}
        c = width
        encoder: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, c, 7), instance_norm(c),
                                    nn.ReLU(True)]
        for _ in range(2):  # the two stride-2 stages: H → H/2 → H/4
            encoder += [nn.Conv2d(c, c, 4, stride=2, padding=1), instance_norm(c), nn.ReLU(True)]
        encoder += [ResnetBlock(c) for _ in range(n_res_encoder)]
        self.encoder = _Encoder(*encoder, multiple=self.pad_multiple)

        decoder: list[nn.Module] = [ResnetBlock(c) for _ in range(n_res_decoder)]
        for _ in range(2):
            decoder += [nn.ConvTranspose2d(c, c, 4, stride=2, padding=1), instance_norm(c), nn.ReLU(True)]
        decoder += [nn.ReflectionPad2d(3), nn.Conv2d(c, out_channels, 7), nn.Tanh()]
        self.decoder = nn.Sequential(*decoder)

    @classmethod
    def config_from_state_dict(cls, sd: dict[str, torch.Tensor]) -> dict:
        first = require_key(sd, "encoder.1.weight", cls.ARCH_NAME)
        n_enc = _count_from(sd, "encoder.", 10)  # after pad, conv7, 2 × (conv, IN, ReLU) + IN, ReLU
        n_dec = _count_from(sd, "decoder.", 0)
        last = require_key(sd, f"decoder.{n_dec + 7}.weight", cls.ARCH_NAME)
        return {"in_channels": int(first.shape[1]), "out_channels": int(last.shape[0]),
                "width": int(first.shape[0]), "n_res_encoder": n_enc, "n_res_decoder": n_dec}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                sample: bool | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        if sample is None:
            sample = self.training
        if sample:
            noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            recon = self.decoder(z + noise)
        else:
            recon = self.decoder(z)
        kl = z.pow(2).mean()
        return recon, z, kl


def _count_from(sd: dict[str, torch.Tensor], prefix: str, start: int) -> int:
    """Number of consecutive ResnetBlocks ``prefix{start}``, ``prefix{start+1}``, … in ``sd``."""
    n = 0
    while f"{prefix}{start + n}.conv_block.1.weight" in sd:
        n += 1
    return n

"""Training-only discriminators (pix2pixHD PatchGANs as used by the official Global training).

* :class:`MultiscaleDiscriminator`: ``num_D`` PatchGANs, the k-th seeing the input average-pooled k times
  (``AvgPool2d(3, stride 2, pad 1, count_include_pad=False)``); every scale returns its intermediate
  features for the feature-matching loss. Image D of VAE_A/VAE_B (3 input channels, unconditional) and
  of the mapping stage (6 channels: degraded ⊕ output; spectral norm for the scratch/HR stages).
* :class:`LatentDiscriminator`: the same PatchGAN at one scale on the 64-channel latent (official
  ``feat_D`` of the VAE_A stage: real-photo latents vs synthetic latents).

Per scale, layers ``scale{i}_layer{j}`` (``j = 0 … n_layers + 1``): Conv4×4 s2 (in→ndf) + LReLU(0.2);
``n_layers − 1`` × Conv4×4 s2 + IN + LReLU (channels doubling, capped at 512); Conv4×4 s1 + IN + LReLU;
Conv4×4 s1 → 1 (no sigmoid: LSGAN). Padding 2 everywhere. With ``spectral_norm=True`` every conv is
wrapped by ``torch.nn.utils.spectral_norm`` (keys ``weight_orig``/``weight_u``/``weight_v``). As in
pix2pixHD, the full-resolution input goes to the highest-numbered scale ``scale{num_D-1}``.
"""

from __future__ import annotations

import torch
from torch import nn

from oldphoto.nets.blocks import instance_norm, require_key


def _conv(in_channels: int, out_channels: int, stride: int, spectral: bool) -> nn.Module:
    conv = nn.Conv2d(in_channels, out_channels, 4, stride=stride, padding=2)
    return nn.utils.spectral_norm(conv) if spectral else conv


def _patchgan_layers(in_channels: int, ndf: int, n_layers: int, spectral: bool) -> list[nn.Sequential]:
    layers = [nn.Sequential(_conv(in_channels, ndf, 2, spectral), nn.LeakyReLU(0.2, True))]
    nf = ndf
    for j in range(1, n_layers + 1):
        prev, nf = nf, min(nf * 2, 512)
        stride = 2 if j < n_layers else 1
        layers.append(nn.Sequential(_conv(prev, nf, stride, spectral), instance_norm(nf),
                                    nn.LeakyReLU(0.2, True)))
    layers.append(nn.Sequential(_conv(nf, 1, 1, spectral)))
    return layers


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD multi-scale PatchGAN.

    Keyword arguments: ``in_channels`` (3), ``ndf`` (64), ``n_layers`` (3), ``num_D`` (2),
    ``spectral_norm`` (False).
    ``forward(x)`` → list over scales (full resolution first) of lists of the ``n_layers + 2`` layer
    outputs; the last entry of each inner list is the patch score map.
    """

    ARCH_NAME = "multiscale_discriminator"

    def __init__(self, *, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, num_D: int = 2,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        self.config = {"in_channels": in_channels, "ndf": ndf, "n_layers": n_layers, "num_D": num_D,
                       "spectral_norm": spectral_norm}
        for i in range(num_D):
            for j, layer in enumerate(_patchgan_layers(in_channels, ndf, n_layers, spectral_norm)):
                self.add_module(f"scale{i}_layer{j}", layer)
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    @classmethod
    def config_from_state_dict(cls, sd: dict[str, torch.Tensor]) -> dict:
        spectral = "scale0_layer0.0.weight_orig" in sd
        suffix = ".0.weight_orig" if spectral else ".0.weight"
        first = require_key(sd, f"scale0_layer0{suffix}", cls.ARCH_NAME)
        num_d = 0
        while f"scale{num_d}_layer0{suffix}" in sd:
            num_d += 1
        n_layer_modules = 0
        while f"scale0_layer{n_layer_modules}{suffix}" in sd:
            n_layer_modules += 1
        return {"in_channels": int(first.shape[1]), "ndf": int(first.shape[0]),
                "n_layers": n_layer_modules - 2, "num_D": num_d, "spectral_norm": spectral}

    def _scale(self, i: int, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for j in range(self.config["n_layers"] + 2):
            x = getattr(self, f"scale{i}_layer{j}")(x)
            features.append(x)
        return features

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        num_d = self.config["num_D"]
        results = []
        for k in range(num_d):
            results.append(self._scale(num_d - 1 - k, x))
            if k != num_d - 1:
                x = self.downsample(x)
        return results


class LatentDiscriminator(MultiscaleDiscriminator):
    """One-scale PatchGAN on the VAE latent (official ``feat_D``): ``in_channels`` 64, ``num_D`` 1."""

    ARCH_NAME = "latent_discriminator"

    def __init__(self, *, in_channels: int = 64, ndf: int = 64, n_layers: int = 3, num_D: int = 1,
                 spectral_norm: bool = False) -> None:
        super().__init__(in_channels=in_channels, ndf=ndf, n_layers=n_layers, num_D=num_D,
                         spectral_norm=spectral_norm)

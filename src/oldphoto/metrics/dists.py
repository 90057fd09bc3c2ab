"""DISTS (Ding et al. 2020, "Image Quality Assessment: Unifying Structure and Texture Similarity").

The ImageNet VGG16 with its max-pools replaced by L2 pooling (a 3×3 Hann window, stride 2) gives six
representations: the image itself and relu1_2 … relu5_3.  Per channel, a texture term compares the
spatial means and a structure term the (co)variances; learned non-negative weights alpha (texture) and
beta (structure), normalised to sum 1, combine them::

    DISTS(x, y) = 1 − Σ_k Σ_c [ α_kc (2 μx μy + c1)/(μx² + μy² + c1) + β_kc (2 σxy + c2)/(σx² + σy² + c2) ]

Weights: the VGG16 and ``dists.safetensors`` installed by ``oldphoto data perception``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from oldphoto.metrics import features as feat
from oldphoto.metrics.lpips import pair_distance

C1 = C2 = 1e-6


class L2Pool(nn.Module):
    """sqrt(Hann-weighted 3×3 mean of x², stride 2): the anti-aliased pooling DISTS uses."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        w = torch.tensor([0.5, 1.0, 0.5])
        kernel = torch.outer(w, w)
        kernel = kernel / kernel.sum()
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x * x, self.kernel.to(x), stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


def l2pool_vgg16(vgg: feat.VGG16Features) -> feat.VGG16Features:
    """``vgg`` with every max-pool replaced by :class:`L2Pool` (in place; returned for chaining)."""
    channels = 3
    for i, layer in enumerate(vgg.features):
        if isinstance(layer, nn.Conv2d):
            channels = layer.out_channels
        elif isinstance(layer, nn.MaxPool2d):
            vgg.features[i] = L2Pool(channels)
    return vgg


def load_alpha_beta(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    sd = feat.load_state_dict_file(path)
    for k in ("alpha", "beta"):
        if k not in sd or tuple(sd[k].shape) != (1, 1475, 1, 1):
            raise feat.FeatureWeightsError(f"{path}: {k} missing or not 1×1475×1×1")
    return sd["alpha"].float(), sd["beta"].float()


class DISTS(nn.Module):
    name = "dists"

    def __init__(self, vgg: feat.VGG16Features, alpha: torch.Tensor, beta: torch.Tensor) -> None:
        super().__init__()
        if vgg.normalization != "imagenet":
            raise ValueError("DISTS needs the VGG16 with ImageNet input normalisation")
        self.backbone = l2pool_vgg16(vgg).eval().requires_grad_(False)
        channels = [3, *self.backbone.channels]
        total = alpha.sum() + beta.sum()
        self.register_buffer("alpha", (alpha / total).flatten(), persistent=False)
        self.register_buffer("beta", (beta / total).flatten(), persistent=False)
        self.splits = channels
        if sum(channels) != self.alpha.numel():
            raise ValueError(f"{self.alpha.numel()} DISTS weights for {sum(channels)} channels")

    @classmethod
    def standard(cls, vgg16_weights: str | Path | None = None, dists_weights: str | Path | None = None
                 ) -> DISTS:
        from oldphoto.metrics.perception import perception_file

        vgg = feat.load_vgg16(vgg16_weights or perception_file("vgg16_imagenet"), "imagenet")
        return cls(vgg, *load_alpha_beta(dists_weights or perception_file("dists")))

    def _representations(self, x01: torch.Tensor) -> list[torch.Tensor]:
        return [x01, *self.backbone(self.backbone.prepare(x01))]

    @torch.no_grad()
    def forward(self, x01: torch.Tensor, y01: torch.Tensor) -> torch.Tensor:
        """Per-sample DISTS of two ``N×3×H×W`` batches in [0, 1] (0 = identical)."""
        similarity = torch.zeros(x01.shape[0], dtype=x01.dtype, device=x01.device)
        alphas = torch.split(self.alpha.to(x01), self.splits)
        betas = torch.split(self.beta.to(x01), self.splits)
        for fx, fy, a, b in zip(self._representations(x01), self._representations(y01), alphas, betas,
                                strict=True):
            mx, my = fx.mean(dim=(2, 3)), fy.mean(dim=(2, 3))
            vx = (fx - mx[..., None, None]).pow(2).mean(dim=(2, 3))
            vy = (fy - my[..., None, None]).pow(2).mean(dim=(2, 3))
            cov = (fx * fy).mean(dim=(2, 3)) - mx * my
            texture = (2 * mx * my + C1) / (mx * mx + my * my + C1)
            structure = (2 * cov + C2) / (vx + vy + C2)
            similarity = similarity + (texture * a).sum(1) + (structure * b).sum(1)
        # float32 rounding makes the similarity of identical images a hair above 1: a distance below 0
        # means nothing (and an identical pair printed "-0.000000" in the CSV)
        return (1.0 - similarity).clamp_min(0.0)

    def distance(self, image: np.ndarray, reference: np.ndarray) -> float:
        """DISTS between two float RGB ``H×W×3`` images in [0, 1]."""
        return pair_distance(self, image, reference)

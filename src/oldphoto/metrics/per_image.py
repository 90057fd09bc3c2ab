"""Per-image metrics by name, for ``oldphoto evaluate metrics`` and the benchmark.

A metric is full-reference (``fn(image, reference)``) or no-reference (``fn(image)``).  Networks are built
lazily, once.  The perceptual metrics (LPIPS-alex, LPIPS-vgg, DISTS) need the ImageNet weights of
``oldphoto data perception``; without them, building one raises ``MissingPerceptionWeights`` naming the
command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Metric:
    name: str
    full_reference: bool
    fn: Callable[..., float]


def build_metrics(names: list[str]) -> list[Metric]:
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
        elif name in ("lpips_alex", "lpips_vgg"):
            from oldphoto.metrics.lpips import LPIPS

            out.append(Metric(name, True, LPIPS.standard(name.removeprefix("lpips_")).distance))
        elif name == "dists":
            from oldphoto.metrics.dists import DISTS

            out.append(Metric(name, True, DISTS.standard().distance))
        else:
            raise ValueError(f"unknown metric {name!r}; available: {', '.join(AVAILABLE)}")
    return out


PERCEPTUAL = ["lpips_alex", "lpips_vgg", "dists"]
AVAILABLE = ("psnr", "ssim", "psnr_y", "ssim_y", "niqe", "brisque", *PERCEPTUAL)
DEFAULT_FULL_REFERENCE = ["psnr", "ssim", "psnr_y", "ssim_y", "niqe", "brisque"]
DEFAULT_NO_REFERENCE = ["niqe", "brisque"]


def default_perceptual(notes: list[str]) -> list[str]:
    """The perceptual metrics when their weights are installed, else none (and a note how to add them)."""
    from oldphoto.metrics.perception import COMMAND, installed

    if installed():
        return list(PERCEPTUAL)
    notes.append(f"LPIPS and DISTS left out: their ImageNet weights are not installed (run `{COMMAND}`)")
    return []


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

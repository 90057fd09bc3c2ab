"""The official stage-1 rules that decide exact outputs (``--compat official``).

The rules are listed in docs/restore.md ("How the default mode differs from `--compat official`").
Everything here works like the official code does: on 8-bit PIL images, with Python's ``round``
(banker's rounding) on ``size / multiple``, PIL ``BILINEAR`` for the quality path and ``BICUBIC`` for the
scratch path and the detector, the detector's pass at a 256-pixel short side, and torchvision's
``save_image(normalize=True)`` per-image min–max stretch with round-half-up quantisation.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from oldphoto.stages.official_sizes import detector_scale_size, official_size


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0,1] -> uint8 the way an 8-bit file would hold it (round half up, clipped)."""
    return np.clip(np.floor(np.asarray(image, dtype=np.float64) * 255.0 + 0.5), 0, 255).astype(np.uint8)


def resize_to_multiple(image_u8: np.ndarray, multiple: int, resample: int) -> np.ndarray:
    """The official ``data_transforms``: resize to the rounded multiple (no-op if already there)."""
    h, w = image_u8.shape[:2]
    nh, nw = official_size(h, w, multiple)
    if (nh, nw) == (h, w):
        return image_u8
    if nh == 0 or nw == 0:
        raise ValueError(f"image of {w}×{h} pixels is too small for the official mode (rounds to {nw}×{nh})")
    return np.asarray(Image.fromarray(image_u8).resize((nw, nh), resample))


def quality_input(image: np.ndarray) -> np.ndarray:
    """Quality path input: 8-bit RGB, BILINEAR to ×4."""
    return resize_to_multiple(to_uint8(image), 4, Image.BILINEAR)


def scratch_input(image: np.ndarray) -> np.ndarray:
    """Scratch path / detector input: 8-bit RGB, BICUBIC to ×16 (detection.py ``full_size``)."""
    return resize_to_multiple(to_uint8(image), 16, Image.BICUBIC)


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A boolean mask resized to ``shape`` the way a PIL ``NEAREST`` resize of the stored 8-bit mask does."""
    scaled = Image.fromarray(mask.astype(np.uint8) * 255).resize((shape[1], shape[0]), Image.NEAREST)
    return np.asarray(scaled) >= 128


def pil_gray(image_u8: np.ndarray) -> np.ndarray:
    """PIL ``convert("L")`` (ITU-R 601 luma with PIL's integer rounding) as uint8 ``H×W``."""
    return np.asarray(Image.fromarray(image_u8).convert("L"))


def detector_resample(gray: torch.Tensor, short: int = 256) -> torch.Tensor:
    """``1×1×H×W`` -> bilinear (align_corners=False) to the detector's 256-short-side size."""
    size = detector_scale_size(gray.shape[-2], gray.shape[-1], short)
    return F.interpolate(gray, size=size, mode="bilinear", align_corners=False)


def save_image_stretch(t: torch.Tensor) -> torch.Tensor:
    """torchvision ``save_image(t, normalize=True)`` quantisation of a tensor in any range -> uint8.

    Min–max over the whole tensor (a constant tensor becomes all zeros: ``max(high - low, 1e-5)``),
    then ``mul(255).add(0.5).clamp(0, 255)`` truncated to uint8 — i.e. round half up.
    """
    t = t.detach().float().cpu().clone()
    low, high = float(t.min()), float(t.max())
    t.clamp_(min=low, max=high)
    t.sub_(low).div_(max(high - low, 1e-5))
    return t.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def stretch_output(y: torch.Tensor) -> np.ndarray:
    """Official stage-1 output: decoder output ``1×3×H×W`` in [-1,1] -> ``save_image((y+1)/2, normalize)``.

    Returned as float32 ``H×W×3`` in [0,1] holding exactly the 8-bit levels the official PNG holds.
    """
    u8 = save_image_stretch((y.detach().float().cpu() + 1.0) / 2.0)[0]
    return u8.permute(1, 2, 0).numpy().astype(np.float32) / 255.0


def stretch_mask(mask: np.ndarray) -> np.ndarray:
    """The detector mask as the official PNG stores it: a constant mask (all or none) becomes empty."""
    stored = save_image_stretch(torch.from_numpy(np.asarray(mask, dtype=np.float32)))
    return stored.numpy() >= 128

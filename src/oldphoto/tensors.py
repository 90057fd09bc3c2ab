"""The one place where images and network tensors are converted.

Images at API boundaries are numpy ``float32`` RGB ``H×W×3`` in [0, 1]; networks take ``N×C×H×W``
tensors in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch


def image_to_tensor(image: np.ndarray, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``H×W×C`` (or ``H×W``) float image in [0, 1] -> ``1×C×H×W`` tensor in [-1, 1]."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
    return (tensor.to(device=device, dtype=dtype) * 2.0 - 1.0)


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """``1×C×H×W`` (or ``C×H×W``) tensor in [-1, 1] -> ``H×W×C`` float32 image in [0, 1], clipped."""
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"expected a batch of one, got {tuple(tensor.shape)}")
        tensor = tensor[0]
    array = ((tensor.detach().float().cpu() + 1.0) * 0.5).clamp_(0.0, 1.0).numpy()
    return np.ascontiguousarray(array.transpose(1, 2, 0))


def mask_to_tensor(mask: np.ndarray, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``H×W`` mask (bool or [0, 1], 1 = defect) -> ``1×1×H×W`` tensor in {0, 1} / [0, 1]."""
    array = np.asarray(mask, dtype=np.float32)
    if array.ndim == 3:
        array = array[..., 0]
    return torch.from_numpy(np.ascontiguousarray(array))[None, None].to(device=device, dtype=dtype)


def images_to_batch(images: list[np.ndarray] | np.ndarray, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Same-size ``H×W×C`` (or ``H×W``) float images in [0, 1] (a list or an ``N×H×W×C`` array) ->
    ``N×C×H×W`` tensor in [-1, 1]."""
    array = np.stack([np.atleast_3d(np.asarray(im, np.float32)) for im in images])
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))
    return tensor.to(device=device, dtype=dtype) * 2.0 - 1.0


def batch_to_images(tensor: torch.Tensor) -> np.ndarray:
    """``N×C×H×W`` tensor in [-1, 1] -> ``N×H×W×C`` float32 images in [0, 1], clipped."""
    array = ((tensor.detach().float().cpu() + 1.0) * 0.5).clamp_(0.0, 1.0).numpy()
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1))

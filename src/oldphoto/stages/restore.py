"""Global restoration: VAE_A encoder → latent mapping → VAE_B decoder, at any size, in bounded memory.

Three paths, as in the official stage 1:

* ``quality``: no defects; ``QualityMapping`` and the quality VAE_B.
* ``scratch``: defects; masked pixels are whitened (the input the scratch models were trained on) and
  ``ScratchMapping`` (partial nonlocal) inpaints them; the scratch VAE_B decodes.
* ``hr``: like ``scratch`` with ``PatchAttentionMapping`` (multi-scale patch attention), used with
  ``--hr`` or for photos above a size.

Default mode: reflect-pad to the networks' multiple and crop back (exact input size), tile photos that
exceed the memory budget with blended overlaps, clip the output to [0,1].  Tiled photos normalise their
features with whole-photo instance-norm statistics taken from one pass over a scaled-down copy of the
photo (:func:`overview`; ``benchmarks/cpu_speed.md``, "Tiled photos: the statistics pass").  Compat mode
(:meth:`RestoreStage.official`): the official resize rules, whole image, per-image min–max stretch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from oldphoto.levels import match_levels
from oldphoto.masks import dilate_official
from oldphoto.nets.descriptors import architecture_of, photo_multiple
from oldphoto.stages import compat
from oldphoto.stages.normstats import GlobalInstanceNorm
from oldphoto.stages.runtime import host_for
from oldphoto.stages.tiling import (
    TilePlan,
    crop_to,
    pad_to_multiple,
    plan_tiles,
    run_tiled,
    tile_side_for_budget,
)
from oldphoto.tensors import image_to_tensor, mask_to_tensor, tensor_to_image

# roles (weights-file stems) of each path's networks: VAE_A encoder, mapping, VAE_B decoder
PATH_ROLES = {
    "quality": ("vae_a", "mapping_quality", "vae_b_quality"),
    "scratch": ("vae_a", "mapping_scratch", "vae_b_scratch"),
    "hr": ("vae_a", "mapping_hr", "vae_b_scratch"),
}
PATHS = tuple(PATH_ROLES)

# size multiple of each path's input: what every network of the path needs (the VAE 4; the scratch and HR
# mappings 16, see their descriptors)
PATH_MULTIPLE = {path: photo_multiple(roles) for path, roles in PATH_ROLES.items()}

# Working memory per input pixel of a tile in fp32 at the official network sizes (the mapping's
# descriptor, which holds the measured figure of its path); the tile side is
# sqrt(budget / (this · memory_scale(networks))).
BYTES_PER_PIXEL = {path: architecture_of(roles[1]).tile_bytes_per_pixel for path, roles in PATH_ROLES.items()}

# RestoreStage.many: small images are padded up to multiples of BATCH_STEP (a multiple of every path's
# size multiple) and run BATCH_SIZE at a time
BATCH_STEP = 32
BATCH_SIZE = 16


@dataclass
class PathModels:
    """The three networks of one path (callables so tests and the runner can wrap them)."""

    encoder: Callable[[torch.Tensor], torch.Tensor]
    mapping: Callable[..., torch.Tensor]
    decoder: Callable[[torch.Tensor], torch.Tensor]
    masked: bool  # mapping takes (z, mask)
    modules: list[torch.nn.Module] = field(default_factory=list)  # for whole-photo instance-norm statistics

    def __call__(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        z = self.encoder(x)
        z = self.mapping(z, mask) if self.masked else self.mapping(z)
        return self.decoder(z)


def whiten(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Set defect pixels to white, as the official test.py "hole-fills" the scratch-path input."""
    out = np.array(image, dtype=np.float32, copy=True)
    out[mask] = 1.0
    return out


# the smallest tile side a memory budget may ask for (the detector's too): below it tiles are not made
# smaller, and the budget is exceeded (said by the Restorer)
MIN_TILE_SIDE = 256


def tile_side(path: str, budget_bytes: int, scale: float = 1.0) -> int:
    """Tile side for ``path`` under ``budget_bytes`` (``scale``: network width relative to official)."""
    return tile_side_for_budget(budget_bytes, BYTES_PER_PIXEL[path] * scale, PATH_MULTIPLE[path],
                                minimum=MIN_TILE_SIDE)


def memory_scale(modules: list[torch.nn.Module]) -> float:
    """Working memory of these networks relative to the official sizes the figures were measured at:
    the largest width ratio among them (features grow with the width; the widest network decides).
    Never above 1 for smaller networks, so their tiles only grow (the bundled set: 0.5, four times
    the area per tile)."""
    from oldphoto.nets import width_ratio

    return max((width_ratio(m) for m in modules), default=1.0)


class RestoreStage:
    """Runs one path's networks on a photo.

    ``run(fn, *tensors)`` executes a callable under the pipeline's device/precision (a
    :class:`~oldphoto.stages.runtime.Runner`).  ``tile``/``overlap`` are in input pixels.
    """

    def __init__(self, run: Callable[..., torch.Tensor], tile: int = 1024, overlap: int = 128,
                 global_norm: bool = True, fit_levels: bool = True,
                 device: torch.device | str = "cpu") -> None:
        self.run = run
        # where the photo's tensors live: on an accelerator, padding, the level fit and the blending of
        # a one-tile photo stay there (no photo-sized round trips to the host between the stages)
        self.device = torch.device(device)
        self.fit_levels = fit_levels  # default mode only; compat mode stretches min–max like the official
        self.tile = tile
        self.overlap = overlap
        self.global_norm = global_norm  # tiled photos: whole-photo instance-norm statistics (else per tile)

    def __call__(self, image: np.ndarray, models: PathModels, path: str,
                 mask: np.ndarray | None = None) -> np.ndarray:
        """Default mode: restored ``H×W×3`` float32 in [0,1], exactly the input's size."""
        if path not in PATHS:
            raise ValueError(f"unknown restoration path {path!r}")
        multiple = PATH_MULTIPLE[path]
        if models.masked:
            m = np.zeros(image.shape[:2], bool) if mask is None else mask
            x = image_to_tensor(whiten(image, m), self.device)
            mt = mask_to_tensor(m, self.device)
        else:
            x, mt = image_to_tensor(image, self.device), None
        x, size = pad_to_multiple(x, multiple)
        inputs = [x]
        if mt is not None:
            mt, _ = pad_to_multiple(mt, multiple)
            inputs.append(mt)
        plan = plan_tiles(x.shape[-2], x.shape[-1], self.tile, self.overlap, multiple)

        if plan.count == 1 or not self.global_norm or not models.modules:
            y = run_tiled(lambda *t: self.run(models, *t), inputs, plan, out_channels=3)
        else:
            with GlobalInstanceNorm(models.modules) as norms:
                def fn(*tiles: torch.Tensor) -> torch.Tensor:
                    norms.start_tile()
                    return self.run(models, *tiles)

                norms.collect()
                self.statistics_pass(fn, inputs, plan, multiple)
                norms.apply()
                y = run_tiled(fn, inputs, plan, out_channels=3)
        y = crop_to(y.to(x.device), size)
        if self.fit_levels:
            # The networks cannot see global levels (see oldphoto.levels): take them from the photo,
            # fitted over the whole photo (not per tile) and away from the whitened defects.
            y = match_levels(y, crop_to(x, size),
                             exclude=None if mt is None else crop_to(mt, size))
        del x, inputs
        return tensor_to_image(y)

    def statistics_pass(self, fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], plan: TilePlan,
                        multiple: int) -> None:
        """Run the networks once for :class:`GlobalInstanceNorm` to collect whole-photo statistics: on
        the photo scaled down to one tile's area (:func:`overview`), normalised with its own statistics
        throughout.  A consistent whole-image computation at a smaller scale, it came closer to the
        whole-image result than a pass over all full-resolution tiles (each normalised with its own
        statistics upstream) at a quarter to two thirds of that pass's cost
        (benchmarks/bench_tile_norm.py)."""
        fn(*overview(inputs, self.tile, multiple))

    def many(self, images: list[np.ndarray], models: PathModels, path: str,
             masks: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
        """Default mode on several images (e.g. the windows around a photo's defects), batched.

        Images that fit one tile are reflect-padded to a common size per bucket (sides rounded up to
        ``BATCH_STEP``) and run together, up to ``BATCH_SIZE`` at a time: a photo's specks of dust cost
        a few network calls instead of hundreds.  Each keeps its own instance-norm statistics and level
        fit (both are per image); larger images run one by one through :meth:`__call__`.
        """
        masks = list(masks) if masks is not None else [None] * len(images)
        results: list[np.ndarray | None] = [None] * len(images)
        buckets: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            h, w = image.shape[:2]
            if max(h, w) > self.tile:
                results[i] = self(image, models, path, masks[i])
                continue
            size = (-(-h // BATCH_STEP) * BATCH_STEP, -(-w // BATCH_STEP) * BATCH_STEP)
            buckets.setdefault(size, []).append(i)
        for size, members in buckets.items():
            for start in range(0, len(members), BATCH_SIZE):
                chunk = members[start:start + BATCH_SIZE]
                for i, out in zip(chunk, self._batch([images[i] for i in chunk],
                                                     [masks[i] for i in chunk], models, size), strict=True):
                    results[i] = out
        return results  # type: ignore[return-value]

    def _batch(self, images: list[np.ndarray], masks: list[np.ndarray | None], models: PathModels,
               size: tuple[int, int]) -> list[np.ndarray]:
        xs, ms = [], []
        for image, mask in zip(images, masks, strict=True):
            if models.masked:
                m = np.zeros(image.shape[:2], bool) if mask is None else mask
                x, mt = image_to_tensor(whiten(image, m), self.device), mask_to_tensor(m, self.device)
                ms.append(_pad_to(mt, size))
            else:
                x = image_to_tensor(image, self.device)
            xs.append(_pad_to(x, size))
        x = torch.cat(xs)
        mt = torch.cat(ms) if ms else None
        y = self.run(models, x, mt) if mt is not None else self.run(models, x)
        out = []
        for k, image in enumerate(images):
            crop = (slice(k, k + 1), slice(None), slice(0, image.shape[0]), slice(0, image.shape[1]))
            yk = y[crop]
            if self.fit_levels:  # on the image itself, as __call__ does, not on its padding
                yk = match_levels(yk, x[crop], exclude=None if mt is None else mt[crop])
            out.append(tensor_to_image(yk))
        return out

    def official(self, image: np.ndarray, models: PathModels, path: str, mask16: np.ndarray | None = None,
                 image16_u8: np.ndarray | None = None) -> np.ndarray:
        """Compat mode: the official test.py on one photo; returns the stretched output at the official size.

        Quality: 8-bit, BILINEAR to ×4.  Scratch/HR: the ×16 BICUBIC image (``image16_u8``, as detection.py
        wrote it) and its stored mask ``mask16``; HR dilates the mask 3×3 ×3; defect pixels become white.
        """
        if path == "quality":
            u8 = compat.quality_input(image)
            x = _official_tensor(u8)
            y = self.run(models, x)
        else:
            u8 = compat.scratch_input(image) if image16_u8 is None else image16_u8
            m = np.zeros(u8.shape[:2], bool) if mask16 is None else mask16
            if m.shape != u8.shape[:2]:  # a user mask for the original size
                m = compat.resize_mask(m, u8.shape[:2])
            if path == "hr":
                m = dilate_official(m)
            u8 = u8.copy()
            u8[m] = 255
            x = _official_tensor(u8)
            y = self.run(models, x, torch.from_numpy(m.astype(np.float32))[None, None])
        return compat.stretch_output(y)


def overview(inputs: list[torch.Tensor], tile: int, multiple: int) -> list[torch.Tensor]:
    """``inputs`` (the padded photo, and the mask if any) scaled down to the largest size whose area fits
    one ``tile × tile`` tile (sides multiples of ``multiple``, at least 64): what the statistics pass of
    a tiled photo runs on.  Antialiased, so the copy's feature statistics are those of the photo seen
    smaller; a mask is thresholded back to 0/1 (a defect that covers a quarter of a small pixel counts:
    the whitened pixels it leaves are still bright there)."""
    h, w = inputs[0].shape[-2:]
    scale = min(1.0, tile / (h * w) ** 0.5)
    size = tuple(max(64, int(side * scale) // multiple * multiple) for side in (h, w))
    if size == (h, w):
        return inputs
    # antialiased bilinear is missing on Apple MPS before recent PyTorch: there it runs on the host
    where = host_for(inputs[0].device)
    small = [F.interpolate(t.float().to(where), size=size, mode="bilinear", antialias=True,
                           align_corners=False).to(t.device) for t in inputs]
    return [small[0]] + [(m > 0.25).float() for m in small[1:]]


def _pad_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pad ``1×C×h×w`` at the bottom/right to ``size`` (reflected where the side allows, else repeated)."""
    ph, pw = size[0] - x.shape[-2], size[1] - x.shape[-1]
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "replicate"
    return torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode)


def _official_tensor(u8: np.ndarray) -> torch.Tensor:
    """ToTensor + Normalize(0.5, 0.5) exactly as torchvision computes them."""
    t = torch.from_numpy(np.ascontiguousarray(u8.transpose(2, 0, 1))).float().div(255)
    return t.sub(0.5).div(0.5)[None]

"""One descriptor per network architecture: everything the rest of oldphoto needs to know about it.

The importer (which checkpoint keys identify it, where the official release keeps it, which constructor
arguments a role fixes), the weights store (which roles exist and which architecture each needs, which
extra fields its cards carry), the pipeline and the tiler (the size its input must have, the working
memory of a tile) all read these records instead of keeping tables of their own.

Torch-free on purpose (the constructor is a ``"module:Class"`` string imported on first use):
``oldphoto weights --help`` and the weights CLI read it without importing torch.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "SizeRequirements", "OfficialCheckpoint", "Role", "ArchitectureDescriptor", "DESCRIPTORS", "descriptor",
    "role", "roles", "role_for", "architecture_of", "photo_multiple", "official_sources", "UPSCALE_ROLE",
    "FACE_ROLES",
]

# the official release assets (microsoft/Bringing-Old-Photos-Back-to-Life, v1.0)
GLOBAL_ASSET = "global_checkpoints.zip"
FACE_ASSET = "face_checkpoints.zip"


@dataclass(frozen=True)
class SizeRequirements:
    """What the height and width of a network's input (in its own pixels) must be.

    ``multiple``: both sides a multiple of it (the strides and pooling would floor the rest away);
    ``minimum``: both sides at least this (the deepest level's reflection padding needs a few pixels);
    ``square``: the input is exactly ``config["size"]`` square (the face generator).
    """

    multiple: int = 1
    minimum: int = 1
    square: bool = False

    def padded(self, side: int) -> int:
        """The smallest valid side ≥ ``side``."""
        side = max(side, self.minimum)
        return -(-side // self.multiple) * self.multiple

    def fits(self, height: int, width: int) -> bool:
        return (height >= self.minimum and width >= self.minimum and not height % self.multiple
                and not width % self.multiple and (not self.square or height == width))


@dataclass(frozen=True)
class OfficialCheckpoint:
    """Where the official release keeps a role's checkpoint.

    ``member``: its path inside the release asset (and the extracted folder); the last ``match_parts``
    components of it identify the checkpoint wherever it lies (the folder names the role: the VAEs'
    files are all called ``latest_net_G.pth``; the detector's file name alone is unique)."""

    asset: str
    member: str
    match_parts: int = 2

    @property
    def tail(self) -> tuple[str, ...]:
        return tuple(self.member.split("/")[-self.match_parts:])


@dataclass(frozen=True)
class Role:
    """A network the restoration pipeline loads by name (``<role>.safetensors`` + card).

    ``config``: constructor arguments the role fixes (the 256 and 512 face generators have identical
    keys and shapes, so the role is what tells their size)."""

    name: str
    official: OfficialCheckpoint | None = None
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class ArchitectureDescriptor:
    """The facts about one architecture (the ``ARCH_NAME`` of its network class).

    ``constructor``: ``"module:Class"``, imported on first use.  ``size``: what its input must be, at the
    official configuration (None: not run by the pipeline).  ``input_scale``: photo pixels per input pixel
    in the pipeline (the mappings see the VAE's latent, a quarter of the photo's side).  ``roles``: the
    pipeline roles using it.  ``signature``: keys whose presence identifies an official-layout checkpoint.
    ``card_fields``: extra numbers the cards of its weights may carry (calibrations), beyond the generic
    card.  ``tile_bytes_per_pixel``: working memory per input pixel of one tile in fp32 at the official
    size (for a mapping: of its whole path VAE_A → mapping → VAE_B, which the mapping names and
    dominates), measured with benchmarks/bench_restore.py (peak RSS growth over a 512² run, rounded up
    ~20 %); chunked attention keeps the scratch/HR figures independent of the tile size.
    """

    name: str
    constructor: str
    size: SizeRequirements | None = None
    input_scale: int = 1
    roles: tuple[Role, ...] = ()
    signature: tuple[str, ...] = ()
    card_fields: tuple[str, ...] = ()
    tile_bytes_per_pixel: int | None = None

    def network_class(self) -> type:
        module_name, class_name = self.constructor.split(":")
        return getattr(importlib.import_module(module_name), class_name)

    def recognises(self, keys: Iterable[str]) -> bool:
        keys = set(keys)
        return bool(self.signature) and all(k in keys for k in self.signature)


def _official(folder: str, file: str = "latest_net_G.pth") -> OfficialCheckpoint:
    return OfficialCheckpoint(GLOBAL_ASSET, f"restoration/{folder}/{file}")


_MAPPING_FILE = "latest_net_mapping_net.pth"
# the upscaler's working memory per input pixel of a tile in fp32 (its dense blocks' concatenations; the ×4
# part runs in strips, 62 MiB whatever the tile): peak RSS growth between 256² and 512² tiles, 2.9 KB, + 20 %,
# which also covers the strips at the default 2 GiB budget (tiles of 783 px: 1.8 GiB by the measured slope)
# (benchmarks/bench_upscale.py --memory --side 512)
UPSCALER_BYTES_PER_PIXEL = 3500
# the role of --upscale's network (Real-ESRGAN x4plus, `oldphoto weights download realesrgan`)
UPSCALE_ROLE = "upscale_x4"

# In pipeline order (the order `oldphoto weights list` names missing roles in, and the official assets
# are downloaded in).  Signatures are disjoint (tests/nets/test_descriptors.py checks it on every
# official layout), so the order does not decide a recognition.
DESCRIPTORS: tuple[ArchitectureDescriptor, ...] = (
    ArchitectureDescriptor(
        "vae", "oldphoto.nets.vae:VAE",
        # two stride-2 convolutions; at 8 the 2×2 latent still takes the ResnetBlocks' reflection pad
        size=SizeRequirements(multiple=4, minimum=8),
        roles=(Role("vae_a", _official("VAE_A_quality")),
               Role("vae_b_quality", _official("VAE_B_quality")),
               Role("vae_b_scratch", _official("VAE_B_scratch"))),
        signature=("encoder.1.weight",)),
    ArchitectureDescriptor(
        "mapping_quality", "oldphoto.nets.mapping:QualityMapping",
        size=SizeRequirements(multiple=1, minimum=2), input_scale=4,
        roles=(Role("mapping_quality", _official("mapping_quality", _MAPPING_FILE)),),
        signature=("model.0.weight",),
        # the --fidelity at which these weights were measured to restore best without making any held-out
        # photo worse (docs/restore.md)
        card_fields=("fidelity",),
        tile_bytes_per_pixel=1400),
    ArchitectureDescriptor(
        "mapping_scratch", "oldphoto.nets.mapping:ScratchMapping",
        # 4 latent cells = 16 photo pixels: keeps the latent grid aligned with the detector's and with
        # the official scratch-mode rounding (photos resized to ×16)
        size=SizeRequirements(multiple=4, minimum=2), input_scale=4,
        roles=(Role("mapping_scratch", _official("mapping_scratch", _MAPPING_FILE)),),
        signature=("before_NL.0.weight", "NL.theta.weight", "NL.g.weight"),
        # defects no deeper than these (px) are filled by diffusion, then by copied texture: these
        # weights were measured to fill them worse (docs/restore.md, step 3)
        card_fields=("diffusion_depth", "texture_depth"),
        tile_bytes_per_pixel=3400),
    ArchitectureDescriptor(
        "mapping_patch_attention", "oldphoto.nets.mapping:PatchAttentionMapping",
        size=SizeRequirements(multiple=4, minimum=2), input_scale=4,  # as the scratch mapping
        roles=(Role("mapping_hr", _official("mapping_Patch_Attention", _MAPPING_FILE)),),
        signature=("before_NL.0.weight", "NL_scale_1.F_Combine.weight"),
        card_fields=("diffusion_depth", "texture_depth"),  # as the scratch mapping's
        tile_bytes_per_pixel=2400),
    ArchitectureDescriptor(
        "detector", "oldphoto.nets.detector:DefectDetector",
        # 2**depth at the official depth 4 (four blur-pool downsamplings); at 32 the deepest level is 2×2,
        # enough for its reflection padding
        size=SizeRequirements(multiple=16, minimum=32),
        roles=(Role("detector", OfficialCheckpoint(GLOBAL_ASSET, "detection/FT_Epoch_latest.pt",
                                                   match_parts=1)),),
        signature=("first.1.weight", "down_path.0.block.1.weight", "last.1.weight"),
        # the probability threshold calibrated for these weights (absent: the official 0.4) and the
        # smallest defect area (fraction of the photo) calibrated to pick the scratch path
        card_fields=("threshold", "scratch_min_area"),
        tile_bytes_per_pixel=3600),
    ArchitectureDescriptor(
        "luma_denoiser", "oldphoto.nets.denoiser:LumaDenoiser",
        size=SizeRequirements(multiple=1, minimum=2),
        # not part of the paper or the official release: --remove-grain's denoiser of the photo away from
        # the defects, in place of non-local means (bundled; docs/restore.md, step 2).  Memory per pixel of
        # a strip: peak RSS growth over a 512×2048 strip at the bundled width, 142 B, + 25 %
        roles=(Role("denoiser"),),
        tile_bytes_per_pixel=180),
    ArchitectureDescriptor(
        "face_generator", "oldphoto.nets.face:FaceGenerator",
        size=SizeRequirements(multiple=32, minimum=32, square=True),  # five upsamplings from a seed
        roles=(Role("face_256", OfficialCheckpoint(FACE_ASSET, "Setting_9_epoch_100/latest_net_G.pth"),
                    MappingProxyType({"size": 256})),
               Role("face_512", OfficialCheckpoint(FACE_ASSET, "FaceSR_512/latest_net_G.pth"),
                    MappingProxyType({"size": 512}))),
        signature=("fc.weight", "head_0.norm_0.mlp_shared.0.weight", "conv_img.weight")),
    ArchitectureDescriptor(
        "rrdbnet", "oldphoto.nets.upscaler:RRDBNet",
        size=SizeRequirements(multiple=1, minimum=8),
        # --upscale: not part of the official release (`oldphoto weights download realesrgan`)
        roles=(Role(UPSCALE_ROLE),),
        tile_bytes_per_pixel=UPSCALER_BYTES_PER_PIXEL),
    # training only: no role, never imported from official checkpoints
    ArchitectureDescriptor("multiscale_discriminator",
                           "oldphoto.nets.discriminators:MultiscaleDiscriminator"),
    ArchitectureDescriptor("latent_discriminator", "oldphoto.nets.discriminators:LatentDiscriminator"),
)

_BY_NAME = {d.name: d for d in DESCRIPTORS}
_ROLES = {r.name: (r, d) for d in DESCRIPTORS for r in d.roles}


def descriptor(name: str) -> ArchitectureDescriptor:
    """The descriptor of architecture ``name`` (``KeyError`` naming the known ones)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(sorted(_BY_NAME))}") from None


def role(name: str) -> Role:
    """The role ``name`` (``KeyError`` naming the known ones)."""
    try:
        return _ROLES[name][0]
    except KeyError:
        raise KeyError(f"unknown role {name!r}; known roles: {', '.join(_ROLES)}") from None


def roles() -> dict[str, str]:
    """role -> architecture, in pipeline order."""
    return {name: d.name for name, (_r, d) in _ROLES.items()}


def architecture_of(role_name: str) -> ArchitectureDescriptor:
    role(role_name)  # the error names the known roles
    return _ROLES[role_name][1]


def role_for(architecture: str, **config: Any) -> str:
    """The role of ``architecture`` whose fixed constructor arguments are ``config`` (e.g. the face
    generator of ``size=512``: ``face_512``)."""
    d = descriptor(architecture)
    for r in d.roles:
        if all(config.get(k) == v for k, v in r.config.items()):
            return r.name
    raise KeyError(f"no role of {architecture!r} for {config}; its roles: "
                   f"{', '.join(f'{r.name} {dict(r.config)}' for r in d.roles)}")


def photo_multiple(role_names: Iterable[str]) -> int:
    """The size multiple a photo must have for every network of ``role_names`` to get a valid input."""
    multiples = []
    for name in role_names:
        d = architecture_of(name)
        if d.size is None:
            raise ValueError(f"{d.name!r} has no size requirements (not run by the pipeline)")
        multiples.append(d.size.multiple * d.input_scale)
    return math.lcm(*multiples)


def official_sources() -> dict[str, OfficialCheckpoint]:
    """role -> its official checkpoint, in pipeline order."""
    return {name: r.official for name, (r, _d) in _ROLES.items() if r.official is not None}


# the face generator's roles by their resolution (256: face_256, 512: face_512)
FACE_ROLES = {int(r.config["size"]): r.name for r in descriptor("face_generator").roles}

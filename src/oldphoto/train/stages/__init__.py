"""Training stages: what each stage builds, feeds and optimises (one module per stage family).

* ``vae_a``: VAE_A (G) + image D + latent D; KL + α·L1 + LSGAN + λ_feat·FM + λ_vgg·VGG on real old and
  synthetic photos, plus the latent LSGAN between real-old and synthetic latents (Eq. 2–4);
* ``vae_b``: VAE_B (G) + image D on clean photos, the same loss without the latent term;
* ``mapping_quality``: QualityMapping (M) + conditional D, VAE_A encoder and VAE_B decoder frozen;
  λ1·L1(M(z_x), z_y) + LSGAN + λ2·(FM + VGG) (Eq. 5–6);
* ``mapping_scratch``: ScratchMapping (partial non-local), same loss, photos with white-filled defects;
* ``mapping_hr``: PatchAttentionMapping, same;
* ``detector``: DefectDetector, weighted CE + β·focal (Eq. 11–15) on synthetic scratches;
* ``denoiser``: LumaDenoiser (not in the paper: ``--remove-grain``'s denoiser of the photo away from the
  defects, in non-local means' place), pixel MSE to the clean luma at the input's levels;
* ``face``: FaceGenerator + face D, λ_vgg·VGG + LSGAN (+ FM) (Eq. 17–18); its input is the stage-1
  output of degraded faces when a stage-1 chain is configured (joint training).

GAN terms start at ``gan_start`` (a reconstruction warm-up; 0 = from the first step, as in the paper).
``lambda_*`` weights follow the paper (α = 10, λ1 = 60, λ2 = 10) in the official config.
"""

from __future__ import annotations

from typing import Any

from oldphoto.train.distributed import DistInfo
from oldphoto.train.stages.base import Stage
from oldphoto.train.stages.denoiser import DenoiserStage
from oldphoto.train.stages.detector import DetectorStage
from oldphoto.train.stages.face import FaceStage
from oldphoto.train.stages.mapping import MappingStage, PatchAttentionMappingStage, ScratchMappingStage
from oldphoto.train.stages.vae import VAEAStage, VAEStage

__all__ = ["STAGES", "Stage", "build_stage"]

STAGES: dict[str, type[Stage]] = {
    "vae_a": VAEAStage,
    "vae_b": VAEStage,
    "mapping_quality": MappingStage,
    "mapping_scratch": ScratchMappingStage,
    "mapping_hr": PatchAttentionMappingStage,
    "detector": DetectorStage,
    "denoiser": DenoiserStage,
    "face": FaceStage,
}


def build_stage(name: str, cfg: dict[str, Any], info: DistInfo) -> Stage:
    try:
        cls = STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}") from None
    return cls(cfg, info)

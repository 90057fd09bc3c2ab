"""Tiny random networks with the real architectures and a photo-like test image, for the pipeline's
tests (imported by name: a module of its own, since `from conftest import` reaches whichever test
folder's conftest was loaded last)."""

from __future__ import annotations

import numpy as np
import torch

from oldphoto.nets.detector import DefectDetector
from oldphoto.nets.face import FaceGenerator
from oldphoto.nets.mapping import PatchAttentionMapping, QualityMapping, ScratchMapping
from oldphoto.nets.vae import VAE


def tiny_models(seed: int = 0, faces: bool = True) -> dict[str, torch.nn.Module]:
    torch.manual_seed(seed)
    vae = dict(width=8, n_res_encoder=1, n_res_decoder=1)
    models = {
        "vae_a": VAE(**vae),
        "vae_b_quality": VAE(**vae),
        "vae_b_scratch": VAE(**vae),
        "mapping_quality": QualityMapping(latent_channels=8, width=16, n_blocks=1),
        "mapping_scratch": ScratchMapping(latent_channels=8, width=16, inter_channels=8, n_blocks=1,
                                          nl_res_blocks=1),
        "mapping_hr": PatchAttentionMapping(latent_channels=8, width=16, n_res=1),
        "detector": DefectDetector(width=4),
    }
    if faces:
        models["face_256"] = FaceGenerator(ngf=2, size=256, spectral_norm=False, spade_hidden=8)
    return {k: m.eval() for k, m in models.items()}


def smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like smooth random image (low-frequency field + a little noise) in [0,1]."""
    rng = np.random.default_rng(seed)
    low = torch.from_numpy(rng.standard_normal((1, 3, 6, 6)).astype(np.float32))
    up = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)[0]
    img = 0.5 + 0.2 * up.permute(1, 2, 0).numpy() + 0.02 * rng.standard_normal((h, w, 3)).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)

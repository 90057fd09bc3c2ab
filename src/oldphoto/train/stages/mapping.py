"""Mapping stages: a latent mapping (M) + conditional D between the frozen VAE_A encoder and VAE_B decoder
(paper Eq. 5–6): ``mapping_quality``, ``mapping_scratch`` (partial nonlocal, white-filled defects),
``mapping_hr`` (multi-scale patch attention)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from oldphoto.train import data as D
from oldphoto.train.checkpoints import fingerprint, load_trained
from oldphoto.train.distributed import DistInfo
from oldphoto.train.stages.base import Stage


class MappingStage(Stage):
    """Latent mapping between frozen VAEs (quality: no mask)."""

    name = "mapping_quality"
    exports = {"M": ("mapping_quality", "mapping_quality")}
    uses_mask = False

    def __init__(self, cfg: dict[str, Any], info: DistInfo) -> None:
        super().__init__(cfg, info)
        for key in ("vae_a", "vae_b"):
            if not cfg[key]:
                raise ValueError(f"stage {self.name} needs '{key}': a trained run directory "
                                 "or weights folder")
        self.vae_a = self.frozen(load_trained(cfg["vae_a"], "vae_a", "vae"))
        self.vae_b = self.frozen(load_trained(cfg["vae_b"], "vae_b_quality", "vae"))
        # which VAEs these are: export checks that the VAEs it writes beside the mapping are the same
        cfg["vaes_used"] = {"vae_a": fingerprint(self.vae_a), "vae_b": fingerprint(self.vae_b)}
        width_a = self.vae_a.config["width"]
        width_b = self.vae_b.config["width"]
        if width_a != width_b:
            raise ValueError(f"VAE_A latent width {width_a} != VAE_B latent width {width_b}")
        self.add_net("M", {"latent_channels": width_a})
        if self.weight("lambda_gan") > 0:
            self.add_net("D")

    def batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        pool = self.pool()
        while True:
            clean, degraded, masks = [], [], []
            for _ in range(self.batch_size):
                crop = D.random_crop(pool, rng, self.crop)
                if self.uses_mask:
                    kind = "unstructured" if rng.random() < self.weight("p_no_hole") else "mixed"
                    x, y, m = D.synthesize(crop, rng, kind)
                    x = x * (1 - m[..., None]) + m[..., None]  # holes are white, as at test time
                    masks.append(m)
                else:
                    x, y, _ = D.synthesize(crop, rng, self.degradation_kind(rng))
                clean.append(y)
                degraded.append(x)
            batch = {"clean": D.to_batch(clean), "degraded": D.to_batch(degraded)}
            if self.uses_mask:
                batch["mask"] = torch.from_numpy(np.stack(masks))[:, None]
            yield batch

    def map(self, net: nn.Module, z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return net(z, mask) if self.uses_mask else net(z)

    def map_train(self, z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.map(self.ddp["M"], z, mask)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        x, y, mask = b["degraded"], b["clean"], b.get("mask")
        with torch.no_grad():
            z_x = self.vae_a.encode(x)
            z_y = self.vae_b.encode(y)
        z_m = self.map_train(z_x, mask)
        terms = {"latent_l1": F.l1_loss(z_m, z_y) * self.weight("lambda_latent")}
        need_image = any(self.weight(k) > 0 for k in ("lambda_vgg", "lambda_image_l1")) \
            or ("D" in self.nets and self.gan_active(step))
        out_img = None
        if need_image:
            # levels fitted onto the degraded input (never the clean target), defects excluded
            out_img = self.align(self.vae_b.decode(z_m), x, mask)
            if self.weight("lambda_image_l1") > 0:
                terms["image_l1"] = F.l1_loss(out_img, y) * self.weight("lambda_image_l1")
            if self.weight("lambda_vgg") > 0:
                terms["vgg"] = self.perceptual()(out_img, y) * self.weight("lambda_vgg")
            if "D" in self.nets and self.gan_active(step):
                terms.update(self.generator_gan_terms("D", torch.cat([x, out_img], 1), torch.cat([x, y], 1)))
        loss = sum(terms.values())
        self.optimize("M", loss)
        out = {k: v.detach() for k, v in terms.items()}
        if out_img is not None and "D" in self.nets and self.gan_active(step):
            out["d"] = self.discriminator_step("D", torch.cat([x, out_img.detach()], 1), torch.cat([x, y], 1))
        out["total"] = loss.detach()
        return out

    def main_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        b = self.to_device(batch)
        with torch.no_grad():
            z_m = self.map(self.nets["M"], self.vae_a.encode(b["degraded"]), b.get("mask"))
            return F.l1_loss(z_m, self.vae_b.encode(b["clean"])) * self.weight("lambda_latent")

    def samples(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        m = self.nets["M"]
        m.eval()
        with torch.no_grad():
            out = self.vae_b.decode(self.map(m, self.vae_a.encode(b["degraded"]), b.get("mask")))
            out = self.align(out, b["degraded"], b.get("mask"))
        m.train()
        return {"degraded": b["degraded"], "restored": out, "clean": b["clean"]}


class ScratchMappingStage(MappingStage):
    name = "mapping_scratch"
    exports = {"M": ("mapping_scratch", "mapping_scratch")}
    uses_mask = True


class PatchAttentionMappingStage(MappingStage):
    name = "mapping_hr"
    exports = {"M": ("mapping_hr", "mapping_patch_attention")}
    uses_mask = True

    def map_train(self, z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # the training form (soft all-vs-all attention) is differentiable; DDP needs forward(), so the
        # training form is only used unwrapped (single process) and the wrapped call uses forward()
        net = self.ddp["M"]
        if net is self.nets["M"] and hasattr(net, "training_forward"):
            return net.training_forward(z, mask)
        return net(z, mask)

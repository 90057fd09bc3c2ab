"""VAE stages: ``vae_b`` (VAE_B + image D on clean photos) and ``vae_a`` (VAE_A + image D + latent D on
real old and synthetic degraded photos; paper Eq. 2–4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from oldphoto.train import data as D
from oldphoto.train import distributed
from oldphoto.train.distributed import DistInfo
from oldphoto.train.losses import kl_loss, lsgan_loss
from oldphoto.train.networks import set_requires_grad
from oldphoto.train.stages.base import Stage


class _NoisyVAE(nn.Module):
    """Training form of a VAE with a configurable sampling noise: ``decode(z + std·ε)``.

    ``std = 1`` is the official reduced VAE.  The instance norms inside the encoder bound the latent's
    scale (a few units), so a narrow, briefly trained VAE drowns in unit noise; small configs lower it.
    The wrapper (not the VAE) is what DDP wraps, so gradients stay synchronised.
    """

    def __init__(self, vae: nn.Module, std: float) -> None:
        super().__init__()
        self.vae = vae
        self.std = std

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.vae.encode(x)
        noisy = z + self.std * torch.randn_like(z) if self.std > 0 else z
        return self.vae.decode(noisy), z


class VAEStage(Stage):
    """VAE_B on clean photos (``vae_b``); the base of VAE_A."""

    name = "vae_b"
    exports = {"G": ("vae_b_quality", "vae")}

    def __init__(self, cfg: dict[str, Any], info: DistInfo) -> None:
        super().__init__(cfg, info)
        self.add_net("G")
        if self.weight("lambda_gan") > 0:
            self.add_net("D")

    def images(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        pool = self.pool()
        crops = [D.random_crop(pool, rng, self.crop) for _ in range(self.batch_size)]
        return {"image": D.to_batch(crops)}

    def batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.images(rng)

    def wrap_distributed(self) -> None:
        find_unused = bool(self.cfg["find_unused_parameters"])
        self.ddp = {k: distributed.wrap(v, self.info, find_unused) for k, v in self.nets.items() if k != "G"}
        noisy = _NoisyVAE(self.nets["G"], self.weight("latent_noise"))
        self.ddp["G"] = distributed.wrap(noisy, self.info, find_unused)

    def vae_terms(self, x: torch.Tensor, step: int
                  ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        recon, z = self.ddp["G"](x)
        recon = self.align(recon, x)  # the reference is the VAE's own input
        terms = {"kl": kl_loss(z) * self.weight("lambda_kl"),
                 "l1": F.l1_loss(recon, x) * self.weight("lambda_l1")}
        lam_vgg = self.weight("lambda_vgg")
        if lam_vgg > 0 and step >= int(self.cfg["vgg_start"]):
            terms["vgg"] = self.perceptual()(recon, x) * lam_vgg
        if "D" in self.nets and self.gan_active(step):
            terms.update(self.generator_gan_terms("D", recon, x))
        return terms, recon, z

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        x = self.to_device(batch)["image"]
        terms, recon, _ = self.vae_terms(x, step)
        loss = sum(terms.values())
        self.optimize("G", loss)
        out = {k: v.detach() for k, v in terms.items()}
        if "D" in self.nets and self.gan_active(step):
            out["d"] = self.discriminator_step("D", recon, x)
        out["total"] = loss.detach()
        return out

    def main_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.to_device(batch)["image"]
        with torch.no_grad():
            recon, z = _NoisyVAE(self.nets["G"], self.weight("latent_noise"))(x)
            recon = self.align(recon, x)
            return F.l1_loss(recon, x) * self.weight("lambda_l1") + kl_loss(z) * self.weight("lambda_kl")

    def samples(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.to_device(batch)["image"]
        g = self.nets["G"]
        g.eval()
        with torch.no_grad():
            y = self.align(g.decode(g.encode(x)), x)
        g.train()
        return {"input": x, "reconstruction": y}


class VAEAStage(VAEStage):
    """VAE_A on real old photos + synthetic degraded photos, with the latent discriminator (Eq. 3–4)."""

    name = "vae_a"
    exports = {"G": ("vae_a", "vae")}

    def __init__(self, cfg: dict[str, Any], info: DistInfo) -> None:
        super().__init__(cfg, info)
        self.latent_gan = self.weight("lambda_latent_gan") > 0
        if self.latent_gan:
            self.add_net("DL", {"in_channels": int(self.nets["G"].config["width"])})

    def real_pool(self) -> list[np.ndarray]:
        if not hasattr(self, "_real_pool"):
            src = D.real_old_sources(self.cfg["real_old"])
            self._real_pool, used = D.resolve_pool(src, int(self.cfg["max_side"]), self.crop)
            self.cfg["real_old_used"] = used
            if self.info.is_main:
                print(f"[{self.name}] {len(self._real_pool)} real old photos from {used}", flush=True)
        return self._real_pool

    def prepare_data(self) -> None:
        super().prepare_data()
        self.real_pool()

    def images(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        n_real = max(1, self.batch_size // 2)
        real = [D.random_crop(self.real_pool(), rng, self.crop) for _ in range(n_real)]
        synth = [D.synthesize(D.random_crop(self.pool(), rng, self.crop), rng,
                              self.degradation_kind(rng))[0]
                 for _ in range(self.batch_size - n_real)]
        is_real = torch.tensor([True] * len(real) + [False] * len(synth))
        return {"image": D.to_batch(real + synth), "is_real": is_real}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        x, is_real = b["image"], b["is_real"]
        terms, recon, z = self.vae_terms(x, step)
        use_latent = self.latent_gan and step >= int(self.cfg["latent_gan_start"])
        if use_latent and is_real.any() and (~is_real).any():
            dl = self.nets["DL"]
            set_requires_grad(dl, False)
            # the encoder tries to make real-old latents look synthetic ("real" for DL)
            terms["latent_g"] = lsgan_loss(dl(z[is_real]), True) * self.weight("lambda_latent_gan")
            set_requires_grad(dl, True)
        loss = sum(terms.values())
        self.optimize("G", loss)
        out = {k: v.detach() for k, v in terms.items()}
        if "D" in self.nets and self.gan_active(step):
            out["d"] = self.discriminator_step("D", recon, x)
        if "latent_g" in terms:
            dl = self.ddp["DL"]
            zd = z.detach()
            d_loss = 0.5 * (lsgan_loss(dl(zd[~is_real]), True) + lsgan_loss(dl(zd[is_real]), False))
            self.optimize("DL", d_loss)
            out["d_latent"] = d_loss.detach()
        out["total"] = loss.detach()
        return out

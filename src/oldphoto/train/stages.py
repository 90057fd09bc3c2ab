"""Stage definitions: what each training stage builds, feeds and optimises.

* ``vae_a``: VAE_A (G) + image D + latent D; KL + α·L1 + LSGAN + λ_feat·FM + λ_vgg·VGG on real old and
  synthetic photos, plus the latent LSGAN between real-old and synthetic latents (Eq. 2–4);
* ``vae_b``: VAE_B (G) + image D on clean photos, the same loss without the latent term;
* ``mapping_quality``: QualityMapping (M) + conditional D, VAE_A encoder and VAE_B decoder frozen;
  λ1·L1(M(z_x), z_y) + LSGAN + λ2·(FM + VGG) (Eq. 5–6);
* ``mapping_scratch``: ScratchMapping (partial non-local), same loss, photos with white-filled defects;
* ``mapping_hr``: PatchAttentionMapping, same;
* ``detector``: DefectDetector, weighted CE + β·focal (Eq. 11–15) on synthetic scratches;
* ``face``: FaceGenerator + face D, λ_vgg·VGG + LSGAN (+ FM) (Eq. 17–18); its input is the stage-1
  output of degraded faces when a stage-1 chain is configured (joint training).

GAN terms start at ``gan_start`` (a reconstruction warm-up; 0 = from the first step, as in the paper).
``lambda_*`` weights follow the paper (α = 10, λ1 = 60, λ2 = 10) in the official config.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from oldphoto.levels import match_levels
from oldphoto.train import data as D
from oldphoto.train import distributed
from oldphoto.train.distributed import DistInfo
from oldphoto.train.losses import detector_loss, feature_matching_loss, gan_loss, kl_loss, lsgan_loss


def build_net(arch: str, config: dict[str, Any]) -> nn.Module:
    from oldphoto.nets import architecture

    return architecture(arch)(**config)


def _requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def load_trained(source: str | Path, role: str, arch: str, net_key: str = "G") -> nn.Module:
    """A frozen network from a training run directory (``checkpoint.pt``) or a weights folder
    (``<role>.safetensors``)."""
    source = Path(source)
    ckpt = source / "checkpoint.pt" if source.is_dir() else source
    if ckpt.name == "checkpoint.pt" and ckpt.is_file():
        from oldphoto.train.trainer import load_checkpoint

        state = load_checkpoint(ckpt)
        cfg = state["config"]["nets"][net_key]
        net = build_net(arch, cfg)
        net.load_state_dict(state["nets"][net_key])
    elif source.is_dir() and (source / f"{role}.safetensors").is_file():
        from oldphoto.weights import load_model

        net = load_model(role, weights_dir=source)
    else:
        raise FileNotFoundError(f"{source}: neither a training run (checkpoint.pt) nor a weights folder "
                                f"with {role}.safetensors")
    net.eval()
    _requires_grad(net, False)
    return net


class Stage:
    """Base class: networks, Adam optimisers, DDP wrappers, checkpoint state."""

    name = ""
    #: stage network key -> (weights role, architecture) written by ``oldphoto train export``
    exports: dict[str, tuple[str, str]] = {}

    @classmethod
    def exports_for(cls, config: dict[str, Any]) -> dict[str, tuple[str, str]]:
        """``exports`` for a run with this (resolved) config."""
        return cls.exports

    @classmethod
    def card_fields(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Extra card fields (``data``, ``licence``) for weights exported from a run with this config."""
        return {}

    def __init__(self, cfg: dict[str, Any], info: DistInfo) -> None:
        self.cfg = cfg
        self.info = info
        self.device = info.device
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.ddp: dict[str, nn.Module] = {}
        self.batch_size = int(cfg.get("batch_size", 4))
        self.crop = int(cfg.get("crop", 128))
        self.gan_start = int(cfg.get("gan_start", 0))
        self.channels_last = bool(cfg.get("channels_last", False))
        self._perceptual = None

    # -- construction helpers
    def add_net(self, key: str, arch: str, default: dict[str, Any] | None = None) -> nn.Module:
        cfg = dict(default or {})
        cfg.update(self.cfg.get("nets", {}).get(key, {}))
        self.cfg.setdefault("nets", {})[key] = cfg  # record the resolved config in checkpoints
        net = build_net(arch, cfg).to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        net.train()
        self.nets[key] = net
        lr = float(self.cfg.get("lr", 2e-4))
        betas = tuple(self.cfg.get("betas", (0.5, 0.999)))
        self.optimizers[key] = torch.optim.Adam(net.parameters(), lr=lr, betas=betas)
        return net

    def perceptual(self):
        if self._perceptual is None:
            from oldphoto.train.perceptual import PerceptualLoss, build_feature_net

            feats = build_feature_net(self.cfg.get("vgg19"), int(self.cfg.get("vgg_layers", 5)))
            self._perceptual = self.frozen(PerceptualLoss(feats))
        return self._perceptual

    def frozen(self, net: nn.Module) -> nn.Module:
        """A frozen helper network on the stage's device, in its memory format."""
        net = net.to(self.device)
        return net.to(memory_format=torch.channels_last) if self.channels_last else net

    def wrap_distributed(self) -> None:
        find_unused = bool(self.cfg.get("find_unused_parameters", False))
        self.ddp = {k: distributed.wrap(v, self.info, find_unused) for k, v in self.nets.items()}

    def net_states(self) -> dict[str, dict[str, torch.Tensor]]:
        return {k: v.state_dict() for k, v in self.nets.items()}

    def load_state(self, nets: dict[str, Any], optims: dict[str, Any]) -> None:
        for k, net in self.nets.items():
            net.load_state_dict(nets[k])
        for k, opt in self.optimizers.items():
            opt.load_state_dict(optims[k])

    def weight(self, name: str, default: float) -> float:
        return float(self.cfg.get(name, default))

    def align(self, output: torch.Tensor, reference: torch.Tensor,
              exclude: torch.Tensor | None = None) -> torch.Tensor:
        """``output`` as the image-space losses see it.

        With ``level_align`` the output's per-channel gain and offset are fitted to ``reference`` (the
        network's INPUT, as at inference; defects excluded): the VAE encoder is invariant to global levels,
        so the raw output's levels are arbitrary and a loss on them fights what the nets cannot represent.
        """
        if not bool(self.cfg.get("level_align", False)):
            return output
        # the least-squares fit in float32 even under bf16 autocast (sums over a whole crop)
        return match_levels(output.float(), reference.float(),
                            None if exclude is None else exclude.float())

    def degradation_kind(self, rng: np.random.Generator, default: str) -> str:
        """The synthesis kind of the next crop: config ``degradation`` is one kind or a list of kinds
        drawn uniformly per crop (e.g. VAE_A on ["mixed", "unstructured"] also sees unfaded colour)."""
        kinds = self.cfg.get("degradation", default)
        if isinstance(kinds, str):
            return kinds
        return str(kinds[int(rng.integers(len(kinds)))])

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device, non_blocking=True)  # pinned batches from DataLoader workers
                if self.channels_last and v.dim() == 4:
                    v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out

    # -- GAN helpers
    def gan_active(self, step: int) -> bool:
        return step >= self.gan_start and self.weight("lambda_gan", 1.0) > 0

    def generator_gan_terms(self, d_key: str, fake_in: torch.Tensor, real_in: torch.Tensor
                            ) -> dict[str, torch.Tensor]:
        """LSGAN + feature matching for the generator, through the *unwrapped* D (no DDP sync, no D grads)."""
        disc = self.nets[d_key]
        _requires_grad(disc, False)
        fake_out = disc(fake_in)
        mode = str(self.cfg.get("gan_mode", "lsgan"))
        terms = {"g_gan": gan_loss(fake_out, True, mode, for_discriminator=False)
                 * self.weight("lambda_gan", 1.0)}
        lam_feat = self.weight("lambda_feat", 10.0)
        if lam_feat > 0:
            with torch.no_grad():
                real_out = disc(real_in)
            terms["g_feat"] = feature_matching_loss(fake_out, real_out) * lam_feat
        _requires_grad(disc, True)
        return terms

    def discriminator_step(self, d_key: str, fake_in: torch.Tensor, real_in: torch.Tensor) -> torch.Tensor:
        disc = self.ddp[d_key]
        mode = str(self.cfg.get("gan_mode", "lsgan"))
        loss = 0.5 * (gan_loss(disc(fake_in.detach()), False, mode) + gan_loss(disc(real_in), True, mode))
        self.optimize(d_key, loss)
        return loss.detach()

    def optimize(self, key: str, loss: torch.Tensor) -> None:
        """One optimizer step of net ``key`` on ``loss``."""
        opt = self.optimizers[key]
        opt.zero_grad(set_to_none=True)
        # backward and the update outside autocast (the trainer's bf16 mode covers forward passes only)
        with torch.autocast(self.device.type, enabled=False):
            loss.float().backward()
            opt.step()

    def idle_step(self, key: str) -> None:
        """Keep a net's optimizer/scheduler bookkeeping consistent while its loss is switched off."""

    # -- interface for the trainer
    def batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Load what :meth:`batches` draws from (before DataLoader workers fork, so they share it)."""
        self.pool()

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def samples(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {}

    def main_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The stage's supervised objective on ``batch`` without updating anything (tests, monitoring)."""
        raise NotImplementedError

    def pool(self, rng: np.random.Generator | None = None) -> list[np.ndarray]:
        if not hasattr(self, "_pool"):
            sources = self.cfg.get("photos", ["corpus:train", "skimage"])
            self._pool, self.photo_source = D.resolve_pool(sources, int(self.cfg.get("max_side", 768)),
                                                           self.crop)
            self.cfg["photo_source_used"] = self.photo_source
            if self.info.is_main:
                print(f"[{self.name}] {len(self._pool)} clean photos from {self.photo_source}", flush=True)
        return self._pool


# ---------------------------------------------------------------------------------------------------------
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
        self.add_net("G", "vae", {"width": 64})
        if self.weight("lambda_gan", 1.0) > 0:
            self.add_net("D", "multiscale_discriminator", {"in_channels": 3})

    def images(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        pool = self.pool()
        crops = [D.random_crop(pool, rng, self.crop) for _ in range(self.batch_size)]
        return {"image": D.to_batch(crops)}

    def batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.images(rng)

    def wrap_distributed(self) -> None:
        find_unused = bool(self.cfg.get("find_unused_parameters", False))
        self.ddp = {k: distributed.wrap(v, self.info, find_unused) for k, v in self.nets.items() if k != "G"}
        noisy = _NoisyVAE(self.nets["G"], self.weight("latent_noise", 1.0))
        self.ddp["G"] = distributed.wrap(noisy, self.info, find_unused)

    def vae_terms(self, x: torch.Tensor, step: int
                  ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        recon, z = self.ddp["G"](x)
        recon = self.align(recon, x)  # the reference is the VAE's own input
        terms = {"kl": kl_loss(z) * self.weight("lambda_kl", 1.0),
                 "l1": F.l1_loss(recon, x) * self.weight("lambda_l1", 10.0)}
        lam_vgg = self.weight("lambda_vgg", 10.0)
        if lam_vgg > 0 and step >= int(self.cfg.get("vgg_start", 0)):
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
            recon, z = _NoisyVAE(self.nets["G"], self.weight("latent_noise", 1.0))(x)
            recon = self.align(recon, x)
            return (F.l1_loss(recon, x) * self.weight("lambda_l1", 10.0)
                    + kl_loss(z) * self.weight("lambda_kl", 1.0))

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
        self.latent_gan = self.weight("lambda_latent_gan", 1.0) > 0
        if self.latent_gan:
            width = int(self.cfg["nets"]["G"].get("width", 64))
            self.add_net("DL", "latent_discriminator", {"in_channels": width})

    def real_pool(self) -> list[np.ndarray]:
        if not hasattr(self, "_real_pool"):
            src = D.real_old_sources(self.cfg.get("real_old"))
            self._real_pool, used = D.resolve_pool(src, int(self.cfg.get("max_side", 768)), self.crop)
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
                              self.degradation_kind(rng, "mixed"))[0]
                 for _ in range(self.batch_size - n_real)]
        is_real = torch.tensor([True] * len(real) + [False] * len(synth))
        return {"image": D.to_batch(real + synth), "is_real": is_real}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        x, is_real = b["image"], b["is_real"]
        terms, recon, z = self.vae_terms(x, step)
        use_latent = self.latent_gan and step >= int(self.cfg.get("latent_gan_start", 0))
        if use_latent and is_real.any() and (~is_real).any():
            dl = self.nets["DL"]
            _requires_grad(dl, False)
            # the encoder tries to make real-old latents look synthetic ("real" for DL)
            terms["latent_g"] = lsgan_loss(dl(z[is_real]), True) * self.weight("lambda_latent_gan", 1.0)
            _requires_grad(dl, True)
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


# ---------------------------------------------------------------------------------------------------------
class MappingStage(Stage):
    """Latent mapping between frozen VAEs (quality: no mask)."""

    name = "mapping_quality"
    arch = "mapping_quality"
    exports = {"M": ("mapping_quality", "mapping_quality")}
    uses_mask = False

    def __init__(self, cfg: dict[str, Any], info: DistInfo) -> None:
        super().__init__(cfg, info)
        for key in ("vae_a", "vae_b"):
            if not cfg.get(key):
                raise ValueError(f"stage {self.name} needs '{key}': a trained run directory "
                                 "or weights folder")
        self.vae_a = self.frozen(load_trained(cfg["vae_a"], "vae_a", "vae"))
        self.vae_b = self.frozen(load_trained(cfg["vae_b"], "vae_b_quality", "vae"))
        width_a = self.vae_a.config["width"]
        width_b = self.vae_b.config["width"]
        if width_a != width_b:
            raise ValueError(f"VAE_A latent width {width_a} != VAE_B latent width {width_b}")
        self.add_net("M", self.arch, {"latent_channels": width_a})
        if self.weight("lambda_gan", 1.0) > 0:
            self.add_net("D", "multiscale_discriminator", {"in_channels": 6})

    def batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        pool = self.pool()
        while True:
            clean, degraded, masks = [], [], []
            for _ in range(self.batch_size):
                crop = D.random_crop(pool, rng, self.crop)
                if self.uses_mask:
                    kind = "unstructured" if rng.random() < float(self.cfg.get("p_no_hole", 0.3)) else "mixed"
                    x, y, m = D.synthesize(crop, rng, kind)
                    x = x * (1 - m[..., None]) + m[..., None]  # holes are white, as at test time
                    masks.append(m)
                else:
                    x, y, _ = D.synthesize(crop, rng, self.degradation_kind(rng, "unstructured"))
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
        terms = {"latent_l1": F.l1_loss(z_m, z_y) * self.weight("lambda_latent", 60.0)}
        need_image = any(self.weight(k, d) > 0 for k, d in (("lambda_vgg", 10.0), ("lambda_image_l1", 0.0))) \
            or ("D" in self.nets and self.gan_active(step))
        out_img = None
        if need_image:
            # levels fitted onto the degraded input (never the clean target), defects excluded
            out_img = self.align(self.vae_b.decode(z_m), x, mask)
            if self.weight("lambda_image_l1", 0.0) > 0:
                terms["image_l1"] = F.l1_loss(out_img, y) * self.weight("lambda_image_l1", 0.0)
            if self.weight("lambda_vgg", 10.0) > 0:
                terms["vgg"] = self.perceptual()(out_img, y) * self.weight("lambda_vgg", 10.0)
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
            return F.l1_loss(z_m, self.vae_b.encode(b["clean"])) * self.weight("lambda_latent", 60.0)

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
    arch = "mapping_scratch"
    exports = {"M": ("mapping_scratch", "mapping_scratch")}
    uses_mask = True


class PatchAttentionMappingStage(MappingStage):
    name = "mapping_hr"
    arch = "mapping_patch_attention"
    exports = {"M": ("mapping_hr", "mapping_patch_attention")}
    uses_mask = True

    def map_train(self, z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # the training form (soft all-vs-all attention) is differentiable; DDP needs forward(), so the
        # training form is only used unwrapped (single process) and the wrapped call uses forward()
        net = self.ddp["M"]
        if net is self.nets["M"] and hasattr(net, "training_forward"):
            return net.training_forward(z, mask)
        return net(z, mask)


# ---------------------------------------------------------------------------------------------------------
# the detector's sharp clean crops: the "structured" synthesis (tone, local defects, grain) without defects
SHARP_CLEAN = {"p_scratch": 0.0, "p_dust": 0.0, "p_hole": 0.0, "p_crease": 0.0, "p_thin_crack": 0.0,
               "p_faint_scratch": 0.0, "p_tear": 0.0}


class DetectorStage(Stage):
    name = "detector"
    exports = {"N": ("detector", "detector")}

    def __init__(self, cfg: dict[str, Any], info: DistInfo) -> None:
        super().__init__(cfg, info)
        if self.crop % 16:
            raise ValueError(f"detector crop must be a multiple of 16, got {self.crop}")
        self.add_net("N", "detector", {"width": 64, "depth": 4})

    def batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        pool = self.pool()
        p_clean = self.weight("p_clean", 0.0)
        p_sharp = self.weight("p_sharp_clean", 0.0)
        # ``synth``: DegradeConfig fields, e.g. p_content (scene content drawn as hard negatives:
        # lettering, ropes, fabric, collars, highlights, foliage) and the extra positives p_thin_crack,
        # p_faint_scratch, p_tear
        options = self.cfg.get("synth") or {}
        sharp = {**options, **SHARP_CLEAN}
        D.synth_config("mixed", options)  # a bad option fails here, before any training
        while True:
            imgs, masks = [], []
            for _ in range(self.batch_size):
                # defect-free old-look crops (fading, yellowing, grain, noise) teach the detector that
                # bright skies, paper white and grain are not defects: without them it flags flat areas;
                # sharp defect-free crops (tone, scene content, a little grain) that a clean photo's fine
                # bright lines and edges are not either
                u = rng.random()
                if u < p_sharp:
                    kind, opts = "structured", sharp
                else:
                    kind = "oldlook" if u < p_sharp + p_clean else self.degradation_kind(rng, "mixed")
                    opts = options
                x, _, m = D.synthesize(D.random_crop(pool, rng, self.crop), rng, kind, opts)
                imgs.append(D.gray(x)[..., None])
                masks.append(m)
            yield {"image": D.to_batch(imgs), "mask": torch.from_numpy(np.stack(masks))[:, None]}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        logits = self.ddp["N"](b["image"]).float()  # the focal/CE terms in float32 under bf16
        loss, parts = detector_loss(logits, b["mask"], gamma=self.weight("focal_gamma", 0.2),
                                    beta=self.weight("focal_beta", 10.0))
        self.optimize("N", loss)
        return {**parts, "total": loss.detach()}

    def main_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        b = self.to_device(batch)
        with torch.no_grad():
            return detector_loss(self.nets["N"](b["image"]), b["mask"], self.weight("focal_gamma", 0.2),
                                 self.weight("focal_beta", 10.0))[0]

    def samples(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        n = self.nets["N"]
        n.eval()
        with torch.no_grad():
            p = torch.sigmoid(n(b["image"]))
        n.train()
        return {"input": b["image"], "mask": b["mask"] * 2 - 1, "prediction": p * 2 - 1}


# ---------------------------------------------------------------------------------------------------------
class FaceStage(Stage):
    """Face generator (progressive SPADE) on aligned faces degraded by :mod:`oldphoto.synth.face_degrade`.

    Losses (paper Eq. 17–18, in the SPADE form the generator comes from): VGG perceptual, multi-scale
    GAN (``gan_mode`` hinge by default) with discriminator feature matching, plus an optional pixel L1
    (``lambda_image_l1``) that ties the face to its input.  The discriminator is conditional: it sees the
    degraded face next to the real or generated one, so a sharp face that is not *this* face loses.

    ``faces``: a folder (or list of folders) of aligned face crops (``oldphoto data faces``).  With a
    stage-1 chain configured (``vae_a``, ``vae_b``, ``mapping``) the generator's input is the stage-1
    output of the degraded face (the paper's joint training).
    """

    name = "face"
    exports = {"G": ("face_256", "face_generator")}

    def __init__(self, cfg: dict[str, Any], info: DistInfo) -> None:
        cfg.setdefault("gan_mode", "hinge")
        super().__init__(cfg, info)
        g = self.add_net("G", "face_generator", {"size": 256})
        self.size = int(g.config["size"])
        if self.weight("lambda_gan", 1.0) > 0:
            self.add_net("D", "multiscale_discriminator", {"in_channels": 6, "spectral_norm": True})
        self.stage1 = None
        if cfg.get("vae_a") and cfg.get("vae_b") and cfg.get("mapping"):
            mapping = load_trained(cfg["mapping"], "mapping_quality", "mapping_quality", "M")
            vae_a = load_trained(cfg["vae_a"], "vae_a", "vae")
            vae_b = load_trained(cfg["vae_b"], "vae_b_quality", "vae")
            self.stage1 = (self.frozen(vae_a), self.frozen(mapping), self.frozen(vae_b))

    def prepare_data(self) -> None:
        """Faces are read by :meth:`batches` itself."""

    @classmethod
    def exports_for(cls, config: dict[str, Any]) -> dict[str, tuple[str, str]]:
        return {"G": (f"face_{int(config.get('nets', {}).get('G', {}).get('size', 256))}", "face_generator")}

    @classmethod
    def card_fields(cls, config: dict[str, Any]) -> dict[str, Any]:
        """What the faces were (from each folder's manifest.json) and their licence, which binds the model."""
        sources = config.get("faces") or []
        data, licences = [], []
        for src in [sources] if isinstance(sources, str) else sources:
            path = Path(src) / "manifest.json"
            if not path.is_file():
                data.append(f"faces from {src}")
                continue
            m = json.loads(path.read_text(encoding="utf-8"))
            n = len(m.get("faces", []))
            if len(sources) == 1 and config.get("faces_used"):  # what the run loaded, not what is there now
                n = int(config["faces_used"])
            if m.get("kind") == "synthetic":
                data.append(f"{n} synthetic faces of {m.get('generator')} (seed {m.get('seed')}, truncation "
                            f"{m.get('truncation')}, sha256 {str(m.get('generator_sha256'))[:16]}), "
                            f"aligned {m.get('size')}²")
            else:
                data.append(f"{n} faces of the photos in {m.get('source', src)}")
            if m.get("licence"):
                licences.append(m["licence"])
        out: dict[str, Any] = {}
        if data:
            out["data"] = "; ".join(data)
        if licences:
            out["licence"] = " ".join(dict.fromkeys(licences))
        return out

    def face_pool(self) -> list[np.ndarray]:
        if not hasattr(self, "_faces"):
            sources = self.cfg.get("faces")
            if not sources:
                raise ValueError("stage face needs 'faces': a folder of aligned face crops "
                                 "(oldphoto data faces --synthetic N --out DIR)")
            sources = [sources] if isinstance(sources, str) else list(sources)
            self._faces = [im for src in sources
                           for im in D.load_pool(src, max_side=self.size, min_side=32)]
            # recorded in checkpoints: a face folder may grow while (or after) a run trains on it
            self.cfg["faces_used"] = len(self._faces)
            if self.info.is_main:
                print(f"[{self.name}] {len(self._faces)} faces from {', '.join(map(str, sources))}",
                      flush=True)
        return self._faces

    def degrade(self, face: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        from oldphoto.synth.face_degrade import FaceDegradeConfig, degrade_face

        if not hasattr(self, "_degrade_cfg"):
            # config ``face_degradation``: FaceDegradeConfig fields, e.g. {"noise_sigma": [1, 10]}
            fields = {k: tuple(v) if isinstance(v, list) else v
                      for k, v in dict(self.cfg.get("face_degradation", {})).items()}
            self._degrade_cfg = FaceDegradeConfig(**fields)
        degraded, target, _ = degrade_face(face, rng, self._degrade_cfg)
        return degraded, target

    def batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        pool = self.face_pool()
        while True:
            clean, degraded = [], []
            for _ in range(self.batch_size):
                face = _resize(pool[int(rng.integers(len(pool)))], self.size).astype(np.float32) / 255.0
                if rng.random() < 0.5:
                    face = face[:, ::-1]  # the template is symmetric: a mirrored face is aligned too
                x, y = self.degrade(np.ascontiguousarray(face), rng)
                clean.append(y)
                degraded.append(x)
            yield {"clean": D.to_batch(clean), "degraded": D.to_batch(degraded)}

    def stage1_output(self, x: torch.Tensor) -> torch.Tensor:
        if self.stage1 is None:
            return x
        vae_a, mapping, vae_b = self.stage1
        with torch.no_grad():
            return vae_b.decode(mapping(vae_a.encode(x)))

    def reconstruction_terms(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = {}
        if self.weight("lambda_vgg", 10.0) > 0:
            # ``vgg_crop``: the VGG loss on one random square of that side (the same place in both), a
            # quarter of the cost at 128 of 256 while keeping full-resolution detail; every place is
            # visited over the steps.  The crop position comes from torch's seeded generator.
            side = int(self.cfg.get("vgg_crop", 0))
            if 0 < side < out.shape[-1]:
                oy, ox = (int(v) for v in torch.randint(0, out.shape[-1] - side + 1, (2,)))
                out, y = out[..., oy:oy + side, ox:ox + side], y[..., oy:oy + side, ox:ox + side]
            terms["vgg"] = self.perceptual()(out, y) * self.weight("lambda_vgg", 10.0)
        if self.weight("lambda_image_l1", 0.0) > 0:
            terms["image_l1"] = F.l1_loss(out, y) * self.weight("lambda_image_l1", 0.0)
        return terms

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        x = self.stage1_output(b["degraded"])
        y = b["clean"]
        out = self.ddp["G"](x)
        terms = self.reconstruction_terms(out, y)
        gan = "D" in self.nets and self.gan_active(step)
        if gan:
            terms.update(self.generator_gan_terms("D", torch.cat([x, out], 1), torch.cat([x, y], 1)))
        loss = sum(terms.values())
        self.optimize("G", loss)
        res = {k: v.detach() for k, v in terms.items()}
        if gan:
            res["d"] = self.discriminator_step("D", torch.cat([x, out], 1), torch.cat([x, y], 1))
        res["total"] = loss.detach()
        return res

    def main_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        b = self.to_device(batch)
        with torch.no_grad():  # batch statistics, as in training (the running ones lag after a few steps)
            out = self.nets["G"](self.stage1_output(b["degraded"]))
            return sum(self.reconstruction_terms(out, b["clean"]).values())

    def samples(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        x = self.stage1_output(b["degraded"])
        g = self.nets["G"]
        g.eval()
        with torch.no_grad():
            out = g(x)
        g.train()
        rows = {"degraded": b["degraded"], "enhanced": out, "clean": b["clean"]}
        if self.stage1 is not None:
            rows["stage1"] = x
        return rows


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC))


STAGES: dict[str, type[Stage]] = {
    "vae_a": VAEAStage,
    "vae_b": VAEStage,
    "mapping_quality": MappingStage,
    "mapping_scratch": ScratchMappingStage,
    "mapping_hr": PatchAttentionMappingStage,
    "detector": DetectorStage,
    "face": FaceStage,
}


def build_stage(name: str, cfg: dict[str, Any], info: DistInfo) -> Stage:
    try:
        cls = STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}") from None
    return cls(cfg, info)

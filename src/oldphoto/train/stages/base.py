"""The base of every training stage: networks, Adam optimisers, DDP wrappers, checkpoint state, batches."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from oldphoto.levels import match_levels
from oldphoto.train import data as D
from oldphoto.train import distributed
from oldphoto.train.distributed import DistInfo
from oldphoto.train.losses import feature_matching_loss, gan_loss
from oldphoto.train.networks import build_net, set_requires_grad


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
        # ``cfg`` is resolved (oldphoto.train.schema): every setting of the stage is there, defaults included
        self.batch_size = int(cfg["batch_size"])
        self.crop = int(cfg["crop"])
        self.channels_last = bool(cfg["channels_last"])
        self._perceptual = None

    # -- construction helpers
    def add_net(self, key: str, derived: dict[str, Any] | None = None) -> nn.Module:
        """Network ``key`` of the stage (its architecture and defaults: :data:`schema.STAGE_NETS`);
        ``derived``: arguments that follow from other networks (a latent width), the config may override."""
        from oldphoto.train.schema import STAGE_NETS

        cfg = {**(derived or {}), **self.cfg["nets"].get(key, {})}
        self.cfg["nets"][key] = cfg  # record the resolved config in checkpoints
        net = build_net(STAGE_NETS[self.name][key].arch, cfg).to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        net.train()
        self.nets[key] = net
        lr = float(self.cfg["lr"])
        betas = tuple(self.cfg["betas"])
        self.optimizers[key] = torch.optim.Adam(net.parameters(), lr=lr, betas=betas)
        return net

    def perceptual(self):
        if self._perceptual is None:
            from oldphoto.train.perceptual import PerceptualLoss, build_feature_net

            feats = build_feature_net(self.cfg["vgg19"], int(self.cfg["vgg_layers"]))
            self._perceptual = self.frozen(PerceptualLoss(feats))
        return self._perceptual

    def frozen(self, net: nn.Module) -> nn.Module:
        """A frozen helper network on the stage's device, in its memory format."""
        net = net.to(self.device)
        return net.to(memory_format=torch.channels_last) if self.channels_last else net

    def wrap_distributed(self) -> None:
        find_unused = bool(self.cfg["find_unused_parameters"])
        self.ddp = {k: distributed.wrap(v, self.info, find_unused) for k, v in self.nets.items()}

    def net_states(self) -> dict[str, dict[str, torch.Tensor]]:
        return {k: v.state_dict() for k, v in self.nets.items()}

    def load_state(self, nets: dict[str, Any], optims: dict[str, Any]) -> None:
        for k, net in self.nets.items():
            net.load_state_dict(nets[k])
        for k, opt in self.optimizers.items():
            opt.load_state_dict(optims[k])

    def weight(self, name: str) -> float:
        return float(self.cfg[name])

    def align(self, output: torch.Tensor, reference: torch.Tensor,
              exclude: torch.Tensor | None = None) -> torch.Tensor:
        """``output`` as the image-space losses see it.

        With ``level_align`` the output's per-channel gain and offset are fitted to ``reference`` (the
        network's INPUT, as at inference; defects excluded): the VAE encoder is invariant to global levels,
        so the raw output's levels are arbitrary and a loss on them fights what the nets cannot represent.
        """
        if not bool(self.cfg["level_align"]):
            return output
        # the least-squares fit in float32 even under bf16 autocast (sums over a whole crop)
        return match_levels(output.float(), reference.float(),
                            None if exclude is None else exclude.float())

    def degradation_kind(self, rng: np.random.Generator) -> str:
        """The synthesis kind of the next crop: config ``degradation`` is one kind or a list of kinds
        drawn uniformly per crop (e.g. VAE_A on ["mixed", "unstructured"] also sees unfaded colour)."""
        kinds = self.cfg["degradation"]
        if isinstance(kinds, str):
            return kinds
        return str(kinds[int(rng.integers(len(kinds)))])

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                # pinned batches from DataLoader workers on CUDA; on MPS a non-blocking copy of pageable
                # memory reads it when the stream runs, after the trainer may have dropped the batch
                v = v.to(self.device, non_blocking=self.device.type == "cuda")
                if self.channels_last and v.dim() == 4:
                    v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out

    # -- GAN helpers
    def gan_active(self, step: int) -> bool:
        return step >= int(self.cfg["gan_start"]) and self.weight("lambda_gan") > 0

    def generator_gan_terms(self, d_key: str, fake_in: torch.Tensor, real_in: torch.Tensor
                            ) -> dict[str, torch.Tensor]:
        """LSGAN + feature matching for the generator, through the *unwrapped* D (no DDP sync, no D grads)."""
        disc = self.nets[d_key]
        set_requires_grad(disc, False)
        fake_out = disc(fake_in)
        mode = str(self.cfg["gan_mode"])
        terms = {"g_gan": gan_loss(fake_out, True, mode, for_discriminator=False)
                 * self.weight("lambda_gan")}
        lam_feat = self.weight("lambda_feat")
        if lam_feat > 0:
            with torch.no_grad():
                real_out = disc(real_in)
            terms["g_feat"] = feature_matching_loss(fake_out, real_out) * lam_feat
        set_requires_grad(disc, True)
        return terms

    def discriminator_step(self, d_key: str, fake_in: torch.Tensor, real_in: torch.Tensor) -> torch.Tensor:
        disc = self.ddp[d_key]
        mode = str(self.cfg["gan_mode"])
        loss = 0.5 * (gan_loss(disc(fake_in.detach()), False, mode) + gan_loss(disc(real_in), True, mode))
        self.optimize(d_key, loss)
        return loss.detach()

    def optimize(self, key: str, loss: torch.Tensor) -> None:
        """One optimizer step of net ``key`` on ``loss``."""
        opt = self.optimizers[key]
        opt.zero_grad(set_to_none=True)
        # backward and the update outside autocast (the trainer's bf16 mode covers forward passes only);
        # fp32 has none to leave (and before PyTorch 2.5 torch.autocast refuses "mps" even disabled)
        outside = (contextlib.nullcontext() if self.cfg.get("precision", "fp32") == "fp32"
                   else torch.autocast(self.device.type, enabled=False))
        with outside:
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
            self._pool, self.photo_source = D.resolve_pool(self.cfg["photos"], int(self.cfg["max_side"]),
                                                           self.crop)
            self.cfg["photo_source_used"] = self.photo_source
            if self.info.is_main:
                print(f"[{self.name}] {len(self._pool)} clean photos from {self.photo_source}", flush=True)
        return self._pool

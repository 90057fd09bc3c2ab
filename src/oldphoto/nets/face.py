"""Face refinement generator: a progressive SPADE generator conditioned on the degraded face.

The degraded face (N×3×S×S in [-1, 1]) is both the seed and the condition:

* seed: the face bilinearly resized to S/32 × S/32 (8×8 at 256, 16×16 at 512), then ``fc``
  (3×3 conv → 16·ngf);
* ``head_0`` at S/32, nearest ×2, ``G_middle_0`` and ``G_middle_1`` at S/16, then ``up_0..up_3`` each after a
  nearest ×2 (16→8→4→2→1 ·ngf channels), ending at S×S;
* ``conv_img``: LeakyReLU(0.2), 3×3 conv ngf→3, tanh;
* optional (``gate=True``, not in the official models): ``conv_gate``, 3×3 conv ngf→1 + sigmoid, a per-pixel
  blend between that output and the degraded input;
* optional (``residual=True``, not in the official models): ``conv_img`` without tanh predicts a correction
  added to the degraded face (clipped to [-1, 1]); it starts at zero, so the untrained generator returns its
  input.  The weights have the same keys either way: the card's config says which.

Every residual block normalises with a parameter-free BatchNorm (running statistics at inference) and then
modulates with γ, β predicted from the degraded face resized (bilinear) to that feature size (SPADE), so the
degraded face is injected at every scale.  Block convolutions are spectrally normalised.

Two forms share the class:

* training form (``spectral_norm=True``, the default; keys equal the official checkpoint:
  ``conv_0.weight_orig / weight_u / weight_v``) using ``torch.nn.utils.spectral_norm`` hooks;
* inference form (``spectral_norm=False``): plain ``conv_0.weight``.  :func:`fold_spectral_norm` converts an
  official / training-form state dict into this form, with σ = uᵀ W v from the STORED u, v (what PyTorch's
  spectral norm computes in eval mode; no power iteration).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FaceGenerator", "fold_spectral_norm", "SPADE", "SPADEResBlock"]

_SN_SUFFIXES = ("_orig", "_u", "_v")


def fold_spectral_norm(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every spectral-norm triple ``P_orig, P_u, P_v`` by ``P = P_orig / σ``, σ = uᵀ·(W v).

    W is ``P_orig`` reshaped to (out, -1) (dim 0, as PyTorch uses for convolutions).  σ is computed in
    float64 from the stored vectors and the folded weight keeps ``P_orig``'s dtype.  Other entries pass
    through unchanged and the dict order is kept (the folded weight takes the place of ``P_orig``).
    """
    stems = {k[: -len("_orig")] for k in sd
             if k.endswith("_orig") and k[: -len("_orig")] + "_u" in sd and k[: -len("_orig")] + "_v" in sd}
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        stem = next((key[: -len(s)] for s in _SN_SUFFIXES
                     if key.endswith(s) and key[: -len(s)] in stems), None)
        if stem is None:
            out[key] = value
            continue
        if not key.endswith("_orig"):
            continue  # u, v are consumed with their _orig
        w = value.to(torch.float64)
        u = sd[stem + "_u"].to(torch.float64)
        v = sd[stem + "_v"].to(torch.float64)
        mat = w.reshape(w.shape[0], -1)
        if u.shape != (mat.shape[0],) or v.shape != (mat.shape[1],):
            raise ValueError(f"spectral-norm vectors of {stem!r} have shapes {tuple(u.shape)}, "
                             f"{tuple(v.shape)}; expected ({mat.shape[0]},), ({mat.shape[1]},)")
        sigma = torch.dot(u, mat @ v)
        if not torch.isfinite(sigma) or sigma.item() == 0.0:
            raise ValueError(f"spectral norm of {stem!r} is {sigma.item()} (stored u/v are degenerate)")
        out[stem] = (w / sigma).to(value.dtype)
    return out


class SPADE(nn.Module):
    """Parameter-free BatchNorm, then ·(1+γ)+β with γ, β predicted from the condition image."""

    def __init__(self, channels: int, cond_channels: int = 3, hidden: int = 128) -> None:
        super().__init__()
        self.param_free_norm = nn.BatchNorm2d(channels, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(cond_channels, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``cond`` must already have x's spatial size (the generator resizes once per scale)."""
        actv = self.mlp_shared(cond)
        return self.param_free_norm(x) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResBlock(nn.Module):
    def __init__(self, fin: int, fout: int, *, spectral_norm: bool, cond_channels: int, hidden: int) -> None:
        super().__init__()
        fmid = min(fin, fout)
        self.learned_shortcut = fin != fout
        sn = nn.utils.spectral_norm if spectral_norm else (lambda m: m)
        self.conv_0 = sn(nn.Conv2d(fin, fmid, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(fmid, fout, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
        self.norm_0 = SPADE(fin, cond_channels, hidden)
        self.norm_1 = SPADE(fmid, cond_channels, hidden)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, cond_channels, hidden)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, cond)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, cond), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, cond), 0.2))
        return x_s + dx


class FaceGenerator(nn.Module):
    """``forward(degraded)``: N×3×size×size in [-1, 1] → N×3×size×size (tanh)."""

    ARCH_NAME = "face_generator"

    def __init__(self, *, ngf: int = 64, size: int = 256, spectral_norm: bool = True, image_channels: int = 3,
                 spade_hidden: int = 128, gate: bool = False, residual: bool = False) -> None:
        super().__init__()
        if size % 32 or size < 32:
            raise ValueError(f"size must be a positive multiple of 32 (5 upsamplings), got {size}")
        if gate and residual:
            raise ValueError("a face generator is gated or residual, not both")
        self.config = {"ngf": ngf, "size": size, "spectral_norm": spectral_norm,
                       "image_channels": image_channels, "spade_hidden": spade_hidden}
        if gate:  # only recorded when on, so official / ungated configs stay as they were
            self.config["gate"] = True
        if residual:
            self.config["residual"] = True
        self.size = size
        self.seed_size = size // 32
        kw = {"spectral_norm": spectral_norm, "cond_channels": image_channels, "hidden": spade_hidden}
        self.fc = nn.Conv2d(image_channels, 16 * ngf, 3, padding=1)
        self.head_0 = SPADEResBlock(16 * ngf, 16 * ngf, **kw)
        self.G_middle_0 = SPADEResBlock(16 * ngf, 16 * ngf, **kw)
        self.G_middle_1 = SPADEResBlock(16 * ngf, 16 * ngf, **kw)
        self.up_0 = SPADEResBlock(16 * ngf, 8 * ngf, **kw)
        self.up_1 = SPADEResBlock(8 * ngf, 4 * ngf, **kw)
        self.up_2 = SPADEResBlock(4 * ngf, 2 * ngf, **kw)
        self.up_3 = SPADEResBlock(2 * ngf, 1 * ngf, **kw)
        self.conv_img = nn.Conv2d(ngf, image_channels, 3, padding=1)
        if gate:
            # a per-pixel gate between the generated face and the input face: a small generator re-synthesises
            # everything from an 8×8 seed and so also redraws what was already fine; the gate lets it keep
            # the input where the input is good.  Starts open (σ(3) ≈ 0.95: the plain generator).
            self.conv_gate = nn.Conv2d(ngf, 1, 3, padding=1)
            nn.init.zeros_(self.conv_gate.weight)
            nn.init.constant_(self.conv_gate.bias, 3.0)
        if residual:
            # a correction to the degraded face rather than a face drawn anew from an 8×8 seed: a small
            # generator then keeps the face's geometry (its identity) and what was already fine, and learns
            # only what the degradation took away; from zero, so training starts at the input itself
            nn.init.zeros_(self.conv_img.weight)
            nn.init.zeros_(self.conv_img.bias)

    def forward(self, degraded: torch.Tensor) -> torch.Tensor:
        c = self.config["image_channels"]
        s = self.size
        if degraded.ndim != 4 or degraded.shape[1] != c or tuple(degraded.shape[2:]) != (s, s):
            raise ValueError(f"expected N×{c}×{s}×{s} degraded faces, got {tuple(degraded.shape)}")
        conds: dict[int, torch.Tensor] = {}

        def cond(x: torch.Tensor) -> torch.Tensor:
            # the condition resized (bilinear, align_corners=False) to this feature size, once per scale
            s = x.shape[2]
            if s not in conds:
                conds[s] = F.interpolate(degraded, size=(s, s), mode="bilinear", align_corners=False)
            return conds[s]

        def up(x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, scale_factor=2, mode="nearest")

        x = self.fc(F.interpolate(degraded, size=(self.seed_size, self.seed_size), mode="bilinear",
                                  align_corners=False))
        x = self.head_0(x, cond(x))
        x = up(x)
        x = self.G_middle_0(x, cond(x))
        x = self.G_middle_1(x, cond(x))
        for block in (self.up_0, self.up_1, self.up_2, self.up_3):
            x = up(x)
            x = block(x, cond(x))
        feat = F.leaky_relu(x, 0.2)
        if self.config.get("residual"):
            return (degraded + self.conv_img(feat)).clamp(-1.0, 1.0)
        out = torch.tanh(self.conv_img(feat))
        if self.config.get("gate"):
            g = torch.sigmoid(self.conv_gate(feat))
            out = g * out + (1.0 - g) * degraded
        return out

    def folded(self) -> FaceGenerator:
        """An inference-form copy (plain conv weights; σ from the current u, v), in eval mode."""
        if not self.config["spectral_norm"]:
            raise ValueError("this generator is already in the inference (folded) form")
        ref = next(self.parameters())
        plain = FaceGenerator(**{**self.config, "spectral_norm": False})
        plain = plain.to(device=ref.device, dtype=ref.dtype)
        plain.load_state_dict(fold_spectral_norm(self.state_dict()))
        return plain.eval()

    @classmethod
    def config_from_state_dict(cls, sd: Mapping[str, torch.Tensor], size: int = 256) -> dict:
        """Constructor arguments for ``sd`` (official or folded layout).  The 256 and 512 official models have
        identical keys and shapes, so ``size`` cannot be read from the weights and is passed in."""
        try:
            conv_img = sd["conv_img.weight"]
            shared = sd["head_0.norm_0.mlp_shared.0.weight"]
        except KeyError as exc:
            raise KeyError(f"not a face-generator state dict: missing {exc.args[0]!r}") from None
        config = {"ngf": int(conv_img.shape[1]), "size": int(size),
                  "spectral_norm": "head_0.conv_0.weight_orig" in sd,
                  "image_channels": int(conv_img.shape[0]), "spade_hidden": int(shared.shape[0])}
        if "conv_gate.weight" in sd:
            config["gate"] = True
        return config

"""Training losses of the paper (Wan et al.) and of the official Global/ training code.

* LSGAN (:func:`lsgan_loss`) over the outputs of a multi-scale PatchGAN discriminator;
* discriminator feature matching (:func:`feature_matching_loss`), weighted like pix2pixHD;
* the "reduced VAE" KL term ``mean(z²)`` (:func:`kl_loss`);
* the defect detector's class-balanced cross-entropy plus focal loss (paper Eq. 11–15,
  :func:`detector_loss`).

Discriminator outputs are accepted in both forms the official code produces: a list with one entry
per scale, where each entry is either the final prediction map or the list of intermediate features
whose last element is the prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

Pred = torch.Tensor | Sequence[torch.Tensor]


def _scales(outputs) -> list[list[torch.Tensor]]:
    """Normalise discriminator outputs to ``[[feat_0, ..., pred], ...]`` (one list per scale)."""
    if isinstance(outputs, torch.Tensor):
        return [[outputs]]
    scales = []
    for item in outputs:
        scales.append([item] if isinstance(item, torch.Tensor) else list(item))
    return scales


def lsgan_loss(outputs, target_is_real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean over scales of ``MSE(pred, 1 or 0)`` (pix2pixHD ``GANLoss``)."""
    scales = _scales(outputs)
    total = 0.0
    for feats in scales:
        pred = feats[-1]
        target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
        total = total + F.mse_loss(pred, target)
    return total / len(scales)


def hinge_loss(outputs, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
    """Hinge GAN loss (SPADE, which the face generator comes from), mean over scales.

    Discriminator: ``relu(1 − D(real))`` and ``relu(1 + D(fake))``; generator: ``−D(fake)``.
    """
    scales = _scales(outputs)
    total = 0.0
    for feats in scales:
        pred = feats[-1]
        if not for_discriminator:
            total = total - pred.mean()
        elif target_is_real:
            total = total + F.relu(1.0 - pred).mean()
        else:
            total = total + F.relu(1.0 + pred).mean()
    return total / len(scales)


def gan_loss(outputs, target_is_real: bool, mode: str = "lsgan", for_discriminator: bool = True
             ) -> torch.Tensor:
    """``lsgan`` (pix2pixHD, the global stage) or ``hinge`` (SPADE, the face stage)."""
    if mode == "lsgan":
        return lsgan_loss(outputs, target_is_real)
    if mode == "hinge":
        return hinge_loss(outputs, target_is_real, for_discriminator)
    raise ValueError(f"unknown gan_mode {mode!r}; choose lsgan or hinge")


def feature_matching_loss(fake_outputs, real_outputs) -> torch.Tensor:
    """L1 between discriminator features of fake and (detached) real inputs.

    Weighted ``(4 / (n_layers + 1)) · (1 / num_D)`` per layer as in pix2pixHD, where ``n_layers + 1`` is the
    number of intermediate feature maps before the prediction (the caller multiplies by ``lambda_feat``).
    """
    fake_scales, real_scales = _scales(fake_outputs), _scales(real_outputs)
    if len(fake_scales) != len(real_scales):
        raise ValueError("fake and real discriminator outputs have different numbers of scales")
    total = 0.0
    num_d = len(fake_scales)
    for fake, real in zip(fake_scales, real_scales, strict=True):
        n_feat = len(fake) - 1  # intermediate features (the last entry is the prediction)
        if n_feat <= 0:
            continue
        weight = 4.0 / n_feat / num_d
        for f, r in zip(fake[:-1], real[:-1], strict=True):
            total = total + weight * F.l1_loss(f, r.detach())
    if isinstance(total, float):
        return fake_scales[0][-1].new_zeros(())
    return total


def kl_loss(z: torch.Tensor) -> torch.Tensor:
    """KL term of the official "reduced VAE": with unit-variance sampling ``z + ε`` the KL to N(0, I)
    reduces (up to a constant) to ``mean(z²)``."""
    return z.pow(2).mean()


def class_balance_weight(target: torch.Tensor) -> torch.Tensor:
    """Per-image weight α_i of Eq. 11–12: the fraction of *negative* pixels.

    Eq. 12 as printed is the positive fraction, which would make the rare scratch pixels count even
    less; the text says the weight "remedies the imbalance", i.e. rare positives must weigh more, so the
    positive term gets the negative fraction (the HED class-balanced cross-entropy the paper builds on).
    Returns an ``N×1×1×1`` tensor.
    """
    dims = tuple(range(1, target.ndim))
    positive_fraction = target.float().mean(dim=dims, keepdim=True)
    return 1.0 - positive_fraction


def weighted_bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 11: ``α·(−y log ŷ) + (1−α)·(−(1−y) log(1−ŷ))``, averaged over pixels and images."""
    alpha = class_balance_weight(target)
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    loss = -(alpha * target * log_p + (1.0 - alpha) * (1.0 - target) * log_not_p)
    return loss.mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 0.2) -> torch.Tensor:
    """Eq. 13–14: ``−(1 − p)^γ log p`` with ``p = ŷ`` on scratch pixels and ``1 − ŷ`` elsewhere."""
    log_p = torch.where(target > 0.5, F.logsigmoid(logits), F.logsigmoid(-logits))
    p = log_p.exp()
    return (-(1.0 - p).clamp_min(0.0).pow(gamma) * log_p).mean()


def detector_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 0.2,
                  beta: float = 10.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 15: ``L_seg = L_CE + β·L_FL`` (defaults γ = 0.2, β = 10 as in the paper)."""
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and mask {tuple(target.shape)} differ in shape")
    ce = weighted_bce_loss(logits, target)
    fl = focal_loss(logits, target, gamma)
    return ce + beta * fl, {"ce": ce.detach(), "focal": fl.detach()}

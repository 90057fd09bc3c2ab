"""The ``denoiser`` stage: the luma denoiser (:mod:`oldphoto.nets.denoiser`), pixel MSE on synthetic crops.

Each crop is clean (``p_clean``: the network must give a clean photo back as it was) or degraded by the
synthesis (``degradation``: the paper's unstructured ops, and the old-print look with its grain).  The
network sees the degraded luma and the noise level the pipeline would estimate for it
(:func:`oldphoto.stages.fidelity.noise_sigma`), and learns the clean luma's detail *on the degraded
crop's levels*: the pipeline keeps a photo's levels (fading cannot be told from a dim scene), so the
target's gain and offset are fitted to the input's, and what the two still differ by at low frequencies
(a vignette, a fading curve) is the input's.  Trained on the clean luma with fitted levels alone, the
network learnt local level changes that took the output away from the clean photo (measured: about 2 dB
lower PSNR against it than the input's, on crops of training photos it had not trained on).

The loss is the squared error (what PSNR measures): most crops carry little noise and blur that cannot be
undone, and under an L1 loss their residuals' signs drowned the few noisy crops' gradients (measured: runs
of 1000 and 2500 steps left the network the identity; under MSE it learns within the first hundreds).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import torch

from oldphoto.luma import luma
from oldphoto.train import data as D
from oldphoto.train.distributed import DistInfo
from oldphoto.train.stages.base import Stage

# σ (px) of the blur under which the target's levels are fitted to the input's
LEVEL_FIT_BLUR = 4.0


def target_at_input_levels(target: np.ndarray, degraded: np.ndarray) -> np.ndarray:
    """``target``'s detail on ``degraded``'s levels (luma H×W): ``gain·target + offset`` least-squares
    fitted to ``degraded`` on both blurred, plus the blurred difference that is left."""
    t = cv2.GaussianBlur(target, (0, 0), LEVEL_FIT_BLUR).ravel().astype(np.float64)
    d = cv2.GaussianBlur(degraded, (0, 0), LEVEL_FIT_BLUR).ravel().astype(np.float64)
    t_c, d_c = t - t.mean(), d - d.mean()
    var = float(t_c @ t_c)
    gain = float(t_c @ d_c) / var if var > 1e-8 else 1.0
    fitted = (gain * target + (d.mean() - gain * t.mean())).astype(np.float32)
    return fitted + cv2.GaussianBlur(degraded - fitted, (0, 0), LEVEL_FIT_BLUR)


class DenoiserStage(Stage):
    name = "denoiser"
    exports = {"N": ("denoiser", "luma_denoiser")}

    def __init__(self, cfg: dict[str, Any], info: DistInfo) -> None:
        super().__init__(cfg, info)
        self.add_net("N")

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
        """(degraded luma, target luma at its levels, estimated noise level) of one random crop."""
        from oldphoto.stages.fidelity import noise_sigma

        crop = D.random_crop(self.pool(), rng, self.crop)
        if rng.random() < self.weight("p_clean"):
            y = luma(crop)
            return y, y, noise_sigma(y)
        degraded, target, _ = D.synthesize(crop, rng, self.degradation_kind(rng))
        y = luma(degraded)
        return y, target_at_input_levels(luma(target), y), noise_sigma(y)

    def batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            inputs, targets, sigmas = zip(*(self.sample(rng) for _ in range(self.batch_size)), strict=True)
            yield {"input": torch.from_numpy(np.stack(inputs))[:, None],
                   "target": torch.from_numpy(np.stack(targets))[:, None],
                   "sigma": torch.tensor(sigmas, dtype=torch.float32)}

    def _loss(self, net: torch.nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
        return (net(b["input"], b["sigma"]).float() - b["target"]).square().mean()

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        loss = self._loss(self.ddp["N"], self.to_device(batch))
        self.optimize("N", loss)
        return {"mse": loss.detach(), "total": loss.detach()}

    def main_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return self._loss(self.nets["N"], self.to_device(batch))

    def samples(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        n = self.nets["N"]
        n.eval()
        with torch.no_grad():
            out = n(b["input"], b["sigma"]).clamp(0, 1)
        n.train()
        return {"input": b["input"] * 2 - 1, "target": b["target"].clamp(0, 1) * 2 - 1, "output": out * 2 - 1}

"""The ``detector`` stage: DefectDetector, weighted CE + β·focal (paper Eq. 11–15) on synthetic defects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from oldphoto.train import data as D
from oldphoto.train.distributed import DistInfo
from oldphoto.train.losses import detector_loss
from oldphoto.train.stages.base import Stage

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
        self.add_net("N")

    def batches(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        pool = self.pool()
        p_clean = self.weight("p_clean")
        p_sharp = self.weight("p_sharp_clean")
        p_hard = self.weight("p_hard")
        hard = self.hard_negatives() if p_hard > 0 else []
        # ``synth``: DegradeConfig fields, e.g. p_content (scene content drawn as hard negatives:
        # lettering, ropes, fabric, collars, highlights, foliage) and the extra positives p_thin_crack,
        # p_faint_scratch, p_tear
        options = self.cfg["synth"] or {}
        sharp = {**options, **SHARP_CLEAN}
        D.synth_config("mixed", options)  # a bad option fails here, before any training
        while True:
            imgs, masks = [], []
            for _ in range(self.batch_size):
                # defect-free old-look crops (fading, yellowing, grain, noise) teach the detector that
                # bright skies, paper white and grain are not defects: without them it flags flat areas;
                # sharp defect-free crops (tone, scene content, a little grain) that a clean photo's fine
                # bright lines and edges are not either
                # mined crops of clean photos where an earlier detector fired (twigs, eaves, filaments),
                # defect-free like the sharp crops
                u = rng.random()
                source = pool
                if u < p_hard:
                    kind, opts, source = "structured", sharp, hard
                elif u < p_hard + p_sharp:
                    kind, opts = "structured", sharp
                else:
                    kind = "oldlook" if u < p_hard + p_sharp + p_clean else self.degradation_kind(rng)
                    opts = options
                x, _, m = D.synthesize(D.random_crop(source, rng, self.crop), rng, kind, opts)
                imgs.append(D.gray(x)[..., None])
                masks.append(m)
            yield {"image": D.to_batch(imgs), "mask": torch.from_numpy(np.stack(masks))[:, None]}

    def hard_negatives(self) -> list[np.ndarray]:
        """The mined hard negatives (config ``hard_negatives``: a folder of crops)."""
        folder = self.cfg.get("hard_negatives")
        if not folder:
            raise ValueError("detector: p_hard > 0 needs hard_negatives, a folder of mined crops")
        return D.load_pool(folder, max_side=int(self.cfg["max_side"]), min_side=self.crop)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        logits = self.ddp["N"](b["image"]).float()  # the focal/CE terms in float32 under bf16
        loss, parts = detector_loss(logits, b["mask"], gamma=self.weight("focal_gamma"),
                                    beta=self.weight("focal_beta"))
        self.optimize("N", loss)
        return {**parts, "total": loss.detach()}

    def main_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        b = self.to_device(batch)
        with torch.no_grad():
            return detector_loss(self.nets["N"](b["image"]), b["mask"], self.weight("focal_gamma"),
                                 self.weight("focal_beta"))[0]

    def samples(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = self.to_device(batch)
        n = self.nets["N"]
        n.eval()
        with torch.no_grad():
            p = torch.sigmoid(n(b["image"]))
        n.train()
        return {"input": b["image"], "mask": b["mask"] * 2 - 1, "prediction": p * 2 - 1}

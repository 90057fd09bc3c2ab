"""The ``face`` stage: FaceGenerator + face D on aligned degraded faces (paper Eq. 17–18)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from oldphoto.train import data as D
from oldphoto.train.checkpoints import load_trained
from oldphoto.train.distributed import DistInfo
from oldphoto.train.stages.base import Stage


class FaceStage(Stage):
    """Face generator (progressive SPADE) on aligned faces degraded by :mod:`oldphoto.synth.face_degrade`.

    Losses (paper Eq. 17–18, in the SPADE form the generator comes from): VGG perceptual, multi-scale
    GAN (``gan_mode`` hinge by default) with discriminator feature matching, plus an optional pixel L1
    (``lambda_image_l1``) to the clean face, which keeps the result close to the person at a small
    budget.  The discriminator is conditional: it sees the degraded face next to the real or generated
    one, so a sharp face that is not *this* face loses.

    ``faces``: a folder (or list of folders) of aligned face crops (``oldphoto data faces``).  With a
    stage-1 chain configured (``vae_a``, ``vae_b``, ``mapping``) the generator's input is the stage-1
    output of the degraded face (the paper's joint training).
    """

    name = "face"
    exports = {"G": ("face_256", "face_generator")}

    def __init__(self, cfg: dict[str, Any], info: DistInfo) -> None:
        super().__init__(cfg, info)
        g = self.add_net("G")
        self.size = int(g.config["size"])
        if self.weight("lambda_gan") > 0:
            self.add_net("D")
        self.stage1 = None
        if cfg["vae_a"] and cfg["vae_b"] and cfg["mapping"]:
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
        from oldphoto.synth.faces import refuse_heldout

        if not hasattr(self, "_faces"):
            sources = self.cfg["faces"]
            if not sources:
                raise ValueError("stage face needs 'faces': a folder of aligned face crops "
                                 "(oldphoto data faces --synthetic N --out DIR)")
            sources = [sources] if isinstance(sources, str) else list(sources)
            for src in sources:  # the held-out faces judge the model: never train on them
                manifest = Path(src) / "manifest.json"
                if manifest.is_file():
                    refuse_heldout(json.loads(manifest.read_text(encoding="utf-8")), src)
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
                      for k, v in dict(self.cfg["face_degradation"]).items()}
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
        if self.weight("lambda_vgg") > 0:
            # ``vgg_crop``: the VGG loss on one random square of that side (the same place in both), a
            # quarter of the cost at 128 of 256 while keeping full-resolution detail; every place is
            # visited over the steps.  The crop position comes from torch's seeded generator.
            side = int(self.cfg["vgg_crop"])
            if 0 < side < out.shape[-1]:
                oy, ox = (int(v) for v in torch.randint(0, out.shape[-1] - side + 1, (2,)))
                out, y = out[..., oy:oy + side, ox:ox + side], y[..., oy:oy + side, ox:ox + side]
            terms["vgg"] = self.perceptual()(out, y) * self.weight("lambda_vgg")
        if self.weight("lambda_image_l1") > 0:
            terms["image_l1"] = F.l1_loss(out, y) * self.weight("lambda_image_l1")
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

"""Held-out evaluation of trained weights (the acceptance table of the bundled weights' cards).

Protocol (deterministic): every held-out clean photo (corpus ``heldout`` split, else scikit-image's
held-out photos) is fitted to ``max_side`` px and cut into ``crops`` fixed ``size``² crops; each crop is
degraded by :func:`oldphoto.synth.degrade.degrade` at a seed derived from (photo index, crop index, kind)
for two kinds: ``unstructured`` (noise/blur/resampling/JPEG, no defects) and ``mixed`` (everything,
including scratches, dust, holes and creases).  The target is the synthesis' clean output (it carries the
same photographic tone).  Rows:

* ``degraded``: the input itself;
* ``classical``: OpenCV non-local-means + Telea inpainting of the mask our detector finds (unstructured:
  NLM only);
* ``restored``: our networks as the pipeline chains them: unstructured → VAE_A encoder, quality mapping,
  VAE_B decoder; mixed → detector mask (p ≥ the card's calibrated threshold, else 0.4), defects filled
  white, scratch mapping with the mask;
  then the output's levels fitted onto the network input (:func:`oldphoto.levels.match_levels`, defects
  excluded), since the VAE encoder cannot see global levels (``restored_raw``: without that fit);
* ``pipeline``: (with a weights folder) ``oldphoto.Restorer`` itself, i.e. what ``oldphoto restore``
  writes (faces off), which adds the pipeline's own choices (scratch path only when the mask is large
  enough, tone keeping, …).

Also: detector ROC-AUC on the mixed crops' masks, and the sliced Wasserstein distance between VAE_A latents
of real old photos and of synthetic degraded photos (for the latent-discriminator ablation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from oldphoto.stages.defects import OFFICIAL_THRESHOLD
from oldphoto.train import data as D


@dataclass
class Case:
    name: str
    kind: str
    degraded: np.ndarray
    clean: np.ndarray
    mask: np.ndarray


def heldout_cases(sources: list[str] | None = None, size: int = 256, crops: int = 2, max_side: int = 512,
                  kinds: tuple[str, ...] = ("unstructured", "mixed"), seed: int = 1234
                  ) -> tuple[list[Case], str]:
    pool, used = D.resolve_pool(sources or ["corpus:heldout", "skimage:heldout"], max_side, size)
    cases = []
    for i, photo in enumerate(pool):
        img = photo.astype(np.float32) / 255.0
        h, w = img.shape[:2]
        for c in range(crops):
            # fixed positions spread along the longer side
            frac = (c + 0.5) / crops
            y = int(round((h - size) * (frac if h > w else 0.5)))
            x = int(round((w - size) * (frac if w >= h else 0.5)))
            crop = np.ascontiguousarray(img[y:y + size, x:x + size])
            for k, kind in enumerate(kinds):
                rng = np.random.default_rng([seed, i, c, k])
                degraded, clean, mask = D.synthesize(crop, rng, kind)
                cases.append(Case(f"{used}#{i}.{c}", kind, degraded, clean, mask))
    return cases, used


class Chain:
    """The trained networks, chained the way the restoration pipeline uses them."""

    def __init__(self, nets: dict[str, nn.Module], threshold: float = OFFICIAL_THRESHOLD) -> None:
        self.nets = {k: v.eval() for k, v in nets.items()}
        self.threshold = threshold

    @classmethod
    def from_weights(cls, weights_dir: str | Path) -> Chain:
        from oldphoto.stages.defects import calibrated_threshold
        from oldphoto.weights import find_card, load_model

        nets = {}
        for role in ("vae_a", "vae_b_quality", "vae_b_scratch", "mapping_quality", "mapping_scratch",
                     "detector"):
            if find_card(role, weights_dir) is not None:
                nets[role] = load_model(role, weights_dir=weights_dir)
        return cls(nets, calibrated_threshold(weights_dir))  # the threshold the pipeline uses

    @classmethod
    def from_runs(cls, runs: str | Path) -> Chain:
        from oldphoto.train.stages import load_trained

        runs = Path(runs)
        spec = {"vae_a": ("vae_a", "vae", "G"), "vae_b_quality": ("vae_b", "vae", "G"),
                "mapping_quality": ("mapping_quality", "mapping_quality", "M"),
                "mapping_scratch": ("mapping_scratch", "mapping_scratch", "M"),
                "detector": ("detector", "detector", "N")}
        nets = {}
        for role, (stage, arch, key) in spec.items():
            if (runs / stage / "checkpoint.pt").is_file():
                nets[role] = load_trained(runs / stage, role, arch, key)
        if "vae_b_quality" in nets:
            nets["vae_b_scratch"] = nets["vae_b_quality"]
        return cls(nets)

    @torch.no_grad()
    def detect(self, image: np.ndarray) -> np.ndarray:
        """Defect probability H×W (the image sides must be multiples of 2**depth)."""
        x = torch.from_numpy(D.gray(image))[None, None] * 2 - 1
        return torch.sigmoid(self.nets["detector"](x))[0, 0].numpy()

    @torch.no_grad()
    def restore(self, image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(output with its levels fitted to the network input, raw decoder output), from one pass."""
        from oldphoto.levels import match_levels

        x = D.to_batch([image])
        m = None
        if mask is None:
            z = self.nets["vae_a"].encode(x)
            y = self.nets["vae_b_quality"].decode(self.nets["mapping_quality"](z))
        else:
            m = torch.from_numpy(mask.astype(np.float32))[None, None]
            x = x * (1 - m) + m  # defects white, as the official test.py does
            z = self.nets["vae_a"].encode(x)
            y = self.nets["vae_b_scratch"].decode(self.nets["mapping_scratch"](z, m))
        # the reference is the network input (as the pipeline and training use it), defects excluded
        fitted = match_levels(y, x, m)
        return _to_image(fitted), _to_image(y)


def _to_image(y: torch.Tensor) -> np.ndarray:
    return ((y[0].permute(1, 2, 0).numpy() + 1) * 0.5).clip(0, 1).astype(np.float32)


def colour_transfer(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-channel mean/std of ``image`` matched to ``reference`` (global, Reinhard-style in RGB)."""
    mu_i, sd_i = image.mean((0, 1)), image.std((0, 1)) + 1e-6
    mu_r, sd_r = reference.mean((0, 1)), reference.std((0, 1))
    return np.clip((image - mu_i) / sd_i * sd_r + mu_r, 0, 1).astype(np.float32)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def evaluate_restoration(chain: Chain, cases: list[Case], restorer: Any = None) -> dict[str, Any]:
    from oldphoto.metrics.baselines import classical_restore
    from oldphoto.metrics.fullref import psnr, psnr_y, ssim, ssim_y
    from oldphoto.metrics.roc import roc_auc

    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    scores, labels = [], []
    for case in cases:
        prob = chain.detect(case.degraded) if "detector" in chain.nets else None
        if case.kind == "mixed" and prob is not None:
            scores.append(prob.ravel())
            labels.append(case.mask.ravel() > 0.5)
        if case.kind == "unstructured":
            mask = None
            classical = classical_restore(case.degraded, np.zeros(case.mask.shape, bool))
            can_restore = all(k in chain.nets for k in ("vae_a", "vae_b_quality", "mapping_quality"))
        else:
            mask = (prob >= chain.threshold) if prob is not None else None
            classical = classical_restore(case.degraded, mask if mask is not None
                                          else np.zeros(case.mask.shape, bool))
            can_restore = mask is not None and all(
                k in chain.nets for k in ("vae_a", "vae_b_scratch", "mapping_scratch"))
        rows = {"degraded": case.degraded, "classical": classical}
        if can_restore:
            rows["restored"], rows["restored_raw"] = chain.restore(case.degraded, mask)
            # diagnostic: the instance norms of the VAE encoder discard absolute colour; this row shows
            # what a global colour transfer from the input would recover (not part of the pipeline)
            rows["restored_colour_matched"] = colour_transfer(rows["restored_raw"], case.degraded)
        if restorer is not None:
            rows["pipeline"] = restorer.restore(case.degraded).image
        for row, img in rows.items():
            entry = table.setdefault(case.kind, {}).setdefault(
                row, {"psnr": [], "ssim": [], "psnr_y": [], "ssim_y": []})
            entry["psnr"].append(psnr(img, case.clean))
            entry["ssim"].append(ssim(img, case.clean))
            entry["psnr_y"].append(psnr_y(img, case.clean))
            entry["ssim_y"].append(ssim_y(img, case.clean))
    result: dict[str, Any] = {
        kind: {row: {m: round(_mean(v), 4) for m, v in metrics.items()} | {"n": len(metrics["psnr"])}
               for row, metrics in rows.items()}
        for kind, rows in table.items()}
    if scores:
        s, lab = np.concatenate(scores), np.concatenate(labels)
        result["detector_roc_auc"] = round(float(roc_auc(s, lab)), 4) if lab.any() and (~lab).any() else None
        result["detector_positive_fraction"] = round(float(lab.mean()), 5)
    return result


@torch.no_grad()
def latent_gap(vae: nn.Module, real_old: list[np.ndarray], synthetic: list[np.ndarray],
               per_image: int = 256, seed: int = 0) -> dict[str, float]:
    """Sliced Wasserstein-1 between per-position latent vectors of real-old and synthetic crops.

    Also reported scale-free (divided by the RMS of all latents), since a VAE could shrink the distance
    by shrinking its latents."""
    from oldphoto.metrics.latent import sliced_wasserstein

    rng = np.random.default_rng(seed)

    def vectors(images: list[np.ndarray]) -> np.ndarray:
        out = []
        for img in images:
            z = vae.encode(D.to_batch([img]))[0]
            v = z.reshape(z.shape[0], -1).T.numpy()
            out.append(v[rng.choice(len(v), min(per_image, len(v)), replace=False)])
        return np.concatenate(out)

    a, b = vectors(real_old), vectors(synthetic)
    sw = float(sliced_wasserstein(a, b, seed=seed))
    rms = float(np.sqrt(np.mean(np.concatenate([a, b]) ** 2)))
    return {"sliced_w1": round(sw, 5), "sliced_w1_over_rms": round(sw / max(rms, 1e-12), 5),
            "latent_rms": round(rms, 5)}


def latent_gap_inputs(size: int = 128, n: int = 24, seed: int = 7,
                      real_sources: list[str] | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Fixed crops of the real old photos and synthetic ('mixed') crops of held-out clean photos."""
    rng = np.random.default_rng(seed)
    real_pool, _ = D.resolve_pool(D.real_old_sources(real_sources or ["real_old:all"]), 512, size)
    clean_pool, _ = D.resolve_pool(["corpus:heldout", "skimage:heldout"], 512, size)
    real = [D.random_crop(real_pool, rng, size) for _ in range(n)]
    synth = [D.synthesize(D.random_crop(clean_pool, rng, size), rng, "mixed")[0] for _ in range(n)]
    return real, synth


def markdown_table(result: dict[str, Any]) -> str:
    lines = ["| degradation | row | PSNR (dB) | SSIM | PSNR-Y (dB) | SSIM-Y | n |",
             "|---|---|---|---|---|---|---|"]
    labels = {"degraded": "degraded input", "classical": "NLM + Telea (detected mask)",
              "restored": "small networks (chained directly, levels fitted to the input)",
              "restored_raw": "small networks (chained directly, raw levels)",
              "pipeline": "`oldphoto restore` (bundled weights, faces off)",
              "restored_colour_matched": "diagnostic: networks + global colour transfer from the input"}
    for kind in ("unstructured", "mixed"):
        for row, label in labels.items():
            r = result.get(kind, {}).get(row)
            if r:
                lines.append(f"| {kind} | {label} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['psnr_y']:.2f} "
                             f"| {r['ssim_y']:.4f} | {r['n']} |")
    return "\n".join(lines)


def main_evaluate(runs: str | Path | None, weights: str | Path | None, out: str | Path | None,
                  ablation_runs: dict[str, str] | None = None) -> dict[str, Any]:
    chain = Chain.from_weights(weights) if weights else Chain.from_runs(runs)
    restorer = None
    if weights:
        from oldphoto.pipeline import Restorer

        restorer = Restorer(weights=Path(weights), faces=False, device="cpu")
    cases, used = heldout_cases()
    result = evaluate_restoration(chain, cases, restorer)
    result["heldout_source"] = used
    if ablation_runs:
        from oldphoto.train.stages import load_trained

        real, synth = latent_gap_inputs()
        result["latent_gap"] = {name: latent_gap(load_trained(path, "vae_a", "vae"), real, synth)
                                for name, path in ablation_runs.items()}
    if out:
        Path(out).write_text(json.dumps(result, indent=2))
    return result

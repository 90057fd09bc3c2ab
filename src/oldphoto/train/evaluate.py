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
* ``restored``: our networks alone, run by the pipeline itself (:meth:`oldphoto.pipeline.Restorer.networks`,
  the default mode's padding, tiling and whitening): unstructured → the quality path (VAE_A encoder,
  quality mapping, VAE_B decoder); mixed → the detector's probability (:meth:`Restorer.probabilities`)
  ≥ the Restorer's threshold (the card's calibrated one, else 0.4) as the mask of the scratch path;
  then the output's levels fitted onto the network input (:func:`oldphoto.levels.match_levels`, defects
  excluded), since the VAE encoder cannot see global levels (``restored_raw``: without that fit);
* ``pipeline``: (with a weights folder) ``Restorer.restore``, i.e. what ``oldphoto restore`` writes
  (faces off), which adds the pipeline's own choices (defects repaired locally where their shapes say
  so, fidelity blend, tone keeping, …);
* ``pipeline_true_mask`` (mixed, diagnostic): the same with the synthesis' own defect mask given as the
  user's mask (``oldphoto restore --mask-dir``), i.e. what a perfect detector would give: the gap to
  ``pipeline`` is the detector's share of what is lost, the rest is the restoration's.

Rows are scored by the evaluation harness that ``oldphoto evaluate benchmark`` uses
(:mod:`oldphoto.metrics.harness`).

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

from oldphoto.files import atomic_write_text
from oldphoto.pipeline import Restorer
from oldphoto.tensors import image_to_tensor
from oldphoto.train import data as D


@dataclass
class Case:
    name: str
    kind: str
    degraded: np.ndarray
    clean: np.ndarray
    mask: np.ndarray


# each kind's place in the seed of its degradation: the same crop of the same kind is degraded the same
# way whichever other kinds are asked for (the table's two kinds kept the seeds they always had)
KIND_SEED = {"unstructured": 0, "mixed": 1, "oldlook": 2, "structured": 3}


def heldout_cases(sources: list[str] | None = None, size: int = 256, crops: int = 2, max_side: int = 512,
                  kinds: tuple[str, ...] = ("unstructured", "mixed"), seed: int = 1234,
                  photos: int | None = None) -> tuple[list[Case], str]:
    """The held-out crops; ``photos`` keeps the first N photos only (a quick look: each keeps the crops
    and seeds it has in the full table, so its rows are that table's first rows)."""
    pool, used = D.resolve_pool(sources or ["corpus:heldout", "skimage:heldout"], max_side, size)
    if photos is not None:
        if photos < 1:
            raise ValueError(f"the number of held-out photos must be at least 1 ({photos} is given)")
        pool = pool[:photos]
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
            for kind in kinds:
                rng = np.random.default_rng([seed, i, c, KIND_SEED[kind]])
                degraded, clean, mask = D.synthesize(crop, rng, kind)
                cases.append(Case(f"{used}#{i}.{c}", kind, degraded, clean, mask))
    return cases, used


def runs_models(runs: str | Path) -> dict[str, nn.Module]:
    """The trained networks of a runs folder by role (the quality VAE_B also serves the scratch path,
    as in training)."""
    from oldphoto.train.checkpoints import load_trained

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
    return nets


def evaluation_restorer(runs: str | Path | None = None, weights: str | Path | None = None) -> Restorer:
    """The Restorer whose networks are evaluated: a weights folder's (with its calibrated threshold and
    fidelity, as ``oldphoto restore`` uses them), else a runs folder's networks (official threshold)."""
    if weights:
        return Restorer(weights=Path(weights), faces=False, device="cpu")
    return Restorer(models=runs_models(runs), faces=False, device="cpu")


def colour_transfer(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-channel mean/std of ``image`` matched to ``reference`` (global, Reinhard-style in RGB)."""
    mu_i, sd_i = image.mean((0, 1)), image.std((0, 1)) + 1e-6
    mu_r, sd_r = reference.mean((0, 1)), reference.std((0, 1))
    return np.clip((image - mu_i) / sd_i * sd_r + mu_r, 0, 1).astype(np.float32)


class _Memo:
    """One computation per (image object, variant): the harness runs every row on the same array, so a
    case's detector pass (and network pass) serves all its rows and the detector ROC."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.values: dict[tuple[int, Any], Any] = {}

    def __call__(self, image: np.ndarray, *variant: Any) -> Any:
        key = (id(image), variant)
        if key not in self.values:
            self.values[key] = self.fn(image, *variant)
        return self.values[key]


def row_methods(restorer: Restorer, kind: str, pipeline: bool,
                true_masks: dict[int, np.ndarray] | None = None) -> tuple[dict[str, Any], Any]:
    """The table's rows for one degradation kind as harness methods (see the module docstring), and the
    detector's (memoised) probabilities when this kind uses the detector, else None.  ``true_masks``:
    the cases' defect masks by ``id`` of their degraded image (the harness hands methods the image
    only), for the ``pipeline_true_mask`` row."""
    from oldphoto.metrics.baselines import classical_restore
    from oldphoto.pipeline import PATH_ROLES

    path = "quality" if kind == "unstructured" else "scratch"
    detector = kind != "unstructured" and restorer.has_models("detector")
    threshold = restorer.mask_threshold()
    probabilities = _Memo(lambda image: restorer.probabilities(image))
    networks = _Memo(lambda image, fit: restorer.networks(
        image, path, probabilities(image) >= threshold if detector else None, fit_levels=fit))

    def detected(image: np.ndarray) -> np.ndarray:
        return probabilities(image) >= threshold if detector else np.zeros(image.shape[:2], bool)

    rows: dict[str, Any] = {"degraded": lambda image, _: image,
                            "classical": lambda image, _: classical_restore(image, detected(image))}
    if restorer.has_models(*PATH_ROLES[path]) and (detector or kind == "unstructured"):
        rows["restored"] = lambda image, _: networks(image, True)
        rows["restored_raw"] = lambda image, _: networks(image, False)
        # diagnostic: the instance norms of the VAE encoder discard absolute colour; this row shows
        # what a global colour transfer from the input would recover (not part of the pipeline)
        rows["restored_colour_matched"] = lambda image, _: colour_transfer(networks(image, False), image)
    if pipeline:
        rows["pipeline"] = lambda image, _: restorer.restore(image).image
        if kind != "unstructured" and true_masks:
            rows["pipeline_true_mask"] = lambda image, _: restorer.restore(
                image, mask=true_masks[id(image)] > 0.5).image
    return rows, probabilities if detector else None


def evaluate_restoration(restorer: Restorer, cases: list[Case], pipeline: bool = False) -> dict[str, Any]:
    """The held-out table through the evaluation harness (:mod:`oldphoto.metrics.harness`): every row
    of every kind, mean PSNR/SSIM (RGB and luma), LPIPS-alex where its ImageNet weights are installed
    (``oldphoto data perception``), and n; the detector's ROC-AUC on the mixed cases."""
    from oldphoto.metrics.harness import Sample, mean_row, score_set
    from oldphoto.metrics.per_image import build_metrics
    from oldphoto.metrics.perception import installed as perception_installed
    from oldphoto.metrics.roc import roc_auc

    metrics = build_metrics(["psnr", "ssim", "psnr_y", "ssim_y",
                             *(["lpips_alex"] if perception_installed() else [])])
    result: dict[str, Any] = {}
    scores, labels = [], []
    for kind in dict.fromkeys(c.kind for c in cases):
        samples = [Sample(c.name, c.degraded, c.clean, c.mask) for c in cases if c.kind == kind]
        true_masks = {id(s.degraded): s.mask for s in samples}
        methods, probabilities = row_methods(restorer, kind, pipeline, true_masks)
        if kind == "mixed" and probabilities is not None:
            for sample in samples:
                scores.append(probabilities(sample.degraded).ravel())
                labels.append(sample.mask.ravel() > 0.5)
        rows = score_set(samples, methods, metrics).rows
        result[kind] = {row: {m: round(v, 4) for m, v in mean_row(values, metrics).items()}
                        | {"n": len(values)} for row, values in rows.items()}
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
            z = vae.encode(image_to_tensor(img))[0]
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
    lines = ["| degradation | row | PSNR (dB) | SSIM | PSNR-Y (dB) | SSIM-Y | LPIPS-alex | n |",
             "|---|---|---|---|---|---|---|---|"]
    # the weights evaluated are whichever folder was given, not necessarily the bundled ones
    weights = f"{result['weights']}, " if result.get("weights") else ""
    labels = {"degraded": "degraded input", "classical": "NLM + Telea (detected mask)",
              "restored": "networks alone (levels fitted to the input)",
              "restored_raw": "networks alone (raw levels)",
              "pipeline": f"`oldphoto restore` ({weights}faces off)",
              "pipeline_true_mask": "diagnostic: `oldphoto restore` given the true defect mask",
              "restored_colour_matched": "diagnostic: networks + global colour transfer from the input"}
    for kind in ("unstructured", "mixed"):
        for row, label in labels.items():
            r = result.get(kind, {}).get(row)
            if r:
                lpips = f"{r['lpips_alex']:.4f}" if "lpips_alex" in r else "–"
                lines.append(f"| {kind} | {label} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['psnr_y']:.2f} "
                             f"| {r['ssim_y']:.4f} | {lpips} | {r['n']} |")
    return "\n".join(lines)


def main_evaluate(runs: str | Path | None, weights: str | Path | None, out: str | Path | None,
                  ablation_runs: dict[str, str] | None = None, photos: int | None = None) -> dict[str, Any]:
    restorer = evaluation_restorer(runs, weights)
    cases, used = heldout_cases(photos=photos)
    result = evaluate_restoration(restorer, cases, pipeline=bool(weights))
    result["heldout_source"] = used
    if photos is not None:
        result["heldout_photos"] = photos  # a partial table: not comparable with the cards' figures
    result["weights" if weights else "runs"] = str(weights or runs)
    if ablation_runs:
        from oldphoto.train.checkpoints import load_trained

        real, synth = latent_gap_inputs()
        result["latent_gap"] = {name: latent_gap(load_trained(path, "vae_a", "vae"), real, synth)
                                for name, path in ablation_runs.items()}
    if out:
        atomic_write_text(out, json.dumps(result, indent=2))
    return result

"""Calibrate the defect detector's threshold and the scratch-path area, and write both into its card.

A detector trained with class-balanced cross-entropy (as ours) overstates defect probabilities, so the
official threshold of 0.4 marks large parts of clean photos.  This script degrades crops of the
corpus' *training* photos (never the held-out ones, which stay for evaluation) with the synthesis at
fixed seeds, runs the detector the way the pipeline does, and stores in ``detector.json`` the lowest
threshold whose precision reaches ``--min-precision`` (the pipeline uses it when ``--mask-threshold`` is
not given); a predicted pixel within ``--ignore-band`` px of a labelled defect counts neither way (where a
soft-edged scratch ends is a matter of a pixel).  The threshold is raised, if need be, until the clean
training photos themselves (no degradation, no defect) have at most ``--max-clean-area`` of their pixels
flagged on average.  Precision first, because a false defect is whitened
and repainted (detail is lost), while a missed one stays as it was; real old photos also carry grain
and paper texture that synthetic negatives do not fully represent, which pushes a recall-oriented
threshold into false alarms.

Then the ``--scratches auto`` rule: noise and JPEG speckle make the detector flag a few pixels on
defect-free photos, and the scratch path then whitens and repaints them.  On further training crops
(``mixed``, and the defect-free kinds ``unstructured`` and ``oldlook``) the script restores each crop by
both paths with the whole pipeline (``--weights``) and stores as ``scratch_min_area`` the smallest
flagged fraction above which the scratch path pays on average (highest mean PSNR of the resulting
choice).  It is recorded, not applied: the default mode decides by the defects' shapes
(``Defects.worth_repairing``) and uses an area rule only when ``--scratch-min-area`` is given.

    python scripts/calibrate_detector.py --weights src/oldphoto/weights/bundled --corpus assets/corpus
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from oldphoto.metrics.roc import best_f1_threshold, pixels_from_masks, roc_auc, threshold_for_precision
from oldphoto.stages.defects import DefectStage
from oldphoto.synth import Corpus, DegradeConfig, degrade, random_crop
from oldphoto.weights import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, required=True, help="weights folder holding detector.json")
    ap.add_argument("--corpus", type=Path, default=Path("assets/corpus"))
    ap.add_argument("--crops", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--min-precision", type=float, default=0.95)
    ap.add_argument("--ignore-band", type=int, default=1,
                    help="px around each labelled defect left out of the precision (0 = strict pixels)")
    ap.add_argument("--max-clean-area", type=float, default=0.0025,
                    help="highest mean flagged fraction allowed on the clean training photos")
    ap.add_argument("--clean-side", type=int, default=1024, help="clean photos fitted to this longest side")
    ap.add_argument("--path-crops", type=int, default=96,
                    help="crops for the scratch-path area (0: skip it and drop the card's area)")
    args = ap.parse_args()

    photos = Corpus(args.corpus).clean("train")
    detector = load_model("detector", args.weights)
    stage = DefectStage(detector)
    scores, masks = [], []
    with torch.no_grad():
        for i in range(args.crops):
            rng = np.random.default_rng([args.seed, i])
            crop = random_crop(photos[i % len(photos)], args.size, rng)
            sample = degrade(crop, rng, DegradeConfig(kind="mixed"))
            scores.append(stage.probabilities(sample.degraded))
            masks.append(sample.mask)
    s, y = pixels_from_masks(scores, masks)
    sb, yb = pixels_from_masks(*without_band(scores, masks, args.ignore_band))
    t_precision = threshold_for_precision(sb, yb, args.min_precision)[0]
    with torch.no_grad():
        clean = [stage.probabilities(_fit(photos[i], args.clean_side)) for i in range(len(photos))]
    t_clean = threshold_for_area(clean, args.max_clean_area)
    threshold = max(t_precision, t_clean)
    precision, recall = _precision(sb, yb, threshold), float((s[y] >= threshold).mean())
    best_f1_at, best_f1 = best_f1_threshold(s, y)
    card_path = args.weights / "detector.json"
    card = json.loads(card_path.read_text())
    card["threshold"] = round(threshold, 4)
    _write_card(card_path, card)  # the path calibration below runs the pipeline with this threshold
    area: dict[str, object] | None = None
    if args.path_crops > 0:
        area = calibrate_min_area(args.weights, photos, args.path_crops, args.size, args.seed + 1)
        card["scratch_min_area"] = area["scratch_min_area"]
    else:  # an area measured for another detector (or threshold) would be wrong for this one
        card.pop("scratch_min_area", None)
    card.setdefault("metrics", {})["calibration"] = {
        "threshold": round(threshold, 4), "min_precision": args.min_precision,
        "ignore_band_px": args.ignore_band, "strict_precision": round(_precision(s, y, threshold), 4),
        "threshold_for_precision": round(t_precision, 4), "threshold_for_clean_area": round(t_clean, 4),
        "max_clean_area": args.max_clean_area, "clean_photos": len(clean), "clean_side": args.clean_side,
        "clean_area_at_threshold": round(_mean_area(clean, threshold), 5),
        "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(_f1(s, y, threshold), 4),
        "best_f1": round(best_f1, 4), "best_f1_threshold": round(best_f1_at, 4),
        "f1_at_0.4": round(_f1(s, y, 0.4), 4), "auc": round(roc_auc(s, y), 4),
        "crops": args.crops, "size": args.size, "seed": args.seed,
        "data": "corpus train split: synth kind=mixed crops; the clean photos as they are",
        "command": "python scripts/calibrate_detector.py",
        "scratch_path": area if area is not None else "not measured (--path-crops 0): the default "
                        "pipeline decides from the defects' shapes; --scratch-min-area sets an area rule"}
    _write_card(card_path, card)
    print(json.dumps(card["metrics"]["calibration"], indent=1))


TOLERANCE_DB = 0.05


def calibrate_min_area(weights: Path, photos: list[np.ndarray], crops: int, size: int, seed: int
                       ) -> dict[str, object]:
    """The flagged-area fraction from which the scratch path beats the quality path on training crops."""
    from oldphoto.metrics.fullref import psnr
    from oldphoto.pipeline import Restorer

    quality = Restorer(weights=weights, faces=False, device="cpu", scratches="off")
    scratch = Restorer(weights=weights, faces=False, device="cpu", scratches="on")  # detects as auto does
    kinds = ("mixed", "unstructured", "oldlook")
    flagged, gain = [], []  # per crop: flagged fraction, PSNR(scratch path) - PSNR(quality path)
    base = 0.0
    for i in range(crops):
        rng = np.random.default_rng([seed, i])
        crop = random_crop(photos[i % len(photos)], size, rng)
        sample = degrade(crop, rng, DegradeConfig(kind=kinds[i % len(kinds)]))
        q = psnr(quality.restore(sample.degraded).image, sample.clean)
        restored = scratch.restore(sample.degraded)  # the scratch path with the predicted mask
        base += q
        # no defect found (no mask: the quality path was taken): auto takes the quality path at any area
        found = restored.mask is not None and bool(restored.mask.any())
        flagged.append(float(restored.mask.mean()) if found else 0.0)
        gain.append(psnr(restored.image, sample.clean) - q if found else 0.0)
    f, g = np.array(flagged), np.array(gain)
    # candidate areas: each crop's own fraction (the rule "scratch path iff flagged >= area")
    candidates = np.unique(np.concatenate([[0.0], f[f > 0]]))
    def mean_gain(area: float) -> float:
        return float(g[(f >= area) & (f > 0)].sum() / len(f))

    gains = np.array([mean_gain(a) for a in candidates])
    # the smallest area within TOLERANCE_DB of the best: where it is a wash, a visible scratch left in
    # place is worse for a viewer than the fraction of a dB that PSNR says
    chosen = float(candidates[np.flatnonzero(gains >= gains.max() - TOLERANCE_DB)[0]])
    return {"scratch_min_area": round(chosen, 6),
            "mean_psnr_quality_only": round(base / len(f), 3),
            "mean_psnr_gain_at_area": round(mean_gain(chosen), 3),
            "mean_psnr_gain_best": round(float(gains.max()), 3),
            "mean_psnr_gain_by_area": {f"{a:g}": round(mean_gain(a), 3)
                                       for a in (0.0, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2)},
            "tolerance_db": TOLERANCE_DB,
            "crops": crops, "kinds": list(kinds), "data": "corpus train split"}


def _write_card(path: Path, card: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json.tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(card, f, indent=2)
    os.replace(tmp, path)


def _fit(image: np.ndarray, side: int) -> np.ndarray:
    scale = side / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _mean_area(probabilities: list[np.ndarray], threshold: float) -> float:
    return float(np.mean([(p >= threshold).mean() for p in probabilities]))


def threshold_for_area(probabilities: list[np.ndarray], max_area: float, step: float = 0.005) -> float:
    """The lowest threshold (on a ``step`` grid) at which the mean flagged fraction of defect-free photos
    is at most ``max_area``: every flagged pixel there is a false alarm, and synthetic crops do not
    contain all the scene content (lettering, rigging, patterned cloth) real photos have."""
    for t in np.arange(step, 1.0, step):
        if _mean_area(probabilities, float(t)) <= max_area:
            return float(t)
    return 1.0


def without_band(scores: list[np.ndarray], masks: list[np.ndarray], band: int
                 ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Scores and masks with the pixels within ``band`` px outside each labelled defect removed (flat).

    Where a soft-edged scratch ends is a matter of a pixel: a prediction one pixel wider than the label
    is no false alarm (the pipeline grows the mask anyway), but strict per-pixel precision counts it as
    one, and a threshold chosen for strict precision then keeps only the cores of scratches."""
    if band <= 0:
        return [np.ravel(x) for x in scores], [np.ravel(m) for m in masks]
    kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    out_s, out_m = [], []
    for sc, m in zip(scores, masks, strict=True):
        lab = np.asarray(m) > 0.5
        keep = lab | ~(cv2.dilate(lab.astype(np.uint8), kernel) > 0)
        out_s.append(np.asarray(sc)[keep])
        out_m.append(lab[keep])
    return out_s, out_m


def _precision(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    pred = scores >= threshold
    return float((pred & labels).sum()) / max(float(pred.sum()), 1.0)


def _f1(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    pred = scores >= threshold
    tp = float((pred & labels).sum())
    return 2 * tp / max(float(pred.sum() + labels.sum()), 1.0)


if __name__ == "__main__":
    main()

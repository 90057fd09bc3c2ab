"""Calibrate the defect detector's probability threshold and write it into its weights card.

A detector trained with class-balanced cross-entropy (as ours) overstates defect probabilities, so the
official threshold of 0.4 marks large parts of clean photos.  This script degrades crops of the
corpus' *training* photos (never the held-out ones, which stay for evaluation) with the synthesis at
fixed seeds, runs the detector the way the pipeline does, and stores in ``detector.json`` the lowest
threshold whose precision reaches ``--min-precision`` (the pipeline uses it when ``--mask-threshold`` is
not given).  Precision first, because a false defect is whitened and repainted (detail is lost), while
a missed one stays as it was; real old photos also carry grain and paper texture that synthetic
negatives do not fully represent, which pushes a recall-oriented threshold into false alarms.

    python scripts/calibrate_detector.py --weights src/oldphoto/weights/bundled --corpus assets/corpus
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

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
    threshold, precision, recall = threshold_for_precision(s, y, args.min_precision)
    best_f1_at, best_f1 = best_f1_threshold(s, y)
    card_path = args.weights / "detector.json"
    card = json.loads(card_path.read_text())
    card["threshold"] = round(threshold, 4)
    card.setdefault("metrics", {})["calibration"] = {
        "threshold": round(threshold, 4), "min_precision": args.min_precision,
        "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(_f1(s, y, threshold), 4),
        "best_f1": round(best_f1, 4), "best_f1_threshold": round(best_f1_at, 4),
        "f1_at_0.4": round(_f1(s, y, 0.4), 4), "auc": round(roc_auc(s, y), 4),
        "crops": args.crops, "size": args.size, "seed": args.seed,
        "data": "corpus train split, synth kind=mixed", "command": "python scripts/calibrate_detector.py"}
    fd, tmp = tempfile.mkstemp(dir=args.weights, suffix=".json.tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(card, f, indent=2)
    os.replace(tmp, card_path)
    print(json.dumps(card["metrics"]["calibration"], indent=1))


def _f1(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    pred = scores >= threshold
    tp = float((pred & labels).sum())
    return 2 * tp / max(float(pred.sum() + labels.sum()), 1.0)


if __name__ == "__main__":
    main()

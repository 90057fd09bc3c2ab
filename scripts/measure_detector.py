"""Measure the defect detector where it must stay quiet, and where it must find damage.

* False alarms: the fraction of pixels flagged at the card's calibrated threshold on CLEAN held-out photos
  (corpus ``heldout`` split and scikit-image's held-out photos, fitted to ``--max-side``; a photo in both
  counts once), as they are and after defect-free degradations at fixed seeds: ``unstructured`` (noise,
  blur, resampling, JPEG) and ``oldlook`` (the same plus fading, tint, vignette, paper surface).  No
  defect is drawn, so every flagged pixel is a false alarm.  Mean over photos, the worst photo, and
  each photo.
* ROC-AUC on synthetic defects: the held-out ``mixed`` crops of ``oldphoto train evaluate`` (same
  crops, same seeds, same number), per pixel.
* Real photos given with ``--real`` (files or folders): the flagged fraction of each, at full size, run
  the way the pipeline runs the detector.  They may carry real damage, so this is a figure to read
  beside the overlays, not a false-alarm rate.

    python scripts/measure_detector.py --weights src/oldphoto/weights/bundled \\
        --real examples/real_old examples/solvay_1927.jpg --out detector_metrics.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from oldphoto.metrics.roc import pixels_from_masks, roc_auc
from oldphoto.pipeline import Restorer
from oldphoto.stages.defects import DefectStage
from oldphoto.train import data as D
from oldphoto.train.evaluate import heldout_cases
from oldphoto.weights import load_model

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}


def flagged(stage: DefectStage, image: np.ndarray) -> float:
    return float((stage.probabilities(image) >= stage.threshold).mean())


def _thumb(photo: np.ndarray) -> np.ndarray:
    return cv2.resize(photo.mean(axis=2).astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)


def false_alarms(stage: DefectStage, sources: list[str], max_side: int, seed: int) -> dict[str, object]:
    per_photo: dict[str, dict[str, float]] = {}
    seen: list[np.ndarray] = []  # the corpus holds some of scikit-image's photos too: count each once
    for source in sources:
        try:
            pool = D.load_pool(source, max_side=max_side, min_side=64)
        except D.DataError as exc:
            print(f"skipped {source}: {exc}")
            continue
        for i, photo in enumerate(pool):
            thumb = _thumb(photo)
            if any(np.abs(thumb - t).mean() < 2.0 for t in seen):
                continue
            seen.append(thumb)
            img = photo.astype(np.float32) / 255.0
            row = {"clean": flagged(stage, img)}
            for k, kind in enumerate(("unstructured", "oldlook")):
                degraded, _, _ = D.synthesize(img, np.random.default_rng([seed, i, k]), kind)
                row[kind] = flagged(stage, degraded)
            per_photo[f"{source}#{i}"] = row
    summary: dict[str, object] = {}
    for cond in ("clean", "unstructured", "oldlook"):
        v = np.array([r[cond] for r in per_photo.values()])
        summary[cond] = {"mean_pct": round(100 * float(v.mean()), 3),
                         "max_pct": round(100 * float(v.max()), 3),
                         "photos_over_0.5pct": int((v > 0.005).sum())}
    summary["n_photos"] = len(per_photo)
    summary["max_side"] = max_side
    summary["per_photo_pct"] = {k: {c: round(100 * x, 3) for c, x in r.items()} for k, r in per_photo.items()}
    return summary


def synthetic_auc(detector: torch.nn.Module) -> dict[str, object]:
    cases, used = heldout_cases()  # the crops and seeds of `oldphoto train evaluate`
    scores, masks = [], []
    with torch.no_grad():
        for case in cases:
            if case.kind != "mixed":
                continue
            x = torch.from_numpy(D.gray(case.degraded))[None, None] * 2 - 1
            scores.append(torch.sigmoid(detector(x))[0, 0].numpy())
            masks.append(case.mask)
    s, y = pixels_from_masks(scores, masks)
    return {"roc_auc": round(roc_auc(s, y), 4), "crops": len(scores), "source": used,
            "positive_fraction": round(float(y.mean()), 5)}


def real_photos(stage: DefectStage, paths: list[Path]) -> dict[str, float]:
    from oldphoto.io import read_photo

    files = []
    for p in paths:
        files += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES) if p.is_dir() else [p]
    return {f.stem: round(100 * flagged(stage, read_photo(f).pixels), 3) for f in files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, required=True, help="folder holding detector.json/.safetensors")
    ap.add_argument("--sources", nargs="+", default=["corpus:heldout", "skimage:heldout"])
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=77)
    ap.add_argument("--real", type=Path, nargs="*", default=[])
    ap.add_argument("--no-auc", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    detector = load_model("detector", args.weights)
    threshold = Restorer(weights=args.weights, faces=False, device="cpu").mask_threshold()  # the card's

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return detector(x)

    stage = DefectStage(run, threshold, tile=1024)
    result: dict[str, object] = {"weights": str(args.weights), "threshold": threshold}
    result["false_alarms"] = false_alarms(stage, args.sources, args.max_side, args.seed)
    if not args.no_auc:
        result["synthetic"] = synthetic_auc(detector)
    if args.real:
        result["real_flagged_pct"] = real_photos(stage, args.real)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    brief = {k: v for k, v in result.items() if k != "false_alarms"}
    fa = {k: v for k, v in result["false_alarms"].items() if k != "per_photo_pct"}  # type: ignore[union-attr]
    print(json.dumps(brief | {"false_alarms": fa}, indent=1))


if __name__ == "__main__":
    main()

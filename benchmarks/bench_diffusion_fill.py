"""The local repair's fills (networks, diffusion, copied texture): quality near the repairs, and time.

The local repair (:mod:`oldphoto.stages.repair`) fills defects no deeper than ``--diffusion-depth`` px by
diffusion from their edges, those no deeper than ``--texture-depth`` px (when given) with copied texture,
the rest by the scratch (or HR) path.  This draws the training synthesis's defects on photos (scratches,
hairline cracks, dust, holes in turn; toned gray or sepia as old prints are, or with ``--colour`` in their
own colours, every third one sepia; seeded) and restores each with every diffusion depth given, in one
run, after a warm-up: with the true defect mask (``restore(photo, mask=...)``: the fill alone is
compared) and, with ``--detected``, with the detector's mask under ``--scratches on`` (what a user gets).
``--enlarge F`` enlarges each damaged photo (and its clean photo and mask) F times after the defects are
drawn, as a print scanned at a higher resolution.  It prints the PSNR against the clean photo near the
repairs (within the repair weight's reach of the true mask; of the luma, or with ``--colour`` of RGB),
LPIPS-alex's distance map averaged over the same pixels (PSNR rewards a smooth fill; LPIPS sees a band
or a smear), how much fine texture is there against the clean photo's (``near_texture``, 1: as much)
and the seconds of the restoration, per kind of defect, then a JSON line.  Photos: ``examples/``
(default) or a folder (``--photos``: its PNG, JPEG and WebP files).

    python benchmarks/bench_diffusion_fill.py --size 768 --depths 0,2.5 [--texture-depth PX] [--hr]
        [--detected] [--colour] [--enlarge F] [--weights DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from bench_repair_cells import photo, photo_paths  # (benchmarks/ is on the path of a script run there)

import oldphoto.stages.repair as repair
from oldphoto import RestoreOptions, Restorer
from oldphoto.luma import luma
from oldphoto.metrics.lpips import LPIPS
from oldphoto.synth import structured
from oldphoto.synth.oldlook import tone

KINDS = {
    "scratch": lambda im, rng: structured.scratches(im, rng, count=(2, 5)),
    "crack": structured.thin_cracks,
    "dust": structured.dust,
    "hole": structured.holes,
}


def near_repairs(mask: np.ndarray) -> np.ndarray:
    """The pixels the measures read: within the repair weight's reach of the true defect ``mask``."""
    return repair.repair_weight(mask) > 0


def near_psnr(image: np.ndarray, clean: np.ndarray, near: np.ndarray, rgb: bool = False) -> float:
    diff = image - clean if rgb else luma(image) - luma(clean)
    err = float((diff ** 2)[near].mean())
    return 10.0 * np.log10(1.0 / max(err, 1e-10))


def near_texture(image: np.ndarray, clean: np.ndarray, near: np.ndarray) -> float:
    """How much fine texture (grain, weave) the repair has near the defects, against the clean photo's
    there: the RMS of the luma's high-pass (the luma minus its Gaussian blur, σ = 1.5) over the pixels
    ``near`` (:func:`near_repairs`), as a ratio (1: as much as the clean photo; a smooth fill is well
    below)."""

    def high_pass(a: np.ndarray) -> np.ndarray:
        y = luma(a)
        return y - cv2.GaussianBlur(y, (0, 0), 1.5)

    ratio = np.mean(high_pass(image)[near] ** 2) / max(np.mean(high_pass(clean)[near] ** 2), 1e-12)
    return float(np.sqrt(ratio))


def near_lpips(metric, image: np.ndarray, clean: np.ndarray, near: np.ndarray) -> float:
    """LPIPS-alex's distance map (:meth:`oldphoto.metrics.lpips.LPIPS.distance_map`) averaged over the
    pixels ``near`` (:func:`near_repairs`)."""
    return float(metric.distance_map(image, clean)[near].mean())


def enlarged(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = image.shape[:2]
    size = (round(w * factor), round(h * factor))
    if image.dtype == bool:
        return cv2.resize(image.astype(np.uint8), size, interpolation=cv2.INTER_LINEAR) > 0
    return np.clip(cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=768, help="long side of the photos (px)")
    parser.add_argument("--depths", default="0,2.5", help="--diffusion-depth values to compare")
    parser.add_argument("--photos", type=Path, help="a folder of clean photos (default: examples/)")
    parser.add_argument("--n", type=int, default=0, help="at most this many photos (0: all)")
    parser.add_argument("--weights", type=Path, help="a weights folder (default: the installed ones)")
    parser.add_argument("--hr", action="store_true", help="repair with the HR path (else: scratch)")
    parser.add_argument("--detected", action="store_true", help="also with the detector's mask")
    parser.add_argument("--texture-depth", type=float, default=None, help="--texture-depth of every run")
    parser.add_argument("--colour", action="store_true",
                        help="photos in their own colours (every third sepia), RGB PSNR")
    parser.add_argument("--enlarge", type=float, default=1.0, help="enlarge damaged photos F times")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = photo_paths(args.photos, args.n)
    depths = [float(d) for d in args.depths.split(",")]
    # without --hr the scratch path at every size (by default photos over 4 megapixels take the HR path)
    base = Restorer(RestoreOptions(faces=False, scratches="on", hr=args.hr, hr_above=float("inf"),
                                   weights=args.weights, texture_depth=args.texture_depth))
    restorers = {d: base.with_options(diffusion_depth=d) for d in depths}
    lpips = LPIPS.standard("alex")
    base.restore(photo(paths[0], 256))  # warm-up: model loading and first calls are not timed
    rng = np.random.default_rng(args.seed)
    masks = ["true", "detected"] if args.detected else ["true"]
    rows = []
    for i, path in enumerate(paths):
        kind = list(KINDS)[i % len(KINDS)]
        clean = photo(path, args.size)
        if not args.colour or i % 3 == 2:
            clean = tone(clean, "sepia" if i % 2 or args.colour else "neutral", 0.8)
        damaged, strength = KINDS[kind](clean, rng)
        # the training's own definition: where the defect replaced >= 30 % of the content, visibly
        true_mask = structured.defect_mask(strength, change=np.abs(damaged - clean).max(axis=2))
        if args.enlarge != 1.0:
            clean, damaged, true_mask = (enlarged(a, args.enlarge) for a in (clean, damaged, true_mask))
        if not true_mask.any():
            continue
        row = {"photo": path.name, "kind": kind}
        near = near_repairs(true_mask)
        for which in masks:
            for d, r in list(restorers.items())[::1 if i % 2 else -1]:  # the depths take turns to go first
                start = time.perf_counter()
                result = r.restore(damaged, mask=true_mask if which == "true" else None)
                row[f"{which}@{d:g}"] = {"s": time.perf_counter() - start,
                                         "near_psnr": near_psnr(result.image, clean, near, args.colour),
                                         "near_lpips": near_lpips(lpips, result.image, clean, near),
                                         "near_texture": near_texture(result.image, clean, near)}
        rows.append(row)
        cells = [f"{key} {v['near_psnr']:.2f} dB {v['near_lpips']:.3f} ×{v['near_texture']:.2f} "
                 f"{v['s']:.2f} s" for key, v in row.items() if "@" in key]
        print(f"{path.name:32s} {kind:8s} " + " | ".join(cells), flush=True)
    summary: dict[str, dict] = {}
    for kind in [*KINDS, "all"]:
        chosen = [r for r in rows if kind in ("all", r["kind"])]
        if chosen:
            summary[kind] = {key: {m: round(float(np.mean([r[key][m] for r in chosen])), 3)
                                   for m in ("near_psnr", "near_lpips", "near_texture", "s")}
                             for key in chosen[0] if "@" in key} | {"n": len(chosen)}
            print(kind, json.dumps(summary[kind]))
    print(json.dumps({"size": args.size, "hr": args.hr, "texture_depth": args.texture_depth,
                      "colour": args.colour, "enlarge": args.enlarge, "photos": len(rows),
                      "summary": summary}))


if __name__ == "__main__":
    main()

"""Long scratches repaired in cells against one window each: time and quality where the clean photo is known.

The local repair (:mod:`oldphoto.stages.repair`) cuts a long thin defect region into cells, each inpainted
in its own small window, because the scratch path's partial nonlocal attention costs the square of a
window's area.  This draws the training synthesis's scratches (2–5 long ones, or hairline cracks) on
photos of the repository (``examples/``, resized so that the long side is ``--size``, toned as old prints
are, seeded), restores each with ``--scratches on`` twice, with the regions cut into cells (today) and
whole (one window per region), the two taking turns to run first, after a warm-up.  It prints the
seconds of the whole restoration and the PSNR against the clean photo over all of it and near the
repairs (within the repair weight's reach of the mask), then a JSON line of the means.  The photos of
``examples/real_old`` carry their own damage, which counts as part of the clean photo here.

    python benchmarks/bench_repair_cells.py --size 2048 [--detect-size 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import oldphoto.stages.repair as repair
from oldphoto import RestoreOptions, Restorer
from oldphoto.io import read_photo
from oldphoto.metrics.fullref import psnr
from oldphoto.synth import structured
from oldphoto.synth.oldlook import tone

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = sorted((ROOT / "examples" / "real_old").glob("*.png")) + [ROOT / "examples" / "solvay_1927.jpg"]


def photo_paths(folder: Path | None, n: int = 0) -> list[Path]:
    """The PNG, JPEG and WebP photos of ``folder`` (default: :data:`PHOTOS`), at most ``n`` (0: all)."""
    types = (".png", ".jpg", ".jpeg", ".webp")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in types) if folder else PHOTOS
    return paths[:n] if n else paths


def photo(path: Path, size: int) -> np.ndarray:
    pixels = read_photo(path).pixels
    h, w = pixels.shape[:2]
    scale = size / max(h, w)
    u8 = Image.fromarray((pixels * 255 + 0.5).astype(np.uint8))
    return np.asarray(u8.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS),
                      np.float32) / 255.0


def near_psnr(image: np.ndarray, clean: np.ndarray, mask: np.ndarray | None) -> float:
    near = repair.repair_weight(mask) > 0 if mask is not None and mask.any() else None
    if near is None:
        return float("nan")
    err = float(((image - clean) ** 2).mean(axis=2)[near].mean())
    return 10.0 * np.log10(1.0 / max(err, 1e-10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048, help="long side of the photos (px)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--detect-size", type=int, default=None,
                        help="as oldphoto restore's (default: the pipeline's; 0: full resolution)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    restorer = Restorer(RestoreOptions(faces=False, scratches="on", detect_size=args.detect_size))
    rng = np.random.default_rng(args.seed)
    thin = repair.SPLIT_THIN
    restorer.restore(photo(PHOTOS[0], 256))  # warm-up: model loading and first calls are not timed
    rows = []
    for i, path in enumerate(PHOTOS):
        clean = tone(photo(path, args.size), "sepia" if i % 2 else "neutral", 0.8)
        damaged, _ = (structured.scratches(clean, rng, count=(2, 5)) if i % 3
                      else structured.thin_cracks(clean, rng))
        row = {"photo": path.name, "size": list(clean.shape[:2]), "input_psnr": psnr(damaged, clean)}
        variants = [("cells", thin), ("whole", -1)]
        for name, split in variants if i % 2 else variants[::-1]:  # neither always runs first
            repair.SPLIT_THIN = split  # -1: no region is thin enough to cut
            start = time.perf_counter()
            result = restorer.restore(damaged)
            row[name] = {"s": time.perf_counter() - start, "psnr": psnr(result.image, clean),
                         "near_psnr": near_psnr(result.image, clean, result.mask)}
        repair.SPLIT_THIN = thin
        rows.append(row)
        c, w = row["cells"], row["whole"]
        print(f"{path.name:32s} {clean.shape[1]}×{clean.shape[0]}  input {row['input_psnr']:.2f} dB | "
              f"cells {c['s']:.1f} s {c['psnr']:.2f} dB near {c['near_psnr']:.2f} | "
              f"whole {w['s']:.1f} s {w['psnr']:.2f} dB near {w['near_psnr']:.2f}", flush=True)
    means = {name: {k: float(np.nanmean([r[name][k] for r in rows])) for k in ("s", "psnr", "near_psnr")}
             for name in ("cells", "whole")}
    print(json.dumps({"size": args.size, "detect_size": args.detect_size, "threads": args.threads,
                      "photos": len(rows), **means}))


if __name__ == "__main__":
    main()

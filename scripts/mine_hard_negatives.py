"""Mine hard negatives for the defect detector: crops of clean *training* photos where it finds defects.

A clean photo has no defects, so every defect the pipeline keeps on one (after its shape, colour and
direction rules) is a false alarm: the twigs, eaves, filaments and spines that send undamaged photos
down the scratch path.  This script runs the installed detector the way `oldphoto restore` does
(`Restorer.detect`, on each photo and on its gray copy, since most old photos are gray and the colour
rules do not apply to them) and saves a crop centred on each kept defect, at most ``--per-photo`` per
photo, the longest strokes first.  The detector stage trains on them as defect-free crops (config
``hard_negatives`` = the output folder, ``p_hard`` = their share).  Only training photos are read; the
held-out ones stay for evaluation.

    python scripts/mine_hard_negatives.py --weights src/oldphoto/weights/bundled \\
        --photos corpus:train skimage:train --out data/hard_negatives
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from oldphoto import RestoreOptions, Restorer
from oldphoto.files import atomic_write_text
from oldphoto.io import write_photo
from oldphoto.luma import luma
from oldphoto.train import data as D


def centres(mask: np.ndarray, limit: int) -> list[tuple[int, int, int]]:
    """(x, y, area) of the largest ``limit`` connected regions of ``mask``."""
    n, _, stats, cents = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda i: -int(stats[i, cv2.CC_STAT_AREA]))[:limit]
    return [(round(float(cents[i][0])), round(float(cents[i][1])), int(stats[i, cv2.CC_STAT_AREA]))
            for i in order]


def crop_at(image: np.ndarray, x: int, y: int, size: int) -> np.ndarray:
    """A ``size``² crop centred on (x, y), shifted to stay inside the photo (smaller photos: all of it)."""
    h, w = image.shape[:2]
    x0 = int(np.clip(x - size // 2, 0, max(0, w - size)))
    y0 = int(np.clip(y - size // 2, 0, max(0, h - size)))
    return image[y0:y0 + size, x0:x0 + size]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, help="weights folder of the detector to mine for")
    ap.add_argument("--photos", nargs="+", default=["corpus:train", "skimage:train"],
                    help="clean training photos (never held-out ones)")
    ap.add_argument("--max-side", type=int, default=1024, help="photos are read at most this large")
    ap.add_argument("--size", type=int, default=256, help="side of the saved crops")
    ap.add_argument("--per-photo", type=int, default=8, help="at most this many crops per photo and copy")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if any("heldout" in p for p in args.photos):
        ap.error("hard negatives come from training photos only; the held-out ones are for evaluation")
    restorer = Restorer(RestoreOptions(weights=str(args.weights), faces=False))
    pool, source = D.resolve_pool(args.photos, args.max_side, args.size // 2)
    args.out.mkdir(parents=True, exist_ok=True)
    found = []
    for index, photo in enumerate(pool):
        rgb = photo.astype(np.float32) / 255.0
        gray = np.repeat(luma(rgb)[..., None], 3, axis=2)
        for copy, image in (("colour", rgb), ("gray", gray)):
            defects = restorer.detect(image)
            for x, y, area in centres(defects.mask, args.per_photo):
                name = f"p{index:03d}_{copy}_{x}_{y}.png"
                write_photo(args.out / name, crop_at(image, x, y, args.size))
                found.append({"file": name, "photo": index, "copy": copy, "x": x, "y": y, "area": area})
        print(f"{index + 1}/{len(pool)}: {sum(1 for f in found if f['photo'] == index)} crops", flush=True)
    manifest = {"source": source, "max_side": args.max_side, "size": args.size,
                "detector": str(args.weights), "crops": found}
    atomic_write_text(args.out / "manifest.json", json.dumps(manifest, indent=1))
    print(f"{len(found)} crops from {len(pool)} photos in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

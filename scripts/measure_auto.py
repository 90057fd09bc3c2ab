"""What ``--scratches auto`` decides, on photos that must be repaired and photos that must not.

* Must be repaired: the real scratched portraits (``--scratched``), at their own size and enlarged
  ``--scales`` times (Lanczos), as a print scanned at a higher resolution shows the same damage: the
  evidence (:attr:`Defects.evidence`, short sides) should not depend on the scan's resolution; and
  saved as JPEG at ``--jpeg`` qualities (what most scans are): nor on the file's compression.
* Must not: clean held-out photos (``--sources``, fitted to ``--max-side``) as they are and as gray
  copies (where gloss, wires and branches pass for scratches most easily), and real photos without
  scratches (``--clean-real``).

Prints one line per photo (evidence, strokes, flagged area, repaired or not) and the counts, with the
bundled weights unless ``--weights`` is given:

    OLDPHOTO_CORPUS=... python scripts/measure_auto.py --out auto.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from oldphoto.io import read_photo
from oldphoto.pipeline import Restorer
from oldphoto.train import data as D

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRATCHED = [EXAMPLES / "real_old" / f"{n}.png"
             for n in ("scratched_girl_cigarette", "scratched_boy_portrait")]
CLEAN_REAL = [EXAMPLES / "solvay_1927.jpg"] + [
    EXAMPLES / "real_old" / f"{n}.png" for n in ("garden_girl_autochrome", "moulin_rouge_autochrome",
                                                  "porter_autochrome", "portrait_boy_glasses")]


def decide(restorer: Restorer, image: np.ndarray) -> dict[str, object]:
    d = restorer.detect(image)
    return {"evidence": round(d.evidence, 3), "strokes": d.strokes, "blobs": d.blobs,
            "area_pct": round(100 * d.area, 3), "repaired": bool(d.worth_repairing() and d.mask.any())}


def jpeg_copy(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor((image * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255


def enlarged(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1:
        return image
    h, w = image.shape[:2]
    size = (round(w * scale), round(h * scale))
    return np.clip(cv2.resize(image, size, interpolation=cv2.INTER_LANCZOS4), 0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, help="weights folder (default: the bundled weights)")
    ap.add_argument("--scratched", type=Path, nargs="*", default=SCRATCHED)
    ap.add_argument("--scales", type=float, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--jpeg", type=int, nargs="*", default=[95, 85, 75],
                    help="JPEG qualities the scratched photos are also saved at (at their own size)")
    ap.add_argument("--clean-real", type=Path, nargs="*", default=CLEAN_REAL)
    ap.add_argument("--sources", nargs="*", default=["corpus:heldout"])
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--detect-size", type=int, help="the detector's short side (default: restore's)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    restorer = Restorer(weights=args.weights, faces=False, device="cpu", scratches="auto",
                        detect_size=args.detect_size)
    groups = ("scratched", "clean_real", "clean", "clean_gray")
    rows: dict[str, dict[str, dict[str, object]]] = {g: {} for g in groups}

    def show(group: str, name: str, row: dict[str, object]) -> None:
        rows[group][name] = row
        print(f"{group:10s} {name:40s} evidence {row['evidence']:6.3f}  strokes {row['strokes']:3d}  "
              f"area {row['area_pct']:6.3f} %  {'REPAIRED' if row['repaired'] else 'kept'}", flush=True)

    for path in args.scratched:
        image = read_photo(path).pixels
        for s in args.scales:
            show("scratched", f"{path.stem} x{s:g}", decide(restorer, enlarged(image, s)))
        for q in args.jpeg:
            show("scratched", f"{path.stem} q{q}", decide(restorer, jpeg_copy(image, q)))
    for path in args.clean_real:
        show("clean_real", path.stem, decide(restorer, read_photo(path).pixels))
    for source in args.sources:
        for i, photo in enumerate(D.load_pool(source, max_side=args.max_side, min_side=64)):
            image = photo.astype(np.float32) / 255.0
            show("clean", f"{source}#{i}", decide(restorer, image))
            gray = np.repeat(D.gray(image)[..., None], 3, axis=2)
            show("clean_gray", f"{source}#{i}", decide(restorer, gray))
    counts = {g: f"{sum(r['repaired'] for r in v.values())} of {len(v)} repaired" for g, v in rows.items()}
    print(json.dumps(counts, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"counts": counts, "rows": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

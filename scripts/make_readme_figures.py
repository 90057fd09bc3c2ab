"""Before/after figures for the README: real old photos restored with the installed (or bundled) weights.

    python scripts/make_readme_figures.py --out docs/img

Each figure is `original | restored` side by side (the whole photo, scaled to at most 900 px wide) and,
under it, a crop of both at 100 % (a downscaled figure hides blur), written as JPEG.  Uses the default
options of `oldphoto restore` (faces when face weights exist).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from oldphoto.io import read_photo
from oldphoto.pipeline import Restorer

ROOT = Path(__file__).resolve().parents[1]
# photo -> top-left corner (x, y) of its 100 % crop
PHOTOS = {
    ROOT / "examples" / "solvay_1927.jpg": (500, 300),
    ROOT / "examples" / "real_old" / "scratched_girl_cigarette.png": (150, 130),
    ROOT / "examples" / "real_old" / "scratched_boy_portrait.png": (0, 0),
    ROOT / "examples" / "real_old" / "moulin_rouge_autochrome.png": (230, 640),
}
CROP = (400, 260)  # width, height of the 100 % crops


def _pair(before: np.ndarray, after: np.ndarray) -> Image.Image:
    gap = np.ones((before.shape[0], 8, 3), np.float32)
    return Image.fromarray((np.clip(np.concatenate([before, gap, after], axis=1), 0, 1) * 255 + 0.5)
                           .astype(np.uint8))


def side_by_side(before: np.ndarray, after: np.ndarray, max_width: int, corner: tuple[int, int]
                 ) -> Image.Image:
    """The whole photos scaled to ``max_width``, and under them the same crop of both at 100 %."""
    whole = _pair(before, after)
    if whole.width > max_width:
        whole = whole.resize((max_width, round(whole.height * max_width / whole.width)), Image.LANCZOS)
    h, w = before.shape[:2]
    cw, ch = min(CROP[0], w), min(CROP[1], h)
    x, y = min(corner[0], w - cw), min(corner[1], h - ch)
    crop = _pair(before[y:y + ch, x:x + cw], after[y:y + ch, x:x + cw])
    sheet = Image.new("RGB", (max(whole.width, crop.width), whole.height + 8 + crop.height), "white")
    sheet.paste(whole, (0, 0))
    sheet.paste(crop, (0, whole.height + 8))
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--max-width", type=int, default=900)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    restorer = Restorer()
    for path, corner in PHOTOS.items():
        photo = read_photo(path)
        result = restorer.restore(photo.pixels)
        target = args.out / f"result_{path.stem}.jpg"
        side_by_side(photo.pixels, result.image, args.max_width, corner).save(target, quality=90)
        defects = 0.0 if result.mask is None else float(result.mask.mean())
        print(f"{target}: path {result.path}, defects {defects:.2%}, faces {len(result.faces)}, "
              f"{sum(result.timings.values()):.1f} s")


if __name__ == "__main__":
    main()

"""Before/after figures for the README: real old photos restored with the installed (or bundled) weights.

    python scripts/make_readme_figures.py --out docs/img

Each figure is `original | restored` side by side (the whole photo, scaled to at most 900 px wide),
written as JPEG.  Uses the default options of `oldphoto restore` (faces when face weights exist).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from oldphoto.io import read_photo
from oldphoto.pipeline import Restorer

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = [
    ROOT / "examples" / "solvay_1927.jpg",
    ROOT / "examples" / "real_old" / "scratched_girl_cigarette.png",
    ROOT / "examples" / "real_old" / "scratched_boy_portrait.png",
    ROOT / "examples" / "real_old" / "porter_autochrome.png",
]


def side_by_side(before: np.ndarray, after: np.ndarray, max_width: int) -> Image.Image:
    gap = np.ones((before.shape[0], 8, 3), np.float32)
    both = np.concatenate([before, gap, after], axis=1)
    im = Image.fromarray((np.clip(both, 0, 1) * 255 + 0.5).astype(np.uint8))
    if im.width > max_width:
        im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
    return im


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--max-width", type=int, default=900)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    restorer = Restorer()
    for path in PHOTOS:
        photo = read_photo(path)
        result = restorer.restore(photo.pixels)
        target = args.out / f"result_{path.stem}.jpg"
        side_by_side(photo.pixels, result.image, args.max_width).save(target, quality=88)
        defects = 0.0 if result.mask is None else float(result.mask.mean())
        print(f"{target}: path {result.path}, defects {defects:.2%}, faces {len(result.faces)}, "
              f"{sum(result.timings.values()):.1f} s")


if __name__ == "__main__":
    main()

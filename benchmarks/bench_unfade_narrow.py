"""``--unfade`` on photos of a narrow range of tones, where the gain is limited (``MAX_GAIN``).

Scenes that are dark, light or blank by nature, made from one clean colour photo (``--photo``): a night
scene (its tones scaled to 0-0.2, in colour, gray and sepia), fog and snow (0.6-0.95, and fog at 0.72-0.92),
all-white, all-black and all-gray photos, a nearly blank page with faint strokes, and a warm scene whose
blue spans 0.05-0.25.  For each, ``contrast`` and ``colour`` (gray, sepia and blank photos as the pipeline
passes them: toned) give the luma's mean, 1st and 99th percentiles and the PSNR against the photo as it is
(what asking for it on such a photo costs).  Then prints faded further than the training synthesis ever
fades (a gain above ``MAX_GAIN`` would be needed), with the PSNR against the clean photo.  ``--out``: a
100 % crop of each scene (input | contrast | colour) as PNG.

    python benchmarks/bench_unfade_narrow.py --out LOOK \
        --photo CORPUS/clean/gcompris-qt-data/explore_monuments__rocamadour.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from bench_repair_cells import photo  # (benchmarks/ is on the path of a script run there)
from PIL import Image

from oldphoto.luma import luma
from oldphoto.metrics import fullref
from oldphoto.stages.unfade import unfade
from oldphoto.synth.oldlook import tone


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    return min(fullref.psnr(image, reference), 100.0)


def scenes(clean: np.ndarray) -> dict[str, tuple[np.ndarray, bool]]:
    """Narrow-range photos made from ``clean``: name -> (photo, toned)."""
    h, w = clean.shape[:2]
    gray = np.repeat(luma(clean)[..., None], 3, axis=2)
    rng = np.random.default_rng(3)
    page = np.full((h, w, 3), 0.93, np.float32)
    for r in range(60, h - 60, 28):  # faint writing: short strokes of 0.8 on a page of 0.93
        for c in range(60, w - 60, 40):
            if rng.random() < 0.7:
                page[r:r + 3, c:c + int(rng.integers(10, 34))] = 0.8
    page += rng.normal(0.0, 0.008, (h, w, 1)).astype(np.float32)
    warm = clean.copy()
    warm[..., 2] = 0.05 + 0.2 * clean[..., 2]
    made = {
        "night (0-0.2)": (0.2 * clean, False),
        "night, gray": (0.2 * gray, True),
        "night, sepia": (0.2 * tone(clean, "sepia", 0.8), True),
        "fog (0.6-0.95)": (0.6 + 0.35 * clean, False),
        "fog (0.72-0.92)": (0.72 + 0.2 * clean, False),
        "snow, gray (0.6-0.95)": (0.6 + 0.35 * gray, True),
        "all white": (np.ones((h, w, 3)), True),
        "all black": (np.zeros((h, w, 3)), True),
        "all gray": (np.full((h, w, 3), 0.5), True),
        "nearly blank page": (page, True),
        "warm, blue 0.05-0.25": (warm, False),
    }
    return {k: (np.clip(v, 0.0, 1.0).astype(np.float32), t) for k, (v, t) in made.items()}


def faded_further(clean: np.ndarray, contrast: float, black: float,
                  dye: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Lifted blacks and dimmed whites as the synthesis fades, further than it does (no gamma)."""
    out = black + contrast * clean * (1.0 - black)
    return np.clip(1.0 - (1.0 - out) * np.asarray(dye, np.float32), 0.0, 1.0).astype(np.float32)


def levels(image: np.ndarray) -> str:
    y = luma(image)
    return f"{y.mean():.3f} ({np.percentile(y, 1):.3f}-{np.percentile(y, 99):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path, required=True, help="a clean colour photo")
    parser.add_argument("--size", type=int, default=768, help="its long side (px)")
    parser.add_argument("--out", type=Path, help="a folder for 100 %% crops (input | contrast | colour)")
    args = parser.parse_args()
    clean = photo(args.photo, args.size)
    h, w = clean.shape[:2]
    header = "  ".join(f"{mode:20s} {'PSNR':>6s}" for mode in ("contrast", "colour"))
    print(f"{'scene':24s} {'luma mean (1-99 %)':20s} {header}")
    for name, (image, toned) in scenes(clean).items():
        outs = [unfade(image, mode, toned=toned) for mode in ("contrast", "colour")]
        print(f"{name:24s} {levels(image):20s} " + "  ".join(
            f"{levels(out):20s} {psnr(out, image):6.2f}" for out in outs))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            crop = (slice(h // 2 - 128, h // 2 + 128), slice(w // 2 - 128, w // 2 + 128))
            row = np.concatenate([a[crop] for a in (image, *outs)], axis=1)
            slug = "_".join("".join(c if c.isalnum() else " " for c in name).split())
            Image.fromarray((row * 255 + 0.5).astype(np.uint8)).save(args.out / f"{slug}.png")
    print(f"\n{'faded further than the synthesis':50s} PSNR against the clean photo: faded, contrast, colour")
    gray = np.repeat(luma(clean)[..., None], 3, axis=2)
    for source, kwargs, toned in ((gray, dict(contrast=0.45, black=0.2), True),
                                  (gray, dict(contrast=0.3, black=0.35), True),
                                  (gray, dict(contrast=0.3, black=0.05), True),
                                  (clean, dict(contrast=0.5, black=0.15, dye=(0.75, 1.0, 0.9)), False),
                                  (clean, dict(contrast=0.35, black=0.3, dye=(0.8, 0.95, 1.0)), False)):
        image = faded_further(source, **kwargs)
        name = ("gray" if toned else "colour") + ", " + ", ".join(f"{k} {v}" for k, v in kwargs.items())
        scores = [psnr(image, source)] + [psnr(unfade(image, mode, toned=toned), source)
                                          for mode in ("contrast", "colour")]
        print(f"{name:50s} " + "  ".join(f"{s:6.2f}" for s in scores))


if __name__ == "__main__":
    main()

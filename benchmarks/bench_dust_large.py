"""Dust on large scans: what the default and ``--dust`` take of a dusty scan, and of the scene.

Real photos (the garden girl, the porter, the Solvay photo) are enlarged with Lanczos to a 2048-3600 px
scan, and seeded dust drawn on them as a dusty scan at 600 dpi has it: specks 2-60 px across (most of
them small: the size log-uniform), irregular (a blurred noise field cut inside an ellipse) with soft
edges, dark lint and bright dust both, at 50-100 % opacity; and a few fibres or hairs, smooth random
curves 30-300 px long, 1-3 px wide.  The density is ``--specks`` specks and a tenth as many fibres per
4 megapixels.

For each photo, default, ``--dust``, ``--scratches on``, both, and ``--dust --dark-dust`` (faces off):

* **dust removed**: of the dust's pixels (those 8 levels or more away from the clean photo, in any
  channel), the share whose error the restoration at least halved;
* **clean changed**: of the pixels away from the dust (4 px beyond it), the share that comes out more
  than 8 levels from the clean photo; on the clean photo restored without dust, the same share (the
  global restoration's own change), and ``--dust``'s pixels more than 8 levels from the default's
  (what ``--dust`` takes of the scene);
* the seconds of the restoration.

    PYTHONPATH=src python benchmarks/bench_dust_large.py [--out DIR] [--specks N] [--photos a,b]

With ``--sides 1024,256,0``: no restoration, the finder of ``--dust`` (bright specks) and of
``--dark-dust`` (dark ones) alone, searching at those short sides (``DUST_WORK_SIDE``; 0: full
resolution): of the specks (each a connected region of dust pixels), how many it touches by their size
(the square root of their area, px), and how many specks it finds on the clean photo (the scene's, and
the photo's own dust).

With ``--out``: the dusty scans, their outputs and 100 % crops (``dusty | default | --dust |
--scratches on``) at the places with most dust.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from oldphoto.pipeline import Restorer
from oldphoto.stages import dust as dust_finder
from oldphoto.stages.tone import luma

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# name, file, enlargement (Lanczos), seed
PHOTOS = [
    ("garden", "real_old/garden_girl_autochrome.png", 3.2, 1),
    ("porter", "real_old/porter_autochrome.png", 3.0, 2),
    ("solvay", "solvay_1927.jpg", 2.8, 3),
]
LEVEL = 8 / 255  # a change the eye sees on a flat area
MARGIN = 4  # px: the dust's soft edge and the repair's own margin


def enlarged(file: str, scale: float) -> np.ndarray:
    """The photo enlarged with Lanczos, RGB float32 in [0, 1] on 8-bit levels."""
    im = Image.open(EXAMPLES / file).convert("RGB")
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
    return np.asarray(im, np.float32) / 255


def draw_dust(h: int, w: int, specks: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dust's opacity ``h×w`` in [0, 1] and its tone (0: dark lint, 1: bright dust), per pixel."""
    r = np.random.default_rng(seed)
    alpha = np.zeros((h, w), np.float32)
    tone = np.zeros((h, w), np.float32)
    n = max(1, round(specks * h * w / 4e6))

    def put(shape: np.ndarray, y0: int, x0: int, a: float, bright: bool) -> None:
        sh, sw = shape.shape
        ys, xs = slice(max(0, y0), min(h, y0 + sh)), slice(max(0, x0), min(w, x0 + sw))
        part = shape[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] * a
        more = part > alpha[ys, xs]
        alpha[ys, xs] = np.where(more, part, alpha[ys, xs])
        tone[ys, xs] = np.where(more, 0.93 if bright else 0.08, tone[ys, xs])

    for _ in range(n):
        d = float(np.exp(r.uniform(np.log(2), np.log(60))))
        s = int(d * 1.6) + 6
        yy, xx = np.mgrid[:s, :s] - s / 2
        ang = r.uniform(0, np.pi)
        a_ax, b_ax = d / 2, d / 2 * r.uniform(0.45, 1)
        u, v = xx * np.cos(ang) + yy * np.sin(ang), -xx * np.sin(ang) + yy * np.cos(ang)
        ell = (u / a_ax) ** 2 + (v / b_ax) ** 2
        rough = cv2.GaussianBlur(r.normal(0, 1, (s, s)).astype(np.float32), (0, 0), max(0.6, d / 6))
        rough /= rough.std() + 1e-6
        shape = ((ell + 0.35 * rough) < 1).astype(np.float32)
        shape = cv2.GaussianBlur(shape, (0, 0), max(0.5, d / 20))
        put(shape, int(r.uniform(0, h)) - s // 2, int(r.uniform(0, w)) - s // 2,
            r.uniform(0.5, 1), r.random() < 0.5)
    for _ in range(max(1, n // 10)):
        length = r.uniform(30, 300)
        steps = int(length / 3)
        heading = r.uniform(0, 2 * np.pi) + np.cumsum(r.normal(0, 0.12, steps))
        pts = np.cumsum(np.stack([np.cos(heading), np.sin(heading)], 1) * 3, 0)
        pts -= pts.min(0)
        box = np.ceil(pts.max(0)).astype(int) + 8
        canvas = np.zeros((box[1], box[0]), np.uint8)
        cv2.polylines(canvas, [(pts * 4 + 16).astype(np.int32)], False, 255, int(r.integers(1, 4)),
                      cv2.LINE_AA, shift=2)
        shape = cv2.GaussianBlur(canvas.astype(np.float32) / 255, (0, 0), 0.5)
        put(shape, int(r.uniform(0, h)), int(r.uniform(0, w)), r.uniform(0.6, 1), r.random() < 0.5)
    return alpha, tone


def q8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.round(a * 255), 0, 255).astype(np.float32) / 255


def measure(restorer: Restorer, image: np.ndarray) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    out = restorer.restore(image).image
    return q8(out), time.perf_counter() - t


def finder_table(name: str, clean: np.ndarray, dusty: np.ndarray, specks: np.ndarray, sides: list[int],
                 dark: bool = False) -> None:
    """The ``--sides`` rows: bright (``dark``: dark) specks touched by size, and specks found on the
    clean photo."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(specks.astype(np.uint8), connectivity=8)
    size = np.sqrt(stats[1:, cv2.CC_STAT_AREA])
    bins = ((1, 3), (3, 6), (6, 12), (12, 25), (25, 80))
    kept = dust_finder.DUST_WORK_SIDE
    try:
        for side in sides:
            dust_finder.DUST_WORK_SIDE = side or 10**9
            found, _ = dust_finder.find_dust(luma(dusty), dusty, dark=dark)
            touched = np.zeros(n, bool)
            touched[np.unique(labels[found])] = True
            _, on_clean = dust_finder.find_dust(luma(clean), clean, dark=dark)
            within = [(size >= lo) & (size < hi) for lo, hi in bins]
            row = [f"{touched[1:][b].sum()}/{b.sum()}" for b in within]
            print(f"| {name} | {'dark' if dark else 'bright'} | {side or 'full'} | " + " | ".join(row)
                  + f" | {on_clean} |", flush=True)
    finally:
        dust_finder.DUST_WORK_SIDE = kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--specks", type=int, default=150, help="specks per 4 megapixels")
    ap.add_argument("--photos", default=",".join(p[0] for p in PHOTOS))
    ap.add_argument("--sides", default=None, help="the finder alone at these short sides (0: full)")
    args = ap.parse_args()
    if args.sides:
        print("| photo | specks | searched at | specks touched, 1-3 px | 3-6 | 6-12 | 12-25 | 25-80 | "
              "specks on the clean photo |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, file, scale, seed in PHOTOS:
            if name in args.photos.split(","):
                clean = enlarged(file, scale)
                alpha, tone = draw_dust(*clean.shape[:2], args.specks, seed)
                dusty = q8(clean * (1 - alpha[..., None]) + (alpha * tone)[..., None])
                seen = np.abs(dusty - clean).max(-1) >= LEVEL
                for dark in (False, True):
                    finder_table(name, clean, dusty, seen & ((tone < 0.5) if dark else (tone > 0.5)),
                                 [int(v) for v in args.sides.split(",")], dark)
        return
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    runs = {"default": Restorer(faces=False), "--dust": Restorer(faces=False, dust=True),
            "--scratches on": Restorer(faces=False, scratches="on"),
            "--scratches on --dust": Restorer(faces=False, scratches="on", dust=True),
            "--dust --dark-dust": Restorer(faces=False, dust=True, dark_dust=True)}
    print("| photo | size | specks+fibres | run | dust removed: all / bright / dark | clean changed | "
          "clean photo: changed / vs default | s (dusty) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, file, scale, seed in PHOTOS:
        if name not in args.photos.split(","):
            continue
        clean = enlarged(file, scale)
        h, w = clean.shape[:2]
        alpha, tone = draw_dust(h, w, args.specks, seed)
        dusty = q8(clean * (1 - alpha[..., None]) + (alpha * tone)[..., None])
        err0 = np.abs(dusty - clean).max(-1)
        dust = err0 >= LEVEL
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * MARGIN + 1,) * 2)
        away = cv2.dilate((alpha > 0.01).astype(np.uint8), k) == 0
        outs = {}
        clean_outs = {}
        for label, restorer in runs.items():
            out, seconds = measure(restorer, dusty)
            clean_out, _ = measure(restorer, clean)
            outs[label], clean_outs[label] = out, clean_out
            err = np.abs(out - clean).max(-1)
            halved = err <= err0 / 2
            removed = [float(halved[d].mean()) for d in (dust, dust & (tone > 0.5), dust & (tone < 0.5))]
            changed = float((err[away] > LEVEL).mean())
            own = float((np.abs(clean_out - clean).max(-1) > LEVEL).mean())
            taken = float((np.abs(clean_out - clean_outs["default"]).max(-1) > LEVEL).mean())
            n = max(1, round(args.specks * h * w / 4e6))
            print(f"| {name} | {w}×{h} | {n}+{max(1, n // 10)} | {label} | "
                  + " / ".join(f"{r * 100:.1f} %" for r in removed) + " | "
                  f"{changed * 100:.2f} % | {own * 100:.2f} % / {taken * 100:.3f} % | {seconds:.1f} |",
                  flush=True)
        if args.out:
            to8 = lambda a: Image.fromarray((a * 255).astype(np.uint8))  # noqa: E731
            to8(dusty).save(args.out / f"{name}_dusty.png")
            for label, out in outs.items():
                tag = label.strip("-").replace(" --", "_").replace(" ", "_")
                to8(out).save(args.out / f"{name}_{tag}.png")
                to8(clean_outs[label]).save(args.out / f"{name}_clean_{tag}.png")
            density = cv2.boxFilter(dust.astype(np.float32), -1, (400, 400))
            for i in range(3):
                cy, cx = np.unravel_index(np.argmax(density), density.shape)
                y0, x0 = max(0, cy - 200), max(0, cx - 200)
                crop = (slice(y0, y0 + 400), slice(x0, x0 + 400))
                gap = np.ones((crop_h := clean[crop].shape[0], 4, 3), np.float32)
                row = [dusty[crop], gap, outs["default"][crop], gap, outs["--dust"][crop], gap,
                       outs["--scratches on"][crop]]
                to8(np.concatenate(row, 1)).save(args.out / f"{name}_crop{i}.png")
                density[max(0, cy - 400):cy + 400, max(0, cx - 400):cx + 400] = 0
                del crop_h


if __name__ == "__main__":
    main()

"""Strong clumped film grain (a negative or slide scanned at about 4000 dpi) and the default denoiser
(``oldphoto.stages.fidelity``: non-local means at the noise level ``noise_sigma`` reads, which is that of
the grain's finest part only; ``clumped_grain`` decides that such a scan is not denoised).

Scans made reproducibly (fixed seeds) from scikit-image's photos (astronaut, coffee, chelsea; a 256-px
crop each), enlarged 4× as a 4000-dpi scan of a small print or negative would be, with grain: a random
field blurred to clumps (Gaussian σ of 0.7 or 1.0 px, clumps of 2-6 px), covered where the field is below
the tone's quantile (soft edges), so that the grain's density follows the tone as a film's does, blurred
by the scanner (0.5 px), at strengths 0.15, 0.25 and 0.35 (7-25 levels of 255), plus 1 level of fine noise.
For each: the grain's standard deviation against the clean enlargement, the level ``noise_sigma`` reads,
``coarse_grain`` and the decision, and what non-local means at the read level did (before) and what
``denoise_luma`` does now (after): the share of pixels changed by more than 8 levels and the worminess,
how much more elongated the result's grain-scale detail (a 0.7-3 px difference of Gaussians) is than
the scan's in the flattest 30 % of the photo (the structure tensor's coherence, integrated over 2 px).
Then ``coarse_grain`` on examples/ (real photos, whose denoising reviewers judged an improvement) and,
with $OLDPHOTO_CORPUS, the held-out evaluation crops as ``oldphoto train evaluate`` degrades them.

    python benchmarks/bench_clumped_grain.py
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from scipy.special import ndtri

from oldphoto.io import read_photo
from oldphoto.luma import luma
from oldphoto.stages.fidelity import GRAIN_COARSE, coarse_grain, denoise_luma, noise_sigma

ROOT = Path(__file__).resolve().parents[1]
STRENGTHS = (0.15, 0.25, 0.35)
CLUMPS = (0.7, 1.0)


def clumped_grain_scan(base: np.ndarray, seed: int, strength: float, clump: float, scale: int = 4
                       ) -> tuple[np.ndarray, np.ndarray]:
    """A clean photo ``H×W×3`` enlarged ``scale``× with clumped film grain; (scan, clean enlargement)."""
    rng = np.random.default_rng(seed)
    h, w = base.shape[:2]
    up = np.clip(cv2.resize(base, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC), 0, 1)
    up = up.astype(np.float32)
    field = cv2.GaussianBlur(rng.standard_normal(up.shape[:2]).astype(np.float32), (0, 0), clump)
    field /= field.std()
    tone = np.clip(up.mean(axis=2), 0.03, 0.97)
    cover = 1.0 / (1.0 + np.exp(-(ndtri(tone) - field) / 0.4))  # the clumps, soft-edged
    cover = cv2.GaussianBlur(cover.astype(np.float32), (0, 0), 0.5)  # the scanner's blur
    grain = cover - cv2.GaussianBlur(cover, (0, 0), 8)
    fine = rng.standard_normal(up.shape[:2]).astype(np.float32) / 255.0
    return np.clip(up + (strength * grain + fine)[..., None], 0, 1).astype(np.float32), up


def _coherence(y: np.ndarray, where: np.ndarray) -> float:
    band = cv2.GaussianBlur(y, (0, 0), 0.7) - cv2.GaussianBlur(y, (0, 0), 3)
    gx, gy = cv2.Sobel(band, cv2.CV_32F, 1, 0), cv2.Sobel(band, cv2.CV_32F, 0, 1)
    jxx, jyy, jxy = (cv2.GaussianBlur(a, (0, 0), 2) for a in (gx * gx, gy * gy, gx * gy))
    return float(np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2)[where].mean() / (jxx + jyy)[where].mean())


def _flattest(y: np.ndarray, share: float = 0.3) -> np.ndarray:
    m = cv2.GaussianBlur(y, (0, 0), 4)
    g = cv2.GaussianBlur(np.hypot(cv2.Sobel(m, cv2.CV_32F, 1, 0), cv2.Sobel(m, cv2.CV_32F, 0, 1)), (0, 0), 4)
    return g <= np.percentile(g, share * 100)


def scans() -> None:
    from skimage import data

    bases = {"astronaut": data.astronaut()[0:256, 128:384], "coffee": data.coffee()[50:306, 150:406],
             "chelsea": data.chelsea()[20:276, 100:356]}
    print("| scan | grain | read | coarse_grain | not denoised | >8 levels: before / after "
          "| worminess: before / after |")
    print("|---|---|---|---|---|---|---|")
    for seed, (name, base) in enumerate(bases.items()):
        for strength in STRENGTHS:
            for clump in CLUMPS:
                scan, clean = clumped_grain_scan(base.astype(np.float32) / 255.0, seed, strength, clump)
                y, y0 = luma(scan), luma(clean)
                sigma = noise_sigma(y)
                coarse = coarse_grain(y, sigma)
                flat = _flattest(y)
                base_coh = _coherence(y, flat)
                cells = []
                for out in (denoise_luma(y, sigma), denoise_luma(y)):
                    cells.append((float(np.mean(np.abs(out - y) * 255 > 8)) * 100,
                                  _coherence(out, flat) - base_coh))
                (moved, worm), (moved_now, worm_now) = cells
                print(f"| {name} {strength} / {clump} px | {(y - y0).std() * 255:.1f} | {sigma * 255:.2f} "
                      f"| {coarse * 255:.1f} | {'yes' if coarse >= GRAIN_COARSE else 'no'} "
                      f"| {moved:.1f} % / {moved_now:.1f} % | {worm:+.3f} / {worm_now:+.3f} |", flush=True)


def photos() -> None:
    paths = sorted((ROOT / "examples/real_old").glob("*.png")) + [ROOT / "examples/solvay_1927.jpg"]
    values = sorted((coarse_grain(luma(read_photo(p).pixels)) * 255, p.name) for p in paths)
    print("\nexamples/: coarse_grain " + ", ".join(f"{n} {v:.2f}" for v, n in values)
          + f" (threshold {GRAIN_COARSE * 255:.1f})")
    if not os.environ.get("OLDPHOTO_CORPUS"):
        return
    from oldphoto.train.evaluate import heldout_cases

    cases, used = heldout_cases(kinds=("unstructured", "mixed"))
    crops = sorted((coarse_grain(luma(c.degraded)) * 255, f"{c.kind} {c.name}") for c in cases)
    over = [f"{n} {v:.1f}" for v, n in crops if v >= GRAIN_COARSE * 255]
    print(f"held-out evaluation crops ({used}), degraded: {len(crops)}, at or over the threshold: "
          f"{len(over)} ({', '.join(over)})")


if __name__ == "__main__":
    scans()
    photos()

"""Printed reproductions told from photos (``oldphoto.stages.fidelity.printing_screen``), which decides
that a halftone print is not denoised.

Halftone prints made from the repository's real photos (examples/real_old's two portraits and
examples/solvay_1927.jpg, enlarged so that a cell holds about two of their pixels): round dots on a
screen of period P px at angle A, growing with darkness (with a little dot gain and jitter), a scanner's
blur and noise, saved as JPEG at quality 75.  For each, the screen strength (``screen_strength``),
whether it is found, and the noise level ``noise_sigma`` reads there (what the denoiser would take
away).  Then the strength of photos that are not prints: the corpus' photos ($OLDPHOTO_CORPUS: clean/
and real_old/), examples/, and the held-out evaluation crops as ``oldphoto train evaluate`` degrades them.

    OLDPHOTO_CORPUS=CORPUS python benchmarks/bench_printing_screen.py
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from oldphoto.luma import luma
from oldphoto.stages.fidelity import SCREEN_PEAK, noise_sigma, screen_strength

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "examples/real_old/portrait_boy_glasses.png",
           ROOT / "examples/real_old/scratched_girl_cigarette.png", ROOT / "examples/solvay_1927.jpg"]
PERIODS = (2.3, 3.0, 4.5, 6.0, 9.0)
ANGLES = (0, 15, 45)
SCANS = ((0.6, 0.01), (1.0, 0.03))  # (blur in px, noise)


def read_luma(path: Path, largest: int = 2048) -> np.ndarray:
    image = Image.open(path)
    image.draft("RGB", (largest, largest))
    return luma(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)


def halftone(y: np.ndarray, period: float, angle: float, blur: float, noise: float,
             rng: np.random.Generator) -> np.ndarray:
    """``y`` printed as a screen of round dots and scanned (blur, noise, JPEG 75)."""
    h, w = y.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.deg2rad(angle)
    u = (xx * np.cos(t) + yy * np.sin(t)) / period
    v = (-xx * np.sin(t) + yy * np.cos(t)) / period
    jitter = [cv2.resize(rng.normal(0, 0.08, (h // 8 + 1, w // 8 + 1)).astype(np.float32), (w, h))
              for _ in range(2)]
    r = np.hypot(u - np.round(u) + jitter[0], v - np.round(v) + jitter[1])
    dot = np.sqrt(np.clip(1.0 - y, 0.0, 1.0) / np.pi) * 1.1
    ink = np.clip((dot - r) * period * 1.2 + 0.5, 0.0, 1.0)
    scan = cv2.GaussianBlur(0.9 - 0.8 * ink, (0, 0), blur) + rng.normal(0, noise, (h, w))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(scan * 255.0 + 0.5, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=75)
    return np.asarray(Image.open(buffer), dtype=np.float32) / 255.0


def prints() -> None:
    rng = np.random.default_rng(0)
    found, strengths, missed = 0, [], []
    for source in SOURCES:
        y0 = read_luma(source)
        for period in PERIODS:
            scale = max(1, round(period / 2))
            y = cv2.resize(y0, (y0.shape[1] * scale, y0.shape[0] * scale), interpolation=cv2.INTER_CUBIC)
            for angle in ANGLES:
                for blur, noise in SCANS:
                    scan = halftone(np.clip(y, 0.0, 1.0), period, angle, blur, noise, rng)
                    strength = screen_strength(scan)
                    strengths.append(strength)
                    if strength >= SCREEN_PEAK:
                        found += 1
                    else:
                        read = noise_sigma(scan) * 255
                        missed.append(f"{source.stem} period {period} angle {angle} blur {blur} noise "
                                      f"{noise}: strength {strength:.4f}, noise read {read:.1f} levels")
    print(f"halftone prints: {found} of {len(strengths)} found (strength >= {SCREEN_PEAK}); strength of the "
          f"found {min(s for s in strengths if s >= SCREEN_PEAK):.3f}-{max(strengths):.3f}")
    for line in missed:
        print("  missed:", line)


def photos() -> None:
    corpus = os.environ.get("OLDPHOTO_CORPUS")
    paths = sorted((ROOT / "examples").rglob("*.[jp][pn]g"))
    if corpus:
        paths += sorted(p for folder in ("clean", "real_old") for p in (Path(corpus) / folder).rglob("*")
                        if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"))
    else:
        print("(OLDPHOTO_CORPUS not set: examples/ only)")
    scores = sorted((screen_strength(read_luma(p)), p.name) for p in paths)
    print(f"photos: {len(scores)}, strength at most {scores[-1][0]:.4f} ({scores[-1][1]}); "
          f"{sum(s >= SCREEN_PEAK for s, _ in scores)} taken for prints")
    from oldphoto.train.evaluate import heldout_cases

    cases, used = heldout_cases(kinds=("unstructured", "mixed", "oldlook", "structured"))
    crops = sorted((screen_strength(luma(c.degraded)), f"{c.kind} {c.name}") for c in cases)
    print(f"held-out evaluation crops ({used}), degraded: {len(crops)}, strength at most {crops[-1][0]:.4f} "
          f"({crops[-1][1]}); {sum(s >= SCREEN_PEAK for s, _ in crops)} taken for prints")


if __name__ == "__main__":
    prints()
    photos()

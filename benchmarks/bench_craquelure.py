"""A print crazed all over by a fine crack network (craquelure): the noise the denoiser reads, and the
fine detail the default restoration keeps away from the cracks.

Four crazed prints are made from the example photos (seeded, as the review of 2026-12-05 made them): a
Voronoi network of 1-px anti-aliased cracks (cells of ``cell`` px, their corners jittered, a quarter of
the edges left uncracked), lighter than the print (``opacity`` towards ``paper``):

* ``craquelure_girl``: the scratched girl at her own size, cells of 30 px, 0.5 towards 0.92;
* ``craquelure_boy``: the boy with glasses enlarged 2×, cells of 38 px, 0.55 towards 0.95;
* ``craqfine_boy``: the boy with glasses at his own size, cells of 20 px, 0.35 towards 0.95;
* ``craqfine_solvay``: a 950×700 crop of the Solvay photo, cells of 20 px, 0.35 towards 0.95.

For each, and for the uncracked photo: ``noise_sigma`` over the whole photo (before) and away from the
detector's candidate regions (after: ``Defects.candidates``, what the default restoration now reads), in
8-bit levels; the default restoration (faces off) before (the candidates not handed to the denoiser)
and after, and the share of the luma's fine detail (``scripts/real_photos.py``'s high-pass energy) it
keeps away from the cracks (7 px beyond the drawn network, and beyond what was repaired), over the
whole photo and over the face (``FACES``); and the share of pixels more than 2 levels away from that
restoration when its mask is given back (``--mask-dir``, the web page's re-run with marks).  With
``--out DIR``: 100 % crops ``cracked | before | after`` of the face.

    PYTHONPATH=src python benchmarks/bench_craquelure.py [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from oldphoto import modes
from oldphoto.pipeline import Restorer
from oldphoto.stages.fidelity import noise_sigma
from oldphoto.stages.tone import luma

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DETAIL_SIGMA = 1.5  # as scripts/real_photos.py
MARGIN = 7
# (name, photo, crop rows/columns, enlargement, cell, seed, opacity, paper)
PRINTS = [
    ("craquelure_girl", "real_old/scratched_girl_cigarette.png", None, 1, 30, 4, 0.5, 0.92),
    ("craquelure_boy", "real_old/portrait_boy_glasses.png", None, 2, 38, 3, 0.55, 0.95),
    ("craqfine_boy", "real_old/portrait_boy_glasses.png", None, 1, 20, 12, 0.35, 0.95),
    ("craqfine_solvay", "solvay_1927.jpg", (slice(100, 800), slice(150, 1100)), 1, 20, 11, 0.35, 0.95),
]
# the face (rows, columns) where the crops and the face's detail are read
FACES = {
    "craquelure_girl": (slice(170, 410), slice(190, 390)),
    "craquelure_boy": (slice(260, 580), slice(160, 460)),
    "craqfine_boy": (slice(130, 290), slice(80, 230)),
    "craqfine_solvay": (slice(180, 420), slice(300, 620)),
}


def craquelure(h: int, w: int, cell: int, seed: int) -> np.ndarray:
    """A crack network's opacity ``h×w`` in [0, 1]: the edges of a Voronoi tessellation of ``h·w/cell²``
    random seeds, their corners jittered by 1.2 px, drawn 1 px anti-aliased, a quarter of the area (in
    patches of about a cell) left uncracked."""
    r = np.random.default_rng(seed)
    pts = r.uniform(0, 1, (int(h * w / cell**2), 2)) * [w, h]
    sub = cv2.Subdiv2D((0, 0, w, h))
    for p in pts:
        sub.insert((float(p[0]), float(p[1])))
    facets, _ = sub.getVoronoiFacetList([])
    m = np.zeros((h, w), np.uint8)
    for f in facets:
        f = f + r.normal(0, 1.2, f.shape)
        cv2.polylines(m, [f.astype(np.int32)], True, 255, 1, cv2.LINE_AA)
    cracks = m.astype(np.float32) / 255
    keep = cv2.GaussianBlur(r.uniform(0, 1, (h, w)).astype(np.float32), (0, 0), cell * 0.7)
    keep = (keep > np.percentile(keep, 25)).astype(np.float32)
    return cracks * keep


def crazed_print(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The uncracked photo and the crazed print (RGB float32 in [0, 1], 8-bit levels), and the cracks."""
    _, photo, crop, scale, cell, seed, opacity, paper = next(p for p in PRINTS if p[0] == name)
    bgr = cv2.imread(str(EXAMPLES / photo), cv2.IMREAD_UNCHANGED)
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    bgr = bgr[..., :3].astype(np.float32) / 255
    if crop is not None:
        bgr = bgr[crop]
    if scale != 1:
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    h, w = bgr.shape[:2]
    c = craquelure(h, w, cell, seed)[..., None]
    crazed = bgr * (1 - opacity * c) + opacity * c * paper
    to8 = lambda a: np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)[..., ::-1].astype(np.float32) / 255  # noqa: E731
    return to8(bgr), to8(crazed), c[..., 0] > 0.02


def detail(image: np.ndarray, keep: np.ndarray) -> float:
    y = luma(image)
    hp = y - cv2.GaussianBlur(y, (0, 0), DETAIL_SIGMA)
    return float(np.mean(hp[keep] ** 2))


def away(mask: np.ndarray) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * MARGIN + 1, 2 * MARGIN + 1))
    return cv2.dilate(mask.astype(np.uint8), k) == 0


def restore(restorer: Restorer, image: np.ndarray, exclude: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """The default restoration, with the candidates handed to the denoiser or not (as before)."""
    real = modes.denoised_photo
    if not exclude:
        modes.denoised_photo = lambda image, denoise, exclude=None: real(image, denoise)
    try:
        t = time.perf_counter()
        result = restorer.restore(image)
        seconds = time.perf_counter() - t
    finally:
        modes.denoised_photo = real
    mask = np.zeros(image.shape[:2], bool) if result.mask is None else result.mask
    return result.image, mask, seconds


def to8(a: np.ndarray) -> np.ndarray:
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="folder for the face crops")
    args = ap.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    restorer = Restorer(faces=False)
    print("| print | σ uncracked: whole / away | σ crazed: whole (before) / away (after) | candidates | "
          "detail kept, photo: uncracked / before / after | face: uncracked / before / after | "
          "mask given back: > 2 levels |")
    print("|---|---|---|---|---|---|---|")
    for name, *_ in PRINTS:
        clean, crazed, cracks = crazed_print(name)
        y, y_clean = luma(crazed), luma(clean)
        found = restorer.detect(crazed)
        clean_found = restorer.detect(clean)
        sig = [noise_sigma(y_clean) * 255, noise_sigma(y_clean, clean_found.candidates) * 255,
               noise_sigma(y) * 255, noise_sigma(y, found.candidates) * 255]
        outs, kept = {}, {}
        for label, image, exclude in (("uncracked", clean, True), ("before", crazed, False),
                                      ("after", crazed, True)):
            out, mask, _ = restore(restorer, image, exclude)
            outs[label] = out
            keep = away(cracks | mask)
            face = np.zeros_like(keep)
            face[FACES[name]] = True
            kept[label] = [detail(out, k) / detail(image, k) for k in (keep, keep & face)]
        again = restorer.restore(crazed, mask=mask).image
        moved = np.mean(np.abs(again - outs["after"]).max(axis=2) > 2 / 255)
        print(f"| {name} | {sig[0]:.2f} / {sig[1]:.2f} | {sig[2]:.2f} / {sig[3]:.2f} | "
              f"{found.candidates.mean() * 100:.2f} % | "
              + " / ".join(f"{kept[k][0] * 100:.0f} %" for k in ("uncracked", "before", "after")) + " | "
              + " / ".join(f"{kept[k][1] * 100:.0f} %" for k in ("uncracked", "before", "after"))
              + f" | {moved * 100:.2f} % |", flush=True)
        if args.out:
            box = FACES[name]
            gap = np.full((box[0].stop - box[0].start, 4, 3), 255, np.uint8)
            row = [to8(crazed[box]), gap, to8(outs["before"][box]), gap, to8(outs["after"][box])]
            cv2.imwrite(str(args.out / f"{name}_face.png"), np.concatenate(row, axis=1)[..., ::-1])


if __name__ == "__main__":
    main()

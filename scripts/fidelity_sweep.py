"""Held-out synthetic photos restored by `oldphoto restore` at several --fidelity values.

    python scripts/fidelity_sweep.py --fidelity 0 0.25 0.5 0.75 1 [--weights DIR] [--split heldout]
    python scripts/fidelity_sweep.py --clean 256 128 64     # clean crops, shrunk: given back unchanged?
    python scripts/fidelity_sweep.py --fidelity 1 --remove-grain     # the learned denoiser instead of NLM

The cases are those of `oldphoto train evaluate` (every held-out clean photo of the corpus, fixed crops,
degraded by the synthesis at fixed seeds, `unstructured` and `mixed`).  Each is restored by the same
`Restorer` that `oldphoto restore` uses (faces off), and compared with its clean target.  Per kind and
fidelity: mean PSNR and SSIM, and how many photos came out *worse than their degraded input* in PSNR
or SSIM, with the worst margin: the never-worse criterion is about every photo, not the mean.  A photo
counts as worse when it lost more than 0.01 dB or 0.001 SSIM (float rounding of a photo left as it was
moves both by less); PSNR is capped at 60 dB, so that an undegraded crop (infinite PSNR) can be compared.

``--clean SIDE...`` asks the other half of never worse: the same crops *undegraded*, shrunk (area) to
each side, restored with the default fidelity, and compared with themselves; a clean photo should come
back as it was (counted below 35 and 30 dB, with the worst).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from oldphoto.metrics.fullref import psnr, ssim
from oldphoto.pipeline import Restorer
from oldphoto.train.evaluate import heldout_cases

WORSE_DB = 0.01
WORSE_SSIM = 0.001
MAX_DB = 60.0


def capped_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return min(psnr(a, b), MAX_DB)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fidelity", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--split", default="heldout", choices=("heldout", "train"),
                    help="train: tune on training photos without touching the held-out ones")
    ap.add_argument("--crops", type=int, default=2)
    ap.add_argument("--scratches", default="auto", choices=("auto", "on", "off"),
                    help="off: judge the fidelity alone, without the defect repair")
    ap.add_argument("--kinds", nargs="+", default=["unstructured", "mixed"])
    ap.add_argument("--remove-grain", action="store_true", help="denoise with the learned denoiser")
    ap.add_argument("--clean", type=int, nargs="+", default=None, metavar="SIDE",
                    help="restore the clean crops shrunk to these sides instead, compared with themselves")
    args = ap.parse_args()
    cases, used = heldout_cases([f"corpus:{args.split}", f"skimage:{args.split}"], crops=args.crops,
                                kinds=tuple(args.kinds))
    print(f"{len(cases)} cases from {used}\n")
    if args.clean:
        clean_crops([c for c in cases if c.kind == args.kinds[0]], args.clean, args.weights, args.scratches,
                    args.remove_grain)
        return
    print("| kind | fidelity | PSNR | SSIM | worse than input (PSNR / SSIM) | worst ΔPSNR | worst ΔSSIM |")
    print("|---|---|---|---|---|---|---|")
    for kind in args.kinds:
        subset = [c for c in cases if c.kind == kind]
        base_p = np.array([capped_psnr(c.degraded, c.clean) for c in subset])
        base_s = np.array([ssim(c.degraded, c.clean) for c in subset])
        print(f"| {kind} | input | {base_p.mean():.2f} | {base_s.mean():.4f} | | | |")
        for f in args.fidelity:
            restorer = Restorer(weights=args.weights, faces=False, fidelity=f, scratches=args.scratches,
                                remove_grain=args.remove_grain)
            outs = [restorer.restore(c.degraded).image for c in subset]
            p = np.array([capped_psnr(o, c.clean) for o, c in zip(outs, subset, strict=True)])
            s = np.array([ssim(o, c.clean) for o, c in zip(outs, subset, strict=True)])
            dp, ds = p - base_p, s - base_s
            print(f"| {kind} | {f:g} | {p.mean():.2f} | {s.mean():.4f} | {(dp < -WORSE_DB).sum()} / "
                  f"{(ds < -WORSE_SSIM).sum()} of {len(subset)} | {dp.min():+.2f} | {ds.min():+.4f} |",
                  flush=True)
            for c, a, b in zip(subset, dp, ds, strict=True):
                if a < -WORSE_DB or b < -WORSE_SSIM:
                    print(f"<!-- worse: {c.name} {a:+.3f} dB {b:+.4f} SSIM -->", flush=True)


def clean_crops(cases: list, sides: list[int], weights: Path | None, scratches: str,
                remove_grain: bool = False) -> None:
    restorer = Restorer(weights=weights, faces=False, scratches=scratches, remove_grain=remove_grain)
    print("| side | crops | PSNR against itself | below 35 dB | below 30 dB | worst |")
    print("|---|---|---|---|---|---|")
    for side in sides:
        crops = [c.clean if c.clean.shape[0] == side else
                 cv2.resize(c.clean, (side, side), interpolation=cv2.INTER_AREA) for c in cases]
        p = np.array([capped_psnr(restorer.restore(c).image, c) for c in crops])
        worst = np.argsort(p)[:3]
        print(f"| {side}² | {len(p)} | {p.mean():.2f} | {(p < 35).sum()} | {(p < 30).sum()} | "
              + ", ".join(f"{cases[i].name} {p[i]:.1f}" for i in worst) + " |", flush=True)


if __name__ == "__main__":
    main()

"""``--unfade``: faded prints given their contrast (and colours) back, measured against the clean photo.

Each photo is faded by the training synthesis's fading (:func:`oldphoto.synth.oldlook.fade`: lifted blacks,
dimmed whites, a gamma, and on colour prints unequally faded dyes; seeded), as a gray print (every other
one sepia) and as a colour print, then restored by ``oldphoto restore``'s own :class:`Restorer` (bundled
or ``--weights``; no scratch repair, so that only the levels differ) with ``--unfade`` off, contrast and
colour.  It prints the PSNR and LPIPS-alex against the clean photo (sepia prints: against the clean photo
in the same tone), how many photos each mode made worse than ``off`` in PSNR, and, for photos that did not
fade, how far each mode moves the clean photo itself (what a person who asks for it on an unfaded photo
gets).  Photos: ``examples/`` (default) or a folder (``--photos``: its PNG, JPEG and WebP files).

    python benchmarks/bench_unfade.py --photos HELDOUT --size 768
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from bench_repair_cells import photo, photo_paths  # (benchmarks/ is on the path of a script run there)

from oldphoto import RestoreOptions, Restorer
from oldphoto.metrics import fullref
from oldphoto.metrics.lpips import LPIPS
from oldphoto.synth.oldlook import fade, tone

MODES = ("off", "contrast", "colour")


def psnr(image: np.ndarray, clean: np.ndarray) -> float:
    """PSNR, 100 dB for an unchanged photo (so that means stay finite)."""
    return min(fullref.psnr(image, clean), 100.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=768, help="long side of the photos (px)")
    parser.add_argument("--photos", type=Path, help="a folder of clean photos (default: examples/)")
    parser.add_argument("--n", type=int, default=0, help="at most this many photos (0: all)")
    parser.add_argument("--weights", type=Path, help="a weights folder (default: the installed ones)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = photo_paths(args.photos, args.n)
    base = Restorer(RestoreOptions(faces=False, scratches="off", weights=args.weights))
    restorers = {mode: base.with_options(unfade=mode) for mode in MODES}
    lpips = LPIPS.standard("alex")
    rng = np.random.default_rng(args.seed)
    scores: dict[str, dict[str, list[float]]] = {}
    for i, path in enumerate(paths):
        colour = photo(path, args.size)
        gray = tone(colour, "sepia" if i % 2 else "neutral", 0.8 if i % 2 else 0.0)
        for print_kind, clean in (("gray", gray), ("colour", colour)):
            faded = fade(clean, rng, colour=print_kind == "colour")
            for case, source in (("faded", faded), ("unfaded", clean)):
                for mode, restorer in restorers.items():
                    out = restorer.restore(source).image
                    row = scores.setdefault(f"{print_kind} {case} {mode}", {"psnr": [], "lpips": []})
                    row["psnr"].append(psnr(out, clean))
                    row["lpips"].append(lpips.distance(out, clean))
        print(f"{i + 1}/{len(paths)} {path.name}", flush=True)
    summary = {}
    for key, row in scores.items():
        off = scores[key.rsplit(" ", 1)[0] + " off"]["psnr"]
        worse = int(sum(p < o - 0.05 for p, o in zip(row["psnr"], off, strict=True)))
        summary[key] = {"psnr": round(float(np.mean(row["psnr"])), 2),
                        "lpips": round(float(np.mean(row["lpips"])), 4),
                        "worse_than_off": worse, "n": len(row["psnr"])}
        print(f"{key:24s} {summary[key]['psnr']:6.2f} dB  LPIPS {summary[key]['lpips']:.4f}  "
              f"worse than off: {worse}/{len(row['psnr'])}")
    print(json.dumps({"size": args.size, "photos": len(paths), "summary": summary}))


if __name__ == "__main__":
    main()

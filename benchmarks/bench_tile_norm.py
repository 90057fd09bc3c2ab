"""How close tiled restoration comes to the whole-image result, per statistics pass, and what it costs.

``--tile-norm global`` gives every tile whole-photo instance-norm statistics, collected by one extra pass
(:meth:`oldphoto.stages.restore.RestoreStage.statistics_pass`).  This runs one photo (resized to
``--size``) through one path's bundled networks with a memory budget that tiles it, and compares each
variant's output with the same networks on the whole photo (no tiling):

* ``tile``: no statistics pass, every tile normalised with its own statistics (``--tile-norm tile``);
* ``global``: the pipeline's pass: the photo scaled down to one tile's area, run once;
* ``overview0.5``: the same at half that linear scale (a quarter of the pixels);
* ``tiles``: every full-resolution tile, each normalised with its own statistics (the pass before);
* ``subset``: every other tile of the grid (checkerboard), like ``tiles``.

Prints seconds (the whole path: statistics pass, tiles, blending, level fit), PSNR and max / mean abs
difference against the whole-image output, and a JSON line; ``--crops DIR`` writes a 320×320 crop at the
first interior tile corner (whole result first, then the variants) and a quarter-size 10× difference image.

    python benchmarks/bench_tile_norm.py --photo examples/solvay_1927.jpg --size 2048x2048 --max-memory 2G
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from oldphoto.pipeline import Restorer
from oldphoto.stages.restore import PATH_MULTIPLE, RestoreStage
from oldphoto.stages.tiling import plan_tiles

VARIANTS = ("tile", "global", "overview0.5", "tiles", "subset")


class TilesPass(RestoreStage):
    """The statistics pass over full-resolution tiles (all of them, or a checkerboard subset)."""

    def __init__(self, *args, every_other: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.every_other = every_other

    def statistics_pass(self, fn, inputs, plan, multiple) -> None:
        nx = len(plan.xs)
        for i, (y0, x0, y1, x1) in enumerate(plan.boxes()):
            if not self.every_other or (i // nx + i % nx) % 2 == 0:
                fn(*[t[..., y0:y1, x0:x1] for t in inputs])


class ScaledOverview(RestoreStage):
    """The pipeline's pass with the overview's side scaled by ``factor`` (the tile it must fit shrinks)."""

    def __init__(self, *args, factor: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.factor = factor

    def statistics_pass(self, fn, inputs, plan, multiple) -> None:
        from oldphoto.stages.restore import overview

        fn(*overview(inputs, int(self.tile * self.factor), multiple))


def scratch_mask(h: int, w: int) -> np.ndarray:
    """Four thin diagonal lines (what the scratch path inpaints)."""
    yy, xx = np.mgrid[0:h, 0:w]
    mask = np.zeros((h, w), bool)
    for k in range(4):
        a, b = 0.3 + 0.25 * k, h * (0.1 + 0.2 * k)
        mask |= np.abs(yy - (a * xx + b - 0.4 * h)) < 1.5 * np.sqrt(1 + a * a)
    return mask


def save_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", required=True)
    ap.add_argument("--size", required=True, help="WxH the photo is resized to")
    ap.add_argument("--max-memory", default="2G")
    ap.add_argument("--path", default="quality", choices=tuple(PATH_MULTIPLE))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--rounds", type=int, default=1, help="variants alternate; seconds are medians")
    ap.add_argument("--crops", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    w, h = map(int, args.size.lower().split("x"))
    img = np.asarray(Image.open(args.photo).convert("RGB").resize((w, h), Image.BICUBIC), np.float32) / 255
    mask = None if args.path == "quality" else scratch_mask(h, w)
    r = Restorer(fidelity=0.0, max_memory=args.max_memory, faces=False)
    models = r.path_models(args.path)
    tile = r.restore_stage(args.path, (h, w)).tile
    m = PATH_MULTIPLE[args.path]
    plan = plan_tiles(-(-h // m) * m, -(-w // m) * m, tile, 128, m)
    print(f"# {args.photo} {w}x{h} --max-memory {args.max_memory} path {args.path}: tile {tile}, "
          f"{len(plan.ys)}x{len(plan.xs)} tiles of {plan.tile_h}x{plan.tile_w}", flush=True)

    def stage(variant: str) -> RestoreStage:
        kw = {"tile": tile, "global_norm": variant != "tile"}
        if variant == "whole":
            return RestoreStage(r._run_module, tile=1 << 30, global_norm=False)
        if variant in ("tiles", "subset"):
            return TilesPass(r._run_module, every_other=variant == "subset", **kw)
        if variant.startswith("overview"):
            return ScaledOverview(r._run_module, factor=float(variant[len("overview"):]), **kw)
        return RestoreStage(r._run_module, **kw)

    def timed(variant: str) -> tuple[np.ndarray, float]:
        t = time.perf_counter()
        with torch.inference_mode():
            y = stage(variant)(img, models, args.path, mask)
        return y, time.perf_counter() - t

    ref, seconds = timed("whole")
    results = {"whole": {"s": [seconds]}}
    outputs = {}
    for _ in range(args.rounds):
        for v in args.variants:
            y, seconds = timed(v)
            d = np.abs(y.astype(np.float64) - ref)
            rec = results.setdefault(v, {"s": []})
            rec["s"].append(seconds)
            psnr = float(10 * np.log10(1 / (d ** 2).mean()))
            rec.update(psnr=psnr, max=float(d.max()), mean=float(d.mean()))
            outputs[v] = y
            print(f"{v:12s} {seconds:7.2f} s  PSNR {rec['psnr']:6.2f} dB  max {rec['max']:.4f}  "
                  f"mean {rec['mean']:.5f}", flush=True)
    print(f"{'whole':12s} {results['whole']['s'][0]:7.2f} s", flush=True)
    if args.crops:
        args.crops.mkdir(parents=True, exist_ok=True)
        cy = plan.ys[1] + 64 if len(plan.ys) > 1 else h // 2
        cx = plan.xs[1] + 64 if len(plan.xs) > 1 else w // 2
        box = (slice(max(0, cy - 160), cy + 160), slice(max(0, cx - 160), cx + 160))
        stem = f"{Path(args.photo).stem}_{w}x{h}_{args.max_memory}_{args.path}"
        row = np.concatenate([ref[box]] + [outputs[v][box] for v in args.variants], 1)
        save_png(row, args.crops / f"{stem}_crops.png")
        save_png(np.concatenate([np.abs(outputs[v] - ref)[::4, ::4] * 10 for v in args.variants], 1),
                 args.crops / f"{stem}_diff10x.png")
    summary = {k: {**{kk: vv for kk, vv in rec.items() if kk != "s"}, "s": float(np.median(rec["s"]))}
               for k, rec in results.items()}
    print("JSON", json.dumps({"photo": args.photo, "size": args.size, "max_memory": args.max_memory,
                              "path": args.path, "tile": tile, "tiles": [len(plan.ys), len(plan.xs)],
                              "results": summary}), flush=True)


if __name__ == "__main__":
    main()

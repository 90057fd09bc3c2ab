"""Every row of issue #19's GPU goal in one bounded run: quality path per size and precision, the scratch
path at 4096×3072, a folder of photos through ``oldphoto restore``.  Writes ``gpu_bench.json`` and
``gpu_bench.md`` to ``--out``.

Needs only this repository's ``src`` (``PYTHONPATH=src``) and its runtime dependencies (torch, numpy,
OpenCV, Pillow, safetensors): no network, no installed weights.  The networks are **stand-ins at the
official sizes** (the classes' default widths, random weights, seeded), saved as a weights folder with
:func:`oldphoto.weights.save_model` exactly as ``oldphoto weights import`` stores the official ones, and
loaded by the product's own loader: speed does not depend on the weight values.

Rows (each after one warm-up, median of ``--repeats``; ratios to fp32 of the same size, same run):

* ``quality``: ``Restorer(scratches="off", fidelity=0).restore()`` (the networks' restoration is the
  result), 512², 1024², 2048², 4096×3072 in fp32, bf16, fp16;
* ``scratch``: the same photo with a 2.4 % scratch mask given as the defect mask, 4096×3072, bf16 then
  fp32 (the networks repair the windows around the defects; above ``--hr-above``, 4 MP by default, the
  pipeline repairs with the HR path's patch attention, so the table names the path the row took;
  ``--smoke`` scales ``--hr-above`` with its tiny photo, so it runs the path the full row runs);
* ``upscale``: the quality path of a 1024² photo with ``--upscale 2`` (the Real-ESRGAN x4plus network,
  RRDBNet, as a stand-in too), in every precision: its ``upscale`` stage against the rest;
* ``folder``: ``oldphoto restore FOLDER -o OUT`` on ``--folder-count`` JPEGs of 2048² (decode, restore,
  encode, write), photos/s, bf16.

On CUDA, ``fp32`` is PyTorch's default there: cuDNN convolutions in TF32 (``torch.backends.cudnn.
allow_tf32``), matrix products in full fp32; the header records both flags.

A time budget (``--budget-s``) skips the rows that would not fit (marked so in the table), so the script
always ends with its files written.  ``--smoke`` runs every row at tiny sizes on any device (the CPU test
that it cannot crash on first use: ``tests/test_gpu_bench.py``).

Usage (on the GPU machine, from the repository root)::

    OUT=/tmp/out bash benchmarks/gpu_bench.sh
    PYTHONPATH=src python benchmarks/gpu_bench.py --smoke --device cpu --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REQUIRED = ["torch", "numpy", "cv2", "PIL", "safetensors"]

FULL = {"sizes": [(512, 512), (1024, 1024), (2048, 2048), (4096, 3072)], "scratch": (4096, 3072),
        "upscale": (1024, 1024), "folder": (2048, 2048), "repeats": 3}
SMOKE = {"sizes": [(64, 64), (96, 80)], "scratch": (128, 96), "upscale": (48, 40), "folder": (64, 64),
         "repeats": 1}


def preflight() -> None:
    import importlib.util

    missing = [m for m in REQUIRED if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(f"gpu_bench: missing Python modules {', '.join(missing)} (the project's runtime "
                         "dependencies); nothing was run")


def standin_weights(dest: Path, smoke: bool) -> None:
    """Official-size networks with seeded random weights, stored as the importer stores official ones."""
    import torch

    from oldphoto.nets.detector import DefectDetector
    from oldphoto.nets.mapping import PatchAttentionMapping, QualityMapping, ScratchMapping
    from oldphoto.nets.upscaler import RRDBNet
    from oldphoto.nets.vae import VAE
    from oldphoto.weights import save_model

    torch.manual_seed(0)
    # --smoke: the same classes, narrow (a CPU builds and runs them in seconds)
    small = {"width": 16} if smoke else {}
    mapping = {"latent_channels": 16, "width": 32} if smoke else {}
    nets = {
        "vae_a": VAE(**small), "vae_b_quality": VAE(**small), "vae_b_scratch": VAE(**small),
        "mapping_quality": QualityMapping(**mapping),
        "mapping_scratch": ScratchMapping(**mapping, **({"inter_channels": 16} if smoke else {})),
        "mapping_hr": PatchAttentionMapping(**mapping),
        "detector": DefectDetector(**({"width": 8} if smoke else {})),
        "upscale_x4": RRDBNet(**({"num_feat": 8, "num_grow": 4, "num_blocks": 1} if smoke else {})),
    }
    for role, net in nets.items():
        save_model(net.eval(), role, dest, source="gpu_bench stand-in (random weights, official size)")


def photo(width: int, height: int, seed: int = 0):
    """A smooth photo-like float32 image with grain (content does not change the networks' cost)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.25 * np.sin(xx / (17 + seed % 5)) * np.cos(yy / 23)
    img = np.stack([base, base * 0.9 + 0.05, base * 0.8 + 0.1], axis=2)
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def scratch_mask(width: int, height: int, fraction: float = 0.024):
    """Thin diagonal scratches covering about ``fraction`` of the photo."""
    import numpy as np

    yy, xx = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), bool)
    k = 0
    while mask.mean() < fraction and k < 64:
        a = 0.2 + 0.13 * (k % 7)
        b = height * ((0.37 * k) % 1.0)
        mask |= np.abs(yy - (a * xx + b - 0.5 * height)) < 1.5 * np.sqrt(1 + a * a)
        k += 1
    return mask


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    def __init__(self, budget: float) -> None:
        self.start = time.perf_counter()
        self.budget = budget

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)


def timed(fn, device, repeats: int, clock: Clock, estimate_factor: float = 1.0) -> tuple[list[float], str]:
    """Warm-up then up to ``repeats`` timed runs, fewer when the budget runs short."""
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    first = time.perf_counter() - t
    times: list[float] = []
    for _ in range(repeats):
        if clock.left() < first * estimate_factor + 5:
            break
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times or [first], f"warm-up {first:.2f} s" + ("" if times else " (only run)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_bench_out")))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and narrow networks: a crash test")
    ap.add_argument("--budget-s", type=float, default=450.0, help="stop starting rows after this")
    ap.add_argument("--precisions", nargs="+", default=None)
    ap.add_argument("--folder-count", type=int, default=None)
    ap.add_argument("--max-memory", default="auto",
                    help="tile budget passed to the pipeline; auto: half the GPU's free memory on CUDA "
                         "(the product's default 2G would cut a 4096×3072 photo into 12 tiles run twice), "
                         "else the product's default")
    args = ap.parse_args()
    preflight()

    import numpy as np
    import torch

    from oldphoto.pipeline import RestoreOptions, Restorer
    from oldphoto.stages.runtime import resolve_device

    clock = Clock(args.budget_s)
    plan = SMOKE if args.smoke else FULL
    device = resolve_device(args.device)
    precisions = args.precisions or (["fp32", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"])
    folder_count = args.folder_count or (3 if args.smoke else 100)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "smoke": args.smoke,
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
    if device.type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(device)
        meta["cuda"] = torch.version.cuda
        # what "fp32" means there: PyTorch's defaults run cuDNN convolutions in TF32
        meta["tf32"] = {"cudnn": bool(torch.backends.cudnn.allow_tf32),
                        "matmul": bool(torch.backends.cuda.matmul.allow_tf32)}
    rows: list[dict] = []

    def write() -> None:
        (args.out / "gpu_bench.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        (args.out / "gpu_bench.md").write_text(render(meta, rows))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        standin_weights(tmp / "weights", args.smoke)
        meta["weights_seconds"] = round(time.perf_counter() - t, 2)
        max_memory = args.max_memory
        if max_memory == "auto":
            max_memory = (str(torch.cuda.mem_get_info(device)[0] // 2) if device.type == "cuda"
                          else RestoreOptions().max_memory)
        meta["max_memory"] = max_memory
        common = {"device": str(device), "weights": tmp / "weights", "faces": False, "max_memory": max_memory}

        # the restorers share loaded networks
        base = Restorer(scratches="off", fidelity=0.0, **common)

        def measure(row: dict, image, mask=None, repeats: int = plan["repeats"], **options) -> None:
            """``restore(image, mask)`` with ``options`` timed into ``row``; a row that fails is reported,
            the others still run."""
            try:
                r = base.with_options(**options)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                last = {}

                def run():
                    last["result"] = r.restore(image, mask)

                times, note = timed(run, device, repeats, clock)
                row |= {"seconds": statistics.median(times), "runs": len(times), "note": note,
                        "stages": last["result"].timings, "path": last["result"].path}
                if device.type == "cuda":
                    row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            except Exception as exc:
                row["note"] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
            rows.append(row)
            write()

        # quality path: every size, every precision
        for w, h in plan["sizes"]:
            image = photo(w, h)
            for precision in precisions:
                row = {"row": "quality", "size": f"{w}x{h}", "precision": precision}
                if clock.left() < 10:
                    rows.append(row | {"note": "skipped: time budget"})
                    continue
                measure(row, image, precision=precision)

        # scratch path: a 2.4 % scratch mask as the photo's defect mask
        w, h = plan["scratch"]
        image, mask = photo(w, h, 1), scratch_mask(w, h)
        # --smoke: --hr-above scaled with the photo, so the tiny row takes the path the full one takes
        fw, fh = FULL["scratch"]
        path_options = {"hr_above": RestoreOptions().hr_above * (w * h) / (fw * fh)} if args.smoke else {}
        for precision in [p for p in ("bf16", "fp32") if p in precisions]:
            row = {"row": "scratch", "size": f"{w}x{h}", "precision": precision,
                   "mask": f"{mask.mean() * 100:.1f} %"}
            if clock.left() < 60 and not args.smoke:
                rows.append(row | {"note": "skipped: time budget"})
                continue
            measure(row, image, mask, 1 if not args.smoke else plan["repeats"], scratches="on",
                    precision=precision, **path_options)

        # --upscale 2 after the quality path: the enlargement's own time is its "upscale" stage
        w, h = plan["upscale"]
        image = photo(w, h, 3)
        for precision in precisions:
            row = {"row": "upscale", "size": f"{w}x{h}", "precision": precision}
            if clock.left() < 60 and not args.smoke:
                rows.append(row | {"note": "skipped: time budget"})
                continue
            measure(row, image, upscale=2, precision=precision)

        # a folder through the command line: decode, restore, encode and write included
        w, h = plan["folder"]
        precision = "bf16" if "bf16" in precisions else "fp32"
        # fewer photos when the budget left would not hold them all (estimated from the in-process row
        # of that size, plus 0.3 s per photo for decoding, encoding and writing)
        per_photo = next((r["seconds"] for r in rows if r["row"] == "quality" and r["size"] == f"{w}x{h}"
                          and r["precision"] == precision and "seconds" in r), None)
        if per_photo and not args.smoke:
            fits = int((clock.left() - 40) / (per_photo + 0.3))
            folder_count = max(10, min(folder_count, fits))
        row = {"row": "folder", "size": f"{w}x{h}", "precision": precision, "photos": folder_count}
        if clock.left() < 60 and not args.smoke:
            rows.append(row | {"note": "skipped: time budget"})
        else:
            try:
                from PIL import Image

                from oldphoto.cli import main as cli

                src, dst = tmp / "photos", tmp / "restored"
                src.mkdir()
                img8 = (photo(w, h, 2) * 255).astype(np.uint8)
                for i in range(folder_count):
                    Image.fromarray(np.roll(img8, i * 7, axis=1)).save(src / f"p{i:03d}.jpg", quality=90)
                argv = ["restore", str(src), "-o", str(dst), "--device", str(device), "--weights",
                        str(tmp / "weights"), "--precision", row["precision"], "--max-memory", max_memory,
                        "--scratches", "off",
                        "--fidelity", "0", "--no-faces", "--no-progress"]
                t = time.perf_counter()
                rc = cli(argv)
                seconds = time.perf_counter() - t
                done = len(list(dst.glob("*.jpg")))
                row |= {"seconds": seconds, "photos_per_s": done / seconds, "exit_code": rc,
                        "note": f"{done} written; start-up and model loading included"}
            except Exception as exc:
                row["note"] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
            rows.append(row)
    meta["total_seconds"] = round(time.perf_counter() - clock.start, 1)
    write()
    print(render(meta, rows))
    failed = [r for r in rows if str(r.get("note", "")).startswith("failed")]
    if failed:
        raise SystemExit(f"{len(failed)} row(s) failed")


def render(meta: dict, rows: list[dict]) -> str:
    fp32 = {(r["row"], r["size"]): r["seconds"] for r in rows if r["precision"] == "fp32" and "seconds" in r}
    lines = [f"Device: {meta.get('gpu', meta['device'])} (CUDA {meta.get('cuda', '-')}); "
             f"torch {meta['torch']}; {meta['cpus']} CPUs; stand-in official-size networks; "
             f"--max-memory {meta.get('max_memory')}; "
             f"command `{meta['command']}`"
             + (" (SMOKE: tiny sizes, narrow networks)" if meta["smoke"] else "")
             + (f"; fp32 rows: TF32 convolutions {'on' if meta['tf32']['cudnn'] else 'off'}, TF32 "
                f"matrix products {'on' if meta['tf32']['matmul'] else 'off'}" if "tf32" in meta else ""),
             "",
             "| row | size | precision | seconds | ratio vs fp32 | photos/s | peak GiB | stages (s) | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r.get("seconds")
        key = (r["row"], r["size"])
        ratio = f"{fp32[key] / s:.2f}x" if s and r["row"] != "folder" and key in fp32 else ""
        stages = ", ".join(f"{k} {v:.2f}" for k, v in (r.get("stages") or {}).items())
        pps = f"{r['photos_per_s']:.2f}" if "photos_per_s" in r else ""
        peak = f"{r['peak_gib']:.1f}" if "peak_gib" in r else ""
        name = r["row"] + (f" ({r['path']} path)" if r["row"] == "scratch" and r.get("path") else "")
        lines.append(f"| {name} | {r['size']} | {r['precision']} | {'' if s is None else f'{s:.3f}'} | "
                     f"{ratio} | {pps} | {peak} | {stages} | {r.get('note', '')} {r.get('mask', '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

"""Seconds per photo and peak RSS of the restoration pipeline, per path, size and precision.

Every measurement runs in a fresh Python process (so model loading, allocator state and peak RSS do not
leak between rows); the parent reads the child's peak RSS from ``os.wait4`` and its timings from stdout.

The networks are the official-size architectures with RANDOM weights, built explicitly here: speed and
memory do not depend on the weight values (this is the only place outside tests that builds random
networks, and it never writes images).  Paths:

* ``detector``: the defect detector alone, full resolution, tiled (``--scratches on`` costs this extra);
* ``quality``: VAE_A encoder → QualityMapping → VAE_B decoder;
* ``scratch``: same with ScratchMapping (partial nonlocal) and a fixed 1 %-area scratch mask;
* ``hr``: PatchAttentionMapping with the same mask.

Usage::

    python benchmarks/bench_restore.py --sizes 512 1024 --paths quality scratch hr detector \
        --precisions fp32 bf16 --out benchmarks/restore.json
    python benchmarks/bench_restore.py --render benchmarks/restore.json > benchmarks/restore.md

Sizes are ``N`` (N×N) or ``WxH``.  ``--max-memory`` is passed to the pipeline (the tile budget).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

GB = 1 << 30


def parse_size(text: str) -> tuple[int, int]:
    if "x" in text:
        w, h = text.lower().split("x")
        return int(w), int(h)
    return int(text), int(text)


def scratch_mask(h: int, w: int):
    """Deterministic thin diagonal scratches covering about 1 % of the photo."""
    import numpy as np

    yy, xx = np.mgrid[0:h, 0:w]
    mask = np.zeros((h, w), bool)
    for k in range(4):
        # a line y = a·x + b, 3 px wide
        a = 0.3 + 0.25 * k
        b = h * (0.1 + 0.2 * k)
        mask |= np.abs(yy - (a * xx + b - 0.4 * h)) < 1.5 * np.sqrt(1 + a * a)
    return mask


def patch_tile_limit(limit: int) -> dict:
    """``--max-tiles``: run only the first ``limit`` tiles of every tiled pass.

    All tiles of a photo have the same size, so once the photo-sized buffers are allocated and one tile
    has run, later tiles cannot raise the peak RSS; this makes the 4096×3072 memory check affordable on
    a slow CPU.  The seconds of such a row are extrapolated (per-tile time × tiles) and marked so.
    """
    seen = {"total": 0, "run": 0}
    if limit <= 0:
        return seen
    from oldphoto.stages import tiling

    original = tiling.TilePlan.boxes

    def boxes(self):
        all_boxes = original(self)
        seen["total"] = max(seen["total"], len(all_boxes))
        seen["run"] = min(limit, len(all_boxes))
        return all_boxes[:limit]

    tiling.TilePlan.boxes = boxes
    return seen


def child(path: str, width: int, height: int, precision: str, device: str, max_memory: str) -> None:
    """One measurement: build official-size random nets, restore one synthetic photo, print JSON."""
    import numpy as np
    import torch

    from oldphoto.nets.detector import DefectDetector
    from oldphoto.nets.mapping import PatchAttentionMapping, QualityMapping, ScratchMapping
    from oldphoto.nets.vae import VAE
    from oldphoto.pipeline import Restorer
    from oldphoto.stages.defects import DefectStage

    torch.manual_seed(0)
    tiles_seen = patch_tile_limit(int(os.environ.get("OLDPHOTO_BENCH_MAX_TILES", "0")))
    rng = np.random.default_rng(0)
    low = rng.random((height // 64 + 2, width // 64 + 2, 3)).astype(np.float32)
    import cv2

    image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    image = np.clip(image + 0.03 * rng.standard_normal(image.shape).astype(np.float32), 0, 1)
    t0 = time.perf_counter()
    # only the networks this path uses, as the product loads them lazily
    if path == "detector":
        models = {"detector": DefectDetector()}
    elif path == "quality":
        models = {"vae_a": VAE(), "vae_b_quality": VAE(), "mapping_quality": QualityMapping()}
    else:
        models = {"vae_a": VAE(), "vae_b_scratch": VAE(),
                  f"mapping_{path}": ScratchMapping() if path == "scratch" else PatchAttentionMapping()}
    restorer = Restorer(models=models, faces=False, device=device, precision=precision,
                        max_memory=max_memory, scratches="off" if path == "quality" else "on",
                        hr=path == "hr", hr_above=1e9)
    build = time.perf_counter() - t0
    warm = image[:64, :64]  # first-call initialisation (oneDNN kernels) is not part of a photo's cost
    if path == "detector":
        det = restorer.model("detector")
        stage = DefectStage(lambda x: restorer.runner(det, x), tile=restorer._tile("detector"))
        stage(warm)
        t = time.perf_counter()
        mask = stage(image)
        seconds = time.perf_counter() - t
        extra = {"tile": restorer._tile("detector"), "defect_fraction": float(mask.mean())}
    else:
        mask = scratch_mask(height, width) if path != "quality" else None
        restorer.restore(warm, mask=None if mask is None else mask[:64, :64])
        t = time.perf_counter()
        result = restorer.restore(image, mask=mask)
        seconds = time.perf_counter() - t
        if tiles_seen["run"] and tiles_seen["run"] < tiles_seen["total"]:
            seconds *= tiles_seen["total"] / tiles_seen["run"]  # extrapolated, see patch_tile_limit
        assert result.path == path, (result.path, path)
        assert result.image.shape == image.shape
        extra = {"tile": restorer._tile(path), "timings": result.timings}
    if tiles_seen:
        extra["tiles_total"], extra["tiles_run"] = tiles_seen["total"], tiles_seen["run"]
    # the 1-minute load average: on a shared machine it says how much the seconds are inflated
    print(json.dumps({"seconds": seconds, "build_seconds": build, "load_avg": os.getloadavg()[0], **extra}))


def run_child_with_rusage(cmd: list[str], timeout: float) -> tuple[int, str, str, int]:
    """Popen + wait4 so that the peak RSS of this one child is known."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    out_chunks, err_chunks = [], []
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(proc.stderr, selectors.EVENT_READ)
    open_streams = 2
    while open_streams:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            proc.kill()
            os.wait4(proc.pid, 0)
            raise TimeoutError
        for key, _ in sel.select(timeout=min(remaining, 5.0)):
            data = key.fileobj.readline()
            if not data:
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            (out_chunks if key.fileobj is proc.stdout else err_chunks).append(data)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, "".join(out_chunks), "".join(err_chunks), usage.ru_maxrss * 1024


def measure_one(path: str, size: str, precision: str, device: str, max_memory: str, timeout: float) -> dict:
    w, h = parse_size(size)
    cmd = [sys.executable, __file__, "--child", path, str(w), str(h), precision, device, max_memory]
    row = {"path": path, "size": size, "precision": precision, "device": device, "max_memory": max_memory}
    start = time.perf_counter()
    try:
        code, out, err, peak = run_child_with_rusage(cmd, timeout)
    except TimeoutError:
        row["error"] = f"timeout after {timeout:.0f} s"
        return row
    row["wall_seconds"] = time.perf_counter() - start
    if code != 0:
        lines = err.strip().splitlines()
        row["error"] = lines[-1] if lines else f"exit {code}"
        return row
    row.update(json.loads(out.strip().splitlines()[-1]))
    row["peak_rss_bytes"] = peak
    return row


def render(rows: list[dict], meta: dict) -> str:
    lines = ["# Restoration benchmark", "",
             f"Machine: {meta.get('machine', '?')}; torch {meta.get('torch', '?')}, "
             f"{meta.get('threads', '?')} threads; command: `{meta.get('command', '')}`.", "",
             "Official-size networks with random weights (speed and memory do not depend on weight values); "
             "one fresh process per row; *seconds* = `Restorer.restore()` on one photo (model building "
             "excluded), *peak RSS* = the whole process (Python, torch, models, buffers). "
             "`detector` = the defect detector alone at full resolution (what `--scratches auto|on` "
             "adds). `scratch`/`hr` use a fixed 1 % scratch mask. Ratio = seconds / fp32 quality at the "
             "same size in the same run.", "",
             "| path | size | precision | tile | seconds | ratio vs quality fp32 | peak RSS (GiB) | load |",
             "|---|---|---|---|---|---|---|---|"]
    base = {(r.get("run", 0), r["size"]): r["seconds"] for r in rows
            if r.get("path") == "quality" and r.get("precision") == "fp32" and "seconds" in r}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['path']} | {r['size']} | {r['precision']} | | {r['error']} | | | |")
            continue
        key = (r.get("run", 0), r["size"])
        ratio = f"{r['seconds'] / base[key]:.2f}" if key in base else ""
        partial = r.get("tiles_run", 0) and r["tiles_run"] < r.get("tiles_total", 0)
        secs = (f"~{r['seconds']:.0f} (extrapolated from {r['tiles_run']}/{r['tiles_total']} tiles)"
                if partial else f"{r['seconds']:.1f}")
        lines.append(f"| {r['path']} | {r['size']} | {r['precision']} | {r.get('tile', '')} | "
                     f"{secs} | {ratio} | {r['peak_rss_bytes'] / GB:.2f} | "
                     f"{r.get('load_avg', float('nan')):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, path, w, h, precision, device, max_memory = sys.argv
        child(path, int(w), int(h), precision, device, max_memory)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["512", "1024"])
    ap.add_argument("--paths", nargs="+", default=["quality", "scratch", "hr", "detector"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-memory", default="2G")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--max-tiles", type=int, default=0,
                    help="run only this many tiles per pass (peak-RSS checks of huge sizes; seconds are "
                         "extrapolated)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("restore.json"))
    ap.add_argument("--render", type=Path, nargs="+", help="print the Markdown table of result files, exit")
    args = ap.parse_args()
    if args.render:
        files = [json.loads(p.read_text()) for p in args.render]
        # a row's ratio is taken against the quality row of its own file (the same run and load)
        rows = [dict(r, run=i) for i, d in enumerate(files) for r in d["rows"]]
        sys.stdout.write(render(rows, files[0]["meta"]))
        return
    import torch

    data = json.loads(args.out.read_text()) if args.out.exists() else {"rows": []}
    data["meta"] = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "command": "python benchmarks/bench_restore.py " + " ".join(sys.argv[1:])}
    if args.max_tiles:
        os.environ["OLDPHOTO_BENCH_MAX_TILES"] = str(args.max_tiles)
    for size in args.sizes:
        for path in args.paths:
            for precision in args.precisions:
                row = measure_one(path, size, precision, args.device, args.max_memory, args.timeout)
                print(json.dumps(row), flush=True)
                data["rows"] = [r for r in data["rows"] if (r["path"], r["size"], r["precision"]) !=
                                (path, size, precision)] + [row]
                tmp = args.out.with_suffix(".tmp")
                tmp.write_text(json.dumps(data, indent=1))
                os.replace(tmp, args.out)


if __name__ == "__main__":
    main()

"""Speed and peak memory of the evaluation stages and of the restoration methods.

Rows: per stage (each metric, each step of the classical baseline, the feature networks of the proxy
metrics) and end to end (the classical baseline; our restorer when weights are installed, with its own
per-stage timings), at several square sizes, on CPU and, when one is available, on a GPU.

Every row runs in a fresh Python process: the parent reads the child's peak RSS from ``os.wait4`` and its
timings (median of ``--repeats`` runs after one warm-up) from stdout.  An ``idle`` row (imports only) is the
memory baseline.  Speed-ups are ratios to a baseline measured in the same run: GPU rows against the same
stage on CPU, and the restorer against the classical pipeline at the same size.

Usage::

    python benchmarks/bench_speed.py --sizes 256 512 1024 --repeats 5 --out benchmarks/speed.md
    python benchmarks/bench_speed.py --quick      # 256 and 512, 3 repeats
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

CPU_STAGES = ["idle", "psnr", "ssim", "niqe", "brisque", "scratch_mask", "nlm", "telea", "classical",
              "lpips_alex", "fid_proxy_features", "restorer", "restorer_quality_random"]
GPU_STAGES = ["lpips_alex", "fid_proxy_features", "restorer", "restorer_quality_random"]
HEAVY = {"lpips_alex", "restorer", "restorer_quality_random"}  # capped by --heavy-max-size on CPU


def _photo(size: int):
    import cv2
    import numpy as np
    import skimage.data

    from oldphoto.metrics.benchmark import fit_max_side
    from oldphoto.synth.degrade import DegradeConfig, degrade

    img = cv2.resize(skimage.data.astronaut().astype(np.float32) / 255, (size, size),
                     interpolation=cv2.INTER_AREA)
    d = degrade(fit_max_side(img, None), 0, DegradeConfig(kind="mixed"))
    return d.degraded, d.clean


def _stage_fn(stage: str, size: int, device: str):
    """Returns (fn, extra) where fn() runs the stage once."""
    import numpy as np

    degraded, clean = _photo(size)
    if stage == "idle":
        return (lambda: None), {}
    if stage in ("psnr", "ssim"):
        from oldphoto.metrics import fullref

        f = getattr(fullref, stage)
        return (lambda: f(degraded, clean)), {}
    if stage == "niqe":
        from oldphoto.metrics.niqe import niqe

        return (lambda: niqe(degraded)), {}
    if stage == "brisque":
        from oldphoto.metrics.brisque import brisque

        return (lambda: brisque(degraded)), {}
    if stage in ("scratch_mask", "nlm", "telea", "classical"):
        import cv2

        from oldphoto.metrics import baselines

        u8 = np.round(degraded * 255).astype(np.uint8)
        mask = baselines.classical_scratch_mask(degraded)
        m8 = mask.astype(np.uint8) * 255
        return {
            "scratch_mask": lambda: baselines.classical_scratch_mask(degraded),
            "nlm": lambda: cv2.fastNlMeansDenoisingColored(u8, None, 10, 10, 7, 21),
            "telea": lambda: cv2.inpaint(u8, m8, 5, cv2.INPAINT_TELEA),
            "classical": lambda: baselines.classical_restore(degraded),
        }[stage], {"mask_fraction": float(mask.mean())}
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    x = torch.from_numpy(degraded.transpose(2, 0, 1).copy())[None].to(device)
    y = torch.from_numpy(clean.transpose(2, 0, 1).copy())[None].to(device)
    if stage == "lpips_alex":
        from oldphoto.metrics.lpips import LPIPS

        metric = LPIPS.standard("alex").to(device)
        metric.heads = [h.to(device) for h in metric.heads]

        def run():
            metric(x, y)
            sync()

        return run, {}
    if stage == "fid_proxy_features":
        from oldphoto.metrics.features import efficientnet_lite0

        net = efficientnet_lite0().to(device)

        def run():
            with torch.no_grad():
                net(net.prepare(x))
            sync()

        return run, {}
    if stage in ("restorer", "restorer_quality_random"):
        from oldphoto.metrics.benchmark import official_weights_dir
        from oldphoto.pipeline import Restorer

        if stage == "restorer":  # installed weights (imported official, else bundled), default options
            restorer = Restorer(weights=official_weights_dir(), device=device)
        else:
            # speed only: official-size quality path with explicitly RANDOM weights (timing does not depend
            # on weight values); never used for pictures or quality numbers
            from oldphoto.nets.mapping import QualityMapping
            from oldphoto.nets.vae import VAE

            torch.manual_seed(0)
            models = {"vae_a": VAE(), "vae_b_quality": VAE(), "mapping_quality": QualityMapping()}
            restorer = Restorer(models=models, faces=False, scratches="off", device=device)
        last: dict = {}

        def run():
            last["timings"] = restorer.restore(degraded).timings
            sync()

        return run, {"timings": last}
    raise ValueError(f"unknown stage {stage!r}")


def worker(stage: str, size: int, device: str, repeats: int) -> dict:
    t_import = time.perf_counter()
    try:
        fn, extra = _stage_fn(stage, size, device)
    except Exception as exc:  # noqa: BLE001 - report why the row is missing (weights, packages)
        return {"error": f"{type(exc).__name__}: {str(exc).split('. ')[0][:120]}"}
    setup = time.perf_counter() - t_import
    fn()  # warm-up (lazy model loading, cuDNN autotune, caches)
    times, stage_times = [], {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        for k, v in (extra.get("timings", {}).get("timings") or {}).items():
            stage_times.setdefault(k, []).append(v)
    out = {"median_s": statistics.median(times), "min_s": min(times), "setup_s": setup}
    if stage_times:
        out["stages"] = {k: statistics.median(v) for k, v in stage_times.items()}
    if "mask_fraction" in extra:
        out["mask_fraction"] = extra["mask_fraction"]
    return out


def run_child(stage: str, size: int, device: str, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", stage, str(size), device, str(repeats)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"error": f"worker failed (rc {proc.returncode}): {stderr.strip().splitlines()[-1:]}"}
    result["peak_rss_mib"] = usage.ru_maxrss / 1024.0  # Linux: KiB
    return result


def render(rows: list[dict], meta: dict) -> str:
    lines = ["# Evaluation and restoration speed", "",
             f"Machine: {meta['machine']}; torch {meta['torch']}; {meta['threads']} CPU threads; "
             f"GPU: {meta['gpu'] or 'none'}; load average before/after {meta['load_before']} / "
             f"{meta['load_after']} (a shared machine: compare rows of one run only). Medians of "
             f"{meta['repeats']} runs after one warm-up; each row in a fresh process. Peak RSS includes the "
             "interpreter and imports (see the `idle` row).", "",
             f"Command: `{meta['command']}`", "",
             "| stage | device | size | median s | photos/s | peak RSS MiB | speed-up | note |",
             "|---|---|---|---|---|---|---|---|"]
    by_key = {(r["stage"], r["device"], r["size"]): r for r in rows}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['stage']} | {r['device']} | {r['size']} | – | – | {r['peak_rss_mib']:.0f} "
                         f"| – | skipped: {r['error']} |")
            continue
        ratio, note = "", ""
        if r["device"] != "cpu":
            base = by_key.get((r["stage"], "cpu", r["size"]))
            if base and "median_s" in base:
                ratio = f"{base['median_s'] / r['median_s']:.2f}× vs CPU"
        elif r["stage"].startswith("restorer"):
            base = by_key.get(("classical", "cpu", r["size"]))
            if base and "median_s" in base:
                ratio = f"{base['median_s'] / r['median_s']:.2f}× vs classical"
        if "stages" in r:
            note = ", ".join(f"{k} {v:.3f}s" for k, v in r["stages"].items())
        if "mask_fraction" in r:
            note = f"mask {100 * r['mask_fraction']:.1f} % of pixels"
        fps = "" if r["stage"] == "idle" else f"{1.0 / max(r['median_s'], 1e-9):.2f}"
        lines.append(f"| {r['stage']} | {r['device']} | {r['size']} | {r['median_s']:.4f} | {fps} | "
                     f"{r['peak_rss_mib']:.0f} | {ratio} | {note} |")
    return "\n".join(lines) + "\n"


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--stages", nargs="+", default=CPU_STAGES)
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    p.add_argument("--quick", action="store_true", help="sizes 256 512, 3 repeats")
    p.add_argument("--heavy-max-size", type=int, default=512,
                   help="largest size for the network stages on CPU (they take minutes beyond)")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("speed.md"))
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        stage, size, device, repeats = args.worker
        print(json.dumps(worker(stage, int(size), device, int(repeats))))
        return 0
    if args.quick:
        args.sizes, args.repeats = [256, 512], 3
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    devices = args.devices or (["cpu", "cuda"] if gpu else ["cpu"])
    load_before = _load()
    rows = []
    for device in devices:
        stages = args.stages if device == "cpu" else [s for s in args.stages if s in GPU_STAGES]
        for stage in stages:
            sizes = args.sizes if stage != "idle" else args.sizes[:1]
            if device == "cpu" and stage in HEAVY:
                sizes = [z for z in sizes if z <= args.heavy_max_size]
            for size in sizes:
                r = run_child(stage, size, device, args.repeats)
                r.update(stage=stage, size=size, device=device)
                rows.append(r)
                status = r.get("error") or f"{r['median_s']:.4f} s, {r['peak_rss_mib']:.0f} MiB"
                print(f"{stage:>20} {device:>4} {size:>5}: {status}", file=sys.stderr)
    meta = {"machine": f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)",
            "torch": torch.__version__, "threads": torch.get_num_threads(), "gpu": gpu,
            "repeats": args.repeats, "load_before": load_before, "load_after": _load(),
            "command": " ".join(["python", "benchmarks/bench_speed.py", *sys.argv[1:]])}
    text = render(rows, meta)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, args.out)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

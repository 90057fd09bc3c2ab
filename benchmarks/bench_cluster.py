"""Photos per second of ``oldphoto restore --ray`` with 1 and 2 restorer workers, against the local batch.

Starts a Ray cluster of a head and one more node on this machine (loopback, ``--node-cpus`` CPUs each,
``--gpus`` GPUs on the head), makes ``--photos`` photos of ``--size`` from examples/real_old, then times
the local batch and one cluster run per ``--workers`` value, each into a fresh folder, each a fresh
driver process as a user would start it.  The cluster figure is the driver's own (from connecting to the
cluster to the last photo written: actor start and model loading included, once per actor).

Usage::

    python benchmarks/bench_cluster.py --photos 40 --size 320x240 --workers 1 2 --out benchmarks/cluster.md
    python benchmarks/bench_cluster.py --gpus 1 --node-cpus 8 --size 2048x1536 --photos 200 --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _photos(folder: Path, count: int, size: tuple[int, int]) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    sources = sorted((ROOT / "examples" / "real_old").glob("*.png"))
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as im:
            im.convert("RGB").resize(size).save(folder / f"p{i:03d}.png")


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p))


def _run(argv: list[str], report: Path, **env: str) -> tuple[float, str, dict]:
    command = [sys.executable, "-m", "oldphoto.cli", "restore", "--no-progress", "--report", str(report),
               *argv]
    started = time.perf_counter()
    proc = subprocess.run(command, env=dict(_env(), **env), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stderr, json.loads(report.read_text())


def _busy(report: dict, seconds: float) -> dict:
    """Seconds spent on the photos (the report's, summed) and how many were worked on at once."""
    spent = sum(e["seconds"] for e in report["inputs"] if e["status"] == "ok")
    done = sum(1 for e in report["inputs"] if e["status"] == "ok")
    return {"seconds_per_photo": round(spent / max(done, 1), 2), "concurrency": round(spent / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--size", default="320x240", help="WxH of each photo")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--node-cpus", type=int, default=1, help="CPUs each of the two nodes offers Ray")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs the head node offers Ray")
    parser.add_argument("--options", default="--no-faces", help="restore options of every run")
    parser.add_argument("--no-local", action="store_true", help="skip the local batch")
    parser.add_argument("--local-threads", type=int, default=1,
                        help="torch threads of the local batch (1 = as one CPU actor)")
    parser.add_argument("--out", type=Path, help="write a Markdown table here (and .json beside it)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    options = args.options.split()

    # a short folder of its own (Ray's sockets live there): in the machine's /tmp/ray the benchmark's cluster
    # took the place of the address a `ray start` left there, and removed it on shutdown, so that a later
    # `oldphoto restore --ray` on a cluster's head found no cluster and restored on the head alone
    work = Path(tempfile.mkdtemp(prefix="opbench", dir="/tmp" if os.path.isdir("/tmp") else None))
    (work / "ray").mkdir()
    # loopback only, set before Ray is imported (it reads them once)
    os.environ.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                       "RAY_TMPDIR": str(work)})
    from ray.cluster_utils import Cluster

    rows = []
    load_before = os.getloadavg()
    nodes = None
    try:
        _photos(work / "in", args.photos, (width, height))
        if not args.no_local:
            threads = str(args.local_threads)
            elapsed, _, report = _run([str(work / "in"), "-o", str(work / "local"), *options],
                                      work / "local.json", OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
            rows.append({"run": "local batch", "workers": None, "seconds": round(elapsed, 2),
                         "photos_per_s": round(args.photos / elapsed, 3), **_busy(report, elapsed),
                         "note": f"whole process, torch on {threads} thread(s)", "load": os.getloadavg()[0]})
            print(rows[-1], flush=True)
        head = {"num_cpus": args.node_cpus, "num_gpus": args.gpus, "node_ip_address": "127.0.0.1",
                "include_dashboard": False, "temp_dir": str(work / "ray")}
        nodes = Cluster(initialize_head=True, head_node_args=head)
        nodes.add_node(num_cpus=args.node_cpus, num_gpus=0, node_ip_address="127.0.0.1")
        nodes.wait_for_nodes()
        for run, workers in enumerate(args.workers):
            out = work / f"ray{run}"  # a fresh folder each time: a second run into one would skip all
            argv = [str(work / "in"), "-o", str(out), *options, "--ray", nodes.address,
                    "--ray-workers", str(workers)]
            elapsed, log, report = _run(argv, work / f"ray{run}.json")
            match = re.search(r"cluster: (\d+) of \d+ photos in ([\d.]+) s", log)
            seconds = float(match.group(2)) if match else elapsed
            layout = re.search(r"Ray cluster: .*", log)
            rows.append({"run": "cluster", "workers": workers, "seconds": round(seconds, 2),
                         "photos_per_s": round(args.photos / seconds, 3), **_busy(report, seconds),
                         "note": layout.group(0) if layout else "", "load": os.getloadavg()[0]})
            print(rows[-1], flush=True)
    finally:
        if nodes is not None:
            nodes.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    one = next((r for r in rows if r["workers"] == 1), None)
    for row in rows:
        if one is not None and row["workers"]:
            row["speedup_vs_1_worker"] = round(row["photos_per_s"] / one["photos_per_s"], 2)
    meta = {"machine": f"{platform.machine()} ({os.cpu_count()} cores)", "photos": args.photos,
            "size": args.size, "options": args.options, "node_cpus": args.node_cpus, "gpus": args.gpus,
            "load_before": [round(v, 1) for v in load_before],
            "load_after": [round(v, 1) for v in load_after],
            "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}
    print(json.dumps(meta))
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        lines = [f"Machine: {meta['machine']}; load average before/after {meta['load_before']} / "
                 f"{meta['load_after']}; {args.photos} photos of {args.size}, options `{args.options}`; "
                 f"a cluster of two nodes with {args.node_cpus} CPU(s) each on this machine.",
                 "", f"Command: `python {meta['command']}`", "",
                 "| run | workers | seconds | photos/s | vs 1 worker | s per photo | photos at once | load "
                 "| note |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for row in rows:
            lines.append(f"| {row['run']} | {row['workers'] or ''} | {row['seconds']} | "
                         f"{row['photos_per_s']} | {row.get('speedup_vs_1_worker', '')} | "
                         f"{row['seconds_per_photo']} | {row['concurrency']} | {row['load']:.1f} | "
                         f"{row['note']} |")
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

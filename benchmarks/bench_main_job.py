"""The README's main job (``oldphoto restore examples/solvay_1927.jpg``) timed stage by stage, for one or
more source trees in the same run (before/after ratios on a shared machine).

Each variant runs in a fresh process (``PYTHONPATH=<src>``): the child times its imports, building the
Restorer, the restoration (``Result.timings``: defects, restore, repair, faces) and the whole run from
process start to the first restored photo, and saves the restored pixels so that the parent can compare
the variants' outputs (max / mean absolute difference against the first variant).  Variants alternate
over ``--repeats`` rounds (A B A B ...) so that load changes hit all of them alike.

Usage::

    mkdir -p /tmp/before && git archive main src | tar -x -C /tmp/before     # the "before" tree
    python benchmarks/bench_main_job.py --src /tmp/before/src src --repeats 2 --options --no-faces
    python benchmarks/bench_main_job.py --src src --options --scratches off --faces off
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "solvay_1927.jpg"


def child(photo: Path, options: list[str], save: Path | None) -> None:
    t0 = time.perf_counter()
    import argparse as ap

    import numpy as np

    from oldphoto.io import read_photo
    from oldphoto.pipeline import RestoreOptions, Restorer
    imports = time.perf_counter() - t0

    parser = ap.ArgumentParser()
    RestoreOptions.add_arguments(parser)
    opts = RestoreOptions.from_args(parser.parse_args(options))
    t = time.perf_counter()
    restorer = Restorer(opts)
    setup = time.perf_counter() - t
    t = time.perf_counter()
    for role in restorer.required_roles():  # loaded up front so that the stages' timings exclude it
        restorer.model(role)
    load = time.perf_counter() - t
    pixels = read_photo(photo).pixels
    t = time.perf_counter()
    result = restorer.restore(pixels)
    total = time.perf_counter() - t
    if save is not None:
        np.save(save, result.image)
        np.save(save.with_suffix(".mask.npy"), np.zeros(pixels.shape[:2], bool) if result.mask is None
                else result.mask)
    # process start -> first restored photo (the interpreter's own start is before t0; add it from ps)
    print(json.dumps({"imports": imports, "setup": setup, "load": load, "restore_total": total,
                      "timings": result.timings,
                      "path": result.path, "to_first_photo": time.perf_counter() - t0,
                      "threads": __import__("torch").get_num_threads()}))


def run(src: str, photo: Path, options: list[str], save: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(src).resolve()))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(photo), "--save", str(save), "--options",
                           *options], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{src}: child failed\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["process_wall"] = wall
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", nargs="+", default=["src"], help="source trees to compare (first = reference)")
    ap.add_argument("--photo", type=Path, default=PHOTO)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--options", nargs=argparse.REMAINDER, default=[],
                    help="oldphoto restore options (the rest of the command line)")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.options, args.save)
        return

    import numpy as np

    rows: dict[str, list[dict]] = {s: [] for s in args.src}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        outs = {s: Path(tmp) / f"out{i}.npy" for i, s in enumerate(args.src)}
        for _ in range(args.repeats):
            for s in args.src:
                rows[s].append(run(s, args.photo, args.options, outs[s]))
                load.append(os.getloadavg()[0])
        ref = np.load(outs[args.src[0]])
        ref_mask = np.load(outs[args.src[0]].with_suffix(".mask.npy"))
        diffs = {}
        for s in args.src:
            d = np.abs(np.load(outs[s]).astype(np.float64) - ref)
            mask = np.load(outs[s].with_suffix(".mask.npy"))
            mask_changed = int((mask != ref_mask).sum())
            # max, mean, fraction of pixels off by more than one 8-bit level, defect-mask pixels changed
            off = float((d.max(axis=2) > 1 / 255).mean())
            diffs[s] = (float(d.max()), float(d.mean()), off, mask_changed)

    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"load {min(load):.1f}-{max(load):.1f}; photo {args.photo.name}; options: {' '.join(args.options)}")
    keys = ["imports", "setup", "load", "defects", "restore", "repair", "faces", "restore_total",
            "process_wall"]
    print("| source | path | " + " | ".join(keys)
          + " | max abs diff | mean abs diff | pixels > 1/255 | mask pixels changed |")
    print("|---" * (len(keys) + 6) + "|")
    summary = {}
    for s, rs in rows.items():
        def med(k: str, rs=rs) -> float:
            vals = [r.get(k, r["timings"].get(k, 0.0)) for r in rs]
            return statistics.median(vals)
        summary[s] = {k: med(k) for k in keys} | {"diff": diffs[s], "path": rs[0]["path"]}
        print(f"| {s} | {rs[0]['path']} | " + " | ".join(f"{med(k):.2f}" for k in keys)
              + f" | {diffs[s][0]:.2e} | {diffs[s][1]:.2e} | {diffs[s][2] * 100:.3f} % | {diffs[s][3]} |")
    ref = summary[args.src[0]]
    for s in args.src[1:]:
        print(f"{s}: restore_total ratio {summary[s]['restore_total'] / ref['restore_total']:.3f}, "
              f"process ratio {summary[s]['process_wall'] / ref['process_wall']:.3f} vs {args.src[0]}")
    if args.json:
        record = {"rows": rows, "summary": summary, "options": args.options}
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()

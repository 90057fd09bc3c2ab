"""Our default pipeline against a plain eager fp32 chain of the same bundled networks, in one run.

The official code cannot run here, so its computation is reproduced with the bundled modules as loaded
(no inference form, no tiling): detector on the whole gray photo, then VAE_A encoder → quality mapping →
VAE_B decoder on the whole photo, in ``torch.inference_mode``, fp32, eager.  Rows, per size:

* ``chain``: that plain chain (the reference, ratio 1.00);
* ``chain+prepare``: the same chain after :func:`oldphoto.nets.inference.prepare` (channels-last, the
  group-norm instance norm, BatchNorm folding): what the inference form gains on its own;
* ``chain+compile``: ``--compile``: the prepared chain under ``torch.compile`` (compile time excluded);
* ``pipeline``: ``Restorer().restore()`` with the default options (what ``oldphoto restore`` runs);
* ``pipeline scratches on``: the same with ``--scratches on``: whatever the detector keeps is repaired
  (``auto`` repairs only photos with real evidence of damage, and the resized Solvay photo has none), so
  this row measures what a scratched photo's repair stage costs;
* ``pipeline fidelity 0``: the same with ``--fidelity 0``: the networks' restoration itself runs
  (the bundled weights' card sets fidelity 1, where the quality path is not run at all);

The photo is ``examples/solvay_1927.jpg`` resized to each size (a real old photo without scratches: the
default pipeline takes the quality path; ``pipeline scratches on`` repairs what the detector flags).
Each row: median of ``--repeats`` runs after one warm-up (``--repeats 0``: the warm-up is the
measurement), all rows of one size in the same process, rows interleaved repeat by repeat.  The repair
stage has no counterpart in the chain: the table also gives each pipeline row without it (its repair
time subtracted).

Usage::

    python benchmarks/bench_cpu_chain.py --sizes 512 1024 2048 --repeats 3 --out benchmarks/cpu_chain.md
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

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "solvay_1927.jpg"
ROWS = ["chain", "chain+prepare", "chain+compile", "pipeline", "pipeline scratches on", "pipeline fidelity 0"]


def _photo(size: int):
    import cv2

    from oldphoto.io import read_photo

    pixels = read_photo(PHOTO).pixels
    return cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA if size < 1024 else cv2.INTER_CUBIC
                      ).clip(0, 1)


def _chain(models: dict):
    """The official stage-1 computation on whole images: detector probabilities, then the quality path."""
    import torch
    import torch.nn.functional as F

    from oldphoto.stages.tone import luma

    def run(image):
        with torch.inference_mode():
            gray = torch.from_numpy(luma(image).copy())[None, None] * 2 - 1
            h, w = gray.shape[-2:]
            g = F.pad(gray, (0, -w % 16, 0, -h % 16), mode="reflect")
            prob = torch.sigmoid(models["detector"](g))[..., :h, :w]
            x = torch.from_numpy(image.transpose(2, 0, 1).copy())[None] * 2 - 1
            x = F.pad(x, (0, -w % 4, 0, -h % 4), mode="reflect")
            y = models["vae_b_quality"].decoder(models["mapping_quality"](models["vae_a"].encoder(x)))
            return prob, y[..., :h, :w]

    return run


def child(size: int, repeats: int, rows: list[str], threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from oldphoto.nets.inference import InferenceOptions, prepare
    from oldphoto.pipeline import Restorer
    from oldphoto.weights import load_model

    roles = ["detector", "vae_a", "mapping_quality", "vae_b_quality"]
    image = _photo(size)
    fns = {}
    if "chain" in rows:
        fns["chain"] = _chain({r: load_model(r) for r in roles})
    if "chain+prepare" in rows or "chain+compile" in rows:
        prepared = {r: prepare(load_model(r), InferenceOptions.for_device("cpu"), owned=True) for r in roles}
        if "chain+prepare" in rows:
            fns["chain+prepare"] = _chain(prepared)
        if "chain+compile" in rows:
            fns["chain+compile"] = _chain({r: torch.compile(m, dynamic=False) for r, m in prepared.items()})
    if "pipeline" in rows:
        fns["pipeline"] = Restorer().restore
    if "pipeline scratches on" in rows:
        fns["pipeline scratches on"] = Restorer(scratches="on").restore
    if "pipeline fidelity 0" in rows:
        fns["pipeline fidelity 0"] = Restorer(fidelity=0.0).restore
    times: dict[str, list[float]] = {k: [] for k in fns}
    bare: dict[str, list[float]] = {k: [] for k in fns}  # each run's seconds without its repair stage
    notes: dict[str, str] = {}
    for name, fn in fns.items():  # warm-up (and compilation), timed apart; --repeats 0: the only run
        t = time.perf_counter()
        out = fn(image)
        first = time.perf_counter() - t
        notes[name] = f"first run {first:.1f} s"
        if repeats == 0:
            times[name].append(first)
            bare[name].append(first - getattr(out, "timings", {}).get("repair", 0.0))
        if hasattr(out, "timings"):
            notes[name] += ", " + ", ".join(f"{k} {v:.1f} s" for k, v in out.timings.items())
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            out = fn(image)
            times[name].append(time.perf_counter() - t)
            bare[name].append(times[name][-1] - getattr(out, "timings", {}).get("repair", 0.0))
    print(json.dumps({"size": size, "times": times, "notes": notes, "bare": bare,
                      "threads": torch.get_num_threads()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", type=int, default=[512, 1024, 2048])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rows", nargs="+", default=[r for r in ROWS if r != "chain+compile"], choices=ROWS)
    ap.add_argument("--compile", action="store_true", help="add the torch.compile row")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, help="write the Markdown table here (the rows as .json)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    rows = list(args.rows) + (["chain+compile"] if args.compile and "chain+compile" not in args.rows else [])
    if args.child:
        child(args.child, args.repeats, rows, args.threads)
        return

    import torch

    results = []
    load = [os.getloadavg()[0]]
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--child", str(size), "--repeats", str(args.repeats),
               "--rows", *rows]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
        load.append(os.getloadavg()[0])
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"size {size} failed")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(results[-1], file=sys.stderr)

    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
             f"{results[0]['threads']} threads; load average {min(load):.1f}–{max(load):.1f} during the run "
             "(a shared machine: compare rows of one size only).",
             "",
             "Command: `python benchmarks/bench_cpu_chain.py " + " ".join(sys.argv[1:]) + "`",
             "",
             "| size | row | median s | ratio vs chain | without repair: s, ratio | runs "
             "| first run, stages |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        base = statistics.median(r["times"]["chain"]) if r["times"].get("chain") else None
        for name, ts in r["times"].items():
            med = statistics.median(ts)
            ratio = f"{med / base:.2f}" if base else ""
            # the repair stage (inpainting the defects the detector found) has no counterpart in the chain
            bare = ""
            if name.startswith("pipeline"):
                s = statistics.median(r["bare"][name])
                bare = f"{s:.2f}, {s / base:.2f}" if base else f"{s:.2f}"
            lines.append(f"| {r['size']}² | {name} | {med:.2f} | {ratio} | {bare} | {len(ts)} | "
                         f"{r['notes'][name]} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.write_text(table)
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Peak memory and time of the official-size ScratchMapping forward: chunked vs dense partial nonlocal.

Each configuration runs in a fresh child process (so ``ru_maxrss`` is that configuration's own peak):
the child builds the official-size network (51.3 M parameters, RANDOM weights: this measures cost,
not quality), a latent of the photo size / 4 and a full-resolution scratch mask, then times one
fp32 ``torch.no_grad()`` forward.

    python benchmarks/bench_nonlocal.py                       # 256², 512² both paths, 1024² chunked
    python benchmarks/bench_nonlocal.py --photos 2048 --modes chunked --append   # the big one (long)

Writes a Markdown table to benchmarks/nonlocal.md (``--out``); with ``--append`` rows are added to the
existing table. Rows are written as soon as each configuration finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMANDS = "\n## Commands\n\n"
HEADER = ("| photo | latent N | path | chunk rows | forward s | peak RSS GiB | RSS before forward GiB "
          "| dense N×N matrix GiB |\n|---|---|---|---|---|---|---|---|\n")


def _child(photo: int, mode: str, chunk_mib: int) -> None:
    import torch

    from oldphoto.nets.mapping import ScratchMapping, attention_chunk_rows

    torch.manual_seed(0)
    net = ScratchMapping().eval()
    net.NL.dense = mode == "dense"
    net.NL.chunk_bytes = chunk_mib * 2**20
    side = photo // 4
    z = torch.randn(1, 64, side, side)
    mask = torch.zeros(1, 1, photo, photo)
    # A few scratches (about 2% of the pixels) so the attention really runs (an all-clean mask skips it).
    for k in range(8):
        c = (k * 2 + 1) * photo // 17
        mask[..., :, c:c + max(1, photo // 400)] = 1
    mask[..., photo // 3: photo // 3 + 2, :] = 1
    with torch.no_grad():  # warm-up (oneDNN primitive creation) on a small input, not timed
        net(torch.randn(1, 64, 16, 16), mask[..., :64, :64])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = side * side
    rows = n if mode == "dense" else min(n, attention_chunk_rows(n, 1, 4, net.NL.chunk_bytes))
    with torch.no_grad():
        t0 = time.perf_counter()
        out = net(z, mask)
        seconds = time.perf_counter() - t0
    assert torch.isfinite(out).all()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"photo": photo, "n": n, "mode": mode, "rows": rows, "seconds": seconds,
                      "peak_gib": peak / 2**20, "before_gib": rss_before / 2**20,
                      "dense_matrix_gib": 4 * n * n / 2**30}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default="256,512,1024", help="comma-separated square photo sizes")
    parser.add_argument("--modes", default="chunked,dense", help="chunked and/or dense")
    parser.add_argument("--dense-max", type=int, default=512, help="largest photo for the dense path")
    parser.add_argument("--chunk-mib", type=int, default=256, help="PartialNonLocal.chunk_bytes in MiB")
    parser.add_argument("--out", type=Path, default=HERE / "nonlocal.md")
    parser.add_argument("--append", action="store_true", help="add rows to an existing table")
    parser.add_argument("--child", nargs=3, metavar=("PHOTO", "MODE", "CHUNK_MIB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(int(args.child[0]), args.child[1], int(args.child[2]))
        return 0

    import torch

    command = "python benchmarks/bench_nonlocal.py " + " ".join(sys.argv[1:])
    if args.append and args.out.exists():
        table, _, commands = args.out.read_text().partition(COMMANDS)
    else:
        table = (
            "# Partial nonlocal: chunked vs dense (official-size ScratchMapping forward)\n\n"
            f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores **shared with other engineers' "
            f"jobs** (timings are noisy and pessimistic), torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, fp32, `torch.no_grad()`, random weights, batch 1, ~2% of "
            "the pixels masked. Each row is a fresh subprocess; peak RSS = its `ru_maxrss` (includes the "
            "~0.2 GiB of weights and the Python/torch baseline). Dense N×N matrix = one float32 N×N "
            "buffer; the official block holds three of them at once, our dense reference two.\n\n" + HEADER)
        commands = ""
    commands += f"- `{command}`\n"

    def save() -> None:
        args.out.write_text(table + COMMANDS + commands)

    save()
    for photo in [int(p) for p in args.photos.split(",")]:
        for mode in args.modes.split(","):
            if mode == "dense" and photo > args.dense_max:
                continue
            env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
            child = [sys.executable, __file__, "--child", str(photo), mode, str(args.chunk_mib)]
            proc = subprocess.run(child, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                row = f"| {photo}² | | {mode} | | failed (rc {proc.returncode}) | | | |\n"
                print(proc.stderr[-2000:], file=sys.stderr)
            else:
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                row = (f"| {photo}² | {r['n']} | {mode} | {r['rows']} | {r['seconds']:.1f} "
                       f"| {r['peak_gib']:.2f} | {r['before_gib']:.2f} | {r['dense_matrix_gib']:.2f} |\n")
            print(row, end="", flush=True)
            table += row
            save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

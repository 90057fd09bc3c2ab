"""Peak memory and time of the official-size ScratchMapping forward: chunked vs dense partial nonlocal.

Each configuration runs in a fresh child process (so ``ru_maxrss`` is that configuration's own peak):
the child builds the official-size network (51.3 M parameters, RANDOM weights: this measures cost,
not quality), a latent of the photo size / 4 and a full-resolution scratch mask, then times one
fp32 ``torch.no_grad()`` forward. Wall time AND the child's CPU time (user + sys) are reported: on a
shared machine the CPU time is the steadier number.

    python benchmarks/bench_nonlocal.py                       # 256², 512² both paths
    python benchmarks/bench_nonlocal.py --photos 2048 --modes chunked --append --timeout-min 40
    python benchmarks/bench_nonlocal.py --photos 2048 --modes chunked --append --sample-chunks 24

``--sample-chunks K`` computes only the first K attention chunks (the rest return zeros of the same
shape, so the allocation pattern and the whole-forward peak RSS are real) and extrapolates their time;
the row says so. On an idle machine run it without: the full 2048² forward is ~170 TFLOP.

A child that runs past ``--timeout-min`` is stopped; its row then reports the progress it logged
(stages finished, attention chunks done, peak RSS so far) and an extrapolation of the attention time,
marked as such. Writes benchmarks/nonlocal.md (``--out``); rows appear as each configuration finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMANDS = "\n## Commands\n\n"
HEADER = ("| photo | latent N | path | chunk rows | forward wall s | forward CPU s | peak RSS GiB "
          "| RSS before forward GiB | dense N×N matrix GiB | notes |\n"
          "|---|---|---|---|---|---|---|---|---|---|\n")


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def _child(photo: int, mode: str, chunk_mib: int, progress: Path | None, sample_chunks: int) -> None:
    import torch

    import oldphoto.nets.mapping as mapping

    torch.manual_seed(0)
    net = mapping.ScratchMapping().eval()
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
    n = side * side
    rows = n if mode == "dense" else min(n, mapping.attention_chunk_rows(n, 1, 4, net.NL.chunk_bytes))
    n_chunks = -(-n // rows)
    start = {"wall": 0.0, "cpu": 0.0}

    def log(event: str, **extra) -> None:
        if progress is not None:
            with progress.open("a") as f:
                f.write(json.dumps({"event": event, "wall": time.perf_counter() - start["wall"],
                                    "cpu": _cpu_seconds() - start["cpu"], "peak_gib": _peak_gib(),
                                    "n_chunks": n_chunks, **extra}) + "\n")

    # Progress instrumentation (benchmark only): count attention chunks and log stage ends.
    # With sample_chunks > 0 only the first chunks are computed; the others return zeros of the same
    # shape (same allocation pattern, so the whole-forward peak RSS is still measured) and their time is
    # extrapolated from the computed ones.
    original = mapping._attend_rows
    done = {"chunks": 0, "wall": 0.0, "cpu": 0.0}

    def counted(theta_rows, phi, g, key_mask):
        done["chunks"] += 1
        if sample_chunks and done["chunks"] > sample_chunks:
            return theta_rows.new_zeros(theta_rows.shape[0], theta_rows.shape[1], g.shape[2])
        t0, c0 = time.perf_counter(), _cpu_seconds()
        out = original(theta_rows, phi, g, key_mask)
        done["wall"] += time.perf_counter() - t0
        done["cpu"] += _cpu_seconds() - c0
        if done["chunks"] in (1, 2) or done["chunks"] % 16 == 0:
            log("chunk", chunks=done["chunks"])
        return out

    mapping._attend_rows = counted
    for name in ("before_NL", "NL", "after_NL"):
        getattr(net, name).register_forward_hook(lambda *_, name=name: log(f"end {name}"))

    rss_before = _peak_gib()
    with torch.no_grad():
        start["wall"], start["cpu"] = time.perf_counter(), _cpu_seconds()
        out = net(z, mask)
        seconds, cpu = time.perf_counter() - start["wall"], _cpu_seconds() - start["cpu"]
    assert torch.isfinite(out).all()
    computed = min(done["chunks"], sample_chunks) if sample_chunks else done["chunks"]
    skipped = done["chunks"] - computed
    note = ""
    if skipped:
        seconds += skipped * done["wall"] / computed
        cpu += skipped * done["cpu"] / computed
        note = (f"{computed} of {done['chunks']} attention chunks computed, the other {skipped} replaced by "
                f"zeros and their time extrapolated (one chunk: {done['wall'] / computed:.1f} s wall, "
                f"{done['cpu'] / computed:.1f} s CPU); everything else measured, peak RSS over the "
                "whole forward")
    print(json.dumps({"photo": photo, "n": n, "mode": mode, "rows": rows, "seconds": seconds, "cpu": cpu,
                      "note": note,
                      "peak_gib": _peak_gib(), "before_gib": rss_before,
                      "dense_matrix_gib": 4 * n * n / 2**30}))


def _unfinished_row(photo: int, mode: str, minutes: float, progress: Path) -> str:
    """Row for a child stopped at the timeout, from its progress log (clearly marked as partial)."""
    events = [json.loads(line) for line in progress.read_text().splitlines()] if progress.exists() else []
    if not events:
        return f"| {photo}² | | {mode} | | stopped after {minutes:g} min, no progress logged | | | | | |\n"
    last = events[-1]
    n = (photo // 4) ** 2
    before = next((e for e in events if e["event"] == "end before_NL"), None)
    chunk_events = [e for e in events if e["event"] == "chunk"]
    note = f"STOPPED after {minutes:g} min (not finished): last event '{last['event']}'"
    if before and len(chunk_events) >= 2:
        first, latest = chunk_events[0], chunk_events[-1]
        k = latest["chunks"] - first["chunks"]
        per_wall = (latest["wall"] - first["wall"]) / k
        per_cpu = (latest["cpu"] - first["cpu"]) / k
        total = last["n_chunks"]
        note += (f", {latest['chunks']}/{total} attention chunks done; before_NL took {before['wall']:.0f} s "
                 f"wall / {before['cpu']:.0f} s CPU; one chunk {per_wall:.1f} s wall / {per_cpu:.1f} s CPU → "
                 f"all chunks ≈ {per_wall * total / 60:.1f} min wall / {per_cpu * total / 60:.1f} min CPU "
                 "(extrapolated)")
    rows = last["n_chunks"] and -(-n // last["n_chunks"])
    return (f"| {photo}² | {n} | {mode} | {rows} | > {last['wall']:.0f} | > {last['cpu']:.0f} "
            f"| ≥ {last['peak_gib']:.2f} (so far) | | {4 * n * n / 2**30:.2f} | {note} |\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default="256,512", help="comma-separated square photo sizes")
    parser.add_argument("--modes", default="chunked,dense", help="chunked and/or dense")
    parser.add_argument("--dense-max", type=int, default=512, help="largest photo for the dense path")
    parser.add_argument("--chunk-mib", type=int, default=256, help="PartialNonLocal.chunk_bytes in MiB")
    parser.add_argument("--timeout-min", type=float, default=None, help="stop a child after this long")
    parser.add_argument("--out", type=Path, default=HERE / "nonlocal.md")
    parser.add_argument("--append", action="store_true", help="add rows to an existing table")
    parser.add_argument("--sample-chunks", type=int, default=0,
                        help="compute only this many attention chunks, extrapolate the rest (0 = all)")
    parser.add_argument("--child", nargs=5, metavar=("PHOTO", "MODE", "CHUNK_MIB", "PROGRESS", "SAMPLE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        photo, mode, chunk_mib, progress, sample = args.child
        _child(int(photo), mode, int(chunk_mib), Path(progress) if progress != "-" else None, int(sample))
        return 0

    import torch

    command = "python benchmarks/bench_nonlocal.py " + " ".join(sys.argv[1:])
    if args.append and args.out.exists():
        table, _, commands = args.out.read_text().partition(COMMANDS)
    else:
        table = (
            "# Partial nonlocal: chunked vs dense (official-size ScratchMapping forward)\n\n"
            f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores **shared with other engineers' "
            f"jobs** (wall times are noisy and pessimistic; CPU s = the child's user+sys time), torch "
            f"{torch.__version__}, {torch.get_num_threads()} threads, fp32, `torch.no_grad()`, random "
            "weights, batch 1, ~2% of the pixels masked. Each row is a fresh subprocess; peak RSS = its "
            "`ru_maxrss` (includes the ~0.2 GiB of weights and the Python/torch baseline). Dense N×N "
            "matrix = one float32 N×N buffer; the official block holds three of them at once, our dense "
            "reference two.\n\n" + HEADER)
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
            with tempfile.TemporaryDirectory() as tmp:
                progress = Path(tmp) / "progress.jsonl"
                child = [sys.executable, __file__, "--child", str(photo), mode, str(args.chunk_mib),
                         str(progress), str(args.sample_chunks)]
                timeout = args.timeout_min * 60 if args.timeout_min else None
                try:
                    proc = subprocess.run(child, capture_output=True, text=True, env=env, timeout=timeout)
                except subprocess.TimeoutExpired:
                    row = _unfinished_row(photo, mode, args.timeout_min, progress)
                else:
                    if proc.returncode != 0:
                        row = f"| {photo}² | | {mode} | | failed (rc {proc.returncode}) | | | | | |\n"
                        print(proc.stderr[-2000:], file=sys.stderr)
                    else:
                        r = json.loads(proc.stdout.strip().splitlines()[-1])
                        row = (f"| {photo}² | {r['n']} | {mode} | {r['rows']} | {r['seconds']:.1f} "
                               f"| {r['cpu']:.1f} | {r['peak_gib']:.2f} | {r['before_gib']:.2f} "
                               f"| {r['dense_matrix_gib']:.2f} | {r['note']} |\n")
            print(row, end="", flush=True)
            table += row
            save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

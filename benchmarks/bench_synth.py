"""Speed of the degradation synthesis per 256² training sample (torch-free, single process).

Writes benchmarks/synth.md.  Baseline = the released code's online degradation (our ``apply_unstructured``,
paper ops only); every other row is given as a ratio to it, measured in the same run.

    python benchmarks/bench_synth.py [--n 200] [--size 256]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from oldphoto.synth import DegradeConfig, degrade
from oldphoto.synth import oldlook as O
from oldphoto.synth import structured as S
from oldphoto.synth.unstructured import apply_unstructured


def _photo(size: int) -> np.ndarray:
    import skimage

    img = cv2.imread(str(Path(skimage.__file__).parent / "data" / "astronaut.png"))[:, :, ::-1]
    return np.ascontiguousarray(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)).astype(
        np.float32) / 255.0


def _time(fn, n: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call.  CPU time of this process is what an idle core would take; on the shared
    machine the wall time also counts waiting for a core."""
    rng = np.random.default_rng(0)
    fn(rng)  # warm-up (texture cache, OpenCV init)
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        fn(rng)
    return (time.process_time() - c0) / n * 1000.0, (time.perf_counter() - t0) / n * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("synth.md"))
    args = ap.parse_args()
    cv2.setNumThreads(1)
    img = _photo(args.size)
    rows = [
        ("baseline: unstructured ops (released-code equivalent)", lambda r: apply_unstructured(img, r)),
        ("degrade, kind=mixed (default)", lambda r: degrade(img, r)),
        ("degrade, kind=unstructured", lambda r: degrade(img, r, DegradeConfig(kind="unstructured"))),
        ("degrade, kind=structured", lambda r: degrade(img, r, DegradeConfig(kind="structured"))),
        ("degrade, every defect on (p=1)", lambda r: degrade(img, r, DegradeConfig(
            p_scratch=1, p_dust=1, p_hole=1, p_crease=1, p_grain=1, p_fade=1, p_yellow=1, p_vignette=1))),
        ("scratches", lambda r: S.scratches(img, r)),
        ("dust", lambda r: S.dust(img, r)),
        ("holes", lambda r: S.holes(img, r)),
        ("crease", lambda r: S.crease(img, r)),
        ("film grain", lambda r: S.film_grain(img, r)),
        ("paper surface", lambda r: S.paper_surface(img, r)),
        ("fade", lambda r: O.fade(img, r)),
    ]
    results = [(name, *_time(fn, args.n)) for name, fn in rows]
    base = results[0][1]
    load = os.getloadavg()[0]
    lines = [
        "# Synthesis speed",
        "",
        f"`python benchmarks/bench_synth.py --n {args.n} --size {args.size}`; {args.size}² float32 crop, "
        f"OpenCV single-threaded, one process; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}. Shared machine, load average {load:.1f} during the run: "
        "CPU ms (process time) is what one free core takes; wall ms includes waiting for a core.",
        "",
        "| operation | CPU ms / sample | wall ms / sample | × baseline (CPU) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {cpu:.2f} | {wall:.2f} | {cpu / base:.2f} |" for name, cpu, wall in results]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""benchmarks/gpu_bench.py runs every row end to end (tiny sizes, CPU), so the GPU run cannot fail on a
typo: each row must produce a time, and the files must be written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_bench_smoke_runs_every_row(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), "--smoke", "--device", "cpu",
           "--precisions", "fp32", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    record = json.loads((tmp_path / "gpu_bench.json").read_text())
    kinds = {r["row"] for r in record["rows"]}
    assert kinds == {"quality", "scratch", "upscale", "folder"}
    for row in record["rows"]:
        assert row.get("seconds", 0) > 0, row
    folder = next(r for r in record["rows"] if r["row"] == "folder")
    assert folder["exit_code"] == 0 and folder["photos_per_s"] > 0
    scratch = next(r for r in record["rows"] if r["row"] == "scratch")
    # the path the full 4096×3072 row takes (--hr-above scaled down with the photo)
    assert scratch["path"] == "hr" and "repair" in scratch["stages"]
    upscale = next(r for r in record["rows"] if r["row"] == "upscale")
    assert upscale["stages"]["upscale"] > 0
    assert "| quality |" in (tmp_path / "gpu_bench.md").read_text()


def _bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_full_scratch_row_takes_the_hr_path_and_the_table_says_so():
    """4096×3072 is above --hr-above (4 MP): the full run's scratch row measures the HR path (the smoke
    row takes it too, its --hr-above scaled with the photo), so the table names the path; on CUDA it also
    says what fp32 is."""
    from oldphoto.pipeline import Restorer

    bench = _bench_module()
    w, h = bench.FULL["scratch"]
    assert Restorer(scratches="on", faces=False, device="cpu")._repair_path((h, w)) == "hr"
    meta = {"device": "cuda", "gpu": "H200", "cuda": "13.0", "torch": "2.11", "cpus": 16, "smoke": False,
            "command": "gpu_bench.py", "tf32": {"cudnn": True, "matmul": False}}
    rows = [{"row": "scratch", "size": f"{w}x{h}", "precision": "fp32", "seconds": 2.0, "path": "hr"},
            {"row": "scratch", "size": f"{w}x{h}", "precision": "bf16", "seconds": 1.0, "path": "hr"}]
    text = bench.render(meta, rows)
    assert "| scratch (hr path) | 4096x3072 | bf16 | 1.000 | 2.00x |" in text
    assert "TF32 convolutions on, TF32 matrix products off" in text
    cpu = {k: v for k, v in meta.items() if k not in ("tf32", "gpu", "cuda")} | {"device": "cpu"}
    assert "TF32" not in bench.render(cpu, rows)

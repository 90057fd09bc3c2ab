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
    assert scratch["path"] == "scratch" and "repair" in scratch["stages"]
    upscale = next(r for r in record["rows"] if r["row"] == "upscale")
    assert upscale["stages"]["upscale"] > 0
    assert "| quality |" in (tmp_path / "gpu_bench.md").read_text()

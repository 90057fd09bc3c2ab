"""The --report as a script ingesting a batch into an archive's catalogue reads it (docs/files-and-batches.md,
"Report"): every output linked to its mask and to what was done, also in a rerun that skips everything."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from oldphoto import batch
from oldphoto.batch import BatchConfig, collect_inputs, run_batch
from oldphoto.io import read_provenance


@dataclass
class Repaired:
    image: np.ndarray
    mask: np.ndarray | None = None
    faces: list = field(default_factory=list)
    models: dict = field(default_factory=lambda: {"fake": "invert 0123456789ab"})
    path: str = "scratch"
    fidelity: float | None = 1.0
    defects: object = None


def _restore(pixels, mask):
    repaired = np.zeros(pixels.shape[:2], bool)
    repaired[:2] = True
    return Repaired(1.0 - pixels, repaired)


def _run(argv) -> int:
    parser = argparse.ArgumentParser()
    batch.register(parser.add_subparsers())
    args = parser.parse_args(["restore", "--no-progress", *argv])
    return batch.main(args, restore=_restore, stream=io.StringIO())


def _photos(src: Path) -> None:
    src.mkdir(parents=True)
    Image.new("RGB", (12, 8), (30, 90, 200)).save(src / "a.png")
    Image.new("RGB", (12, 8), (200, 90, 30)).save(src / "b.jpg")


def test_a_rerun_that_skips_everything_still_links_each_output_to_its_mask_and_what_was_done(tmp_path):
    # found by the DAM integrator's review: the nightly job's rerun rewrote the report with "mask": null,
    # "restoration": null and no models for every skipped photo, though the masks and the outputs' records
    # were there: a script ingesting that report lost each photo's mask and what was repaired
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    _photos(src)
    assert _run([str(src), "-o", str(out), "--save-mask", "--report", str(report)]) == 0
    first = {e["input"]: e for e in json.loads(report.read_text())["inputs"]}
    assert _run([str(src), "-o", str(out), "--save-mask", "--report", str(report)]) == 0
    again = {e["input"]: e for e in json.loads(report.read_text())["inputs"]}
    assert set(again) == set(first) and len(first) == 2
    for name, entry in again.items():
        assert entry["status"] == "skipped" and entry["output"] == first[name]["output"]
        assert entry["mask"] == first[name]["mask"] and Path(entry["mask"]).is_file()
        assert entry["restoration"] == first[name]["restoration"] == read_provenance(entry["output"])[
            "restoration"]
        assert entry["models"] == first[name]["models"] == {"fake": "invert 0123456789ab"}
        assert entry["sha256"] == first[name]["sha256"]


def test_a_mask_not_made_from_this_source_is_not_linked(tmp_path):
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    _photos(src)
    assert _run([str(src), "-o", str(out), "--report", str(report)]) == 0
    Image.new("L", (12, 8)).save(out / "a.mask.png")  # someone's own file at the mask's name
    assert _run([str(src), "-o", str(out), "--report", str(report)]) == 0
    entries = {Path(e["input"]).name: e for e in json.loads(report.read_text())["inputs"]}
    assert entries["a.png"]["status"] == "skipped" and entries["a.png"]["mask"] is None
    assert entries["a.png"]["restoration"]["path"] == "scratch"


def test_the_report_says_its_format_its_folder_its_options_and_each_inputs_hash(tmp_path, monkeypatch):
    # found by the DAM integrator's review: no version to check a report's layout against, no word of what
    # its relative paths are relative to (the folder the batch ran in), no options, no input hash to link
    # an output to the original's record by, and offsets without the colon RFC 3339 (and JSON tools) want
    monkeypatch.chdir(tmp_path)
    _photos(Path("in"))
    jobs, pre = collect_inputs(["in"])
    options = {"scratches": "auto", "faces": None}
    report = run_batch(jobs, _restore, BatchConfig(outdir=Path("out"), options=options), pre_entries=pre)
    report.write(Path("report.json"))
    data = json.loads(Path("report.json").read_text())
    assert data["report_format"] == 1
    assert data["directory"] == os.getcwd() and Path(data["directory"]).is_absolute()
    assert data["options"] == options == read_provenance("out/a.png")["options"]
    for entry in data["inputs"]:
        source = Path(data["directory"]) / entry["input"]
        assert entry["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        output = Path(data["directory"]) / entry["output"]
        assert entry["sha256"] == read_provenance(output)["source"]["sha256"]
    for key in ("started", "finished"):
        assert data[key][-3] == ":" and dt.datetime.fromisoformat(data[key]).utcoffset() is not None

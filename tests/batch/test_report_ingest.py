"""The --report as a script ingesting a batch into an archive's catalogue reads it (docs/files-and-batches.md,
"Report"): every output linked to its mask and to what was done, also in a rerun that skips everything."""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import hashlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from batch_support import FakeResult
from PIL import Image

from oldphoto import batch
from oldphoto.batch import FAILED, OK, BatchConfig, Entry, ReasonCode, collect_inputs, mask_files, run_batch
from oldphoto.io import photo as photo_io
from oldphoto.io import read_provenance


def _restore(pixels, mask):
    repaired = np.zeros(pixels.shape[:2], bool)
    repaired[:2] = True
    return FakeResult(1.0 - pixels, repaired, models={"fake": "invert 0123456789ab"}, path="scratch",
                      fidelity=1.0)


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


def _entries(report: Path) -> dict[str, dict]:
    return {Path(e["input"]).name: e for e in json.loads(report.read_text())["inputs"]}


def test_each_reason_comes_with_a_code_a_script_can_branch_on(tmp_path):
    # found by the DAM integrator's review: a nightly ingest must tell "retry later" from "tell a person" from
    # "nothing to do", and had only the sentences for people, which change with their wording
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    _photos(src)
    (src / "notes.txt").write_text("a scanner's notes\n")
    (src / "letter.jpg").write_text("a text file named like a photo\n")
    Image.new("RGB", (600, 500)).save(src / "large.png")
    Image.new("RGB", (1, 1)).save(src / "speck.png")
    (src / "gone.jpg").symlink_to(tmp_path / "unmounted" / "gone.jpg")
    argv = [str(src), str(tmp_path / "missing.jpg"), str(tmp_path / "*.tif"), "-o", str(out),
            "--max-pixels", "200000", "--report", str(report)]
    assert _run(argv) == 1
    codes = {name: (e["status"], e["reason_code"]) for name, e in _entries(report).items()}
    assert codes == {"a.png": ("ok", None), "b.jpg": ("ok", None),
                     "notes.txt": ("skipped", "not_an_image_file"),
                     "letter.jpg": ("failed", "damaged_or_unsupported"),
                     "large.png": ("failed", "too_many_pixels"), "speck.png": ("failed", "too_small"),
                     "gone.jpg": ("failed", "broken_link"), "missing.jpg": ("failed", "no_such_file"),
                     "*.tif": ("failed", "no_match")}
    assert _run(argv) == 1
    assert _entries(report)["a.png"]["reason_code"] == "already_restored"


def test_a_photo_refused_for_memory_says_so_in_its_code(tmp_path):
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    _photos(src)
    assert _run([str(src), "-o", str(out), "--memory-limit", "1M", "--report", str(report)]) == 1
    assert {e["reason_code"] for e in _entries(report).values()} == {"not_enough_memory"}


def test_a_mask_of_the_wrong_size_fails_its_photo_as_the_mask_s_fault(tmp_path):
    src, out, masks, report = tmp_path / "in", tmp_path / "out", tmp_path / "masks", tmp_path / "r.json"
    _photos(src)
    masks.mkdir()
    Image.new("L", (5, 5)).save(masks / "a.png")
    assert _run([str(src), "-o", str(out), "--mask-dir", str(masks), "--report", str(report)]) == 1
    assert _entries(report)["a.png"]["reason_code"] == "mask_unusable"
    assert _entries(report)["b.jpg"]["reason_code"] is None


def test_a_report_entry_takes_no_reason_without_its_code():
    with pytest.raises(ValueError, match="code"):
        Entry("a.png", FAILED, "cannot read (Permission denied)")
    with pytest.raises(ValueError):
        Entry("a.png", FAILED, "cannot read (Permission denied)", "no_such_code")
    with pytest.raises(ValueError, match="code"):
        Entry("a.png", OK, reason_code=ReasonCode.BROKEN_LINK)  # (a code says why; nothing to say here)
    entry = Entry("a.png", OK)
    with pytest.raises(AttributeError, match="mark"):
        entry.reason = "cannot read (Permission denied)"
    entry.mark(FAILED, ReasonCode.CANNOT_READ_FILE, "cannot read (Permission denied)")
    assert (entry.status, entry.reason_code, entry.reason) == (FAILED, "cannot_read_file",
                                                               "cannot read (Permission denied)")


def test_the_docs_list_every_reason_code_with_its_meaning():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "files-and-batches.md").read_text()
    table = docs.split("#### Reason codes", 1)[1].split("| code | meaning |", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+)` \| (.+) \|$", table, flags=re.MULTILINE)
    assert listed == [(code.value, code.meaning) for code in ReasonCode]


def test_a_skipped_photo_s_output_is_read_once(tmp_path, monkeypatch):
    # the record read to decide the skip is the one the report tells (it was read a second time for that)
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    _photos(src)
    assert _run([str(src), "-o", str(out), "--report", str(report)]) == 0
    reads = []
    png_provenance = photo_io._png_provenance  # (what read_provenance reads a PNG's record with)

    def counted(path):
        reads.append(path.name)
        return png_provenance(path)

    monkeypatch.setattr(photo_io, "_png_provenance", counted)
    assert _run([str(src), "-o", str(out), "--report", str(report)]) == 0
    assert reads == ["a.png"]
    assert _entries(report)["a.png"]["restoration"]["path"] == "scratch"


def test_an_output_the_file_system_refuses_fails_with_its_own_code(tmp_path, monkeypatch):
    # a USB drive remounted read-only after an error (or a share refusing a name) failed every photo as
    # unexpected_error, "worth reporting", naming no file: a nightly ingest took the archive's fault for
    # oldphoto's
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    _photos(src)

    def read_only(path, write, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(photo_io, "atomic_write", read_only)
    assert _run([str(src), "-o", str(out), "--report", str(report)]) == 1
    entry = _entries(report)["a.png"]
    assert entry["status"] == "failed" and entry["reason_code"] == "cannot_write_output"
    assert entry["reason"] == f"cannot write {out / 'a.png'} (Read-only file system)"
    assert _entries(report)["b.jpg"]["reason_code"] == "cannot_write_output"  # (the batch went on)
    monkeypatch.undo()  # the photos are written now, and their masks refused: the photo fails whole
    monkeypatch.setattr(mask_files, "atomic_write", read_only)
    assert _run([str(src), "-o", str(out), "--save-mask", "--report", str(report)]) == 1
    entry = _entries(report)["a.png"]
    assert entry["reason_code"] == "cannot_write_output" and str(out / "a.mask.png") in entry["reason"]
    assert not out.exists() or not list(out.iterdir())

    def encoder_error(path, write, **kwargs):  # (Pillow's, not the file system's: no errno)
        raise OSError("encoder error -2")

    monkeypatch.setattr(photo_io, "atomic_write", encoder_error)
    assert _run([str(src), "-o", str(out), "--report", str(report)]) == 1
    assert _entries(report)["a.png"]["reason_code"] == "unexpected_error"


def test_an_output_whose_names_other_files_keep_taking_fails_as_not_placed(tmp_path, monkeypatch):
    # another program putting files at each name the photo's output took, while it was written, failed it as
    # unexpected_error ("OSError: ... other files kept appearing"), not as the output that found no place
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    _photos(src)
    real = photo_io.atomic_write

    def taken_meanwhile(path, write, **kwargs):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (3, 3)).save(path)  # (someone's own file, not an output of this source)
        return real(path, write, **kwargs)

    monkeypatch.setattr(photo_io, "atomic_write", taken_meanwhile)
    assert _run([str(src), "-o", str(out), "--report", str(report)]) == 1
    entry = _entries(report)["a.png"]
    assert entry["status"] == "failed" and entry["reason_code"] == "cannot_place_output", entry
    assert entry["reason"].startswith("cannot place the output: ") and entry["output"] is None

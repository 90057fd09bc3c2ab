"""Batches that can never hurt an archive: output folders, resume by source, signals, leftovers, memory.

A deterministic fake restorer (colour inversion) stands in for the networks; the signal tests run the
batch in a child process.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

import oldphoto
from oldphoto import batch, footprint, outputs
from oldphoto.batch.inputs import glob_root
from oldphoto.batch.signals import SignalHandler
from oldphoto.io import PhotoError, read_photo, read_provenance
from oldphoto.io.photo import PhotoHeader


class Inverter:
    def __init__(self):
        self.calls = 0

    def __call__(self, pixels, mask):
        self.calls += 1
        return 1.0 - pixels


def _run(argv, restore=None):
    parser = argparse.ArgumentParser()
    batch.register(parser.add_subparsers())
    args = parser.parse_args(["restore", "--no-progress", *map(str, argv)])
    log = io.StringIO()
    code = batch.main(args, restore=restore or Inverter(), stream=log)
    return code, log.getvalue()


def _img(path: Path, value=(30, 90, 200), size=(12, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, value).save(path)
    return path


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _report(path: Path) -> dict:
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------ output folder vs inputs

@pytest.mark.parametrize("spec, out", [("scans", "scans"), ("scans/*.jpg", "scans"), ("scans/a.jpg", "scans"),
                                       ("scans", "scans/../scans")])
def test_output_folder_that_is_an_input_folder_is_refused(tmp_path, monkeypatch, spec, out):
    monkeypatch.chdir(tmp_path)
    _img(Path("scans/a.jpg"))
    _img(Path("scans/b.jpg"), (200, 10, 10))
    before = _hashes(tmp_path)
    restorer = Inverter()
    code, log = _run([spec, "-o", out, "--overwrite"], restorer)
    assert code == 2 and restorer.calls == 0
    assert "is the" in log and "choose another folder" in log
    assert _hashes(tmp_path) == before  # nothing replaced, nothing added


@pytest.mark.parametrize("spec", ["nest", "nest/**/*.jpg"])
def test_output_folder_inside_the_input_folder_is_never_read_back(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    _img(Path("nest/a.jpg"))
    _img(Path("nest/sub/b.jpg"), (10, 200, 10))
    originals = _hashes(tmp_path / "nest")
    restorer = Inverter()
    code, log = _run([spec, "-r", "-o", "nest/restored"], restorer)
    assert code == 0 and restorer.calls == 2
    assert "not read as inputs" in log
    code, log = _run([spec, "-r", "-o", "nest/restored", "--report", "r.json"], restorer)
    assert code == 0 and restorer.calls == 2  # the second run restores nothing: its outputs are not inputs
    assert [e["status"] for e in _report(Path("r.json"))["inputs"]] == ["skipped", "skipped"]
    assert not Path("nest/restored/restored").exists()
    assert sorted(str(p.relative_to("nest/restored")) for p in Path("nest/restored").rglob("*.jpg")) == [
        "a.jpg", "sub/b.jpg"]
    after = _hashes(tmp_path / "nest")
    assert {k: v for k, v in after.items() if not k.startswith("restored")} == originals


def test_output_folder_that_is_an_input_folder_under_another_path_is_refused(tmp_path):
    """`restore scans -o /mnt/scans` where /mnt/scans is scans bind-mounted (or a share mounted twice):
    the paths resolve apart, and the restorations were written beside the originals."""
    src, bound = tmp_path / "scans", tmp_path / "bound"
    _img(src / "a.png")
    bound.mkdir()
    if subprocess.run(["mount", "--bind", str(src), str(bound)], capture_output=True).returncode != 0:
        pytest.skip("a bind mount needs root (mount --bind)")
    try:
        before = _hashes(src)
        code, log = _run([src, "-o", bound])
        assert code == 2 and "is the input folder" in log and _hashes(src) == before
    finally:
        subprocess.run(["umount", str(bound)], check=True)


def test_output_folder_inside_the_input_folder_under_another_path_is_left_out(tmp_path, monkeypatch):
    """`restore /data/scans -r -o /mnt/x/scans/restored` where /mnt/x is /data bind-mounted: the paths
    resolve apart, so the output folder was not seen inside the input folder and a rerun read the
    restorations as inputs.  A bind mount is played here by a link that resolve() does not see through
    (the kernel's path of a bind mount is no link); the real one is the test below."""
    data = tmp_path / "data"
    _img(data / "scans" / "a.png")
    (tmp_path / "mnt").symlink_to(data)
    real_resolve = Path.resolve

    def resolve(self, strict=False):
        path = Path(os.path.abspath(self))
        return path if path.is_relative_to(tmp_path / "mnt") else real_resolve(self, strict)

    monkeypatch.setattr(Path, "resolve", resolve)
    out = tmp_path / "mnt" / "scans" / "restored"
    for spec in (str(data / "scans"), str(data / "scans" / "**" / "*.png")):
        check = outputs.check_folder([spec], out, glob_root)
        assert check.error is None and check.exclude == data / "scans" / "restored"
        assert "lies inside the input folder" in check.notes[0]
        assert f"it is {data / 'scans' / 'restored'} there" in check.notes[0]
    # the output folder itself, under another path: still refused (not taken for one inside)
    assert "is the input folder" in outputs.check_folder([str(data / "scans")], tmp_path / "mnt" / "scans",
                                                         glob_root).error
    deeper = outputs.check_folder([str(data)], out / "x", glob_root)
    assert deeper.exclude == data / "scans" / "restored" / "x"
    elsewhere = outputs.check_folder([str(data / "scans")], tmp_path / "mnt" / "other", glob_root)
    assert elsewhere.error is None and elsewhere.exclude is None and not elsewhere.notes


BIND_MOUNTED_RUNS = """set -e
mount --bind "$1" "$2"
shift 2
"$@"
"$@"
"""


def test_output_folder_inside_the_input_folder_through_a_bind_mount_is_never_read_back(tmp_path):
    # the real thing, where user namespaces allow it (`unshare -rm`: a mount of one's own, gone with it)
    data, mnt = tmp_path / "data", tmp_path / "mnt"
    _img(data / "scans" / "a.png")
    _img(data / "scans" / "sub" / "b.png", (10, 200, 10))
    mnt.mkdir()
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount --bind '{data}' '{mnt}'"],
                           capture_output=True) if Path("/usr/bin/unshare").exists() else None
    if probe is None or probe.returncode != 0:
        pytest.skip("needs unshare -rm and mount --bind (user namespaces)")
    originals = _stamps(data / "scans")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out, report = mnt / "scans" / "restored", tmp_path / "r.json"
    env = dict(os.environ, PYTHONPATH=str(Path(oldphoto.__file__).parents[1]))
    run = subprocess.run(["unshare", "-rm", "sh", "-c", BIND_MOUNTED_RUNS, "sh", str(data), str(mnt),
                          sys.executable, str(script), "plain", str(data / "scans"), "-r", "-o", str(out),
                          "--report", str(report)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "under another path" in run.stderr
    # the second run (the report is its) restored nothing: the restorations are not its inputs
    assert [e["status"] for e in _report(report)["inputs"]] == ["skipped", "skipped"]
    restored = data / "scans" / "restored"
    assert sorted(str(p.relative_to(restored)) for p in restored.rglob("*") if p.is_file()) == [
        "a.png", "sub/b.png"]
    assert {k: v for k, v in _stamps(data / "scans").items() if not k.startswith("restored")} == originals


def test_check_folder_directly(tmp_path):
    (tmp_path / "in").mkdir()
    ok = outputs.check_folder([str(tmp_path / "in")], tmp_path / "out", glob_root)
    assert ok.error is None and ok.exclude is None
    inside = outputs.check_folder([str(tmp_path / "in")], tmp_path / "in" / "x", glob_root)
    assert inside.error is None and inside.exclude == (tmp_path / "in" / "x").resolve()
    # a file input is not walked: `oldphoto restore photo.jpg -o out/` beside it has nothing to note
    _img(tmp_path / "in" / "a.png")
    beside = outputs.check_folder([str(tmp_path / "in" / "a.png")], tmp_path / "in" / "out", glob_root)
    assert beside.error is None and beside.exclude is None and not beside.notes


# ------------------------------------------------------------------------------ resume by source

def test_resume_decides_from_the_source_not_the_name(tmp_path):
    d1, d2, out = tmp_path / "d1", tmp_path / "d2", tmp_path / "o"
    _img(d1 / "a.png", (200, 0, 0))
    _img(d2 / "a.png", (0, 0, 200))
    assert _run([d1 / "a.png", d2 / "a.png", "-o", out])[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_png.png"]
    prov = read_provenance(out / "a_png.png")
    d2_hash = hashlib.sha256((d2 / "a.png").read_bytes()).hexdigest()
    assert prov["source"] == {"path": "a.png", "sha256": d2_hash}
    kept = _hashes(out)

    # d2's photo alone: o/a.png is d1's restoration, so it is not taken for d2's; a_png.png is found
    restorer = Inverter()
    code, _ = _run([d2 / "a.png", "-o", out, "--report", tmp_path / "r.json"], restorer)
    assert code == 0 and restorer.calls == 0
    (entry,) = _report(tmp_path / "r.json")["inputs"]
    assert entry["status"] == "skipped" and entry["output"] == str(out / "a_png.png")
    assert any("restoration of another source" in w for w in entry["warnings"])

    # a changed d2/a.png is another source: it gets a new name, the old outputs stay as they were
    _img(d2 / "a.png", (0, 200, 0))
    code, _ = _run([d2 / "a.png", "-o", out], restorer)
    assert code == 0 and restorer.calls == 1
    assert {k: v for k, v in _hashes(out).items() if k in kept} == kept
    assert np.allclose(read_photo(out / "a_png_2.png").pixels[0, 0], 1 - np.array([0, 200, 0]) / 255)

    # --overwrite redoes an output of the same source in place, and nothing else
    before = _hashes(out)
    code, _ = _run([d1 / "a.png", "-o", out, "--overwrite"], restorer)
    assert code == 0 and restorer.calls == 2
    after = _hashes(out)
    assert sorted(after) == sorted(before) and after["a_png.png"] == before["a_png.png"]


def _two_boxes_box2_restored(tmp_path):
    """Two scanner folders with the same file name, the second one restored: (box1, box2, out, restorer)."""
    box1, box2, out = tmp_path / "box1", tmp_path / "box2", tmp_path / "o"
    _img(box1 / "scan1.png", (200, 0, 0))
    _img(box2 / "scan1.png", (0, 0, 200))
    restorer = Inverter()
    assert _run([box2, "-o", out], restorer)[0] == 0
    return box1, box2, out, restorer


def test_rerun_in_another_order_or_with_fewer_inputs_finds_every_earlier_output(tmp_path):
    # two scanner folders with the same file names: whatever order or subset a rerun is given, every
    # photo is found where an earlier run put it, never restored a second time under a new name
    box1, box2, out, restorer = _two_boxes_box2_restored(tmp_path)
    for inputs in ([box1, box2], [box2, box1], [box1], [box2], [box1, box2]):
        assert _run([*inputs, "-o", out], restorer)[0] == 0
    assert restorer.calls == 2 and len(list(out.iterdir())) == 2
    made = {read_provenance(p)["source"]["sha256"] for p in out.iterdir()}
    assert made == {hashlib.sha256((b / "scan1.png").read_bytes()).hexdigest() for b in (box1, box2)}

    # byte-identical copies of one name still get an output each, found again in any order
    dup1, dup2, out2 = tmp_path / "dup1", tmp_path / "dup2", tmp_path / "o2"
    _img(dup1 / "x.png")
    _img(dup2 / "x.png")
    restorer = Inverter()
    for inputs in ([dup1, dup2], [dup2, dup1], [dup2]):
        assert _run([*inputs, "-o", out2], restorer)[0] == 0
    assert restorer.calls == 2 and sorted(p.name for p in out2.iterdir()) == ["x.png", "x_png.png"]


def test_rerun_finds_an_earlier_output_past_a_natural_name_that_is_free_again(tmp_path):
    # box1's photo went to scan1_png.png because box2's output held scan1.png; once that output is
    # removed (to redo it), box1's photo is found where it is, not restored again into scan1.png
    box1, box2, out, restorer = _two_boxes_box2_restored(tmp_path)
    assert _run([box1, "-o", out], restorer)[0] == 0
    (out / "scan1.png").unlink()
    assert _run([box1, box2, "-o", out], restorer)[0] == 0
    made = [read_provenance(p)["source"]["sha256"] for p in out.iterdir()]
    assert restorer.calls == 3 and len(made) == len(set(made)) == 2


def test_photos_whose_names_are_near_the_file_name_limit_are_restored_or_fail_saying_why(tmp_path):
    """Names of 241 to 255 bytes: the temporary file of the write (15 bytes longer) and the search for an
    earlier output (``_jpg_2``) made the batch fail with "File name too long", and a photo whose mask could
    not be written failed with its restored file left on disk.  A name that cannot fit is said per photo."""
    src, out = tmp_path / "in", tmp_path / "out"
    # 250, 240, 251 and 255 bytes
    a, b, c, e = "a" * 246 + ".jpg", "b" * 236 + ".png", "c" * 247 + ".bmp", "é" * 125 + "e.jpg"
    for name in (a, b, "b" * 236 + ".jpg", c, e):
        _img(src / name)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in src.iterdir()}
    code, log = _run([src, "-o", out, "--save-mask", "--report", tmp_path / "r.json"])
    assert code == 0, log
    made = sorted(p.name for p in out.iterdir())
    assert sorted(made) == sorted({a, a[:-4] + ".mask.png", b, b[:-4] + ".mask.png", "b" * 236 + ".jpg",
                                   "b" * 236 + "_png.mask.png", c[:-4] + ".png", e})
    entries = {Path(e["input"]).name: e for e in _report(tmp_path / "r.json")["inputs"]}
    for name in (c, e):  # their masks' names would be 260 bytes: not saved, said
        assert entries[name]["status"] == "ok" and "is too long a file name" in entries[name]["warnings"][0]
    code, log = _run([src, "-o", out, "--save-mask"])
    assert code == 0 and "5 skipped" in log and "without its mask" not in log
    code, log = _run([src, "-o", tmp_path / "webp", "--format", "webp", "--report", tmp_path / "w.json"])
    entries = {Path(e["input"]).name: e for e in _report(tmp_path / "w.json")["inputs"]}
    assert code == 1 and [n for n, entry in entries.items() if entry["status"] != "ok"] == [e]
    assert entries[e]["reason"].startswith("cannot place the output: the output's name, ")
    assert "would be 256 bytes long, more than the 255 a file name may have" in entries[e]["reason"]
    assert not (tmp_path / "webp").exists() or len(list((tmp_path / "webp").iterdir())) == 4
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in src.iterdir()} == before


def test_a_file_put_at_the_output_name_while_the_photo_is_restored_is_never_replaced(tmp_path):
    """Two batches writing into one folder (two terminals, d1/a.png and d2/a.png): both found out/a.png
    free, both wrote it, both reported `ok -> out/a.png`, and the first restoration was lost.  Now a name
    found free is taken only if still free; a file put there meanwhile is left untouched."""
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.png", (1, 2, 3))
    _img(src / "b.png", (4, 5, 6))
    other = tmp_path / "other" / "a.png"
    _img(other, (7, 8, 9))

    def racing(pixels, mask):  # while this batch restores, another one restores other/a.png, then b.png
        nonlocal calls
        calls += 1
        jobs, _ = batch.collect_inputs([str(other if calls == 1 else src / "b.png")])
        assert batch.run_batch(jobs, Inverter(), batch.BatchConfig(outdir=out)).exit_code == 0
        return 1.0 - pixels

    calls = 0
    before = _hashes(out.parent / "other")
    code, log = _run([src, "-o", out, "--report", tmp_path / "r.json"], restore=racing)
    assert code == 0, log
    a, b = _report(tmp_path / "r.json")["inputs"]
    assert a["status"] == "ok" and a["output"] == str(out / "a_png.png")
    assert "out/a.png appeared while this photo was restored" in a["warnings"][0]
    assert b["status"] == "ok" and b["output"] == str(out / "b.png")  # the same source's: replaced
    sources = {p.name: read_provenance(p)["source"]["path"] for p in out.iterdir()}
    assert sources == {"a.png": "a.png", "a_png.png": "a.png", "b.png": "b.png"}
    assert read_provenance(out / "a.png")["source"] != read_provenance(out / "a_png.png")["source"]
    assert _hashes(out.parent / "other") == before and not list(out.glob(".*.part"))


@pytest.mark.parametrize("links", [True, False])
def test_a_write_that_must_not_replace_refuses_an_existing_file(tmp_path, monkeypatch, links):
    from oldphoto import files

    if not links:  # a file system without hard links (FAT, some network shares)
        def no_link(*args):
            raise PermissionError(1, "Operation not permitted")
        monkeypatch.setattr(files.os, "link", no_link)
    target = tmp_path / "a.png"
    files.atomic_write_bytes(target, b"first")
    with pytest.raises(FileExistsError) as refused:
        files.atomic_write(target, lambda tmp: tmp.write_bytes(b"second"), replace=False)
    assert refused.value.filename == str(target)  # (not the temporary .part file: an API review)
    assert target.read_bytes() == b"first" and sorted(tmp_path.iterdir()) == [target]
    files.atomic_write(tmp_path / "b.png", lambda tmp: tmp.write_bytes(b"new"), replace=False)
    assert (tmp_path / "b.png").read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 2


def test_a_photo_that_changes_while_it_is_read_fails_rather_than_claim_its_source(tmp_path, monkeypatch):
    """A scan still being written (or replaced) between its hash and its decoding: the output's provenance
    named the bytes hashed, its pixels came from others, and a rerun took it for another version's."""
    src, out = tmp_path / "in", tmp_path / "out"
    photo = _img(src / "a.png", (1, 2, 3))
    real = read_photo

    def rescanned(path, **kwargs):
        if path == photo:
            time.sleep(0.01)
            _img(photo, (200, 100, 50))  # the scanner writes the file again
        return real(path, **kwargs)

    monkeypatch.setattr("oldphoto.batch.run.read_photo", rescanned)
    code, log = _run([src, "-o", out, "--report", tmp_path / "r.json"])
    (entry,) = _report(tmp_path / "r.json")["inputs"]
    assert code == 1 and entry["status"] == "failed" and entry["reason"].startswith("the file changed while")
    assert not out.exists() or not list(out.iterdir())
    monkeypatch.undo()
    code, log = _run([src, "-o", out])
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    assert code == 0 and read_provenance(out / "a.png")["source"]["sha256"] == sha


def test_overwrite_never_replaces_a_file_oldphoto_did_not_write(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "b.png", (1, 2, 3))
    original = _img(out / "b.png", (9, 9, 9)).read_bytes()  # someone's own file in the output folder
    code, _ = _run([src, "-o", out, "--overwrite", "--report", tmp_path / "r.json"])
    assert code == 0 and (out / "b.png").read_bytes() == original
    (entry,) = _report(tmp_path / "r.json")["inputs"]
    assert entry["output"] == str(out / "b_png.png")
    assert any("not written by oldphoto" in w for w in entry["warnings"])


def test_stripped_outputs_resume_by_name(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.png")
    restorer = Inverter()
    assert _run([src, "-o", out, "--strip-metadata"], restorer)[0] == 0
    assert _run([src, "-o", out, "--strip-metadata"], restorer)[0] == 0
    assert restorer.calls == 1 and sorted(p.name for p in out.iterdir()) == ["a.png"]


def test_stripped_outputs_are_never_taken_for_someone_elses_photo(tmp_path):
    # a file without provenance at the planned name was taken for this input's stripped output whatever
    # it was: the photo was skipped as "already restored", and with --overwrite (or, for --save-mask's
    # mask, even without) the user's own file was replaced.  A stripped output has the size of what was
    # restored and carries no EXIF or ICC profile: a file that differs in either is someone else's.
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.png")
    _img(src / "b.png")
    _img(src / "c.png")
    theirs = {"a.png": _img(out / "a.png", value=(1, 2, 3), size=(40, 30)),    # another size
              "b.png": out / "b.png",                                         # same size, a profile
              "c.mask.png": _img(out / "c.mask.png", value=(4, 5, 6), size=(40, 30))}
    Image.new("RGB", (12, 8), (7, 8, 9)).save(theirs["b.png"], icc_profile=ImageCms.ImageCmsProfile(
        ImageCms.createProfile("sRGB")).tobytes())
    before = {name: path.read_bytes() for name, path in theirs.items()}
    restorer = Inverter()
    for extra in ([], ["--overwrite"]):
        code, log = _run([src, "-o", out, "--strip-metadata", "--save-mask", *extra], restorer)
        assert code == 0 and {name: path.read_bytes() for name, path in theirs.items()} == before
        assert "already restored" not in log and "not written by oldphoto" in log
    assert restorer.calls == 6
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_png.mask.png", "a_png.png", "b.png",
                                                     "b_png.mask.png", "b_png.png", "c.mask.png", "c.png",
                                                     "c_png.mask.png"]
    assert _run([src, "-o", out, "--strip-metadata", "--save-mask"], restorer)[0] == 0
    assert restorer.calls == 6  # its own stripped outputs are still found again: the rerun resumes


@pytest.mark.parametrize("kind", ["heic", "tifffile"])
def test_stripped_outputs_of_photos_pillow_alone_cannot_open(tmp_path, monkeypatch, kind):
    # headers were read with Pillow alone: for a HEIC photo before pillow-heif was registered (read_photo
    # registers it once it reads the photo, after the output is placed) and for a TIFF only tifffile
    # reads the size was unknown, and any file without EXIF at the planned name was taken for the stripped
    # output (with --overwrite the user's own photo of another size was replaced); and such a TIFF's own
    # stripped output, which Pillow cannot open either, was never found again
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    if kind == "heic":
        pillow_heif = pytest.importorskip("pillow_heif", reason="HEIC support: pip install 'oldphoto[heif]'")
        from oldphoto.io import _heif

        # every plugin loaded first: one loaded later would join only the list replaced below, while
        # Pillow, marked initialised, would never load it again (WebP unreadable in the tests after)
        Image.init()
        monkeypatch.setattr(_heif, "_registered", None)  # a batch's first HEIC photo: not registered yet
        monkeypatch.setattr(Image, "ID", [i for i in Image.ID if i != "HEIF"])
        monkeypatch.delitem(Image.OPEN, "HEIF", raising=False)
        pillow_heif.from_pillow(Image.new("RGB", (12, 8), (30, 90, 200))).save(src / "a.heic")
        name = "a.jpg"
    else:
        import tifffile  # 16-bit gray with alpha: Pillow cannot open it

        tifffile.imwrite(src / "a.tif", np.full((8, 12, 2), 30000, np.uint16), photometric="minisblack",
                         extrasamples=[2])
        name = "a.tif"
    theirs = _img(out / name, value=(1, 2, 3), size=(40, 30))
    before = theirs.read_bytes()
    restorer = Inverter()
    code, log = _run([src, "-o", out, "--strip-metadata", "--overwrite"], restorer)
    assert code == 0 and theirs.read_bytes() == before and "not written by oldphoto" in log
    assert restorer.calls == 1 and len(list(out.iterdir())) == 2
    assert _run([src, "-o", out, "--strip-metadata"], restorer)[0] == 0
    assert restorer.calls == 1  # its own stripped output is found again


# ------------------------------------------------------------------------------ leftovers

OURS = [".a.png.k3j4l5m6.part", "sub/.b.jpg.x_y1z2w3.part"]
DECOYS = [".notes.part", "a.part", ".a.png.part", ".a.png.toolongname.part", "keep.png.abcd1234.part"]


def _leftovers(out: Path, src: Path) -> None:
    for name in OURS + DECOYS:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"half")
    (src / ".c.png.abcd1234.part").write_bytes(b"not in the output folder")


@pytest.mark.parametrize("inside", [False, True])
def test_stale_temporary_files_cleaned_on_start(tmp_path, inside):
    src = tmp_path / "in"
    out = src / "restored" if inside else tmp_path / "out"
    _img(src / "a.png")
    _leftovers(out, src)
    code, log = _run([src, "-r", "-o", out])
    assert code == 0 and "removed 2 temporary file(s)" in log
    assert not any((out / name).exists() for name in OURS)
    assert all((out / name).exists() for name in DECOYS)
    assert (src / ".c.png.abcd1234.part").exists()


def test_input_folder_inside_the_output_folder_is_not_cleaned(tmp_path):
    out = tmp_path / "out"
    src = out / "scans"
    _img(src / "a.png")
    _leftovers(out, src)
    code, log = _run([src, "-o", out])
    assert code == 0 and "removed 2 temporary file(s)" in log
    assert (src / ".c.png.abcd1234.part").exists()


def test_temporary_files_of_a_running_batch_are_left_alone(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.png")
    _leftovers(out, src)
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another batch writing into the same folder holds it
        code, log = _run([src, "-o", out])
    finally:
        os.close(fd)
    assert code == 0 and "another oldphoto batch" in log
    assert all((out / name).exists() for name in OURS)


# ------------------------------------------------------------------------------ signals, live report

CHILD = r"""
import argparse, os, signal, sys, time
from oldphoto import batch
from oldphoto.io import photo as photo_module

mode, argv = sys.argv[1], sys.argv[2:]
calls = []

def restore(pixels, mask):
    calls.append(1)
    print(f"photo {len(calls)}", flush=True)
    if mode == "slow" and len(calls) >= 3:
        time.sleep(60)  # the parent sends SIGTERM meanwhile
    return 1.0 - pixels

if mode == "hold":  # photo 1 waits until the parent makes the file "go" beside this script
    real_restore = restore
    def restore(pixels, mask):
        if not calls:
            print("holding", flush=True)
            while not os.path.exists(os.path.join(os.path.dirname(sys.argv[0]), "go")):
                time.sleep(0.05)
        return real_restore(pixels, mask)

if mode == "hup-in-write":  # the terminal is closed while photo 3 is written: the parent closes the pty
    real = photo_module._write_png
    def slow(tmp, *args, **kwargs):
        if len(calls) == 3:
            tmp.write_bytes(b"half a png")
            print("writing", flush=True)
            time.sleep(60)
        return real(tmp, *args, **kwargs)
    photo_module._write_png = slow

if mode == "kill-in-write":
    real = photo_module._write_png
    def dying(tmp, *args, **kwargs):
        if len(calls) == 3:
            tmp.write_bytes(b"half a png")
            os.kill(os.getpid(), signal.SIGKILL)
        return real(tmp, *args, **kwargs)
    photo_module._write_png = dying

parser = argparse.ArgumentParser()
batch.register(parser.add_subparsers())
sys.exit(batch.main(parser.parse_args(["restore", "--no-progress", *argv]), restore=restore))
"""


def _child(tmp_path: Path, mode: str, argv) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(Path(oldphoto.__file__).parents[1]))
    return subprocess.Popen([sys.executable, str(script), mode, *map(str, argv)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _five(src: Path) -> None:
    for i in range(5):
        _img(src / f"p{i}.png", (i * 40, 10, 10))


def _wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _ok_count(path: Path) -> int:
    try:
        return [e["status"] for e in _report(path)["inputs"]].count("ok")
    except (OSError, ValueError):
        return -1


def test_sigterm_writes_the_report_and_exits_143(tmp_path):
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "r.json"
    _five(src)
    child = _child(tmp_path, "slow", [src, "-o", out, "--report", report])
    try:
        _wait_for(lambda: _ok_count(report) == 2)  # the live report shows the finished photos
        live = _report(report)
        assert live["running"] is True and live["finished"] is None and live["exit_code"] is None
        assert [e["status"] for e in live["inputs"]] == ["ok", "ok"] + ["not processed"] * 3
        assert child.stdout.readline().strip() == "photo 1"
        _wait_for(lambda: child.stdout.readline().strip() == "photo 3")
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=30)
    finally:
        child.kill()
    assert code == 143
    final = _report(report)
    assert final["running"] is False and final["terminated"] is True and final["exit_code"] == 143
    assert [e["status"] for e in final["inputs"]] == ["ok", "ok"] + ["not processed"] * 3
    assert "abandoned" in child.stdout.read()
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png"]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX only")
def test_a_closed_terminal_ends_the_batch_like_sigterm_with_129(tmp_path):
    # SIGHUP (the terminal closed) killed the batch by default: the write in progress left its .part
    # file, the report said "running": true for ever
    import pty

    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "r.json"
    _five(src)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(Path(oldphoto.__file__).parents[1]))
    argv = [sys.executable, str(script), "hup-in-write", *map(str, [src, "-o", out, "--report", report])]
    pid, terminal = pty.fork()  # the child's controlling terminal: closing it hangs the child up
    if pid == 0:
        # (tests run under nohup: the batch keeps an ignored SIGHUP ignored, as it should, and the child
        # would inherit it)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        os.execve(sys.executable, argv, env)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"writing" not in seen:
            assert time.monotonic() < deadline, seen
            seen += os.read(terminal, 4096)
    finally:
        os.close(terminal)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 129, seen
    final = _report(report)
    assert final["running"] is False and final["terminated"] is True and final["exit_code"] == 129
    assert [e["status"] for e in final["inputs"]] == ["ok", "ok"] + ["not processed"] * 3
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png"]  # no .part left


def test_a_batch_run_under_nohup_keeps_sighup_ignored():
    if not hasattr(signal, "SIGHUP"):
        pytest.skip("POSIX only")
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with SignalHandler(batch.StopFlag(), print):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        with SignalHandler(batch.StopFlag(), print):
            assert callable(signal.getsignal(signal.SIGHUP))
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_sigkill_during_a_write_leaves_a_report_and_the_next_run_cleans_up(tmp_path):
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "r.json"
    _five(src)
    child = _child(tmp_path, "kill-in-write", [src, "-o", out, "--report", report])
    assert child.wait(timeout=60) == -signal.SIGKILL
    left = _report(report)  # whatever it says, it is whole JSON listing every input once
    assert left["running"] is True and len(left["inputs"]) == 5
    for entry in left["inputs"]:
        assert entry["status"] in ("ok", "not processed")
        assert entry["status"] != "ok" or Path(entry["output"]).exists()
    assert [p.name for p in out.glob(".p2.png.*.part")]  # the killed write's temporary file

    code, log = _run([src, "-o", out, "--report", report])
    assert code == 0 and "removed 1 temporary file(s)" in log
    assert sorted(p.name for p in out.iterdir()) == [f"p{i}.png" for i in range(5)]
    assert [e["status"] for e in _report(report)["inputs"]] == ["skipped", "skipped", "ok", "ok", "ok"]


# ------------------------------------------------------------------------------ one report, one batch

def _stamps(root: Path) -> dict[str, tuple[str, int]]:
    return {k: (v, (root / k).stat().st_mtime_ns) for k, v in _hashes(root).items()}


def test_a_second_batch_given_the_same_report_is_refused_and_the_first_keeps_its_lines(tmp_path):
    # two batches with one --report (two terminals, a cron job overlapping the previous one) rewrote it in
    # turn: the last writer's lines alone were left.  The report may be reached through a link to it, a
    # linked folder, or its own path: one report all the same
    pytest.importorskip("fcntl")
    src, other = tmp_path / "in", tmp_path / "in2"
    _five(src)
    _img(other / "x.png")
    reports = tmp_path / "reports"
    report = reports / "r.json"
    assert _run([other, "-o", tmp_path / "first", "--report", report])[0] == 0  # an earlier report
    latest = tmp_path / "latest.json"
    latest.symlink_to(report)
    (tmp_path / "linked").symlink_to(reports)
    originals = {**_stamps(src), **{f"2/{k}": v for k, v in _stamps(other).items()}}

    child = _child(tmp_path, "hold", [src, "-o", tmp_path / "out_a", "--report", latest])
    try:
        _wait_for(lambda: child.stdout.readline().strip() == "holding")
        for given in (report, tmp_path / "linked" / "r.json", latest):
            restorer = Inverter()
            code, log = _run([other, "-o", tmp_path / "out_b", "--report", given], restorer)
            assert code == 2 and restorer.calls == 0, log
            assert log.startswith(f"oldphoto restore: another oldphoto batch is writing the report {given}")
            assert log.count("\n") == 1 and not (tmp_path / "out_b").exists()
        (tmp_path / "go").touch()
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
    assert latest.is_symlink()  # written through the link, which stays one
    final = _report(report)
    assert final["running"] is False and [Path(e["input"]).name for e in final["inputs"]] == [
        f"p{i}.png" for i in range(5)] and final["summary"]["ok"] == 5
    # the lock goes with the batch: the next one runs, and rewrites the report as ever
    code, log = _run([other, "-o", tmp_path / "out_b", "--report", tmp_path / "linked" / "r.json"])
    assert code == 0 and [Path(e["input"]).name for e in _report(report)["inputs"]] == ["x.png"]
    assert {**_stamps(src), **{f"2/{k}": v for k, v in _stamps(other).items()}} == originals
    assert not list(reports.glob(".*.part")) and not list(reports.glob(".*.lock"))


def test_the_report_lock_is_a_file_beside_the_report_removed_at_the_end(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    path = tmp_path / "r.json"
    first = batch.ReportLock(path)
    assert first.take() is None and first.held and (tmp_path / ".r.json.lock").is_file()
    assert not path.exists()  # the report itself is written by the batch's snapshots, not by the lock
    second = batch.ReportLock(path)
    assert "another oldphoto batch is writing the report" in second.take() and not second.held
    # a batch that opened the lock file just before its holder removed it locks a file no longer there:
    # it looks again, and makes and locks a new one
    fd = os.open(tmp_path / ".r.json.lock", os.O_RDWR)
    first.release()
    assert not (tmp_path / ".r.json.lock").exists()
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # (the file the name has left: nobody holds it)
    late = batch.ReportLock(path)
    assert late.take() is None and late.held
    os.close(fd)
    assert "another oldphoto batch" in batch.ReportLock(path).take()
    late.release()
    again = batch.ReportLock(path)
    assert again.take() is None and again.held
    again.release()
    assert list(tmp_path.iterdir()) == []


def test_a_report_in_a_folder_not_made_yet_is_locked_too(tmp_path):
    # `--report logs/r.json` with logs/ not there yet: the first snapshot makes the folder, but the lock
    # file could not be made, so two such batches both ran unlocked (with a note saying so)
    pytest.importorskip("fcntl")
    path = tmp_path / "logs" / "2026" / "r.json"
    first = batch.ReportLock(path)
    assert first.take() is None and first.held and first.note is None
    second = batch.ReportLock(path)
    assert "another oldphoto batch is writing the report" in second.take() and not second.held
    first.release()
    assert list((tmp_path / "logs" / "2026").iterdir()) == []
    src = tmp_path / "in"
    _img(src / "a.png")
    code, log = _run([src, "-o", tmp_path / "out", "--report", tmp_path / "new" / "r.json"])
    assert code == 0 and "cannot be locked" not in log, log
    assert _report(tmp_path / "new" / "r.json")["summary"]["ok"] == 1


def test_a_report_given_as_a_link_into_a_folder_that_cannot_be_written_is_refused_at_once(tmp_path,
                                                                                            monkeypatch):
    # a report given as a link is written through it, beside its real file: that folder is the one to
    # check before the batch (the link's was: every photo was restored, then the report failed, exit 1)
    src, locked, links = tmp_path / "in", tmp_path / "locked", tmp_path / "links"
    _img(src / "a.png")
    locked.mkdir()
    links.mkdir()
    (locked / "r.json").write_bytes(b"")
    (links / "latest.json").symlink_to(locked / "r.json")
    real_access = os.access
    monkeypatch.setattr(outputs.os, "access",  # (a read-only mount: os.access says so, root too)
                        lambda path, mode: Path(path) != locked and real_access(path, mode))
    restorer = Inverter()
    code, log = _run([src, "-o", tmp_path / "out", "--report", links / "latest.json"], restorer)
    assert code == 2 and restorer.calls == 0, log
    assert f"cannot write the report {links / 'latest.json'}: {locked} is not writable" in log
    assert (links / "latest.json").is_symlink() and (locked / "r.json").read_bytes() == b""


def test_a_lock_file_left_by_another_users_killed_batch_still_locks(tmp_path, monkeypatch):
    # a batch killed by SIGKILL leaves its lock file (0644, its user's); another user's batch given the
    # same report in a shared folder could not open it for writing, and ran unlocked (Permission denied)
    pytest.importorskip("fcntl")
    import errno

    path = tmp_path / "r.json"
    lock_file = tmp_path / ".r.json.lock"
    lock_file.touch(mode=0o644)
    real_open = os.open

    def as_another_user(file, flags, *args, **kwargs):  # (root may write any file: played here)
        if Path(file) == lock_file and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", as_another_user)
    first = batch.ReportLock(path)
    assert first.take() is None and first.held and first.note is None
    assert "another oldphoto batch is writing the report" in batch.ReportLock(path).take()
    first.release()
    assert not lock_file.exists()


def test_a_batch_that_fails_before_its_first_snapshot_leaves_no_report_nor_lock(tmp_path, monkeypatch):
    src = tmp_path / "in"
    _img(src / "a.png")

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("oldphoto.batch.cli.collect_inputs", broken)
    with pytest.raises(RuntimeError):
        _run([src, "-o", tmp_path / "out", "--report", tmp_path / "r.json"])
    assert not (tmp_path / "r.json").exists() and not (tmp_path / ".r.json.lock").exists()


def test_without_locks_the_report_is_written_as_before(tmp_path, monkeypatch):
    # Windows has no fcntl; some network shares refuse locks: the batch runs (and says so for the latter)
    src = tmp_path / "in"
    _img(src / "a.png")
    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` raises ImportError, as on Windows
    code, log = _run([src, "-o", tmp_path / "out", "--report", tmp_path / "r.json"])
    assert code == 0 and "cannot be locked" not in log and _report(tmp_path / "r.json")["summary"]["ok"] == 1
    monkeypatch.undo()
    fcntl = pytest.importorskip("fcntl")
    import errno

    def refuse(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", refuse)
    for name in ("r.json", "new.json"):  # an earlier report, and one to make
        code, log = _run([src, "-o", tmp_path / f"out_{name}", "--report", tmp_path / name])
        assert code == 0 and "cannot be locked there" in log and not (tmp_path / f".{name}.lock").exists()
        assert _report(tmp_path / name)["summary"]["ok"] == 1


# ------------------------------------------------------------------------------ memory and time

def test_photo_that_cannot_fit_is_refused_from_its_header(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "small.png")
    Image.new("RGB", (4000, 3000), (50, 60, 70)).save(src / "large.png")  # 12 Mpx: about 4.1 GB
    restorer = Inverter()
    started = time.perf_counter()
    code, log = _run([src, "-o", out, "--memory-limit", "3G", "--report", tmp_path / "r.json"], restorer)
    assert code == 1 and restorer.calls == 1 and time.perf_counter() - started < 10
    by_name = {Path(e["input"]).name: e for e in _report(tmp_path / "r.json")["inputs"]}
    assert by_name["small.png"]["status"] == "ok"
    reason = by_name["large.png"]["reason"]
    assert reason.startswith("not enough memory: a 4000x3000 (12.0 Mpx) photo needs about 4.")
    assert "--memory-limit of 3.0 GB" in reason
    # a smaller tile budget brings the same photo under the limit
    code, _ = _run([src, "-o", out, "--memory-limit", "3G", "--max-memory", "256M"], restorer)
    assert code == 0 and restorer.calls == 2


@pytest.mark.parametrize("value", ["lots", "-1G", "0"])
def test_bad_memory_limit_exits_2(tmp_path, value):
    _img(tmp_path / "in" / "a.png")
    code, log = _run([tmp_path / "in", "-o", tmp_path / "out", f"--memory-limit={value}"])
    assert code == 2 and "--memory-limit" in log and not (tmp_path / "out").exists()


def _header(width: int, height: int) -> PhotoHeader:
    return PhotoHeader(Path("x.tif"), "TIFF", "tiff", width, height, 3, 8)


def test_estimate_follows_the_path_the_options_allow():
    quality = footprint.estimate(_header(4000, 3000), {"scratches": "off"})
    scratch = footprint.estimate(_header(4000, 3000), {"hr_above": 20})
    hr = footprint.estimate(_header(4000, 3000), {})  # 12 Mpx > --hr-above 4: HR may be taken
    assert (quality.path, scratch.path, hr.path) == ("quality", "scratch", "hr")
    assert quality.bytes < scratch.bytes < hr.bytes
    small_budget = footprint.estimate(_header(4000, 3000), {"scratches": "off", "max_memory": "256M"})
    assert quality.bytes - small_budget.bytes == (2 << 30) - (256 << 20)
    # --upscale: the larger result is held and encoded after the restoration
    twice = footprint.estimate(_header(4000, 3000), {"scratches": "off", "upscale": 2})
    four = footprint.estimate(_header(4000, 3000), {"scratches": "off", "upscale": 4})
    assert quality.bytes == footprint.estimate(_header(4000, 3000), {"scratches": "off", "upscale": 1}).bytes
    assert quality.bytes <= twice.bytes < four.bytes  # (×2 stays under the quality path's own peak)
    assert four.bytes > 12e6 * 16 * 12  # at least the float result, sixteen times the photo


def test_estimate_counts_the_official_detectors_enlarged_pass():
    """--compat official's detector sees the photo at a 256-px short side, untiled: a 3000×10 strip
    (256×48128 there) took 6.8 GB, a 12000×10 one would take 27 GB, and the guard, which counted the
    photo's own 30 kpx, let it through to be killed by the system (the whole batch with it)."""
    assert footprint.compat_detector_pixels(3000, 10) == 256 * 48128
    assert footprint.compat_detector_pixels(10, 3000) == 256 * 48128
    assert footprint.compat_detector_pixels(4000, 3000) == 256 * 336
    assert footprint.compat_detector_pixels(7, 3000) == 0  # rounds to 0: the official mode refuses it
    official = {"compat": "official"}
    strip = footprint.estimate(_header(3000, 10), official)
    assert strip.bytes > 6.8e9 and "256-px short side" in strip.why
    assert footprint.estimate(_header(3000, 10), {}).bytes < 3e9  # the default mode tiles its detector
    assert footprint.estimate(_header(3000, 10), {**official, "scratches": "off"}).bytes < 3e9
    # an ordinary photo: the detector's pass is small, the estimate as before
    assert footprint.estimate(_header(4000, 3000), official) == footprint.estimate(_header(4000, 3000), {})
    guard = footprint.Guard(options=official, available=lambda: 8 << 30)
    with pytest.raises(PhotoError, match=r"a 12000x10 .* needs about .* for --compat official's detector"):
        guard(_header(12000, 10))


def test_guard_refuses_or_warns():
    said = []
    guard = footprint.Guard(available=lambda: 4 << 30, on_long=said.append)
    assert guard(_header(2000, 1500)) == []
    with pytest.raises(PhotoError, match=r"not enough memory: a 11000x10000 \(110.0 Mpx\) photo needs about"):
        guard(_header(11000, 10000))
    guard.available = lambda: 64 << 30
    guard.record(0.5, 100.0)  # the first photo loads the networks: not a rate
    guard.record(0.1, 10.0)   # too small to tell
    assert guard(_header(6000, 4000)) == []
    guard.record(1.0, 2.0)
    guard.record(2.0, 60.0)   # seconds per Mpx: the slowest photo counts
    (note,) = guard(_header(6000, 4000))
    assert note.startswith("large photo 6000x4000 (24.0 Mpx): about 12 min") and said


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_estimate_covers_the_measured_peak(tmp_path):
    """The per-pixel figure of the quality path against the real peak of the pipeline (tiny networks).

    One fresh process per photo size (memory freed by an earlier photo would hide a later peak); the
    slope between two sizes cancels the fixed costs (runtime, weights, tiles).  A minute or two.
    """
    pytest.importorskip("torch")
    script = tmp_path / "peak.py"
    script.write_text(PEAK)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(oldphoto.__file__).parents[1]),
                                                        str(Path(__file__).parents[1] / "pipeline")]))
    sizes = [(800, 1200), (1600, 2400)]
    peaks = [int(subprocess.run([sys.executable, str(script), str(h), str(w)], env=env, capture_output=True,
                                text=True, timeout=900, check=True).stdout.split()[-1]) for h, w in sizes]
    slope = (peaks[1] - peaks[0]) / (sizes[1][0] * sizes[1][1] - sizes[0][0] * sizes[0][1])
    assert footprint.FLOAT_PIXEL < slope < footprint.FLOAT_PIXEL + footprint.PATH_BYTES_PER_PIXEL["quality"]


PEAK = r"""
import sys
from tiny_nets import smooth_image, tiny_models
from oldphoto.pipeline import Restorer

restorer = Restorer(models=tiny_models(faces=False), device="cpu", faces=False, scratches="off",
                    max_memory="256M")
import numpy as np
h, w = int(sys.argv[1]), int(sys.argv[2])
image = np.tile(smooth_image(100, 150), (h // 100, w // 150, 1))  # no full-size temporaries
restorer.restore(image)
with open("/proc/self/status") as fh:
    print(next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM")))
"""


# ------------------------------------------------------------------------------ soak

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _hostile(path: Path, kind: int, rng) -> None:
    """Empty, text named .png, cut PNG, PNG with rows missing, JPEG cut and closed (named .png)."""
    noise = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    png, jpeg = io.BytesIO(), io.BytesIO()
    Image.fromarray(noise).save(png, "PNG")
    Image.fromarray(noise).save(jpeg, "JPEG")
    png_data, jpeg_data = png.getvalue(), jpeg.getvalue()
    rows = zlib.compress(b"".join(b"\0" + bytes(96) for _ in range(5)))
    path.write_bytes([
        b"",
        b"scanned in 1998 by aunt Ann",
        png_data[: len(png_data) // 2],
        png_data[:33] + _chunk(b"IDAT", rows) + _chunk(b"IEND", b""),
        jpeg_data[: len(jpeg_data) * 6 // 10] + b"\xff\xd9",
    ][kind])


@pytest.mark.slow
def test_soak_with_hostile_files(tmp_path, monkeypatch):
    """1,000 small files, 10 % hostile, the output folder inside the input folder, run twice."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(7)
    root = Path("archive")
    for i in range(1000):
        path = root / f"box{i % 7}" / f"p{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if i % 10 == 3:
            _hostile(path, i // 10 % 5, rng)
        else:
            Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path)
    originals = _hashes(root)
    for run in range(2):
        code, _ = _run([root, "-r", "-o", root / "restored", "--report", "r.json"])
        assert code == 1
        inputs = _report(Path("r.json"))["inputs"]
        assert len({e["input"] for e in inputs}) == len(inputs) == 1000  # every file exactly once
        good = {e["status"] for e in inputs if not e["input"].endswith("3.png")}
        assert good == ({"ok"} if run == 0 else {"skipped"})
        failed = [e for e in inputs if e["status"] == "failed"]
        assert len(failed) == 100 and all(e["reason"] for e in failed)
        cut = [e for e in failed if int(Path(e["input"]).stem[1:]) // 10 % 5 >= 2]
        assert len(cut) == 60 and all("truncated" in e["reason"] for e in cut)
    after = _hashes(root)
    assert {k: v for k, v in after.items() if not k.startswith("restored")} == originals
    restored = [p for p in (root / "restored").rglob("*") if p.is_file()]
    assert len(restored) == 900 and not any(p.name.startswith(".") for p in restored)


@pytest.mark.parametrize("strip", [False, True])
def test_photos_already_in_an_output_folder_inside_the_input_are_listed_not_left_out(tmp_path, strip):
    # `restore scans -r -o scans/1950s` (meant: -o restored/1950s): nothing under the output folder is read
    # as an input, so the photos of scans/1950s were left out of the batch without a word, neither
    # restored nor in the report; they are listed as skipped, saying why (and never touched), while the
    # batch's own restorations there are passed over quietly on a rerun, stripped ones too
    scans = tmp_path / "scans"
    _img(scans / "1960s" / "a.png")
    # (the archive's scans carry EXIF: with --strip-metadata, a photo there without EXIF or ICC profile may
    # be a stripped restoration, and is passed over)
    exif = Image.Exif()
    exif[0x010E] = "wedding, 1953"
    scans_1950 = scans / "1950s" / "wedding.png"
    for photo in (scans_1950, scans / "1950s" / "box 2" / "b.png"):
        photo.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (12, 8), (200, 100, 50)).save(photo, exif=exif)
    before = _hashes(scans / "1950s")
    strip_arg = ["--strip-metadata"] if strip else []
    for run in range(2):
        code, log = _run([scans, "-r", "-o", scans / "1950s", "--report", tmp_path / "r.json", *strip_arg])
        inputs = {e["input"]: e for e in _report(tmp_path / "r.json")["inputs"]}
        assert code == 0, log
        assert inputs[str(scans / "1960s" / "a.png")]["status"] == ("ok" if run == 0 else "skipped")
        assert len(inputs) == 3, sorted(inputs)  # (not the restoration of a.png made in the first run)
        for photo in (scans_1950, scans / "1950s" / "box 2" / "b.png"):
            entry = inputs[str(photo)]
            assert entry["status"] == "skipped"
            assert entry["reason"].startswith(f"in the output folder {scans / '1950s'}: not restored"), entry
        assert f"skipped: {scans_1950}: in the output folder" in log
    assert {k: v for k, v in _hashes(scans / "1950s").items() if not k.startswith("1960s")} == before

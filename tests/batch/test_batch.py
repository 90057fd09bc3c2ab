"""The batch runner with a deterministic fake restorer (colour inversion): no networks involved."""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import signal
import struct
import sys
import threading
import types
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from batch_support import FakeResult
from PIL import Image

from oldphoto import batch, outputs
from oldphoto.batch import cli, inputs, mask_files, run
from oldphoto.io import read_photo, read_provenance


class Inverter:
    """A real, checkable image operation; can misbehave on chosen names."""

    def __init__(self, on_call=None):
        self.calls: list[tuple[np.ndarray, np.ndarray | None]] = []
        self.on_call = on_call

    def __call__(self, pixels, mask):
        self.calls.append((pixels, mask))
        if self.on_call is not None:
            self.on_call(len(self.calls), pixels)
        return FakeResult(1.0 - pixels, mask, faces=[object()] * 2)


def _parser():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    batch.register(sub)
    return parser


def _run(argv, restore, stream=None):
    args = _parser().parse_args(["restore", "--no-progress", *argv])
    out = stream or io.StringIO()
    code = batch.main(args, restore=restore, stream=out)
    return code, out.getvalue() if stream is None else ""


def _img(path: Path, value=(30, 90, 200), size=(12, 8), fmt=None, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, value).save(path, fmt, **kw)
    return path


def _bomb(path: Path):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def _no_partials(root: Path):
    leftovers = [p for p in root.rglob("*") if p.name.endswith(".part") or p.name.startswith(".")]
    assert leftovers == []


def test_mixed_batch(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "good.jpg", quality=95)
    _img(src / "sub" / "nested.png")
    tifffile.imwrite(src / "gray16.tif", np.full((9, 10), 40000, np.uint16))
    _img(src / "really_png.jpg", fmt="PNG")                  # wrongly named: read by content
    (src / "empty.jpg").write_bytes(b"")                       # zero bytes
    (src / "notes.txt").write_text("scanned 1998")             # non-image in a folder: skipped
    (src / "letter.jpg").write_text("Dear Ann, ...")           # text named .jpg
    data = (_img(tmp_path / "t.png")).read_bytes()
    (src / "cut.png").write_bytes(data[: len(data) // 2])      # truncated
    _bomb(src / "bomb.png")                                    # decompression bomb
    _img(src / "huge_alloc.png", value=(1, 2, 3))             # restorer runs out of memory on it

    def oom(n, pixels):
        if np.allclose(pixels[0, 0], np.array([1, 2, 3]) / 255, atol=1e-6):
            raise MemoryError

    restorer = Inverter(on_call=oom)
    code, log = _run([str(src), "-r", "-o", str(out), "--report", str(tmp_path / "r.json")], restorer)
    assert code == 1
    report = json.loads((tmp_path / "r.json").read_text())
    by_name = {Path(e["input"]).name: e for e in report["inputs"]}
    assert {n: e["status"] for n, e in by_name.items()} == {
        "good.jpg": "ok", "nested.png": "ok", "gray16.tif": "ok", "really_png.jpg": "ok",
        "empty.jpg": "failed", "notes.txt": "skipped", "letter.jpg": "failed", "cut.png": "failed",
        "bomb.png": "failed", "huge_alloc.png": "failed"}
    assert "empty file" in by_name["empty.jpg"]["reason"]
    assert "not an image" in by_name["letter.jpg"]["reason"]
    assert "not an image file" in by_name["notes.txt"]["reason"]
    assert "truncated" in by_name["cut.png"]["reason"]
    assert "decompression bomb" in by_name["bomb.png"]["reason"]
    assert "out of memory" in by_name["huge_alloc.png"]["reason"]
    assert any("content is PNG" in w for w in by_name["really_png.jpg"]["warnings"])
    ok = by_name["good.jpg"]
    assert (ok["width"], ok["height"], ok["faces"], ok["models"]) == (12, 8, 2, {"fake": "invert"})
    assert ok["bytes"] > 0 and ok["seconds"] >= 0
    assert report["summary"] == {"ok": 4, "skipped": 1, "failed": 5, "not processed": 0}
    # outputs keep relative paths, formats and modes; pixels really are the restorer's
    assert (out / "sub" / "nested.png").exists() and (out / "good.jpg").exists()
    assert (out / "really_png.png").exists()
    gray = read_photo(out / "gray16.tif")
    assert gray.bit_depth == 16 and gray.space == "GRAY"
    assert np.allclose(gray.pixels, 1 - 40000 / 65535, atol=1 / 65535)
    assert np.allclose(read_photo(out / "sub" / "nested.png").pixels[0, 0], 1 - np.array([30, 90, 200]) / 255)
    assert read_provenance(out / "good.jpg")["models"] == {"fake": "invert"}
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [
        "good.jpg", "gray16.tif", "nested.png", "really_png.png"]
    _no_partials(out)
    for name in ("empty.jpg", "letter.jpg", "cut.png", "bomb.png", "huge_alloc.png"):
        assert name in log  # every failure reported by name
    assert "4 restored, 1 skipped, 5 failed" in log.splitlines()[-1]


def test_all_good_or_skipped_exits_zero(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.png")
    (src / "readme.md").write_text("x")
    assert _run([str(src), "-o", str(out)], Inverter())[0] == 0


def _five(src: Path) -> list[Path]:
    return [_img(src / f"p{i}.png", value=(i * 40, 10, 10)) for i in range(5)]


def test_interrupted_batch_resumes(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _five(src)
    jobs, pre = batch.collect_inputs([str(src)])
    stop = threading.Event()
    config = batch.BatchConfig(outdir=out)

    def press_ctrl_c_twice(n, pixels):
        if n == 2:
            stop.set()               # first Ctrl-C during photo 2: photo 2 still completes

    report = batch.run_batch(jobs, Inverter(press_ctrl_c_twice), config, stop=stop)
    assert report.exit_code == 130
    assert [e.status for e in report.entries] == ["ok", "ok"] + ["not processed"] * 3
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png"]

    def abort_photo(n, pixels):  # second Ctrl-C inside photo 1 of the rerun (p2): aborts it
        if n == 1:
            raise KeyboardInterrupt

    jobs, _ = batch.collect_inputs([str(src)])
    report = batch.run_batch(jobs, Inverter(abort_photo), config)
    assert [e.status for e in report.entries] == ["skipped", "skipped", "not processed", "not processed",
                                                  "not processed"]
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png"]
    _no_partials(out)

    restorer = Inverter()
    code, log = _run([str(src), "-o", str(out)], restorer)
    assert code == 0 and len(restorer.calls) == 3  # only the missing three were restored
    assert "3 restored, 2 skipped, 0 failed" in log
    code, _ = _run([str(src), "-o", str(out), "--overwrite"], restorer)
    assert code == 0 and len(restorer.calls) == 8


def test_real_sigint_stops_after_current_photo(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _five(src)

    def sigint(n, pixels):
        if n == 1:
            os.kill(os.getpid(), signal.SIGINT)

    code, log = _run([str(src), "-o", str(out), "--report", str(tmp_path / "r.json")], Inverter(sigint))
    assert code == 130
    assert sorted(p.name for p in out.iterdir()) == ["p0.png"]
    statuses = [e["status"] for e in json.loads((tmp_path / "r.json").read_text())["inputs"]]
    assert statuses == ["ok"] + ["not processed"] * 4
    assert "stopping after the current photo" in log


def test_an_abort_while_the_mask_is_written_leaves_the_photo_to_redo(tmp_path, monkeypatch):
    # with --save-mask, a second Ctrl-C (or SIGTERM) while the mask was written kept the restored photo
    # without its mask, reported "not processed, no output written"; the rerun then skipped it as
    # "already restored from this source, without its mask", so it never got one without --overwrite
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.png")
    write_mask = batch.write_mask

    def aborted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "write_mask", aborted)
    jobs, _ = batch.collect_inputs([str(src)])
    report = batch.run_batch(jobs, Inverter(), batch.BatchConfig(outdir=out, save_mask=True))
    assert [e.status for e in report.entries] == ["not processed"] and report.exit_code == 130
    assert list(out.iterdir()) == []  # nothing of the photo: neither half-written nor without its mask
    monkeypatch.setattr(run, "write_mask", write_mask)
    restorer = Inverter()
    code, log = _run([str(src), "-o", str(out), "--save-mask"], restorer)
    assert code == 0 and len(restorer.calls) == 1, log  # redone, with its mask
    assert sorted(p.name for p in out.iterdir()) == ["a.mask.png", "a.png"]


def test_collisions_never_overwrite(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.jpg", value=(200, 0, 0))
    _img(src / "a.png", value=(0, 200, 0))
    _img(src / "a.tif", value=(0, 0, 200))
    code, _ = _run([str(src), "-o", str(out), "--format", "png"], Inverter())
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a.png", "a_jpg.png", "a_tif.png"]
    assert np.allclose(read_photo(out / "a.png").pixels[0, 0], 1 - np.array([0, 200, 0]) / 255)
    code, _ = _run([str(src), "-o", str(tmp_path / "same")], Inverter())
    assert sorted(p.name for p in (tmp_path / "same").iterdir()) == ["a.jpg", "a.png", "a.tif"]


def test_masks_matched_by_stem_not_order(tmp_path):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _img(src / "a.png")
    _img(src / "b.png")
    _img(src / "c.png")
    masks.mkdir()
    half = np.zeros((8, 12), np.uint8)
    half[:, :6] = 255
    Image.fromarray(half).save(masks / "b.png")              # the left half defect
    m = np.zeros((8, 12), np.uint8)
    m[2:4, 3:9] = 255
    Image.fromarray(m).save(masks / "a.png")
    Image.new("L", (5, 5), 255).save(masks / "c.png")        # wrong size
    Image.new("L", (12, 8), 255).save(masks / "zzz.png")     # stray mask, never used
    restorer = Inverter()
    code, log = _run([str(src), "-o", str(out), "--mask-dir", str(masks)], restorer)
    assert code == 1
    (pa, ma), (pb, mb) = restorer.calls
    assert ma.dtype == bool and ma.shape == (8, 12) and ma.sum() == 12 and ma[2:4, 3:9].all()
    assert mb[:, :6].all() and not mb[:, 6:].any()
    assert "mask is 5x5 but the photo is 12x8" in log


def test_a_mask_drawn_on_a_sideways_photos_stored_pixels_is_told_to_be_turned(tmp_path):
    """A TIFF stored sideways (EXIF orientation 6) is restored as shown; a mask drawn on its stored pixels
    was refused as 'mask is 8x12 but the photo is 12x8', which did not say why."""
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _img(src / "a.png")
    masks.mkdir()
    Image.new("L", (8, 12), 255).save(masks / "a.png")  # the photo's size turned
    code, log = _run([str(src), "-o", str(out), "--mask-dir", str(masks)], Inverter())
    assert code == 1
    assert "mask is 8x12 but the photo is 12x8 as it is shown (its EXIF orientation applied): turn the " \
           "mask the same way" in log


def test_dust_and_dilation_beside_a_mask_are_said_to_add_nothing(tmp_path):
    # a photo given a mask is repaired as given: --dust and --dark-dust add nothing to it, and a sweep of
    # restore's options found --mask-dir --dust pixel for pixel as --mask-dir alone, without a word
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _img(src / "a.png")
    _img(src / "b.png")
    masks.mkdir()
    m = np.zeros((8, 12), np.uint8)
    m[2:4, 3:9] = 255
    Image.fromarray(m).save(masks / "a.png")
    report = tmp_path / "r.json"
    code, log = _run([str(src), "-o", str(out), "--mask-dir", str(masks), "--dust", "--dark-dust",
                      "--report", str(report)], Inverter())
    assert code == 0, log
    a, b = json.loads(report.read_text())["inputs"]
    assert any("--dust and --dark-dust" in w and "mask" in w for w in a["warnings"]), a["warnings"]
    assert not any("--dust" in w for w in b["warnings"]), b["warnings"]  # b has no mask: its dust is found
    # nor is a mask grown by --mask-dilation (it grows predicted masks)
    code, log = _run([str(src / "a.png"), "-o", str(tmp_path / "grown"), "--mask-dir", str(masks),
                      "--mask-dilation", "3"], Inverter())
    assert code == 0 and "--mask-dilation 3: nothing added to the mask" in log, log


def test_an_inverted_mask_fails_its_photo_naming_the_mask(tmp_path):
    """A mask marking almost the whole photo (black defects on white: inverted) is refused with its
    file's name before the photo is restored; it would have painted the photo over."""
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _img(src / "a.png")
    masks.mkdir()
    inverted = np.full((8, 12), 255, np.uint8)
    inverted[3] = 0
    Image.fromarray(inverted).save(masks / "a.png")
    restorer = Inverter()
    code, log = _run([str(src), "-o", str(out), "--mask-dir", str(masks)], restorer)
    assert code == 1 and restorer.calls == []
    assert f"{masks / 'a.png'}: the mask marks 88 % of the photo as damaged" in log
    assert "is it inverted?" in log and not (out / "a.png").exists()


def test_a_mask_files_coloured_marks_are_read_as_the_apis_are(tmp_path):
    """A red brush on a black mask marks defects, in a --mask-dir file as in an array given to the API
    (the file reader averaged the channels: pure red read as 0.33, no defect)."""
    from oldphoto.masks import user_mask

    marks = np.zeros((8, 12, 3), np.uint8)
    marks[2:4, 3:9] = (255, 0, 0)
    Image.fromarray(marks).save(tmp_path / "a.png")
    from_file = batch.read_mask(tmp_path / "a.png", (12, 8), None)
    assert np.array_equal(from_file, user_mask(marks, (8, 12)))
    assert from_file.sum() == 12 and from_file[2:4, 3:9].all()


def test_masks_by_exact_stem_and_saved_masks_given_back(tmp_path):
    """``a.2.png`` is the mask of ``a.2``, not of ``a`` (it sorts first); and an output folder written with
    --save-mask, its masks edited, serves as --mask-dir: ``a.mask.png`` there, not the restored ``a.png``."""
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _img(src / "a.png")
    _img(src / "a.2.png")
    masks.mkdir()
    top, left = np.zeros((8, 12), np.uint8), np.zeros((8, 12), np.uint8)
    top[0], left[:, 0] = 255, 255
    Image.fromarray(top).save(masks / "a.png")
    Image.fromarray(left).save(masks / "a.2.png")
    restorer = Inverter()
    assert _run([str(src), "-o", str(out), "--mask-dir", str(masks), "--save-mask"], restorer)[0] == 0
    (_, mask_a2), (_, mask_a) = restorer.calls  # inputs in name order: a.2.png, a.png
    assert np.array_equal(mask_a2, left > 0) and np.array_equal(mask_a, top > 0)
    assert sorted(p.name for p in out.iterdir()) == ["a.2.mask.png", "a.2.png", "a.mask.png", "a.png"]
    edited = np.zeros((8, 12), np.uint8)
    edited[5, 2:7] = 255
    Image.fromarray(edited).save(out / "a.mask.png")  # the user's edit of the saved mask
    from oldphoto.stages.defects import Defects

    given = []

    def repair(pixels, mask):
        given.append(mask)
        return types.SimpleNamespace(image=1.0 - pixels, mask=mask, faces=[], models={"fake": "invert"},
                                     path="scratch", fidelity=1.0, defects=Defects(np.zeros_like(mask)))

    assert _run([str(src / "a.png"), "-o", str(tmp_path / "again"), "--mask-dir", str(out)], repair)[0] == 0
    assert len(given) == 1 and np.array_equal(given[0], edited > 0)
    record = read_provenance(tmp_path / "again" / "a.png")["restoration"]
    assert record["mask"] == "user" and "defects" not in record  # the file says whose mask it was


def _dark_and_light(src: Path, light: str):
    """``a.jpg`` (dark) and ``a.<light>`` (light) in ``src``, which share a stem, and a fake repair that
    marks row 1 of a dark photo and row 6 of a light one (or takes the mask given), recording the masks
    it is given by darkness: (given, repair)."""
    from oldphoto.stages.defects import Defects

    _img(src / "a.jpg", value=(10, 10, 10))
    _img(src / f"a.{light}", value=(200, 200, 200))
    given: dict[bool, list] = {True: [], False: []}

    def repair(pixels, mask):
        dark = bool(pixels.mean() < 0.5)
        given[dark].append(mask)
        row = np.zeros(pixels.shape[:2], bool)
        row[1 if dark else 6] = True
        return types.SimpleNamespace(image=pixels, mask=row if mask is None else mask, faces=[],
                                     models={"fake": "rows"}, path="scratch", fidelity=1.0,
                                     defects=Defects(row))

    return given, repair


def test_saved_masks_go_back_to_their_own_inputs_and_a_restored_photo_is_no_mask(tmp_path):
    """a.jpg and a.tif share a stem: --save-mask names the second's mask a_tif.mask.png, and given back
    each input gets its own (their provenance says whose); a folder written without --save-mask holds
    restored photos named like the inputs, which are never taken for masks."""
    src, out = tmp_path / "in", tmp_path / "out"
    given, repair = _dark_and_light(src, "tif")
    assert _run([str(src), "-o", str(out), "--save-mask"], repair)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "a.mask.png", "a.tif", "a_tif.mask.png"]
    assert _run([str(src), "-o", str(tmp_path / "again"), "--mask-dir", str(out)], repair)[0] == 0
    assert np.flatnonzero(given[True][1].any(axis=1)).tolist() == [1]   # a.jpg: its own mask
    assert np.flatnonzero(given[False][1].any(axis=1)).tolist() == [6]  # a.tif: a_tif.mask.png
    code, log = _run([str(src), "-o", str(tmp_path / "third"), "--mask-dir", str(tmp_path / "again")], repair)
    assert given[True][2] is None and given[False][2] is None and "no mask named" in log


def test_saved_masks_edited_in_an_image_editor_still_go_back_to_their_own_inputs(tmp_path):
    """An editor that saves a mask drops the provenance that said whose it was: a.png's a_png.mask.png
    is still a.png's, not a.jpg's a.mask.png (found by a user review: a.png got a.jpg's mask)."""
    from PIL import Image

    src, out = tmp_path / "in", tmp_path / "out"
    given, repair = _dark_and_light(src, "png")
    assert _run([str(src), "-o", str(out), "--save-mask"], repair)[0] == 0
    edited = np.zeros((8, 12), np.uint8)
    edited[2:5, 3:7] = 255
    Image.fromarray(edited).save(out / "a_png.mask.png")  # re-saved without oldphoto's text chunk
    Image.open(out / "a.mask.png").convert("L").save(out / "a.mask.png")
    assert _run([str(src), "-o", str(tmp_path / "again"), "--mask-dir", str(out)], repair)[0] == 0
    assert np.array_equal(given[False][1], edited > 0)  # a.png: its own edited mask
    assert np.flatnonzero(given[True][1].any(axis=1)).tolist() == [1]  # a.jpg: its own


def test_a_rerun_with_save_mask_says_the_skipped_photos_masks_were_not_made(tmp_path):
    # found by the archivist review: adding --save-mask to a rerun skipped every photo and wrote no mask,
    # the log saying only "use --overwrite to redo it"
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.png")
    _img(src / "b.png", value=(200, 10, 10))
    assert _run([str(src), "-o", str(out)], Inverter())[0] == 0
    (out / "b.png").unlink()  # b is made again, with its mask; a is skipped, and says why it has none
    code, log = _run([str(src), "-o", str(out), "--save-mask"], Inverter())
    assert code == 0 and (out / "b.mask.png").exists() and not (out / "a.mask.png").exists()
    assert "without its mask (use --overwrite to redo it with its mask)" in log, log
    code, log = _run([str(src), "-o", str(out), "--save-mask"], Inverter())
    lines = {name: next(line for line in log.splitlines() if f"{name}.png" in line) for name in "ab"}
    assert "without its mask" in lines["a"] and "without its mask" not in lines["b"], log  # b has its mask


def test_a_photo_is_never_its_own_mask(tmp_path):
    # masks kept beside the photos (``--mask-dir`` the photos' own folder): a photo without a mask of its
    # own matched ``<stem>.*`` with itself, and its bright half was "repaired" as defects, silently
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.jpg")
    _img(src / "b.jpg", value=(250, 250, 250))
    m = np.zeros((8, 12), np.uint8)
    m[3] = 255
    Image.fromarray(m).save(src / "a.mask.png")
    restorer = Inverter()
    code, log = _run([str(src / "a.jpg"), str(src / "b.jpg"), "-o", str(out), "--mask-dir", str(src)],
                     restorer)
    assert code == 0 and len(restorer.calls) == 2
    assert np.array_equal(restorer.calls[0][1], m > 0)  # a.jpg: its mask
    assert restorer.calls[1][1] is None and "no mask named b.* in" in log  # b.jpg: detected as usual


def test_scratches_off_with_mask_dir_is_refused_before_any_work(tmp_path):
    # --scratches off repairs no defect: the hand-made masks of --mask-dir were ignored without a word
    # (the photos came out as with --scratches off alone, exit 0), a user's marks lost
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _img(src / "a.png")
    masks.mkdir()
    Image.new("L", (12, 8), 255).save(masks / "a.png")
    restorer = Inverter()
    code, log = _run([str(src), "-o", str(out), "--mask-dir", str(masks), "--scratches", "off"], restorer)
    assert code == 2 and not restorer.calls and not out.exists(), log
    assert "--scratches off" in log and "--mask-dir" in log and "Traceback" not in log, log


def test_damaged_exif_is_said_in_the_photos_line_not_on_the_console(tmp_path, recwarn):
    src, out = tmp_path / "in", tmp_path / "out"
    data = _img(src / "a.jpg", size=(16, 16)).read_bytes()
    payload = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\x00" * 20  # an IFD of 65535 entries
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    (src / "a.jpg").write_bytes(data[:2] + app1 + data[2:])
    code, log = _run([str(src), "-o", str(out), "--report", str(tmp_path / "r.json")], Inverter())
    assert code == 0 and not [w for w in recwarn if "EXIF" in str(w.message)]  # (plan_outputs' look too)
    (entry,) = json.loads((tmp_path / "r.json").read_text())["inputs"]
    assert entry["status"] == "ok" and any("Corrupt EXIF data" in w for w in entry["warnings"])


def test_heic_photos_are_found_and_restored_as_jpeg(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif", reason="HEIC support: pip install 'oldphoto[heif]'")
    pillow_heif.register_heif_opener()
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "IMG_0001.HEIC", fmt="HEIF")
    assert _run([str(src), "-o", str(out)], Inverter())[0] == 0
    assert [p.name for p in out.iterdir()] == ["IMG_0001.jpg"]


def test_mask_oriented_like_displayed_photo(tmp_path):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 12x8, displayed 8x12
    _img(src / "rot.jpg", exif=exif.tobytes())
    masks.mkdir()
    Image.new("L", (8, 12), 0).save(masks / "rot.png")  # (8 wide, 12 high, as displayed)
    restorer = Inverter()
    assert _run([str(src), "-o", str(out), "--mask-dir", str(masks)], restorer)[0] == 0
    assert restorer.calls[0][1].shape == (12, 8)
    assert Image.open(out / "rot.jpg").size == (8, 12)


def test_globs_and_files(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "x" / "one.png")
    _img(src / "x" / "two.png")
    _img(src / "y" / "three.png")
    code, _ = _run([str(src / "*" / "*.png"), str(src / "x" / "one.png"), str(tmp_path / "missing.png"),
                    "-o", str(out)], Inverter())
    assert code == 1  # the missing file
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == [
        "x/one.png", "x/two.png", "y/three.png"]


def test_progress_plain_lines_and_tty_bar(tmp_path):
    src = tmp_path / "in"
    _img(src / "a.png")
    args = _parser().parse_args(["restore", str(src), "-o", str(tmp_path / "o1")])
    plain = io.StringIO()
    assert batch.main(args, restore=Inverter(), stream=plain) == 0
    assert "[1/1] ok:" in plain.getvalue()

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    args = _parser().parse_args(["restore", str(src), "-o", str(tmp_path / "o2")])
    assert batch.main(args, restore=Inverter(), stream=tty) == 0
    assert "photo" in tty.getvalue() and "[1/1]" not in tty.getvalue()


def test_pipeline_notices_go_above_the_bar_not_into_it(tmp_path):
    # "face enhancement is off: ..." (a logging warning of the pipeline, on every run with the bundled
    # weights) went straight to the terminal, after the bar's "0/1 [00:00<?, ?photo/s]" on its line
    import logging

    src = tmp_path / "in"
    _img(src / "a.png")
    notice = "face enhancement is off: no face weights are installed"

    def restore(pixels, mask):
        logging.getLogger("oldphoto.pipeline").warning(notice)
        return Inverter()(pixels, mask)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    for stream in (Tty(), io.StringIO()):
        args = _parser().parse_args(["restore", str(src), "-o", str(tmp_path / f"o{id(stream)}")])
        assert batch.main(args, restore=restore, stream=stream) == 0
        line = next(line for line in stream.getvalue().split("\n") if notice in line)
        assert line.rsplit("\r", 1)[-1] == notice, repr(stream.getvalue())
    assert not logging.getLogger("oldphoto").handlers  # (only while the batch runs)


def test_strip_metadata_and_quality(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    exif = Image.Exif()
    exif[0x010F] = "Cam"
    _img(src / "a.jpg", exif=exif.tobytes(), size=(64, 48))
    assert _run([str(src), "-o", str(out), "--strip-metadata", "--quality", "40"], Inverter())[0] == 0
    with Image.open(out / "a.jpg") as im:
        assert not im.getexif()
    assert read_provenance(out / "a.jpg") is None
    assert _run([str(src), "-o", str(out), "--quality", "0"], Inverter())[0] == 2


def test_cli_wiring_with_real_pipeline(tmp_path):
    pytest.importorskip("oldphoto.pipeline")
    from oldphoto.cli import build_parser

    args = build_parser().parse_args(["restore", str(tmp_path), "-o", str(tmp_path / "out")])
    assert args.func is batch.main
    from oldphoto.pipeline import RestoreOptions

    assert RestoreOptions.from_args(args) is not None


def test_restore_help_gives_the_exit_codes(capsys):
    # they were only in the docs: a script's author reading `oldphoto restore --help` could not tell
    # "some photos failed" from "bad options" or an interrupt
    from oldphoto.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["restore", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 when every input was restored or skipped on purpose; 1 when any failed" in text
    assert all(f"{code} " in text for code in ("2", "130", "143", "129", "141"))


def test_restore_help_says_when_the_tone_is_kept(capsys):
    # "keep black-and-white and toned (sepia) photos in their own tone": --no-keep-tone alone gave the
    # same pixels on every photo of a sweep (gray and toned prints keep their own colours anyway); it acts
    # only with the networks' colours or --unfade colour
    from oldphoto.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["restore", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    keep_tone = text[text.index("--keep-tone, --no-keep-tone"):text.index("--colour {photo,network}")]
    assert "--colour network" in keep_tone and "--unfade colour" in keep_tone, keep_tone
    assert "alone" in keep_tone, keep_tone
    # nor was a gray photo kept gray with --compat official (the networks' colours, a brown cast on Solvay)
    compat = text[text.index("--compat {none,official}"):text.index("--upscale {1,2,4}")]
    assert "gray" in compat and "networks' colours" in compat, compat


def test_a_misspelt_option_value_is_said_in_two_lines(capsys):
    # argparse printed its usage of every option, 30 lines, above the one line that says what is wrong
    from oldphoto.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["restore", "a.jpg", "-o", "out", "--scratches", "of"])
    lines = capsys.readouterr().err.splitlines()
    assert exc.value.code == 2
    assert lines == ["usage: oldphoto restore [options] INPUT... -o OUTDIR",
                     "oldphoto restore: error: argument --scratches: invalid choice: 'of' (choose from "
                     "'auto', 'on', 'off')"]


def test_scratches_help_says_what_auto_and_on_repair():
    """The help once said auto repairs "when the predicted mask finds defects": it repairs only on a
    hole or strokes adding up to the short side, and `on` also repairs scene content on clean photos."""
    import argparse

    from oldphoto.options import RestoreOptions

    parser = argparse.ArgumentParser()
    RestoreOptions.add_arguments(parser)
    action = next(a for a in parser._actions if "--scratches" in a.option_strings)
    assert "short side" in action.help and "finds defects" not in action.help
    assert "letters" in action.help  # what `on` takes for scratches


def test_setup_error_stops_batch_with_reason(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _five(src)

    def no_weights(pixels, mask):
        raise batch.SetupError("cannot set up the restorer: no weights for 'vae_a'")

    code, log = _run([str(src), "-o", str(out), "--report", str(tmp_path / "r.json")], no_weights)
    assert code == 1 and not out.exists()
    report = json.loads((tmp_path / "r.json").read_text())
    assert [e["status"] for e in report["inputs"]] == ["not processed"] * 5
    assert "no weights for 'vae_a'" in report["fatal"] and "no weights" in log.splitlines()[-1]


def test_saved_mask_report_and_provenance_say_what_was_repaired(tmp_path):
    from oldphoto.stages.defects import Defects

    src, out = tmp_path / "in", tmp_path / "out"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 12x8, displayed 8x12
    _img(src / "rot.jpg", exif=exif.tobytes())
    _img(src / "clean.png")

    def restore(pixels, mask):
        if pixels.shape[:2] == (8, 12):  # the clean photo: nothing repaired
            return FakeResult(pixels, None, path="quality", fidelity=0.5,
                              defects=Defects(np.zeros((8, 12), bool)))
        m = np.zeros(pixels.shape[:2], bool)
        m[1:3, :] = True  # the top two displayed rows
        return FakeResult(pixels, m, path="scratch", fidelity=0.5,
                          defects=Defects(m, strokes=1, specks=4, content=2, stroke_length=1.25))

    report = tmp_path / "report.json"
    assert _run([str(src), "-o", str(out), "--save-mask", "--report", str(report)], restore)[0] == 0
    with Image.open(out / "rot.mask.png") as im:
        saved = np.asarray(im)
    assert saved.shape == (12, 8) and saved.dtype == np.uint8  # the displayed photo's size
    assert (saved[1:3] == 255).all() and (saved[3:] == 0).all() and (saved[0] == 0).all()
    with Image.open(out / "clean.mask.png") as im:
        assert im.size == (12, 8) and not np.asarray(im).any()
    entries = {Path(e["input"]).name: e for e in json.loads(report.read_text())["inputs"]}
    rot = entries["rot.jpg"]
    assert rot["mask"] == str(out / "rot.mask.png")
    assert rot["restoration"] == {"path": "scratch", "repaired_fraction": pytest.approx(16 / 96, abs=1e-6),
                                  "fidelity": 0.5, "mask": "detected",
                                  "defects": {"strokes": 1, "stroke_length": 1.25,
                                                               "dark_length": 0.0,
                                                               "stroke_alignment": 0.0,
                                                               "specks": 4, "blobs": 0, "dust": 0,
                                                               "dust_only": False,
                                                               "print_edges_left": 0,
                                                               "left_as_content": 2,
                                                               "lines_left_alone": False,
                                                               "lines_in_doubt": True}}
    assert entries["clean.png"]["restoration"]["path"] == "quality"
    assert read_provenance(out / "rot.jpg")["restoration"] == rot["restoration"]
    assert read_provenance(out / "clean.png")["restoration"]["repaired_fraction"] == 0.0


def test_report_never_replaces_an_input_or_a_file_it_did_not_write(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    photo = _img(src / "a.png")
    before = photo.read_bytes()
    restorer = Inverter()
    code, log = _run([str(src), "-o", str(out), "--report", str(photo)], restorer)
    assert code == 2 and photo.read_bytes() == before and not restorer.calls
    assert "not an oldphoto report" in log
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    assert _run([str(src), "-o", str(out), "--report", str(notes)], restorer)[0] == 2
    assert notes.read_text() == '{"mine": 1}' and not restorer.calls
    report = tmp_path / "report.json"
    assert _run([str(src), "-o", str(out), "--report", str(report)], restorer)[0] == 0
    assert _run([str(src), "-o", str(out), "--report", str(report)], restorer)[0] == 0  # its own: rewritten
    assert json.loads(report.read_text())["summary"]["skipped"] == 1


def test_unwritable_output_folder_or_report_refused_before_any_work(tmp_path):
    src = tmp_path / "in"
    _img(src / "a.png")
    blocker = tmp_path / "plain_file"
    blocker.write_text("not a folder")
    restorer = Inverter()
    code, log = _run([str(src), "-o", str(blocker / "out")], restorer)
    assert code == 2 and not restorer.calls and "cannot write into the output folder" in log
    code, log = _run([str(src), "-o", str(tmp_path / "out"), "--report", str(blocker / "r.json")], restorer)
    assert code == 2 and not restorer.calls and "cannot write the report" in log
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path):
    # /proc passes a permission check (for root), yet nothing can be made in it: the first photo was
    # restored, then failed its write, and every other photo after it
    src = tmp_path / "in"
    _img(src / "a.png")
    _img(src / "b.png")
    restorer = Inverter()
    for outdir in ("/proc/oldphoto-out/x", "/proc"):
        code, log = _run([str(src), "-o", outdir, "--report", str(tmp_path / "r.json")], restorer)
        assert code == 2 and not restorer.calls, log
        assert log.startswith(f"oldphoto restore: cannot write into the output folder {outdir}: ")
        assert log.count("\n") == 1 and not (tmp_path / "r.json").exists()
    code, log = _run([str(src), "-o", str(tmp_path / "out"), "--report", "/proc/r.json"], restorer)
    assert code == 2 and not restorer.calls and "cannot write the report /proc/r.json: " in log
    assert not (tmp_path / "out").exists()


def test_an_output_given_as_a_file_says_that_o_takes_a_folder(tmp_path):
    # `-o photo.jpg` (the input itself, or a file meant as the output's name) said only "cannot write into
    # the output folder photo.jpg: .../photo.jpg is not a folder"
    _img(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    restorer = Inverter()
    code, log = _run([str(tmp_path / "a.png"), "-o", str(tmp_path / "a.png")], restorer)
    assert code == 2 and not restorer.calls
    assert log == (f"oldphoto restore: -o {tmp_path / 'a.png'} is a file; -o takes a folder, where the "
                   f"restored photos keep their names (e.g. -o {tmp_path / 'restored'})\n")
    assert (tmp_path / "a.png").read_bytes() == before


def test_report_lost_at_the_end_is_a_failure(tmp_path):
    src, out, reports = tmp_path / "in", tmp_path / "out", tmp_path / "reports"
    _img(src / "a.png")
    reports.mkdir()

    def lose_the_report_folder(calls, pixels):
        for child in reports.iterdir():
            child.unlink()
        reports.rmdir()
        reports.write_text("the folder is gone")

    code, log = _run([str(src), "-o", str(out), "--report", str(reports / "r.json")],
                     Inverter(lose_the_report_folder))
    assert (out / "a.png").exists() and "cannot write the report" in log
    assert code == 1


def test_a_folder_without_photos_is_a_failure_that_says_why(tmp_path):
    (tmp_path / "empty").mkdir()
    _img(tmp_path / "boxes" / "1920" / "a.png")
    restorer = Inverter()
    code, log = _run([str(tmp_path / "empty"), "-o", str(tmp_path / "out")], restorer)
    assert code == 1 and "empty: no photos in this folder" in log
    code, log = _run([str(tmp_path / "boxes"), "-o", str(tmp_path / "out")], restorer)
    assert code == 1 and "add -r" in log and not restorer.calls
    code, log = _run([str(tmp_path / "boxes"), "-r", "-o", str(tmp_path / "out")], restorer)
    assert code == 0 and len(restorer.calls) == 1
    (tmp_path / "boxes" / "index.txt").write_text("box list")  # a note beside the sub-folders is no photo
    code, log = _run([str(tmp_path / "boxes"), "-o", str(tmp_path / "out2")], restorer)
    assert code == 1 and "add -r" in log and len(restorer.calls) == 1


def test_a_broken_link_to_a_photo_is_reported_not_left_out(tmp_path):
    src = tmp_path / "in"
    _img(src / "a.png")
    (src / "gone.jpg").symlink_to(tmp_path / "unmounted" / "gone.jpg")
    (src / "notes.txt").symlink_to(tmp_path / "nowhere.txt")  # not a photo: nothing to say
    for specs in ([str(src)], [str(src / "*.jpg"), str(src / "a.png")]):
        jobs, entries = batch.collect_inputs(specs)
        assert [j.input.name for j in jobs] == ["a.png"]
        assert [(Path(e.input).name, e.status, e.reason) for e in entries] == [
            ("gone.jpg", "failed", "broken link: the file it points to is missing")]


def test_a_linked_folder_is_restored_with_r_and_loops_and_unreadable_folders_are_said(tmp_path, monkeypatch):
    """`scans/1950 -> /archive/1950`: with -r its photos were silently left out (rglob follows no link), the
    batch reporting every photo done; a sub-folder that could not be listed was left out the same way."""
    src, out = tmp_path / "scans", tmp_path / "out"
    _img(src / "a.png")
    _img(src / "sub" / "b.png")
    _img(tmp_path / "archive" / "1950" / "c.png")
    (src / "1950").symlink_to(tmp_path / "archive" / "1950")
    (src / "sub" / "up").symlink_to(src)  # a loop
    (src / "again").symlink_to(src / "sub")  # the same folder twice: restored once, under its own name
    (src / "restored").symlink_to(out)  # restorations are never inputs
    code, log = _run([str(src), "-r", "-o", str(out)], Inverter())
    assert code == 0 and "3 restored" in log
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert made == ["1950/c.png", "a.png", "sub/b.png"]
    code, log = _run([str(src), "-r", "-o", str(out)], Inverter())
    assert code == 0 and "0 restored, 3 skipped" in log

    real = Path.iterdir

    def iterdir(self):
        if self.name == "sub":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    jobs, entries = batch.collect_inputs([str(src)], recursive=True, outdir=out.resolve())
    assert [j.relative.as_posix() for j in jobs] == ["1950/c.png", "a.png"]
    assert [(Path(e.input).name, e.status, e.reason) for e in entries] == [
        ("sub", "failed", "cannot read this folder (Permission denied)")]


def test_special_files_fail_without_being_opened(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening it would block forever: no writer
    jobs, entries = batch.collect_inputs([str(fifo)])
    assert jobs == [] and [(e.status, e.reason) for e in entries] == [("failed", "not a regular file")]
    _img(tmp_path / "a.png")  # in a folder, it was left out without a word
    for recursive in (False, True):
        jobs, entries = batch.collect_inputs([str(tmp_path)], recursive=recursive)
        assert [j.input.name for j in jobs] == ["a.png"]
        assert [(Path(e.input).name, e.status, e.reason) for e in entries] == [
            ("pipe.jpg", "failed", "not a regular file")]


def test_negative_max_pixels_is_a_bad_option(tmp_path):
    _img(tmp_path / "in" / "a.png")
    restorer = Inverter()
    code, log = _run([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--max-pixels", "-5"], restorer)
    assert code == 2 and "--max-pixels" in log and not restorer.calls


@pytest.mark.parametrize("option, said", [
    (["--fidelity", "7"], "--fidelity must be in [0, 1]"),
    (["--tile", "5"], "--tile must be at least 64"),
    (["--max-memory", "lots"], "--max-memory: cannot read memory size"),
    (["--max-memory", "inf"], "--max-memory: memory size must be positive"),
    (["--device", "foo"], "--device must be auto, cpu, cuda, cuda:N or mps"),
    (["--weights", "no/such/folder"], "--weights no/such/folder is not a folder"),
    (["--diffusion-depth", "nan"], "--diffusion-depth must be >= 0, got nan"),  # (nan < 0 is False)
    (["--texture-depth", "nan"], "--texture-depth must be >= 0, got nan"),
    (["--hr-above", "nan"], "--hr-above must be >= 0 megapixels, got nan"),
    (["--hr-above", "-1"], "--hr-above must be >= 0 megapixels, got -1.0"),
    (["--face-threshold", "nan"], "--face-threshold must be a number, got nan"),
])
def test_bad_restore_options_exit_2_before_any_photo(tmp_path, option, said):
    # also when every photo would be skipped: a typo is never silently accepted
    _img(tmp_path / "in" / "a.png")
    restorer = Inverter()
    assert _run([str(tmp_path / "in"), "-o", str(tmp_path / "out")], restorer)[0] == 0
    code, log = _run([str(tmp_path / "in"), "-o", str(tmp_path / "out"), *option], restorer)
    assert code == 2 and said in log and len(restorer.calls) == 1


def test_saved_mask_never_replaces_a_file_it_did_not_write(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.png")
    _img(src / "b.png")
    foreign = _img(out / "a.mask.png", value=(1, 2, 3))
    before = foreign.read_bytes()
    code, log = _run([str(src), "-o", str(out), "--save-mask"], Inverter())
    assert code == 0 and foreign.read_bytes() == before and "mask not saved" not in log
    assert read_provenance(out / "a_png.mask.png")["source"]["path"] == "a.png"  # the next name
    (out / "a_png.mask.png").write_bytes(b"mine now")
    code, log = _run([str(src), "-o", str(out), "--save-mask", "--overwrite"], Inverter())
    assert code == 0 and foreign.read_bytes() == before
    assert (out / "a_png.mask.png").read_bytes() == b"mine now"
    assert "a.mask.png exists and was not written by oldphoto" in log
    ours = out / "b.mask.png"
    assert ours.exists() and read_provenance(ours)["source"]["path"] == "b.png"
    ours.write_bytes(b"")  # made unrecognisable: from now on it is a file of someone else's
    code, log = _run([str(src), "-o", str(out), "--save-mask", "--overwrite"], Inverter())
    assert code == 0 and foreign.read_bytes() == before and ours.read_bytes() == b""
    ours.unlink()
    (out / "b_png.mask.png").unlink()
    code, log = _run([str(src), "-o", str(out), "--save-mask", "--overwrite"], Inverter())
    first = ours.read_bytes()
    code, log = _run([str(src), "-o", str(out), "--save-mask", "--overwrite"], Inverter())
    assert code == 0 and "b.mask.png" not in log and ours.read_bytes() != b"" and ours.exists()
    assert read_provenance(ours)["source"]["path"] == "b.png" and len(first) > 0


def test_saved_masks_of_outputs_sharing_a_stem_do_not_collide(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.jpg")
    _img(src / "a.tif", fmt="TIFF")
    for _ in range(2):  # the rerun (--overwrite) finds each mask again
        code, log = _run([str(src), "-o", str(out), "--save-mask", "--overwrite"], Inverter())
        assert code == 0 and "mask not saved" not in log
        assert read_provenance(out / "a.mask.png")["source"]["path"] == "a.jpg"
        assert read_provenance(out / "a_tif.mask.png")["source"]["path"] == "a.tif"


def test_a_cluster_run_into_a_new_folder_cleans_what_its_lost_writes_left(tmp_path, monkeypatch):
    """The output folder is made by the run's first write, so it could not be locked at the start; the
    lock is taken at the end to remove temporary files of writes cut off (here: as on SIGTERM)."""
    from oldphoto import cluster

    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.png")

    def fake_run(jobs, args, config, **kw):
        (out / "album").mkdir(parents=True)
        (out / ".a.mask.png.ecri74da.part").write_bytes(b"cut off")  # (its mask's write)
        (out / "a.png").write_bytes(b"a photo")
        return batch.BatchReport([batch.Entry(str(jobs[0].input), batch.NOT_PROCESSED, "interrupted",
                                              batch.ReasonCode.INTERRUPTED)],
                                 0.0, 1.0, True, None)

    monkeypatch.setattr(cluster, "check_arguments", lambda args: None)
    monkeypatch.setattr(cluster, "run", fake_run)
    code, log = _run([str(src), "-o", str(out), "--ray", "local"], Inverter())
    assert "removed 1 temporary file(s)" in log, log
    assert sorted(p.name for p in out.rglob("*")) == ["a.png", "album"]


def test_the_record_says_when_scratch_like_lines_were_left_alone():
    from types import SimpleNamespace

    from oldphoto.batch import NOTE_DOUBT_LENGTH, NOTE_STROKE_LENGTH, restoration_record
    from oldphoto.stages.defects import Defects

    def record(path, length):
        d = Defects(np.zeros((8, 8), bool), strokes=3, stroke_length=length)
        return restoration_record(SimpleNamespace(path=path, mask=None, fidelity=1.0, defects=d))["defects"]

    assert record("quality", NOTE_STROKE_LENGTH)["lines_left_alone"] is True
    assert record("quality", NOTE_STROKE_LENGTH - 0.01)["lines_left_alone"] is False
    assert record("scratch", 1.5)["lines_left_alone"] is False  # repaired: nothing was left alone
    # repaired on evidence that undamaged photos' scene lines reach too: said; not on more, nor for a tear
    assert record("scratch", 1.5)["lines_in_doubt"] is True
    assert record("scratch", NOTE_DOUBT_LENGTH)["lines_in_doubt"] is False
    assert record("quality", 0.9)["lines_in_doubt"] is False
    torn = Defects(np.zeros((8, 8), bool), strokes=3, blobs=1, stroke_length=0.4)
    assert restoration_record(SimpleNamespace(path="scratch", mask=None, fidelity=1.0,
                                              defects=torn))["defects"]["lines_in_doubt"] is False
    # --dust repaired the dust alone: the lines were left all the same
    d = Defects(np.zeros((8, 8), bool), strokes=3, stroke_length=0.7, dust=2, dust_only=True)
    dust = restoration_record(SimpleNamespace(path="scratch", mask=None, fidelity=1.0, defects=d))["defects"]
    assert dust["lines_left_alone"] is True and dust["dust_only"] is True


def test_progress_lines_say_what_was_repaired_or_left_alone():
    from oldphoto.batch import OK, Entry, Progress

    stream = io.StringIO()
    progress = Progress(3, stream=stream, enabled=False)
    scratched = {"path": "scratch", "repaired_fraction": 0.0299, "defects": {"stroke_length": 1.43}}
    lines = {"path": "quality", "repaired_fraction": 0.0,
             "defects": {"stroke_length": 0.99, "lines_left_alone": True}}
    clean = {"path": "quality", "repaired_fraction": 0.0,
             "defects": {"stroke_length": 0.2, "lines_left_alone": False}}
    dust = {"path": "scratch", "repaired_fraction": 0.0012,  # --dust: the dust alone repaired
            "defects": {"stroke_length": 0.7, "dust": 5, "dust_only": True, "lines_left_alone": True}}
    for name, record in (("a.png", scratched), ("b.png", lines), ("c.png", clean), ("d.png", dust)):
        progress.update(Entry(name, OK, output=f"out/{name}", seconds=1.0, restoration=record))
    a, b, c, d = stream.getvalue().splitlines()
    assert a.endswith("(1.0 s; 2.99 % repaired)")
    progress.update(Entry("e.png", OK, output="out/e.png", seconds=1.0,
                          restoration=scratched | {"defects": {"lines_in_doubt": True}}))
    assert "unmark them in the --save-mask mask" in stream.getvalue().splitlines()[-1]
    assert "scratch-like lines left alone" in b and "--scratches on repairs them" in b
    assert c.endswith("(1.0 s)")
    assert "0.12 % repaired; scratch-like lines left alone" in d


def test_a_long_stage_says_how_far_it_is_without_flooding_the_log():
    from oldphoto.batch import Progress

    stream, now = io.StringIO(), [0.0]
    progress = Progress(2, stream=stream, enabled=False, clock=lambda: now[0])
    for t, fraction in ((1, 0.1), (10, 0.3), (31, 0.5), (40, 0.6), (70, 0.9), (80, 1.0)):
        now[0] = t
        progress.step("enlarging", fraction)
    assert stream.getvalue().splitlines() == [f"    enlarging: {p}% of photo 1/2" for p in (10, 50, 90)]


def _disk_full_from(write: int, monkeypatch):
    """From the ``write``-th photo written on, the disk is full: the photo writer's atomic write gets a
    few bytes into its temporary file, then ENOSPC (as a real full disk does), and cleans up itself."""
    import errno

    from oldphoto.io import photo as photo_module

    real = photo_module.atomic_write
    count = {"writes": 0}

    def atomic_write(path, write_fn, **kwargs):
        count["writes"] += 1
        if count["writes"] < write:
            return real(path, write_fn, **kwargs)

        def partial(tmp):
            tmp.write_bytes(b"\x89PNG\r\n\x1a\n half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return real(path, partial, **kwargs)

    monkeypatch.setattr(photo_module, "atomic_write", atomic_write)
    return count


def test_a_full_disk_stops_the_batch_at_the_first_write_it_refuses(tmp_path, monkeypatch):
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "r.json"
    _five(src)
    _disk_full_from(2, monkeypatch)
    restorer = Inverter()
    code, log = _run([str(src), "-o", str(out), "--report", str(report)], restorer)
    assert code == 1 and len(restorer.calls) == 2  # the three after the refused write are not restored
    entries = json.loads(report.read_text())["inputs"]
    assert [e["status"] for e in entries] == ["ok", "failed"] + ["not processed"] * 3
    failed = entries[1]
    assert failed["reason"] == f"cannot write {out / 'p1.png'}: the disk is full (no space left on device)"
    assert failed["output"] is None and "Errno" not in log and "OSError" not in log
    advice = "free space and run again: finished photos are kept and skipped"
    assert all(e["reason"].startswith("not attempted: the disk is full") and advice in e["reason"]
               for e in entries[2:])
    summary = log.strip().splitlines()[-1]
    assert "1 restored" in summary and "1 failed" in summary and "3 not processed" in summary
    assert summary.endswith(advice) and str(out / "p1.png") in summary
    assert json.loads(report.read_text())["fatal"].endswith(advice)
    assert sorted(p.name for p in out.iterdir()) == ["p0.png"]
    _no_partials(out)

    monkeypatch.undo()  # space freed: the rerun keeps the finished photo and restores the others
    restorer = Inverter()
    code, log = _run([str(src), "-o", str(out)], restorer)
    assert code == 0 and len(restorer.calls) == 4 and "4 restored, 1 skipped, 0 failed" in log


def test_a_sub_folder_that_cannot_be_written_fails_its_photos_before_they_are_restored(tmp_path, monkeypatch):
    """Only the output folder itself is checked before the batch.  A sub-folder of it that cannot be
    written (a read-only mount, or a plain file of that name) made its photos fail only after they were
    restored, with a raw ``FileExistsError``/``OSError`` naming a temporary file; found by restoring a
    nested folder into an output folder whose ``sub`` was a read-only tmpfs."""
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.png")
    _img(src / "sub" / "b.png")
    _img(src / "sub" / "deeper" / "c.png")
    out.mkdir()
    (out / "sub").write_bytes(b"a plain file, not a folder")
    restorer = Inverter()
    code, log = _run([str(src), "-r", "-o", str(out), "--report", str(tmp_path / "r.json")], restorer)
    assert code == 1 and len(restorer.calls) == 1  # only a.png, whose folder can be written
    entries = {Path(e["input"]).name: e for e in json.loads((tmp_path / "r.json").read_text())["inputs"]}
    assert entries["a.png"]["status"] == "ok"
    for name, output in (("b.png", out / "sub" / "b.png"), ("c.png", out / "sub" / "deeper" / "c.png")):
        assert entries[name]["status"] == "failed"
        assert entries[name]["reason"].startswith(f"cannot write {output}: ")
        assert "is not a folder" in entries[name]["reason"]
    assert "Error" not in log and (out / "sub").read_bytes() == b"a plain file, not a folder"
    # a read-only sub-folder (os.access says so for root too on a read-only mount)
    (out / "sub").unlink()
    (out / "sub").mkdir()
    real_access = os.access
    monkeypatch.setattr(outputs.os, "access",
                        lambda path, mode: Path(path) != out / "sub" and real_access(path, mode))
    restorer = Inverter()
    code, log = _run([str(src), "-r", "-o", str(out)], restorer)
    assert code == 1 and restorer.calls == []  # a.png is skipped: restored by the first run
    assert f"cannot write {out / 'sub' / 'b.png'}: {out / 'sub'} is not writable" in log
    assert not list((out / "sub").iterdir())


def test_a_double_star_glob_without_r_says_it_looks_one_level_deep(tmp_path, monkeypatch):
    """Without -r, glob's ``**`` is a plain ``*``: ``"scans/**/*.jpg"`` restored the photos one folder
    down and silently left out those in scans/ itself and deeper, or failed with a bare "no file matches
    this pattern" (found trying the README's ``**`` glob without -r).  Both now say what -r does."""
    monkeypatch.chdir(tmp_path)
    for name in ("scans/top.png", "scans/a/one.png", "scans/a/b/two.png"):
        _img(Path(name))
    restorer = Inverter()
    code, log = _run(["scans/**/*.png", "-o", "out"], restorer)
    assert code == 0 and len(restorer.calls) == 1  # scans/a/one.png, as glob has it
    assert f"note: {batch.STARSTAR_NOTE}" in log and "add -r" in batch.STARSTAR_NOTE
    code, log = _run(["scans/**/*.jpg", "-o", "out2"], Inverter())
    assert code == 1 and f"no file matches this pattern ({batch.STARSTAR_NOTE})" in log
    restorer = Inverter()
    code, log = _run(["scans/**/*.png", "-r", "-o", "out3"], restorer)
    assert code == 0 and len(restorer.calls) == 3 and "note:" not in log


def test_a_full_disk_stops_a_cluster_run_the_same_way(tmp_path, monkeypatch):
    """The cluster's driver and its write stage (the Ray Data pipeline run in this process, Ray faked)."""
    from oldphoto import cluster

    class Ref:
        def __init__(self, value):
            self.value = value

        def hex(self):
            return f"{id(self):x}"

    fake_ray = types.ModuleType("ray")
    fake_ray.data = types.ModuleType("ray.data")
    fake_ray.is_initialized = lambda: True
    fake_ray.put = Ref
    fake_ray.get = lambda ref: ref.value
    monkeypatch.setitem(sys.modules, "ray", fake_ray)
    monkeypatch.setitem(sys.modules, "ray.data", fake_ray.data)
    restored = []

    def pipeline(ray, jobs, shared, layout, options, restore):
        def rows():
            for index, job in jobs:  # (each with its index in the batch)
                row = cluster._open_stage(cluster._row(index, "job", job), shared)
                if row["kind"] == "work":
                    step = batch.restore_photo(pickle.loads(row["data"]), restore,
                                               shared.get().config)
                    restored.append(index)
                    row = cluster._step_row(index, step)
                yield cluster._write_stage(row, shared)
        return types.SimpleNamespace(iter_rows=rows)

    monkeypatch.setattr(cluster, "check_arguments", lambda args: None)
    monkeypatch.setattr(cluster, "_layout", lambda ray, args: cluster._Layout(1, 1.0, 0, 1, 1.0, 0))
    monkeypatch.setattr(cluster, "_configure_data", lambda ray: None)
    monkeypatch.setattr(cluster, "_pipeline", pipeline)
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "r.json"
    _five(src)
    _disk_full_from(3, monkeypatch)
    code, log = _run([str(src), "-o", str(out), "--report", str(report), "--ray", "local"], Inverter())
    assert code == 1 and restored == [0, 1, 2]
    entries = json.loads(report.read_text())["inputs"]
    assert [e["status"] for e in entries] == ["ok", "ok", "failed", "not processed", "not processed"]
    assert entries[2]["reason"] == (f"cannot write {out / 'p2.png'}: the disk is full "
                                    "(no space left on device)")
    summary = log.strip().splitlines()[-1]
    assert "2 not processed" in summary and str(out / "p2.png") in summary
    assert summary.endswith("free space and run again: finished photos are kept and skipped")
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png"]
    _no_partials(out)


@pytest.mark.parametrize("option, said, advice", [
    (["--upscale", "2"], "no weights for 'upscale_x4' (--upscale)", "oldphoto weights download realesrgan"),
    (["--faces"], "--faces: no face weights (face_256 or face_512)", "oldphoto weights download"),
])
def test_missing_weights_for_an_option_are_a_bad_option_said_once(tmp_path, option, said, advice):
    """``--upscale 2`` with no upscaler installed, ``--faces`` with no face weights: exit 2 and the message
    once, before any photo is read, and without importing torch (the real command, in a process of its
    own; ``--faces`` stopped the batch at its first photo, the message twice and exit 1)."""
    import subprocess

    _img(tmp_path / "in" / "a.png")
    src = Path(__file__).resolve().parents[2] / "src"
    argv = ["restore", "--no-progress", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *option]
    code = (f"import sys\nfrom oldphoto.cli import main\nrc = main({argv!r})\n"
            "print('torch' in sys.modules)\nsys.exit(rc)\n")
    env = {**os.environ, "OLDPHOTO_WEIGHTS": str(tmp_path / "no_weights"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count(said) == 1, proc.stderr
    assert advice in proc.stderr and "restored" not in proc.stderr
    assert proc.stdout.strip() == "False"  # torch not imported
    assert not (tmp_path / "out").exists()


def test_upscale_weights_are_looked_for_where_the_restorer_looks(tmp_path, monkeypatch):
    from oldphoto.options import weights_problem

    args = _parser().parse_args(["restore", "in", "-o", "out", "--upscale", "4"])
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "user"))
    assert "no weights for 'upscale_x4'" in weights_problem(args)
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "upscale_x4.json").write_text("{}")  # (a broken card is the loader's to name)
    assert weights_problem(args) is None
    args = _parser().parse_args(["restore", "in", "-o", "out", "--upscale", "2",
                                 "--weights", str(tmp_path / "other")])
    assert str(tmp_path / "other") in weights_problem(args)
    assert weights_problem(_parser().parse_args(["restore", "in", "-o", "out"])) is None


def test_a_precision_or_device_this_machine_lacks_is_a_bad_option(tmp_path, monkeypatch, caplog):
    """``--precision fp16`` on a CPU stopped the batch at its first photo (exit 1, said twice)."""
    import torch

    from oldphoto.options import device_problem

    def problem(*option):
        return device_problem(_parser().parse_args(["restore", "in", "-o", "out", *option]))

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert problem() is None and problem("--precision", "bf16", "--device", "cpu") is None
    assert "bf16" not in caplog.text  # (said once, by the Restorer: emulated bf16 is slow, not wrong)
    assert problem("--precision", "fp16", "--device", "cpu").startswith("--precision fp16 needs a GPU")
    _img(tmp_path / "in" / "a.png")
    code, log = _run([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--device", "cpu", "--precision",
                      "fp16"], None)
    assert code == 2 and log.count("needs a GPU") == 1 and not (tmp_path / "out").exists()


def test_a_photo_too_small_to_restore_fails_with_a_reason_not_an_exception(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "dot.png", size=(1, 1))
    _img(src / "strip.jpg", size=(40, 7))
    _img(src / "fine.png", size=(8, 8))
    restorer = Inverter()
    code, log = _run([str(src), "-o", str(out), "--report", str(tmp_path / "r.json")], restorer)
    assert code == 1 and len(restorer.calls) == 1
    entries = json.loads((tmp_path / "r.json").read_text())["inputs"]
    reasons = {Path(e["input"]).name: e["reason"] for e in entries}
    assert reasons["dot.png"] == "too small to restore: 1×1 pixels (at least 8×8 are needed)"
    assert reasons["strip.jpg"] == "too small to restore: 40×7 pixels (at least 8×8 are needed)"
    assert reasons["fine.png"] == "" and "Error" not in log


def test_a_photo_too_small_for_the_official_mode_fails_with_a_reason_not_an_exception(tmp_path):
    # --compat official rounds sides to ×16: 8 px rounds to 0, and the restorer's refusal reached the
    # report as "ValueError: image of 8×8 pixels is too small for the official mode (rounds to 0×0)"
    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "eight.png", size=(129, 8))
    _img(src / "nine.png", size=(9, 9))
    restorer = Inverter()
    code, log = _run([str(src), "-o", str(out), "--compat", "official", "--report", str(tmp_path / "r.json")],
                     restorer)
    assert code == 1 and len(restorer.calls) == 1 and "Error" not in log
    entries = json.loads((tmp_path / "r.json").read_text())["inputs"]
    reasons = {Path(e["input"]).name: e["reason"] for e in entries}
    assert reasons["eight.png"].startswith("too small for --compat official: 129×8 pixels")
    assert reasons["nine.png"] == ""
    code, _ = _run([str(src), "-o", str(tmp_path / "off"), "--compat", "official", "--scratches", "off"],
                   restorer)
    assert code == 0  # (the quality path rounds to ×4: 8 px is enough)


def test_a_report_written_into_the_input_folder_is_not_listed_as_an_input_by_later_runs(tmp_path):
    src, out = tmp_path / "scans", tmp_path / "out"
    _img(src / "a.png")
    _img(src / "sub" / "b.png")
    (src / "scanner.json").write_text('{"dpi": 600}')  # someone's own file: still said to be skipped
    restorer = Inverter()

    def inputs(report_path, *extra):
        code, log = _run([str(src), "-r", "-o", str(out), "--report", str(report_path), *extra], restorer)
        assert code == 0, log
        return {Path(e["input"]).name: e["status"] for e in json.loads(report_path.read_text())["inputs"]}

    assert inputs(src / "report.json") == {"a.png": "ok", "b.png": "ok", "scanner.json": "skipped"}
    assert inputs(src / "report.json") == {"a.png": "skipped", "b.png": "skipped", "scanner.json": "skipped"}
    (src / "report.json").rename(src / "sub" / "monday.json")  # an earlier report, moved: still ours
    assert inputs(tmp_path / "r.json") == {"a.png": "skipped", "b.png": "skipped", "scanner.json": "skipped"}
    # a glob finds them too; a folder holding nothing but reports has no photos
    jobs, entries = batch.collect_inputs([str(src / "sub" / "*")])
    assert [j.input.name for j in jobs] == ["b.png"] and entries == []
    (src / "sub" / "b.png").unlink()
    jobs, entries = batch.collect_inputs([str(src / "sub")])
    assert jobs == [] and [(e.status, e.reason) for e in entries] == [("failed", "no photos in this folder")]


def test_a_full_disk_at_the_mask_leaves_nothing_of_the_photo_and_the_rerun_makes_both(tmp_path, monkeypatch):
    import errno

    src, out = tmp_path / "in", tmp_path / "out"
    _img(src / "a.png")
    real = mask_files.atomic_write

    def atomic_write(path, write_fn, **kwargs):
        if str(path).endswith(".mask.png"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, write_fn, **kwargs)

    monkeypatch.setattr(mask_files, "atomic_write", atomic_write)
    code, log = _run([str(src), "-o", str(out), "--save-mask"], Inverter())
    assert code == 1 and "the disk is full" in log and not list(out.iterdir())
    monkeypatch.undo()
    code, log = _run([str(src), "-o", str(out), "--save-mask"], Inverter())
    assert code == 0 and sorted(p.name for p in out.iterdir()) == ["a.mask.png", "a.png"]


def test_a_report_given_the_output_folders_path_is_refused(tmp_path):
    # `-o restored --report restored` (the report's file name forgotten), the folder not made yet: the
    # report was written as a file named `restored` before the first photo, and then every photo failed,
    # "cannot write restored/a.png: restored is not a folder", exit 1
    src, out = tmp_path / "in", tmp_path / "restored"
    _img(src / "a.png")
    restorer = Inverter()
    for report in (out, tmp_path):  # the output folder itself, or a folder above it
        code, log = _run([str(src), "-o", str(out), "--report", str(report)], restorer)
        assert code == 2 and not restorer.calls, log
        assert not out.exists()
    assert "is where the output folder" in _run([str(src), "-o", str(out), "--report", str(out)], restorer)[1]
    code, _ = _run([str(src), "-o", str(out), "--report", str(out / "report.json")], restorer)
    assert code == 0 and (out / "a.png").is_file() and (out / "report.json").is_file()


def test_running_out_of_memory_on_apple_mps_counts_as_out_of_memory(monkeypatch):
    # MPS raises a plain RuntimeError (not torch.OutOfMemoryError): the photo's reason must still say
    # "out of memory" (with its advice), and the MPS cache be emptied as the CUDA one is
    import torch

    exc = RuntimeError("MPS backend out of memory (MPS allocated: 17.80 GB, other allocations: 1.20 GB, "
                       "max allowed: 18.13 GB). Tried to allocate 256.00 MB on private pool.")
    assert run._is_out_of_memory(exc)
    assert not run._is_out_of_memory(RuntimeError("shapes cannot be multiplied"))
    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "empty_cache", lambda: emptied.append(True))
    run._free_memory()
    assert emptied == [True]


def test_a_batch_holds_the_output_folder_its_first_write_made(tmp_path):
    """A second batch started into the same folder while the first runs must leave the first's writes in
    progress alone; a batch whose folder did not exist at its start never held it, so the second took
    them for leftovers of an interrupted run and removed them (a cluster user's review)."""
    src, out = tmp_path / "in", tmp_path / "out"
    _five(src)
    second_could_clean = []

    def second_batch_starts(calls, pixels):
        if calls == 3:  # (two photos written: the folder is there)
            second_could_clean.append(outputs.FolderLock(out).take())

    code, log = _run([str(src), "-o", str(out)], Inverter(on_call=second_batch_starts))
    assert code == 0 and second_could_clean == [False]


def test_files_from_a_list_keep_their_paths_below_the_folder_holding_them(tmp_path, monkeypatch):
    """An archive's selection (a million photos, from a catalogue query) does not fit a command line:
    --files-from LIST restores the files it names, their tree kept (box1/001 and box2/001 stay apart)."""
    scans, out = tmp_path / "scans", tmp_path / "out"
    a = _img(scans / "box1" / "001.png", value=(10, 20, 30))
    b = _img(scans / "box2" / "001.png", value=(200, 20, 30))
    _img(scans / "box2" / "002.png")  # not listed
    odd = scans / "box1" / os.fsdecode(b"caf\xe9.png")  # a Latin-1 name, not UTF-8
    _img(odd)
    listing = tmp_path / "selection.txt"
    listing.write_bytes(b"# from the catalogue\n" + os.fsencode(a) + b"\r\n\n" + os.fsencode(b) + b"\n"
                        + os.fsencode(odd) + b"\n" + os.fsencode(scans / "gone.png") + b"\n"
                        + os.fsencode(scans / "box1") + b"\n")
    code, log = _run(["--files-from", str(listing), "-o", str(out)], Inverter())
    assert code == 1  # (the missing photo and the folder failed)
    written = sorted(p.relative_to(out) for p in out.rglob("*.png"))
    assert written == sorted([Path("box1/001.png"), Path("box2/001.png"), odd.relative_to(scans)])
    assert "gone.png: no such file or directory" in log and "a list names photo files" in log
    # from standard input, and refused where it would write beside the photos it lists
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(os.fsencode(a) + b"\n")))
    assert _run(["--files-from", "-", "-o", str(tmp_path / "out2")], Inverter())[0] == 0
    assert (tmp_path / "out2" / "001.png").is_file()
    code, log = _run(["--files-from", str(listing), "-o", str(scans)], Inverter())
    assert code == 2 and "is the input folder" in log
    # nothing to restore is said, as argparse said it when INPUT was required
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert _run(["--files-from", str(empty), "-o", str(out)], Inverter())[0] == 2
    code, log = _run(["-o", str(out)], Inverter())
    assert code == 2 and "give the photos to restore" in log
    code, log = _run(["--files-from", str(tmp_path / "missing.txt"), "-o", str(out)], Inverter())
    assert code == 2 and "missing.txt" in log


def test_files_from_finds_the_folder_holding_the_listed_photos_once(tmp_path, monkeypatch):
    # (each listed path is made absolute for it: a catalogue's selection may name a million photos)
    listing = tmp_path / "selection.txt"
    photos = [_img(tmp_path / "scans" / f"box{i}" / "001.png") for i in (1, 2)]
    listing.write_text("".join(f"{photo}\n" for photo in photos))
    lists = []
    real = inputs.list_root

    def list_root(listed):
        lists.append(list(listed))
        return real(listed)

    monkeypatch.setattr(cli, "list_root", list_root)
    monkeypatch.setattr(inputs, "list_root", list_root)
    assert _run(["--files-from", str(listing), "-o", str(tmp_path / "out")], Inverter())[0] == 0
    assert len(lists) == 1 and (tmp_path / "out" / "box2" / "001.png").is_file()

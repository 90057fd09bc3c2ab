"""The engine of `oldphoto serve` without any web framework: sessions, queue, files, cleanup."""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import shutil
import threading
import time

import numpy as np
import pytest
from PIL import Image
from web_support import FakeRestorer, png_bytes

from oldphoto import outputs
from oldphoto.io import PhotoError, read_provenance
from oldphoto.io import photo as photo_io
from oldphoto.pipeline import RestoreOptions
from oldphoto.web import engine as engine_module
from oldphoto.web.engine import (
    DONE,
    FAILED,
    QUEUED,
    Busy,
    Choices,
    Engine,
    NotRestored,
    OptionError,
    PhotoTimes,
    StorageFull,
    parse_choices,
    safe_name,
)
from oldphoto.web.marks import MarksError


def _engine(tmp_path, **kw) -> Engine:
    return Engine(kw.pop("restorer", None) or FakeRestorer(), tmp_path / "root", **kw)


def _add(engine: Engine, session, name: str, data: bytes, choices: Choices | None = None):
    job = engine.reserve(session, name)
    job.input.write_bytes(data)
    engine.inspect(job)
    engine.submit(job, choices or Choices())
    return job


def _wait(engine: Engine, job, timeout=30.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        info = engine.describe(job)
        if info["status"] in (DONE, FAILED):
            return info
        time.sleep(0.02)
    raise AssertionError("not finished")


@pytest.mark.parametrize("given,expected", [
    ("photo.jpg", "photo.jpg"), ("../../etc/passwd", "passwd"), ("C:\\Users\\me\\scan 1.tif", "scan 1.tif"),
    (".hidden.png", "hidden.png"), ("Großmutter (1931).jpg", "Großmutter (1931).jpg"),
    ("a\x00b;c.png", "a_b_c.png"),
    ("", "photo"), ("...", "photo"), ("x" * 300 + ".jpeg", "x" * 115 + ".jpeg"),
    ("写" * 200 + ".jpg", "写" * 38 + ".jpg"), ("é" * 100 + "." + "x" * 20, "é" * 60),
])
def test_safe_name(given, expected):
    assert safe_name(given) == expected
    # a file system allows 255 bytes (not characters) per name: room is left for ".mask.png" and the
    # temporary name of an atomic write
    assert len(safe_name(given).encode()) <= 120


def test_parse_choices_keeps_known_options_and_refuses_bad_values():
    c = parse_choices({"fidelity": "0.8", "faces": "off", "scratches": "on", "name": "x.png", "format": "jpg",
                       "quality": "80", "unknown": "1"})
    assert dict(c.overrides) == {"fidelity": 0.8, "faces": False, "scratches": "on"}
    assert c.format == "jpeg" and c.quality == 80
    assert parse_choices({}) == Choices()
    assert dict(parse_choices({"mask_dilation": "50"}).overrides) == {"mask_dilation": 50}
    chosen = parse_choices({"denoise": "off", "upscale": "4", "dust": "on", "dark_dust": "on",
                            "remove_grain": "on", "unfade": "colour"})
    assert dict(chosen.overrides) == {"denoise": False, "upscale": 4, "dust": True, "dark_dust": True,
                                      "remove_grain": True, "unfade": "colour"}
    # a disk of 100 000 px would hold the one worker (every user) for hours: refused at upload
    for bad in ({"fidelity": "lots"}, {"hr": "maybe"}, {"quality": "0"}, {"format": "gif"},
                {"mask_dilation": "51"}, {"mask_dilation": "100000"}):
        with pytest.raises(OptionError):
            parse_choices(bad)


def test_restores_writes_the_cli_files_and_previews(tmp_path):
    engine = _engine(tmp_path)
    try:
        session = engine.session(None)
        job = _add(engine, session, "scan.png", png_bytes())
        info = _wait(engine, job)
        assert info["status"] == DONE, info
        assert info["output"] == "scan.png" and info["width"] == 40 and info["height"] == 30
        assert info["restoration"]["path"] == "scratch" and info["faces"] == [[0.25, 0.23333, 0.5, 0.5]]
        out = np.asarray(Image.open(job.output))
        assert np.array_equal(out, 255 - np.asarray(Image.open(job.input)))  # the fake inverts
        assert read_provenance(job.output)["source"]["path"] == "scan.png"
        mask = np.asarray(Image.open(job.mask))  # --save-mask's file: white where repaired
        assert job.mask.name == "scan.mask.png" and mask[15].min() == 255 and mask[0].max() == 0
        overlay = np.asarray(Image.open(job.preview("overlay")))
        assert overlay.shape == (30, 40, 4) and overlay[15, :, 3].min() > 0 and overlay[0, :, 3].max() == 0
        assert Image.open(job.preview("before")).format == "JPEG"
    finally:
        engine.close()
    assert not (tmp_path / "root").exists() or not any((tmp_path / "root").iterdir())


def _marks(size, fill=128) -> tuple[np.ndarray, callable]:
    """A marks image of ``size`` (width, height) at ``fill``, and a function that makes its PNG."""
    levels = np.full((size[1], size[0]), fill, np.uint8)

    def data() -> bytes:
        buf = io.BytesIO()
        Image.fromarray(levels, "L").save(buf, format="PNG")
        return buf.getvalue()
    return levels, data


def test_marked_defects_are_repaired_and_unmarked_ones_left(tmp_path):
    """The page's marks (its preview's size, here half the photo's) are applied to the mask repaired
    last: the photo is restored again with that mask, repaired as given, and its files replaced."""
    engine = _engine(tmp_path)
    try:
        session = engine.session(None)
        job = _add(engine, session, "scan.png", png_bytes())  # 40x30, 'defects': the dark row 15
        assert _wait(engine, job)["status"] == DONE and engine.describe(job)["revision"] == 0
        levels, data = _marks((20, 15))
        levels[3, :] = 255   # a scratch the detector missed: rows 6-7 of the photo
        levels[7, :5] = 0    # not a defect: the first 10 pixels of row 15 (rows 14-15)
        engine.repair_marked(job, data())
        info = engine.describe(job)
        assert info["status"] == QUEUED and info["revision"] == 1 and info["marked"]
        with pytest.raises(NotRestored):  # not twice at once
            engine.repair_marked(job, data())
        assert _wait(engine, job)["status"] == DONE
        mask = np.asarray(Image.open(job.mask)) > 0
        expected = np.zeros((30, 40), bool)
        expected[6:8] = True
        expected[15, 10:] = True
        assert np.array_equal(mask, expected)
        assert read_provenance(job.output)["options"]["scratches"] == "on"  # the marks, as given
        assert job.output.name == "scan.png" and job.previews
        # a second round starts from the mask repaired last: all gray changes nothing
        engine.repair_marked(job, _marks((40, 30))[1]())
        assert _wait(engine, job)["status"] == DONE and engine.describe(job)["revision"] == 2
        assert np.array_equal(np.asarray(Image.open(job.mask)) > 0, expected)
        everything, data = _marks((40, 30))
        everything[:] = 255  # the page says why; the restorer would refuse the mask
        with pytest.raises(MarksError, match="the marks cover 100 % of the photo; at most 75 %"):
            engine.repair_marked(job, data())
        for bad in (b"not an image", _marks((10, 30))[1]()):
            with pytest.raises(MarksError):
                engine.repair_marked(job, bad)
        assert engine.describe(job)["status"] == DONE  # bad marks change nothing
    finally:
        engine.close()


def test_marks_start_from_the_last_marks_not_a_grown_repair(tmp_path):
    """The HR path repairs a dilated copy of a user mask; a second round of marks must start from the
    mask the user gave, or the mask would grow at every round."""

    class Dilating(FakeRestorer):
        def restore(self, pixels, mask=None):
            result = super().restore(pixels, mask)
            if mask is not None:
                result.mask = mask | np.roll(mask, 1, axis=0) | np.roll(mask, -1, axis=0)
            return result

    engine = _engine(tmp_path, restorer=Dilating())
    try:
        job = _add(engine, engine.session(None), "scan.png", png_bytes(dark_line=False))
        assert _wait(engine, job)["status"] == DONE
        levels, data = _marks((40, 30))
        levels[5] = 255
        for _ in range(2):  # the second round marks nothing more
            engine.repair_marked(job, data())
            assert _wait(engine, job)["status"] == DONE
            levels[:] = 128
            rows = np.flatnonzero((np.asarray(Image.open(job.mask)) > 0).any(axis=1))
            assert rows.tolist() == [4, 5, 6]
    finally:
        engine.close()


def test_a_photo_sent_back_or_gone_is_refused_clearly(tmp_path):
    engine = _engine(tmp_path)
    try:
        session = engine.session(None)
        job = _add(engine, session, "scan.png", png_bytes())
        assert _wait(engine, job)["status"] == DONE
        revision = job.revision
        engine.restore_again(job, Choices())
        with pytest.raises(NotRestored):  # the 100 % view of a result being replaced
            engine.full_view(job, "after")
        assert _wait(engine, job)["status"] == DONE and job.revision == revision + 1
        assert engine.full_view(job, "after").is_file()
        engine.end_session(session)
        for send in (lambda: engine.repair_marked(job, _marks((40, 30))[1]()),
                     lambda: engine.restore_again(job, Choices())):
            with pytest.raises(NotRestored, match="no longer there"):
                send()
    finally:
        engine.close()


def test_restore_again_with_other_options_drops_the_marks(tmp_path):
    engine = _engine(tmp_path)
    try:
        session = engine.session(None)
        job = _add(engine, session, "scan.png", png_bytes())
        assert _wait(engine, job)["status"] == DONE
        levels, data = _marks((40, 30))
        levels[2] = 255
        engine.repair_marked(job, data())
        assert _wait(engine, job)["status"] == DONE and job.marks is not None
        engine.restore_again(job, Choices((("fidelity", 0.8),), "jpeg"))
        with pytest.raises(NotRestored):  # queued already
            engine.restore_again(job, Choices())
        info = _wait(engine, job)
        assert info["status"] == DONE and info["revision"] == 2 and not info["marked"]
        assert not (job.folder / "marks").exists() and job.output.name == "scan.jpg"
        assert sorted(p.name for p in (job.folder / "out").iterdir()) == ["scan.jpg", "scan.mask.png"]
        options = engine.base.shared["calls"][-1][1]
        assert options.fidelity == 0.8 and options.scratches == "auto"  # found afresh, not the marks' "on"
        mask = np.asarray(Image.open(job.mask)) > 0
        assert mask[15].all() and not mask[2].any()  # the detector's (the fake's dark row), not the marks
    finally:
        engine.close()


def test_the_page_is_told_how_far_a_long_stage_is(tmp_path):
    gate = threading.Event()

    class Enlarging(FakeRestorer):
        def restore(self, pixels, mask=None):
            self.on_progress("enlarging", 0.4)
            assert gate.wait(30)
            return super().restore(pixels, mask)

    engine = _engine(tmp_path, restorer=Enlarging())
    try:
        job = _add(engine, engine.session(None), "scan.png", png_bytes())
        for _ in range(500):
            if engine.describe(job)["stage"]:
                break
            time.sleep(0.01)
        assert engine.describe(job)["stage"] == "enlarging 40%"
        gate.set()
        assert _wait(engine, job)["status"] == DONE and engine.describe(job)["stage"] == ""
    finally:
        gate.set()
        engine.close()


def test_bad_files_are_refused_with_the_reason_and_the_engine_goes_on(tmp_path):
    engine = _engine(tmp_path, max_pixels=50 * 50)
    try:
        session = engine.session(None)
        big = "too large to restore here: 60×60 pixels"  # (in plain words: no "decompression bomb")
        for name, data, reason in [("notes.jpg", b"hello, not a photo", "not an image"),
                                   ("empty.png", b"", "empty file"),
                                   ("big.png", png_bytes((60, 60)), big)]:
            job = engine.reserve(session, name)
            job.input.write_bytes(data)
            with pytest.raises(PhotoError, match=reason):
                engine.inspect(job)
            engine.fail_upload(job, "refused")
        truncated = png_bytes()[:-40]  # header fine, data cut: found when its turn comes
        job = _add(engine, session, "cut.png", truncated)
        info = _wait(engine, job)
        assert info["status"] == FAILED and "truncated" in info["reason"]
        # no option mends a broken file: the page offers no "Try again with the options above" for it
        assert info["retry"] is False
        with pytest.raises(NotRestored):
            engine.restore_again(job, Choices((("scratches", "on"),)))
        good = _add(engine, session, "good.png", png_bytes())
        assert _wait(engine, good)["status"] == DONE
    finally:
        engine.close()


def test_each_photo_gives_the_memory_it_freed_back_to_the_system(tmp_path, monkeypatch):
    """glibc keeps what a restoration freed for the process unless told (malloc_trim): a server that had
    restored 46 photos of 2-5 megapixels held 1.07 GB, 0.59 GB when it gives it back after each."""
    engine_module._memory_releaser()()  # it runs here, whatever the platform (a no-op without glibc)
    released = []
    monkeypatch.setattr(engine_module, "release_memory", lambda: released.append(time.monotonic()))
    engine = _engine(tmp_path)
    try:
        session = engine.session(None)
        done, failed = _add(engine, session, "good.png", png_bytes()), _add(engine, session, "cut.png",
                                                                              png_bytes()[:-40])
        assert _wait(engine, done)["status"] == DONE and _wait(engine, failed)["status"] == FAILED
        end = time.monotonic() + 10
        while len(released) < 2 and time.monotonic() < end:  # (just after the photo's state is set)
            time.sleep(0.01)
        assert len(released) == 2  # after each photo, restored or not
    finally:
        engine.close()


def test_sessions_see_only_their_own_photos_and_end_with_their_files(tmp_path):
    engine = _engine(tmp_path)
    try:
        alice, bob = engine.session(None), engine.session(None)
        assert alice.id != bob.id and engine.session(alice.id) is alice
        assert engine.session("forged-id") not in (alice, bob)
        job = _add(engine, alice, "a.png", png_bytes())
        _wait(engine, job)
        assert engine.photo(alice, job.id) is job and engine.photo(bob, job.id) is None
        assert job.output.is_file()
        engine.end_session(alice)
        assert not alice.folder.exists() and engine.session(alice.id) is not alice
        assert bob.folder.exists()
    finally:
        engine.close()


def test_time_estimates_separate_the_fixed_part_from_the_part_per_megapixel():
    times = PhotoTimes()
    times.add(0.06, 2.7)  # the first photo loads the networks: left out
    assert times.predict(1.0) is None
    times.add(0.25, 3.5)  # one size seen: proportional
    assert times.predict(1.0) == pytest.approx(14.0)
    for megapixels in (0.25, 0.5, 1.0, 2.0):  # 3 s per photo + 2 s per megapixel
        times.add(megapixels, 3.0 + 2.0 * megapixels)
    assert times.predict(12.0) == pytest.approx(27.0, rel=0.05)  # not 12 x 14 s = 168 s
    assert times.predict(0.01) == pytest.approx(3.0, abs=0.3)


def test_a_waiting_photo_says_how_long_until_its_turn(tmp_path):
    """Someone whose 31st photo waits was told only "31 photos before this one": the wait is the running
    photo's time left and the estimates of the photos ahead, once the times are known."""
    now = [1000.0]
    gate = threading.Event()
    engine = _engine(tmp_path, restorer=FakeRestorer(gate=gate), clock=lambda: now[0])
    try:
        session = engine.session(None)
        first = _add(engine, session, "0.png", png_bytes(size=(400, 300)))
        while engine.describe(first)["status"] == QUEUED:  # the worker holds it at the gate
            time.sleep(0.01)
        second = _add(engine, session, "1.png", png_bytes(size=(800, 600)))
        assert engine.describe(second)["wait"] is None  # no photo restored yet: no time known
        assert engine.describe(first)["wait"] is None  # (running: no wait)
        times = engine._times[1]
        for megapixels, seconds in ((1.0, 60.0), (0.5, 6.0), (1.0, 11.0)):  # (the first: loading)
            times.add(megapixels, seconds)
        first.estimate = engine.estimate_for(0.12)  # (as if known when it started)
        third = _add(engine, session, "2.png", png_bytes(size=(200, 100)))
        now[0] += 0.5
        left = first.estimate - 0.5
        assert engine.describe(second)["wait"] == pytest.approx(left, abs=0.05)
        assert engine.describe(third)["wait"] == pytest.approx(left + engine.estimate_for(0.48), abs=0.05)
        now[0] += 100  # the running photo past its estimate: nothing more is counted for it
        assert engine.describe(second)["wait"] == 0.0
    finally:
        gate.set()
        engine.close()


def test_idle_sessions_expire(tmp_path):
    now = [1000.0]
    engine = _engine(tmp_path, session_ttl=60, clock=lambda: now[0])
    try:
        old = engine.session(None)
        _wait(engine, _add(engine, old, "a.png", png_bytes()))
        now[0] += 30
        fresh = engine.session(None)
        now[0] += 31  # old: 61 s idle, fresh: 31 s
        engine.sweep()
        assert not old.folder.exists() and fresh.folder.exists()
        assert old.id not in engine.sessions and fresh.id in engine.sessions
    finally:
        engine.close()


def test_full_queue_says_busy_and_sessions_take_turns(tmp_path):
    gate = threading.Event()
    engine = _engine(tmp_path, restorer=FakeRestorer(gate=gate), max_queue=4, max_per_session=3)
    try:
        many, one = engine.session(None), engine.session(None)
        first = _add(engine, many, "0.png", png_bytes())
        while engine.describe(first)["status"] == QUEUED:  # the worker holds it at the gate
            time.sleep(0.01)
        mine = [_add(engine, many, f"{i}.png", png_bytes()) for i in (1, 2, 3)]
        with pytest.raises(Busy, match="^3 photos of yours are waiting already$") as busy:
            engine.reserve(many, "4.png")
        assert 5 <= busy.value.retry_after <= 120
        theirs = _add(engine, one, "b.png", png_bytes())
        with pytest.raises(Busy, match="^4 photos are waiting already$"):
            engine.reserve(engine.session(None), "c.png")
        # one's single photo goes before many's others (many had the last turn); the running one counts
        assert engine.describe(theirs)["ahead"] == 1
        assert [engine.describe(j)["ahead"] for j in mine] == [2, 3, 4]
        gate.set()
        assert all(_wait(engine, j)["status"] == DONE for j in [first, *mine, theirs])
        assert len(engine.base.shared["calls"]) == 5
        assert theirs.started < mine[0].started
    finally:
        gate.set()
        engine.close()


def test_uploads_beyond_the_storage_limit_are_refused_until_sessions_end(tmp_path, monkeypatch):
    now = [1000.0]
    engine = _engine(tmp_path, max_storage=10_000_000, session_ttl=60, clock=lambda: now[0])
    try:
        old = engine.session(None)
        held = _wait(engine, _add(engine, old, "a.png", png_bytes()))
        assert held["status"] == DONE
        (old.folder / "big.bin").write_bytes(b"\0" * 6_000_000)  # (as a large upload and its outputs)
        engine.reserve(old, "fits.png", 1_000_000)  # 6 MB held, 2 MB more needed: room
        with pytest.raises(StorageFull, match=r"^the server holds as many photos as it may keep "
                                              r"\(6 MB of 10 MB, its --max-storage-gb\)\. Photos are "
                                              r"deleted 1 minute after their page was last used"):
            engine.reserve(engine.session(None), "b.png", 2_500_000)  # 6 + 5 > 10 MB
        now[0] += 61  # the old session ends, and its files with it
        engine.reserve(engine.session(None), "b.png", 2_500_000)
        # whatever the limit, an upload must leave the disk its last GB
        free = shutil.disk_usage(engine.root).free
        monkeypatch.setattr("oldphoto.web.engine.MIN_FREE_DISK", free)
        engine.max_storage = None
        with pytest.raises(StorageFull, match=r"^the server's disk is nearly full \(.* GB free\)"):
            engine.reserve(engine.session(None), "c.png", 1)
    finally:
        engine.close()


def test_options_make_one_restorer_each_and_bad_ones_are_refused(tmp_path):
    engine = _engine(tmp_path)
    try:
        session = engine.session(None)
        jobs = [_add(engine, session, f"{i}.png", png_bytes(), parse_choices({"fidelity": f}))
                for i, f in enumerate(["0.2", "0.2", "0.9"])]
        for job in jobs:
            assert _wait(engine, job)["status"] == DONE
        assert [o.fidelity for _, o in engine.base.shared["calls"]] == [0.2, 0.2, 0.9]
        assert engine.base.shared["restorers"] == 3  # the server's own and one per new option set
        assert read_provenance(jobs[2].output)["options"]["fidelity"] == 0.9
        with pytest.raises(OptionError, match="fidelity"):
            engine.check_choices(parse_choices({"fidelity": "3"}))
        with pytest.raises(OptionError, match="scratches"):
            engine.check_choices(parse_choices({"scratches": "sometimes"}))
        with pytest.raises(OptionError, match="unfade"):
            engine.check_choices(parse_choices({"unfade": "sometimes"}))
        # faces on a server that cannot enhance them: refused at upload, not after the photo's wait
        with pytest.raises(OptionError, match="face enhancement is not available"):
            engine.check_choices(parse_choices({"faces": "on"}))
        engine.check_choices(parse_choices({"faces": "off"}))
    finally:
        engine.close()


def test_output_format_and_removal(tmp_path):
    engine = _engine(tmp_path, restorer=FakeRestorer(RestoreOptions(faces=False)))
    try:
        session = engine.session(None)
        choices = parse_choices({"format": "jpg", "quality": "70"})
        job = _add(engine, session, "scan.png", png_bytes(), choices)
        assert _wait(engine, job)["output"] == "scan.jpg"
        assert Image.open(job.output).format == "JPEG"
        engine.remove(job)
        assert not job.folder.exists() and engine.photo(session, job.id) is None
    finally:
        engine.close()


def test_an_enlarged_photo_keeps_its_faces_and_repairs_in_place_and_its_own_time_estimates(tmp_path):
    """--upscale chosen on the page: the output is twice the photo's size; the face boxes (fractions of
    the picture) and the repaired areas, found on the photo, still fall where they are, in the previews
    and in the 100 % view; its seconds are learned apart from plain restorations'."""
    restorer = FakeRestorer(shared={"calls": [], "restorers": 1, "upscaler": True})
    engine = _engine(tmp_path, restorer=restorer, preview_side=16)
    try:
        assert engine.upscale_possible()
        session = engine.session(None)
        plain = _add(engine, session, "a.png", png_bytes())
        big = _add(engine, session, "b.png", png_bytes(), parse_choices({"upscale": "2"}))
        p, b = _wait(engine, plain), _wait(engine, big)
        assert b["status"] == DONE and (b["width"], b["height"]) == (80, 60)
        assert (p["width"], p["height"]) == (40, 30)
        assert b["faces"] == p["faces"] == [[0.25, 0.23333, 0.5, 0.5]]
        assert Image.open(big.mask).size == (40, 30)  # --save-mask's file: the photo's defects
        overlay = np.asarray(Image.open(big.preview("overlay")))
        assert overlay.shape == (12, 16, 4) and overlay[6, :, 3].min() > 0 and overlay[0, :, 3].max() == 0
        full = np.asarray(Image.open(engine.full_view(big, "overlay")))
        assert full.shape == (60, 80, 4)  # the output's size: the dark line (photo row 15) on rows 30-31
        assert np.array_equal(np.flatnonzero(full[..., 3].any(axis=1)), [30, 31])
        assert not engine._times[1].cold and not engine._times[2].cold  # each kind timed apart
    finally:
        engine.close()


def test_enlarging_is_refused_at_upload_where_the_upscaler_is_not_installed(tmp_path):
    engine = _engine(tmp_path)
    try:
        assert not engine.upscale_possible()
        with pytest.raises(OptionError, match="weights download realesrgan"):
            engine.check_choices(parse_choices({"upscale": "4"}))
        engine.check_choices(parse_choices({"upscale": "1"}))
        with pytest.raises(OptionError, match="upscale"):
            engine.check_choices(parse_choices({"upscale": "3"}))
    finally:
        engine.close()


class _FaceReady(FakeRestorer):
    """Started with --no-faces, but face weights and dlib are installed."""

    def with_options(self, **overrides):
        other = FakeRestorer(dataclasses.replace(self.options, **overrides))
        other.faces_enabled = bool(overrides.get("faces"))
        return other


@pytest.mark.parametrize("restorer,possible", [(FakeRestorer, False), (_FaceReady, True)])
def test_faces_are_offered_when_they_can_be_enhanced(tmp_path, restorer, possible):
    engine = _engine(tmp_path, restorer=restorer())
    try:
        assert engine.faces_possible() is possible
    finally:
        engine.close()


def test_no_denoise_from_the_page_turns_off_a_servers_remove_grain(tmp_path):
    """The page disables (and so does not send) "remove_grain" once "Remove noise" is off: on a server
    started with --remove-grain, denoise=off alone must not be refused as --remove-grain with --no-denoise."""
    engine = _engine(tmp_path, restorer=FakeRestorer(RestoreOptions(faces=False, remove_grain=True)))
    try:
        choices = parse_choices({"denoise": "off"})
        engine.check_choices(choices)
        assert dict(choices.overrides) == {"denoise": False, "remove_grain": False}
        with pytest.raises(OptionError, match="--no-denoise"):  # both asked for explicitly: still refused
            engine.check_choices(parse_choices({"denoise": "off", "remove_grain": "on"}))
    finally:
        engine.close()


def test_out_of_memory_is_said_for_the_page_not_with_the_command_lines_flags(tmp_path):
    class Hungry(FakeRestorer):
        def restore(self, pixels, mask=None):
            raise MemoryError

    engine = _engine(tmp_path, restorer=Hungry())
    try:
        info = _wait(engine, _add(engine, engine.session(None), "a.png", png_bytes()))
        assert info["status"] == FAILED and info["reason"].startswith("out of memory (MemoryError)")
        assert "--" not in info["reason"] and "Try again" in info["reason"], info["reason"]
        assert info["retry"] is True  # its file is kept: it can be tried again
    finally:
        engine.close()


def test_a_restored_photo_the_server_cannot_save_is_said_without_the_servers_folders(tmp_path, monkeypatch):
    # the batch's reason names the output's path: on the page that is the server's own folders, the
    # session's id among them ('cannot write /srv/.../<session>/<photo>/out/a.png (Read-only file system)')
    def read_only(path, write, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(photo_io, "atomic_write", read_only)
    engine = _engine(tmp_path)
    try:
        session = engine.session(None)
        info = _wait(engine, _add(engine, session, "a.png", png_bytes()))
        assert info["status"] == FAILED and "could not save" in info["reason"], info["reason"]
        assert str(engine.root) not in info["reason"] and session.id not in info["reason"]
        assert info["retry"] is True  # (its upload is kept)
        monkeypatch.setattr(outputs, "unwritable", lambda folder, **kwargs: f"{folder} is not writable")
        info = _wait(engine, _add(engine, session, "b.png", png_bytes()))  # (found before it is decoded)
        assert "could not save" in info["reason"] and session.id not in info["reason"]
        assert info["retry"] is True
    finally:
        engine.close()

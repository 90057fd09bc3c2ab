"""End to end in a real browser: headless Debian Chromium (scripts/fetch-chromium.sh) driven by Playwright
(pointed at that executable; it never downloads a browser).  A user drops a real old photo and two
broken files, presses Restore, compares, downloads: the file is byte for byte what `oldphoto restore`
writes (the provenance clock is frozen for both, so even its `restored_at` agrees), the broken files
get their reasons on the page, and the page asks for nothing outside the server.

Screenshots go to the test's folder, and also to $OLDPHOTO_SCREENSHOTS when set (docs/img/serve.png is
one of them)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import re
import shutil
import threading
import time
import types
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from web_support import CHROMIUM_HINT, FakeRestorer, chromium, png_bytes, served

from oldphoto import cli
from oldphoto.io import _metadata
from oldphoto.pipeline import RestoreOptions, Restorer
from oldphoto.web.engine import Engine

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'oldphoto[web]'")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="Playwright is not installed: pip install playwright (part of "
                                      "oldphoto[dev]; no browser download is needed)")

BROWSER_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
PHOTO = "scratched_boy_portrait.png"


def open_page(browser, url: str, **options):
    """A new browser context (``options``: viewport, touch, downloads…) and its page, opened at ``url``
    and loaded (the server's version shown)."""
    context = browser.new_context(**options)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#version:not(:empty)")
    return context, page


class _FrozenDatetime(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=tz)


@pytest.fixture
def frozen_clock(monkeypatch):
    """The provenance record's `restored_at` for every file written in this test."""
    clock = types.SimpleNamespace(datetime=_FrozenDatetime, timezone=dt.timezone)
    monkeypatch.setattr(_metadata, "_dt", clock)


@pytest.fixture(scope="module")
def browser():
    found = chromium()
    if found is None:
        pytest.skip(CHROMIUM_HINT)
    executable, env = found
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, env=env, args=BROWSER_ARGS)
        yield browser
        browser.close()


def _same_file(web: Path, cli_file: Path) -> None:
    """Byte for byte, or else the same metadata and pixels that differ by at most one level in at most
    0.01 % of the values."""
    if web.read_bytes() == cli_file.read_bytes():
        return
    with Image.open(web) as a, Image.open(cli_file) as b:
        assert (a.mode, a.size, a.info) == (b.mode, b.size, b.info)
        pa, pb = np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64)
    differ = np.abs(pa - pb)
    assert differ.max() <= 1 and np.count_nonzero(differ) <= 1e-4 * differ.size, (differ.max(),
                                                                                np.count_nonzero(differ))


def _keep(path: Path) -> None:
    target = os.environ.get("OLDPHOTO_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def test_restore_in_the_browser_equals_the_cli(tmp_path, real_old_dir, browser, frozen_clock):
    photo = real_old_dir / PHOTO
    letter = tmp_path / "letter.jpg"
    letter.write_text("Dear Sir, this is a letter, not a photo.")
    cut = tmp_path / "cut.png"
    cut.write_bytes(photo.read_bytes()[:40_000])  # a download that broke off

    # what `oldphoto restore` writes for this photo with the default options
    assert cli.main(["restore", str(photo), "-o", str(tmp_path / "cli"), "--save-mask", "--no-progress"]) == 0

    engine = Engine(Restorer(RestoreOptions()), tmp_path / "root")
    with served(engine) as url:
        context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
        requests: list[str] = []
        foreign: list[str] = []

        def route(r):
            requests.append(r.request.url)
            if r.request.url.startswith(url) or r.request.url.startswith("data:"):
                r.continue_()
            else:
                foreign.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("#version:not(:empty)")
        assert page.locator("#go").is_disabled()
        page.screenshot(path=str(tmp_path / "serve-empty.png"), full_page=True)

        page.set_input_files("#files", [str(photo), str(letter), str(cut)])
        assert page.locator("#go").inner_text() == "Restore 3 photos"
        page.click("#go")
        done = page.locator(".card[data-status=done]")
        done.wait_for(timeout=240_000)
        failed = page.locator(".card[data-status=failed]")
        failed.nth(1).wait_for(timeout=240_000)  # (the page's CSP forbids wait_for_function's eval)
        texts = {failed.nth(i).locator(".name").inner_text(): failed.nth(i).locator(".error").inner_text()
                 for i in range(2)}
        assert "not an image" in texts["letter.jpg"], texts
        assert "truncated" in texts["cut.png"], texts
        summary = done.locator(".summary").inner_text()
        assert "Repaired" in summary  # what was done, in words
        # the boy's cracks add up to 1.43 short sides, evidence that scene lines reach too: said
        assert "may belong to the picture" in summary, summary
        for kind in ("before", "after"):
            image = done.locator(f".frame img.{kind}")
            for _ in range(100):
                if image.evaluate("img => img.complete && img.naturalWidth > 0"):
                    break
                page.wait_for_timeout(100)
            else:
                raise AssertionError(f"the {kind} preview did not load")

        # the comparison: a slider over before and after; the repaired areas on demand
        overlay = done.locator(".overlay")
        assert overlay.is_hidden()
        done.locator(".frame").scroll_into_view_if_needed()
        frame = done.locator(".frame").bounding_box()
        page.mouse.click(frame["x"] + 0.3 * frame["width"], frame["y"] + 0.5 * frame["height"])
        position = done.locator(".frame").evaluate("f => f.style.getPropertyValue('--pos')")
        position = float(position.rstrip("%"))
        assert 25 < position < 35
        page.mouse.click(frame["x"] + 0.5 * frame["width"], frame["y"] + 0.5 * frame["height"])
        page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
        done.locator(".show-mask").check()
        assert overlay.is_visible()
        page.screenshot(path=str(tmp_path / "serve-mask.png"), full_page=True)

        # the downloads are the CLI's files: the same metadata, and the same pixels up to the float
        # summation order of the two threads (the web restores in a worker thread; under load this moved
        # a few values by one level, about 1 run in 5: docs/restore.md, "Precision and devices")
        with page.expect_download() as download:
            done.locator(".download").click()
        assert download.value.suggested_filename == PHOTO.replace(".png", "_restored.png")
        assert done.locator(".mask-download").get_attribute("download") == ""  # named by the server
        download.value.save_as(tmp_path / "web.png")
        _same_file(tmp_path / "web.png", tmp_path / "cli" / PHOTO)
        with page.expect_download() as download:
            done.locator(".mask-download").click()
        download.value.save_as(tmp_path / "web.mask.png")
        _same_file(tmp_path / "web.mask.png", tmp_path / "cli" / PHOTO.replace(".png", ".mask.png"))

        # a reload finds the session's photos again
        page.reload()
        page.locator(".card[data-status=done] .frame").wait_for(timeout=30_000)
        assert page.locator(".card").count() == 3
        context.close()

    for name in ("serve-empty.png", "serve.png", "serve-mask.png"):
        _keep(tmp_path / name)
    assert not errors, errors
    assert not foreign, f"the page asked for outside addresses: {foreign}"
    assert any("/preview/after" in u for u in requests) and any("/api/photos?" in u for u in requests)


def test_busy_server_faces_zip_and_forgetting(tmp_path, browser):
    """With the fake restorer (instant, one 'face' per photo) and a queue of one: the options chosen on
    the page reach the restorer (and only those); the third photo is told to wait, the page says so and
    sends it again by itself; faces show as boxes on demand; the zip holds every result; 'Delete my
    files' empties the page and the server's folder."""
    gate = threading.Event()
    engine = Engine(FakeRestorer(gate=gate), tmp_path / "root", max_queue=1, max_per_session=1)
    names = []
    for i in range(3):
        names.append(tmp_path / f"photo{i}.png")
        names[-1].write_bytes(png_bytes(value=(60 * i + 50, 120, 90)))
    with served(engine) as url:
        context, page = open_page(browser, url, viewport={"width": 1000, "height": 800},
                                  accept_downloads=True)
        assert page.locator("#zip").is_hidden()
        page.set_input_files("#files", [str(p) for p in names])
        page.check("input[name=scratches][value=off]")
        page.focus("#fidelity")
        page.keyboard.press("ArrowRight")  # one step: 0.5 -> 0.55
        assert page.locator("#fidelity-value").inner_text() == "0.55"
        page.click("#go")
        busy = page.locator(".card .state", has_text="The server is busy")
        busy.wait_for(timeout=30_000)  # one restoring (held), one queued, the third told to wait
        assert "Trying again in" in busy.inner_text()
        gate.set()
        page.locator(".card[data-status=done]").nth(2).wait_for(timeout=60_000)
        chosen = [options for _, options in engine.base.shared["calls"]]
        assert len(chosen) == 3
        assert all(o.scratches == "off" and abs(o.fidelity - 0.55) < 1e-9 for o in chosen)
        assert all(o.hr is False and o.keep_tone is True and o.mask_threshold is None for o in chosen)
        card = page.locator(".card[data-status=done]").first
        boxes = card.locator(".face")
        assert boxes.count() == 1 and boxes.first.is_hidden()
        card.locator(".show-faces").check()
        assert boxes.first.is_visible()
        box = boxes.first.bounding_box()
        frame = card.locator(".frame").bounding_box()
        assert abs(box["x"] - (frame["x"] + 0.25 * frame["width"])) < 3  # the fake's face: x from 1/4 to 1/2
        assert abs(box["width"] - 0.25 * frame["width"]) < 4
        with page.expect_download() as download:
            page.click("#zip")
        download.value.save_as(tmp_path / "all.zip")
        zipped = sorted(zipfile.ZipFile(tmp_path / "all.zip").namelist())
        assert zipped == [f"{p.stem}_restored{p.suffix}" for p in names]
        page.on("dialog", lambda dialog: dialog.accept())
        page.click("#forget")
        page.locator("#results").wait_for(state="hidden")
        assert page.locator(".card").count() == 0
        assert list((tmp_path / "root").iterdir()) == []
        context.close()


def test_a_waiting_photo_says_about_how_long_it_waits(tmp_path, browser):
    """A long wait is said with its length (a box of prints ahead: "about 5 min")."""
    gate = threading.Event()
    engine = Engine(FakeRestorer(gate=gate), tmp_path / "root")
    for megapixels, seconds in ((1.0, 60.0), (0.01, 100.0), (0.01, 100.0)):  # 100 s each (the first: loading)
        engine._times[1].add(megapixels, seconds)
    names = []
    for i in range(4):
        names.append(tmp_path / f"photo{i}.png")
        names[-1].write_bytes(png_bytes())
    with served(engine) as url:
        context, page = open_page(browser, url)
        page.set_input_files("#files", [str(p) for p in names])
        page.click("#go")
        cards = page.locator(".card")
        # the running photo's 100 s (less the few gone) and two more
        cards.nth(3).get_by_text("waiting: 3 photos before this one, about 5 min").wait_for(timeout=10_000)
        cards.nth(1).get_by_text("waiting: 1 photo before this one, about 2 min").wait_for(timeout=10_000)
        gate.set()
        context.close()


def test_deleting_my_files_from_the_keyboard_keeps_the_focus(tmp_path, browser):
    """'Delete my files' goes with the results it deletes: the focus (it fell to the page's body) goes to
    the file chooser, where photos are added again."""
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes())
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        page.set_input_files("#files", [str(small)])
        page.on("dialog", lambda dialog: dialog.accept())
        page.focus("#forget")
        page.keyboard.press("Enter")
        page.locator("#results").wait_for(state="hidden")
        assert page.evaluate("document.activeElement.id") == "files"
        context.close()


@contextmanager
def _one_restored_photo(tmp_path, browser, restorer=None, **engine_options):
    """The fake restorer (or `restorer`) behind the page (an Engine with ``engine_options``), one 200×150
    photo restored there: (engine, page, its card).  No script error may happen on the page meanwhile."""
    engine = Engine(restorer or FakeRestorer(), tmp_path / "root", **engine_options)
    photo = tmp_path / "scan.png"
    photo.write_bytes(png_bytes(size=(200, 150)))
    errors: list[str] = []
    with served(engine) as url:
        context = browser.new_context(viewport={"width": 1000, "height": 800})
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("#version:not(:empty)")
        page.set_input_files("#files", [str(photo)])
        page.click("#go")
        card = page.locator(".card[data-status=done]")
        card.wait_for(timeout=30_000)
        yield engine, page, card
        context.close()
    assert not errors, errors


def test_a_photo_removed_in_one_tab_leaves_the_other(tmp_path, browser):
    """Two tabs of one session: a photo removed in one disappears from the other when it is looked at
    again (its card stayed, and its downloads answered 404)."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        other = page.context.new_page()
        other.goto(page.url)
        other.locator(".card[data-status=done]").wait_for(timeout=30_000)
        card.locator(".remove").click()
        page.locator(".card").wait_for(state="detached", timeout=10_000)
        other.evaluate("window.dispatchEvent(new Event('focus'))")
        other.locator(".card").wait_for(state="detached", timeout=10_000)
        assert other.locator("#results").is_hidden()
        other.close()


def test_removing_photos_from_the_keyboard_keeps_the_focus(tmp_path, browser):
    """A card's × takes the card and itself away: the focus (it fell to the page's body) goes to the next
    card's first control, else the previous one's, else to the file chooser."""
    names = []
    for i in range(3):
        names.append(tmp_path / f"photo{i}.png")
        names[-1].write_bytes(png_bytes(value=(60 * i + 50, 120, 90)))
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        page.set_input_files("#files", [str(p) for p in names])
        page.click("#go")
        page.locator(".card[data-status=done]").nth(2).wait_for(timeout=30_000)
        focused = "() => document.activeElement.getAttribute('aria-label') || document.activeElement.id"
        cards = page.locator(".card")
        cards.nth(1).locator(".remove").focus()
        page.keyboard.press("Enter")  # the middle one: on to the next
        cards.nth(2).wait_for(state="detached", timeout=10_000)
        assert page.evaluate(focused) == "Remove photo2.png"
        page.keyboard.press("Enter")  # the last one: back to the one before
        cards.nth(1).wait_for(state="detached", timeout=10_000)
        assert page.evaluate(focused) == "Remove photo0.png"
        page.keyboard.press("Enter")  # none left: where photos are added
        page.locator("#results").wait_for(state="hidden", timeout=10_000)
        assert page.evaluate(focused) == "files"
        context.close()


def test_marking_defects_by_hand(tmp_path, browser):
    """After a restoration the user paints over a scratch it missed, unmarks part of what it repaired
    and undoes a stroke; the photo comes back restored with exactly that mask (the fake's 'defect': its
    dark middle row), the page showing the new result."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        card.locator(".mark-start").click()
        canvas = card.locator("canvas.marks")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert abs(box["width"] - 200) < 1  # the photo at its own size, the marks over it
        # the tools right under the photo (they came after its buttons, out of sight: a user review)
        view = card.locator(".view").bounding_box()
        assert 0 <= card.locator(".marking-tools").bounding_box()["y"] - (view["y"] + view["height"]) < 20
        toggle = card.locator(".show-mask")  # the repaired areas shown, and their box says so
        assert toggle.is_checked() and toggle.is_disabled() and card.locator("img.overlay").is_visible()

        def drag(y: float, x0: float, x1: float) -> None:
            page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y * box["height"], steps=12)
            page.mouse.up()

        card.locator(".paint-on-restored").check()  # to see what is still to repair...
        assert card.locator(".frame img.before").is_hidden() and card.locator(".tag-after").is_visible()
        drag(0.25, 0.2, 0.8)   # a scratch the repair missed
        card.locator(".paint-on-restored").uncheck()  # ...or what was repaired that should not have been
        assert card.locator(".frame img.before").is_visible()
        card.locator(".unmark").check()
        drag(0.5, 0.05, 0.45)  # part of the repaired row: no defect after all
        drag(0.85, 0.2, 0.8)   # a slip of the hand...
        card.locator(".mark-undo").click()  # ...taken back
        page.screenshot(path=str(tmp_path / "serve-marks.png"), full_page=True)
        card.locator(".mark-send").click()
        page.locator(".card[data-status=done] .summary", has_text="marked by hand").wait_for(timeout=30_000)
        assert page.locator(".card .compare").count() == 1 and page.locator("canvas.marks").count() == 0
        job = next(iter(next(iter(engine.sessions.values())).photos.values()))
        mask = np.asarray(Image.open(job.mask)) > 0
        assert mask[37, 45:155].all() and not mask[10:30].any() and not mask[100:].any()
        assert not mask[75, 15:85].any() and mask[75, 110:].all()


def test_marking_with_a_pen_and_with_touch(tmp_path, browser):
    """A pen and a finger paint as the mouse does (pointer events of those kinds, through the browser's
    own input, as a tablet sends them): each stroke reaches the server's mask."""
    engine = Engine(FakeRestorer(), tmp_path / "root")
    photo = tmp_path / "scan.png"
    photo.write_bytes(png_bytes(size=(200, 150)))
    with served(engine) as url:
        context, page = open_page(browser, url, viewport={"width": 1000, "height": 800}, has_touch=True)
        page.set_input_files("#files", [str(photo)])
        page.click("#go")
        card = page.locator(".card[data-status=done]")
        card.wait_for(timeout=30_000)
        card.locator(".mark-start").click()
        box = card.locator("canvas.marks").bounding_box()
        cdp = context.new_cdp_session(page)

        def at(x: float, y: float) -> dict:
            return {"x": box["x"] + x * box["width"], "y": box["y"] + y * box["height"]}

        def pen(kind: str, x: float, **more) -> None:
            cdp.send("Input.dispatchMouseEvent", {"type": kind, **at(x, 0.25), "pointerType": "pen", **more})

        pen("mouseMoved", 0.2)
        pen("mousePressed", 0.2, button="left", clickCount=1)
        for i in range(1, 13):
            pen("mouseMoved", 0.2 + 0.05 * i, button="left", buttons=1)
        pen("mouseReleased", 0.8, button="left", clickCount=1)
        finger = [{**at(0.2, 0.85), "id": 1}]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": finger})
        for i in range(1, 13):
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove",
                                                  "touchPoints": [{**at(0.2 + 0.05 * i, 0.85), "id": 1}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        card.locator(".mark-send").click()
        page.locator(".card[data-status=done] .summary", has_text="marked by hand").wait_for(timeout=30_000)
        job = next(iter(next(iter(engine.sessions.values())).photos.values()))
        mask = np.asarray(Image.open(job.mask)) > 0
        assert mask[37, 45:155].all() and mask[127, 45:155].all()  # the pen's stroke, the finger's
        assert not mask[:25].any() and not mask[50:70].any() and not mask[140:].any()
        context.close()


def test_photos_added_are_said_where_they_were_dropped(tmp_path, browser):
    """The list of photos and the button are below the options: on a desktop, adding photos changed
    nothing in sight (a user review)."""
    photos = [tmp_path / f"scan{i}.png" for i in range(2)]
    for photo in photos:
        photo.write_bytes(png_bytes())
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context, page = open_page(browser, url, viewport={"width": 1280, "height": 800})
        assert page.locator("#drop-added").is_hidden()
        page.set_input_files("#files", [str(p) for p in photos])
        added = page.locator("#drop-added")
        assert added.inner_text() == ("2 photos added: choose the options below, then press "
                                      "\u201cRestore 2 photos\u201d.")
        assert added.bounding_box()["y"] + added.bounding_box()["height"] < 800  # in sight
        page.click("#go")
        page.locator(".card[data-status=done]").nth(1).wait_for(timeout=30_000)
        assert added.is_hidden()  # sent: nothing waits
        context.close()


def test_a_finger_scrolls_the_page_over_a_photo_and_moves_the_split_across_it(tmp_path, browser):
    """On a phone a photo fills most of the screen: a swipe up on it scrolled nothing and moved the split
    (a user review); a swipe across it still moves the split."""
    engine = Engine(FakeRestorer(), tmp_path / "root")
    photos = [tmp_path / f"scan{i}.png" for i in range(3)]
    for photo in photos:
        photo.write_bytes(png_bytes(size=(800, 600)))
    with served(engine) as url:
        context, page = open_page(browser, url, viewport={"width": 390, "height": 844}, has_touch=True,
                                  is_mobile=True)
        page.set_input_files("#files", [str(p) for p in photos])
        page.click("#go")
        page.locator(".card[data-status=done]").nth(2).wait_for(timeout=60_000)
        frame = page.locator(".card .frame").first
        frame.scroll_into_view_if_needed()
        box = frame.bounding_box()
        cdp = context.new_cdp_session(page)

        def swipe(x0: float, y0: float, x1: float, y1: float) -> None:
            def at(t: float) -> list[dict]:
                return [{"x": box["x"] + (x0 + t * (x1 - x0)) * box["width"],
                         "y": box["y"] + (y0 + t * (y1 - y0)) * box["height"], "id": 1}]
            cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": at(0)})
            for i in range(1, 11):
                cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": at(i / 10)})
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
            page.wait_for_timeout(300)

        slider = page.locator(".card .slider").first
        before = page.evaluate("window.scrollY")
        swipe(0.5, 0.8, 0.5, 0.2)
        assert page.evaluate("window.scrollY") > before + 50
        assert float(slider.input_value()) == 50
        box = frame.bounding_box()
        swipe(0.5, 0.5, 0.8, 0.5)
        assert float(slider.input_value()) > 60
        context.close()


def test_marking_defects_with_the_keyboard(tmp_path, browser):
    """Without a pointer: 'Mark defects by hand…' pressed from the keyboard puts the focus on the canvas,
    where the arrow keys move the brush's circle (Shift: ten times farther), Space puts the brush down and
    lifts it, U switches to unmarking, + widens the brush, Ctrl+Z takes a stroke back, each change said
    in the status region; the marks reach the server's mask as a mouse's would."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        card.locator(".mark-start").focus()
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.matches('canvas.marks')")
        canvas, cursor = card.locator("canvas.marks"), card.locator(".brush-cursor")
        assert cursor.is_visible()  # (its place: the photo's middle)
        box, ring = canvas.bounding_box(), cursor.bounding_box()
        assert abs(box["width"] - 200) < 1
        assert abs(ring["x"] + ring["width"] / 2 - box["x"] - 100) < 1.5
        assert abs(ring["y"] + ring["height"] / 2 - box["y"] - 75) < 1.5
        announced = "() => document.querySelector('#announce').innerText"

        def keys(*names: str) -> None:
            for name in names:
                page.keyboard.press(name)

        keys(*["Shift+ArrowUp"] * 2, *["Shift+ArrowLeft"] * 4)  # to (20, 35): 20 pixels a step
        keys("Space")  # a scratch the repair missed, painted from left to right
        assert "painting" in cursor.get_attribute("class")
        assert "Painting marks at 10% across, 23% down" in page.evaluate(announced)
        keys(*["Shift+ArrowRight"] * 8, "Space")  # to (180, 35), lifted
        assert "painting" not in cursor.get_attribute("class")
        keys("u", *["Shift+ArrowDown"] * 2)  # unmarking, down to the repaired row (y 75)
        assert card.locator(".unmark").is_checked() and "Unmark" in page.evaluate(announced)
        keys("Space", *["Shift+ArrowLeft"] * 3, "Space")  # its right part, x 120 to 180: no defect
        keys("u", "+", "+", "+")  # marking again, a 20-pixel brush
        assert card.locator(".brush").input_value() == "20" and "Brush 20 pixels" in page.evaluate(announced)
        assert abs(cursor.bounding_box()["width"] - 22) < 1  # (and its 1-pixel border)
        keys(*["Shift+ArrowDown"] * 2, "ArrowDown", "ArrowDown")
        keys("Space", "Shift+ArrowLeft", "Space")  # a slip...
        keys("Control+z")  # ...taken back
        assert "Last stroke taken back; 2 left" in page.evaluate(announced)
        ring = cursor.bounding_box()  # the circle where the brush is: (100, 119)
        assert abs(ring["x"] + ring["width"] / 2 - box["x"] - 100) < 1.5
        assert abs(ring["y"] + ring["height"] / 2 - box["y"] - 119) < 1.5
        page.screenshot(path=str(tmp_path / "serve-marks-keyboard.png"), full_page=True)
        card.locator(".mark-send").focus()
        page.keyboard.press("Enter")
        page.locator(".card[data-status=done] .summary", has_text="marked by hand").wait_for(timeout=30_000)
        job = next(iter(next(iter(engine.sessions.values())).photos.values()))
        mask = np.asarray(Image.open(job.mask)) > 0
        assert mask[30:41, 25:175].all() and not mask[:25].any()  # marked (a 14-pixel brush)
        assert mask[75, :110].all() and not mask[75, 125:175].any()  # unmarked
        assert not mask[90:].any()  # the stroke taken back


def test_the_keyboards_brush_stays_in_sight_in_the_100_percent_view(tmp_path, browser):
    """Marked from the keyboard in the 100 % view (scrolled both ways), the view follows the brush: its
    circle never leaves what is seen; its strokes land where it is."""
    engine = Engine(FakeRestorer(), tmp_path / "root")
    photo = tmp_path / "large.png"
    photo.write_bytes(png_bytes(size=(1200, 900)))
    with served(engine) as url:
        context, page = open_page(browser, url, viewport={"width": 1000, "height": 800})
        page.set_input_files("#files", [str(photo)])
        page.click("#go")
        card = page.locator(".card[data-status=done]")
        card.wait_for(timeout=30_000)
        card.locator(".actual-size").check()
        card.locator(".mark-start").focus()
        page.keyboard.press("Enter")

        def seen() -> bool:
            ring, view = card.locator(".brush-cursor").bounding_box(), card.locator(".view").bounding_box()
            middle = (ring["x"] + ring["width"] / 2, ring["y"] + ring["height"] / 2)
            return (view["x"] <= middle[0] <= view["x"] + view["width"]
                    and view["y"] <= middle[1] <= view["y"] + view["height"] and 0 <= middle[1] <= 800)

        assert seen()
        for key in ("Shift+ArrowUp",) * 5 + ("Space",):  # above the repaired row (y 450): y 350
            page.keyboard.press(key)
        for _ in range(29):  # from the middle to the right edge: 580 pixels, the view 1000 - 80 wide
            page.keyboard.press("Shift+ArrowRight")
            assert seen()
        page.keyboard.press("Space")
        for _ in range(27):  # to the bottom
            page.keyboard.press("Shift+ArrowDown")
            assert seen()
        assert card.locator(".view").evaluate("v => [v.scrollLeft > 0, v.scrollTop > 0]") == [True, True]
        card.locator(".mark-send").focus()
        page.keyboard.press("Enter")
        page.locator(".card[data-status=done] .summary", has_text="marked by hand").wait_for(timeout=30_000)
        job = next(iter(next(iter(engine.sessions.values())).photos.values()))
        mask = np.asarray(Image.open(job.mask)) > 0
        assert mask[344:357, 600:1181].all() and not mask[:340].any() and not mask[360:440].any()
        assert not mask[344:357, 1190:].any() and mask[450].all()
        context.close()


def test_escape_stops_marking_but_asks_before_dropping_strokes(tmp_path, browser):
    """Escape in the marking (on the photo or its tools) does what Cancel does, the focus back on 'Mark
    defects by hand…'; a key is pressed by mistake more easily than a button, so with strokes painted it
    asks first, and keeps them when told no.  Painting from the keyboard, Escape first lifts the brush.
    Stopped, nothing is sent; the strokes kept are sent with 'Repair marked areas'."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        inside = "sel => !!document.activeElement.closest(sel)"
        asked: list[str] = []
        answer = {"accept": False}

        def dialog(d):
            asked.append(d.message)
            d.accept() if answer["accept"] else d.dismiss()

        page.on("dialog", dialog)
        start = card.locator(".mark-start")
        start.focus()
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")  # nothing painted: stopped at once
        assert card.locator("canvas.marks").count() == 0 and not asked
        assert page.evaluate(inside, ".mark-start") and start.is_enabled()
        toggle = card.locator(".show-mask")  # the repaired areas as they were shown before
        assert not toggle.is_checked() and toggle.is_enabled() and card.locator("img.overlay").is_hidden()

        page.keyboard.press("Enter")
        for key in ("Shift+ArrowUp", "Shift+ArrowUp", "Space", "Shift+ArrowRight", "Escape"):
            page.keyboard.press(key)  # painting; Escape lifts the brush...
        assert "painting" not in card.locator(".brush-cursor").get_attribute("class")
        assert card.locator("canvas.marks").count() == 1 and not asked
        assert "Brush lifted" in page.evaluate("document.querySelector('#announce').innerText")
        page.keyboard.press("Escape")  # ...then asks: no, go on marking
        assert asked == ["Stop marking by hand? The 1 stroke painted will be dropped."]
        assert card.locator("canvas.marks").count() == 1 and page.evaluate(inside, "canvas.marks")
        card.locator(".unmark").focus()  # from the marking's tools too: yes, stop
        answer["accept"] = True
        page.keyboard.press("Escape")
        assert len(asked) == 2 and card.locator("canvas.marks").count() == 0
        assert page.evaluate(inside, ".mark-start")
        job = next(iter(next(iter(engine.sessions.values())).photos.values()))
        assert job.revision == 0  # nothing sent

        page.keyboard.press("Enter")  # a stroke kept after a 'no' is the one sent
        answer["accept"] = False
        for key in ("Shift+ArrowUp", "Shift+ArrowUp", "Space", *["Shift+ArrowRight"] * 2, "Space", "Escape"):
            page.keyboard.press(key)
        assert len(asked) == 3
        card.locator(".mark-send").focus()
        page.keyboard.press("Enter")
        page.locator(".card[data-status=done] .summary", has_text="marked by hand").wait_for(timeout=30_000)
        mask = np.asarray(Image.open(job.mask)) > 0
        assert mask[35, 100:140].all() and not mask[:25].any()  # the stroke, and the row repaired before
        assert mask[75].all() and not mask[90:].any()


def test_undo_from_the_keyboard_takes_back_one_stroke_of_one_marking(tmp_path, browser):
    """Ctrl+Z takes back the last stroke of the marking the focus is in, also from its checkboxes and its
    brush's slider (they have no Ctrl+Z of their own: it did nothing there); two photos marked at once,
    the other keeps its strokes (both lost one); the focus outside both, the one used last."""
    names = []
    for i in range(2):
        names.append(tmp_path / f"photo{i}.png")
        names[-1].write_bytes(png_bytes(size=(200, 150), value=(60 * i + 50, 120, 90)))
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context, page = open_page(browser, url, viewport={"width": 1000, "height": 800})
        page.set_input_files("#files", [str(p) for p in names])
        page.click("#go")
        cards = page.locator(".card[data-status=done]")
        cards.nth(1).wait_for(timeout=30_000)
        painted = "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; " \
                  "let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"
        for card in (cards.nth(0), cards.nth(1)):  # two strokes on each
            card.locator(".mark-start").focus()
            page.keyboard.press("Enter")
            for key in ("Space", "Shift+ArrowRight", "Space", "Shift+ArrowDown", "Space", "Space"):
                page.keyboard.press(key)
        first, second = (cards.nth(i).locator("canvas.marks") for i in range(2))
        both = first.evaluate(painted)
        assert both > 0 and second.evaluate(painted) == both
        cards.nth(1).locator(".brush").focus()  # on the second's brush slider
        page.keyboard.press("Control+z")
        one = second.evaluate(painted)
        assert 0 < one < both and first.evaluate(painted) == both
        announced = page.evaluate("document.querySelector('#announce').innerText")
        assert "Last stroke taken back; 1 left" in announced
        cards.nth(0).locator(".unmark").focus()  # on the first's Unmark
        page.keyboard.press("Control+z")
        assert first.evaluate(painted) == one and second.evaluate(painted) == one
        page.locator("h1").click()  # the focus outside both: the first, used last
        page.keyboard.press("Control+z")
        assert first.evaluate(painted) == 0 and second.evaluate(painted) == one
        context.close()


def test_the_advice_for_lines_in_doubt_can_be_followed(tmp_path, browser):
    """A repair on modest evidence (the fake's one stroke) says some lines may be the picture's, and how
    to keep them: each control it names is on the page, and the marking's way to keep a repaired line
    is to unmark it (marking starts from what was repaired: marking 'the real scratches' keeps nothing)."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        summary = card.locator(".summary").inner_text()
        assert "may belong to the picture" in summary, summary
        assert "\u201cUnmark\u201d" in summary and "mark the real scratches" not in summary, summary
        card.locator(".mark-start").click()
        shown = page.locator("body").inner_text()
        for name in re.findall("\u201c([^\u201d]+)\u201d", summary):
            assert name in shown, (name, summary)
        card.locator(".marking-tools button", has_text="Cancel").click()


def test_marking_from_the_keyboard_keeps_the_focus(tmp_path, browser):
    """'Mark defects by hand…' pressed from the keyboard disables itself: the focus goes on to the canvas
    marks are painted on (not to the page's start), its focus shown on the frame; Cancel removes itself:
    the focus comes back to 'Mark defects by hand…' (a screen reader user is not left nowhere)."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        inside = "sel => !!document.activeElement.closest(sel)"
        page.set_viewport_size({"width": 1000, "height": 240})  # the photo's top above the screen
        card.locator(".mark-start").evaluate("b => { b.scrollIntoView({block: 'end'}); b.focus(); }")
        scrolled = page.evaluate("window.scrollY")
        page.keyboard.press("Enter")
        assert page.evaluate(inside, "canvas.marks")
        assert page.evaluate("window.scrollY") == scrolled  # (the page stays: the tools under the button)
        outline = page.evaluate("getComputedStyle(document.querySelector('.frame')).outlineStyle")
        assert outline == "solid"
        card.locator(".marking-tools button", has_text="Cancel").focus()
        page.keyboard.press("Enter")
        assert card.locator("canvas.marks").count() == 0
        assert page.evaluate(inside, ".mark-start")
        page.keyboard.press("Tab")
        assert page.evaluate(inside, ".restore-again")


def test_restoring_again_from_the_keyboard_keeps_the_focus(tmp_path, browser):
    """'Restore again' and 'Repair marked areas' pressed from the keyboard: the result they are in makes
    way for the progress, and the focus waits on the card's status line (it fell to the page's body); the
    new result takes it, on its first control, unless the user has moved on meanwhile."""
    gate = threading.Event()
    gate.set()
    with _one_restored_photo(tmp_path, browser, FakeRestorer(gate=gate)) as (engine, page, card):
        active = "() => [document.activeElement.className, document.activeElement.closest('.card') !== null]"
        gate.clear()  # the next restorations wait
        card.locator(".restore-again").focus()
        page.keyboard.press("Enter")
        card.locator(".compare").wait_for(state="detached", timeout=10_000)
        assert page.evaluate(active) == ["state", True]
        gate.set()
        card.locator(".compare").wait_for(timeout=30_000)
        assert page.evaluate(active) == ["slider", True]
        assert card.locator(".state").get_attribute("tabindex") is None  # (focusable while it waited only)

        gate.clear()
        card.locator(".mark-start").click()
        box = card.locator("canvas.marks").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 4)
        card.locator(".mark-send").focus()
        page.keyboard.press("Enter")
        card.locator(".compare").wait_for(state="detached", timeout=10_000)
        assert page.evaluate(active) == ["state", True]
        page.focus("#dust")  # moved on: the new result does not take the focus back
        gate.set()
        page.locator(".card .summary", has_text="marked by hand").wait_for(timeout=30_000)
        assert page.evaluate("document.activeElement.id") == "dust"

        page.route("**/again?*", lambda r: r.abort())  # not sent: the focus is back on the button
        card.locator(".restore-again").focus()
        page.keyboard.press("Enter")
        card.locator(".summary", has_text="Not sent").wait_for(timeout=10_000)
        assert page.evaluate(active) == ["quiet restore-again", True]


def test_the_marking_canvas_is_named(tmp_path, browser):
    """A screen reader names the canvas marks are painted on (it was read as nothing), an application (the
    arrow keys go to it, not to the screen reader's reading), and reads how to paint on it with the keyboard:
    the keys shown under the photo."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        card.locator(".mark-start").click()
        name = re.compile(r"^Marks over the photo.*mouse, pen or touch, or with the keyboard")
        canvas = page.get_by_role("application", name=name)
        assert canvas.count() == 1 and canvas.evaluate("c => c.matches('canvas.marks')")
        keys = page.locator("#" + canvas.get_attribute("aria-describedby"))
        assert keys.is_visible()
        for said in ("move the brush", "Shift", "Space", "starts or stops painting", "U", "unmarking",
                     "brush\u2019s size", "Ctrl+Z"):
            assert said in keys.inner_text(), said


def test_a_restored_photo_is_announced(tmp_path, browser):
    """A screen reader user who pressed Restore hears when a photo is done (a status region, read out
    politely, not shown); a reload does not announce the photos restored before it."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        region = page.get_by_role("status").filter(has_text="scan.png")
        assert region.count() == 1 and region.get_attribute("id") == "announce"
        assert region.locator("p").last.inner_text().startswith("scan.png: restored in")
        assert region.bounding_box()["width"] <= 1
        page.reload()
        page.locator(".card[data-status=done]").wait_for(timeout=30_000)
        assert page.locator("#announce").inner_text() == ""


def test_the_comparison_slider_shows_its_keyboard_focus(tmp_path, browser):
    """The before/after slider is an invisible range input over the photo: reached with Tab, its focus
    must show (on the frame and the split's grip), and the arrow keys move the split by a step that shows."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        outline = ("() => [getComputedStyle(document.querySelector('.frame')).outlineStyle, "
                   "getComputedStyle(document.querySelector('.frame .handle'), '::after').outlineStyle]")
        assert page.evaluate(outline) == ["none", "none"]
        card.locator(".remove").focus()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "slider"
        assert page.evaluate(outline) == ["solid", "solid"]
        page.keyboard.press("ArrowLeft")  # one press moves the split by a step that shows: 1 % of the photo
        assert page.evaluate("document.querySelector('.frame').style.getPropertyValue('--pos')") == "49%"
        page.keyboard.press("PageUp")
        assert page.evaluate("document.querySelector('.frame').style.getPropertyValue('--pos')") == "59%"
        page.screenshot(path=str(tmp_path / "slider-focus.png"))


def test_every_option_has_a_name(tmp_path, browser):
    """A screen reader names each control of the options: the faithfulness slider (a range in a fieldset,
    not in a label) is read out by its legend, not as a bare "slider"."""
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        assert page.get_by_role("slider", name="Faithfulness to the original", exact=True).count() == 1
        nameless = page.evaluate(
            "() => [...document.querySelectorAll('main input, main select, main button')].filter(e => "
            "!e.labels?.length && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby') && "
            "!(e.tagName === 'BUTTON' && e.textContent.trim())).map(e => e.id || e.className)")
        assert nameless == [], nameless
        context.close()


def test_a_cards_progress_bar_is_named_by_its_photo(tmp_path, browser):
    """A screen reader read each card's progress as a bare "progress bar": it names the photo."""
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes())
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        page.set_input_files("#files", [str(small)])
        assert page.locator(".card progress").get_attribute("aria-label") == "Progress of small.png"
        context.close()


def test_the_options_fit_a_narrow_phone(tmp_path, browser):
    """On a 320 px wide screen (or 1280 px zoomed to 400 %) the options, Advanced open, stay within their
    boxes and the page does not scroll sideways."""
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context, page = open_page(browser, url, viewport={"width": 320, "height": 640})
        page.click(".advanced summary")
        outside = page.evaluate(
            "() => [...document.querySelectorAll('.step fieldset, .step label, .step select, .step input')]"
            ".filter(e => { const r = e.getBoundingClientRect(),"
            " box = e.closest('.step').getBoundingClientRect();"
            " return r.width > 0 && (r.left < box.left || r.right > box.right); })"
            ".map(e => e.id || e.tagName)")
        assert outside == [], outside
        assert page.evaluate("document.documentElement.scrollWidth") <= 320
        page.screenshot(path=str(tmp_path / "serve-320.png"), full_page=True)
        context.close()


def _contrast(css_a: str, css_b: str) -> float:
    """WCAG contrast ratio of two computed colours ('rgb(r, g, b)')."""
    def luminance(css):
        channels = [int(v) / 255 for v in re.findall(r"\d+", css)[:3]]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    high, low = sorted((luminance(css_a), luminance(css_b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_focus_rings_of_our_own_stand_out(tmp_path, browser):
    """The drop zone's and the comparison's focus rings (the page draws them: the file input and the slider
    are invisible) have at least 3:1 contrast with the white card around them, for low vision."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        ring = "sel => getComputedStyle(document.querySelector(sel)).outlineColor"
        page.focus("#files")
        assert _contrast(page.evaluate(ring, "#drop"), "rgb(255, 255, 255)") >= 3
        card.locator(".slider").focus()
        assert _contrast(page.evaluate(ring, ".frame"), "rgb(255, 255, 255)") >= 3


def test_restore_again_with_other_options(tmp_path, browser):
    """'Restore again' sends a restored photo back with the options now chosen above (only those the
    user changed), and the page shows the new result in place of the old one."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        assert "Repaired" in card.locator(".summary").inner_text()
        page.check("input[name=scratches][value=off]")
        card.locator(".restore-again").click()
        second = page.locator(".card[data-status=done][data-shown$=':1'] .compare")  # the new result
        second.wait_for(timeout=30_000)
        assert page.locator(".card .compare").count() == 1
        calls = [options for _, options in engine.base.shared["calls"]]
        assert [o.scratches for o in calls] == ["auto", "off"]
        assert calls[1] == dataclasses.replace(calls[0], scratches="off")  # nothing else changed


def test_a_number_out_of_its_range_is_named_as_the_page_names_it(tmp_path, browser):
    """The server's answer named the command line's flag ("--mask-threshold must be between 0 and 1,
    got 5.0"; a user review): the page says it with the field's own name, and sends nothing."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        page.locator("details.advanced summary").click()
        page.fill("#mask_threshold", "5")
        card.locator(".restore-again").click()
        said = "\u201cDefect threshold\u201d takes a number from 0.01 to 0.99 (5 is given)"
        page.locator(".card .compare", has_text=said).wait_for(timeout=5_000)
        page.set_input_files("#files", [str(tmp_path / "scan.png")])
        page.click("#go")
        assert page.locator("#go-note").inner_text() == f"Not sent: {said}"
        assert len(engine.base.shared["calls"]) == 1  # the first restoration only


class _LeavesWhatItIsNotToRepair(FakeRestorer):
    """Inverts as FakeRestorer does, but with --scratches off gives the photo back as it is."""

    def restore(self, pixels, mask=None):
        result = super().restore(pixels, mask)
        if self.options.scratches == "off":
            result.image = pixels
        return result


def test_a_result_restored_again_is_the_one_shown(tmp_path, browser):
    """The new result's pictures, not the old ones the browser had shown from the same address (a user
    review: after 'Restore again' the page kept showing the first result, and the overlay its marks)."""
    mean_of = """img => { const c = document.createElement("canvas");
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext("2d"); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data; let sum = 0;
        for (let i = 0; i < d.length; i += 4) sum += d[i + 1];
        return sum / (d.length / 4); }"""
    with _one_restored_photo(tmp_path, browser, _LeavesWhatItIsNotToRepair()) as (engine, page, card):
        first = card.locator("img.after")
        first.evaluate("img => img.decode()")
        assert first.evaluate(mean_of) == pytest.approx(255 - 150, abs=6)  # inverted: green 150 -> 105
        page.check("input[name=scratches][value=off]")
        card.locator(".restore-again").click()
        second = page.locator(".card[data-status=done][data-shown$=':1'] img.after")
        second.wait_for(state="attached", timeout=30_000)
        second.evaluate("img => img.decode()")
        assert second.evaluate(mean_of) == pytest.approx(150, abs=6)  # as it is


def test_a_failed_photo_is_tried_again_with_other_options(tmp_path, browser):
    class FailsAtThatFidelity(FakeRestorer):
        def restore(self, pixels, mask=None):
            if self.options.fidelity == 0.55:
                raise RuntimeError("out of memory (a fake failure)")
            return super().restore(pixels, mask)

    engine = Engine(FailsAtThatFidelity(), tmp_path / "root")
    photo = tmp_path / "scan.png"
    photo.write_bytes(png_bytes(size=(200, 150)))
    with served(engine) as url:
        context, page = open_page(browser, url, viewport={"width": 1000, "height": 800})
        page.set_input_files("#files", [str(photo)])
        page.focus("#fidelity")
        page.keyboard.press("ArrowRight")  # 0.5 -> 0.55
        page.click("#go")
        failed = page.locator(".card[data-status=failed]")
        failed.wait_for(timeout=30_000)
        assert "out of memory" in failed.locator(".error .message").inner_text()
        page.focus("#fidelity")
        page.keyboard.press("ArrowLeft")  # back to the server's 0.5
        page.locator("details.advanced summary").click()
        page.fill("#mask_threshold", "5")  # not sent: said in the error, an alert, and so read out once
        failed.locator(".restore-again").click()
        failed.locator(".error", has_text="Not sent").wait_for(timeout=5_000)
        assert "Not sent" not in page.locator("#announce").inner_text()
        page.fill("#mask_threshold", "")
        failed.locator(".restore-again").click()
        page.locator(".card[data-status=done] .compare").wait_for(timeout=30_000)
        assert page.locator(".card .error").count() == 0
        context.close()


def test_a_failed_photos_error_is_read_out_once_not_again_after_a_reload(tmp_path, browser):
    class Fails(FakeRestorer):
        def restore(self, pixels, mask=None):
            raise RuntimeError("out of memory (a fake failure)")

    photo = tmp_path / "scan.png"
    photo.write_bytes(png_bytes(size=(200, 150)))
    with served(Engine(Fails(), tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        page.set_input_files("#files", [str(photo)])
        page.click("#go")
        page.locator(".card[data-status=failed] .error").wait_for(timeout=30_000)
        assert page.locator(".card .error").get_attribute("role") == "alert"
        page.reload()
        page.locator(".card[data-status=failed] .error").wait_for(timeout=30_000)
        assert "out of memory" in page.locator(".card .error").inner_text()
        assert page.locator(".card .error").get_attribute("role") is None  # (shown, not read out again)
        context.close()


def test_removing_a_photo_while_it_is_sent(tmp_path, browser):
    """A photo removed from the page while its bytes are on their way is not restored (its upload is
    stopped, or the server told to forget it), and the photos after it are still sent."""
    engine = Engine(FakeRestorer(), tmp_path / "root")
    noise = np.random.default_rng(0).integers(0, 256, (500, 500, 3), dtype=np.uint8)
    large = tmp_path / "large.png"
    Image.fromarray(noise).save(large)  # ~750 kB: seconds to send at the throttled speed below
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes())
    with served(engine) as url:
        context = browser.new_context(viewport={"width": 1000, "height": 800})
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                      "downloadThroughput": -1, "uploadThroughput": 150_000})
        page.goto(url)
        page.wait_for_selector("#version:not(:empty)")
        page.set_input_files("#files", [str(large), str(small)])
        page.click("#go")
        first = page.locator(".card").first
        first.locator(".state", has_text="sending").wait_for(timeout=10_000)
        first.locator(".remove").click()
        page.locator(".card[data-status=done]").wait_for(timeout=30_000)
        assert [n.inner_text() for n in page.locator(".card .name").all()] == ["small.png"]
        for _ in range(50):  # the removed upload's end (aborted, or deleted once answered)
            names = [job.name for s in engine.sessions.values() for job in s.photos.values()]
            if names == ["small.png"]:
                break
            page.wait_for_timeout(100)
        assert names == ["small.png"]
        assert [shape for shape, _ in engine.base.shared["calls"]] == [(30, 40, 3)]
        # the last result removed: no 'Download all' left that would answer 'no restored photos yet'
        assert page.locator("#zip").is_visible()
        page.locator(".card .remove").click()
        page.locator("#results").wait_for(state="hidden", timeout=10_000)
        assert page.locator("#zip").is_hidden()
        context.close()


def test_an_unreachable_server_is_said_in_a_sentence(tmp_path, browser):
    """A photo that could not be sent (the server stopped, the network gone) says so in a sentence and
    is sent again by itself."""
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes())
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context = browser.new_context()
        context.route("**/api/photos?*", lambda r: r.abort() if r.request.method == "POST" else r.continue_())
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#version:not(:empty)")
        page.set_input_files("#files", [str(small)])
        page.click("#go")
        state = page.locator(".card .state", has_text="Trying again in")
        state.wait_for(timeout=10_000)
        text = state.inner_text()
        assert text.startswith("The server could not be reached. Trying again in"), text
        context.close()


def test_the_faces_note_shows_commands_as_code_not_backticks(tmp_path, browser):
    """The server's reason for having no face enhancement names a command in backticks: the page shows it
    as code, and as text (a message is never parsed as HTML)."""
    fake = FakeRestorer()
    fake.notices = ["face enhancement is off: no face weights (`oldphoto weights download` <b>fetches</b>)"]
    with served(Engine(fake, tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        note = page.locator("#faces-note")
        assert note.inner_text() == ("Not available on this server: no face weights (oldphoto weights "
                                     "download <b>fetches</b>)")
        assert note.locator("code").inner_text() == "oldphoto weights download"
        assert note.locator("b").count() == 0
        context.close()


def test_the_high_resolution_mode_says_what_it_does(tmp_path, browser):
    """'Large scans: high-resolution mode' had no word of explanation: its label suggested ticking it for
    a large scan, which takes that path anyway (above the server's --hr-above).  Its note says so."""
    fake = FakeRestorer()
    fake.options = dataclasses.replace(fake.options, hr_above=6.0)
    with served(Engine(fake, tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        assert page.locator("#hr-note").inner_text() == (
            "Photos of more than 6 megapixels are repaired this way anyway; ticked, smaller ones too "
            "(slower), and faces are enhanced at 512 pixels.")
        context.close()


def test_a_faded_photo_is_unfaded_when_chosen_on_the_page(tmp_path, browser):
    """'Faded photo' starts at the server's default (keep its tones, sent as nothing); chosen, the photo is
    restored with --unfade."""
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes())
    fake = FakeRestorer(shared={"calls": [], "restorers": 1})
    with served(Engine(fake, tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        assert page.locator("#unfade").input_value() == "off"
        page.select_option("#unfade", "colour")
        page.set_input_files("#files", [str(small)])
        page.click("#go")
        page.locator(".card[data-status=done]").first.wait_for(timeout=60_000)
        assert [options.unfade for _, options in fake.shared["calls"]] == ["colour"]
        context.close()


def test_enlarging_from_the_page(tmp_path, browser):
    """'Enlarge' can be chosen only where the upscaler is installed (elsewhere the note names the command
    that installs it); chosen, the photo is sent with it, and the restored picture is the larger one: the
    100 % view has its pixels, with the original enlarged beside it."""
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes())  # 40 x 30
    with served(Engine(FakeRestorer(), tmp_path / "without")) as url:
        context, page = open_page(browser, url)
        assert page.locator("#upscale").is_disabled()
        assert page.locator("#upscale-note code").inner_text() == "oldphoto weights download realesrgan"
        context.close()
    fake = FakeRestorer(shared={"calls": [], "restorers": 1, "upscaler": True})
    with served(Engine(fake, tmp_path / "with")) as url:
        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("#version:not(:empty)")
        assert page.locator("#upscale").is_enabled() and page.locator("#upscale").input_value() == "1"
        page.select_option("#upscale", "2")
        page.set_input_files("#files", [str(small)])
        page.click("#go")
        card = page.locator(".card[data-status=done]").first
        card.wait_for(timeout=60_000)
        assert [options.upscale for _, options in fake.shared["calls"]] == [2]
        card.locator(".actual-size").check()
        card.locator(".frame[data-full=done]").wait_for(timeout=30_000)
        sizes = {kind: card.locator(f"img.{kind}").evaluate(
            "img => [img.getBoundingClientRect().width, img.naturalWidth]") for kind in ("after", "before")}
        assert sizes == {"after": [80, 80], "before": [80, 40]}
        context.close()
    assert not errors, errors


def test_the_100_percent_view(tmp_path, browser):
    """'100 %' shows the photo at one photo pixel per device pixel (a screen of 2 device pixels per CSS
    pixel here), from full-size pictures fetched only then, in a view scrolled to where the user last
    clicked; the slider still moves the split there.  The fitted view never enlarges a small photo."""
    height, width = 1600, 2400  # larger than the previews (1600 px): the 100 % view needs its own pictures
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x // 40 + y // 40) % 2 * 200 + 30], axis=-1)
    pixels[height // 2, :] = 0  # the fake's 'defect': a dark line
    large = tmp_path / "large.png"
    Image.fromarray(pixels.astype(np.uint8)).save(large, compress_level=1)
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes())  # 40 x 30
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context = browser.new_context(viewport={"width": 800, "height": 600}, device_scale_factor=2)
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("#version:not(:empty)")
        page.set_input_files("#files", [str(large), str(small)])
        page.click("#go")
        page.locator(".card[data-status=done]").nth(1).wait_for(timeout=120_000)
        big, little = page.locator(".card").nth(0), page.locator(".card").nth(1)

        def rendered(card, kind="after"):  # the picture's (width, height) in device pixels, and its own
            return card.locator(f"img.{kind}").evaluate(
                "img => { const r = img.getBoundingClientRect(); return [r.width * devicePixelRatio, "
                "r.height * devicePixelRatio, img.naturalWidth, img.naturalHeight]; }")

        for card in (big, little):  # the previews loaded
            for _ in range(100):
                if card.locator("img.after").evaluate("img => img.complete && img.naturalWidth > 0"):
                    break
                page.wait_for_timeout(100)
        # fitted: a small photo at its own size in CSS pixels, not blown up; a large one within the page
        assert rendered(little)[:2] == [80, 60]  # one photo pixel per CSS pixel (2 device pixels here)
        fitted = rendered(big)
        assert fitted[0] < width and fitted[2:] == [1600, 1067]
        assert not [u for u in requests if "_full" in u]  # nothing full-size fetched before it is asked for

        # a click in the fitted view at (60 %, 60 %), then '100 %' from the keyboard
        frame = big.locator(".frame")
        frame.scroll_into_view_if_needed()
        box = frame.bounding_box()
        page.mouse.click(box["x"] + 0.6 * box["width"], box["y"] + 0.6 * box["height"])
        big.locator(".actual-size").focus()
        page.keyboard.press("Space")
        big.locator(".frame[data-full=done]").wait_for(timeout=60_000)
        assert rendered(big) == [width, height, width, height]
        assert rendered(big, "before")[:2] == [width, height] and rendered(big, "before")[2] == width
        assert sorted(u.rsplit("/", 1)[1] for u in requests if "_full" in u) == [
            "after_full.png?revision=0", "before_full.png?revision=0", "overlay_full.png?revision=0"]
        view = big.locator(".view")
        scroll = view.evaluate("v => [v.scrollLeft, v.scrollTop, v.clientWidth, v.clientHeight, "
                               "v.scrollWidth, v.scrollHeight]")
        assert scroll[4] == width / 2 and scroll[5] == height / 2  # (CSS pixels)
        assert scroll[2] < width / 2 and scroll[3] < height / 2 and scroll[3] <= 0.78 * 600 + 1
        assert abs(scroll[0] + scroll[2] / 2 - 0.6 * width / 2) <= 1  # the point clicked, in the middle
        assert abs(scroll[1] + scroll[3] / 2 - 0.6 * height / 2) <= 1

        # the slider moves the split to where the view is clicked (and the view stays where it is)
        view.scroll_into_view_if_needed()
        seen, box = view.bounding_box(), frame.bounding_box()
        click = seen["x"] + 0.25 * seen["width"]
        page.mouse.click(click, seen["y"] + 0.5 * seen["height"])
        position = float(frame.evaluate("f => f.style.getPropertyValue('--pos')").rstrip("%"))
        assert abs(position - 100 * (click - box["x"]) / box["width"]) < 0.2, position
        handle = big.locator(".handle").bounding_box()
        assert abs(handle["x"] + handle["width"] / 2 - click) < 2
        assert view.evaluate("v => v.scrollLeft") == scroll[0]
        big.screenshot(path=str(tmp_path / "serve-100.png"))
        big.locator(".show-mask").check()
        assert rendered(big, "overlay") == [width, height, width, height]

        # back to fitted: within the page again; a small photo at 100 % is one pixel per device pixel
        big.locator(".actual-size").uncheck()
        assert rendered(big)[0] == fitted[0]
        little.locator(".actual-size").check()
        little.locator(".frame[data-full=done]").wait_for(timeout=30_000)
        assert rendered(little) == [40, 30, 40, 30]
        context.close()
    assert not errors, errors


def test_no_100_percent_view_above_the_limit(tmp_path, browser):
    """A photo with more pixels than the server makes full-size pictures for: '100 %' cannot be turned
    on, and the page says why and what to do instead."""
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes())  # 40 x 30 = 1200 pixels
    with served(Engine(FakeRestorer(), tmp_path / "root", full_view_pixels=1000)) as url:
        context, page = open_page(browser, url)
        page.set_input_files("#files", [str(small)])
        page.click("#go")
        card = page.locator(".card[data-status=done]")
        card.wait_for(timeout=30_000)
        assert card.locator(".actual-size").is_disabled()
        note = card.locator(".actual-note").inner_text()
        assert "too large for the 100 % view here" in note and "download it" in note, note
        context.close()


# ------------------------------------------------------------------------------------- accessibility
# (WCAG 2.1 AA, as a volunteer at an archive uses the page: keyboard alone, a screen reader, 200 % zoom,
# high contrast, reduced motion; docs/serve.md, "Accessibility")

def test_restoring_from_the_keyboard_keeps_the_focus(tmp_path, browser):
    """'Restore photos' is disabled once pressed (nothing is left to send): the focus fell to the page's
    body, and stayed there, where a screen reader reads nothing.  It waits on the first photo's status
    line, then goes to that photo's result."""
    gate = threading.Event()
    photos = [tmp_path / f"scan{i}.png" for i in range(2)]
    for photo in photos:
        photo.write_bytes(png_bytes())
    with served(Engine(FakeRestorer(gate=gate), tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        page.set_input_files("#files", [str(p) for p in photos])
        active = ("() => [document.activeElement.className, "
                  "document.activeElement.closest('.card')?.dataset.id]")
        page.focus("#go")
        page.keyboard.press("Enter")
        page.locator(".card[data-status=running]").wait_for(timeout=10_000)
        first = page.locator(".card").first
        assert page.evaluate(active) == ["state", first.get_attribute("data-id")]
        gate.set()
        page.locator(".card[data-status=done]").nth(1).wait_for(timeout=30_000)
        assert page.evaluate(active) == ["slider", first.get_attribute("data-id")]
        context.close()


def test_the_100_percent_view_scrolls_with_the_keyboard(tmp_path, browser):
    """The 100 % view scrolls both ways, but only a mouse or a finger could scroll it: the slider in it
    takes the arrow keys.  It is reached with Tab (named, its focus shown), and the arrows scroll it."""
    large = tmp_path / "large.png"
    large.write_bytes(png_bytes(size=(1600, 1200)))
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context, page = open_page(browser, url, viewport={"width": 800, "height": 600})
        page.set_input_files("#files", [str(large)])
        page.click("#go")
        card = page.locator(".card[data-status=done]")
        card.wait_for(timeout=30_000)
        view = card.locator(".view")
        assert view.get_attribute("tabindex") is None  # (fitted: nothing to scroll)
        card.locator(".actual-size").focus()
        page.keyboard.press("Space")
        card.locator(".frame[data-full=done]").wait_for(timeout=30_000)
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("document.activeElement.className") == "slider"
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("document.activeElement.classList.contains('view')")
        assert page.get_by_role("group", name=re.compile("^large.png at 100 %")).count() == 1
        assert view.evaluate("v => getComputedStyle(v).outlineStyle") == "solid"
        before = view.evaluate("v => [v.scrollLeft, v.scrollTop]")
        for key in ("ArrowRight", "ArrowDown"):
            page.keyboard.press(key)
        page.wait_for_timeout(300)  # (a smooth scroll)
        after = view.evaluate("v => [v.scrollLeft, v.scrollTop]")
        assert after[0] > before[0] and after[1] > before[1], (before, after)
        card.locator(".actual-size").uncheck()
        assert view.get_attribute("tabindex") is None
        context.close()


def test_what_the_page_says_after_an_action_is_announced(tmp_path, browser):
    """A screen reader hears what the page says after an action without moving to it (WCAG 4.1.3): photos
    added (the chooser then says "no file chosen"), why they were not sent, a full-size photo loading or
    not loaded, a photo removed, the user's files deleted; each was written where only the eyes found it."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        said = page.locator("#announce")
        page.set_input_files("#files", [str(tmp_path / "scan.png")])
        assert "1 photo added: choose the options below" in said.inner_text()
        page.locator("details.advanced summary").click()
        page.fill("#mask_threshold", "5")
        page.click("#go")
        not_sent = said.locator("p", has_text="Not sent: \u201cDefect threshold\u201d")
        assert not_sent.count() == 1
        card.locator(".restore-again").click()  # (a result's "Not sent" goes where its summary was)
        assert not_sent.count() == 2
        page.fill("#mask_threshold", "")
        page.route("**/preview/*_full.png*", lambda r: r.fulfill(status=500, body="{}"))
        card.locator(".actual-size").check()
        page.get_by_role("status").filter(has_text="The full-size photo could not be loaded").wait_for()
        page.locator(".card").last.locator(".remove").click()
        assert said.inner_text().endswith("scan.png removed.")
        # (not what the button's note says after each sending, and now: "Add photos first.")
        assert page.get_by_role("status").filter(has_text="Add photos first").count() == 0
        page.on("dialog", lambda dialog: dialog.accept())
        page.click("#forget")
        page.locator("#results").wait_for(state="hidden")
        assert said.inner_text().endswith("Your photos and results are deleted from this server.")


def test_each_result_is_found_by_its_photos_name(tmp_path, browser):
    """A screen reader goes from photo to photo by their headings (each card's name, under "Results"),
    and names each picture of a result by its photo ("restored", "original" were the same for every
    photo); the split's grip (read as two triangles) and the Before/After tags (the pictures' names
    again) are not read out."""
    photos = [tmp_path / f"scan{i}.png" for i in range(2)]
    for photo in photos:
        photo.write_bytes(png_bytes())
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        page.set_input_files("#files", [str(p) for p in photos])
        page.click("#go")
        page.locator(".card[data-status=done]").nth(1).wait_for(timeout=30_000)
        for i, photo in enumerate(photos):
            card = page.locator(".card").nth(i)
            assert card.get_by_role("heading", level=3, name=photo.name, exact=True).count() == 1
            frame = card.locator(".frame")
            assert [image.get_attribute("alt") for image in frame.locator("img").all()] == [
                f"{photo.name}, restored", f"{photo.name}, original", f"{photo.name}, repaired areas"]
            tree = frame.aria_snapshot()
            assert "\u25c0" not in tree and "Before" not in tree and "After" not in tree, tree
        context.close()


def test_high_contrast_keeps_the_colours_of_what_is_on_the_photo(tmp_path, browser):
    """In a high-contrast theme (forced colours) the browser paints every box in the theme's few colours,
    but not the photo: the swatches saying what red, yellow and blue mean on it all turned the page's
    background, the face boxes the theme's text colour, and the split lost its shadow (white on a white
    sky).  They keep their own colours."""
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        page.emulate_media(forced_colors="active")
        card.locator(".mark-start").click()
        look = "(e, property) => getComputedStyle(e)[property]"
        for selector, colour in ((".swatch-mask", "rgb(255, 40, 40)"), (".swatch-marked", "rgb(255, 205, 0)"),
                                 (".swatch-unmarked", "rgb(0, 150, 255)")):
            assert card.locator(selector).evaluate(look, "backgroundColor") == colour, selector
        assert card.locator(".face").evaluate(look, "borderTopColor") == "rgb(63, 167, 255)"
        assert card.locator(".handle").evaluate(look, "boxShadow") != "none"
        canvas = card.locator("canvas.marks")
        canvas.focus()
        page.keyboard.press("Space")  # painting: the brush's circle filled with the colour it paints
        assert card.locator(".brush-cursor").evaluate(look, "backgroundColor") == "rgba(255, 205, 0, 0.55)"


def test_a_waiting_photos_progress_bar_is_still_with_reduced_motion(tmp_path, browser):
    """The progress bar of a photo waiting its turn (or restored without an estimate) is indeterminate:
    Chromium sweeps it to and fro, for minutes, even when the system asks for reduced motion; then it
    stands still (the status line beside it says what happens)."""
    gate = threading.Event()
    photos = [tmp_path / f"scan{i}.png" for i in range(2)]
    for photo in photos:
        photo.write_bytes(png_bytes())
    with served(Engine(FakeRestorer(gate=gate), tmp_path / "root")) as url:
        context, page = open_page(browser, url, reduced_motion="reduce")
        page.set_input_files("#files", [str(p) for p in photos])
        page.click("#go")
        bar = page.locator(".card").nth(1).locator("progress")
        page.locator(".card:nth-child(2)[data-status=queued]").wait_for(timeout=10_000)  # (behind the 1st)
        frames = set()
        for _ in range(4):
            with Image.open(io.BytesIO(bar.screenshot())) as shot:  # (not its rounded ends: at a fraction
                row = np.asarray(shot.convert("RGB"))[shot.height // 2, 10:-10]  # of a pixel, they vary)
            frames.add(row.tobytes())
            page.wait_for_timeout(150)
        assert len(frames) == 1
        assert bar.bounding_box()["height"] > 0  # (still shown)
        gate.set()
        context.close()


def test_an_options_note_is_read_with_it(tmp_path, browser):
    """The notes under the options (what fine dust takes with it, that enlarging invents texture and takes
    minutes…) are the options' descriptions: a screen reader going from control to control with Tab
    skipped them."""
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        described = {"#dust": "Stars, city lights", "#dark_dust": "Small ones on plain areas",
                     "#fidelity": "how much of the photo's own grain", "#hr": "are repaired this way anyway",
                     "#faces": "Not available on this server", "#upscale": "Not available on this server",
                     "#unfade": "its darkest tones become black"}
        for control, note in described.items():
            description = re.compile(re.escape(note))
            sync_api.expect(page.locator(control)).to_have_accessible_description(description)
        ends = re.compile("^more restored")  # (and first what the slider's ends mean)
        sync_api.expect(page.locator("#fidelity")).to_have_accessible_description(ends)
        context.close()


def test_the_faithfulness_is_read_once(tmp_path, browser):
    """The number shown beside the faithfulness slider is an <output>, a status region: a screen reader
    read each new value twice, the slider's and the region's.  The slider's alone is read."""
    with served(Engine(FakeRestorer(), tmp_path / "root")) as url:
        context, page = open_page(browser, url)
        page.focus("#fidelity")
        page.keyboard.press("ArrowRight")
        assert page.locator("#fidelity-value").inner_text() == "0.55"  # (still shown)
        assert page.get_by_role("slider", name="Faithfulness to the original").input_value() == "0.55"
        assert page.get_by_role("status").filter(has_text="0.55").count() == 0
        context.close()


def test_results_and_marking_fit_a_narrow_phone_and_200_percent(tmp_path, browser):
    """At 320 CSS pixels wide (1280 at 400 %) and 640 (at 200 %) a result, a failed photo and the marking
    tools do not make the page scroll sideways (WCAG 1.4.10; the options: the test above, at 320)."""
    letter = tmp_path / "letter.jpg"
    letter.write_text("Dear Sir, this is a letter, not a photo.")
    with _one_restored_photo(tmp_path, browser) as (engine, page, card):
        page.set_input_files("#files", [str(letter)])
        page.click("#go")
        page.locator(".card[data-status=failed]").wait_for(timeout=30_000)
        card.locator(".mark-start").click()
        for width in (320, 640):
            page.set_viewport_size({"width": width, "height": 640})
            assert page.evaluate("document.documentElement.scrollWidth") <= width, width


# WCAG 1.4.12's text spacing, as a user's style sheet sets it on every element (paragraphs: 2em after)
TEXT_SPACING = ("* { line-height: 1.5 !important; letter-spacing: .12em !important;"
                " word-spacing: .16em !important; } p { margin-bottom: 2em !important; }")
# (the page's CSP refuses a <style> element; a constructed style sheet is not one)
ADD_STYLE = ("css => { const sheet = new CSSStyleSheet(); sheet.replaceSync(css);"
             " document.adoptedStyleSheets = [sheet]; }")
# the selects whose longest choice is cut off (a select as wide as its longest choice widened the page)
CUT_SELECTS = ("() => [...document.querySelectorAll('select')].filter(s => s.offsetWidth).filter(s => {"
               " const whole = s.cloneNode(true);"
               " whole.style.maxWidth = 'none'; whole.style.width = 'max-content'; s.after(whole);"
               " const cut = whole.offsetWidth > s.offsetWidth + 0.5; whole.remove(); return cut; })"
               ".map(s => s.id)")


def test_the_page_fits_320_pixels_with_the_texts_spacing_raised(tmp_path, browser):
    """At 320 CSS pixels wide with the text spacing raised (WCAG 1.4.10 with 1.4.12) the page scrolled
    sideways by 35 pixels: the 'Faded photo' choice widened its box, 'Delete my files' went past the
    edge; a file's name without a break went past it in an error message (at any spacing).  In every
    state a user meets the page stays within the screen, every choice of a select whole; the 100 % view
    scrolls in its own box only."""
    photo = tmp_path / "a_scan_named_without_any_place_to_break_it_0001.png"
    photo.write_bytes(png_bytes(size=(600, 400)))  # (at 100 %, wider than the screen)
    large = tmp_path / "a_scan_named_without_any_place_to_break_it_0002.png"
    large.write_bytes(bytes(200_000))  # refused by the page, its name in the error
    with served(Engine(FakeRestorer(), tmp_path / "root"), max_upload=100_000) as url:
        context, page = open_page(browser, url, viewport={"width": 320, "height": 640})
        page.evaluate(ADD_STYLE, TEXT_SPACING)
        widths = {}

        def measure(state):
            widths[state] = page.evaluate("document.documentElement.scrollWidth")

        measure("empty")
        page.set_input_files("#files", [str(photo), str(large)])
        measure("photos added")
        page.click(".advanced summary")
        measure("options open")
        assert page.evaluate(CUT_SELECTS) == []
        page.click("#go")
        card = page.locator(".card[data-status=done]")
        card.wait_for(timeout=30_000)
        page.locator(".card[data-status=failed]").wait_for(timeout=30_000)
        measure("a result and an error")
        card.locator(".mark-start").click()
        measure("marking")
        card.locator(".actual-size").check()
        card.locator(".frame[data-full=done]").wait_for(timeout=30_000)
        measure("marking at 100 %")
        assert card.locator(".view").evaluate("v => v.scrollWidth > v.clientWidth")  # (its own box scrolls)
        assert all(width <= 320 for width in widths.values()), widths
        context.close()


def test_a_page_in_use_keeps_its_files_and_one_left_alone_does_not(tmp_path, browser):
    """The server deletes a session after --session-minutes without a request, and a page whose photos
    are done asks nothing: someone marking defects (or reading the results) for longer lost the photos
    and the marks.  A page in use now keeps them; one left alone lets them go."""
    with _one_restored_photo(tmp_path, browser, session_ttl=2.0) as (engine, page, _):
        for _ in range(20):  # 5 s of use: two and a half times the limit, no request of its own
            page.keyboard.press("Shift")
            page.wait_for_timeout(250)
        engine.sweep()
        assert len(engine.sessions) == 1
        page.wait_for_timeout(4000)  # left alone (the last use is told within 0.75 s)
        engine.sweep()
        assert not engine.sessions
        # back to the page: its results went, and it says why (they vanished without a word)
        page.evaluate("window.dispatchEvent(new Event('focus'))")
        page.locator(".card").wait_for(state="detached", timeout=10_000)
        note = page.locator("#drop-added")
        assert note.is_visible() and "no longer on this server" in note.text_content()
        assert "no longer on this server" in page.locator("#announce").text_content()


def test_a_page_left_alone_warns_before_its_files_go(tmp_path, browser):
    """Someone who left the page for another box of photos came back to 'Your photos and results are no
    longer on this server', unwarned.  Shortly before (here 3 s of a 6 s limit; 5 minutes of 60 by
    default) the page says so, in sight and to a screen reader (its status region); 'Keep my photos'
    keeps them (the focus back where it was), and so does any use while the warning shows."""
    with _one_restored_photo(tmp_path, browser, session_ttl=6.0) as (engine, page, card):
        card.locator(".show-mask").focus()  # (where the user was; focusing is no use of the page)
        notice = page.locator("#expiry")
        assert notice.is_hidden()
        notice.wait_for(state="visible", timeout=10_000)
        seen = time.monotonic()
        assert "deletes your photos and results at" in notice.text_content()
        assert "deletes your photos and results at" in page.locator("#announce").text_content()
        box = notice.bounding_box()  # at the bottom of the window, wherever the page is scrolled
        assert box["y"] >= 0 and abs(box["y"] + box["height"] - page.viewport_size["height"]) < 1, box
        page.locator("#keep").focus()
        page.keyboard.press("Enter")
        notice.wait_for(state="hidden", timeout=5000)
        assert page.evaluate("document.activeElement.className") == "show-mask"
        page.locator("#announce").get_by_text("Your photos and results are kept.").wait_for(timeout=5000)
        time.sleep(max(0.0, seen + 4.5 - time.monotonic()))  # past the limit counted from before the warning
        engine.sweep()
        assert len(engine.sessions) == 1
        notice.wait_for(state="visible", timeout=10_000)  # left alone again
        page.mouse.wheel(0, 40)  # a use: the server is told at once
        notice.wait_for(state="hidden", timeout=5000)
        assert len(engine.sessions) == 1


def test_a_page_left_alone_past_the_limit_says_its_files_went(tmp_path, browser):
    """Past the time the warning gave, it stayed: 'the server deletes your photos and results at 14:05,
    unless the page is used' with 'Keep my photos', at 15:30, over results whose files were gone.  Once
    the limit (and the lag of the server's clock) is past, the page asks and says what is so."""
    with _one_restored_photo(tmp_path, browser, session_ttl=4.0) as (engine, page, card):
        notice = page.locator("#expiry")
        notice.wait_for(state="visible", timeout=10_000)
        card.wait_for(state="detached", timeout=10_000)  # (no use of the page meanwhile)
        note = page.locator("#drop-added")
        assert note.is_visible() and "no longer on this server" in note.text_content()
        assert notice.is_hidden() and not engine.sessions

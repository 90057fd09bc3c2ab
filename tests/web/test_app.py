"""The HTTP side of `oldphoto serve` on a loopback port, with the fake restorer; and the real command."""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from web_support import Client, FakeRestorer, png_bytes, served

from oldphoto.stages.faces import face_detection_available
from oldphoto.web.engine import Engine

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'oldphoto[web]'")
pytest.importorskip("uvicorn", reason="the web extra is not installed: pip install 'oldphoto[web]'")

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "oldphoto" / "web" / "static"


def _engine(tmp_path, **kw) -> Engine:
    return Engine(FakeRestorer(), tmp_path / "root", **kw)


def test_page_and_static_files_name_no_other_host():
    """Nothing the page is made of points outside the server: no http(s) URL, no protocol-relative
    one, no @import; the CSP header (below) makes the browser refuse any it would still find."""
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name
        assert "@import" not in text and "fonts." not in text, path.name
    html = (STATIC / "index.html").read_text()
    for url in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert url.startswith("/") or url.startswith("data:"), url


def test_upload_restore_download_and_zip(tmp_path):
    with served(_engine(tmp_path)) as url:
        client = Client(url)
        status, head, page = client.request("GET", "/")
        assert status == 200 and b"Drop photos here" in page
        assert "default-src 'none'" in head["content-security-policy"]
        assert "script-src 'self'" in head["content-security-policy"]
        status, head, data = client.request("GET", "/api/config")
        config = json.loads(data)
        assert config["defaults"]["fidelity"] == 0.5 and config["faces_available"] is False
        # (--dark-dust's note says whether faces are left: dlib finds them)
        assert config["face_detection_available"] is face_detection_available()
        assert client.cookie is None  # looking starts no session: the first upload does
        status, head, data = client.request("POST", "/api/photos", body=png_bytes(),
                                            query={"name": "first scan.png"})
        photo = json.loads(data)
        assert client.cookie and "httponly" in head["set-cookie"].lower() and "samesite=strict" in head[
            "set-cookie"].lower()
        assert status == 202 and photo["status"] in ("queued", "running", "done")
        done = client.wait(photo["id"])
        assert done["status"] == "done" and done["output"] == "first scan.png"
        status, head, data = client.request("GET", f"/api/photos/{photo['id']}/download")
        assert status == 200 and data[:8] == b"\x89PNG\r\n\x1a\n"
        # saved beside the original (a Downloads folder), it neither replaces it nor passes for it
        assert head["content-disposition"] == "attachment; filename*=utf-8''first%20scan_restored.png"
        assert data == (tmp_path / "root").joinpath(*_output_parts(tmp_path, "first scan.png")).read_bytes()
        for kind in ("before.jpg", "after.jpg", "overlay.png"):
            status, _, _ = client.request("GET", f"/api/photos/{photo['id']}/preview/{kind}")
            assert status == 200
        status, _, mask = client.request("GET", f"/api/photos/{photo['id']}/mask")
        assert status == 200 and mask[:4] == b"\x89PNG"
        _, second = client.upload("first scan.png", png_bytes(value=(10, 200, 30)))  # same name again
        client.wait(second["id"])
        status, head, data = client.request("GET", "/api/download.zip")
        assert status == 200 and head["content-type"] == "application/zip"
        names = sorted(zipfile.ZipFile(io.BytesIO(data)).namelist())
        assert names == ["first scan_2_restored.png", "first scan_restored.png"]
        status, listing = client.json("GET", "/api/photos")
        assert [p["id"] for p in listing["photos"]] == [photo["id"], second["id"]]
        status, _, _ = client.request("DELETE", f"/api/photos/{second['id']}")
        assert status == 204 and client.json("GET", f"/api/photos/{second['id']}")[0] == 404


def test_marks_and_options_send_a_restored_photo_back(tmp_path):
    """POST /api/photos/ID/marks: the defects marked on the page (a gray PNG) restore the photo again;
    POST /api/photos/ID/again?OPTIONS: so do other options."""
    with served(_engine(tmp_path)) as url:
        client = Client(url)
        _, photo = client.upload("scan.png", png_bytes())  # 40x30, the fake's 'defects': row 15
        client.wait(photo["id"])
        marks = np.full((30, 40), 128, np.uint8)
        marks[2, :] = 255
        marks[15, :] = 0
        buf = io.BytesIO()
        Image.fromarray(marks, "L").save(buf, format="PNG")
        status, queued = client.json("POST", f"/api/photos/{photo['id']}/marks", body=buf.getvalue())
        assert status == 202 and queued["revision"] == 1 and queued["marked"], queued
        done = client.wait(photo["id"])
        assert done["status"] == "done"
        assert done["restoration"]["repaired_fraction"] == 0.033333  # row 2 alone: 1/30 of the photo
        assert done["restoration"]["mask"] == "user"
        _, _, mask = client.request("GET", f"/api/photos/{photo['id']}/mask")
        rows = np.asarray(Image.open(io.BytesIO(mask))).max(axis=1)
        assert rows[2] == 255 and rows[15] == 0 and rows.sum() == 255
        status, body = client.json("POST", f"/api/photos/{photo['id']}/marks", body=b"scribble")
        assert status == 422 and body["photo"]["status"] == "done"
        assert body["error"] == "the marks are not an image (a PNG was expected)"
        status, body = client.json("POST", f"/api/photos/{photo['id']}/marks", body=buf.getvalue()[:-30])
        assert status == 422 and body["error"].startswith("the marks image cannot be read (")
        assert "BytesIO" not in body["error"] and body["error"].endswith("a whole PNG was expected")
        assert client.json("POST", "/api/photos/0123456789abcdef/marks", body=buf.getvalue())[0] == 404
        assert Client(url).json("POST", f"/api/photos/{photo['id']}/marks", body=buf.getvalue())[0] == 404
        # again, with other options: the defects found afresh
        status, body = client.json("POST", f"/api/photos/{photo['id']}/again", query={"fidelity": "lots"})
        assert status == 400 and "fidelity" in body["error"]
        status, queued = client.json("POST", f"/api/photos/{photo['id']}/again", query={"fidelity": "0.7"})
        assert status == 202 and queued["revision"] == 2 and not queued["marked"]
        done = client.wait(photo["id"])
        assert done["status"] == "done" and done["restoration"]["mask"] == "detected"


def _output_parts(tmp_path, name):
    found = [p for p in (tmp_path / "root").rglob(name) if p.parent.name == "out"]
    assert len(found) == 1
    return found[0].relative_to(tmp_path / "root").parts


def _png_header(width: int, height: int) -> bytes:
    """A PNG that says it is ``width``×``height`` (and holds one row): what an upload's check reads."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    row = zlib.compress(bytes(1 + 3 * width))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


def test_bad_uploads_get_clear_messages_and_the_server_goes_on(tmp_path):
    with served(_engine(tmp_path, max_pixels=100 * 100), max_upload=20_000) as url:
        client = Client(url)
        status, body = client.upload("letter.jpg", b"Dear Sir, this is not a photo")
        assert status == 422 and "not an image" in body["error"] and body["photo"]["status"] == "failed"
        form = (b"--b\r\nContent-Disposition: form-data; name=file; filename=x.png\r\n\r\n" + png_bytes()
                + b"\r\n--b--\r\n")  # curl -F: a form around the photo, said so (not "not an image")
        status, body = client.json("POST", "/api/photos", body=form, query={"name": "x.png"},
                                   headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert status == 415 and "--data-binary" in body["error"], body
        status, body = client.upload("huge.png", png_bytes((120, 120)))
        # in plain words (the page's user has never heard of decompression bombs), saying who can help
        assert status == 422 and "decompression" not in body["error"], body
        assert body["error"] == ("huge.png: too large to restore here: 120×120 pixels (0.014 megapixels); "
                                 "this server restores photos of up to 0.01 megapixels (whoever started it "
                                 "can allow more with --max-pixels)")
        # also beyond Pillow's own guard (twice its 89 million pixels), which refused before ours spoke
        status, body = client.upload("scan.png", _png_header(30_000, 30_000))
        assert status == 422 and body["error"].startswith("scan.png: too large to restore here: "
                                                          "30000×30000 pixels (900 megapixels)"), body
        status, body = client.upload("big.bin", b"\0" * 30_000)
        assert status == 413 and "larger than this server accepts (20 kB per photo" in body["error"]
        # no Content-Length (chunked): the limit is counted while the bytes arrive
        status, _, data = client.request("POST", "/api/photos?name=chunked.png",
                                         body=iter([b"\0" * 10_000] * 3))
        assert status == 413, data
        status, body = client.upload("cut.png", png_bytes()[:-40])
        assert status == 202
        failed = client.wait(body["id"])
        assert failed["status"] == "failed" and "truncated" in failed["reason"]
        status, body = client.upload("x.png", png_bytes(), fidelity="7")
        assert status == 400 and "fidelity" in body["error"]
        status, body = client.upload("fine.png", png_bytes())
        assert status == 202 and client.wait(body["id"])["status"] == "done"
        root = tmp_path / "root"
        assert not list(root.rglob("big.bin")) and not list(root.rglob("chunked.png"))


def test_an_upload_beyond_the_servers_storage_is_refused_and_not_sent_again(tmp_path):
    with served(_engine(tmp_path, max_storage=1_000_000)) as url:
        client = Client(url)
        status, body = client.upload("fine.png", png_bytes())
        assert status == 202 and client.wait(body["id"])["status"] == "done"
        # 507, not the 503 after which the page waits and sends the photo again
        status, body = client.upload("scan.png", b"\0" * 600_000)
        assert status == 507, body
        assert body["error"].startswith("scan.png was not kept: the server holds as many photos as it may "
                                        "keep (")
        assert not list((tmp_path / "root").rglob("scan.png"))
    from oldphoto.web import cli

    assert cli._max_storage(0) is None and cli._max_storage(2.5) == 2_500_000_000
    assert 0 < cli._max_storage(None) <= shutil.disk_usage(tempfile.gettempdir()).free


def test_a_format_oldphoto_does_not_read_is_refused_at_upload(tmp_path):
    """Pillow opens formats that oldphoto does not restore (ICO, TGA, PPM, AVIF): such an upload was
    queued (202) and failed only when its turn came ('unsupported image format ICO'), unlike every other
    file that is not a photo; found uploading an .ico and an .avif to `oldphoto serve`."""
    with served(_engine(tmp_path)) as url:
        client = Client(url)
        for name, fmt in (("icon.ico", "ICO"), ("scan.tga", "TGA"), ("scan.ppm", "PPM")):
            data = io.BytesIO()
            Image.new("RGB", (32, 32), (200, 120, 40)).save(data, fmt)
            status, body = client.upload(name, data.getvalue())
            assert status == 422 and body["photo"]["status"] == "failed", (name, body)
            assert body["error"] == f"{name}: unsupported image format {fmt}"
        status, body = client.upload("fine.png", png_bytes())
        assert status == 202 and client.wait(body["id"])["status"] == "done"
        assert not [p for p in (tmp_path / "root").rglob("*") if p.suffix in (".ico", ".tga", ".ppm")]


def test_a_photo_too_small_to_restore_is_refused_at_upload(tmp_path):
    with served(_engine(tmp_path)) as url:
        client = Client(url)
        status, body = client.upload("dot.png", png_bytes((1, 1), dark_line=False))
        assert status == 422 and body["photo"]["status"] == "failed"
        assert body["error"] == "dot.png: too small to restore: 1×1 pixels (at least 8×8 are needed)"
        status, body = client.upload("small.png", png_bytes((8, 8)))
        assert status == 202 and client.wait(body["id"])["status"] == "done"


def test_long_names_and_failed_writes_keep_the_queue_going(tmp_path):
    """A long name in a script of several bytes a letter is stored (a file system counts bytes, not
    letters); a file the server cannot write (a full disk) is refused with a reason, and its place in
    the queue is given back (a queue of one would otherwise be busy for ever)."""
    engine = _engine(tmp_path, max_queue=1, max_per_session=1)
    reserve = engine.reserve

    def unwritable(session, name, size=0):
        job = reserve(session, name, size)
        if name.startswith("unwritable"):
            job.input.parent.rmdir()
            job.input.parent.write_bytes(b"")  # a file where the folder should be: open() fails
        return job

    engine.reserve = unwritable
    with served(engine) as url:
        client = Client(url)
        status, body = client.upload("写" * 200 + ".png", png_bytes())
        assert status == 202, body
        assert client.wait(body["id"])["status"] == "done"
        status, body = client.upload("unwritable.png", png_bytes())
        assert status == 507 and "could not store the file" in body["error"], body
        assert "Traceback" not in body["error"]
        status, body = client.upload("next.png", png_bytes())
        assert status == 202, body
        assert client.wait(body["id"])["status"] == "done"


def test_sessions_are_separate_and_end_with_their_files(tmp_path):
    with served(_engine(tmp_path)) as url:
        alice, bob = Client(url), Client(url)
        _, photo = alice.upload("alice.png", png_bytes())
        alice.wait(photo["id"])
        bob.json("GET", "/api/config")
        assert bob.cookie is None and alice.cookie
        for path in ("", "/download", "/mask", "/preview/after.jpg"):
            status, _, _ = bob.request("GET", f"/api/photos/{photo['id']}{path}")
            assert status == 404
        assert bob.json("GET", "/api/photos")[1]["photos"] == []
        assert bob.request("DELETE", f"/api/photos/{photo['id']}")[0] == 404
        assert bob.request("GET", "/api/download.zip")[0] == 404
        assert bob.request("DELETE", "/api/session")[0] == 204
        assert len(list((tmp_path / "root").iterdir())) == 1  # alice's only: bob has only looked
        _, bobs = bob.upload("bob.png", png_bytes())
        assert bob.cookie != alice.cookie and len(list((tmp_path / "root").iterdir())) == 2
        assert bob.json("GET", f"/api/photos/{bobs['id']}")[0] == 200
        assert alice.request("DELETE", "/api/session")[0] == 204
        assert len(list((tmp_path / "root").iterdir())) == 1
        assert alice.request("GET", f"/api/photos/{photo['id']}")[0] == 404


def test_requests_without_a_session_leave_nothing_behind(tmp_path):
    """A client that keeps no cookie (a script, a crawler) polling the API makes no sessions or folders."""
    engine = _engine(tmp_path)
    with served(engine) as url:
        for path in ("/api/config", "/api/photos", "/api/photos/0123456789abcdef", "/api/download.zip",
                     "/api/photos/0123456789abcdef/preview/after.jpg"):
            for _ in range(3):
                Client(url).request("GET", path)
        Client(url).request("DELETE", "/api/session")
        assert engine.sessions == {} and list((tmp_path / "root").iterdir()) == []


def test_an_upload_that_stops_sending_gives_its_queue_place_back(tmp_path):
    engine = _engine(tmp_path, max_queue=1)
    with served(engine, upload_idle=0.5) as url:
        client = Client(url)
        host = client.host or ""
        with socket.create_connection((host, client.port)) as conn:
            conn.sendall(b"POST /api/photos?name=slow.png HTTP/1.1\r\nHost: " + host.encode() +
                         b"\r\nContent-Length: 100000\r\n\r\n" + png_bytes()[:50])
            conn.settimeout(30)
            answer = http.client.HTTPResponse(conn)  # (headers and body may come in separate packets)
            answer.begin()
            body = answer.read().decode()
        assert answer.status == 408 and "nothing was received for 0.5 s" in body
        status, photo = client.upload("next.png", png_bytes())  # the queue's one place is free again
        assert status == 202 and client.wait(photo["id"])["status"] == "done"


def test_auth_host_and_cross_site_guards(tmp_path):
    with served(_engine(tmp_path), credentials=("ann", "s3cret:x")) as url:
        client = Client(url)
        status, head, _ = client.request("GET", "/")
        assert status == 401 and head["www-authenticate"].startswith("Basic")
        wrong = "Basic " + base64.b64encode(b"ann:guess").decode()
        assert client.request("GET", "/", headers={"Authorization": wrong})[0] == 401
        right = "Basic " + base64.b64encode(b"ann:s3cret:x").decode()
        client.headers["Authorization"] = right
        assert client.request("GET", "/")[0] == 200
        # a page of another site (or a rebound DNS name) cannot use the server
        assert client.request("GET", "/", headers={"Host": "evil.example:80"})[0] == 421
        status, head, data = client.request("POST", "/api/photos?name=a.png", body=png_bytes(),
                                            headers={"Origin": "http://evil.example"})
        # the API's refusals are JSON, as its other errors, so that the page shows why (not 'error 403')
        assert status == 403 and json.loads(data) == {"error": "requests from other web sites are refused"}
        assert head["x-content-type-options"] == "nosniff"
        status, head, data = client.request("GET", "/api/config", headers={"Host": "evil.example"})
        assert status == 421 and "--allow-host" in json.loads(data)["error"]
        status, _, _ = client.request("POST", "/api/photos?name=a.png", body=png_bytes(),
                                      headers={"Origin": url.rstrip("/")})
        assert status == 202


def test_behind_a_reverse_proxy_with_allow_host(tmp_path, monkeypatch):
    """A reverse proxy on the same machine (HTTPS for a family's or an archive's page) either passes the
    public Host on (Caddy, nginx with `proxy_set_header Host $host`): 421 for every request; or sends its
    own, 127.0.0.1:PORT (nginx's default) with the browser's Origin: the page loaded but every upload was
    refused as another site's (403).  `--allow-host NAME` names the page's public address."""
    public = "https://photos.example.org"
    with served(_engine(tmp_path), proxied=["Photos.Example.org"]) as url:
        client = Client(url)
        passed = {"Host": "photos.example.org", "Origin": public}
        assert client.request("GET", "/", headers={"Host": "photos.example.org"})[0] == 200

        def upload(headers):
            return client.request("POST", "/api/photos?name=a.png", body=png_bytes(), headers=headers)[0]

        assert upload(passed) == 202
        assert upload({"Origin": public}) == 202  # Host: 127.0.0.1:PORT
        assert client.request("GET", "/", headers={"Host": "evil.example"})[0] == 421
        for origin in ("https://evil.example", "https://photos.example.org.evil.example", "null"):
            assert upload({"Origin": origin}) == 403, origin
    from oldphoto.web import cli, server

    seen = {}
    monkeypatch.setattr(server, "serve", lambda app, sock: seen.update(app=app))
    argv = ["--port", "0", "--device", "cpu", "--allow-host", "photos.example.org", "--allow-host", "pics"]
    assert cli.main(_parse(argv), stream=io.StringIO()) == 0
    assert seen["app"].proxied == {"photos.example.org", "pics"}
    assert {"photos.example.org", "pics"} <= seen["app"].hosts


def test_serve_without_the_web_extra_says_how_to_get_it(monkeypatch):
    from oldphoto.web import cli

    monkeypatch.setitem(sys.modules, "starlette", None)
    out = io.StringIO()
    assert cli.main(argparse.Namespace(), stream=out) == 2
    assert "pip install 'oldphoto[web]'" in out.getvalue()


def _parse(argv):
    from oldphoto.cli import build_parser

    return build_parser().parse_args(["serve", *argv])


def test_other_addresses_are_opt_in_with_a_warning(monkeypatch):
    from oldphoto.web import cli, server

    seen = {}
    monkeypatch.setattr(server, "serve", lambda app, sock: seen.update(app=app, sock=sock))
    out = io.StringIO()
    assert cli.main(_parse(["--host", "0.0.0.0", "--port", "0", "--device", "cpu"]), stream=out) == 0
    assert "warning: listening on 0.0.0.0" in out.getvalue() and "no --auth" in out.getvalue()
    assert seen["app"].hosts is None and seen["sock"].fileno() == -1  # closed after serving
    out = io.StringIO()
    assert cli.main(_parse(["--port", "0", "--device", "cpu"]), stream=out) == 0
    assert "warning" not in out.getvalue() and "open http://127.0.0.1:" in out.getvalue()
    assert seen["app"].hosts is not None
    # bad options are refused before anything is loaded or bound (exit 2, as `oldphoto restore`)
    for argv, said in ((["--fidelity", "2"], "--fidelity must be in [0, 1]"),
                       (["--port", "99999"], "--port must be between 0"),
                       (["--port", "-1"], "--port must be between 0"),
                       (["--max-pixels", "-1"], "--max-pixels must be"),
                       (["--max-storage-gb", "-1"], "--max-storage-gb must be 0"),
                       (["--device", "gpu"], "--device must be"),
                       (["--weights", "no/such/folder"], "is not a folder")):
        out = io.StringIO()
        assert cli.main(_parse([*argv] if "--port" in argv else ["--port", "0", *argv]), stream=out) == 2
        assert said in out.getvalue() and "Traceback" not in out.getvalue()


def test_a_loopback_address_of_its_own_is_answered(monkeypatch):
    """`--host 127.0.0.2` (or Debian's 127.0.1.1) is loopback, so the DNS-rebinding guard is on; it
    refused every request addressed to the very URL the command printed (421), as the guard knew only
    127.0.0.1, localhost and [::1]."""
    from oldphoto.web import cli, server
    from oldphoto.web.server import BackgroundServer

    seen = {}
    real_bind = server.bind
    # (macOS has 127.0.0.1 only: the socket is bound there, the Host header says 127.0.0.2)
    monkeypatch.setattr(server, "bind", lambda host, port: real_bind("127.0.0.1", 0))
    monkeypatch.setattr(server, "serve", lambda app, sock: seen.update(app=app))
    argv = ["--host", "127.0.0.2", "--port", "0", "--device", "cpu"]
    assert cli.main(_parse(argv), stream=io.StringIO()) == 0
    running = BackgroundServer(seen["app"])
    try:
        client = Client(running.url)
        assert client.request("GET", "/", headers={"Host": f"127.0.0.2:{client.port}"})[0] == 200
        assert client.request("GET", "/", headers={"Host": f"LOCALHOST:{client.port}"})[0] == 200
        assert client.request("GET", "/", headers={"Host": f"127.0.0.3:{client.port}"})[0] == 421
        assert client.request("GET", "/", headers={"Host": "evil.example"})[0] == 421
    finally:
        running.stop()


def test_the_password_can_come_from_the_environment(monkeypatch):
    """On a shared machine `--auth ann:s3cret` is in the command line, which every user of the machine
    reads (`ps`); OLDPHOTO_AUTH says the same out of sight."""
    from oldphoto.web import cli, server

    seen = {}
    monkeypatch.setattr(server, "serve", lambda app, sock: seen.update(app=app))
    monkeypatch.setenv("OLDPHOTO_AUTH", "ann:s3cret:x")
    assert cli.main(_parse(["--port", "0", "--device", "cpu"]), stream=io.StringIO()) == 0
    assert seen["app"].credentials == ("ann", "s3cret:x")
    assert cli.main(_parse(["--port", "0", "--device", "cpu", "--auth", "bo:b"]), stream=io.StringIO()) == 0
    assert seen["app"].credentials == ("bo", "b")  # the command line, where given, says it
    monkeypatch.setenv("OLDPHOTO_AUTH", "no-password")
    out = io.StringIO()
    assert cli.main(_parse(["--port", "0", "--device", "cpu"]), stream=out) == 2
    assert "OLDPHOTO_AUTH must be USER:PASSWORD" in out.getvalue()


def test_a_terminal_gone_does_not_fail_the_stop(monkeypatch):
    """After SIGHUP (the terminal window closed) writing to the terminal fails (EIO): the last line,
    'stopped', must not turn a clean stop into an error, or skip the exit that a photo still being
    restored needs."""
    from oldphoto.web import cli, server

    class Gone(io.StringIO):
        def write(self, text):
            if "stopped" in text:
                raise OSError(5, "Input/output error")
            return super().write(text)

    monkeypatch.setattr(server, "serve", lambda app, sock: None)
    out = Gone()
    assert cli.main(_parse(["--port", "0", "--device", "cpu"]), stream=out) == 0
    assert "open http://" in out.getvalue()


def _start_serve(tmp_path):
    """`oldphoto serve --port 0` in its own process, its temporary folder under ``tmp_path``."""
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT / "src"))
    return subprocess.Popen([sys.executable, "-m", "oldphoto.cli", "serve", "--port", "0", "--device", "cpu"],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


def _served_address(proc) -> str:
    """The address the command prints once it serves."""
    end = time.monotonic() + 120
    while time.monotonic() < end:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "the server exited early"
        match = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
        if match:
            return match.group(1)
    raise AssertionError("no address printed")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)],
                         ids=["ctrl-c", "sigterm", "sighup"])
def test_the_real_command_serves_and_cleans_up_when_stopped(tmp_path, stop):
    """`oldphoto serve --port 0` as a user starts it: prints the address, serves, and on Ctrl-C (or the
    SIGTERM of kill and service managers, or the SIGHUP of its terminal window closed, which ended it at
    once, its photos left in the temporary folder) stops and deletes its temporary folder."""
    if stop is None:
        pytest.skip("no SIGHUP here")
    proc = _start_serve(tmp_path)
    try:
        url = _served_address(proc)
        client = Client(url)
        status, _, page = client.request("GET", "/")
        assert status == 200 and b"oldphoto" in page
        status, config = client.json("GET", "/api/config")
        assert status == 200 and config["defaults"]["scratches"] == "auto"
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("oldphoto-serve-")]
    finally:
        proc.send_signal(stop)
        code = proc.wait(timeout=60)
    assert code == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("oldphoto-serve-")]


def test_a_killed_servers_files_are_deleted_when_the_next_one_starts(tmp_path):
    """A server killed (kill -9, the out-of-memory killer, a crash, the power) cannot delete its temporary
    folder: the photos uploaded to it stayed in the system's temporary folder, and a restart left them
    there.  The next `oldphoto serve` deletes them; the folder of a server still running is kept."""
    def roots():
        return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("oldphoto-serve-"))

    first = _start_serve(tmp_path)
    servers = [first]
    try:
        client = Client(_served_address(first))
        status, photo = client.upload("family.png", png_bytes())
        assert status == 202 and client.wait(photo["id"])["status"] == "done"
        [killed] = roots()
        first.kill()
        first.wait(timeout=30)
        assert roots() == [killed] and list((tmp_path / killed).rglob("family.png"))
        second = _start_serve(tmp_path)
        servers.append(second)
        _served_address(second)
        [running] = roots()
        assert running != killed
        third = _start_serve(tmp_path)  # starts while the second runs: its files are not touched
        servers.append(third)
        _served_address(third)
        assert running in roots() and len(roots()) == 2
    finally:
        for proc in servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=60)
    assert roots() == []


def test_stopping_the_real_command_while_an_upload_is_under_way(tmp_path):
    """Ctrl-C while a photo is being uploaded (slowly, or stalled): uvicorn waited for the request without
    limit, so the command did not stop, silently, until the upload ended or its 60 s of silence ran out
    (a second Ctrl-C then printed a CancelledError traceback).  It now stops within a few seconds, the
    uploading client told so, and deletes its files."""
    proc = _start_serve(tmp_path)
    try:
        client = Client(_served_address(proc))
        with socket.create_connection((client.host, client.port)) as conn:
            conn.sendall(b"POST /api/photos?name=slow.png HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Length: 100000\r\n\r\n" + png_bytes()[:50])
            time.sleep(0.5)
            start = time.monotonic()
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=30)
            assert time.monotonic() - start < 15
            conn.settimeout(10)
            answer = http.client.HTTPResponse(conn)
            answer.begin()
            # (the page shows it as a busy server's reason: "… Trying again in 10 s.")
            assert answer.status == 503 and json.loads(answer.read()) == {"error": "The server is stopping."}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    errors = proc.stderr.read()
    assert code == 0 and "Traceback" not in errors and "temporary files deleted" in errors, errors
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("oldphoto-serve-")]


def test_stopping_the_real_command_while_a_photo_is_restored(tmp_path):
    """Ctrl-C while a large photo is being restored: the photo is abandoned after a few seconds, the
    files are deleted, and the command ends with 0, not with an abort from PyTorch's threads
    ('terminate called without an active exception', 134) as the interpreter shuts down around them."""
    import cv2

    proc = _start_serve(tmp_path)
    try:
        url = _served_address(proc)
        # a smooth 12 Mpx photo (a small JPEG): tens of seconds of work on a CPU
        small = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
        ok, jpeg = cv2.imencode(".jpg", cv2.resize(small, (4000, 3000), interpolation=cv2.INTER_CUBIC))
        client = Client(url)
        status, photo = client.upload("large.jpg", jpeg.tobytes(), fidelity="0.5")
        assert status == 202, photo
        while client.json("GET", f"/api/photos/{photo['id']}")[1]["status"] == "queued":
            time.sleep(0.1)
        time.sleep(1.0)
        assert client.json("GET", f"/api/photos/{photo['id']}")[1]["status"] == "running"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    errors = proc.stderr.read()
    assert code == 0, errors
    assert "terminate called" not in errors and "stopped; temporary files deleted" in errors
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("oldphoto-serve-")]


def test_sixteen_bit_and_cmyk_photos_come_back_as_they_went(tmp_path):
    """The page shows 8-bit previews, but the downloads keep the original's depth and colour model."""
    import cv2
    import numpy as np
    from PIL import Image

    deep = np.zeros((24, 32, 3), np.uint16) + np.array([40000, 20000, 1000], np.uint16)
    ok, png16 = cv2.imencode(".png", deep)
    cmyk = io.BytesIO()
    Image.new("CMYK", (32, 24), (10, 80, 160, 20)).save(cmyk, format="JPEG", quality=95)
    with served(_engine(tmp_path)) as url:
        client = Client(url)
        for name, data, check in [
            ("deep.png", png16.tobytes(), lambda im: cv2.imdecode(np.frombuffer(im, np.uint8),
                                                                  cv2.IMREAD_UNCHANGED).dtype == np.uint16),
            ("print.jpg", cmyk.getvalue(), lambda im: Image.open(io.BytesIO(im)).mode == "CMYK"),
        ]:
            status, photo = client.upload(name, data)
            assert status == 202, photo
            assert client.wait(photo["id"])["status"] == "done"
            status, _, out = client.request("GET", f"/api/photos/{photo['id']}/download")
            assert status == 200 and check(out), name
            _, _, preview = client.request("GET", f"/api/photos/{photo['id']}/preview/after.jpg")
            assert Image.open(io.BytesIO(preview)).mode == "RGB"


def _decoded(data: bytes) -> np.ndarray:
    import cv2

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def test_full_size_pictures_for_the_100_percent_view(tmp_path):
    """The 100 % view's pictures: the photo's size (previews of 16 px here, so they are not), lossless
    8-bit, the download's pixels (a 16-bit download as 8-bit); made on first request, then kept; never
    for another session; deleted with the photo; refused above the limit, with the reason."""
    import cv2

    from oldphoto.web.previews import OVERLAY_RGBA

    rng = np.random.default_rng(1)
    noise = rng.integers(0, 65536, (30, 40, 3), dtype=np.uint16)
    noise[15, :] = 0  # the fake's 'defects': a dark line
    ok, png16 = cv2.imencode(".png", noise)
    engine = _engine(tmp_path, preview_side=16, full_view_pixels=40 * 30)
    with served(engine) as url:
        alice, bob = Client(url), Client(url)
        status, config = alice.json("GET", "/api/config")
        assert config["full_view_pixels"] == 40 * 30
        _, photo = alice.upload("deep.png", png16.tobytes())
        assert alice.wait(photo["id"])["status"] == "done"
        base = f"/api/photos/{photo['id']}"
        _, _, preview = alice.request("GET", f"{base}/preview/after.jpg")
        assert Image.open(io.BytesIO(preview)).size == (16, 12)
        _, _, download = alice.request("GET", f"{base}/download")
        restored = _decoded(download)
        assert restored.dtype == np.uint16

        status, head, data = alice.request("GET", f"{base}/preview/after_full.png")
        assert status == 200 and head["content-type"] == "image/png"
        after = Image.open(io.BytesIO(data))
        assert after.size == (40, 30) and after.mode == "RGB"
        want = np.rint(restored[..., ::-1] / 257.0).astype(np.uint8)  # (OpenCV reads BGR)
        assert np.array_equal(np.asarray(after), want)
        status, _, data = alice.request("GET", f"{base}/preview/before_full.png")
        before = np.asarray(Image.open(io.BytesIO(data)))
        assert status == 200 and np.array_equal(before, np.rint(noise[..., ::-1] / 257.0).astype(np.uint8))
        status, _, data = alice.request("GET", f"{base}/preview/overlay_full.png")
        overlay = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
        _, _, mask = alice.request("GET", f"{base}/mask")
        marked = _decoded(mask) > 0
        assert status == 200 and overlay.shape == (30, 40, 4) and marked.any() and not marked.all()
        assert np.array_equal(overlay[..., 3] > 0, marked) and tuple(overlay[marked][0]) == OVERLAY_RGBA

        # made once: the second request gets the same file (an atomic rewrite would be a new inode)
        made = [p for p in (tmp_path / "root").rglob("*_full.png")]
        assert sorted(p.name for p in made) == ["after_full.png", "before_full.png", "overlay_full.png"]
        stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in made}
        assert alice.request("GET", f"{base}/preview/after_full.png")[0] == 200
        assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in made} == stamps

        for path in ("after_full.png", "before_full.png", "overlay_full.png"):
            assert bob.request("GET", f"{base}/preview/{path}")[0] == 404
        assert alice.request("GET", f"{base}/preview/sideways_full.png")[0] == 404
        assert alice.request("GET", f"{base}/preview/after_half.png")[0] == 404

        assert alice.request("DELETE", base)[0] == 204
        assert not any(p.exists() for p in made)
        assert alice.request("GET", f"{base}/preview/after_full.png")[0] == 404

        _, large = alice.upload("large.png", png_bytes((41, 30)))  # one column above the limit
        assert alice.wait(large["id"])["status"] == "done"
        status, body = alice.json("GET", f"/api/photos/{large['id']}/preview/after_full.png")
        assert status == 422 and "too many to show at 100 %" in body["error"], body
        assert not list((tmp_path / "root").rglob("*_full.png"))


def test_a_small_photo_full_size_overlay_is_its_preview(tmp_path):
    """A photo no longer than the previews: its overlay preview is already full size and lossless, and
    is what the 100 % view gets; before and after still come as PNGs (the previews are JPEGs)."""
    with served(_engine(tmp_path)) as url:
        client = Client(url)
        _, photo = client.upload("small.png", png_bytes())
        client.wait(photo["id"])
        base = f"/api/photos/{photo['id']}/preview"
        _, _, preview = client.request("GET", f"{base}/overlay.png")
        assert client.request("GET", f"{base}/overlay_full.png")[2] == preview
        _, _, download = client.request("GET", f"/api/photos/{photo['id']}/download")
        status, _, after = client.request("GET", f"{base}/after_full.png")
        assert status == 200 and np.array_equal(np.asarray(Image.open(io.BytesIO(after))),
                                                np.asarray(Image.open(io.BytesIO(download)).convert("RGB")))

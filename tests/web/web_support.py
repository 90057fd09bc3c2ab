"""Helpers of the `oldphoto serve` tests: a fake restorer (colour inversion; dark pixels are 'defects'),
an HTTP client with its own cookie (one browser session each), the app served on a free loopback port,
and where Debian's Chromium is (scripts/fetch-chromium.sh puts it there)."""

from __future__ import annotations

import dataclasses
import http.client
import io
import json
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import numpy as np
import pytest
from PIL import Image

from oldphoto.pipeline import RestoreOptions
from oldphoto.stages.defects import Defects
from oldphoto.stages.faces import FaceInfo

CHROMIUM_HINT = ("Debian's Chromium is not here: run scripts/fetch-chromium.sh (apt-get download + dpkg -x "
                 "into ~/.cache/oldphoto/chromium, no root needed once apt knows the package), or set "
                 "OLDPHOTO_CHROMIUM_DIR to where it put it")


@dataclass
class FakeResult:
    image: np.ndarray
    mask: np.ndarray | None
    faces: list
    models: dict = field(default_factory=lambda: {"fake": "invert"})
    path: str = "quality"
    defects: Defects | None = None
    fidelity: float | None = 0.5


class FakeRestorer:
    """Restorer-shaped: inverts colours; pixels darker than 0.1 are the 'defects' (a user mask, when
    given, replaces them, as in the Restorer); one 'face' box;
    ``--upscale k`` repeats each pixel k×k times (when ``shared["upscaler"]`` says it is installed).
    ``gate`` (an Event), when given, holds every restore until it is set (to fill the queue)."""

    def __init__(self, options: RestoreOptions | None = None, gate: threading.Event | None = None,
                 shared: dict | None = None):
        self.options = options or RestoreOptions(faces=False)
        self.options.validate()
        self.gate = gate
        self.shared = shared if shared is not None else {"calls": [], "restorers": 1}
        self.faces_enabled = False
        self.notices = ["face enhancement is off: fake"]

    def with_options(self, **overrides: Any) -> FakeRestorer:
        if overrides.get("faces"):
            raise RuntimeError("--faces needs dlib (fake)")
        self.shared["restorers"] += 1
        return type(self)(dataclasses.replace(self.options, **overrides), self.gate, self.shared)

    @property
    def hr_above(self) -> float | None:
        return self.options.hr_above

    def model_info(self) -> dict[str, str]:
        return {"fake": "invert"}

    def has_models(self, *roles: str) -> bool:
        return all(r == "upscale_x4" and self.shared.get("upscaler", False) for r in roles)

    def restore(self, pixels: np.ndarray, mask: np.ndarray | None = None) -> FakeResult:
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the gate"
        self.shared["calls"].append((pixels.shape, self.options))
        defects = pixels.mean(axis=-1) < 0.1 if mask is None else mask
        h, w = pixels.shape[:2]
        face = FaceInfo(box=(w // 4, h // 4, w // 2, h // 2), landmarks=np.zeros((5, 2)), score=1.0)
        k = self.options.upscale
        assert k == 1 or self.has_models("upscale_x4"), "the engine let --upscale through without its weights"
        image = (1.0 - pixels).repeat(k, axis=0).repeat(k, axis=1)
        return FakeResult(image, defects if defects.any() else None, [face],
                          path="scratch" if defects.any() else "quality", defects=Defects(defects, strokes=1),
                          fidelity=self.options.fidelity)


def png_bytes(size=(40, 30), value=(200, 150, 100), dark_line: bool = True) -> bytes:
    array = np.zeros((size[1], size[0], 3), np.uint8) + np.array(value, np.uint8)
    if dark_line:
        array[size[1] // 2, :] = 0
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


class Client:
    """One browser session: keeps the session cookie it is given."""

    def __init__(self, url: str, headers: dict[str, str] | None = None):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.cookie: str | None = None
        self.headers = dict(headers or {})

    def request(self, method: str, path: str, body: bytes | None = None, query: dict | None = None,
                headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, dict, bytes]:
        if query:
            path += "?" + urlencode(query)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        all_headers = dict(self.headers)
        if self.cookie:
            all_headers["Cookie"] = self.cookie
        all_headers.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            data = response.read()
            head = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        if "set-cookie" in head:
            self.cookie = head["set-cookie"].split(";", 1)[0]
        return response.status, head, data

    def json(self, method: str, path: str, **kw) -> tuple[int, Any]:
        status, _, data = self.request(method, path, **kw)
        return status, json.loads(data) if data else None

    def upload(self, name: str, data: bytes, **options) -> tuple[int, Any]:
        return self.json("POST", "/api/photos", body=data, query={"name": name, **options})

    def wait(self, photo_id: str, timeout: float = 120.0) -> dict:
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            status, photo = self.json("GET", f"/api/photos/{photo_id}")
            assert status == 200, photo
            if photo["status"] in ("done", "failed"):
                return photo
            time.sleep(0.1)
        raise AssertionError(f"photo {photo_id} not finished after {timeout} s")


@contextmanager
def served(engine, **app_options):
    """``engine`` behind the app on a free loopback port; yields the URL; stops both afterwards."""
    pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'oldphoto[web]'")
    from oldphoto.web.app import create_app
    from oldphoto.web.server import BackgroundServer

    server = BackgroundServer(create_app(engine, **app_options))
    try:
        yield server.url
    finally:
        server.stop()
        engine.close()


def chromium() -> tuple[str, dict[str, str]] | None:
    """(executable, environment) of Debian's Chromium fetched by scripts/fetch-chromium.sh, else of an
    installed /usr/lib/chromium/chromium, else None."""
    folder = Path(os.environ.get("OLDPHOTO_CHROMIUM_DIR", Path.home() / ".cache" / "oldphoto" / "chromium"))
    fetched = folder / "root" / "usr" / "lib" / "chromium" / "chromium"
    if fetched.is_file() and (folder / "env").is_file():
        libraries = (folder / "env").read_text().strip()
        return str(fetched), dict(os.environ, LD_LIBRARY_PATH=libraries)
    installed = Path("/usr/lib/chromium/chromium")
    if installed.is_file():
        return str(installed), dict(os.environ)
    return None

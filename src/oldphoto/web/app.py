"""The HTTP side of ``oldphoto serve``: one plain HTML page and a small JSON API, on Starlette.

Every file the page uses is served from this package (no CDN, no web fonts, no analytics), and the
Content-Security-Policy header forbids the browser to load anything from elsewhere.  The API:

  GET    /api/config                    defaults and limits for the page
  POST   /api/photos?name=N&OPTIONS     the photo's bytes as the body -> 202 (queued), 4xx/503 {error}
  GET    /api/photos                    this session's photos
  GET    /api/photos/ID                 one photo's state: queued (ahead), running, done, failed (reason)
  GET    /api/photos/ID/preview/KIND    before.jpg | after.jpg | overlay.png (for looking only);
                                        before_full.png | after_full.png | overlay_full.png: full size
  GET    /api/photos/ID/download        the restored file, as `oldphoto restore` writes it
  GET    /api/photos/ID/mask            the repaired-areas mask, as `oldphoto restore --save-mask` writes it
  POST   /api/photos/ID/marks           defects marked by hand (a gray PNG, web.marks) as the body: restore
                                        the photo again with them -> 202 (queued), 4xx/503 {error}
  POST   /api/photos/ID/again?OPTIONS   restore the photo again with these options -> 202, 4xx/503 {error}
  DELETE /api/photos/ID                 forget a photo and delete its files
  GET    /api/download.zip              every restored file of the session
  DELETE /api/session                   end the session: delete all its files

A session is a cookie; a photo id of another session is answered 404 like any unknown id.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import importlib.resources
import json
import mimetypes
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from oldphoto import __version__
from oldphoto.io import DEFAULT_JPEG_QUALITY, PhotoError, _heif
from oldphoto.stages.faces import face_detection_available
from oldphoto.web.engine import (
    DONE,
    UPLOADING,
    Busy,
    Engine,
    NotRestored,
    OptionError,
    PhotoJob,
    Session,
    StorageFull,
    TooLargeToView,
    parse_choices,
)
from oldphoto.web.marks import MarksError

STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
STORED = {".jpg", ".jpeg", ".png", ".webp"}  # already compressed: zipped as they are
MAX_MARKS_BYTES = 20_000_000  # the page's marks: a gray PNG of its preview's size, mostly one level


def _static(name: str) -> bytes:
    return importlib.resources.files("oldphoto.web").joinpath("static", name).read_bytes()


class Guard:
    """ASGI middleware: DNS-rebinding guard (the Host must be a loopback name when the server listens
    on loopback only), HTTP Basic authentication (``--auth``), cross-site writes refused, and the
    security headers (CSP: nothing may be loaded from another origin).  ``proxied``: host names of the
    page's address through a reverse proxy (--allow-host): a request from a page there is no other site's,
    whatever Host the proxy sends."""

    def __init__(self, app: Any, *, credentials: tuple[str, str] | None, hosts: frozenset[str] | None,
                 proxied: frozenset[str] = frozenset()):
        self.app = app
        self.credentials = credentials
        self.hosts = hosts
        self.proxied = proxied

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.hosts is not None and _host_name(host).lower() not in self.hosts:
            await _refuse(scope, send, 421, "this server answers only requests addressed to the address "
                          "`oldphoto serve` printed (127.0.0.1 or localhost), or to a name given to "
                          "--allow-host")
            return
        if self.credentials is not None and not self._authorised(headers.get("authorization", "")):
            await _refuse(scope, send, 401, "this server needs a user name and password",
                         [("www-authenticate", 'Basic realm="oldphoto", charset="UTF-8"')])
            return
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD") and origin and not self._same_site(origin, host):
            await _refuse(scope, send, 403, "requests from other web sites are refused")
            return

        started = False

        async def send_secured(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["content-security-policy"] = CSP
                out["x-content-type-options"] = "nosniff"
                out["referrer-policy"] = "no-referrer"
                out["cross-origin-resource-policy"] = "same-origin"
                out.setdefault("cache-control", "no-store")
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_secured)
        except asyncio.CancelledError:
            # the server stops (Ctrl-C) and its grace time is over: a request still running (an upload
            # in progress, a download) ends with a word to its client, not with a traceback on the console
            if not started:
                await _refuse(scope, send, 503, "The server is stopping.")

    def _same_site(self, origin: str, host: str) -> bool:
        """Whether the page that sent a request with this Origin header is this server's own."""
        authority = origin.split("://", 1)[-1]
        return authority == host or _host_name(authority).lower() in self.proxied

    def _authorised(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or self.credentials is None:
            return False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        want_user, want_password = self.credentials
        # both compared, always, in constant time: no early exit that tells which one was wrong
        ok_user = hmac.compare_digest(user.encode(), want_user.encode())
        ok_password = hmac.compare_digest(password.encode(), want_password.encode())
        return ok_user and ok_password


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bracketed(host: str) -> str:
    """``host`` as a Host header names it (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


async def _refuse(scope, send, status: int, text: str, extra: Iterable[tuple[str, str]] = ()) -> None:
    """A request refused before the app: ``{"error": text}`` for the API (the page shows it, as the app's
    own errors), plain text for a browser's address bar."""
    if scope.get("path", "").startswith("/api/"):
        body, media = json.dumps({"error": text}).encode(), b"application/json"
    else:
        body, media = (text + "\n").encode(), b"text/plain; charset=utf-8"
    headers = [(b"content-type", media), (b"content-length", str(len(body)).encode()),
               (b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
               (b"cache-control", b"no-store")]
    headers += [(k.encode(), v.encode()) for k, v in extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TooLarge(Exception):
    pass


class Stalled(Exception):
    pass


async def _chunks(request: Request, idle: float):
    """The request body's chunks; ``Stalled`` when none comes for ``idle`` seconds."""
    stream = request.stream().__aiter__()
    while True:
        try:
            yield await asyncio.wait_for(stream.__anext__(), idle)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise Stalled from None


def create_app(engine: Engine, *, max_upload: int = 200_000_000, credentials: tuple[str, str] | None = None,
               loopback_only: bool = True, hosts: Iterable[str] = (), proxied: Iterable[str] = (),
               cookie: str = "oldphoto_session", upload_idle: float = 60.0) -> Guard:
    """The ASGI app over ``engine``.  ``max_upload``: bytes per photo; ``loopback_only``: answer only
    requests addressed to a loopback name (the default binding), or to one of ``hosts`` (the address it
    listens on, say 127.0.0.2); ``upload_idle``: seconds an upload may send nothing before it is dropped
    (it holds a place in the queue meanwhile); ``proxied``: host names the page is reached by through a
    reverse proxy (``--allow-host``), answered as the loopback names, and whose pages may upload."""

    def session_of(request: Request) -> Session | None:
        """The caller's live session, if any: only an upload starts one."""
        return engine.live_session(request.cookies.get(cookie))

    def reply(request: Request, session: Session | None, response: Response) -> Response:
        if session is not None and request.cookies.get(cookie) != session.id:
            response.set_cookie(cookie, session.id, httponly=True, samesite="strict")
        return response

    def error(request: Request, session: Session | None, status: int, message: str,
              photo: PhotoJob | None = None, headers: dict[str, str] | None = None) -> Response:
        body: dict[str, Any] = {"error": message}
        if photo is not None:
            body["photo"] = engine.describe(photo)
        return reply(request, session, JSONResponse(body, status_code=status, headers=headers))

    def found(request: Request, session: Session | None) -> PhotoJob | None:
        return None if session is None else engine.photo(session, request.path_params["photo"])

    async def index(request: Request) -> Response:
        return Response(_static("index.html"), media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found\n", status_code=404, media_type="text/plain")
        return Response(_static(name), media_type=STATIC[name], headers={"cache-control": "no-cache"})

    async def config(request: Request) -> Response:
        return JSONResponse({
            "version": __version__,
            "defaults": engine.defaults() | {"format": "same", "quality": DEFAULT_JPEG_QUALITY},
            "faces_available": await run_in_threadpool(engine.faces_possible),
            "upscale_available": await run_in_threadpool(engine.upscale_possible),
            "heic_available": _heif.register(),  # (pillow-heif installed)
            # dark dust leaves the faces dlib finds; without it the page says that moles can go too
            "face_detection_available": face_detection_available(),
            "notices": list(getattr(engine.base, "notices", [])),
            "max_upload": max_upload, "max_pixels": engine.max_pixels,
            "full_view_pixels": engine.full_view_pixels,
            # photos above this many megapixels take the high-resolution path unticked (None: only ticked)
            "hr_above": engine.base.hr_above,
            # a session's files go after this long without a request: the page keeps them while in use
            "session_seconds": engine.session_ttl,
        })

    async def list_photos(request: Request) -> Response:
        session = session_of(request)
        jobs = list(session.photos.values()) if session is not None else []
        photos = [engine.describe(job) for job in jobs if job.status != UPLOADING]
        # ("session": whether the caller still has one: a page whose photos all went learns why)
        return reply(request, session, JSONResponse({"photos": photos, "queue": engine.queue_length(),
                                                     "session": session is not None}))

    async def upload(request: Request) -> Response:
        session = session_of(request)
        name = request.query_params.get("name") or "photo"
        try:
            choices = parse_choices(request.query_params)
            await run_in_threadpool(engine.check_choices, choices)  # (may look for face weights once)
        except OptionError as exc:
            return error(request, session, 400, str(exc))
        if request.headers.get("content-type", "").lower().startswith("multipart/"):
            # (a form's parts and boundaries around the file read as a file that is no image)
            return error(request, session, 415, f"{name}: send the photo's own bytes as the request's body "
                         "(curl --data-binary @photo.jpg), not a form (curl -F)")
        limit_text = (f"{name} is larger than this server accepts ({_size(max_upload)} per photo; "
                      "the server's --max-upload-mb sets it)")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_upload:
            return error(request, session, 413, limit_text)
        session = engine.session(request.cookies.get(cookie))  # the caller's, or the one it starts
        try:  # (a length the client did not give is taken as the largest it may send)
            job = engine.reserve(session, name, int(length) if length.isdigit() else max_upload)
        except Busy as exc:
            return error(request, session, 503, f"The server is busy: {exc}.",
                         headers={"retry-after": str(exc.retry_after)})
        except StorageFull as exc:  # (not 503: the page would send it again and again)
            return error(request, session, 507, f"{name} was not kept: {exc}.")
        try:
            size = 0
            with open(job.input, "wb") as fh:
                async for chunk in _chunks(request, upload_idle):
                    size += len(chunk)
                    if size > max_upload:
                        raise TooLarge
                    fh.write(chunk)
        except TooLarge:
            engine.fail_upload(job, limit_text)
            return error(request, session, 413, limit_text, job)
        except ClientDisconnect:
            engine.fail_upload(job, "the upload was interrupted")
            engine.remove(job)
            return Response(status_code=400)
        except Stalled:  # a client that stopped sending gives its queue place back
            reason = f"nothing was received for {upload_idle:g} s: the upload was dropped; send it again"
            engine.fail_upload(job, reason)
            return error(request, session, 408, f"{job.name}: {reason}", job)
        except OSError as exc:  # e.g. a full disk: the photo's place in the queue must be given back
            reason = f"the server could not store the file ({exc.strerror or exc})"
            engine.fail_upload(job, reason)
            return error(request, session, 507, f"{job.name}: {reason}", job)
        try:
            await run_in_threadpool(engine.inspect, job)
        except PhotoError as exc:
            engine.fail_upload(job, exc.reason)
            return error(request, session, 422, f"{job.name}: {exc.reason}", job)
        engine.submit(job, choices)
        return reply(request, session, JSONResponse(engine.describe(job), status_code=202))

    async def photo_state(request: Request) -> Response:
        session = session_of(request)
        job = found(request, session)
        if job is None:
            return error(request, session, 404, "no such photo")
        return reply(request, session, JSONResponse(engine.describe(job)))

    async def delete_photo(request: Request) -> Response:
        session = session_of(request)
        job = found(request, session)
        if job is None:
            return error(request, session, 404, "no such photo")
        engine.remove(job)
        return reply(request, session, Response(status_code=204))

    def file_reply(request: Request, session: Session | None, path: Path | None, *,
                   attachment: str | None = None) -> Response:
        """``path`` shown in the page, or saved as a file named ``attachment``."""
        if path is None or not path.is_file():
            return error(request, session, 404, "not ready")
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return reply(request, session, FileResponse(path, media_type=media, filename=attachment))

    async def preview(request: Request) -> Response:
        session = session_of(request)
        job = found(request, session)
        kind, _, full = request.path_params["kind"].split(".")[0].partition("_")
        known = kind in ("before", "after", "overlay") and full in ("", "full")
        if job is None or not job.previews or not known or (full and job.status != DONE):
            return error(request, session, 404, "no such preview")
        if not full:
            return file_reply(request, session, job.preview(kind))
        try:  # made on first request (seconds for a large photo): off the event loop
            path = await run_in_threadpool(engine.full_view, job, kind)
        except TooLargeToView as exc:
            return error(request, session, 422, str(exc))
        except (PhotoError, OSError, NotRestored):  # its files deleted or being replaced meanwhile
            return error(request, session, 404, "no such preview")
        return file_reply(request, session, path)

    def restored_file(request: Request, file_of: Callable[[PhotoJob], Path | None],
                      name_of: Callable[[Path], str]) -> Response:
        """A file of a finished photo (its result or its mask), as an attachment named ``name_of(it)``."""
        session = session_of(request)
        job = found(request, session)
        if job is None or job.status != DONE:
            return error(request, session, 404, "no restored photo with this id")
        path = file_of(job)
        return file_reply(request, session, path, attachment=name_of(path) if path else None)

    async def download(request: Request) -> Response:
        return restored_file(request, lambda job: job.output, download_name)

    async def mask(request: Request) -> Response:
        # (NAME.mask.png keeps the photo's name: `oldphoto restore --mask-dir` pairs it with NAME.jpg)
        return restored_file(request, lambda job: job.mask, lambda path: path.name)

    async def send_back(request: Request, queue: Callable[[PhotoJob], Any]) -> Response:
        """Restore one of the caller's photos again (``queue(job)`` queues it): 202 and its state, or why
        not, with its state."""
        session = session_of(request)
        job = found(request, session)
        if job is None:
            return error(request, session, 404, "no such photo")
        try:
            await queue(job)
        except TooLarge:
            return error(request, session, 413, "the marks are too large an image", job)
        except (ClientDisconnect, Stalled):
            return error(request, session, 400, "the request did not arrive whole", job)
        except OptionError as exc:
            return error(request, session, 400, str(exc), job)
        except NotRestored as exc:
            return error(request, session, 409, str(exc), job)
        except MarksError as exc:
            return error(request, session, 422, str(exc), job)
        except Busy as exc:
            return error(request, session, 503, f"The server is busy: {exc}.", job,
                         headers={"retry-after": str(exc.retry_after)})
        return reply(request, session, JSONResponse(engine.describe(job), status_code=202))

    async def marks(request: Request) -> Response:
        async def queue(job: PhotoJob) -> None:
            body = b""
            async for chunk in _chunks(request, upload_idle):
                body += chunk
                if len(body) > MAX_MARKS_BYTES:
                    raise TooLarge
            await run_in_threadpool(engine.repair_marked, job, body)
        return await send_back(request, queue)

    async def again(request: Request) -> Response:
        async def queue(job: PhotoJob) -> None:
            choices = parse_choices(request.query_params)
            await run_in_threadpool(engine.check_choices, choices)  # (may look for face weights once)
            engine.restore_again(job, choices)
        return await send_back(request, queue)

    async def download_zip(request: Request) -> Response:
        session = session_of(request)
        jobs = list(session.photos.values()) if session is not None else []
        outputs = [job.output for job in jobs
                   if job.status == DONE and job.output is not None and job.output.is_file()]
        if session is None or not outputs:
            return error(request, session, 404, "no restored photos yet")
        path = await run_in_threadpool(_zip, outputs, session.folder)
        return reply(request, session, FileResponse(path, media_type="application/zip",
                                                    filename="restored-photos.zip",
                                                    background=BackgroundTask(os.unlink, path)))

    async def end_session(request: Request) -> Response:
        session = session_of(request)
        if session is not None:
            engine.end_session(session)
        response = Response(status_code=204)
        response.delete_cookie(cookie)
        return response

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/config", config),
        Route("/api/photos", list_photos, methods=["GET"]),
        Route("/api/photos", upload, methods=["POST"]),
        Route("/api/photos/{photo}", photo_state, methods=["GET"]),
        Route("/api/photos/{photo}", delete_photo, methods=["DELETE"]),
        Route("/api/photos/{photo}/preview/{kind}", preview),
        Route("/api/photos/{photo}/download", download),
        Route("/api/photos/{photo}/mask", mask),
        Route("/api/photos/{photo}/marks", marks, methods=["POST"]),
        Route("/api/photos/{photo}/again", again, methods=["POST"]),
        Route("/api/download.zip", download_zip),
        Route("/api/session", end_session, methods=["DELETE"]),
    ]
    app = Starlette(routes=routes)
    proxy_names = frozenset(_bracketed(name).lower() for name in proxied)
    names = LOOPBACK_HOSTS | {_bracketed(name).lower() for name in hosts} | proxy_names
    return Guard(app, credentials=credentials, hosts=names if loopback_only else None, proxied=proxy_names)


def _size(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def download_name(output: Path) -> str:
    """The name a restored photo is saved under: the original's with "_restored" (an original in the
    same Downloads folder, or a zip unpacked beside the originals, is never replaced by its restoration,
    and the two are told apart at a glance)."""
    return f"{output.stem}_restored{output.suffix}"


def _zip(outputs: list[Path], folder: Path) -> str:
    """A zip of ``outputs`` in ``folder`` (names made distinct: two uploads may share a name)."""
    fd, name = tempfile.mkstemp(prefix=".download-", suffix=".zip", dir=folder)
    os.close(fd)
    used: set[str] = set()
    with zipfile.ZipFile(name, "w") as archive:
        for path in outputs:
            arcname, n = download_name(path), 2
            while arcname.lower() in used:
                arcname, n = download_name(path.with_stem(f"{path.stem}_{n}")), n + 1
            used.add(arcname.lower())
            method = zipfile.ZIP_STORED if path.suffix.lower() in STORED else zipfile.ZIP_DEFLATED
            archive.write(path, arcname, compress_type=method)
    return name

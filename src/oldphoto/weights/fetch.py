"""Download a file over HTTP(S) into the download cache, resumably (standard library only).

A download is written to ``<name>.part`` beside its final place and renamed to ``<name>`` only when every
byte the server announced has arrived, so a file under its final name is always complete.  An interrupted
download (timeout, dropped connection, truncated body, Ctrl-C) keeps its ``.part`` file and a small
``.part.json`` (the URL, the server's validator and the announced size): the next attempt, in this run or
a later one, asks only for the missing bytes (``Range``), guarded by ``If-Range`` so that a file changed
on the server starts over instead of being stitched from two versions.  A failure that resuming cannot
cure (HTTP 404, a server that answers with a different file) removes the partial file.

Proxies come from the usual environment variables (``https_proxy``, ``http_proxy``, ``no_proxy``), which
:mod:`urllib.request` honours.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oldphoto.cli import show_progress
from oldphoto.files import atomic_write_text
from oldphoto.weights.store import WeightsError, sha256_file

__all__ = ["DownloadError", "Fetched", "default_cache_dir", "cache_path", "fetch"]

_BLOCK = 1 << 16
_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)  # seconds before the 1st, 2nd, ... retry (the last one repeats)
_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class DownloadError(WeightsError):
    """A download failed; ``resumable`` says whether a ``.part`` file was kept for the next attempt, and
    ``by_hand`` whether the network or the server was at fault (no internet here, a firewall, an HTTP
    error), so that fetching the file on another machine and importing it is the way around."""

    def __init__(self, message: str, resumable: bool = False, by_hand: bool = False) -> None:
        super().__init__(message)
        self.resumable = resumable
        self.by_hand = by_hand


class _Retry(Exception):
    """One attempt failed in a way another attempt may cure (the .part file stays)."""


@dataclass
class Fetched:
    url: str
    path: Path
    size: int
    sha256: str
    reused: bool = False  # already complete in the cache: nothing was downloaded
    resumed_from: int = 0  # bytes kept from an earlier interrupted attempt


def default_cache_dir() -> Path:
    """$OLDPHOTO_CACHE, else $XDG_CACHE_HOME/oldphoto, else ~/.cache/oldphoto."""
    env = os.environ.get("OLDPHOTO_CACHE", "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "oldphoto"


def cache_path(url: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where ``url`` is cached: ``<cache>/downloads/<hash of the URL>/<file name of the URL>``.

    The folder per URL keeps two assets of the same name from different places apart, and the file keeps
    its own name (the importer records it as the source of each network)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise DownloadError(f"{url}: not an http(s) URL")
    name = _FILE_NAME.sub("_", urllib.parse.unquote(parsed.path.rstrip("/").rpartition("/")[2]))
    name = name.lstrip(".") or "download"
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "downloads" / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def fetch(url: str, cache_dir: str | os.PathLike | None = None, *, timeout: float = 30.0, retries: int = 3,
          progress: bool | None = None, log: Callable[[str], None] | None = None) -> Fetched:
    """``url`` as a complete file in the cache (downloaded, resumed, or already there).

    ``timeout``: seconds to wait for the connection and for each block of data; ``retries``: further
    attempts after a timeout, a dropped connection, a truncated body or an HTTP 5xx/408/429 (each resumes
    where the previous one stopped).  ``progress``: a progress bar on stderr (bytes, rate, time left);
    None shows it when stderr is a terminal.  Raises :class:`DownloadError` with what went wrong."""
    target = cache_path(url, cache_dir)
    log = log or (lambda _msg: None)
    if target.is_file():
        return Fetched(url, target, target.stat().st_size, sha256_file(target), reused=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    meta = target.with_name(target.name + ".part.json")
    if progress is None:
        progress = show_progress()
    # a fresh opener per download: its ProxyHandler reads the proxy variables now (urlopen's shared
    # opener keeps the ones of its first use)
    opener = urllib.request.build_opener()
    with _exclusive(target.parent, url), _progress_bar(target.name, progress) as bar:
        resumed_from = part.stat().st_size if part.is_file() and _read_meta(meta, url) else 0
        if resumed_from:
            log(f"resuming {target.name} at {_human(resumed_from)}")
        try:
            for attempt in range(retries + 1):
                try:
                    if _attempt(opener, url, part, meta, timeout, bar) == 0:
                        resumed_from = 0  # the earlier bytes were not used: the file came whole
                    break
                except _Retry as exc:
                    if attempt == retries:
                        raise DownloadError(f"{url}: {exc} ({_gave_up(attempt + 1, part)}; behind a proxy, "
                                            f"set https_proxy)", resumable=part.is_file(),
                                            by_hand=True) from None
                    delay = _RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)]
                    log(f"{target.name}: {exc}; retrying in {delay:g} s ({attempt + 1} of {retries} retries)")
                    time.sleep(delay)
        except DownloadError as exc:
            if not exc.resumable:
                _discard(part, meta)
            _remove_if_empty(target.parent)
            raise
        os.replace(part, target)
        meta.unlink(missing_ok=True)
    return Fetched(url, target, target.stat().st_size, sha256_file(target), resumed_from=resumed_from)


def _gave_up(attempts: int, part: Path) -> str:
    text = f"gave up after {attempts} attempt{'s' * (attempts > 1)}"
    have = part.stat().st_size if part.is_file() else 0
    if have:
        text += f"; the {_human(have)} received are kept in {part}: run the command again to resume"
    return text


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (a partial download to resume, or a complete one)


def _attempt(opener: urllib.request.OpenerDirector, url: str, part: Path, meta: Path, timeout: float,
             bar: Any) -> int:
    """One request: append the missing bytes to ``part`` (or rewrite it when the server cannot resume).

    Returns the offset the server's answer started at (0: the whole file)."""
    info = _read_meta(meta, url)
    have = part.stat().st_size if part.is_file() and info else 0
    headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        if info.get("validator"):
            headers["If-Range"] = info["validator"]
    try:
        response = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        with exc:
            _http_error(exc, url, have, info, part, meta)
        return have  # 416 on a part that already holds the whole file
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _Retry(_network_problem(exc, timeout)) from None
    with response:
        if response.status == 206 and have:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != have:
                _discard(part, meta)
                raise _Retry(f"the server resumed at byte {start}, not {have}; starting over")
            mode = "ab"
        elif response.status == 200:
            have, mode = 0, "wb"  # no resume offered (or the file changed): from the start
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        else:
            raise DownloadError(f"{url}: unexpected HTTP {response.status} {response.reason}", by_hand=True)
        _check_space(part.parent, (total or 0) - have, url)
        _write_meta(meta, {"url": url, "validator": _validator(response.headers), "total": total})
        bar.reset(total=total)
        bar.update(have)
        try:
            f = open(part, mode)
        except OSError as exc:
            raise DownloadError(f"cannot write {part}: {exc}") from None
        with f:
            while True:
                try:
                    block = response.read(_BLOCK)
                except (OSError, http.client.HTTPException) as exc:  # IncompleteRead is an HTTPException
                    raise _Retry(_network_problem(exc, timeout)) from None
                if not block:
                    break
                try:
                    f.write(block)
                except OSError as exc:  # disk full, quota: resuming cannot cure it
                    raise DownloadError(f"cannot write {part}: {exc}") from None
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Retry(f"the connection closed after {_human(size)} of {_human(total)}")
    if total is not None and size > total:
        _discard(part, meta)
        raise _Retry(f"the server sent {size - total} bytes more than it announced; starting over")
    return have


def _http_error(exc: urllib.error.HTTPError, url: str, have: int, info: dict[str, Any], part: Path,
                meta: Path) -> None:
    if exc.code == 416 and have:
        _start, total = _content_range(exc.headers.get("Content-Range", ""))
        if total is not None and total == have == info.get("total", have):
            return  # the part already holds every byte
        _discard(part, meta)
        raise _Retry("the server cannot resume this download; starting over")
    if exc.code in (408, 429) or exc.code >= 500:
        raise _Retry(f"HTTP {exc.code} {exc.reason}")
    hint = (" (the file is not there: check the URL; the official release assets are listed in "
            "docs/weights.md)" if exc.code in (404, 410) else "")
    raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}{hint}", by_hand=True)


def _network_problem(exc: BaseException, timeout: float) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, http.client.IncompleteRead):
        return "the connection closed before the announced end of the file"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no data from the server for {timeout:g} s (timed out)"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host name ({reason.strerror or reason})"
    return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__


def _content_range(value: str) -> tuple[int | None, int | None]:
    """(first byte, total size) of ``bytes a-b/total`` or ``bytes */total``; None where absent."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value)
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    return start, (int(m.group(2)) if m.group(2) != "*" else None)


def _validator(headers: Any) -> str | None:
    """What If-Range may carry: a strong ETag, else Last-Modified."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


def _read_meta(meta: Path, url: str) -> dict[str, Any]:
    """The partial download's record, or {} when there is none or it belongs to another URL."""
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) and info.get("url") == url else {}


def _write_meta(meta: Path, info: dict[str, Any]) -> None:
    atomic_write_text(meta, json.dumps(info))


def _discard(part: Path, meta: Path) -> None:
    part.unlink(missing_ok=True)
    meta.unlink(missing_ok=True)


def _check_space(folder: Path, needed: int, url: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DownloadError(f"{url}: needs {_human(needed)} but {folder} has {_human(free)} free "
                            f"(set OLDPHOTO_CACHE or --cache to another disk)")


@contextlib.contextmanager
def _exclusive(folder: Path, url: str) -> Iterator[None]:
    """Hold a lock on the URL's cache folder so two processes never write one .part file."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadError(f"{url}: another oldphoto process is downloading it into {folder}; "
                                f"wait for it to finish") from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _progress_bar(name: str, enabled: bool) -> Iterator[Any]:
    from tqdm import tqdm

    bar = tqdm(desc=name, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled,
               file=sys.stderr, dynamic_ncols=True, miniters=1, mininterval=0.2)
    try:
        yield bar
    finally:
        bar.close()


def _user_agent() -> str:
    from oldphoto import __version__

    return f"oldphoto/{__version__} (+python urllib)"


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"

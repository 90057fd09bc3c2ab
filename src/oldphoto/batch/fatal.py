"""The failures that stop a whole batch rather than fail one photo: the restorer cannot run
(``SetupError``), or the disk is full (``DiskFull``)."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

from oldphoto.batch.report import Entry


class SetupError(RuntimeError):
    """The restorer itself cannot run (missing weights, bad device): stop, no photo is to blame."""


# a write that fails with one of these found its disk (or quota) full: every later write would fail too
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_ADVICE = "free space and run again: finished photos are kept and skipped"


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


class DiskFull(Exception):
    """Writing ``path`` found no space left on its disk: the batch stops there rather than restore every
    remaining photo only to fail its write.  ``entry``: the photo's failed entry (set by
    ``run._photo_step``)."""

    def __init__(self, path: Path, exc: OSError):
        why = "disk quota exceeded" if exc.errno == errno.EDQUOT else "no space left on device"
        super().__init__(f"cannot write {path}: the disk is full ({why})")
        self.path = path
        self.entry: Entry | None = None

    @property
    def fatal(self) -> str:
        """Why the batch stopped, for the summary, the report and the photos not attempted."""
        return disk_full_fatal(self.path)


def disk_full_fatal(path: Path | str) -> str:
    return f"the disk is full ({path} could not be written); {DISK_FULL_ADVICE}"


@contextlib.contextmanager
def disk_full_names(path: Path) -> Iterator[None]:
    """A write of ``path`` that finds the disk full raises ``DiskFull`` naming it (the OSError names at
    most the temporary file)."""
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(path, exc) from exc
        raise

"""Small file utilities shared by the photo writer, the weights store, the batch runner, the metrics
reports, training and the data tools: the one atomic write and the one sha256 of a file."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

# atomic_write's temporary files: ".<name>.<8 characters from tempfile>.part" (found and removed by
# oldphoto.outputs.clean_stale_parts when a write was killed mid-way)
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.part$")
# the longest file name most file systems take (ext4, XFS, APFS, NTFS: 255 bytes, or UTF-16 units)
NAME_MAX = 255
_TEMP_EXTRA = len(".") + len(".xxxxxxxx.part")


def name_fits(name: str) -> bool:
    """Whether ``name`` is short enough to be a file name (``NAME_MAX`` bytes, as the system encodes it)."""
    return len(os.fsencode(name)) <= NAME_MAX


def temp_name_part(name: str) -> str:
    """The ``NAME`` of ``name``'s temporary files (``.NAME.xxxxxxxx.part``): ``name`` itself, cut short (at a
    character) where the whole would be longer than a file name may be: a photo whose name is 241 to 255
    bytes long is written too."""
    while len(os.fsencode(name)) > NAME_MAX - _TEMP_EXTRA:
        name = name[:-1]
    return name

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None], replace: bool = True) -> Path:
    """Run ``write(temporary path)`` in the destination folder, then rename over ``path``.

    An interrupted or failed write leaves no partial file: the temporary file is removed, and the
    destination either does not exist or is the complete previous version.  The temporary name does not
    end in the destination's suffix: writers that infer a format from it must be told the format.
    ``replace=False``: ``path`` must not exist; a file that appeared there while this one was written
    (another process's) is left as it is and ``FileExistsError`` raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{temp_name_part(path.name)}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        if replace:
            os.replace(tmp, path)
        else:
            _place_new(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


# link() refusals of file systems without hard links: the new file is then renamed after a last look
_NO_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS, errno.EXDEV})


def _place_new(tmp: Path, path: Path) -> None:
    """Give the finished ``tmp`` the name ``path`` only if nothing has it: ``link`` refuses an existing
    name, where a rename would replace it."""
    try:
        os.link(tmp, path)
    except FileExistsError:  # (named by the destination, not the temporary file link() was given first)
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)
        return
    with contextlib.suppress(OSError):  # (a name left is a .part file: the next batch removes the name)
        tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write` of ``text`` in UTF-8."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

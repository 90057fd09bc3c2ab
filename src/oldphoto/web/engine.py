"""The work behind ``oldphoto serve``, free of any web framework (so it is tested without one).

- Sessions: each browser session has a random id and its own folder; a session sees only its photos.
  A session ends when its user deletes their files or after ``session_ttl`` seconds without a request;
  its folder is deleted then, and the whole temporary root when the server stops.
- One queue, one worker thread, one set of models: photos are restored one at a time (the models are
  not thread-safe and one copy is all the memory a CPU machine can spare).  Sessions take turns, so one
  user's 100 photos do not hold up another's one.  A full queue refuses new photos with ``Busy``
  (the page waits and retries).
- Storage: an upload is refused with ``StorageFull`` when the photos held, with it and what its restoration
  writes, would exceed ``max_storage`` bytes, or would leave less than ``MIN_FREE_DISK`` free on the disk
  (a server open to many people must not fill its machine's disk; sessions' files go when they expire).
- Each photo is restored and written by :func:`oldphoto.batch.restore_one`, the function behind
  ``oldphoto restore --save-mask``: the download is byte for byte what the CLI writes for the same photo
  and options (but the provenance's ``restored_at`` time).
- A restored photo may be restored again with other options (:meth:`Engine.restore_again`) or with
  defects marked by hand on the page (:meth:`Engine.repair_marked`, :mod:`oldphoto.web.marks`): as
  ``oldphoto restore --mask-dir``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import itertools
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import unicodedata
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from oldphoto.batch import OK, BatchConfig, Entry, Job, plan_outputs, read_mask, restore_one
from oldphoto.io import (
    DEFAULT_JPEG_QUALITY,
    DEFAULT_MAX_PIXELS,
    PhotoError,
    _heif,
    normalise_format,
    read_photo,
    too_small,
)
from oldphoto.io.photo import FORMAT_FAMILY, own_pixel_limit
from oldphoto.nets.descriptors import UPSCALE_ROLE
from oldphoto.options import DEFAULT_FIDELITY
from oldphoto.reasons import ReasonCode
from oldphoto.web.marks import apply_marks
from oldphoto.web.previews import (
    FULL_VIEW_PIXELS,
    PREVIEW_SIDE,
    preview_size,
    write_full,
    write_overlay,
    write_preview,
)

UPLOADING, QUEUED, RUNNING, DONE, FAILED = "uploading", "queued", "running", "done", "failed"

# Restore options a user may choose per photo (everything else, device and weights above all, is the
# server's).  Name -> parser of the text a form sends.
_TRUE, _FALSE = {"1", "true", "on", "yes"}, {"0", "false", "off", "no"}


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"expected on or off, got {text!r}")


# Largest mask growth a page user may ask for (the page's own field stops there too).  The disk's cost
# grows with its area: 2000 px on a 6 Mpx photo would hold the one restoring worker, so every other
# user, for the better part of an hour (the server's own --mask-dilation is not limited).
MAX_DILATION = 50


def _dilation(text: str) -> int:
    value = int(text)
    if value > MAX_DILATION:
        raise ValueError(f"at most {MAX_DILATION} pixels on this page, got {value}")
    return value


USER_OPTIONS: dict[str, Callable[[str], Any]] = {
    "scratches": str, "dust": _bool, "dark_dust": _bool, "fidelity": float, "denoise": _bool,
    "remove_grain": _bool, "faces": _bool, "hr": _bool, "keep_tone": _bool, "colour": str, "unfade": str,
    "mask_threshold": float, "mask_dilation": _dilation, "face_detector": str, "upscale": int,
}
# Longest stored name, in bytes of UTF-8 (file systems allow 255 bytes, not characters: 120 leaves room for
# the output's ".mask.png" and the temporary ".NAME.XXXXXXXX.part" of an atomic write)
NAME_BYTES = 120
RESTORERS_KEPT = 8  # restorers for distinct option sets (they share the models; each is small)


ROOT_PREFIX = "oldphoto-serve-"  # a server's temporary folder (in the system's), deleted when it stops
ROOT_LOCK = ".lock"  # held locked by the server using the folder, for as long as it runs


def _lock_root(root: Path) -> int | None:
    """Mark ``root`` as in use by this process for as long as it runs: a file in it, locked (the lock goes
    with the process, however it ends).  None where there are no such locks (Windows)."""
    try:
        import fcntl
    except ImportError:
        return None
    fd, part = tempfile.mkstemp(dir=root, prefix=".lock-")
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.replace(part, root / ROOT_LOCK)  # (named once locked: never seen unlocked while in use)
    return fd


def _sweep_abandoned_roots() -> None:
    """Delete the temporary folders of servers that ended without deleting them (killed, crashed, the
    machine switched off): the photos uploaded to them, which a clean stop deletes, stayed in the system's
    temporary folder.  A folder is abandoned when its lock file can be locked; one in use (its server
    running) or without a lock file (a server starting, or an older version's) is left alone."""
    try:
        import fcntl
    except ImportError:
        return
    for folder in Path(tempfile.gettempdir()).glob(ROOT_PREFIX + "*"):
        try:
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
            fd = os.open(folder / ROOT_LOCK, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its server is running
            os.close(fd)
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)


def _memory_releaser() -> Callable[[], Any]:
    """A function that hands the memory the process has freed back to the system: glibc's
    ``malloc_trim``, or nothing where there is none (macOS, Windows, musl).  glibc keeps what a photo's
    restoration freed for the process's later use, so a server held more memory with every photo it had
    restored, long after (docs/serve.md, *One model copy*, has the figures)."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


release_memory = _memory_releaser()


# a photo's failures that are the server's storage's, not the photo's
SERVER_STORAGE = frozenset({ReasonCode.CANNOT_PLACE_OUTPUT, ReasonCode.OUTPUT_NOT_WRITABLE,
                            ReasonCode.CANNOT_WRITE_OUTPUT})


class Busy(Exception):
    """The queue is full: try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class StorageFull(Exception):
    """No room for another upload: the photos held reach ``max_storage``, or the disk is nearly full."""


# An upload is stored, then its restored photo, mask and previews are written beside it: about its own
# size again (more with --upscale, whose output has 4 or 16 times the pixels; the disk floor covers that).
STORAGE_PER_UPLOAD = 2
# Free disk space an accepted upload must leave (bytes): the system and other programs need some.
MIN_FREE_DISK = 1_000_000_000


def stored_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (files vanishing meanwhile, as sessions end, are skipped)."""
    total = 0
    for top, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                pass
    return total


class OptionError(ValueError):
    """An option the user sent cannot be used (the message says which and why)."""


class TooLargeToView(Exception):
    """A photo with more pixels than the 100 % view is made for (the message says so)."""


class NotRestored(Exception):
    """Marks or new options sent for a photo that is not restored (yet, or is being restored again)."""


@dataclass(frozen=True)
class Choices:
    """What one photo is restored and written with: restore option overrides, output format, quality."""

    overrides: tuple[tuple[str, Any], ...] = ()
    format: str | None = None   # None: the input's family, as `--format same`
    quality: int = DEFAULT_JPEG_QUALITY


def parse_choices(form: Mapping[str, str]) -> Choices:
    """The options a page or API client sent (unknown names are ignored; bad values are errors)."""
    overrides = {}
    for name, parse in USER_OPTIONS.items():
        if name in form and form[name] != "":
            try:
                overrides[name] = parse(form[name])
            except ValueError as exc:
                raise OptionError(f"option {name}: {exc}") from None
    # no denoising means no grain removal either: the page sends no remove_grain once "Remove noise" is
    # off (its box is disabled), and a server started with --remove-grain must not then refuse the photo
    if overrides.get("denoise") is False:
        overrides.setdefault("remove_grain", False)
    try:
        fmt = normalise_format(form.get("format") or None)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    try:
        quality = int(form.get("quality") or DEFAULT_JPEG_QUALITY)
    except ValueError:
        raise OptionError(f"option quality: expected a whole number, got {form.get('quality')!r}") from None
    if not 1 <= quality <= 100:
        raise OptionError("option quality: must be between 1 and 100")
    return Choices(tuple(sorted(overrides.items())), fmt, quality)


def safe_name(name: str) -> str:
    """An uploaded file's name made safe as a file name: no folders, no hidden or control characters;
    letters of every script are kept (the name is recorded as the restoration's source)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    kept = "".join(c if (c.isalnum() or c in " ._-()+,") else "_" for c in base).strip(" .")
    if not kept:
        return "photo"
    if len(kept.encode()) > NAME_BYTES:
        stem, dot, ext = kept.rpartition(".")
        if dot and len(ext) <= 8:
            kept = _clip(stem, NAME_BYTES - len(ext.encode()) - 1).rstrip(" .") + "." + ext
        else:
            kept = _clip(kept, NAME_BYTES)
    return kept


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def _clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    return text.encode()[:limit].decode(errors="ignore")


@dataclass(eq=False)
class Session:
    id: str
    folder: Path
    last_seen: float
    turn: int = 0  # when this session last had a photo started (queue fairness)
    photos: dict[str, PhotoJob] = field(default_factory=dict)
    ended: bool = False


@dataclass(eq=False)
class PhotoJob:
    id: str
    session: Session
    name: str
    folder: Path
    input: Path
    seq: int
    choices: Choices = field(default_factory=Choices)
    status: str = UPLOADING
    reason: str = ""
    submitted: float = 0.0
    started: float | None = None
    finished: float | None = None
    estimate: float | None = None  # expected seconds of work, from the photos restored before
    entry: Entry | None = None
    faces: list[list[float]] = field(default_factory=list)  # boxes as fractions x0, y0, x1, y1
    previews: bool = False
    megapixels: float = 0.0  # from the file's header, for the time estimate
    size: tuple[int, int] | None = None  # width, height of the restored picture (the photo's × --upscale)
    marks: Path | None = None  # the mask marked by hand on the page, repaired as given (a --mask-dir file)
    revision: int = 0  # how many times it was sent back (marks, options): the page shows each new result
    stage: str = ""  # how far a long stage of its restoration is ("enlarging 40%"), while it runs

    @property
    def output(self) -> Path | None:
        return Path(self.entry.output) if self.entry is not None and self.entry.output else None

    @property
    def mask(self) -> Path | None:
        return Path(self.entry.mask) if self.entry is not None and self.entry.mask else None

    def preview(self, kind: str) -> Path:
        """``kind``: before, after, overlay (the previews), or the same + ``_full`` (the 100 % view's)."""
        return self.folder / "preview" / {"before": "before.jpg", "after": "after.jpg",
                                          "overlay": "overlay.png", "before_full": "before_full.png",
                                          "after_full": "after_full.png",
                                          "overlay_full": "overlay_full.png"}[kind]


def too_many_pixels(width: int, height: int, max_pixels: int) -> str:
    """Why a photo above the server's --max-pixels is refused, for the page's user (who cannot give the
    server's flags, and has never heard of decompression bombs)."""
    def mpx(pixels: int) -> str:
        return f"{pixels / 1e6:,.0f}" if pixels >= 1e7 else f"{pixels / 1e6:.2g}"

    return (f"too large to restore here: {width}×{height} pixels ({mpx(width * height)} megapixels); this "
            f"server restores photos of up to {mpx(max_pixels)} megapixels (whoever started it can allow "
            "more with --max-pixels)")


class PhotoTimes:
    """Seconds a photo takes, learned from the latest ones restored: a fixed part (per photo) plus a
    part per megapixel, so that small photos, where the fixed part dominates, do not make a large one's
    estimate several times too long.  Until photos of different sizes have been seen, it is
    proportional to the pixels.  The first photo is left out: it loads the networks, the face
    detector and the imports they need (a 256² photo took 2.7 s, and a 1-megapixel one was then
    estimated at 47 s and took 2.6; a user review).  Each kind of photo (``--upscale``) has its own
    times, so the upscaler's loading is left out too."""

    KEEP = 20  # photos remembered: recent enough to follow the machine's load

    def __init__(self) -> None:
        self.samples: deque[tuple[float, float]] = deque(maxlen=self.KEEP)
        self.cold = True  # the next photo is the first
        self.added = 0  # samples added so far
        # (samples added, (fixed, per megapixel)) fitted to them: a page's poll asks for every photo
        # waiting ahead of each of its own
        self._fit: tuple[int, tuple[float, float]] = (0, (0.0, 0.0))

    def add(self, megapixels: float, seconds: float) -> None:
        if self.cold:
            self.cold = False
            return
        self.samples.append((max(megapixels, 0.01), seconds))
        self.added += 1

    def predict(self, megapixels: float) -> float | None:
        added, fit = self._fit  # (one read: the worker thread adds while requests read)
        if added != self.added:
            added = self.added
            samples = list(self.samples)
            fit = self._fitted(np.array([s[0] for s in samples]), np.array([s[1] for s in samples]))
            self._fit = added, fit
        if not added:
            return None
        fixed, per_megapixel = fit
        return float(fixed + per_megapixel * max(megapixels, 0.01))

    @staticmethod
    def _fitted(m: np.ndarray, t: np.ndarray) -> tuple[float, float]:
        if m.max() > 1.5 * m.min():
            slope, fixed = np.polyfit(m, t, 1)
            if slope > 0 and fixed >= 0:
                return float(fixed), float(slope)
        return 0.0, float(np.median(t / m))


class Engine:
    """Sessions, the queue and the worker thread for ``oldphoto serve``.

    ``restorer``: the server's Restorer (device, weights and the default options); per-photo options
    get Restorers made from it by :meth:`Restorer.with_options`, sharing its models.  ``max_storage``:
    bytes the sessions' files may take in all (None: only the disk's free space limits them).
    """

    def __init__(self, restorer: Any, root: Path | None = None, *, max_queue: int = 64,
                 max_per_session: int = 32, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 session_ttl: float = 3600.0, preview_side: int = PREVIEW_SIDE,
                 full_view_pixels: int | None = FULL_VIEW_PIXELS, max_storage: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base = restorer
        self._own_root = root is None
        self._root_lock: int | None = None
        if root is None:
            _sweep_abandoned_roots()
            root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
            self._root_lock = _lock_root(root)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_queue = max_queue
        self.max_per_session = max_per_session
        self.max_pixels = max_pixels
        self.session_ttl = session_ttl
        self.preview_side = preview_side
        self.full_view_pixels = full_view_pixels
        self.max_storage = max_storage
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        self._queue: list[PhotoJob] = []   # queued photos in submission order
        self._reserved = 0                 # photos being uploaded (they count against the queue's size)
        self._running: PhotoJob | None = None
        self._restorers: OrderedDict[tuple, Any] = OrderedDict({(): restorer})
        self._seq = itertools.count(1)
        self._turns = itertools.count(1)
        # one per --upscale factor: an enlarged photo takes many times longer than the same photo restored
        self._times: dict[int, PhotoTimes] = defaultdict(PhotoTimes)
        self._faces_possible: bool | None = None
        self._upscale_possible: bool | None = None
        self._lock = threading.Condition()
        self._full_lock = threading.Lock()  # one full-size picture made at a time (memory), each once
        self._closing = False
        _heif.register()  # (where pillow-heif is installed, a HEIC upload's size is read from its header)
        self._worker = threading.Thread(target=self._work, name="oldphoto-restore", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------------------ sessions
    def session(self, session_id: str | None) -> Session:
        """The live session with this id, or a new one (unknown, ended or expired ids get a new one)."""
        with self._lock:
            session = self.live_session(session_id)
            if session is None:
                new_id = secrets.token_urlsafe(24)
                session = Session(new_id, self.root / new_id, self.clock())
                session.folder.mkdir()
                self.sessions[new_id] = session
            return session

    def live_session(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (unknown, ended or expired).  Requests that only look
        use this: a client without a cookie must not leave a session and a folder behind each time."""
        now = self.clock()
        with self._lock:
            self._expire(now)
            session = self.sessions.get(session_id or "")
            if session is not None:
                session.last_seen = now
            return session

    def end_session(self, session: Session) -> None:
        """Forget a session and delete its files (a photo being restored is deleted when it finishes)."""
        with self._lock:
            self._end(session)

    def _end(self, session: Session) -> None:
        session.ended = True
        self.sessions.pop(session.id, None)
        self._queue = [job for job in self._queue if job.session is not session]
        shutil.rmtree(session.folder, ignore_errors=True)
        self._lock.notify_all()

    def _expire(self, now: float) -> None:
        for session in list(self.sessions.values()):
            if now - session.last_seen > self.session_ttl:
                self._end(session)

    def sweep(self) -> None:
        """End the sessions idle for longer than ``session_ttl`` (also done on every request)."""
        with self._lock:
            self._expire(self.clock())

    # ------------------------------------------------------------------------------ photos
    def reserve(self, session: Session, name: str, size: int = 0) -> PhotoJob:
        """A place in the queue for a photo of ``size`` bytes about to be uploaded to ``job.input``;
        ``Busy`` when the queue is full, ``StorageFull`` when the server has no room to keep it."""
        with self._lock:
            self._check_room(session)
            self._check_storage(size)
            job_id = secrets.token_hex(8)
            folder = session.folder / job_id
            clean = safe_name(name)
            job = PhotoJob(job_id, session, clean, folder, folder / "in" / clean, next(self._seq))
            job.input.parent.mkdir(parents=True)
            session.photos[job_id] = job
            self._reserved += 1
            return job

    def _check_room(self, session: Session) -> None:
        """``Busy`` when the queue, or this session's share of it, is full (call with the lock held)."""
        waiting = len(self._queue) + self._reserved
        mine = sum(1 for j in session.photos.values() if j.status in (UPLOADING, QUEUED))
        if waiting >= self.max_queue or mine >= self.max_per_session:
            count = mine if mine >= self.max_per_session else waiting
            whose = "of yours " if mine >= self.max_per_session else ""
            verb = "is" if count == 1 else "are"
            raise Busy(f"{count} photo{'s' if count != 1 else ''} {whose}{verb} waiting already",
                       self._retry_after(count))

    def _check_storage(self, size: int) -> None:
        """``StorageFull`` when an upload of ``size`` bytes and its outputs do not fit (lock held)."""
        need = STORAGE_PER_UPLOAD * size
        if self.max_storage is not None:
            held = stored_bytes(self.root)
            if held + need > self.max_storage:
                minutes = self.session_ttl / 60
                raise StorageFull(
                    f"the server holds as many photos as it may keep ({_gigabytes(held)} of "
                    f"{_gigabytes(self.max_storage)}, its --max-storage-gb). Photos are deleted "
                    f"{minutes:g} minute{'' if minutes == 1 else 's'} after their page was last used: "
                    "remove the photos you have saved, or try again later")
        free = shutil.disk_usage(self.root).free
        if free - need < MIN_FREE_DISK:
            raise StorageFull(f"the server's disk is nearly full ({_gigabytes(free)} free); try again later")

    def inspect(self, job: PhotoJob) -> None:
        """A quick look at an uploaded file before it is queued, so that a file that is no photo, has
        too many pixels or too few to restore, is refused at once with oldphoto.io's reason
        (``PhotoError``).  Only the header is read; a photo whose data is broken fails when its turn
        comes, with the reason too."""
        try:
            with own_pixel_limit(), Image.open(job.input) as image:  # (not Pillow's limit: ours, below)
                width, height = image.size
                # Pillow opens formats oldphoto does not restore (ICO, AVIF, TGA, PPM, ...): refused now,
                # not queued to fail when their turn comes
                supported = image.format in FORMAT_FAMILY
        except Exception:  # let oldphoto.io say why (or read what Pillow cannot, e.g. some TIFFs)
            width, height = read_photo(job.input, max_pixels=self.max_pixels).size
            supported = True
        if not supported:
            read_photo(job.input, max_pixels=self.max_pixels)  # refuses before decoding, with the reason
        if self.max_pixels is not None and width * height > self.max_pixels:
            # (oldphoto.io's reason names a "decompression bomb guard" and a flag: the page's user is told
            # in plain words, and who can change it)
            raise PhotoError(job.input, too_many_pixels(width, height, self.max_pixels))
        small = too_small(width, height)
        if small:
            raise PhotoError(job.input, small)
        job.megapixels = width * height / 1e6

    def submit(self, job: PhotoJob, choices: Choices) -> None:
        """Queue an uploaded photo."""
        with self._lock:
            self._reserved -= 1
            if job.session.ended or job.id not in job.session.photos:
                return
            job.choices = choices
            job.status, job.submitted = QUEUED, self.clock()
            self._queue.append(job)
            self._lock.notify_all()

    def repair_marked(self, job: PhotoJob, marks: bytes) -> None:
        """Queue a restored photo again, to be repaired where its user marked defects on the page and
        not where they unmarked them (``marks``: the page's gray image, :mod:`oldphoto.web.marks`), the
        rest as before.  The new mask is the last one repaired with the marks applied, repaired as given
        (``--scratches on`` with a user mask, as ``oldphoto restore --mask-dir``); the photo's files are
        replaced when it is done.  ``NotRestored`` unless it is restored and not queued again already;
        ``MarksError`` for marks that cannot be used; ``Busy`` when the queue is full."""
        with self._lock:
            self._check_resendable(job, DONE)  # (a restored photo has its entry)
            # the marks start from the last mask given (the HR path repairs a dilated copy of it, and
            # starting from that would grow the mask at every round), else from the mask repaired
            entry, revision, repaired_file = job.entry, job.revision, job.marks or job.mask
        # the mask is made outside the lock (seconds for a large scan: other users' pages go on), then
        # used only if the photo is still as it was: a second request meanwhile is refused
        size = (entry.width, entry.height)  # the photo's (marks are never on the enlarged picture)
        folder = job.folder / "marks"
        part = folder / f".{secrets.token_hex(4)}.part"
        try:
            repaired = None if repaired_file is None else read_mask(repaired_file, size, self.max_pixels)
            mask = apply_marks(repaired, marks, size)
            folder.mkdir(exist_ok=True)
            Image.fromarray(mask.astype(np.uint8) * 255, "L").save(part, format="PNG")
        except (PhotoError, OSError) as exc:  # its files deleted meanwhile (the photo removed)
            raise NotRestored(f"{job.name} is no longer there") from exc
        with self._lock:
            try:
                if job.revision != revision:
                    raise NotRestored(f"{job.name} is being restored again already")
                self._check_resendable(job, DONE)
                job.marks = part.replace(folder / f"{job.input.stem}.png")
            except (NotRestored, Busy, OSError) as exc:
                part.unlink(missing_ok=True)
                if isinstance(exc, OSError):  # its folder deleted meanwhile (the session ended)
                    raise NotRestored(f"{job.name} is no longer there") from exc
                raise
            overrides = dict(job.choices.overrides) | {"scratches": "on"}
            self._requeue(job, dataclasses.replace(job.choices, overrides=tuple(sorted(overrides.items()))))

    def restore_again(self, job: PhotoJob, choices: Choices) -> None:
        """Queue a restored photo again with other options (``choices``, checked as an upload's): its
        defects are found afresh, marks made by hand are dropped; the photo's files are replaced when it
        is done.  ``NotRestored`` unless it is restored (or failed, its file kept) and not queued again
        already; ``Busy`` when the queue is full."""
        with self._lock:
            self._check_resendable(job, DONE, FAILED)
            if not job.input.is_file():
                raise NotRestored(f"{job.name} is no longer there")
            if job.marks is not None:
                shutil.rmtree(job.marks.parent, ignore_errors=True)
                job.marks = None
            self._requeue(job, choices)

    def _check_resendable(self, job: PhotoJob, *states: str) -> None:
        """``NotRestored`` unless ``job``, in one of ``states``, can be queued again now; ``Busy`` when the
        queue is full (lock held).  Not while the worker is still finishing it (its state is set before
        the worker lets it go), nor after its session ended."""
        if job.session.ended or job.id not in job.session.photos:
            raise NotRestored(f"{job.name} is no longer there")
        if job.status not in states or self._running is job:
            raise NotRestored(f"{job.name} is not restored yet")
        self._check_room(job.session)

    def _requeue(self, job: PhotoJob, choices: Choices) -> None:
        """Put a finished photo back in the queue with ``choices``, its results gone (lock held)."""
        for folder in ("out", "preview"):
            shutil.rmtree(job.folder / folder, ignore_errors=True)
        job.choices = choices
        job.entry, job.faces, job.previews, job.size, job.reason, job.stage = None, [], False, None, "", ""
        job.started = job.finished = job.estimate = None
        job.revision += 1
        job.status, job.submitted = QUEUED, self.clock()
        self._queue.append(job)
        self._lock.notify_all()

    def fail_upload(self, job: PhotoJob, reason: str) -> None:
        """The upload was refused (too large, bad options): keep the reason to show, drop the file."""
        with self._lock:
            self._reserved -= 1
            job.status, job.reason = FAILED, reason
            shutil.rmtree(job.folder / "in", ignore_errors=True)

    def remove(self, job: PhotoJob) -> None:
        with self._lock:
            job.session.photos.pop(job.id, None)
            if job in self._queue:
                self._queue.remove(job)
            shutil.rmtree(job.folder, ignore_errors=True)

    def photo(self, session: Session, job_id: str) -> PhotoJob | None:
        """A photo of this session (another session's id is unknown here: None)."""
        return session.photos.get(job_id)

    def full_view(self, job: PhotoJob, kind: str) -> Path:
        """The full-size picture of a restored photo for the page's 100 % view: ``kind`` before (the
        photo as the restorer saw it: upright, sRGB), after (the restored file as downloaded) or overlay
        (its mask), 8-bit and lossless.  Made from the job's files on first request, then kept with the
        previews (and deleted with them).  ``TooLargeToView`` above ``full_view_pixels``; ``NotRestored``
        when the photo is not restored (or is sent back meanwhile: the picture would be the old result's);
        ``PhotoError`` or ``OSError`` when a file is gone (e.g. the photo was removed meanwhile)."""
        with self._lock:
            entry, size, revision = job.entry, job.size, job.revision
            if job.status != DONE or entry is None or size is None:
                raise NotRestored(f"{job.name} is not restored")
        if self.full_view_pixels is not None and size[0] * size[1] > self.full_view_pixels:
            raise TooLargeToView(f"{job.name} has {size[0] * size[1] / 1e6:.0f} Mpx: too many to show at "
                                 f"100 % on this page (at most {self.full_view_pixels / 1e6:.0f} Mpx); "
                                 "download it to look at it at full size")
        if kind == "overlay" and preview_size(*size, self.preview_side) == size:
            return job.preview("overlay")  # already full size, and lossless
        path = job.preview(kind + "_full")
        with self._full_lock:
            if not path.is_file():
                if kind == "overlay":  # the mask has the photo's size (the entry's), the output may be larger
                    mask = (None if job.mask is None
                            else read_mask(job.mask, (entry.width, entry.height), self.max_pixels))
                    write_overlay(path, mask, size, side=None)
                else:
                    source = job.input if kind == "before" else job.output
                    write_full(path, read_photo(source, max_pixels=self.max_pixels).pixels)
        with self._lock:
            if job.id not in job.session.photos:  # removed while it was made: no file left behind
                shutil.rmtree(job.folder, ignore_errors=True)
            if job.revision != revision:  # sent back while it was made: this picture is the old result's
                path.unlink(missing_ok=True)
                raise NotRestored(f"{job.name} is being restored again")
        return path

    def describe(self, job: PhotoJob) -> dict[str, Any]:
        """What the page shows of a photo."""
        with self._lock:
            order = self._order() if job.status == QUEUED else []
            position = order.index(job) if job.status == QUEUED else None
            ahead = position if position is None else position + (1 if self._running is not None else 0)
            now = self.clock()
            info: dict[str, Any] = {
                "id": job.id, "name": job.name, "status": job.status, "reason": job.reason,
                "ahead": ahead, "estimate": job.estimate,
                "wait": None if position is None else self._wait_before(order[:position], now),
                "elapsed": round(now - job.started, 1) if job.started is not None and job.finished is None
                else None,
                "revision": job.revision, "marked": job.marks is not None,
                "stage": job.stage if job.status == RUNNING else "",
                # a photo that failed can be tried again with other options while its file is kept
                "retry": job.status == FAILED and job.input.is_file(),
            }
            entry = job.entry
            if entry is not None:
                width, height = job.size or (entry.width, entry.height)  # the restored picture's pixels
                info.update(seconds=entry.seconds, width=width, height=height, faces=job.faces,
                            warnings=list(entry.warnings), restoration=entry.restoration,
                            output=job.output.name if job.output else None, previews=job.previews)
            return info

    def queue_length(self) -> int:
        with self._lock:
            return len(self._queue) + (1 if self._running is not None else 0)

    # ------------------------------------------------------------------------------ the queue
    def _order(self) -> list[PhotoJob]:
        """Queued photos in the order the worker will take them: sessions take turns (the session
        whose last photo started longest ago goes first), each session's photos in upload order."""
        turns = {job.session.id: job.session.turn for job in self._queue}
        remaining = sorted(self._queue, key=lambda j: j.seq)
        order = []
        tick = max(turns.values(), default=0)
        while remaining:
            job = min(remaining, key=lambda j: (turns[j.session.id], j.seq))
            order.append(job)
            remaining.remove(job)
            tick += 1
            turns[job.session.id] = tick
        return order

    def _wait_before(self, ahead: list[PhotoJob], now: float) -> float | None:
        """Seconds until a photo waiting behind the photos ``ahead`` (and the one running) starts, from
        their estimates; None while one is unknown (no photo of its kind restored yet but the first)."""
        total = 0.0
        running = self._running
        if running is not None:
            if running.estimate is None or running.started is None:
                return None
            total += max(0.0, running.estimate - (now - running.started))
        for job in ahead:
            seconds = self.estimate_for(job.megapixels, self.upscale_of(job))
            if seconds is None:
                return None
            total += seconds
        return round(total, 1)

    def _retry_after(self, waiting: int) -> int:
        typical = self._times[1].predict(1.0)
        per_photo = 10.0 if typical is None else max(1.0, typical)
        return int(min(120, max(5, waiting * per_photo / 4)))

    def _next(self) -> PhotoJob | None:
        with self._lock:
            while not self._closing and not self._queue:
                self._lock.wait(timeout=30.0)
                self._expire(self.clock())
            if self._closing:
                return None
            job = self._order()[0]
            self._queue.remove(job)
            job.status, job.started = RUNNING, self.clock()
            job.estimate = self.estimate_for(job.megapixels, self.upscale_of(job))
            job.session.turn = next(self._turns)
            self._running = job
            return job

    def _work(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._run(job)
            except Exception as exc:  # never lose the worker: the photo fails, the server goes on
                job.entry, job.reason, job.status = None, f"{type(exc).__name__}: {exc}", FAILED
            with self._lock:
                job.finished = self.clock()
                self._running = None
                if job.session.ended or job.id not in job.session.photos:
                    shutil.rmtree(job.session.folder if job.session.ended else job.folder, ignore_errors=True)
                self._lock.notify_all()
            release_memory()  # (the photo's arrays are freed: the next one may be smaller)

    def restorer_for(self, choices: Choices) -> Any:
        """The Restorer for these options (made once, sharing the server's models)."""
        key = choices.overrides
        restorer = self._restorers.get(key)
        if restorer is None:
            try:
                restorer = self.base.with_options(**dict(key))
            except ValueError as exc:
                raise OptionError(str(exc)) from None
            self._restorers[key] = restorer
            while len(self._restorers) > RESTORERS_KEPT:
                oldest = next(k for k in self._restorers if k != ())
                del self._restorers[oldest]
        self._restorers.move_to_end(key)
        return restorer

    def defaults(self) -> dict[str, Any]:
        """The options a photo gets when its user changes nothing, as the page shows them: the server's
        options, with the fidelity the restorer will actually use (its weights' measured value when
        --fidelity was not given)."""
        values = {name: getattr(self.base.options, name) for name in USER_OPTIONS}
        effective = getattr(self.base, "fidelity", None)
        if values["fidelity"] is None:
            values["fidelity"] = effective() if callable(effective) else DEFAULT_FIDELITY
        return values

    def faces_possible(self) -> bool:
        """Whether a user may ask for face enhancement: on by default, or installable per photo
        (face weights and dlib present although the server was started with --no-faces)."""
        if self._faces_possible is None:
            try:
                self._faces_possible = bool(self.base.faces_enabled) or bool(
                    self.base.with_options(faces=True).faces_enabled)
            except Exception:  # no face weights, or no dlib
                self._faces_possible = False
        return self._faces_possible

    def upscale_possible(self) -> bool:
        """Whether a user may ask for ``--upscale``: the upscaler's weights are installed."""
        if self._upscale_possible is None:
            self._upscale_possible = bool(self.base.has_models(UPSCALE_ROLE))
        return self._upscale_possible

    def upscale_of(self, job: PhotoJob) -> int:
        """The factor ``job`` is enlarged by (its choice, else the server's)."""
        return int(dict(job.choices.overrides).get("upscale", self.base.options.upscale))

    def check_choices(self, choices: Choices) -> None:
        """Raise OptionError now (at upload) for options the restorer would refuse."""
        try:
            dataclasses.replace(self.base.options, **dict(choices.overrides)).validate()
        except (TypeError, ValueError) as exc:
            raise OptionError(str(exc)) from None
        if dict(choices.overrides).get("faces") and not self.faces_possible():
            raise OptionError("option faces: face enhancement is not available on this server")
        if dict(choices.overrides).get("upscale", 1) > 1 and not self.upscale_possible():
            raise OptionError("option upscale: the upscaler is not installed on this server (`oldphoto "
                              "weights download realesrgan`)")

    def _run(self, job: PhotoJob) -> None:
        try:
            restorer = self.restorer_for(job.choices)
        except Exception as exc:  # e.g. faces asked for without face detection installed
            job.status, job.reason = FAILED, str(exc)
            return
        seen: dict[str, Any] = {}

        def stage(what: str, fraction: float) -> None:  # (--upscale takes minutes on a CPU)
            job.stage = f"{what} {fraction:.0%}"

        restorer.on_progress = stage  # (one worker: the restorer serves this photo alone meanwhile)

        def restore(pixels, mask):
            result = restorer.restore(pixels, mask=mask)
            if self._closing:  # the server stops: write nothing into folders being deleted
                raise RuntimeError("the server is stopping")
            seen["pixels"], seen["result"] = pixels, result
            return result

        config = BatchConfig(outdir=job.folder / "out", format=job.choices.format,
                             quality=job.choices.quality, max_pixels=self.max_pixels, save_mask=True,
                             mask_dir=None if job.marks is None else job.marks.parent,
                             options=dataclasses.asdict(restorer.options), models=restorer.model_info)
        batch_job = Job(job.input, Path(job.input.name))
        plan_outputs([batch_job], config.outdir, config.format)
        entry = restore_one(batch_job, restore, config)
        job.entry = entry
        if entry.status != OK:
            job.status, job.reason = FAILED, entry.reason
            out_of_memory = entry.reason_code == ReasonCode.OUT_OF_MEMORY
            if out_of_memory:  # the command line's advice names its flags
                job.reason = entry.reason.split(";")[0] + (
                    ": this computer did not have enough memory for this photo just now. Try again "
                    "later, or with fewer options above (no enlarging, no face enhancement); a smaller "
                    "scan needs less.")
            # (the batch's reason names the output's path: here the server's own folders, the session's
            # id among them; the upload is not to blame)
            not_saved = entry.reason_code in SERVER_STORAGE
            if not_saved:
                job.reason = "the server could not save the restored photo just now; try again later"
            if entry.width is None and not (out_of_memory or not_saved):
                # the file itself could not be read (truncated, broken data): no option makes it readable,
                # so none is offered ("Try again with the options above" would fail the same way)
                job.input.unlink(missing_ok=True)
            return
        result = seen["result"]
        # face boxes and the mask are the photo's; the output is larger with --upscale
        height, width = seen["pixels"].shape[:2]
        job.faces = [[round(v / s, 5) for v, s in zip(face.box, (width, height, width, height), strict=True)]
                     for face in result.faces]
        write_preview(job.preview("before"), seen["pixels"], self.preview_side)
        write_preview(job.preview("after"), result.image, self.preview_side)
        job.size = result.image.shape[1], result.image.shape[0]
        write_overlay(job.preview("overlay"), result.mask, job.size, self.preview_side)
        job.previews = True
        self._times[self.upscale_of(job)].add(width * height / 1e6, entry.seconds)
        job.status = DONE

    def estimate_for(self, megapixels: float, upscale: int = 1) -> float | None:
        seconds = self._times[upscale].predict(megapixels)
        return None if seconds is None else round(seconds, 1)

    # ------------------------------------------------------------------------------ shutdown
    def close(self, wait: float = 5.0) -> bool:
        """Stop the worker and delete every session's files.  A photo being restored gets ``wait``
        seconds to finish; after that it is abandoned unwritten (the worker is a daemon thread).
        True when the worker has stopped, False when it was abandoned in the middle of a photo."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._worker.join(timeout=wait)
        with self._lock:
            for session in list(self.sessions.values()):
                self._end(session)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
        if self._root_lock is not None:
            os.close(self._root_lock)
            self._root_lock = None
        return not self._worker.is_alive()

"""The batch's JSON report (``--report``): its lines (``Entry``, with what was done to each photo:
``restoration_record``), the whole (``BatchReport``), which file may be written as one (``report_problem``,
``is_report``), and writing it while the batch runs (``ReportWriter``), locked against a second batch
(``ReportLock``)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oldphoto import __version__, outputs
from oldphoto.batch.signals import EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_TERMINATED
from oldphoto.io import atomic_write
from oldphoto.reasons import ReasonCode

OK, SKIPPED, FAILED, NOT_PROCESSED = "ok", "skipped", "failed", "not processed"
REPORT_INTERVAL = 1.0  # seconds between two rewrites of the report while the batch runs
# the layout of the report (its "report_format"): raised when a field changes meaning or goes; fields added
# leave it as it is (docs/files-and-batches.md, "Report")
REPORT_FORMAT = 1


@dataclass
class Entry:
    """One line of the report.  A reason comes with its code, for programs (``ReasonCode``): given together
    to the constructor or to ``mark``, and refused without it (a reader branches on the code; a reason
    without one would go unnoticed until a reader met it)."""

    input: str
    status: str
    reason: str = ""  # why it was skipped, failed or not processed, a sentence for people ("" when ok)
    reason_code: ReasonCode | None = None  # the same, as a code that does not change (None when ok)
    output: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    faces: int | None = None
    models: dict[str, str] = field(default_factory=dict)
    restoration: dict[str, Any] | None = None  # what was done: path, repaired area, fidelity, defects
    mask: str | None = None  # the saved defect mask (--save-mask; a skipped photo: its earlier one)
    sha256: str | None = None  # of the input file's bytes, as its output's provenance says (None: not read)

    def __post_init__(self) -> None:
        self.__dict__["reason_code"] = _checked_code(self.reason, self.reason_code)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("reason", "reason_code") and "reason_code" in self.__dict__:  # (set by __init__ first)
            raise AttributeError(f"Entry.{name} is set with the reason and its code together: Entry.mark")
        super().__setattr__(name, value)

    def mark(self, status: str, code: ReasonCode | None, reason: str) -> None:
        """Set the entry's status, and why, for people (``reason``) and for programs (``code``)."""
        self.__dict__.update(status=status, reason_code=_checked_code(reason, code), reason=reason)


def _checked_code(reason: str, code: ReasonCode | str | None) -> ReasonCode | None:
    """``code`` as a ``ReasonCode`` (one of the table), given with a reason and only with one."""
    if not reason and code is None:
        return None
    if not reason or code is None:
        raise ValueError(f"a report entry's reason comes with its code (ReasonCode): {reason!r}, {code!r}")
    return ReasonCode(code)


# how every report BatchReport.write makes begins (json.dumps with indent=2)
_REPORT_START = re.compile(rb'\A\{\s*"software": "oldphoto ')


@dataclass
class BatchReport:
    entries: list[Entry]
    started: float
    finished: float
    interrupted: bool = False
    fatal: str | None = None     # why the batch stopped early (SetupError), if it did
    terminated: bool = False     # stopped by SIGTERM or SIGHUP
    running: bool = False        # a snapshot written while the batch runs
    hangup: bool = False         # ... by SIGHUP: the terminal was closed
    options: dict[str, Any] | None = None  # the restore options, as the outputs' provenance records them

    def counts(self) -> dict[str, int]:
        counts = {OK: 0, SKIPPED: 0, FAILED: 0, NOT_PROCESSED: 0}
        for entry in self.entries:
            counts[entry.status] += 1
        return counts

    @property
    def exit_code(self) -> int:
        if self.terminated:
            return EXIT_HANGUP if self.hangup else EXIT_TERMINATED
        if self.interrupted:
            return EXIT_INTERRUPTED
        return 0 if self.counts()[FAILED] == 0 and self.fatal is None else 1

    def summary(self) -> str:
        c = self.counts()
        text = (f"{len(self.entries)} inputs: {c[OK]} restored, {c[SKIPPED]} skipped, {c[FAILED]} failed"
                f" in {self.finished - self.started:.1f} s")
        if self.fatal:
            text += f"; stopped, {c[NOT_PROCESSED]} not processed: {self.fatal}"
        elif self.terminated:
            text += (f"; terminated ({'SIGHUP: the terminal was closed' if self.hangup else 'SIGTERM'}), "
                     f"{c[NOT_PROCESSED]} not processed")
        elif c[NOT_PROCESSED] or self.interrupted:
            text += f"; interrupted, {c[NOT_PROCESSED]} not processed"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "software": f"oldphoto {__version__}",
            "report_format": REPORT_FORMAT,
            # what the relative paths below (inputs, outputs, masks, as given) are relative to
            "directory": os.getcwd(),
            "started": _timestamp(self.started),
            "finished": None if self.running else _timestamp(self.finished),
            "running": self.running,
            "interrupted": self.interrupted,
            "terminated": self.terminated,
            "fatal": self.fatal,
            "exit_code": None if self.running else self.exit_code,
            "summary": self.counts(),
            "options": self.options,
            "inputs": [dataclasses.asdict(e) for e in self.entries],
        }

    def write(self, path: Path) -> None:
        text = json.dumps(self.to_json(), indent=2, default=str)
        atomic_write(Path(path), lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def _timestamp(seconds: float) -> str:
    """Local time with its offset, as RFC 3339 writes it (``2026-12-07T01:19:23+01:00``): the colon is what
    JSON tools and Python before 3.11 need to parse it."""
    return dt.datetime.fromtimestamp(seconds).astimezone().replace(microsecond=0).isoformat()


def report_problem(path: Path) -> str | None:
    """Why ``--report path`` must not be written, or None.  Only an earlier report (or an empty file) is
    replaced: a photo (an input of the batch, say) or someone's own file given there by mistake is not."""
    if path.is_dir():
        return f"--report {path} is a folder"
    if path.exists() or path.is_symlink():
        if not path.is_file():
            return f"--report {path} exists and is not a plain file"
        try:
            with open(path, "rb") as fh:
                head = fh.read(256)
        except OSError as exc:
            return f"cannot read the existing report {path} ({exc.strerror or exc})"
        if head and _REPORT_START.match(head) is None:
            return (f"--report {path} exists and is not an oldphoto report: it is left untouched; "
                    "choose another name")
    # (the report's real folder: a report given as a link is written through it, beside its file)
    problem = outputs.unwritable(path.resolve().parent, probe=True)
    return f"cannot write the report {path}: {problem}" if problem else None


def is_report(path: Path) -> bool:
    """Whether ``path`` is a report oldphoto wrote (``--report``, whatever its name now): read from its
    first bytes, for ``.json`` files only."""
    if path.suffix.lower() != ".json":
        return False
    try:
        with open(path, "rb") as fh:
            return _REPORT_START.match(fh.read(256)) is not None
    except OSError:
        return False


# scratch-like strokes adding up to this many short sides, left alone by --scratches auto, are worth a note
NOTE_STROKE_LENGTH = 0.5
# ... and so are strokes --scratches auto repaired on evidence under this many short sides (no tear among
# them): scene lines pass for scratches there too.  On undamaged photos the evidence of the strokes auto
# repaired reached 2.45 short sides (the corpus' 37 held-out photos and their gray copies at 1024 px: a
# hedgehog in grass; scikit-image's coffee cup in sepia 2.24, its saucer's and spoon's highlights); the
# scratched portraits have 1.04 and 1.43.
NOTE_DOUBT_LENGTH = 3.0
# --unfade stretching the tones by less than this (2 %) changed nothing a person would see: said so
NOTE_UNFADE_GAIN = 1.02


def restoration_record(result: Any, user_mask: bool = False) -> dict[str, Any] | None:
    """What the restorer did to a photo, for the report and the provenance tag (None: not known).
    ``user_mask``: the restorer was given the user's mask (``--mask-dir``, the web page's marks)."""
    path = getattr(result, "path", None)
    if path is None:
        return None
    mask = getattr(result, "mask", None)
    defects = getattr(result, "defects", None)  # None: not looked for (--scratches off)
    record: dict[str, Any] = {
        "path": path,
        "repaired_fraction": round(float(mask.mean()), 6) if mask is not None else 0.0,
        "fidelity": getattr(result, "fidelity", None),
        # whose the repaired areas are: the detector's, the user's, or nobody's
        "mask": "none" if defects is None else "user" if user_mask else "detected",
    }
    gain = getattr(result, "unfade_gain", None)
    if gain is not None:  # --unfade: how much the tones were stretched (1: not at all)
        record["unfade_gain"] = round(gain, 3)
        # (the progress line and the web page say so)
        record["unfade_stretched_nothing"] = gain < NOTE_UNFADE_GAIN
    if defects is not None and not user_mask:  # (the user's mask is repaired as given: nothing weighed)
        # what --scratches auto weighs: stroke_length (in short sides of the photo) less its dark part
        # and the short bright strokes' length when they share a direction (stroke_alignment)
        record["defects"] = {"strokes": defects.strokes, "stroke_length": round(defects.stroke_length, 3),
                             "dark_length": round(defects.dark_length, 3),
                             "stroke_alignment": round(defects.stroke_alignment, 3),
                             "specks": defects.specks, "blobs": defects.blobs, "dust": defects.dust,
                             # --dust repaired the dust alone: the counts above were left as they are
                             "dust_only": defects.dust_only,
                             "print_edges_left": defects.edges,
                             "left_as_content": defects.content,
                             # nothing (or only dust) repaired, but strokes enough to tell the user
                             # (the progress line and the web page say it)
                             "lines_left_alone": (path == "quality" or defects.dust_only)
                             and defects.stroke_length >= NOTE_STROKE_LENGTH,
                             # repaired for its lines alone, on evidence undamaged photos reach too
                             # (not known of --compat official's mask, which is not judged by shape)
                             "lines_in_doubt": path != "quality" and not defects.dust_only
                             and getattr(defects, "judged", True)
                             and not defects.blobs and defects.evidence < NOTE_DOUBT_LENGTH}
    return record


class ReportLock:
    """An exclusive advisory lock (POSIX ``flock``) held for the batch's lifetime on a hidden file beside
    its report (``.NAME.lock``), so that a second batch given the same ``--report`` (another terminal, a
    cron job overlapping the previous one) is refused at once, rather than the two rewriting the report in
    turn and the last writer's lines alone being left.  The report itself cannot carry the lock: each
    snapshot renames a new file over it.  The lock file is found beside the report's real file, so a report
    reached through a link, a linked folder or a bind mount is the same report.  The system releases the
    lock with its process (even SIGKILL; the file is then left, and reused); ``release`` removes the file.

    Without ``flock`` (Windows) nothing is locked: as before, the batch that writes last wins.  Where the
    lock file cannot be made or locked (a read-only folder, a network share refusing locks) the batch runs
    without it, with a ``note`` saying so."""

    def __init__(self, report: Path):
        self.report = Path(report).resolve()  # (written through a link: the link stays a link)
        self.path = self.report.with_name(f".{self.report.name}.lock")
        self.fd: int | None = None
        self.note: str | None = None
        self.given = Path(report)
        try:
            import fcntl  # noqa: F401
            self.lockable = True
        except ImportError:
            self.lockable = False

    @property
    def held(self) -> bool:
        return self.fd is not None

    def take(self) -> str | None:
        """Lock the report.  Why the batch must not run (another batch holds the lock: exit 2), or None."""
        if not self.lockable:
            return None
        import fcntl
        for _ in range(100):  # (each turn: the holder removed the lock file meanwhile; rare)
            try:
                # a report's folder not made yet is made now (the first snapshot would make it): else two
                # batches given a report there would both run unlocked
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # (for writing where it may be: an exclusive flock on an NFS share needs it; else read only,
                # which is all flock needs elsewhere: a lock file another user's killed batch left,
                # readable but not writable, still serves)
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                except PermissionError:
                    fd = os.open(self.path, os.O_RDONLY)
            except OSError as exc:
                self.note = (f"the report {self.given} cannot be locked ({exc.strerror or exc}): a second "
                             "batch given the same --report would not be refused")
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                where = "" if self.report == self.given.absolute() else f" (that is, {self.report})"
                return (f"another oldphoto batch is writing the report {self.given}{where}: it is left to "
                        "that batch; wait until it ends, or give this one another --report")
            except OSError as exc:  # ENOLCK, EOPNOTSUPP: a file system without locks
                os.close(fd)
                with contextlib.suppress(OSError):
                    self.path.unlink()  # (of no use there)
                self.note = (f"the report {self.given} cannot be locked there ({exc.strerror or exc}): a "
                             "second batch given the same --report would not be refused")
                return None
            if self._is_ours(fd):
                self.fd = fd
                return None
            os.close(fd)  # locked a file its holder had just removed: look again
        return None

    def _is_ours(self, fd: int) -> bool:
        """Whether the lock file's name still leads to the file open as ``fd``."""
        try:
            return os.path.samestat(os.stat(self.path), os.fstat(fd))
        except OSError:
            return False

    def release(self) -> None:
        """Remove the lock file and unlock (in that order: a batch that opens the file meanwhile sees it
        gone once it has the lock, and makes a new one)."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            if self._is_ours(self.fd):
                self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self.fd)  # closing releases the lock
        self.fd = None


class ReportWriter:
    """Rewrites the report atomically while the batch runs, so that a batch killed even by SIGKILL leaves a
    usable one.  At most one write per ``REPORT_INTERVAL`` seconds (a resumed batch skips thousands of
    photos a second); a snapshot held back is written by a timer, so a quick photo followed by a long
    one is on disk during the long one.  A failed write is said once, and is not fatal."""

    def __init__(self, path: Path, say: Callable[[str], None]):
        self.path = path
        self.say = say
        self.lock = threading.Lock()
        self.pending: BatchReport | None = None
        self.timer: threading.Timer | None = None
        self.last = float("-inf")
        self.failed = False
        self.ok = True  # whether the latest write succeeded

    def __call__(self, report: BatchReport, force: bool = False) -> None:
        with self.lock:
            self.pending = report
            wait = self.last + REPORT_INTERVAL - time.monotonic()
            if force or wait <= 0:
                if self.timer is not None:
                    self.timer.cancel()
                    self.timer = None
                self._flush(force)
            elif self.timer is None:
                self.timer = threading.Timer(wait, self._timed)
                self.timer.daemon = True
                self.timer.start()

    def _timed(self) -> None:
        with self.lock:
            self.timer = None
            self._flush(False)

    def _flush(self, final: bool) -> None:
        report, self.pending = self.pending, None
        if report is None:
            return
        self.last = time.monotonic()
        try:
            report.write(self.path)
            self.ok = True
        except OSError as exc:
            if final or not self.failed:
                self.say(f"error: cannot write the report {self.path}: {exc}")
            self.failed = True
            self.ok = False

"""``oldphoto restore``: restore many photos, resumably, reporting every file.

The runner core (``run_batch``) takes any ``restore(pixels, mask) -> result`` callable, so it is tested
with a small deterministic image operation; ``register`` wires it to ``oldphoto.pipeline.Restorer``,
which is built lazily (a rerun where every output already exists never loads a model).

Guarantees: one bad photo never stops the batch (a full disk does: the photo whose write found it full
fails, naming its output, and the rest are not attempted); outputs keep relative paths and never
overwrite each other, an input, or a file oldphoto did not make from the same source
(``oldphoto.outputs``); an output already made from the same source is skipped unless ``--overwrite`` (so
a rerun resumes); writes are atomic and leftovers of killed writes are removed on start; a photo that
cannot fit in memory is refused from its header (``oldphoto.footprint``); the first Ctrl-C stops after
the current photo, a second one, SIGTERM or SIGHUP (the terminal closed) aborts it without leaving a
partial file; the report is rewritten as the batch goes, so even a killed batch leaves one, and it is
locked while the batch runs (``ReportLock``), so a second batch given the same report is refused at once
rather than the two replacing each other's lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fnmatch
import gc
import glob
import itertools
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from oldphoto import __version__, footprint, masks, outputs
from oldphoto.cli import show_progress, silence, terminal_fds
from oldphoto.files import name_fits, sha256_file
from oldphoto.io import (
    DEFAULT_JPEG_QUALITY,
    DEFAULT_MAX_PIXELS,
    EXTENSION_FAMILY,
    IMAGE_EXTENSIONS,
    PhotoError,
    atomic_write,
    provenance_record,
    read_photo,
    read_provenance,
    too_small,
    write_photo,
)
from oldphoto.io._metadata import PROVENANCE_KEY, provenance_json
from oldphoto.io._warnings import guarded_warnings
from oldphoto.io.photo import DEFAULT_SUFFIX, FORMAT_FAMILY, SAME_FAMILY, PhotoHeader, normalise_format
from oldphoto.stages.official_sizes import official_size

OK, SKIPPED, FAILED, NOT_PROCESSED = "ok", "skipped", "failed", "not processed"
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_HANGUP = 128 + 1  # SIGHUP (POSIX): the terminal the batch ran in was closed
# the signals that end a batch: Ctrl-C, then those that abort the current photo at once
ENDING_SIGNALS = (signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))
STOP_SIGNALS = (signal.SIGINT, *ENDING_SIGNALS)
REPORT_INTERVAL = 1.0  # seconds between two rewrites of the report while the batch runs


class SetupError(RuntimeError):
    """The restorer itself cannot run (missing weights, bad device): stop, no photo is to blame."""


# a write that fails with one of these found its disk (or quota) full: every later write would fail too
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_ADVICE = "free space and run again: finished photos are kept and skipped"


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


class DiskFull(Exception):
    """Writing ``path`` found no space left on its disk: the batch stops there rather than restore every
    remaining photo only to fail its write.  ``entry``: the photo's failed entry (set by ``_photo_step``)."""

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


class RestoreFn(Protocol):
    """``restore(pixels float32 H×W×3 sRGB [0,1], mask bool H×W | None)`` -> a Result-like object
    (``.image``, optionally ``.faces`` and ``.models``) or a bare image array."""

    def __call__(self, pixels: np.ndarray, mask: np.ndarray | None) -> Any: ...


@dataclass
class Job:
    input: Path
    relative: Path          # where the output goes under the output folder (suffix decided later)
    output: Path | None = None    # planned output (distinct within the batch)
    natural: Path | None = None   # the first name of its candidate sequence (outputs.candidates)


@dataclass
class Entry:
    """One line of the report."""

    input: str
    status: str
    reason: str = ""
    output: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    faces: int | None = None
    models: dict[str, str] = field(default_factory=dict)
    restoration: dict[str, Any] | None = None  # what was done: path, repaired area, fidelity, defects
    mask: str | None = None  # the saved defect mask (--save-mask)


@dataclass
class BatchConfig:
    outdir: Path
    format: str | None = None            # None = same family as the input
    quality: int = DEFAULT_JPEG_QUALITY
    overwrite: bool = False
    strip_metadata: bool = False
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    mask_dir: Path | None = None
    save_mask: bool = False
    options: dict[str, Any] = field(default_factory=dict)   # restore options, for provenance
    models: Callable[[], dict[str, str]] | None = None     # model descriptions when results lack them
    memory_limit: int | None = None      # bytes a photo may need; None = what is available then
    estimate_options: dict[str, Any] | None = None  # restore options the memory estimate assumes

    def restore_options(self) -> dict[str, Any]:
        """The restore options the photos get: those the memory estimate assumes, else the recorded ones."""
        return self.estimate_options if self.estimate_options is not None else self.options


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
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "finished": (None if self.running
                         else time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.finished))),
            "running": self.running,
            "interrupted": self.interrupted,
            "terminated": self.terminated,
            "fatal": self.fatal,
            "exit_code": None if self.running else self.exit_code,
            "summary": self.counts(),
            "inputs": [dataclasses.asdict(e) for e in self.entries],
        }

    def write(self, path: Path) -> None:
        text = json.dumps(self.to_json(), indent=2, default=str)
        atomic_write(Path(path), lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


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


# ------------------------------------------------------------------------------------------ inputs

def _is_glob(spec: str) -> bool:
    return any(ch in spec for ch in "*?[")


def _glob_root(spec: str) -> Path:
    parts = Path(spec).parts
    root = []
    for part in parts:
        if _is_glob(part):
            break
        root.append(part)
    return Path(*root) if root else Path(".")


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


def collect_inputs(specs: Sequence[str], recursive: bool = False, exclude: Path | None = None,
                   report: Path | None = None, outdir: Path | None = None) -> tuple[list[Job], list[Entry]]:
    """Expand files, folders and globs into jobs; non-image files in folders become 'skipped' entries,
    missing paths 'failed' ones.  Relative output paths: a file's name, a folder's relative path, or a
    glob match's path relative to the glob's fixed prefix.  Files that folders and globs find under
    ``exclude`` (a resolved folder: the output folder) are left out, and so are the batch's own
    ``report`` and any earlier report of oldphoto's (``is_report``): a report written into the input
    folder is not listed as a skipped input by every later run.  Other non-images (a scanner's
    ``.json``, notes) are still listed, as a user may have meant them for photos.  With ``recursive``, links
    to folders are followed (not into ``outdir``, the resolved output folder, or ``exclude``)."""
    jobs: list[Job] = []
    entries: list[Entry] = []
    seen: set[Path] = set()
    own_report = report.resolve() if report is not None else None

    def ours(path: Path) -> bool:
        return path.resolve() == own_report or is_report(path)

    def add(path: Path, relative: Path, from_folder: bool) -> None:
        key = path.resolve()
        if key in seen or (from_folder and exclude is not None and key.is_relative_to(exclude)):
            return
        seen.add(key)
        if from_folder and path.suffix.lower() not in IMAGE_EXTENSIONS:
            reason = f"not an image file (extension {path.suffix or 'none'})"
            entries.append(Entry(str(path), SKIPPED, reason))
            return
        jobs.append(Job(path, relative))

    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            skip = [d for d in (outdir, exclude) if d is not None]  # (two paths: a bind mount joins them)
            children = sorted(_walk(path, skip, entries) if recursive else path.iterdir())
            visible = [c for c in children
                       if not any(part.startswith(".") for part in c.relative_to(path).parts)]
            files = [c for c in visible if c.is_file() and not ours(c)]
            entries.extend(_broken_links(visible))
            # a FIFO, socket or device named like a photo (opening it could block): said, not left out
            entries.extend(Entry(str(c), FAILED, "not a regular file") for c in visible
                           if c.suffix.lower() in IMAGE_EXTENSIONS and c.exists() and not c.is_file()
                           and not c.is_dir())
            for child in files:
                add(child, child.relative_to(path), from_folder=True)
            if not any(c.suffix.lower() in IMAGE_EXTENSIONS
                       and (exclude is None or not c.resolve().is_relative_to(exclude)) for c in files):
                # an empty folder, or one whose photos are in sub-folders, is not a batch that went well
                folders = not recursive and any(c.is_dir() and not c.name.startswith(".") for c in children)
                entries.append(Entry(spec, FAILED, "no photos in this folder" + (
                    " (its photos may be in its sub-folders: add -r to look in them)" if folders else "")))
        elif path.exists() and not path.is_file():
            # a FIFO or a device: opening or hashing it would block or never end
            entries.append(Entry(spec, FAILED, "not a regular file"))
        elif path.exists():
            add(path, Path(path.name), from_folder=False)
        elif _is_glob(spec):
            matches = sorted(glob.glob(spec, recursive=recursive))
            if not matches:
                entries.append(Entry(spec, FAILED, "no file matches this pattern" + (
                    "" if recursive or "**" not in spec else f" ({STARSTAR_NOTE})")))
            root = _glob_root(spec)
            entries.extend(_broken_links(Path(m) for m in matches))
            for match in matches:
                m = Path(match)
                if m.is_file() and not ours(m):
                    add(m, m.relative_to(root) if m.is_relative_to(root) else Path(m.name), from_folder=True)
        else:
            entries.append(Entry(spec, FAILED, "no such file or directory"))
    return jobs, entries


def _walk(root: Path, skip: Sequence[Path], entries: list[Entry]) -> list[Path]:
    """Everything under ``root`` (``-r``), following links to folders (``scans/1950 -> /archive/1950``:
    rglob leaves them out, and their photos were silently not restored).  Each real folder is walked
    once, under its own name where it is inside ``root`` (links are followed after the real folders),
    and a link to a folder holding ``root`` (a loop) or inside one of ``skip`` (the output folder, under one
    or more paths: restorations are no inputs) is not.  A
    sub-folder that cannot be listed is a failed entry of ``entries`` (rglob left it out without a word)."""
    found: list[Path] = []
    visited: set[Path] = set()
    links: list[Path] = []

    def walk(folder: Path) -> None:
        real = folder.resolve()
        if real in visited:
            return
        visited.add(real)
        try:
            children = sorted(folder.iterdir())
        except OSError as exc:
            if folder == root:
                raise
            entries.append(Entry(str(folder), FAILED, f"cannot read this folder ({exc.strerror or exc})"))
            return
        for child in children:
            found.append(child)
            if child.is_dir() and not child.name.startswith("."):
                if child.is_symlink():
                    links.append(child)
                else:
                    walk(child)

    root_real = root.resolve()
    walk(root)
    while links:
        real = (link := links.pop(0)).resolve()
        if not root_real.is_relative_to(real) and not any(real.is_relative_to(s) for s in skip):
            walk(link)
    return found


def _broken_links(paths: Iterable[Path]) -> list[Entry]:
    """A failed entry for each photo among ``paths`` that is a link to nothing (a moved or unmounted
    archive): said, not silently left out of the batch as if it were not a file."""
    return [Entry(str(p), FAILED, "broken link: the file it points to is missing")
            for p in paths if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_symlink() and not p.exists()]


# without -r, glob's `**` is a plain `*` (one folder level): said, as a batch that finds some photos
# and silently leaves out those above and below that level looks like a batch that went well
STARSTAR_NOTE = "without -r, ** matches one folder level only; add -r to look in every sub-folder"


def _content_family(path: Path) -> str | None:
    """The format family by content (header only), so a misnamed file gets the right output name."""
    import warnings

    from PIL import Image

    try:
        with guarded_warnings():
            warnings.simplefilter("ignore")  # (a bomb's, a damaged EXIF's: read_photo says what matters)
            with Image.open(path) as image:
                return FORMAT_FAMILY.get(image.format or "")
    except Exception:
        return EXTENSION_FAMILY.get(path.suffix.lower())


def plan_outputs(jobs: list[Job], outdir: Path, fmt: str | None) -> None:
    """Give every job a distinct output path (case-insensitively distinct, for macOS/Windows disks).

    The input whose own name already is the output name keeps it (a.png -> a.png); the others get their
    original extension in the name (a.jpg -> a_jpg.png).  Deterministic, so reruns resume correctly.
    """
    family_of = {}
    for job in jobs:
        family = normalise_format(fmt) or SAME_FAMILY.get(_content_family(job.input) or "", "png")
        family_of[id(job)] = family
    wanted: dict[str, list[Job]] = {}
    for job in jobs:
        family = family_of[id(job)]
        own = job.input.suffix if EXTENSION_FAMILY.get(job.input.suffix.lower()) == family else None
        job.output = job.natural = outdir / job.relative.with_suffix(own or DEFAULT_SUFFIX[family])
        wanted.setdefault(str(job.output).lower(), []).append(job)
    taken = {key for key, claimants in wanted.items() if len(claimants) == 1}
    for key, claimants in sorted(wanted.items()):
        if len(claimants) == 1:
            continue
        claimants.sort(key=lambda j: (j.input.suffix.lower() != j.output.suffix.lower(), str(j.relative)))
        taken.add(key)
        for job in claimants[1:]:
            # (a name too long for a file is planned only where no other is left: the photo then fails,
            # saying so, rather than share a name with another input)
            for candidate in itertools.chain(outputs.candidates(job.output, job.input.suffix),
                                             outputs.candidates(job.output, job.input.suffix, fitting=False)):
                if str(candidate).lower() not in taken and str(candidate).lower() not in wanted:
                    break
            taken.add(str(candidate).lower())
            job.output = candidate


def find_mask(mask_dir: Path, job: Job) -> Path | None:
    """The user mask for a job, beside the same relative folder first, PNG preferred:

    * a mask ``--save-mask`` wrote for this very input (``<stem>.mask.*``, or ``<stem>_<...>.mask.*``
      when outputs of one stem collided; its provenance names the input), so that an output folder can
      be given back as ``--mask-dir`` once its masks are edited, and another input's mask is not taken;
    * else, among the files oldphoto did not write (a restored photo is never a mask), ``<stem>.mask.*``,
      then ``<stem>.*``, by exact stem: ``a.2.png`` is the mask of ``a.2.jpg``, not of ``a.jpg``; the
      photo itself is never its own mask (masks kept beside the photos, ``--mask-dir`` their folder).
    """
    stem, source = glob.escape(job.input.stem), job.relative.as_posix()
    itself = job.input.resolve()
    for folder in (mask_dir / job.relative.parent, mask_dir):
        saved = [p for p in _images(folder, stem + ".mask") + _images(folder, stem + "_*.mask")
                 if (_provenance_of(p) or {}).get("source", {}).get("path") == source]
        if saved:
            return _png_first(saved)
        for name in (stem + ".mask", stem):
            own = [p for p in _images(folder, name) if p.resolve() != itself and _provenance_of(p) is None]
            if own:
                return _png_first(own)
    return None


def _images(folder: Path, stem: str) -> list[Path]:
    """The image files in ``folder`` whose stem matches the glob pattern ``stem``, in name order."""
    return sorted(p for p in folder.glob(stem + ".*")
                  if p.suffix.lower() in IMAGE_EXTENSIONS and fnmatch.fnmatchcase(p.stem, stem))


def _provenance_of(path: Path) -> dict[str, Any] | None:
    try:
        return read_provenance(path)
    except Exception:  # not readable as ours: a user's file (read_mask says what is wrong with it)
        return None


def _png_first(paths: list[Path]) -> Path:
    return next((p for p in paths if p.suffix.lower() == ".png"), paths[0])


def read_mask(path: Path, size: tuple[int, int], max_pixels: int | None) -> np.ndarray:
    """A bool H×W mask (white = defect), oriented like the displayed photo, of exactly ``size``."""
    mask_photo = read_photo(path, max_pixels=max_pixels)
    if mask_photo.size != size:
        raise PhotoError(path, f"mask is {mask_photo.size[0]}x{mask_photo.size[1]} but the photo is "
                               f"{size[0]}x{size[1]}")
    return masks.user_mask(mask_photo.pixels, mask_photo.pixels.shape[:2], name=path.name)


# ------------------------------------------------------------------------------------------ progress

class Progress:
    """A tqdm bar with ETA on a terminal; plain log lines otherwise."""

    STEP_LINES_EVERY = 30.0  # seconds between two lines of a photo's progress when there is no bar

    def __init__(self, total: int, stream=None, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.done = 0
        self.clock = clock
        self._last_step: float | None = None
        self.bar = None
        if show_progress(enabled, self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="photo", file=self.stream, dynamic_ncols=True)

    def log(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def step(self, what: str, fraction: float) -> None:
        """How far a long stage of the current photo is (``--upscale`` on a CPU: minutes per photo)."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"{what} {fraction:.0%}")
            return
        now = self.clock()
        if fraction < 1.0 and (self._last_step is None or now - self._last_step >= self.STEP_LINES_EVERY):
            self._last_step = now
            self.log(f"    {what}: {fraction:.0%} of photo {self.done + 1}/{self.total}")

    def update(self, entry: Entry) -> None:
        self._last_step = None
        self.done += 1
        name = Path(entry.input).name
        if self.bar is not None:
            self.bar.set_postfix_str(name[-30:], refresh=False)
            self.bar.update(1)
            if entry.status == FAILED or entry.warnings:
                self.log(self._line(entry))
        else:
            self.log(self._line(entry))

    def _line(self, entry: Entry) -> str:
        head = f"[{self.done}/{self.total}] {entry.status}: {entry.input}"
        if entry.status == OK:
            head += f" -> {entry.output} ({entry.seconds:.1f} s{_repair_note(entry.restoration)})"
        elif entry.reason:
            head += f": {entry.reason}"
        return head + "".join(f"\n    warning: {w}" for w in entry.warnings)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _LogToProgress(logging.Handler):
    """The pipeline's notices (``logging`` warnings: face enhancement off, weights folders mixed) said
    through ``Progress.log``: on a line of their own above the bar, not written into the bar's line."""

    def __init__(self, say: Callable[[str], None]):
        super().__init__()
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.say(self.format(record))
        except Exception:
            self.handleError(record)


# scratch-like strokes adding up to this many short sides, left alone by --scratches auto, are worth a note
NOTE_STROKE_LENGTH = 0.5
# ... and so are strokes --scratches auto repaired on evidence under this many short sides (no tear among
# them): scene lines pass for scratches there too.  On undamaged photos the evidence of the strokes auto
# repaired reached 2.45 short sides (the corpus' 37 held-out photos and their gray copies at 1024 px: a
# hedgehog in grass; scikit-image's coffee cup in sepia 2.24, its saucer's and spoon's highlights); the
# scratched portraits have 1.04 and 1.43.
NOTE_DOUBT_LENGTH = 3.0


def _repair_note(record: dict[str, Any] | None) -> str:
    """What the photo's progress line says about its defects: how much was repaired, or that --scratches
    auto left scratch-like lines alone (a user who sees scratches in the result knows what to do)."""
    if not record:
        return ""
    note = ""
    if record.get("path") in ("scratch", "hr"):  # (with --dust, the dust alone may have been repaired)
        note = f"; {100 * record.get('repaired_fraction', 0.0):.2f} % repaired"
    if (record.get("defects") or {}).get("lines_left_alone"):
        note += "; scratch-like lines left alone, they may be the scene's: --scratches on repairs them"
    if (record.get("defects") or {}).get("lines_in_doubt"):
        note += ("; some lines repaired may be the scene's (highlights, wires, branches): look at them, "
                 "--scratches off keeps them")
    return note


# ------------------------------------------------------------------------------------------ runner

def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")  # only if the restorer already loaded it
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom is not None and isinstance(exc, oom):
        return True
    # Apple MPS reports running out of memory as a plain RuntimeError
    return isinstance(exc, RuntimeError) and str(exc).startswith("MPS backend out of memory")


def _free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available() and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def _result_parts(result: Any) -> tuple[np.ndarray, int | None, dict[str, str] | None]:
    if isinstance(result, np.ndarray):
        return result, None, None
    faces = getattr(result, "faces", None)
    models = getattr(result, "models", None)
    return result.image, (len(faces) if faces is not None else None), (dict(models) if models else None)


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
    if defects is not None and not user_mask:  # (with the user's mask the detector did not run)
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


def saved_mask_path(output: Path) -> Path:
    """Where --save-mask puts an output's defect mask: beside it, ``<stem>.mask.png``."""
    return output.with_name(f"{output.stem}.mask.png")


def _mask_paths(output: Path) -> tuple[Path, Path]:
    """``<stem>.mask.png``, then, when another output of that stem (``a.jpg`` beside ``a.tif``) holds it,
    ``<stem>_<suffix>.mask.png``, like the outputs' own collision names."""
    suffix = output.suffix.lstrip(".").lower()
    return saved_mask_path(output), output.with_name(f"{output.stem}_{suffix}.mask.png")


def write_mask(path: Path, mask: np.ndarray | None, size: tuple[int, int],
               provenance: dict[str, Any] | None = None, replace: bool = True) -> None:
    """An 8-bit gray PNG of the displayed photo's size, white = repaired (all black: nothing was).
    ``provenance``: the output's record, in the PNG text chunk the photos use, so that a rerun knows the
    mask for its own (``outputs.leave_alone``) and never replaces a file of the same name it did not write."""
    from PIL import Image, PngImagePlugin

    width, height = size
    pixels = np.zeros((height, width), np.uint8) if mask is None else mask.astype(np.uint8) * 255
    if pixels.shape != (height, width):
        raise ValueError(f"mask is {pixels.shape[1]}x{pixels.shape[0]}, the photo {width}x{height}")
    info = None
    if provenance is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text(PROVENANCE_KEY, provenance_json(provenance))  # iTXt when not Latin-1
    atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG", pnginfo=info),
                 replace=replace)


@dataclass
class Opened:
    """A photo hashed, placed and decoded: the first of ``restore_one``'s three steps, ready to restore."""

    job: Job
    entry: Entry
    source: dict[str, str]      # what the provenance will say the output was made from
    output: Path                # where the output goes (``outputs.decide``)
    photo: Any                  # oldphoto.io.Photo, its pixels still there
    mask: np.ndarray | None     # the user's defect mask (--mask-dir)
    replaces: bool = False      # the output replaces this source's earlier one (--overwrite); else it is new


@dataclass
class Restored:
    """A photo restored, ready to write: the second step's product."""

    opened: Opened
    image: np.ndarray
    repaired: np.ndarray | None  # the mask the restorer repaired (--save-mask only)


@contextlib.contextmanager
def _photo_step(entry: Entry, job: Job) -> Iterator[None]:
    """Turn a step's failure into a 'failed' entry with the reason, and add the step's time to it."""
    started = time.perf_counter()
    try:
        yield
    except PhotoError as exc:
        entry.status, entry.reason = FAILED, exc.reason if exc.path == job.input else str(exc)
    except DiskFull as exc:  # this photo failed; the caller stops the batch
        entry.status, entry.reason = FAILED, str(exc)
        exc.entry = entry
        raise
    except (KeyboardInterrupt, SetupError):
        raise
    except Exception as exc:
        if _is_out_of_memory(exc):
            _free_memory()
            entry.status = FAILED
            entry.reason = f"out of memory ({type(exc).__name__}); try a smaller --max-pixels or tile size"
        else:
            entry.status, entry.reason = FAILED, f"{type(exc).__name__}: {exc}"
    finally:
        entry.seconds = round(entry.seconds + time.perf_counter() - started, 3)
        if entry.status == FAILED:
            entry.output = None


def _changed(path: Path, before: os.stat_result) -> bool:
    """Whether the file at ``path`` is no longer the one ``before`` describes (replaced, or written to)."""
    try:
        now = path.stat()
    except OSError:
        return True
    return (now.st_ino, now.st_dev, now.st_size, now.st_mtime_ns) != (
        before.st_ino, before.st_dev, before.st_size, before.st_mtime_ns)


def _size_checked(guard: footprint.Guard | None, options: dict[str, Any] | None = None
                  ) -> Callable[[PhotoHeader], list[str] | None]:
    """``guard``, after refusing a photo too small to restore (from its header, as a photo's reason rather
    than the restorer's ValueError) with ``options``."""
    def check(header: PhotoHeader) -> list[str] | None:
        small = too_small(header.width, header.height) or _too_small_for_official(header, options or {})
        if small:
            raise PhotoError(header.path, small)
        return guard(header) if guard is not None else None
    return check


def _too_small_for_official(header: PhotoHeader, options: dict[str, Any]) -> str | None:
    """--compat official's scratch path and detector round each side to ×16 (banker's rounding): a side of
    8 px rounds to 0, which the restorer refused as "ValueError: image of 8×8 pixels is too small ..."."""
    if options.get("compat") != "official" or options.get("scratches") == "off":
        return None
    if all(official_size(header.height, header.width, 16)):
        return None
    return (f"too small for --compat official: {header.width}×{header.height} pixels, whose sides it rounds "
            "to multiples of 16 (at least 9×9 are needed; restore it without --compat official or with "
            "--scratches off)")


def open_photo(job: Job, config: BatchConfig, *, reserved: Collection[str] = frozenset(),
               inputs: frozenset[Path] = frozenset(), guard: footprint.Guard | None = None) -> Opened | Entry:
    """Step 1: hash the input, decide where its output goes, decode it (and its user mask).  Returns the
    final entry instead when there is nothing to restore: skipped (already restored) or failed."""
    assert job.output is not None
    entry = Entry(str(job.input), OK, output=str(job.output))
    with _photo_step(entry, job):
        try:
            before = job.input.stat()
            entry.bytes = before.st_size
            source = outputs.source_record(job.relative, sha256_file(job.input))
        except OSError as exc:
            entry.status, entry.reason, entry.output = FAILED, f"cannot read ({exc.strerror or exc})", None
            return entry
        size = outputs.displayed_size(job.input) if config.strip_metadata else None  # (of a stripped output)
        try:
            decision = outputs.decide(job.natural or job.output, job.input, source, reserved=reserved,
                                      own=job.output, inputs=inputs | {job.input.resolve()},
                                      overwrite=config.overwrite, strip_metadata=config.strip_metadata,
                                      size=size)
        except OSError as exc:
            entry.status, entry.reason, entry.output = FAILED, f"cannot place the output: {exc}", None
            return entry
        entry.output = str(decision.output)
        entry.warnings.extend(decision.notes)
        if not decision.write:
            entry.status = SKIPPED
            entry.reason = "already restored from this source (use --overwrite to redo it)"
            names = [path for path in _mask_paths(decision.output) if name_fits(path.name)]
            if config.save_mask and names and not any(path.exists() for path in names):
                # (an earlier run without --save-mask: the mask is made only with the restoration)
                entry.reason = ("already restored from this source, without its mask (use --overwrite to "
                                "redo it with its mask)")
            return entry
        # the output folder was checked before the batch, its sub-folders only here: one that is read-only
        # (another mount) or a plain file fails the photo now, not after restoring it only to fail its write
        problem = outputs.unwritable(decision.output.parent)
        if problem:
            entry.status, entry.output = FAILED, None
            entry.reason = f"cannot write {decision.output}: {problem}"
            return entry
        photo = read_photo(job.input, max_pixels=config.max_pixels,
                           guard=_size_checked(guard, config.restore_options()))
        if _changed(job.input, before):
            # the pixels may not be those of the bytes hashed: the provenance (and resume) would lie
            raise PhotoError(job.input, "the file changed while it was read (still being scanned or "
                                        "copied?); run again once it is complete")
        entry.width, entry.height = photo.size
        entry.warnings.extend(photo.warnings)
        mask = None
        # --scratches off ignores user masks and detects nothing: no mask is looked for, and none is said
        # to be missing with "defects detected automatically"
        scratches = config.restore_options().get("scratches")
        if config.mask_dir is not None and scratches != "off":
            mask_path = find_mask(config.mask_dir, job)
            if mask_path is None:
                entry.warnings.append(f"no mask named {job.input.stem}.* in {config.mask_dir}; "
                                      "defects detected automatically")
            else:
                mask = read_mask(mask_path, photo.size, config.max_pixels)
                try:  # said here, naming the mask's file, rather than by the restorer
                    masks.check_marked_share(mask)
                except ValueError as exc:
                    raise PhotoError(mask_path, str(exc)) from None
        return Opened(job, entry, source, decision.output, photo, mask, replaces=decision.replaces)
    return entry  # failed while decoding


def restore_photo(work: Opened, restore: RestoreFn, config: BatchConfig) -> Restored | Entry:
    """Step 2: run the restorer (the failed entry instead if it fails on this photo; ``SetupError``, when
    the restorer itself cannot run, is raised)."""
    entry = work.entry
    with _photo_step(entry, work.job):
        pixels = work.photo.pixels
        work.photo.release_pixels()  # the restorer holds the only input copy; freed once it returns
        mask, work.mask = work.mask, None
        user_mask = mask is not None
        result = restore(pixels, mask)
        del pixels, mask
        image, faces, models = _result_parts(result)
        entry.restoration = restoration_record(result, user_mask)
        repaired = getattr(result, "mask", None) if config.save_mask else None
        del result  # intermediate images of the result (e.g. before faces) are freed before writing
        if models is None and config.models is not None:
            models = config.models()
        entry.faces, entry.models = faces, models or {}
        return Restored(work, image, repaired)
    return entry


@contextlib.contextmanager
def _disk_full_names(path: Path) -> Iterator[None]:
    """A write of ``path`` that finds the disk full raises ``DiskFull`` naming it (the OSError names at
    most the temporary file)."""
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(path, exc) from exc
        raise


def write_restored(work: Restored, config: BatchConfig, *, reserved: Collection[str] = frozenset()) -> Entry:
    """Step 3: write the restoration (and --save-mask's mask) atomically, with its provenance.  A disk
    found full raises ``DiskFull`` (its ``entry``: this photo, failed; nothing of it is left on disk)."""
    opened = work.opened
    entry = opened.entry
    with _photo_step(entry, opened.job):
        record = provenance_record(entry.models, config.options, source=opened.source,
                                   restoration=entry.restoration)
        image, work.image = work.image, None
        for _ in range(RACE_TRIES):
            try:
                # a name found free is taken only if still free: never over a file another batch writing
                # into this folder (or a person) put there while this photo was restored
                with _disk_full_names(opened.output):
                    entry.warnings.extend(write_photo(opened.output, image, like=opened.photo,
                                                      format=config.format, quality=config.quality,
                                                      provenance=record, strip_metadata=config.strip_metadata,
                                                      replace=opened.replaces))
                break
            except FileExistsError:
                if not _placed_again(opened, entry, config, reserved):
                    return entry  # (restored meanwhile by another batch: skipped)
        else:
            raise OSError(f"{opened.output}: other files kept appearing at the names this photo's output "
                          "took while it was written")
        del image
        if config.save_mask:
            refused = []
            for target in _mask_paths(opened.output):
                why = (f"{target.name} is another photo's output" if str(target).lower() in reserved
                       else f"{target.name} is too long a file name" if not name_fits(target.name)
                       else outputs.leave_alone(target, opened.source, unmarked_ours=config.strip_metadata,
                                                size=opened.photo.size))
                if why:  # never replace another input's output, or a file not made from this source
                    refused.append(why)
                    continue
                try:
                    with _disk_full_names(target):
                        write_mask(target, work.repaired, opened.photo.size,
                                   provenance=None if config.strip_metadata else record,
                                   replace=target.exists())
                except FileExistsError:  # (put there meanwhile, by another batch or a person)
                    refused.append(f"{target} appeared while this photo was restored: left untouched")
                    continue
                except BaseException:
                    # the photo fails (or, aborted, is not processed) whole: a rerun makes it again, with
                    # its mask, rather than skip it as restored without one (and its failed entry does
                    # not stand beside a restored photo on disk)
                    with contextlib.suppress(OSError):
                        opened.output.unlink()
                    raise
                entry.mask = str(target)
                break
            else:
                entry.warnings.append("mask not saved: " + "; ".join(refused))
    return entry


# writes of one photo whose free name was taken meanwhile, each time by another file, before it fails
RACE_TRIES = 5


def _placed_again(opened: Opened, entry: Entry, config: BatchConfig, reserved: Collection[str]) -> bool:
    """A file appeared at ``opened.output`` while the photo was restored: decide again where the output goes.
    One made from this very source (a second batch of the same photos, a retried cluster task) is
    replaced; another is left untouched, said, and the next free name taken.  False: an output of this
    source is there now, the photo is skipped."""
    if outputs.leave_alone(opened.output, opened.source, unmarked_ours=config.strip_metadata,
                           size=opened.photo.size) is None:
        opened.replaces = True
        return True
    entry.warnings.append(f"{opened.output} appeared while this photo was restored (another batch writing "
                          "into this folder?): left untouched")
    job = opened.job
    decision = outputs.decide(job.natural or job.output, job.input, opened.source, reserved=reserved,
                              own=job.output, inputs=frozenset({job.input.resolve()}),
                              overwrite=config.overwrite, strip_metadata=config.strip_metadata,
                              size=opened.photo.size)
    entry.output = str(decision.output)
    if not decision.write:
        entry.status = SKIPPED
        entry.reason = "restored meanwhile by another batch writing into this folder"
        return False
    opened.output, opened.replaces = decision.output, decision.replaces
    return True


def restore_one(job: Job, restore: RestoreFn, config: BatchConfig, *, reserved: Collection[str] = frozenset(),
                inputs: frozenset[Path] = frozenset(), guard: footprint.Guard | None = None) -> Entry:
    """Read, restore and write one photo; every failure becomes a 'failed' entry with the reason.

    ``reserved``: lower-cased planned outputs of the batch's jobs (mapped to their inputs, an earlier
    run's output is found again where another input's is planned now); ``inputs``: their resolved
    inputs (see ``outputs.decide``); ``guard``: the memory/time guard run on the header before decoding.  The
    three steps (``open_photo``, ``restore_photo``, ``write_restored``) run apart on a cluster
    (``oldphoto.cluster``).
    """
    step: Opened | Restored | Entry = open_photo(job, config, reserved=reserved, inputs=inputs, guard=guard)
    if isinstance(step, Opened):
        step = restore_photo(step, restore, config)
    if isinstance(step, Restored):
        step = write_restored(step, config, reserved=reserved)
    return step


def run_batch(jobs: list[Job], restore: RestoreFn, config: BatchConfig, *,
              pre_entries: Sequence[Entry] = (), progress: Progress | None = None,
              stop: threading.Event | None = None, busy: threading.Event | None = None,
              on_progress: Callable[[BatchReport], None] | None = None) -> BatchReport:
    """Process ``jobs`` in order.  ``stop`` set (first Ctrl-C) -> finish the current photo, mark the
    rest 'not processed'; KeyboardInterrupt inside a photo (second Ctrl-C, SIGTERM) -> that photo too.

    ``busy`` is set while a photo is processed (signal handlers raise only then);  ``on_progress`` gets
    a snapshot of the report (inputs not reached yet marked 'not processed') before the first photo and
    after each one.
    """
    started = time.time()
    if any(job.output is None for job in jobs):
        plan_outputs(jobs, config.outdir, config.format)
    reserved = {str(job.output).lower(): job.input for job in jobs}  # (with whose output each is)
    inputs = frozenset(job.input.resolve() for job in jobs)
    guard = footprint.Guard(options=config.restore_options(), limit=config.memory_limit,
                            on_long=progress.log if progress is not None else None)
    entries = list(pre_entries)
    if progress is not None:
        for entry in pre_entries:
            progress.update(entry)
    interrupted = False
    fatal = None

    def snapshot(done: int) -> None:
        if on_progress is not None:
            pending = [Entry(str(j.input), NOT_PROCESSED, "not reached yet: the batch was running when this "
                             "report was written") for j in jobs[done:]]
            on_progress(BatchReport(entries + pending, started, time.time(), interrupted, fatal,
                                    terminated=bool(getattr(stop, "terminated", False)), running=True,
                                    hangup=bool(getattr(stop, "hangup", False))))

    snapshot(0)
    for index, job in enumerate(jobs):
        if stop is not None and stop.is_set():
            interrupted = True
        if interrupted:
            entries.extend(Entry(str(j.input), NOT_PROCESSED, "batch interrupted") for j in jobs[index:])
            break
        try:
            if busy is not None:
                busy.set()
            entry = restore_one(job, restore, config, reserved=reserved, inputs=inputs, guard=guard)
        except KeyboardInterrupt:
            interrupted = True
            entry = Entry(str(job.input), NOT_PROCESSED, "interrupted while processing; no output written")
        except SetupError as exc:
            fatal = str(exc)
            entries.extend(Entry(str(j.input), NOT_PROCESSED, fatal) for j in jobs[index:])
            if progress is not None:
                progress.log(f"error: {fatal}")
            break
        except DiskFull as exc:  # every later write would fail the same way: stop, the rest not attempted
            fatal = exc.fatal
            assert exc.entry is not None
            entries.append(exc.entry)
            if progress is not None:
                progress.update(exc.entry)
            entries.extend(Entry(str(j.input), NOT_PROCESSED, f"not attempted: {fatal}")
                           for j in jobs[index + 1:])
            break
        finally:
            if busy is not None:
                busy.clear()
        entries.append(entry)
        if entry.status == OK and entry.width and entry.height:
            guard.record(entry.width * entry.height / 1e6, entry.seconds)
        if progress is not None:
            progress.update(entry)
        snapshot(index + 1)
    interrupted = interrupted or (stop is not None and stop.is_set())
    return BatchReport(entries, started, time.time(), interrupted, fatal,
                       terminated=bool(getattr(stop, "terminated", False)),
                       hangup=bool(getattr(stop, "hangup", False)))


class StopFlag(threading.Event):
    """Set by the first Ctrl-C, or by SIGTERM or SIGHUP (then ``terminated``; ``hangup`` for SIGHUP)."""

    terminated = False
    hangup = False


@dataclass
class _SignalHandler:
    """First Ctrl-C: set ``stop`` and say so; second Ctrl-C: abort the current photo (KeyboardInterrupt);
    SIGTERM (a shutdown, a scheduler, ``kill``; SIGKILL usually follows soon) or SIGHUP (POSIX: the
    terminal was closed): both at once.  A SIGHUP ignored when the batch starts (``nohup``) stays ignored;
    once the terminal is gone, what the batch would still write to it goes to the null device instead
    (writes there fail, and would end the batch before its report).

    Exceptions are raised only while ``busy`` (a photo is being processed, where ``run_batch`` turns them
    into a 'not processed' entry); between photos the flag alone stops the batch, so the report is
    always written.
    """

    stop: StopFlag
    say: Callable[[str], None]
    busy: threading.Event = field(default_factory=threading.Event)
    previous: dict[int, Any] = field(default_factory=dict)
    terminals: list[int] = field(default_factory=list)  # stdout and stderr, where they are terminals
    # a cluster batch cannot finish "the current photo" (many are in flight): the first Ctrl-C aborts
    abort_at_once: bool = False

    def __enter__(self) -> _SignalHandler:
        if threading.current_thread() is threading.main_thread():
            self.terminals = terminal_fds()
            for signum in STOP_SIGNALS:
                if signum != signal.SIGINT and signal.getsignal(signum) is signal.SIG_IGN:
                    continue  # (nohup)
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _say(self, text: str) -> bool:
        """Whether the terminal, if the text went to one, is still there."""
        try:
            self.say(text)
        except RuntimeError:  # the signal came in the middle of a write to the same stream
            pass
        except OSError:  # EIO: the terminal is gone
            return False
        return True

    def _handle(self, signum, frame) -> None:
        if signum in ENDING_SIGNALS:
            hangup = signum != signal.SIGTERM
            self.stop.terminated = True
            self.stop.hangup = self.stop.hangup or hangup
            self.stop.set()
            there = self._say(f"terminated ({signal.Signals(signum).name}): the "
                              + ("photos in progress are" if self.abort_at_once else "current photo is")
                              + " abandoned, nothing half-written")
            if hangup and not there:
                silence(self.terminals)
        elif self.abort_at_once:
            self.stop.set()
            self._say("interrupt: stopping; the photos in progress are abandoned, nothing half-written "
                      "(a rerun resumes)")
        elif not self.stop.is_set():
            self.stop.set()
            self._say("interrupt: stopping after the current photo (Ctrl-C again to abort it)")
            return
        if self.busy.is_set():
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        for signum, previous in self.previous.items():
            if previous is not None:
                signal.signal(signum, previous)


# ------------------------------------------------------------------------------------------ CLI

class _LazyRestorer:
    """Builds ``oldphoto.pipeline.Restorer`` on the first photo that needs it."""

    def __init__(self, args):
        self.args = args
        self._restorer = None
        self.options: Any = None
        self.progress: Progress | None = None  # told how far the long stages are

    def _get(self):
        if self._restorer is None:
            from oldphoto.pipeline import RestoreOptions, Restorer

            try:
                self.options = RestoreOptions.from_args(self.args)
                self._restorer = Restorer(self.options)
                if self.progress is not None:
                    self._restorer.on_progress = self.progress.step
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as exc:  # missing weights, unknown device: no photo's fault
                raise SetupError(f"cannot set up the restorer: {exc}") from exc
        return self._restorer

    def __call__(self, pixels: np.ndarray, mask: np.ndarray | None):
        return self._get().restore(pixels, mask=mask)

    def model_info(self) -> dict[str, str]:
        return dict(self._get().model_info())


def _options_record(args) -> dict[str, Any]:
    try:
        from oldphoto.options import RestoreOptions

        options = RestoreOptions.from_args(args)
        return dataclasses.asdict(options) if dataclasses.is_dataclass(options) else dict(vars(options))
    except Exception:
        return {}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "restore", help="restore photos (files, folders, globs)",
        # (argparse's own lists every option: 30 lines above a misspelt value's one-line error)
        usage="%(prog)s [options] INPUT... -o OUTDIR",
        description="Restore old photos. Outputs keep the input's size, orientation, colour profile, "
                    "bit depth and metadata, plus a provenance tag. Photos already restored from the same "
                    "source are skipped, so a rerun resumes an interrupted batch.",
        epilog="Exit status: 0 when every input was restored or skipped on purpose; 1 when any failed (a "
               "missing path, a folder without photos, an unreadable photo); 2 for bad options, or an "
               "output folder or report refused before any photo; 130 when interrupted (Ctrl-C); 143 after "
               "SIGTERM; 129 after SIGHUP (the terminal closed); 141 when the reader of its log went away. "
               "Details: docs/files-and-batches.md.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", dest="outdir", required=True, metavar="OUTDIR",
                        help="output folder (relative paths of folder and glob inputs are kept)")
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    parser.add_argument("--format", default="same", choices=["same", "png", "jpg", "tiff", "webp"],
                        help="output format (default: same family as the input; BMP/GIF become PNG, HEIC "
                             "becomes JPEG)")
    parser.add_argument("--quality", type=int, default=DEFAULT_JPEG_QUALITY, metavar="Q",
                        help=f"JPEG/WebP quality 1-100 (default {DEFAULT_JPEG_QUALITY})")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo photos whose output was made from the same source (a file oldphoto did "
                             "not make from this source is never replaced)")
    parser.add_argument("--strip-metadata", action="store_true",
                        help="write no EXIF, ICC profile, text or provenance (pixels are then plain sRGB; "
                             "the resolution, DPI, is kept, except in WebP, which holds it only in EXIF)")
    parser.add_argument("--mask-dir", type=Path, metavar="DIR",
                        help="user defect masks (white = defect), matched to inputs by file stem")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help=f"refuse images larger than N pixels (decompression-bomb guard; default "
                             f"{DEFAULT_MAX_PIXELS}; 0 = no limit)")
    parser.add_argument("--memory-limit", default="auto", metavar="SIZE",
                        help="refuse photos estimated (from their header, before decoding) to need more "
                             "memory than SIZE, e.g. 8G (default auto: 90 %% of what the system has "
                             "available)")
    parser.add_argument("--report", type=Path, metavar="FILE.json",
                        help="write a JSON report of every input (rewritten as the batch goes; a second "
                             "batch given the same report while this one runs is refused)")
    parser.add_argument("--save-mask", action="store_true",
                        help="also write the repaired defect mask beside each output, as NAME.mask.png "
                             "(white = repaired)")
    parser.add_argument("--no-progress", action="store_true", help="plain log lines even on a terminal")
    from oldphoto import cluster

    cluster.add_arguments(parser)
    from oldphoto.options import RestoreOptions  # torch-free: --help stays fast

    RestoreOptions.add_arguments(parser)
    parser.set_defaults(func=main)


def main(args, restore: RestoreFn | None = None, stream=None) -> int:
    """Run ``oldphoto restore``; ``restore`` replaces the pipeline (tests, other front ends)."""
    stream = stream if stream is not None else sys.stderr
    if not 1 <= args.quality <= 100:
        print("oldphoto restore: --quality must be between 1 and 100", file=stream)
        return 2
    if args.max_pixels < 0:
        print("oldphoto restore: --max-pixels must be 0 (no limit) or a positive pixel count", file=stream)
        return 2
    if args.mask_dir is not None and not args.mask_dir.is_dir():
        print(f"oldphoto restore: --mask-dir {args.mask_dir} is not a folder", file=stream)
        return 2
    from oldphoto.options import argument_problem

    problem = argument_problem(args)
    if problem:
        print(f"oldphoto restore: {problem}", file=stream)
        return 2
    on_cluster = getattr(args, "ray", None) is not None
    if on_cluster:
        from oldphoto import cluster

        problem = cluster.check_arguments(args)
        if problem:
            print(f"oldphoto restore: {problem}", file=stream)
            return 2
    elif restore is None:  # (a cluster's restorers look for weights on their own nodes)
        from oldphoto.options import weights_problem

        problem = weights_problem(args)
        if problem:
            print(f"oldphoto restore: {problem}", file=stream)
            return 2
    memory_limit = None
    if getattr(args, "memory_limit", "auto") not in (None, "auto"):
        from oldphoto.options import parse_memory

        try:
            memory_limit = parse_memory(args.memory_limit)
        except ValueError as exc:
            print(f"oldphoto restore: --memory-limit: {exc}", file=stream)
            return 2
    folder = outputs.check_folder(args.inputs, Path(args.outdir), _glob_root)
    if folder.error:
        print(f"oldphoto restore: {folder.error}", file=stream)
        return 2
    # found out now rather than after restoring every photo (and never over an input or a user's file)
    problem = outputs.unwritable(Path(args.outdir), probe=True)
    if problem and Path(args.outdir).is_file():  # `-o restored.jpg`, `-o photo.jpg`: a file name given
        print(f"oldphoto restore: -o {args.outdir} is a file; -o takes a folder, where the restored photos "
              f"keep their names (e.g. -o {Path(args.outdir).parent / 'restored'})", file=stream)
        return 2
    if problem:
        print(f"oldphoto restore: cannot write into the output folder {args.outdir}: {problem}", file=stream)
        return 2
    problem = report_problem(args.report) if args.report is not None else None
    if args.report is not None and Path(args.outdir).resolve().is_relative_to(args.report.resolve()):
        # (not made yet, the folder would have been taken by the report's file: every photo failed)
        problem = (f"--report {args.report} is where the output folder {args.outdir} goes: give the report "
                   f"a file name, e.g. --report {Path(args.outdir) / 'report.json'}")
    if problem:
        print(f"oldphoto restore: {problem}", file=stream)
        return 2
    report_lock = ReportLock(args.report) if args.report is not None else None
    if report_lock is not None:
        problem = report_lock.take()
        if problem:
            print(f"oldphoto restore: {problem}", file=stream)
            return 2
    try:
        return _restore(args, restore, stream, folder, memory_limit, on_cluster, report_lock)
    finally:
        if report_lock is not None:
            report_lock.release()


def _restore(args, restore: RestoreFn | None, stream, folder: outputs.FolderCheck, memory_limit: int | None,
             on_cluster: bool, report_lock: ReportLock | None) -> int:
    """``main``'s batch, once its options, output folder and report have been accepted."""
    if on_cluster:
        from oldphoto import cluster
    lazy = None
    if restore is None:
        lazy = _LazyRestorer(args)
        restore = lazy
    restore_options = _options_record(args)
    config = BatchConfig(
        outdir=Path(args.outdir), format=normalise_format(args.format), quality=args.quality,
        overwrite=args.overwrite, strip_metadata=args.strip_metadata, max_pixels=args.max_pixels or None,
        mask_dir=args.mask_dir, save_mask=args.save_mask,
        options=restore_options if lazy is not None else {},
        models=lazy.model_info if lazy is not None else None, memory_limit=memory_limit,
        estimate_options=restore_options,
    )
    jobs, pre = collect_inputs(args.inputs, recursive=args.recursive, exclude=folder.exclude,
                               outdir=Path(args.outdir).resolve(),
                               report=args.report)
    plan_outputs(jobs, config.outdir, config.format)
    progress = Progress(len(jobs) + len(pre), stream=stream, enabled=not args.no_progress)
    if lazy is not None and not on_cluster:  # (a cluster's restorers live in other processes)
        lazy.progress = progress
    notes = list(folder.notes)
    if not args.recursive and any(_is_glob(spec) and "**" in spec for spec in args.inputs):
        notes.append(STARSTAR_NOTE)
    for note in notes:
        progress.log(f"note: {note}")
    if report_lock is not None and report_lock.note:
        progress.log(f"note: {report_lock.note}")
    writer = _ReportWriter(report_lock.report, progress.log) if report_lock is not None else None
    stop = StopFlag()
    notices = _LogToProgress(progress.log)
    logging.getLogger("oldphoto").addHandler(notices)
    try:
        with outputs.FolderLock(config.outdir) as lock:
            _clean_leftovers(config.outdir, lock.held, report_lock, folder.input_folders, progress.log)
            with _SignalHandler(stop, progress.log, abort_at_once=on_cluster) as handler:
                if not on_cluster:
                    report = run_batch(jobs, restore, config, pre_entries=pre, progress=progress, stop=stop,
                                       busy=handler.busy, on_progress=writer)
                else:
                    report = cluster.run(jobs, args, config, restore=None if lazy is not None else restore,
                                         pre_entries=pre, progress=progress, stop=stop, busy=handler.busy,
                                         on_progress=writer)
            if on_cluster and lock.take():  # (the folder may have been made by the run)
                # a worker lost in the middle of a write leaves its temporary file (its photo was redone),
                # and so does a write cut off when an interrupt stops the run
                removed = outputs.clean_stale_parts(config.outdir, spare=folder.input_folders)
                if removed:
                    progress.log(f"removed {len(removed)} temporary file(s) of writes lost with their worker")
    finally:
        logging.getLogger("oldphoto").removeHandler(notices)
        progress.close()
    code = report.exit_code
    if writer is not None:
        writer(report, force=True)
        if not writer.ok and code == 0:
            code = 1  # the report asked for is not there: a script reading it must not take this for success
    print(report.summary(), file=stream, flush=True)
    return code


def _clean_leftovers(outdir: Path, locked: bool, report: ReportLock | None, inputs: Sequence[Path],
                     say: Callable[[str], None]) -> None:
    """Temporary files of writes killed mid-way (``.NAME.xxxxxxxx.part``): ours only, in the output folder
    but not in input folders inside it (and the report's own beside the report, unless another batch may
    be writing it: its lock could not be taken there)."""
    if locked:
        removed = outputs.clean_stale_parts(outdir, spare=inputs)
        if removed:
            say(f"removed {len(removed)} temporary file(s) left in {outdir} by an interrupted earlier run")
    elif outdir.is_dir():
        say(f"note: another oldphoto batch is writing into {outdir}; its temporary files are left alone")
    if report is not None and (report.held or not report.lockable):
        outputs.clean_stale_parts(report.report.parent, only_name=report.report.name)


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


class _ReportWriter:
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

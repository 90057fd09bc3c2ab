"""Restoring: one photo in three steps (``open_photo``, ``restore_photo``, ``write_restored``; together
``restore_one``), and a batch of them in order (``run_batch``)."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from oldphoto import footprint, masks, outputs
from oldphoto.batch.fatal import DiskFull, SetupError, disk_full_names
from oldphoto.batch.inputs import Job, plan_outputs
from oldphoto.batch.mask_files import find_mask, mask_paths, read_mask, write_mask
from oldphoto.batch.progress import Progress
from oldphoto.batch.report import FAILED, NOT_PROCESSED, OK, SKIPPED, BatchReport, Entry, restoration_record
from oldphoto.files import name_fits, sha256_file
from oldphoto.io import (
    DEFAULT_JPEG_QUALITY,
    DEFAULT_MAX_PIXELS,
    PhotoError,
    provenance_record,
    read_photo,
    too_small,
    write_photo,
)
from oldphoto.io.photo import PhotoHeader
from oldphoto.reasons import ReasonCode
from oldphoto.stages.official_sizes import official_size


class RestoreFn(Protocol):
    """``restore(pixels float32 H×W×3 sRGB [0,1], mask bool H×W | None)`` -> a Result-like object
    (``.image``, optionally ``.faces`` and ``.models``) or a bare image array."""

    def __call__(self, pixels: np.ndarray, mask: np.ndarray | None) -> Any: ...


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
        entry.mark(FAILED, _photo_error_code(exc, job), exc.reason if exc.path == job.input else str(exc))
    except _Unwritten as exc:
        entry.mark(FAILED, ReasonCode.CANNOT_WRITE_OUTPUT, str(exc))
    except DiskFull as exc:  # this photo failed; the caller stops the batch
        entry.mark(FAILED, ReasonCode.DISK_FULL, str(exc))
        exc.entry = entry
        raise
    except (KeyboardInterrupt, SetupError):
        raise
    except Exception as exc:
        if _is_out_of_memory(exc):
            _free_memory()
            entry.mark(FAILED, ReasonCode.OUT_OF_MEMORY,
                       f"out of memory ({type(exc).__name__}); try a smaller --max-pixels or tile size")
        else:
            entry.mark(FAILED, ReasonCode.UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}")
    finally:
        entry.seconds = round(entry.seconds + time.perf_counter() - started, 3)
        if entry.status == FAILED:
            entry.output = None


class _Unwritten(Exception):
    """The file system refused a write of a photo's output or mask, for another cause than a full disk (a
    drive turned read-only, an I/O error, a name it does not take): the photo fails, the batch goes on."""

    def __init__(self, path: Path, exc: OSError):
        super().__init__(f"cannot write {path} ({exc.strerror or exc})")


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A write of ``path``: refused for a full disk, ``DiskFull``; for another cause, ``_Unwritten``; each
    names ``path`` (the OSError names at most the temporary file).  A ``FileExistsError`` (the name taken
    meanwhile) is the caller's, and an OSError without an errno is not the system's (Pillow's encoders
    raise them)."""
    try:
        with disk_full_names(path):
            yield
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno is None:
            raise
        raise _Unwritten(path, exc) from exc


def _photo_error_code(exc: PhotoError, job: Job) -> ReasonCode:
    """Why ``job``'s photo failed, as a code: its mask's problem, or the photo's (the cause its raiser named,
    else that it could not be decoded)."""
    if exc.path != job.input:
        return ReasonCode.MASK_UNUSABLE  # (the only other file a photo's steps read)
    return ReasonCode(exc.code) if exc.code is not None else ReasonCode.DAMAGED_OR_UNSUPPORTED


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
            raise PhotoError(header.path, small, code=ReasonCode.TOO_SMALL)
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
            entry.sha256 = source["sha256"]
        except OSError as exc:
            entry.mark(FAILED, ReasonCode.CANNOT_READ_FILE, f"cannot read ({exc.strerror or exc})")
            entry.output = None
            return entry
        size = outputs.displayed_size(job.input) if config.strip_metadata else None  # (of a stripped output)
        try:
            decision = outputs.decide(job.natural or job.output, job.input, source, reserved=reserved,
                                      own=job.output, inputs=inputs | {job.input.resolve()},
                                      overwrite=config.overwrite, strip_metadata=config.strip_metadata,
                                      size=size)
        except OSError as exc:
            entry.mark(FAILED, ReasonCode.CANNOT_PLACE_OUTPUT, f"cannot place the output: {exc}")
            entry.output = None
            return entry
        entry.output = str(decision.output)
        entry.warnings.extend(decision.notes)
        if not decision.write:
            entry.mark(SKIPPED, ReasonCode.ALREADY_RESTORED,
                       "already restored from this source (use --overwrite to redo it)")
            _as_restored_before(entry, decision, source, config, size)
            names = [path for path in mask_paths(decision.output) if name_fits(path.name)]
            if config.save_mask and names and not any(path.exists() for path in names):
                # (an earlier run without --save-mask: the mask is made only with the restoration)
                entry.mark(SKIPPED, ReasonCode.ALREADY_RESTORED_WITHOUT_MASK,
                           "already restored from this source, without its mask (use --overwrite to redo it "
                           "with its mask)")
            return entry
        # the output folder was checked before the batch, its sub-folders only here: one that is read-only
        # (another mount) or a plain file fails the photo now, not after restoring it only to fail its write
        problem = outputs.unwritable(decision.output.parent)
        if problem:
            entry.mark(FAILED, ReasonCode.OUTPUT_NOT_WRITABLE, f"cannot write {decision.output}: {problem}")
            entry.output = None
            return entry
        photo = read_photo(job.input, max_pixels=config.max_pixels,
                           guard=_size_checked(guard, config.restore_options()))
        if _changed(job.input, before):
            # the pixels may not be those of the bytes hashed: the provenance (and resume) would lie
            raise PhotoError(job.input, "the file changed while it was read (still being scanned or "
                                        "copied?); run again once it is complete",
                             code=ReasonCode.CHANGED_WHILE_READ)
        entry.width, entry.height = photo.size
        entry.warnings.extend(photo.warnings)
        mask = None
        # --scratches off ignores user masks and detects nothing: no mask is looked for, and none is said
        # to be missing with "defects detected automatically"
        options = config.restore_options()
        if config.mask_dir is not None and options.get("scratches") != "off":
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
                added = _additions_asked(options)
                if added:  # (a mask is repaired as given: dust left out of it, a star unmarked, stays)
                    entry.warnings.append(f"{added}: nothing added to the mask {mask_path}, which is "
                                          "repaired as given (mark in it what is to be repaired)")
        return Opened(job, entry, source, decision.output, photo, mask, replaces=decision.replaces)
    return entry  # failed while decoding


def _additions_asked(options: dict[str, Any]) -> str:
    """The options asked for that add to a detected mask but not to a user's, as the command line names
    them ("" when none)."""
    asked = [flag for flag, name in (("--dust", "dust"), ("--dark-dust", "dark_dust")) if options.get(name)]
    if options.get("mask_dilation"):
        asked.append(f"--mask-dilation {options['mask_dilation']}")
    return " and ".join(asked)


def _as_restored_before(entry: Entry, decision: outputs.Decision, source: dict[str, str], config: BatchConfig,
                        size: tuple[int, int] | None) -> None:
    """A skipped photo's entry told as the run that restored it told it: what was done and with which models
    (from its output's provenance, as ``decision`` read it) and its mask (one made from this source, at a
    ``--save-mask`` name), so that the report of a rerun that skips everything still links each output to
    its mask and says what was repaired (with --strip-metadata there is no record: a mask that may be its
    stripped one is linked)."""
    record = decision.record or {}
    if isinstance(record.get("restoration"), dict):
        entry.restoration = record["restoration"]
    if isinstance(record.get("models"), dict):
        entry.models = record["models"]
    for path in mask_paths(decision.output):
        if not (name_fits(path.name) and path.is_file()):
            continue
        if outputs.leave_alone(path, source, unmarked_ours=config.strip_metadata, size=size) is None:
            entry.mask = str(path)
            return


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
                with _writing(opened.output):
                    entry.warnings.extend(write_photo(opened.output, image, like=opened.photo,
                                                      format=config.format, quality=config.quality,
                                                      provenance=record, strip_metadata=config.strip_metadata,
                                                      replace=opened.replaces))
                break
            except FileExistsError:
                if not _placed_again(opened, entry, config, reserved):
                    return entry  # (restored meanwhile by another batch: skipped; or no name left)
        else:
            entry.mark(FAILED, ReasonCode.CANNOT_PLACE_OUTPUT, "cannot place the output: other files kept "
                       f"appearing at the names it took while it was written ({opened.output})")
            return entry
        del image
        if config.save_mask:
            refused = []
            for target in mask_paths(opened.output):
                why = (f"{target.name} is another photo's output" if str(target).lower() in reserved
                       else f"{target.name} is too long a file name" if not name_fits(target.name)
                       else outputs.leave_alone(target, opened.source, unmarked_ours=config.strip_metadata,
                                                size=opened.photo.size))
                if why:  # never replace another input's output, or a file not made from this source
                    refused.append(why)
                    continue
                try:
                    with _writing(target):
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
    replaced; another is left untouched, said, and the next free name taken.  False: the photo is not to be
    written (an output of this source is there now: skipped; or no name is left: failed)."""
    if outputs.leave_alone(opened.output, opened.source, unmarked_ours=config.strip_metadata,
                           size=opened.photo.size) is None:
        opened.replaces = True
        return True
    entry.warnings.append(f"{opened.output} appeared while this photo was restored (another batch writing "
                          "into this folder?): left untouched")
    job = opened.job
    try:
        decision = outputs.decide(job.natural or job.output, job.input, opened.source, reserved=reserved,
                                  own=job.output, inputs=frozenset({job.input.resolve()}),
                                  overwrite=config.overwrite, strip_metadata=config.strip_metadata,
                                  size=opened.photo.size)
    except OSError as exc:  # (as open_photo says it)
        entry.mark(FAILED, ReasonCode.CANNOT_PLACE_OUTPUT, f"cannot place the output: {exc}")
        return False
    entry.output = str(decision.output)
    if not decision.write:
        entry.mark(SKIPPED, ReasonCode.RESTORED_BY_ANOTHER_BATCH,
                   "restored meanwhile by another batch writing into this folder")
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
              on_progress: Callable[[BatchReport], None] | None = None,
              folder_lock: outputs.FolderLock | None = None) -> BatchReport:
    """Process ``jobs`` in order.  ``stop`` set (first Ctrl-C) -> finish the current photo, mark the
    rest 'not processed'; KeyboardInterrupt inside a photo (second Ctrl-C, SIGTERM) -> that photo too.

    ``busy`` is set while a photo is processed (signal handlers raise only then);  ``on_progress`` gets
    a snapshot of the report (inputs not reached yet marked 'not processed') before the first photo and
    after each one.  ``folder_lock``: the output folder's, taken as soon as a photo's write has made the
    folder (a batch started later into it must not take this one's writes in progress for leftovers).
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
                             "report was written", ReasonCode.NOT_REACHED_YET) for j in jobs[done:]]
            on_progress(BatchReport(entries + pending, started, time.time(), interrupted, fatal,
                                    terminated=bool(getattr(stop, "terminated", False)), running=True,
                                    hangup=bool(getattr(stop, "hangup", False)), options=config.options))

    snapshot(0)
    for index, job in enumerate(jobs):
        if stop is not None and stop.is_set():
            interrupted = True
        if interrupted:
            entries.extend(Entry(str(j.input), NOT_PROCESSED, "batch interrupted", ReasonCode.INTERRUPTED)
                           for j in jobs[index:])
            break
        try:
            if busy is not None:
                busy.set()
            entry = restore_one(job, restore, config, reserved=reserved, inputs=inputs, guard=guard)
        except KeyboardInterrupt:
            interrupted = True
            entry = Entry(str(job.input), NOT_PROCESSED, "interrupted while processing; no output written",
                          ReasonCode.INTERRUPTED)
        except SetupError as exc:
            fatal = str(exc)
            entries.extend(Entry(str(j.input), NOT_PROCESSED, fatal, ReasonCode.BATCH_STOPPED)
                           for j in jobs[index:])
            if progress is not None:
                progress.log(f"error: {fatal}")
            break
        except DiskFull as exc:  # every later write would fail the same way: stop, the rest not attempted
            fatal = exc.fatal
            assert exc.entry is not None
            entries.append(exc.entry)
            if progress is not None:
                progress.update(exc.entry)
            entries.extend(Entry(str(j.input), NOT_PROCESSED, f"not attempted: {fatal}",
                                 ReasonCode.BATCH_STOPPED) for j in jobs[index + 1:])
            break
        finally:
            if busy is not None:
                busy.clear()
        entries.append(entry)
        if folder_lock is not None:
            folder_lock.take()
        if entry.status == OK and entry.width and entry.height:
            guard.record(entry.width * entry.height / 1e6, entry.seconds)
        if progress is not None:
            progress.update(entry)
        snapshot(index + 1)
    interrupted = interrupted or (stop is not None and stop.is_set())
    return BatchReport(entries, started, time.time(), interrupted, fatal,
                       terminated=bool(getattr(stop, "terminated", False)),
                       hangup=bool(getattr(stop, "hangup", False)), options=config.options)

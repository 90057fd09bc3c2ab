"""``oldphoto restore``: its options (``register``) and its run (``main``), the restorer built lazily
(``LazyRestorer``: a rerun where every output already exists never loads a model)."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from oldphoto import outputs
from oldphoto.batch.fatal import SetupError
from oldphoto.batch.inputs import (
    STARSTAR_NOTE,
    collect_inputs,
    glob_root,
    is_glob,
    list_root,
    plan_outputs,
    read_file_list,
)
from oldphoto.batch.progress import LogToProgress, Progress
from oldphoto.batch.report import ReportLock, ReportWriter, report_problem
from oldphoto.batch.run import BatchConfig, RestoreFn, run_batch
from oldphoto.batch.signals import SignalHandler, StopFlag
from oldphoto.io import DEFAULT_JPEG_QUALITY, DEFAULT_MAX_PIXELS
from oldphoto.io.photo import normalise_format


class LazyRestorer:
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
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("--files-from", metavar="LIST",
                        help="also restore the photo files LIST names, one path a line (- reads standard "
                             "input; blank lines and lines starting with # are left out); their paths below "
                             "the deepest folder holding them all are kept under OUTDIR")
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
                        help="write no EXIF, ICC profile, text, XMP, IPTC or provenance (pixels are then "
                             "plain sRGB; the resolution, DPI, is kept, except in WebP, which holds it only "
                             "in EXIF)")
    parser.add_argument("--mask-dir", type=Path, metavar="DIR",
                        help="user defect masks (white = defect), matched to inputs by file stem, repaired "
                             "as given (not with --scratches off)")
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
    if args.mask_dir is not None and args.scratches == "off":  # (the masks would be ignored, unsaid)
        print("oldphoto restore: --scratches off repairs no defect, so the masks of --mask-dir would be "
              "ignored: leave out --scratches off (a mask is repaired as given, and nothing the detector "
              "finds is added to it)", file=stream)
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
        from oldphoto.options import device_problem, weights_problem

        problem = weights_problem(args) or device_problem(args)
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
    args.listed = []
    if args.files_from is not None:
        try:
            args.listed = read_file_list(args.files_from)
        except OSError as exc:
            print(f"oldphoto restore: --files-from {args.files_from}: {exc.strerror or exc}", file=stream)
            return 2
        if not args.listed and not args.inputs:
            print(f"oldphoto restore: --files-from {args.files_from} names no photos", file=stream)
            return 2
    if not args.inputs and not args.listed:
        print("oldphoto restore: give the photos to restore: files, folders or patterns, or --files-from "
              "LIST", file=stream)
        return 2
    # (the listed photos' outputs mirror the folder that holds them all: -o must not be that folder)
    args.listed_root = list_root(args.listed) if args.listed else None
    specs = [*args.inputs, *([str(args.listed_root)] if args.listed_root is not None else [])]
    folder = outputs.check_folder(specs, Path(args.outdir), glob_root)
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
        lazy = LazyRestorer(args)
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
                               outdir=Path(args.outdir).resolve(), report=args.report,
                               strip_metadata=args.strip_metadata, listed=args.listed,
                               listed_root=args.listed_root)
    plan_outputs(jobs, config.outdir, config.format)
    progress = Progress(len(jobs) + len(pre), stream=stream, enabled=not args.no_progress)
    if lazy is not None and not on_cluster:  # (a cluster's restorers live in other processes)
        lazy.progress = progress
    notes = list(folder.notes)
    if not args.recursive and any(is_glob(spec) and "**" in spec for spec in args.inputs):
        notes.append(STARSTAR_NOTE)
    for note in notes:
        progress.log(f"note: {note}")
    if report_lock is not None and report_lock.note:
        progress.log(f"note: {report_lock.note}")
    writer = ReportWriter(report_lock.report, progress.log) if report_lock is not None else None
    stop = StopFlag()
    notices = LogToProgress(progress.log)
    logging.getLogger("oldphoto").addHandler(notices)
    try:
        with outputs.FolderLock(config.outdir) as lock:
            _clean_leftovers(config.outdir, lock.held, report_lock, folder.input_folders, progress.log)
            with SignalHandler(stop, progress.log, abort_at_once=on_cluster) as handler:
                if not on_cluster:
                    report = run_batch(jobs, restore, config, pre_entries=pre, progress=progress, stop=stop,
                                       busy=handler.busy, on_progress=writer, folder_lock=lock)
                else:
                    report = cluster.run(jobs, args, config, restore=None if lazy is not None else restore,
                                         pre_entries=pre, progress=progress, stop=stop, busy=handler.busy,
                                         on_progress=writer, folder_lock=lock)
            if on_cluster and lock.take():  # (the folder may have been made by the run)
                # a worker lost in the middle of a write leaves its temporary file (its photo was redone),
                # and so does a write cut off when an interrupt stops the run
                removed = cluster.remove_lost_writes(jobs, report.entries)
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

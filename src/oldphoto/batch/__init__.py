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

Its modules, each with one job:

* ``inputs``: files, folders and globs expanded into jobs, each given its output path;
* ``mask_files``: the user's masks found and read (``--mask-dir``), the repaired ones written
  (``--save-mask``);
* ``run``: one photo read, restored and written, in three steps, and a batch of them in order;
* ``fatal``: what stops the whole batch rather than fail one photo (the restorer cannot run, a full disk);
* ``report``: the JSON report, its lines, and writing it (locked) while the batch runs;
* ``progress``: the progress bar, or plain lines;
* ``signals``: Ctrl-C, SIGTERM and SIGHUP while the batch runs, and the exit codes they end it with;
* ``cli``: the ``oldphoto restore`` command, its options and the restorer it builds lazily.

The names other code uses are imported here: ``from oldphoto.batch import run_batch`` works as before.
"""

from oldphoto.batch.cli import LazyRestorer, main, register
from oldphoto.batch.fatal import (
    DISK_FULL_ADVICE,
    DISK_FULL_ERRNOS,
    DiskFull,
    SetupError,
    disk_full_fatal,
    is_disk_full,
)
from oldphoto.batch.inputs import STARSTAR_NOTE, Job, collect_inputs, plan_outputs
from oldphoto.batch.mask_files import find_mask, read_mask, saved_mask_path, write_mask
from oldphoto.batch.progress import Progress
from oldphoto.batch.report import (
    FAILED,
    NOT_PROCESSED,
    NOTE_DOUBT_LENGTH,
    NOTE_STROKE_LENGTH,
    OK,
    REPORT_INTERVAL,
    SKIPPED,
    BatchReport,
    Entry,
    ReportLock,
    is_report,
    report_problem,
    restoration_record,
)
from oldphoto.batch.run import (
    RACE_TRIES,
    BatchConfig,
    Opened,
    Restored,
    RestoreFn,
    open_photo,
    restore_one,
    restore_photo,
    run_batch,
    write_restored,
)
from oldphoto.batch.signals import (
    ENDING_SIGNALS,
    EXIT_HANGUP,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    STOP_SIGNALS,
    StopFlag,
)
from oldphoto.reasons import ReasonCode

__all__ = [
    "DISK_FULL_ADVICE", "DISK_FULL_ERRNOS", "ENDING_SIGNALS", "EXIT_HANGUP", "EXIT_INTERRUPTED",
    "EXIT_TERMINATED", "FAILED", "NOTE_DOUBT_LENGTH", "NOTE_STROKE_LENGTH", "NOT_PROCESSED", "OK",
    "RACE_TRIES", "REPORT_INTERVAL", "SKIPPED", "STARSTAR_NOTE", "STOP_SIGNALS", "BatchConfig", "BatchReport",
    "DiskFull", "Entry", "Job", "LazyRestorer", "Opened", "Progress", "ReasonCode", "ReportLock", "RestoreFn",
    "Restored", "SetupError", "StopFlag", "collect_inputs", "disk_full_fatal", "find_mask", "is_disk_full",
    "is_report", "main", "open_photo", "plan_outputs", "read_mask", "register", "report_problem",
    "restoration_record", "restore_one", "restore_photo", "run_batch", "saved_mask_path", "write_mask",
    "write_restored",
]

"""Why a photo was skipped, failed or was not processed, as a short code that does not change when the
sentence for people does: the batch report's ``reason_code`` (docs/files-and-batches.md, "Report").  A
program ingesting the report (an archive's asset management, every night) branches on it: retry later,
tell a person, or leave it.  This is the one table of codes; each says what it means."""

from __future__ import annotations

import enum


class ReasonCode(str, enum.Enum):
    """A code and its meaning.  A ``str``: it is written into the report as the bare code, and compares equal
    to it (``entry.reason_code == "already_restored"``).  Codes are added, never renamed or removed (a
    reader keys on them; see ``report_format``)."""

    meaning: str

    def __new__(cls, code: str, meaning: str) -> ReasonCode:
        member = str.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        return member

    # skipped: nothing to do
    ALREADY_RESTORED = (
        "already_restored",
        "skipped: an output made from this very source is there (its `output`), from an earlier run; "
        "`--overwrite` redoes it"
    )
    ALREADY_RESTORED_WITHOUT_MASK = (
        "already_restored_without_mask",
        "skipped as `already_restored`, but `--save-mask` was asked and the earlier run saved no mask; "
        "`--overwrite` redoes it with its mask"
    )
    RESTORED_BY_ANOTHER_BATCH = (
        "restored_by_another_batch",
        "skipped: another batch writing into the same output folder restored it while this one did (its "
        "`output`)"
    )
    NOT_AN_IMAGE_FILE = (
        "not_an_image_file",
        "skipped: a file of an input folder whose extension is not a photo's"
    )
    IN_OUTPUT_FOLDER = (
        "in_output_folder",
        "skipped: a photo oldphoto did not write, inside the output folder, where nothing is read as an "
        "input; restore it with another `-o`"
    )

    # failed: the input as given
    NO_SUCH_FILE = (
        "no_such_file",
        "failed: the input (or a `--files-from` line) names no existing file"
    )
    NO_MATCH = (
        "no_match",
        "failed: a pattern that matches no file"
    )
    NO_PHOTOS_IN_FOLDER = (
        "no_photos_in_folder",
        "failed: a folder input holding no photo (perhaps in sub-folders: add `-r`)"
    )
    NOT_A_REGULAR_FILE = (
        "not_a_regular_file",
        "failed: a FIFO, socket or device where a photo was expected; not opened"
    )
    FOLDER_IN_LIST = (
        "folder_in_list",
        "failed: a `--files-from` line names a folder (give it as an INPUT)"
    )
    BROKEN_LINK = (
        "broken_link",
        "failed: a link to a file that is missing (an archive moved or unmounted)"
    )
    UNREADABLE_FOLDER = (
        "unreadable_folder",
        "failed: a sub-folder that cannot be listed (permissions); its photos are not known"
    )
    CANNOT_READ_FILE = (
        "cannot_read_file",
        "failed: the file cannot be opened or read (permissions, an I/O error, gone meanwhile); the "
        "reason has the system's error"
    )
    CHANGED_WHILE_READ = (
        "changed_while_read",
        "failed: the file changed while it was read (still being scanned or copied); run again once it is "
        "complete"
    )

    # failed: the photo itself
    DAMAGED_OR_UNSUPPORTED = (
        "damaged_or_unsupported",
        "failed: the file cannot be decoded: not an image, damaged, cut short, empty, or of a kind not "
        "supported (a HEIC photo without pillow-heif); the reason says which"
    )
    TOO_MANY_PIXELS = (
        "too_many_pixels",
        "failed: more pixels than `--max-pixels` allows (the decompression-bomb guard); raise it if the "
        "photo is genuine"
    )
    TOO_SMALL = (
        "too_small",
        "failed: too small to restore (or for `--compat official`)"
    )
    NOT_ENOUGH_MEMORY = (
        "not_enough_memory",
        "failed: estimated from its header, before decoding, to need more memory than is available or "
        "than `--memory-limit`; run it when memory is free, or on a larger machine"
    )
    OUT_OF_MEMORY = (
        "out_of_memory",
        "failed: memory ran out while it was restored; run it again with more memory free, a smaller tile "
        "budget or `--max-pixels`"
    )
    MASK_UNUSABLE = (
        "mask_unusable",
        "failed: its `--mask-dir` mask cannot be read, is not the photo's size, or marks too much of it"
    )

    # failed: its output
    CANNOT_PLACE_OUTPUT = (
        "cannot_place_output",
        "failed: no name for its output could be taken in the output folder (none free, too long for a "
        "file name, or the folder cannot be looked at)"
    )
    OUTPUT_NOT_WRITABLE = (
        "output_not_writable",
        "failed before it was decoded: the sub-folder its output goes in cannot be written"
    )
    CANNOT_WRITE_OUTPUT = (
        "cannot_write_output",
        "failed: the file system refused its output (or its `--save-mask` mask) for another cause than a "
        "full disk: turned read-only, an I/O error, a name it does not take; the reason names the file "
        "and has the system's error"
    )
    DISK_FULL = (
        "disk_full",
        "failed: its output could not be written, the disk (or a quota) is full; the batch stopped there "
        "(`fatal`): free space and run again"
    )
    WORKERS_LOST = (
        "workers_lost",
        "failed (`--ray`): the workers processing it died every time it was tried (a crash, or out of "
        "memory); nothing was written, a rerun tries again"
    )
    UNEXPECTED_ERROR = (
        "unexpected_error",
        "failed: an error oldphoto did not foresee (the reason has its type and message); worth reporting"
    )

    # not processed
    NOT_REACHED_YET = (
        "not_reached_yet",
        "not processed: the report is a snapshot of a batch still running (`running`), or killed before "
        "it ended"
    )
    INTERRUPTED = (
        "interrupted",
        "not processed: the batch was stopped (Ctrl-C, SIGTERM, SIGHUP) before or while it was processed; "
        "with `--ray` it may have been written all the same; run the batch again"
    )
    BATCH_STOPPED = (
        "batch_stopped",
        "not processed: the batch stopped on an error of its own before reaching it (the restorer could "
        "not start, the disk is full: the report's `fatal` says which)"
    )

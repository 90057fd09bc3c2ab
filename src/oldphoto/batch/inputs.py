"""What a batch restores: files, folders and globs expanded into jobs (``collect_inputs``), and the photos
a list names (``read_file_list``, ``--files-from``), each given a distinct output path (``plan_outputs``)."""

from __future__ import annotations

import glob
import itertools
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from oldphoto import outputs
from oldphoto.batch.report import FAILED, SKIPPED, Entry, is_report
from oldphoto.io import EXTENSION_FAMILY, IMAGE_EXTENSIONS
from oldphoto.io._warnings import guarded_warnings
from oldphoto.io.photo import DEFAULT_SUFFIX, FORMAT_FAMILY, SAME_FAMILY, normalise_format
from oldphoto.reasons import ReasonCode


@dataclass
class Job:
    input: Path
    relative: Path          # where the output goes under the output folder (suffix decided later)
    output: Path | None = None    # planned output (distinct within the batch)
    natural: Path | None = None   # the first name of its candidate sequence (outputs.candidates)


def is_glob(spec: str) -> bool:
    return any(ch in spec for ch in "*?[")


def glob_root(spec: str) -> Path:
    parts = Path(spec).parts
    root = []
    for part in parts:
        if is_glob(part):
            break
        root.append(part)
    return Path(*root) if root else Path(".")


def read_file_list(source: str) -> list[str]:
    """The photos a ``--files-from`` list names: one path a line, as bytes the system's file names are
    (a name not in UTF-8 is read as the file system gives it); blank lines and lines starting with ``#``
    are left out; ``-`` reads standard input.  (An archive's selection of a million photos does not fit
    a command line.)"""
    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(source, "rb") as fh:
            data = fh.read()
    lines = (os.fsdecode(line.rstrip(b"\r")) for line in data.split(b"\n"))
    return [line for line in lines if line.strip() and not line.startswith("#")]


def list_root(listed: Sequence[str]) -> Path:
    """The deepest folder holding every listed photo: their outputs keep their paths below it, as a
    folder's photos keep theirs below the folder (``box1/001.tif`` and ``box2/001.tif`` stay apart)."""
    return Path(os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in listed]))


def collect_inputs(specs: Sequence[str], recursive: bool = False, exclude: Path | None = None,
                   report: Path | None = None, outdir: Path | None = None,
                   strip_metadata: bool = False, listed: Sequence[str] = (), listed_root: Path | None = None
                   ) -> tuple[list[Job], list[Entry]]:
    """Expand files, folders and globs into jobs; non-image files in folders become 'skipped' entries,
    missing paths 'failed' ones.  Relative output paths: a file's name, a folder's relative path, or a
    glob match's path relative to the glob's fixed prefix.  Files that folders and globs find under
    ``exclude`` (a resolved folder: the output folder) are not restored: photos there that oldphoto did not
    write (``outputs.made_by_oldphoto``; ``strip_metadata``: the batch's files carry no provenance) become
    'skipped' entries saying why, its restorations are left out, and so are the batch's own
    ``report`` and any earlier report of oldphoto's (``is_report``): a report written into the input
    folder is not listed as a skipped input by every later run.  Other non-images (a scanner's
    ``.json``, notes) are still listed, as a user may have meant them for photos.  With ``recursive``, links
    to folders are followed (not into ``outdir``, the resolved output folder, or ``exclude``).
    ``listed``: photo files a list names (:func:`read_file_list`), each kept at its path below
    ``listed_root`` (:func:`list_root` of them, where the caller has it already); one that is not a file is
    'failed'."""
    jobs: list[Job] = []
    entries: list[Entry] = []
    seen: set[Path] = set()
    own_report = report.resolve() if report is not None else None

    def ours(path: Path) -> bool:
        return path.resolve() == own_report or is_report(path)

    def add(path: Path, relative: Path, from_folder: bool) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        if from_folder and exclude is not None and key.is_relative_to(exclude):
            # (a photo of the archive there, `-o scans/1950s` for `-o restored/1950s`, was left out unsaid)
            if path.suffix.lower() in IMAGE_EXTENSIONS and not outputs.made_by_oldphoto(path, strip_metadata):
                shown = next((a for a in path.parents if a.resolve() == exclude), exclude)  # (as given)
                entries.append(Entry(str(path), SKIPPED, f"in the output folder {shown}: not restored, as "
                                     "nothing there is read as an input (restore it with another -o)",
                                     ReasonCode.IN_OUTPUT_FOLDER))
            return
        if from_folder and path.suffix.lower() not in IMAGE_EXTENSIONS:
            reason = f"not an image file (extension {path.suffix or 'none'})"
            entries.append(Entry(str(path), SKIPPED, reason, ReasonCode.NOT_AN_IMAGE_FILE))
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
            entries.extend(Entry(str(c), FAILED, "not a regular file", ReasonCode.NOT_A_REGULAR_FILE)
                           for c in visible
                           if c.suffix.lower() in IMAGE_EXTENSIONS and c.exists() and not c.is_file()
                           and not c.is_dir())
            for child in files:
                add(child, child.relative_to(path), from_folder=True)
            if not any(c.suffix.lower() in IMAGE_EXTENSIONS
                       and (exclude is None or not c.resolve().is_relative_to(exclude)) for c in files):
                # an empty folder, or one whose photos are in sub-folders, is not a batch that went well
                folders = not recursive and any(c.is_dir() and not c.name.startswith(".") for c in children)
                entries.append(Entry(spec, FAILED, "no photos in this folder" + (
                    " (its photos may be in its sub-folders: add -r to look in them)" if folders else ""),
                    ReasonCode.NO_PHOTOS_IN_FOLDER))
        elif path.exists() and not path.is_file():
            # a FIFO or a device: opening or hashing it would block or never end
            entries.append(Entry(spec, FAILED, "not a regular file", ReasonCode.NOT_A_REGULAR_FILE))
        elif path.exists():
            add(path, Path(path.name), from_folder=False)
        elif is_glob(spec):
            matches = sorted(glob.glob(spec, recursive=recursive))
            if not matches:
                entries.append(Entry(spec, FAILED, "no file matches this pattern" + (
                    "" if recursive or "**" not in spec else f" ({STARSTAR_NOTE})"), ReasonCode.NO_MATCH))
            root = glob_root(spec)
            entries.extend(_broken_links(Path(m) for m in matches))
            for match in matches:
                m = Path(match)
                if m.is_file() and not ours(m):
                    add(m, m.relative_to(root) if m.is_relative_to(root) else Path(m.name), from_folder=True)
        else:
            entries.append(Entry(spec, FAILED, "no such file or directory", ReasonCode.NO_SUCH_FILE))
    root = listed_root if listed_root is not None or not listed else list_root(listed)
    for spec in listed:
        path = Path(spec)
        if path.is_file():
            add(path, Path(os.path.abspath(path)).relative_to(root), from_folder=False)
        elif path.is_dir():
            entries.append(Entry(spec, FAILED, "a folder: a list names photo files (give folders as INPUTs)",
                                 ReasonCode.FOLDER_IN_LIST))
        elif path.exists():
            entries.append(Entry(spec, FAILED, "not a regular file", ReasonCode.NOT_A_REGULAR_FILE))
        else:
            entries.append(Entry(spec, FAILED, "no such file or directory", ReasonCode.NO_SUCH_FILE))
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
            entries.append(Entry(str(folder), FAILED, f"cannot read this folder ({exc.strerror or exc})",
                                 ReasonCode.UNREADABLE_FOLDER))
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
    return [Entry(str(p), FAILED, "broken link: the file it points to is missing", ReasonCode.BROKEN_LINK)
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

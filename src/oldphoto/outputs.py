"""The output folder of a batch: never over the originals, resumed from what each output was made of.

* ``check_folder``: an output folder that *is* an input folder (a folder input, a glob's fixed prefix,
  the folder of a file input) is refused; one that lies inside an input folder is excluded from the
  inputs, so restored files are never read back as inputs.  Both also under another path (a bind mount,
  a share mounted twice): folders are compared by device and inode.
* ``decide``: where one photo's output goes.  Every output carries its source in the provenance record
  (relative path + SHA-256 of the input file's bytes); an existing file is skipped (or, with
  ``--overwrite``, redone) only when it was made from this very source.  A file made from another source,
  or one oldphoto did not write (an original), is left untouched and the output takes the next free name
  in a fixed sequence (``a.jpg``, ``a_jpg.jpg``, ``a_jpg_2.jpg``, ...), which a later run walks the same
  way, so it finds its earlier output again.
* ``FolderLock`` / ``clean_stale_parts``: temporary files of writes killed mid-way (``.NAME.xxxxxxxx.part``)
  are removed when a batch starts, unless another batch holds the folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from oldphoto.files import NAME_MAX, TEMP_NAME, name_fits, sha256_file, temp_name_part
from oldphoto.io import _heif, _tiff, read_provenance
from oldphoto.io._metadata import ORIENTATION
from oldphoto.io._warnings import guarded_warnings
from oldphoto.options import UPSCALE_CHOICES

MAX_CANDIDATES = 1000
# _earlier_output: missing names in a row after which no earlier output is looked for further
EARLIER_MAX_GAP = 8


@dataclass
class FolderCheck:
    error: str | None = None         # the batch must not run (exit 2)
    exclude: Path | None = None      # resolved output folder to leave out of input walks
    notes: list[str] = field(default_factory=list)
    input_folders: list[Path] = field(default_factory=list)  # resolved; never cleaned of temporary files


def _input_folders(specs: Sequence[str], glob_root) -> Iterator[tuple[str, Path, str]]:
    """(spec, resolved folder, kind) for every folder the inputs come from."""
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            yield spec, path.resolve(), "folder"
        elif path.exists():
            yield spec, path.resolve().parent, "file"
        elif any(ch in spec for ch in "*?["):
            yield spec, glob_root(spec).resolve(), "glob"


def check_folder(specs: Sequence[str], outdir: Path, glob_root) -> FolderCheck:
    """Refuse an output folder that is an input folder; exclude one that lies inside an input folder."""
    out = outdir.resolve()
    check = FolderCheck()
    for spec, folder, kind in _input_folders(specs, glob_root):
        check.input_folders.append(folder)
        if out == folder or _same_folder(out, folder):
            what = {"folder": "the input folder", "file": "the folder of the input file",
                    "glob": "the folder the pattern searches"}[kind]
            suggestion = Path(spec) / "restored" if kind == "folder" else Path(outdir) / "restored"
            check.error = (f"the output folder {outdir} is {what} {spec}: restored files would sit beside "
                           f"the originals and be read as inputs by the next run; choose another folder, "
                           f"e.g. -o {suggestion}")
            return check
        if kind == "file" or check.exclude is not None:  # (a file input's folder is not walked)
            continue
        inside = out if out.is_relative_to(folder) else _inside_under_another_path(out, folder)
        if inside is not None:
            check.exclude = inside
            there = "" if inside == out else f" (under another path: it is {inside} there)"
            check.notes.append(f"the output folder {outdir} lies inside the input folder of {spec}{there}: "
                               "files under it are not read as inputs")
    return check


def _same_folder(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one folder under two paths that resolve apart (a bind mount, a network
    share mounted twice)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # (one of them is not there yet)
        return False


def _inside_under_another_path(out: Path, folder: Path) -> Path | None:
    """Where the resolved ``out`` lies in the resolved ``folder`` when one of its ancestors is ``folder``
    under a path that resolves apart (``/mnt/x/scans/restored`` with ``/mnt/x`` a bind mount of ``/data``,
    for the input folder ``/data/scans``): ``folder`` joined with the rest of ``out``
    (``/data/scans/restored``), the path its files have in the input's walk; None when it does not lie
    inside ``folder``.  Folders are compared as :func:`_same_folder` compares them (ancestors not made
    yet are not ``folder``)."""
    for ancestor in out.parents:
        if _same_folder(ancestor, folder):
            return folder / out.relative_to(ancestor)
    return None


def unwritable(folder: Path, probe: bool = False) -> str | None:
    """Why nothing could be written into ``folder`` (made on the first write if missing), or None.
    Checked before any photo is restored, without leaving anything: a batch into a read-only folder
    would otherwise restore every photo and fail every write.  ``probe``: also make (and remove at once)
    a file there, or a folder where ``folder`` would be made: permissions pass where nothing can be made
    (``/proc``, ``/sys``, root in a folder it may not write)."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    made_there = "" if existing == folder.absolute() else " (the folder would be made there)"
    if not os.access(existing, os.W_OK | os.X_OK):  # EROFS too, even for root
        return f"{existing} is not writable{made_there}"
    if probe:
        try:
            if made_there:
                os.rmdir(tempfile.mkdtemp(prefix=".oldphoto-probe.", suffix=".part", dir=existing))
            else:
                fd, name = tempfile.mkstemp(prefix=".oldphoto-probe.", suffix=".part", dir=existing)
                os.close(fd)
                os.unlink(name)
        except OSError as exc:
            what = "a folder" if made_there else "a file"
            return f"cannot make {what} in {existing} ({exc.strerror or exc})"
    return None


# ------------------------------------------------------------------------------------------ names

def candidates(natural: Path, input_suffix: str, fitting: bool = True) -> Iterator[Path]:
    """``a.jpg``, ``a_jpg.jpg``, ``a_jpg_2.jpg``, ...: the names one input's output may take, in order;
    with ``fitting``, those longer than a file name may be (``NAME_MAX`` bytes) are left out: none can
    exist, and looking one up is an error."""
    stem = f"{natural.stem}_{input_suffix.lstrip('.').lower() or 'noext'}"
    for n in range(MAX_CANDIDATES):
        name = natural if n == 0 else natural.with_name(f"{stem}{'' if n == 1 else f'_{n}'}{natural.suffix}")
        if not fitting or name_fits(name.name):
            yield name


def too_long(natural: Path) -> str | None:
    """Why no output can be named after ``natural``, or None."""
    if name_fits(natural.name):
        return None
    size = len(os.fsencode(natural.name))
    return (f"the output's name, {natural.name}, would be {size} bytes long, more than the {NAME_MAX} a file "
            "name may have: rename the photo (or choose a --format with a shorter extension)")


def source_record(relative: Path, sha256: str) -> dict[str, str]:
    """What the provenance says an output was made from."""
    return {"path": relative.as_posix(), "sha256": sha256}


def _made_from(record: dict[str, Any] | None, source: dict[str, str]) -> bool | None:
    """True: made from ``source``; False: from another one; None: unknown (no record)."""
    if record is None:
        return None
    made = record.get("source")
    if isinstance(made, dict):
        return made.get("sha256") == source["sha256"] and made.get("path") == source["path"]
    # records of earlier versions name the input file only: its name is the best one can compare
    return isinstance(made, str) and made == Path(source["path"]).name


def _other_source(record: dict[str, Any] | None) -> str:
    made = (record or {}).get("source")
    if isinstance(made, dict):
        return f"{made.get('path', '?')} (sha256 {str(made.get('sha256', ''))[:12]})"
    return str(made or "an unknown source")


def _header(path: Path) -> tuple[tuple[int, int], object, bool] | None:
    """The image at ``path``'s stored ``(width, height)``, EXIF orientation and whether it carries EXIF or an
    ICC profile, read from its header as :func:`oldphoto.io.read_photo` would read it; None when it cannot."""
    try:
        with open(path, "rb") as fh:
            if _heif.is_heif(fh.read(12)):
                _heif.register()  # (read_photo registers pillow-heif when it reads the photo: after this)
        with guarded_warnings():
            warnings.simplefilter("ignore")  # (a large scan's bomb warning, a damaged EXIF's: a header look)
            with Image.open(path) as image:
                return (image.size, image.getexif().get(ORIENTATION, 1),
                        bool(image.info.get("exif") or image.info.get("icc_profile")))
    except Exception:
        pass
    try:  # a TIFF only tifffile reads (16-bit gray with alpha, floats)
        size, tags, exif, icc = _tiff.stored_header(path)
        return size, tags.get(ORIENTATION, 1), exif or icc
    except Exception:
        return None


def displayed_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` of the photo at ``path`` as displayed (EXIF orientation applied), read from its
    header, or None when its header cannot tell (reading the photo gives the reason)."""
    header = _header(path)
    if header is None:
        return None
    (width, height), orientation, _ = header
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def may_be_stripped(path: Path, size: tuple[int, int] | None, scales: Iterable[int] = (1,)) -> bool:
    """Whether ``path``, which carries no provenance, may be a file written with ``--strip-metadata`` for a
    photo displayed at ``size`` (None: not known) and enlarged by one of ``scales``: such a file is an image
    of that size without EXIF or ICC profile.  Anything else (a user's own photo, a scan of another size, a
    camera file) is not taken for one."""
    header = _header(path)
    if header is None or header[2]:  # not an image, or unreadable; or one with metadata: not ours
        return False
    return size is None or any(header[0] == (size[0] * k, size[1] * k) for k in scales)


def made_by_oldphoto(path: Path, strip_metadata: bool = False) -> bool:
    """Whether the photo at ``path`` (in an output folder) is a restoration or mask oldphoto wrote: it carries
    a provenance record, or, with ``strip_metadata`` (whose files carry none), it may be a stripped file
    (:func:`may_be_stripped`)."""
    try:
        if read_provenance(path) is not None:
            return True
    except Exception:  # unreadable, or not an image
        return False
    return strip_metadata and may_be_stripped(path, None)


@dataclass
class Decision:
    output: Path
    write: bool                 # False: an output made from this source is already there
    replaces: bool = False      # write over an existing output of this source (--overwrite)
    notes: list[str] = field(default_factory=list)
    # the provenance record of the output of this source found there, as read to decide (None: none found,
    # or a --strip-metadata output, which carries none): what a skipped photo's report says was done
    record: dict[str, Any] | None = None


def leave_alone(path: Path, source: dict[str, str], *, unmarked_ours: bool = False,
                size: tuple[int, int] | None = None) -> str | None:
    """Why the existing ``path`` (a side file such as ``--save-mask``'s mask) must not be replaced by a file
    made from ``source``, or None when it may be: missing, or made from this very source.  With
    ``unmarked_ours`` (``--strip-metadata``: files carry no record) one without a record is taken as ours
    when it may be a stripped file of ``size`` (:func:`may_be_stripped`)."""
    if not path.exists() and not path.is_symlink():
        return None
    if not path.is_file() or path.is_symlink():
        return f"{path} exists and is not a plain file: left untouched"
    try:
        record = read_provenance(path)
    except Exception:  # unreadable or not an image: certainly not made from this source
        record = None
    same = _made_from(record, source)
    if same or (same is None and unmarked_ours and may_be_stripped(path, size)):
        return None
    if same is None:
        return f"{path} exists and was not written by oldphoto: left untouched"
    return f"{path} was made from another source, {_other_source(record)}: left untouched"


def decide(natural: Path, input_path: Path, source: dict[str, str], *, reserved: Iterable[str] = (),
           own: Path | None = None, inputs: Iterable[Path] = (), overwrite: bool = False,
           strip_metadata: bool = False, size: tuple[int, int] | None = None) -> Decision:
    """Where the output of ``input_path`` goes, or that it is already there.

    ``reserved``: lower-cased output paths planned for the batch's other inputs (skipped, except ``own``,
    this input's planned path, and one that holds this input's output from an earlier run: for that,
    ``reserved`` maps each path to the input it is planned for); ``inputs``: resolved input paths, never
    written over.  With ``strip_metadata`` outputs carry no provenance, so an existing file without one
    among this input's names is taken for its earlier output when it may be one: an image of the input's
    displayed ``size`` (or 2 or 4 times it: ``--upscale``) without EXIF or ICC profile
    (:func:`may_be_stripped`); anything else there is left untouched and the next name is tried.
    """
    owners = reserved if isinstance(reserved, Mapping) else {}
    reserved = set(reserved)
    own_key = str(own).lower() if own is not None else None
    inputs = set(inputs)
    notes: list[str] = []
    problem = too_long(natural)
    if problem:
        raise OSError(problem)
    for candidate in candidates(natural, input_path.suffix):
        key = str(candidate).lower()
        if key in reserved and key != own_key:
            continue
        if not candidate.exists() and not candidate.is_symlink():
            # a run given these inputs in another order, or only some of them, may have put this input's
            # output under a name planned for another input now, or past a name free now (also the
            # natural one, when the file an earlier run stepped over is gone since): it is found again,
            # or the photo would be restored a second time under a new name
            earlier = _earlier_output(natural, input_path.suffix, source, reserved, owners, own_key, inputs)
            if earlier is not None:
                return Decision(earlier[0], overwrite, replaces=overwrite, notes=notes, record=earlier[1])
            return Decision(candidate, True, notes=notes)
        if not candidate.is_file() or candidate.is_symlink():
            notes.append(f"{candidate} exists and is not a plain file: left untouched")
            continue
        if candidate.resolve() in inputs:
            notes.append(f"{candidate} is an input of this batch: left untouched")
            continue
        try:
            record = read_provenance(candidate)
        except Exception:  # unreadable or not an image: certainly not an output of this source
            record = None
        same = _made_from(record, source)
        if same is None and strip_metadata and may_be_stripped(candidate, size, UPSCALE_CHOICES):
            same = True  # stripped outputs carry no record: a file that may be one is taken at its word
        if same:
            return Decision(candidate, overwrite, replaces=overwrite, notes=notes, record=record)
        if same is None:
            notes.append(f"{candidate} exists and was not written by oldphoto: left untouched")
        else:
            notes.append(f"{candidate} is the restoration of another source, {_other_source(record)}: "
                         "left untouched")
    raise OSError(f"no free output name for {input_path.name} among the {MAX_CANDIDATES} it may take (names "
                  f"longer than the {NAME_MAX} bytes of a file name left out)")


def _earlier_output(natural: Path, input_suffix: str, source: dict[str, str], reserved: set[str],
                    owners: Mapping[str, Path], own_key: str | None, inputs: set[Path]
                    ) -> tuple[Path, dict[str, Any]] | None:
    """An existing file among the names ``natural`` may take that was made from ``source``, with its
    provenance record, or None.  One planned for another input (in ``reserved``; ``owners``: planned path ->
    input) is taken only when that input is not a byte-identical copy of the same name (whose record would
    be the same); with no owner known, not at all.  Names are given in order, first free first, so the
    search stops after ``EARLIER_MAX_GAP`` missing names in a row (a few stats per photo, where listing a
    folder of scans for every photo cost a first run of several boxes minutes)."""
    missing = 0
    for candidate in candidates(natural, input_suffix):
        if not candidate.exists() and not candidate.is_symlink():
            missing += 1
            if missing >= EARLIER_MAX_GAP:
                return None
            continue
        missing = 0
        if not candidate.is_file() or candidate.is_symlink() or candidate.resolve() in inputs:
            continue
        try:
            record = read_provenance(candidate)
        except Exception:
            continue
        if not _made_from(record, source):
            continue
        key = str(candidate).lower()
        if key in reserved and key != own_key:
            owner = owners.get(key)
            try:
                if owner is None or sha256_file(owner) == source["sha256"]:
                    continue  # (the identical copy's own output)
            except OSError:
                continue
        return candidate, record
    return None


# ------------------------------------------------------------------------------------------ leftovers

class FolderLock:
    """An advisory lock on the output folder for the batch's lifetime (POSIX ``flock`` on the folder).

    Only the holder cleans temporary files, so two batches writing into one folder never delete each
    other's writes in progress.  A lock a killed process held is released by the system with it.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.fd: int | None = None
        self.held = False

    def __enter__(self) -> FolderLock:
        self.take()
        return self

    def take(self) -> bool:
        """Lock the folder if it is not yet: a folder made by the batch's first write can be locked only
        then (to clean what that batch's lost writes left).  Whether the lock is held now."""
        if self.held:
            return True
        try:
            import fcntl
        except ImportError:  # Windows: no flock; cleaning is still safe for a single batch
            self.held = self.folder.is_dir()
            return self.held
        if not self.folder.is_dir():
            return False  # nothing to clean yet; the folder is made on the first write
        fd = None
        try:
            fd = os.open(self.folder, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.fd, self.held = fd, True
        except OSError:
            if fd is not None:
                os.close(fd)
        return self.held

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)  # closing releases the lock
            self.fd = None


def clean_stale_parts(folder: Path, only_name: str | None = None, spare: Iterable[Path] = ()) -> list[Path]:
    """Remove temporary files of interrupted atomic writes under ``folder`` (``.NAME.xxxxxxxx.part``,
    regular files only); ``only_name``: just those of that one file, in ``folder`` itself; ``spare``:
    resolved folders (input folders inside the output folder) whose files are left alone."""
    if not folder.is_dir():
        return []
    root = folder.resolve()
    spare = [s for s in spare if s != root and s.is_relative_to(root)]  # not the output folder's parents
    removed = []
    own = temp_name_part(only_name) if only_name else None
    found = folder.glob(f".{glob.escape(own)}.*.part" if own else "**/.*.part")
    for path in found:
        match = TEMP_NAME.match(path.name)
        if match is None or (own is not None and match["name"] != own):
            continue
        if path.is_symlink() or not path.is_file():
            continue
        if any(path.resolve().is_relative_to(s) for s in spare):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed

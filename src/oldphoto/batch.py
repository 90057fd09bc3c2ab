"""``oldphoto restore``: restore many photos, resumably, reporting every file.

The runner core (``run_batch``) takes any ``restore(pixels, mask) -> result`` callable, so it is tested
with a small deterministic image operation; ``register`` wires it to ``oldphoto.pipeline.Restorer``,
which is built lazily (a rerun where every output already exists never loads a model).

Guarantees: one bad photo never stops the batch; outputs keep relative paths and never overwrite each
other; existing outputs are skipped unless ``--overwrite`` (so a rerun resumes); writes are atomic; the
first Ctrl-C stops after the current photo, a second aborts it without leaving a partial file.
"""

from __future__ import annotations

import dataclasses
import gc
import glob
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from oldphoto import __version__
from oldphoto.io import (
    DEFAULT_JPEG_QUALITY,
    DEFAULT_MAX_PIXELS,
    EXTENSION_FAMILY,
    IMAGE_EXTENSIONS,
    PhotoError,
    atomic_write,
    provenance_record,
    read_photo,
    write_photo,
)
from oldphoto.io.photo import DEFAULT_SUFFIX, FORMAT_FAMILY, SAME_FAMILY, normalise_format

OK, SKIPPED, FAILED, NOT_PROCESSED = "ok", "skipped", "failed", "not processed"
EXIT_INTERRUPTED = 130


class SetupError(RuntimeError):
    """The restorer itself cannot run (missing weights, bad device): stop, no photo is to blame."""


class RestoreFn(Protocol):
    """``restore(pixels float32 H×W×3 sRGB [0,1], mask bool H×W | None)`` -> a Result-like object
    (``.image``, optionally ``.faces`` and ``.models``) or a bare image array."""

    def __call__(self, pixels: np.ndarray, mask: np.ndarray | None) -> Any: ...


@dataclass
class Job:
    input: Path
    relative: Path          # where the output goes under the output folder (suffix decided later)
    output: Path | None = None


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


@dataclass
class BatchReport:
    entries: list[Entry]
    started: float
    finished: float
    interrupted: bool = False
    fatal: str | None = None     # why the batch stopped early (SetupError), if it did

    def counts(self) -> dict[str, int]:
        counts = {OK: 0, SKIPPED: 0, FAILED: 0, NOT_PROCESSED: 0}
        for entry in self.entries:
            counts[entry.status] += 1
        return counts

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return 0 if self.counts()[FAILED] == 0 and self.fatal is None else 1

    def summary(self) -> str:
        c = self.counts()
        text = (f"{len(self.entries)} inputs: {c[OK]} restored, {c[SKIPPED]} skipped, {c[FAILED]} failed"
                f" in {self.finished - self.started:.1f} s")
        if self.fatal:
            text += f"; stopped, {c[NOT_PROCESSED]} not processed: {self.fatal}"
        elif c[NOT_PROCESSED] or self.interrupted:
            text += f"; interrupted, {c[NOT_PROCESSED]} not processed"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "software": f"oldphoto {__version__}",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.finished)),
            "interrupted": self.interrupted,
            "fatal": self.fatal,
            "exit_code": self.exit_code,
            "summary": self.counts(),
            "inputs": [dataclasses.asdict(e) for e in self.entries],
        }

    def write(self, path: Path) -> None:
        text = json.dumps(self.to_json(), indent=2, default=str)
        atomic_write(Path(path), lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


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


def collect_inputs(specs: Sequence[str], recursive: bool = False) -> tuple[list[Job], list[Entry]]:
    """Expand files, folders and globs into jobs; non-image files in folders become 'skipped' entries,
    missing paths 'failed' ones.  Relative output paths: a file's name, a folder's relative path, or a
    glob match's path relative to the glob's fixed prefix."""
    jobs: list[Job] = []
    entries: list[Entry] = []
    seen: set[Path] = set()

    def add(path: Path, relative: Path, from_folder: bool) -> None:
        key = path.resolve()
        if key in seen:
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
            walker: Iterator[Path] = path.rglob("*") if recursive else path.iterdir()
            for child in sorted(walker):
                hidden = any(part.startswith(".") for part in child.relative_to(path).parts)
                if child.is_file() and not hidden:
                    add(child, child.relative_to(path), from_folder=True)
        elif path.exists():
            add(path, Path(path.name), from_folder=False)
        elif _is_glob(spec):
            matches = sorted(glob.glob(spec, recursive=recursive))
            if not matches:
                entries.append(Entry(spec, FAILED, "no file matches this pattern"))
            root = _glob_root(spec)
            for match in matches:
                m = Path(match)
                if m.is_file():
                    add(m, m.relative_to(root) if m.is_relative_to(root) else Path(m.name), from_folder=True)
        else:
            entries.append(Entry(spec, FAILED, "no such file or directory"))
    return jobs, entries


def _content_family(path: Path) -> str | None:
    """The format family by content (header only), so a misnamed file gets the right output name."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
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
        job.output = outdir / job.relative.with_suffix(own or DEFAULT_SUFFIX[family])
        wanted.setdefault(str(job.output).lower(), []).append(job)
    taken = {key for key, claimants in wanted.items() if len(claimants) == 1}
    for key, claimants in sorted(wanted.items()):
        if len(claimants) == 1:
            continue
        claimants.sort(key=lambda j: (j.input.suffix.lower() != j.output.suffix.lower(), str(j.relative)))
        taken.add(key)
        for job in claimants[1:]:
            base = job.output
            stem = f"{base.stem}_{job.input.suffix.lstrip('.').lower() or 'noext'}"
            candidate, n = base.with_name(stem + base.suffix), 2
            while str(candidate).lower() in taken or str(candidate).lower() in wanted:
                candidate, n = base.with_name(f"{stem}_{n}{base.suffix}"), n + 1
            taken.add(str(candidate).lower())
            job.output = candidate


def find_mask(mask_dir: Path, job: Job) -> Path | None:
    """The user mask for a job: same stem (never sort order), beside the same relative folder first."""
    for folder in (mask_dir / job.relative.parent, mask_dir):
        candidates = sorted(p for p in folder.glob(glob.escape(job.input.stem) + ".*")
                            if p.suffix.lower() in IMAGE_EXTENSIONS)
        if candidates:
            png = [p for p in candidates if p.suffix.lower() == ".png"]
            return (png or candidates)[0]
    return None


def read_mask(path: Path, size: tuple[int, int], max_pixels: int | None) -> np.ndarray:
    """A bool H×W mask (white = defect), oriented like the displayed photo, of exactly ``size``."""
    mask_photo = read_photo(path, max_pixels=max_pixels)
    if mask_photo.size != size:
        raise PhotoError(path, f"mask is {mask_photo.size[0]}x{mask_photo.size[1]} but the photo is "
                               f"{size[0]}x{size[1]}")
    return mask_photo.pixels.mean(axis=-1) >= 0.5


# ------------------------------------------------------------------------------------------ progress

class Progress:
    """A tqdm bar with ETA on a terminal; plain log lines otherwise."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.done = 0
        self.bar = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="photo", file=self.stream, dynamic_ncols=True)

    def log(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def update(self, entry: Entry) -> None:
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
            head += f" -> {entry.output} ({entry.seconds:.1f} s)"
        elif entry.reason:
            head += f": {entry.reason}"
        return head + "".join(f"\n    warning: {w}" for w in entry.warnings)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------------------ runner

def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")  # only if the restorer already loaded it
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return oom is not None and isinstance(exc, oom)


def _free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _result_parts(result: Any) -> tuple[np.ndarray, int | None, dict[str, str] | None]:
    if isinstance(result, np.ndarray):
        return result, None, None
    faces = getattr(result, "faces", None)
    models = getattr(result, "models", None)
    return result.image, (len(faces) if faces is not None else None), (dict(models) if models else None)


def restoration_record(result: Any) -> dict[str, Any] | None:
    """What the restorer did to a photo, for the report and the provenance tag (None: not known)."""
    path = getattr(result, "path", None)
    if path is None:
        return None
    mask = getattr(result, "mask", None)
    record: dict[str, Any] = {
        "path": path,
        "repaired_fraction": round(float(mask.mean()), 6) if mask is not None else 0.0,
        "fidelity": getattr(result, "fidelity", None),
    }
    defects = getattr(result, "defects", None)
    if defects is not None:
        record["defects"] = {"strokes": defects.strokes, "specks": defects.specks, "blobs": defects.blobs,
                             "left_as_content": defects.content}
    return record


def saved_mask_path(output: Path) -> Path:
    """Where --save-mask puts an output's defect mask: beside it, ``<stem>.mask.png``."""
    return output.with_name(f"{output.stem}.mask.png")


def write_mask(path: Path, mask: np.ndarray | None, size: tuple[int, int]) -> None:
    """An 8-bit gray PNG of the displayed photo's size, white = repaired (all black: nothing was)."""
    from PIL import Image

    width, height = size
    pixels = np.zeros((height, width), np.uint8) if mask is None else mask.astype(np.uint8) * 255
    if pixels.shape != (height, width):
        raise ValueError(f"mask is {pixels.shape[1]}x{pixels.shape[0]}, the photo {width}x{height}")
    atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))


def restore_one(job: Job, restore: RestoreFn, config: BatchConfig) -> Entry:
    """Read, restore and write one photo; every failure becomes a 'failed' entry with the reason."""
    assert job.output is not None
    started = time.perf_counter()
    entry = Entry(str(job.input), OK, output=str(job.output))
    try:
        entry.bytes = job.input.stat().st_size
    except OSError:
        pass
    if job.output.exists() and not config.overwrite:
        entry.status, entry.reason = SKIPPED, "output already exists (use --overwrite to redo it)"
        return entry
    try:
        photo = read_photo(job.input, max_pixels=config.max_pixels)
        entry.width, entry.height = photo.size
        entry.warnings.extend(photo.warnings)
        mask = None
        if config.mask_dir is not None:
            mask_path = find_mask(config.mask_dir, job)
            if mask_path is None:
                entry.warnings.append(f"no mask named {job.input.stem}.* in {config.mask_dir}; "
                                      "defects detected automatically")
            else:
                mask = read_mask(mask_path, photo.size, config.max_pixels)
        result = restore(photo.pixels, mask)
        image, faces, models = _result_parts(result)
        if models is None and config.models is not None:
            models = config.models()
        entry.faces, entry.models = faces, models or {}
        entry.restoration = restoration_record(result)
        record = provenance_record(entry.models, config.options, source=job.input.name,
                                   restoration=entry.restoration)
        entry.warnings.extend(write_photo(job.output, image, like=photo, format=config.format,
                                          quality=config.quality, provenance=record,
                                          strip_metadata=config.strip_metadata))
        if config.save_mask:
            target = saved_mask_path(job.output)
            write_mask(target, getattr(result, "mask", None), photo.size)
            entry.mask = str(target)
    except PhotoError as exc:
        entry.status, entry.reason = FAILED, exc.reason if exc.path == job.input else str(exc)
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
        entry.seconds = round(time.perf_counter() - started, 3)
    if entry.status == FAILED:
        entry.output = None
    return entry


def run_batch(jobs: list[Job], restore: RestoreFn, config: BatchConfig, *,
              pre_entries: Sequence[Entry] = (), progress: Progress | None = None,
              stop: threading.Event | None = None) -> BatchReport:
    """Process ``jobs`` in order.  ``stop`` set (first Ctrl-C) -> finish the current photo, mark the
    rest 'not processed'; KeyboardInterrupt inside a photo (second Ctrl-C) -> that photo too."""
    started = time.time()
    if any(job.output is None for job in jobs):
        plan_outputs(jobs, config.outdir, config.format)
    entries = list(pre_entries)
    if progress is not None:
        for entry in pre_entries:
            progress.update(entry)
    interrupted = False
    fatal = None
    for index, job in enumerate(jobs):
        if stop is not None and stop.is_set():
            interrupted = True
        if interrupted:
            entries.extend(Entry(str(j.input), NOT_PROCESSED, "batch interrupted") for j in jobs[index:])
            break
        try:
            entry = restore_one(job, restore, config)
        except KeyboardInterrupt:
            interrupted = True
            entry = Entry(str(job.input), NOT_PROCESSED, "interrupted while processing; no output written")
        except SetupError as exc:
            fatal = str(exc)
            entries.extend(Entry(str(j.input), NOT_PROCESSED, fatal) for j in jobs[index:])
            if progress is not None:
                progress.log(f"error: {fatal}")
            break
        entries.append(entry)
        if progress is not None:
            progress.update(entry)
    interrupted = interrupted or (stop is not None and stop.is_set())
    return BatchReport(entries, started, time.time(), interrupted, fatal)


@dataclass
class _SigintHandler:
    """First Ctrl-C: set ``stop`` and say so; second: KeyboardInterrupt (aborts the current photo)."""

    stop: threading.Event
    say: Callable[[str], None]
    previous: Any = None

    def __enter__(self) -> _SigintHandler:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        self.say("interrupt: stopping after the current photo (Ctrl-C again to abort it)")

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# ------------------------------------------------------------------------------------------ CLI

class _LazyRestorer:
    """Builds ``oldphoto.pipeline.Restorer`` on the first photo that needs it."""

    def __init__(self, args):
        self.args = args
        self._restorer = None
        self.options: Any = None

    def _get(self):
        if self._restorer is None:
            from oldphoto.pipeline import RestoreOptions, Restorer

            try:
                self.options = RestoreOptions.from_args(self.args)
                self._restorer = Restorer(self.options)
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
        from oldphoto.pipeline import RestoreOptions

        options = RestoreOptions.from_args(args)
        return dataclasses.asdict(options) if dataclasses.is_dataclass(options) else dict(vars(options))
    except Exception:
        return {}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "restore", help="restore photos (files, folders, globs)",
        description="Restore old photos. Outputs keep the input's size, orientation, colour profile, "
                    "bit depth and metadata, plus a provenance tag. Existing outputs are skipped, so a "
                    "rerun resumes an interrupted batch.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", dest="outdir", required=True, metavar="OUTDIR",
                        help="output folder (relative paths of folder inputs are kept)")
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    parser.add_argument("--format", default="same", choices=["same", "png", "jpg", "tiff", "webp"],
                        help="output format (default: same family as the input; BMP/GIF become PNG)")
    parser.add_argument("--quality", type=int, default=DEFAULT_JPEG_QUALITY, metavar="Q",
                        help=f"JPEG/WebP quality 1-100 (default {DEFAULT_JPEG_QUALITY})")
    parser.add_argument("--overwrite", action="store_true", help="redo photos whose output exists")
    parser.add_argument("--strip-metadata", action="store_true",
                        help="write no EXIF, ICC profile or provenance (pixels are then plain sRGB)")
    parser.add_argument("--mask-dir", type=Path, metavar="DIR",
                        help="user defect masks (white = defect), matched to inputs by file stem")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help=f"refuse images larger than N pixels (decompression-bomb guard; default "
                             f"{DEFAULT_MAX_PIXELS}; 0 = no limit)")
    parser.add_argument("--report", type=Path, metavar="FILE.json", help="write a JSON report of every input")
    parser.add_argument("--save-mask", action="store_true",
                        help="also write the repaired defect mask beside each output, as NAME.mask.png "
                             "(white = repaired)")
    parser.add_argument("--no-progress", action="store_true", help="plain log lines even on a terminal")
    try:
        from oldphoto.pipeline import RestoreOptions
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("oldphoto"):
            raise
    else:
        RestoreOptions.add_arguments(parser)
    parser.set_defaults(func=main)


def main(args, restore: RestoreFn | None = None, stream=None) -> int:
    """Run ``oldphoto restore``; ``restore`` replaces the pipeline (tests, other front ends)."""
    stream = stream if stream is not None else sys.stderr
    if not 1 <= args.quality <= 100:
        print("oldphoto restore: --quality must be between 1 and 100", file=stream)
        return 2
    if args.mask_dir is not None and not args.mask_dir.is_dir():
        print(f"oldphoto restore: --mask-dir {args.mask_dir} is not a folder", file=stream)
        return 2
    lazy = None
    if restore is None:
        lazy = _LazyRestorer(args)
        restore = lazy
    config = BatchConfig(
        outdir=Path(args.outdir), format=normalise_format(args.format), quality=args.quality,
        overwrite=args.overwrite, strip_metadata=args.strip_metadata, max_pixels=args.max_pixels or None,
        mask_dir=args.mask_dir, save_mask=args.save_mask,
        options=_options_record(args) if lazy is not None else {},
        models=lazy.model_info if lazy is not None else None,
    )
    jobs, pre = collect_inputs(args.inputs, recursive=args.recursive)
    plan_outputs(jobs, config.outdir, config.format)
    progress = Progress(len(jobs) + len(pre), stream=stream, enabled=not args.no_progress)
    stop = threading.Event()
    try:
        with _SigintHandler(stop, progress.log):
            report = run_batch(jobs, restore, config, pre_entries=pre, progress=progress, stop=stop)
    finally:
        progress.close()
    if args.report is not None:
        report.write(args.report)
    print(report.summary(), file=stream, flush=True)
    return report.exit_code


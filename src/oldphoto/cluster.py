"""``oldphoto restore --ray``: the batch of ``oldphoto.batch`` spread over a Ray cluster (Ray Data).

The driver lists and plans the photos exactly as the local batch does (``collect_inputs``,
``plan_outputs``), then streams them through three Ray Data stages, the three steps of
``batch.restore_one``:

1. CPU tasks: hash the input, decide where its output goes (skip it if made from this source), decode it
   (``batch.open_photo``);
2. an actor pool: restore (``batch.restore_photo``); each actor builds the Restorer once, on its first
   photo; one GPU per actor where the cluster has GPUs, CPU actors otherwise;
3. CPU tasks: encode and write atomically, with the provenance (``batch.write_restored``).

Every photo comes back to the driver as its report entry, keyed by its index: the report lists every
input exactly once (a duplicate from a retried task is dropped), progress and the report are the local
batch's.  Paths travel absolute; inputs, masks and the output folder must be at the same paths on every
node (a shared filesystem).

Failures: a photo that fails is a 'failed' entry and the run goes on (a write that finds the disk full
stops it, as locally: that photo fails naming its output, the others are not processed); a worker that
dies (crash, killed, node lost) is replaced by Ray and its photos are redone (retried tasks write to the
decided name with an atomic replace, so never a partial file nor a second copy; the driver removes
temporary files of writes lost with their worker at the end, those named after its own outputs).  A photo
whose workers die ``RETRIES + 1`` times is reported failed instead of stopping the run (the photos of its
block lost with it are tried again in smaller blocks).  The restorer failing to start at all (no weights)
stops the run with the reason, as locally.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import logging
import os
import pickle
import re
import secrets
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oldphoto import __version__, footprint, outputs
from oldphoto.batch import (
    FAILED,
    NOT_PROCESSED,
    REPORT_INTERVAL,
    STOP_SIGNALS,
    BatchConfig,
    BatchReport,
    DiskFull,
    Entry,
    Job,
    LazyRestorer,
    Opened,
    Progress,
    Restored,
    SetupError,
    disk_full_fatal,
    open_photo,
    restore_photo,
    write_restored,
)
from oldphoto.batch.mask_files import mask_paths
from oldphoto.files import TEMP_NAME, temp_name_part
from oldphoto.reasons import ReasonCode

INSTALL_HINT = ("--ray needs Ray with Ray Data, an optional extra: pip install 'oldphoto[ray]' "
                "(or pip install 'ray[data]'), the same version on every node of the cluster")
RETRIES = 3            # retries of a task or actor call whose worker died, before its photos are failed
TASK_CPUS = 0.5        # CPUs one decode/encode task reserves (they mostly wait on files)
MAX_BLOCKS = 10_000    # the photo list is cut into at most this many blocks (driver-side bookkeeping)
BLOCK_BYTES = 1 << 20  # a decoded photo larger than this travels alone (so it can be restored in parallel)
RATE_EVERY = 30.0      # seconds between two "done, rate, ETA" lines in plain (non-terminal) output
RATE_WINDOW = 120.0    # the rate is measured over about this many seconds
# Ray's token authentication (Ray 2.5x and later): what configures it in the environment
AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
# said when a run fails after Ray offered a token found on this machine to the cluster: one started
# without token authentication cancels every actor of such a driver, which Ray reports as nothing more
# than "The actor never ran - it was cancelled before it started running"
TOKEN_ADVICE = ("; Ray found a token on this machine (~/.ray/auth_token) and offered it to the cluster: if "
                "the cluster was started without token authentication, give its address (--ray HOST:PORT, "
                "where Ray offers no token) or set RAY_AUTH_MODE=disabled")
# `--ray` without an address where Ray finds no cluster: the photos are restored on this machine alone,
# which the line saying the layout ("1 node(s)") does not tell from a cluster of one node
NO_CLUSTER = ("no Ray cluster found ($RAY_ADDRESS is not set, and Ray's temporary folder holds no address of "
              "a `ray start`): the photos are restored by a Ray instance of this machine alone; --ray auto "
              "joins any cluster running on this machine, --ray HOST:PORT a given one")


# ------------------------------------------------------------------------------------------ arguments

def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("cluster (Ray; docs/cluster.md)")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on a Ray cluster: ADDRESS host:port of a cluster this machine belongs to (not "
                        "ray://: run on the head node); 'auto' = the cluster started on this machine; "
                        "'local' = a Ray instance of this machine alone; without "
                        "ADDRESS: $RAY_ADDRESS, else the cluster of this machine, else a local instance. "
                        "Put it after the inputs, or write --ray=ADDRESS")
    g.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="restorer actors (default: one per GPU of the cluster; without GPUs or with --device "
                        "cpu, one per node)")
    g.add_argument("--ray-cpus", type=float, default=None, metavar="C",
                   help="CPUs each restorer actor reserves and uses for its threads (default: 1 with GPUs; "
                        "without GPUs, all but one of the smallest node's, or 0.5 on one-CPU nodes, shared "
                        "by the actors of a node when --ray-workers exceeds the nodes)")


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None and importlib.util.find_spec("ray.data") is not None


def check_arguments(args: argparse.Namespace) -> str | None:
    """Why ``--ray`` cannot run as given (None: it can); nothing is started."""
    address = args.ray or ""
    client = address or os.environ.get("RAY_ADDRESS", "")
    if client.startswith("ray://"):
        # Ray Data runs only in a driver of the cluster: through Ray Client it failed after starting, with
        # "AttributeError: 'Worker' object has no attribute 'core_worker'" (ray-project/ray#48682)
        given = f"--ray {address}" if address else f"RAY_ADDRESS={client}"
        return (f"{given}: Ray Client (ray://) cannot run Ray Data; run the command on a machine of the "
                "cluster (the head node) with --ray or --ray HOST:PORT, or submit it as a Ray Job "
                "(docs/cluster.md)")
    if address and address not in ("auto", "local") and ":" not in address:
        taken = " (it is a file or folder: was it meant as an input?)" if Path(address).exists() else ""
        return (f"--ray {address!r} is not a cluster address (host:port, auto or local){taken}; write "
                "the inputs before --ray, or --ray=ADDRESS")
    device = getattr(args, "device", "auto") or "auto"
    if device.startswith("cuda:") and device != "cuda:0":
        # Ray gives each worker its GPU as the only one it sees (cuda:0): cuda:1 failed in every worker
        return (f"--device {device} with --ray: each worker is given one GPU of its own by Ray, so there is "
                "no GPU to choose; use --device cuda (or auto), and CUDA_VISIBLE_DEVICES when starting "
                "the cluster's nodes to keep GPUs out of it")
    if args.ray_workers is not None and args.ray_workers < 1:
        return f"--ray-workers must be at least 1, got {args.ray_workers}"
    cpus = args.ray_cpus
    if cpus is not None and not (0 < cpus <= 1 or (cpus > 1 and cpus == int(cpus))):
        return f"--ray-cpus must be a fraction up to 1 or a whole number, got {cpus}"
    if not ray_available():
        return INSTALL_HINT
    return None


# ------------------------------------------------------------------------------------------ worker side

@dataclass
class _Shared:
    """What every stage needs, put once into the object store (a million photos' reserved names are too
    large to ship with each task)."""

    config: BatchConfig
    reserved: Mapping[str, Path]  # planned output -> its input (outputs.decide)
    inputs: frozenset[Path]
    estimate_options: dict[str, Any]
    memory_limit: int | None


class _SharedHandle:
    """Carries the object reference inside a list so that Ray does not resolve it for every task; each
    worker process fetches the shared state once and keeps it."""

    _cache: dict[str, _Shared] = {}

    def __init__(self, ref: Any):
        self.ref = [ref]

    def get(self) -> _Shared:
        key = self.ref[0].hex()
        state = self._cache.get(key)
        if state is None:
            import ray

            self._cache.clear()  # a worker process serves one run at a time
            state = self._cache[key] = ray.get(self.ref[0])
        return state


def _row(index: int, kind: str, value: Any) -> dict[str, Any]:
    # the work travels pickled: a Photo with its metadata is not a table column
    return {"index": index, "kind": kind, "data": pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)}


def _step_row(index: int, step: Opened | Restored | Entry) -> dict[str, Any]:
    return _row(index, "entry" if isinstance(step, Entry) else "work", step)


def _open_stage(row: dict[str, Any], handle: _SharedHandle) -> dict[str, Any]:
    """CPU task: hash, place and decode one photo (batch.open_photo)."""
    s = handle.get()
    job: Job = pickle.loads(row["data"])
    guard = footprint.Guard(options=s.estimate_options, limit=s.memory_limit)
    step = open_photo(job, s.config, reserved=s.reserved, inputs=s.inputs, guard=guard)
    return _step_row(row["index"], step)


def _write_stage(row: dict[str, Any], handle: _SharedHandle) -> dict[str, Any]:
    """CPU task: encode and write one restored photo (batch.write_restored)."""
    if row["kind"] != "work":
        return row
    s = handle.get()
    work: Restored = pickle.loads(row["data"])
    try:
        return _step_row(row["index"], write_restored(work, s.config, reserved=s.reserved))
    except DiskFull as exc:  # the photo failed (nothing of it left on disk); the driver stops the run
        return _row(row["index"], "disk_full", (exc.entry, str(exc.path)))


class _RestoreWorker:
    """An actor of the pool: builds the Restorer once (on its first photo, so a rerun where everything is
    done loads no model) and restores photo after photo."""

    def __init__(self, handle: _SharedHandle, options: dict[str, Any] | None, restore: Any,
                 threads: int, version: str):
        if version != __version__:
            raise SetupError(f"this node has oldphoto {__version__}, the driver {version}: install the "
                             "same version on every node")
        try:
            import torch

            torch.set_num_threads(threads)  # what the actor reserved, not the whole machine
        except ImportError:
            pass
        self.handle = handle
        if restore is None:
            restore = LazyRestorer(argparse.Namespace(**(options or {})))
        self.restore = restore
        self.config: BatchConfig | None = None

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        if row["kind"] != "work":
            return row
        if self.config is None:
            models = getattr(self.restore, "model_info", None)
            self.config = dataclasses.replace(self.handle.get().config, models=models)
        work: Opened = pickle.loads(row["data"])
        try:
            step = restore_photo(work, self.restore, self.config)
        except SetupError as exc:  # the restorer cannot run at all: the driver stops the run
            return _row(row["index"], "fatal", str(exc))
        return _step_row(row["index"], step)


# ------------------------------------------------------------------------------------------ driver side

class _Rate:
    """Photos done per second over the last ``RATE_WINDOW`` seconds, and the time left at that rate."""

    def __init__(self, total: int):
        self.total = total
        self.started = time.monotonic()
        self.samples: deque[tuple[float, int]] = deque([(self.started, 0)])
        self.last_line = self.started

    def add(self, done: int) -> None:
        now = time.monotonic()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] > RATE_WINDOW:
            self.samples.popleft()

    def rate(self) -> float | None:
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 and d1 > d0 else None

    def line(self, done: int) -> str:
        rate = self.rate()
        text = f"progress: {done}/{self.total} photos"
        if rate is not None:
            left = (self.total - done) / rate
            text += f", {rate:.2f} photos/s, ETA {_clock(left)}"
        return text

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last_line >= RATE_EVERY:
            self.last_line = now
            return True
        return False


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class _Layout:
    """How the cluster is used: restorer actors and what each reserves."""

    workers: int
    cpus: float
    gpus: int
    nodes: int
    cluster_cpus: float
    cluster_gpus: int

    def shortfall(self) -> str | None:
        """Why some workers would wait for resources the cluster does not have now (None: they fit)."""
        if self.gpus and self.workers > self.cluster_gpus:
            return (f"{self.workers} workers need {self.workers} GPUs, the cluster has {self.cluster_gpus} "
                    "now: the others wait until an autoscaler adds GPUs")
        if self.workers * self.cpus + TASK_CPUS > self.cluster_cpus:
            return (f"{self.workers} workers with {self.cpus:g} CPU each and the decode/write tasks need "
                    f"more than the cluster's {self.cluster_cpus:g} CPUs now: unless an autoscaler adds "
                    "nodes, the workers may leave the tasks no CPU and the run wait for ever (lower "
                    "--ray-workers or --ray-cpus)")
        return None

    def describe(self) -> str:
        each = "1 GPU" if self.gpus else f"{self.cpus:g} CPU"
        return (f"Ray cluster: {self.nodes} node(s), {self.cluster_cpus:g} CPU(s), "
                f"{self.cluster_gpus} GPU(s); {self.workers} restorer worker(s) with {each} each")


def _layout(ray: Any, args: argparse.Namespace) -> _Layout:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    resources = ray.cluster_resources()
    cluster_gpus = int(resources.get("GPU", 0))
    cluster_cpus = float(resources.get("CPU", 0))
    # --device cpu on a cluster with GPUs: CPU actors, not one per GPU holding a GPU it never uses
    gpus = 1 if cluster_gpus and getattr(args, "device", "auto") != "cpu" else 0
    if gpus:
        workers = args.ray_workers or cluster_gpus
        cpus = args.ray_cpus or 1.0
    else:
        workers = args.ray_workers or max(1, len(nodes))
        cpus = args.ray_cpus or _cpu_share(nodes, workers)
    return _Layout(workers, cpus, gpus, len(nodes), cluster_cpus, cluster_gpus)


def _cpu_share(nodes: Sequence[Mapping[str, Any]], workers: int) -> float:
    """The CPUs of a CPU actor by default: all but one of the smallest node's (0.5 on one-CPU nodes), shared
    by the actors a node holds when there are more of them than nodes.  (Each taking all but one, two
    actors on one node left no CPU to the decode/write tasks: the run waited for ever, saying nothing.)"""
    smallest = min((n.get("Resources", {}).get("CPU", 0) for n in nodes), default=1)
    spare = float(int(smallest) - 1) if smallest >= 2 else 0.5
    share = spare / -(-workers // max(1, len(nodes)))
    return float(int(share)) if share >= 1 else max(0.01, int(share * 100) / 100)


def _absolute(job: Job) -> Job:
    return Job(job.input.absolute(), job.relative, job.output.absolute() if job.output else None,
               job.natural.absolute() if job.natural else None)


def _as_given(entry: Entry, job: Job, outdir: Path, mask_dir: Path | None = None) -> Entry:
    """The entry with the paths the user gave (workers saw absolute ones), as the local batch writes: its
    input, output and mask, and the paths its reason and warnings name (an output, a name left alone,
    a mask of --mask-dir)."""
    entry.input = str(job.input)
    for name in ("output", "mask"):
        value = getattr(entry, name)
        if value is not None:
            setattr(entry, name, _given(value, outdir))
    folders = [(outdir.absolute(), outdir)]
    if mask_dir is not None:
        folders.append((mask_dir.absolute(), mask_dir))
    folders.append((job.input.absolute(), job.input))
    entry.mark(entry.status, entry.reason_code, _given_text(entry.reason, folders))
    entry.warnings = [_given_text(text, folders) for text in entry.warnings]
    return entry


# the one message whose path the local batch gives absolute too (outputs.unwritable, after "...: ")
_ABSOLUTE_TAIL = re.compile(r"[^\n]* is not (a folder|writable)( \(the folder would be made there\))?")


def _given_text(text: str, folders: Sequence[tuple[Path, Path]]) -> str:
    """``text`` with the workers' absolute paths under ``folders`` (absolute, as given) written as given."""
    for root, given in folders:
        if root == given or str(root) not in text:
            continue
        pattern = re.compile(re.escape(str(root)) + r"(?=[/\\]|$|[^\w.\-])")

        def replace(match: re.Match[str], given: Path = given) -> str:
            whole = match.string
            if whole[:match.start()].endswith(": ") and _ABSOLUTE_TAIL.fullmatch(whole[match.end():]):
                return match.group(0)
            return str(given)

        text = pattern.sub(replace, text)
    return text


def _given(path: str, outdir: Path) -> str:
    """A worker's absolute path under the output folder as the user gave the folder."""
    root = outdir.absolute()
    return str(outdir / Path(path).relative_to(root)) if Path(path).is_relative_to(root) else path


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """What the actors' restorer is built from (the restore options of the command line)."""
    try:
        from oldphoto.options import RestoreOptions
    except ModuleNotFoundError:
        return {}
    fields = dataclasses.fields(RestoreOptions)
    return {f.name: getattr(args, f.name) for f in fields if hasattr(args, f.name)}


def _configure_data(ray: Any) -> None:
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no "execution finished" lines
    # nor "Progress bars disabled. To enable, set `ray.data.DataContext...`": the driver has its own
    # progress (--no-progress: lines), and a command-line user cannot set that
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False      # the driver prints its own progress (done, rate, ETA)
    ctx.print_on_execution_start = False
    ctx.max_errored_blocks = -1           # a photo lost with its workers after the retries is reported
    ctx.target_max_block_size = BLOCK_BYTES


def _pipeline(ray: Any, jobs: Sequence[tuple[int, Job]], handle: _SharedHandle, layout: _Layout,
              options: dict[str, Any], restore: Any) -> Any:
    """The Ray Data dataset: one row per photo (its index and job), through open (task), restore (actor),
    write (task)."""
    items = [_row(index, "job", job) for index, job in jobs]
    data = ray.data.from_items(items, override_num_blocks=min(len(items), MAX_BLOCKS))
    restorer_args = {"handle": handle, "options": options, "restore": restore,
                     "threads": max(1, int(layout.cpus)), "version": __version__}
    # retries are bounded (Ray Data's default is forever, which a photo that kills its worker every
    # time would never leave); Ray 2.6x warns that these arguments will change
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        data = data.map(_open_stage, fn_kwargs={"handle": handle}, num_cpus=TASK_CPUS, max_retries=RETRIES)
        data = data.map(_RestoreWorker, fn_constructor_kwargs=restorer_args,
                        compute=ray.data.ActorPoolStrategy(size=layout.workers),
                        num_cpus=layout.cpus, num_gpus=layout.gpus, max_task_retries=RETRIES)
        data = data.map(_write_stage, fn_kwargs={"handle": handle}, num_cpus=TASK_CPUS, max_retries=RETRIES)
    return data


def run(jobs: list[Job], args: argparse.Namespace, config: BatchConfig, *, restore: Any = None,
        pre_entries: Sequence[Entry] = (), progress: Progress | None = None,
        stop: threading.Event | None = None, busy: threading.Event | None = None,
        on_progress: Callable[[BatchReport], None] | None = None,
        folder_lock: outputs.FolderLock | None = None) -> BatchReport:
    """Restore ``jobs`` (planned, see ``batch.plan_outputs``) on the Ray cluster that ``args.ray`` names.

    ``restore``: a picklable callable that replaces the pipeline in every actor (tests); None = the
    Restorer from the command line's options.  ``stop``/``busy`` as in ``batch.run_batch``, except that
    an interrupt abandons the photos in flight (``busy`` is set while waiting for the cluster).
    ``folder_lock``: the output folder's, taken as soon as the run's first write has made the folder.
    """
    import ray
    import ray.data

    say = progress.log if progress is not None else (lambda text: None)
    started = time.time()
    owned = False
    entries_pre = list(pre_entries)
    if progress is not None:
        for entry in entries_pre:
            progress.update(entry)
    received: dict[int, Entry] = {}
    interrupted = False
    fatal: str | None = None
    duplicates = 0
    auth: dict[str, str | None] | None = None
    colour = _plain_worker_lines()
    token_found = False
    try:
        if not ray.is_initialized():
            alone = _starts_instance(args.ray)
            auth = _own_token(alone)
            handlers = _signal_handlers()
            try:
                ray.init(address=args.ray or None, logging_level="WARNING", configure_logging=True,
                         include_dashboard=False if alone else None)
                _signal_handlers(handlers)  # Ray's own would end the driver at once on SIGTERM
            except (ConnectionError, RuntimeError, ValueError) as exc:
                fatal = f"cannot connect to the Ray cluster {args.ray or '(default)'}: {_first_line(exc)}"
                say(f"error: {fatal}")
                return _report(entries_pre, jobs, received, started, False, fatal, stop, running=False,
                               options=config.options)
            owned = True
            if alone and args.ray != "local":
                say(f"note: {NO_CLUSTER}")
        token_found = auth is not None and _token_turned_on(auth, args.ray)
        layout = _layout(ray, args)
        say(layout.describe())
        if layout.shortfall():
            say(f"note: {layout.shortfall()}")
        _configure_data(ray)
        worker_config = dataclasses.replace(
            config, outdir=config.outdir.absolute(),
            mask_dir=config.mask_dir.absolute() if config.mask_dir is not None else None, models=None)
        work_jobs = [_absolute(job) for job in jobs]
        handle = _SharedHandle(ray.put(_Shared(
            worker_config,
            reserved={str(job.output).lower(): job.input for job in work_jobs},
            inputs=frozenset(job.input.resolve() for job in work_jobs),
            estimate_options=dict(config.estimate_options if config.estimate_options is not None
                                  else config.options),
            memory_limit=config.memory_limit)))
        rate = _Rate(len(jobs))
        next_snapshot = 0.0

        def snapshot() -> None:
            # a million-line report takes seconds to build and write: at most a tenth of the driver's time
            nonlocal next_snapshot
            if on_progress is None or time.monotonic() < next_snapshot:
                return
            begun = time.monotonic()
            on_progress(_report(entries_pre, jobs, received, started, interrupted, fatal, stop, running=True,
                                options=config.options))
            next_snapshot = time.monotonic() + max(REPORT_INTERVAL, 10 * (time.monotonic() - begun))

        snapshot()
        options = _options(args)

        def drain(indices: list[int]) -> None:
            """One pass of the photos ``indices`` through the cluster, their entries into ``received``."""
            nonlocal fatal, interrupted, duplicates
            data = _pipeline(ray, [(i, work_jobs[i]) for i in indices], handle, layout, options, restore)
            rows = iter(data.iter_rows())
            try:
                while not (stop is not None and stop.is_set()):
                    if busy is not None:
                        busy.set()  # an interrupt raises in here: the photos in flight are abandoned
                    try:
                        row = next(rows, None)
                    finally:
                        if busy is not None:
                            busy.clear()
                    if row is None:
                        break
                    if folder_lock is not None:
                        # held from the first write on: a job started later into the same folder must not
                        # take this one's writes in progress for leftovers of an interrupted run
                        folder_lock.take()
                    index, kind = int(row["index"]), row["kind"]
                    value = pickle.loads(row["data"])
                    if kind == "fatal":
                        fatal = str(value)
                        say(f"error: {fatal}")
                        break
                    if index in received:  # a retried task's second answer
                        duplicates += 1
                        continue
                    if kind == "disk_full":  # every later write would fail too: stop, as the local batch
                        value, written = value
                        fatal = disk_full_fatal(_given(written, config.outdir))
                        value.mark(value.status, value.reason_code,
                                   value.reason.replace(written, _given(written, config.outdir), 1))
                    entry = _as_given(value, jobs[index], config.outdir, config.mask_dir)
                    received[index] = entry
                    if progress is not None:
                        progress.update(entry)
                    if fatal is not None:
                        break
                    rate.add(len(received))
                    if progress is not None and progress.bar is None and rate.due():
                        say(rate.line(len(received)))
                    snapshot()
            except KeyboardInterrupt:
                interrupted = True
            except Exception as exc:  # the cluster itself failed (an actor cannot start, lost head)
                fatal = f"the Ray run failed: {_first_line(exc)}"
                if token_found:
                    fatal = fatal.rstrip(".") + TOKEN_ADVICE
                say(f"error: {fatal}")
            finally:
                close = getattr(rows, "close", None)
                if close is not None:
                    close()

        pending = list(range(len(jobs)))
        while pending:
            drain(pending)
            stopped = fatal is not None or interrupted or (stop is not None and stop.is_set())
            pending = [] if stopped else _lost_together(pending, received)
            if pending:
                say(f"note: {len(pending)} photo(s) lost with workers that died on a photo beside them are "
                    "tried again, in smaller groups")

        if duplicates:
            say(f"note: {duplicates} photo(s) were answered twice by retried tasks; each is reported once")
        elapsed = time.time() - started
        if jobs and received:
            say(f"cluster: {len(received)} of {len(jobs)} photos in {elapsed:.1f} s, "
                f"{len(received) / max(elapsed, 1e-9):.2f} photos/s")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if owned:
            ray.shutdown()
        if auth is not None:
            _put_back(auth)
        _put_back(colour)
    interrupted = interrupted or (stop is not None and stop.is_set())
    return _report(entries_pre, jobs, received, started, interrupted, fatal, stop, running=False,
                   options=config.options)


def _starts_instance(address: str | None) -> bool:
    """Whether ``ray.init`` will start a Ray instance of this machine alone rather than join a cluster:
    ``--ray local``, and ``--ray`` without an address where Ray finds none ($RAY_ADDRESS unset, no address
    of a ``ray start`` in its temporary folder), as Ray itself decides."""
    if address:
        return address == "local"
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:  # (a Ray without it: nothing is said, and Ray's token is left to Ray)
        return False
    try:
        return canonicalize_bootstrap_address(None) is None
    except Exception:  # (what is wrong is said by ray.init)
        return False


def _plain_worker_lines() -> dict[str, str | None]:
    """Ray's colour codes off for the workers' lines it forwards, where they go to a file or a pipe (a
    nightly job's log read "\x1b[36m(MapWorker pid=…)\x1b[0m"), unless RAY_COLOR_PREFIX says otherwise.
    Returns the variable as it was, for :func:`_put_back`."""
    saved = {"RAY_COLOR_PREFIX": os.environ.get("RAY_COLOR_PREFIX")}
    if saved["RAY_COLOR_PREFIX"] is None and not (sys.stdout.isatty() and sys.stderr.isatty()):
        os.environ["RAY_COLOR_PREFIX"] = "0"  # (read by the driver as it prints each forwarded line)
    return saved


def _own_token(alone: bool) -> dict[str, str | None]:
    """Before ``ray.init``: Ray's authentication variables as they are (``_put_back`` restores them); for a
    Ray instance of this machine alone (``_starts_instance``) where none is set, a token of this run's own, in
    the environment that the instance's processes inherit.  Ray would otherwise write the new instance's
    token to ~/.ray/auth_token, and from then on every driver that finds a cluster by itself (``--ray``,
    ``--ray auto``) turns token authentication on, which a cluster started without it answers by cancelling
    every actor: each later run on that cluster failed with "The actor never ran - it was cancelled before
    it started running"."""
    saved = {name: os.environ.get(name) for name in AUTH_VARIABLES}
    if alone and not any(saved.values()):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    return saved


def _token_turned_on(saved: Mapping[str, str | None], address: str | None) -> bool:
    """Whether ``ray.init`` turned token authentication on by itself, having found a token (in
    ~/.ray/auth_token) while finding the cluster of this machine (``--ray``, ``--ray auto``)."""
    turned_on = saved["RAY_AUTH_MODE"] is None and os.environ.get("RAY_AUTH_MODE") == "token"
    return turned_on and address != "local"


def _put_back(saved: Mapping[str, str | None]) -> None:
    """The environment variables ``saved`` as they were (Ray sets RAY_AUTH_MODE in ``ray.init``)."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def remove_lost_writes(jobs: Sequence[Job], entries: Iterable[Entry]) -> list[Path]:
    """Temporary files (``.NAME.xxxxxxxx.part``) of this run's writes lost with their worker, or cut off when
    an interrupt stopped the run: those named after its outputs and masks only.  Another batch writing other
    photos into the same folder has its writes in progress there: removing every temporary file made its
    photos fail."""
    own = {(path.parent, temp_name_part(path.name)) for path in _own_names(jobs, entries)}
    removed = []
    for folder in {folder for folder, _ in own}:
        for path in folder.glob(".*.part") if folder.is_dir() else ():
            match = TEMP_NAME.match(path.name)
            if match is None or (folder, match["name"]) not in own or path.is_symlink() or not path.is_file():
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def _own_names(jobs: Sequence[Job], entries: Iterable[Entry]) -> Iterator[Path]:
    """What this run may have written: its planned outputs and their masks, and the outputs and masks its
    photos took (another name where a file it did not write had the planned one)."""
    for job in jobs:
        if job.output is not None:
            yield job.output
            yield from mask_paths(job.output)
    for entry in entries:
        yield from (Path(path) for path in (entry.output, entry.mask) if path is not None)


def _lost_together(indices: Sequence[int], received: Mapping[int, Entry]) -> list[int]:
    """The photos of a pass that its workers lost, to be tried again in smaller blocks: [] when their
    blocks would be no smaller (each photo had a block of its own, or nearly every photo was lost: those
    are reported failed).  A block holds several photos in an archive of more than ``MAX_BLOCKS``, and a
    photo that crashes its worker every time (a decoder, memory) took the other photos of its block with it,
    reported lost too: a hundred per crashing photo in a million, on every rerun."""
    lost = [index for index in indices if index not in received]
    smaller = -(-len(lost) // MAX_BLOCKS) < -(-len(indices) // MAX_BLOCKS)  # (photos per block, rounded up)
    return lost if lost and smaller else []


def _signal_handlers(restore: dict[int, Any] | None = None) -> dict[int, Any]:
    """The Python handlers of the signals that stop a batch (SIGINT, SIGTERM, SIGHUP); with ``restore``, put
    those back (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    if restore is not None:
        for signum, handler in restore.items():
            if handler is not None:
                signal.signal(signum, handler)
        return restore
    return {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}


def _report(pre: list[Entry], jobs: list[Job], received: dict[int, Entry], started: float, interrupted: bool,
            fatal: str | None, stop: threading.Event | None, running: bool,
            options: dict[str, Any] | None = None) -> BatchReport:
    """Every input once, in the local batch's order: those the cluster answered, and the others;
    ``options``: the restore options, as the local batch's report records them."""
    missing: tuple[str, ReasonCode] | None  # why the photos not answered were not processed
    if running:
        missing = ("not reached yet: the batch was running when this report was written",
                   ReasonCode.NOT_REACHED_YET)
    elif fatal:
        missing = (fatal, ReasonCode.BATCH_STOPPED)
    elif interrupted:
        # on a cluster many photos are in flight when the run stops: any of them may have been written
        missing = ("batch interrupted before this photo was reported (it may have been in flight and "
                   "written all the same; a rerun skips it then)", ReasonCode.INTERRUPTED)
    else:
        missing = None
    entries = list(pre)
    for index, job in enumerate(jobs):
        entry = received.get(index)
        if entry is None:
            if missing is not None:
                entry = Entry(str(job.input), NOT_PROCESSED, *missing)
            else:
                entry = Entry(str(job.input), FAILED,
                              f"lost: the workers processing it died {RETRIES + 1} times (a crash or out of "
                              "memory); nothing was written, a rerun tries again", ReasonCode.WORKERS_LOST)
        entries.append(entry)
    return BatchReport(entries, started, time.time(), interrupted, fatal,
                       terminated=bool(getattr(stop, "terminated", False)), running=running,
                       hangup=bool(getattr(stop, "hangup", False)), options=options)


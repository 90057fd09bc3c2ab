"""``oldphoto restore --ray``: the local batch's outputs and report, on a Ray cluster of two nodes.

One cluster for the module (a head and a second node, one CPU each, loopback only), started in this
process with Ray's own test cluster; every run is the real command line in a subprocess, as a user's
driver.  The reference is the local batch on the same photos with the same options.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oldphoto import batch, cluster, outputs
from oldphoto.io import read_provenance

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = 40
OPTIONS = ["--no-faces", "--save-mask"]  # faces need the optional dlib models; everything else default
TIMEOUT = 420  # seconds one driver may take (2 busy cores, a cold cluster)


def _parser():
    parser = argparse.ArgumentParser()
    batch.register(parser.add_subparsers())
    return parser


def _main(argv: list[str]) -> tuple[int, str]:
    args = _parser().parse_args(["restore", "--no-progress", *argv])
    out = io.StringIO()
    return batch.main(args, stream=out), out.getvalue()


# ------------------------------------------------------------------------------------------ no cluster

def test_without_ray_the_option_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "ray_available", lambda: False)
    (tmp_path / "in").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "a.png")
    code, log = _main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--ray"])
    assert code == 2 and "pip install 'oldphoto[ray]'" in log
    assert not (tmp_path / "out").exists()


def test_an_input_taken_for_the_address_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    code, log = _main(["--ray", str(tmp_path / "in"), str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    assert code == 2 and "is not a cluster address" in log and "was it meant as an input" in log


@pytest.mark.parametrize("argv, message", [(["--ray-workers", "0"], "--ray-workers"),
                                           (["--ray-cpus", "1.5"], "--ray-cpus"),
                                           (["--device", "cuda:1"], "one GPU of its own")])
def test_bad_cluster_options_exit_2(tmp_path, argv, message):
    (tmp_path / "in").mkdir()
    code, log = _main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--ray=auto", *argv])
    assert code == 2 and message in log


@pytest.mark.parametrize("option, env", [("--ray=ray://head:10001", ""), ("--ray", "ray://head:10001")])
def test_ray_client_addresses_are_refused_before_anything_starts(tmp_path, monkeypatch, option, env):
    """Ray Data cannot run through Ray Client: a documented `--ray ray://host:port` started, then failed
    with Ray's "'Worker' object has no attribute 'core_worker'" and a 30-line trace, every photo not
    processed."""
    monkeypatch.setenv("RAY_ADDRESS", env)
    (tmp_path / "in").mkdir()
    code, log = _main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), option])
    assert code == 2 and "Ray Client (ray://) cannot run Ray Data" in log and "head node" in log
    assert not (tmp_path / "out").exists()


def test_report_accounts_for_every_input():
    jobs = [batch.Job(Path(f"p{i}.png"), Path(f"p{i}.png")) for i in range(3)]
    done = {0: batch.Entry("p0.png", batch.OK), 2: batch.Entry("p2.png", batch.SKIPPED)}
    pre = [batch.Entry("notes.txt", batch.SKIPPED, "not an image file", batch.ReasonCode.NOT_AN_IMAGE_FILE)]
    report = cluster._report(pre, jobs, done, 0.0, False, None, None, running=False)
    assert [(e.input, e.status) for e in report.entries] == [
        ("notes.txt", "skipped"), ("p0.png", "ok"), ("p1.png", "failed"), ("p2.png", "skipped")]
    assert "lost" in report.entries[2].reason and report.exit_code == 1
    assert [e.reason_code for e in report.entries] == ["not_an_image_file", None, "workers_lost", None]
    stopped = cluster._report(pre, jobs, done, 0.0, True, None, None, running=False)
    assert stopped.entries[2].status == "not processed" and stopped.exit_code == 130
    # many photos are in flight on a cluster (an interrupted run wrote 2 it reported not processed)
    reason = stopped.entries[2].reason
    assert "one in flight" not in reason and "it may have been" in reason
    assert stopped.entries[2].reason_code == "interrupted"
    running = cluster._report(pre, jobs, done, 0.0, False, None, None, running=True)
    assert running.entries[2].status == "not processed" and running.to_json()["exit_code"] is None
    assert running.to_json()["inputs"][2]["reason_code"] == "not_reached_yet"
    fatal = cluster._report(pre, jobs, done, 0.0, False, "cannot set up the restorer", None, running=False)
    assert (fatal.entries[2].status, fatal.entries[2].reason_code) == ("not processed", "batch_stopped")


def test_reasons_and_warnings_name_the_paths_as_given(tmp_path, monkeypatch):
    """The workers see absolute paths; their entries' reasons and warnings must read as the local batch's
    (found on a run: 'cannot write /abs/out/a/photo.jpg: ...' where the local batch says 'out/a/...')."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in" / "a").mkdir(parents=True)
    (tmp_path / "masks").mkdir()
    for name in ("a/photo.png", "gray.png"):
        Image.new("RGB", (64, 48), (90, 90, 90)).save(Path("in") / name)
    Path("out").mkdir()
    Path("out/a").write_text("a file where a sub-folder goes\n")
    Path("out/gray.png").write_text("not made by oldphoto\n")  # the output takes a fallback name
    jobs = [batch.Job(Path("in/a/photo.png"), Path("a/photo.png")), batch.Job(Path("in/gray.png"),
                                                                              Path("gray.png"))]
    batch.plan_outputs(jobs, Path("out"), None)
    local_config = batch.BatchConfig(outdir=Path("out"), mask_dir=Path("masks"))
    worker_config = batch.BatchConfig(outdir=Path("out").absolute(), mask_dir=Path("masks").absolute())
    for job in jobs:
        local = batch.open_photo(job, local_config)
        local = local.entry if isinstance(local, batch.Opened) else local
        remote = batch.open_photo(cluster._absolute(job), worker_config)
        remote = remote.entry if isinstance(remote, batch.Opened) else remote
        assert str(tmp_path) in remote.reason + "".join(remote.warnings)  # what the worker says
        given = cluster._as_given(remote, job, Path("out"), Path("masks"))
        assert (given.status, given.reason, given.reason_code, given.warnings, given.output) == (
            local.status, local.reason, local.reason_code, local.warnings, local.output)
    assert local.warnings[0].startswith("out/gray.png exists")  # (what the test is about)


class _FakeRay(types.ModuleType):
    """Just what ``cluster.run`` asks of Ray before its pipeline; ``init`` turns token authentication on as
    Ray 2.5x does when it finds ~/.ray/auth_token while looking for the cluster of this machine."""

    def __init__(self, token_found: bool):
        super().__init__("ray")
        self.data = types.ModuleType("ray.data")
        self.token_found = token_found

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        if self.token_found:
            os.environ["RAY_AUTH_MODE"] = "token"

    def nodes(self):
        return [{"Alive": True, "Resources": {"CPU": 2}}]

    def cluster_resources(self):
        return {"CPU": 2}

    def put(self, value):
        return value

    def shutdown(self):
        pass


class _CancelledActors:
    def iter_rows(self):  # (a generator, as Ray Data's: it fails when the first row is asked for)
        yield from ()
        raise RuntimeError("The actor never ran - it was cancelled before it started running.")


@pytest.mark.parametrize("token_found", [True, False])
def test_a_run_refused_for_a_token_found_on_this_machine_says_so(tmp_path, monkeypatch, token_found):
    """Ray offers a token it finds in ~/.ray/auth_token to the cluster it finds by itself; one started without
    token authentication cancels every actor, and the run failed with Ray's words alone: 'The actor never
    ran - it was cancelled before it started running'."""
    fake = _FakeRay(token_found)
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.data", fake.data)
    monkeypatch.setattr(cluster, "_configure_data", lambda ray: None)
    monkeypatch.setattr(cluster, "_pipeline", lambda *args: _CancelledActors())
    for name in cluster.AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    jobs = [batch.Job(tmp_path / "a.png", Path("a.png"))]
    batch.plan_outputs(jobs, tmp_path / "out", None)
    args = argparse.Namespace(ray="auto", ray_workers=None, ray_cpus=None)
    report = cluster.run(jobs, args, batch.BatchConfig(outdir=tmp_path / "out"))
    assert report.fatal.startswith("the Ray run failed: ") and "never ran" in report.fatal
    assert ("~/.ray/auth_token" in report.fatal and "--ray HOST:PORT" in report.fatal) == token_found
    assert "RAY_AUTH_MODE" not in os.environ  # (as it was before the run)


def test_workers_lines_come_without_colour_codes_into_a_log_file(tmp_path, monkeypatch):
    """A nightly job's log read '\x1b[36m(MapWorker pid=...)\x1b[0m' for every line Ray forwarded."""
    fake = _FakeRay(token_found=False)
    seen = []
    fake.init = lambda **kwargs: seen.append(os.environ.get("RAY_COLOR_PREFIX"))
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.data", fake.data)
    monkeypatch.setattr(cluster, "_configure_data", lambda ray: None)
    monkeypatch.setattr(cluster, "_pipeline", lambda *args: _CancelledActors())
    monkeypatch.delenv("RAY_COLOR_PREFIX", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # (the log file)
    jobs = [batch.Job(tmp_path / "a.png", Path("a.png"))]
    batch.plan_outputs(jobs, tmp_path / "out", None)
    args = argparse.Namespace(ray="auto", ray_workers=None, ray_cpus=None)
    config = batch.BatchConfig(outdir=tmp_path / "out", options={"scratches": "auto"})
    report = cluster.run(jobs, args, config)
    assert seen == ["0"] and "RAY_COLOR_PREFIX" not in os.environ  # (as it was, after the run)
    assert report.options == {"scratches": "auto"}  # (as the local batch's report: it said null)
    monkeypatch.setenv("RAY_COLOR_PREFIX", "1")  # asked for: kept
    cluster.run(jobs, args, batch.BatchConfig(outdir=tmp_path / "out"))
    assert seen == ["0", "1"]


def test_the_end_of_a_run_leaves_another_batchs_writes_in_progress_alone(tmp_path, monkeypatch):
    """Two jobs writing into one archive folder: the first to end removed every temporary file there as
    "lost with their worker", the other job's writes in progress too (found: a 'removed 1 temporary file(s)
    of writes lost with their worker' where no worker was lost), failing those photos."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.new("RGB", (8, 8)).save(src / "a.png")
    theirs = out / "1942" / ".b.png.k3j4h5g6.part"

    def run(jobs, args, config, **kwargs):  # this run: its worker lost a.png's write, then redid it
        (out / "1942").mkdir(parents=True)
        (out / ".a.png.x1y2z3w4.part").write_bytes(b"half a photo")
        (out / "a.png").write_bytes(b"the photo")
        theirs.write_bytes(b"another job's photo, being written")
        entries = [batch.Entry(str(jobs[0].input), batch.OK, output=str(jobs[0].output))]
        return batch.BatchReport(entries, 0.0, 1.0, False, None)

    monkeypatch.setattr(cluster, "ray_available", lambda: True)
    monkeypatch.setattr(cluster, "run", run)
    code, log = _main([str(src), "-o", str(out), "--ray=auto"])
    assert code == 0, log
    assert theirs.exists()
    assert not (out / ".a.png.x1y2z3w4.part").exists() and "removed 1 temporary file(s)" in log


def test_the_output_folder_is_held_from_the_run_s_first_write(tmp_path, monkeypatch):
    """A job started into a folder that did not exist yet never held it: a second job started into the same
    folder meanwhile took it and removed the first one's writes in progress as leftovers of an interrupted
    earlier run."""
    out = tmp_path / "out"
    jobs = [batch.Job(tmp_path / "a.png", Path("a.png"))]
    batch.plan_outputs(jobs, out, None)

    class FirstWrite:
        def iter_rows(self):
            out.mkdir()  # (the run's first write makes the folder)
            entry = batch.Entry(str(jobs[0].input), batch.OK, output=str(jobs[0].output))
            yield cluster._row(0, "entry", entry)

    fake = _FakeRay(token_found=False)
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.data", fake.data)
    monkeypatch.setattr(cluster, "_configure_data", lambda ray: None)
    monkeypatch.setattr(cluster, "_pipeline", lambda *args: FirstWrite())
    lock = outputs.FolderLock(out)
    assert not lock.take()  # (no folder yet)
    with lock:
        report = cluster.run(jobs, argparse.Namespace(ray="auto", ray_workers=None, ray_cpus=None),
                             batch.BatchConfig(outdir=out), folder_lock=lock)
        assert [entry.status for entry in report.entries] == ["ok"]
        assert lock.held and not outputs.FolderLock(out).take()  # (what a second job's start asks)


def test_ray_data_does_not_tell_the_user_to_set_its_progress_bars():
    """Found on every run: 'WARNING ... Progress bars disabled. To enable, set
    `ray.data.DataContext.get_current().enable_progress_bars = True`.' among the photo lines."""
    # (Ray is not imported here: the cluster tests' fixture must set its environment before it is)
    context = types.SimpleNamespace(enable_progress_bars=True)
    fake_ray = types.SimpleNamespace(data=types.SimpleNamespace(
        DataContext=types.SimpleNamespace(get_current=lambda: context)))
    cluster._configure_data(fake_ray)
    assert context.enable_progress_bars is False
    assert not logging.getLogger("ray.data._internal.progress").isEnabledFor(logging.WARNING)


def test_rate_and_eta():
    rate = cluster._Rate(100)
    assert rate.line(0) == "progress: 0/100 photos"
    rate.samples.clear()
    rate.samples.extend([(0.0, 0), (10.0, 20)])
    assert rate.line(20) == "progress: 20/100 photos, 2.00 photos/s, ETA 0:00:40"


# ------------------------------------------------------------------------------------------ cluster

@pytest.fixture(scope="module")
def ray_cluster():
    """A head and one more node, one CPU each, on 127.0.0.1; ``marker`` is in their processes' env."""
    if importlib.util.find_spec("ray") is None:  # (that of ray.data would import Ray already)
        pytest.skip("Ray is not installed (pip install 'oldphoto[ray]')")
    marker = uuid.uuid4().hex
    saved = dict(os.environ)
    # a short folder of its own (Ray's sockets live there), not the machine's shared /tmp/ray; the
    # head writes its address file into RAY_TMPDIR/ray without creating that folder (on a fresh machine
    # /tmp/ray does not exist and the head failed)
    temp = tempfile.mkdtemp(prefix="opray", dir="/tmp")
    os.makedirs(os.path.join(temp, "ray"))
    # set before Ray is imported here: it reads them once
    os.environ.update({
        "RAY_TMPDIR": temp,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray's own choice of address: loopback, never the LAN's
        "RAY_USAGE_STATS_ENABLED": "0",
        "OLDPHOTO_TEST_CLUSTER": marker,
        # the nodes' workers import this checkout (an installed oldphoto needs nothing)
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"), saved.get("PYTHONPATH")) if p),
    })
    from ray.cluster_utils import Cluster

    head = {"num_cpus": 1, "num_gpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False,
            "object_store_memory": 200 * 2**20, "temp_dir": temp}
    nodes = Cluster(initialize_head=True, head_node_args=head, shutdown_at_exit=True)
    try:
        nodes.add_node(num_cpus=1, num_gpus=0, node_ip_address="127.0.0.1", object_store_memory=200 * 2**20)
        nodes.wait_for_nodes()
        yield {"address": nodes.address, "marker": marker}
    finally:
        nodes.shutdown()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, real_old_dir) -> Path:
    """40 small photos of several kinds (EXIF rotation, gray, 16-bit, RGBA), one truncated file and one
    that is not an image."""
    folder = tmp_path_factory.mktemp("cluster") / "photos"
    (folder / "album").mkdir(parents=True)
    sources = sorted(real_old_dir.glob("*.png"))
    exif = Image.Exif()
    exif[0x0112] = 6
    for i in range(PHOTOS):
        with Image.open(sources[i % len(sources)]) as im:
            im = im.convert("RGB")
            im = im.crop((0, 0, min(im.width, 400), min(im.height, 300)))
            im = im.resize((72 + i % 5 * 8, 56 + i % 3 * 8))
        kind = i % 5
        target = folder / ("album" if i % 2 else "") / f"p{i:02d}"
        if kind == 0:
            im.save(target.with_suffix(".jpg"), quality=90, exif=exif.tobytes())
        elif kind == 1:
            im.convert("L").save(target.with_suffix(".png"))
        elif kind == 2:
            np16 = (np.asarray(im, np.uint16) * 257).astype(np.uint16)
            import tifffile

            tifffile.imwrite(target.with_suffix(".tif"), np16, photometric="rgb")
        elif kind == 3:
            rgba = im.convert("RGBA")
            rgba.putalpha(200)
            rgba.save(target.with_suffix(".png"))
        else:
            im.save(target.with_suffix(".png"))
    good = (folder / "p00.jpg").read_bytes()
    (folder / "broken.jpg").write_bytes(good[: len(good) // 2])
    (folder / "notes.txt").write_text("not a photo\n")
    return folder


@pytest.fixture(scope="module")
def local_reference(photos, tmp_path_factory) -> tuple[Path, dict]:
    """The local batch on the same photos with the same options, and torch on one thread as in the
    cluster's actors (the order of float sums changes with the thread count, which 16-bit outputs can
    show as a difference of 1/65535 in a few samples)."""
    out = tmp_path_factory.mktemp("local") / "out"
    report = out.parent / "report.json"
    proc = _cli([str(photos), "-r", "-o", str(out), "--report", str(report), *OPTIONS], None,
                OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    assert proc.returncode == 1, proc.stdout[-3000:]  # broken.jpg failed
    return out, json.loads(report.read_text())


def _command(argv: list[str], address: str | None) -> list[str]:
    command = [sys.executable, "-m", "oldphoto.cli", "restore", "--no-progress", *argv]
    return command + ["--ray", address] if address is not None else command


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p), **extra)


def _cli(argv: list[str], address: str | None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(argv, address), env=_env(**env), capture_output=True, text=True,
                          timeout=TIMEOUT)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _assert_same_outputs(reference: Path, out: Path) -> None:
    assert _files(out) == _files(reference)
    for name in _files(reference):
        with Image.open(reference / name) as a, Image.open(out / name) as b:
            assert (a.mode, a.size, a.info.get("icc_profile")) == (b.mode, b.size, b.info.get("icc_profile"))
            assert np.array_equal(np.asarray(a), np.asarray(b)), name
            assert dict(a.getexif()).keys() == dict(b.getexif()).keys(), name
        if not name.endswith(".mask.png"):
            ra, rb = read_provenance(reference / name), read_provenance(out / name)
            assert ra.pop("restored_at") and rb.pop("restored_at")
            assert ra == rb, name


def _assert_same_report(local: dict, remote: dict, local_out: Path, out: Path) -> None:
    assert remote["summary"] == local["summary"] and remote["exit_code"] == local["exit_code"]
    for a, b in zip(local["inputs"], remote["inputs"], strict=True):
        for key in ("input", "status", "reason", "reason_code", "width", "height", "bytes", "models",
                    "restoration"):
            assert a[key] == b[key], (a["input"], key)
        for key in ("output", "mask"):
            if a[key] is not None:
                assert Path(a[key]).relative_to(local_out) == Path(b[key]).relative_to(out)


def _no_partials(folder: Path) -> None:
    assert [p for p in folder.rglob("*") if p.name.endswith(".part")] == []


@pytest.mark.slow
def test_cluster_batch_equals_the_local_batch(
        ray_cluster, photos, local_reference, tmp_path):
    local_out, local_report = local_reference
    out, report = tmp_path / "out", tmp_path / "report.json"
    argv = [str(photos), "-r", "-o", str(out), "--report", str(report), *OPTIONS]
    proc = _cli(argv, ray_cluster["address"])
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "2 node(s)" in proc.stderr and "2 restorer worker(s)" in proc.stderr
    _assert_same_outputs(local_out, out)
    remote = json.loads(report.read_text())
    _assert_same_report(local_report, remote, local_out, out)
    assert remote["summary"] == {"ok": PHOTOS, "skipped": 1, "failed": 1, "not processed": 0}
    _no_partials(out)


def _restorer_pids(marker: str) -> list[int]:
    """Processes of this test's cluster that host a restorer actor."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes()
            if b"_RestoreWorker" in title and marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker through /proc")
def test_a_worker_killed_mid_run_is_replaced_and_every_photo_written_once(
        ray_cluster, photos, local_reference, tmp_path):
    local_out, local_report = local_reference
    out, report = tmp_path / "out", tmp_path / "report.json"
    argv = [str(photos), "-r", "-o", str(out), "--report", str(report), *OPTIONS]
    log = tmp_path / "driver.log"
    with open(log, "w") as sink:
        driver = subprocess.Popen(_command(argv, ray_cluster["address"]), env=_env(), stdout=sink,
                                  stderr=subprocess.STDOUT)
        try:
            killed = None
            deadline = time.monotonic() + TIMEOUT
            while killed is None and driver.poll() is None and time.monotonic() < deadline:
                written = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
                pids = _restorer_pids(ray_cluster["marker"])
                if len(written) >= 6 and pids:  # mid-run: some photos are written, most are not
                    os.kill(pids[0], signal.SIGKILL)
                    killed = (pids[0], len(written))
                time.sleep(0.05)
            code = driver.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if driver.poll() is None:
                driver.kill()
    text = log.read_text()
    assert killed is not None, f"no restorer process found to kill:\n{text[-3000:]}"
    assert killed[1] < 2 * PHOTOS - 10, "the run was nearly over when the worker was killed"
    assert code == 1, text[-3000:]  # broken.jpg only
    remote = json.loads(report.read_text())
    inputs = [e["input"] for e in remote["inputs"]]
    assert len(inputs) == len(set(inputs)) == PHOTOS + 2
    assert remote["summary"] == {"ok": PHOTOS, "skipped": 1, "failed": 1, "not processed": 0}, text[-3000:]
    _assert_same_outputs(local_out, out)  # every photo once, restored as locally, no second copy
    _assert_same_report(local_report, remote, local_out, out)
    _no_partials(out)
    assert killed[0] not in _restorer_pids(ray_cluster["marker"])

    rerun = _cli(argv, ray_cluster["address"])
    assert rerun.returncode == 1, rerun.stderr[-3000:]
    assert json.loads(report.read_text())["summary"] == {"ok": 0, "skipped": PHOTOS + 1, "failed": 1,
                                                         "not processed": 0}
    _assert_same_outputs(local_out, out)
    _no_partials(out)



@pytest.mark.slow
def test_sigterm_stops_the_driver_with_a_whole_report(ray_cluster, photos, tmp_path):
    out, report = tmp_path / "out", tmp_path / "report.json"
    argv = [str(photos), "-r", "-o", str(out), "--report", str(report), *OPTIONS]
    driver = subprocess.Popen(_command(argv, ray_cluster["address"]), env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while driver.poll() is None and time.monotonic() < deadline:
            if len([p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]) >= 4:
                driver.send_signal(signal.SIGTERM)
                break
            time.sleep(0.05)
        text, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 143, text[-3000:]
    result = json.loads(report.read_text())
    assert result["terminated"] and not result["running"] and result["exit_code"] == 143
    assert len(result["inputs"]) == PHOTOS + 2 and result["summary"]["not processed"] > 0
    _no_partials(out)


class _DiesOnOnePhoto:
    """A stand-in restorer (colour inversion) whose worker process dies on the 13x11 photo, every time."""

    def __call__(self, pixels, mask):
        if pixels.shape[:2] == (11, 13):
            os._exit(1)
        return 1.0 - pixels


@pytest.mark.slow
def test_a_photo_that_kills_its_worker_every_time_is_reported_and_the_run_goes_on(ray_cluster, tmp_path,
                                                                                   monkeypatch):
    """Alone: the photos beside it are restored.  Blocks of several photos (an archive of more than
    ``MAX_BLOCKS``, here 2) lost the crashing photo's block-mates with it, reported lost on every rerun."""
    import ray.cloudpickle

    monkeypatch.setattr(cluster, "MAX_BLOCKS", 2)

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors cannot import tests
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    src.mkdir()
    for i in range(6):
        Image.new("RGB", (12, 8), (10 * i, 90, 200)).save(src / f"a{i}.png")
    Image.new("RGB", (13, 11), (200, 90, 10)).save(src / "poison.png")
    args = _parser().parse_args(["restore", "--no-progress", str(src), "-o", str(out),
                                 "--report", str(report), "--ray", ray_cluster["address"]])
    log = io.StringIO()
    code = batch.main(args, restore=_DiesOnOnePhoto(), stream=log)
    entries = {Path(e["input"]).name: e for e in json.loads(report.read_text())["inputs"]}
    assert code == 1, log.getvalue()[-3000:]
    assert entries["poison.png"]["status"] == "failed" and "lost" in entries["poison.png"]["reason"]
    assert entries["poison.png"]["reason_code"] == "workers_lost"
    assert [entries[f"a{i}.png"]["status"] for i in range(6)] == ["ok"] * 6
    assert _files(out) == [f"a{i}.png" for i in range(6)]
    with Image.open(out / "a1.png") as im:
        assert im.getpixel((0, 0)) == (245, 165, 55)


@pytest.mark.slow
@pytest.mark.parametrize("address", ["local", ""])
def test_a_local_instance_leaves_no_token_behind(tmp_path, address):
    """`--ray local` on a machine whose cluster runs without token authentication (`ray start --head`):
    Ray wrote the new instance's token to ~/.ray/auth_token, and from then on every `--ray` or `--ray auto`
    run on that cluster failed ("The actor never ran - it was cancelled before it started running").  So did
    `--ray` where Ray found no cluster's address (one found when run on the head, once a benchmark had
    removed Ray's address file there), restoring on the head alone without a word."""
    src, home = tmp_path / "in", tmp_path / "home"
    src.mkdir()
    home.mkdir()
    Image.new("RGB", (24, 16), (90, 120, 150)).save(src / "a.png")
    temp = tempfile.mkdtemp(prefix="opray", dir="/tmp")  # (short: Ray's sockets live there)
    os.makedirs(os.path.join(temp, "ray"))
    try:
        proc = _cli([str(src), "-o", str(tmp_path / "out"), "--scratches", "off", "--no-faces"], address,
                    HOME=str(home), RAY_TMPDIR=temp, RAY_USAGE_STATS_ENABLED="0", RAY_ADDRESS="")
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _files(tmp_path / "out") == ["a.png"]
    assert not (home / ".ray" / "auth_token").exists()
    assert ("restored by a Ray instance of this machine alone" in proc.stderr) == (address == "")


def test_photos_lost_together_are_tried_again_in_smaller_blocks_only(monkeypatch):
    monkeypatch.setattr(cluster, "MAX_BLOCKS", 2)
    done = {i: batch.Entry(f"p{i}", batch.OK) for i in range(10) if i not in (3, 4, 7)}
    assert cluster._lost_together(range(10), done) == [3, 4, 7]  # (blocks of 5, then of 2)
    assert cluster._lost_together([3, 4, 7], {3: batch.Entry("p3", batch.OK)}) == [4, 7]
    assert cluster._lost_together([4, 7], {}) == []  # each had a block of its own: they are lost
    assert cluster._lost_together(range(10), {0: batch.Entry("p0", batch.OK)}) == []  # (no smaller: no end)


def test_layout_defaults_and_shortfall():
    class FakeRay:
        def __init__(self, cpus, gpus):
            self.cpus, self.gpus = cpus, gpus

        def nodes(self):
            return [{"Alive": True, "Resources": {"CPU": c}} for c in self.cpus]

        def cluster_resources(self):
            return {"CPU": sum(self.cpus), "GPU": self.gpus}

    args = argparse.Namespace(ray_workers=None, ray_cpus=None)
    gpu = cluster._layout(FakeRay([8, 16, 16], 4), args)
    assert (gpu.workers, gpu.cpus, gpu.gpus, gpu.shortfall()) == (4, 1.0, 1, None)
    cpu = cluster._layout(FakeRay([8, 16], 0), args)
    assert (cpu.workers, cpu.cpus, cpu.gpus, cpu.shortfall()) == (2, 7.0, 0, None)
    tiny = cluster._layout(FakeRay([1, 1], 0), args)
    assert (tiny.workers, tiny.cpus, tiny.shortfall()) == (2, 0.5, None)
    many = cluster._layout(FakeRay([8], 2), argparse.Namespace(ray_workers=3, ray_cpus=None))
    assert "3 GPUs" in many.shortfall()
    # more workers than nodes share a node's spare CPUs: two taking 1 CPU each of a 2-CPU node left none
    # to the decode/write tasks, and the run waited for ever
    shared = cluster._layout(FakeRay([2], 0), argparse.Namespace(ray_workers=2, ray_cpus=None))
    assert (shared.workers, shared.cpus, shared.shortfall()) == (2, 0.5, None)
    assert cluster._layout(FakeRay([16, 16], 0), argparse.Namespace(ray_workers=6, ray_cpus=None)).cpus == 5.0
    told = cluster._layout(FakeRay([2], 0), argparse.Namespace(ray_workers=2, ray_cpus=1.0))
    assert "wait for ever" in told.shortfall() and "--ray-cpus" in told.shortfall()
    # --device cpu on a cluster with GPUs: CPU actors, none holding a GPU it does not use
    cpu_asked = cluster._layout(FakeRay([8, 16, 16], 4), argparse.Namespace(ray_workers=None, ray_cpus=None,
                                                                         device="cpu"))
    assert (cpu_asked.workers, cpu_asked.cpus, cpu_asked.gpus) == (3, 7.0, 0)
    assert cpu_asked.describe().endswith("3 restorer worker(s) with 7 CPU each")

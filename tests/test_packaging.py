"""What a person who installs the wheel gets: every file the package opens at run time is package data.

An editable install (``pip install -e``) reads the source tree, so a file left out of the package data
works there and goes missing only from a built wheel or sdist (the training presets did: ``oldphoto
train … --config tiny`` said "presets: " from a wheel)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "oldphoto"

pytestmark = pytest.mark.skipif(not (ROOT / "pyproject.toml").is_file() or not PACKAGE.is_dir(),
                                reason="not a source checkout (pyproject.toml and src/oldphoto are needed)")


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli", reason="Python 3.10 reads pyproject.toml with tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _package_data_globs() -> list[str]:
    return _pyproject()["tool"]["setuptools"]["package-data"]["oldphoto"]


def _non_code_files() -> set[str]:
    """Every file of the package that is not Python code (bytecode caches aside)."""
    return {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}


def test_every_file_of_the_package_is_package_data():
    # setuptools expands each glob relative to the package folder, as Path.glob does
    shipped = {p.relative_to(PACKAGE).as_posix() for pattern in _package_data_globs()
               for p in PACKAGE.glob(pattern) if p.is_file()}
    assert sorted(_non_code_files() - shipped) == []


def test_every_package_data_glob_matches_a_file():
    # a glob that matches nothing names a folder that moved or was removed
    assert [g for g in _package_data_globs() if not any(p.is_file() for p in PACKAGE.glob(g))] == []


@pytest.mark.parametrize("opened", ["weights/bundled", "web/static", "synth/textures", "metrics/data",
                                    "train/configs"])
def test_the_folders_the_code_opens_hold_files(opened):
    # the folders read through __file__ / importlib.resources (weights.locate, web.app, synth.textures,
    # metrics.niqe / brisque, train.config): the test above covers them only while they hold files
    assert any((PACKAGE / opened).iterdir())


def _version_in_source() -> str:
    text = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"$', text, re.M).group(1)


def _build(backend_call: str, source: Path, out: Path) -> Path:
    """Run a setuptools PEP 517 hook in ``source`` (no isolation, no network); the file it made."""
    out.mkdir(parents=True, exist_ok=True)
    code = f"import sys; from setuptools import build_meta as b; print(b.{backend_call}(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=source, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


def test_the_sdist_and_the_wheel_built_from_it_hold_the_package_and_its_licences(tmp_path):
    setuptools = pytest.importorskip("setuptools", reason="pip install 'setuptools>=77' (in [dev])")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__}: the build needs >= 77 (in [dev])")
    # built from a copy, so that the checkout gets no build/ or egg-info folder
    tree = tmp_path / "tree"
    shutil.copytree(PACKAGE, tree / "src" / "oldphoto", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, tree / name)

    sdist = _build("build_sdist", tree, tmp_path / "dist")
    with tarfile.open(sdist) as tar:
        # the "data" filter: Python 3.10.12 / 3.11.4 on (and the default from 3.14)
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp_path / "unpacked", **safe)
    unpacked = tmp_path / "unpacked" / sdist.name.removesuffix(".tar.gz")
    wheel = _build("build_wheel", unpacked, tmp_path / "wheel")  # as `python -m build` does it

    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = whl.read(f"{info}/METADATA").decode()
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
    code_and_data = {"oldphoto/" + p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
                     if p.is_file() and p.suffix != ".pyc" and "__pycache__" not in p.parts}
    assert sorted(code_and_data - names) == []
    assert sorted(n for n in names - code_and_data if not n.startswith(info + "/")) == []
    assert f"{info}/licenses/LICENSE" in names
    assert f"{info}/licenses/src/oldphoto/metrics/data/LICENSES.md" in names
    assert f"Version: {_version_in_source()}\n" in metadata
    assert "License-Expression: MIT\n" in metadata
    assert "oldphoto = oldphoto.cli:main" in entry_points

"""What a person who installs the wheel gets: every file the package opens at run time is package data.

An editable install (``pip install -e``) reads the source tree, so a file left out of the package data
works there and goes missing only from a built wheel or sdist (the training presets did: ``oldphoto
train … --config tiny`` said "presets: " from a wheel)."""

from __future__ import annotations

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

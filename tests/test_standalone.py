"""The repository stands alone: nothing in the product or the tests looks for a folder beside it."""

import re
from pathlib import Path

import pytest

import oldphoto
from oldphoto.synth import sources
from oldphoto.train.config import load_stage_config
from oldphoto.train.data import DataError, real_old_sources

ROOT = Path(__file__).resolve().parents[1]
# a team folder beside the checkout, by any of the names it went by
OUTSIDE = re.compile(r"OLDPHOTO_SHARED|\.\./shared|parents\[4\]|\{shared\}|/ ?\"shared\"|beside the checkout")
# what the package ships besides code: configs, cards, pages, lists
SHIPPED_TEXT = ("*.json", "*.md", "*.txt", "*.html", "*.js", "*.css", "*.yml")


@pytest.mark.parametrize("tree", ["src", "tests", "scripts", "benchmarks"])
def test_no_code_reaches_outside_the_checkout(tree):
    root = Path(oldphoto.__file__).resolve().parent if tree == "src" else ROOT / tree
    offenders = [f"{p.relative_to(root)}:{m.group(0)}" for p in sorted(root.rglob("*.py"))
                 if p.resolve() != Path(__file__).resolve()
                 for m in OUTSIDE.finditer(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_no_shipped_text_names_a_folder_outside_the_package():
    """Cards, configs and pages travel with the package: none may point at a folder beside the checkout."""
    root = Path(oldphoto.__file__).resolve().parent
    offenders = [f"{p.relative_to(root)}:{m.group(0)}" for pattern in SHIPPED_TEXT
                 for p in sorted(root.rglob(pattern))
                 for m in OUTSIDE.finditer(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_real_old_photos_default_to_the_checkout_copy(tmp_path, monkeypatch):
    monkeypatch.delenv("OLDPHOTO_REAL_OLD", raising=False)
    checkout = Path(sources.__file__).resolve().parents[3]
    expected = checkout / "examples" / "real_old" if (checkout / "pyproject.toml").is_file() else None
    assert sources.default_real_old_folder() == expected
    if expected is not None:
        assert len(list(expected.glob("*.png"))) == 6
        assert real_old_sources(["real_old:all"]) == ["real_old:all", str(expected)]
    monkeypatch.setenv("OLDPHOTO_REAL_OLD", str(tmp_path))
    assert real_old_sources("corpus-less") == ["corpus-less", str(tmp_path)]
    assert real_old_sources([str(tmp_path)]) == [str(tmp_path)]  # not twice
    monkeypatch.setattr(sources, "default_real_old_folder", lambda: None)
    with pytest.raises(DataError, match="OLDPHOTO_REAL_OLD"):
        real_old_sources(None)


def test_presets_name_no_data_folder(tmp_path):
    for stage in ("vae_a", "vae_b", "mapping_quality"):
        cfg = load_stage_config("small", stage, runs_dir=tmp_path)
        assert cfg.get("real_old", ["real_old:all"]) == ["real_old:all"]
        assert "shared" not in str(cfg)

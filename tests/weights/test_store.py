"""Weights store: cards, atomic save, load_model search order and errors."""

from __future__ import annotations

import json

import pytest
import torch

from oldphoto import weights
from oldphoto.nets.detector import DefectDetector
from oldphoto.nets.face import FaceGenerator
from oldphoto.weights import locate


def test_default_weights_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "w"))
    assert weights.default_weights_dir() == tmp_path / "w"
    monkeypatch.delenv("OLDPHOTO_WEIGHTS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert weights.default_weights_dir() == tmp_path / "xdg" / "oldphoto" / "weights"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights.default_weights_dir() == tmp_path / "home" / ".local" / "share" / "oldphoto" / "weights"
    assert (weights.bundled_weights_dir() / "README.md").is_file()


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    net = DefectDetector(width=4, depth=2).eval()
    card = weights.save_model(net, "detector", tmp_path, source="unit", sha256="ab" * 32,
                              metrics={"f1": 0.5}, notes="tiny")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["detector.json", "detector.safetensors"]
    data = json.loads((tmp_path / "detector.json").read_text())
    assert data == {"role": "detector", "architecture": "detector", "config": net.config, "source": "unit",
                    "sha256": "ab" * 32, "format_version": 1, "metrics": {"f1": 0.5}, "notes": "tiny",
                    "parameters": sum(p.numel() for p in net.parameters())}
    from safetensors import safe_open

    with safe_open(str(tmp_path / "detector.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["architecture"] == "detector" and json.loads(meta["config"]) == net.config
    assert weights.find_card("detector", tmp_path) == card
    assert [c.role for c in weights.installed(tmp_path)] == ["detector"]
    loaded = weights.load_model("detector", tmp_path, dtype=torch.float64)
    assert isinstance(loaded, DefectDetector) and not loaded.training
    assert next(loaded.parameters()).dtype == torch.float64
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x.double()).float(), net(x), rtol=1e-5, atol=1e-6)


def test_training_form_face_is_saved_folded(tmp_path):
    torch.manual_seed(0)
    net = FaceGenerator(ngf=2, size=256, spade_hidden=8).eval()  # face_256: the role fixes the size
    card = weights.save_model(net, "face_256", tmp_path)
    assert card.config["spectral_norm"] is False
    loaded = weights.load_model("face_256", tmp_path)
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), rtol=1e-4, atol=1e-5)


def test_half_storage_halves_the_file_and_loads_in_float32(tmp_path):
    torch.manual_seed(0)
    net = DefectDetector(width=8, depth=2).eval()
    full = weights.save_model(net, "detector", tmp_path / "full")
    half = weights.save_model(net, "detector", tmp_path / "half", half=True)
    assert half.path.stat().st_size < 0.6 * full.path.stat().st_size
    from safetensors.torch import load_file

    assert {v.dtype for v in load_file(str(half.path)).values()} <= {torch.float16, torch.int64}
    loaded = weights.load_model("detector", tmp_path / "half")
    assert next(loaded.parameters()).dtype == torch.float32
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b = loaded(x), net(x)
    assert 0 < (a - b).abs().max() < 1e-3  # float16 rounding of the weights, nothing more


def test_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.setattr(locate, "bundled_weights_dir", lambda: tmp_path / "bundled")
    with pytest.raises(weights.MissingWeightsError) as info:
        weights.load_model("mapping_hr", tmp_path / "user")
    msg = str(info.value)
    assert "mapping_hr" in msg and "oldphoto weights import global_checkpoints.zip" in msg
    assert msg.index("`oldphoto weights download`") < msg.index("weights import")  # the one-step way first
    assert str(tmp_path / "user") in msg
    with pytest.raises(weights.MissingWeightsError, match="face_checkpoints.zip"):
        weights.load_model("face_512", tmp_path / "user")
    assert weights.find_card("detector", tmp_path / "user") is None


def test_bundled_fallback_and_user_priority(tmp_path, monkeypatch):
    bundled = tmp_path / "bundled"
    monkeypatch.setattr(locate, "bundled_weights_dir", lambda: bundled)
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "user"))
    weights.save_model(DefectDetector(width=2, depth=1), "detector", bundled, source="bundled")
    assert weights.find_card("detector").source == "bundled"
    assert weights.load_model("detector").config["width"] == 2
    weights.save_model(DefectDetector(width=4, depth=1), "detector", tmp_path / "user", source="user")
    assert weights.find_card("detector").source == "user"
    assert weights.load_model("detector").config["width"] == 4


def test_broken_files_raise_weights_error(tmp_path):
    weights.save_model(DefectDetector(width=2, depth=1), "detector", tmp_path)
    st = tmp_path / "detector.safetensors"
    good = st.read_bytes()
    st.write_bytes(good[: len(good) // 2])
    with pytest.raises(weights.WeightsError, match="detector.safetensors: unreadable"):
        weights.load_model("detector", tmp_path)
    st.write_bytes(good)
    card = json.loads((tmp_path / "detector.json").read_text())
    card["config"]["width"] = 3
    (tmp_path / "detector.json").write_text(json.dumps(card))
    with pytest.raises(weights.WeightsError, match="describe different networks"):
        weights.load_model("detector", tmp_path)
    (tmp_path / "detector.json").write_text("{not json")
    with pytest.raises(weights.WeightsError, match="detector.json: cannot read"):
        weights.load_model("detector", tmp_path)
    cards, problems = weights.scan(tmp_path)
    assert cards == [] and len(problems) == 1 and "detector.json" in problems[0]
    (tmp_path / "detector.json").unlink()
    with pytest.raises(weights.WeightsError, match="no card"):
        weights.load_model("detector", tmp_path)


def test_save_model_rejects_wrong_architecture_for_role(tmp_path):
    with pytest.raises(weights.WeightsError, match="role 'vae_a' needs architecture 'vae'"):
        weights.save_model(DefectDetector(width=2, depth=1), "vae_a", tmp_path)
    with pytest.raises(weights.WeightsError, match="invalid role"):
        weights.save_model(DefectDetector(width=2, depth=1), "../evil", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_bundled_cards_load_and_write_back_unchanged():
    """Calibration fields (the detector's threshold, the quality mapping's fidelity) are the descriptor's
    card fields: the cards on disk keep their format, and a card writes back exactly as it was read."""
    folder = weights.bundled_weights_dir()
    cards = weights.installed(folder)
    assert len(cards) == 8  # the seven global networks and --remove-grain's denoiser
    for card in cards:
        data = json.loads((folder / f"{card.role}.json").read_text())
        assert card.to_json() == data and list(card.to_json()) == list(data)
    by_role = {c.role: c for c in cards}
    assert by_role["detector"].calibration["threshold"] == 0.61
    assert by_role["mapping_quality"].calibration == {"fidelity": 1.0}
    assert by_role["vae_a"].calibration == {}


def test_calibration_fields_belong_to_their_architecture(tmp_path):
    net = DefectDetector(width=4, depth=2).eval()
    weights.save_model(net, "detector", tmp_path)
    data = json.loads((tmp_path / "detector.json").read_text())
    # a detector card carries the detector's fields; another architecture's field is not read as one
    (tmp_path / "detector.json").write_text(json.dumps({**data, "threshold": 0.5, "fidelity": 0.3}))
    card = weights.find_card("detector", tmp_path)
    assert card.calibration == {"threshold": 0.5}


def test_a_missing_denoiser_is_not_sent_to_the_upscalers_download(tmp_path, monkeypatch):
    """--remove-grain's denoiser is bundled, not downloaded: its hint must not be Real-ESRGAN's."""
    monkeypatch.setattr(locate, "bundled_weights_dir", lambda: tmp_path / "bundled")
    with pytest.raises(weights.MissingWeightsError) as info:
        weights.load_model("denoiser", tmp_path / "user")
    assert "realesrgan" not in str(info.value) and "bundled" in str(info.value)


def test_weights_list_says_when_the_weights_folder_does_not_exist(tmp_path, monkeypatch, capsys):
    """OLDPHOTO_WEIGHTS naming a shared folder that is not mounted (or mistyped) was listed as '(no
    weights)', as a folder where nothing is installed yet; now the listing says the folder is not there."""
    from oldphoto.cli import main

    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "share"))
    assert main(["weights", "list"]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'share'}:\n  (no weights: no such folder)\n")
    (tmp_path / "share").mkdir()
    assert main(["weights", "list"]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'share'}:\n  (no weights)\n")

"""Importing official-layout checkpoints: zips, folders, single files, and every kind of bad input."""

from __future__ import annotations

import argparse
import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from oldphoto import weights
from oldphoto.cli import main
from oldphoto.nets.detector import DefectDetector, blur_filter
from oldphoto.nets.face import FaceGenerator
from oldphoto.nets.mapping import PatchAttentionMapping, QualityMapping, ScratchMapping
from oldphoto.nets.vae import VAE


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (hidden ones included): relative path -> bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def standin(conformance_dir: Path, name: str) -> dict[str, torch.Tensor]:
    from standin import read_keys, standin_state_dict

    return standin_state_dict(read_keys(conformance_dir / "keys" / f"{name}.tsv"), torch.float32)


def official_detector_checkpoint(conformance_dir: Path) -> dict:
    """FT_Epoch_latest.pt as the official training code saves it: weights (with the .filt constants)
    under 'model_state', next to training state."""
    sd = standin(conformance_dir, "detector")
    for i, c in enumerate((64, 128, 256, 512)):
        sd[f"down_sample.{i}.4.filt"] = blur_filter(c)
    # training scripts often leave numpy scalars and an args Namespace next to the weights: inert data
    return {"model_state": sd, "epoch": np.int64(12), "loss": np.float32(0.25), "hist": np.zeros(3),
            "args": argparse.Namespace(lr=2e-4, name="FT"),
            "optimizer_state": {"state": {}, "param_groups": []}}


def trained_face(size: int, seed: int) -> FaceGenerator:
    """A narrow face generator in the training form whose u, v and BN statistics moved."""
    torch.manual_seed(seed)
    net = FaceGenerator(ngf=2, size=size, spade_hidden=8)
    with torch.no_grad():
        net(torch.rand(2, 3, size, size) * 2 - 1)
    return net.eval()


def write_zip(path: Path, members: dict[str, object], tmp: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, obj in members.items():
            if isinstance(obj, bytes):
                zf.writestr(name, obj)
                continue
            f = tmp / "member.pth"
            torch.save(obj, f)
            zf.write(f, name)
            f.unlink()


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.slow
def test_official_zips_end_to_end(tmp_path, conformance_dir, capsys):
    torch.manual_seed(0)
    vae = standin(conformance_dir, "vae")
    refs = {
        "mapping_quality": QualityMapping(latent_channels=8, width=32).eval(),
        "mapping_scratch": ScratchMapping(latent_channels=8, width=32, inter_channels=16).eval(),
        "mapping_hr": PatchAttentionMapping(latent_channels=8, width=32).eval(),
    }
    det = official_detector_checkpoint(conformance_dir)
    faces = {"face_256": trained_face(256, 1), "face_512": trained_face(512, 2)}
    g = "checkpoints/restoration/"
    global_zip = tmp_path / "global_checkpoints.zip"
    write_zip(global_zip, {
        g + "VAE_A_quality/latest_net_G.pth": vae,
        g + "VAE_A_quality/latest_net_D.pth": {"x": torch.zeros(1)},  # training-only file: skipped
        g + "VAE_A_quality/opt.txt": b"options\n",
        g + "VAE_B_quality/latest_net_G.pth": {k: v * 0.5 for k, v in vae.items()},
        g + "VAE_B_scratch/latest_net_G.pth": {k: v * 0.25 for k, v in vae.items()},
        g + "mapping_quality/latest_net_mapping_net.pth": refs["mapping_quality"].state_dict(),
        g + "mapping_scratch/latest_net_mapping_net.pth": refs["mapping_scratch"].state_dict(),
        g + "mapping_Patch_Attention/latest_net_mapping_net.pth": refs["mapping_hr"].state_dict(),
        "checkpoints/detection/FT_Epoch_latest.pt": det,
    }, tmp_path)
    face_zip = tmp_path / "face_checkpoints.zip"
    write_zip(face_zip, {
        "checkpoints/Setting_9_epoch_100/latest_net_G.pth": faces["face_256"].state_dict(),
        "checkpoints/FaceSR_512/latest_net_G.pth": faces["face_512"].state_dict(),
    }, tmp_path)
    dest = tmp_path / "weights"

    rc, out, err = run_cli(["weights", "import", str(global_zip), str(face_zip), "--dest", str(dest)], capsys)
    assert rc == 0, err
    assert "imported vae_a: vae, 872,131 params, from global_checkpoints.zip:" in out
    assert "imported detector: detector, 37,626,177 params" in out
    assert "9 network(s) imported" in out and "yet:" not in out
    assert "latest_net_D.pth: not an official inference checkpoint location, skipped" in err
    # one zip alone (or a zip missing members) is imported, and what is still missing is said
    rc, out, _ = run_cli(["weights", "import", str(face_zip), "--dest", str(tmp_path / "faces")], capsys)
    assert rc == 0 and "2 network(s) imported" in out
    assert (f"not in {tmp_path / 'faces'} yet: vae_a, vae_b_quality, vae_b_scratch, mapping_quality, "
            "mapping_scratch, mapping_hr, detector (from global_checkpoints.zip): the bundled networks "
            "stand in") in out.replace("\n", " ")
    rc, out, _ = run_cli(["weights", "import", str(global_zip), "--dest", str(tmp_path / "global")], capsys)
    assert "face_256, face_512 (from face_checkpoints.zip): faces are not enhanced until they are" in out
    # no staging left behind
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        f"{r}{s}" for r in weights.OFFICIAL_SOURCES for s in (".json", ".safetensors"))

    rc, out, _ = run_cli(["weights", "list", "--dest", str(dest)], capsys)
    assert rc == 0 and out.count("not installed") == 1  # only the optional upscaler of --upscale
    assert "not installed: upscale_x4, for --upscale (run `oldphoto weights download realesrgan`)" in out
    for role in weights.OFFICIAL_SOURCES:
        assert f"  {role} " in out

    with zipfile.ZipFile(global_zip) as zf:
        member = zf.read(g + "VAE_B_scratch/latest_net_G.pth")
    card = weights.find_card("vae_b_scratch", dest)
    assert card.sha256 == hashlib.sha256(member).hexdigest()
    assert card.source == f"global_checkpoints.zip:{g}VAE_B_scratch/latest_net_G.pth"
    assert weights.find_card("face_512", dest).config["size"] == 512

    with torch.no_grad():
        for role, scale in (("vae_a", 1.0), ("vae_b_quality", 0.5), ("vae_b_scratch", 0.25)):
            m = weights.load_model(role, dest)
            assert isinstance(m, VAE) and not m.training
            for k, v in m.state_dict().items():
                assert torch.equal(v, vae[k] * scale), (role, k)
            x = torch.rand(1, 3, 16, 16) * 2 - 1
            assert m.decode(m.encode(x)).shape == (1, 3, 16, 16)
        z = torch.randn(1, 8, 8, 8)
        mask = torch.zeros(1, 1, 32, 32)
        mask[..., 8:20, 4:12] = 1
        torch.testing.assert_close(weights.load_model("mapping_quality", dest)(z), refs["mapping_quality"](z))
        for role in ("mapping_scratch", "mapping_hr"):
            torch.testing.assert_close(weights.load_model(role, dest)(z, mask), refs[role](z, mask))
        reference = DefectDetector().eval()
        reference.load_state_dict(det["model_state"])
        x = torch.rand(1, 1, 32, 32) * 2 - 1
        torch.testing.assert_close(weights.load_model("detector", dest)(x), reference(x))
        for role, net in faces.items():
            s = net.config["size"]
            x = torch.rand(1, 3, s, s) * 2 - 1
            torch.testing.assert_close(weights.load_model(role, dest)(x), net(x), rtol=1e-4, atol=1e-5)


def test_folder_and_single_file_imports(tmp_path, conformance_dir, capsys):
    vae = standin(conformance_dir, "vae")
    folder = tmp_path / "checkpoints"
    (folder / "restoration" / "VAE_B_scratch").mkdir(parents=True)
    torch.save(vae, folder / "restoration" / "VAE_B_scratch" / "latest_net_G.pth")
    dest = tmp_path / "w"
    rc, out, err = run_cli(["weights", "import", str(folder), "--dest", str(dest)], capsys)
    assert rc == 0, err
    assert "imported vae_b_scratch: vae, 872,131 params, from checkpoints/restoration/VAE_B_scratch/" in out

    lone = tmp_path / "my_vae.pth"
    torch.save({f"module.{k}": v for k, v in vae.items()}, lone)  # DataParallel prefix is stripped
    rc, _, err = run_cli(["weights", "import", str(lone), "--dest", str(dest)], capsys)
    assert rc == 1 and "my_vae.pth" in err and "--role" in err
    assert "vae_a, vae_b_quality, vae_b_scratch" in err
    rc, out, err = run_cli(["weights", "import", str(lone), "--role", "vae_a", "--dest", str(dest)], capsys)
    assert rc == 0, err
    assert weights.find_card("vae_a", dest).source == "my_vae.pth"
    bare = tmp_path / "vae_without_suffix"  # torch.save's own zip format must not pass for a release zip
    torch.save(vae, bare)
    rc, out, err = run_cli(["weights", "import", str(bare), "--role", "vae_b_quality", "--dest", str(dest)],
                           capsys)
    assert rc == 0, err
    rc, _, err = run_cli(["weights", "import", str(lone), "--role", "detector", "--dest", str(dest)], capsys)
    assert rc == 1 and "holds a 'vae' network, but role 'detector' needs 'detector'" in err

    torch.manual_seed(3)
    mapping = QualityMapping(latent_channels=8, width=16)
    torch.save(mapping.state_dict(), tmp_path / "quality.pth")  # unique architecture: no --role needed
    rc, out, err = run_cli(["weights", "import", str(tmp_path / "quality.pth"), "--dest", str(dest)], capsys)
    assert rc == 0, err
    assert "imported mapping_quality: mapping_quality" in out


class _Payload:
    """Unpickling this runs os.makedirs(marker): a checkpoint that carries code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


@pytest.fixture
def populated_dest(tmp_path):
    dest = tmp_path / "dest"
    weights.save_model(DefectDetector(width=2, depth=1), "detector", dest, source="earlier")
    return dest


def _bad_inputs(tmp_path: Path, conformance_dir: Path) -> dict[str, tuple[list[str], str, Path]]:
    """name -> (extra CLI args, expected message fragment, the file the message must name)."""
    vae = standin(conformance_dir, "vae")
    cases = {}

    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n" * 20)
    cases["not_a_checkpoint"] = ([], "not a readable PyTorch checkpoint", text)

    good_zip = tmp_path / "good.zip"
    write_zip(good_zip, {"checkpoints/restoration/VAE_A_quality/latest_net_G.pth": vae}, tmp_path)
    truncated = tmp_path / "global_checkpoints.zip"
    truncated.write_bytes(good_zip.read_bytes()[: good_zip.stat().st_size // 2])
    cases["truncated_zip"] = ([], "not a readable zip archive", truncated)

    # cut where a member ends: zipfile found that checkpoint's own index (torch.save writes zips) and the
    # release zip read as "no official checkpoints in this zip" (a copy to a USB stick cut short)
    two = tmp_path / "two.zip"
    g = "checkpoints/restoration/"
    write_zip(two, {g + "VAE_A_quality/latest_net_G.pth": vae, g + "VAE_B_quality/latest_net_G.pth": vae},
              tmp_path)
    with zipfile.ZipFile(two) as zf:
        cut = zf.infolist()[1].header_offset
    (tmp_path / "usb").mkdir()
    cut_short = tmp_path / "usb" / "global_checkpoints.zip"
    cut_short.write_bytes(two.read_bytes()[:cut])
    cases["zip_cut_after_a_member"] = ([], "the zip is incomplete", cut_short)

    evil = tmp_path / "latest_net_G.pth"
    torch.save({"encoder.1.weight": torch.zeros(1), "extra": _Payload(str(tmp_path / "PWNED"))}, evil)
    cases["pickle_with_code"] = (["--role", "vae_a"], "refused: the file carries pickled code", evil)

    unknown = tmp_path / "resnet50.pth"
    torch.save({"conv1.weight": torch.randn(8, 3, 7, 7), "fc.bias": torch.randn(10)}, unknown)
    cases["unknown_architecture"] = ([], "unrecognised checkpoint", unknown)

    missing = tmp_path / "missing.pth"
    torch.save({k: v for k, v in vae.items() if k != "encoder.4.bias"}, missing)
    cases["missing_keys"] = (["--role", "vae_a"], "missing keys: encoder.4.bias", missing)

    misshaped = tmp_path / "misshaped.pth"
    torch.save({**vae, "encoder.4.weight": torch.zeros(64, 64, 3, 3)}, misshaped)
    cases["misshaped_keys"] = (["--role", "vae_a"], "mis-shaped keys: encoder.4.weight (64, 64, 3, 3)",
                               misshaped)

    extra = tmp_path / "extra.pth"
    torch.save({**vae, "encoder.99.weight": torch.zeros(3)}, extra)
    cases["unexpected_keys"] = (["--role", "vae_a"], "unexpected keys: encoder.99.weight", extra)

    # a valid VAE next to a broken detector: nothing at all may be installed
    half_good = tmp_path / "half_good"
    (half_good / "restoration" / "VAE_A_quality").mkdir(parents=True)
    (half_good / "detection").mkdir()
    torch.save(vae, half_good / "restoration" / "VAE_A_quality" / "latest_net_G.pth")
    (half_good / "detection" / "FT_Epoch_latest.pt").write_bytes(b"\x80\x02garbage")
    cases["one_bad_of_two"] = ([], "FT_Epoch_latest.pt: not a", half_good)
    return cases


BAD = ["not_a_checkpoint", "truncated_zip", "zip_cut_after_a_member", "pickle_with_code",
       "unknown_architecture", "missing_keys", "misshaped_keys", "unexpected_keys", "one_bad_of_two"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_refused_and_dest_unchanged(case, tmp_path, conformance_dir, populated_dest, capsys):
    args, fragment, path = _bad_inputs(tmp_path, conformance_dir)[case]
    before = snapshot(populated_dest)
    rc, out, err = run_cli(["weights", "import", str(path), *args, "--dest", str(populated_dest)], capsys)
    assert rc == 1
    assert fragment in err
    assert path.name in err
    assert "nothing was changed" in err
    assert snapshot(populated_dest) == before
    assert not (tmp_path / "PWNED").exists()  # the payload never ran
    with pytest.raises(weights.WeightsError, match=fragment.split(":")[0]):
        weights.import_checkpoints([path], dest=populated_dest, role=(args[1] if args else None))
    assert snapshot(populated_dest) == before


def test_nonexistent_path_and_unknown_role(tmp_path, capsys):
    rc, _, err = run_cli(["weights", "import", str(tmp_path / "nope.zip"), "--dest", str(tmp_path)], capsys)
    assert rc == 1 and "nope.zip: no such file or folder" in err
    rc, _, err = run_cli(["weights", "import", str(tmp_path), "--role", "vae_c", "--dest", str(tmp_path)],
                         capsys)
    assert rc == 1 and "unknown role 'vae_c'" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = run_cli(["weights", "import", str(empty), "--dest", str(tmp_path / "d")], capsys)
    assert rc == 1 and "no official checkpoints found" in err


def test_weights_list_reports_a_weights_file_that_cannot_be_loaded(tmp_path, capsys):
    """A card whose weights file is damaged (or describes another network) is listed as BROKEN, not as
    installed, and the listing exits 1: restore would refuse it."""
    import shutil

    bundled = weights.bundled_weights_dir()
    for name in ("vae_a.json", "vae_a.safetensors", "vae_b_quality.json", "vae_b_quality.safetensors"):
        shutil.copy(bundled / name, tmp_path / name)
    rc, out, _ = run_cli(["weights", "list", "--dest", str(tmp_path)], capsys)
    assert rc == 0 and "BROKEN" not in out
    (tmp_path / "vae_a.safetensors").write_bytes(b"not a safetensors file")
    shutil.copy(bundled / "detector.safetensors", tmp_path / "vae_b_quality.safetensors")
    rc, out, _ = run_cli(["weights", "list", "--dest", str(tmp_path)], capsys)
    mine = out.split(f"{bundled}:")[0]
    assert rc == 1
    assert "BROKEN" in mine and "vae_a.safetensors: unreadable weights file" in mine
    assert "vae_b_quality.safetensors: the weights file and its card" in mine
    assert "  vae_a " not in mine and "  vae_b_quality " not in mine

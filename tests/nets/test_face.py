"""FaceGenerator: official key layout and parameter count, spectral-norm folding, conformance cases."""

from __future__ import annotations

import json

import pytest
import torch

from oldphoto.nets import architecture
from oldphoto.nets.face import FaceGenerator, fold_spectral_norm

OFFICIAL_PARAMS = 92_059_587




def test_official_layout_and_parameter_count(conformance_dir):
    from standin import read_keys

    assert architecture("face_generator") is FaceGenerator
    net = FaceGenerator()  # training form = official layout (weight_orig / weight_u / weight_v)
    sd = net.state_dict()
    for name in ("face_256", "face_512"):
        entries = read_keys(conformance_dir / "keys" / f"{name}.tsv")
        assert list(sd) == [k for k, _, _ in entries]
        for key, shape, _ in entries:
            assert tuple(sd[key].shape) == shape, key
    # counted the official way: weight_orig is a parameter, the u / v vectors are buffers
    assert sum(p.numel() for p in net.parameters()) == OFFICIAL_PARAMS
    plain = FaceGenerator(spectral_norm=False)
    assert sum(p.numel() for p in plain.parameters()) == OFFICIAL_PARAMS
    assert not any(k.endswith(("_orig", "_u", "_v")) for k in plain.state_dict())
    assert FaceGenerator.config_from_state_dict(sd, size=512) == {**net.config, "size": 512}
    json.dumps(net.config)


def test_fold_uses_stored_vectors_not_power_iteration():
    torch.manual_seed(1)
    w = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    u = torch.nn.functional.normalize(torch.randn(6, dtype=torch.float64), dim=0)  # NOT the top singular pair
    v = torch.nn.functional.normalize(torch.randn(36, dtype=torch.float64), dim=0)
    sd = {"a.bias": torch.zeros(6), "a.weight_orig": w, "a.weight_u": u, "a.weight_v": v, "b.weight": w}
    folded = fold_spectral_norm(sd)
    assert list(folded) == ["a.bias", "a.weight", "b.weight"]
    sigma = torch.dot(u, w.reshape(6, -1) @ v)
    torch.testing.assert_close(folded["a.weight"], w / sigma, rtol=0, atol=0)
    assert folded["b.weight"] is w


def test_training_form_eval_equals_folded_form_batched():
    torch.manual_seed(0)
    net = FaceGenerator(ngf=2, size=64, spade_hidden=8).double()
    net.train()
    with torch.no_grad():  # a few training steps: power iteration moves u, v and BN statistics
        for _ in range(3):
            net(torch.rand(2, 3, 64, 64, dtype=torch.float64) * 2 - 1)
    net.eval()
    plain = net.folded()
    assert plain.config["spectral_norm"] is False and not plain.training
    x = torch.rand(3, 3, 64, 64, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        ref = net(x)
        out = plain(x)
        single = plain(x[2:])
    assert out.shape == (3, 3, 64, 64)
    assert (out - ref).abs().max().item() < 1e-12
    assert (out[2:] - single).abs().max().item() < 1e-12  # batch members are independent at inference
    assert out.abs().max().item() < 1.0  # tanh
    with pytest.raises(ValueError, match="3×64×64"):
        plain(torch.zeros(1, 3, 32, 32, dtype=torch.float64))


@pytest.fixture(scope="module")
def face_standin(conformance_dir):
    from standin import fingerprint, read_keys, standin_state_dict

    man = json.loads((conformance_dir / "manifest.json").read_text())["cases"]
    sd = standin_state_dict(read_keys(conformance_dir / "keys" / "face_256.tsv"))
    assert fingerprint(sd) == man["face_256"]["standin_fingerprint_float64"]
    return sd, man


def _run_case(conformance_dir, face_standin, case_name: str, role: str, size: int) -> None:
    from standin import load_case

    from oldphoto.weights.importer import convert

    sd, man = face_standin
    case = man[case_name]
    # the project's own importer: strict key check, spectral norm folded, module float64 before loading
    net = convert(sd, "face_generator", name=case_name, role=role, dtype=torch.float64)
    assert net.config["size"] == size and net.config["spectral_norm"] is False
    assert next(net.parameters()).dtype == torch.float64
    t = load_case(conformance_dir / case["file"])
    with torch.no_grad():
        out = net(t["x"].double())
    assert (out - t["out"].double()).abs().max().item() <= case["tolerance_max_abs"]


@pytest.mark.slow
def test_conformance_face_256(conformance_dir, face_standin):
    _run_case(conformance_dir, face_standin, "face_256", "face_256", 256)


@pytest.mark.slow
def test_conformance_face_512(conformance_dir, face_standin):
    _run_case(conformance_dir, face_standin, "face_512", "face_512", 512)


def test_gated_generator_blends_with_its_input_and_round_trips():
    import torch

    from oldphoto.nets.face import FaceGenerator

    torch.manual_seed(0)
    plain = FaceGenerator(ngf=2, size=32, spade_hidden=4).eval()
    gated = FaceGenerator(ngf=2, size=32, spade_hidden=4, gate=True).eval()
    missing, unexpected = gated.load_state_dict(plain.state_dict(), strict=False)
    assert set(missing) == {"conv_gate.weight", "conv_gate.bias"} and not unexpected
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b = plain(x), gated(x)
        g = torch.sigmoid(torch.tensor(3.0))
        assert torch.allclose(b, g * a + (1 - g) * x, atol=1e-6)  # starts as the plain generator, 5 % input
        gated.conv_gate.bias.fill_(-30.0)
        assert torch.allclose(gated(x), x, atol=1e-6)  # closed gate: the input as is
    assert FaceGenerator.config_from_state_dict(gated.state_dict(), size=32)["gate"] is True
    assert "gate" not in FaceGenerator.config_from_state_dict(plain.state_dict(), size=32)
    folded = gated.folded()
    with torch.no_grad():
        assert torch.allclose(folded(x), gated(x), atol=1e-5)


def test_residual_generator_starts_at_its_input_and_adds_a_clipped_correction():
    import torch

    from oldphoto.nets.face import FaceGenerator

    torch.manual_seed(0)
    net = FaceGenerator(ngf=2, size=32, spade_hidden=4, residual=True).eval()
    assert net.config["residual"] is True
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(net(x), x)  # untrained: the degraded face as it is
        net.conv_img.bias.fill_(0.5)
        y = net(x)
        assert torch.allclose(y, (x + 0.5).clamp(-1, 1), atol=1e-6)
        assert float(y.max()) == 1.0  # clipped, not squashed by tanh
        folded = net.folded()
        assert folded.config["residual"] is True and torch.allclose(folded(x), y, atol=1e-5)
    with pytest.raises(ValueError, match="gated or residual"):
        FaceGenerator(ngf=2, size=32, spade_hidden=4, gate=True, residual=True)

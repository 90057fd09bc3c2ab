"""DefectDetector: official key layout, parameter count, conformance with the official UNet outputs."""

from __future__ import annotations

import json

import pytest
import torch

from oldphoto.nets import architecture
from oldphoto.nets.detector import DefectDetector, blur_filter

OFFICIAL_PARAMS = 37_626_177




def _keys(conformance_dir):
    from standin import read_keys

    return read_keys(conformance_dir / "keys" / "detector.tsv")


def test_registry_and_official_layout(conformance_dir):
    assert architecture("detector") is DefectDetector
    net = DefectDetector()
    sd = net.state_dict()
    entries = _keys(conformance_dir)
    assert list(sd) == [k for k, _, _ in entries]  # same keys, same order as the official state_dict
    for key, shape, _dtype in entries:
        assert tuple(sd[key].shape) == shape, key
    # the official way: nn parameters only (the .filt buffers are not parameters)
    assert sum(p.numel() for p in net.parameters()) == OFFICIAL_PARAMS
    assert DefectDetector.config_from_state_dict(sd) == net.config
    json.dumps(net.config)


def test_blur_filter_constant():
    expected = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=torch.float64) / 16
    net = DefectDetector(width=8, depth=2)
    for i, c in enumerate((8, 16)):
        filt = net.state_dict()[f"down_sample.{i}.4.filt"]
        assert filt.shape == (c, 1, 3, 3)
        assert torch.equal(filt.double(), expected.expand(c, 1, 3, 3))
    assert torch.equal(blur_filter(3, torch.float64)[2, 0], expected)


def test_conformance_official_outputs(conformance_dir):
    from standin import fingerprint, load_case, standin_state_dict

    man = json.loads((conformance_dir / "manifest.json").read_text())["cases"]["detector"]
    sd = standin_state_dict(_keys(conformance_dir))
    assert fingerprint(sd) == man["standin_fingerprint_float64"]
    net = DefectDetector(**DefectDetector.config_from_state_dict(sd)).double()  # float64 BEFORE loading
    result = net.load_state_dict(sd, strict=False)
    assert sorted(result.missing_keys) == [f"down_sample.{i}.4.filt" for i in range(4)]
    assert result.unexpected_keys == []
    case = load_case(conformance_dir / man["file"])
    with torch.no_grad():
        out = net.eval()(case["x"])
    assert out.shape == case["logits"].shape
    assert (out - case["logits"]).abs().max().item() <= man["tolerance_max_abs"]


def test_small_config_roundtrip_batch_and_errors():
    torch.manual_seed(0)
    net = DefectDetector(width=4, depth=3, conv_num=1).eval()
    cfg = DefectDetector.config_from_state_dict(net.state_dict())
    assert cfg == net.config
    x = torch.rand(2, 1, 32, 48) * 2 - 1
    with torch.no_grad():
        both = net(x)
        one = net(x[1:])
    assert both.shape == (2, 1, 32, 48)
    torch.testing.assert_close(both[1:], one, rtol=1e-5, atol=1e-6)  # eval BatchNorm: no cross-sample mixing
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.zeros(1, 1, 30, 32))
    with pytest.raises(ValueError, match="N×1×H×W"):
        net(torch.zeros(1, 3, 32, 32))

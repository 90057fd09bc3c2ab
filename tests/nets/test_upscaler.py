"""The ESRGAN generator (RRDBNet) that --upscale runs."""

from __future__ import annotations

import pytest
import torch

from oldphoto.nets import architecture
from oldphoto.nets.upscaler import RRDBNet


def test_enlarges_four_times_in_the_networks_range():
    torch.manual_seed(0)
    net = RRDBNet(num_feat=8, num_grow=4, num_blocks=2).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, 10, 13) * 2 - 1)
    assert y.shape == (2, 3, 40, 52)


def test_official_size_matches_real_esrgan_x4plus():
    with torch.device("meta"):
        net = RRDBNet()
    assert sum(p.numel() for p in net.parameters()) == 16_697_987  # Real-ESRGAN x4plus
    assert len(list(net.convolutions())) == RRDBNet.num_convolutions(23) == 351


def test_convolutions_come_in_the_order_they_run():
    net = RRDBNet(num_feat=8, num_grow=4, num_blocks=1)
    convs = list(net.convolutions())
    assert len(convs) == len([m for m in net.modules() if isinstance(m, torch.nn.Conv2d)])
    assert convs[0] is net.conv_first and convs[-1] is net.conv_last
    # a dense block's convolutions see the block input and every earlier output
    assert [c.in_channels for c in convs[1:6]] == [8, 12, 16, 20, 24]


def test_registered_and_refuses_bad_input():
    assert architecture("rrdbnet") is RRDBNet
    with pytest.raises(ValueError):
        RRDBNet(num_blocks=0)
    with pytest.raises(ValueError, match="N×3×H×W"):
        RRDBNet(num_feat=4, num_grow=2, num_blocks=1)(torch.zeros(1, 1, 8, 8))


def test_inference_in_strips_is_the_whole_computation(monkeypatch):
    torch.manual_seed(0)
    net = RRDBNet(num_feat=8, num_grow=4, num_blocks=1).eval()
    x = torch.rand(1, 3, 23, 9) * 2 - 1
    whole = net(x.requires_grad_()).detach()  # with gradients: one piece
    monkeypatch.setattr("oldphoto.nets.upscaler.TAIL_STRIP_PIXELS", 9 * 4)  # strips of 4 rows, 6 of them
    with torch.no_grad():
        strips = net(x)
    assert strips.shape == whole.shape == (1, 3, 92, 36)
    torch.testing.assert_close(strips, whole, atol=1e-6, rtol=0)

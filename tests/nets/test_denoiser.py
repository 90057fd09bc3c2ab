"""LumaDenoiser: the identity untrained, any photo size, its configuration read back from its weights."""

from __future__ import annotations

import pytest
import torch

from oldphoto.nets import architecture
from oldphoto.nets.denoiser import LumaDenoiser


def test_untrained_network_is_the_identity_at_any_size():
    torch.manual_seed(0)
    net = LumaDenoiser(width=8, depth=3).eval()
    for h, w in [(32, 32), (31, 17), (2, 3)]:
        y = torch.rand(2, 1, h, w)
        with torch.no_grad():
            out = net(y, torch.tensor([0.02, 0.1]))
        assert out.shape == y.shape
        assert torch.equal(out, y)


def test_the_noise_level_reaches_the_output():
    torch.manual_seed(0)
    net = LumaDenoiser(width=8, depth=3).eval()
    torch.nn.init.normal_(net.body[-1].weight, std=0.1)  # a correction that is not zero
    y = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert not torch.equal(net(y, torch.tensor([0.0])), net(y, torch.tensor([0.1])))


def test_config_from_weights_and_registry():
    assert architecture("luma_denoiser") is LumaDenoiser
    net = LumaDenoiser(width=12, depth=5)
    assert LumaDenoiser.config_from_state_dict(net.state_dict()) == {"width": 12, "depth": 5}
    with pytest.raises(ValueError, match="depth"):
        LumaDenoiser(depth=1)

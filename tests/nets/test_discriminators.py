"""Discriminators: pix2pixHD layout, scales, intermediate features, spectral norm, config round trip."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from oldphoto.nets import architecture
from oldphoto.nets.discriminators import LatentDiscriminator, MultiscaleDiscriminator


def test_registry_and_official_size():
    assert architecture("multiscale_discriminator") is MultiscaleDiscriminator
    assert architecture("latent_discriminator") is LatentDiscriminator
    # pix2pixHD n_layers=3 PatchGAN on 6 input channels (mapping stage, conditional), 2 scales.
    d = MultiscaleDiscriminator(in_channels=6)
    per_scale = (6 * 64 * 16 + 64) + (64 * 128 * 16 + 128) + (128 * 256 * 16 + 256) + (256 * 512 * 16 + 512) \
        + (512 * 16 + 1)
    assert sum(p.numel() for p in d.parameters()) == 2 * per_scale
    keys = list(d.state_dict())
    assert keys[:2] == ["scale0_layer0.0.weight", "scale0_layer0.0.bias"]
    assert "scale1_layer4.0.weight" in keys and "scale1_layer3.0.weight" in keys


@pytest.mark.parametrize("config", [
    {},
    {"in_channels": 6, "ndf": 8, "n_layers": 2, "num_D": 3, "spectral_norm": True},
])
def test_config_round_trip(config):
    d = MultiscaleDiscriminator(**config)
    derived = MultiscaleDiscriminator.config_from_state_dict(d.state_dict())
    assert derived == d.config
    json.dumps(derived)
    MultiscaleDiscriminator(**derived).load_state_dict(d.state_dict(), strict=True)


def test_scales_and_intermediate_features():
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(in_channels=3, ndf=8, n_layers=3, num_D=2)
    x = torch.randn(2, 3, 64, 48)
    out = d(x)
    assert len(out) == 2 and all(len(feats) == 5 for feats in out)
    assert [f.shape[1] for f in out[0]] == [8, 16, 32, 64, 1]
    assert out[0][-1].shape == (2, 1, 11, 9) and out[1][-1].shape == (2, 1, 7, 6)
    # The full-resolution input goes to the highest-numbered scale; the next scale sees the avg-pooled input.
    assert torch.equal(out[0][0], d.scale1_layer0(x))
    pooled = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    assert torch.equal(out[1][0], d.scale0_layer0(pooled))
    # Leaky ReLU on intermediate features, raw scores at the end.
    assert (out[0][1] < 0).any() and (out[0][-1] < 0).any()


def test_spectral_norm_keys_and_eval_uses_stored_vectors():
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(in_channels=3, ndf=4, n_layers=2, num_D=1, spectral_norm=True)
    sd = d.state_dict()
    assert {"scale0_layer0.0.weight_orig", "scale0_layer0.0.weight_u", "scale0_layer0.0.weight_v"} <= set(sd)
    d.train()
    d(torch.randn(1, 3, 32, 32))  # one power iteration updates u, v
    d.eval()
    conv = d.scale0_layer1[0]
    w = conv.weight_orig.reshape(conv.weight_orig.shape[0], -1)
    sigma = torch.dot(conv.weight_u, w @ conv.weight_v)
    x = torch.randn(1, 4, 9, 9)
    with torch.no_grad():
        expected = F.conv2d(x, conv.weight_orig / sigma, conv.bias, stride=2, padding=2)
        assert torch.allclose(conv(x), expected, atol=1e-6)


def test_latent_discriminator_and_gradients():
    torch.manual_seed(0)
    d = LatentDiscriminator(ndf=8)
    assert d.config["in_channels"] == 64 and d.config["num_D"] == 1
    assert LatentDiscriminator.config_from_state_dict(d.state_dict()) == d.config
    z = torch.randn(3, 64, 16, 16, requires_grad=True)
    out = d(z)
    assert len(out) == 1 and out[0][-1].shape == (3, 1, 5, 5)
    F.mse_loss(out[0][-1], torch.ones_like(out[0][-1])).backward()  # LSGAN "real" target
    assert z.grad.abs().sum() > 0 and d.scale0_layer0[0].weight.grad.abs().sum() > 0

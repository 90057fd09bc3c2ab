"""VAE: official conformance (stand-in weights), size, key layout, config round trip, training form."""

from __future__ import annotations

import json

import pytest
import torch

from oldphoto.nets import architecture
from oldphoto.nets.vae import VAE


def _case(conformance_dir, name):
    from standin import fingerprint, load_case, read_keys, standin_state_dict

    case = json.loads((conformance_dir / "manifest.json").read_text())["cases"][name]
    sd = standin_state_dict(read_keys(conformance_dir / "keys" / f"{case['keys']}.tsv"))
    assert fingerprint(sd) == case["standin_fingerprint_float64"]
    return case, sd, load_case(conformance_dir / case["file"])


def test_vae_conformance_encoder_and_decoder(conformance_dir):
    case, sd, t = _case(conformance_dir, "vae")
    net = VAE(**VAE.config_from_state_dict(sd)).double()  # float64 BEFORE loading: no float32 rounding
    net.load_state_dict(sd, strict=True)
    net.eval()
    tol = case["tolerance_max_abs"]
    with torch.no_grad():
        z = net.encoder(t["x"])
        y = net.decoder(t["z"])
        assert (net.encode(t["x"]) - z).abs().max() == 0
    assert z.shape == t["z"].shape and y.shape == t["y"].shape
    assert (z - t["z"]).abs().max().item() <= tol
    assert (y - t["y"]).abs().max().item() <= tol


def test_official_size_keys_and_parameter_count(conformance_dir):
    from standin import read_keys

    net = VAE()
    assert sum(p.numel() for p in net.parameters()) == 872_131
    entries = read_keys(conformance_dir / "keys" / "vae.tsv")
    sd = net.state_dict()
    assert list(sd) == [e[0] for e in entries]
    assert all(tuple(sd[k].shape) == tuple(shape) for k, shape, *_ in entries)
    assert architecture("vae") is VAE and VAE.ARCH_NAME == "vae"


@pytest.mark.parametrize("config", [
    {},
    {"in_channels": 1, "out_channels": 3, "width": 8, "n_res_encoder": 1, "n_res_decoder": 2},
])
def test_config_round_trip(config):
    net = VAE(**config)
    derived = VAE.config_from_state_dict(net.state_dict())
    assert derived == net.config
    json.dumps(derived)
    VAE(**derived).load_state_dict(net.state_dict(), strict=True)


def test_config_from_foreign_state_dict_is_a_clear_error():
    with pytest.raises(ValueError, match="encoder.1.weight"):
        VAE.config_from_state_dict({"model.0.weight": torch.zeros(1)})


def test_tiny_shapes_and_size_check():
    net = VAE(width=8, n_res_encoder=1, n_res_decoder=1).eval()
    x = torch.rand(2, 3, 20, 28) * 2 - 1
    with torch.no_grad():
        z = net.encode(x)
        y = net.decode(z)
    assert z.shape == (2, 8, 5, 7) and y.shape == x.shape
    assert y.abs().max() < 1
    with pytest.raises(ValueError, match="multiples of 4"):
        net.encode(torch.zeros(1, 3, 22, 28))
    with pytest.raises(ValueError, match="multiples of 4"):
        net.encoder(torch.zeros(1, 3, 20, 29))
    assert VAE.pad_multiple == 4


def test_training_form_noise_and_kl():
    torch.manual_seed(0)
    net = VAE(width=8, n_res_encoder=1, n_res_decoder=1)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    net.train()
    r1, z, kl = net(x, generator=torch.Generator().manual_seed(3))
    r2, _, _ = net(x, generator=torch.Generator().manual_seed(3))
    r3, _, _ = net(x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(r1, r2) and not torch.allclose(r1, r3)
    assert torch.allclose(kl, z.pow(2).mean())
    # The decoder saw z + N(0, I): reproduce it with the same generator.
    noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(r1, net.decode(z + noise), atol=1e-6)
    # Eval (or sample=False): no noise.
    net.eval()
    with torch.no_grad():
        r_eval, z_eval, _ = net(x)
        assert torch.equal(r_eval, net.decode(z_eval))
    # Gradients reach encoder and decoder through the sampled path.
    net.train()
    recon, _, kl = net(x)
    (recon.abs().mean() + kl).backward()
    assert net.encoder[1].weight.grad.abs().sum() > 0
    assert net.decoder[-2].weight.grad.abs().sum() > 0

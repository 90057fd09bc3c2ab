"""The importer's conversion of official-layout dicts reproduces the official outputs (conformance cases).

These go through ``oldphoto.weights.importer.convert`` (recognition, config from shapes, strict key
check, module built in float64 before loading); the networks' own tests cover the modules directly."""

from __future__ import annotations

import json

import pytest
import torch

from oldphoto.weights.importer import convert, recognise


def _case(conformance_dir, name):
    from standin import fingerprint, load_case, read_keys, standin_state_dict

    man = json.loads((conformance_dir / "manifest.json").read_text())["cases"][name]
    sd = standin_state_dict(read_keys(conformance_dir / "keys" / f"{man['keys']}.tsv"))
    assert fingerprint(sd) == man["standin_fingerprint_float64"]
    return sd, load_case(conformance_dir / man["file"]), man["tolerance_max_abs"]


def _import(sd, expected_arch, role=None):
    arch = recognise(sd, "standin")
    assert arch == expected_arch
    net = convert(sd, arch, "standin", role=role, dtype=torch.float64)
    assert not net.training and next(net.parameters()).dtype == torch.float64
    return net


def test_vae(conformance_dir):
    sd, t, tol = _case(conformance_dir, "vae")
    net = _import(sd, "vae", role="vae_a")
    with torch.no_grad():
        assert (net.encoder(t["x"]) - t["z"]).abs().max().item() <= tol
        assert (net.decoder(t["z"]) - t["y"]).abs().max().item() <= tol


@pytest.mark.slow
def test_mapping_quality(conformance_dir):
    sd, t, tol = _case(conformance_dir, "mapping_quality")
    net = _import(sd, "mapping_quality")
    with torch.no_grad():
        assert (net(t["z"]) - t["out"]).abs().max().item() <= tol


@pytest.mark.slow
def test_mapping_scratch(conformance_dir):
    sd, t, tol = _case(conformance_dir, "mapping_scratch")
    net = _import(sd, "mapping_scratch")
    with torch.no_grad():
        assert (net(t["z"], t["mask"]) - t["out"]).abs().max().item() <= tol


@pytest.mark.slow
def test_mapping_patch_attention(conformance_dir):
    sd, t, tol = _case(conformance_dir, "mapping_patch_attention")
    net = _import(sd, "mapping_patch_attention")
    with torch.no_grad():
        assert (net(t["z"], t["mask"]) - t["out"]).abs().max().item() <= tol


def test_detector_without_filt_buffers(conformance_dir):
    # the stand-in has no .filt entries: the importer fills the architecture constant
    sd, t, tol = _case(conformance_dir, "detector")
    net = _import(sd, "detector")
    with torch.no_grad():
        assert (net(t["x"]) - t["logits"]).abs().max().item() <= tol
    sd = dict(sd)
    sd["down_sample.0.4.filt"] = torch.full((64, 1, 3, 3), 1 / 9, dtype=torch.float64)
    from oldphoto.weights import WeightsError

    with pytest.raises(WeightsError, match="down_sample.0.4.filt is not the blur-pool constant"):
        convert(sd, "detector", "standin")

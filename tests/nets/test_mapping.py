"""Mapping networks: official conformance, sizes, config round trips, chunked partial nonlocal == dense,
patch-attention semantics (threshold, copy, zero border, training form), gradients."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from oldphoto.nets import architecture
from oldphoto.nets.mapping import (
    PartialNonLocal,
    PatchAttention,
    PatchAttentionMapping,
    QualityMapping,
    ScratchMapping,
    _best_keys,
    attention_chunk_rows,
    latent_defect_mask,
    partial_attention,
    valid_key_mask,
)

CLASSES = {"mapping_quality": QualityMapping, "mapping_scratch": ScratchMapping,
           "mapping_patch_attention": PatchAttentionMapping}
PARAMS = {"mapping_quality": 36_135_232, "mapping_scratch": 51_344_704, "mapping_patch_attention": 73_904_448}


def _case(conformance_dir, name):
    from standin import fingerprint, load_case, read_keys, standin_state_dict

    case = json.loads((conformance_dir / "manifest.json").read_text())["cases"][name]
    sd = standin_state_dict(read_keys(conformance_dir / "keys" / f"{case['keys']}.tsv"))
    assert fingerprint(sd) == case["standin_fingerprint_float64"]
    return case, sd, load_case(conformance_dir / case["file"])


def _official_net(cls, sd):
    net = cls(**cls.config_from_state_dict(sd)).double()  # float64 BEFORE loading the float64 stand-ins
    net.load_state_dict(sd, strict=True)
    return net.eval()


@pytest.fixture(scope="module")
def patch_attention_net(conformance_dir):
    """Built once: the three patch-attention cases share one stand-in dict (74 M values)."""
    _, sd, _ = _case(conformance_dir, "mapping_patch_attention")
    return _official_net(PatchAttentionMapping, sd)


# ------------------------------------------------------------------------------------------- conformance
# float64 forwards of the 512-channel official-size nets: ~10-20 s each on 2 cores.
@pytest.mark.slow
def test_quality_conformance(conformance_dir):
    case, sd, t = _case(conformance_dir, "mapping_quality")
    net = _official_net(QualityMapping, sd)
    with torch.no_grad():
        out = net(t["z"])
    assert (out - t["out"]).abs().max().item() <= case["tolerance_max_abs"]


@pytest.mark.slow
def test_scratch_conformance_chunked_and_dense(conformance_dir):
    case, sd, t = _case(conformance_dir, "mapping_scratch")
    net = _official_net(ScratchMapping, sd)
    assert torch.equal(valid_key_mask(t["mask"], (16, 24)), t["aux.key_mask"])
    tol = case["tolerance_max_abs"]
    # The default chunk covers all 384 rows here, i.e. it is the dense computation; 7-row chunks are not.
    for label, dense, chunk_bytes in [("dense", True, None), ("7-row chunks", False, 7 * 384 * 8)]:
        net.NL.dense = dense
        if chunk_bytes is not None:
            net.NL.chunk_bytes = chunk_bytes
        with torch.no_grad():
            out = net(t["z"], t["mask"])
        assert (out - t["out"]).abs().max().item() <= tol, label
    assert attention_chunk_rows(384, 1, 8, 7 * 384 * 8) == 7  # 384 = 54·7 + 6: the last chunk is ragged


@pytest.mark.parametrize("name", ["mapping_patch_attention", "mapping_patch_attention_ragged",
                                  "mapping_patch_attention_nomask"])
@pytest.mark.slow
def test_patch_attention_conformance(conformance_dir, patch_attention_net, name):
    from standin import load_case

    case = json.loads((conformance_dir / "manifest.json").read_text())["cases"][name]
    t = load_case(conformance_dir / case["file"])
    net = patch_attention_net
    h, w = t["z"].shape[-2:]
    assert torch.equal(latent_defect_mask(t["mask"], (h, w)), t["aux.latent_mask"])
    with torch.no_grad():
        out = net(t["z"], t["mask"])
    assert (out - t["out"]).abs().max().item() <= case["tolerance_max_abs"]


@pytest.mark.parametrize("name", list(CLASSES))
def test_official_keys_parameter_count_and_config(conformance_dir, name):
    from standin import read_keys

    entries = read_keys(conformance_dir / "keys" / f"{name}.tsv")
    cls = CLASSES[name]
    assert architecture(name) is cls and cls.ARCH_NAME == name
    net = cls()
    assert sum(p.numel() for p in net.parameters()) == PARAMS[name]
    sd = net.state_dict()
    assert list(sd) == [e[0] for e in entries]
    assert all(tuple(sd[k].shape) == tuple(shape) for k, shape, *_ in entries)
    # The shapes alone (no values needed) give back the default configuration.
    shapes_only = {k: torch.empty(shape, device="meta") for k, shape, *_ in entries}
    assert cls.config_from_state_dict(shapes_only) == net.config


@pytest.mark.parametrize("cls, config", [
    (QualityMapping, {"latent_channels": 8, "width": 32, "n_blocks": 2}),
    (ScratchMapping, {"latent_channels": 8, "width": 16, "inter_channels": 12, "n_blocks": 1,
                      "nl_res_blocks": 2}),
    (PatchAttentionMapping, {"latent_channels": 4, "width": 16, "n_res": 1, "patch_sizes": [4, 2],
                             "query_threshold": 0.6}),
])
def test_tiny_config_round_trip(cls, config):
    net = cls(**config)
    assert net.config == config
    derived = cls.config_from_state_dict(net.state_dict())
    assert derived == config
    json.dumps(derived)
    cls(**derived).load_state_dict(net.state_dict(), strict=True)


def test_bad_width_and_bad_mask_are_clear_errors():
    with pytest.raises(ValueError, match="width"):
        QualityMapping(latent_channels=8, width=256)
    net = ScratchMapping(latent_channels=4, width=8, inter_channels=8, n_blocks=1, nl_res_blocks=1)
    with pytest.raises(ValueError, match="mask"):
        net(torch.zeros(1, 4, 4, 4), torch.zeros(1, 16, 16))
    with pytest.raises(ValueError, match="state dict"):
        ScratchMapping.config_from_state_dict({"model.0.weight": torch.zeros(1)})


# ------------------------------------------------------------------------------------ partial nonlocal
def _random_attention_inputs(n=50, c=6, b=2, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(b, n, c, generator=g, dtype=torch.float64) * scale
    phi = torch.randn(b, c, n, generator=g, dtype=torch.float64) * scale
    values = torch.randn(b, n, c, generator=g, dtype=torch.float64)
    return theta, phi, values


def _formula(theta, phi, values, m):
    """Eq. 7 with the official eps: softmax over all keys, mask, L1-renormalise, weighted sum."""
    attn = torch.softmax(theta @ phi, dim=-1) * m[:, None, :]
    return F.normalize(attn, p=1, dim=-1) @ values


@pytest.mark.parametrize("mask_kind", ["random", "all_clean", "all_masked", "one_valid"])
@pytest.mark.parametrize("rows", [1, 7, 16, 50, None])
def test_chunked_attention_equals_dense(mask_kind, rows):
    theta, phi, values = _random_attention_inputs()
    m = {"random": (torch.rand(2, 50, generator=torch.Generator().manual_seed(1)) > 0.3).double(),
         "all_clean": torch.ones(2, 50, dtype=torch.float64),
         "all_masked": torch.zeros(2, 50, dtype=torch.float64),
         "one_valid": F.one_hot(torch.tensor([3, 49]), 50).double()}[mask_kind]
    with torch.no_grad():
        dense = partial_attention(theta, phi, values, m, None)
        chunked = partial_attention(theta, phi, values, m, rows)
    assert torch.allclose(chunked, dense, rtol=0, atol=1e-12)
    assert torch.allclose(dense, _formula(theta, phi, values, m), rtol=0, atol=1e-12)
    if mask_kind == "all_masked":
        assert torch.equal(dense, torch.zeros_like(dense))  # no valid key: zero rows (official eps rule)
    if mask_kind == "one_valid":  # every query copies the single valid key
        expected = values[torch.arange(2), torch.tensor([3, 49])][:, None, :].expand_as(dense)
        assert torch.allclose(dense, expected, atol=1e-12)


def test_underflowing_valid_keys_follow_the_official_eps_clamp():
    # Invalid keys with huge affinities push the valid keys' softmax mass below 1e-12: the official
    # renormalisation then divides by 1e-12, not by that mass. Chunked and dense must both do so.
    theta, phi, values = _random_attention_inputs(n=20, c=4, b=1, scale=6.0, seed=5)
    m = torch.ones(1, 20, dtype=torch.float64)
    m[0, :10] = 0
    with torch.no_grad():
        dense = partial_attention(theta, phi, values, m, None)
        chunked = partial_attention(theta, phi, values, m, 3)
    masses = (torch.softmax(theta @ phi, -1) * m[:, None, :]).sum(-1)
    assert (masses < 1e-12).any() and (masses > 1e-3).any()  # both regimes occur
    assert torch.allclose(chunked, dense, rtol=0, atol=1e-12)
    assert torch.allclose(dense, _formula(theta, phi, values, m), rtol=1e-10, atol=1e-12)


def _tiny_scratch(seed=0):
    torch.manual_seed(seed)
    net = ScratchMapping(latent_channels=4, width=8, inter_channels=8, n_blocks=1, nl_res_blocks=1).double()
    torch.nn.init.normal_(net.NL.W.weight, std=0.3)  # the official zero init would hide the attention
    return net


def _mask(b, h, w, seed):
    return (torch.rand(b, 1, h, w, generator=torch.Generator().manual_seed(seed)) > 0.85).double()


def test_block_fusion_all_clean_all_masked_and_chunking():
    net = _tiny_scratch().eval()
    block: PartialNonLocal = net.NL
    x = torch.randn(2, 8, 6, 9, dtype=torch.float64)
    clean = torch.zeros(2, 1, 24, 36, dtype=torch.float64)
    masked = torch.ones_like(clean)
    with torch.no_grad():
        assert torch.equal(block(x, clean), x)  # valid cells keep x exactly
        y0 = block.res_block(block.W(torch.zeros_like(x)))
        assert torch.allclose(block(x, masked), y0, atol=1e-12)  # no valid key: y = res(W(0)) everywhere
        mask = _mask(2, 24, 36, 3)
        block.dense = True
        ref = block(x, mask)
        block.dense = False
        block.chunk_bytes = 5 * 54 * 2 * 8  # 5 query rows per chunk; 54 = 5·10 + 4
        assert attention_chunk_rows(54, 2, 8, block.chunk_bytes) == 5
        out = block(x, mask)
        m = valid_key_mask(mask, (6, 9))
        assert 0 < m.sum() < m.numel()
    assert torch.allclose(out, ref, rtol=0, atol=1e-12)
    assert torch.equal(out * m, x * m)
    assert not torch.allclose(out, x)


def test_chunks_under_half_precision_autocast_are_budgeted_as_float32(monkeypatch):
    """Under autocast on a GPU the attention's softmax comes out in float32 whatever the logits' precision:
    chunks sized for 2-byte elements held twice the memory meant in bf16/fp16.  CPU autocast keeps the
    softmax in bf16, so there the chunks stay sized for the features' precision."""
    import oldphoto.nets.mapping as mapping

    sizes = []
    real = mapping.attention_chunk_rows
    monkeypatch.setattr(mapping, "attention_chunk_rows", lambda n, b, size, budget: sizes.append(size) or
                        real(n, b, size, budget))
    block = _tiny_scratch().float().eval().NL
    x = torch.randn(1, 8, 6, 9).bfloat16()  # the features a bf16 network hands on
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.softmax(x, dim=-1).dtype == torch.bfloat16  # (what the budget assumes on the CPU)
        block(x, _mask(1, 24, 36, 3).float())
    assert sizes == [2]
    # on a device other than the CPU (meta stands in for the GPU: no values, the same shapes)
    block.to("meta", torch.bfloat16)
    block(x.to("meta"), _mask(1, 24, 36, 3).to("meta", torch.bfloat16))
    assert sizes == [2, 4]


def test_gradients_flow_through_chunked_path_and_match_dense():
    z = torch.randn(1, 4, 6, 7, dtype=torch.float64)
    mask = _mask(1, 24, 28, 7)
    grads = {}
    for mode in ("dense", "chunked", "checkpointed"):
        net = _tiny_scratch(seed=1).train()
        net.NL.dense = mode == "dense"
        net.NL.checkpoint = mode == "checkpointed"
        net.NL.chunk_bytes = 4 * 42 * 8  # 4 rows per chunk, 42 = 4·10 + 2
        zz = z.clone().requires_grad_(True)
        net(zz, mask).square().sum().backward()
        grads[mode] = (zz.grad, net.NL.theta.weight.grad, net.NL.phi.weight.grad, net.NL.g.weight.grad)
    for mode in ("chunked", "checkpointed"):
        for a, b in zip(grads["dense"], grads[mode], strict=True):
            assert b is not None and b.abs().sum() > 0
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), mode


def test_valid_key_mask_official_rule():
    # 4× reduction: bilinear reads pixels {4i+1, 4i+2}², nearest reads (4i, 4j); column 4j+3 is invisible.
    mask = torch.zeros(1, 1, 8, 12, dtype=torch.float64)
    mask[..., :, 1] = 1      # seen by bilinear -> column 0 invalid
    mask[..., 4, 8] = 1      # seen by nearest only -> cell (1, 2) invalid
    mask[..., :, 7] = 1      # column 4·1+3: invisible
    m = valid_key_mask(mask, (2, 3))
    assert m.tolist() == [[[[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]]]]


# ------------------------------------------------------------------------------------- patch attention
def _copying_patch_attention(c: int, p: int) -> PatchAttention:
    """A PatchAttention whose res_block is the identity and whose fusion conv outputs the composed map."""
    pa = PatchAttention(c, p).double()
    with torch.no_grad():
        for prm in pa.res_block.parameters():
            prm.zero_()  # conv → 0, IN(0) = 0: x + 0 = x
        pa.F_Combine.weight.zero_()
        pa.F_Combine.bias.zero_()
        for k in range(c):
            pa.F_Combine.weight[k, c + k, 1, 1] = 1.0
    return pa.eval()


def _cells_to_fullres(cells: torch.Tensor) -> torch.Tensor:
    """Latent-cell mask → full-resolution mask whose bilinear reduction gives back exactly ``cells``."""
    return cells.repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1)


def test_patch_copy_threshold_and_zero_border():
    c, p = 3, 2
    pa = _copying_patch_attention(c, p)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, c, 5, 6, generator=g, dtype=torch.float64)   # 2×3 full patches + a ragged row
    x[..., 2:4, 4:6] = 3.0 * x[..., 0:2, 0:2] + 1e-3                # patch (1,2) ~ patch (0,0)
    cells = torch.zeros(1, 1, 5, 6, dtype=torch.float64)
    cells[..., 2:4, 4:6] = 1                                         # patch (1,2): 100% -> query
    cells[..., 0, 2] = cells[..., 1, 2] = 1                          # patch (0,1): 50% -> key
    with torch.no_grad():
        out = pa(x, _cells_to_fullres(cells))
    expected = x.clone()
    expected[..., 2:4, 4:6] = x[..., 0:2, 0:2]
    expected[..., 4, :] = 0                                          # not covered by a full patch
    assert torch.allclose(out, expected, atol=1e-12)
    # No query at all: the composed map is x itself, with no zero border.
    with torch.no_grad():
        out = pa(x, torch.zeros(1, 1, 20, 24, dtype=torch.float64))
    assert torch.allclose(out, x, atol=1e-12)


def test_patch_query_threshold_is_strict():
    c, p = 2, 5  # 25 cells per patch: 15 masked = 60% (key), 16 = 64% (query)
    pa = _copying_patch_attention(c, p)
    x = torch.randn(1, c, 5, 10, dtype=torch.float64)
    for n_masked, replaced in [(15, False), (16, True)]:
        cells = torch.zeros(1, 1, 5, 10, dtype=torch.float64)
        cells.view(-1)[[r * 10 + col for r in range(5) for col in range(5)][:n_masked]] = 1
        with torch.no_grad():
            out = pa(x, _cells_to_fullres(cells))
        assert torch.allclose(out[..., :5], x[..., 5:] if replaced else x[..., :5], atol=1e-12)


def test_all_query_patches_keep_x():
    pa = _copying_patch_attention(2, 2)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        out = pa(x, torch.ones(1, 1, 16, 16, dtype=torch.float64))
    assert torch.allclose(out, x, atol=1e-12)


@pytest.mark.parametrize("chunk_bytes", [8, 3 * 17 * 8, 2**20])
def test_best_keys_chunked_equals_full(chunk_bytes):
    g = torch.Generator().manual_seed(2)
    q = F.normalize(torch.randn(12, 40, generator=g, dtype=torch.float64), dim=0)
    k = F.normalize(torch.randn(12, 17, generator=g, dtype=torch.float64), dim=0)
    assert torch.equal(_best_keys(q, k, chunk_bytes), torch.argmax(q.T @ k, dim=1))


def test_patch_training_form_copies_and_backpropagates():
    c, p = 3, 2
    pa = _copying_patch_attention(c, p).train()
    x = torch.randn(1, c, 4, 6, dtype=torch.float64)
    x[..., 0:2, 2:4] = 2.0 * x[..., 2:4, 4:6]                        # masked patch (0,1) ~ clean patch (1,2)
    cells = torch.zeros(1, 1, 4, 6, dtype=torch.float64)
    cells[..., 0:2, 2:4] = 1
    xr = x.clone().requires_grad_(True)
    out = pa.training_forward(xr, _cells_to_fullres(cells))
    expected = x.clone()
    expected[..., 0:2, 2:4] = x[..., 2:4, 4:6]                       # clean patches map to themselves
    assert torch.allclose(out.detach(), expected, atol=1e-12)
    out.sum().backward()
    assert xr.grad[..., 2:4, 4:6].eq(2).all()                        # used twice
    assert xr.grad[..., 0:2, 2:4].eq(0).all()                        # replaced, unused


def test_tiny_patch_mapping_forward_and_training_gradients():
    torch.manual_seed(0)
    net = PatchAttentionMapping(latent_channels=4, width=8, n_res=1, patch_sizes=[4, 2])
    z = torch.randn(2, 4, 8, 10)
    mask = torch.zeros(2, 1, 32, 40)
    mask[0, :, 4:20, 4:24] = 1
    with torch.no_grad():
        out = net.eval()(z, mask)
    assert out.shape == z.shape and torch.isfinite(out).all()
    net.train()
    net.training_forward(z, mask).square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert net.before_NL[0].weight.grad.abs().sum() > 0

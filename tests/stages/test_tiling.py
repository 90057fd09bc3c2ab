import numpy as np
import pytest
import torch

from oldphoto.stages.tiling import (
    crop_to,
    pad_to_multiple,
    parse_memory,
    plan_tiles,
    run_tiled,
    tile_side_for_budget,
    tile_starts,
)


@pytest.mark.parametrize("h,w,m", [(37, 53, 4), (101, 77, 16), (5, 3, 16), (64, 48, 16)])
def test_pad_then_crop_gives_back_the_input(h, w, m):
    x = torch.rand(1, 3, h, w)
    padded, size = pad_to_multiple(x, m, min_size=0)
    assert padded.shape[-2] % m == 0 and padded.shape[-1] % m == 0
    assert padded.shape[-2] - h < m and padded.shape[-1] - w < m
    assert torch.equal(crop_to(padded, size), x)
    # by default tiny sides grow to at least 64 (room for the deepest layers' own padding)
    padded, size = pad_to_multiple(x, m)
    assert min(padded.shape[-2:]) >= 64 and padded.shape[-2] % m == 0 and padded.shape[-1] % m == 0
    assert torch.equal(crop_to(padded, size), x)


def test_reflect_padding_mirrors_the_border():
    x = torch.arange(6.0).reshape(1, 1, 1, 6).expand(1, 1, 3, 6).contiguous()
    padded, _ = pad_to_multiple(x, 4, min_size=0)
    assert padded[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 4, 3]


@pytest.mark.parametrize("length,tile,overlap,mult", [(1024, 256, 64, 16), (256, 256, 64, 16),
                                                      (100, 512, 32, 4), (1008, 320, 100, 16)])
def test_tiles_cover_with_overlap_and_alignment(length, tile, overlap, mult):
    starts = tile_starts(length, tile, overlap, mult)
    assert starts[0] == 0
    assert min(length, starts[-1] + tile) == length
    for a, b in zip(starts, starts[1:], strict=False):
        assert b - a <= tile - overlap  # at least `overlap` shared pixels
        assert a % mult == 0 and b % mult == 0


def test_identity_through_tiles_is_exact():
    x = torch.rand(1, 3, 160, 208)
    plan = plan_tiles(160, 208, 64, 16, 16)
    assert plan.count > 4
    y = run_tiled(lambda t: t, [x], plan, out_channels=3)
    assert torch.allclose(y, x, atol=1e-6)


def test_local_network_agrees_with_whole_image_away_from_tile_edges():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), torch.nn.Tanh(),
                              torch.nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect"))
    x = torch.rand(1, 3, 192, 240)
    with torch.no_grad():
        whole = net(x)
        plan = plan_tiles(192, 240, 96, 32, 16)
        tiled = run_tiled(net, [x], plan, out_channels=3)
    # the receptive field is 2 px; pixels near a tile's own edge get little weight, so the blend is close
    assert (tiled - whole).abs().max() < 0.05
    assert (tiled - whole).abs().mean() < 1e-3


def test_weights_fade_only_towards_neighbours():
    plan = plan_tiles(128, 128, 64, 32, 16)
    first = plan.weight(plan.boxes()[0])
    assert first[0, 0] == 1.0 and first[-1, -1] < 0.1 and (first > 0).all()


def test_parse_memory_and_budget():
    assert parse_memory("2G") == 2 << 30
    assert parse_memory("512MB") == 512 << 20
    assert parse_memory("1.5GiB") == int(1.5 * (1 << 30))
    assert parse_memory(1000) == 1000
    with pytest.raises(ValueError, match="cannot read"):
        parse_memory("lots")
    # float() reads "inf" and "nan" too (inf raised OverflowError past --max-memory's check); a byte
    # count is a size like any other
    for odd in ("inf", "1e400G", "nan", float("inf"), float("nan"), 0, -5):
        with pytest.raises(ValueError, match="memory size must be positive"):
            parse_memory(odd)
    small = tile_side_for_budget(1 << 30, 1400, 16)
    big = tile_side_for_budget(4 << 30, 1400, 16)
    assert small % 16 == 0 and big % 16 == 0 and big > small
    assert small * small * 1400 <= 1 << 30
    assert np.isclose(big / small, 2.0, rtol=0.05)

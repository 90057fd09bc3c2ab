import numpy as np
import torch
from torch import nn

from oldphoto.stages.normstats import GlobalInstanceNorm
from oldphoto.stages.tiling import plan_tiles, run_tiled


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"),
                         nn.InstanceNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"),
                         nn.InstanceNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect")).eval()


def photo():
    # left half dark and flat, right half bright and busy: per-tile statistics differ strongly
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 96, 160, generator=g) * 0.1
    x[..., 80:] = 0.6 + 0.4 * torch.rand(1, 3, 96, 80, generator=g)
    return x * 2 - 1


def test_override_equals_instance_norm_on_one_tile():
    m, x = net(), photo()
    with torch.no_grad():
        ref = m(x)
        with GlobalInstanceNorm([m]) as norms:
            norms.collect()
            norms.start_tile()
            first = m(x)
            norms.apply()
            norms.start_tile()
            again = m(x)
    assert torch.allclose(first, ref, atol=1e-5) and torch.allclose(again, ref, atol=1e-5)
    assert m(x).shape == ref.shape  # hooks removed


def test_tiles_with_exact_statistics_agree_with_the_whole_image():
    m, x = net(), photo()
    plan = plan_tiles(96, 160, 64, 32, 16)
    with torch.no_grad():
        whole = m(x)
        per_tile = run_tiled(m, [x], plan, 3)
        with GlobalInstanceNorm([m]) as norms:
            norms.collect()
            norms.start_tile()
            m(x)  # statistics of the whole photo
            norms.apply()

            def fn(t):
                norms.start_tile()
                return m(t)

            tiled = run_tiled(fn, [x], plan, 3)
    err = (tiled - whole).abs()
    assert err.max() < 0.05 and err.mean() < 2e-3  # only the 3-px receptive field at tile edges differs
    assert (per_tile - whole).abs().mean() > 10 * err.mean()  # per-tile statistics are far off


def test_one_collect_pass_over_tiles_estimates_the_statistics():
    m, x = net(), photo()
    plan = plan_tiles(96, 160, 64, 32, 16)
    with torch.no_grad():
        whole = m(x)
        per_tile = run_tiled(m, [x], plan, 3)
        with GlobalInstanceNorm([m]) as norms:
            def fn(t):
                norms.start_tile()
                return m(t)

            norms.collect()
            for y0, x0, y1, x1 in plan.boxes():
                fn(x[..., y0:y1, x0:x1])
            norms.apply()
            tiled = run_tiled(fn, [x], plan, 3)
    assert (tiled - whole).abs().mean() < 0.5 * (per_tile - whole).abs().mean()
    assert np.isfinite(tiled.numpy()).all()

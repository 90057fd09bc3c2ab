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


def tiled_with_whole_statistics(m: nn.Module, x: torch.Tensor, plan) -> torch.Tensor:
    """``m`` run tile by tile, every norm using the statistics of one pass over the whole of ``x``."""
    with GlobalInstanceNorm([m]) as norms:
        norms.collect()
        norms.start_tile()
        m(x)
        norms.apply()

        def fn(t):
            norms.start_tile()
            return m(t)

        return run_tiled(fn, [x], plan, 3)


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
        tiled = tiled_with_whole_statistics(m, x, plan)
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


def test_overview_fits_one_tile_on_the_networks_grid():
    from oldphoto.stages.restore import overview

    x = photo()  # 96×160
    mask = torch.zeros(1, 1, 96, 160)
    mask[..., 40:42, :] = 1  # a 2-px scratch
    small, small_mask = overview([x, mask], 96, 16)
    assert small.shape[-2:] == small_mask.shape[-2:] == (64, 112)  # area 7168 <= 96², multiples of 16
    assert set(small_mask.unique().tolist()) == {0.0, 1.0} and small_mask.sum() > 0  # the scratch stays
    # antialiased: the dark half stays dark and the bright half bright
    assert small[..., :50].mean() < -0.8 and small[..., 62:].mean() > 0.3
    assert overview([x], 128, 16)[0] is x  # fits already: the photo itself
    assert overview([x], 32, 16)[0].shape[-2:] == (64, 64)  # never below the networks' 64-px minimum


def test_statistics_from_the_overview_beat_per_tile_statistics():
    """The restore stage's statistics pass (the photo scaled down to one tile) on the toy network: the
    tiles come much closer to the whole-image result than with per-tile statistics.  (This photo is
    pixel noise, which scaling down smooths: the hardest case for the overview; a pass over all
    full-resolution tiles gets 0.049 here, the overview 0.053, per-tile statistics 0.13.)"""
    from oldphoto.stages.restore import PathModels, RestoreStage

    m = net()
    x = photo()
    image = ((x[0].permute(1, 2, 0) + 1) / 2).numpy()
    models = PathModels(m, lambda z: z, lambda z: z, masked=False, modules=[m])

    def run(fn, *t):
        with torch.no_grad():
            return fn(*t)

    whole = RestoreStage(run, tile=256, fit_levels=False)(image, models, "quality")
    stats = RestoreStage(run, tile=64, overlap=32, fit_levels=False)(image, models, "quality")
    per_tile = RestoreStage(run, tile=64, overlap=32, fit_levels=False, global_norm=False)(image, models,
                                                                                          "quality")
    assert np.abs(stats - whole).mean() < 0.5 * np.abs(per_tile - whole).mean()


class Gated(nn.Module):
    """A branch with its own norm that runs only on inputs with bright pixels and changes only those (as
    the partial nonlocal skips tiles without defects and changes only defect cells)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(8),
                               nn.ReLU())
        self.branch = nn.Sequential(nn.Conv2d(8, 16, 1), nn.InstanceNorm2d(16), nn.ReLU(),
                                    nn.Conv2d(16, 8, 1))
        self.b = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(8),
                               nn.ReLU(), nn.Conv2d(8, 3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        gate = (x.mean(1, keepdim=True) > 0).float()  # the bright half of photo()
        if gate.any():
            h = h + gate * self.branch(h)
        return self.b(h)


def test_statistics_follow_each_norm_when_tiles_skip_a_branch():
    """Dark tiles skip the branch, so their third norm call is the whole photo's second norm's successor:
    statistics are matched per norm, not by call order (which mixed 16- and 8-channel statistics)."""
    m, x = Gated().eval(), photo()
    plan = plan_tiles(96, 160, 64, 32, 16)
    with torch.no_grad():
        whole = m(x)
        tiled = tiled_with_whole_statistics(m, x, plan)
    err = (tiled - whole).abs()
    assert err.max() < 0.05 and err.mean() < 2e-3


def test_statistics_stay_off_a_device_without_float64(mps_standin):
    # tiled photos on Apple MPS: the float64 sums of the collect pass must be taken on the host, and the
    # apply pass must bring the statistics back to the device
    m = net().to("meta")
    x = torch.empty(1, 3, 64, 64, device="meta")
    with torch.no_grad(), mps_standin(), GlobalInstanceNorm([m]) as norms:
        norms.collect()
        norms.start_tile()
        m(x)
        norms.apply()
        norms.start_tile()
        out = m(x[..., :32, :32])
    assert out.device.type == "meta" and out.dtype == torch.float32


def test_a_tiled_photo_runs_on_a_device_like_mps(mps_standin):
    # the whole tiled path with whole-photo statistics (the default) on the meta device standing in for
    # Apple MPS: the overview's antialiased downscale and the float64 sums must run on the host
    from oldphoto.stages.restore import PathModels, RestoreStage

    m = net().to("meta")
    models = PathModels(m, lambda z: z, lambda z: z, masked=False, modules=[m])

    def run(fn, *t):
        with torch.no_grad():
            return fn(*t)

    image = np.zeros((96, 160, 3), np.float32)
    with mps_standin():
        out = RestoreStage(run, tile=64, overlap=32, device="meta")(image, models, "quality")
    assert out.shape == image.shape and out.dtype == np.float32


def test_two_threads_with_their_own_statistics_on_shared_networks():
    """A Restorer's siblings (``with_options``) share their networks: two threads tiling photos with
    ``--tile-norm global`` at once each keep their own statistics (the override of one thread used to
    replace the other's, giving wrong pixels, and its exit removed the other's, an AttributeError)."""
    import threading

    m = net()
    dark, bright = photo()[..., :80], photo()[..., 80:]
    with torch.no_grad():
        expected = {"dark": m(dark), "bright": m(bright)}
    entered, collected, first_done = threading.Event(), threading.Event(), threading.Event()
    results, errors = {}, []

    def one(name, x, before, after):
        try:
            with torch.no_grad(), GlobalInstanceNorm([m]) as norms:
                norms.collect()
                norms.start_tile()
                m(x)
                before()
                norms.apply()
                norms.start_tile()
                results[name] = m(x)
            after()
        except Exception as exc:  # pragma: no cover - the failure this test is about
            errors.append(exc)
            after()

    # the first thread collects, the second enters and collects, the first applies and leaves while
    # the second is still inside, then the second applies and leaves
    a = threading.Thread(target=one, args=("dark", dark, lambda: (entered.set(), collected.wait(10)),
                                           first_done.set))
    b = threading.Thread(target=one, args=("bright", bright, lambda: (collected.set(), first_done.wait(10)),
                                           lambda: None))
    a.start()
    entered.wait(10)
    b.start()
    a.join(20)
    b.join(20)
    assert not errors
    for name in ("dark", "bright"):
        assert torch.allclose(results[name], expected[name], atol=1e-5), name
    assert "forward" not in vars(m[1])  # every override removed

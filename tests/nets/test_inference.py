"""The networks' inference form (oldphoto.nets.inference) computes the same function, and tiles follow the
widths of the networks actually loaded."""

import pytest
import torch
from torch import nn

from oldphoto.nets import width_ratio
from oldphoto.nets.detector import DefectDetector
from oldphoto.nets.inference import FastInstanceNorm2d, InferenceOptions, fold_batchnorm, prepare
from oldphoto.nets.mapping import QualityMapping
from oldphoto.nets.vae import VAE
from oldphoto.stages.restore import memory_scale, tile_side
from oldphoto.stages.tiling import balanced_side, plan_tiles, tile_starts


def test_fast_instance_norm_matches_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 37, 53) * 3 + 1.5
    ref = nn.InstanceNorm2d(8)(x)
    fast = nn.InstanceNorm2d(8)
    fast.__class__ = FastInstanceNorm2d
    assert isinstance(fast, nn.InstanceNorm2d)
    torch.testing.assert_close(fast(x), ref, atol=1e-5, rtol=1e-5)


def test_folding_batchnorm_keeps_the_function():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.Conv2d(6, 4, 3), nn.BatchNorm2d(4, affine=False))
    for bn in (net[1], net[4]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    net[1].weight.data.uniform_(0.5, 2)
    net[1].bias.data.uniform_(-1, 1)
    net.eval()
    x = torch.randn(1, 3, 20, 20)
    ref = net(x)
    assert fold_batchnorm(net) == 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    torch.testing.assert_close(net(x), ref, atol=1e-5, rtol=1e-5)


def test_folding_batchnorm_keeps_float64_off_the_device(mps_standin):
    # the detector's BatchNorms are folded when it is loaded onto the device: on Apple MPS (no float64)
    # the fold in float64 must run on the host
    net = nn.Sequential(nn.Conv2d(3, 6, 3, bias=False), nn.BatchNorm2d(6), nn.Conv2d(6, 4, 3),
                        nn.BatchNorm2d(4)).eval().to("meta")
    with mps_standin():
        assert fold_batchnorm(net) == 2
    assert net[0].bias.device.type == "meta" and net[0].bias.dtype == torch.float32


@pytest.mark.parametrize("build", [lambda: VAE(width=16, n_res_encoder=1, n_res_decoder=1),
                                   lambda: DefectDetector(width=8, depth=2),
                                   lambda: QualityMapping(latent_channels=16, width=32, n_blocks=1)])
@pytest.mark.parametrize("owned", [True, False])
def test_prepare_keeps_outputs(build, owned):
    torch.manual_seed(0)
    net = build().eval()
    for m in net.modules():  # non-trivial BatchNorm statistics, so a wrong fold would show
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2)
    c = 16 if isinstance(net, QualityMapping) else (1 if isinstance(net, DefectDetector) else 3)
    x = torch.randn(1, c, 64, 48)
    with torch.inference_mode():
        ref = net(x)[0] if isinstance(net, VAE) else net(x)
    keys = set(net.state_dict())
    prepare(net, InferenceOptions(channels_last=True, channels_last_norm=True), owned=owned)
    with torch.inference_mode():
        out = net(x)[0] if isinstance(net, VAE) else net(x)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)
    if not owned:  # modules handed in keep their state dict
        assert set(net.state_dict()) == keys


def test_width_ratio_reads_the_loaded_channels():
    assert width_ratio(VAE()) == 1.0
    assert width_ratio(VAE(width=32)) == 0.5
    assert width_ratio(DefectDetector(width=16)) == 0.25
    assert width_ratio(nn.Identity()) == 1.0  # nothing to compare with: the official figures
    # the widest network of a path decides; a smaller set gets larger tiles (area ∝ 1/scale)
    assert memory_scale([VAE(width=32), DefectDetector(width=16)]) == 0.5
    budget = 2 << 30
    assert tile_side("quality", budget, 0.5) >= int(tile_side("quality", budget) * 1.4)


def test_bundled_sized_networks_restore_a_1mp_photo_in_one_tile():
    """The README's photo (1280×881) fits one tile with the bundled widths under the default 2G budget:
    one pass, no whole-photo statistics pass."""
    budget = 2 << 30
    scale = memory_scale([VAE(width=32), QualityMapping(width=128, latent_channels=32)])
    assert plan_tiles(884, 1280, tile_side("quality", budget, scale), 128, 4).count == 1
    assert plan_tiles(884, 1280, tile_side("quality", budget), 128, 4).count > 1  # official widths


@pytest.mark.parametrize("length,tile", [(2048, 1236), (1280, 784), (3000, 1000), (500, 1000)])
def test_balanced_tiles_are_no_more_and_no_larger(length, tile):
    side = balanced_side(length, tile, 128, 16)
    assert side <= max(tile, 0) or length <= tile
    n = len(tile_starts(length, min(tile, length), 128, 16))
    assert len(tile_starts(length, side, 128, 16)) == n
    if length > tile:
        assert side < tile  # shared evenly instead of one tile overlapping its neighbour by most of it


def test_whole_photo_statistics_pass_only_with_several_tiles():
    """--tile-norm global adds its statistics pass only when the photo is cut into tiles: one call on the
    photo scaled down to one tile's area."""
    import numpy as np

    from oldphoto.stages.restore import PathModels, RestoreStage

    torch.manual_seed(0)
    vae = VAE(width=8, n_res_encoder=1, n_res_decoder=1).eval()
    mapping = QualityMapping(latent_channels=8, width=16, n_blocks=1).eval()
    calls = []

    def run(models, *tensors):
        calls.append(tuple(tensors[0].shape[-2:]))
        with torch.inference_mode():
            return models(*tensors)

    models = PathModels(vae.encoder, mapping, vae.decoder, masked=False, modules=[vae, mapping])
    image = np.random.default_rng(0).random((120, 200, 3), dtype=np.float32)
    RestoreStage(run, tile=256, overlap=32)(image, models, "quality")
    assert calls == [(120, 200)]  # one tile: one pass, its own statistics are the whole photo's
    calls.clear()
    RestoreStage(run, tile=128, overlap=32)(image, models, "quality")
    assert calls == [(96, 164), (120, 116), (120, 116)]  # the photo at 0.82 scale (area <= 128²), two tiles
    calls.clear()
    RestoreStage(run, tile=128, overlap=32, global_norm=False)(image, models, "quality")
    assert len(calls) == 2  # --tile-norm tile: no statistics pass


def test_restorer_tiles_follow_the_loaded_widths_and_the_photo_area():
    """Tile sides come from the loaded modules' channels (not the official sizes), and a photo whose area
    fits the budget runs whole even when one side is longer than the square tile."""
    from oldphoto.pipeline import Restorer

    official = {"vae_a": VAE(), "mapping_quality": QualityMapping(), "vae_b_quality": VAE(),
                "detector": DefectDetector()}
    bundled = {"vae_a": VAE(width=32), "mapping_quality": QualityMapping(latent_channels=32, width=128),
               "vae_b_quality": VAE(width=32), "detector": DefectDetector(width=16)}
    big = Restorer(models=official, device="cpu", faces=False, scratches="off")
    small = Restorer(models=bundled, device="cpu", faces=False, scratches="off")
    for kind in ("quality", "detector"):
        assert small._tile(kind) >= 1.4 * big._tile(kind)
    side = small._tile("quality")
    wide = (side // 2, side * 3 // 2)  # 3/4 of the tile's area, 1.5 times its side
    assert small._tile("quality", wide) >= max(wide)
    assert small._tile("quality", (side * 2, side)) == side  # twice the area: tiled
    assert Restorer(models=bundled, device="cpu", faces=False, tile=256)._tile("quality", wide) == 256
    # a 2-megapixel 4:3 photo runs in one pass through the detector and the quality path
    assert min(small._tile("detector", (1225, 1633)), small._tile("quality", (1225, 1633))) >= 1633

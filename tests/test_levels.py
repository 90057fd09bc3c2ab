import torch

from oldphoto.levels import match_levels
from oldphoto.nets.vae import VAE


def test_recovers_a_known_affine_change():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    gain = torch.tensor([0.5, 2.0, 1.3]).view(1, 3, 1, 1)
    offset = torch.tensor([0.2, -0.4, 0.1]).view(1, 3, 1, 1)
    out = (ref - offset) / gain
    assert torch.allclose(match_levels(out, ref), ref, atol=1e-5)


def test_excluded_pixels_do_not_pull_the_fit():
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(1, 3, 16, 16, generator=g)
    out = ref * 0.5 + 0.1
    corrupted = ref.clone()
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:8, :] = 1
    corrupted[..., 4:8, :] = 1.0  # white-filled defects
    fitted = match_levels(out, corrupted, exclude=mask)
    assert torch.allclose(fitted, ref, atol=1e-4)
    assert not torch.allclose(match_levels(out, corrupted), ref, atol=1e-2)


def test_all_excluded_falls_back_to_every_pixel_and_gain_stays_positive():
    ref = torch.linspace(0, 1, 64).view(1, 1, 8, 8).expand(1, 3, 8, 8)
    out = -ref  # anti-correlated: the gain is clamped, never inverted
    fitted = match_levels(out, ref, exclude=torch.ones(1, 1, 8, 8))
    assert torch.isfinite(fitted).all()
    assert (fitted[..., -1, -1] <= fitted[..., 0, 0]).all()  # sign kept


def test_vae_cannot_see_global_levels_which_is_why_this_exists():
    torch.manual_seed(0)
    net = VAE(width=8, n_res_encoder=1, n_res_decoder=1).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    shifted = 0.5 * x + torch.tensor([0.2, -0.1, 0.3]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(net.encode(x), net.encode(shifted), atol=1e-3)


def test_restore_stage_takes_levels_from_the_photo():
    import numpy as np

    from oldphoto.stages.restore import PathModels, RestoreStage

    shuffle = torch.nn.PixelUnshuffle(4), torch.nn.PixelShuffle(4)
    # a decoder that renders the right picture at the wrong levels, as an instance-normed VAE may
    models = PathModels(encoder=shuffle[0], mapping=lambda z: z,
                        decoder=lambda z: 0.4 * shuffle[1](z) - 0.3, masked=False)
    rng = np.random.default_rng(0)
    photo = rng.uniform(0.1, 0.9, (37, 50, 3)).astype(np.float32)
    fitted = RestoreStage(lambda fn, *t: fn(*t))(photo, models, "quality")
    raw = RestoreStage(lambda fn, *t: fn(*t), fit_levels=False)(photo, models, "quality")
    assert fitted.shape == photo.shape
    assert np.abs(fitted - photo).max() < 1e-4
    assert np.abs(raw - photo).max() > 0.2

import numpy as np
import pytest

from oldphoto.stages.fidelity import (
    blend,
    clumped_grain,
    coarse_grain,
    denoise_luma,
    denoised_photo,
    donoho_sigma,
    noise_sigma,
    printing_screen,
)


def _scene(h=128, w=128):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    y = 0.5 + 0.25 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
    y[40:90, 30:34] = 0.9  # a sharp bar: detail that must survive
    return y


@pytest.mark.parametrize("sigma", [0.01, 0.03, 0.06])
def test_noise_estimate_follows_the_noise_not_the_content(sigma):
    rng = np.random.default_rng(1)
    noisy = _scene() + rng.normal(0, sigma, (128, 128)).astype(np.float32)
    assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.25)
    assert noise_sigma(_scene()) < 0.004


def _texture(h=256, w=256, seed=4):
    """Fine texture (like fur or foliage: blurred white noise, 0.1 std) over three quarters of the photo,
    flat elsewhere."""
    import cv2

    rng = np.random.default_rng(seed)
    y = np.full((h, w), 0.45, np.float32)
    texture = cv2.GaussianBlur(rng.normal(0, 0.25, (h, w)).astype(np.float32), (0, 0), 0.7)
    y[:, : 3 * w // 4] += texture[:, : 3 * w // 4]
    return np.clip(y, 0, 1)


def test_texture_is_not_taken_for_noise():
    """Donoho's estimate reads fine texture as noise; the flat-block estimate reads the flat quarter."""
    rng = np.random.default_rng(5)
    textured = _texture()
    noisy = np.clip(textured + rng.normal(0, 0.01, textured.shape).astype(np.float32), 0, 1)
    assert donoho_sigma(noisy) > 2.0 * 0.01  # the texture inflates it
    assert noise_sigma(noisy) == pytest.approx(0.01, rel=0.2)
    assert noise_sigma(textured) < 0.1 * donoho_sigma(textured)


def _halftone(period, angle, h=384, w=384, seed=3):
    """A halftone print of a smooth scene: a screen of round dots ``period`` px apart at ``angle``°, ink
    0.1 on paper 0.9, dots growing with darkness, a scanner's blur and a little noise."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    scene = 0.5 + 0.4 * np.sin(xx / 40.0) * np.cos(yy / 55.0)
    t = np.deg2rad(angle)
    u = (xx * np.cos(t) + yy * np.sin(t)) / period
    v = (-xx * np.sin(t) + yy * np.cos(t)) / period
    r = np.hypot(u - np.round(u), v - np.round(v))
    ink = np.clip((np.sqrt((1.0 - scene) / np.pi) - r) * period * 1.2 + 0.5, 0.0, 1.0)
    out = cv2.GaussianBlur(0.9 - 0.8 * ink, (0, 0), 0.6) + rng.normal(0, 0.01, (h, w))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@pytest.mark.parametrize("period, angle", [(3.5, 45), (4.5, 45), (4.5, 15), (6.0, 0), (9.0, 45)])
def test_a_halftone_print_is_left_as_it_is(period, angle):
    """The noise estimate reads a halftone's dot screen as strong noise, and non-local means at that
    strength smeared the dots into blotches: a printed screen is not denoised."""
    print_ = _halftone(period, angle)
    assert noise_sigma(print_) > 0.02  # (what the denoiser would have taken away: 5 levels or more)
    assert printing_screen(print_)
    assert np.array_equal(denoise_luma(print_), print_)


def test_photos_texture_and_stripes_are_not_screens():
    """A screen is a square lattice of dots; a photo, fine texture, noise and stripes (a fence, corduroy:
    one direction only) are not, and are denoised as before."""
    rng = np.random.default_rng(8)
    yy, xx = np.mgrid[0:384, 0:384].astype(np.float32)
    stripes = (0.5 + 0.3 * np.sign(np.sin(2 * np.pi * (xx + 0.3 * yy) / 5.0))).astype(np.float32)
    noisy = np.clip(_scene(384, 384) + rng.normal(0, 0.03, (384, 384)), 0, 1).astype(np.float32)
    for photo in (_scene(384, 384), _texture(384, 384), noisy, stripes, np.full((64, 64), 0.5, np.float32)):
        assert not printing_screen(photo)
    assert not np.array_equal(denoise_luma(noisy), noisy)


def test_the_noise_estimate_needs_unclipped_blocks_and_enough_of_them():
    rng = np.random.default_rng(6)
    noisy = np.clip(0.5 + rng.normal(0, 0.02, (256, 256)), 0, 1).astype(np.float32)
    white = noisy.copy()
    white[:, :150] = 1.0  # blown-out highlights have no noise: they do not count
    assert noise_sigma(white) == pytest.approx(0.02, rel=0.25)
    tiny = noisy[:16, :16]  # too few blocks even of the smallest size: Donoho's estimate
    assert noise_sigma(tiny) == donoho_sigma(tiny)


def _crazed(clear, side=1024, sigma=0.01, seed=9, cell=8):
    """A flat noisy print crazed all over by thin bright lines (a Voronoi network of ``cell``-px cells: a
    line through nearly every 16-px block) but for a square of ``clear``² blocks; and where the lines are."""
    import cv2

    rng = np.random.default_rng(seed)
    cells = cv2.Subdiv2D((0, 0, side, side))
    for x, y in rng.uniform(0, side - 1, (side * side // cell**2, 2)):
        cells.insert((float(x), float(y)))
    facets, _ = cells.getVoronoiFacetList([])
    lines = np.zeros((side, side), np.uint8)
    cv2.polylines(lines, [f.astype(np.int32) for f in facets], True, 1, 1)
    lines = lines > 0
    lines[320:320 + 16 * clear, 320:320 + 16 * clear] = False
    y = np.clip(0.5 + 0.25 * lines + rng.normal(0, sigma, (side, side)), 0, 1).astype(np.float32)
    return y, lines


def test_the_noise_is_read_away_from_the_detectors_candidates():
    """A crack network (craquelure) puts a line in nearly every block, and the flattest blocks' 5th
    percentile read the lines as noise (1.4 times the noise here); given as candidates (``exclude``), the
    blocks they touch are left out, and the clean ones read the noise."""
    crazed, lines = _crazed(clear=11)  # 121 clean blocks of 4096
    assert noise_sigma(crazed) > 1.3 * 0.01
    assert noise_sigma(crazed, lines) == pytest.approx(0.01, rel=0.1)
    assert noise_sigma(crazed, np.zeros_like(lines)) == noise_sigma(crazed)
    # the denoiser takes it (at 512², under clumped_grain's size: at 1024² the network reads as grain)
    small, lines_small = _crazed(clear=11, side=512)
    at_clean = denoise_luma(small, noise_sigma(small, lines_small))
    assert not np.array_equal(at_clean, denoise_luma(small))
    assert np.array_equal(denoise_luma(small, exclude=lines_small), at_clean)
    photo = np.repeat(small[..., None], 3, axis=2)
    expected = denoised_photo(photo, lambda y: denoise_luma(y, noise_sigma(y, lines_small)))
    assert np.array_equal(denoised_photo(photo, exclude=lines_small), expected)
    # too few blocks left clear (81, under NOISE_ENOUGH_BLOCKS): read as without
    few, lines = _crazed(clear=9)
    assert noise_sigma(few, lines) == noise_sigma(few)
    with pytest.raises(ValueError):
        noise_sigma(crazed, lines[:-1])


@pytest.mark.parametrize("side", [4, 8, 40])
def test_an_exclude_of_another_shape_is_refused_on_a_small_photo_too(side):
    """A small photo's noise is read before the blocks that ``exclude`` touches are counted (too few
    blocks, or Donoho's estimate alone): a mask of the wrong shape was taken without a word there."""
    y = np.full((side, side), 0.5, np.float32)
    with pytest.raises(ValueError, match="must have the photo's shape"):
        noise_sigma(y, np.zeros((side + 1, side), bool))
    assert noise_sigma(y, np.zeros((side, side), bool)) == noise_sigma(y)


@pytest.mark.parametrize("side, rel", [(64, 0.6), (128, 0.25)])
def test_a_small_photo_reads_its_noise_in_smaller_blocks(side, rel):
    """A small photo has too few 16-px blocks for their 5th percentile to find its flat part (at 64² there
    are 16, and Donoho's estimate read the texture as noise): smaller blocks find it, unbiased for their
    size.  At 64² the blocks are 4 px, whose RMS varies so much that with a quarter of them flat the 5th
    percentile reads over the noise (the flat blocks' 20th percentile), still far below Donoho's."""
    rng = np.random.default_rng(7)
    textured = _texture(side, side)
    noisy = np.clip(textured + rng.normal(0, 0.01, textured.shape).astype(np.float32), 0, 1)
    assert noise_sigma(noisy) == pytest.approx(0.01, rel=rel)
    assert noise_sigma(noisy) < 0.6 * donoho_sigma(noisy)
    assert noise_sigma(textured) < 0.2 * donoho_sigma(textured)
    flat = np.clip(0.5 + rng.normal(0, 0.02, (side, side)), 0, 1).astype(np.float32)
    assert noise_sigma(flat) == pytest.approx(0.02, rel=0.25)


def test_denoising_removes_noise_and_keeps_a_clean_photo():
    rng = np.random.default_rng(2)
    clean = _scene()
    noisy = np.clip(clean + rng.normal(0, 0.04, clean.shape).astype(np.float32), 0, 1)
    out = denoise_luma(noisy)
    assert np.mean((out - clean) ** 2) < 0.4 * np.mean((noisy - clean) ** 2)
    # a clean photo is almost untouched (no blur of grain-free detail)
    assert np.abs(denoise_luma(clean) - clean).max() < 0.02


def _clumped_grain_scan(strength, clump=0.7, side=704, seed=3):
    """A smooth scene with clumped film grain of a 4000-dpi scan (clumps of several px, density following
    the tone; benchmarks/bench_clumped_grain.py), plus a little fine noise."""
    import cv2
    from scipy.special import ndtri

    rng = np.random.default_rng(seed)
    scene = np.clip(cv2.resize(_scene(side // 4, side // 4), (side, side), interpolation=cv2.INTER_CUBIC),
                    0.05, 0.95)
    field = cv2.GaussianBlur(rng.standard_normal((side, side)).astype(np.float32), (0, 0), clump)
    field /= field.std()
    cover = cv2.GaussianBlur((1.0 / (1.0 + np.exp(-(ndtri(scene) - field) / 0.4))).astype(np.float32),
                             (0, 0), 0.5)
    grain = cover - cv2.GaussianBlur(cover, (0, 0), 8)
    return np.clip(scene + strength * grain + rng.normal(0, 1 / 255, scene.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("strength, clump", [(0.15, 0.7), (0.25, 0.7), (0.35, 1.0)])
def test_strong_clumped_grain_is_left_as_it_is(strength, clump):
    """The noise estimate reads only the finest part of clumped grain, and non-local means at that level
    linked the clumps into worms (4-20 % of the pixels changed by more than 8 levels): such a scan is not
    denoised."""
    scan = _clumped_grain_scan(strength, clump)
    assert clumped_grain(scan)
    assert noise_sigma(scan) > 1.5 / 255  # (the denoiser would have run)
    assert np.array_equal(denoise_luma(scan), scan)
    # an explicit level is obeyed (what the learned denoiser and callers that know the noise get)
    assert not np.array_equal(denoise_luma(scan, noise_sigma(scan)), scan)


@pytest.mark.parametrize("sigma", [0.01, 0.04, 0.08])
def test_white_noise_and_fine_grain_are_still_denoised(sigma):
    """White noise reads the same at the clumps' scale as at the finest: none of it is clumped grain,
    however strong."""
    rng = np.random.default_rng(4)
    scene = np.clip(np.kron(_scene(176, 176), np.ones((4, 4), np.float32)), 0, 1)
    noisy = np.clip(scene + rng.normal(0, sigma, scene.shape), 0, 1).astype(np.float32)
    assert coarse_grain(noisy) < 0.5 * sigma
    assert not clumped_grain(noisy)
    out = denoise_luma(noisy)
    assert np.mean((out - scene) ** 2) < 0.5 * np.mean((noisy - scene) ** 2)


def test_clumped_grain_is_not_read_on_a_small_photo():
    """On a small photo every block at the clumps' scale holds its own structure: none is read."""
    assert coarse_grain(_clumped_grain_scan(0.35, side=512)) == 0.0


def test_denoised_photo_keeps_chroma():
    rng = np.random.default_rng(3)
    photo = np.clip(np.stack([_scene(), _scene() * 0.8, _scene() * 0.5], axis=2)
                    + rng.normal(0, 0.03, (128, 128, 3)).astype(np.float32), 0, 1)
    out = denoised_photo(photo)
    # the luma changed, the channel differences (chroma) did not
    assert np.abs(out - photo).mean() > 0.005
    assert np.allclose(out[..., 0] - out[..., 2], photo[..., 0] - photo[..., 2], atol=1e-5)


def test_blend_ends_and_middle():
    a = np.zeros((4, 4, 3), np.float32)
    b = np.ones((4, 4, 3), np.float32)
    assert blend(a, b, 0.0) is a and blend(a, b, 1.0) is b
    assert np.allclose(blend(a, b, 0.25), 0.25)
    assert blend(None, b, 1.0) is b and blend(a, None, 0.0) is a
    with pytest.raises(ValueError, match="fidelity"):
        blend(a, b, 1.5)


def _trained_looking_denoiser():
    import torch

    from oldphoto.nets.denoiser import LumaDenoiser

    torch.manual_seed(0)
    net = LumaDenoiser(width=8, depth=4).eval()
    torch.nn.init.normal_(net.body[-1].weight, std=0.05)  # not the identity, as a trained one is not
    return net


def test_the_learned_denoiser_in_strips_equals_the_whole_photo():
    """Strips with margins wider than the network's reach give the whole photo's result, odd rows too."""
    from oldphoto.stages.fidelity import denoise_luma_network
    from oldphoto.stages.runtime import Runner

    net = _trained_looking_denoiser()
    rng = np.random.default_rng(2)
    y = np.clip(_scene(101, 77) + rng.normal(0, 0.03, (101, 77)).astype(np.float32), 0, 1)
    whole = denoise_luma_network(y, net, Runner(), rows=1000, sigma=0.03)
    assert not np.array_equal(whole, y)
    for rows in (8, 30, 51):
        np.testing.assert_allclose(denoise_luma_network(y, net, Runner(), rows=rows, sigma=0.03), whole,
                                   atol=2e-6)


def test_the_learned_denoiser_leaves_a_clean_photo_alone():
    from oldphoto.stages.fidelity import denoise_luma_network
    from oldphoto.stages.runtime import Runner

    clean = _scene()
    assert np.array_equal(denoise_luma_network(clean, _trained_looking_denoiser(), Runner()), clean)

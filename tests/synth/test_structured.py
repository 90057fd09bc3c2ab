import numpy as np
import pytest

from oldphoto.synth import structured as S
from oldphoto.synth import textures as T

DEFECTS = {
    "scratches": S.scratches,
    "dust": S.dust,
    "holes": S.holes,
    "crease": S.crease,
    "thin_cracks": S.thin_cracks,
    "faint_scratches": S.faint_scratches,
    "tear": S.tear,
}


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("name", list(DEFECTS))
def test_defect_output_and_determinism(name, photo):
    out, strength = DEFECTS[name](photo, rng(7))
    out2, strength2 = DEFECTS[name](photo, rng(7))
    np.testing.assert_array_equal(out, out2)
    np.testing.assert_array_equal(strength, strength2)
    assert out.shape == photo.shape and out.dtype == np.float32
    assert strength.shape == photo.shape[:2] and strength.dtype == np.float32
    assert 0.0 <= strength.min() and strength.max() <= 1.0 + 1e-6
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", list(DEFECTS))
@pytest.mark.parametrize("seed", range(4))
def test_mask_covers_every_strongly_changed_pixel(name, seed, photo):
    """The drawn defects are inside the mask: any pixel changed by more than the threshold is masked."""
    out, strength = DEFECTS[name](photo, rng(seed))
    change = np.abs(out - photo).max(axis=2)
    mask = S.defect_mask(strength, 0.3, change)
    strong = change > 0.3
    assert np.all(mask[strong])
    # and the mask is not everything: it marks the defects only
    assert mask.mean() < 0.5


@pytest.mark.parametrize("name", ["scratches", "holes", "crease", "thin_cracks", "faint_scratches", "tear"])
def test_defects_are_drawn(name, photo):
    masks = [S.defect_mask(*DEFECTS[name](photo, rng(s))[::-1][:1], 0.3) for s in range(6)]
    assert sum(m.any() for m in masks) >= 5


def test_dust_is_drawn_on_a_gray_card():
    card = np.full((128, 128, 3), 0.5, np.float32)
    hits = 0
    for s in range(6):
        out, strength = S.dust(card, rng(s), density=(60, 60))
        hits += int(S.defect_mask(strength).sum() > 0)
        assert (np.abs(out - card).max(axis=2) > 0.3).sum() > 0
    assert hits == 6


def test_invisible_defects_are_not_masked():
    white = np.ones((64, 64, 3), np.float32)
    strength = np.zeros((64, 64), np.float32)
    strength[30:34, :] = 1.0
    out = S.blend(white, np.ones(3, np.float32), strength, "lighten")  # white on white: no change
    change = np.abs(out - white).max(axis=2)
    assert not S.defect_mask(strength, 0.3, change).any()
    assert S.defect_mask(strength, 0.3).sum() == 4 * 64


@pytest.mark.parametrize("mode", ["add", "lighten", "screen", "multiply", "replace"])
def test_blend_change_is_bounded_by_strength(mode, photo):
    s = np.random.default_rng(0).random(photo.shape[:2]).astype(np.float32)
    colour = np.array([0.9, 0.8, 0.1], np.float32)
    out = S.blend(photo, colour, s, mode)
    assert np.all(np.abs(out - photo).max(axis=2) <= s + 1e-6)
    full = S.blend(photo, colour, np.ones_like(s), mode)
    expected = {"add": np.minimum(photo + colour, 1), "lighten": np.maximum(photo, colour),
                "screen": 1 - (1 - photo) * (1 - colour), "multiply": photo * colour,
                "replace": np.broadcast_to(colour, photo.shape)}[mode]
    np.testing.assert_allclose(full, expected, atol=1e-6)


def test_blend_rejects_unknown_mode(photo):
    with pytest.raises(ValueError, match="blend mode"):
        S.blend(photo, np.ones(3), np.ones(photo.shape[:2], np.float32), "overlay")


def test_scratches_are_thin_strokes(photo):
    """Scratches are lines, not blobs: the masked area is small relative to its extent."""
    _, strength = S.scratches(photo, rng(3), count=(3, 3))
    mask = strength > 0.3
    assert 0 < mask.mean() < 0.15
    ys, xs = np.nonzero(mask)
    assert np.ptp(xs) + np.ptp(ys) > 60  # spans a long way across the 128² crop


def test_holes_reveal_paper(photo):
    out, alpha = S.holes(photo, rng(11), count=(1, 1))
    inside = alpha > 0.99
    assert inside.sum() > 50
    px = out[inside]
    assert px.mean() > 0.6  # aged paper is bright
    assert np.ptp(px.mean(0)) < 0.25  # and nearly neutral (white, ivory, cream)


def test_crease_shades_both_sides(gray_card):
    out, strength = S.crease(np.full((96, 96, 3), 0.5, np.float32), rng(4))
    diff = (out - 0.5).mean(axis=2)[strength < 0.01]
    assert diff.max() > 0.01 and diff.min() < -0.01


def test_film_grain_is_zero_mean_and_bounded(gray_card):
    out = S.film_grain(np.full((128, 128, 3), 0.5, np.float32), rng(0), amount=(0.04, 0.04))
    d = out - 0.5
    assert abs(float(d.mean())) < 0.005
    assert 0.02 < float(d.std()) < 0.1


def test_paper_tiles_and_procedural_fallback():
    tiles = T.paper_tiles()
    assert len(tiles) >= 3
    assert all(abs(float(t.mean())) < 0.02 for t in tiles)
    for use_tiles in (True, False):
        p = T.paper(64, 80, rng(1), use_tiles=use_tiles)
        assert p.shape == (64, 80, 3) and p.dtype == np.float32
        assert p.mean() > 0.6 and p.std() > 0.003


def test_elastic_keeps_shape_and_moves_content():
    layer = np.zeros((64, 64), np.float32)
    layer[:, 32] = 1.0
    warped = T.elastic(layer, rng(0), alpha=4.0, sigma=16.0)
    assert warped.shape == layer.shape
    assert not np.array_equal(warped > 0.5, layer > 0.5)
    assert warped.sum() == pytest.approx(layer.sum(), rel=0.3)


def test_thin_cracks_are_hairlines(photo):
    widths = []
    for s in range(4):
        _, strength = S.thin_cracks(photo, rng(s))
        mask = S.defect_mask(strength, 0.3)
        if mask.any():
            # thin: eroding by one pixel in each direction removes nearly all of it
            import cv2

            core = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
            widths.append(core.sum() / mask.sum())
    assert widths and max(widths) < 0.15


def test_faint_scratches_are_masked_by_coverage_not_opacity(gray_card):
    out, strength = S.faint_scratches(gray_card, rng(2))
    change = np.abs(out - gray_card).max(axis=2)
    mask = S.defect_mask(strength, 0.3, change)
    assert mask.any() and change.max() < 0.5  # low contrast, still damage
    assert change[mask].mean() > 0.05


def test_tear_has_dark_edges_beside_a_light_core(gray_card):
    out, strength = S.tear(gray_card, rng(4))
    y = out.mean(axis=2)
    assert y.max() > 0.85 and y.min() < 0.4  # paper core and soiled rim
    mask = S.defect_mask(strength, 0.3, np.abs(out - gray_card).max(axis=2))
    assert (y[mask] < 0.45).any() and (y[mask] > 0.8).any()  # both are labelled damage

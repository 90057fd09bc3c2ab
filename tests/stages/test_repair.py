import cv2
import numpy as np
import pytest

from oldphoto.stages.repair import (
    SPLIT_CELL,
    SPLIT_FADE,
    diffuse,
    reach,
    regions,
    repair,
    repair_weight,
    texture_fill,
    units,
    windows,
)


def test_weight_is_one_on_the_grown_mask_and_zero_beyond_its_reach():
    m = np.zeros((60, 60), bool)
    m[30, 10:50] = True
    w = repair_weight(m, grow=2, feather=2.0)
    assert (w[28:33, 10:50] == 1.0).all()  # the defect and 2 px around it are fully repaired
    far = np.ones_like(m)
    far[30 - reach(2, 2.0):30 + reach(2, 2.0) + 1, 10 - reach(2, 2.0):50 + reach(2, 2.0) + 1] = False
    assert (w[far] == 0).all() and 0 < w[34, 30] < 1  # then fades out


def test_windows_cover_each_defect_with_context_once():
    m = np.zeros((400, 300), bool)
    m[50, 40:60] = True  # two close defects: one window
    m[70, 45:55] = True
    m[350, 250] = True  # a far speck: its own window
    m[200, 5] = m[200, 290] = True  # far apart on one row: merging would cost a wide window
    labels, stats = regions(m)
    boxes = [(y, x, y + h, x + w) for x, y, w, h in stats[1:, :4]]
    groups = windows(boxes, m.shape, context=20, min_side=64)
    assert len(groups) == 4
    assert sorted(i for _, own in groups for i in own) == list(range(5))  # each region once
    covered = np.zeros_like(m)
    for (y0, x0, y1, x1), own in groups:
        assert y1 - y0 >= 64 and x1 - x0 >= 64
        own = [i + 1 for i in own]  # box i is region i + 1
        assert np.isin(labels[y0:y1, x0:x1], own).sum() == np.isin(labels, own).sum()  # wholly inside
        covered[y0:y1, x0:x1] = True
    assert covered[m].all() and covered[30, 20] and not covered[150, 150]


def test_repair_changes_only_pixels_near_the_defects():
    rng = np.random.default_rng(0)
    photo = rng.random((300, 400, 3)).astype(np.float32)
    base = photo * 0.5
    m = np.zeros((300, 400), bool)
    m[60, 20:100] = True
    m[250, 350] = True
    calls = []

    def inpaint(windows, masks):  # around the defects it renders the base: its fill is taken as it is
        calls.extend(w.shape for w in windows)
        assert all(m.shape == w.shape[:2] and m.any() for w, m in zip(windows, masks, strict=True))
        return [np.where(m[..., None], 1.0, w * 0.5).astype(np.float32)
                for w, m in zip(windows, masks, strict=True)]

    out = repair(base, photo, m, inpaint)
    near = repair_weight(m) > 0
    assert np.array_equal(out[~near], base[~near])  # far from the defects: the base, untouched
    assert np.allclose(out[m], 1.0)  # on them: the inpainting
    assert len(calls) == 2 and out.dtype == np.float32
    assert np.array_equal(repair(base, photo, np.zeros_like(m), inpaint), base)


def test_a_thin_defects_fill_comes_down_to_the_levels_of_its_sides():
    # the networks draw their whole window 0.1 too light (the white they see the defects as bleeds), the
    # crack's fill with it: a light band along a crack 3 px wide.  Its fill comes down to the photo's
    # levels, while a hole's fill is taken as it is (its middle is far from its edge)
    yy, xx = np.mgrid[:200, :300].astype(np.float32)
    base = np.repeat((0.3 + 0.001 * xx + 0.0005 * yy)[..., None], 3, axis=2)
    crack = np.zeros((200, 300), bool)
    crack[40:43, 20:280] = True
    hole = np.zeros_like(crack)
    hole[120:180, 100:160] = True  # 30 px deep

    def lighter(windows, masks):
        return [w + 0.1 for w in windows]

    out = repair(base, base, crack | hole, lighter)
    assert np.abs(out[crack] - base[crack]).max() < 1e-3  # no light band
    assert np.allclose(out[hole], base[hole] + 0.1, atol=1e-5)  # the hole: the networks' fill as it is
    ring = (repair_weight(crack) > 0) & ~(repair_weight(crack, feather=0) > 0)
    assert np.allclose(out[ring], base[ring], atol=1e-5)  # beside the crack: the photo
    # a crack drawn as deep as the hole is no thin defect: the band is there (the test can fail)
    wide = np.zeros_like(crack)
    wide[30:70, 20:280] = True
    assert np.allclose(repair(base, base, wide, lighter)[wide], base[wide] + 0.1, atol=1e-5)


def _grainy(shape, sigma, seed=0):
    """A flat gray photo with film grain: white noise of ``sigma`` blurred a little, as a scan's is."""
    noise = cv2.GaussianBlur(np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32), (0, 0), 0.7)
    grain = noise * (sigma / noise.std())
    return np.repeat((0.45 + grain)[..., None], 3, axis=2)


def _fine_detail(image):
    y = image.mean(axis=2)
    return y - cv2.GaussianBlur(y, (0, 0), 1.5)


def test_a_holes_smooth_fill_takes_the_grain_around_it_and_a_thin_scratch_none():
    photo = _grainy((200, 300), 0.03)
    hole = np.zeros((200, 300), bool)
    hole[60:120, 150:220] = True
    scratch = np.zeros_like(hole)
    scratch[160:162, 20:280] = True  # 2 px wide: its fill is its sides' blend, no grain

    def smooth(windows, masks):  # the networks fill every defect with the photo's mean, no grain
        return [np.where(m[..., None], np.float32(0.45), w) for w, m in zip(windows, masks, strict=True)]

    out = repair(photo, photo, hole | scratch, smooth)
    around = float(_fine_detail(photo)[40:140, 120:250][~hole[40:140, 120:250]].std())
    inside = float(_fine_detail(out)[66:114, 156:214].std())
    assert 0.7 * around < inside < 1.2 * around  # grain as around it (the smooth fill: none)
    rim = hole & ~cv2.erode(hole.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert float(_fine_detail(out)[rim].std()) > 0.6 * around  # out to its edge: no smooth outline
    assert abs(float(out[66:114, 156:214].mean()) - 0.45) < 0.005  # the fill's tone is kept
    assert np.allclose(out[160:162, 40:260], 0.45, atol=1e-6)  # the scratch's fill as the networks drew it
    far = repair_weight(hole | scratch) == 0
    assert np.array_equal(out[far], photo[far])
    # a fill with the grain already gets hardly more
    out = repair(photo, photo, hole, lambda windows, masks: windows)
    assert float(_fine_detail(out)[66:114, 156:214].std()) < 1.1 * around


def test_grain_on_a_fill_beside_white_stays_within_the_photos_range():
    photo = np.clip(_grainy((120, 160), 0.04) + 0.53, 0.0, 1.0)  # paper white with grain, clipped
    hole = np.zeros((120, 160), bool)
    hole[30:90, 40:120] = True

    def white(windows, masks):  # the networks fill with white
        return [np.where(m[..., None], np.float32(1.0), w) for w, m in zip(windows, masks, strict=True)]

    out = repair(photo, photo, hole, white)
    assert float(_fine_detail(out)[40:80, 50:110].std()) > 0.01  # grain was drawn
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_a_holes_grain_is_drawn_not_copied_from_the_structure_beside_it():
    # a hole in a grainy sky beside fur (strong vertical stripes): copying a nearby stretch brought the
    # stripes in; drawn grain has none, and no stronger grain than the sky's
    photo = _grainy((200, 300), 0.02)
    stripes = np.where((np.arange(300) // 3) % 2 == 0, 0.15, -0.15).astype(np.float32)
    photo[:, 200:] += stripes[200:][None, :, None]
    hole = np.zeros((200, 300), bool)
    hole[60:140, 110:190] = True

    def smooth(windows, masks):
        return [np.where(m[..., None], np.float32(0.45), w) for w, m in zip(windows, masks, strict=True)]

    out = repair(photo, photo, hole, smooth)
    fill = out[68:132, 118:182].mean(axis=2)
    columns = fill.mean(axis=0)  # stripes survive averaging down the columns, grain does not
    assert columns.std() < 0.01
    assert 0.5 * 0.02 < float(_fine_detail(out)[68:132, 118:182].std()) < 2.0 * 0.02


def test_a_holes_grain_is_read_beside_it_not_from_its_edge():
    # a dark stain on a grain-free wall, and on a grainy one: the photo's detail beside it, blurred across
    # the stain's edge, read as grain all along it (blotches on a clean modern photo's wall)
    def smooth(windows, masks):
        return [np.where(m[..., None], np.float32(0.45), w) for w, m in zip(windows, masks, strict=True)]

    hole = np.zeros((200, 300), bool)
    hole[60:140, 110:190] = True
    for sigma in (0.0, 0.01):
        photo = _grainy((200, 300), sigma) if sigma else np.full((200, 300, 3), 0.45, np.float32)
        photo[hole] = 0.1
        out = repair(photo, photo, hole, smooth)
        inside = float(_fine_detail(out)[68:132, 118:182].std())
        coarse = out[68:132, 118:182].mean(axis=2)
        coarse = float((cv2.GaussianBlur(coarse, (0, 0), 1.5) - cv2.GaussianBlur(coarse, (0, 0), 4.0)).std())
        if not sigma:
            assert inside < 1e-4 and coarse < 1e-4  # smooth as the wall
        else:
            assert inside < 1.2 * float(_fine_detail(photo)[20:50, 20:100].std())
            assert coarse < 0.5 * sigma  # (blurred grain has little at that scale)


def test_a_thin_defects_bright_halo_is_not_spread_into_its_fill():
    # the photo is lighter than the networks beside the crack: its halo, which the mask missed.  A fill
    # brought up to it would be a light streak; it stays as the networks drew it
    base = np.full((120, 200, 3), 0.3, np.float32)
    crack = np.zeros((120, 200), bool)
    crack[60:63, 20:180] = True
    base[56:58, 20:180] = base[65:67, 20:180] = 0.8  # the halo, beyond the grown mask

    def drawn(windows, masks):  # the sides without their halo, the crack filled as them
        return [np.full_like(w, 0.3) for w in windows]

    out = repair(base, base, crack, drawn)
    assert np.allclose(out[crack], 0.3, atol=1e-3)  # (the halo spread in would be 0.5 lighter)


def test_a_defect_near_another_windows_defect_is_masked_there_too():
    photo = np.full((200, 400, 3), 0.5, np.float32)
    m = np.zeros((200, 400), bool)
    m[100, 20:60] = True
    m[100, 130:140] = True  # close enough to share context, far enough for two windows
    seen = []

    def inpaint(windows, masks):  # (renders the context as it is, fills with 0)
        seen.extend(int(m.sum()) for m in masks)
        return [np.where(m[..., None], 0.0, w) for w, m in zip(windows, masks, strict=True)]

    out = repair(photo, photo, m, inpaint, context=100)
    assert np.allclose(out[m], 0.0)
    assert max(seen) == 50  # a window that contains both defects masks both


@pytest.mark.parametrize("grow,feather", [(0, 0.0), (3, 1.0)])
def test_weight_variants(grow, feather):
    m = np.zeros((20, 20), bool)
    m[10, 10] = True
    w = repair_weight(m, grow, feather)
    assert w[10, 10] == 1.0 and w.max() <= 1.0 and (w > 0).sum() >= (2 * grow + 1) ** 2 * 0.7


def _diagonal_scratch(side: int, width: int = 3) -> np.ndarray:
    m = np.zeros((side, side), np.uint8)
    cv2.line(m, (10, 20), (side - 10, side - 30), 1, width)
    return m.astype(bool)


def test_a_long_thin_region_is_cut_into_cells_whose_shares_add_up_to_one():
    m = _diagonal_scratch(900)
    labels, stats = regions(m)
    parts = units(labels, stats, m, context=40)
    assert len(parts) > 6 and {u.label for u in parts} == {1}
    total = np.zeros(m.shape, np.float32)
    for u in parts:
        y0, x0, y1, x1 = u.box
        assert max(y1 - y0, x1 - x0) <= SPLIT_CELL + 2 * SPLIT_FADE
        total += np.asarray(u.share((0, 0, *m.shape)))[..., 0]
    assert np.allclose(total[m], 1.0)  # every pixel of the scratch repaired once, cross-faded at the cuts
    cut = [u for u in parts if u.cell == (0, 0)][0].cuts[1][0]
    share = np.asarray(parts[0].share((0, 0, *m.shape)))[0, :, 0]
    assert share[cut - SPLIT_FADE - 1] == 1.0 and 0 < share[cut] < 1 and share[cut + SPLIT_FADE] == 0.0


def test_short_and_wide_regions_stay_whole():
    m = np.zeros((900, 900), bool)
    m[100, 100:200] = True  # short: its window is small anyway
    m[400:700, 300:600] = True  # a hole: its middle needs context from far
    labels, stats = regions(m)
    assert [u.cuts for u in units(labels, stats, m, context=40)] == [None, None]


def test_a_long_scratch_is_repaired_in_small_windows_without_seams():
    m = _diagonal_scratch(900)
    photo = np.full((900, 900, 3), 0.5, np.float32)
    sides = []

    def inpaint(windows, masks):
        sides.extend(max(w.shape[:2]) for w in windows)
        return [np.where(mk[..., None], 0.9, w) for w, mk in zip(windows, masks, strict=True)]

    out = repair(photo, photo, m, inpaint)
    assert max(sides) <= 256 and len(sides) > 4  # not one 900² window: attention costs its area squared
    assert np.allclose(out[m], 0.9, atol=1e-5)  # the cells' repairs add up to exactly one repair
    assert np.array_equal(out[repair_weight(m) == 0], photo[repair_weight(m) == 0])


def test_thin_defects_are_filled_by_diffusion_and_wide_ones_by_the_network():
    yy, xx = np.mgrid[0:200, 0:300].astype(np.float32)
    clean = np.stack([xx / 300, yy / 200, (xx + yy) / 500], axis=-1)  # smooth ramps: diffusion is exact
    photo = clean.copy()
    m = np.zeros((200, 300), bool)
    m[40:43, 20:280] = True  # a scratch 3 px wide (depth 2)
    m[150, 40] = m[151, 41] = True  # a speck
    m[120:160, 200:240] = True  # a hole (depth 20)
    photo[m] = 1.0
    calls = []

    def inpaint(windows, masks):  # (renders the context as it is, fills with 0)
        calls.extend(mk.copy() for mk in masks)
        return [np.where(mk[..., None], 0.0, w) for w, mk in zip(windows, masks, strict=True)]

    out = repair(clean, photo, m, inpaint, diffuse_depth=2.5)
    assert len(calls) == 1 and calls[0].sum() == 40 * 40  # only the hole went to the network
    assert np.allclose(out[120:160, 200:240], 0.0)
    thin = m.copy()
    thin[120:160, 200:240] = False
    assert np.abs(out[thin] - clean[thin]).max() < 0.02  # the ramp continued under the scratch and speck
    calls.clear()
    assert np.allclose(repair(clean, photo, m, inpaint)[thin], 0.0, atol=1e-5)  # default: the network fills
    assert sum(int(c.sum()) for c in calls) >= m.sum()


def test_diffusion_fills_a_thin_line_from_beyond_its_grown_edge():
    window = np.full((40, 40, 3), 0.3, np.float32)
    window[:, 20] = 1.0  # the line, as masked
    window[:, 19] = window[:, 21] = 0.7  # its soft edge, not masked but within the growth
    mask = np.zeros((40, 40), bool)
    mask[:, 20] = True
    assert np.allclose(diffuse(window, mask, grow=2)[:, 17:24], 0.3, atol=1e-3)
    assert diffuse(window, mask, grow=0)[:, 20].mean() > 0.5  # without growth the edge bleeds in


def _periodic_texture(h: int, w: int, period: int = 7) -> np.ndarray:
    tile = np.random.default_rng(3).uniform(0.2, 0.8, (period, period, 3)).astype(np.float32)
    return np.tile(tile, (h // period + 1, w // period + 1, 1))[:h, :w]


def test_texture_fill_carries_the_texture_across_a_scratch_where_diffusion_smooths_it():
    clean = _periodic_texture(80, 120)
    hole = np.zeros((80, 120), bool)
    hole[36:44, 10:110] = True  # a scratch 8 px wide (depth 4)
    damaged = clean.copy()
    damaged[hole] = 1.0
    filled = texture_fill(damaged, hole, ~hole)
    assert np.array_equal(filled[~hole], damaged[~hole])  # only the hole is touched
    assert np.abs(filled[hole] - clean[hole]).mean() < 0.01  # the texture continues exactly
    assert np.abs(diffuse(damaged, hole, grow=0)[hole] - clean[hole]).mean() > 0.08


def test_texture_fill_copies_neither_from_outside_its_source_nor_undetected_damage():
    rng = np.random.default_rng(5)
    photo = (0.5 + rng.normal(0, 0.02, (80, 120, 1))).repeat(3, axis=2).astype(np.float32)
    hole = np.zeros((80, 120), bool)
    hole[38:42, 5:115] = True
    photo[hole] = 1.0
    photo[30:34, :] = 0.0  # a dark line that is no source (as beside another defect)
    source = np.ones((80, 120), bool)
    source[28:36, :] = False
    specks = rng.random((80, 120)) < 0.02  # bright specks the mask missed, in the source
    specks[28:44, :] = False
    photo[specks] = 1.0
    filled = texture_fill(photo, hole, source)
    assert filled[hole].min() > 0.3 and filled[hole].max() < 0.7


def test_defects_between_the_diffusion_and_texture_depths_take_copied_texture():
    clean = _periodic_texture(260, 300)
    photo = clean.copy()
    m = np.zeros((260, 300), bool)
    m[40:42, 20:280] = True  # thin (depth 1): diffusion
    m[90:98, 20:280] = True  # 8 px wide (depth 4): texture
    m[200:240, 200:240] = True  # a hole (depth 20): the network
    photo[m] = 1.0
    calls = []

    def inpaint(windows, masks):  # (renders the context as it is, fills with 0)
        calls.extend(mk.copy() for mk in masks)
        return [np.where(mk[..., None], 0.0, w) for w, mk in zip(windows, masks, strict=True)]

    copied = np.zeros_like(m)
    out = repair(clean, photo, m, inpaint, diffuse_depth=2.5, texture_depth=8, copied=copied)
    assert len(calls) == 1 and calls[0].sum() == 40 * 40  # only the hole went to the network
    band = np.zeros_like(m)
    band[90:98, 30:270] = True
    assert np.abs(out[band] - clean[band]).mean() < 0.02
    assert copied[band].all() and not copied[40:42].any() and not copied[200:240, 200:240].any()
    calls.clear()
    repair(clean, photo, m, inpaint, diffuse_depth=2.5)  # default: no texture fill, the band to the network
    assert sum(int(c.sum()) for c in calls) >= 40 * 40 + 8 * 260


@pytest.mark.parametrize("depth", [1e6, float("inf")])
def test_a_texture_depth_beyond_every_defect_is_the_same_as_the_deepest_one(depth):
    # `--texture-depth inf` ("texture for every defect") raised OverflowError on every photo, and a large
    # finite one grew the regions by a disk of depth / 2 px: minutes and gigabytes for nothing, since no
    # defect is deeper than the photo holds
    clean = _periodic_texture(120, 160)
    photo = clean.copy()
    m = np.zeros((120, 160), bool)
    m[50:58, 10:150] = True
    m[90:110, 60:80] = True
    photo[m] = 1.0

    def inpaint(windows, masks):
        raise AssertionError("every defect is within the texture depth")

    expected = repair(clean, photo, m, inpaint, diffuse_depth=2.5, texture_depth=10.0)
    out = repair(clean, photo, m, inpaint, diffuse_depth=2.5, texture_depth=depth)
    np.testing.assert_array_equal(out, expected)

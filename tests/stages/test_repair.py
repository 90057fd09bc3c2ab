import numpy as np
import pytest

from oldphoto.stages.repair import reach, repair, repair_weight, windows


def test_weight_is_one_on_the_grown_mask_and_zero_beyond_its_reach():
    m = np.zeros((60, 60), bool)
    m[30, 10:50] = True
    w = repair_weight(m, grow=2, feather=2.0)
    assert (w[28:33, 10:50] == 1.0).all()  # the defect and 2 px around it are fully repaired
    far = np.ones_like(m)
    far[30 - reach(2, 2.0):30 + reach(2, 2.0) + 1, 10 - reach(2, 2.0):50 + reach(2, 2.0) + 1] = False
    assert (w[far] == 0).all() and 0 < w[34, 30] < 1  # then fades out


def test_windows_cover_each_defect_with_context_and_never_overlap():
    m = np.zeros((400, 300), bool)
    m[50, 40:60] = True  # two close defects: one window
    m[70, 45:55] = True
    m[350, 250] = True  # a far speck: its own window
    boxes = windows(m, context=20, min_side=64)
    assert len(boxes) == 2
    for a in boxes:
        assert a[2] - a[0] >= 64 and a[3] - a[1] >= 64
        for b in boxes:
            assert a == b or not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    covered = np.zeros_like(m)
    for y0, x0, y1, x1 in boxes:
        covered[y0:y1, x0:x1] = True
    assert covered[m].all() and covered[30, 20] and not covered[200, 150]


def test_repair_changes_only_pixels_near_the_defects():
    rng = np.random.default_rng(0)
    photo = rng.random((300, 400, 3)).astype(np.float32)
    base = photo * 0.5
    m = np.zeros((300, 400), bool)
    m[60, 20:100] = True
    m[250, 350] = True
    calls = []

    def inpaint(window, wm):
        calls.append(window.shape)
        assert wm.shape == window.shape[:2] and wm.any()
        return np.ones_like(window)

    out = repair(base, photo, m, inpaint)
    near = repair_weight(m) > 0
    assert np.array_equal(out[~near], base[~near])  # far from the defects: the base, untouched
    assert np.allclose(out[m], 1.0)  # on them: the inpainting
    assert len(calls) == 2 and out.dtype == np.float32
    assert np.array_equal(repair(base, photo, np.zeros_like(m), inpaint), base)


@pytest.mark.parametrize("grow,feather", [(0, 0.0), (3, 1.0)])
def test_weight_variants(grow, feather):
    m = np.zeros((20, 20), bool)
    m[10, 10] = True
    w = repair_weight(m, grow, feather)
    assert w[10, 10] == 1.0 and w.max() <= 1.0 and (w > 0).sum() >= (2 * grow + 1) ** 2 * 0.7

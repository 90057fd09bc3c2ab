import numpy as np
import pytest

from oldphoto.synth import DegradeConfig, degrade
from oldphoto.synth import content as C


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("name", list(C.DRAWERS))
def test_each_drawer_is_deterministic_and_draws_something(name, photo):
    before = photo.copy()
    outs = [C.DRAWERS[name](photo, rng(s)) for s in range(4)]
    np.testing.assert_array_equal(outs[0], C.DRAWERS[name](photo, rng(0)))
    np.testing.assert_array_equal(photo, before)  # the input is not modified
    for out in outs:
        assert out.shape == photo.shape and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
    # a visible structure in (nearly) every draw
    changed = [float((np.abs(out - photo).max(axis=2) > 0.1).mean()) for out in outs]
    assert sum(c > 5e-4 for c in changed) >= 3, changed


def test_lettering_draws_strokes_without_system_fonts(monkeypatch, photo):
    """CI may have no fonts: Pillow's own font still gives letters."""
    monkeypatch.setattr(C, "font_files", lambda: ())
    grey = np.full_like(photo, 0.5)
    drawn = [(np.abs(C.lettering(grey, rng(s)) - grey).max(axis=2) > 0.15).sum() for s in range(10)]
    assert sum(d > 10 for d in drawn) >= 8, drawn  # a line may fall mostly outside the frame


def test_add_content_names_what_it_drew(photo):
    out, names = C.add_content(photo, rng(1), count=(2, 2))
    assert len(names) == 2 and set(names) <= set(C.DRAWERS)
    assert not np.array_equal(out, photo)


def test_content_is_part_of_the_clean_target_and_never_of_the_mask(photo):
    """Drawn before any degradation: the target carries it, the mask does not (labels 0)."""
    cfg = DegradeConfig(kind="oldlook", p_content=1.0, p_gray=0.0, p_tone=0.0)
    for seed in range(4):
        s = degrade(photo, seed, cfg)
        assert any(op.startswith("content:") for op in s.ops)
        assert s.mask.sum() == 0
        assert not np.array_equal(s.clean, photo)  # no tone was applied: the difference is the content
    # with defects too, the mask holds only the defects: content alone gives an empty mask
    no_defects = DegradeConfig(kind="structured", p_content=1.0, p_scratch=0.0, p_dust=0.0, p_hole=0.0,
                               p_crease=0.0)
    assert degrade(photo, 5, no_defects).mask.sum() == 0


def test_optional_steps_off_leave_the_random_stream_alone(photo):
    """p_content = 0 (the default) draws nothing: every other stage's samples stay as they were."""
    a = degrade(photo, 11)
    b = degrade(photo, 11, DegradeConfig(p_content=0.0, p_thin_crack=0.0, p_tear=0.0))
    np.testing.assert_array_equal(a.degraded, b.degraded)
    c = degrade(photo, 11, DegradeConfig(p_content=1.0))
    assert not np.array_equal(a.clean, c.clean)

import numpy as np
import pytest

from oldphoto.synth import DegradeConfig, Degraded, degrade


def test_same_seed_same_sample_and_generators_accepted(photo):
    a = degrade(photo, 123)
    b = degrade(photo, np.random.default_rng(123))
    assert isinstance(a, Degraded)
    for x, y in ((a.degraded, b.degraded), (a.clean, b.clean), (a.mask, b.mask)):
        np.testing.assert_array_equal(x, y)
    assert a.ops == b.ops
    c = degrade(photo, 124)
    assert not np.array_equal(a.degraded, c.degraded)


def test_outputs_follow_the_image_contract(photo):
    for seed in range(10):
        s = degrade(photo, seed)
        assert s.degraded.shape == photo.shape and s.degraded.dtype == np.float32
        assert s.clean.shape == photo.shape and s.clean.dtype == np.float32
        assert s.mask.shape == photo.shape[:2] and s.mask.dtype == np.float32
        assert set(np.unique(s.mask)) <= {0.0, 1.0}
        assert 0 <= s.degraded.min() and s.degraded.max() <= 1
        assert not np.array_equal(s.degraded, s.clean)


def test_input_is_not_modified(photo):
    before = photo.copy()
    degrade(photo, 5)
    np.testing.assert_array_equal(photo, before)


def test_clean_target_differs_only_by_tone(photo):
    for seed in range(20):
        s = degrade(photo, seed)
        if not any(op == "grayscale" or op.startswith("tone:") for op in s.ops):
            np.testing.assert_array_equal(s.clean, photo)
        else:
            assert not np.array_equal(s.clean, photo)
            if "grayscale" in s.ops:
                np.testing.assert_array_equal(s.clean[..., 0], s.clean[..., 2])


def test_grayscale_rate_is_about_ten_percent(photo):
    small = photo[::4, ::4]
    n = sum("grayscale" in degrade(small, seed).ops for seed in range(300))
    assert 15 <= n <= 50  # 10 % of 300 = 30


def test_unstructured_kind_has_no_mask_and_no_local_defects(photo):
    cfg = DegradeConfig(kind="unstructured")
    for seed in range(10):
        s = degrade(photo, seed, cfg)
        assert s.mask.sum() == 0
        assert not {"scratches", "dust", "holes", "crease", "fade"} & set(s.ops)


def test_structured_kind_masks_defects(photo):
    cfg = DegradeConfig(kind="structured", p_scratch=1.0)
    for seed in range(5):
        s = degrade(photo, seed, cfg)
        assert "scratches" in s.ops and s.mask.sum() > 0
        assert not {"noise", "jpeg", "gaussian_blur", "box_blur"} & set(s.ops)
        # the mask sits where the image changed
        change = np.abs(s.degraded - s.clean).max(axis=2)
        assert change[s.mask > 0].mean() > 2 * change[s.mask == 0].mean()


def test_mixed_kind_produces_masked_and_unmasked_samples(photo):
    covered = [degrade(photo, seed).mask.mean() for seed in range(30)]
    assert sum(c > 0 for c in covered) >= 10
    assert sum(c == 0 for c in covered) >= 1  # some samples have no local defects at all
    assert max(covered) < 0.6


def test_config_validation():
    with pytest.raises(ValueError, match="kind"):
        DegradeConfig(kind="sepia")
    with pytest.raises(ValueError, match="p_hole"):
        DegradeConfig(p_hole=1.5)
    assert DegradeConfig().replace(p_hole=0.0).p_hole == 0.0


def test_bad_images_are_rejected():
    with pytest.raises(ValueError, match="H×W×3"):
        degrade(np.zeros((32, 32), np.float32), 0)
    with pytest.raises(ValueError, match="too small"):
        degrade(np.zeros((4, 4, 3), np.float32), 0)


def test_0_255_data_is_refused_with_a_clear_error(photo):
    with pytest.raises(ValueError, match="divide 8-bit data by 255"):
        degrade((photo * 255).astype(np.uint8), 0)
    with pytest.raises(ValueError, match=r"values up to 2\d\d"):
        degrade(photo.astype(np.float64) * 255, 0)


def test_a_slight_overshoot_is_clipped_and_float64_accepted(photo):
    over = photo.astype(np.float64)
    over[0, 0] = 1.02  # what a resampling filter leaves
    s = degrade(over, 0)
    assert s.degraded.dtype == np.float32 and s.clean.max() <= 1.0
    ref = degrade(np.clip(over, 0, 1).astype(np.float32), 0)
    assert np.array_equal(s.degraded, ref.degraded)

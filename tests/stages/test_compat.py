"""--compat official follows the official resize, detector and save rules (FACTS §1, §3, §8b)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from oldphoto.stages import compat
from oldphoto.stages.defects import official_mask
from oldphoto.stages.restore import PathModels, RestoreStage


def test_official_sizes_use_bankers_rounding():
    # the facts' example: 298×450 -> 296×448 (quality, ×4) and 304×448 (scratch, ×16)
    assert compat.official_size(450, 298, 4) == (448, 296)
    assert compat.official_size(450, 298, 16) == (448, 304)
    assert compat.official_size(10, 14, 4) == (8, 16)  # 2.5 -> 2, 3.5 -> 4 (halves to even)


def test_quality_input_is_pil_bilinear_and_scratch_input_pil_bicubic():
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (450, 298, 3), dtype=np.uint8)
    img = u8.astype(np.float32) / 255
    q = compat.quality_input(img)
    assert q.shape == (448, 296, 3)
    assert np.array_equal(q, np.asarray(Image.fromarray(u8).resize((296, 448), Image.BILINEAR)))
    s = compat.scratch_input(img)
    assert np.array_equal(s, np.asarray(Image.fromarray(u8).resize((304, 448), Image.BICUBIC)))
    already = u8[:448, :296]
    assert np.array_equal(compat.quality_input(already.astype(np.float32) / 255), already)


def test_detector_pass_is_at_256_short_side():
    assert compat.detector_scale_size(448, 304) == (384, 256)  # 448/304·256 = 377.3 -> 384
    assert compat.detector_scale_size(256, 1024) == (256, 1024)
    assert compat.detector_scale_size(512, 512) == (256, 256)


def _reference_save_image(t: np.ndarray) -> np.ndarray:
    lo, hi = t.min(), t.max()
    n = (t - lo) / max(float(hi) - float(lo), 1e-5)
    q = np.floor(n.astype(np.float32) * np.float32(255) + np.float32(0.5))
    return np.clip(q, 0, 255).astype(np.uint8)


def test_save_image_stretch_is_min_max_with_round_half_up():
    t = torch.tensor([[0.2, 0.6], [0.4, 1.0]])
    out = compat.save_image_stretch(t)
    assert out.tolist() == [[0, 128], [64, 255]]  # 0.5·255 + 0.5 = 128.0 -> 128 (half up)
    rng = np.random.default_rng(1)
    x = rng.random((3, 17, 19)).astype(np.float32) * 0.7 + 0.1
    assert np.array_equal(compat.save_image_stretch(torch.from_numpy(x)).numpy(), _reference_save_image(x))


def test_constant_mask_is_stored_empty():
    assert not compat.stretch_mask(np.ones((32, 32), bool)).any()
    assert not compat.stretch_mask(np.zeros((32, 32), bool)).any()
    m = np.zeros((32, 32), bool)
    m[3:5] = True
    assert np.array_equal(compat.stretch_mask(m), m)


def test_official_mask_runs_at_256_and_upsamples_nearest_with_threshold_04():
    seen = []
    p = 0.4  # exactly at the threshold counts as defect

    def detector(x):
        seen.append(tuple(x.shape))
        logits = torch.full_like(x, -10.0)
        logits[..., 100:110, :] = float(np.log(p / (1 - p)))
        return logits

    image16 = np.full((448, 304, 3), 128, np.uint8)
    mask = official_mask(detector, image16)
    assert seen == [(1, 1, 384, 256)]
    expected = F.interpolate(torch.zeros(1, 1, 384, 256).index_fill_(2, torch.arange(100, 110), 1.0),
                             size=(448, 304), mode="nearest")[0, 0].numpy() > 0.5
    assert mask.shape == (448, 304) and np.array_equal(mask, expected)
    # all pixels defect -> the stored mask is empty (save_image min–max quirk)
    assert not official_mask(lambda x: torch.full_like(x, 5.0), image16).any()


class _Recorder:
    def __init__(self):
        self.x = None
        self.mask = None

    def models(self, masked):
        def encoder(x):
            self.x = x.clone()
            return x

        def mapping(z, mask=None):
            self.mask = None if mask is None else mask.clone()
            return z

        return PathModels(encoder, mapping, lambda z: z * 0.5, masked=masked)


def test_official_quality_path_output_is_stretched_at_x4_size():
    rec = _Recorder()
    stage = RestoreStage(lambda fn, *t: fn(*t))
    rng = np.random.default_rng(2)
    img = (rng.integers(0, 256, (37, 53, 3)) / 255).astype(np.float32)
    out = stage.official(img, rec.models(False), "quality")
    assert out.shape == (36, 52, 3)
    assert out.min() == 0.0 and out.max() == 1.0  # per-image min–max stretch
    u8 = np.asarray(Image.fromarray(compat.to_uint8(img)).resize((52, 36), Image.BILINEAR))
    x = torch.from_numpy(np.ascontiguousarray(u8.transpose(2, 0, 1))).float().div(255).sub(0.5).div(0.5)[None]
    assert torch.equal(rec.x, x)
    expected = _reference_save_image(((x * 0.5 + 1) / 2)[0].numpy()).transpose(1, 2, 0)
    assert np.array_equal(np.round(out * 255).astype(np.uint8), expected)


@pytest.mark.parametrize("path", ["scratch", "hr"])
def test_official_scratch_path_whitens_and_dilates_in_hr(path):
    rec = _Recorder()
    stage = RestoreStage(lambda fn, *t: fn(*t))
    u8 = np.full((64, 48, 3), 100, np.uint8)
    mask = np.zeros((64, 48), bool)
    mask[30, 10:20] = True
    out = stage.official(u8.astype(np.float32) / 255, rec.models(True), path, mask, u8)
    assert out.shape == (64, 48, 3)
    used = rec.mask[0, 0].numpy() > 0.5
    if path == "hr":  # 3×3 kernel, 3 iterations -> grows 3 px each way
        assert used.sum() == (10 + 6) * 7 and used[27, 10] and used[33, 19] and not used[26, 10]
    else:
        assert np.array_equal(used, mask)
    white = rec.x[0, :, used].numpy()
    assert (white == 1.0).all() and (rec.x[0, :, ~torch.from_numpy(used)] < 0).all()

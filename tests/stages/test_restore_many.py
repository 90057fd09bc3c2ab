"""RestoreStage.many: windows batched per size bucket give what each gives alone."""

import numpy as np
import torch

from oldphoto.stages.restore import PathModels, RestoreStage


class Blur(torch.nn.Module):
    """A stand-in 'network': a 3×3 box blur over reflected borders, so that a reflect-padded input gives
    the same pixels inside as the unpadded one."""

    def forward(self, x, mask=None):
        return torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"), 3,
                                              stride=1)


def test_batched_windows_match_single_runs():
    rng = np.random.default_rng(0)
    models = PathModels(lambda x: x, Blur(), lambda z: z, masked=True)
    stage = RestoreStage(lambda fn, *t: fn(*t), tile=160)
    sizes = ((96, 96), (90, 80), (96, 120), (200, 80))
    images = [rng.random((h, w, 3)).astype(np.float32) for h, w in sizes]
    masks = [np.zeros(im.shape[:2], bool) for im in images]
    for m in masks:
        m[40:44, 20:60] = True
    calls = []
    counted = PathModels(lambda x: calls.append(x.shape[0]) or x, Blur(), lambda z: z, masked=True)
    many = stage.many(images, counted, "scratch", masks)
    # 96×96 and 90×80 share the 96×96 bucket, 96×120 has its own, the 200-px one runs alone in 2 tiles
    assert calls == [2, 1, 1, 1] or sorted(calls) == [1, 1, 1, 2]
    for image, mask, out in zip(images, masks, many, strict=True):
        alone = stage(image, models, "scratch", mask)
        assert out.shape == image.shape
        assert np.abs(out - alone).max() < 1e-4

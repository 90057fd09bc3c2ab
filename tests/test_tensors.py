"""The one place images and network tensors are converted: layouts, ranges and round trips."""

import numpy as np
import torch

from oldphoto.tensors import (
    batch_to_images,
    image_to_tensor,
    images_to_batch,
    mask_to_tensor,
    tensor_to_image,
)


def test_single_image_round_trip_and_ranges():
    rng = np.random.default_rng(0)
    image = rng.random((5, 7, 3), dtype=np.float32)
    t = image_to_tensor(image)
    assert t.shape == (1, 3, 5, 7) and float(t.min()) >= -1 and float(t.max()) <= 1
    assert torch.allclose(t[0, 2, 1, 3], torch.tensor(image[1, 3, 2] * 2 - 1))
    assert np.allclose(tensor_to_image(t), image, atol=1e-6)
    assert image_to_tensor(image[..., 0]).shape == (1, 1, 5, 7)  # gray H×W
    assert mask_to_tensor(image[..., 0] > 0.5).shape == (1, 1, 5, 7)


def test_batch_round_trip_clips_and_keeps_order():
    rng = np.random.default_rng(1)
    images = [rng.random((4, 6, 3), dtype=np.float32) for _ in range(3)]
    batch = images_to_batch(images)
    assert batch.shape == (3, 3, 4, 6)
    assert torch.equal(batch[1:2], image_to_tensor(images[1]))
    back = batch_to_images(batch * 1.5)  # out of range: clipped to [0, 1]
    assert back.shape == (3, 4, 6, 3) and back.min() >= 0 and back.max() <= 1
    assert np.allclose(batch_to_images(batch), np.stack(images), atol=1e-6)
    assert images_to_batch([im[..., 0] for im in images]).shape == (3, 1, 4, 6)

import numpy as np
import pytest
import torch

from oldphoto.metrics.latent import gaussian_w2, sliced_wasserstein, wasserstein_exact
from oldphoto.metrics.roc import auc, pixels_from_masks, roc_auc, roc_curve


def test_wasserstein_identical_and_shifted():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 1))
    assert wasserstein_exact(a, a) == pytest.approx(0.0)
    assert wasserstein_exact(a, a + 3.0) == pytest.approx(3.0)
    assert sliced_wasserstein(a, a + 3.0, n_projections=8) == pytest.approx(3.0)
    # in D dims a shift c·1 gives exact W = c·sqrt(D); sliced averages |<u, shift>| over directions
    x = rng.normal(size=(300, 4))
    assert wasserstein_exact(x, x + 1.0) == pytest.approx(2.0)
    assert 0 < sliced_wasserstein(x, x + 1.0) < 2.0


def test_wasserstein_grows_with_domain_gap_and_accepts_tensors():
    rng = np.random.default_rng(1)
    real = torch.from_numpy(rng.normal(size=(64, 8, 2, 2)))
    values = [sliced_wasserstein(real, real + s, seed=3) for s in (0.1, 0.5, 1.0)]
    assert values == sorted(values)
    assert gaussian_w2(real, real + 0.5) == pytest.approx(0.5 * np.sqrt(32), rel=1e-4)
    with pytest.raises(ValueError, match="equal set sizes"):
        wasserstein_exact(real, real[:10])


def test_sliced_unequal_sizes():
    a = np.arange(4, dtype=float)[:, None]
    b = np.arange(0, 4, 0.5)[:, None]  # same support, finer: W1 of these empirical laws = 0.25
    assert sliced_wasserstein(a, b, n_projections=1) == pytest.approx(0.25)


def _mann_whitney_auc(scores, labels):
    pos, neg = scores[labels], scores[~labels]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return greater / (len(pos) * len(neg))


def test_roc_auc_known_cases():
    labels = np.array([0, 0, 1, 1], bool)
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert roc_auc(np.ones(4), labels) == 0.5
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 20, 500).astype(float)  # many ties
    y = rng.random(500) < 0.3
    assert roc_auc(scores, y) == pytest.approx(_mann_whitney_auc(scores, y))
    fpr, tpr, thr = roc_curve(scores, y)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and np.all(np.diff(thr) < 0)
    assert auc(fpr, tpr) == pytest.approx(roc_auc(scores, y))


def test_roc_from_masks():
    mask = np.zeros((8, 8))
    mask[2:4] = 1
    good = mask * 0.9 + 0.05
    s, y = pixels_from_masks([good, 1 - good], [mask, 1 - mask])
    assert roc_auc(s, y) == 1.0
    with pytest.raises(ValueError, match="both positive and negative"):
        roc_auc(np.zeros(3), np.zeros(3))


def test_plot_roc_png(tmp_path):
    from PIL import Image

    from oldphoto.metrics.roc import plot_roc

    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.4
    s = y + rng.normal(0, 0.7, 300)
    fpr, tpr, _ = roc_curve(s, y)
    path = plot_roc({"synthetic only": (fpr, tpr)}, tmp_path / "roc.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (540, 540)

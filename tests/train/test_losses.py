import pytest
import torch

from oldphoto.train.losses import (
    class_balance_weight,
    detector_loss,
    feature_matching_loss,
    focal_loss,
    kl_loss,
    lsgan_loss,
    weighted_bce_loss,
)


def test_lsgan_accepts_nested_multiscale_outputs():
    real = [[torch.zeros(1, 4, 3, 3), torch.ones(1, 1, 2, 2)],
            [torch.zeros(1, 4, 2, 2), torch.ones(1, 1, 1, 1)]]
    assert lsgan_loss(real, True).item() == pytest.approx(0.0)
    assert lsgan_loss(real, False).item() == pytest.approx(1.0)
    assert lsgan_loss(torch.full((1, 1, 2, 2), 0.5), True).item() == pytest.approx(0.25)


def test_feature_matching_weights_and_detach():
    fake = [[torch.ones(1, 2, 2, 2, requires_grad=True), torch.zeros(1, 1, 1, 1)]]
    real = [[torch.zeros(1, 2, 2, 2, requires_grad=True), torch.zeros(1, 1, 1, 1)]]
    loss = feature_matching_loss(fake, real)
    # one intermediate feature, one scale: weight 4/1/1 times L1 = 1
    assert loss.item() == pytest.approx(4.0)
    loss.backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None


def test_kl_is_mean_square():
    z = torch.tensor([[1.0, -2.0], [0.0, 1.0]])
    assert kl_loss(z).item() == pytest.approx(1.5)


def test_class_balance_weights_rare_positives_up():
    target = torch.zeros(2, 1, 4, 4)
    target[0, 0, 0, :2] = 1  # 2 of 16 positive
    w = class_balance_weight(target)
    assert w[0].item() == pytest.approx(14 / 16)
    assert w[1].item() == pytest.approx(1.0)


def test_weighted_bce_matches_formula():
    logits = torch.tensor([[[[2.0, -1.0]]]])
    target = torch.tensor([[[[1.0, 0.0]]]])
    alpha = 0.5
    p = torch.sigmoid(logits)
    expected = -(alpha * torch.log(p[0, 0, 0, 0]) + (1 - alpha) * torch.log(1 - p[0, 0, 0, 1])) / 2
    assert weighted_bce_loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_focal_reduces_to_ce_at_gamma_zero_and_downweights_easy():
    logits = torch.tensor([[[[3.0, -3.0, 0.1]]]])
    target = torch.tensor([[[[1.0, 0.0, 1.0]]]])
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert focal_loss(logits, target, gamma=0.0).item() == pytest.approx(ce.item(), rel=1e-5)
    assert focal_loss(logits, target, gamma=2.0).item() < ce.item()


def test_detector_loss_paper_defaults_and_shape_check():
    logits = torch.randn(2, 1, 8, 8)
    target = (torch.rand(2, 1, 8, 8) > 0.9).float()
    total, parts = detector_loss(logits, target)
    assert total.item() == pytest.approx(parts["ce"].item() + 10 * parts["focal"].item(), rel=1e-5)
    with pytest.raises(ValueError, match="shape"):
        detector_loss(logits, target[:, :, :4])

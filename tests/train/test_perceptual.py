import pytest
import torch

from oldphoto.metrics import features as feat
from oldphoto.train.perceptual import (
    PerceptualError,
    PerceptualLoss,
    build_feature_net,
    load_torchvision_vgg,
    torchvision_conv_indices,
    vgg19_from_state_dict,
)


def test_torchvision_conv_indices():
    assert torchvision_conv_indices((2, 2, 3, 3, 3)) == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert torchvision_conv_indices((2, 2, 4, 4, 4))[-1] == 34  # VGG19: 16 convs, the last at 34


def test_vgg16_taps_are_the_first_relu_of_each_block():
    """Same layers as the official VGG19 loss (relu1_1, relu2_1, ...), checked against the full stack."""
    torch.manual_seed(0)
    full = feat.VGG16Features("imagenet")  # random weights in torchvision's layout
    net = load_torchvision_vgg(full.state_dict(), (2, 2, 3, 3, 3), 3, "test")
    assert len(net.convs) == 2 + 2 + 1  # nothing built past relu3_1
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    got = net(x)
    for tap, index in zip(got, (1, 6, 11), strict=True):  # relu1_1, relu2_1, relu3_1 in torchvision
        assert torch.allclose(tap, full.features[: index + 1](x), atol=1e-5)


def test_imagenet_vgg16_features_and_loss():
    try:
        net = build_feature_net(None, max_layers=2)
    except PerceptualError as exc:
        assert "oldphoto data perception" in str(exc)
        pytest.skip(str(exc))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    feats = net(x)
    assert [f.shape[1] for f in feats] == [64, 128]
    assert not any(p.requires_grad for p in net.parameters())
    loss = PerceptualLoss(net)
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    y = x.clone().requires_grad_(True)
    value = loss(y, -x)
    value.backward()
    assert value.item() > 0 and y.grad is not None and y.grad.abs().sum() > 0
    # ImageNet features: a smooth photo-like ramp and its noisy copy are closer than two noise images
    ramp = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32)
    noisy = (ramp + 0.05 * torch.randn_like(ramp)).clamp(-1, 1)
    assert loss(noisy, ramp).item() < loss(torch.rand_like(ramp) * 2 - 1, ramp).item()


def test_missing_imagenet_vgg16_names_the_command(tmp_path, monkeypatch):
    from oldphoto.train import perceptual

    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "none"))
    with pytest.raises(PerceptualError, match="oldphoto data perception"):
        perceptual.imagenet_vgg16(2)


def test_vgg19_state_dict_loader(tmp_path):
    # a random state dict in torchvision's layout stands in for the user's ImageNet file
    idx = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    chans = [3, 64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
    sd = {}
    for k, i in enumerate(idx):
        sd[f"features.{i}.weight"] = torch.randn(chans[k + 1], chans[k], 3, 3) * 0.01
        sd[f"features.{i}.bias"] = torch.zeros(chans[k + 1])
    path = tmp_path / "vgg19.pth"
    torch.save(sd, path)
    net = vgg19_from_state_dict(path, max_layers=3)
    assert torch.equal(net.convs[2].weight, sd["features.5.weight"])
    assert [f.shape[1] for f in net(torch.zeros(1, 3, 16, 16))] == [64, 128, 256]
    del sd["features.5.weight"]
    torch.save(sd, path)
    with pytest.raises(PerceptualError, match="features.5.weight"):
        vgg19_from_state_dict(path)

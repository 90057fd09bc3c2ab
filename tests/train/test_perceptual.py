import pytest
import torch

from oldphoto.train.perceptual import (
    PerceptualError,
    PerceptualLoss,
    build_feature_net,
    vgg19_from_state_dict,
)


def test_hed_vgg16_features_and_loss():
    pytest.importorskip("h5py", reason="h5py not installed: pip install 'oldphoto[train]' (as .ci/run does)")
    try:
        net = build_feature_net(None, max_layers=2)
    except PerceptualError as exc:
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

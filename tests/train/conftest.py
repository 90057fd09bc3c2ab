from pathlib import Path

import pytest
import torch

# The shared CPU is oversubscribed; OpenMP barriers across descheduled threads make multi-threaded
# tiny convolutions ~20x slower than one thread, so the training tests run single-threaded.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def perceptual_net() -> None:
    """The tiny configs train with the VGG loss, which needs the ImageNet VGG16."""
    from oldphoto.train.perceptual import PerceptualError, build_feature_net

    try:
        build_feature_net(None, max_layers=2)
    except PerceptualError as exc:
        pytest.skip(str(exc))  # names `oldphoto data perception`


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, real_old_dir, perceptual_net) -> Path:
    """Tiny VAE_A / VAE_B runs (one step each) that the mapping stages load as their frozen VAEs."""
    from oldphoto.train.config import load_stage_config
    from oldphoto.train.trainer import train

    runs = tmp_path_factory.mktemp("runs")
    for stage in ("vae_b", "vae_a"):
        real_old = f"real_old={real_old_dir}"
        cfg = load_stage_config("tiny", stage, [real_old], runs_dir=runs)
        train(stage, cfg, runs / stage, steps=1, quiet=True)
    return runs


@pytest.fixture
def faces_dir(tmp_path):
    """Two "aligned faces" (crops of the astronaut) and the manifest `oldphoto data faces` would write."""
    import json

    from PIL import Image
    from skimage import data

    root = tmp_path / "faces"
    (root / "faces").mkdir(parents=True)
    img = data.astronaut()
    Image.fromarray(img[60:188, 160:288]).save(root / "faces" / "000000.jpg")
    Image.fromarray(img[40:200, 140:300]).save(root / "faces" / "000001.jpg")
    manifest = {"format": "oldphoto-faces-1", "kind": "synthetic", "seed": 0, "truncation": 0.7, "size": 128,
                "generator": "random-face==2021.7.21.1 (test)", "generator_sha256": "ab" * 32,
                "licence": "NON-COMMERCIAL test licence",
                "faces": [{"file": "faces/000000.jpg", "index": 0}, {"file": "faces/000001.jpg", "index": 1}]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root

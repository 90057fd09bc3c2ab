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

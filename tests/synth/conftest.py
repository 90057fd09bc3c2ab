import numpy as np
import pytest


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 128×128 crop of scikit-image's astronaut (CC0): real photo statistics, small for speed."""
    from pathlib import Path

    import cv2
    import skimage

    path = Path(skimage.__file__).parent / "data" / "astronaut.png"
    img = cv2.imread(str(path))[:, :, ::-1].astype(np.float32) / 255.0
    return np.ascontiguousarray(cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA))


@pytest.fixture
def gray_card() -> np.ndarray:
    return np.full((64, 64, 3), 0.5, np.float32)

"""BRISQUE (Mittal, Moorthy & Bovik 2012) through OpenCV's ``quality`` module.

The LIVE-trained SVR model files come from Debian ``opencv-data`` and ship in ``data/`` (see
``data/LICENSES.md``).  ``cv2.quality`` is only in ``opencv-contrib-python(-headless)`` below 5.0; without it
this module raises a clear error instead of silently returning something else.  Lower is better
(about 0–100 on natural photos).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np


class BrisqueUnavailable(RuntimeError):
    pass


@lru_cache(maxsize=1)
def _model_files() -> tuple[str, str]:
    base = resources.files("oldphoto.metrics").joinpath("data")
    model, rng = Path(str(base / "brisque_model_live.yml.gz")), Path(str(base / "brisque_range_live.yml"))
    for p in (model, rng):
        if not p.is_file():
            raise BrisqueUnavailable(f"BRISQUE model file missing: {p} (broken installation)")
    return str(model), str(rng)


@lru_cache(maxsize=1)
def _model():
    import cv2

    if not hasattr(cv2, "quality"):
        raise BrisqueUnavailable(
            "BRISQUE needs OpenCV's contrib 'quality' module: pip install 'opencv-contrib-python-headless<5'")
    model, rng = _model_files()
    return cv2.quality.QualityBRISQUE_create(model, rng)


def brisque(image: np.ndarray) -> float:
    """BRISQUE score of a float RGB (or gray) image in [0, 1]; lower is better."""
    arr = np.asarray(image, np.float32)
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[..., ::-1]  # OpenCV converts BGR -> gray internally
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if min(arr.shape[:2]) < 16:
        raise ValueError(f"BRISQUE needs an image of at least 16×16 pixels, got shape {arr.shape}")
    u8 = np.ascontiguousarray(np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8))
    return float(_model().compute(u8)[0])

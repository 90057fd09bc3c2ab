"""Face identity distance (dlib's 128-d face-recognition embedding, as in the face_recognition package).

``identity_distance(restored_face, original_face)``: Euclidean distance between the embeddings; dlib's
usual "same person" threshold is 0.6.  The models come from the ``face-recognition-models`` package
(CC0), located on disk because importing it fails on setuptools >= 81 (no ``pkg_resources``).
Faces are float RGB images in [0, 1]; each is aligned with the 5-point landmark model on the largest
detected face, or, if no face is detected (small crops), on the whole image taken as the face box.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from oldphoto.metrics.features import OptionalPackageMissing, package_dir

FACE_HINT = "pip install dlib-bin face-recognition-models  (oldphoto[faces])"
SAME_PERSON_THRESHOLD = 0.6


@lru_cache(maxsize=1)
def _models():
    try:
        import dlib
    except ImportError as exc:
        raise OptionalPackageMissing(f"face identity needs dlib: {FACE_HINT}") from exc
    folder = package_dir("face_recognition_models", FACE_HINT) / "models"
    files = {name: folder / f"{name}.dat" for name in
             ("shape_predictor_5_face_landmarks", "dlib_face_recognition_resnet_model_v1")}
    for path in files.values():
        if not Path(path).is_file():
            raise OptionalPackageMissing(f"{path} is missing: reinstall face-recognition-models")
    return (dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(files["shape_predictor_5_face_landmarks"])),
            dlib.face_recognition_model_v1(str(files["dlib_face_recognition_resnet_model_v1"])))


def face_embedding(face: np.ndarray, detect: bool = True,
                   box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """128-d embedding of the (largest) face in ``face`` (float RGB ``H×W×3`` in [0, 1]).

    ``box`` (x0, y0, x1, y1) skips detection: comparing several versions of one aligned face (clean,
    degraded, restored) with the same box keeps a detection failure on the degraded one from moving the
    landmarks, so only the faces' content differs.
    """
    import dlib

    detector, predictor, encoder = _models()
    arr = np.asarray(face)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB face image, got shape {arr.shape}")
    u8 = np.ascontiguousarray(np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8))
    h, w = u8.shape[:2]
    if box is not None:
        rect = dlib.rectangle(*(int(v) for v in box))
    else:
        boxes = list(detector(u8, 1)) if detect else []
        rect = max(boxes, key=lambda r: r.area()) if boxes else dlib.rectangle(0, 0, w - 1, h - 1)
    shape = predictor(u8, rect)
    return np.asarray(encoder.compute_face_descriptor(u8, shape), np.float64)


def identity_distance(restored_face: np.ndarray, original_face: np.ndarray, detect: bool = True,
                      box: tuple[int, int, int, int] | None = None) -> float:
    """Distance between the identities of two face images (lower = more alike; < 0.6 same person)."""
    a, b = face_embedding(restored_face, detect, box), face_embedding(original_face, detect, box)
    return float(np.linalg.norm(a - b))

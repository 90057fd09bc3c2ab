"""The product path: networks come from a weights folder through oldphoto.weights (no explicit modules)."""

import numpy as np
import pytest
from tiny_nets import smooth_image, tiny_models

from oldphoto.pipeline import DEFAULT_FIDELITY, Restorer


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    store = pytest.importorskip("oldphoto.weights.store")
    folder = tmp_path_factory.mktemp("weights")
    for role, module in tiny_models(faces=False).items():
        store.save_model(module, role, folder, source=f"test:{role}", sha256="0123456789abcdef" * 4)
    return folder


def test_restores_with_models_from_a_weights_folder(weights_dir):
    r = Restorer(weights=weights_dir, device="cpu", faces=None)
    assert not r.faces_enabled  # no face weights in the folder: faces off with a notice
    img = smooth_image(40, 56)
    mask = np.zeros((40, 56), bool)
    mask[20, 5:50] = True
    result = r.restore(img, mask=mask)
    assert result.image.shape == img.shape and result.path == "scratch"
    assert result.models["vae_a"] == "test:vae_a 0123456789ab"
    assert set(result.models) >= {"vae_a", "mapping_scratch", "vae_b_scratch", "detector"}
    # same networks as the modules that were saved: same output as passing them explicitly
    explicit = Restorer(models=tiny_models(faces=False), device="cpu", faces=False).restore(img, mask=mask)
    assert np.allclose(result.image, explicit.image, atol=1e-6)


def test_asking_for_faces_without_face_weights_fails(weights_dir):
    store = pytest.importorskip("oldphoto.weights.store")
    with pytest.raises(store.MissingWeightsError):
        Restorer(weights=weights_dir, device="cpu", faces=True)


def test_mask_threshold_comes_from_the_detector_card(tmp_path):
    import json
    import shutil

    store = pytest.importorskip("oldphoto.weights.store")
    folder = tmp_path / "w"
    folder.mkdir()
    for role, module in tiny_models(faces=False).items():
        store.save_model(module, role, folder, source=f"test:{role}", sha256="0123456789abcdef" * 4)
    assert Restorer(weights=folder, device="cpu", faces=False).mask_threshold() == 0.4  # no calibration
    card = json.loads((folder / "detector.json").read_text())
    card["threshold"] = 0.77
    (folder / "detector.json").write_text(json.dumps(card))
    assert store.find_card("detector", folder).calibration["threshold"] == 0.77
    assert Restorer(weights=folder, device="cpu", faces=False).mask_threshold() == 0.77
    assert Restorer(weights=folder, device="cpu", faces=False, mask_threshold=0.5).mask_threshold() == 0.5
    assert Restorer(weights=folder, device="cpu", faces=False, compat="official").mask_threshold() == 0.4
    # --scratches auto: no area rule by default (the defects' shapes decide), the user's when given,
    # the official 2e-4 in compat mode
    assert Restorer(weights=folder, device="cpu", faces=False).min_defect_area() == 0.0
    given = Restorer(weights=folder, device="cpu", faces=False, scratch_min_area=0.01)
    assert given.min_defect_area() == 0.01
    assert Restorer(weights=folder, device="cpu", faces=False, compat="official").min_defect_area() == 2e-4
    img = smooth_image(40, 64)
    assert Restorer(weights=folder, device="cpu", faces=False).restore(img).image.shape == img.shape
    # --fidelity: the user's, else the quality mapping card's measured value, else the default
    assert Restorer(weights=folder, device="cpu", faces=False).fidelity() == DEFAULT_FIDELITY
    card = json.loads((folder / "mapping_quality.json").read_text())
    (folder / "mapping_quality.json").write_text(json.dumps(card | {"fidelity": 0.8}))
    assert Restorer(weights=folder, device="cpu", faces=False).fidelity() == 0.8
    assert Restorer(weights=folder, device="cpu", faces=False, fidelity=0.1).fidelity() == 0.1
    assert Restorer(weights=folder, device="cpu", faces=False).restore(img).fidelity == 0.8
    # --diffusion-depth: the user's, else the card of the mapping that repairs on the path, else 0
    assert Restorer(weights=folder, device="cpu", faces=False).diffusion_depth("scratch") == 0.0
    card = json.loads((folder / "mapping_scratch.json").read_text())
    (folder / "mapping_scratch.json").write_text(json.dumps(card | {"diffusion_depth": 2.5}))
    assert Restorer(weights=folder, device="cpu", faces=False).diffusion_depth("scratch") == 2.5
    assert Restorer(weights=folder, device="cpu", faces=False).diffusion_depth("hr") == 0.0
    given = Restorer(weights=folder, device="cpu", faces=False, diffusion_depth=0)
    assert given.diffusion_depth("scratch") == 0
    # --texture-depth: the same rule; no texture fill without the user's or the card's value
    assert Restorer(weights=folder, device="cpu", faces=False).texture_depth("scratch") == 0.0
    (folder / "mapping_scratch.json").write_text(json.dumps(card | {"texture_depth": 12.0}))
    assert Restorer(weights=folder, device="cpu", faces=False).texture_depth("scratch") == 12.0
    assert Restorer(weights=folder, device="cpu", faces=False).texture_depth("hr") == 0.0
    assert Restorer(weights=folder, device="cpu", faces=False, texture_depth=6).texture_depth("scratch") == 6
    shutil.rmtree(folder)


def test_a_folder_missing_part_of_a_path_is_named_when_the_bundled_weights_fill_in(tmp_path, caplog):
    """A weights folder without mapping_quality ran the user's VAEs with the bundled mapping (the
    role-by-role fallback), trained on another latent space, without a word."""
    store = pytest.importorskip("oldphoto.weights.store")
    folder = tmp_path / "mine"
    models = tiny_models(faces=False)
    for role in ("vae_a", "vae_b_quality"):
        store.save_model(models[role], role, folder, source=f"test:{role}", sha256="0123456789abcdef" * 4)
    with caplog.at_level("WARNING"):
        r = Restorer(weights=folder, device="cpu", faces=False, scratches="off")
    notice = next(n for n in r.notices if "quality path mixes" in n)
    assert f"vae_a, vae_b_quality from {folder}" in notice and "mapping_quality from " in notice
    assert notice in caplog.text
    whole = tmp_path / "whole"
    for role, module in models.items():
        store.save_model(module, role, whole, source=f"test:{role}", sha256="0123456789abcdef" * 4)
    assert not any("mixes" in n for n in Restorer(weights=whole, device="cpu", faces=False).notices)


def test_a_weights_folder_that_is_not_there_is_an_error(tmp_path):
    """``weights=`` naming no folder (a typo, an unmounted disk) is refused as the command line refuses
    --weights, instead of every network silently coming from the bundled weights."""
    store = pytest.importorskip("oldphoto.weights.store")
    with pytest.raises(store.MissingWeightsError, match="is not a folder"):
        Restorer(weights=tmp_path / "wieghts", device="cpu", faces=False)
    (tmp_path / "file").write_text("")
    with pytest.raises(store.MissingWeightsError, match="is not a folder"):
        Restorer(weights=tmp_path / "file", device="cpu", faces=False)

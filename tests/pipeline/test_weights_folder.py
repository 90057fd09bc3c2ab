"""The product path: networks come from a weights folder through oldphoto.weights (no explicit modules)."""

import numpy as np
import pytest

from conftest import smooth_image, tiny_models
from oldphoto.pipeline import Restorer


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


def test_mask_threshold_and_scratch_area_come_from_the_detector_card(tmp_path):
    import json
    import shutil

    store = pytest.importorskip("oldphoto.weights.store")
    folder = tmp_path / "w"
    folder.mkdir()
    for role, module in tiny_models(faces=False).items():
        store.save_model(module, role, folder, source=f"test:{role}", sha256="0123456789abcdef" * 4)
    assert Restorer(weights=folder, device="cpu", faces=False).mask_threshold() == 0.4  # no calibration
    card = json.loads((folder / "detector.json").read_text())
    assert Restorer(weights=folder, device="cpu", faces=False).min_defect_area() == 2e-4
    card["threshold"] = 0.77
    card["scratch_min_area"] = 0.003
    (folder / "detector.json").write_text(json.dumps(card))
    assert store.find_card("detector", folder).threshold == 0.77
    assert store.find_card("detector", folder).scratch_min_area == 0.003
    assert Restorer(weights=folder, device="cpu", faces=False).mask_threshold() == 0.77
    assert Restorer(weights=folder, device="cpu", faces=False, mask_threshold=0.5).mask_threshold() == 0.5
    assert Restorer(weights=folder, device="cpu", faces=False, compat="official").mask_threshold() == 0.4
    # the scratch-path area follows the card too, unless the user gives one
    assert Restorer(weights=folder, device="cpu", faces=False).min_defect_area() == 0.003
    assert Restorer(weights=folder, device="cpu", faces=False, scratch_min_area=0.0).min_defect_area() == 0.0
    assert Restorer(weights=folder, device="cpu", faces=False, compat="official").min_defect_area() == 2e-4
    # a speck covering 1/640 of the photo: below the card's area, so the quality path
    img = smooth_image(40, 64)
    speck = np.zeros((40, 64), bool)
    speck[10, 10:14] = True
    r = Restorer(weights=folder, device="cpu", faces=False, scratches="auto")
    assert r.choose_path(speck, speck.shape) == "quality"
    speck[10, 10:30] = True  # 20/2560 = 0.0078: scratch path
    assert r.choose_path(speck, speck.shape) == "scratch"
    assert r.restore(img).image.shape == img.shape
    shutil.rmtree(folder)

"""The bundled small weights load and restore a photo with no further step."""

import json
from pathlib import Path

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
    assert set(result.models) >= {"vae_a", "mapping_quality"}
    # an unscratched photo: the quality path, its noise halved (measured 0.0127 -> 0.0062), its content kept
    from oldphoto.luma import luma
    from oldphoto.stages.fidelity import noise_sigma

    assert path.stem == "garden_girl_autochrome" and result.path == "quality"
    assert noise_sigma(luma(result.image)) < 0.6 * noise_sigma(luma(image))
    assert np.abs(result.image - image).mean() < 0.01


@pytest.mark.parametrize("role", ["face_256", "face_512"])
def test_no_face_model_is_bundled(role):
    # the face model trained on synthetic faces did not pass its acceptance (docs/faces.md): on held-out
    # faces its identity distance was not lower than the degraded input's, and on real faces it smoothed
    # rather than sharpened; faces therefore stay off by default
    assert not (bundled_weights_dir() / f"{role}.safetensors").exists()


# ---------------------------------------------------------------------------------------------------------
# the bundled detector on defect-free content it used to take for damage (issue: "a detector that knows
# real photos"); the fixtures are rendered here with Pillow's own font, so no system font is needed

def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without a scalable built-in font
        return ImageFont.load_default()


def _printed_text() -> np.ndarray:
    """A printed page (dark text on paper) above a shop sign (light letters on a dark board)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    im = Image.new("L", (384, 320), 232)
    draw = ImageDraw.Draw(im)
    words = ["PHOTOGRAPHIE", "Maison", "fondee", "en", "1887", "portraits", "&", "agrandissements", "rue",
             "de", "la", "Paix", "No.", "14", "Paris"]
    y = 8
    for size in (11, 12, 14, 16, 18, 20):
        line = " ".join(rng.choice(words, 5))
        draw.text((10, y), line, fill=25, font=_font(size))
        y += int(size * 1.5)
    draw.rectangle((12, 200, 372, 300), fill=40)
    draw.text((30, 215), "MOULIN ROUGE", fill=235, font=_font(40))
    draw.text((30, 265), "BAL  TOUS LES SOIRS", fill=220, font=_font(20))
    page = np.asarray(im, np.float32) / 255.0
    return np.repeat(page[..., None], 3, axis=2)


def _clean_sky() -> np.ndarray:
    """A blue sky, lighter to the horizon, with soft clouds and a little grain."""
    import cv2

    rng = np.random.default_rng(1)
    h, w = 320, 384
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = np.array([0.35, 0.55, 0.85], np.float32) * (1 - t) + np.array([0.75, 0.82, 0.9], np.float32) * t
    clouds = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 18)
    clouds = np.clip((clouds / clouds.std() - 0.3) * 0.6, 0, 1)[..., None]
    sky = sky * (1 - clouds) + 0.97 * clouds
    sky = sky + rng.normal(0, 0.01, (h, w, 1)).astype(np.float32)
    return np.clip(sky * np.ones((h, w, 3), np.float32), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def bundled_detect():
    """The bundled detector as the pipeline runs it: (raw probabilities >= the card's threshold, the
    defects left after find_defects' shape rules, i.e. what would be repaired)."""
    import torch

    from oldphoto import Restorer
    from oldphoto.stages.defects import DefectStage

    folder = bundled_weights_dir()
    net = load_model("detector", weights_dir=folder)
    restorer = Restorer(weights=folder, faces=False, device="cpu")
    stage = DefectStage(net, restorer.mask_threshold())

    def detect(image):
        with torch.no_grad():
            raw = stage(image)
        return raw, restorer.detect(image)

    return detect


# Measured: the bundled detector flags 1.3 % of the printed page raw (parts of the sign's razor-sharp white
# letters on black; soft letters of a real photograph fare better) and 0.24 % after the shape rules; the
# previous bundled detector flagged 9.4 % raw.  So the raw bound for text (2 %) is a guard against that
# regression, not the 0.5 % held-out bar, which clean photographs meet (0.31 % on average).
RAW_BOUND = {"printed_text": 0.02, "clean_sky": 1e-3}


@pytest.mark.parametrize("scene", ["printed_text", "clean_sky"])
def test_bundled_detector_flags_almost_nothing_on_defect_free_content(scene, bundled_detect):
    image = {"printed_text": _printed_text, "clean_sky": _clean_sky}[scene]()
    raw, defects = bundled_detect(image)
    assert raw.mean() < RAW_BOUND[scene], f"{scene}: {100 * raw.mean():.2f} % of the pixels flagged"
    assert defects.area < 5e-3, f"{scene}: {100 * defects.area:.2f} % would be repaired"
    assert not defects.worth_repairing(), f"{scene}: --scratches auto would repair it"


def test_auto_leaves_dark_lines_of_the_scene_alone(bundled_detect):
    """scikit-image's photo of handwriting: the detector takes its ink strokes and ruled lines for
    scratches, 5.4 short sides of them, all dark.  Dark strokes are no evidence of damage (a print's
    scratches take emulsion away and show bright paper), so auto leaves the ink as it is."""
    import skimage.data

    page = np.repeat(skimage.data.text()[..., None], 3, axis=2).astype(np.float32) / 255.0
    _, defects = bundled_detect(page)
    assert defects.stroke_length > 2.0 and defects.dark_length == pytest.approx(defects.stroke_length)
    assert not defects.worth_repairing()


# the real old photos in examples/real_old: which of them carry scratches, as a person sees them
SCRATCHED = {"scratched_boy_portrait", "scratched_girl_cigarette"}


def test_auto_repairs_the_scratched_real_photos_and_leaves_the_others_alone(real_old_dir, bundled_detect):
    from oldphoto.io import read_photo

    solvay = Path(__file__).resolve().parents[2] / "examples" / "solvay_1927.jpg"  # no scratches either
    for path in [*sorted(real_old_dir.glob("*.png")), solvay]:
        _, defects = bundled_detect(read_photo(path).pixels)
        assert defects.worth_repairing() == (path.stem in SCRATCHED), (
            f"{path.stem}: strokes add up to {defects.stroke_length:.2f} short sides, blobs {defects.blobs}")


def test_a_lower_mask_threshold_repairs_at_least_what_the_calibrated_one_does(real_old_dir):
    """Lower is more sensitive: at 0.3 the scratched boy's cracks joined scene lines into regions judged
    scene content, 1.3 % of him was found and auto repaired nothing (2.9 % at the calibrated 0.61)."""
    from oldphoto import Restorer
    from oldphoto.io import read_photo

    folder = bundled_weights_dir()
    for name in sorted(SCRATCHED):
        pixels = read_photo(real_old_dir / f"{name}.png").pixels
        restorer = Restorer(weights=folder, faces=False, device="cpu")
        calibrated = restorer.detect(pixels)
        for threshold in (0.4, 0.3):
            lower = restorer.with_options(mask_threshold=threshold).detect(pixels)
            assert lower.worth_repairing() and lower.evidence >= calibrated.evidence, (name, threshold)
            assert (lower.mask | ~calibrated.mask).all(), (name, threshold)


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


# ---------------------------------------------------------------------------------------------------------
# golden figures: the bundled weights on fixed held-out crops (scikit-image's held-out photos, 128² crops,
# degraded at fixed seeds), through the Restorer users run.  Recorded 2026-11-30 (mean PSNR / SSIM):
#   unstructured: input 23.264 / 0.5769, restore 23.913 / 0.6763, quality networks alone 24.133 / 0.7291
#   mixed:        input 16.768 / 0.3636, restore 17.881 / 0.5239, quality networks alone 17.600 / 0.6093
# The floors sit a little below (float differences across torch versions and CPUs); new bundled weights
# that restore worse fail here, better ones raise the floors.
GOLDEN_FLOOR = {  # kind -> (restore PSNR, SSIM, networks PSNR, SSIM)
    "unstructured": (23.86, 0.671, 24.08, 0.724),
    "mixed": (17.83, 0.519, 17.55, 0.604),
}


@pytest.fixture(scope="module")
def golden_cases():
    from oldphoto.train.evaluate import heldout_cases

    cases, used = heldout_cases(["skimage:heldout"], size=128, crops=3, max_side=256)
    assert used == "skimage:heldout" and len(cases) == 12
    return cases


@pytest.mark.parametrize("kind", ["unstructured", "mixed"])
def test_bundled_weights_hold_their_golden_figures_and_are_never_worse(kind, golden_cases):
    from oldphoto import Restorer
    from oldphoto.metrics.fullref import psnr, ssim

    restorer = Restorer(weights=bundled_weights_dir(), faces=False, device="cpu")
    cases = [c for c in golden_cases if c.kind == kind]
    restored = [restorer.restore(c.degraded).image for c in cases]
    networks = [restorer.networks(c.degraded, "quality") for c in cases]
    for c, out in zip(cases, restored, strict=True):  # never worse, crop by crop
        assert psnr(out, c.clean) >= psnr(c.degraded, c.clean) - 0.01, c.name
        assert ssim(out, c.clean) >= ssim(c.degraded, c.clean) - 0.001, c.name
    figures = (np.mean([psnr(o, c.clean) for o, c in zip(restored, cases, strict=True)]),
               np.mean([ssim(o, c.clean) for o, c in zip(restored, cases, strict=True)]),
               np.mean([psnr(o, c.clean) for o, c in zip(networks, cases, strict=True)]),
               np.mean([ssim(o, c.clean) for o, c in zip(networks, cases, strict=True)]))
    for name, got, floor in zip(("restore PSNR", "restore SSIM", "networks PSNR", "networks SSIM"), figures,
                                GOLDEN_FLOOR[kind], strict=True):
        assert got >= floor, f"{kind} {name}: {got:.4f} below the recorded floor {floor}"


def test_bundled_denoiser_removes_grain_only_when_asked(real_old_dir):
    """--remove-grain's bundled denoiser: the grain of a gray print goes (far more than with the default),
    its levels and content stay; without the option the network is not used."""
    from oldphoto import Restorer
    from oldphoto.luma import luma

    card = json.loads((bundled_weights_dir() / "denoiser.json").read_text())
    assert card["architecture"] == "luma_denoiser" and card["steps"] > 10000
    import cv2

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    scene = 0.45 + 0.25 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    # film grain: noise blurred by the emulsion and the scan, so the finest scale, where the noise level
    # is read, sees little of it (non-local means at that level leaves most of it)
    grain = cv2.GaussianBlur(rng.normal(0, 1, scene.shape).astype(np.float32), (0, 0), 0.8)
    photo = np.repeat(np.clip(scene + 0.025 * grain / grain.std(), 0, 1)[..., None], 3, axis=2)
    options = {"weights": bundled_weights_dir(), "faces": False, "scratches": "off", "device": "cpu"}
    default = Restorer(**options).restore(photo)
    smooth = Restorer(**options, remove_grain=True).restore(photo)
    assert "denoiser" in smooth.models and "denoiser" not in default.models

    def error(result):
        return float(np.sqrt(np.mean((luma(result.image) - scene) ** 2)))

    assert error(smooth) < 0.7 * error(default)  # measured 0.014 against 0.022 (input 0.025)
    assert abs(float(luma(smooth.image).mean()) - float(scene.mean())) < 0.01

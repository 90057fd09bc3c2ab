"""End to end on the real old photos in examples/real_old (tiny random networks, real dlib)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_nets import tiny_models

from oldphoto.masks import dilate
from oldphoto.pipeline import Restorer
from oldphoto.stages.colour import photo_colour
from oldphoto.stages.repair import reach
from oldphoto.stages.tone import fit_tone, luma

PORTRAITS = {"porter_autochrome", "portrait_boy_glasses", "scratched_boy_portrait",
             "scratched_girl_cigarette"}


class ThinDarkLineDetector(torch.nn.Module):
    """Stand-in detector (a random one marks everything): defects where a pixel is much darker than its
    3×3 neighbourhood's maximum, i.e. thin dark scratches and dust, a small fraction of a photo."""

    def forward(self, x):
        local_max = torch.nn.functional.max_pool2d(x, 3, stride=1, padding=1)
        return (local_max - x - 0.5) * 40.0


class PassThroughVAE(torch.nn.Module):
    """Stand-in VAE honouring the contract (encoder to H/4×W/4, decoder back) that reproduces its input,
    so faces and defects survive stage 1 and the test can check geometry on real photos."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.PixelUnshuffle(4)
        self.decoder = torch.nn.PixelShuffle(4)


class PassThroughMapping(torch.nn.Module):
    def forward(self, z, mask=None):
        return z


@pytest.fixture(scope="module")
def restorer():
    pytest.importorskip("dlib", reason="dlib not installed: pip install 'oldphoto[faces]' (as .ci/run does)")
    models = dict(tiny_models(), detector=ThinDarkLineDetector(), vae_a=PassThroughVAE(),
                  vae_b_quality=PassThroughVAE(), vae_b_scratch=PassThroughVAE(),
                  mapping_quality=PassThroughMapping(), mapping_scratch=PassThroughMapping(),
                  mapping_hr=PassThroughMapping())
    # one Restorer for every photo: models are loaded once and reused; tiles of 512 exercise tiling
    # colour="network": this checks geometry with pass-through nets (the colour stage has its own tests)
    # fidelity 0: the output is the networks' alone, so the pass-through can be checked exactly
    return Restorer(models=models, device="cpu", tile=512, colour="network", fidelity=0.0)


@pytest.mark.slow
def test_every_real_old_photo(real_old_dir, restorer):
    photos = sorted(real_old_dir.glob("*.png"))
    assert len(photos) >= 6
    for path in photos:
        with Image.open(path) as im:
            img = np.asarray(im.convert("RGB")).astype(np.float32) / 255
        result = restorer.restore(img)
        assert result.mask is None or result.mask.mean() < 0.2, path.name
        assert result.image.shape == img.shape, path.name
        assert result.image.dtype == np.float32 and np.isfinite(result.image).all()
        assert 0.0 <= result.image.min() and result.image.max() <= 1.0
        assert {"defects", "restore", "faces"} <= set(result.timings) <= {"defects", "restore", "repair",
                                                                          "faces"}
        assert result.mask is None or result.mask.shape == img.shape[:2]
        # stage 1 passes the photo through: no shift, crop or padding leak (defects are whitened, and their
        # repair is feathered out to its reach)
        keep = np.ones(img.shape[:2], bool) if result.mask is None else ~dilate(result.mask, reach())
        tone = fit_tone(img)
        # gray photos are made exactly gray; toned ones move their chroma towards their tone
        expected = img if tone is None else tone.apply(luma(img)) if tone.gray else photo_colour(img, img,
                                                                                                 tone=tone)
        # (2e-4, a twentieth of 1/255: the level fit of a pass-through output adds float32 rounding,
        # which differs a little between CPUs' vector units, nothing more)
        assert np.abs(result.stage1 - expected)[keep].max() < 2e-4, path.name
        if path.stem in PORTRAITS:
            assert len(result.faces) >= 1 and all(f.enhanced for f in result.faces), path.name
            assert np.abs(result.image - result.stage1).max() > 0.05  # the (tiny) generator replaced them
        else:
            assert np.array_equal(result.image, result.stage1) == (not result.faces)
        if tone is not None and tone.gray:
            out = result.image
            assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert len(restorer._loaded) >= 4  # loaded once, reused across photos

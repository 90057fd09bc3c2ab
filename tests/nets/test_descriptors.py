"""The architecture descriptors: every role has one, each size requirement is what its network needs, the
padding helpers and tile planning use them, key signatures tell every official layout apart."""

from __future__ import annotations

import pytest
import torch

from oldphoto.nets import architecture, descriptors
from oldphoto.nets.descriptors import DESCRIPTORS, SizeRequirements, descriptor, photo_multiple, role_for
from oldphoto.stages.tiling import pad_to_multiple

# small configurations (fast on CPU); the size requirements do not depend on the widths
SMALL = {
    "vae": {"width": 8},
    "mapping_quality": {"latent_channels": 8, "width": 16, "n_blocks": 1},
    "mapping_scratch": {"latent_channels": 8, "width": 16, "inter_channels": 8, "n_blocks": 1,
                        "nl_res_blocks": 1},
    "mapping_patch_attention": {"latent_channels": 8, "width": 16, "n_res": 1},
    "detector": {"width": 4},
    "face_generator": {"ngf": 2, "spade_hidden": 4, "size": 64, "spectral_norm": False},
}


def _forward(name: str, side: int) -> torch.Tensor:
    """One forward pass of the small ``name`` network on a ``side``² input in its own pixels."""
    net = architecture(name)(**SMALL[name]).eval()
    with torch.no_grad():
        if name == "vae":
            return net.decoder(net.encoder(torch.zeros(1, 3, side, side)))
        if name == "detector":
            return net(torch.zeros(1, 1, side, side))
        if name == "face_generator":
            return net(torch.zeros(1, 3, side, side))
        z = torch.zeros(1, 8, side, side)
        if name == "mapping_quality":
            return net(z)
        return net(z, torch.zeros(1, 1, side * 4, side * 4))


def test_every_role_has_a_descriptor_of_its_network():
    from oldphoto.pipeline import DENOISER_ROLE, FACE_ROLES, PATH_ROLES, UPSCALE_ROLE
    from oldphoto.weights.store import OFFICIAL_SOURCES, ROLES

    used = {r for roles in PATH_ROLES.values() for r in roles} | {"detector", *FACE_ROLES.values()}
    assert used == set(OFFICIAL_SOURCES)
    # the upscaler and --remove-grain's denoiser are not in the official release
    assert set(ROLES) == used | {UPSCALE_ROLE, DENOISER_ROLE}
    for role_name, arch in ROLES.items():
        d = descriptors.architecture_of(role_name)
        # official checkpoints are recognised by their keys (the importer); the upscaler is converted
        assert d.name == arch and d.size is not None and bool(d.signature) == (role_name in OFFICIAL_SOURCES)
        assert role_name in [r.name for r in d.roles]
    for d in DESCRIPTORS:  # each descriptor names its class, whose ARCH_NAME is the descriptor's name
        assert d.network_class().ARCH_NAME == d.name
    with pytest.raises(KeyError, match="known roles"):
        descriptors.role("face_1024")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_size_requirement_is_what_the_network_needs(name):
    size = descriptor(name).size
    assert size is not None
    if size.square:  # the face generator: exactly its configured size, a multiple of the descriptor's
        side = SMALL[name]["size"]
        assert size.fits(side, side) and _forward(name, side).shape[-1] == side
        with pytest.raises(ValueError, match="multiple of 32"):
            architecture(name)(**{**SMALL[name], "size": side + size.multiple // 2})
        return
    for side in (size.padded(size.minimum), size.padded(size.minimum + 1)):
        assert size.fits(side, side)
        assert _forward(name, side).shape[-2:] == (side, side)
    if size.multiple > 1 and name in ("vae", "detector"):  # these networks check their input's size
        with pytest.raises(ValueError, match="multiple"):
            _forward(name, size.padded(size.minimum) + size.multiple // 2)
    if size.minimum > 1:  # below the minimum the deepest level is too small
        with pytest.raises((ValueError, RuntimeError)):
            _forward(name, size.minimum - size.multiple if size.minimum > size.multiple else 1)


def test_size_requirement_helpers():
    req = SizeRequirements(multiple=16, minimum=32)
    assert req.padded(1) == 32 and req.padded(33) == 48 and req.padded(48) == 48
    assert req.fits(32, 48) and not req.fits(16, 32) and not req.fits(40, 48)
    assert not SizeRequirements(multiple=32, square=True).fits(64, 96)


def test_padding_and_tiles_use_the_descriptors():
    from oldphoto.nets.vae import VAE
    from oldphoto.stages.defects import DETECTOR_MULTIPLE
    from oldphoto.stages.restore import PATH_MULTIPLE, PATH_ROLES

    assert VAE.pad_multiple == descriptor("vae").size.multiple == 4
    assert DETECTOR_MULTIPLE == descriptor("detector").size.multiple == 16
    assert PATH_MULTIPLE == {"quality": 4, "scratch": 16, "hr": 16}
    for path, roles in PATH_ROLES.items():
        assert PATH_MULTIPLE[path] == photo_multiple(roles)
    # the padding helper's default minimum side covers every network's minimum (in photo pixels)
    default_min = pad_to_multiple.__defaults__[1]
    for d in DESCRIPTORS:
        if d.roles and not d.size.square:
            assert d.size.minimum * d.input_scale <= default_min, d.name
    # a photo padded to the quality path's multiple goes through the VAE
    padded, _ = pad_to_multiple(torch.zeros(1, 3, 70, 83), PATH_MULTIPLE["quality"])
    vae = VAE(width=8).eval()
    with torch.no_grad():
        assert vae.decoder(vae.encoder(padded)).shape == padded.shape


def test_signatures_tell_every_official_layout_apart():
    for d in DESCRIPTORS:
        if not d.signature:
            continue
        for config in ({}, SMALL[d.name]):
            with torch.device("meta"):
                keys = list(d.network_class()(**config).state_dict())
            matching = [other.name for other in DESCRIPTORS if other.recognises(keys)]
            assert matching == [d.name], (d.name, config, matching)


def test_role_follows_fixed_config():
    assert role_for("face_generator", size=256) == "face_256"
    assert role_for("face_generator", size=512, ngf=64) == "face_512"
    assert role_for("detector") == "detector"
    with pytest.raises(KeyError, match="face_256"):
        role_for("face_generator", size=1024)


def test_face_generator_cannot_be_saved_under_the_other_size(tmp_path):
    from oldphoto.weights import WeightsError, save_model

    net = architecture("face_generator")(**{**SMALL["face_generator"], "size": 512})
    with pytest.raises(WeightsError, match="its role is 'face_512'"):
        save_model(net, "face_256", tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written
    assert save_model(net, "face_512", tmp_path).config["size"] == 512

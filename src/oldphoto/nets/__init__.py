"""Pure ``nn.Module`` architectures: no I/O, no device logic, widths and depths as constructor arguments.

Every network class follows one protocol so that weights files can carry their configuration:

* ``ARCH_NAME``: a stable string stored in weight cards (the key of :data:`ARCHITECTURES`);
* ``__init__(**config)``: keyword arguments only, JSON-serialisable; ``self.config`` keeps them;
* ``config_from_state_dict(sd)`` (classmethod): the constructor arguments derived from tensor shapes
  of an official-layout state dict, so that importing never needs a guess;
* ``state_dict()`` keys equal the official checkpoint keys (spectral norm folded for the face generator).
"""

from __future__ import annotations

import importlib

# ARCH_NAME -> "module:Class"; resolved lazily so importing one network does not import all of them.
_ARCHITECTURES = {
    "vae": "oldphoto.nets.vae:VAE",
    "mapping_quality": "oldphoto.nets.mapping:QualityMapping",
    "mapping_scratch": "oldphoto.nets.mapping:ScratchMapping",
    "mapping_patch_attention": "oldphoto.nets.mapping:PatchAttentionMapping",
    "detector": "oldphoto.nets.detector:DefectDetector",
    "face_generator": "oldphoto.nets.face:FaceGenerator",
    "multiscale_discriminator": "oldphoto.nets.discriminators:MultiscaleDiscriminator",
    "latent_discriminator": "oldphoto.nets.discriminators:LatentDiscriminator",
}


def architecture(name: str) -> type:
    """The network class registered under ``name`` (raises ``KeyError`` with the known names)."""
    try:
        target = _ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(sorted(_ARCHITECTURES))}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def architecture_names() -> list[str]:
    return sorted(_ARCHITECTURES)


def width_ratio(module: object) -> float:
    """The module's ``width`` relative to its class's default (the official size); 1.0 when it has none.

    Feature maps, and so the working memory per pixel, grow with the width: the pipeline scales the
    memory figures measured at the official sizes by this ratio to size tiles for the networks loaded.
    """
    import inspect

    config = getattr(module, "config", None)
    if not isinstance(config, dict) or "width" not in config:
        return 1.0
    default = inspect.signature(type(module).__init__).parameters.get("width")
    if default is None or not isinstance(default.default, int) or default.default <= 0:
        return 1.0
    return float(config["width"]) / default.default

"""Pure ``nn.Module`` architectures: no I/O, no device logic, widths and depths as constructor arguments.

Every network class follows one protocol so that weights files can carry their configuration:

* ``ARCH_NAME``: a stable string stored in weight cards (the name of its descriptor in
  :mod:`oldphoto.nets.descriptors`);
* ``__init__(**config)``: keyword arguments only, JSON-serialisable; ``self.config`` keeps them;
* ``config_from_state_dict(sd)`` (classmethod): the constructor arguments derived from tensor shapes
  of an official-layout state dict, so that importing never needs a guess;
* ``state_dict()`` keys equal the official checkpoint keys (spectral norm folded for the face generator).
"""

from __future__ import annotations

import functools

from oldphoto.nets.descriptors import DESCRIPTORS, descriptor


def architecture(name: str) -> type:
    """The network class of architecture ``name`` (raises ``KeyError`` with the known names).  Each class
    is imported on first use, so that importing one network does not import all of them."""
    return descriptor(name).network_class()


def architecture_names() -> list[str]:
    return sorted(d.name for d in DESCRIPTORS)


def _first_width(module: object) -> int | None:
    """Output channels of the module's first convolution: its features at the input's resolution."""
    from torch import nn

    for sub in module.modules():  # type: ignore[attr-defined]
        if isinstance(sub, nn.Conv2d | nn.ConvTranspose2d):
            return int(sub.out_channels)
    return None


@functools.cache
def _official_width(cls: type) -> int | None:
    """:func:`_first_width` of ``cls`` at its default (official) size, built on the meta device."""
    import torch

    try:
        with torch.device("meta"):
            return _first_width(cls())
    except Exception:  # a class that cannot be built with defaults has no official size to compare with
        return None


def width_ratio(module: object) -> float:
    """Channels of the module's full-resolution features relative to its class at the official size
    (1.0 when unknown).

    Feature maps, and so the working memory per pixel, grow with the channel count: the pipeline scales
    the memory figures measured at the official sizes by this ratio to size tiles for the networks
    actually loaded (read from the loaded convolutions, not from a configuration).
    """
    width, official = _first_width(module), _official_width(type(module))
    if not width or not official:
        return 1.0
    return width / official

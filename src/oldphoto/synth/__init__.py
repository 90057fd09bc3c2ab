"""Old-photo degradation synthesis and the training-photo corpus (torch-free: numpy, OpenCV, PIL, SciPy).

Trainers use::

    from oldphoto.synth import Corpus, DegradeConfig, degrade, random_crop, sample_pair

    corpus = Corpus("assets/patches")            # or a photo corpus from `oldphoto data build`
    train = corpus.clean("train")                # lazily decoded float32 RGB images
    rng = np.random.default_rng(seed)
    sample = sample_pair(train, rng, size=256)   # -> Degraded(degraded, clean, mask, ops)
"""


from __future__ import annotations

import importlib
from typing import Any

# imported on first use, so that ``oldphoto --help`` (which imports oldphoto.synth.cli) stays fast
_EXPORTS = {
    "Corpus": "corpus", "CorpusError": "corpus", "ImageSet": "corpus", "load_image": "corpus",
    "random_crop": "corpus", "sample_pair": "corpus",
    "KINDS": "degrade", "DegradeConfig": "degrade", "Degraded": "degrade", "degrade": "degrade",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"oldphoto.synth.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'oldphoto.synth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__

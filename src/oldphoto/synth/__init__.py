"""Old-photo degradation synthesis and the training-photo corpus (torch-free: numpy, OpenCV, PIL, SciPy).

Trainers use::

    from oldphoto.synth import Corpus, DegradeConfig, degrade, random_crop, sample_pair

    corpus = Corpus("assets/patches")            # or a photo corpus from `oldphoto data build`
    train = corpus.clean("train")                # lazily decoded float32 RGB images
    rng = np.random.default_rng(seed)
    sample = sample_pair(train, rng, size=256)   # -> Degraded(degraded, clean, mask, ops)
"""


from __future__ import annotations

from oldphoto.lazy import lazy_exports

# The function ``degrade`` shares its name with its module: once anything imports the module
# ``oldphoto.synth.degrade``, the import system binds that name on this package to the module, and a
# lazy attribute would then hand out the module instead of the function.  So that module is imported
# here, eagerly; the corpus is imported on first use, to keep ``oldphoto --help`` fast.
from oldphoto.synth.degrade import KINDS, DegradeConfig, Degraded, degrade  # noqa: E402, F401

_EXPORTS = {
    "Corpus": "corpus", "CorpusError": "corpus", "ImageSet": "corpus", "load_image": "corpus",
    "random_crop": "corpus", "sample_pair": "corpus",
}

_EAGER = ("KINDS", "DegradeConfig", "Degraded", "degrade")

__all__ = sorted([*_EXPORTS, *_EAGER])

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, eager=_EAGER)

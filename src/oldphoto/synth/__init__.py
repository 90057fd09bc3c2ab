"""Old-photo degradation synthesis and the training-photo corpus (torch-free: numpy, OpenCV, PIL, SciPy).

Trainers use::

    from oldphoto.synth import Corpus, DegradeConfig, degrade, random_crop, sample_pair

    corpus = Corpus("assets/patches")            # or a photo corpus from `oldphoto data build`
    train = corpus.clean("train")                # lazily decoded float32 RGB images
    rng = np.random.default_rng(seed)
    sample = sample_pair(train, rng, size=256)   # -> Degraded(degraded, clean, mask, ops)
"""

from oldphoto.synth.corpus import Corpus, CorpusError, ImageSet, load_image, random_crop, sample_pair
from oldphoto.synth.degrade import KINDS, DegradeConfig, Degraded, degrade

__all__ = ["KINDS", "Corpus", "CorpusError", "DegradeConfig", "Degraded", "ImageSet", "degrade", "load_image",
           "random_crop", "sample_pair"]

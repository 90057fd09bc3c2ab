"""Network weights: the weights store (cards + safetensors) and the official-checkpoint importer.

The API is re-exported lazily so that ``import oldphoto.weights.cli`` (done for every ``oldphoto``
command) does not import torch.
"""

from __future__ import annotations

from oldphoto.lazy import lazy_exports

_EXPORTS = {
    "Card": "store", "WeightsError": "store", "MissingWeightsError": "store", "ROLES": "store",
    "OFFICIAL_SOURCES": "store", "default_weights_dir": "store", "bundled_weights_dir": "store",
    "load_model": "store", "find_card": "store", "installed": "store", "save_model": "store", "scan": "store",
    "install_hint": "store",
    "import_checkpoints": "importer", "convert": "importer", "read_checkpoint": "importer",
    "ImportResult": "importer", "download_weights": "download", "DownloadError": "fetch",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

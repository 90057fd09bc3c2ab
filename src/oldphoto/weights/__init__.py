"""Network weights: the weights store (cards + safetensors) and the official-checkpoint importer.

The API is re-exported lazily so that ``import oldphoto.weights.cli`` (done for every ``oldphoto``
command) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Card": "store", "WeightsError": "store", "MissingWeightsError": "store", "ROLES": "store",
    "OFFICIAL_SOURCES": "store", "default_weights_dir": "store", "bundled_weights_dir": "store",
    "load_model": "store", "find_card": "store", "installed": "store", "save_model": "store", "scan": "store",
    "import_checkpoints": "importer", "convert": "importer", "read_checkpoint": "importer",
    "ImportResult": "importer", "download_weights": "download", "DownloadError": "fetch",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"oldphoto.weights.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'oldphoto.weights' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__

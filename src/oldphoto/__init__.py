"""oldphoto: restore old photographs.

Public API: ``Restorer``, ``RestoreOptions``, ``Result`` (imported lazily so that ``import oldphoto``
and ``oldphoto --help`` do not pay for torch).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Restorer", "RestoreOptions", "Result", "__version__"]


def __getattr__(name: str):
    if name in ("Restorer", "RestoreOptions", "Result"):
        from oldphoto import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'oldphoto' has no attribute {name!r}")

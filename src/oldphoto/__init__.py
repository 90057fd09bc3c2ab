"""oldphoto: restore old photographs.

Public API: ``Restorer``, ``RestoreOptions``, ``Result`` (imported lazily so that ``import oldphoto``
and ``oldphoto --help`` do not pay for torch).
"""

from __future__ import annotations

from oldphoto.lazy import lazy_exports

__version__ = "0.1.0"

__all__ = ["Restorer", "RestoreOptions", "Result", "__version__"]

__getattr__, __dir__ = lazy_exports(__name__, {"Restorer": "pipeline", "RestoreOptions": "pipeline",
                                               "Result": "pipeline"}, eager=("__version__",))

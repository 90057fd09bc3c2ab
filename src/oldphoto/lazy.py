"""Lazy package exports: a package names what it re-exports and from which of its modules, and the module
is imported on first use, so that ``import oldphoto`` and ``oldphoto --help`` do not pay for torch.

    __getattr__, __dir__ = lazy_exports(__name__, {"Restorer": "pipeline"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str], eager: tuple[str, ...] = ()
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``: ``exports`` maps each name to
    the submodule (relative to ``package``) that defines it; ``eager`` names the package has imported
    itself (they are listed by ``dir()``)."""
    names = sorted([*exports, *eager])

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__

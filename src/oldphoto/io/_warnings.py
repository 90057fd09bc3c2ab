"""One lock for every ``warnings.catch_warnings`` block around photo reading.

``catch_warnings`` swaps process-wide state (the filters, and with ``record`` the function that shows a
warning) and puts it back on exit; before Python 3.14 it is not thread-safe.  Two threads inside it at
once can leave the other's state in place for good: if the first to enter leaves first, the second
restores the first's recording hook on its way out, and every later warning of the process goes to a
list nobody reads.  The web server reads an upload's header while its worker reads photos, so the
blocks of :mod:`oldphoto.io` and of its callers that read photos all take this (re-entrant) lock.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator

_LOCK = threading.RLock()


@contextlib.contextmanager
def guarded_warnings(record: bool = False) -> Iterator[list[warnings.WarningMessage] | None]:
    """``warnings.catch_warnings(record=record)`` under the process-wide lock."""
    with _LOCK, warnings.catch_warnings(record=record) as caught:
        yield caught

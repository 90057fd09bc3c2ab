import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OLDPHOTO_SHARED", ROOT.parent / "shared")).resolve()
CONFORMANCE = SHARED / "conformance"
REAL_OLD = SHARED / "data" / "real_old"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found at {SHARED} (set OLDPHOTO_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def conformance_dir(shared_dir) -> Path:
    if str(CONFORMANCE) not in sys.path:
        sys.path.insert(0, str(CONFORMANCE))
    return CONFORMANCE


@pytest.fixture(scope="session")
def real_old_dir(shared_dir) -> Path:
    return REAL_OLD

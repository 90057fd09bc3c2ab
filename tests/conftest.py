"""Fixtures shared by every test folder.  Everything a test needs lives in the repository: the
conformance fixtures in tests/data/conformance, the real old photos in examples/real_old."""

import lzma
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT / "tests" / "data" / "conformance"
REAL_OLD = ROOT / "examples" / "real_old"


@pytest.fixture(scope="session")
def conformance_dir(tmp_path_factory) -> Path:
    """The conformance fixtures (manifest.json, keys/, cases/) with the cases unpacked from their .xz
    files; ``standin`` is importable."""
    if str(CONFORMANCE) not in sys.path:
        sys.path.insert(0, str(CONFORMANCE))
    out = tmp_path_factory.mktemp("conformance")
    shutil.copy2(CONFORMANCE / "manifest.json", out / "manifest.json")
    shutil.copytree(CONFORMANCE / "keys", out / "keys")
    (out / "cases").mkdir()
    for packed in sorted((CONFORMANCE / "cases").glob("*.safetensors.xz")):
        (out / "cases" / packed.stem).write_bytes(lzma.decompress(packed.read_bytes()))
    return out


@pytest.fixture(scope="session")
def real_old_dir() -> Path:
    """Real old photos from the official project's test set ($OLDPHOTO_REAL_OLD overrides)."""
    folder = Path(os.environ.get("OLDPHOTO_REAL_OLD", REAL_OLD))
    if not any(folder.glob("*.png")):
        pytest.fail(f"no real old photos (*.png) in {folder}")
    return folder


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With OLDPHOTO_NO_SKIP=1 (set by .ci/run, which installs every optional asset) a skipped test
    fails, so that CI cannot pass while quietly not running the tests of an optional feature."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("OLDPHOTO_NO_SKIP") == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped although OLDPHOTO_NO_SKIP=1: {reason}"


@pytest.fixture
def mps_standin():
    """A context manager that makes the meta device behave like Apple MPS where it matters to code that
    cannot be run on a Mac here: a float64 tensor on the device is refused (MPS has no float64), so is an
    operator older PyTorch lacks there, and a copy to the host gives zeros of the right shape (meta
    tensors hold no values).  Code run under it on meta tensors shows whether it keeps such work off
    the device."""
    import torch
    from torch.utils import _pytree as pytree
    from torch.utils._python_dispatch import TorchDispatchMode

    # operators MPS lacks in some supported PyTorch versions (antialiased bilinear: until 2025)
    missing = {torch.ops.aten._upsample_bilinear2d_aa}

    class MPSStandIn(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.ops.aten._to_copy.default:
                src, device = args[0], kwargs.get("device")
                if src.device.type == "meta" and device is not None and torch.device(device).type == "cpu":
                    return torch.zeros(src.shape, dtype=kwargs.get("dtype") or src.dtype)
            leaves = pytree.tree_leaves(args)
            on_meta = any(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in leaves)
            if func.overloadpacket in missing and on_meta:
                raise NotImplementedError(f"The operator '{func}' is not currently implemented for the MPS "
                                          "device (meta stand-in)")
            out = func(*args, **kwargs)
            for t in pytree.tree_leaves(out):
                if isinstance(t, torch.Tensor) and t.device.type == "meta" and t.dtype == torch.float64:
                    raise TypeError("Cannot convert a MPS Tensor to float64 dtype as the MPS framework "
                                    "doesn't support float64 (meta stand-in)")
            return out

    return MPSStandIn

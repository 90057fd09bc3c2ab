"""The ``oldphoto`` command itself: what a person sees at the terminal whatever the subcommand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oldphoto import cli


def test_ctrl_c_before_the_batch_starts_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    # a Ctrl-C while the modules load or a large folder is listed (before the batch's own handler is
    # installed) ended in a traceback of numpy's or argparse's internals
    Image.fromarray(np.full((8, 12, 3), 90, np.uint8)).save(tmp_path / "a.png")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("oldphoto.batch.cli.collect_inputs", interrupted)
    code = cli.main(["restore", "--no-progress", str(tmp_path / "a.png"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 130
    assert err == "oldphoto: interrupted\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_a_closed_pipe_ends_quietly_with_141(tmp_path, unbuffered):
    # `oldphoto weights list | head -1`: the listing went on into a closed pipe and ended in a
    # BrokenPipeError traceback on the terminal (at once unbuffered, else when the output was flushed)
    import os
    import subprocess
    import sys

    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered, "OLDPHOTO_WEIGHTS": str(tmp_path / "weights"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH")) if p)}
    read, write = os.pipe()
    os.close(read)  # nobody reads: the first write, or the flush at exit, finds the pipe closed
    try:
        proc = subprocess.run([sys.executable, "-m", "oldphoto", "weights", "list"], stdout=write,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    finally:
        os.close(write)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 141, proc.stderr


def test_long_options_are_never_abbreviated(tmp_path, capsys):
    # `--over` was taken for `--overwrite`: with options sharing prefixes, an abbreviation that works today
    # silently means another option once one is added
    import argparse

    def parsers(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    everyone = list(parsers(cli.build_parser()))
    assert len(everyone) > 10 and all(not p.allow_abbrev for p in everyone), \
        [p.prog for p in everyone if p.allow_abbrev]
    with pytest.raises(SystemExit) as exit_:
        cli.main(["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--over"])
    assert exit_.value.code == 2 and "unrecognized arguments: --over" in capsys.readouterr().err
    # (short options still combine)
    args = cli.build_parser().parse_args(["restore", "-r", str(tmp_path), "-ro", str(tmp_path / "out")])
    assert args.recursive and args.outdir == str(tmp_path / "out")

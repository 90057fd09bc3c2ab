"""The ``oldphoto`` command itself: what a person sees at the terminal whatever the subcommand."""

from __future__ import annotations

import numpy as np
from PIL import Image

from oldphoto import batch, cli


def test_ctrl_c_before_the_batch_starts_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    # a Ctrl-C while the modules load or a large folder is listed (before the batch's own handler is
    # installed) ended in a traceback of numpy's or argparse's internals
    Image.fromarray(np.full((8, 12, 3), 90, np.uint8)).save(tmp_path / "a.png")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "collect_inputs", interrupted)
    code = cli.main(["restore", "--no-progress", str(tmp_path / "a.png"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 130
    assert err == "oldphoto: interrupted\n"
    assert not (tmp_path / "out").exists()

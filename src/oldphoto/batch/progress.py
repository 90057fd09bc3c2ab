"""What a batch says as it goes: a progress bar on a terminal, plain lines otherwise (``Progress``), the
pipeline's notices among them (``LogToProgress``)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oldphoto.batch.report import FAILED, OK, Entry
from oldphoto.cli import show_progress


class Progress:
    """A tqdm bar with ETA on a terminal; plain log lines otherwise."""

    STEP_LINES_EVERY = 30.0  # seconds between two lines of a photo's progress when there is no bar

    def __init__(self, total: int, stream=None, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.done = 0
        self.clock = clock
        self._last_step: float | None = None
        self.bar = None
        if show_progress(enabled, self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="photo", file=self.stream, dynamic_ncols=True)

    def log(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def step(self, what: str, fraction: float) -> None:
        """How far a long stage of the current photo is (``--upscale`` on a CPU: minutes per photo)."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"{what} {fraction:.0%}")
            return
        now = self.clock()
        if fraction < 1.0 and (self._last_step is None or now - self._last_step >= self.STEP_LINES_EVERY):
            self._last_step = now
            self.log(f"    {what}: {fraction:.0%} of photo {self.done + 1}/{self.total}")

    def update(self, entry: Entry) -> None:
        self._last_step = None
        self.done += 1
        name = Path(entry.input).name
        if self.bar is not None:
            self.bar.set_postfix_str(name[-30:], refresh=False)
            self.bar.update(1)
            if entry.status == FAILED or entry.warnings:
                self.log(self._line(entry))
        else:
            self.log(self._line(entry))

    def _line(self, entry: Entry) -> str:
        head = f"[{self.done}/{self.total}] {entry.status}: {entry.input}"
        if entry.status == OK:
            head += f" -> {entry.output} ({entry.seconds:.1f} s{_repair_note(entry.restoration)})"
        elif entry.reason:
            head += f": {entry.reason}"
        return head + "".join(f"\n    warning: {w}" for w in entry.warnings)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class LogToProgress(logging.Handler):
    """The pipeline's notices (``logging`` warnings: face enhancement off, weights folders mixed) said
    through ``Progress.log``: on a line of their own above the bar, not written into the bar's line."""

    def __init__(self, say: Callable[[str], None]):
        super().__init__()
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.say(self.format(record))
        except Exception:
            self.handleError(record)


def _repair_note(record: dict[str, Any] | None) -> str:
    """What the photo's progress line says about its defects: how much was repaired, or that --scratches
    auto left scratch-like lines alone (a user who sees scratches in the result knows what to do)."""
    if not record:
        return ""
    note = ""
    if record.get("path") in ("scratch", "hr"):  # (with --dust, the dust alone may have been repaired)
        note = f"; {100 * record.get('repaired_fraction', 0.0):.2f} % repaired"
    if (record.get("defects") or {}).get("lines_left_alone"):
        note += "; scratch-like lines left alone, they may be the scene's: --scratches on repairs them"
    if (record.get("defects") or {}).get("lines_in_doubt"):
        # (not just "--scratches off": that would throw the real scratches' repair away with them)
        note += ("; some lines repaired may be the scene's (highlights, wires, branches): look at them; to "
                 "keep some, unmark them in the --save-mask mask and restore again with --mask-dir "
                 "(--scratches off repairs none)")
    if record.get("unfade_stretched_nothing"):
        note += ("; --unfade found nothing to stretch: the photo's tones already reach black and white "
                 "(a glint, a lamp or a white frame within the picture can set its white point)")
    return note

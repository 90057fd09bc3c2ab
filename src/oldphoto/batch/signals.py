"""How a batch is stopped: Ctrl-C, SIGTERM and SIGHUP, caught while it runs (``SignalHandler``) and
told to it (``StopFlag``), and the exit codes each one ends the batch with."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oldphoto.cli import silence, terminal_fds

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_HANGUP = 128 + 1  # SIGHUP (POSIX): the terminal the batch ran in was closed
# the signals that end a batch: Ctrl-C, then those that abort the current photo at once
ENDING_SIGNALS = (signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))
STOP_SIGNALS = (signal.SIGINT, *ENDING_SIGNALS)


class StopFlag(threading.Event):
    """Set by the first Ctrl-C, or by SIGTERM or SIGHUP (then ``terminated``; ``hangup`` for SIGHUP)."""

    terminated = False
    hangup = False


@dataclass
class SignalHandler:
    """First Ctrl-C: set ``stop`` and say so; second Ctrl-C: abort the current photo (KeyboardInterrupt);
    SIGTERM (a shutdown, a scheduler, ``kill``; SIGKILL usually follows soon) or SIGHUP (POSIX: the
    terminal was closed): both at once.  A SIGHUP ignored when the batch starts (``nohup``) stays ignored;
    once the terminal is gone, what the batch would still write to it goes to the null device instead
    (writes there fail, and would end the batch before its report).

    Exceptions are raised only while ``busy`` (a photo is being processed, where ``run_batch`` turns them
    into a 'not processed' entry); between photos the flag alone stops the batch, so the report is
    always written.
    """

    stop: StopFlag
    say: Callable[[str], None]
    busy: threading.Event = field(default_factory=threading.Event)
    previous: dict[int, Any] = field(default_factory=dict)
    terminals: list[int] = field(default_factory=list)  # stdout and stderr, where they are terminals
    # a cluster batch cannot finish "the current photo" (many are in flight): the first Ctrl-C aborts
    abort_at_once: bool = False

    def __enter__(self) -> SignalHandler:
        if threading.current_thread() is threading.main_thread():
            self.terminals = terminal_fds()
            for signum in STOP_SIGNALS:
                if signum != signal.SIGINT and signal.getsignal(signum) is signal.SIG_IGN:
                    continue  # (nohup)
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _say(self, text: str) -> bool:
        """Whether the terminal, if the text went to one, is still there."""
        try:
            self.say(text)
        except RuntimeError:  # the signal came in the middle of a write to the same stream
            pass
        except OSError:  # EIO: the terminal is gone
            return False
        return True

    def _handle(self, signum, frame) -> None:
        if signum in ENDING_SIGNALS:
            hangup = signum != signal.SIGTERM
            self.stop.terminated = True
            self.stop.hangup = self.stop.hangup or hangup
            self.stop.set()
            there = self._say(f"terminated ({signal.Signals(signum).name}): the "
                              + ("photos in progress are" if self.abort_at_once else "current photo is")
                              + " abandoned, nothing half-written")
            if hangup and not there:
                silence(self.terminals)
        elif self.abort_at_once:
            self.stop.set()
            self._say("interrupt: stopping; the photos in progress are abandoned, nothing half-written "
                      "(a rerun resumes)")
        elif not self.stop.is_set():
            self.stop.set()
            self._say("interrupt: stopping after the current photo (Ctrl-C again to abort it)")
            return
        if self.busy.is_set():
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        for signum, previous in self.previous.items():
            if previous is not None:
                signal.signal(signum, previous)

"""The photo reader's warnings blocks take one lock: warnings.catch_warnings is not thread-safe."""

from __future__ import annotations

import threading
import time
import warnings

from oldphoto.io._warnings import guarded_warnings


def test_overlapping_blocks_of_two_threads_leave_the_warnings_state_as_it_was():
    """Thread A enters a recording block; B tries to enter while A is inside; A leaves first.  Unguarded,
    B enters at once and on leaving restores A's recording hook for good: every later warning of the
    process would go to A's dead list.  Guarded, B waits for A, and the state comes back whole."""
    before = (warnings.showwarning, warnings._showwarnmsg_impl, list(warnings.filters))
    a_inside, a_go, b_done = threading.Event(), threading.Event(), threading.Event()

    def a():
        with guarded_warnings(record=True):
            warnings.simplefilter("always", UserWarning)
            a_inside.set()
            a_go.wait(5)

    def b():
        a_inside.wait(5)
        with guarded_warnings():
            warnings.simplefilter("ignore")
            time.sleep(0.3)  # (unguarded, A leaves while B is in here)
        b_done.set()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    a_inside.wait(5)
    time.sleep(0.1)  # B is waiting (guarded) or inside (unguarded)
    a_go.set()
    for t in threads:
        t.join(10)
    assert b_done.is_set()
    after = (warnings.showwarning, warnings._showwarnmsg_impl, list(warnings.filters))
    assert after == before

"""Wait for another thread to reach a blocking call, without sleeping a guessed time.

A test that wants "close() while the reader is blocked" cannot get an Event
from inside hyper; instead of sleeping and hoping the thread got there, it
watches the thread's stack until the blocking call is on it. Bounded, and
fast on an idle machine: it returns as soon as the thread is there.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from types import FrameType

#: How often the stack is looked at: short, since it only costs a dict lookup.
_LOOK_EVERY = 0.005


def current_frames() -> dict[int, FrameType]:
    """``sys._current_frames()``, with the garbage collector held off meanwhile.

    On CPython 3.11 and older it can deadlock: it holds the runtime's
    thread-list lock while it makes the frame objects, an allocation may
    start a collection, and a finalizer the collection runs may take that
    same lock (CPython issue gh-106883, fixed in 3.12 by doing just this).
    It hung a test of this suite for good. Every caller goes through here.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return sys._current_frames()
    finally:
        if was_enabled:
            gc.enable()


def function_names(thread: threading.Thread) -> list[str]:
    """Names of the Python functions on ``thread``'s stack, innermost first."""
    frame = current_frames().get(thread.ident or -1)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names


def wait_until_blocked_in(thread: threading.Thread, *callers: str, timeout: float = 30.0) -> None:
    """Return once ``thread``'s innermost Python frames are ``callers`` (innermost first).

    E.g. ``wait_until_blocked_in(t, "wait_for_socket", "_read_once_locked")``:
    the HTTP/2 reader is waiting on its socket. Raises ``AssertionError``
    after ``timeout`` seconds, or if the thread ended first.
    """
    wanted = list(callers)
    deadline = time.monotonic() + timeout
    while True:
        names = function_names(thread)
        # The wait itself may sit in a helper (poll/select path): look for the
        # sequence anywhere among the innermost few frames.
        for start in range(min(3, len(names))):
            if names[start : start + len(wanted)] == wanted:
                return
        if not thread.is_alive():
            raise AssertionError(f"{thread.name} ended before it blocked in {' <- '.join(wanted)}")
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{thread.name} not blocked in {' <- '.join(wanted)} after {timeout} s: {names[:6]}"
            )
        # Only the interval between looks: the stack, not this pause, decides
        # when the test goes on.
        time.sleep(_LOOK_EVERY)

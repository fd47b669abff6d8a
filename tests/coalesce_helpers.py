"""What the write-coalescing tests share: a send-counting socket and a flusher the test controls.

A burst of requests (one thread's requests with no wait in between) leaves
in one write (hyper.http20.session_coalesce); these helpers let a test see
the writes (:class:`CountingSocket`) and decide when the flusher thread may
send (:func:`controlled_flusher`), with no sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from hyper import HTTP20Connection
from hyper.common.sockets import fast_paths_forced_off
from hyper.http20 import session_flusher

#: Bound on every wait of a test for the other side.
WAIT = 10.0

#: For tests of what coalescing does: with ``HYPER_FAST_PATHS=0`` it is off
#: (every request written at once), which the off-switch tests check instead.
needs_coalescing = pytest.mark.skipif(
    fast_paths_forced_off(), reason="HYPER_FAST_PATHS=0 turns request coalescing off"
)

#: A flusher delay no test outlasts: what is held stays held until the test lets it go.
NEVER = 3600.0


class CountingSocket:
    """A session's socket, counting the writes (``send`` calls) that carried bytes.

    ``fail_in_flusher``: an exception the flusher thread's sends raise instead
    of sending (``failed`` is set when one did); other threads send as usual.
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.sends = 0
        self.fail_in_flusher: BaseException | None = None
        self.failed = threading.Event()

    def send(self, data: Any, *args: Any) -> int:
        failure = self.fail_in_flusher
        if failure is not None and threading.current_thread().name == "hyper-h2-flusher":
            self.failed.set()
            raise failure
        self.sends += 1  # under the session's state lock: every send is
        return int(self.real.send(data, *args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def count_sends(conn: HTTP20Connection) -> CountingSocket:
    """Put a counting socket in front of the connection's current session's socket."""
    session = conn._sessions.current
    assert session is not None
    counting = CountingSocket(session._sock)
    session._sock = counting
    return counting


@contextmanager
def controlled_flusher(
    monkeypatch: pytest.MonkeyPatch, delay: float | None
) -> Iterator[session_flusher.Flusher]:
    """A fresh process flusher for one test (its counters start at 0), waiting ``delay`` seconds.

    At the end whatever it still holds is let go at once, and its thread is
    waited for (it ends once idle): no thread outlives the test for long.
    """
    fresh = session_flusher.Flusher()
    fresh.delay = delay
    monkeypatch.setattr(session_flusher, "_flusher", fresh)
    try:
        yield fresh
    finally:
        release(fresh)
        thread = fresh.thread()
        if thread is not None:
            thread.join(WAIT + session_flusher.IDLE_SECONDS)
            assert not thread.is_alive(), "the flusher thread did not end once idle"


def release(flusher: session_flusher.Flusher) -> None:
    """Let the flusher send what it was asked to, now."""
    flusher.delay = 0.0
    flusher.wake()

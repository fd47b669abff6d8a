"""Review of write coalescing (issue 14): requests whose request() returned but whose HEADERS never leave.

request() returning a stream id used to mean "written" (hyper 0.7, and
``coalesce_requests=False`` today). With coalescing a burst's later
HEADERS are held; these tests look for the ways out of a held state that
do not send them: close() right after a burst, a script that ends without
close(), and a flusher thread stuck sending for another connection.
Each runs with coalescing off too: the behaviour the held case should keep.
Orders come from events and a flusher whose delay the test sets, never sleeps.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import weakref
from typing import Any

import h2.events
import pytest

from hyper import HTTP20Connection
from hyper.common.sockets import fast_paths_forced_off
from tests.coalesce_helpers import NEVER, WAIT, controlled_flusher, release
from tests.scripted import Peer, ScriptedServer

#: Coalescing is on in this run (``HYPER_FAST_PATHS=0`` turns it off, and the bugs with it).
COALESCING = not fast_paths_forced_off()


def recording(paths: list[bytes], seen: threading.Event, want: int) -> Any:
    """A script noting every request path until the client hangs up (``seen`` set at ``want`` of them)."""

    def note(events: list[Any]) -> None:
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                paths.append(dict(event.headers)[b":path"])
                if len(paths) >= want:
                    seen.set()

    def script(peer: Peer) -> None:
        note(peer.events)  # what the handshake's reads already took (the first request, often)
        while not peer.closed:
            try:
                note(peer.read_events(WAIT))
            except (TimeoutError, OSError):
                return

    return script


@pytest.mark.parametrize(
    "coalesce",
    [pytest.param(True, id="coalescing"), pytest.param(False, id="off")],
)
def test_close_right_after_a_burst_still_sends_every_request(
    coalesce: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # request(); request(); close(): the caller never reads, e.g. fire-and-
    # forget DELETEs. Our own GOAWAY (NO_ERROR) does not cancel streams we
    # opened (RFC 9113 section 6.8: its last-stream id is about the
    # server's streams); every request() that returned should reach the
    # server before it, as it does with coalescing off. The flusher waits
    # an hour: close() comes before its turn (on a real run, close() within
    # one switch interval of the burst does the same). Holds today: close()
    # sends the held HEADERS before its GOAWAY.
    paths: list[bytes] = []
    seen = threading.Event()
    with controlled_flusher(monkeypatch, NEVER):
        with ScriptedServer(recording(paths, seen, 3)) as server:
            conn = HTTP20Connection(
                "127.0.0.1", server.port, secure=False, timeout=WAIT, coalesce_requests=coalesce
            )
            try:
                for path in ("/a", "/b", "/c"):
                    conn.request("DELETE", path)
            finally:
                conn.close()
            seen.wait(WAIT)
    assert paths == [b"/a", b"/b", b"/c"]


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys
    from hyper import HTTP20Connection
    from hyper.http20 import session_flusher

    # The flusher's turn comes after the interpreter's end. With the default
    # delay (one switch interval) the end wins the race too: 8 runs out of 8
    # lost /b and /c when this was written; the hour makes it certain.
    session_flusher.flusher().delay = 3600.0
    port, coalesce = int(sys.argv[1]), sys.argv[2] == "1"
    conn = HTTP20Connection("127.0.0.1", port, secure=False, timeout=10, coalesce_requests=coalesce)
    for path in ("/a", "/b", "/c"):
        conn.request("DELETE", path)
    # No close(), no getresponse(): a short fire-and-forget script.
    """
)


@pytest.mark.parametrize(
    "coalesce",
    [
        pytest.param(True, id="coalescing"),
        pytest.param(False, id="off"),
    ],
)
def test_a_script_ending_without_close_still_sends_its_requests(coalesce: bool) -> None:
    paths: list[bytes] = []
    seen = threading.Event()
    with ScriptedServer(recording(paths, seen, 3)) as server:
        # The unclosed socket's ResourceWarning is not the point here.
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        done = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, str(server.port), "1" if coalesce else "0"],
            timeout=WAIT * 3,
            capture_output=True,
            text=True,
            env=env,
            cwd=os.getcwd(),
        )
        assert done.returncode == 0, done.stderr
        seen.wait(WAIT)  # the child has ended: whatever it wrote is here by now or never
    assert paths == [b"/a", b"/b", b"/c"]


@pytest.mark.parametrize(
    "coalesce",
    [
        pytest.param(True, id="coalescing"),
        pytest.param(False, id="off"),
    ],
)
def test_a_connection_dropped_after_a_burst_still_sent_its_requests(
    coalesce: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A helper that fires requests and lets the connection go out of scope.
    # The flusher's turn is after the drop (as it is on a real run whenever
    # the drop comes within a switch interval: 3 runs out of 3 with the
    # default delay when this was written; the last request is always lost).
    paths: list[bytes] = []
    seen = threading.Event()

    def fire(port: int) -> list[threading.Event]:
        conn = HTTP20Connection("127.0.0.1", port, secure=False, timeout=WAIT, coalesce_requests=coalesce)
        for path in ("/a", "/b", "/c"):
            conn.request("DELETE", path)
        # Each of the session's sockets says when it is collected, wherever
        # that happens (the flusher's thread drops the session it served).
        session = conn._sessions.current
        collected = []
        for name in ("_sock", "_waker_r", "_waker_w", "_interrupt_r", "_interrupt_w"):
            sock = getattr(session, name, None)
            if sock is not None:
                event = threading.Event()
                weakref.finalize(sock, event.set)
                collected.append(event)
        return collected

    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with ScriptedServer(recording(paths, seen, 3)) as server:
            with warnings.catch_warnings():
                # The unclosed socket's ResourceWarning is not the point here
                # (it comes when the flusher's sender thread lets the session go).
                warnings.simplefilter("ignore", ResourceWarning)
                collected = fire(server.port)
                gc.collect()
                release(flusher)  # its turn now: the application dropped the connection
                seen.wait(WAIT)
                for sender in threading.enumerate():
                    if sender.name == "hyper-h2-flusher" and sender is not flusher.thread():
                        sender.join(WAIT)
                # The sockets' ResourceWarnings come where the session is let
                # go, in the flusher's thread, maybe after the senders ended:
                # wait for them here, while the warnings are still ignored
                # (bounded; the collector is asked again while waiting).
                deadline = time.monotonic() + WAIT
                for event in collected:
                    while not event.wait(0.05) and time.monotonic() < deadline:
                        gc.collect()
    assert paths == [b"/a", b"/b", b"/c"]


class StuckInFlusher:
    """A session's socket whose sends from the flusher thread block until ``gate`` is set.

    Stands for a real socket the server stopped reading: the flusher waits
    for it, up to the connection's write timeout, with that session's lock held.
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.gate = threading.Event()
        self.entered = threading.Event()

    def send(self, data: Any, *args: Any) -> int:
        if threading.current_thread().name == "hyper-h2-flusher" and not self.gate.is_set():
            self.entered.set()
            self.gate.wait(WAIT * 3)  # bounded: the test opens the gate on every path
        return int(self.real.send(data, *args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.skipif(not COALESCING, reason="HYPER_FAST_PATHS=0 turns request coalescing off")
def test_a_stuck_connection_does_not_hold_back_another_connections_burst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stuck_paths: list[bytes] = []
    stuck_seen = threading.Event()
    other_paths: list[bytes] = []
    other_seen = threading.Event()
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with (
            ScriptedServer(recording(stuck_paths, stuck_seen, 2)) as stuck_server,
            ScriptedServer(recording(other_paths, other_seen, 2)) as other_server,
        ):
            stuck = HTTP20Connection("127.0.0.1", stuck_server.port, secure=False, timeout=WAIT)
            other = HTTP20Connection("127.0.0.1", other_server.port, secure=False, timeout=WAIT)
            socket: StuckInFlusher | None = None
            try:
                stuck.ping()
                other.ping()
                session = stuck._sessions.current
                assert session is not None
                socket = StuckInFlusher(session._sock)
                session._sock = socket  # type: ignore[assignment]  # a stand-in socket
                stuck.request("GET", "/stuck-1")
                stuck.request("GET", "/stuck-2")  # held; the flusher's send of it will block
                release(flusher)
                assert socket.entered.wait(WAIT)
                other.request("GET", "/other-1")
                other.request("GET", "/other-2")  # held; the flusher is busy elsewhere
                other_seen.wait(WAIT)
                assert other_paths == [b"/other-1", b"/other-2"]
            finally:
                if socket is not None:
                    socket.gate.set()
                stuck_seen.wait(WAIT)
                other_seen.wait(WAIT)
                stuck.close()
                other.close()

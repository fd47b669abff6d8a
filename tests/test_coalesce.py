"""A burst of requests leaves in one write; request() still returns at once (issue 14).

Scripted servers show what only the wire can: which requests arrive
together, that held HEADERS leave with no further call from the caller,
that the flusher's failed send reaches the next caller, that a GOAWAY read
while HEADERS are held keeps them off the wire (RFC 9113 section 6.8).
Real servers: tests/test_coalesce_servers.py. Orders are forced with events
and a flusher whose delay the test sets, never with sleeps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

import h2.events
import hyperframe.frame
import pytest

from hyper import ConnectionTerminated, HTTP20Connection, HTTPConnection
from hyper.http20 import session_flusher
from tests.batch_scripts import connect_scripted, settle, wait_for_goaway_in_socket
from tests.coalesce_helpers import NEVER, WAIT, controlled_flusher, count_sends, needs_coalescing, release
from tests.scripted import Peer, ScriptedServer
from tests.test_hostile import reconnecting_server


def serving(count: int, arrived: threading.Event | None = None) -> Any:
    """A script answering ``count`` requests with their paths (``arrived`` set once all came)."""

    def script(peer: Peer) -> None:
        for _ in range(count):  # each answered as it comes
            request = peer.wait_request(WAIT)
            peer.respond(request.stream_id, body=dict(request.headers)[b":path"])
        if arrived is not None:
            arrived.set()
        peer.drain_until_closed()

    return script


def requests_in_one_read(peer: Peer) -> list[int]:
    """The stream ids of the requests that arrive in the next single read."""
    return [e.stream_id for e in peer.read_events(WAIT) if isinstance(e, h2.events.RequestReceived)]


@pytest.fixture
def no_thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What threads' excepthook was given during the test (must stay empty)."""
    seen: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", seen.append)
    return seen


@needs_coalescing
def test_a_burst_is_held_after_its_first_request_then_leaves_in_one_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    count = 20
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with ScriptedServer(serving(count)) as server, connect_scripted(server) as conn:
            conn.ping()
            sends = count_sends(conn)
            ids = [conn.request("GET", f"/{index}") for index in range(count)]
            # The first request was written; the others wait, held, for the
            # next wait (or the flusher), which was asked once.
            assert sends.sends == 1
            assert flusher.scheduled == 1
            assert conn.getresponse(ids[0]).read() == b"/0"
            assert sends.sends == 2  # the first wait sent the other 19 in one write
            for index, stream_id in enumerate(ids[1:], 1):
                assert conn.getresponse(stream_id).read() == f"/{index}".encode()


def test_sequential_requests_write_at_once_and_never_ask_the_flusher(monkeypatch: pytest.MonkeyPatch) -> None:
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with ScriptedServer(serving(10)) as server, connect_scripted(server) as conn:
            conn.ping()
            sends = count_sends(conn)
            for index in range(10):
                before = sends.sends
                stream_id = conn.request("GET", f"/{index}")
                assert sends.sends == before + 1  # one write per request, before request() returns
                assert conn.getresponse(stream_id).read() == f"/{index}".encode()
            assert flusher.scheduled == 0
            assert flusher.thread() is None


@needs_coalescing
def test_held_headers_leave_with_no_further_call(monkeypatch: pytest.MonkeyPatch) -> None:
    arrived = threading.Event()
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with ScriptedServer(serving(2, arrived)) as server, connect_scripted(server) as conn:
            first = conn.request("GET", "/a")
            second = conn.request("GET", "/b")
            session = conn._sessions.current
            assert session is not None and session._held  # /b is held, the flusher asked
            assert flusher.scheduled == 1
            release(flusher)  # its time is up: the flusher thread sends, the caller does nothing
            assert arrived.wait(WAIT)
            assert flusher.served == 1
            assert conn.getresponse(second).read() == b"/b"
            assert conn.getresponse(first).read() == b"/a"


@needs_coalescing
def test_held_headers_leave_within_the_default_delay_with_no_further_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arrived = threading.Event()
    with controlled_flusher(monkeypatch, None):  # the GIL's switch interval
        with ScriptedServer(serving(3, arrived)) as server, connect_scripted(server) as conn:
            ids = [conn.request("GET", f"/{index}") for index in range(3)]
            assert arrived.wait(WAIT)
            assert [conn.getresponse(stream_id).read() for stream_id in ids] == [b"/0", b"/1", b"/2"]


@needs_coalescing
def test_the_flushers_failed_send_is_raised_to_the_next_caller(
    monkeypatch: pytest.MonkeyPatch, no_thread_errors: list[Any]
) -> None:
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with ScriptedServer(serving(0)) as server, connect_scripted(server) as conn:
            conn.ping()
            sends = count_sends(conn)
            first = conn.request("GET", "/a")  # never answered
            second = conn.request("GET", "/b")  # held
            sends.fail_in_flusher = ConnectionResetError(104, "reset by the test")
            release(flusher)
            assert sends.failed.wait(WAIT)
            # The next caller gets what its own flush of /b would have raised
            # (it waits for the flusher to let go of the session first).
            with pytest.raises(ConnectionTerminated, match="broke while sending") as raised:
                conn.getresponse(second)
            assert raised.value.retryable is False
            # Recorded in the session as a caller's failure is: everyone after sees it.
            with pytest.raises(ConnectionTerminated):
                conn.getresponse(first)
            with pytest.raises(ConnectionTerminated):
                conn.request("GET", "/c")
    assert no_thread_errors == []


@needs_coalescing
def test_the_flushers_failed_send_is_raised_to_the_next_request(
    monkeypatch: pytest.MonkeyPatch, no_thread_errors: list[Any]
) -> None:
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with ScriptedServer(serving(0)) as server, connect_scripted(server) as conn:
            conn.ping()
            sends = count_sends(conn)
            conn.request("GET", "/a")
            conn.request("GET", "/b")
            sends.fail_in_flusher = ConnectionResetError(104, "reset by the test")
            release(flusher)
            assert sends.failed.wait(WAIT)
            with pytest.raises(ConnectionTerminated, match="broke while sending"):
                conn.request("GET", "/c")
    assert no_thread_errors == []


@needs_coalescing
def test_close_with_held_headers(monkeypatch: pytest.MonkeyPatch, no_thread_errors: list[Any]) -> None:
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with ScriptedServer(serving(0)) as server:
            conn = connect_scripted(server)
            conn.request("GET", "/a")
            conn.request("GET", "/b")  # held
            session = conn._sessions.current
            assert session is not None and session._held
            conn.close()
            assert session.fileno() == -1
            release(flusher)  # the flusher finds the session closed: nothing to do, nothing raised
    assert no_thread_errors == []


@needs_coalescing
def test_close_from_another_thread_while_the_flusher_sends(
    monkeypatch: pytest.MonkeyPatch, no_thread_errors: list[Any]
) -> None:
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with ScriptedServer(serving(0)) as server:
            conn = connect_scripted(server)
            conn.ping()
            sends = count_sends(conn)
            conn.request("GET", "/a")
            conn.request("GET", "/b")  # held
            # The flusher's send finds the socket full, again and again: it
            # waits for it with the session's lock held, as any sender does.
            sends.fail_in_flusher = BlockingIOError(11, "full (the test says)")
            release(flusher)
            assert sends.failed.wait(WAIT)
            closed = threading.Event()
            closer = threading.Thread(target=lambda: (conn.close(), closed.set()))
            closer.start()
            assert closed.wait(WAIT)  # close() interrupts the flusher's wait, then closes
            closer.join(WAIT)
            session = conn._sessions.current
            assert session is None
    assert no_thread_errors == []


@needs_coalescing
def test_a_goaway_read_while_headers_are_held_keeps_them_off_the_wire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both_made, goaway_sent = threading.Event(), threading.Event()
    paths: list[bytes] = []

    def dying(peer: Peer) -> None:
        request = peer.wait_request(WAIT)
        assert both_made.wait(WAIT)  # /b is held: the client has not read anything since
        # The answer to /a and the GOAWAY (last stream 1) in one write: once
        # the client's socket is readable, its next look finds both. The
        # script then ends (the scripted server serves one connection at a
        # time: the client's next one waits for it).
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        peer.h2.send_data(request.stream_id, b"/a", end_stream=True)
        goaway = hyperframe.frame.GoAwayFrame(0)
        goaway.last_stream_id = request.stream_id
        peer.sock.sendall(peer.h2.data_to_send() + goaway.serialize())
        goaway_sent.set()

    def answering(peer: Peer) -> None:
        request = peer.wait_request(WAIT)
        path = dict(request.headers)[b":path"]
        paths.append(path)
        peer.respond(request.stream_id, body=path)
        peer.drain_until_closed()

    with controlled_flusher(monkeypatch, NEVER):
        with reconnecting_server(dying, answering) as server, connect_scripted(server) as conn:
            conn.retry_refused = False  # checks the retryable error itself: no transparent resend
            conn.ping()  # the SETTINGS exchange is over: nothing else is owed to this server
            first = conn.request("GET", "/a")
            dying_sends = count_sends(conn)  # the first connection's writes from here on
            held = conn.request("GET", "/b")  # held: stream 3
            both_made.set()
            assert goaway_sent.wait(WAIT)
            wait_for_goaway_in_socket(conn)
            # Its look at the socket reads the GOAWAY (last stream 1): /c goes
            # to a new connection, and /b, above the GOAWAY's last stream, is
            # never sent (RFC 9113 section 6.8): it fails retryably.
            third = conn.request("GET", "/c")
            with pytest.raises(ConnectionTerminated) as refused:
                conn.getresponse(held)
            assert refused.value.retryable is True
            assert conn.getresponse(first).read() == b"/a"
            assert conn.getresponse(third).read() == b"/c"
            assert dying_sends.sends == 0  # nothing was written on the dying connection after /a
    assert paths == [b"/c"]


@needs_coalescing
def test_a_batch_inside_a_burst_sends_the_burst_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    got_first = threading.Event()
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        settle(peer)
        first = peer.wait_request(WAIT)
        seen["first"] = first.stream_id
        got_first.set()
        seen["together"] = requests_in_one_read(peer)
        for stream_id in [first.stream_id, *seen["together"]]:
            peer.respond(stream_id, body=b"ok")
        peer.drain_until_closed()

    with controlled_flusher(monkeypatch, NEVER):
        with ScriptedServer(script) as server, connect_scripted(server) as conn:
            conn.ping()
            ids = [conn.request("GET", "/a"), conn.request("GET", "/b")]  # /b held
            assert got_first.wait(WAIT)
            with conn.batch():
                ids += [conn.request("GET", "/c"), conn.request("GET", "/d")]
            for stream_id in ids:
                assert conn.getresponse(stream_id).read() == b"ok"
    assert seen == {"first": 1, "together": [3, 5, 7]}


def test_another_threads_request_sends_the_held_ones_first(monkeypatch: pytest.MonkeyPatch) -> None:
    with controlled_flusher(monkeypatch, NEVER):
        with ScriptedServer(serving(3)) as server, connect_scripted(server) as conn:
            mine = [conn.request("GET", "/a"), conn.request("GET", "/b")]  # /b held
            results: dict[str, Any] = {}

            def other() -> None:
                stream_id = conn.request("GET", "/c")  # not a burst of its thread: written, /b first
                results["body"] = conn.getresponse(stream_id).read()

            thread = threading.Thread(target=other)
            thread.start()
            thread.join(WAIT)
            assert results == {"body": b"/c"}
            assert [conn.getresponse(stream_id).read() for stream_id in mine] == [b"/a", b"/b"]


@pytest.mark.parametrize("off", ["keyword", "environment"])
def test_the_off_switch_writes_every_request_at_once(off: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if off == "environment":
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with ScriptedServer(serving(5)) as server:
            conn = HTTP20Connection(
                "127.0.0.1", server.port, secure=False, timeout=WAIT, coalesce_requests=off != "keyword"
            )
            with conn:
                conn.ping()
                sends = count_sends(conn)
                ids = [conn.request("GET", f"/{index}") for index in range(5)]
                assert sends.sends == 5
                assert flusher.scheduled == 0
                bodies = [conn.getresponse(stream_id).read() for stream_id in ids]
                assert bodies == [f"/{index}".encode() for index in range(5)]


def test_no_thread_to_be_had_means_written_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread (the test says)")

    with controlled_flusher(monkeypatch, NEVER):
        with ScriptedServer(serving(3)) as server, connect_scripted(server) as conn:
            conn.ping()
            sends = count_sends(conn)
            monkeypatch.setattr(threading.Thread, "start", refuse)
            ids = [conn.request("GET", f"/{index}") for index in range(3)]
            monkeypatch.undo()  # threads again, for the server and the fixture
            assert sends.sends == 3
            assert [conn.getresponse(stream_id).read() for stream_id in ids] == [b"/0", b"/1", b"/2"]


# -- the flusher itself -----------------------------------------------------------------


class Recorder:
    """A Flushable that records being served."""

    def __init__(self) -> None:
        self.served = threading.Event()

    def send_held_for_flusher(self, blocking: bool = True) -> bool:
        self.served.set()
        return True  # nothing left held


def test_the_flusher_thread_ends_once_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    with controlled_flusher(monkeypatch, 0.0) as flusher:
        recorder = Recorder()
        assert flusher.schedule(recorder)
        assert recorder.served.wait(WAIT)
        thread = flusher.thread()
        assert thread is not None and thread.daemon
        thread.join(WAIT + session_flusher.IDLE_SECONDS)
        assert not thread.is_alive()
        assert flusher.thread() is None
        # A later burst starts another.
        again = Recorder()
        assert flusher.schedule(again)
        assert again.served.wait(WAIT)


def test_the_flusher_keeps_a_session_only_until_it_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import weakref

    with controlled_flusher(monkeypatch, NEVER) as flusher:
        recorder = Recorder()
        served = recorder.served
        flusher.schedule(recorder)
        gone = weakref.ref(recorder)
        del recorder
        gc.collect()
        # Dropped by the application right after its burst: still served.
        assert gone() is not None
        release(flusher)
        assert served.wait(WAIT)
        # Then no longer referenced by the flusher: once it has served a
        # later entry, the thread's reference is to that one.
        later = Recorder()
        flusher.schedule(later)
        assert later.served.wait(WAIT)
        gc.collect()
        assert gone() is None


FORK_CHILD = """
import os, sys, threading
from hyper.http20 import session_flusher

class Recorder:
    def __init__(self):
        self.served = threading.Event()
    def send_held_for_flusher(self, blocking=True):
        self.served.set()
        return True

parent = session_flusher.flusher()
parent.delay = 0.0
first = Recorder()
parent.schedule(first)
assert first.served.wait(10)
pid = os.fork()
if pid == 0:
    child = session_flusher.flusher()
    ok = child is not parent and child.thread() is None and child.scheduled == 0
    second = Recorder()
    child.delay = 0.0
    ok = ok and child.schedule(second) and second.served.wait(10)
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="no os.fork here")
def test_a_forked_child_gets_a_fresh_flusher() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORK_CHILD], timeout=WAIT * 3, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


SHUTDOWN = """
import threading
from hyper.http20 import session_flusher

class Recorder:
    def send_held_for_flusher(self, blocking=True):
        print("served at exit")
        return True

flusher = session_flusher.flusher()
flusher.delay = 3600.0
kept = Recorder()
flusher.schedule(kept)
assert flusher.thread() is not None
"""


def test_interpreter_exit_does_not_wait_for_the_flusher_and_serves_what_it_queued() -> None:
    # The flusher waits an hour for its entry; the interpreter exits at once,
    # serving the entry on its way out (the atexit hook).
    done = subprocess.run([sys.executable, "-c", SHUTDOWN], timeout=WAIT * 3, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "served at exit\n"


def test_http_connection_takes_the_switch_too() -> None:
    # hyper.HTTPConnection passes HTTP20Connection's options on; nothing connects yet.
    conn = HTTPConnection("127.0.0.1", 8080, coalesce_requests=False)
    try:
        assert conn._h2.coalesce_requests is False
    finally:
        conn.close()
    assert HTTP20Connection("127.0.0.1", 8080).coalesce_requests is True

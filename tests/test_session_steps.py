"""The session's per-request steps (issue 14, seq): fewer flushes, waits and polls, same behaviour.

* The reader keeps one poll object for its socket and its waker
  (:class:`hyper.common.sockets.ReadWatcher`); with ``HYPER_FAST_PATHS=0`` or
  without poll() each wait is a plain ``wait_for_socket``, with the same answers.
* ``open_stream`` with a free stream slot sends at once, with no wait set
  up; with none free it still waits (bounded) for one.
* What the reader's read queued in answer (a PING ACK here) leaves in the
  same flush as the window credit ``getresponse`` frees, and is never held
  while the client still waits for the server (which may wait for it).
* :class:`SessionSet` hands out its current session without its lock, and
  threads racing a session's replacement get one session or the other.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import h2.events
import h2.settings
import pytest

from hyper import HTTP20Connection
from hyper.common import sockets
from hyper.exceptions import ReadTimeout, StreamResetError
from hyper.http20.sessions import SessionSet
from tests.scripted import Peer
from tests.scripted_sessions import WAIT, answer_with, await_ping_ack, scripted_connection

_PING = b"12345678"


def _count_calls(conn: HTTP20Connection, method: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets a 1 for each call of the current session's ``method`` from now on."""
    session = conn._current_session()
    calls: list[int] = []
    real = getattr(session, method)

    def counting(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        real(*args, **kwargs)

    monkeypatch.setattr(session, method, counting)
    return calls


# -- the reader's kept poll object ---------------------------------------------------


@pytest.fixture
def pair_and_waker() -> Iterator[tuple[socket.socket, socket.socket, socket.socket, socket.socket]]:
    sock, peer = socket.socketpair()
    wake_r, wake_w = socket.socketpair()
    try:
        yield sock, peer, wake_r, wake_w
    finally:
        for end in (sock, peer, wake_r, wake_w):
            end.close()


@pytest.mark.parametrize("mode", ["kept", "forced off", "no poll"])
def test_the_read_watcher_answers_as_wait_for_socket_does(
    mode: str,
    pair_and_waker: tuple[socket.socket, socket.socket, socket.socket, socket.socket],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sock, peer, wake_r, wake_w = pair_and_waker
    if mode == "forced off":
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")
    elif mode == "no poll":
        monkeypatch.setattr(sockets, "HAVE_POLL", False)
    else:
        monkeypatch.delenv("HYPER_FAST_PATHS", raising=False)
    watcher = sockets.ReadWatcher(sock, wake_r)
    assert watcher.kept == (mode == "kept" and sockets.HAVE_POLL)
    # Nothing yet: a zero wait reports nothing, the same watcher asked again.
    for _ in range(2):
        assert watcher.wait_for_socket(0) == (False, False)
        assert sockets.wait_for_socket(sock, read=True, write=False, timeout=0, wake=wake_r) == (False, False)
    wake_w.send(b"\0")
    assert watcher.wait_for_socket(WAIT) == (False, True)
    wake_r.recv(16)
    peer.send(b"x")
    assert watcher.wait_for_socket(WAIT) == (True, False)
    wake_w.send(b"\0")
    assert watcher.wait_for_socket(WAIT) == (True, True)
    sock.recv(16)
    wake_r.recv(16)
    assert watcher.wait_for_socket(0) == (False, False)
    peer.close()  # a hang-up counts as readable: the next read sees the end
    assert watcher.wait_for_socket(WAIT) == (True, False)


def test_a_session_reader_waits_with_the_kept_watcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader makes its watcher once and uses it for every wait of the session."""
    made: list[sockets.ReadWatcher] = []
    real = sockets.ReadWatcher.__init__

    def counting(self: sockets.ReadWatcher, *args: Any) -> None:
        made.append(self)
        real(self, *args)

    monkeypatch.setattr(sockets.ReadWatcher, "__init__", counting)

    with scripted_connection(answer_with(b"ok", requests=3)) as conn:
        for _ in range(3):
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
    assert len(made) == 1


# -- opening a stream ------------------------------------------------------------------


def test_a_free_slot_opens_without_a_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    with scripted_connection(answer_with(b"ok")) as conn:
        waits = _count_calls(conn, "_wait_locked", monkeypatch)
        stream_id = conn.request("GET", "/")
        assert waits == []  # the HEADERS went out with no wait set up
        assert conn.getresponse(stream_id).read() == b"ok"


def test_no_free_slot_still_waits_bounded() -> None:
    """With the server's one slot taken, a second request waits for it and times out."""
    released = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, end_stream=False)  # headers only: the slot stays taken
        assert released.wait(WAIT)
        peer.drain_until_closed()

    settings = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1}
    # The timeout is the point here.
    with scripted_connection(script, timeout=0.5, release=(released,), settings=settings) as conn:
        first = conn.getresponse(conn.request("GET", "/first"))
        with pytest.raises(ReadTimeout, match="no stream slot freed"):
            conn.request("GET", "/second")
        first.close()


# -- the read's answer leaves with the step's own bytes --------------------------------


def test_a_ping_read_with_a_whole_response_is_answered_in_one_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    acked = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        peer.h2.send_data(request.stream_id, b"x" * 1000, end_stream=True)
        peer.h2.ping(_PING)
        peer.flush()  # one write: the client's one read takes it all
        await_ping_ack(peer)
        acked.set()
        peer.drain_until_closed()

    with scripted_connection(script) as conn:
        stream_id = conn.request("GET", "/")
        flushes = _count_calls(conn, "_flush_locked", monkeypatch)
        reads = _count_calls(conn, "_read_once_locked", monkeypatch)
        response = conn.getresponse(stream_id)
        # The PING ACK left before getresponse() returned, and the last
        # read's answer in the same flush as the body's window credit:
        # one flush per read (two before this change).
        assert acked.wait(WAIT)
        assert reads and len(flushes) == len(reads)
        assert response.read() == b"x" * 1000


def test_a_ping_read_with_headers_only_is_answered_before_getresponse_returns() -> None:
    acked = threading.Event()
    finish = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])  # the body follows later
        peer.h2.ping(_PING)
        peer.flush()
        await_ping_ack(peer)
        acked.set()
        assert finish.wait(WAIT)
        peer.h2.send_data(request.stream_id, b"body", end_stream=True)
        peer.flush()
        peer.drain_until_closed()

    with scripted_connection(script, release=(finish,)) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        # The client does nothing more: the ACK must already be out.
        assert acked.wait(WAIT)
        finish.set()
        assert response.read() == b"body"


def test_an_answer_the_server_waits_for_is_not_held_while_the_client_waits() -> None:
    """The server answers only after our PING ACK: holding it until the response came would deadlock."""

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.ping(_PING)
        peer.flush()
        await_ping_ack(peer)
        peer.respond(request.stream_id, body=b"after the ack")
        peer.drain_until_closed()

    with scripted_connection(script) as conn:
        assert conn.getresponse(conn.request("GET", "/")).read() == b"after the ack"


def test_a_failure_read_while_waiting_is_raised_and_the_connection_recovers() -> None:
    """A stream reset while its response is awaited: the error reaches getresponse, the next request works."""

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.ping(_PING)
        peer.h2.reset_stream(request.stream_id, error_code=2)
        peer.flush()
        await_ping_ack(peer)
        second = peer.wait_request()
        peer.respond(second.stream_id, body=b"fine")
        peer.drain_until_closed()

    with scripted_connection(script) as conn:
        with pytest.raises(StreamResetError):
            conn.getresponse(conn.request("GET", "/reset"))
        assert conn.getresponse(conn.request("GET", "/next")).read() == b"fine"


# -- the current session, read without the set's lock -----------------------------------


class _FakeSession:
    def __init__(self) -> None:
        self.id_base = 0

    def refusal(self) -> tuple[None, bool]:
        return None, True

    def has_streams(self) -> bool:
        return True


class _RefusingLock:
    def __enter__(self) -> None:
        raise AssertionError("usable() took the set's lock")

    def __exit__(self, *exc: object) -> None:
        return None


def test_the_current_session_is_handed_out_without_the_sets_lock() -> None:
    sets = SessionSet()
    session: Any = _FakeSession()
    sets.adopt(session)
    sets._lock = _RefusingLock()  # type: ignore[assignment]
    assert sets.usable(lambda: pytest.fail("no new session is due")) is session


def test_threads_racing_a_replacement_get_one_session_or_the_other() -> None:
    sets = SessionSet()
    old: Any = _FakeSession()
    new: Any = _FakeSession()
    sets.adopt(old)
    start = threading.Barrier(5, timeout=WAIT)
    seen: list[object] = []
    errors: list[BaseException] = []

    def user() -> None:
        try:
            start.wait()
            for _ in range(2000):
                seen.append(sets.usable(lambda: pytest.fail("no new session is due")))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=user) for _ in range(4)]
    for thread in threads:
        thread.start()
    start.wait()
    sets.adopt(new)
    for thread in threads:
        thread.join(WAIT)
    assert not errors
    assert set(map(id, seen)) <= {id(old), id(new)}
    assert sets.usable(lambda: pytest.fail("no new session is due")) is new
    assert sets.detach_all() == [old, new]

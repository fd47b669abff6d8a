"""The session's per-request shortcuts (issue 14, round 5) give the answers of the long way.

* After every read, the session's own "may refuse" flag is set exactly when
  the core would refuse a new stream (``accepting_streams()``), though the
  read no longer asks the core that question: a GOAWAY (graceful or not,
  RFC 9113 section 6.8) and a connection failure are noted as before.
* Wake-up calls are skipped only when nobody sleeps on the session: with
  one thread on the connection there is none; with a second thread asleep,
  the reader still wakes it for its response, and still hands the reading
  on to it when it leaves first.

Each runs with the fast paths on and with ``HYPER_FAST_PATHS=0``.
"""

from __future__ import annotations

import select
import threading
from typing import Any

import pytest

from hyper import HTTP20Connection
from hyper.exceptions import HyperError
from hyper.http20 import session_wakeups
from tests.scripted import Peer, ScriptedServer
from tests.waiting import wait_until_blocked_in

_WAIT = 10.0  # bounds every wait; events are ordered with Events, never timed
_FAST = pytest.mark.parametrize("fast", [True, False], ids=["fast paths", "HYPER_FAST_PATHS=0"])


def _connect(server: ScriptedServer) -> HTTP20Connection:
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=_WAIT)


def _set_fast_paths(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not fast:
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")


def _check_every_feed(session: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, bool]]:
    """After each feed of the core: (the session's flag, whether the core refuses new streams)."""
    seen: list[tuple[bool, bool]] = []
    real = session._feed_locked

    def checked(size: int) -> None:
        try:
            real(size)
        finally:
            seen.append((session._refusal_possible, session._core.accepting_streams() is not None))

    monkeypatch.setattr(session, "_feed_locked", checked)
    return seen


_FIELDS = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"127.0.0.1"), (b":path", b"/")]

# A frame header (length 7, type PING, no flags, stream 0) and 7 bytes of payload.
_SHORT_PING = b"\x00\x00\x07\x06\x00\x00\x00\x00\x00" + b"\0" * 7

# The server's last word after the response, sent in the same write as it.
_ENDINGS = {
    "graceful GOAWAY": lambda peer, stream_id: peer.send_goaway(last_stream_id=stream_id),
    "error GOAWAY": lambda peer, stream_id: peer.send_goaway(last_stream_id=stream_id, error_code=0x2),
    # A PING of 7 bytes: FRAME_SIZE_ERROR, a connection failure (RFC 9113 section 6.7).
    "protocol violation": lambda peer, stream_id: peer.send_raw(_SHORT_PING),
}


@_FAST
@pytest.mark.parametrize("ending", sorted(_ENDINGS))
def test_the_refusal_flag_follows_the_core_after_every_read(
    fast: bool, ending: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_fast_paths(fast, monkeypatch)
    end_now = threading.Event()
    ending_sent = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"ok")
        request = peer.wait_request()
        assert end_now.wait(_WAIT)
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        peer.h2.send_data(request.stream_id, b"last", end_stream=True)
        _ENDINGS[ending](peer, request.stream_id)  # flushes the response first, then its own bytes
        ending_sent.set()
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = _connect(server)
        try:
            session = conn._current_session()
            seen = _check_every_feed(session, monkeypatch)
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
            assert seen and all(flag == refuses == False for flag, refuses in seen)  # noqa: E712
            stream_id = conn.request("GET", "/")
            end_now.set()
            try:
                conn.getresponse(stream_id).read()
            except HyperError:
                pass  # the violation may fail the response it came with; the point is the flag
            # The ending is in our socket, if the response's read did not
            # take it already: the open reads it first, and refuses.
            assert ending_sent.wait(_WAIT)
            if not session._refusal_possible:
                # Sent is not yet arrived (loopback delivery may lag the
                # server's send): wait, bounded, until the socket has it.
                assert select.select([session._sock], [], [], _WAIT)[0]
            with pytest.raises(HyperError):
                session.open_stream(_FIELDS, True, may_refuse=False)
            assert all(flag == refuses for flag, refuses in seen), seen
            assert seen[-1] == (True, True)
            assert session.refusal()[0] is not None
        finally:
            end_now.set()
            conn.close()


def _counting_wake_ups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    condition = session_wakeups.StateCondition
    for name in ("notify_changed", "notify_one"):
        real = getattr(condition, name)

        def counted(self: Any, *args: Any, _real: Any = real, _name: str = name) -> None:
            calls.append(_name)
            _real(self, *args)

        monkeypatch.setattr(condition, name, counted)
    return calls


@_FAST
def test_one_thread_on_the_connection_makes_no_wake_up_call(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_fast_paths(fast, monkeypatch)

    def script(peer: Peer) -> None:
        for _ in range(4):
            request = peer.wait_request()
            peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = _connect(server)
        try:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
            calls = _counting_wake_ups(monkeypatch)
            for _ in range(3):
                assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
            assert calls == []  # nobody sleeps: nothing to wake
        finally:
            conn.close()


@_FAST
@pytest.mark.parametrize("first", ["sleeper's response first", "reader's response first"])
def test_a_sleeping_thread_is_still_woken(fast: bool, first: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader and a sleeper on one connection: each gets its response, whichever comes first."""
    _set_fast_paths(fast, monkeypatch)
    answer_sleeper = threading.Event()
    answer_reader = threading.Event()

    def script(peer: Peer) -> None:
        reader_request = peer.wait_request()
        sleeper_request = peer.wait_request()
        order = [(answer_sleeper, sleeper_request), (answer_reader, reader_request)]
        if first == "reader's response first":
            order.reverse()
        for event, request in order:
            assert event.wait(_WAIT)
            peer.respond(request.stream_id, body=b"for %d" % request.stream_id)
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = _connect(server)
        try:
            reader_id = conn.request("GET", "/reader")
            sleeper_id = conn.request("GET", "/sleeper")
            calls = _counting_wake_ups(monkeypatch)
            bodies: dict[str, bytes] = {}
            errors: list[BaseException] = []

            def get(name: str, stream_id: int) -> None:
                try:
                    bodies[name] = conn.getresponse(stream_id).read()
                except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                    errors.append(exc)

            reader = threading.Thread(target=get, args=("reader", reader_id))
            reader.start()
            wait_until_blocked_in(reader, "wait_for_socket", "_read_once_locked")
            sleeper = threading.Thread(target=get, args=("sleeper", sleeper_id))
            sleeper.start()
            wait_until_blocked_in(sleeper, "wait", "sleep", "_wait_locked")
            if first == "reader's response first":
                answer_reader.set()
                reader.join(_WAIT)
                # The reader left while the other slept: it handed the reading on.
                assert not reader.is_alive() and "notify_one" in calls
                answer_sleeper.set()
            else:
                answer_sleeper.set()
                sleeper.join(_WAIT)
                # The reader's read was news for the sleeper: it was woken for it.
                assert not sleeper.is_alive() and "notify_changed" in calls
                answer_reader.set()
            reader.join(_WAIT)
            sleeper.join(_WAIT)
            assert not errors, errors
            assert bodies == {"reader": b"for 1", "sleeper": b"for 3"}
        finally:
            answer_sleeper.set()
            answer_reader.set()
            conn.close()

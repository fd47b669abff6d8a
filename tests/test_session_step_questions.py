"""The session asks the core each question once per step (issue 14, round 2), with the same answers.

* A flush asks the core for its queued bytes once when every piece left in
  one plain send; only the careful send (a short send, which reads while it
  waits) makes it ask again, and whatever that read queued still leaves.
* ``open_stream`` does not ask the core's refusal question again when the
  session's own flag says nothing since could have changed the answer; a
  GOAWAY read before the open (or an earlier failure) is still refused.
"""

from __future__ import annotations

import select
import threading
from typing import Any

import pytest

from hyper import HTTP20Connection
from hyper.exceptions import ConnectionTerminated
from hyper.http20.core import H2Core
from tests.scripted import Peer, ScriptedServer

_WAIT = 10.0  # bounds every wait; events are ordered with Events, never timed


def _connect(server: ScriptedServer) -> HTTP20Connection:
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=_WAIT)


def _serve(count: int) -> Any:
    def script(peer: Peer) -> None:
        for _ in range(count):
            request = peer.wait_request()
            peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    return script


def _count_calls(monkeypatch: pytest.MonkeyPatch, target: Any, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(target, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, counting)
    return calls


def test_a_plain_flush_asks_the_core_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with ScriptedServer(_serve(3)) as server:
        conn = _connect(server)
        try:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"  # the connection is up
            session = conn._current_session()
            asked = _count_calls(monkeypatch, session._core, "pieces_to_send")
            flushes = _count_calls(monkeypatch, session, "_flush_locked")
            for _ in range(2):
                assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
            # One question per flush (two per flush before): the HEADERS'
            # flush and the response's, for each request.
            assert flushes and len(asked) == len(flushes)
        finally:
            conn.close()


class _ShortFirstSend:
    """The session's socket, whose first ``send`` takes all but the last byte."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.short_done = False

    def send(self, data: Any) -> int:
        if not self.short_done:
            self.short_done = True
            return int(self._sock.send(memoryview(data)[:-1]))
        return int(self._sock.send(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_a_short_send_asks_the_core_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short send goes the careful way (_send_locked), whose wait may read: the core is asked again."""
    with ScriptedServer(_serve(2)) as server:
        conn = _connect(server)
        try:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
            session = conn._current_session()
            short = _ShortFirstSend(session._sock)
            monkeypatch.setattr(session, "_sock", short)
            asked = _count_calls(monkeypatch, session._core, "pieces_to_send")
            careful = _count_calls(monkeypatch, session, "_send_locked")
            flushes = _count_calls(monkeypatch, session, "_flush_locked")
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
            # The open's flush went the careful way for its last byte and
            # asked again; every other flush asked once.
            assert short.short_done and len(careful) == 1 and len(asked) == len(flushes) + 1
        finally:
            conn.close()


@pytest.mark.parametrize("fast", [True, False], ids=["fast paths", "HYPER_FAST_PATHS=0"])
def test_open_stream_skips_the_core_refusal_question_only_while_nothing_could_refuse(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fast:
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")
    goaway_sent = threading.Event()
    send_goaway = threading.Event()

    def script(peer: Peer) -> None:
        for _ in range(2):
            request = peer.wait_request()
            peer.respond(request.stream_id, body=b"ok")
        assert send_goaway.wait(_WAIT)
        peer.send_goaway(last_stream_id=3)
        goaway_sent.set()
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=_WAIT)
        try:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
            session = conn._current_session()
            asked = _count_calls(monkeypatch, H2Core, "accepting_streams")
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
            # Nothing could have made the core refuse: it was asked once per
            # read (the session's note after each feed), not by the open.
            opened_asks = len(asked)
            assert not session._refusal_possible
            send_goaway.set()
            assert goaway_sent.wait(_WAIT)
            # Sent is not yet arrived (loopback delivery may lag the server's
            # send on a loaded machine): wait, bounded, until the socket has it.
            assert select.select([session._sock], [], [], _WAIT)[0]
            # The GOAWAY sits in the socket: the open reads it first and the
            # core's own check (asked now, the flag being set) refuses.
            with pytest.raises(ConnectionTerminated):
                session.open_stream([(b":method", b"GET")], True, may_refuse=False)
            assert session._refusal_possible and len(asked) > opened_asks
            # The connection replaces the session for the next request.
        finally:
            send_goaway.set()
            conn.close()


def test_the_last_stream_id_marks_the_session_refusing() -> None:
    """Opening the stream with the last id of the connection leaves the session refusing (RFC 9113 5.1.1)."""

    def script(peer: Peer) -> None:
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = _connect(server)
        try:
            session = conn._current_session()
            core = session._core
            assert not session._refusal_possible
            # Pretend the ids are nearly used up: the next open takes the last one.
            core._h2.highest_outbound_stream_id = 2**31 - 3
            session.open_stream(
                [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/")],
                True,
                may_refuse=False,
            )
            assert core.ids_exhausted and session._refusal_possible
            error, cleanly = session.refusal()
            assert isinstance(error, ConnectionTerminated) and cleanly
        finally:
            conn.close()

"""What the ``conn.batch()`` tests share: scripted servers, dying connections, and their checks.

tests/test_batch.py, tests/test_batch_review.py and tests/test_review4_batch.py
force the same orders (a request held, then the server's goodbye, then the
next request) with the same events; the scripts and steps that do it live
here once. Orders are forced with events and with the client's socket being
readable, never with sleeps; every wait is bounded by :data:`WAIT`.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from typing import Any

import h2.events
import hyperframe.frame
import pytest

from hyper import ConnectionTerminated, HTTP20Connection
from tests.scripted import Peer
from tests.test_hostile import reconnecting_server

#: Bound on every wait of a test thread for the other side.
WAIT = 10.0

#: Linux holds data sent with this flag until the FIN joins it in one segment.
MSG_MORE: int | None = getattr(socket, "MSG_MORE", None)


def connect_scripted(server: Any) -> HTTP20Connection:
    """A cleartext connection (prior knowledge) to a scripted server."""
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=WAIT)


def settle(peer: Peer) -> None:
    """Take the client's SETTINGS ACK and its PING (the test pings first, and waits
    for the answer): the client then has nothing of its own left to send on this connection."""
    peer.wait_for(lambda e: isinstance(e, h2.events.SettingsAcknowledged))
    peer.wait_for(lambda e: isinstance(e, h2.events.PingReceived))


def wait_for_goaway_in_socket(conn: HTTP20Connection) -> None:
    """Return once the current session's socket holds unread bytes (the server's GOAWAY).

    What the next request's look at the socket will find is then fixed: a
    17-byte GOAWAY written by one send arrives on loopback as one segment.
    """
    session = conn._sessions.current
    assert session is not None
    readable, _, _ = select.select([session._sock], [], [], WAIT)
    assert readable, "the server's GOAWAY did not arrive"


def send_goaway_and_fin(peer: Peer, before: bytes = b"") -> None:
    """``before`` (frames of the caller's), GOAWAY naming no stream, then FIN; in one
    segment where the platform allows.

    With ``MSG_MORE`` the client, once its socket is readable, finds all of
    it there: its next look at the socket reads the GOAWAY and the end of the
    connection together. Elsewhere the FIN may come a moment later.
    """
    frame = hyperframe.frame.GoAwayFrame(0)
    frame.last_stream_id = 0  # RFC 9113 section 6.8: no stream was processed
    peer.flush()
    peer.sock.sendall(before + frame.serialize(), MSG_MORE or 0)
    peer.sock.shutdown(socket.SHUT_WR)


def answer_paths(paths: list[bytes]) -> Any:
    """A script answering each request with its own path until the client hangs up."""

    def script(peer: Peer) -> None:
        # Events the handshake read along with the client's SETTINGS (its
        # first request may come in the same read) come first.
        events, peer.events = peer.events, []
        while True:
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    path = dict(event.headers)[b":path"]
                    paths.append(path)
                    peer.respond(event.stream_id, body=path)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    return
            if peer.closed:
                return
            try:
                events = peer.read_events(WAIT)
            except OSError:  # includes the timeout: the test fails on its own then
                return

    return script


def assert_refused(conn: HTTP20Connection, stream_id: int) -> None:
    """The request on ``stream_id`` failed as one the server promised not to have processed."""
    with pytest.raises(ConnectionTerminated) as failure:
        conn.getresponse(stream_id)
    assert failure.value.retryable is True
    assert failure.value.last_stream_id == 0


class DyingConnection:
    """The script of a first connection that says goodbye once the test has held its requests.

    The script takes the client's settling frames, waits for :meth:`kill`
    (called by the test once its requests are held), runs ``goodbye`` (what
    the server sends to end the connection), and ends: the scripted server
    then accepts the next connection.
    """

    def __init__(self, goodbye: Callable[[Peer], None]) -> None:
        self.goodbye = goodbye
        self.held = threading.Event()  # set by the test: its requests are held
        self.gone = threading.Event()  # set by the script: the goodbye was sent
        self.peers: list[Peer] = []

    def script(self, peer: Peer) -> None:
        """The server's side, for :func:`tests.test_hostile.reconnecting_server`."""
        self.peers.append(peer)
        settle(peer)
        assert self.held.wait(WAIT)
        self.goodbye(peer)
        self.gone.set()

    def kill(self, conn: HTTP20Connection) -> None:
        """Let the server say goodbye; return once its GOAWAY is in the client's socket, unread."""
        self.held.set()
        assert self.gone.wait(WAIT)
        wait_for_goaway_in_socket(conn)

    def requests_received(self) -> list[int]:
        """Every stream id the client opened on this connection (call once the client has closed it)."""
        peer = self.peers[0]
        events = list(peer.events)
        while not peer.closed:
            events += peer.read_events(WAIT)
        return [e.stream_id for e in events if isinstance(e, h2.events.RequestReceived)]


def fetch(
    conn: HTTP20Connection, path: str, results: dict[str, Any], done: threading.Event | None = None
) -> None:
    """GET ``path`` on ``conn`` (run on a thread of its own): the body in ``results["body"]``,
    or what it raised in ``results["error"]``; then ``done`` is set."""
    try:
        stream_id = conn.request("GET", path)
        results["body"] = conn.getresponse(stream_id).read()
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        results["error"] = exc
    finally:
        if done is not None:
            done.set()


def assert_next_request_moves_and_held_one_is_dropped(
    goodbye: Callable[[Peer], None],
    dying_socket_closed: bool | None,
    *,
    awaited_inside_the_block: bool = False,
) -> None:
    """The batch's first request is held; the server says ``goodbye`` (its GOAWAY naming
    no stream) before the second: that one opens a new connection and is answered, the
    first is never sent and fails retryably, and leaving the block raises nothing.

    ``dying_socket_closed``: whether the dying session must have read the FIN
    along with the GOAWAY when the second request was made (None: either).
    ``awaited_inside_the_block``: the caller asks for the first request's
    response inside the block (after the session died) instead of after it.
    """
    dying = DyingConnection(goodbye)
    paths: list[bytes] = []
    with reconnecting_server(dying.script, answer_paths(paths)) as server:
        with connect_scripted(server) as conn:
            conn.retry_refused = False  # checks the retryable error itself: no transparent resend
            conn.ping()
            with conn.batch():
                first = conn.request("GET", "/first")
                dying.kill(conn)
                dying_session = conn._sessions.current  # the session /first was held for
                assert dying_session is not None
                second = conn.request("GET", "/second")  # reads the goodbye, opens a new connection
                if dying_socket_closed is True:
                    assert dying_session.fileno() == -1  # it read the FIN along with the GOAWAY
                elif dying_socket_closed is False:
                    assert dying_session.fileno() != -1  # its socket is still open
                if awaited_inside_the_block:
                    assert_refused(conn, first)
            # Out of the block without an error: both ids are the caller's.
            assert conn.getresponse(second).read() == b"/second"
            if not awaited_inside_the_block:
                assert_refused(conn, first)
        # The client is gone from both connections: what did the dying one get?
        assert dying.requests_received() == []
    assert paths == [b"/second"]

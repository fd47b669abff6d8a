"""Review of ``conn.batch()`` (issue 14): what happens to held requests when their session dies.

A server's GOAWAY can reach the client before or after a batched request is
made, and before or after the batch's held HEADERS leave. Each order is
forced here with events and with the client's socket being readable (the
GOAWAY is in it), never with sleeps, and each has one right outcome:

* GOAWAY known before the next request: that request goes on a new
  connection; held requests the GOAWAY excludes are never sent (RFC 9113
  section 6.8: no new streams on a connection after its GOAWAY) and fail
  retryably; the block ends without raising the dead session's error.
* GOAWAY unknown until after the held requests were sent: they went out
  on the dying connection, and each fails with the documented retryable
  :class:`~hyper.ConnectionTerminated`; the block still ends cleanly.
* A graceful GOAWAY whose last stream id still covers a held request: that
  request is sent and answered on the old connection.
"""

from __future__ import annotations

import select
import socket
import threading
from typing import Any

import h2.events
import hyperframe.frame
import pytest

from hyper import ConnectionTerminated, HTTP20Connection
from tests.scripted import Peer
from tests.test_hostile import reconnecting_server

#: Bound on every wait of a test thread for the other side.
WAIT = 10.0

#: RFC 9113 section 6.8: the first GOAWAY of a graceful shutdown names the
#: highest possible id, so every stream already sent is still processed.
ALL_STREAMS = 2**31 - 1


def connect_scripted(server: Any) -> HTTP20Connection:
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=WAIT)


def settle(peer: Peer) -> None:
    """Take the client's SETTINGS ACK and its PING (the test pings first): the
    client then has nothing of its own left to send on this connection."""
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


#: Linux holds data sent with this flag until the FIN joins it in one segment.
MSG_MORE: int | None = getattr(socket, "MSG_MORE", None)


def send_goaway_and_fin(peer: Peer) -> None:
    """GOAWAY naming no stream, then FIN; in one segment where the platform allows.

    With ``MSG_MORE`` the client, once its socket is readable, finds both
    there: its next look at the socket reads the GOAWAY and the end of the
    connection together. Elsewhere the FIN may come a moment later.
    """
    frame = hyperframe.frame.GoAwayFrame(0)
    frame.last_stream_id = 0  # RFC 9113 section 6.8: no stream was processed
    peer.flush()
    peer.sock.sendall(frame.serialize(), MSG_MORE or 0)
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


def requests_received_until_closed(peer: Peer) -> list[int]:
    """Every stream id the client opened on ``peer`` (the client has closed its end)."""
    opened = [e.stream_id for e in peer.events if isinstance(e, h2.events.RequestReceived)]
    while not peer.closed:
        opened += [e.stream_id for e in peer.read_events(WAIT) if isinstance(e, h2.events.RequestReceived)]
    return opened


def assert_refused(conn: HTTP20Connection, stream_id: int) -> None:
    """The request on ``stream_id`` failed as one the server promised not to have processed."""
    with pytest.raises(ConnectionTerminated) as failure:
        conn.getresponse(stream_id)
    assert failure.value.retryable is True
    assert failure.value.last_stream_id == 0


# -- GOAWAY known before the next request ----------------------------------------------


@pytest.mark.parametrize("fin", [True, False], ids=["goaway-and-fin", "goaway-only"])
def test_goaway_seen_before_the_next_request_moves_it_and_drops_the_held_ones(fin: bool) -> None:
    # The server says goodbye (GOAWAY naming no stream, with or without FIN)
    # after the batch's first request was held and before its second. The
    # second opens a new connection and is answered; the first, held for a
    # connection that will process nothing, is never sent and fails
    # retryably; leaving the block raises nothing. Without FIN the held bytes
    # meet a live socket after the GOAWAY; with it (one segment) a closed one.
    held, gone = threading.Event(), threading.Event()
    first_peer: list[Peer] = []
    paths: list[bytes] = []

    def dying(peer: Peer) -> None:
        first_peer.append(peer)
        settle(peer)
        assert held.wait(WAIT)
        if fin:
            send_goaway_and_fin(peer)
        else:
            peer.send_goaway(0)  # RFC 9113 section 6.8: no stream was processed
        gone.set()  # the script ends: the next connection is accepted

    with reconnecting_server(dying, answer_paths(paths)) as server:
        with connect_scripted(server) as conn:
            conn.ping()
            with conn.batch():
                first = conn.request("GET", "/first")
                held.set()
                assert gone.wait(WAIT)
                wait_for_goaway_in_socket(conn)
                dying_session = conn._sessions.current
                assert dying_session is not None
                second = conn.request("GET", "/second")
                if fin and MSG_MORE is not None:
                    assert dying_session.fileno() == -1  # it read the FIN along with the GOAWAY
                elif not fin:
                    assert dying_session.fileno() != -1  # its socket is still open
            # Out of the block without an error: both ids are the caller's.
            assert conn.getresponse(second).read() == b"/second"
            assert_refused(conn, first)
        # The client is gone from both connections: what did the dying one get?
        assert requests_received_until_closed(first_peer[0]) == []
    assert paths == [b"/second"]


def test_goaway_seen_while_requests_are_held_by_another_thread_drops_them() -> None:
    # Two requests held; the GOAWAY is read by another (unbatched) thread's
    # request, whose answer to the server would send the held bytes along:
    # they are not sent (the connection will process none of them), the
    # other thread's request goes on a new connection, and the batch's
    # requests fail retryably while its block ends cleanly.
    both_held, gone = threading.Event(), threading.Event()
    first_peer: list[Peer] = []
    paths: list[bytes] = []
    other: dict[str, Any] = {}

    def dying(peer: Peer) -> None:
        first_peer.append(peer)
        settle(peer)
        assert both_held.wait(WAIT)
        peer.send_goaway(0)
        gone.set()

    def other_thread(conn: HTTP20Connection) -> None:
        try:
            stream_id = conn.request("GET", "/other")
            other["body"] = conn.getresponse(stream_id).read()
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            other["error"] = exc

    with reconnecting_server(dying, answer_paths(paths)) as server:
        with connect_scripted(server) as conn:
            conn.ping()
            with conn.batch():
                ids = [conn.request("GET", "/held") for _ in range(2)]
                both_held.set()
                assert gone.wait(WAIT)
                wait_for_goaway_in_socket(conn)
                thread = threading.Thread(target=other_thread, args=(conn,))
                thread.start()
                thread.join(WAIT)
                assert not thread.is_alive()
            assert other == {"body": b"/other"}
            for stream_id in ids:
                assert_refused(conn, stream_id)
        assert requests_received_until_closed(first_peer[0]) == []
    assert paths == [b"/other"]


# -- GOAWAY unknown until the held requests were sent ----------------------------------


def test_goaway_after_the_held_requests_left_fails_them_retryably() -> None:
    # The GOAWAY (and FIN) arrive after both requests were held; nothing
    # reads the socket before the block ends, so they go out on the dying
    # connection. Each response raises the documented retryable error; the
    # block itself ends without raising.
    both_held, gone = threading.Event(), threading.Event()
    first_peer: list[Peer] = []

    def dying(peer: Peer) -> None:
        first_peer.append(peer)
        settle(peer)
        assert both_held.wait(WAIT)
        peer.send_goaway(0)
        peer.sock.shutdown(socket.SHUT_WR)
        gone.set()

    with reconnecting_server(dying) as server:
        with connect_scripted(server) as conn:
            conn.ping()
            with conn.batch():
                ids = [conn.request("GET", "/held") for _ in range(2)]
                both_held.set()
                assert gone.wait(WAIT)
                wait_for_goaway_in_socket(conn)  # there, unread, as the block ends
            for stream_id in ids:
                assert_refused(conn, stream_id)
        # Sent before the GOAWAY was known: the server got them (and ignores them).
        assert requests_received_until_closed(first_peer[0]) == ids


# -- a graceful GOAWAY that still covers the held request --------------------------------


def test_held_request_covered_by_a_graceful_goaway_is_still_sent_and_answered() -> None:
    # RFC 9113 section 6.8: a graceful shutdown starts with GOAWAY naming the
    # highest id; a request held when it arrives is still processed, so it
    # must be sent (on the old connection), while the next request opens a
    # new one.
    held, gone = threading.Event(), threading.Event()
    paths: list[bytes] = []

    def graceful(peer: Peer) -> None:
        settle(peer)
        assert held.wait(WAIT)
        peer.send_goaway(ALL_STREAMS)
        gone.set()
        request = peer.wait_request(WAIT)  # sent when the client read the GOAWAY
        peer.respond(request.stream_id, body=b"/first on the old connection")
        peer.send_goaway(request.stream_id)  # the shutdown's second step: nothing more
        # The script ends: the next connection is accepted.

    with reconnecting_server(graceful, answer_paths(paths)) as server:
        with connect_scripted(server) as conn:
            conn.ping()
            with conn.batch():
                first = conn.request("GET", "/first")
                held.set()
                assert gone.wait(WAIT)
                wait_for_goaway_in_socket(conn)
                second = conn.request("GET", "/second")
            assert conn.getresponse(first).read() == b"/first on the old connection"
            assert conn.getresponse(second).read() == b"/second"
    assert paths == [b"/second"]

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

import socket
import threading
from typing import Any

import pytest

from tests.batch_scripts import (
    MSG_MORE,
    WAIT,
    DyingConnection,
    answer_paths,
    assert_next_request_moves_and_held_one_is_dropped,
    assert_refused,
    connect_scripted,
    fetch,
    send_goaway_and_fin,
    settle,
    wait_for_goaway_in_socket,
)
from tests.scripted import Peer
from tests.test_hostile import reconnecting_server

#: RFC 9113 section 6.8: the first GOAWAY of a graceful shutdown names the
#: highest possible id, so every stream already sent is still processed.
ALL_STREAMS = 2**31 - 1


def goaway_naming_no_stream(peer: Peer) -> None:
    peer.send_goaway(0)  # RFC 9113 section 6.8: no stream was processed


def goaway_then_fin(peer: Peer) -> None:
    """GOAWAY naming no stream, then FIN (in a segment of its own)."""
    peer.send_goaway(0)
    peer.sock.shutdown(socket.SHUT_WR)


# -- GOAWAY known before the next request ----------------------------------------------


@pytest.mark.parametrize("fin", [True, False], ids=["goaway-and-fin", "goaway-only"])
def test_goaway_seen_before_the_next_request_moves_it_and_drops_the_held_ones(fin: bool) -> None:
    # The server says goodbye (GOAWAY naming no stream, with or without FIN)
    # after the batch's first request was held and before its second. The
    # second opens a new connection and is answered; the first, held for a
    # connection that will process nothing, is never sent and fails
    # retryably; leaving the block raises nothing. Without FIN the held bytes
    # meet a live socket after the GOAWAY; with it (one segment) a closed one.
    if fin:
        # Where MSG_MORE is missing the FIN may come after the next request.
        assert_next_request_moves_and_held_one_is_dropped(
            send_goaway_and_fin, dying_socket_closed=True if MSG_MORE is not None else None
        )
    else:
        assert_next_request_moves_and_held_one_is_dropped(goaway_naming_no_stream, dying_socket_closed=False)


def test_goaway_seen_while_requests_are_held_by_another_thread_drops_them() -> None:
    # Two requests held; the GOAWAY is read by another (unbatched) thread's
    # request, whose answer to the server would send the held bytes along:
    # they are not sent (the connection will process none of them), the
    # other thread's request goes on a new connection, and the batch's
    # requests fail retryably while its block ends cleanly.
    dying = DyingConnection(goaway_naming_no_stream)
    paths: list[bytes] = []
    other: dict[str, Any] = {}

    with reconnecting_server(dying.script, answer_paths(paths)) as server:
        with connect_scripted(server) as conn:
            conn.retry_refused = False  # checks the retryable error itself: no transparent resend
            conn.ping()
            with conn.batch():
                ids = [conn.request("GET", "/held") for _ in range(2)]
                dying.kill(conn)
                thread = threading.Thread(target=fetch, args=(conn, "/other", other))
                thread.start()
                thread.join(WAIT)
                assert not thread.is_alive()
            assert other == {"body": b"/other"}
            for stream_id in ids:
                assert_refused(conn, stream_id)
        assert dying.requests_received() == []
    assert paths == [b"/other"]


# -- GOAWAY unknown until the held requests were sent ----------------------------------


def test_goaway_after_the_held_requests_left_fails_them_retryably() -> None:
    # The GOAWAY (and FIN) arrive after both requests were held; nothing
    # reads the socket before the block ends, so they go out on the dying
    # connection. Each response raises the documented retryable error; the
    # block itself ends without raising.
    dying = DyingConnection(goaway_then_fin)

    with reconnecting_server(dying.script) as server:
        with connect_scripted(server) as conn:
            conn.retry_refused = False  # checks the retryable error itself: no transparent resend
            conn.ping()
            with conn.batch():
                ids = [conn.request("GET", "/held") for _ in range(2)]
                dying.kill(conn)  # the GOAWAY is there, unread, as the block ends
            for stream_id in ids:
                assert_refused(conn, stream_id)
        # Sent before the GOAWAY was known: the server got them (and ignores them).
        assert dying.requests_received() == ids


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

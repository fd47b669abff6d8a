"""Review 4 of ``conn.batch()``: a dead session's leftover frames must not fail the block's end.

The batchfix merge made leaving a batch whose session died raise nothing:
held HEADERS that can go nowhere are dropped. But the core may also hold
frames of its own that could not leave before the socket closed: the ACK of
a PING (RFC 9113 section 6.7) or of a SETTINGS frame (section 6.5.3) that
arrived in the same read as the server's GOAWAY and FIN. The block's end
then tried to send those on the closed socket, and raised the dead
session's error from the ``with`` statement, losing the ids of the requests
the block had already made on the new connection.

Orders are forced with events and with the GOAWAY and FIN sent in one
segment (``MSG_MORE``), never with sleeps.
"""

from __future__ import annotations

import socket
import threading

import hyperframe.frame
import pytest

from tests.scripted import Peer
from tests.test_batch_review import (
    MSG_MORE,
    WAIT,
    answer_paths,
    assert_refused,
    connect_scripted,
    requests_received_until_closed,
    settle,
    wait_for_goaway_in_socket,
)
from tests.test_hostile import reconnecting_server

pytestmark = pytest.mark.skipif(MSG_MORE is None, reason="needs MSG_MORE to join the GOAWAY and the FIN")


def ping_frame() -> bytes:
    frame = hyperframe.frame.PingFrame(0)
    frame.opaque_data = b"review-4"
    return frame.serialize()


def settings_frame() -> bytes:
    frame = hyperframe.frame.SettingsFrame(0)
    frame.settings = {hyperframe.frame.SettingsFrame.MAX_CONCURRENT_STREAMS: 50}
    return frame.serialize()


def goaway_frame() -> bytes:
    frame = hyperframe.frame.GoAwayFrame(0)
    frame.last_stream_id = 0  # RFC 9113 section 6.8: no stream was processed
    return frame.serialize()


@pytest.mark.parametrize("asks_for_an_ack", [ping_frame, settings_frame], ids=["ping", "settings"])
def test_block_ends_cleanly_when_the_dead_session_owed_an_ack(asks_for_an_ack: object) -> None:
    # The server sends a frame the client must acknowledge, then GOAWAY and
    # FIN, all in one segment, after the batch's first request was held.
    # The second request reads all of it: the session dies with the ACK
    # still queued, the request goes on a new connection. Leaving the block
    # must raise nothing (the first request fails retryably on its own).
    held, gone = threading.Event(), threading.Event()
    first_peer: list[Peer] = []
    paths: list[bytes] = []
    make_frame = asks_for_an_ack
    assert callable(make_frame)

    def dying(peer: Peer) -> None:
        first_peer.append(peer)
        settle(peer)
        assert held.wait(WAIT)
        peer.flush()
        assert MSG_MORE is not None
        peer.sock.sendall(make_frame() + goaway_frame(), MSG_MORE)
        peer.sock.shutdown(socket.SHUT_WR)
        gone.set()

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
                assert dying_session.fileno() == -1  # it read the FIN with the rest
            # Out of the block without an error: both ids are the caller's.
            assert conn.getresponse(second).read() == b"/second"
            assert_refused(conn, first)
        assert requests_received_until_closed(first_peer[0]) == []
    assert paths == [b"/second"]


@pytest.mark.parametrize("asks_for_an_ack", [ping_frame, settings_frame], ids=["ping", "settings"])
def test_held_request_awaited_inside_the_block_fails_retryably(asks_for_an_ack: object) -> None:
    # As above, but the caller asks for the held request's response inside
    # the block, after the session died. The request was never sent and the
    # GOAWAY named no stream (RFC 9113 section 6.8): the response must raise
    # the retryable ConnectionTerminated, as it does after the block, not
    # the dead socket's non-retryable error from an attempt to send the
    # queued ACK on the closed socket.
    held, gone = threading.Event(), threading.Event()
    paths: list[bytes] = []
    make_frame = asks_for_an_ack
    assert callable(make_frame)

    def dying(peer: Peer) -> None:
        settle(peer)
        assert held.wait(WAIT)
        peer.flush()
        assert MSG_MORE is not None
        peer.sock.sendall(make_frame() + goaway_frame(), MSG_MORE)
        peer.sock.shutdown(socket.SHUT_WR)
        gone.set()

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
                second = conn.request("GET", "/second")  # reads all of it, opens a new connection
                assert dying_session.fileno() == -1
                assert_refused(conn, first)
            assert conn.getresponse(second).read() == b"/second"
    assert paths == [b"/second"]

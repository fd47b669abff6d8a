"""An error GOAWAY is never forgotten by a later graceful one (RFC 9113 section 6.8).

A server may send more than one GOAWAY; a later one may only lower
``last_stream_id``. Its error code must not turn an error into a graceful
close either: after ``GOAWAY(INTERNAL_ERROR)`` the connection is broken
(its error raised until ``close()``), and a ``GOAWAY(NO_ERROR)`` that
follows must not make the streams above ``last_stream_id`` look like a
graceful refusal, which hyper would send again on a new connection.
"""

from __future__ import annotations

import socket

import h2.errors
import hyperframe.frame
import pytest

from hyper import HTTP20Connection
from hyper.exceptions import ConnectionTerminated
from tests.resend_helpers import fast_paths_both_ways  # noqa: F401 - autouse: every test both ways
from tests.scripted import Peer, ScriptedServer

_WAIT = 10.0  # bounds every wait; nothing is timed
_INTERNAL = int(h2.errors.ErrorCodes.INTERNAL_ERROR)


def _goaway(error_code: int, debug: bytes) -> bytes:
    """A GOAWAY frame with last_stream_id 0 (nothing processed)."""
    frame = hyperframe.frame.GoAwayFrame(0)
    frame.last_stream_id = 0
    frame.error_code = error_code
    frame.additional_data = debug
    return bytes(frame.serialize())


def test_a_graceful_goaway_after_an_error_one_keeps_the_error_and_resends_nothing() -> None:
    later_paths: list[bytes] = []

    def erring(peer: Peer) -> None:
        peer.wait_request()
        # Both in one write, so the client reads them together (in two
        # writes it may fail the stream between them, hiding the mistake).
        peer.flush()
        peer.sock.sendall(_goaway(_INTERNAL, b"backend exploded") + _goaway(0, b""))
        peer.drain_until_closed(_WAIT)

    def later(peer: Peer) -> None:
        # Only a resend (the bug) or a reconnect reaches this connection: its
        # requests are answered (so the bug shows at once, not as a timeout)
        # and noted; the test's own probe connection below hangs up at once.
        while True:
            try:
                request = peer.wait_request(_WAIT)
            except AssertionError:
                return  # the client hung up
            later_paths.append(dict(request.headers)[b":path"])
            peer.respond(request.stream_id, body=b"sent again")

    scripts = iter([erring, later])
    with ScriptedServer(lambda peer: next(scripts)(peer), connections=2) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=_WAIT) as conn:
            with pytest.raises(ConnectionTerminated) as caught:
                conn.getresponse(conn.request("GET", "/first"))
            # The error GOAWAY's code and data, not the graceful one's.
            assert caught.value.error_code == _INTERNAL
            assert caught.value.additional_data == b"backend exploded"
            # The connection stays broken until closed: no silent reconnect.
            with pytest.raises(ConnectionTerminated) as again:
                conn.request("GET", "/second")
            assert again.value.error_code == _INTERNAL
        # Release the server's second accept if hyper never connected again.
        with socket.create_connection(("127.0.0.1", server.port), timeout=_WAIT):
            pass
    assert later_paths == []

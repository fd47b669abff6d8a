"""review17: a burst (held HEADERS, write coalescing) meets the server's last bytes.

seq8 made a burst skip its look at the socket before most requests, and owe
one before the held HEADERS left; review17 found that the owed look, made
inside a flush, let a failed PING ACK replace the real outcome and close()
lose its 1 s bound, and the skipping was taken out again (its gain was
within the noise). These tests keep what it checked without it: the
server's last bytes (a response, a GOAWAY, a PING, then FIN) arriving while
a burst holds HEADERS. Orders are forced with events, never with sleeps.
"""

from __future__ import annotations

import select
import socket
import threading
from typing import Any

import hyperframe.frame
import pytest

from hyper.exceptions import ConnectionTerminated
from hyper.http20.session import H2Session
from tests.batch_scripts import connect_scripted
from tests.coalesce_helpers import NEVER, WAIT, controlled_flusher, count_sends, needs_coalescing
from tests.scripted import Peer, ScriptedServer
from tests.test_hostile import reconnecting_server


def _goaway(last_stream_id: int) -> bytes:
    frame = hyperframe.frame.GoAwayFrame(0)
    frame.last_stream_id = last_stream_id
    return bytes(frame.serialize())


def _ping() -> bytes:
    frame = hyperframe.frame.PingFrame(0)
    frame.opaque_data = b"review17"
    return bytes(frame.serialize())


def dying_after_first(all_made: threading.Event, gone: threading.Event, ending: bool = True) -> Any:
    """Answer the first request, then GOAWAY (last: that one); in one write.

    ``ending``: a PING and the FIN follow in that write (the connection's end
    found with a frame that needs an answer); else the socket stays open.
    """

    def script(peer: Peer) -> None:
        request = peer.wait_request(WAIT)
        assert all_made.wait(WAIT)  # the burst's later requests are held: nothing was read since
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        peer.h2.send_data(request.stream_id, b"/a", end_stream=True)
        tail = _ping() if ending else b""
        peer.sock.sendall(peer.h2.data_to_send() + _goaway(request.stream_id) + tail)
        if ending:
            peer.sock.shutdown(socket.SHUT_WR)
        gone.set()

    return script


def answering(paths: list[bytes], count: int) -> Any:
    def script(peer: Peer) -> None:
        for _ in range(count):
            request = peer.wait_request(WAIT)
            path = dict(request.headers)[b":path"]
            paths.append(path)
            peer.respond(request.stream_id, body=path)
        peer.drain_until_closed()

    return script


def wait_for_fin(sock: Any) -> None:
    """Return once the session's socket is readable (the server's last write, then its FIN)."""
    readable, _, _ = select.select([sock], [], [], WAIT)
    assert readable, "the server's last bytes did not arrive"


def test_a_look_at_each_opening_finds_goaway_ping_and_fin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the test above: a look before every request (no interval) finds them at /c's opening.

    /c goes to a new connection at once; /b, held on the dead one, never
    left and is resent; /a's response, read whole, is kept.
    """
    all_made, gone = threading.Event(), threading.Event()
    paths: list[bytes] = []
    with controlled_flusher(monkeypatch, NEVER):
        with (
            reconnecting_server(dying_after_first(all_made, gone), answering(paths, 2)) as server,
            connect_scripted(server) as conn,
        ):
            conn.ping()
            first = conn.request("GET", "/a")
            second = conn.request("GET", "/b")
            all_made.set()
            assert gone.wait(WAIT)
            dying = conn._sessions.current
            assert dying is not None
            wait_for_fin(dying._sock)
            third = conn.request("GET", "/c")
            assert conn._sessions.current is not dying  # the look at /c's opening found the end
            assert conn.getresponse(first).read() == b"/a"
            assert conn.getresponse(second).read() == b"/b"
            assert conn.getresponse(third).read() == b"/c"
    assert sorted(paths) == [b"/b", b"/c"]


def dying_silently_after_first(all_made: threading.Event, gone: threading.Event) -> Any:
    """Answer the first request, then FIN with no GOAWAY (an idle close, a load balancer's)."""

    def script(peer: Peer) -> None:
        request = peer.wait_request(WAIT)
        assert all_made.wait(WAIT)
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        peer.h2.send_data(request.stream_id, b"/a", end_stream=True)
        peer.sock.sendall(peer.h2.data_to_send())
        peer.sock.shutdown(socket.SHUT_WR)
        gone.set()

    return script


@needs_coalescing
def test_held_requests_dropped_at_a_silent_close_fail_retryably(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's FIN (no GOAWAY) is read while a burst holds /b: /b never leaves.

    The look at /c's opening reads /a's response and the FIN: /c goes to a
    new connection, and /b, held on the dead one, is dropped unsent. Nothing
    of it reached the server, so its error says a retry is safe
    (``retryable=True``); ``retryable=False`` would tell the caller (and the
    requests adapter) the server may have acted on it. /a's response, read
    whole, is kept.
    """
    all_made, gone = threading.Event(), threading.Event()
    paths: list[bytes] = []
    with controlled_flusher(monkeypatch, NEVER):
        with (
            reconnecting_server(dying_silently_after_first(all_made, gone), answering(paths, 1)) as server,
            connect_scripted(server) as conn,
        ):
            conn.ping()
            first = conn.request("GET", "/a")
            dying_sends = count_sends(conn)
            second = conn.request("GET", "/b")  # the burst's: held
            all_made.set()
            assert gone.wait(WAIT)
            dying = conn._sessions.current
            assert dying is not None
            wait_for_fin(dying._sock)
            third = conn.request("GET", "/c")  # its look reads the FIN: a new connection
            assert conn._sessions.current is not dying
            assert dying_sends.sends == 0  # /b never left
            assert conn.getresponse(first).read() == b"/a"
            with pytest.raises(ConnectionTerminated) as failed:
                conn.getresponse(second)
            assert failed.value.retryable
            assert conn.getresponse(third).read() == b"/c"
    assert paths == [b"/c"]


class OneByteSocket:
    """A session's socket whose ``send`` takes at most one byte (a short send, every time)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def send(self, data: Any, *args: Any) -> int:
        return int(self.real.send(bytes(memoryview(data)[:1]), *args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@needs_coalescing
def test_close_keeps_its_send_bound_after_a_burst_answered_a_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    """close() flushes (its GOAWAY, RFC 9113 section 6.8) with a 1 s bound on each send.

    With a look owed (held HEADERS), close()'s flush makes the look first;
    it reads the server's PING, and the PING ACK is flushed by a nested
    flush, which also sends close()'s queued GOAWAY: with the connection's
    write timeout (here 10 s; none at all for a connection made with
    ``timeout=None``) instead of close()'s bound, so close() may wait that
    long for a server that stopped reading. The timeouts the sends are given
    are recorded (no clock is read); the socket takes one byte per send.
    With a look at each opening (interval 0) the PING was answered then.
    """
    all_made, pinged = threading.Event(), threading.Event()

    def pinging(peer: Peer) -> None:
        peer.wait_request(WAIT)
        assert all_made.wait(WAIT)
        peer.send_raw(_ping())
        pinged.set()
        peer.drain_until_closed()

    timeouts: list[float | None] = []
    real_send = H2Session._send_locked

    def recorded(self: H2Session, data: Any, timeout: float | None) -> None:
        timeouts.append(timeout)
        real_send(self, data, timeout)

    with controlled_flusher(monkeypatch, NEVER):
        with ScriptedServer(pinging) as server:
            conn = connect_scripted(server)
            try:
                conn.ping()
                conn.request("GET", "/a")
                conn.request("GET", "/b")  # the burst's first: looks, finds nothing
                all_made.set()
                assert pinged.wait(WAIT)
                dying = conn._sessions.current
                assert dying is not None
                wait_for_fin(dying._sock)  # the PING is in the socket
                conn.request("GET", "/c")  # its look at the socket answers the PING
                # From here each send takes one byte, as a socket the server
                # stopped reading takes what fits: the rest goes the careful
                # way, _send_locked, with the timeout the flush was given.
                dying._sock = OneByteSocket(dying._sock)  # type: ignore[assignment]
                monkeypatch.setattr(H2Session, "_send_locked", recorded)
            finally:
                conn.close()
    assert timeouts, "close() sent nothing by _send_locked"
    assert all(timeout is not None and timeout <= 1.0 for timeout in timeouts), timeouts

"""review17: the look a burst owes (seq8, issue 14) made inside a flush, and what it may find.

A burst's bodiless requests skip their look at the socket (BURST_LOOK_INTERVAL);
the look owed is made by ``_send_held_locked``, inside whatever flush sends
the held HEADERS. These tests have the server's last bytes (a response, a
GOAWAY, a frame that needs an answer such as PING, then FIN) arrive while
the look is owed, and check that every path that makes it (a wait, the
flusher, the end of a batch) still keeps the response that arrived and
resends the requests the GOAWAY excluded (RFC 9113 section 6.8), as the
look at their opening would have. Orders are forced with events, never
with sleeps.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from typing import Any

import hyperframe.frame
import pytest

from hyper import HTTP20Connection
from hyper.exceptions import ConnectionTerminated
from hyper.http20 import session
from hyper.http20.session import H2Session
from tests.batch_scripts import connect_scripted
from tests.coalesce_helpers import NEVER, WAIT, controlled_flusher, count_sends, needs_coalescing, release
from tests.scripted import Peer, ScriptedServer
from tests.test_burst_looks import count_looks, serving
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


@needs_coalescing
@pytest.mark.xfail(
    strict=True,
    reason="review17: the owed look reads PING+FIN inside the wait's flush; the ACK's send "
    "raises ConnectionTerminated and getresponse() loses a response that arrived whole",
)
def test_owed_look_in_a_wait_finds_goaway_ping_and_fin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before seq8 the look at /c's opening read all this (and /c went to a new connection)."""
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", NEVER)
    all_made, gone = threading.Event(), threading.Event()
    paths: list[bytes] = []
    with controlled_flusher(monkeypatch, NEVER):
        with (
            reconnecting_server(dying_after_first(all_made, gone), answering(paths, 2)) as server,
            connect_scripted(server) as conn,
        ):
            conn.ping()  # the SETTINGS exchange is over
            first = conn.request("GET", "/a")
            looks = count_looks(monkeypatch)
            second = conn.request("GET", "/b")  # the burst's first: looks, finds nothing
            all_made.set()
            assert gone.wait(WAIT)
            dying = conn._sessions.current
            assert dying is not None
            wait_for_fin(dying._sock)
            third = conn.request("GET", "/c")  # no look: held on the dying connection
            assert len(looks) == 1
            # The wait's flush makes the owed look: /a's response, the GOAWAY,
            # the PING and the FIN are read; /b and /c never left.
            assert conn.getresponse(first).read() == b"/a"
            assert conn.getresponse(second).read() == b"/b"
            assert conn.getresponse(third).read() == b"/c"
    assert sorted(paths) == [b"/b", b"/c"]


def test_a_look_at_each_opening_finds_goaway_ping_and_fin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the test above: a look before every request (no interval) finds them at /c's opening.

    /c goes to a new connection at once; /b, held on the dead one, never
    left and is resent; /a's response, read whole, is kept.
    """
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", 0.0)
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


@needs_coalescing
@pytest.mark.xfail(
    strict=True,
    reason="review17: the flusher's owed look reads PING+FIN; the ACK's failed send is kept "
    "as _flusher_error and raised by getresponse() of a response that arrived whole",
)
def test_owed_look_in_the_flusher_finds_goaway_ping_and_fin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", NEVER)
    all_made, gone, flushed = threading.Event(), threading.Event(), threading.Event()
    paths: list[bytes] = []
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with (
            reconnecting_server(dying_after_first(all_made, gone), answering(paths, 2)) as server,
            connect_scripted(server) as conn,
        ):
            conn.ping()
            first = conn.request("GET", "/a")
            second = conn.request("GET", "/b")  # looks, finds nothing; held
            all_made.set()
            assert gone.wait(WAIT)
            dying = conn._sessions.current
            assert dying is not None
            wait_for_fin(dying._sock)
            third = conn.request("GET", "/c")  # no look: held
            real = dying.send_held_for_flusher

            def noted(blocking: bool = True) -> bool:
                done = real(blocking)
                if done:
                    flushed.set()
                return done

            monkeypatch.setattr(dying, "send_held_for_flusher", noted)
            release(flusher)  # the flusher sends what is held: the owed look first
            assert flushed.wait(WAIT)
            assert conn.getresponse(first).read() == b"/a"
            assert conn.getresponse(second).read() == b"/b"
            assert conn.getresponse(third).read() == b"/c"
    assert sorted(paths) == [b"/b", b"/c"]


@needs_coalescing
@pytest.mark.xfail(
    strict=True,
    reason="review17: the owed look at a batch's end reads PING+FIN after the socket check; "
    "leaving the block raises ConnectionTerminated (batch() documents it raises nothing)",
)
def test_owed_look_at_a_batch_end_finds_goaway_ping_and_fin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", NEVER)
    all_made, gone = threading.Event(), threading.Event()
    paths: list[bytes] = []
    with controlled_flusher(monkeypatch, NEVER):
        with (
            reconnecting_server(dying_after_first(all_made, gone), answering(paths, 2)) as server,
            connect_scripted(server) as conn,
        ):
            conn.ping()
            first = conn.request("GET", "/a")
            with conn.batch():
                second = conn.request("GET", "/b")  # looks, finds nothing; held
                all_made.set()
                assert gone.wait(WAIT)
                dying = conn._sessions.current
                assert dying is not None
                wait_for_fin(dying._sock)
                third = conn.request("GET", "/c")  # no look: held
            # Leaving the block made the owed look: /b and /c never left.
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
@pytest.mark.xfail(
    strict=True,
    reason="review17: held HEADERS dropped at a silent FIN never left, yet their requests get "
    "'server closed the connection before the response was complete', retryable=False",
)
def test_held_requests_dropped_at_a_silent_close_fail_retryably(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's FIN (no GOAWAY) arrives while a burst holds /b and /c: they never leave.

    Nothing of them reached the server, so their error should say a retry is
    safe (``retryable=True``), as it does for held requests a GOAWAY excludes;
    ``retryable=False`` tells the caller (and the requests adapter) the
    server may have acted on them.
    """
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", NEVER)
    all_made, gone = threading.Event(), threading.Event()
    with controlled_flusher(monkeypatch, NEVER):
        with (
            reconnecting_server(dying_silently_after_first(all_made, gone)) as server,
            connect_scripted(server) as conn,
        ):
            conn.ping()
            first = conn.request("GET", "/a")
            dying_sends = count_sends(conn)
            second = conn.request("GET", "/b")  # looks, finds nothing; held
            all_made.set()
            assert gone.wait(WAIT)
            dying = conn._sessions.current
            assert dying is not None
            wait_for_fin(dying._sock)
            third = conn.request("GET", "/c")  # no look: held
            assert conn.getresponse(first).read() == b"/a"
            assert dying_sends.sends == 0  # /b and /c never left
            for stream_id in (second, third):
                with pytest.raises(ConnectionTerminated) as failed:
                    conn.getresponse(stream_id)
                assert failed.value.retryable


@needs_coalescing
@pytest.mark.parametrize("sender", ["flusher", "batch end"])
def test_owed_look_by_the_flusher_or_a_batch_end_keeps_excluded_headers_off_the_wire(
    monkeypatch: pytest.MonkeyPatch, sender: str
) -> None:
    """The GOAWAY alone (tests/test_burst_looks.py has the wait's owed look; these, the other two senders).

    The look owed is made before the held HEADERS leave: /b and /c, above the
    GOAWAY's last stream id, never leave (RFC 9113 section 6.8) and are sent
    again on a new connection by getresponse() (resending.py).
    """
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", NEVER)
    all_made, gone, flushed = threading.Event(), threading.Event(), threading.Event()
    paths: list[bytes] = []
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with (
            reconnecting_server(
                dying_after_first(all_made, gone, ending=False), answering(paths, 2)
            ) as server,
            connect_scripted(server) as conn,
        ):
            conn.ping()
            first = conn.request("GET", "/a")
            dying_sends = count_sends(conn)
            dying = conn._sessions.current
            assert dying is not None
            looks = count_looks(monkeypatch)
            with conn.batch() if sender == "batch end" else contextlib.nullcontext():
                second = conn.request("GET", "/b")  # the burst's first: looks, finds nothing
                all_made.set()
                assert gone.wait(WAIT)
                wait_for_fin(dying._sock)  # the GOAWAY is in the socket
                third = conn.request("GET", "/c")  # no look: held
                assert len(looks) == 1
            if sender == "flusher":
                real = dying.send_held_for_flusher

                def noted(blocking: bool = True) -> bool:
                    done = real(blocking)
                    if done:
                        flushed.set()
                    return done

                monkeypatch.setattr(dying, "send_held_for_flusher", noted)
                release(flusher)
                assert flushed.wait(WAIT)
            assert len(looks) == 2  # the owed look, made by the sender
            assert dying_sends.sends == 0  # /b and /c never left
            assert conn.getresponse(first).read() == b"/a"
            assert conn.getresponse(second).read() == b"/b"
            assert conn.getresponse(third).read() == b"/c"
    assert sorted(paths) == [b"/b", b"/c"]


@pytest.mark.parametrize("batched", [False, True])
def test_with_coalesce_requests_off_every_request_looks(
    monkeypatch: pytest.MonkeyPatch, batched: bool
) -> None:
    """``coalesce_requests=False``: no bursts, so no skipped look, in a batch() block too."""
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", NEVER)
    with controlled_flusher(monkeypatch, NEVER) as flusher:
        with (
            ScriptedServer(serving(5)) as server,
            HTTP20Connection(
                "127.0.0.1", server.port, secure=False, timeout=WAIT, coalesce_requests=False
            ) as conn,
        ):
            conn.ping()
            looks = count_looks(monkeypatch)
            with conn.batch() if batched else contextlib.nullcontext():
                ids = [conn.request("GET", f"/{index}") for index in range(5)]
            assert len(looks) == 5
            assert flusher.scheduled == 0
            for index, stream_id in enumerate(ids):
                assert conn.getresponse(stream_id).read() == f"/{index}".encode()


class OneByteSocket:
    """A session's socket whose ``send`` takes at most one byte (a short send, every time)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def send(self, data: Any, *args: Any) -> int:
        return int(self.real.send(bytes(memoryview(data)[:1]), *args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


_CLOSE_BOUND_BUG = pytest.mark.xfail(
    strict=True,
    reason="review17: close()'s owed look answers a PING by a nested flush that sends "
    "(PING ACK, GOAWAY) with the write timeout, not close()'s 1 s bound",
)


@needs_coalescing
@pytest.mark.parametrize(
    "interval",
    [pytest.param(NEVER, marks=_CLOSE_BOUND_BUG, id="look-owed"), pytest.param(0.0, id="looked-at-open")],
)
def test_close_keeps_its_send_bound_when_it_makes_the_owed_look(
    monkeypatch: pytest.MonkeyPatch, interval: float
) -> None:
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
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", interval)
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
                conn.request("GET", "/c")  # held; no look (a look owed) unless the interval is 0
                # From here each send takes one byte, as a socket the server
                # stopped reading takes what fits: the rest goes the careful
                # way, _send_locked, with the timeout the flush was given.
                dying._sock = OneByteSocket(dying._sock)  # type: ignore[assignment]
                monkeypatch.setattr(H2Session, "_send_locked", recorded)
            finally:
                conn.close()
    assert timeouts, "close() sent nothing by _send_locked"
    assert all(timeout is not None and timeout <= 1.0 for timeout in timeouts), timeouts

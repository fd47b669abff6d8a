"""A burst of requests looks at the socket once per interval, not once per request (issue 14).

Before each new stream the session reads what already arrived (a GOAWAY, the
server's SETTINGS: RFC 9113 sections 6.8 and 5.1.2). In a burst (one
thread's requests held and written together, session_coalesce) the requests
come microseconds apart and nothing is sent between them, so the look, a
system call, is made once per ``BURST_LOOK_INTERVAL``. These tests set the
interval (never: one look per burst; zero: one per request) and count the
looks; a GOAWAY that came in unlooked-at still keeps the held HEADERS it
excludes off the wire, and the requests are answered on a new connection.
Orders are forced with events, never with sleeps.
"""

from __future__ import annotations

import threading
from typing import Any

import hyperframe.frame
import pytest

from hyper.http20 import session
from hyper.http20.session import H2Session
from tests.batch_scripts import connect_scripted, wait_for_goaway_in_socket
from tests.coalesce_helpers import NEVER, WAIT, controlled_flusher, count_sends, needs_coalescing
from tests.scripted import Peer, ScriptedServer
from tests.test_hostile import reconnecting_server


def serving(count: int) -> Any:
    """A script answering ``count`` requests with their paths."""

    def script(peer: Peer) -> None:
        for _ in range(count):
            request = peer.wait_request(WAIT)
            peer.respond(request.stream_id, body=dict(request.headers)[b":path"])
        peer.drain_until_closed()

    return script


def count_looks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the session's looks at the socket before opening a stream (one item per look)."""
    looks: list[int] = []
    real = H2Session._poll_before_open_locked

    def counted(self: H2Session) -> None:
        looks.append(1)
        real(self)

    monkeypatch.setattr(H2Session, "_poll_before_open_locked", counted)
    return looks


@needs_coalescing
@pytest.mark.parametrize(("interval", "expected"), [(NEVER, 2), (0.0, 10)])
def test_a_burst_looks_once_per_interval(
    monkeypatch: pytest.MonkeyPatch, interval: float, expected: int
) -> None:
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", interval)
    with controlled_flusher(monkeypatch, NEVER):
        with ScriptedServer(serving(10)) as server, connect_scripted(server) as conn:
            conn.ping()
            looks = count_looks(monkeypatch)
            ids = [conn.request("GET", f"/{index}") for index in range(10)]
            # The first request is no burst's: it looks. The burst's first
            # one looks too; the rest only once the interval has passed
            # (never, or at once).
            assert len(looks) == expected
            for index, stream_id in enumerate(ids):
                assert conn.getresponse(stream_id).read() == f"/{index}".encode()


@needs_coalescing
def test_a_wait_ends_the_burst_and_the_next_request_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", NEVER)
    with controlled_flusher(monkeypatch, NEVER):
        with ScriptedServer(serving(4)) as server, connect_scripted(server) as conn:
            conn.ping()
            looks = count_looks(monkeypatch)
            first, second = conn.request("GET", "/0"), conn.request("GET", "/1")
            assert len(looks) == 2
            assert conn.getresponse(first).read() == b"/0"  # a wait: the burst is over
            third = conn.request("GET", "/2")  # no burst's: it looks
            assert len(looks) == 3
            fourth = conn.request("GET", "/3")  # a new burst's first: it looks
            assert len(looks) == 4
            for stream_id, path in ((second, b"/1"), (third, b"/2"), (fourth, b"/3")):
                assert conn.getresponse(stream_id).read() == path


@needs_coalescing
def test_a_request_with_a_body_in_a_burst_always_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    """It is sent at once (not held), so it looks first; the burst's next request looks again."""
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", NEVER)
    with controlled_flusher(monkeypatch, NEVER):
        with ScriptedServer(serving(5)) as server, connect_scripted(server) as conn:
            conn.ping()
            looks = count_looks(monkeypatch)
            ids = [conn.request("GET", "/0"), conn.request("GET", "/1")]
            assert len(looks) == 2
            ids.append(conn.request("POST", "/2", body=b"body"))
            assert len(looks) == 3
            ids.append(conn.request("GET", "/3"))  # after a look that was no burst look: looks
            assert len(looks) == 4
            ids.append(conn.request("GET", "/4"))  # within the (endless) interval: no look
            assert len(looks) == 4
            for index, stream_id in enumerate(ids):
                assert conn.getresponse(stream_id).read() == f"/{index}".encode()


@needs_coalescing
def test_before_the_servers_settings_every_request_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until they are read, the server's stream limit (RFC 9113 section 5.1.2) is not known."""
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", NEVER)
    settings_read = threading.Event()

    def script(peer: Peer) -> None:
        # The client's requests first; the server's SETTINGS only once the
        # test has counted the looks (no handshake before the script).
        assert settings_read.wait(WAIT)
        peer.handshake()
        serving(3)(peer)

    with controlled_flusher(monkeypatch, NEVER):
        with ScriptedServer(script, handshake=False) as server, connect_scripted(server) as conn:
            looks = count_looks(monkeypatch)
            ids = [conn.request("GET", f"/{index}") for index in range(3)]
            assert len(looks) == 3
            settings_read.set()
            for index, stream_id in enumerate(ids):
                assert conn.getresponse(stream_id).read() == f"/{index}".encode()


def test_with_coalescing_off_every_request_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", NEVER)
    monkeypatch.setenv("HYPER_FAST_PATHS", "0")  # coalescing off: no bursts
    with ScriptedServer(serving(5)) as server, connect_scripted(server) as conn:
        conn.ping()
        looks = count_looks(monkeypatch)
        ids = [conn.request("GET", f"/{index}") for index in range(5)]
        assert len(looks) == 5
        for index, stream_id in enumerate(ids):
            assert conn.getresponse(stream_id).read() == f"/{index}".encode()


@needs_coalescing
def test_a_goaway_not_looked_at_in_a_burst_keeps_the_held_headers_off_the_wire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The GOAWAY arrives while the burst does not look: found at the wait, before any send.

    The held HEADERS above its last stream id never leave (RFC 9113 section
    6.8); their requests fail retryably and are sent again, on a new
    connection, by getresponse() (resending.py): nothing is lost.
    """
    monkeypatch.setattr(session, "BURST_LOOK_INTERVAL", NEVER)
    all_made, goaway_sent = threading.Event(), threading.Event()
    paths: list[bytes] = []

    def dying(peer: Peer) -> None:
        request = peer.wait_request(WAIT)
        assert all_made.wait(WAIT)  # /b and /c are held: nothing was read since
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        peer.h2.send_data(request.stream_id, b"/a", end_stream=True)
        goaway = hyperframe.frame.GoAwayFrame(0)
        goaway.last_stream_id = request.stream_id
        peer.sock.sendall(peer.h2.data_to_send() + goaway.serialize())
        goaway_sent.set()

    def answering(peer: Peer) -> None:
        for _ in range(2):
            request = peer.wait_request(WAIT)
            path = dict(request.headers)[b":path"]
            paths.append(path)
            peer.respond(request.stream_id, body=path)
        peer.drain_until_closed()

    with controlled_flusher(monkeypatch, NEVER):
        with reconnecting_server(dying, answering) as server, connect_scripted(server) as conn:
            conn.ping()  # the SETTINGS exchange is over: nothing else is owed to this server
            first = conn.request("GET", "/a")
            dying_sends = count_sends(conn)  # the first connection's writes from here on
            looks = count_looks(monkeypatch)
            second = conn.request("GET", "/b")  # the burst's first: looks, finds nothing
            all_made.set()
            assert goaway_sent.wait(WAIT)
            wait_for_goaway_in_socket(conn)
            third = conn.request("GET", "/c")  # no look: held on the dying connection
            assert len(looks) == 1
            assert conn.getresponse(first).read() == b"/a"
            # The wait read the GOAWAY before sending what was held: /b and
            # /c never left, and were sent again on the new connection.
            assert dying_sends.sends == 0
            assert conn.getresponse(second).read() == b"/b"
            assert conn.getresponse(third).read() == b"/c"
    assert sorted(paths) == [b"/b", b"/c"]

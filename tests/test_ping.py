"""PING and keep-alive: real servers answer, scripted ones stay silent or answer wrongly.

``ping()`` against nginx and nghttpd, from many threads at once; against a
scripted server that never acknowledges, or acknowledges other data, it must
end in ReadTimeout and leave the connection usable. Keep-alive pings an idle
connection, declares a silent one dead (waiters get ConnectionTerminated at
once, the next request reconnects) and stops its thread when the connection
closes.
"""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import h2.events
import hyperframe.frame
import pytest

import hyper
import hyper.tls
from hyper import HTTP20Connection
from tests import hostile_frames as hf
from tests.scripted import Peer, ScriptedServer
from tests.servers import ServerInfo

KEEPALIVE_THREAD = "hyper-keepalive"


def tls_connect(info: ServerInfo, **kwargs: Any) -> HTTP20Connection:
    kwargs.setdefault("timeout", 10)
    context = hyper.tls.init_context(cert_path=info.ca_file)
    return HTTP20Connection(info.host, info.port, ssl_context=context, **kwargs)


#: Read timeout of the tests where a PING must go unanswered: short, to keep
#: them quick, yet long enough for a scripted server on a loaded 2-core
#: machine to answer the requests made with the same timeout.
SHORT_READ_TIMEOUT = 2.0


def connect(server: ScriptedServer, **kwargs: Any) -> HTTP20Connection:
    kwargs.setdefault("timeout", 5)
    return HTTP20Connection("127.0.0.1", server.port, secure=False, **kwargs)


def get(conn: HTTP20Connection, path: str = "/") -> bytes:
    return conn.getresponse(conn.request("GET", path)).read()


# -- real servers -------------------------------------------------------------------


@pytest.fixture(params=["nginx_server", "nghttpd_server"])
def real_server(request: pytest.FixtureRequest) -> ServerInfo:
    info: ServerInfo = request.getfixturevalue(request.param)
    return info


def test_ping_returns_the_round_trip_time(real_server: ServerInfo) -> None:
    with tls_connect(real_server) as conn:
        # Before any request: ping() opens the connection itself.
        rtt = conn.ping()
        assert isinstance(rtt, float) and 0 < rtt < 10
        assert get(conn, "/index.html").startswith(b"<!DOCTYPE html>")
        assert 0 < conn.ping(b"hyper-01") < 10
        assert 0 < conn.ping(bytes(8)) < 10
        assert 0 < conn.ping(b"\xff" * 8) < 10


def test_many_threads_pinging_one_connection_all_get_answers(real_server: ServerInfo) -> None:
    with tls_connect(real_server) as conn:
        conn.connect()

        def pings(index: int) -> list[float]:
            # Half the threads share one payload: each ACK must answer one ping.
            payload = b"samesame" if index % 2 else None
            return [conn.ping(payload) for _ in range(10)]

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(pings, range(8)))
        assert len(results) == 8
        assert all(len(rtts) == 10 and all(isinstance(r, float) and r > 0 for r in rtts) for rtts in results)
        assert get(conn, "/index.html").startswith(b"<!DOCTYPE html>")


@pytest.mark.parametrize("data", [b"", b"1234567", b"123456789", b"x" * 64])
def test_ping_data_must_be_eight_bytes(data: bytes) -> None:
    # Checked before any connection is made (nothing listens on port 9).
    conn = HTTP20Connection("127.0.0.1", 9, secure=False, timeout=1)
    with pytest.raises(ValueError, match="8 bytes"):
        conn.ping(data)
    conn.close()


# -- scripted servers ----------------------------------------------------------------


def test_ping_sends_the_given_data() -> None:
    received: list[bytes] = []

    def script(peer: Peer) -> None:
        for _ in range(2):
            event = peer.wait_for(lambda e: isinstance(e, h2.events.PingReceived))
            received.append(event.ping_data)  # h2 answers it by itself
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        assert conn.ping(b"abcdefgh") > 0
        assert conn.ping() > 0
    assert received[0] == b"abcdefgh"
    assert len(received[1]) == 8 and received[1] != b"abcdefgh"


class RawServer:
    """One connection served without h2, so PINGs can go unanswered or be answered wrongly.

    ``mode`` (changeable while it runs): ``"echo"`` acknowledges each PING
    with its data, ``"wrong"`` with other data, ``"silent"`` not at all.
    Requests are answered with ``pong`` while ``answer`` is set.
    """

    def __init__(self, mode: str = "echo", answer: bool = True) -> None:
        self.mode = mode
        self.answer = answer
        self.pings: list[bytes] = []
        self.requests = 0
        #: PING ACKs to send just before the next response.
        self.late_acks: list[bytes] = []
        #: Set when the client has hung up.
        self.hung_up = threading.Event()

    def __call__(self, peer: Peer) -> None:
        reader = hf.FrameReader(peer.sock)
        reader.next_frame()  # the preface and the client's SETTINGS
        peer.send_raw(hf.settings() + hf.settings(ack=True))
        deadline = time.monotonic() + 60  # ends at EOF; a bound, not a pace
        while time.monotonic() < deadline:
            frame = reader.next_frame(0.2)
            if reader.eof:
                break
            if isinstance(frame, hyperframe.frame.HeadersFrame):
                self.requests += 1
                while self.late_acks:
                    peer.send_raw(hf.ping(self.late_acks.pop(0), ack=True))
                if self.answer:
                    response = hf.response_headers(frame.stream_id) + hf.data(
                        frame.stream_id, b"pong", end_stream=True
                    )
                    peer.send_raw(response)
            elif isinstance(frame, hyperframe.frame.PingFrame) and "ACK" not in frame.flags:
                self.pings.append(frame.opaque_data)
                if self.mode == "echo":
                    peer.send_raw(hf.ping(frame.opaque_data, ack=True))
                elif self.mode == "wrong":
                    peer.send_raw(hf.ping(bytes(b ^ 0xFF for b in frame.opaque_data), ack=True))
        self.hung_up.set()


@contextmanager
def serving(*scripts: Callable[[Peer], None]) -> Iterator[ScriptedServer]:
    """A server running one script per accepted connection, in order.

    If the test fails before the client made every connection, the pending
    accept() is released at once and the server's own error (the script
    run on that empty connection) is not allowed to hide the test's.
    """
    remaining = list(scripts)

    def run(peer: Peer) -> None:
        remaining.pop(0)(peer)

    server = ScriptedServer(run, handshake=False, connections=len(scripts))
    server.__enter__()
    failed = True
    try:
        yield server
        failed = False
    finally:
        if failed and remaining:
            socket.create_connection(("127.0.0.1", server.port)).close()
        try:
            server.stop()
        except BaseException:
            if not failed:
                raise


def h2_peer(script: Callable[[Peer], None]) -> Callable[[Peer], None]:
    """A script for a ``handshake=False`` server that speaks h2 after all."""

    def run(peer: Peer) -> None:
        peer.handshake()
        script(peer)

    return run


def answer_all(peer: Peer) -> None:
    """Answer every request with ``pong`` until the client hangs up."""
    while not peer.closed:
        try:
            request = peer.wait_request()
        except AssertionError:
            return
        peer.respond(request.stream_id, body=b"pong")


def test_unanswered_ping_is_a_read_timeout_and_the_connection_goes_on() -> None:
    raw = RawServer(mode="silent")
    with serving(raw) as server, connect(server, timeout=(5, SHORT_READ_TIMEOUT)) as conn:
        started = time.monotonic()
        with pytest.raises(hyper.ReadTimeout):
            conn.ping(b"unheard!")
        elapsed = time.monotonic() - started
        # It waited for the read timeout, and no longer than a generous
        # multiple of it (a loaded machine is slow, never 30x slow).
        assert SHORT_READ_TIMEOUT * 0.9 <= elapsed < 30 * SHORT_READ_TIMEOUT
        assert get(conn) == b"pong"
        raw.mode = "echo"
        assert conn.ping() > 0
        assert get(conn) == b"pong"
    assert raw.pings[0] == b"unheard!"


def test_ack_with_other_data_does_not_answer_a_ping() -> None:
    raw = RawServer(mode="wrong")
    with serving(raw) as server, connect(server, timeout=(5, SHORT_READ_TIMEOUT)) as conn:
        with pytest.raises(hyper.ReadTimeout):
            conn.ping(b"12345678")
        with pytest.raises(hyper.ReadTimeout):
            conn.ping()
        assert get(conn) == b"pong"
        raw.mode = "echo"
        assert conn.ping(b"12345678") > 0
    assert len(raw.pings) == 3


def test_a_late_ack_of_an_abandoned_ping_is_not_kept_for_a_later_one() -> None:
    # The ACK of a ping that already timed out arrives later (ahead of a
    # response); it answers nobody and must not be banked: a new ping with
    # the same data still needs an ACK of its own.
    raw = RawServer(mode="silent")
    with serving(raw) as server, connect(server, timeout=(5, SHORT_READ_TIMEOUT)) as conn:
        with pytest.raises(hyper.ReadTimeout):
            conn.ping(b"late-ack")
        raw.late_acks.append(b"late-ack")
        assert get(conn) == b"pong"  # the late ACK came first
        with pytest.raises(hyper.ReadTimeout):
            conn.ping(b"late-ack")
        raw.mode = "echo"
        assert conn.ping(b"late-ack") > 0
    assert raw.pings == [b"late-ack"] * 3


# -- keep-alive ----------------------------------------------------------------------


def keepalive_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == KEEPALIVE_THREAD and t.is_alive()}


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``condition`` until it holds (returns at once then) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def wait_for_pings(peer: Peer, wanted: int, timeout: float = 30.0) -> int:
    """Read until ``wanted`` PINGs arrived (h2 acknowledges each); return the count.

    Bounded by ``timeout``, never by the pace of the client: on a loaded
    machine the keep-alive thread may run late, and that is not a failure.
    """
    pings = 0
    deadline = time.monotonic() + timeout
    while pings < wanted and not peer.closed and (remaining := deadline - time.monotonic()) > 0:
        try:
            events = peer.read_events(remaining)
        except TimeoutError:
            break
        pings += sum(isinstance(e, h2.events.PingReceived) for e in events)
    return pings


def count_pings(peer: Peer, seconds: float) -> int:
    """PINGs received over ``seconds`` (h2 acknowledges each)."""
    pings = 0
    deadline = time.monotonic() + seconds
    while not peer.closed and (remaining := deadline - time.monotonic()) > 0:
        try:
            events = peer.read_events(remaining)
        except TimeoutError:
            break
        pings += sum(isinstance(e, h2.events.PingReceived) for e in events)
    return pings


def test_keepalive_pings_an_idle_connection_and_requests_still_work() -> None:
    counted = threading.Event()
    seen: dict[str, int] = {}

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"first")
        # Wait for two PINGs in the silence (h2 acknowledges each).
        seen["pings"] = wait_for_pings(peer, 2)
        counted.set()
        answer_all(peer)

    with ScriptedServer(script) as server, connect(server, keepalive=0.2, keepalive_timeout=2) as conn:
        assert get(conn) == b"first"
        assert counted.wait(60)
        assert get(conn) == b"pong"
        assert get(conn) == b"pong"
    # Nothing but keep-alive sends PINGs on an idle connection.
    assert seen["pings"] >= 2


def test_no_keepalive_without_the_option() -> None:
    counted = threading.Event()
    seen: dict[str, int] = {}

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"first")
        seen["pings"] = count_pings(peer, 0.6)
        counted.set()
        answer_all(peer)

    before = keepalive_threads()
    with ScriptedServer(script) as server, connect(server) as conn:
        assert get(conn) == b"first"
        assert keepalive_threads() - before == set()
        assert counted.wait(30)
    assert seen["pings"] == 0


def test_keepalive_options_are_checked() -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError):
            HTTP20Connection("127.0.0.1", 9, secure=False, keepalive=bad)


def test_a_negative_keepalive_timeout_is_refused_without_leaking_a_socket() -> None:
    # Refused when the connection object is made, before any socket exists
    # (filterwarnings=error would turn a leaked socket into a failure).
    with pytest.raises(ValueError, match="keepalive_timeout"):
        HTTP20Connection("127.0.0.1", 9, secure=False, keepalive=1, keepalive_timeout=-1)
    gc.collect()


def blocked_request_dies(conn: HTTP20Connection, silent: RawServer) -> None:
    """A request the silent server never answers must fail fast once keep-alive gives up."""
    stream = conn.request("GET", "/never-answered")
    outcome: dict[str, Any] = {}

    def wait() -> None:
        started = time.monotonic()
        try:
            conn.getresponse(stream)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - started

    waiter = threading.Thread(target=wait)
    waiter.start()
    waiter.join(25)
    assert not waiter.is_alive(), "getresponse() still blocked: the dead connection went unnoticed"
    error = outcome.get("error")
    assert isinstance(error, hyper.ConnectionTerminated), repr(error)
    assert error.retryable is False  # the request was in flight
    # Sooner than the 30 s read timeout (keepalive 0.3 + ACK timeout 2 s;
    # the margin is for a loaded machine): it was keep-alive, not the timeout.
    assert outcome["elapsed"] < 25
    assert silent.pings, "keep-alive never pinged"
    assert silent.hung_up.wait(30), "the dead connection's socket was not closed"


def dead_then_alive() -> tuple[RawServer, list[str], list[Callable[[Peer], None]]]:
    """Scripts for two connections: one that goes silent, one that answers."""
    silent = RawServer(mode="silent", answer=False)
    accepted: list[str] = []

    def first(peer: Peer) -> None:
        accepted.append("first")
        silent(peer)

    def second(peer: Peer) -> None:
        accepted.append("second")
        answer_all(peer)

    return silent, accepted, [first, h2_peer(second)]


def test_silent_server_fails_a_waiting_request_at_once_and_close_lets_it_reconnect() -> None:
    silent, accepted, scripts = dead_then_alive()
    with serving(*scripts) as server:
        conn = connect(server, timeout=(5, 30), keepalive=0.3, keepalive_timeout=2)
        try:
            blocked_request_dies(conn, silent)
            conn.close()
            assert get(conn, "/next") == b"pong"
        finally:
            conn.close()
    assert accepted == ["first", "second"]


def test_after_keepalive_gave_up_mid_request_the_next_request_reconnects() -> None:
    # HTTP20Connection's keepalive docs: "the next request reconnects", with
    # no close() in between.
    silent, accepted, scripts = dead_then_alive()
    with serving(*scripts) as server:
        conn = connect(server, timeout=(5, 30), keepalive=0.3, keepalive_timeout=2)
        try:
            blocked_request_dies(conn, silent)
            assert get(conn, "/next") == b"pong"
        finally:
            conn.close()
    assert accepted == ["first", "second"]


def test_idle_connection_declared_dead_reconnects_transparently() -> None:
    silent = RawServer(mode="silent")  # answers requests, never PINGs
    accepted: list[str] = []

    def first(peer: Peer) -> None:
        accepted.append("first")
        silent(peer)

    def second(peer: Peer) -> None:
        accepted.append("second")
        answer_all(peer)

    with serving(first, h2_peer(second)) as server:
        # An ACK timeout a loaded machine cannot miss on the healthy second connection.
        with connect(server, keepalive=0.2, keepalive_timeout=2) as conn:
            assert get(conn) == b"pong"
            # Keep-alive pings, gets no ACK and closes the socket.
            assert silent.hung_up.wait(30), "the silent connection was never given up"
            assert silent.pings
            assert get(conn, "/again") == b"pong"
    assert accepted == ["first", "second"]


def test_closing_the_connection_stops_the_keepalive_thread() -> None:
    before = keepalive_threads()
    pinged = threading.Event()

    def answer_and_notice_pings(peer: Peer) -> None:
        while not peer.closed:
            try:
                event = peer.wait_for(
                    lambda e: isinstance(e, (h2.events.RequestReceived, h2.events.PingReceived)), 30
                )
            except AssertionError:
                return
            if isinstance(event, h2.events.PingReceived):
                pinged.set()
            else:
                peer.respond(event.stream_id, body=b"pong")

    with ScriptedServer(answer_and_notice_pings) as server:
        conn = connect(server, keepalive=0.2)
        try:
            assert get(conn) == b"pong"
            mine = keepalive_threads() - before
            assert len(mine) == 1
            (thread,) = mine
            assert thread.daemon
            # Once it has pinged, it is in its loop: close() must stop it there.
            assert pinged.wait(30), "keep-alive never pinged"
        finally:
            conn.close()
        assert wait_until(lambda: not thread.is_alive()), "hyper-keepalive still running after close()"
    assert keepalive_threads() - before == set()


def test_each_new_connection_gets_its_own_keepalive_thread_and_close_stops_it() -> None:
    before = keepalive_threads()

    def answer_then_goaway(peer: Peer) -> None:
        request = peer.wait_request()
        # GOAWAY ahead of the response: the client knows before its next request.
        peer.send_goaway(request.stream_id)
        peer.respond(request.stream_id, body=b"pong")
        peer.drain_until_closed()

    with serving(h2_peer(answer_then_goaway), h2_peer(answer_all)) as server:
        conn = connect(server, keepalive=0.2)
        try:
            assert get(conn) == b"pong"
            first = keepalive_threads() - before
            assert len(first) == 1
            # After the graceful GOAWAY the next request opens a second connection.
            assert get(conn) == b"pong"
            assert wait_until(lambda: not any(t.is_alive() for t in first)), (
                "old connection's thread lives on"
            )
            assert len(keepalive_threads() - before) == 1
        finally:
            conn.close()
        assert wait_until(lambda: keepalive_threads() - before == set())

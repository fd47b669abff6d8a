"""Fault injection (issue 4): hostile and broken HTTP/2 servers against HTTP20Connection.

Every scenario asserts the exact ``hyper`` exception, its attributes, that it
came fast (well inside the client's timeout, so a hang that ends in a timeout
never passes), and where it matters that the connection's other streams are
unharmed. Where hyper does the wrong thing today the test still states the
right behaviour and is marked ``xfail(strict=True)`` with the reason, so the
suite is green and every gap is visible; a fix turns it into an XPASS, which
fails until the marker is removed.

Conventions the tests assume:

* an error hyper detects on one stream (malformed response, 1xx flood, ...)
  is ``ProtocolError`` raised for that stream only; RST_STREAM from the
  server is ``StreamResetError``; the end of the connection (GOAWAY, socket
  closed) is ``ConnectionTerminated``; a broken connection detected by hyper
  is ``ProtocolError`` with the code hyper sent in its GOAWAY;
* floods end in ``ProtocolError`` with ``ENHANCE_YOUR_CALM``.
"""

from __future__ import annotations

import datetime
import functools
import gzip
import ipaddress
import re
import socket
import ssl
import struct
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import brotli
import h2.errors
import h2.events
import h2.settings
import hyperframe.frame
import pytest
import trustme

import hyper
from hyper import HTTP20Connection
from hyper.http20 import h2_internals
from tests import hostile_frames as hf
from tests.scripted import Peer, ScriptedServer

E = h2.errors.ErrorCodes
MiB = 1 << 20

#: The client's timeout in every test that does not test timeouts.
TIMEOUT = 20.0
#: An error must surface within this many seconds (a hang would take TIMEOUT).
#: Generous, for a loaded machine: it only tells "at once" from "at the timeout".
FAST = 8.0


# -- helpers --------------------------------------------------------------------


def connect(server: ScriptedServer, timeout: Any = TIMEOUT, **kwargs: Any) -> HTTP20Connection:
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=timeout, **kwargs)


def get(conn: HTTP20Connection, path: str = "/") -> bytes:
    return conn.getresponse(conn.request("GET", path)).read()


@dataclass
class Outcome:
    value: BaseException | None = None
    elapsed: float = 0.0


@contextmanager
def fails_fast(expected: type[BaseException], within: float = FAST) -> Iterator[Outcome]:
    """The block must raise exactly ``expected`` (not a subclass), within ``within`` s.

    Anything else (another type, an ``h2`` exception leaking out, no error,
    or an error that only came with a timeout) fails with an AssertionError.
    """
    outcome = Outcome()
    started = time.monotonic()
    try:
        yield outcome
    except Exception as exc:  # noqa: BLE001 - classified below
        outcome.value = exc
    outcome.elapsed = time.monotonic() - started
    value = outcome.value
    assert value is not None, f"nothing raised ({outcome.elapsed:.2f} s); expected {expected.__name__}"
    got = f"{type(value).__module__}.{type(value).__name__}: {value}"
    assert type(value) is expected, f"expected {expected.__name__}, got {got}"
    assert outcome.elapsed < within, f"{expected.__name__} took {outcome.elapsed:.2f} s (limit {within} s)"


def client_frames(peer: Peer, timeout: float = 5.0) -> list[hyperframe.frame.Frame]:
    """Every frame the client sends from now until it hangs up, ``h2`` bypassed.

    After hostile frames the server's own ``h2`` state no longer matches the
    client's, so the rest of the conversation is parsed raw.
    """
    pending = bytes(peer.h2.incoming_buffer._data)  # a partial frame h2 holds
    return hf.parse_frames(pending + hf.drain_raw(peer.sock, timeout))


class Tap:
    """Record the raw bytes a :class:`Peer` receives while ``h2`` goes on parsing them.

    ``h2`` swallows some frames (RST_STREAM on a stream it closed, for one);
    the tap lets a script check them anyway.
    """

    def __init__(self, peer: Peer) -> None:
        self.raw = bytearray(peer.h2.incoming_buffer._data)  # a partial frame h2 holds
        self._sock = peer.sock
        peer.sock = self  # type: ignore[assignment]

    def recv(self, size: int) -> bytes:
        chunk = self._sock.recv(size)
        self.raw += chunk
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def frames(self) -> list[hyperframe.frame.Frame]:
        return hf.parse_frames(bytes(self.raw))


def goaway_codes(frames: list[hyperframe.frame.Frame]) -> set[int]:
    """The error codes of the client's GOAWAY frames (it may repeat one; RFC 9113 allows it)."""
    return {f.error_code for f in frames if isinstance(f, hyperframe.frame.GoAwayFrame)}


def rst_codes(frames: list[hyperframe.frame.Frame]) -> dict[int, int]:
    return {f.stream_id: f.error_code for f in frames if isinstance(f, hyperframe.frame.RstStreamFrame)}


def every_goaway(frames: list[hyperframe.frame.Frame]) -> list[int]:
    """The error codes of all the client's GOAWAY frames, in order (repeats counted)."""
    return [f.error_code for f in frames if isinstance(f, hyperframe.frame.GoAwayFrame)]


def stream_errors_stay_on_their_stream() -> bool:
    """True when one malformed response fails only its own stream (RFC 9113 section 8.1.1).

    That recovery comes from the fast paths' adaptations of h2. With them
    off (``HYPER_FAST_PATHS=0``) hyper uses h2's public API, which ends the
    whole connection on such a frame: RFC 9113 section 5.4 allows treating
    a stream error as a connection error. The tests below check whichever
    outcome the mode promises: the other streams go on, or every stream
    gets the ProtocolError and the server one GOAWAY(PROTOCOL_ERROR).
    """
    return h2_internals.fast_paths_enabled()


def assert_the_connection_failed(conn: HTTP20Connection, other: int) -> None:
    """Fast paths off: the other stream fails too, and no new request may start."""
    with fails_fast(hyper.ProtocolError) as outcome:
        conn.getresponse(other).read()
    assert outcome.value.error_code == E.PROTOCOL_ERROR
    with fails_fast(hyper.ProtocolError):
        conn.request("GET", "/")


def answer_fails_the_connection(answer: Callable[[int], bytes], code: int, **connect_kwargs: Any) -> None:
    """One GET answered with the raw ``answer(stream_id)``: ProtocolError(code) at once, GOAWAY(code).

    The script hands the client's later frames to the test raw (``client_frames``):
    after a hostile frame the server's own ``h2`` no longer agrees with the client.
    """
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        peer.send_raw(answer(peer.wait_request().stream_id))
        seen["frames"] = client_frames(peer)

    with ScriptedServer(script) as server, connect(server, **connect_kwargs) as conn:
        with fails_fast(hyper.ProtocolError) as outcome:
            get(conn)
    assert outcome.value.error_code == code
    assert goaway_codes(seen["frames"]) == {code}


def answer_fails_only_the_first_stream(answer_first: Callable[[int], bytes], code: int) -> None:
    """Two GETs, the first answered with the raw ``answer_first(stream_id)``, the second normally.

    The first fails with ProtocolError(code) and the client resets only it
    (RST_STREAM(code)); the second's response arrives whole.
    """
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        first, second = peer.wait_request(), peer.wait_request()
        peer.send_raw(answer_first(first.stream_id))
        peer.respond(second.stream_id, body=b"fine")
        seen["frames"] = client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        first, second = conn.request("GET", "/"), conn.request("GET", "/")
        with fails_fast(hyper.ProtocolError) as outcome:
            conn.getresponse(first)
        assert outcome.value.error_code == code
        assert conn.getresponse(second).read() == b"fine"
    assert rst_codes(seen["frames"]) == {first: code}


def data_bytes(frames: list[hyperframe.frame.Frame], stream_id: int) -> int:
    return sum(
        len(f.data) for f in frames if isinstance(f, hyperframe.frame.DataFrame) and f.stream_id == stream_id
    )


def upload_events(peer: Peer, stream_id: int, timeout: float = 5.0) -> Iterator[Any]:
    """DataReceived / StreamEnded events of one stream, including those already read."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = [e for e in peer.events if getattr(e, "stream_id", None) == stream_id]
        for event in mine:
            peer.events.remove(event)
            if isinstance(event, (h2.events.DataReceived, h2.events.StreamEnded)):
                yield event
        peer.read_events(max(0.0, deadline - time.monotonic()))
        if peer.closed:
            raise AssertionError("client hung up during the upload")
    raise AssertionError("upload did not finish in time")


def raw_script(action: Callable[[socket.socket], None], seen: dict[str, Any]) -> Callable[[Peer], None]:
    """A script for ``handshake=False``: read the client's preface, run ``action``, record the rest."""

    def script(peer: Peer) -> None:
        reader = hf.FrameReader(peer.sock)
        reader.next_frame()  # the preface and the client's SETTINGS
        action(peer.sock)
        seen["frames"] = reader.frames_until_closed(5)

    return script


@contextmanager
def reconnecting_server(*scripts: Callable[[Peer], None]) -> Iterator[ScriptedServer]:
    """A server running one script per connection, for tests where the client must reconnect.

    When the test fails because the client never came back, the server's
    pending accept() is released at once (instead of after its 10 s timeout)
    and its resulting error is not allowed to hide the test's own; it is
    printed (pytest shows it with the failure), because a script that died
    early, leaving later connections unserved, is itself a likely cause.
    """
    remaining = list(scripts)

    def run(peer: Peer) -> None:
        remaining.pop(0)(peer)

    server = ScriptedServer(run, connections=len(scripts))
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
        except BaseException as exc:
            if not failed:
                raise
            print(f"scripted server ({len(remaining)} script(s) never ran): {exc!r}", file=sys.stderr)


def kill_with_rst(sock: socket.socket) -> None:
    """Close so that the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# == Connection =================================================================


NOT_HTTP2 = re.compile(r"not\b.*HTTP/2", re.IGNORECASE)


def test_http11_answer_fails_fast_as_not_http2() -> None:
    seen: dict[str, Any] = {}
    reply = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\nBad Request"

    with ScriptedServer(raw_script(lambda s: s.sendall(reply), seen), handshake=False) as server:
        with connect(server) as conn, fails_fast(hyper.ProtocolError) as outcome:
            get(conn)
    assert outcome.value.error_code == E.PROTOCOL_ERROR
    assert NOT_HTTP2.search(str(outcome.value)), str(outcome.value)
    assert goaway_codes(seen["frames"]) == {E.PROTOCOL_ERROR}


@pytest.mark.parametrize("first", [hf.ping(), hf.window_update(0, 1000)], ids=["PING", "WINDOW_UPDATE"])
def test_first_frame_not_settings_fails_fast_as_not_http2(first: bytes) -> None:
    seen: dict[str, Any] = {}
    with ScriptedServer(raw_script(lambda s: s.sendall(first), seen), handshake=False) as server:
        with connect(server) as conn, fails_fast(hyper.ProtocolError) as outcome:
            get(conn)
    assert outcome.value.error_code == E.PROTOCOL_ERROR
    assert NOT_HTTP2.search(str(outcome.value)), str(outcome.value)
    assert goaway_codes(seen["frames"]) == {E.PROTOCOL_ERROR}


BAD_SETTINGS = [
    pytest.param({hf.MAX_FRAME_SIZE: 0}, E.PROTOCOL_ERROR, id="MAX_FRAME_SIZE=0"),
    pytest.param({hf.MAX_FRAME_SIZE: 1 << 24}, E.PROTOCOL_ERROR, id="MAX_FRAME_SIZE=2^24"),
    pytest.param({hf.INITIAL_WINDOW_SIZE: 1 << 31}, E.FLOW_CONTROL_ERROR, id="INITIAL_WINDOW_SIZE=2^31"),
    pytest.param({hf.ENABLE_PUSH: 2}, E.PROTOCOL_ERROR, id="ENABLE_PUSH=2"),
    pytest.param({hf.ENABLE_PUSH: 1}, E.PROTOCOL_ERROR, id="ENABLE_PUSH=1"),
]


@pytest.mark.parametrize(("values", "code"), BAD_SETTINGS)
def test_bad_settings_value_is_a_protocol_error(values: dict[int, int], code: int) -> None:
    seen: dict[str, Any] = {}
    with ScriptedServer(
        raw_script(lambda s: s.sendall(hf.settings(values)), seen), handshake=False
    ) as server:
        with connect(server) as conn, fails_fast(hyper.ProtocolError) as outcome:
            get(conn)
    assert outcome.value.error_code == code
    assert goaway_codes(seen["frames"]) == {code}


def test_oversized_frame_header_fails_as_soon_as_the_header_arrives() -> None:
    # Only the 9-byte header, then silence: the length alone is the error.
    answer_fails_the_connection(lambda sid: hf.frame_header(2**24 - 1, hf.DATA, 0, sid), E.FRAME_SIZE_ERROR)


def test_whole_oversized_frame_is_a_frame_size_error() -> None:
    answer_fails_the_connection(lambda sid: hf.data(sid, b"x" * 16385), E.FRAME_SIZE_ERROR)


def test_unknown_frame_types_and_flags_are_ignored() -> None:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        sid = request.stream_id
        peer.send_raw(hf.frame(0xFA, 0xFF, 0, b"connection-level junk"))
        peer.send_raw(hf.frame(0x42, 0x00, sid, b"stream-level junk" * 10))
        peer.h2.send_headers(sid, [(b":status", b"200")])
        peer.flush()
        peer.send_raw(hf.frame(0x0B, 0x00, sid, b""))  # 0xB: unassigned (BLOCKED in the HTTP/2 drafts)
        peer.send_raw(hf.data(sid, b"hello", flags=0x02 | 0x04 | 0x10 | 0x20 | 0x40 | 0x80))
        peer.send_raw(hf.frame(hf.PING, 0xFE, 0, b"12345678"))  # no ACK bit, unknown bits set
        peer.send_raw(hf.frame(0xFF, 0x0F, sid, b"\x00" * 100))
        peer.send_raw(hf.data(sid, b" world", end_stream=True, flags=0xF0))
        client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        started = time.monotonic()
        response = conn.getresponse(conn.request("GET", "/"))
        assert response.status == 200
        assert response.read() == b"hello world"
        assert time.monotonic() - started < FAST


@pytest.mark.parametrize("stream_id", [3, 2], ids=["odd", "even"])
def test_server_initiated_headers_are_a_connection_error(stream_id: int) -> None:
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        peer.wait_request()
        peer.send_raw(hf.response_headers(stream_id, end_stream=True))
        seen["frames"] = client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        sid = conn.request("GET", "/")
        with fails_fast(hyper.ProtocolError) as outcome:
            conn.getresponse(sid)
        assert outcome.value.error_code == E.PROTOCOL_ERROR
        # The connection is dead for everyone, with the same error.
        with fails_fast(hyper.ProtocolError):
            get(conn)
    assert goaway_codes(seen["frames"]) == {E.PROTOCOL_ERROR}


def test_graceful_goaway_finishes_old_streams_fails_newer_ones_and_reconnects() -> None:
    def first_connection(peer: Peer) -> None:
        requests = [peer.wait_request() for _ in range(3)]
        peer.send_goaway(requests[1].stream_id)
        peer.respond(requests[0].stream_id, body=b"one")
        peer.respond(requests[1].stream_id, body=b"two")
        peer.hang_up()

    def second_connection(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"again")
        peer.drain_until_closed()

    with reconnecting_server(first_connection, second_connection) as server, connect(server) as conn:
        conn.retry_refused = False  # checks the retryable error itself: no transparent resend
        ids = [conn.request("GET", f"/{i}") for i in range(3)]
        assert conn.getresponse(ids[0]).read() == b"one"
        assert conn.getresponse(ids[1]).read() == b"two"
        with fails_fast(hyper.ConnectionTerminated) as outcome:
            conn.getresponse(ids[2])
        error = outcome.value
        assert (error.error_code, error.last_stream_id, error.retryable) == (E.NO_ERROR, ids[1], True)
        started = time.monotonic()
        retried = conn.request("GET", "/2")
        assert retried > ids[2]
        assert conn.getresponse(retried).read() == b"again"
        assert time.monotonic() - started < FAST


def test_error_goaway_carries_debug_data_and_splits_retryable_streams() -> None:
    def script(peer: Peer) -> None:
        first = peer.wait_request()
        peer.wait_request()
        peer.send_goaway(first.stream_id, E.INTERNAL_ERROR, b"backend exploded")
        client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        first, second = conn.request("GET", "/"), conn.request("GET", "/")
        with fails_fast(hyper.ConnectionTerminated) as processed:
            conn.getresponse(first)
        with fails_fast(hyper.ConnectionTerminated) as unprocessed:
            conn.getresponse(second)
    for outcome, retryable in ((processed, False), (unprocessed, True)):
        error = outcome.value
        assert (error.error_code, error.last_stream_id, error.retryable) == (
            E.INTERNAL_ERROR,
            first,
            retryable,
        )
        assert error.additional_data == b"backend exploded"
    assert "backend exploded" in str(processed.value)


def test_second_goaway_raising_last_stream_id_is_not_trusted() -> None:
    def script(peer: Peer) -> None:
        requests = [peer.wait_request() for _ in range(3)]
        peer.send_goaway(requests[0].stream_id)
        peer.send_goaway(requests[2].stream_id)  # "actually, I did process them": no
        peer.respond(requests[0].stream_id, body=b"one")
        peer.hang_up()

    with ScriptedServer(script) as server, connect(server) as conn:
        conn.retry_refused = False  # checks the retryable error itself: no transparent resend
        ids = [conn.request("GET", "/") for _ in range(3)]
        assert conn.getresponse(ids[0]).read() == b"one"
        for sid in ids[1:]:
            with fails_fast(hyper.ConnectionTerminated) as outcome:
                conn.getresponse(sid)
            assert (outcome.value.last_stream_id, outcome.value.retryable) == (ids[0], True)


@pytest.mark.parametrize(
    "how",
    ["fin", "rst"],
)
def test_idle_connection_closed_without_goaway_reconnects(how: str) -> None:
    response_read, closed = threading.Event(), threading.Event()

    def first_connection(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"one")
        assert response_read.wait(5)  # an RST could destroy the response before it is read
        if how == "fin":
            peer.sock.shutdown(socket.SHUT_WR)
            closed.set()
            hf.drain_raw(peer.sock, 5)
        else:
            kill_with_rst(peer.sock)
            closed.set()

    def second_connection(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"two")
        peer.drain_until_closed()

    with reconnecting_server(first_connection, second_connection) as server, connect(server) as conn:
        assert get(conn) == b"one"
        response_read.set()
        # Sent on loopback: once the server closed, the FIN or RST is in the
        # client's kernel.
        assert closed.wait(5)
        started = time.monotonic()
        assert get(conn) == b"two"
        assert time.monotonic() - started < FAST


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_connection_lost_mid_body_is_an_error_never_a_short_body(how: str) -> None:
    read_started = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"x" * 5000, end_stream=False)
        assert read_started.wait(5)
        if how == "fin":
            peer.hang_up()
        else:
            kill_with_rst(peer.sock)

    with ScriptedServer(script) as server, connect(server) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        assert response.read(100) == b"x" * 100
        read_started.set()
        with fails_fast(hyper.ConnectionTerminated) as outcome:
            response.read()
    assert outcome.value.retryable is False


def test_response_completed_before_a_connection_error_is_still_delivered() -> None:
    def script(peer: Peer) -> None:
        first = peer.wait_request()
        peer.wait_request()
        # One write: a whole response on the first stream, then garbage for the second.
        peer.h2.send_headers(first.stream_id, [(b":status", b"200")])
        peer.h2.send_data(first.stream_id, b"complete", end_stream=True)
        peer.send_raw(peer.h2.data_to_send() + hf.window_update(0, 0))
        client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        first, second = conn.request("GET", "/"), conn.request("GET", "/")
        with fails_fast(hyper.ProtocolError) as outcome:
            conn.getresponse(second)
        assert conn.getresponse(first).read() == b"complete"
    assert outcome.value.error_code == E.PROTOCOL_ERROR


# == Streams ====================================================================


def test_refused_stream_is_retryable_and_other_streams_live() -> None:
    def script(peer: Peer) -> None:
        first, second = peer.wait_request(), peer.wait_request()
        peer.h2.reset_stream(first.stream_id, E.REFUSED_STREAM)
        peer.respond(second.stream_id, body=b"fine")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        conn.retry_refused = False  # checks the retryable error itself: no transparent resend
        first, second = conn.request("GET", "/"), conn.request("GET", "/")
        with fails_fast(hyper.StreamResetError) as outcome:
            conn.getresponse(first)
        error = outcome.value
        assert (error.stream_id, error.error_code, error.retryable) == (first, E.REFUSED_STREAM, True)
        assert conn.getresponse(second).read() == b"fine"


@pytest.mark.parametrize("code", [E.CANCEL, E.INTERNAL_ERROR], ids=["CANCEL", "INTERNAL_ERROR"])
def test_reset_mid_body_fails_only_that_stream(code: int) -> None:
    def script(peer: Peer) -> None:
        first, second = peer.wait_request(), peer.wait_request()
        peer.respond(first.stream_id, body=b"a" * 1000, end_stream=False)
        peer.respond(second.stream_id, body=b"b" * 1000, end_stream=False)
        peer.h2.reset_stream(first.stream_id, code)
        peer.send_data(second.stream_id, b"b" * 1000, end_stream=True)
        third = peer.wait_request()
        peer.respond(third.stream_id, body=b"third")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        first, second = conn.request("GET", "/"), conn.request("GET", "/")
        response = conn.getresponse(first)
        with fails_fast(hyper.StreamResetError) as outcome:
            response.read()
        error = outcome.value
        assert (error.stream_id, error.error_code, error.retryable) == (first, code, False)
        assert conn.getresponse(second).read() == b"b" * 2000
        assert get(conn) == b"third"


def test_early_413_with_reset_no_error_stops_the_upload_and_returns_the_response() -> None:
    seen: dict[str, Any] = {}
    body = b"u" * (10 * MiB)

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        sid = request.stream_id
        received = 0
        for event in upload_events(peer, sid):
            received += len(event.data)
            if received >= 65535:  # the initial window: the client stalls here
                break
        peer.h2.acknowledge_received_data(received, sid)  # may let one more window through
        peer.respond(sid, status=413, body=b"too big")
        peer.h2.reset_stream(sid, E.NO_ERROR)
        peer.flush()
        frames = client_frames(peer)
        seen["received"] = received + data_bytes(frames, sid)
        seen["resets"] = rst_codes(frames)

    with ScriptedServer(script) as server, connect(server) as conn:
        started = time.monotonic()
        sid = conn.request("POST", "/upload", body=body)
        response = conn.getresponse(sid)
        assert (response.status, response.read()) == (413, b"too big")
        assert time.monotonic() - started < FAST
    assert seen["received"] <= 2 * 65535
    assert seen["resets"] == {}  # nothing to cancel: the server already reset the stream


def test_data_before_headers_fails_only_that_stream() -> None:
    seen: dict[str, Any] = {}
    answered = threading.Event()

    def script(peer: Peer) -> None:
        first, second = peer.wait_request(), peer.wait_request()
        peer.send_raw(hf.data(first.stream_id, b"body first", end_stream=True))
        peer.respond(second.stream_id, body=b"fine")
        answered.set()
        seen["frames"] = client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        first, second = conn.request("GET", "/"), conn.request("GET", "/")
        with fails_fast(hyper.ProtocolError) as outcome:
            conn.getresponse(first)
        assert outcome.value.error_code == E.PROTOCOL_ERROR
        if stream_errors_stay_on_their_stream():
            assert conn.getresponse(second).read() == b"fine"
        else:
            assert_the_connection_failed(conn, second)
        assert answered.wait(10)  # hang up only once the server has said everything
    if stream_errors_stay_on_their_stream():
        assert rst_codes(seen["frames"]) == {first: E.PROTOCOL_ERROR}
    else:
        assert every_goaway(seen["frames"]) == [E.PROTOCOL_ERROR]


def test_data_before_headers_is_a_protocol_error() -> None:
    # A stream error with the fast paths, a connection error without: the frames differ by mode.
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.send_raw(hf.data(request.stream_id, b"body first", end_stream=True))
        client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        with fails_fast(hyper.ProtocolError) as outcome:
            get(conn)
    assert outcome.value.error_code == E.PROTOCOL_ERROR


@pytest.mark.parametrize("same_read", [True, False], ids=["same-read", "later-read"])
def test_data_after_end_stream_keeps_the_response_and_the_connection(same_read: bool) -> None:
    seen: dict[str, Any] = {}

    response_read, extra_sent = threading.Event(), threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        sid = request.stream_id
        peer.h2.send_headers(sid, [(b":status", b"200")])
        peer.h2.send_data(sid, b"the whole body", end_stream=True)
        if same_read:
            peer.send_raw(peer.h2.data_to_send() + hf.data(sid, b"and then some"))
        else:
            peer.flush()
            assert response_read.wait(10)  # the client has read the response
            peer.send_raw(hf.data(sid, b"and then some"))
        extra_sent.set()
        tap = Tap(peer)
        again = peer.wait_request()
        peer.respond(again.stream_id, body=b"again")
        peer.drain_until_closed()
        seen["frames"] = tap.frames()

    with ScriptedServer(script) as server, connect(server) as conn:
        started = time.monotonic()
        first = conn.request("GET", "/")
        assert conn.getresponse(first).read() == b"the whole body"
        assert time.monotonic() - started < FAST
        response_read.set()
        assert extra_sent.wait(10)  # the stray DATA is on its way before the next request
        assert get(conn) == b"again"
    # RFC 9113 5.1: a stream error of type STREAM_CLOSED, the connection lives on.
    assert rst_codes(seen["frames"]) == {first: E.STREAM_CLOSED}
    assert goaway_codes(seen["frames"]) <= {E.NO_ERROR}


def test_informational_flood_fails_only_that_stream() -> None:
    early_hints = hf.literal(b":status", b"103")
    answer_fails_only_the_first_stream(lambda sid: hf.headers(sid, early_hints) * 1000, E.ENHANCE_YOUR_CALM)


def test_informational_with_end_stream_is_a_protocol_error() -> None:
    # A stream error with the fast paths, a connection error without: the frames differ by mode.
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.send_raw(hf.headers(request.stream_id, hf.literal(b":status", b"100"), end_stream=True))
        client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        with fails_fast(hyper.ProtocolError) as outcome:
            get(conn)
    assert outcome.value.error_code == E.PROTOCOL_ERROR


def test_informational_with_end_stream_fails_only_that_stream() -> None:
    seen: dict[str, Any] = {}
    answered = threading.Event()

    def script(peer: Peer) -> None:
        first, second = peer.wait_request(), peer.wait_request()
        peer.send_raw(hf.headers(first.stream_id, hf.literal(b":status", b"100"), end_stream=True))
        peer.respond(second.stream_id, body=b"fine")
        answered.set()
        seen["frames"] = client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        first, second = conn.request("GET", "/"), conn.request("GET", "/")
        with fails_fast(hyper.ProtocolError):
            conn.getresponse(first)
        if stream_errors_stay_on_their_stream():
            assert conn.getresponse(second).read() == b"fine"
        else:
            assert_the_connection_failed(conn, second)
        assert answered.wait(10)  # hang up only once the server has said everything
    if not stream_errors_stay_on_their_stream():
        assert every_goaway(seen["frames"]) == [E.PROTOCOL_ERROR]


# == Flow control ===============================================================


def test_data_past_our_stream_window_is_a_flow_control_error() -> None:
    # The server has acknowledged our SETTINGS (window 1000) during the handshake.
    answer_fails_the_connection(
        lambda sid: hf.response_headers(sid) + hf.data(sid, b"x" * 2000),
        E.FLOW_CONTROL_ERROR,
        stream_window=1000,
    )


def test_window_update_overflowing_the_connection_window_is_a_flow_control_error() -> None:
    # 65535 + 2^31-1 > 2^31-1
    answer_fails_the_connection(lambda sid: hf.window_update(0, 2**31 - 1), E.FLOW_CONTROL_ERROR)


def test_window_update_overflowing_a_stream_window_fails_only_that_stream() -> None:
    answer_fails_only_the_first_stream(lambda sid: hf.window_update(sid, 2**31 - 1), E.FLOW_CONTROL_ERROR)


def test_window_update_of_zero_on_the_connection_is_a_protocol_error() -> None:
    answer_fails_the_connection(lambda sid: hf.window_update(0, 0), E.PROTOCOL_ERROR)


def test_window_update_of_zero_on_a_stream_fails_only_that_stream() -> None:
    answer_fails_only_the_first_stream(lambda sid: hf.window_update(sid, 0), E.PROTOCOL_ERROR)


def test_initial_window_size_shrinking_to_zero_mid_upload_then_growing() -> None:
    body = bytes(range(256)) * 1200  # 300 KiB
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.h2.increment_flow_control_window(8 * MiB)  # only the stream window limits the client
        peer.flush()
        received = bytearray()
        events = upload_events(peer, sid)
        for event in events:
            received += event.data
            if len(received) >= 65535:  # the stream window is used up
                break
        # Shrink every stream window by 65535: the client's goes to -65535.
        peer.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        peer.flush()
        peer.wait_for(lambda e: isinstance(e, h2.events.SettingsAcknowledged))
        # Crediting what arrived brings it back to 0: still no room to send.
        peer.h2.increment_flow_control_window(65535, sid)
        peer.flush()
        quiet_until = time.monotonic() + 0.5
        while time.monotonic() < quiet_until:
            try:
                peer.read_events(quiet_until - time.monotonic())
            except TimeoutError:
                break
        seen["sent_while_closed"] = sum(
            len(e.data) for e in peer.events if isinstance(e, h2.events.DataReceived)
        )
        # Grow it again: the client must resume where it stopped.
        peer.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: MiB})
        peer.flush()
        for event in events:
            if isinstance(event, h2.events.StreamEnded):
                break
            received += event.data
        seen["body"] = bytes(received)
        peer.respond(sid, body=b"ok")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        started = time.monotonic()
        sid = conn.request("PUT", "/upload", body=body)
        assert conn.getresponse(sid).read() == b"ok"
        assert time.monotonic() - started < FAST
    assert seen["sent_while_closed"] == 0
    assert seen["body"] == body


def test_window_never_opened_is_a_write_timeout_without_busy_looping() -> None:
    def script(peer: Peer) -> None:
        peer.wait_request()
        peer.drain_until_closed(5)  # reads everything, never credits the window

    with ScriptedServer(script) as server, connect(server, timeout=(5, 1.0)) as conn:
        cpu_before = time.process_time()
        with fails_fast(hyper.WriteTimeout) as outcome:
            conn.request("POST", "/", body=b"x" * 200_000)
        cpu_used = time.process_time() - cpu_before
    assert outcome.elapsed >= 0.9  # it did wait for the window
    assert cpu_used < 0.25, f"{cpu_used:.2f} s of CPU while waiting {outcome.elapsed:.2f} s: a busy loop"


# == Headers ====================================================================


def header_frames(stream_id: int, header_block: bytes, end_stream: bool = False) -> bytes:
    """HEADERS plus CONTINUATIONs carrying ``header_block`` in 16 KiB pieces."""
    pieces = [header_block[i : i + 16384] for i in range(0, len(header_block), 16384)] or [b""]
    out = hf.headers(stream_id, pieces[0], end_stream=end_stream, end_headers=len(pieces) == 1)
    for index, piece in enumerate(pieces[1:], start=2):
        out += hf.continuation(stream_id, piece, end_headers=index == len(pieces))
    return out


def test_hpack_bomb_stops_at_max_header_list_size() -> None:
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        # One 4 KB entry in the dynamic table, then 12,000 one-byte references
        # to it: 16 KB on the wire, 48 MB once decoded.
        bomb = hf.STATUS_200 + hf.literal_indexed(b"x-bomb", b"a" * 4000) + hf.indexed(62) * 12_000
        peer.send_raw(hf.headers(sid, bomb, end_stream=True))
        seen["frames"] = client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        tracemalloc.start()
        try:
            with fails_fast(hyper.ProtocolError) as outcome:
                get(conn)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert outcome.value.error_code == E.ENHANCE_YOUR_CALM
    assert peak < 4 * MiB, f"decoding peaked at {peak / MiB:.1f} MiB"
    assert goaway_codes(seen["frames"]) == {E.ENHANCE_YOUR_CALM}


def test_large_header_list_under_the_limit_across_continuations_is_fine() -> None:
    fields = [(f"x-big-{i}".encode(), b"v" * 4000) for i in range(15)]  # about 60 KB decoded

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.send_raw(header_frames(sid, hf.STATUS_200 + hf.block(*fields), end_stream=True))
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        assert response.status == 200
        assert response.headers[b"x-big-14"] == [b"v" * 4000]
        assert response.read() == b""


def test_bad_hpack_index_is_a_compression_error() -> None:
    answer_fails_the_connection(
        lambda sid: hf.headers(sid, hf.STATUS_200 + hf.indexed(1000), end_stream=True), E.COMPRESSION_ERROR
    )


MALFORMED_RESPONSES = [
    pytest.param(hf.block((b"content-type", b"text/plain")), id="no-status"),
    pytest.param(hf.STATUS_200 + hf.literal(b":status", b"204"), id="two-status"),
    pytest.param(hf.literal(b":status", b"abc"), id="status-abc"),
    pytest.param(hf.literal(b":status", b"2000"), id="status-2000"),
    pytest.param(hf.literal(b":status", b"099"), id="status-099"),
    pytest.param(hf.block((b"server", b"x"), (b":status", b"200")), id="status-after-field"),
    pytest.param(hf.STATUS_200 + hf.literal(b":path", b"/"), id="request-pseudo-header"),
    pytest.param(hf.STATUS_200 + hf.literal(b":foo", b"bar"), id="unknown-pseudo-header"),
    pytest.param(hf.STATUS_200 + hf.literal(b"x-evil", b"a\r\nset-cookie: b"), id="CRLF-in-value"),
    pytest.param(hf.STATUS_200 + hf.literal(b"x-evil", b"a\nb"), id="LF-in-value"),
    pytest.param(hf.STATUS_200 + hf.literal(b"x-evil", b"a\x00b"), id="NUL-in-value"),
    pytest.param(hf.STATUS_200 + hf.literal(b"x-ev\nil", b"a"), id="LF-in-name"),
    pytest.param(hf.STATUS_200 + hf.literal(b"X-Upper", b"a"), id="upper-case-name"),
    pytest.param(hf.STATUS_200 + hf.literal(b"connection", b"keep-alive"), id="connection"),
    pytest.param(hf.STATUS_200 + hf.literal(b"transfer-encoding", b"chunked"), id="transfer-encoding"),
    pytest.param(hf.STATUS_200 + hf.literal(b"keep-alive", b"timeout=5"), id="keep-alive"),
    pytest.param(hf.STATUS_200 + hf.literal(b"upgrade", b"h2c"), id="upgrade"),
    pytest.param(
        hf.STATUS_200 + hf.literal(b"content-length", b"abc"),
        id="content-length-abc",
    ),
    pytest.param(
        hf.STATUS_200 + hf.literal(b"content-length", b"5") + hf.literal(b"content-length", b"6"),
        id="content-length-conflict",
    ),
]


@pytest.mark.parametrize("header_block", MALFORMED_RESPONSES)
def test_malformed_response_headers_fail_only_that_stream(header_block: bytes) -> None:
    seen: dict[str, Any] = {}

    # hyper's own header checks fail only the stream in both modes; a bad
    # content-length is h2's to find, and its public API ends the connection.
    per_stream = stream_errors_stay_on_their_stream() or b"content-length" not in header_block
    answered = threading.Event()

    def script(peer: Peer) -> None:
        first, second = peer.wait_request(), peer.wait_request()
        if not per_stream:
            # The client's h2 ends the connection here: the rest is raw frames.
            peer.send_raw(hf.headers(first.stream_id, header_block))
            peer.respond(second.stream_id, body=b"fine")
            answered.set()
            seen["frames"] = client_frames(peer)
            return
        tap = Tap(peer)
        # No END_STREAM: the stream stays open, so the client must reset it.
        peer.send_raw(hf.headers(first.stream_id, header_block))
        peer.respond(second.stream_id, body=b"fine")
        third = peer.wait_request()
        peer.respond(third.stream_id, body=b"third")
        peer.drain_until_closed()
        seen["frames"] = tap.frames()

    with ScriptedServer(script) as server, connect(server) as conn:
        first, second = conn.request("GET", "/"), conn.request("GET", "/")
        with fails_fast(hyper.ProtocolError) as outcome:
            conn.getresponse(first)
        assert outcome.value.error_code == E.PROTOCOL_ERROR
        if not per_stream:
            assert_the_connection_failed(conn, second)
            assert answered.wait(10)  # hang up only once the server has said everything
        else:
            assert conn.getresponse(second).read() == b"fine"
            assert get(conn) == b"third"
    if not per_stream:
        assert every_goaway(seen["frames"]) == [E.PROTOCOL_ERROR]
        return
    assert rst_codes(seen["frames"]) == {first: E.PROTOCOL_ERROR}
    assert goaway_codes(seen["frames"]) == {E.NO_ERROR}


def test_continuation_flood_is_cut_short() -> None:
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        flood = hf.headers(sid, hf.STATUS_200, end_headers=False) + hf.continuation(sid) * 10_000
        try:
            peer.send_raw(flood)
        except OSError:
            pass  # the client hung up mid-flood, as it should
        seen["frames"] = client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        with fails_fast(hyper.ProtocolError) as outcome:
            get(conn)
    # RFC 9113 does not name the code; h2 says PROTOCOL_ERROR, nghttp2 ENHANCE_YOUR_CALM.
    assert outcome.value.error_code in (E.PROTOCOL_ERROR, E.ENHANCE_YOUR_CALM)
    assert goaway_codes(seen["frames"]) == {outcome.value.error_code}


@pytest.mark.parametrize(
    "trailer_block",
    [
        pytest.param(hf.literal(b":status", b"200"), id="status-in-trailers"),
        pytest.param(hf.literal(b":path", b"/x"), id="path-in-trailers"),
        pytest.param(hf.literal(b"x-t", b"a\r\nb"), id="CRLF-in-trailers"),
    ],
)
def test_malformed_trailers_fail_only_that_stream(trailer_block: bytes) -> None:
    def script(peer: Peer) -> None:
        first, second = peer.wait_request(), peer.wait_request()
        peer.respond(first.stream_id, body=b"body", end_stream=False)
        peer.send_raw(hf.headers(first.stream_id, trailer_block, end_stream=True))
        peer.respond(second.stream_id, body=b"fine")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        first, second = conn.request("GET", "/"), conn.request("GET", "/")
        response = conn.getresponse(first)
        with fails_fast(hyper.ProtocolError) as outcome:
            response.read()
        assert outcome.value.error_code == E.PROTOCOL_ERROR
        assert conn.getresponse(second).read() == b"fine"


@pytest.mark.parametrize(
    "headers",
    [
        {"x-a": "1\r\nx-b: 2"},
        {"x-a": "1\nx-b: 2"},
        {"x-a": "1\rx"},
        {"x-a": "a\x00b"},
        {"x-a\r\nx-b": "1"},
        {"x-a\x00": "1"},
        {b"x-a": b"1\r\n"},
    ],
    ids=["CRLF-value", "LF-value", "CR-value", "NUL-value", "CRLF-name", "NUL-name", "bytes-CRLF"],
)
def test_caller_headers_with_cr_lf_nul_are_refused_before_anything_is_sent(headers: dict[Any, Any]) -> None:
    seen: list[tuple[int, bytes, list[bytes]]] = []

    def script(peer: Peer) -> None:
        for _ in range(2):
            request = peer.wait_request()
            fields = dict(request.headers)
            seen.append(
                (request.stream_id, fields[b":path"], [name for name in fields if name.startswith(b"x-")])
            )
            peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        with pytest.raises(hyper.InvalidHeader):
            conn.request("GET", "/bad", headers=headers)
        sid = conn.putrequest("GET", "/bad-too")
        for name, value in headers.items():
            # putheader() refuses the field at once and keeps nothing of it (issue 12).
            with pytest.raises(hyper.InvalidHeader):
                conn.putheader(name, value, stream_id=sid)
        conn.endheaders(stream_id=sid, final=True)
        assert conn.getresponse(sid).read() == b"ok"
        assert get(conn, "/clean") == b"ok"
    # Nothing of the refused request or fields reached the server, not even a stream id.
    assert seen == [(1, b"/bad-too", []), (3, b"/clean", [])]


# == Bodies =====================================================================


@pytest.mark.parametrize(
    ("declared", "sent"), [(b"10", b"hello"), (b"3", b"hello world")], ids=["shorter", "longer"]
)
def test_content_length_mismatch_is_an_error_never_a_short_body(declared: bytes, sent: bytes) -> None:
    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.send_raw(
            hf.response_headers(sid, (b"content-length", declared)) + hf.data(sid, sent, end_stream=True)
        )
        client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        with fails_fast(hyper.ProtocolError) as outcome:
            conn.getresponse(conn.request("GET", "/")).read()
    assert outcome.value.error_code == E.PROTOCOL_ERROR


@pytest.mark.parametrize(
    ("declared", "sent"), [(b"10", b"hello"), (b"3", b"hello world")], ids=["shorter", "longer"]
)
def test_content_length_mismatch_fails_only_that_stream(declared: bytes, sent: bytes) -> None:
    seen: dict[str, Any] = {}
    answered = threading.Event()

    def script(peer: Peer) -> None:
        first, second = peer.wait_request(), peer.wait_request()
        peer.send_raw(
            hf.response_headers(first.stream_id, (b"content-length", declared))
            + hf.data(first.stream_id, sent, end_stream=True)
        )
        peer.respond(second.stream_id, body=b"fine")
        answered.set()
        seen["frames"] = client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        first, second = conn.request("GET", "/"), conn.request("GET", "/")
        with fails_fast(hyper.ProtocolError):
            conn.getresponse(first).read()
        if stream_errors_stay_on_their_stream():
            assert conn.getresponse(second).read() == b"fine"
        else:
            assert_the_connection_failed(conn, second)
        assert answered.wait(10)  # hang up only once the server has said everything
    if not stream_errors_stay_on_their_stream():
        assert every_goaway(seen["frames"]) == [E.PROTOCOL_ERROR]


def test_head_response_with_content_length_and_no_body_is_fine() -> None:
    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.respond(sid, headers=[(b"content-length", b"12345")])
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        response = conn.getresponse(conn.request("HEAD", "/"))
        assert response.headers[b"content-length"] == [b"12345"]
        assert response.read() == b""


@pytest.mark.parametrize(
    ("method", "status"),
    [
        ("HEAD", b"200"),
        ("GET", b"204"),
        ("GET", b"304"),
    ],
)
def test_body_on_a_response_that_cannot_have_one_is_a_protocol_error(method: str, status: bytes) -> None:
    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.send_raw(
            hf.headers(sid, hf.literal(b":status", status)) + hf.data(sid, b"smuggled", end_stream=True)
        )
        client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        with fails_fast(hyper.ProtocolError) as outcome:
            conn.getresponse(conn.request(method, "/")).read()
    assert outcome.value.error_code == E.PROTOCOL_ERROR


@functools.cache
def _compressed_zeros(coding: str, size: int) -> bytes:
    """``size`` zero bytes compressed, built 1 MiB at a time (never 100 MiB in memory)."""
    chunk = bytes(MiB)
    if coding == "gzip":
        compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        out = [compressor.compress(chunk) for _ in range(size // MiB)]
        return b"".join(out) + compressor.flush()
    brotli_compressor = brotli.Compressor(quality=5)
    out = [brotli_compressor.process(chunk) for _ in range(size // MiB)]
    return b"".join(out) + brotli_compressor.finish()


@pytest.mark.parametrize("how", ["read", "read_chunked"])
@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_decompression_bomb_raises_decoded_size_exceeded_with_bounded_memory(coding: str, how: str) -> None:
    bomb = _compressed_zeros(coding, 100 * MiB)
    limit = 10 * MiB

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.respond(sid, headers=[(b"content-encoding", coding.encode())], body=bomb)
        peer.drain_until_closed()

    with (
        ScriptedServer(script) as server,
        connect(server, limits=hyper.Limits(max_decoded_size=limit)) as conn,
    ):
        response = conn.getresponse(conn.request("GET", "/"))
        tracemalloc.start()
        try:
            with fails_fast(hyper.DecodedSizeExceeded, within=5.0) as outcome:
                if how == "read":
                    response.read()
                else:
                    for _ in response.read_chunked():
                        pass
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert outcome.value.limit == limit
    # read() holds what it decoded until the limit trips; read_chunked() holds one piece.
    assert peak < (2 * limit if how == "read" else 8 * MiB), f"decoding peaked at {peak / MiB:.1f} MiB"


def test_content_encoding_chain_longer_than_five_is_a_decode_error() -> None:
    body = b"hi"
    for _ in range(6):
        body = gzip.compress(body, mtime=0)

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.respond(sid, headers=[(b"content-encoding", b"gzip, gzip, gzip, gzip, gzip, gzip")], body=body)
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        with fails_fast(hyper.DecodeError):
            conn.getresponse(conn.request("GET", "/")).read()


@pytest.mark.parametrize(
    "body",
    [
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03this is not deflate data at all",
        gzip.compress(b"hello world " * 1000, mtime=0)[:-12],
        b"plain text, not gzip",
    ],
    ids=["corrupt", "truncated", "not-gzip"],
)
def test_corrupt_or_truncated_gzip_is_a_decode_error(body: bytes) -> None:
    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.respond(sid, headers=[(b"content-encoding", b"gzip")], body=body)
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        with fails_fast(hyper.DecodeError):
            conn.getresponse(conn.request("GET", "/")).read()


# == TLS ========================================================================


def _server_context(
    chain_and_key: trustme.LeafCert | tuple[str, str], alpn: tuple[str, ...] = ("h2",)
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if isinstance(chain_and_key, tuple):
        context.load_cert_chain(*chain_and_key)
    else:
        chain_and_key.configure_cert(context)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def _tls_script(context: ssl.SSLContext, seen: dict[str, Any]) -> Callable[[Peer], None]:
    """Do the TLS handshake by hand (a failure is the point), then wait for the client to leave."""

    def script(peer: Peer) -> None:
        try:
            tls = context.wrap_socket(peer.sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            seen["server_error"] = exc
            return
        try:
            seen["alpn"] = tls.selected_alpn_protocol()
            hf.drain_raw(tls, 5)
        finally:
            tls.close()

    return script


def _tls_connect(server: ScriptedServer, ca_file: str, **kwargs: Any) -> HTTP20Connection:
    context = kwargs.pop("ssl_context", None) or hyper.tls.init_context(cert_path=ca_file)
    kwargs.setdefault("timeout", TIMEOUT)
    return HTTP20Connection("127.0.0.1", server.port, secure=True, ssl_context=context, **kwargs)


def _self_signed(directory: Any) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "self.pem", directory / "self.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


@pytest.mark.parametrize("problem", ["wrong-hostname", "expired", "self-signed", "unknown-ca"])
def test_untrusted_certificate_is_a_tls_error(
    problem: str, test_ca: trustme.CA, ca_file: str, tmp_path: Any
) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    if problem == "wrong-hostname":
        chain: Any = test_ca.issue_cert("wrong.invalid")
    elif problem == "expired":
        chain = test_ca.issue_cert(
            "127.0.0.1",
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        )
    elif problem == "self-signed":
        chain = _self_signed(tmp_path)
    else:
        chain = trustme.CA().issue_cert("127.0.0.1")
    seen: dict[str, Any] = {}
    with ScriptedServer(_tls_script(_server_context(chain), seen), handshake=False) as server:
        with _tls_connect(server, ca_file) as conn, fails_fast(hyper.TLSError) as outcome:
            conn.connect()
    assert isinstance(outcome.value.__cause__, ssl.SSLCertVerificationError)
    assert outcome.value.selected_protocol is None


@pytest.mark.parametrize(
    ("server_alpn", "selected"), [(("http/1.1",), "http/1.1"), ((), None)], ids=["http/1.1", "none"]
)
def test_alpn_without_h2_is_a_tls_error_naming_the_selection(
    server_alpn: tuple[str, ...], selected: str | None, server_cert: trustme.LeafCert, ca_file: str
) -> None:
    seen: dict[str, Any] = {}
    # A client offering http/1.1 too (as HTTPConnection does) lets the server pick it.
    client_context = hyper.tls.init_context(cert_path=ca_file, alpn=("h2", "http/1.1"))
    script = _tls_script(_server_context(server_cert, server_alpn), seen)
    with ScriptedServer(script, handshake=False) as server:
        with _tls_connect(server, ca_file, ssl_context=client_context) as conn:
            with fails_fast(hyper.TLSError) as outcome:
                conn.connect()
    assert outcome.value.selected_protocol == selected
    assert seen["alpn"] == selected


def test_eof_during_tls_handshake_is_a_tls_error(ca_file: str) -> None:
    def script(peer: Peer) -> None:
        peer.sock.recv(65536)  # the ClientHello, then hang up without a word
        peer.sock.shutdown(socket.SHUT_RDWR)

    with ScriptedServer(script, handshake=False) as server:
        with _tls_connect(server, ca_file) as conn, fails_fast(hyper.TLSError):
            conn.connect()


def test_tls_handshake_stall_is_a_connect_timeout(ca_file: str) -> None:
    def script(peer: Peer) -> None:
        hf.drain_raw(peer.sock, 5)  # read the ClientHello, never answer

    with ScriptedServer(script, handshake=False) as server:
        with _tls_connect(server, ca_file, timeout=(0.5, 5)) as conn:
            with fails_fast(hyper.ConnectTimeout) as outcome:
                conn.connect()
    assert outcome.elapsed >= 0.4


# == Timeouts ===================================================================


def test_accept_then_silence_is_a_read_timeout() -> None:
    with ScriptedServer(lambda peer: hf.drain_raw(peer.sock, 5), handshake=False) as server:
        with connect(server, timeout=(5, 0.5)) as conn, fails_fast(hyper.ReadTimeout) as outcome:
            get(conn)
    assert outcome.elapsed >= 0.4


def test_stall_mid_body_is_a_read_timeout_not_a_short_body() -> None:
    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        peer.respond(sid, body=b"x" * 1000, end_stream=False)
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server, timeout=(5, 0.5)) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        with fails_fast(hyper.ReadTimeout) as outcome:
            response.read()
    assert outcome.elapsed >= 0.4


def test_dribbling_server_is_cut_off_by_the_overall_deadline() -> None:
    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        try:
            peer.respond(sid, body=b"", end_stream=False)
            for _ in range(25):  # one byte per 100 ms: 2.5 s in all
                peer.h2.send_data(sid, b"x")
                peer.flush()
                time.sleep(0.1)
            peer.h2.end_stream(sid)
            peer.flush()
        except OSError:
            return  # the client gave up, as it should
        hf.drain_raw(peer.sock, 5)

    with ScriptedServer(script) as server, connect(server, timeout=5, deadline=1.0) as conn:
        with fails_fast(hyper.ReadTimeout) as outcome:
            get(conn)
    assert outcome.elapsed >= 0.9
    assert "deadline" in str(outcome.value)


# == Floods =====================================================================


FLOODS = [
    pytest.param(lambda sid: hf.ping() * 5_000, id="PING"),
    pytest.param(lambda sid: hf.settings() * 5_000, id="SETTINGS"),
    pytest.param(lambda sid: hf.response_headers(sid) + hf.data(sid) * 5_000, id="empty-DATA"),
]


@pytest.mark.parametrize("flood", FLOODS)
def test_flood_is_enhance_your_calm(flood: Callable[[int], bytes]) -> None:
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        sid = peer.wait_request().stream_id
        try:
            peer.send_raw(flood(sid))  # without reading what the client answers meanwhile
        except OSError:
            return  # the client hung up mid-flood, as it should
        seen["frames"] = client_frames(peer)

    with ScriptedServer(script) as server, connect(server) as conn:
        with fails_fast(hyper.ProtocolError) as outcome:
            get(conn)
    assert outcome.value.error_code == E.ENHANCE_YOUR_CALM
    if "frames" in seen:
        assert goaway_codes(seen["frames"]) == {E.ENHANCE_YOUR_CALM}


# == Stream ids =================================================================


def test_stream_id_exhaustion_moves_to_a_new_connection() -> None:
    def first_connection(peer: Peer) -> None:
        request = peer.wait_request()
        assert request.stream_id == 2**31 - 1
        peer.respond(request.stream_id, body=b"last id")
        peer.drain_until_closed()

    def second_connection(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"fresh connection")
        peer.drain_until_closed()

    with reconnecting_server(first_connection, second_connection) as server, connect(server) as conn:
        conn.connect()
        # Nobody sends 2^30 requests in a test: start the id counter near its end instead.
        conn._sessions.current._core._h2.highest_outbound_stream_id = 2**31 - 3
        assert get(conn) == b"last id"
        started = time.monotonic()
        assert get(conn) == b"fresh connection"
        assert time.monotonic() - started < FAST

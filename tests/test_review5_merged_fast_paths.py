"""review5: the merged speed changes (seq, dl) against what the general paths give.

seq (merge 0ac9e2a): a small response that arrived whole is handed over with
its headers and read from memory. These tests take that path for sure (a
PING's ACK, sent after the response, is back before getresponse()) and read
it the ways a 0.7 caller does: decoded in steps, raw, into a buffer, in
chunks, a HEAD response, one with trailers, one with a push promised on it.

dl (merge 677e242): runs of DATA frames on one stream are accounted for in
one step. A run cut by RST_STREAM, or one that crosses the declared
content-length, must deliver exactly the bytes before the failure, fail only
that stream and leave the connection windows right for the next request.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterator

import h2.errors
import pytest

from hyper import HTTP20Connection, HTTP20Response
from hyper.exceptions import HyperError, ProtocolError, StreamResetError
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used below
from tests.scripted import Peer, ScriptedServer

_WAIT = 10.0  # bounds every wait; events are ordered with Events and PINGs, never timed
_PLAIN = b"abcdefghij" * 500
_GZIPPED = gzip.compress(_PLAIN)
_FRAME = 16384


def _gzip_answer(head: bool = False, trailers: bool = False, push: bool = False) -> Callable[[Peer], None]:
    """A script answering one request with the gzipped body, whole, in one write."""

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        stream_id = request.stream_id
        if push:
            authority = f"127.0.0.1:{peer.sock.getsockname()[1]}".encode()
            pushed = [
                (b":method", b"GET"),
                (b":path", b"/p"),
                (b":scheme", b"http"),
                (b":authority", authority),
            ]
            peer.h2.push_stream(stream_id, 2, pushed)
        fields = [
            (b":status", b"200"),
            (b"content-encoding", b"gzip"),
            (b"content-length", b"%d" % len(_GZIPPED)),
        ]
        peer.h2.send_headers(stream_id, fields, end_stream=head)
        if not head:
            peer.h2.send_data(stream_id, _GZIPPED, end_stream=not trailers)
            if trailers:
                peer.h2.send_headers(stream_id, [(b"x-sum", b"42")], end_stream=True)
        if push:
            peer.h2.send_headers(2, [(b":status", b"200")])
            peer.h2.send_data(2, b"pushed", end_stream=True)
        peer.flush()
        peer.drain_until_closed()

    return script


@pytest.fixture
def connect() -> Iterator[Callable[[Callable[[Peer], None], bool], HTTP20Connection]]:
    """Start a scripted server and connect to it; both are closed at the end."""
    servers: list[ScriptedServer] = []
    conns: list[HTTP20Connection] = []

    def start(script: Callable[[Peer], None], enable_push: bool = False) -> HTTP20Connection:
        server = ScriptedServer(script).__enter__()
        servers.append(server)
        conn = HTTP20Connection(
            "127.0.0.1", server.port, secure=False, timeout=_WAIT, enable_push=enable_push
        )
        conns.append(conn)
        return conn

    yield start
    for conn in conns:
        conn.close()
    for server in servers:
        server.stop()


def _whole_response(conn: HTTP20Connection, method: str = "GET") -> tuple[int, HTTP20Response]:
    stream_id = conn.request(method, "/")
    # The ACK comes after the response on the wire: the response is whole in the client.
    conn.ping(b"12345678")
    return stream_id, conn.getresponse(stream_id)


@pytest.mark.parametrize("mode", ["steps", "into", "raw", "chunked"])
def test_a_held_gzip_body_reads_as_the_general_path_reads_it(
    connect: Callable[..., HTTP20Connection], mode: str
) -> None:
    conn = connect(_gzip_answer())
    _, resp = _whole_response(conn)
    assert resp._held is not None  # the early path was taken
    if mode == "steps":
        assert resp.read(7) + resp.read(100) + resp.read() == _PLAIN
    elif mode == "into":
        first = resp.read(3)
        buffer = bytearray(len(_PLAIN))
        taken = resp.readinto(buffer)
        assert first + bytes(buffer[:taken]) == _PLAIN
        assert resp.readinto(buffer) == 0
    elif mode == "raw":
        raw = resp.read(5, decode_content=False) + resp.read(decode_content=False)
        assert raw == _GZIPPED
    else:
        assert b"".join(resp.read_chunked()) == _PLAIN
    assert resp.closed
    assert not conn._current_session().has_streams()


def test_a_held_head_response_is_empty(connect: Callable[..., HTTP20Connection]) -> None:
    conn = connect(_gzip_answer(head=True))
    _, resp = _whole_response(conn, "HEAD")
    assert resp.headers[b"content-length"] == [b"%d" % len(_GZIPPED)]
    assert resp.read() == b"" and resp.closed


def test_a_held_body_brings_its_trailers_at_its_end(connect: Callable[..., HTTP20Connection]) -> None:
    conn = connect(_gzip_answer(trailers=True))
    _, resp = _whole_response(conn)
    assert resp._held is not None
    assert len(resp.trailers) == 0
    assert resp.read() == _PLAIN
    assert resp.trailers[b"x-sum"] == [b"42"]


def test_a_push_promised_on_a_whole_response_is_still_handed_out(
    connect: Callable[..., HTTP20Connection],
) -> None:
    conn = connect(_gzip_answer(push=True), True)
    stream_id, resp = _whole_response(conn)
    pushes = list(conn.get_pushes(stream_id, capture_all=True))
    assert [push.path for push in pushes] == ["/p"]
    assert pushes[0].getresponse().read() == b"pushed"
    assert resp.read() == _PLAIN


def _run_then(failure: Callable[[Peer, int], None], declared: int | None) -> Callable[[Peer], None]:
    """Three full DATA frames in one write, then ``failure``; then a small second answer."""

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        fields = [(b":status", b"200")]
        if declared is not None:
            fields.append((b"content-length", b"%d" % declared))
        peer.h2.send_headers(request.stream_id, fields)
        for index in range(3):
            peer.h2.send_data(request.stream_id, bytes([65 + index]) * _FRAME)
        failure(peer, request.stream_id)
        peer.flush()
        second = peer.wait_request()
        peer.respond(second.stream_id, body=b"next")
        peer.drain_until_closed()

    return script


def _reset(peer: Peer, stream_id: int) -> None:
    peer.h2.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)


def _past_length(peer: Peer, stream_id: int) -> None:
    # A fourth frame of the same run, beyond the declared length (h2 does
    # not check what it sends): the run's one step must refuse, and the
    # frame-by-frame fallback must fail exactly that frame.
    peer.h2.send_data(stream_id, b"D" * _FRAME)
    peer.h2.end_stream(stream_id)


_RUN_BYTES = b"A" * _FRAME + b"B" * _FRAME + b"C" * _FRAME


# DATA runs exist only on the fast paths; with h2's public API alone a frame
# h2 refuses ends the connection (design.rst, "the fence"), as RFC 9113
# section 5.4 allows.
@pytest.mark.usefixtures("fast_paths_on")
@pytest.mark.parametrize(
    ("failure", "declared", "error"),
    [(_reset, None, StreamResetError), (_past_length, 3 * _FRAME + 10, ProtocolError)],
    ids=["reset-after-run", "run-crosses-content-length"],
)
def test_a_failed_run_gives_its_bytes_fails_its_stream_and_the_connection_goes_on(
    connect: Callable[..., HTTP20Connection],
    failure: Callable[[Peer, int], None],
    declared: int | None,
    error: type[HyperError],
) -> None:
    conn = connect(_run_then(failure, declared))
    stream_id = conn.request("GET", "/")
    conn.ping(b"12345678")  # the whole run and its failure are in the client
    resp = conn.getresponse(stream_id)
    with pytest.raises(error) as failed:
        resp.read()
    assert getattr(failed.value, "partial", None) == _RUN_BYTES
    # The connection window was credited for every byte: a new request is answered.
    assert conn.getresponse(conn.request("GET", "/next")).read() == b"next"
    assert conn._current_session().refusal() == (None, True)


def test_the_held_path_leaves_no_thread_waiting(connect: Callable[..., HTTP20Connection]) -> None:
    # Many whole responses in a row on one connection: each is taken with its
    # headers and the stream is finished with at once (the count stays 0).
    answered = threading.Event()

    def script(peer: Peer) -> None:
        for _ in range(20):
            request = peer.wait_request()
            peer.respond(request.stream_id, body=b"x" * 100)
        answered.set()
        peer.drain_until_closed()

    conn = connect(script)
    for _ in range(20):
        assert conn.getresponse(conn.request("GET", "/")).read() == b"x" * 100
        assert not conn._current_session().has_streams()
    assert answered.wait(_WAIT)

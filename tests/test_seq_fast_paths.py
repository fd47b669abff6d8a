"""The per-request shortcuts of issue 14's seq work do what the general paths do.

* A small response that arrived whole comes with its headers
  (``H2Session.await_response_start``): reading it needs no second session
  call, and what the application sees (bytes, pieces, trailers, ``closed``,
  closing early) is what reading through ``read_body`` gives.
* A bare request (no body, no caller field) reuses the fields built for the
  same method, path, authority and scheme: the same HEADERS as the general path.
* Response header blocks skip h2's processing pipeline when it could only
  copy them: the same fields (and field classes) as h2's own path.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h2.events
import hpack
import pytest

import hyper
from hyper import HTTP20Connection, HTTP20Response
from hyper.common import sockets
from hyper.exceptions import InvalidHeader
from hyper.http20 import h2_internals
from hyper.http20.session import HELD_BODY_MAX
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used below
from tests.scripted import Peer, ScriptedServer
from tests.test_fast_steps import REQUEST, Pair, _blocks
from tests.test_request_fast_paths import connection

_WAIT = 10.0  # bounds every wait; events are ordered with Events, never timed


def _connect(server: ScriptedServer) -> HTTP20Connection:
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=_WAIT)


class Spy:
    """Counts the session's read_body calls of one connection."""

    def __init__(self, conn: HTTP20Connection, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = 0
        session = conn._current_session()
        real = session.read_body

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.reads += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(session, "read_body", counting)


def _respond_then_signal(
    body: bytes, sent: threading.Event, trailers: list[tuple[bytes, bytes]] | None = None
) -> Any:
    """A script answering one request whole (in one write), then setting ``sent``."""

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        headers = [(b":status", b"200"), (b"content-length", str(len(body)).encode())]
        peer.h2.send_headers(request.stream_id, headers, end_stream=not body and not trailers)
        if body and len(body) <= 16384:
            peer.h2.send_data(request.stream_id, body, end_stream=not trailers)
        elif body:  # in frames the windows allow
            peer.send_data(request.stream_id, body, end_stream=not trailers)
        if trailers:
            peer.h2.send_headers(request.stream_id, trailers, end_stream=True)
        # A small response leaves in one sendall: on loopback the client's
        # next read takes it all.
        peer.flush()
        sent.set()
        peer.drain_until_closed()

    return script


@dataclass
class WholeResponse:
    """A response that had arrived whole when the client asked for it, and its connection."""

    conn: HTTP20Connection
    resp: HTTP20Response
    spy: Spy  # the connection's read_body calls, counted from before the response arrived


@pytest.fixture
def whole_response(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WholeResponse]:
    """``GET /`` answered whole (``request.param``: the body and the trailers) before getresponse()."""
    body, trailers = request.param
    sent = threading.Event()
    with ScriptedServer(_respond_then_signal(body, sent, trailers)) as server, _connect(server) as conn:
        stream_id = conn.request("GET", "/")
        spy = Spy(conn, monkeypatch)
        assert sent.wait(_WAIT)
        yield WholeResponse(conn, conn.getresponse(stream_id), spy)


@pytest.mark.parametrize("whole_response", [(b"hello world", [(b"x-sum", b"42")])], indirect=True)
def test_a_whole_small_response_is_read_without_a_second_session_call(whole_response: WholeResponse) -> None:
    resp, spy = whole_response.resp, whole_response.spy
    early = resp.trailers
    assert not resp.closed and len(early) == 0  # trailers only once the body was read to its end
    assert resp.read(5) == b"hello"
    assert len(resp.trailers) == 0 and not resp.closed
    assert resp.read(1) == b" "
    assert resp.read() == b"world"
    assert resp.closed and early is resp.trailers and resp.trailers[b"x-sum"] == [b"42"]
    assert resp.read() == b"" and resp.read(3) == b""
    assert spy.reads == 0
    # The stream is finished with: the connection carries on.
    assert not whole_response.conn._current_session().has_streams()


@pytest.mark.parametrize("whole_response", [(b"", None)], indirect=True)
def test_a_whole_empty_response_reads_as_empty_and_then_closed(whole_response: WholeResponse) -> None:
    resp, spy = whole_response.resp, whole_response.spy
    assert not resp.closed
    assert resp.read() == b""
    assert resp.closed and spy.reads == 0


@pytest.mark.parametrize("whole_response", [(b"x" * 1000, None)], indirect=True)
def test_a_whole_response_read_in_chunks_and_into_a_buffer(whole_response: WholeResponse) -> None:
    resp = whole_response.resp
    buffer = bytearray(300)
    assert resp.readinto(buffer) == 300 and bytes(buffer) == b"x" * 300
    assert b"".join(resp.read_chunked()) == b"x" * 700
    assert resp.closed


@pytest.mark.parametrize("whole_response", [(b"never read", None)], indirect=True)
def test_closing_a_whole_response_unread_resets_nothing_and_the_connection_goes_on(
    whole_response: WholeResponse,
) -> None:
    resp = whole_response.resp
    resp.close()
    assert resp.closed
    with pytest.raises(hyper.ConnectionClosed, match="closed before its end"):
        resp.read()
    session = whole_response.conn._current_session()
    assert not session.has_streams()
    assert session.refusal() == (None, True)


def test_a_response_whose_body_is_not_here_yet_is_read_through_the_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers_sent, body_wanted = threading.Event(), threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, headers=[(b"content-length", b"4")], end_stream=False)
        headers_sent.set()
        assert body_wanted.wait(_WAIT)
        peer.send_data(request.stream_id, b"late", end_stream=True)
        peer.drain_until_closed()

    with ScriptedServer(script) as server, _connect(server) as conn:
        stream_id = conn.request("GET", "/")
        spy = Spy(conn, monkeypatch)
        assert headers_sent.wait(_WAIT)
        resp = conn.getresponse(stream_id)
        body_wanted.set()
        assert resp.read() == b"late"
        assert spy.reads >= 1 and resp.closed


@pytest.mark.parametrize("whole_response", [(b"y" * (HELD_BODY_MAX + 1), None)], indirect=True)
def test_a_large_whole_response_is_still_read_piece_by_piece(whole_response: WholeResponse) -> None:
    resp, spy = whole_response.resp, whole_response.spy
    assert resp.read(10) == b"y" * 10
    assert resp.read() == b"y" * (HELD_BODY_MAX - 9)
    assert spy.reads >= 2


@pytest.mark.parametrize("server_name", ["nginx_server", "nghttpd_server"])
def test_sequential_small_responses_from_real_servers(
    server_name: str, request: pytest.FixtureRequest
) -> None:
    info = request.getfixturevalue(server_name)
    context = hyper.tls.init_context(cert_path=info.ca_file)
    with HTTP20Connection(info.host, info.port, secure=True, ssl_context=context, timeout=_WAIT) as conn:
        with open(f"{info.docroot}/1k.bin", "rb") as file:
            body = file.read()
        for _ in range(50):
            resp = conn.getresponse(conn.request("GET", "/1k.bin"))
            assert resp.status == 200 and resp.read(100) == body[:100]
            assert resp.read() == body[100:] and resp.closed
        # One left unread, closed: the next request is unharmed.
        conn.getresponse(conn.request("GET", "/1k.bin")).close()
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == body


# -- bare requests ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", b"PUT"])
def test_a_repeated_bare_request_sends_what_the_general_path_sends(method: Any) -> None:
    short, short_session = connection()
    general, general_session = connection()
    for path in ("/a", "/b?x=1", "/a", "/a"):
        short.request(method, path)
        general.request(method, path, headers=[])
    assert short_session.opened == general_session.opened
    # The connection's authority is part of what is remembered.
    short.authority = general.authority = "other.example:8443"
    short.request(method, "/a")
    general.request(method, "/a", headers=[])
    assert short_session.opened == general_session.opened
    assert short_session.opened[-1][0][2] == (b":authority", b"other.example:8443")


def test_each_bare_request_gets_its_own_list_of_fields() -> None:
    conn, session = connection()
    conn.request("GET", "/same")
    session.opened[0][0].append((b"x-changed", b"1"))  # as if someone changed what was sent
    conn.request("GET", "/same")
    assert (b"x-changed", b"1") not in session.opened[1][0]


def test_a_refused_bare_request_is_refused_every_time() -> None:
    conn, session = connection()
    conn.authority = "bad host"
    for _ in range(2):
        with pytest.raises(InvalidHeader):
            conn.request("GET", "/x")
    assert session.opened == []


# -- response header blocks ---------------------------------------------------------------


def _fields_of(events: list[Any]) -> list[tuple[str, bytes, bytes]]:
    """The fields of the first header event, with each field's class."""
    return [(type(field).__name__, field[0], field[1]) for field in events[0].headers]


@pytest.mark.usefixtures("fast_paths_on")
@pytest.mark.parametrize(
    "fields",
    [
        [(b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"3")],
        [(b":status", b"200"), (b"cookie", b"a=1"), (b"x-other", b"2"), (b"cookie", b"b=2")],
        [(b":status", b"200"), hpack.NeverIndexedHeaderTuple(b"authorization", b"secret")],
        [(b":status", b"404"), (b"set-cookie", b"s=1"), (b"set-cookie", b"t=2")],
    ],
)
def test_response_header_blocks_come_out_as_h2_makes_them(fields: list[Any]) -> None:
    pair = Pair()
    pair.open(1, REQUEST, True, True)
    block = _blocks(pair, fields)
    stream = h2_internals.receiving_stream(pair.fast, 1, needs_headers=False)
    fast_events = h2_internals.receive_plain_headers(pair.fast, stream, block, False)
    plain_events = pair.plain.receive_data(
        len(block).to_bytes(3, "big") + b"\x01\x04" + (1).to_bytes(4, "big") + block
    )
    assert [type(e) for e in fast_events] == [type(e) for e in plain_events] == [h2.events.ResponseReceived]
    assert _fields_of(fast_events) == _fields_of(plain_events)
    assert type(fast_events[0].headers) is type(plain_events[0].headers) is list


# -- the poll before a new stream ----------------------------------------------------------


@pytest.mark.parametrize("with_poll", [True, False])
def test_a_goaway_waiting_unread_sends_the_next_request_on_a_new_connection(
    with_poll: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before opening a stream sees what arrived, through poll() or without it."""
    if not with_poll:
        # As on a platform without poll(): the session's check has no poll object.
        monkeypatch.setattr(sockets, "HAVE_POLL", False)
    first_read, goaway_sent = threading.Event(), threading.Event()

    def first(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"one")
        assert first_read.wait(_WAIT)  # the client has read all there was: the GOAWAY comes after
        peer.send_goaway(request.stream_id)
        goaway_sent.set()
        peer.drain_until_closed()

    def second(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"two")
        peer.drain_until_closed()

    scripts = [first, second]
    with ScriptedServer(lambda peer: scripts.pop(0)(peer), connections=2) as server, _connect(server) as conn:
        stream_id = conn.request("GET", "/1")
        first_session = conn._current_session()
        assert conn.getresponse(stream_id).read() == b"one"
        first_read.set()
        assert goaway_sent.wait(_WAIT)
        # Sent is not yet arrived (a busy loopback may queue it a moment):
        # wait, bounded, until the client's socket has it to read.
        readable, _, _ = select.select([first_session._sock], [], [], _WAIT)
        assert readable
        # The GOAWAY sits unread in the socket: the request must see it first.
        assert conn.getresponse(conn.request("GET", "/2")).read() == b"two"
        assert conn._current_session() is not first_session


# -- counting open streams ----------------------------------------------------------------


@pytest.mark.usefixtures("fast_paths_on")
def test_the_count_of_open_streams_and_its_clean_up_are_h2s() -> None:
    from hyper.http20.h2_internals_steps import open_outbound_streams

    pair = Pair()
    for stream_id in range(1, 16, 2):
        pair.open(stream_id, REQUEST, stream_id % 3 == 0, False)
    ok = _blocks(pair, [(b":status", b"200")])
    pair.headers(1, ok, True)  # the server is done, we are not: half-closed (remote), still counted
    pair.headers(3, ok, True)  # our side had ended: closed
    for conn in (pair.fast, pair.plain):
        conn.reset_stream(5)  # closed by us
        conn.end_stream(7)  # half-closed local
        conn.data_to_send()
    for server in pair.servers:
        server.clear_outbound_data_buffer()
    assert open_outbound_streams(pair.fast) == pair.plain.open_outbound_streams
    assert sorted(pair.fast.streams) == sorted(pair.plain.streams)
    assert pair.fast._closed_streams == pair.plain._closed_streams
    assert 3 in pair.fast._closed_streams and 5 in pair.fast._closed_streams
    pair.compare()
    # Asked again, with nothing left to clean up: the same answer.
    assert open_outbound_streams(pair.fast) == pair.plain.open_outbound_streams


def test_the_core_counts_through_the_fence_only_with_the_fast_paths() -> None:
    from hyper.http20.core import H2Core

    core = H2Core()
    assert (core._count_open_streams is not None) is h2_internals.fast_paths_enabled()
    core.initiate()
    assert core.can_open_stream()

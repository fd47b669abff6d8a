"""Review of write coalescing (issue 14): the API's other paths through a burst, against real servers.

What is checked here holds today: bursts beyond the server's stream limit
(and a limit lowered mid-burst) do not wait on their own held HEADERS;
ping() sends held HEADERS before its PING; a request with a streamed body
(request() with a generator, putrequest/endheaders/send) sends held lower
streams before its DATA; every sequential entry point (body b"", a
generator, putrequest/endheaders) writes at once and never asks the
flusher; HTTPConnection over h2c upgrade and ALPN, and the requests adapter,
behave; eight threads bursting on one TLS connection each get their own
responses. Orders come from events and a flusher whose delay the test
sets, never sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import h2.events
import h2.settings
import pytest
import requests

import hyper.tls
from hyper import HTTP20Connection, HTTPConnection
from hyper.contrib import HTTP20Adapter
from tests.asgi_app import deterministic_bytes
from tests.coalesce_helpers import NEVER, WAIT, controlled_flusher, count_sends, needs_coalescing
from tests.scripted import Peer, ScriptedServer
from tests.servers import HELLO_TEXT, INDEX_HTML, ServerInfo, one_k_bytes

#: The docroot files (tests/servers.py) with distinct bodies: a response
#: given to the wrong request shows.
FILES = {"/hello.txt": HELLO_TEXT, "/1k.bin": one_k_bytes(), "/index.html": INDEX_HTML}
PATHS = list(FILES)


def connect(info: ServerInfo, **options: Any) -> HTTP20Connection:
    """A TLS connection to a real test server, trusting the test CA."""
    context = hyper.tls.init_context(cert_path=info.ca_file)
    return HTTP20Connection(info.host, info.port, secure=True, ssl_context=context, timeout=WAIT, **options)


def answering_each(count: int, settings: dict[int, int] | None = None, lower_to: int | None = None) -> Any:
    """A script answering ``count`` requests with their paths, each as it comes.

    With ``lower_to``, right after the first request it sends SETTINGS lowering
    MAX_CONCURRENT_STREAMS to that (RFC 9113 section 6.5.2), mid-burst.
    """

    def script(peer: Peer) -> None:
        for index in range(count):
            request = peer.wait_request(WAIT)
            if index == 0 and lower_to is not None:
                peer.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: lower_to})
                peer.flush()
            peer.respond(request.stream_id, body=dict(request.headers)[b":path"])
        peer.drain_until_closed()

    return script


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_a_burst_beyond_the_servers_stream_limit_is_answered(
    limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flusher never runs: only the caller's own wait for a free stream
    # slot can send its held HEADERS (RFC 9113 section 5.1.2). Were the slot
    # wait not to send them, request() would wait for answers to requests
    # the server never got, until its timeout.
    count = 8
    settings = {int(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS): limit}
    with controlled_flusher(monkeypatch, NEVER):
        with (
            ScriptedServer(answering_each(count), settings=settings) as server,
            HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=WAIT) as conn,
        ):
            conn.ping()  # the server's SETTINGS (its limit) are known before the burst
            ids = [conn.request("GET", f"/{index}") for index in range(count)]
            for index, stream_id in enumerate(ids):
                assert conn.getresponse(stream_id).read() == f"/{index}".encode()


def test_the_stream_limit_lowered_mid_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server lowers its limit to 1 once the burst's first request came:
    # the client's ACK follows the held HEADERS it opened under the old
    # limit (they leave first, in order), and the rest wait for a slot.
    count = 6
    with controlled_flusher(monkeypatch, NEVER):
        with (
            ScriptedServer(answering_each(count, lower_to=1)) as server,
            HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=WAIT) as conn,
        ):
            conn.ping()
            ids = [conn.request("GET", f"/{index}") for index in range(count)]
            for index, stream_id in enumerate(ids):
                assert conn.getresponse(stream_id).read() == f"/{index}".encode()


@needs_coalescing
def test_ping_sends_held_headers_first(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    got_ping = threading.Event()

    def note(events: list[Any]) -> None:
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                order.append(dict(event.headers)[b":path"].decode())
            elif isinstance(event, h2.events.PingReceived):
                order.append("PING")
                got_ping.set()

    def script(peer: Peer) -> None:
        # On a loaded machine the handshake's own reads may take everything
        # (requests and PING included): those events are in the peer's list.
        note(peer.events)
        while not got_ping.is_set() and not peer.closed:
            note(peer.read_events(WAIT))
        peer.drain_until_closed()

    with controlled_flusher(monkeypatch, NEVER):
        with (
            ScriptedServer(script) as server,
            HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=WAIT) as conn,
        ):
            conn.request("GET", "/a")
            conn.request("GET", "/b")
            session = conn._sessions.current
            assert session is not None and session._held  # /b waits for a wait or the flusher
            conn.ping()  # its wait for the ACK (and its send) let /b go first
            assert got_ping.wait(WAIT)
    # The order the script saw the events in is the wire's order.
    assert order[-1] == "PING" and "/b" in order


def pieces() -> Iterator[bytes]:
    """A request body of unknown length (a generator): never held, sent before request() returns."""
    yield b"x" * 70_000
    yield b"y" * 30_000


@pytest.mark.parametrize("style", ["generator", "incremental"])
def test_a_streamed_body_after_held_headers_keeps_the_wire_in_order(
    style: str, nghttpd_server: ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # nghttpd ends the connection with PROTOCOL_ERROR on HEADERS for a lower
    # stream after a higher one (RFC 9113 section 5.1.1) or DATA on an idle
    # stream (section 5.1): every answer arriving shows the order held.
    body = b"x" * 70_000 + b"y" * 30_000
    with controlled_flusher(monkeypatch, NEVER), connect(nghttpd_server) as conn:
        first = conn.request("GET", "/hello.txt")
        held = conn.request("GET", "/1k.bin")  # held
        if style == "generator":
            posted = conn.request("POST", "/echo", body=pieces())
        else:
            posted = conn.putrequest("POST", "/echo")
            conn.endheaders()  # not final: more body follows
            conn.send(b"x" * 70_000)
            conn.send(b"y" * 30_000, final=True)
        last = conn.request("GET", "/index.html")  # held again
        assert conn.getresponse(posted).read() == body
        assert conn.getresponse(first).read() == HELLO_TEXT
        assert conn.getresponse(held).read() == FILES["/1k.bin"]
        assert conn.getresponse(last).read() == INDEX_HTML


def sequential_entry_points(conn: HTTP20Connection, style: str, path: str) -> int:
    """One request by ``style``; returns its stream id."""
    if style == "empty-body":
        return conn.request("GET", path, body=b"")
    if style == "generator":
        return conn.request("POST", "/echo", body=iter([b"a", b"b"]))
    stream_id = conn.putrequest("GET", path)
    conn.putheader("x-review", "14")
    if style == "endheaders-final":
        conn.endheaders(final=True)
    else:
        conn.endheaders()
        conn.send(b"", final=True)
    return stream_id


@pytest.mark.parametrize("style", ["empty-body", "generator", "endheaders-final", "endheaders-send"])
def test_sequential_requests_by_every_entry_point_never_hold(
    style: str, nghttpd_server: ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with controlled_flusher(monkeypatch, NEVER) as flusher, connect(nghttpd_server) as conn:
        assert conn.getresponse(conn.request("GET", "/hello.txt")).read() == HELLO_TEXT
        sends = count_sends(conn)
        for index in range(6):
            path = PATHS[index % len(PATHS)]
            before = sends.sends
            stream_id = sequential_entry_points(conn, style, path)
            session = conn._sessions.current
            assert session is not None and not session._held
            assert sends.sends > before  # written before the call returned
            body = conn.getresponse(stream_id).read()
            assert body == (b"ab" if style == "generator" else FILES[path])
        assert flusher.scheduled == 0
        assert flusher.thread() is None


@pytest.mark.parametrize("server", ["nginx_server", "nghttpd_server"])
def test_eight_threads_bursting_each_get_their_own_responses(
    server: str, request: pytest.FixtureRequest
) -> None:
    # Over TLS, with the real flusher: three files with distinct bodies, in
    # a different order per thread and per burst.
    info: ServerInfo = request.getfixturevalue(server)
    errors: list[BaseException] = []
    answered = [0] * 8
    start = threading.Barrier(8, timeout=WAIT)

    def work(index: int, conn: HTTP20Connection) -> None:
        try:
            start.wait()
            for burst in range(5):
                paths = [PATHS[(index + burst + offset) % len(PATHS)] for offset in range(4)]
                ids = [conn.request("GET", path) for path in paths]
                for path, stream_id in zip(paths, ids, strict=True):
                    assert conn.getresponse(stream_id).read() == FILES[path], path
                    answered[index] += 1
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    with connect(info) as conn:
        threads = [threading.Thread(target=work, args=(index, conn)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 6)
        assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert answered == [20] * 8


def test_an_upgraded_h2c_connection_bursts(hypercorn_h2c_server: ServerInfo) -> None:
    # HTTPConnection, cleartext: the first request is the HTTP/1.1 Upgrade;
    # the burst after it runs on the upgraded session (coalescing passed on).
    sizes = [100, 2_000, 30_000, 7, 4_096]
    with HTTPConnection(hypercorn_h2c_server.authority, secure=False, timeout=WAIT) as conn:
        ids = [conn.request("GET", f"/bytes/{size}") for size in sizes]
        assert conn.version == "HTTP/2"
        for size, stream_id in zip(sizes, ids, strict=True):
            assert conn.getresponse(stream_id).read() == deterministic_bytes(size)


def test_an_alpn_connection_bursts(nginx_alpn_server: ServerInfo) -> None:
    context = hyper.tls.init_context(cert_path=nginx_alpn_server.ca_file)
    with HTTPConnection(
        nginx_alpn_server.host, nginx_alpn_server.port, secure=True, ssl_context=context, timeout=WAIT
    ) as conn:
        ids = [conn.request("GET", path) for path in PATHS * 3]
        assert conn.version == "HTTP/2"
        for path, stream_id in zip(PATHS * 3, ids, strict=True):
            assert conn.getresponse(stream_id).read() == FILES[path]


def test_the_requests_adapter_never_asks_the_flusher(
    nginx_server: ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests sends and reads one request at a time: sequential, never held.
    with controlled_flusher(monkeypatch, NEVER) as flusher, requests.Session() as session:
        session.mount("https://", HTTP20Adapter())
        for path in PATHS * 2:
            response = session.get(nginx_server.url(path), verify=nginx_server.ca_file, timeout=WAIT)
            assert response.content == FILES[path]
        assert flusher.scheduled == 0

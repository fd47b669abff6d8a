"""``with conn.batch():`` holds a thread's requests and writes them in one send (issue 14).

Real servers show that batched requests are answered; scripted servers show
what only the wire can: nothing leaves before the block ends, everything
leaves together, waits inside the block send first, and other threads are
not held back. Ordering uses events, never sleeps.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable
from typing import Any

import h2.events
import pytest

import hyper
import hyper.tls
from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
from hyper.http20 import session_batch
from tests.batch_scripts import WAIT, connect_scripted, fetch, settle
from tests.scripted import Peer, ScriptedServer
from tests.servers import HELLO_TEXT, ServerInfo


def connect(info: ServerInfo, cls: Any = HTTP20Connection) -> Any:
    """A connection to a real test server, trusting the test CA."""
    context = hyper.tls.init_context(cert_path=info.ca_file)
    return cls(info.host, info.port, secure=True, ssl_context=context, timeout=WAIT)


def nothing_readable(peer: Peer) -> bool:
    """True when the client has sent nothing the server has not read yet."""
    readable, _, _ = select.select([peer.sock], [], [], 0)
    return not readable


def requests_in_one_read(peer: Peer) -> list[int]:
    """The stream ids of the requests that arrive in the next single read."""
    return [e.stream_id for e in peer.read_events(WAIT) if isinstance(e, h2.events.RequestReceived)]


def serving(count: int) -> Any:
    """A script answering ``count`` requests, in arrival order, then reading until the client hangs up."""

    def script(peer: Peer) -> None:
        for _ in range(count):
            request = peer.wait_request(WAIT)
            peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    return script


def answer_one_then_signal(arrived: threading.Event) -> Any:
    """A script setting ``arrived`` when the one request arrives, then answering it."""

    def script(peer: Peer) -> None:
        request = peer.wait_request(WAIT)
        arrived.set()
        peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    return script


# -- real servers ---------------------------------------------------------------------


@pytest.mark.parametrize("server", ["nginx_server", "nghttpd_server"])
def test_batched_requests_are_answered_by_real_servers(server: str, request: pytest.FixtureRequest) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    with connect(info) as conn:
        with conn.batch():
            ids = [conn.request("GET", "/hello.txt") for _ in range(50)]
        for stream_id in ids:
            response = conn.getresponse(stream_id)
            assert response.status == 200
            assert response.read() == HELLO_TEXT


def test_request_with_a_body_inside_a_batch_is_sent_with_it(nghttpd_server: ServerInfo) -> None:
    with connect(nghttpd_server) as conn:
        with conn.batch():
            first = conn.request("GET", "/hello.txt")
            posted = conn.request("POST", "/echo", body=b"x" * 100_000)
            last = conn.request("GET", "/hello.txt")
        assert conn.getresponse(posted).read() == b"x" * 100_000
        assert conn.getresponse(first).read() == HELLO_TEXT
        assert conn.getresponse(last).read() == HELLO_TEXT


def test_http_connection_batches_over_h2_and_does_nothing_over_http11(
    nginx_server: ServerInfo, nginx_http11_server: ServerInfo
) -> None:
    for info, version in ((nginx_server, "HTTP/2"), (nginx_http11_server, "HTTP/1.1")):
        with connect(info, HTTPConnection) as conn:
            with conn.batch():
                ids = [conn.request("GET", "/hello.txt") for _ in range(3)]
            assert conn.version == version
            for stream_id in ids:
                assert conn.getresponse(stream_id).read() == HELLO_TEXT


def test_http11_connection_accepts_batch_and_sends_at_once(nginx_http11_server: ServerInfo) -> None:
    with connect(nginx_http11_server, HTTP11Connection) as conn:
        with conn.batch():
            first = conn.request("GET", "/hello.txt")
            # Written when request() returned: answered inside the block.
            assert conn.getresponse(first).read() == HELLO_TEXT
            second = conn.request("GET", "/hello.txt")
        assert conn.getresponse(second).read() == HELLO_TEXT


# -- scripted servers: what leaves when -----------------------------------------------


@pytest.mark.parametrize("form", ["flat", "nested", "incremental"])
def test_nothing_leaves_before_the_block_ends_then_all_in_one_send(form: str) -> None:
    queued, checked = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def script(peer: Peer) -> None:
        settle(peer)
        assert queued.wait(WAIT)
        seen["silent"] = nothing_readable(peer)
        checked.set()
        seen["one_read"] = requests_in_one_read(peer)
        for stream_id in seen["one_read"]:
            peer.respond(stream_id, body=b"ok")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect_scripted(server) as conn:
        conn.ping()  # the SETTINGS exchange is over: nothing else will be sent meanwhile
        with conn.batch():
            ids = [conn.request("GET", "/a") for _ in range(3)]
            if form == "nested":
                with conn.batch():
                    ids += [conn.request("GET", "/b") for _ in range(2)]
            elif form == "incremental":
                # putrequest()/endheaders() (HEADERS with END_STREAM) are held too.
                ids.append(conn.putrequest("GET", "/c"))
                conn.putheader("x-form", "incremental")
                conn.endheaders(final=True)
            queued.set()  # every request returned its id; nothing was written
            assert checked.wait(WAIT)
        for stream_id in ids:
            assert conn.getresponse(stream_id).read() == b"ok"
    assert seen["silent"] is True
    assert seen["one_read"] == [1, 3, 5, 7, 9][: len(ids)]


def test_getresponse_inside_a_batch_sends_first() -> None:
    with ScriptedServer(serving(2)) as server, connect_scripted(server) as conn:
        with conn.batch():
            first = conn.request("GET", "/")
            second = conn.request("GET", "/")
            # Would wait forever for a request still held; it sends them first.
            assert conn.getresponse(second).read() == b"ok"
            assert conn.getresponse(first).read() == b"ok"


def test_ping_inside_a_batch_sends_the_held_requests_first() -> None:
    arrived = threading.Event()

    with ScriptedServer(answer_one_then_signal(arrived)) as server, connect_scripted(server) as conn:
        with conn.batch():
            stream_id = conn.request("GET", "/")
            conn.ping()
            assert arrived.wait(WAIT)
        assert conn.getresponse(stream_id).read() == b"ok"


def test_an_exception_in_the_block_still_sends_the_requests() -> None:
    arrived = threading.Event()

    with ScriptedServer(answer_one_then_signal(arrived)) as server, connect_scripted(server) as conn:
        with pytest.raises(RuntimeError, match="the caller's own"):
            with conn.batch():
                stream_id = conn.request("GET", "/")
                raise RuntimeError("the caller's own error")
        # Sent at the block's end, not by getresponse(): the server saw it first.
        assert arrived.wait(WAIT)
        assert conn.getresponse(stream_id).read() == b"ok"


def test_another_threads_request_is_not_held_back() -> None:
    other_done = threading.Event()
    results: dict[str, Any] = {}

    with ScriptedServer(serving(2)) as server, connect_scripted(server) as conn:
        with conn.batch():
            mine = conn.request("GET", "/mine")
            thread = threading.Thread(target=fetch, args=(conn, "/other", results, other_done))
            thread.start()
            # The other thread's request is answered while this batch is open.
            assert other_done.wait(WAIT)
            thread.join(WAIT)
        assert results.get("body") == b"ok", results
        assert conn.getresponse(mine).read() == b"ok"


def test_a_batch_past_the_bound_is_written_early() -> None:
    early = threading.Event()
    size = 8 * 1024
    # Values too big for HPACK's dynamic table; Huffman coding shrinks them
    # by an eighth at most, so twice the bound's worth is well past it.
    count = 2 * session_batch.BATCH_LIMIT // size + 2

    def script(peer: Peer) -> None:
        settle(peer)
        peer.wait_request(WAIT)
        early.set()  # the first request arrived while the block was still open
        for _ in range(count - 1):
            peer.wait_request(WAIT)
        peer.drain_until_closed()

    with ScriptedServer(script, settings={0x6: 1 << 20}) as server, connect_scripted(server) as conn:
        conn.ping()  # the SETTINGS exchange is over: only the bound can send early
        with conn.batch():
            for index in range(count):
                conn.request("GET", "/", headers={"x-filler": f"{index:08d}" + "v" * size})
            assert early.wait(WAIT)


def test_batches_are_per_thread_and_nest(monkeypatch: pytest.MonkeyPatch) -> None:
    # A thread outside any batch sends at once even while another thread is corked.
    corked: list[bool] = []
    original: Callable[[Any], bool] = session_batch.SessionBatch._corked

    def spy(self: Any) -> bool:
        corked.append(original(self))
        return corked[-1]

    monkeypatch.setattr(session_batch.SessionBatch, "_corked", spy)

    with ScriptedServer(serving(3)) as server, connect_scripted(server) as conn:
        with conn.batch():
            with conn.batch():
                inner = conn.request("GET", "/")
            after_inner = conn.request("GET", "/")
        outside = conn.request("GET", "/")
        for stream_id in (inner, after_inner, outside):
            assert conn.getresponse(stream_id).read() == b"ok"
    assert corked == [True, True, False]

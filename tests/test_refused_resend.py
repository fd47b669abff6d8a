"""Transparent resends of refused requests, against scripted servers (faults on cue).

RFC 9113 section 6.8 (streams above a GOAWAY's last-stream-id were not
processed) and section 8.7 (RST_STREAM REFUSED_STREAM: not processed either):
``getresponse()`` sends such a request again under its public stream id
(hyper/http20/resending.py), when it can be sent exactly and nothing of a
response came; bounded; off with ``retry_refused=False``. nginx's real
GOAWAYs are in test_refused_resend_nginx.py.

Each runs with the fast paths on and with ``HYPER_FAST_PATHS=0``. Events are
ordered by the scripts' reads and threading primitives, never by sleeping.
"""

from __future__ import annotations

import io
import select
import threading
from typing import Any

import h2.errors
import h2.events
import pytest

from hyper.exceptions import ConnectionTerminated, StreamResetError
from hyper.http20.resending import MAX_RESENDS
from tests.resend_helpers import REFUSED as _REFUSED
from tests.resend_helpers import WAIT as _WAIT
from tests.resend_helpers import connect as _connect
from tests.resend_helpers import fast_paths_both_ways  # noqa: F401 - autouse: every test both ways
from tests.resend_helpers import path_of as _path
from tests.scripted import Peer, ScriptedServer


def _answer_with_path(peer: Peer, event: h2.events.RequestReceived, extra: bytes = b"") -> None:
    peer.respond(event.stream_id, body=b"answer to " + _path(event) + extra)


def _no_more_requests(peer: Peer) -> None:
    """Read until the client hangs up; no request may have come meanwhile."""
    peer.drain_until_closed(_WAIT)
    extra = [_path(e) for e in peer.events if isinstance(e, h2.events.RequestReceived)]
    assert extra == [], f"requests sent again that must not be: {extra}"


def test_streams_above_a_goaway_are_sent_again_on_a_new_connection() -> None:
    def dying(peer: Peer) -> None:
        requests = sorted((peer.wait_request() for _ in range(3)), key=lambda e: e.stream_id)
        _answer_with_path(peer, requests[0])
        # Graceful: the first was processed, the two above it were not (section 6.8).
        peer.send_goaway(last_stream_id=requests[0].stream_id)

    def fresh(peer: Peer) -> None:
        for _ in range(2):
            _answer_with_path(peer, peer.wait_request())
        peer.drain_until_closed(_WAIT)

    scripts = iter([dying, fresh])
    with ScriptedServer(lambda peer: next(scripts)(peer), connections=2) as server:
        with _connect(server) as conn:
            ids = [conn.request("GET", path) for path in ("/a", "/b", "/c")]
            assert [conn.getresponse(stream_id).read() for stream_id in ids] == [
                b"answer to /a",
                b"answer to /b",
                b"answer to /c",
            ]


def test_an_error_goaway_is_raised_retryably_not_answered_by_a_resend() -> None:
    # After an error GOAWAY the connection is broken until closed (no
    # silent reconnect): the refusal goes to the caller, who may retry.
    def script(peer: Peer) -> None:
        peer.wait_request()
        peer.send_goaway(last_stream_id=0, error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        _no_more_requests(peer)

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            with pytest.raises(ConnectionTerminated) as caught:
                conn.getresponse(conn.request("GET", "/x"))
            assert caught.value.retryable
            assert caught.value.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


def test_a_refused_stream_with_a_bytes_body_is_sent_again_whole() -> None:
    def script(peer: Peer) -> None:
        plain = peer.wait_request()
        posted = peer.wait_request()
        assert peer.read_body(posted.stream_id) == b"payload"
        peer.h2.reset_stream(posted.stream_id, _REFUSED)  # section 8.7: not processed
        peer.flush()
        _answer_with_path(peer, plain)
        again = peer.wait_request()  # the same connection: a refusal leaves it usable
        assert _path(again) == b"/post"
        _answer_with_path(peer, again, b" with " + peer.read_body(again.stream_id))
        _no_more_requests(peer)

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            plain = conn.request("GET", "/plain")
            posted = conn.request("POST", "/post", body="payload")  # str: sent as UTF-8, both times
            assert conn.getresponse(posted).read() == b"answer to /post with payload"
            assert conn.getresponse(plain).read() == b"answer to /plain"


def test_a_server_refusing_every_time_gets_the_retryable_error_after_the_bound() -> None:
    def script(peer: Peer) -> None:
        for _ in range(1 + MAX_RESENDS):
            peer.h2.reset_stream(peer.wait_request().stream_id, _REFUSED)
            peer.flush()
        _no_more_requests(peer)

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            stream_id = conn.request("GET", "/never")
            with pytest.raises(StreamResetError) as caught:
                conn.getresponse(stream_id)
            assert caught.value.retryable
            assert caught.value.stream_id == stream_id  # the public id, not the last wire id
            assert caught.value.error_code == _REFUSED


@pytest.mark.parametrize(
    "body",
    [
        lambda: io.BytesIO(b"from a file"),
        lambda: iter([b"from ", b"an iterator"]),
        lambda: bytearray(b"mutable"),
    ],
    ids=["file", "iterator", "bytearray"],
)
def test_a_body_that_cannot_be_sent_again_exactly_is_not(body: Any) -> None:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.read_body(request.stream_id)
        peer.h2.reset_stream(request.stream_id, _REFUSED)
        peer.flush()
        _no_more_requests(peer)

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            stream_id = conn.request("POST", "/upload", body=body())
            with pytest.raises(StreamResetError) as caught:
                conn.getresponse(stream_id)
            assert caught.value.retryable


def test_a_refusal_after_the_response_headers_is_never_answered_by_a_resend() -> None:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        peer.h2.reset_stream(request.stream_id, _REFUSED)  # processing had begun
        peer.flush()
        _no_more_requests(peer)

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            response = conn.getresponse(conn.request("GET", "/half"))
            assert response.status == 200
            with pytest.raises(StreamResetError):
                response.read()


def test_a_refusal_after_an_informational_response_is_not_sent_again() -> None:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.send_headers(request.stream_id, [(b":status", b"103"), (b"link", b"</s.css>")])
        peer.h2.reset_stream(request.stream_id, _REFUSED)
        peer.flush()
        _no_more_requests(peer)

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            with pytest.raises(StreamResetError) as caught:
                conn.getresponse(conn.request("GET", "/hinted"))
            assert caught.value.retryable  # the server's word, handed on as it is


def test_a_refusal_after_a_push_promise_is_not_sent_again() -> None:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        authority = f"127.0.0.1:{peer.sock.getsockname()[1]}".encode()  # this origin: the push is kept
        promised = [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", authority),
            (b":path", b"/p"),
        ]
        peer.h2.push_stream(request.stream_id, 2, promised)
        peer.h2.reset_stream(request.stream_id, _REFUSED)
        peer.flush()
        _no_more_requests(peer)

    with ScriptedServer(script) as server:
        with _connect(server, enable_push=True) as conn:
            with pytest.raises(StreamResetError):
                conn.getresponse(conn.request("GET", "/pushy"))


def test_with_resends_off_a_refusal_is_the_retryable_error() -> None:
    def script(peer: Peer) -> None:
        peer.h2.reset_stream(peer.wait_request().stream_id, _REFUSED)
        peer.flush()
        _no_more_requests(peer)

    with ScriptedServer(script) as server:
        with _connect(server, retry_refused=False) as conn:
            assert conn.retry_refused is False
            with pytest.raises(StreamResetError) as caught:
                conn.getresponse(conn.request("GET", "/once"))
            assert caught.value.retryable


def test_with_resends_off_a_goaway_above_the_stream_is_the_retryable_error() -> None:
    def script(peer: Peer) -> None:
        peer.wait_request()
        peer.send_goaway(last_stream_id=0)
        _no_more_requests(peer)

    with ScriptedServer(script) as server:
        with _connect(server, retry_refused=False) as conn:
            with pytest.raises(ConnectionTerminated) as caught:
                conn.getresponse(conn.request("GET", "/once"))
            assert caught.value.retryable


def test_a_request_held_in_a_batch_when_the_goaway_came_is_sent_on_the_new_connection() -> None:
    goaway_sent = threading.Event()

    def dying(peer: Peer) -> None:
        peer.send_goaway(last_stream_id=0)  # before any request reached it
        goaway_sent.set()

    def fresh(peer: Peer) -> None:
        for _ in range(2):
            _answer_with_path(peer, peer.wait_request())
        peer.drain_until_closed(_WAIT)

    scripts = iter([dying, fresh])
    with ScriptedServer(lambda peer: next(scripts)(peer), connections=2) as server:
        with _connect(server) as conn:
            conn.connect()
            with conn.batch():
                held = conn.request("GET", "/held")  # held: not on the wire yet
                assert goaway_sent.wait(_WAIT)
                session = conn._sessions.current
                assert session is not None
                # The GOAWAY is in the socket (bounded wait, not a sleep).
                assert select.select([session.fileno()], [], [], _WAIT)[0]
                after = conn.request("GET", "/after")  # reads it: a new connection
            assert conn.getresponse(after).read() == b"answer to /after"
            assert conn.getresponse(held).read() == b"answer to /held"


def test_threads_sharing_a_connection_through_a_goaway_each_get_their_own_response() -> None:
    threads_count = 4

    def dying(peer: Peer) -> None:
        requests = sorted((peer.wait_request() for _ in range(threads_count)), key=lambda e: e.stream_id)
        _answer_with_path(peer, requests[0])
        peer.send_goaway(last_stream_id=requests[0].stream_id)

    def fresh(peer: Peer) -> None:
        for _ in range(threads_count - 1):
            _answer_with_path(peer, peer.wait_request())
        peer.drain_until_closed(_WAIT)

    scripts = iter([dying, fresh])
    start = threading.Barrier(threads_count, timeout=_WAIT)
    got: dict[int, bytes] = {}
    failures: list[BaseException] = []
    with ScriptedServer(lambda peer: next(scripts)(peer), connections=2) as server:
        with _connect(server) as conn:
            conn.connect()

            def worker(index: int) -> None:
                try:
                    start.wait()
                    got[index] = conn.getresponse(conn.request("GET", f"/t{index}")).read()
                except BaseException as exc:  # noqa: BLE001 - reported below
                    failures.append(exc)

            workers = [threading.Thread(target=worker, args=(index,)) for index in range(threads_count)]
            for thread in workers:
                thread.start()
            for thread in workers:
                thread.join(3 * _WAIT)
            assert not any(thread.is_alive() for thread in workers)
    assert failures == []
    assert got == {index: f"answer to /t{index}".encode() for index in range(threads_count)}

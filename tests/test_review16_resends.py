"""review16: transparent resends of refused requests (6de059e, 1a8f8f2; hyper/http20/resending.py).

Scripted servers (tests/scripted.py): the faults here are on cue. Each test
runs with the fast paths on and with ``HYPER_FAST_PATHS=0``; events are
ordered by the scripts' reads and threading primitives, never by sleeping.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import h2.errors
import h2.events
import h2.exceptions
import pytest

from hyper.exceptions import ConnectionTerminated, ReadTimeout, StreamResetError
from hyper.http20.stream_ids import StreamHandle
from tests.resend_helpers import REFUSED as _REFUSED
from tests.resend_helpers import WAIT as _WAIT
from tests.resend_helpers import connect as _connect
from tests.resend_helpers import fast_paths_both_ways  # noqa: F401 - autouse: every test both ways
from tests.resend_helpers import path_of as _path
from tests.scripted import Peer, ScriptedServer


def _requests_until_closed(peer: Peer) -> list[bytes]:
    """Every request's path that arrives until the client hangs up (what waited in events first)."""
    peer.drain_until_closed(_WAIT)
    return [_path(e) for e in peer.events if isinstance(e, h2.events.RequestReceived)]


# -- bugs ---------------------------------------------------------------------------------------


def test_close_from_another_thread_before_the_resend_sends_nothing_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    later_requests: list[bytes] = []

    def dying(peer: Peer) -> None:
        peer.wait_request()
        peer.send_goaway(last_stream_id=0)  # graceful: the request was not processed (RFC 9113 6.8)
        peer.drain_until_closed(_WAIT)

    def later(peer: Peer) -> None:
        if not peer.closed:
            later_requests.extend(_requests_until_closed(peer))

    scripts = iter([dying, later])
    with ScriptedServer(lambda peer: next(scripts)(peer), connections=2) as server:
        with _connect(server) as conn:
            decide = conn._may_resend

            def close_then_decide(handle: StreamHandle, error: Any, resends: int) -> bool:
                # Another thread closes the connection just as the refused
                # request is found resendable (joined: ordered, not timed).
                answer = decide(handle, error, resends)
                if answer:
                    closer = threading.Thread(target=conn.close)
                    closer.start()
                    closer.join(_WAIT)
                    assert not closer.is_alive()
                return answer

            monkeypatch.setattr(conn, "_may_resend", close_then_decide)
            stream_id = conn.request("GET", "/after-close")
            with pytest.raises(ConnectionTerminated):
                conn.getresponse(stream_id)  # the refusal stands: the stream was dropped by close()
            # No connection may be opened (and no request sent) after close() returned.
            opened_after_close = conn._sessions.current is not None
        # If hyper never connected again, the server's second accept is
        # released by a connection that hangs up at once.
        with socket.create_connection(("127.0.0.1", server.port), timeout=_WAIT):
            pass
    assert (opened_after_close, later_requests) == (False, [])


def _promise(peer: Peer, parent: int, authority: bytes | None = None) -> None:
    """Push stream 2 on ``parent`` (this origin unless ``authority`` names another), and its response."""
    own = f"127.0.0.1:{peer.sock.getsockname()[1]}".encode()
    promised = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", authority or own),
        (b":path", b"/p"),
    ]
    peer.h2.push_stream(parent, 2, promised)
    peer.respond(2, body=b"pushed")


def _refuse_then_answer_a_resend(peer: Peer, stream_id: int, resent: list[bytes]) -> None:
    """RST_STREAM REFUSED_STREAM on ``stream_id``; a resend, if one comes, is answered (and noted)."""
    peer.h2.reset_stream(stream_id, _REFUSED)
    peer.flush()
    try:
        again = peer.wait_request(_WAIT)
    except AssertionError:
        return  # the client hung up without sending it again: right
    resent.append(_path(again))
    try:
        peer.respond(again.stream_id, body=b"processed twice")
    except (h2.exceptions.ProtocolError, OSError):
        return  # the client already gave up and said GOAWAY
    peer.drain_until_closed(_WAIT)


def test_a_refusal_after_a_push_promise_already_taken_is_not_sent_again() -> None:
    taken = threading.Event()
    resent: list[bytes] = []

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        _promise(peer, request.stream_id)
        assert taken.wait(_WAIT)  # the application took the push before the refusal came
        _refuse_then_answer_a_resend(peer, request.stream_id, resent)

    with ScriptedServer(script) as server:
        with _connect(server, enable_push=True) as conn:
            stream_id = conn.request("GET", "/pushy")
            try:
                push = next(iter(conn.get_pushes(stream_id, capture_all=True)))  # waits for the first push
            finally:
                taken.set()
            assert push.path == "/p"
            # The server sent PUSH_PROMISE on the stream: it had begun processing it.
            with pytest.raises(StreamResetError):
                conn.getresponse(stream_id).read()
    assert resent == []


def test_a_refusal_after_a_refused_push_promise_is_not_sent_again() -> None:
    resent: list[bytes] = []

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        _promise(peer, request.stream_id, authority=b"elsewhere.example:443")  # not ours: reset by hyper
        _refuse_then_answer_a_resend(peer, request.stream_id, resent)

    with ScriptedServer(script) as server:
        with _connect(server, enable_push=True) as conn:
            stream_id = conn.request("GET", "/pushy-elsewhere")
            with pytest.raises(StreamResetError):
                conn.getresponse(stream_id).read()
    assert resent == []


def test_no_resend_once_the_deadline_has_passed() -> None:
    resent: list[bytes] = []
    refusing = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        refusing.set()  # the PING the client sends after this is answered after the refusal
        _refuse_then_answer_a_resend(peer, request.stream_id, resent)

    with ScriptedServer(script) as server:
        with _connect(server, deadline=0.5) as conn:
            stream_id = conn.request("GET", "/late")
            assert refusing.wait(_WAIT)
            conn.ping()  # the refusal left before the PING's ACK: it is read by now
            deadline_at = conn._registry.handle(stream_id).deadline_at
            assert deadline_at is not None
            # Time is the point here: the exchange's deadline must be over.
            threading.Event().wait(max(0.0, deadline_at - time.monotonic()) + 0.05)
            assert time.monotonic() > deadline_at
            with pytest.raises((ReadTimeout, StreamResetError)):
                conn.getresponse(stream_id)
            # Whatever was sent before this PING is read by the server by its ACK
            # (a hang-up with bytes unread could lose them to a reset).
            conn.ping()
    assert resent == []


# -- checked and found right (not tested elsewhere) -----------------------------------------------


def test_a_graceful_goaway_covering_the_stream_then_a_hang_up_is_not_resent() -> None:
    # Last-stream-id covers the request: the server may have processed it
    # (RFC 9113 6.8); its connection ending before the answer is not a refusal.
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.send_goaway(last_stream_id=request.stream_id)
        peer.hang_up()

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            with pytest.raises(ConnectionTerminated) as caught:
                conn.getresponse(conn.request("GET", "/maybe-processed"))
            assert not caught.value.retryable


@pytest.mark.parametrize(
    "code",
    [h2.errors.ErrorCodes.CANCEL, h2.errors.ErrorCodes.INTERNAL_ERROR, h2.errors.ErrorCodes.NO_ERROR],
    ids=["CANCEL", "INTERNAL_ERROR", "NO_ERROR"],
)
def test_a_reset_with_another_code_than_refused_stream_is_not_resent(code: int) -> None:
    def script(peer: Peer) -> None:
        peer.h2.reset_stream(peer.wait_request().stream_id, code)
        peer.flush()
        assert _requests_until_closed(peer) == []

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            with pytest.raises(StreamResetError) as caught:
                conn.getresponse(conn.request("GET", "/reset"))
            assert caught.value.error_code == code
            assert not caught.value.retryable


def test_a_non_ascii_str_body_is_resent_as_the_same_bytes_and_length() -> None:
    text = "žluťoučký kůň \u2603 \U0001f600"
    expected = text.encode("utf-8")
    seen: list[tuple[bytes, bytes]] = []

    def script(peer: Peer) -> None:
        for _ in range(2):
            request = peer.wait_request()
            body = peer.read_body(request.stream_id)
            seen.append((dict(request.headers)[b"content-length"], body))
            if len(seen) == 1:
                peer.h2.reset_stream(request.stream_id, _REFUSED)
                peer.flush()
            else:
                peer.respond(request.stream_id, body=body)
        assert _requests_until_closed(peer) == []

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            stream_id = conn.request("PUT", "/text", body=text)
            assert conn.getresponse(stream_id).read() == expected
    assert seen == [(str(len(expected)).encode(), expected)] * 2


def test_responses_taken_without_ids_after_a_goaway_keep_their_ids() -> None:
    def dying(peer: Peer) -> None:
        peer.wait_request()
        peer.wait_request()
        peer.send_goaway(last_stream_id=0)

    def fresh(peer: Peer) -> None:
        # Each is sent again only when its response is asked for, oldest first.
        for _ in range(2):
            request = peer.wait_request()
            peer.respond(request.stream_id, body=b"answer to " + _path(request))
        peer.drain_until_closed(_WAIT)

    scripts = iter([dying, fresh])
    with ScriptedServer(lambda peer: next(scripts)(peer), connections=2) as server:
        with _connect(server, coalesce_requests=False) as conn:
            first = conn.request("GET", "/one")
            second = conn.request("GET", "/two")
            responses = [conn.getresponse(), conn.getresponse()]
            assert [r.stream_id for r in responses] == [first, second]
            assert [r.read() for r in responses] == [b"answer to /one", b"answer to /two"]


def test_a_goaway_on_each_new_connection_is_followed_until_one_answers() -> None:
    # Three connections retire before reaching the request (a second and a
    # third GOAWAY while resending); the fourth answers: three resends.
    def retiring(peer: Peer) -> None:
        peer.wait_request()
        peer.send_goaway(last_stream_id=0)
        peer.drain_until_closed(_WAIT)

    def answering(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"at last")
        peer.drain_until_closed(_WAIT)

    scripts = iter([retiring, retiring, retiring, answering])
    with ScriptedServer(lambda peer: next(scripts)(peer), connections=4) as server:
        with _connect(server) as conn:
            stream_id = conn.request("GET", "/persistent")
            response = conn.getresponse(stream_id)
            assert (response.stream_id, response.read()) == (stream_id, b"at last")


def test_putrequest_endheaders_final_bodiless_is_resent_with_its_fields() -> None:
    def script(peer: Peer) -> None:
        first = peer.wait_request()
        peer.h2.reset_stream(first.stream_id, _REFUSED)
        peer.flush()
        again = peer.wait_request()
        assert dict(again.headers)[b"x-mine"] == b"kept"
        peer.respond(again.stream_id, body=b"ok")
        assert _requests_until_closed(peer) == []

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            stream_id = conn.putrequest("GET", "/incremental")
            conn.putheader("x-mine", "kept")
            conn.endheaders(final=True)
            response = conn.getresponse(stream_id)
            assert (response.stream_id, response.read()) == (stream_id, b"ok")


def test_a_body_sent_with_endheaders_is_not_resent() -> None:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.read_body(request.stream_id)
        peer.h2.reset_stream(request.stream_id, _REFUSED)
        peer.flush()
        assert _requests_until_closed(peer) == []

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            stream_id = conn.putrequest("POST", "/incremental")
            conn.endheaders(message_body=b"whole", final=True)
            with pytest.raises(StreamResetError) as caught:
                conn.getresponse(stream_id)
            assert caught.value.retryable


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer secret", "cookie": "a=1", "x-one": "1", "Accept": "*/*"},
        [("x-twice", "1"), ("X-Twice", "2"), ("cookie", "a=1"), ("cookie", "b=2"), ("user-agent", "mine")],
    ],
    ids=["dict with credentials", "list with repeats"],
)
@pytest.mark.parametrize("body", [None, b"bytes body"], ids=["bodiless", "bytes body"])
def test_a_resend_carries_exactly_the_fields_of_the_first_send(headers: Any, body: bytes | None) -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    def script(peer: Peer) -> None:
        for attempt in range(2):
            request = peer.wait_request()
            seen.append([(bytes(name), bytes(value)) for name, value in request.headers])
            if body is not None:
                assert peer.read_body(request.stream_id) == body
            if attempt == 0:
                peer.h2.reset_stream(request.stream_id, _REFUSED)
                peer.flush()
            else:
                peer.respond(request.stream_id, body=b"ok")
        assert _requests_until_closed(peer) == []

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            stream_id = conn.request("POST", "/fields", body=body, headers=headers)
            assert conn.getresponse(stream_id).read() == b"ok"
    assert len(seen) == 2 and seen[0] == seen[1]


def test_a_resend_between_putrequest_and_endheaders_leaves_the_pending_request_whole() -> None:
    answered: list[bytes] = []

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        peer.h2.reset_stream(first.stream_id, _REFUSED)
        peer.flush()
        for _ in range(2):  # the resend, then the pending request
            request = peer.wait_request()
            answered.append(_path(request))
            peer.respond(request.stream_id, body=b"answer to " + _path(request))
        assert _requests_until_closed(peer) == []

    with ScriptedServer(script) as server:
        with _connect(server) as conn:
            refused = conn.request("GET", "/refused")
            pending = conn.putrequest("GET", "/pending")  # nothing sent yet
            conn.putheader("x-pending", "yes")
            assert conn.getresponse(refused).read() == b"answer to /refused"  # resent meanwhile
            conn.endheaders(final=True)
            response = conn.getresponse()  # without an id: the pending one, now sent
            assert (response.stream_id, response.read()) == (pending, b"answer to /pending")
    assert answered == [b"/refused", b"/pending"]

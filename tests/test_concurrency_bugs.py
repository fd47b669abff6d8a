"""Concurrency bugs of issue 12 (HTTP/2), each reproduced against a scripted peer.

Every test here failed before its fix: a request sent under the wrong id, a
connection wedged by another thread's unfinished putrequest(), a close() that
could not stop a stalled upload, body bytes thrown away when the stream then
failed, a socket leaked by a failed setup, and session state touched without
the session's lock. Events order the threads; nothing sleeps to order them.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

import h2.errors
import h2.events
import h2.settings
import pytest

import hyper
import hyper.http20.session as session_module
import hyper.http20.session_send as session_send
import hyper.http20.session_wire as session_wire
from hyper import HTTP11Connection, HTTP20Connection
from tests import http11_scripted
from tests.scripted import Peer, ScriptedServer
from tests.test_hostile import reconnecting_server
from tests.waiting import wait_until_blocked_in

#: Bound on every wait of a test thread (never reached when the code is right).
WAIT = 10.0


def connect(server: ScriptedServer, **kwargs: Any) -> HTTP20Connection:
    kwargs.setdefault("timeout", 5)
    return HTTP20Connection("127.0.0.1", server.port, secure=False, **kwargs)


def answer_with_path(peer: Peer, count: int) -> None:
    """Answer ``count`` requests with their own path, then wait for the client to go."""
    for _ in range(count):
        request = peer.wait_request()
        peer.respond(request.stream_id, body=dict(request.headers)[b":path"])
    peer.drain_until_closed()


class Worker(threading.Thread):
    """Run ``target`` in a thread; keep its result or exception for the test."""

    def __init__(self, target: Any) -> None:
        super().__init__(daemon=True)
        self._target_call = target
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            self.result = self._target_call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        finally:
            self.finished.set()

    def outcome(self) -> Any:
        assert self.finished.wait(WAIT), "the thread is still blocked"
        if self.error is not None:
            raise self.error
        return self.result


# == 1. putrequest() on a session with an unread graceful GOAWAY ==================


def test_putrequest_before_an_unread_goaway_sends_on_the_new_connection_under_its_id() -> None:
    first_read = threading.Event()
    goaway_sent = threading.Event()

    def first(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"first")
        # Say goodbye once the client has read the first response: the GOAWAY
        # then sits unread in the client's socket when putrequest() runs.
        assert first_read.wait(WAIT)
        peer.send_goaway(request.stream_id)
        goaway_sent.set()
        peer.drain_until_closed()

    def second(peer: Peer) -> None:
        answer_with_path(peer, 2)

    with reconnecting_server(first, second) as server, connect(server) as conn:
        first_id = conn.request("GET", "/first")
        assert conn.getresponse(first_id).read() == b"first"
        first_read.set()
        assert goaway_sent.wait(WAIT)
        # The GOAWAY is in the client's socket (unread) before putrequest().
        session = conn._sessions.current
        assert session is not None
        readable, _, _ = select.select([session._sock], [], [], WAIT)
        assert readable
        stream_id = conn.putrequest("GET", "/incremental")
        conn.putheader("x-a", "1")
        conn.endheaders(final=True)  # raised "internal error: stream 3 was sent as 2147483649"
        other = conn.request("GET", "/other")
        assert len({first_id, stream_id, other}) == 3
        # Without an id, the oldest untaken response is the incremental one.
        response = conn.getresponse()
        assert response.stream_id == stream_id
        assert response.read() == b"/incremental"
        assert conn.getresponse(other).read() == b"/other"


# == 2. an abandoned incremental request holds up nobody ==========================


def test_a_putrequest_never_finished_does_not_hold_up_other_threads() -> None:
    with ScriptedServer(lambda peer: answer_with_path(peer, 2)) as server, connect(server) as conn:
        started = Worker(lambda: conn.putrequest("GET", "/abandoned"))
        started.start()
        abandoned_id = started.outcome()
        # That thread never calls endheaders(); another thread's requests go through.
        sid = conn.request("GET", "/a")
        assert conn.getresponse(sid).read() == b"/a"
        other = Worker(lambda: conn.getresponse(conn.request("GET", "/b")).read())
        other.start()
        assert other.outcome() == b"/b"
        assert sid != abandoned_id
        with pytest.raises(hyper.InvalidStreamID):
            conn.getresponse(abandoned_id)  # nothing was sent for it


def test_a_putrequest_pending_does_not_block_other_threads_even_without_timeout() -> None:
    with ScriptedServer(lambda peer: answer_with_path(peer, 1)) as server:
        with HTTP20Connection("127.0.0.1", server.port, secure=False) as conn:  # timeout=None
            conn.putrequest("GET", "/pending")
            worker = Worker(lambda: conn.getresponse(conn.request("GET", "/x")).read())
            worker.start()
            assert worker.outcome() == b"/x"


def test_a_failed_putheader_leaves_nothing_behind() -> None:
    seen: list[tuple[bytes, bool]] = []

    def script(peer: Peer) -> None:
        for _ in range(2):
            request = peer.wait_request()
            fields = dict(request.headers)
            seen.append((fields[b":path"], b"x-bad" in fields))
            peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        conn.putrequest("GET", "/fixed")
        with pytest.raises((TypeError, ValueError)):
            conn.putheader("x-bad", object())  # type: ignore[arg-type]
        # Nothing of the refused field is kept, nothing was sent, and the
        # pending request holds up no other thread.
        worker = Worker(lambda: conn.getresponse(conn.request("GET", "/other")).read())
        worker.start()
        assert worker.outcome() == b"ok"
        # The request goes on without the refused field.
        conn.endheaders(final=True)
        assert conn.getresponse().read() == b"ok"
    assert seen == [(b"/other", False), (b"/fixed", False)]


def test_a_header_refused_in_endheaders_leaves_the_connection_usable() -> None:
    seen: list[bytes] = []

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        seen.append(dict(request.headers)[b":path"])
        peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        conn.putrequest("GET", "/crlf")
        try:
            conn.putheader("x-bad", "a\r\nb")
        except ValueError:
            pass  # refused at once (the stricter putheader); endheaders() below has nothing to send
        else:
            with pytest.raises(ValueError):
                conn.endheaders(final=True)
        worker = Worker(lambda: conn.getresponse(conn.request("GET", "/fine")).read())
        worker.start()
        assert worker.outcome() == b"ok"
    assert seen == [b"/fine"]


def test_close_while_another_thread_has_a_putrequest_pending() -> None:
    def first(peer: Peer) -> None:
        peer.drain_until_closed()

    def second(peer: Peer) -> None:
        answer_with_path(peer, 1)

    with reconnecting_server(first, second) as server, connect(server) as conn:
        conn.connect()
        pending = Worker(lambda: conn.putrequest("GET", "/never"))
        pending.start()
        pending.outcome()
        conn.close()
        # From this thread: a new thread may reuse the finished one's identity.
        assert conn.getresponse(conn.request("GET", "/after")).read() == b"/after"


# == 3. close() stops an upload stalled at the socket =============================


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_close_stops_an_upload_the_server_stopped_reading(
    timeout: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers_seen = threading.Event()
    release_server = threading.Event()

    def script(peer: Peer) -> None:
        # Open every window wide, so only the socket can stall the upload.
        peer.h2.increment_flow_control_window(2**31 - 1 - 65535)
        peer.flush()
        peer.wait_request()
        headers_seen.set()
        release_server.wait(WAIT)  # ... and never read another byte

    stalled = threading.Event()
    real_wait = session_send.wait_for_socket

    def spying_wait(sock: socket.socket, read: bool, write: bool, *args: Any, **kwargs: Any) -> Any:
        if write:
            stalled.set()  # the uploader is about to wait for the socket to drain
        return real_wait(sock, read, write, *args, **kwargs)

    monkeypatch.setattr(session_send, "wait_for_socket", spying_wait)
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1}
    with ScriptedServer(script, settings=settings) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=timeout)
        try:
            conn.connect()
            body = b"x" * (64 * 1024 * 1024)  # far more than the socket buffers hold
            uploader = Worker(lambda: conn.request("POST", "/upload", body=body))
            uploader.start()
            assert headers_seen.wait(WAIT)
            assert stalled.wait(WAIT)
            closer = Worker(conn.close)
            closer.start()
            closer.outcome()  # returns promptly (it waited forever before)
            with pytest.raises(hyper.ConnectionClosed):
                uploader.outcome()
        finally:
            release_server.set()
            conn.close()


# == 4. bytes received before a failure reach the reader ==========================

HALF = 2 * 1024 * 1024
BODY = bytes(range(256)) * (2 * HALF // 256)


def half_then(ending: str) -> Any:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(
            request.stream_id, headers=[(b"content-length", str(len(BODY)).encode())], end_stream=False
        )
        peer.send_data(request.stream_id, BODY[:HALF])
        if ending == "reset":
            peer.h2.reset_stream(request.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            peer.flush()
            peer.drain_until_closed()
        else:
            peer.hang_up()

    return script


EXPECTED = {"reset": hyper.StreamResetError, "hang_up": hyper.ConnectionTerminated}


def read_all_at_once(response: Any) -> Iterator[bytes]:
    yield response.read()


def read_in_steps(response: Any) -> Iterator[bytes]:
    while True:
        chunk = response.read(100_000)
        if not chunk:
            return
        yield chunk


def read_chunks(response: Any) -> Iterator[bytes]:
    yield from response.read_chunked()


@pytest.mark.parametrize("ending", sorted(EXPECTED))
@pytest.mark.parametrize("reader", [read_all_at_once, read_in_steps, read_chunks])
def test_every_byte_before_a_failure_reaches_the_reader_then_the_error(ending: str, reader: Any) -> None:
    with ScriptedServer(half_then(ending)) as server, connect(server) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        got = bytearray()
        with pytest.raises(EXPECTED[ending]) as info:
            for chunk in reader(response):
                got += chunk
        # What the failing read() had gathered (read_chunked() yields every piece itself).
        got += getattr(info.value, "partial", b"")
        assert bytes(got) == BODY[:HALF]
        # The failure sticks: never a b'' that looks like a complete body.
        with pytest.raises(EXPECTED[ending]):
            response.read()


def test_bytes_already_received_survive_a_reset_that_arrives_before_the_read() -> None:
    reset_sent = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, end_stream=False)
        peer.send_data(request.stream_id, b"a" * 1000)
        peer.h2.reset_stream(request.stream_id, h2.errors.ErrorCodes.CANCEL)
        peer.flush()
        reset_sent.set()
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        assert reset_sent.wait(WAIT)
        assert response.read(1000) == b"a" * 1000
        with pytest.raises(hyper.StreamResetError):
            response.read(1)


def test_read_after_closing_a_response_mid_body_raises() -> None:
    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"a" * 1000, end_stream=False)
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        assert response.read(10) == b"a" * 10
        response.close()
        with pytest.raises(hyper.ConnectionClosed):
            response.read()
        with pytest.raises(hyper.ConnectionClosed):
            list(response.read_chunked())


def test_read_after_a_complete_body_still_returns_empty() -> None:
    with ScriptedServer(lambda peer: answer_with_path(peer, 1)) as server, connect(server) as conn:
        response = conn.getresponse(conn.request("GET", "/done"))
        assert response.read() == b"/done"
        assert response.read() == b""
        response.close()
        assert response.read() == b""


def test_http11_bytes_before_a_close_reach_the_reader_then_the_error() -> None:
    def script(peer: http11_scripted.Peer) -> None:
        peer.read_request()
        head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(BODY)}\r\n\r\n".encode()
        peer.send_raw(head + BODY[:HALF])
        peer.sock.shutdown(socket.SHUT_WR)
        peer.wait_closed()

    with http11_scripted.scripted(script) as server:
        with HTTP11Connection(server.address, timeout=5) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            got = bytearray()
            with pytest.raises(hyper.HyperError) as info:
                for chunk in read_in_steps(response):
                    got += chunk
            got += info.value.partial
            assert bytes(got) == BODY[:HALF]
            with pytest.raises(hyper.HyperError):
                response.read()


def test_http11_read_after_closing_a_response_mid_body_raises() -> None:
    def script(peer: http11_scripted.Peer) -> None:
        peer.read_request()
        peer.send_raw(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n" + b"a" * 1000)
        peer.wait_closed()

    with http11_scripted.scripted(script) as server:
        with HTTP11Connection(server.address, timeout=5) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            assert response.read(10) == b"a" * 10
            response.close()
            with pytest.raises(hyper.ConnectionClosed):
                response.read()


# == 5. setup failures and the session lock ========================================


def test_a_failed_session_setup_closes_the_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    import hyper.http20.connecting as connection_module

    opened: list[socket.socket] = []
    real_open = connection_module.open_transport

    def recording_open(*args: Any, **kwargs: Any) -> Any:
        sock, received = real_open(*args, **kwargs)
        opened.append(sock)
        return sock, received

    def no_more_fds(*args: Any, **kwargs: Any) -> Any:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(connection_module, "open_transport", recording_open)
    monkeypatch.setattr(session_wire.socket, "socketpair", no_more_fds)
    with ScriptedServer(lambda peer: None, handshake=False) as server:
        conn = connect(server)
        with pytest.raises(hyper.TransportError):
            conn.connect()
        assert len(opened) == 1 and opened[0].fileno() == -1


class LockCheckingCore:
    """Wraps an H2Core: every attribute use asserts the session's state lock is held."""

    def __init__(self, core: Any, lock: Any) -> None:
        object.__setattr__(self, "_core", core)
        object.__setattr__(self, "_lock", lock)
        object.__setattr__(self, "violations", [])

    def _check(self, name: str) -> None:
        if not object.__getattribute__(self, "_lock").locked():
            object.__getattribute__(self, "violations").append(name)

    def __getattr__(self, name: str) -> Any:
        self._check(name)
        return getattr(object.__getattribute__(self, "_core"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._check(name)
        setattr(object.__getattribute__(self, "_core"), name, value)


def test_session_state_is_only_touched_under_the_session_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    cores: list[LockCheckingCore] = []
    real_init = session_module.H2Session.__init__

    def checking_init(self: Any, sock: Any, core: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, sock, core, *args, **kwargs)
        self._core = LockCheckingCore(core, self._lock)
        cores.append(self._core)

    def first(peer: Peer) -> None:
        for _ in range(2):
            request = peer.wait_request()
            peer.respond(request.stream_id, body=b"one")
        peer.send_goaway(request.stream_id)
        peer.drain_until_closed()

    def second(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"a" * 5000, end_stream=False)
        peer.h2.reset_stream(request.stream_id, h2.errors.ErrorCodes.CANCEL)
        peer.flush()
        answer_with_path(peer, 1)

    monkeypatch.setattr(session_module.H2Session, "__init__", checking_init)
    with reconnecting_server(first, second) as server, connect(server) as conn:
        assert conn.getresponse(conn.request("GET", "/")).read() == b"one"
        sid = conn.request("POST", "/", body=b"data")
        assert conn.getresponse(sid).read() == b"one"
        conn.ping()  # its ACK comes after the GOAWAY: the next request reconnects
        response = conn.getresponse(conn.request("GET", "/reset"))
        with pytest.raises(hyper.StreamResetError):
            response.read()
        conn.putrequest("GET", "/last")
        conn.endheaders(final=True)
        assert conn.getresponse().read() == b"/last"
    assert len(cores) == 2
    assert [core.violations for core in cores] == [[], []]


# == further races of the same kind ===============================================


def test_two_threads_taking_the_same_response_get_one_response_between_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hyper.http20.connection as connection_module

    answer = threading.Event()
    claimed = threading.Event()
    real_await = connection_module.await_response

    def spying_await(*args: Any, **kwargs: Any) -> Any:
        claimed.set()  # the first thread took the stream and now waits for its headers
        return real_await(*args, **kwargs)

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        assert answer.wait(WAIT)
        peer.respond(request.stream_id, body=b"only once")
        peer.drain_until_closed()

    monkeypatch.setattr(connection_module, "await_response", spying_await)
    with ScriptedServer(script) as server, connect(server) as conn:
        sid = conn.request("GET", "/")
        first = Worker(lambda: conn.getresponse(sid))
        first.start()
        assert claimed.wait(WAIT)
        # A second taker is refused at once instead of sharing (and splitting) the body.
        with pytest.raises(hyper.InvalidStreamID):
            conn.getresponse(sid)
        answer.set()
        assert first.outcome().read() == b"only once"


def test_send_without_an_id_goes_to_this_threads_stream_not_the_latest_one() -> None:
    bodies: dict[bytes, bytes] = {}

    def script(peer: Peer) -> None:
        mine, theirs = peer.wait_request(), peer.wait_request()
        peer.respond(theirs.stream_id, body=b"theirs")
        bodies[dict(mine.headers)[b":path"]] = peer.read_body(mine.stream_id)
        peer.respond(mine.stream_id, body=b"mine")
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        mine = conn.putrequest("POST", "/mine")
        conn.endheaders()  # the body follows with send()
        # Another thread's request goes out in between...
        other = Worker(lambda: conn.getresponse(conn.request("GET", "/theirs")).read())
        other.start()
        assert other.outcome() == b"theirs"
        # ... and send() without an id still means this thread's stream (it
        # went to the other thread's finished stream and was silently dropped).
        conn.send(b"payload", final=True)
        assert conn.getresponse(mine).read() == b"mine"
    assert bodies == {b"/mine": b"payload"}


def test_two_threads_taking_one_push_get_the_same_response(monkeypatch: pytest.MonkeyPatch) -> None:
    import hyper.http20.push as push_module

    answer = threading.Event()
    first_waiting = threading.Event()
    real_await = push_module.await_response

    def spying_await(*args: Any, **kwargs: Any) -> Any:
        first_waiting.set()
        return real_await(*args, **kwargs)

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        fields = dict(request.headers)
        promised = peer.h2.get_next_available_stream_id()
        peer.h2.push_stream(
            request.stream_id,
            promised,
            [
                (b":method", b"GET"),
                (b":scheme", fields[b":scheme"]),
                (b":authority", fields[b":authority"]),
                (b":path", b"/pushed"),
            ],
        )
        peer.respond(request.stream_id, body=b"page")
        assert answer.wait(WAIT)
        peer.respond(promised, body=b"pushed body")
        peer.drain_until_closed()

    monkeypatch.setattr(push_module, "await_response", spying_await)
    with ScriptedServer(script) as server, connect(server, enable_push=True) as conn:
        page = conn.request("GET", "/page")
        assert conn.getresponse(page).read() == b"page"
        (pushed,) = list(conn.get_pushes(page))
        first = Worker(pushed.getresponse)
        first.start()
        assert first_waiting.wait(WAIT)
        second = Worker(pushed.getresponse)
        second.start()
        answer.set()
        response = first.outcome()
        assert second.outcome() is response  # one response, not two splitting its body
        assert response.read() == b"pushed body"


def test_stream_errors_carry_the_id_the_application_holds() -> None:
    def script(peer: Peer) -> None:
        first, second = peer.wait_request(), peer.wait_request()
        peer.respond(first.stream_id, body=b"first")
        # The incremental request went out second: wire stream 3, public id 1.
        peer.h2.reset_stream(second.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        peer.flush()
        peer.drain_until_closed()

    with ScriptedServer(script) as server, connect(server) as conn:
        conn.retry_refused = False  # checks the retryable error itself: no transparent resend
        incremental = conn.putrequest("GET", "/incremental")
        sender = Worker(lambda: conn.request("GET", "/whole"))  # another thread's request goes first
        sender.start()
        whole = sender.outcome()
        conn.endheaders(final=True)
        assert conn.getresponse(whole).read() == b"first"
        with pytest.raises(hyper.StreamResetError) as info:
            conn.getresponse(incremental)
        assert info.value.stream_id == incremental
        assert f"stream {incremental} " in str(info.value)
        assert info.value.retryable


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_a_slot_freed_by_another_thread_wakes_the_reader_waiting_for_it(timeout: float | None) -> None:
    """A request waiting for a stream slot, as the reader, goes out once another thread frees one.

    The waiting thread polls the socket (it is the reader); the server is
    quiet, so only the other thread's close() can end that wait (found by
    review: the request went out after the full read timeout, or never with
    timeout=None).
    """
    seen: list[int] = []
    second_arrived = threading.Event()

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        seen.append(first.stream_id)
        peer.respond(first.stream_id, end_stream=False)  # headers only: the slot stays taken
        second = peer.wait_request(timeout=60)
        seen.append(second.stream_id)
        second_arrived.set()
        peer.respond(second.stream_id, body=b"second")
        peer.drain_until_closed(timeout=60)

    settings = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1}
    with ScriptedServer(script, settings=settings) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=timeout)
        try:
            first = conn.getresponse(conn.request("GET", "/first"))
            outcome: dict[str, object] = {}

            def second() -> None:
                try:
                    outcome["body"] = conn.getresponse(conn.request("GET", "/second")).read()
                except hyper.HyperError as exc:  # reported below
                    outcome["error"] = exc

            worker = threading.Thread(target=second, daemon=True)
            worker.start()
            # The second request waits for the slot as the connection's reader.
            wait_until_blocked_in(worker, "wait_for_socket", "_read_once_locked")
            first.close()  # RST_STREAM: the slot is free
            assert second_arrived.wait(20), "the freed slot did not reach the waiting reader"
            worker.join(20)
            assert not worker.is_alive()
            assert outcome == {"body": b"second"}
        finally:
            conn.close()
    assert seen == [1, 3]

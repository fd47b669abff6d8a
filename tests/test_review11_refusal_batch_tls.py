"""Review of sess3 (review11): the refusal flag, held batch bytes, and TLS pending().

* **The refusal flag.** After a read, sess3 sets the session's "may refuse
  new streams" flag from "the core is closed or failed" instead of asking
  the core. Whatever the case, the flag must never be unset while the core
  would refuse a stream or the socket is gone (that is what lets
  ``open_stream`` skip the core's check): a GOAWAY whose last stream id is
  above every id we used, one below a stream in flight, the last stream id
  used up, the socket failing after part of a read was fed, a GOAWAY read
  by the pre-open poll while a batch holds HEADERS.
* **Held bytes.** One flush method now sends what a batch holds before what
  the core queued: held HEADERS leave exactly once, in stream id order, and
  before the corked thread waits (even when another thread is the reader
  and it only goes to sleep).
* **TLS pending().** With a receive buffer smaller than a few TLS records,
  reads stop inside a record and OpenSSL holds decrypted bytes the kernel's
  poll cannot see: the session must never poll while it holds some.

Real TLS (the test CA) where TLS is the point; scripted h2 servers for the
faults. Every wait is bounded; Events order everything. Each test runs with
the fast paths on and with ``HYPER_FAST_PATHS=0``.
"""

from __future__ import annotations

import select
import ssl
import threading
from typing import Any

import h2.events
import pytest

import hyper
from hyper import HTTP20Connection
from hyper.common import sockets
from hyper.exceptions import ConnectionTerminated, HyperError
from hyper.http20 import session_reader, session_wire
from hyper.http20.session import H2Session
from tests.scripted import Peer, ScriptedServer
from tests.servers import CertFiles
from tests.waiting import wait_until_blocked_in

_WAIT = 20.0
_FAST = pytest.mark.parametrize("fast", [True, False], ids=["fast paths", "HYPER_FAST_PATHS=0"])


def _set_fast_paths(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not fast:
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")


def _flag_broken(session: H2Session) -> str | None:
    """What is wrong with the refusal flag now (``None``: nothing). Lock held or session idle.

    The flag may be set early (it is never cleared), but never be unset
    while the core refuses new streams or the socket is gone.
    """
    if session._refusal_possible:
        return None
    if session._socket_closed:
        return "flag unset with the socket closed"
    refusal = session._core.accepting_streams()
    if refusal is not None:
        return f"flag unset while the core refuses new streams: {refusal!r}"
    return None


def _watch_the_flag(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Check the flag after every feed of a core and every return from a wait, on every session."""
    broken: list[str] = []
    real_feed = session_wire.SessionWire._feed_locked
    real_wait = session_reader.SessionReader._wait_locked

    def fed(self: Any, size: int) -> None:
        try:
            real_feed(self, size)
        finally:
            problem = _flag_broken(self)
            if problem:
                broken.append("after a feed: " + problem)

    def waited(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            real_wait(self, *args, **kwargs)
        finally:
            problem = _flag_broken(self)
            if problem:
                broken.append("after a wait: " + problem)

    monkeypatch.setattr(session_wire.SessionWire, "_feed_locked", fed)
    monkeypatch.setattr(session_reader.SessionReader, "_wait_locked", waited)
    return broken


def _connect(server: ScriptedServer) -> HTTP20Connection:
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=_WAIT)


def _arrived(session: H2Session) -> None:
    """Wait (bounded) until the client's socket has bytes: sent is not yet delivered on loopback."""
    assert select.select([session._sock], [], [], _WAIT)[0], "the server's bytes never arrived"


# -- the refusal flag -----------------------------------------------------------------------


@_FAST
@pytest.mark.parametrize("last", ["above every id (2**31-1)", "the stream in flight", "below it (0)"])
def test_a_goaway_read_with_a_response_sets_the_flag_whatever_its_last_stream_id(
    last: str, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_fast_paths(fast, monkeypatch)
    broken = _watch_the_flag(monkeypatch)
    goaway_sent = threading.Event()

    def first(peer: Peer) -> None:
        request = peer.wait_request()
        last_id = {"above every id (2**31-1)": 2**31 - 1, "the stream in flight": request.stream_id}.get(
            last, 0
        )
        # The response and the GOAWAY in one write: one read brings both.
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        peer.h2.send_data(request.stream_id, b"first", end_stream=True)
        peer.send_goaway(last_stream_id=last_id)
        goaway_sent.set()
        peer.drain_until_closed()

    def second(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"second")
        peer.drain_until_closed()

    scripts = iter([first, second])
    with ScriptedServer(lambda peer: next(scripts)(peer), connections=2) as server:
        conn = _connect(server)
        try:
            session = conn._current_session()
            stream_id = conn.request("GET", "/")
            try:
                body: bytes | HyperError = conn.getresponse(stream_id).read()
            except HyperError as exc:
                body = exc
            if last == "below it (0)":
                # Not processed (RFC 9113 section 6.8), though the response
                # came: the core's judgement; either way no hang, no bare error.
                assert body == b"first" or isinstance(body, ConnectionTerminated), body
            else:
                assert body == b"first"
            # The response's read may have stopped before the GOAWAY (no
            # response owed); then it is in our socket, and the next open
            # reads it first (wait, bounded, until it has arrived).
            assert goaway_sent.wait(_WAIT)
            if not session._refusal_possible:
                _arrived(session)
            # The next request goes to a new connection, and is answered there.
            assert conn.getresponse(conn.request("GET", "/")).read() == b"second"
            assert conn._current_session() is not session
            assert session._refusal_possible
            assert not broken, broken
        finally:
            conn.close()


@_FAST
def test_the_last_stream_id_used_up_sets_the_flag_and_the_next_request_reconnects(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_fast_paths(fast, monkeypatch)
    broken = _watch_the_flag(monkeypatch)

    def answer_one(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"%d" % request.stream_id)
        peer.drain_until_closed()

    with ScriptedServer(answer_one, connections=2) as server:
        conn = _connect(server)
        try:
            session = conn._current_session()
            # The next id h2 hands out is the last one (RFC 9113 section 5.1.1).
            session._core._h2.highest_outbound_stream_id = 2**31 - 3
            stream_id = conn.request("GET", "/")
            assert session._refusal_possible and session._core.ids_exhausted
            assert conn.getresponse(stream_id).read() == b"%d" % (2**31 - 1)
            refusal, cleanly = session.refusal()
            assert refusal is not None and cleanly  # used up: a clean end, not a failure
            assert conn.getresponse(conn.request("GET", "/")).read() == b"1"  # a new connection
            assert not broken, broken
        finally:
            conn.close()


@_FAST
def test_a_socket_failing_after_part_of_a_read_was_fed_sets_the_flag(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read gets the response's HEADERS, then the socket breaks: fed, then lost."""
    _set_fast_paths(fast, monkeypatch)
    broken = _watch_the_flag(monkeypatch)
    sent = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        peer.flush()
        sent.set()
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = _connect(server)
        try:
            session = conn._current_session()
            stream_id = conn.request("GET", "/")
            assert sent.wait(_WAIT)
            _arrived(session)
            real_read = session._read_into
            calls = []

            def read_then_break(size: int, buffer: Any) -> int:
                calls.append(size)
                if len(calls) == 1:
                    return int(real_read(size, buffer))  # the HEADERS: fed to the core
                raise ConnectionResetError(104, "review11: the socket broke mid-read")

            session._read_into = read_then_break
            # The headers were fed before the break; the break is raised by
            # the read that found it, or by the body's read after them.
            with pytest.raises(ConnectionTerminated):
                conn.getresponse(stream_id).read()
            assert len(calls) >= 2
            assert session._refusal_possible and session._socket_closed
            refusal, cleanly = session.refusal()
            assert refusal is not None and not cleanly
            assert not broken, broken
        finally:
            conn.close()


@_FAST
def test_a_goaway_read_by_the_pre_open_poll_inside_a_batch_drops_the_held_stream(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held stream 3; the GOAWAY (last stream 1) is read by the next request's pre-open poll.

    The poll's flush sends held bytes first (sess3's one flush method): the
    held stream, above the GOAWAY's last id, must be dropped there, never
    sent; the next request goes to a new connection; the flag is set.
    """
    _set_fast_paths(fast, monkeypatch)
    broken = _watch_the_flag(monkeypatch)
    send_goaway = threading.Event()
    goaway_sent = threading.Event()
    seen_on_first: list[int] = []

    def first(peer: Peer) -> None:
        request = peer.wait_request()
        seen_on_first.append(request.stream_id)
        peer.respond(request.stream_id, body=b"one")
        assert send_goaway.wait(_WAIT)
        peer.send_goaway(last_stream_id=request.stream_id)
        goaway_sent.set()
        later_events = []
        try:
            while not peer.closed:
                later_events.extend(peer.read_events(5))
        except (OSError, TimeoutError):
            pass
        # Nothing may name stream 3 here: its HEADERS were held, then dropped.
        seen_on_first.extend(e.stream_id for e in later_events if isinstance(e, h2.events.RequestReceived))

    def second(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"two")
        peer.drain_until_closed()

    scripts = iter([first, second])
    with ScriptedServer(lambda peer: next(scripts)(peer), connections=2) as server:
        conn = _connect(server)
        conn.retry_refused = False  # checks the retryable error itself: no transparent resend
        try:
            session = conn._current_session()
            assert conn.getresponse(conn.request("GET", "/")).read() == b"one"
            with conn.batch():
                held_id = conn.request("GET", "/held")
                assert session._held  # held, not sent
                send_goaway.set()
                assert goaway_sent.wait(_WAIT)
                _arrived(session)
                # The pre-open poll reads the GOAWAY and flushes (held first).
                new_id = conn.request("GET", "/new")
            assert not session._held
            with pytest.raises(ConnectionTerminated) as held_error:
                conn.getresponse(held_id).read()
            assert held_error.value.retryable
            assert conn.getresponse(new_id).read() == b"two"
            assert session._refusal_possible
            assert not broken, broken
        finally:
            send_goaway.set()
            conn.close()
    assert seen_on_first == [1], seen_on_first


# -- held batch bytes -----------------------------------------------------------------------


@_FAST
def test_held_headers_leave_once_in_order_with_another_threads_request(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corked thread holds 3, 5, 7; another thread's request (9) sends them first, once.

    The server's h2 would fail the connection on a lower id after a higher
    one (RFC 9113 section 5.1.1) or a second HEADERS opening a stream; the
    script also records the order.
    """
    _set_fast_paths(fast, monkeypatch)
    order: list[int] = []

    def script(peer: Peer) -> None:
        settle = peer.wait_request()
        peer.respond(settle.stream_id, body=b"%d" % settle.stream_id)
        requests = [peer.wait_request() for _ in range(4)]
        order.extend(request.stream_id for request in requests)
        for request in requests:
            peer.respond(request.stream_id, body=b"%d" % request.stream_id)
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = _connect(server)
        try:
            session = conn._current_session()
            # The handshake settled (no SETTINGS left to read and answer: an
            # answer's flush would send held bytes early, as it may).
            assert conn.getresponse(conn.request("GET", "/settle")).read() == b"1"
            held_now = threading.Event()
            release = threading.Event()
            ids: list[int] = []

            def corked() -> None:
                with conn.batch():
                    ids.extend(conn.request("GET", f"/{i}") for i in range(3))
                    held_now.set()
                    assert release.wait(_WAIT)
                # Leaving the block: nothing left to send (another flush sent it).

            thread = threading.Thread(target=corked)
            thread.start()
            assert held_now.wait(_WAIT)
            assert [stream_id for stream_id, _ in session._held] == [3, 5, 7]
            other = conn.request("GET", "/other")  # its flush sends the held bytes first
            assert not session._held
            release.set()
            thread.join(_WAIT)
            assert not thread.is_alive()
            for stream_id in [*ids, other]:
                assert conn.getresponse(stream_id).read() == b"%d" % stream_id
            assert order == [3, 5, 7, 9]
        finally:
            conn.close()


@_FAST
def test_a_corked_thread_sends_what_it_holds_before_it_sleeps(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another thread reads; the corked one waits for a response to a request it holds.

    It only goes to sleep (someone else reads), so the held HEADERS must
    leave before that sleep: the server answers the reader's stream only
    once it has seen the held one.
    """
    _set_fast_paths(fast, monkeypatch)

    def script(peer: Peer) -> None:
        settle = peer.wait_request()
        peer.respond(settle.stream_id, body=b"settled")
        reader_request = peer.wait_request()
        held_request = peer.wait_request(_WAIT)  # only if the corked thread sent it
        peer.respond(held_request.stream_id, body=b"held")
        peer.respond(reader_request.stream_id, body=b"reader")
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = _connect(server)
        try:
            # The handshake settled first: no late SETTINGS or ACK for the
            # reader to read (its answer's flush would send the held bytes
            # for the corked thread, hiding a wait that did not).
            assert conn.getresponse(conn.request("GET", "/settle")).read() == b"settled"
            reader_id = conn.request("GET", "/reader")
            results: dict[str, Any] = {}

            def read(name: str, stream_id: int) -> None:
                try:
                    results[name] = conn.getresponse(stream_id).read()
                except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                    results[name] = exc

            reader = threading.Thread(target=read, args=("reader", reader_id))
            reader.start()
            wait_until_blocked_in(reader, "wait_for_socket", "_read_once_locked")

            def corked() -> None:
                try:
                    with conn.batch():
                        held_id = conn.request("GET", "/held")
                        results["held"] = conn.getresponse(held_id).read()
                except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                    results["held"] = exc

            thread = threading.Thread(target=corked)
            thread.start()
            thread.join(_WAIT + 5)
            reader.join(_WAIT + 5)
            assert not thread.is_alive() and not reader.is_alive()
            assert results == {"held": b"held", "reader": b"reader"}, results
        finally:
            conn.close()


# -- TLS pending() --------------------------------------------------------------------------

_BODY = bytes(range(256)) * 1200  # 300 KiB: many TLS records, and several fills of a small buffer


def _polls_with_tls_pending(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record, at each poll of a session's socket, how many decrypted bytes TLS held then."""
    found: list[int] = []
    real_wait = sockets.ReadWatcher.wait_for_socket
    real_before_open = H2Session._poll_before_open_locked

    def held(sock: Any) -> None:
        pending = getattr(sock, "pending", None)
        if pending is not None and not getattr(sock, "_closed", False):
            try:
                count = pending()
            except (OSError, ValueError):
                return
            if count:
                found.append(count)

    def watched(self: Any, timeout: float | None) -> Any:
        held(self._sock)
        return real_wait(self, timeout)

    def before_open(self: Any) -> None:
        if not self._socket_closed:
            held(self._sock)
        real_before_open(self)

    monkeypatch.setattr(sockets.ReadWatcher, "wait_for_socket", watched)
    monkeypatch.setattr(H2Session, "_poll_before_open_locked", before_open)
    return found


@_FAST
@pytest.mark.parametrize("buffer_size", [20_000, 70_000])
def test_no_poll_while_openssl_holds_decrypted_bytes(
    buffer_size: int, fast: bool, server_cert_files: CertFiles, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receive buffer that ends inside TLS records: reads smaller than a record leave bytes in OpenSSL.

    The session must read those before it polls the kernel (which cannot see
    them): otherwise, with the server quiet, the response would wait for a
    timeout. The responses are checked whole, and every poll is checked.
    """
    _set_fast_paths(fast, monkeypatch)
    monkeypatch.setattr(session_wire, "RECV_BUFFER_SIZE", buffer_size)
    monkeypatch.setattr(session_wire, "MIN_FILL_SPACE", 2048)
    found = _polls_with_tls_pending(monkeypatch)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)
    server_context.set_alpn_protocols(["h2"])
    answered = threading.Event()

    def script(peer: Peer) -> None:
        for _ in range(3):
            request = peer.wait_request()
            peer.respond(request.stream_id, body=_BODY)
        answered.set()
        peer.drain_until_closed()

    with ScriptedServer(script, tls_context=server_context, settings={4: 2**20}) as server:
        context = hyper.tls.init_context(cert_path=ca_file)
        conn = HTTP20Connection("localhost", server.port, ssl_context=context, timeout=_WAIT)
        try:
            # The server's frames as large as h2 allows it here (16 KiB default),
            # each DATA frame more than one TLS record.
            for _ in range(3):
                response = conn.getresponse(conn.request("GET", "/"))
                pieces = []
                while piece := response.read(5000):
                    pieces.append(piece)
                assert b"".join(pieces) == _BODY
            assert answered.wait(_WAIT)
            assert found == [], f"polled while TLS held decrypted bytes: {found[:5]}"
        finally:
            conn.close()


# -- found: a complete response lost to the reader when the socket breaks in the same drain ---


@_FAST
def test_a_response_completed_by_the_read_that_then_broke_is_returned_to_the_reader(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streams 1 and 3 in flight; one read brings all of 1's response, the next recv breaks.

    The drain goes on after 1's response (3 is still owed) and meets the
    break. The core keeps 1 (complete: ``stream_failure`` says a later
    connection failure does not take it back), and a sleeping thread would
    get it; the reader thread, whose wait the drain raised out of, gets the
    connection's error instead, for a response that arrived whole, and the
    response is then gone (its wait failed, so it counts as abandoned).
    """
    _set_fast_paths(fast, monkeypatch)
    sent = threading.Event()

    def script(peer: Peer) -> None:
        settle = peer.wait_request()
        peer.respond(settle.stream_id, body=b"settled")
        first = peer.wait_request()
        peer.wait_request()
        # The whole response in one write (one small segment on loopback):
        # the client's one read takes all of it.
        peer.h2.send_headers(first.stream_id, [(b":status", b"200")])
        peer.h2.send_data(first.stream_id, b"whole", end_stream=True)
        peer.flush()
        sent.set()
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = _connect(server)
        try:
            session = conn._current_session()
            assert conn.getresponse(conn.request("GET", "/settle")).read() == b"settled"
            first_id = conn.request("GET", "/first")
            conn.request("GET", "/second")
            assert sent.wait(_WAIT)
            _arrived(session)
            real_read = session._read_into
            calls: list[int] = []

            def read_then_break(size: int, buffer: Any) -> int:
                calls.append(size)
                if len(calls) == 1:
                    return int(real_read(size, buffer))  # all of the first response
                raise ConnectionResetError(104, "review11: the socket broke after the response")

            session._read_into = read_then_break
            # Today: ConnectionTerminated here, and the response is gone (a
            # second getresponse() says it was abandoned when its wait failed).
            response = conn.getresponse(first_id)
            assert response.status == 200
            assert response.read() == b"whole"
            assert len(calls) >= 2  # the break was met (by this read)
        finally:
            conn.close()

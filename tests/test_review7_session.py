"""Review of the session-layer speed changes (issue 14, sess): answers never stranded, no refusal missed.

The merge made the reader keep one poll object (``ReadWatcher``), let
``open_stream`` skip its wait set-up and usability check, and let
``await_response_start`` leave the answer to its last read (a SETTINGS or
PING ACK, a WINDOW_UPDATE) to the caller's flush. These tests check the
promises those shortcuts rest on, through the public API against scripted
servers: every queued ACK leaves before ``getresponse`` returns or raises,
on every path; a session that refuses (a GOAWAY read by another thread, the
socket gone, ``close()`` mid-poll) sends the next request to a new session;
the reader's wake-up byte never makes it spin. Orders are forced with
events, never with sleeps; every wait is bounded by :data:`WAIT`.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import h2.events
import h2.settings
import hyperframe.frame
import pytest

import hyper.tls
from hyper import HTTP20Connection
from hyper.common import sockets
from hyper.exceptions import HyperError, StreamResetError
from hyper.http20.sessions import SessionSet
from tests.batch_scripts import wait_for_goaway_in_socket
from tests.scripted import Peer
from tests.scripted_sessions import (
    WAIT,
    answer_with,
    await_ping_ack,
    await_settings_ack,
    reconnecting_connection,
    scripted_connection,
    start_thread,
)
from tests.servers import CertFiles
from tests.test_hostile import reconnecting_server
from tests.test_tls_read import tls_server_context

_PING = b"review07"


def _new_settings(peer: Peer) -> None:
    """Queue a SETTINGS frame the client must acknowledge (RFC 9113 section 6.5.3)."""
    peer.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 50})


def _ping_and_settings_acked(peer: Peer) -> None:
    """A PING and new SETTINGS behind what the script queued, all in one write; then both ACKs awaited."""
    peer.h2.ping(_PING)
    _new_settings(peer)
    peer.flush()
    await_ping_ack(peer)
    await_settings_ack(peer)


# -- the answer to the read that made the response ready ---------------------------------

# Each shape: what the server writes (in ONE write, with a SETTINGS frame to
# acknowledge) in answer to the request, and the body getresponse's response
# then yields (an exception type: reading it raises that).
_SHAPES: dict[str, tuple[Callable[[Peer, int], None], bytes | type[BaseException]]] = {
    "whole small response": (
        lambda peer, sid: (
            peer.h2.send_headers(sid, [(b":status", b"200")]),
            peer.h2.send_data(sid, b"small", end_stream=True),
        ),
        b"small",
    ),
    "headers only, body later": (
        lambda peer, sid: peer.h2.send_headers(sid, [(b":status", b"200")]),
        b"later",
    ),
    "headers, then the stream reset": (
        lambda peer, sid: (
            peer.h2.send_headers(sid, [(b":status", b"200")]),
            peer.h2.reset_stream(sid, error_code=2),
        ),
        StreamResetError,
    ),
    "a 1xx, then the whole response": (
        lambda peer, sid: (
            peer.h2.send_headers(sid, [(b":status", b"103"), (b"link", b"</a>")]),
            peer.h2.send_headers(sid, [(b":status", b"200")]),
            peer.h2.send_data(sid, b"hinted", end_stream=True),
        ),
        b"hinted",
    ),
}


@pytest.mark.parametrize("shape", sorted(_SHAPES))
@pytest.mark.parametrize("in_batch", [False, True], ids=["plain", "in a batch"])
def test_a_settings_frame_read_with_the_response_is_acknowledged_before_getresponse_returns(
    shape: str, in_batch: bool
) -> None:
    """RFC 9113 section 6.5.3: the server may stall until its SETTINGS are acknowledged.

    The client does nothing after getresponse() until the server saw the ACK,
    so an ACK left queued for a later flush is never sent and the test fails.
    """
    write, expected = _SHAPES[shape]
    acked = threading.Event()
    finish = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        write(peer, request.stream_id)
        _new_settings(peer)
        peer.flush()  # one write: the client's one read takes it all
        await_settings_ack(peer)
        acked.set()
        assert finish.wait(WAIT)
        if expected == b"later":
            peer.h2.send_data(request.stream_id, b"later", end_stream=True)
            peer.flush()
        peer.drain_until_closed()

    with scripted_connection(script, release=(finish,)) as conn:
        if in_batch:
            # The batch holds the HEADERS: getresponse must send them first.
            with conn.batch():
                response = conn.getresponse(conn.request("GET", "/"))
        else:
            response = conn.getresponse(conn.request("GET", "/"))
        assert acked.wait(WAIT), "the SETTINGS ACK was left queued"
        finish.set()
        if isinstance(expected, bytes):
            assert response.read() == expected
        else:
            with pytest.raises(expected):
                response.read()


def test_the_servers_first_settings_read_with_the_first_response_are_acknowledged() -> None:
    """The server's preface comes only after our request, in the same write as the response:
    the ACK of its first SETTINGS (RFC 9113 section 3.4) leaves before getresponse returns."""
    acked = threading.Event()
    finish = threading.Event()

    def script(peer: Peer) -> None:
        # The server's SETTINGS queued first (h2 queues its ACK of ours
        # behind them), but nothing is sent until the request is here.
        peer.h2.initiate_connection()
        requests: list[Any] = []
        while not requests:
            data = peer.sock.recv(65536)
            assert data, "the client hung up before its request"
            requests = [e for e in peer.h2.receive_data(data) if isinstance(e, h2.events.RequestReceived)]
        peer.h2.send_headers(requests[0].stream_id, [(b":status", b"200")])
        peer.flush()  # SETTINGS, the ACK of the client's, the response's HEADERS: one write
        await_settings_ack(peer)
        acked.set()
        assert finish.wait(WAIT)
        peer.h2.send_data(requests[0].stream_id, b"late", end_stream=True)
        peer.flush()
        peer.drain_until_closed()

    with scripted_connection(script, release=(finish,), handshake=False) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        assert acked.wait(WAIT), "the first SETTINGS ACK was left queued"
        finish.set()
        assert response.read() == b"late"


def test_over_tls_a_ping_and_settings_read_with_the_headers_are_acknowledged(
    server_cert_files: CertFiles, ca_file: str
) -> None:
    """As above, over real TLS: the reader's drain stops at the end of a record, and its answer
    (the PING and SETTINGS ACKs) still leaves before getresponse returns."""
    acked = threading.Event()
    finish = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        _ping_and_settings_acked(peer)
        acked.set()
        assert finish.wait(WAIT)
        peer.h2.send_data(request.stream_id, b"tls body", end_stream=True)
        peer.flush()
        peer.drain_until_closed()

    with scripted_connection(
        script,
        release=(finish,),
        client_context=hyper.tls.init_context(cert_path=ca_file),
        tls_context=tls_server_context(server_cert_files),
    ) as conn:
        response = conn.getresponse(conn.request("GET", "/"))
        assert acked.wait(WAIT), "an ACK was left queued"
        finish.set()
        assert response.read() == b"tls body"


def test_a_ping_read_with_a_reset_stream_is_acknowledged_when_getresponse_raises() -> None:
    """No headers, a reset and a PING in one read: getresponse raises, the PING ACK still left."""
    acked = threading.Event()

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.reset_stream(request.stream_id, error_code=8)
        _ping_and_settings_acked(peer)
        acked.set()
        peer.drain_until_closed()

    with scripted_connection(script) as conn:
        with pytest.raises(StreamResetError):
            conn.getresponse(conn.request("GET", "/"))
        assert acked.wait(WAIT), "an ACK was left queued when getresponse raised"


def test_a_whole_response_read_with_a_ping_and_the_servers_fin_is_returned() -> None:
    """The ACK cannot leave (the server hung up): the complete response is still the caller's."""

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        peer.h2.send_headers(request.stream_id, [(b":status", b"200")])
        peer.h2.send_data(request.stream_id, b"last words", end_stream=True)
        peer.h2.ping(_PING)
        peer.flush()
        peer.hang_up()

    with scripted_connection(script) as conn:
        assert conn.getresponse(conn.request("GET", "/")).read() == b"last words"


def test_another_threads_held_batch_does_not_keep_the_readers_ack() -> None:
    """A corked thread holds HEADERS while another thread's read makes its response ready.

    The ready thread's answer (the SETTINGS ACK) leaves with its own flush,
    which sends the other batch's held HEADERS first (they only ever leave early).
    """
    first_sent = threading.Event()
    held = threading.Event()
    end_batch = threading.Event()
    acked = threading.Event()

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        first_sent.set()
        assert held.wait(WAIT)  # the other thread now holds its HEADERS
        peer.h2.send_headers(first.stream_id, [(b":status", b"200")])
        peer.h2.send_data(first.stream_id, b"one", end_stream=True)
        _new_settings(peer)
        peer.flush()
        await_settings_ack(peer)
        acked.set()
        second = peer.wait_request()
        peer.respond(second.stream_id, body=b"two")
        peer.drain_until_closed()

    with scripted_connection(script, release=(end_batch,)) as conn:
        results: dict[str, Any] = {}

        def corked() -> None:
            try:
                assert first_sent.wait(WAIT)
                with conn.batch():
                    results["second"] = conn.request("GET", "/second")
                    held.set()
                    assert end_batch.wait(WAIT)
            except BaseException as exc:  # noqa: BLE001 - reported below
                results["error"] = exc
                held.set()

        other = threading.Thread(target=corked)
        other.start()
        try:
            response = conn.getresponse(conn.request("GET", "/first"))
            assert acked.wait(WAIT), "the SETTINGS ACK was left queued"
            assert response.read() == b"one"
            end_batch.set()
            other.join(WAIT)
            assert "error" not in results
            assert conn.getresponse(results["second"]).read() == b"two"
        finally:
            end_batch.set()
            other.join(WAIT)


# -- a session that refuses sends the next request elsewhere --------------------------------


def test_a_goaway_read_by_another_thread_moves_the_next_request_to_a_new_session() -> None:
    """The reader (another thread, waiting for its response) reads the GOAWAY.

    The next request must not be opened on the old session (RFC 9113
    section 6.8): ``_refusal_possible`` is set by that read, so
    ``open_stream`` asks and the request goes to a new connection.
    """
    seen = threading.Event()

    def first(peer: Peer) -> None:
        request = peer.wait_request()
        peer.send_goaway(request.stream_id)
        peer.h2.ping(_PING)
        peer.flush()
        await_ping_ack(peer)  # the waiting thread read the GOAWAY and answered
        seen.set()
        peer.respond(request.stream_id, body=b"old session")

    with reconnecting_connection(first, answer_with(b"new session")) as conn:
        results: dict[str, Any] = {}
        old_session = conn._current_session()
        old_id = conn.request("GET", "/old")
        thread = start_thread(lambda: conn.getresponse(old_id).read(), results, "old")
        assert seen.wait(WAIT)
        new_id = conn.request("GET", "/new")
        assert conn._current_session() is not old_session
        assert conn.getresponse(new_id).read() == b"new session"
        thread.join(WAIT)
        assert "error" not in results
        assert results["old"] == b"old session"


def test_a_server_hang_up_seen_before_the_next_request_moves_it_to_a_new_session() -> None:
    """The FIN sits unread in the socket; the pre-open poll reads it at once and the request moves."""
    hung_up = threading.Event()

    def first(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"one")
        peer.sock.shutdown(socket.SHUT_WR)  # the FIN, on loopback in the client's kernel at once
        hung_up.set()

    with reconnecting_connection(first, answer_with(b"two")) as conn:
        assert conn.getresponse(conn.request("GET", "/")).read() == b"one"
        assert hung_up.wait(WAIT)
        assert conn.getresponse(conn.request("GET", "/")).read() == b"two"


def test_close_from_another_thread_while_the_reader_polls_then_the_connection_reconnects() -> None:
    """close() while a thread waits in the kept poll: that thread gets an error, never a hang;
    the next request runs on a new socket (whose descriptor number may be the old one's)."""
    requested = threading.Event()

    def first(peer: Peer) -> None:
        peer.wait_request()
        requested.set()
        peer.drain_until_closed()  # never answers: the client closes

    with reconnecting_connection(first, answer_with(b"after close")) as conn:
        results: dict[str, Any] = {}
        stream_id = conn.request("GET", "/stalled")
        thread = start_thread(lambda: conn.getresponse(stream_id), results, "response")
        assert requested.wait(WAIT)
        conn.close()
        thread.join(WAIT)
        assert not thread.is_alive()
        assert isinstance(results.get("error"), HyperError)
        assert conn.getresponse(conn.request("GET", "/again")).read() == b"after close"


@pytest.mark.parametrize("slot_freed", [False, True], ids=["slot still taken", "slot freed with the goaway"])
def test_a_goaway_read_while_waiting_for_a_stream_slot_moves_the_request(slot_freed: bool) -> None:
    """The one slot is taken; a second request waits for it; the server says GOAWAY (graceful).

    The second request was never sent: like a request that finds the GOAWAY
    before it waits, it must move to a new connection (RFC 9113 section
    6.8), not raise (slot still taken) nor go out on the old one (the slot
    freed by the same read: a new stream after GOAWAY, which the server ignores).
    """
    waiting = threading.Event()

    def first(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, end_stream=False)  # the slot stays taken
        assert waiting.wait(WAIT)
        goaway = hyperframe.frame.GoAwayFrame(0)
        goaway.last_stream_id = request.stream_id
        if slot_freed:
            # The stream's end and the GOAWAY in one write: the waiter's one read takes both.
            peer.h2.send_data(request.stream_id, b"one", end_stream=True)
            peer.send_raw(peer.h2.data_to_send() + goaway.serialize())
        else:
            peer.send_raw(goaway.serialize())
            peer.h2.send_data(request.stream_id, b"one", end_stream=True)
            peer.flush()
        # Returns: the server takes the next connection (the old one stays open).

    with reconnecting_server(first, answer_with(b"two")) as server:
        # Read when the server accepts, which is after the client connects, below.
        server._settings = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1}
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=WAIT)
        try:
            response = conn.getresponse(conn.request("GET", "/one"))
            session = conn._current_session()
            real = session._wait_for_slot_locked

            def announcing() -> None:
                waiting.set()  # under the state lock: the GOAWAY is read in the wait below
                real()

            session._wait_for_slot_locked = announcing  # type: ignore[method-assign]
            second_id = conn.request("GET", "/two")
            assert conn._current_session() is not session
            assert conn.getresponse(second_id).read() == b"two"
            assert response.read() == b"one"
        finally:
            waiting.set()
            conn.close()


def test_a_request_holding_a_session_replaced_and_closed_meanwhile_moves_to_the_new_one() -> None:
    """usable() hands out the current session without the set's lock; the request may then
    reach a session another thread already replaced (GOAWAY) and closed (drained): open_stream
    checks again under the session's own lock, and the request goes to the new session."""
    picked = threading.Event()
    go_on = threading.Event()

    def first(peer: Peer) -> None:
        request = peer.wait_request()
        peer.respond(request.stream_id, body=b"one")
        assert picked.wait(WAIT)
        peer.send_goaway(request.stream_id)
        peer.drain_until_closed()  # the client closes this session once it is drained

    with reconnecting_connection(first, answer_with(b"new", requests=2), release=(go_on,)) as conn:
        results: dict[str, Any] = {}
        old = conn._current_session()
        assert conn.getresponse(conn.request("GET", "/one")).read() == b"one"
        assert conn._current_session() is old
        real_open = old.open_stream

        def gated(*args: Any, **kwargs: Any) -> int | None:
            picked.set()  # this thread holds the old session, not yet its lock
            assert go_on.wait(WAIT)
            return real_open(*args, **kwargs)

        old.open_stream = gated  # type: ignore[method-assign]
        thread = start_thread(lambda: conn.getresponse(conn.request("GET", "/late")).read(), results, "late")
        assert picked.wait(WAIT)
        # Meanwhile this thread finds the GOAWAY (the pre-open poll of the
        # next request would too), replaces the session, and the drained
        # old one is closed.
        del old.open_stream
        wait_for_goaway_in_socket(conn)  # unread: the next request's pre-open poll finds it
        assert conn.getresponse(conn.request("GET", "/two")).read() == b"new"
        assert old.fileno() == -1  # closed: its socket number may be anyone's now
        go_on.set()
        thread.join(WAIT)
        assert "error" not in results
        assert results["late"] == b"new"


def test_the_last_stream_id_makes_the_next_request_move_to_a_new_session() -> None:
    """RFC 9113 section 5.1.1: ids are never reused; the request after the last id
    moves to a new connection (``_refusal_possible`` set by the open itself)."""

    def first(peer: Peer) -> None:
        request = peer.wait_request()
        assert request.stream_id == 2**31 - 1
        peer.respond(request.stream_id, body=b"last id")
        peer.drain_until_closed()

    def second(peer: Peer) -> None:
        request = peer.wait_request()
        assert request.stream_id == 1
        peer.respond(request.stream_id, body=b"fresh ids")
        peer.drain_until_closed()

    with reconnecting_connection(first, second) as conn:
        session = conn._current_session()
        # Skip ahead (ids need not be consecutive, section 5.1.1): the next one is the last.
        session._core._h2.highest_outbound_stream_id = 2**31 - 3
        assert conn.getresponse(conn.request("GET", "/")).read() == b"last id"
        assert conn.getresponse(conn.request("GET", "/")).read() == b"fresh ids"
        assert conn._current_session() is not session


# -- the reader's wake-up byte ---------------------------------------------------------------


def test_pokes_of_the_reader_are_drained_so_it_never_spins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each response close()d while another thread reads pokes that reader (its wake-up socket).

    The byte must be read, or every later poll returns at once: the reader's
    waits, counted here, would then grow without bound while the server is slow.
    """
    waits: list[int] = []
    real = sockets.ReadWatcher.wait_for_socket

    def counting(self: sockets.ReadWatcher, timeout: float | None) -> tuple[bool, bool]:
        waits.append(1)
        return real(self, timeout)

    monkeypatch.setattr(sockets.ReadWatcher, "wait_for_socket", counting)
    rounds = 5
    release = threading.Event()
    reset_seen = threading.Event()

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        for _ in range(rounds):
            request = peer.wait_request()
            peer.respond(request.stream_id, end_stream=False)
            peer.wait_for(lambda e: isinstance(e, h2.events.StreamReset), WAIT)
        reset_seen.set()
        assert release.wait(WAIT)
        peer.respond(first.stream_id, body=b"first")
        peer.drain_until_closed()

    with scripted_connection(script, release=(release,)) as conn:
        results: dict[str, Any] = {}
        first_id = conn.request("GET", "/first")
        thread = start_thread(lambda: conn.getresponse(first_id).read(), results, "first")
        try:
            for _ in range(rounds):
                conn.getresponse(conn.request("GET", "/poke")).close()  # RST_STREAM, and a poke
            assert reset_seen.wait(WAIT)
            # A spinning reader polls on and on meanwhile; a sound one waits
            # once per event (a response, a poke) and once more.
            polls_so_far = len(waits)
            assert polls_so_far <= 6 * rounds + 6, f"{polls_so_far} polls for {rounds} rounds"
            release.set()
            thread.join(WAIT)
            assert "error" not in results
            assert results["first"] == b"first"
        finally:
            release.set()
            thread.join(WAIT)


_NO_KEPT_POLL = not sockets.HAVE_POLL or sockets.fast_paths_forced_off()


def test_the_pre_open_poll_keeps_a_poll_object_only_where_the_reader_does() -> None:
    """The session's two kept poll objects follow the same switch.

    ``ReadWatcher`` keeps none without poll() at import (``HYPER_TEST_NO_POLL=1``,
    Windows) or with ``HYPER_FAST_PATHS=0``; ``_poll_before_open_locked`` asks
    ``hasattr(select, "poll")`` at run time instead, so those runs never
    exercise its fallback (``_poll_locked``) and the switch does not turn it off.
    """

    with scripted_connection(answer_with(b"ok")) as conn:
        assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
        session = conn._current_session()
        assert session._read_watcher is not None
        assert (session._ready_poller is not None) == session._read_watcher.kept


# -- SessionSet: the current session, read without the set's lock ----------------------------


class _IdBaseSpy:
    """A stand-in session whose ``id_base`` assignment looks at what the set hands out then."""

    def __init__(self, sets: SessionSet) -> None:
        self._sets = sets
        self._id_base: int | None = None
        self.handed_out_before_id_base: list[object] = []

    def refusal(self) -> tuple[None, bool]:
        return None, True

    def has_streams(self) -> bool:
        return True

    @property
    def id_base(self) -> int:
        assert self._id_base is not None
        return self._id_base

    @id_base.setter
    def id_base(self, value: int) -> None:
        # Another thread asking for the current session now (usable() takes
        # no lock) would be handed whatever this returns.
        # (_usable() is the step of usable() that reads it without any lock.)
        self.handed_out_before_id_base.append(self._sets._usable())
        self._id_base = value


def test_a_session_is_never_handed_out_before_its_id_base_is_set() -> None:
    """usable() reads the current session without the set's lock: it must be complete when swapped in.

    ``_install`` assigns ``id_base`` (which makes pushed streams' public ids
    unique across sessions) AFTER making the session current, so a thread
    asking in between gets a session whose pushed ids would start at 0
    again. Fix: set ``new.id_base`` before ``self._session = new``.
    """
    sets = SessionSet()
    first: Any = _IdBaseSpy(sets)
    sets.adopt(first)
    second: Any = _IdBaseSpy(sets)
    sets.adopt(second)
    assert second not in second.handed_out_before_id_base
    assert second.id_base == 2**31

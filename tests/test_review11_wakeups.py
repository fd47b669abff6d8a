"""Review of sess3's one wait (review11): wake-ups between threads are never lost.

sess3 folded the batch's wait, the reader's wait and its loop into one
``_wait_locked`` and skipped the wake-up calls when nobody sleeps on the
state condition. These tests put many threads on one connection and make
the server answer in orders that need every hand-on of the reading and
every aimed wake-up:

* real servers (nginx, nghttpd over TLS) with six threads, bodies of mixed
  sizes read in pieces, so responses and windows interleave freely;
* a scripted server answering in the reverse order of the requests, one
  response per write;
* a timeout in the one wait, of the reader and of a sleeper: the other
  thread still gets its response (the reading is handed on);
* the connection closing under sleeping threads (server EOF, GOAWAY, our
  own close()): every thread leaves with an error, none stays asleep.

A lost wake-up cannot hang these tests: each thread's waits are bounded by
the connection's timeout (a lost wake-up then ends as a ReadTimeout, a
failure), or, where a wait is unbounded on purpose, the test closes the
connection after its own bound and fails. Events order everything; no
sleep() decides an order. Each test runs with the fast paths on and with
``HYPER_FAST_PATHS=0``.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hyper
from hyper import HTTP20Connection
from hyper.exceptions import ConnectionClosed, ConnectionTerminated, ReadTimeout
from hyper.http20 import session_reader
from tests.scripted import Peer, ScriptedServer
from tests.servers import ServerInfo, docroot_content
from tests.waiting import wait_until_blocked_in

_WAIT = 20.0  # bounds every wait; a lost wake-up shows as a ReadTimeout, never a hang
_FAST = pytest.mark.parametrize("fast", [True, False], ids=["fast paths", "HYPER_FAST_PATHS=0"])
_FIELDS = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"127.0.0.1"), (b":path", b"/")]


def _set_fast_paths(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not fast:
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")


def _run_threads(
    work: Callable[[int], None], count: int, conn: HTTP20Connection, bound: float = 60.0
) -> list[BaseException]:
    """Run ``work(i)`` in ``count`` threads started together; their errors.

    Bounded: a thread still alive after ``bound`` seconds is stuck (a lost
    wake-up); the connection is closed to free it, and the test fails.
    """
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            start.wait(_WAIT)
            work(index)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), name=f"review11-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + bound
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        conn.close()  # frees them: every waiter gets the closed connection's error
        for thread in threads:
            thread.join(_WAIT)
        raise AssertionError(f"threads stuck on one connection (a lost wake-up?): {stuck}")
    return errors


# -- real servers -----------------------------------------------------------------------

_RANGE_END = 300_000  # a part of big.bin bigger than the initial windows: WINDOW_UPDATEs interleave


@_FAST
@pytest.mark.parametrize("server_name", ["nginx_server", "nghttpd_server"])
def test_six_threads_on_one_real_connection_all_get_their_bodies(
    server_name: str, fast: bool, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_fast_paths(fast, monkeypatch)
    info: ServerInfo = request.getfixturevalue(server_name)
    assert info.docroot is not None
    big_part = (Path(info.docroot) / "big.bin").read_bytes()[: _RANGE_END + 1]
    expected = {"/hello.txt": docroot_content("hello.txt"), "/1k.bin": docroot_content("1k.bin")}
    paths = ["/hello.txt", "/1k.bin", "/big.bin"]
    context = hyper.tls.init_context(cert_path=info.ca_file)
    conn = HTTP20Connection(info.host, info.port, ssl_context=context, timeout=_WAIT)
    try:

        def work(index: int) -> None:
            for round_ in range(10):
                path = paths[(index + round_) % len(paths)]
                headers: dict[str | bytes, str | bytes | int] = {}
                if path == "/big.bin":
                    headers["range"] = f"bytes=0-{_RANGE_END}"
                stream_id = conn.request("GET", path, headers=headers)
                response = conn.getresponse(stream_id)
                if (index + round_) % 2:
                    pieces = []  # many read_body waits, each for a piece
                    while piece := response.read(7000):
                        pieces.append(piece)
                    body = b"".join(pieces)
                else:
                    body = response.read()
                if path == "/big.bin":
                    # nginx answers the range (206); nghttpd ignores it and
                    # sends the whole file: its first bytes are checked and
                    # the rest was read (and credited) all the same.
                    assert body[: _RANGE_END + 1] == big_part, (path, response.status, len(body))
                else:
                    assert body == expected[path], (path, response.status)

        errors = _run_threads(work, 6, conn)
        assert not errors, errors
        # The connection is still sound after it all: one more request on it.
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == expected["/1k.bin"]
    finally:
        conn.close()


# -- scripted: responses in reverse order --------------------------------------------------


@_FAST
@pytest.mark.parametrize("count", [2, 6])
def test_responses_in_reverse_order_reach_every_thread(
    count: int, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last request is answered first: each reader leaves while the others sleep."""
    _set_fast_paths(fast, monkeypatch)
    all_sent = threading.Event()

    def script(peer: Peer) -> None:
        requests = [peer.wait_request() for _ in range(count)]
        all_sent.set()
        for request in reversed(requests):
            # One response per write: each read brings news for one thread only.
            peer.respond(request.stream_id, body=b"for %d" % request.stream_id)
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=_WAIT)
        try:
            bodies: dict[int, bytes] = {}

            def work(index: int) -> None:
                stream_id = conn.request("GET", f"/{index}")
                # Nobody waits before every request is out: all threads wait together.
                assert all_sent.wait(_WAIT)
                bodies[stream_id] = conn.getresponse(stream_id).read()

            errors = _run_threads(work, count, conn)
            assert not errors, errors
            assert bodies == {stream_id: b"for %d" % stream_id for stream_id in bodies}
            assert len(bodies) == count
        finally:
            conn.close()


@_FAST
@pytest.mark.parametrize("count", [2, 5])
def test_the_readers_response_first_every_time_hands_the_reading_on(
    count: int, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever reads is answered first, alone: each time it leaves, a sleeper must take over.

    No read brings news for a sleeper, so nothing but the hand-on of the
    reading (notify_one when the reader leaves) can wake one: a lost hand-on
    leaves no reader at all, which the test sees (bounded) and fails on.
    """
    _set_fast_paths(fast, monkeypatch)
    to_answer: list[int] = []
    answer = threading.Condition()

    def script(peer: Peer) -> None:
        for _ in range(count):
            peer.wait_request()
        for _ in range(count):
            with answer:
                assert answer.wait_for(lambda: bool(to_answer), _WAIT)
                stream_id = to_answer.pop()
            # Headers and body in one write: one read, news for this stream only.
            peer.h2.send_headers(stream_id, [(b":status", b"200")])
            peer.h2.send_data(stream_id, b"for %d" % stream_id, end_stream=True)
            peer.flush()
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=_WAIT)
        try:
            ids = [conn.request("GET", f"/{i}") for i in range(count)]
            outcome: dict[int, Any] = {}

            def wait(stream_id: int) -> None:
                try:
                    outcome[stream_id] = conn.getresponse(stream_id).read()
                except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                    outcome[stream_id] = exc

            threads = {stream_id: threading.Thread(target=wait, args=(stream_id,)) for stream_id in ids}
            for thread in threads.values():
                thread.start()
            while threads:
                # The one reader, the others asleep: then the reader's answer.
                reader = _reader_of(list(threads.values()))
                for thread in threads.values():
                    if thread is not reader:
                        wait_until_blocked_in(thread, "wait", "sleep", "_wait_locked", timeout=_WAIT)
                stream_id = next(s for s, t in threads.items() if t is reader)
                with answer:
                    to_answer.append(stream_id)
                    answer.notify_all()
                reader.join(_WAIT)
                assert not reader.is_alive(), "the reader did not get its response"
                assert outcome[stream_id] == b"for %d" % stream_id, outcome
                del threads[stream_id]
        finally:
            conn.close()


# -- a timeout in the one wait ----------------------------------------------------------------


class _Clock:
    """``time`` for session_reader, with one chosen thread's clock jumped ahead on cue.

    Lets a wait's timeout expire exactly when the test says so (no guessed
    duration): the thread's deadline lies far ahead until ``jump`` is set.
    """

    def __init__(self) -> None:
        self.jump = threading.Event()
        self.thread: threading.Thread | None = None

    def monotonic(self) -> float:
        ahead = self.jump.is_set() and threading.current_thread() is self.thread
        return time.monotonic() + (10_000.0 if ahead else 0.0)


def _timed_out() -> ReadTimeout:
    return ReadTimeout("review11: the wait's own timeout")


@_FAST
@pytest.mark.parametrize("who_times_out", ["the reader", "the sleeper"])
def test_a_timeout_in_the_one_wait_leaves_the_other_thread_served(
    who_times_out: str, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One thread reads, one sleeps; one of them times out; the other still gets its response.

    The other thread waits with no bound at all, so only the hand-on of the
    reading (the reader timed out) or the reader's own read (the sleeper
    timed out) can end its wait; a lost one is caught by the test's bound.
    """
    _set_fast_paths(fast, monkeypatch)
    clock = _Clock()
    monkeypatch.setattr(session_reader, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    ping_now = threading.Event()
    answer_survivor = threading.Event()

    def script(peer: Peer) -> None:
        first = peer.wait_request()
        second = peer.wait_request()
        if who_times_out == "the sleeper":
            assert ping_now.wait(_WAIT)
            # News for nobody's stream (a PING, stream 0): it wakes every
            # sleeper, which looks at its clock; the reader reads on.
            peer.h2.ping(b"review11")
            peer.flush()
        assert answer_survivor.wait(_WAIT)
        survivor = second if who_times_out == "the reader" else first
        peer.respond(survivor.stream_id, body=b"survived")
        peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=_WAIT)
        session = conn._current_session()
        results: dict[str, Any] = {}

        def wait(name: str, stream_id: int, timeout: float | None) -> None:
            try:
                headers, piece = session.await_response_start(stream_id, timeout, _timed_out)
                body = b""
                while piece is None or piece[1] is None:  # until the trailers' place: the end
                    if piece is not None:
                        body += piece[0]
                    piece = session.read_body(stream_id, None, timeout, _timed_out)
                    assert piece is not None
                results[name] = body + piece[0]
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                results[name] = exc

        try:
            reader_id = session.open_stream(_FIELDS, True, may_refuse=False)
            sleeper_id = session.open_stream(_FIELDS, True, may_refuse=False)
            assert reader_id is not None and sleeper_id is not None
            reader_timeout = 1000.0 if who_times_out == "the reader" else None
            sleeper_timeout = 1000.0 if who_times_out == "the sleeper" else None
            reader = threading.Thread(target=wait, args=("reader", reader_id, reader_timeout))
            sleeper = threading.Thread(target=wait, args=("sleeper", sleeper_id, sleeper_timeout))
            clock.thread = reader if who_times_out == "the reader" else sleeper
            reader.start()
            wait_until_blocked_in(reader, "wait_for_socket", "_read_once_locked")
            sleeper.start()
            wait_until_blocked_in(sleeper, "wait", "sleep", "_wait_locked")
            clock.jump.set()
            if who_times_out == "the reader":
                # Wake the reader's poll with no news for anyone (the waker
                # socket, as a discard on another thread does): it looks at
                # its clock and leaves; the sleeper, not woken by this, must
                # be handed the reading.
                with session._cond:
                    session._poke_reader_locked()
            ping_now.set()
            quitter = reader if who_times_out == "the reader" else sleeper
            quitter.join(_WAIT)
            assert not quitter.is_alive(), "the timed-out wait did not end"
            quitter_name = "reader" if who_times_out == "the reader" else "sleeper"
            assert isinstance(results[quitter_name], ReadTimeout), results
            answer_survivor.set()
            survivor = sleeper if quitter is reader else reader
            survivor.join(_WAIT)
            if survivor.is_alive():
                conn.close()
                survivor.join(_WAIT)
                raise AssertionError("the other thread was left asleep after the timeout (lost wake-up)")
            survivor_name = "sleeper" if quitter is reader else "reader"
            assert results[survivor_name] == b"survived", results
        finally:
            ping_now.set()
            answer_survivor.set()
            conn.close()


# -- the connection closing under sleeping threads --------------------------------------------

_ENDINGS = ["server hangs up", "GOAWAY below their ids, then hang-up", "our close()"]


@_FAST
@pytest.mark.parametrize("ending", _ENDINGS)
def test_the_connection_closing_under_waiting_threads_wakes_every_one(
    ending: str, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four threads wait; two are answered, then the connection ends: the others get an error."""
    _set_fast_paths(fast, monkeypatch)
    count = 4
    all_waiting = threading.Event()
    served = threading.Event()

    def script(peer: Peer) -> None:
        requests = sorted((peer.wait_request() for _ in range(count)), key=lambda r: r.stream_id)
        assert all_waiting.wait(_WAIT)
        for request in requests[:2]:
            peer.respond(request.stream_id, body=b"ok")
        served.set()
        if ending == "GOAWAY below their ids, then hang-up":
            peer.send_goaway(last_stream_id=requests[1].stream_id)
        if ending != "our close()":
            peer.hang_up()
        else:
            peer.drain_until_closed()

    with ScriptedServer(script) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=_WAIT)
        conn.retry_refused = False  # checks the retryable error itself: no transparent resend
        try:
            session = conn._current_session()
            ids = [conn.request("GET", f"/{i}") for i in range(count)]
            outcome: dict[int, Any] = {}
            threads = []

            def wait(stream_id: int) -> None:
                try:
                    outcome[stream_id] = conn.getresponse(stream_id).read()
                except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                    outcome[stream_id] = exc

            for stream_id in ids:
                thread = threading.Thread(target=wait, args=(stream_id,))
                threads.append(thread)
                thread.start()
            # One reads, the others sleep (on their own conditions).
            reader = _reader_of(threads)
            for thread in threads:
                if thread is not reader:
                    wait_until_blocked_in(thread, "wait", "sleep", "_wait_locked")
            all_waiting.set()
            if ending == "our close()":
                assert served.wait(_WAIT)
                for thread in threads[:2]:
                    thread.join(_WAIT)
                conn.close()
            for thread in threads:
                thread.join(_WAIT)
            stuck = [t.name for t in threads if t.is_alive()]
            if stuck:
                conn.close()
                raise AssertionError(f"threads left asleep after the connection ended: {stuck}")
            assert outcome[ids[0]] == b"ok" and outcome[ids[1]] == b"ok", outcome
            for stream_id in ids[2:]:
                error = outcome[stream_id]
                assert isinstance(error, (ConnectionTerminated, ConnectionClosed)), outcome
                assert not isinstance(error, ReadTimeout), outcome
            if ending == "GOAWAY below their ids, then hang-up":
                # Above the GOAWAY's last stream id: never processed, safe to retry (RFC 9113 6.8).
                assert all(getattr(outcome[s], "retryable", False) for s in ids[2:]), outcome
            assert session.refusal()[0] is not None
            assert session._refusal_possible
        finally:
            all_waiting.set()
            conn.close()


def _reader_of(threads: list[threading.Thread]) -> threading.Thread:
    """The thread among ``threads`` that is the reader (polling the socket), once one is."""
    deadline = time.monotonic() + _WAIT
    while time.monotonic() < deadline:
        for thread in threads:
            try:
                wait_until_blocked_in(thread, "wait_for_socket", "_read_once_locked", timeout=0.0)
                return thread
            except AssertionError:
                continue
        threading.Event().wait(0.005)  # only the interval between looks at the stacks
    raise AssertionError("no thread became the reader")

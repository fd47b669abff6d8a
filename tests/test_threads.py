"""One HTTP20Connection shared by many threads: isolation, failure, stress.

The contract (issue 3): any number of threads may call ``request()``,
``getresponse()``, ``read()``, ``read_chunked()`` and ``close()`` on one
connection at once. Each thread gets exactly its own bodies; one thread's
slow reader, reset stream or timeout does not stall or fail the others beyond
what flow control requires; when the connection dies every waiting thread
gets a clear hyper exception promptly and no thread hangs.

Every body used here is unique to its request (distinct files in the shared
docroot, unique upload bodies echoed back, paths echoed by scripted peers),
so a response delivered to the wrong stream fails the byte comparison.
Every thread is joined with a deadline: a hang fails the test with the stuck
threads' stacks instead of hanging the run.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h2.errors
import h2.events
import h2.exceptions
import pytest

import hyper
import hyper.http20.session_wire
import hyper.tls
from hyper import HTTP20Connection
from hyper.testing import TestServer, expected_bytes
from tests.scripted import Peer, ScriptedServer
from tests.servers import ServerInfo, iter_big_bin
from tests.waiting import current_frames

#: Repeat index for the stress and failure cases (each run is independent).
REPEATS = range(3)
#: Seconds every waiting thread may take to learn that the connection died.
PROMPT = 10.0

# -- helpers -------------------------------------------------------------------


def connect(info: ServerInfo, timeout: float = 10, **kwargs: Any) -> HTTP20Connection:
    """A connection to a real test server, trusting the test CA."""
    return HTTP20Connection(
        info.host,
        info.port,
        secure=True,
        ssl_context=hyper.tls.init_context(cert_path=info.ca_file),
        timeout=timeout,
        **kwargs,
    )


def connect_scripted(server: ScriptedServer, timeout: float = 5, **kwargs: Any) -> HTTP20Connection:
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=timeout, **kwargs)


def _stacks(threads: list[threading.Thread]) -> str:
    frames = current_frames()
    parts = []
    for thread in threads:
        frame = frames.get(thread.ident or -1)
        if frame is not None:
            parts.append(f"--- {thread.name}\n" + "".join(traceback.format_stack(frame)))
    return "\n".join(parts)


class Crew:
    """Threads running ``target(index)``; exceptions and results are collected.

    :meth:`join` fails the test, with the stacks of the stuck threads, when a
    thread is still running at the deadline (a hang, not a slow run).
    """

    def __init__(self, count: int, target: Callable[[int], object], name: str = "crew") -> None:
        self.errors: dict[int, BaseException] = {}
        self.results: dict[int, object] = {}
        self.threads = [
            threading.Thread(target=self._run, args=(target, i), name=f"{name}-{i}", daemon=True)
            for i in range(count)
        ]

    def _run(self, target: Callable[[int], object], index: int) -> None:
        try:
            self.results[index] = target(index)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors[index] = exc

    def start(self) -> Crew:
        for thread in self.threads:
            thread.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t for t in self.threads if t.is_alive()]
        if stuck:
            pytest.fail(f"{len(stuck)} thread(s) still running after {timeout} s:\n{_stacks(stuck)}")

    def raise_first(self) -> None:
        """Re-raise the first collected error (with its own traceback)."""
        for index in sorted(self.errors):
            raise AssertionError(
                f"thread {index} of {len(self.threads)} failed "
                f"({len(self.errors)} failed in all): {self.errors[index]!r}"
            ) from self.errors[index]


#: Innermost frames of a blocked waiter: a condition wait, or the socket wait
#: (poll or, where poll is missing, select; see hyper.common.sockets).
_BLOCKING_FRAMES = frozenset({"wait", "wait_for_socket", "_wait_with_poll", "_wait_with_select"})


def wait_until_blocked(waits: dict[threading.Thread, str], timeout: float = 30) -> None:
    """Wait until each thread sleeps (condition wait or socket poll) inside the named call.

    ``waits`` maps each thread to a public method name (``"getresponse"``,
    ``"read"``). Only for sequencing: a test that must act while the others
    *wait* uses this instead of a guessed sleep.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames = current_frames()
        ready = 0
        for thread, inside in waits.items():
            frame = frames.get(thread.ident or -1)
            names = []
            while frame is not None:
                names.append(frame.f_code.co_name)
                frame = frame.f_back
            if names and names[0] in _BLOCKING_FRAMES and inside in names:
                ready += 1
        if ready == len(waits):
            return
        time.sleep(0.01)
    pytest.fail(f"threads did not all start waiting within {timeout} s:\n{_stacks(list(waits))}")


def content(name: str, size: int) -> bytes:
    """Deterministic bytes unique to ``name`` (a different seed per file)."""
    return random.Random(f"hyper-threads/{name}").randbytes(size)


#: Small files, one per (thread, request) slot modulo their number.
SMALL_FILES = 97
#: The mixed-size files: 1 KiB to 4 MiB, some sizes deliberately odd.
MIXED_SIZES = (
    1024,
    16 * 1024 + 7,
    100_003,
    512 * 1024 + 1,
    1024 * 1024,
    3 * 1024 * 1024 + 5,
    4 * 1024 * 1024,
)


@pytest.fixture(scope="module")
def files(docroot: str) -> Iterator[dict[str, bytes]]:
    """Distinct files under ``<docroot>/threads/``: ``{url path: content}``."""
    root = Path(docroot) / "threads"
    root.mkdir(exist_ok=True)
    made: dict[str, bytes] = {}
    for index in range(SMALL_FILES):
        made[f"/threads/s{index}.bin"] = content(f"s{index}", 900 + 37 * index)
    for index, size in enumerate(MIXED_SIZES):
        made[f"/threads/m{index}.bin"] = content(f"m{index}", size)
    for path, data in made.items():
        (Path(docroot) / path.lstrip("/")).write_bytes(data)
    yield made


def small_path(thread: int, n: int) -> str:
    return f"/threads/s{(thread * 31 + n * 7) % SMALL_FILES}.bin"


@pytest.fixture(params=["nginx", "nghttpd"])
def server(request: pytest.FixtureRequest) -> ServerInfo:
    """Each real-server test runs against nginx and nghttpd."""
    info: ServerInfo = request.getfixturevalue(f"{request.param}_server")
    return info


def upload_body(thread: int, n: int) -> bytes:
    """A request body unique to (thread, n), with a length unique per thread too."""
    return f"<{thread}:{n}>".encode() * (30 + thread * 3 + n % 5)


# -- stress: many threads, one connection ------------------------------------

#: (threads, requests per thread) for each repeat: the full 40 x 500 once per
#: server, then shorter runs that still start 40 threads at once.
STRESS_PLAN = {0: (40, 500), 1: (40, 60), 2: (40, 60)}


@pytest.mark.parametrize("repeat", REPEATS)
def test_stress_forty_threads_share_one_connection(
    server: ServerInfo, files: dict[str, bytes], repeat: int
) -> None:
    threads, per_thread = STRESS_PLAN[repeat]
    sockets: set[int] = set()
    echo = server.name == "nghttpd"  # nghttpd --echo-upload echoes request bodies

    with connect(server) as conn:

        def work(index: int) -> int:
            for n in range(per_thread):
                if echo and n % 5 == 4:
                    body = upload_body(index, n)
                    stream_id = conn.request("POST", "/echo", body=body)
                    expected = body
                else:
                    path = small_path(index, n)
                    stream_id = conn.request("GET", path)
                    expected = files[path]
                with conn.getresponse(stream_id) as response:
                    got = response.read()
                    sockets.add(response.fileno())
                assert response.status == 200, (index, n, response.status)
                assert got == expected, f"thread {index} request {n}: {len(got)} bytes, not its own body"
            return per_thread

        crew = Crew(threads, work, "stress").start()
        crew.join(60)
    crew.raise_first()
    assert sum(crew.results.values()) == threads * per_thread  # type: ignore[arg-type]
    assert len(sockets) == 1, "every request must share the one connection"


@pytest.mark.parametrize("repeat", REPEATS)
def test_stress_mixed_sizes_with_slow_readers(
    server: ServerInfo, files: dict[str, bytes], repeat: int
) -> None:
    threads, per_thread = 12, 7
    mixed = [f"/threads/m{i}.bin" for i in range(len(MIXED_SIZES))]

    with connect(server) as conn:

        def work(index: int) -> None:
            rng = random.Random(repeat * 1000 + index)
            style = index % 3
            for n in range(per_thread):
                # Two requests in flight per thread, answered in reverse order.
                first, second = rng.choice(mixed), small_path(index, n)
                ids = [conn.request("GET", first), conn.request("GET", second)]
                for stream_id, path in reversed(list(zip(ids, [first, second], strict=True))):
                    with conn.getresponse(stream_id) as response:
                        if style == 0:  # slow reader: small reads with pauses
                            pieces = []
                            while piece := response.read(64 * 1024):
                                pieces.append(piece)
                                time.sleep(0.002)
                            got = b"".join(pieces)
                        elif style == 1:
                            got = b"".join(response.read_chunked())
                        else:
                            got = response.read()
                    assert got == files[path], f"thread {index}: {path}: {len(got)} bytes, not its own body"

        crew = Crew(threads, work, "mixed").start()
        crew.join(60)
    crew.raise_first()


# -- isolation: one thread's trouble stays its own ---------------------------------


def test_unread_big_responses_do_not_block_other_threads(server: ServerInfo, files: dict[str, bytes]) -> None:
    """Two 64 MiB responses nobody reads fill their 6 MiB stream windows, no more."""
    big_prefix = next(iter_big_bin())[:65536]
    with connect(server) as conn:
        stalled = [conn.getresponse(conn.request("GET", "/big.bin")) for _ in range(2)]

        def work(index: int) -> None:
            for n in range(40):
                path = small_path(index, n)
                assert conn.getresponse(conn.request("GET", path)).read() == files[path]

        crew = Crew(8, work, "small").start()
        crew.join(120)  # a stall would hold every thread until this bound
        crew.raise_first()
        # The unread streams still hold their first bytes, in order.
        for response in stalled:
            assert response.read(len(big_prefix)) == big_prefix
            response.close()
        assert conn.getresponse(conn.request("GET", "/threads/s1.bin")).read() == files["/threads/s1.bin"]


def test_unread_responses_beyond_the_buffer_cap_do_not_starve_other_streams(
    server: ServerInfo, files: dict[str, bytes]
) -> None:
    """Five unread 64 MiB responses hold 30 MiB; the other streams must still flow.

    Each unread stream stops at its 6 MiB window, so flow control needs
    nothing more. Bytes the other threads *consume* must go back to the
    connection window even while the unread streams keep the buffered total
    above the connection window: withholding them stalls the whole connection
    once the last 2 MiB of window are spent. And that credit must be *sent*
    when it falls due, also when the read that freed it took the last bytes
    of a body: if it waits for some later frame while every other thread
    waits for data, the connection stalls until the read timeout.
    """
    with connect(server, timeout=5) as conn:
        unread = [conn.getresponse(conn.request("GET", "/big.bin")) for _ in range(5)]
        # Let the big streams fill their windows (and the connection's) first.
        assert conn.getresponse(conn.request("GET", "/threads/m0.bin")).read() == files["/threads/m0.bin"]
        time.sleep(0.3)

        path = "/threads/m4.bin"

        def work(index: int) -> None:
            assert conn.getresponse(conn.request("GET", path)).read() == files[path], index

        try:
            # Rounds of 4 threads x 1 MiB, well past the 2 MiB of window left.
            # In each round the threads finish one by one while the others
            # wait for data, and nobody sends anything else meanwhile.
            for _ in range(16):
                crew = Crew(4, work, "after-unread").start()
                crew.join(30)
                crew.raise_first()
        finally:
            for response in unread:
                response.close()


def take_events(peer: Peer, timeout: float) -> list[Any]:
    """Events received but not handled yet, else those of one read (``[]`` on timeout).

    Requests often arrive with the client's preface, so the handshake has
    already read them: they must be handled before waiting for more.
    """
    if not peer.events:
        try:
            peer.read_events(timeout)
        except TimeoutError:
            return []
    events, peer.events = peer.events, []
    return events


def serve(
    peer: Peer,
    answer: Callable[[int, str], bytes | None],
    on_event: Callable[[Any], None] = lambda event: None,
    limit: float = 30,
) -> None:
    """Answer each request with ``answer(stream_id, path)`` until the client hangs up.

    ``answer`` returns the body, or ``None`` to leave the stream unanswered.
    Every event also goes to ``on_event``.
    """
    deadline = time.monotonic() + limit
    while not peer.closed and time.monotonic() < deadline:
        try:
            events = take_events(peer, 0.2)
        except OSError:
            return
        for event in events:
            on_event(event)
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers)[b":path"].decode()
                body = answer(event.stream_id, path)
                if body is None:
                    continue
                try:
                    peer.respond(event.stream_id, body=body)
                except h2.exceptions.StreamClosedError:
                    continue  # the client reset this stream (a timeout) in the same batch
                except OSError:
                    return  # the client went away meanwhile


#: The read timeout of the stalled-stream test.
STALL_TIMEOUT = 5.0


def test_a_timed_out_stream_does_not_disturb_the_others() -> None:
    resets: list[tuple[int, int]] = []
    stall_ids: list[int] = []

    def answer(stream_id: int, path: str) -> bytes | None:
        if path == "/stall":
            stall_ids.append(stream_id)
            return None
        return path.encode() * 20

    def on_event(event: Any) -> None:
        if isinstance(event, h2.events.StreamReset):
            resets.append((event.stream_id, event.error_code))

    with ScriptedServer(lambda p: serve(p, answer, on_event)) as server:
        # The timeout applies to every request, not only the stalled one: it
        # must be long enough that no served request reaches it on a loaded
        # machine, or that request's CANCEL joins the one the test expects.
        with connect_scripted(server, timeout=STALL_TIMEOUT) as conn:
            timed_out = threading.Event()

            def work(index: int) -> object:
                if index == 0:
                    stream_id = conn.request("GET", "/stall")
                    started = time.monotonic()
                    try:
                        conn.getresponse(stream_id)
                    except hyper.ReadTimeout:
                        timed_out.set()
                        return time.monotonic() - started
                    raise AssertionError("the stalled stream got a response")
                done = 0
                slowest = 0.0
                # Keep going while the stalled stream waits, then a bit after.
                while not timed_out.is_set() and done < 20_000:
                    path = f"/{index}/{done}"
                    sent = time.monotonic()
                    assert conn.getresponse(conn.request("GET", path)).read() == path.encode() * 20
                    slowest = max(slowest, time.monotonic() - sent)
                    done += 1
                for n in range(20):
                    path = f"/{index}/after/{n}"
                    assert conn.getresponse(conn.request("GET", path)).read() == path.encode() * 20
                return done, slowest

            crew = Crew(7, work, "timeout").start()
            crew.join(60)
            crew.raise_first()
            waited = crew.results[0]
            # Not early; the upper bound only catches a hang (a loaded machine is slow).
            assert isinstance(waited, float) and STALL_TIMEOUT - 0.1 <= waited < STALL_TIMEOUT + 20
            for index in range(1, 7):
                done, _ = crew.results[index]  # type: ignore[misc]
                # Every other thread finished requests while the stalled stream
                # waited (counted only until it timed out): nobody was held up.
                # No wall-clock bound per request: on a loaded 2-core machine
                # one can take longer than any fixed figure.
                assert done > 0
    # The timed-out stream was cancelled, and only that one.
    assert resets == [(stall_ids[0], h2.errors.ErrorCodes.CANCEL)]


def test_a_reset_stream_fails_only_its_own_thread() -> None:
    def script(peer: Peer) -> None:
        def answer(stream_id: int, path: str) -> bytes | None:
            if path.endswith("/reset"):
                peer.h2.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                peer.flush()
                return None
            return path.encode() * 10

        serve(peer, answer)

    with ScriptedServer(script) as server, connect_scripted(server) as conn:

        def work(index: int) -> int:
            resets = 0
            for n in range(60):
                path = f"/{index}/{n}" + ("/reset" if (index + n) % 7 == 0 else "")
                stream_id = conn.request("GET", path)
                try:
                    body = conn.getresponse(stream_id).read()
                except hyper.StreamResetError as exc:
                    assert path.endswith("/reset"), f"{path} was reset: {exc}"
                    assert exc.stream_id == stream_id
                    resets += 1
                    continue
                assert not path.endswith("/reset")
                assert body == path.encode() * 10
            return resets

        crew = Crew(8, work, "reset").start()
        crew.join(30)
    crew.raise_first()
    assert all(count > 0 for count in crew.results.values())  # type: ignore[operator]


# -- failure reaches everyone --------------------------------------------------------


def test_close_from_another_thread_wakes_every_waiter_promptly() -> None:
    """Threads in getresponse() and in read() all get ConnectionClosed at close()."""

    def first(peer: Peer) -> None:
        def answer(stream_id: int, path: str) -> bytes | None:
            if path.startswith("/partial"):
                peer.respond(stream_id, body=b"head", end_stream=False)
            return None

        serve(peer, answer)

    def second(peer: Peer) -> None:
        serve(peer, lambda stream_id, path: b"after " + path.encode())

    scripts = iter([first, second])
    with ScriptedServer(lambda p: next(scripts)(p), connections=2) as server:
        conn = connect_scripted(server, timeout=60)
        outcome: dict[int, tuple[BaseException, float]] = {}

        def work(index: int) -> None:
            if index % 2:
                stream_id = conn.request("GET", f"/silent/{index}")
                target: Callable[[], object] = lambda: conn.getresponse(stream_id)  # noqa: E731
            else:
                response = conn.getresponse(conn.request("GET", f"/partial/{index}"))
                assert response.read(4) == b"head"
                target = response.read
            try:
                target()
            except hyper.HyperError as exc:
                outcome[index] = (exc, time.monotonic())
                return
            raise AssertionError("a waiter returned although the connection was closed")

        crew = Crew(10, work, "waiter").start()
        wait_until_blocked({t: "getresponse" if i % 2 else "read" for i, t in enumerate(crew.threads)})
        closed_at = time.monotonic()
        conn.close()
        close_took = time.monotonic() - closed_at
        crew.join(10)
        crew.raise_first()
        assert close_took < PROMPT
        for index, (exc, when) in sorted(outcome.items()):
            assert isinstance(exc, hyper.ConnectionClosed), (index, exc)
            assert when - closed_at < PROMPT, (
                f"thread {index} learnt of close() after {when - closed_at:.2f} s"
            )
        assert len(outcome) == 10
        # Closed by us, so a later request opens a new connection.
        stream_id = conn.request("GET", "/again")
        assert conn.getresponse(stream_id).read() == b"after /again"
        conn.close()


def _abort(peer: Peer) -> None:
    """Close with RST instead of FIN (SO_LINGER 0): the client sees ECONNRESET."""
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.sock.close()
    peer.closed = True


#: How the scripted server ends the connection mid-run, and what every
#: thread must get: (exception type, error_code or None).
FAILURES: dict[str, tuple[type[hyper.HyperError], int | None]] = {
    "fin": (hyper.ConnectionTerminated, None),
    "rst": (hyper.ConnectionTerminated, None),
    "goaway-error": (hyper.ConnectionTerminated, h2.errors.ErrorCodes.INTERNAL_ERROR),
    "protocol-error": (hyper.ProtocolError, h2.errors.ErrorCodes.PROTOCOL_ERROR),
}
#: A PING frame on stream 1: PING must use stream 0, so this is a PROTOCOL_ERROR.
_BAD_FRAME = b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + b"\x00" * 8


@pytest.mark.parametrize("repeat", REPEATS)
@pytest.mark.parametrize("how", sorted(FAILURES))
def test_connection_dying_mid_run_reaches_every_thread_promptly(how: str, repeat: int) -> None:
    threads, answered_before_failure = 8, 60 + 13 * repeat
    failed_at: list[float] = []
    # Responses the client threads have read in full: the failure waits for
    # them, since an RST would throw away bytes still unread in the kernel.
    read_in_full = [0]
    progress = threading.Condition()

    def script(peer: Peer) -> None:
        served = received = highest = 0
        deadline = time.monotonic() + 20
        # Answer N requests, then wait until at least one more is in flight.
        while served < answered_before_failure or received == served:
            if time.monotonic() > deadline:
                raise AssertionError("clients stopped sending before the failure point")
            for event in take_events(peer, 0.2):
                if isinstance(event, h2.events.RequestReceived):
                    received += 1
                    highest = event.stream_id
                    if served < answered_before_failure:
                        served += 1
                        peer.respond(event.stream_id, body=dict(event.headers)[b":path"] * 3)
        with progress:
            assert progress.wait_for(lambda: read_in_full[0] >= served, 20), "answers left unread"
        failed_at.append(time.monotonic())
        if how == "fin":
            peer.hang_up()
        elif how == "rst":
            _abort(peer)
        elif how == "goaway-error":
            peer.send_goaway(highest, h2.errors.ErrorCodes.INTERNAL_ERROR, b"going down")
            peer.drain_until_closed(10)
        else:
            peer.send_raw(_BAD_FRAME)
            peer.drain_until_closed(10)

    expected_type, expected_code = FAILURES[how]
    with ScriptedServer(script) as server:
        # A timeout far above PROMPT: learning of the failure must not wait for it.
        conn = connect_scripted(server, timeout=60)

        def work(index: int) -> tuple[int, BaseException, float]:
            for n in range(10_000):
                path = f"/{index}/{n}"
                try:
                    body = conn.getresponse(conn.request("GET", path)).read()
                except hyper.HyperError as exc:
                    return n, exc, time.monotonic()
                assert body == path.encode() * 3, f"{path}: got another stream's body"
                with progress:
                    read_in_full[0] += 1
                    progress.notify_all()
            raise AssertionError("the connection never failed")

        try:
            crew = Crew(threads, work, how).start()
            crew.join(60)
            crew.raise_first()
            assert failed_at, "the server never reached the failure point"
            total = 0
            for index in range(threads):
                done, exc, when = crew.results[index]  # type: ignore[misc]
                total += done
                assert type(exc) is expected_type, f"thread {index}: {exc!r}"
                if expected_code is not None:
                    assert getattr(exc, "error_code", None) == expected_code, f"thread {index}: {exc!r}"
                late = when - failed_at[0]
                assert late < PROMPT, f"thread {index} learnt of the failure after {late:.2f} s"
            assert total == answered_before_failure

            # Not closed cleanly: a later request() raises at once; it neither
            # hangs nor quietly opens a new connection.
            started = time.monotonic()
            with pytest.raises(expected_type):
                conn.request("GET", "/later")
            assert time.monotonic() - started < PROMPT  # not after the 60 s timeout
        finally:
            conn.close()


@pytest.mark.parametrize("repeat", REPEATS)
def test_graceful_goaway_mid_run_every_request_completes_after_reconnecting(repeat: int) -> None:
    """The server says GOAWAY after N requests; refused work is retried on a new connection."""
    threads, per_thread = 8, 30
    answered_on_first = 50 + 17 * repeat

    def first(peer: Peer) -> None:
        served = 0
        last = 0
        deadline = time.monotonic() + 20
        while served < answered_on_first:
            if time.monotonic() > deadline:
                raise AssertionError("clients stopped sending")
            for event in take_events(peer, 0.2):
                if not isinstance(event, h2.events.RequestReceived):
                    continue
                if served < answered_on_first:
                    peer.respond(event.stream_id, body=dict(event.headers)[b":path"] * 3)
                    served += 1
                    last = event.stream_id
        # Streams up to `last` were all answered; later ones were never processed.
        peer.send_goaway(last)
        # FIN, and on to the next connection at once: the client need not read
        # this one again (its remaining streams were refused), so waiting for
        # it to close would only hold up the reconnected requests.
        peer.sock.shutdown(socket.SHUT_WR)

    def second(peer: Peer) -> None:
        serve(peer, lambda stream_id, path: path.encode() * 3)

    scripts = iter([first, second])
    with (
        ScriptedServer(lambda p: next(scripts)(p), connections=2) as server,
        connect_scripted(server, timeout=10) as conn,
    ):

        def work(index: int) -> int:
            retries = 0
            for n in range(per_thread):
                path = f"/{index}/{n}"
                for _ in range(5):
                    try:
                        body = conn.getresponse(conn.request("GET", path)).read()
                        break
                    except (hyper.ConnectionTerminated, hyper.StreamResetError) as exc:
                        assert exc.retryable, f"{path}: {exc!r}"
                        retries += 1
                else:
                    raise AssertionError(f"{path}: still refused after 5 tries")
                assert body == path.encode() * 3, f"{path}: got another stream's body"
            return retries

        crew = Crew(threads, work, "goaway").start()
        crew.join(30)
        crew.raise_first()


# -- bugs found while writing these tests -------------------------------------------------


def test_request_goes_through_while_another_thread_holds_putrequest() -> None:
    """request() must not wait behind another thread's unfinished putrequest().

    putrequest() only reserves a public stream id; the wire id is taken when
    endheaders() sends the HEADERS, so nothing holds other threads up (it
    used to, until the read timeout, and forever with ``timeout=None``).
    """
    with TestServer() as srv:
        ctx = hyper.tls.init_context(cert_path=srv.ca_file)
        with HTTP20Connection("127.0.0.1", srv.port, ssl_context=ctx, timeout=5) as conn:
            started = threading.Event()
            release = threading.Event()

            def slow_builder(index: int) -> int:
                stream_id = conn.putrequest("GET", "/bytes/10")
                started.set()
                release.wait(10)  # a caller that is slow to finish its headers
                conn.endheaders(final=True)
                return len(conn.getresponse(stream_id).read())

            builder = Crew(1, slow_builder, "putrequest").start()
            assert started.wait(10)
            other = Crew(1, lambda i: conn.getresponse(conn.request("GET", "/bytes/5")).read(), "request")
            other.start()
            other.join(10)  # fails the test if request() is held up
            release.set()
            builder.join(10)
            builder.raise_first()
            other.raise_first()
            assert len(other.results[0]) == 5  # type: ignore[arg-type]
            assert builder.results[0] == 10


def test_stream_ids_never_repeat_while_another_thread_closes() -> None:
    """Ids from request() stay unique across close() and reconnects, even mid-request.

    The docs promise that after close() "stream ids continue upwards and never
    repeat". A close() that lands between a stream being opened and its id
    being registered must not let the next connection hand out that id again
    (two threads holding one id read each other's responses).
    """
    ids: list[int] = []
    ids_lock = threading.Lock()
    stop = threading.Event()
    with TestServer(tls=False) as srv:
        conn = HTTP20Connection("127.0.0.1", srv.port, secure=False, timeout=5)
        try:

            def work(index: int) -> dict[str, int]:
                outcome = {"ok": 0, "closed": 0, "forgotten": 0}
                for n in range(100_000):
                    if stop.is_set():
                        break
                    size = 1000 + index * 100 + n % 97  # unique per thread: a stray body shows
                    try:
                        stream_id = conn.request("GET", f"/bytes/{size}")
                    except hyper.ConnectionClosed:
                        outcome["closed"] += 1
                        continue
                    with ids_lock:
                        ids.append(stream_id)
                    try:
                        body = conn.getresponse(stream_id).read()
                    except hyper.ConnectionClosed:
                        outcome["closed"] += 1
                        continue
                    except hyper.InvalidStreamID:  # documented: close() forgets untaken ids
                        outcome["forgotten"] += 1
                        continue
                    assert body == expected_bytes(size), f"thread {index}: stream {stream_id}: a stray body"
                    outcome["ok"] += 1
                return outcome

            def closer(index: int) -> int:
                closes = 0
                while not stop.wait(0.003):
                    conn.close()
                    closes += 1
                return closes

            crew = Crew(6, work, "requester").start()
            closing = Crew(1, closer, "closer").start()
            time.sleep(2.0)
            stop.set()
            crew.join(15)
            closing.join(5)
            crew.raise_first()
            closing.raise_first()
        finally:
            conn.close()
    repeated = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    assert not repeated, f"{len(ids) - len(set(ids))} of {len(ids)} ids handed out twice, e.g. {repeated[:8]}"
    assert sum(r["ok"] for r in crew.results.values()) > 0  # type: ignore[attr-defined]


def test_tls_bytes_left_in_the_ssl_buffer_are_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """A drain that fills the receive buffer mid TLS record must not strand the rest.

    OpenSSL decrypts whole records; when ``recv_into`` asks for fewer bytes
    than the record holds, the rest waits inside the SSL object, where
    ``poll()`` on the socket cannot see it. With the 512 KiB buffer this
    happens whenever a drain ends exactly at a full buffer in the middle of a
    record and the server then goes quiet (its response done or its window
    spent): the reader sleeps until the read timeout. A small buffer makes
    that boundary certain instead of rare.
    """
    monkeypatch.setattr(hyper.http20.session_wire, "RECV_BUFFER_SIZE", 1000)
    with TestServer() as srv:
        ctx = hyper.tls.init_context(cert_path=srv.ca_file)
        # A stranded byte would hold a reader until the read timeout (30 s).
        with HTTP20Connection("127.0.0.1", srv.port, ssl_context=ctx, timeout=30) as conn:
            started = time.monotonic()

            def work(index: int) -> None:
                size = 20_000 + index
                assert conn.getresponse(conn.request("GET", f"/bytes/{size}")).read() == expected_bytes(size)

            crew = Crew(4, work, "tls").start()
            crew.join(60)
            crew.raise_first()
            assert time.monotonic() - started < 15  # far below the 30 s a stranded byte costs


def test_a_stored_connection_error_keeps_each_threads_traceback_its_own() -> None:
    """Every thread gets the stored error, but its traceback must be its own.

    hyper stores the first fatal error and raises that one instance again
    everywhere; each ``raise`` prepends the raising thread's frames to the
    traceback already on the instance. Other threads' frames then show up in
    a thread's traceback, and a retry loop grows the traceback (and keeps
    every frame's locals alive) without bound.
    """

    def script(peer: Peer) -> None:
        for _ in range(4):
            peer.wait_request()
        peer.hang_up()

    with ScriptedServer(script) as server, connect_scripted(server) as conn:
        own_frames: dict[int, list[int]] = {}

        def work(index: int) -> None:
            stream_id = conn.request("GET", f"/{index}")
            try:
                conn.getresponse(stream_id)
            except hyper.ConnectionTerminated as exc:
                # Which Crew threads' frames are in this thread's traceback?
                seen = []
                for frame, _ in traceback.walk_tb(exc.__traceback__):
                    if frame.f_code is work.__code__:
                        seen.append(frame.f_locals["index"])
                own_frames[index] = seen
                # The same error again, many times (a caller retrying).
                depths = []
                for _ in range(50):
                    try:
                        conn.request("GET", "/retry")
                    except hyper.ConnectionTerminated as again:
                        depths.append(len(list(traceback.walk_tb(again.__traceback__))))
                assert depths[-1] <= depths[0], f"traceback grew from {depths[0]} to {depths[-1]} frames"
                return
            raise AssertionError("the connection did not fail")

        crew = Crew(4, work, "fatal").start()
        crew.join(10)
        crew.raise_first()
    for index, seen in sorted(own_frames.items()):
        assert seen == [index], f"thread {index}'s traceback holds frames of threads {seen}"


def test_incremental_and_whole_requests_mixed_across_threads() -> None:
    """putrequest()/putheader()/endheaders()/send(), abandoned putrequests and request() interleaved.

    Each thread's responses must be its own (bodies carry the thread and
    step), ids must never repeat, an incremental request abandoned by its
    thread must hold up nobody (it used to hold a gate every thread waited
    on), and a refused field must leave its request intact.
    """
    threads, steps = 6, 30
    ids: list[int] = []
    ids_lock = threading.Lock()
    with TestServer(tls=False) as srv:
        with HTTP20Connection("127.0.0.1", srv.port, secure=False, timeout=10) as conn:

            def work(index: int) -> int:
                rng = random.Random(index)
                done = 0
                for step in range(steps):
                    payload = f"thread {index} step {step} ".encode() * rng.randint(1, 50)
                    kind = rng.choice(["request", "incremental", "streamed", "abandoned", "refused"])
                    if kind == "request":
                        stream_id = conn.request("POST", "/echo", body=payload)
                    elif kind == "abandoned":
                        conn.putrequest("POST", "/echo")
                        # Never finished: this thread's next putrequest()
                        # abandons it, and no other thread waits for it.
                        with pytest.raises(TypeError):
                            conn.putheader("x-step", object())  # type: ignore[arg-type]
                        continue
                    elif kind == "refused":
                        conn.putrequest("POST", "/echo")
                        # Refused at once, before anything is sent; the
                        # request stays pending until the next putrequest().
                        with pytest.raises(ValueError):
                            conn.putheader("x-bad", "a\r\nb")
                        continue
                    else:
                        stream_id = conn.putrequest("POST", "/echo")
                        conn.putheader("x-step", str(step))
                        if kind == "incremental":
                            conn.endheaders(message_body=payload, final=True)
                        else:
                            conn.endheaders()
                            half = len(payload) // 2
                            conn.send(payload[:half])
                            conn.send(payload[half:], final=True)
                    with ids_lock:
                        ids.append(stream_id)
                    with conn.getresponse(stream_id) as response:
                        assert response.read() == payload, f"thread {index} step {step}: a stray body"
                    done += 1
                return done

            crew = Crew(threads, work, "mixed").start()
            crew.join(120)
            crew.raise_first()
    assert len(ids) == len(set(ids)) == sum(crew.results.values())  # type: ignore[arg-type]

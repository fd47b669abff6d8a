"""What the threads workload costs in hand-offs, per request (issue 14).

The threads workload (8 threads sharing one connection) is limited less by
wall-clock waits than by how often a thread blocks and another must be
scheduled: on a lock, on its wake-up, on the GIL around each system call.
This tool runs the workload against nginx and nghttpd (started as ``python -m
bench`` starts them) and counts, per request:

* ``lock``: entries into the session's state lock (``with`` blocks), and
  ``contended``: those that found it held, by the operation that asked
  (``open_stream``, ``await_response_start``, ``read_body``);
* ``sleeps`` (a thread waiting on its wake-up while another reads) and
  ``wakes`` (wake-ups sent; one per sleep means no thread was woken for
  nothing), ``reads`` (a reader's poll of the socket, with the lock let go);
* ``poll0``: the zero-timeout poll before opening a stream when nobody
  reads, and how many of those found bytes (``poll0_hit``);
* ``recv``, ``recv_blocked`` and ``send``: TLS reads (those that found
  nothing) and writes, each a release of the GIL;
* ``vcsw`` / ``ivcsw``: the process's voluntary and involuntary context
  switches, and ``cpu_us``: its CPU time, both per request.

The same figures for one thread keeping as many requests in flight
(``mux``) show what sharing the connection adds. The counters wrap the
session's private methods in this process only (the library is not
changed); a method that is not found is reported as ``n/a``, never guessed.

    python -m bench.threads_counts                      # both servers, 8 x 1000 requests
    python -m bench.threads_counts --servers nginx --threads 8 --per-thread 250 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hyper
from bench.crew import run_crew
from hyper.http20 import session, session_reader, session_wakeups, session_wire
from hyper.tls import init_context

PATH = "/1k.bin"
BODY_SIZE = 1024
#: Wall-clock bound on one measured run.
RUN_LIMIT = 120.0
#: The operations whose lock entries are told apart (innermost first wins).
OPERATIONS = ("open_stream", "await_response_start", "read_body")


#: What :func:`counting` counts.
COUNTERS = (
    "lock",
    "contended",
    "contended_open_stream",
    "contended_await_response_start",
    "contended_read_body",
    "sleeps",
    "wakes",
    "reads",
    "poll0",
    "poll0_hit",
    "recv",
    "recv_blocked",
    "send",
)
#: The table's columns: rate, CPU and context switches, then the counters.
COLUMNS = ("req_s", "cpu_us", "vcsw", "ivcsw", *COUNTERS)


class Counts:
    """Counters shared by every thread (a lock of its own: the counters are not the session's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.missing: list[str] = []

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:  # the Counter only; never held while anything blocks
            self.counts[name] += amount


def _operation() -> str:
    """The session operation the calling code runs in (by frame name), or ``other``."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name in OPERATIONS:
            return frame.f_code.co_name
        frame = frame.f_back  # type: ignore[assignment]
    return "other"


def _wrap(owner: Any, name: str, counts: Counts, make: Callable[[Any], Any]) -> Callable[[], None]:
    """Replace ``owner.name`` with ``make(original)``; return the undo (a no-op if absent)."""
    original = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if original is None and isinstance(owner, type):
        original = getattr(owner, name, None)
    if original is None:
        counts.missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
        return lambda: None
    had_own = isinstance(owner, type) and name in owner.__dict__
    setattr(owner, name, make(original))

    def undo() -> None:
        if had_own or not isinstance(owner, type):
            setattr(owner, name, original)
        else:
            delattr(owner, name)

    return undo


@contextlib.contextmanager
def counting(counts: Counts) -> Iterator[None]:
    """Count hand-offs (see the module docstring) while the block runs."""
    condition = session_wakeups.StateCondition

    def enter(original: Any) -> Any:
        def counted(self: Any) -> bool:
            counts.add("lock")
            lock = self._state_lock
            if lock.acquire(False):
                return True
            counts.add("contended")
            counts.add("contended_" + _operation())
            lock.acquire()
            return True

        return counted

    def sleep(original: Any) -> Any:
        def counted(self: Any, stream_id: int | None, timeout: float | None) -> None:
            counts.add("sleeps")
            original(self, stream_id, timeout)

        return counted

    def read_once(original: Any) -> Any:
        def counted(self: Any, timeout: float | None) -> None:
            counts.add("reads")
            original(self, timeout)

        return counted

    def poll_before_open(original: Any) -> Any:
        # The session keeps its own poll object for this question, so the
        # poll itself is not a function to wrap: a call that polls (nobody
        # reads, the socket is open: the session's own early-out) is one
        # poll0, and a hit is one that fed received bytes to the core (the
        # session's receive time moved).
        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            polls = not self._reading and not self._socket_closed
            received_at = self._last_received
            result = original(self, *args, **kwargs)
            if polls:
                counts.add("poll0")
                counts.add("poll0_hit", int(self._last_received != received_at))
            return result

        return counted

    def send(original: Any) -> Any:
        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts.add("send")
            return original(self, *args, **kwargs)

        return counted

    _active.append(counts)  # the counted TLS readers of connect()'s sessions report here
    undo = [
        _active.pop,
        _wrap(condition, "__enter__", counts, enter),
        _wrap(condition, "sleep", counts, sleep),
        _wrap(session_reader.SessionReader, "_read_once_locked", counts, read_once),
        _wrap(session.H2Session, "_poll_before_open_locked", counts, poll_before_open),
        _wrap(ssl.SSLSocket, "send", counts, send),
    ]
    sleeper = getattr(session_wakeups, "_Sleeper", None)
    if sleeper is not None and hasattr(sleeper, "wake"):

        def wake(original: Any) -> Any:
            def counted(self: Any) -> None:
                counts.add("wakes", int(not self.woken))
                original(self)

            return counted

        undo.append(_wrap(sleeper, "wake", counts, wake))
    else:
        counts.missing.append("_Sleeper.wake")
    try:
        yield
    finally:
        for step in reversed(undo):
            step()


#: The Counts being filled while counting() is on (at most one).
_active: list[Counts] = []


def _counted_reader(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``buffer_reader``: the reader a session gets counts its TLS reads into ``_active``.

    A session binds its reader when it opens (the SSL object's C read, or the
    public ``recv_into``: hyper.common.tls_read), so the counting reader is
    put in while :func:`connect` opens the session, and counts only while
    :func:`counting` is on.
    """

    def make(sock: Any) -> tuple[Callable[[int, Any], int], bool]:
        read, ragged_eof_is_eof = original(sock)

        def counted(nbytes: int, buffer: Any) -> int:
            counts = _active[0] if _active else None
            if counts is not None:
                counts.add("recv")
            try:
                return int(read(nbytes, buffer))
            except ssl.SSLWantReadError:
                if counts is not None:
                    counts.add("recv_blocked")
                raise

        return counted, ragged_eof_is_eof

    return make


def connect(host: str, port: int, ca_file: str, coalesce_requests: bool = False) -> hyper.HTTP20Connection:
    """A connection to the benchmark server, warmed up (settings exchanged, caches filled).

    Its session reads through a counting reader (see :func:`_counted_reader`);
    a session opened later (after a GOAWAY) would not count its reads.

    ``coalesce_requests`` is off by default here (``--coalesce`` turns it
    on): then every request is one TLS write, and ``send`` counts the
    writes that are not HEADERS (window credit, ACKs) on top of one per
    request. The threads workload never coalesces anyway (each thread reads
    its response before its next request); mux's first burst would.
    """
    conn = hyper.HTTP20Connection(
        host,
        port,
        secure=True,
        ssl_context=init_context(cert_path=ca_file),
        timeout=30,
        coalesce_requests=coalesce_requests,
    )
    original = session_wire.buffer_reader
    session_wire.buffer_reader = _counted_reader(original)  # type: ignore[assignment]
    try:
        for _ in range(20):
            body = conn.getresponse(conn.request("GET", PATH)).read()
            if len(body) != BODY_SIZE:
                conn.close()
                raise RuntimeError(f"warm-up: {len(body)} bytes instead of {BODY_SIZE}")
    finally:
        session_wire.buffer_reader = original  # type: ignore[assignment]
    return conn


def run_threads(conn: hyper.HTTP20Connection, threads: int, per_thread: int) -> int:
    """``threads`` threads doing ``per_thread`` GETs each on ``conn``; the requests answered."""
    start = threading.Barrier(threads)
    done = [0] * threads

    def work(index: int) -> None:
        start.wait(RUN_LIMIT)
        for _ in range(per_thread):
            if len(conn.getresponse(conn.request("GET", PATH)).read()) == BODY_SIZE:
                done[index] += 1

    errors = run_crew(work, range(threads), RUN_LIMIT)
    if errors:
        raise RuntimeError(f"{len(errors)} threads failed; first: {errors[0]!r}")
    return sum(done)


def run_mux(conn: hyper.HTTP20Connection, in_flight: int, count: int) -> int:
    """One thread, ``in_flight`` requests outstanding, ``count`` in all; the requests answered."""
    pending = [conn.request("GET", PATH) for _ in range(min(in_flight, count))]
    sent, done = len(pending), 0
    while pending:
        if len(conn.getresponse(pending.pop(0)).read()) == BODY_SIZE:
            done += 1
        if sent < count:
            pending.append(conn.request("GET", PATH))
            sent += 1
    return done


def measure(conn: hyper.HTTP20Connection, mode: str, threads: int, per_thread: int) -> dict[str, float]:
    """Run once (``threads`` or ``mux``) with the counters on; the figures per request."""
    counts = Counts()
    total = threads * per_thread
    with counting(counts):
        before = resource.getrusage(resource.RUSAGE_SELF)
        cpu, wall = time.process_time(), time.perf_counter()
        answered = (
            run_threads(conn, threads, per_thread) if mode == "threads" else run_mux(conn, threads, total)
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
    if answered != total:
        raise RuntimeError(f"{mode}: {answered} of {total} requests answered with the whole body")
    # Every counter appears, zero when it never ticked (a missing method is "n/a" below).
    figures = {name: counts.counts[name] / total for name in COUNTERS}
    figures["vcsw"] = (after.ru_nvcsw - before.ru_nvcsw) / total
    figures["ivcsw"] = (after.ru_nivcsw - before.ru_nivcsw) / total
    figures["cpu_us"] = cpu / total * 1e6
    figures["req_s"] = total / wall
    for name in counts.missing:
        figures[f"n/a:{name}"] = float("nan")
    return figures


def table(rows: dict[tuple[str, str], list[dict[str, float]]]) -> str:
    """Markdown: one row per (server, mode), medians of the rounds."""
    lines = ["| server | mode | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
    for (server, mode), runs in rows.items():
        cells = []
        for column in COLUMNS:
            values = [run.get(column, 0.0) for run in runs]
            value = statistics.median(values)
            cells.append(
                f"{value:,.0f}"
                if column in ("req_s",)
                else f"{value:.1f}"
                if column == "cpu_us"
                else f"{value:.2f}"
            )
        lines.append(f"| {server} | {mode} | " + " | ".join(cells) + " |")
    missing = sorted({key for runs in rows.values() for run in runs for key in run if key.startswith("n/a:")})
    if missing:
        lines.append("")
        lines.append("Not counted (method not found in this tree): " + ", ".join(m[4:] for m in missing))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default="nginx,nghttpd", help="comma-separated (default nginx,nghttpd)")
    parser.add_argument("--threads", type=int, default=8, help="threads (and mux's requests in flight)")
    parser.add_argument("--per-thread", type=int, default=1000, help="GETs per thread")
    parser.add_argument("--rounds", type=int, default=3, help="runs per figure (medians shown)")
    parser.add_argument(
        "--coalesce",
        action="store_true",
        help="let bursts of requests leave in one write (the library default)",
    )
    args = parser.parse_args(argv)
    if args.threads < 1 or args.per_thread < 1 or args.rounds < 1:
        parser.error("--threads, --per-thread and --rounds must be at least 1")
    from bench.server import prepare_files, start_server

    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="hyper-threads-counts-") as tmp:
        files = prepare_files(Path(tmp), 1 << 20)
        for name in args.servers.split(","):
            server = start_server(name, Path(tmp), files)
            try:
                for _ in range(args.rounds):
                    for mode in ("threads", "mux"):
                        conn = connect(server.host, server.port, server.ca_file, args.coalesce)
                        try:
                            figures = measure(conn, mode, args.threads, args.per_thread)
                        finally:
                            conn.close()
                        rows.setdefault((name, mode), []).append(figures)
                        print(
                            f"{name:8} {mode:8} {figures['req_s']:8,.0f} req/s", file=sys.stderr, flush=True
                        )
            finally:
                server.process.stop()
    print(
        f"hyper from {hyper.__file__}; {args.threads} threads x {args.per_thread} GETs of {BODY_SIZE} bytes"
    )
    print(f"(mux: one thread, {args.threads} in flight); per request, medians of {args.rounds} round(s)\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Soak: many requests on one HTTP20Connection shared by threads, through GOAWAYs and restarts.

Run from the repository root (nginx must be installed, as for the tests)::

    python -m bench.soak                                   # 1,000,000 requests, 8 threads
    python -m bench.soak --requests 20000 --goaway-every 5000 --restarts 1

What it does: ``--threads`` threads share one :class:`hyper.HTTP20Connection`
to a local nginx over TLS and send ``--requests`` GETs in all. nginx ends
each connection with a graceful GOAWAY after ``--goaway-every`` requests
(hyper opens the next connection by itself), and the nginx process is
stopped and started ``--restarts`` times, evenly spread.

What it checks (exit status 1 if any fails):

* every response is right: status 200 and the exact body of *its* request
  (``/r/<n>`` answers ``soak /r/<n>``; every 16th request fetches a 1 KiB
  random file, compared byte for byte);
* failures are explained: a request refused by a graceful GOAWAY
  (``retryable``) is sent again; a request cut by a restart fails with a
  documented hyper exception, the connection is closed and the request sent
  again; any other failure (a stdlib error, a wrong body, a failure with no
  restart in progress) counts as an error;
* no thread is stuck: each thread reports progress after every attempt; one
  silent for ``--stuck-after`` seconds is reported with its stack, and the
  run fails (every hyper wait is bounded by ``--timeout``, far below that);
* bounded: it stops, and fails, after ``--max-seconds``;
* resources: RSS and open file descriptors are sampled ``--samples`` times;
  RSS growth from the end of the warm-up (10 %, at least two GOAWAYs) to the end must
  stay under ``--rss-growth-limit-mib``, and after ``close()`` the process
  has exactly the descriptors it had before the connection was opened;
* no dead sessions pile up: at every sample, the h2 connection states in
  memory that no open session uses (replaced, closed, or left by a failed
  connect; counted without collecting, so garbage held in reference cycles
  counts) must be at most ``--dead-session-limit``, and after ``close()``
  and a full collection none of the run's sessions may be left (a leak).
"""

from __future__ import annotations

import argparse
import enum
import gc
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import hyper
import hyper.tls
from bench.soak_result import SoakConfig, SoakResult
from bench.soak_server import STATIC_PATH, SoakServer, expected_body
from bench.soak_stats import (
    Sample,
    SessionCensus,
    allocated_blocks,
    live_sessions,
    malloc_free_bytes,
    open_fds,
    resident_bytes,
)
from hyper.exceptions import ConnectionTerminated, HyperError, StreamResetError

#: Attempts per request before the soak gives up on it (a restart costs 1-3).
MAX_ATTEMPTS = 20
#: Every this many requests one fetches the static file instead of /r/<n>.
STATIC_EVERY = 16


class _Verdict(enum.Enum):
    """What a worker does after a failed attempt."""

    RETRY = "retry"
    AFTER_RESTART = "retry once nginx is up"
    GIVE_UP = "give up"


class Soak:
    """One soak run: the server, the connection, the workers and the controller."""

    def __init__(self, config: SoakConfig, server: SoakServer) -> None:
        """Prepare a run against ``server`` (started, and owned, by the caller)."""
        self.config = config
        self.server = server
        self.result = SoakResult(config)
        self.static = server.site.static
        # _lock protects the counters below, the connection epoch and the
        # restart bookkeeping; it is never held across a request.
        self._lock = threading.Lock()
        self._next = 0
        self._done = 0
        self._connections: set[tuple[int, bytes]] = set()
        # The connection is closed (to recover from a broken session) at
        # most once per epoch, however many threads see the same failure.
        self._epoch = 0
        # Requests begun in an epoch below this may have used a session a
        # restart cut: their failures are expected.
        self._clean_epoch = 0
        self._server_up = threading.Event()
        self._server_up.set()
        self._stop = threading.Event()
        self._progress_at: list[float] = []
        self._finished: list[bool] = []
        # Counts the run's dead sessions (made in run(), before connecting).
        self._census: SessionCensus | None = None

    # -- the workers ------------------------------------------------------------

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.config.requests or self._stop.is_set():
                return None
            self._next += 1
            return self._next - 1

    def _path(self, n: int) -> str:
        return STATIC_PATH if n % STATIC_EVERY == 0 else f"/r/{n}"

    def _worker(self, conn: hyper.HTTP20Connection, index: int) -> None:
        try:
            while (n := self._take()) is not None:
                self._run_one(conn, index, n)
        except BaseException as exc:  # noqa: BLE001 - a crashed worker is a soak failure, reported
            self._problem(f"thread {index} crashed: {exc!r}\n{traceback.format_exc()}")
        finally:
            self._finished[index] = True

    def _run_one(self, conn: hyper.HTTP20Connection, index: int, n: int) -> None:
        path = self._path(n)
        for _attempt in range(MAX_ATTEMPTS):
            with self._lock:
                epoch = self._epoch
                restarting = not self._server_up.is_set()
            try:
                response = conn.getresponse(conn.request("GET", path))
                body = response.read()
            except HyperError as exc:
                self._progress_at[index] = time.monotonic()
                verdict = self._recover(conn, exc, epoch, restarting, path)
            else:
                self._progress_at[index] = time.monotonic()
                self._check(n, path, response.status, body, response.headers.get("x-connection"))
                return
            # Outside the except block, so the error is gone: its traceback
            # holds the failed session's frames, which must not be counted
            # as a dead session while this thread waits for nginx.
            if verdict is _Verdict.GIVE_UP:
                return
            if verdict is _Verdict.AFTER_RESTART:
                # While nginx is down, wait for it (bounded) instead of spinning.
                self._server_up.wait(self.config.timeout)
                if self._stop.is_set():
                    return
        self._problem(f"{path}: gave up after {MAX_ATTEMPTS} attempts")

    def _recover(
        self, conn: hyper.HTTP20Connection, exc: HyperError, epoch: int, restarting: bool, path: str
    ) -> _Verdict:
        """Decide whether a failed request may be sent again; close a broken connection."""
        if isinstance(exc, (StreamResetError, ConnectionTerminated)) and exc.retryable:
            # RFC 9113 section 6.8: streams above a GOAWAY's last stream id
            # were not processed and may be retried on a new connection.
            self._count("goaway-refused")
            return _Verdict.RETRY
        with self._lock:
            expected = restarting or not self._server_up.is_set() or epoch < self._clean_epoch
            if epoch == self._epoch:
                # A broken session keeps failing until close(): close it once.
                self._epoch += 1
                close_now = True
            else:
                close_now = False
        if close_now:
            conn.close()
        if not expected:
            self._problem(f"{path}: {type(exc).__name__} with no restart in progress: {exc}")
            return _Verdict.GIVE_UP
        self._count(f"restart: {type(exc).__name__}")
        return _Verdict.AFTER_RESTART

    def _check(self, n: int, path: str, status: int, body: bytes, connection: list[bytes] | None) -> None:
        if status != 200:
            self._problem(f"{path}: status {status}")
        elif body != expected_body(path, self.static):
            self._problem(f"{path}: wrong body ({len(body)} bytes: {body[:60]!r})")
        with self._lock:
            self._done += 1
            if connection:
                # nginx numbers connections from 1 again after a restart.
                self._connections.add((self.server.restarts, connection[0]))

    def _count(self, cause: str) -> None:
        with self._lock:
            self.result.retries[cause] += 1

    def _problem(self, text: str) -> None:
        with self._lock:
            if len(self.result.problems) < 50:  # enough to diagnose, bounded
                self.result.problems.append(text)
        if len(self.result.problems) >= 20:
            self._stop.set()

    # -- the controller ---------------------------------------------------------

    def _restart(self) -> None:
        self._server_up.clear()
        try:
            self.server.restart()
        finally:
            with self._lock:
                # Sessions open now may be the one the restart cut.
                self._clean_epoch = self._epoch + 1
            self._server_up.set()

    def _watch(self, threads: list[threading.Thread], started: float) -> None:
        cfg = self.config
        restart_at = [cfg.requests * k // (cfg.restarts + 1) for k in range(1, cfg.restarts + 1)]
        sample_every = max(1, cfg.requests // cfg.samples)
        next_sample = 0
        # Wakes four times a second: restarts, samples, watchdog, deadline.
        while any(t.is_alive() for t in threads) and not self._stop.wait(0.25):
            with self._lock:
                done = self._done
            now = time.monotonic()
            if done >= next_sample:
                self.result.samples.append(self._sample(done, now - started))
                next_sample = done + sample_every
            if restart_at and done >= restart_at[0]:
                restart_at.pop(0)
                self._restart()
                now = time.monotonic()
                for i in range(len(threads)):  # the restart itself is not a stall
                    self._progress_at[i] = max(self._progress_at[i], now)
            self._check_stuck(threads, now)
            if now - started > cfg.max_seconds:
                self._problem(f"time bound: {done:,} requests done after {cfg.max_seconds:.0f} s")

    def _sample(self, done: int, seconds: float) -> Sample:
        return Sample(
            done,
            seconds,
            resident_bytes(),
            open_fds(),
            live_sessions(),
            allocated_blocks(),
            self._census.dead() if self._census is not None else 0,
            malloc_free_bytes(),
        )

    def _check_stuck(self, threads: list[threading.Thread], now: float) -> None:
        frames = None
        for i, thread in enumerate(threads):
            if self._finished[i] or now - self._progress_at[i] <= self.config.stuck_after:
                continue
            if frames is None:
                # With the collector held off: on CPython <= 3.11 a collection
                # started inside sys._current_frames() can deadlock it
                # (gh-106883; tests/waiting.py's current_frames does the same).
                was_enabled = gc.isenabled()
                gc.disable()
                try:
                    frames = sys._current_frames()
                finally:
                    if was_enabled:
                        gc.enable()
            frame = frames.get(thread.ident or -1)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)\n"
            self._problem(f"thread {i} stuck: no progress for {now - self._progress_at[i]:.0f} s\n{stack}")
            self._finished[i] = True  # report it once

    def run(self) -> SoakResult:
        """Run the soak; the result says what passed and what did not."""
        cfg = self.config
        self._census = SessionCensus()
        self.result.fds_before = open_fds()
        context = hyper.tls.init_context(cert_path=self.server.site.ca_file)
        conn = hyper.HTTP20Connection(
            self.server.host, self.server.port, ssl_context=context, timeout=cfg.timeout
        )
        started = time.monotonic()
        self._progress_at = [started] * cfg.threads
        self._finished = [False] * cfg.threads
        threads = [
            threading.Thread(target=self._worker, args=(conn, i), name=f"soak-{i}", daemon=True)
            for i in range(cfg.threads)
        ]
        try:
            for thread in threads:
                thread.start()
            self._watch(threads, started)
        finally:
            self._stop.set()
            self.result.seconds = time.monotonic() - started
            self.result.samples.append(self._sample(self._done, self.result.seconds))
            # close() also releases any thread still waiting on the connection.
            conn.close()
            for i, thread in enumerate(threads):
                thread.join(cfg.timeout)
                if thread.is_alive():
                    self._problem(f"thread {i} still running {cfg.timeout:.0f} s after close()")
        if not any(thread.is_alive() for thread in threads):
            # The connection object lives on (conn); its sessions must not.
            self.result.sessions_left = self._census.left()
        self._finish()
        return self.result

    def _finish(self) -> None:
        result = self.result
        cfg = self.config
        result.completed = self._done
        result.connections = len(self._connections)
        result.restarts = self.server.restarts
        result.fds_after = open_fds()
        if result.completed != cfg.requests:
            self._problem(f"only {result.completed:,} of {cfg.requests:,} requests completed")
        if result.restarts != cfg.restarts:
            self._problem(f"{result.restarts} of {cfg.restarts} restarts done")
        least = cfg.requests // cfg.goaway_every
        if result.completed == cfg.requests and result.connections < least:
            self._problem(
                f"{result.connections} connections: nginx's GOAWAY every {cfg.goaway_every} not seen"
            )
        if result.fds_before is not None and result.fds_after != result.fds_before:
            self._problem(f"open fds {result.fds_before} before, {result.fds_after} after close(): a leak")
        if result.max_dead > cfg.dead_session_limit:
            worst = max(result.samples, key=lambda s: s.dead)
            self._problem(
                f"{worst.dead} dead sessions in memory at {worst.done:,} requests "
                f"(limit {cfg.dead_session_limit}): replaced connections are not freed"
            )
        if result.sessions_left:
            left = result.sessions_left
            self._problem(f"{left} sessions or h2 states still reachable after close(): a leak")
        warm = result.warm_sample()
        end = result.samples[-1] if result.samples else None
        if warm is not None and end is not None and warm.rss_bytes and end.rss_bytes:
            growth = (end.rss_bytes - warm.rss_bytes) / 2**20
            if growth > cfg.rss_growth_limit_mib:
                self._problem(
                    f"RSS grew {growth:.1f} MiB after warm-up (limit {cfg.rss_growth_limit_mib} MiB)"
                )


def run_soak(config: SoakConfig, work_dir: Path | None = None) -> SoakResult:
    """Start nginx, run the soak, stop nginx; files go to a temporary directory."""
    owned = work_dir is None
    directory = Path(tempfile.mkdtemp(prefix="hyper-soak-")) if work_dir is None else work_dir
    try:
        server = SoakServer(directory, config.goaway_every)
        try:
            result = Soak(config, server).run()
            if not result.ok:
                result.problems.append("nginx logs:\n" + server.logs())
            return result
        finally:
            server.close()
    finally:
        if owned:
            shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m bench.soak [options]``; exit status 0 when it passed."""
    defaults = SoakConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=defaults.requests)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--goaway-every", type=int, default=defaults.goaway_every)
    parser.add_argument("--restarts", type=int, default=defaults.restarts)
    parser.add_argument("--timeout", type=float, default=defaults.timeout)
    parser.add_argument("--stuck-after", type=float, default=defaults.stuck_after)
    parser.add_argument("--max-seconds", type=float, default=defaults.max_seconds)
    parser.add_argument("--samples", type=int, default=defaults.samples)
    parser.add_argument("--rss-growth-limit-mib", type=float, default=defaults.rss_growth_limit_mib)
    parser.add_argument("--dead-session-limit", type=int, default=defaults.dead_session_limit)
    args = parser.parse_args(argv)
    config = SoakConfig(**{name: value for name, value in vars(args).items()})
    result = run_soak(config)
    print(result.report(), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

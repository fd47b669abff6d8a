"""The worker pattern: worker threads, each with its own HTTP/2 connection.

Every worker thread owns one :class:`hyper.HTTP20Connection` and spins over
two queues:

* it takes jobs from the shared **request queue** and sends each one at once
  with ``request()``, which returns the stream id, without waiting for the
  answer; up to ``--in-flight`` requests are multiplexed on its connection;
* it collects answers with ``getresponse(stream_id)``, oldest stream first,
  and puts each result on the shared **response queue**.

A dict ``stream id -> job`` in each worker is what ties the two queues
together: the stream id that ``request()`` returned is the one the response
is fetched with, so every result carries the job that asked for it.

The main thread fills the request queue, reads the response queue and checks
every body byte for byte. Run it as it is and it starts a local
:class:`hyper.testing.TestServer` to talk to::

    python examples/worker_pattern.py --workers 4 --requests 200

or point it at a running server that has the ``/bytes/<n>`` route of
``hyper.testing`` (for instance ``python -m hyper.testing --serve``)::

    python examples/worker_pattern.py --url https://localhost:8443 \\
        --ca-file hyper/testing/certs/ca.pem

It prints one line per worker and a summary, and exits with status 0 only
when every response arrived and matched.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import hyper
import hyper.tls
from hyper.testing import TestServer, expected_bytes

#: Put on the request queue once per worker: no more jobs.
STOP = None


@dataclass(frozen=True)
class Job:
    """One request to make."""

    index: int
    size: int

    @property
    def path(self) -> str:
        return f"/bytes/{self.size}"


@dataclass
class Result:
    """What a worker found for one job."""

    job: Job
    worker: str
    stream_id: int | None = None
    status: int | None = None
    body: bytes = b""
    error: str | None = None
    connection: int | None = None


@dataclass(frozen=True)
class Target:
    """Where the workers connect to."""

    host: str
    port: int
    secure: bool
    ca_file: str | None

    def connect(self, timeout: float) -> hyper.HTTP20Connection:
        context = hyper.tls.init_context(cert_path=self.ca_file) if self.secure else None
        return hyper.HTTP20Connection(
            self.host, self.port, secure=self.secure, ssl_context=context, timeout=timeout
        )


def worker(
    name: str,
    target: Target,
    jobs: queue.Queue[Job | None],
    results: queue.Queue[Result],
    in_flight_limit: int,
    timeout: float,
) -> None:
    """Send jobs from ``jobs`` on this worker's own connection; put results on ``results``."""
    in_flight: dict[int, Job] = {}  # stream id -> job, in the order sent
    sending: Job | None = None
    no_more_jobs = False
    try:
        with target.connect(timeout) as conn:
            while not no_more_jobs or in_flight:
                # Send: as many requests as the in-flight limit allows. Block for
                # a job only when nothing is in flight, so answers are not held up.
                while not no_more_jobs and len(in_flight) < in_flight_limit:
                    try:
                        job = jobs.get(timeout=timeout) if not in_flight else jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is STOP:
                        no_more_jobs = True
                        break
                    sending = job
                    in_flight[conn.request("GET", job.path)] = job
                    sending = None
                if not in_flight:
                    continue
                # Receive: the oldest stream first; its id finds its job.
                stream_id = next(iter(in_flight))
                job = in_flight[stream_id]
                with conn.getresponse(stream_id) as response:
                    body = response.read()
                    results.put(Result(job, name, stream_id, response.status, body, None, response.fileno()))
                del in_flight[stream_id]
    except hyper.HyperError as exc:
        # Every job this worker still holds is reported, so main never waits for it.
        for job in [*in_flight.values(), *([sending] if sending else [])]:
            results.put(Result(job, name, error=f"{type(exc).__name__}: {exc}"))
        if not no_more_jobs:
            results.put(Result(Job(-1, 0), name, error=f"worker stopped: {type(exc).__name__}: {exc}"))


def make_jobs(count: int) -> list[Job]:
    """``count`` jobs of varied sizes between 0 and about 200 KiB."""
    return [Job(index, (index * 7919) % 200_000) for index in range(count)]


def run(target: Target, workers: int, requests: int, in_flight: int, timeout: float) -> int:
    """Run the pattern once; print a report; return the process exit status."""
    jobs: queue.Queue[Job | None] = queue.Queue()
    results: queue.Queue[Result] = queue.Queue()
    wanted = make_jobs(requests)
    for job in wanted:
        jobs.put(job)
    for _ in range(workers):
        jobs.put(STOP)

    started = time.monotonic()
    threads = [
        threading.Thread(
            target=worker,
            args=(f"worker-{n}", target, jobs, results, in_flight, timeout),
            name=f"worker-{n}",
            daemon=True,
        )
        for n in range(workers)
    ]
    for thread in threads:
        thread.start()

    received: dict[int, Result] = {}
    problems: list[str] = []
    deadline = started + timeout * 3 + requests * 0.05
    while len(received) < len(wanted):
        try:
            result = results.get(timeout=0.1)
        except queue.Empty:
            if not any(thread.is_alive() for thread in threads) and results.empty():
                problems.append(f"all workers stopped; {len(wanted) - len(received)} responses missing")
                break
            if time.monotonic() > deadline:
                problems.append(f"timed out waiting: {len(wanted) - len(received)} responses missing")
                break
            continue
        if result.error is not None:
            problems.append(f"{result.worker}: job {result.job.index}: {result.error}")
            if result.job.index < 0:
                continue
        elif result.job.index in received:
            problems.append(f"job {result.job.index} answered twice")
        elif result.status != 200 or result.body != expected_bytes(result.job.size):
            problems.append(
                f"{result.worker}: job {result.job.index} (stream {result.stream_id}): "
                f"status {result.status}, {len(result.body)} bytes, expected {result.job.size}"
            )
        received[result.job.index] = result
    for thread in threads:
        thread.join(timeout)
    elapsed = time.monotonic() - started

    by_worker: dict[str, list[Result]] = {thread.name: [] for thread in threads}
    for result in received.values():
        by_worker[result.worker].append(result)
    for name in by_worker:  # in worker order
        done = [r for r in by_worker[name] if r.error is None]
        ids = sorted(r.stream_id for r in done if r.stream_id is not None)
        sockets = {r.connection for r in done}
        # Stream ids are per connection: odd, increasing and never repeated.
        if len(set(ids)) != len(ids) or any(i % 2 == 0 for i in ids):
            problems.append(f"{name}: stream ids repeat or are even: {ids}")
        id_range = f"{ids[0]}..{ids[-1]}" if ids else "none"
        print(f"{name}: {len(done)} responses over {len(sockets)} connection(s), stream ids {id_range}")
    if any(thread.is_alive() for thread in threads):
        problems.append("a worker did not finish")

    total = sum(len(r.body) for r in received.values())
    if problems:
        for problem in problems[:20]:
            print(f"FAILED: {problem}")
        print(f"FAILED: {len(problems)} problem(s)")
        return 1
    print(
        f"OK: {len(received)} responses from {workers} workers verified byte for byte "
        f"({total} bytes in {elapsed:.2f} s)"
    )
    return 0


@contextlib.contextmanager
def local_server() -> Iterator[Target]:
    """A TestServer on 127.0.0.1 for the run to talk to."""
    with TestServer() as server:
        yield Target("127.0.0.1", server.port, True, server.ca_file)


def parse_target(url: str, ca_file: str | None) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SystemExit(f"--url must look like https://host:port, not {url!r}")
    secure = parts.scheme == "https"
    return Target(parts.hostname, parts.port or (443 if secure else 80), secure, ca_file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="server base URL; default: start a local hyper.testing server")
    parser.add_argument("--ca-file", help="CA certificate to trust for --url")
    parser.add_argument("--workers", type=int, default=4, help="worker threads (one connection each)")
    parser.add_argument("--requests", type=int, default=200, help="number of requests in all")
    parser.add_argument("--in-flight", type=int, default=8, help="streams per connection at once")
    parser.add_argument("--timeout", type=float, default=10.0, help="connection timeout in seconds")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.requests < 0 or args.in_flight < 1:
        parser.error("--workers and --in-flight must be at least 1, --requests at least 0")
    if args.url:
        target = parse_target(args.url, args.ca_file)
        return run(target, args.workers, args.requests, args.in_flight, args.timeout)
    with local_server() as target:
        return run(target, args.workers, args.requests, args.in_flight, args.timeout)


if __name__ == "__main__":
    sys.exit(main())

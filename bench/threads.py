"""Throughput of threads sharing one connection vs one thread multiplexing.

For each concurrency N, the same number of ``GET /1k.bin`` requests (2000 by
default) go over one HTTP/2 connection to a local nginx, in two ways:

* **threads**: N threads share the connection; each sends a request, waits
  for its response, reads it and goes on (N streams in flight at most);
* **multiplex**: one thread keeps N requests in flight: it sends N, then
  reads the oldest response and sends the next request, until done.

Both keep the same number of streams in flight, so the ratio shows what the
locking, the condition wake-ups and the GIL cost (or gain) compared with one
thread doing all the work. Every body is checked. The table shows the median
req/s of the runs (3 by default) and the ratio threads / multiplex.

Run from the repository root (nginx must be installed, as for the tests)::

    python -m bench.threads [--requests 2000] [--runs 3] [--concurrency 1 8 32]

nginx is started by the script itself, with a fresh trustme CA, in a
temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import trustme

import hyper
import hyper.tls
from bench.crew import run_crew
from tests.servers import CertFiles, ServerProcess, one_k_bytes, start_nginx

PATH = "/1k.bin"
#: Wall-clock bound on one measured run, whatever the settings.
RUN_LIMIT = 60.0


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    ca_file: str

    def connect(self) -> hyper.HTTP20Connection:
        context = hyper.tls.init_context(cert_path=self.ca_file)
        return hyper.HTTP20Connection(self.host, self.port, secure=True, ssl_context=context, timeout=10)


@contextmanager
def local_nginx() -> Iterator[Server]:
    """nginx on 127.0.0.1 with TLS from a throwaway CA, serving ``1k.bin``."""
    with tempfile.TemporaryDirectory(prefix="hyper-bench-") as tmp:
        root = Path(tmp)
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", "127.0.0.1")
        ca_file = root / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        cert_file, key_file = root / "server.pem", root / "server.key"
        for index, pem in enumerate(leaf.cert_chain_pems):
            pem.write_to_path(str(cert_file), append=index > 0)
        leaf.private_key_pem.write_to_path(str(key_file))
        cert = CertFiles(cert_file=str(cert_file), key_file=str(key_file))
        docroot = root / "docroot"
        docroot.mkdir()
        (docroot / PATH.lstrip("/")).write_bytes(one_k_bytes())
        process: ServerProcess
        process, ports = start_nginx(root / "nginx", cert, cert, docroot)
        try:
            yield Server("127.0.0.1", ports.tls, str(ca_file))
        finally:
            process.stop()


def _check(body: bytes, expected: bytes) -> None:
    if body != expected:
        raise AssertionError(f"wrong body: {len(body)} bytes")


def run_threads(conn: hyper.HTTP20Connection, concurrency: int, requests: int) -> None:
    """``concurrency`` threads share ``conn``; ``requests`` in all."""
    expected = one_k_bytes()
    shares = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]

    def work(count: int) -> None:
        for _ in range(count):
            with conn.getresponse(conn.request("GET", PATH)) as response:
                _check(response.read(), expected)

    errors = run_crew(work, shares, RUN_LIMIT)
    if errors:
        raise errors[0]


def run_multiplex(conn: hyper.HTTP20Connection, concurrency: int, requests: int) -> None:
    """One thread keeps ``concurrency`` requests in flight on ``conn``."""
    expected = one_k_bytes()
    in_flight: deque[int] = deque()
    sent = 0
    deadline = time.monotonic() + RUN_LIMIT
    while sent < requests or in_flight:
        while sent < requests and len(in_flight) < concurrency:
            in_flight.append(conn.request("GET", PATH))
            sent += 1
        with conn.getresponse(in_flight.popleft()) as response:
            _check(response.read(), expected)
        if time.monotonic() > deadline:
            raise RuntimeError(f"multiplexed run did not finish within {RUN_LIMIT} s")


Runner = Callable[[hyper.HTTP20Connection, int, int], None]


def measure(server: Server, runner: Runner, concurrency: int, requests: int) -> float:
    """req/s of one run on a fresh, warmed-up connection (handshake not timed)."""
    with server.connect() as conn:
        runner(conn, min(concurrency, 4), 20)  # connect, TLS, SETTINGS, code paths warm
        started = time.perf_counter()
        runner(conn, concurrency, requests)
        return requests / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="threads sharing one connection vs one thread multiplexing")
    parser.add_argument("--requests", type=int, default=2000, help="GETs of 1 KiB per run (default 2000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per cell; the median is shown (default 3)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="values of N")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 100_000 or not 1 <= args.runs <= 20 or min(args.concurrency) < 1:
        parser.error("--requests 1..100000, --runs 1..20, --concurrency >= 1")

    print(f"python {sys.version.split()[0]}, hyper {getattr(hyper, '__version__', '?')}")
    print(
        f"{args.requests} x GET {PATH} per run over one TLS connection to nginx; "
        f"median of {args.runs} runs (interleaved)"
    )
    runners: dict[str, Runner] = {"threads": run_threads, "multiplex": run_multiplex}
    rates: dict[tuple[str, int], list[float]] = {}
    with local_nginx() as server:
        # Interleave the cells run by run, so drift (other load, CPU clock)
        # spreads over all of them instead of biasing whichever ran last.
        for _ in range(args.runs):
            for concurrency in args.concurrency:
                for name, runner in runners.items():
                    rate = measure(server, runner, concurrency, args.requests)
                    rates.setdefault((name, concurrency), []).append(rate)
    rows = [
        (n, statistics.median(rates[("threads", n)]), statistics.median(rates[("multiplex", n)]))
        for n in args.concurrency
    ]

    print()
    print(f"{'N':>4}  {'N threads, 1 conn':>18}  {'1 thread, N in flight':>22}  {'ratio':>6}")
    print(f"{'':>4}  {'req/s':>18}  {'req/s':>22}  {'thr/mux':>6}")
    for concurrency, threaded, multiplexed in rows:
        print(f"{concurrency:>4}  {threaded:>18.0f}  {multiplexed:>22.0f}  {threaded / multiplexed:>6.2f}")
    spread = max(max(r) / min(r) for r in rates.values())
    print()
    print(f"largest max/min spread of one cell's runs: {spread:.2f}x (noise on this machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

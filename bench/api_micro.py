"""Micro-benchmark of hyper's public API layer per request, without a server (issue 14).

What ``request()``, ``getresponse()`` and ``read()`` cost above the session:
URL and method checks, header building, the response object and the body
reader. The session is replaced by a stub that answers at once (HEADERS
"sent", a canned nginx-like response, the whole 1 KiB body buffered), so
neither the network, TLS, h2 nor the server's scheduling is in the figure.

    python -m bench.api_micro                      # this tree's hyper, one table
    python -m bench.api_micro --ab /work/main      # A/B: this tree against another, alternating

``--ab OTHER`` runs the measurement in fresh processes, alternating between
this tree (or ``--a TREE``) and ``OTHER`` for ``--rounds`` rounds; each process imports
``hyper`` from its own tree only (``PYTHONPATH`` is that tree, the working
directory too, and the process reports ``hyper.__file__``, checked against
the tree), and the table gives the median of the same-round ratios. The
script runs by path in both, so ``OTHER`` needs no copy of it; it uses only
``HTTP20Connection``'s public methods plus ``_current_session`` (the hook
where the stub goes in).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

# A 1 KiB body, as the seq and mux workloads fetch.
BODY = b"x" * 1024
# What nginx sends for a static file (the fields, not the values, matter).
RESPONSE_FIELDS: list[tuple[bytes, bytes]] = [
    (b":status", b"200"),
    (b"server", b"nginx/1.22.1"),
    (b"date", b"Sat, 05 Dec 2026 17:00:00 GMT"),
    (b"content-type", b"application/octet-stream"),
    (b"content-length", b"1024"),
    (b"last-modified", b"Sat, 05 Dec 2026 16:00:00 GMT"),
    (b"etag", b'"6750c000-400"'),
    (b"accept-ranges", b"bytes"),
]
# Headers a typical caller adds (str, as most code writes them).
CALLER_HEADERS = {
    "User-Agent": "bench/1.0",
    "Accept": "*/*",
    "X-Request-Id": "0123456789abcdef",
    "Cache-Control": "no-cache",
}


class StubSession:
    """Stands in for ``H2Session``: every operation answers at once, nothing is sent.

    Only the operations the API layer calls on the request/response path.
    """

    read_timeout = 30.0

    def __init__(self) -> None:
        self._next_id = 1
        self.sent: list[list[tuple[bytes, bytes]]] = []

    def open_stream(
        self,
        fields: list[tuple[bytes, bytes]],
        end_stream: bool,
        may_refuse: bool,
        declared_length: int | None = None,
    ) -> int:
        wire_id = self._next_id
        self._next_id += 2
        if len(self.sent) < 4:  # kept for --check, not per request
            self.sent.append(fields)
        return wire_id

    def send_body(self, stream_id: int, body: Any, end_stream: bool = True) -> None:
        for _ in body.blocks():
            pass

    def await_response_start(self, stream_id: int, timeout: Any, on_timeout: Any) -> tuple[Any, None]:
        return self.await_headers(stream_id, timeout, on_timeout), None  # the body is read with read_body

    def await_headers(self, stream_id: int, timeout: Any, on_timeout: Any) -> list[tuple[bytes, bytes]]:
        return list(RESPONSE_FIELDS)  # the core hands over a fresh list per response

    def read_body(
        self, stream_id: int, max_bytes: int | None, timeout: Any, on_timeout: Any
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        return BODY, []  # the whole body, complete, no trailers

    def discard(self, stream_id: int) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


def make_connection() -> tuple[Any, StubSession]:
    """An ``HTTP20Connection`` that never connects: its session is the stub."""
    import hyper

    conn = hyper.HTTP20Connection("example.org", 443, secure=True)
    stub = StubSession()
    conn._current_session = lambda: stub  # type: ignore[method-assign]
    return conn, stub


def cases() -> dict[str, Callable[[], object]]:
    """Each measured operation, by name; each call is one request (or one step of one)."""
    conn, _ = make_connection()
    from hyper.http20.response import HTTP20Response

    stub = StubSession()

    def seq() -> object:
        return conn.getresponse(conn.request("GET", "/file")).read()

    def seq_headers() -> object:
        stream_id = conn.request("GET", "/file", headers=CALLER_HEADERS)
        return conn.getresponse(stream_id).read()

    def post() -> object:
        return conn.getresponse(conn.request("POST", "/upload", body=BODY)).read()

    def request_only() -> object:
        stream_id = conn.request("GET", "/file")
        conn._registry.forget(stream_id)  # keep the registry's table small
        return stream_id

    def response_only() -> object:
        return HTTP20Response(stub, 1, list(RESPONSE_FIELDS))  # type: ignore[arg-type]

    def response_read() -> object:
        return HTTP20Response(stub, 1, list(RESPONSE_FIELDS)).read()  # type: ignore[arg-type]

    def getheader() -> object:
        response = HTTP20Response(stub, 1, list(RESPONSE_FIELDS))  # type: ignore[arg-type]
        return response.headers.get(b"content-type"), response.getheader("content-length")

    return {
        "seq (request+getresponse+read)": seq,
        "seq, 4 caller headers": seq_headers,
        "POST 1 KiB body": post,
        "request() alone": request_only,
        "response object alone": response_only,
        "response + read()": response_read,
        "response + 2 header lookups": getheader,
    }


def measure(number: int, repeat: int) -> dict[str, float]:
    """Best of ``repeat`` timings of ``number`` calls of each case, in microseconds per call.

    Timed with this process's CPU time, not the wall clock: on a shared
    machine the wall clock also counts the time other processes ran.
    """
    results: dict[str, float] = {}
    for name, case in cases().items():
        case()  # warm up, and fail early
        timer = timeit.Timer(case, timer=time.process_time)
        best = min(timer.repeat(number=number, repeat=repeat))
        results[name] = best / number * 1e6
    return results


def check() -> None:
    """Print what the stub session received, so a change in the fields sent shows."""
    conn, stub = make_connection()
    conn.getresponse(conn.request("GET", "/file", headers=CALLER_HEADERS)).read()
    for name, value in stub.sent[0]:
        print(f"{name.decode()}: {value.decode()}")


def run_in(tree: str, number: int, repeat: int) -> dict[str, Any]:
    """One measurement in a fresh process importing ``hyper`` from ``tree`` only."""
    env = dict(os.environ, PYTHONPATH=tree)
    command = [sys.executable, os.path.abspath(__file__), "--json", "-n", str(number), "-r", str(repeat)]
    out = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=600, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    expected = os.path.realpath(tree)
    if not os.path.realpath(result["hyper"]).startswith(expected + os.sep):
        raise SystemExit(f"{tree}: the process imported {result['hyper']}, not this tree's hyper")
    return result


def ab(other: str, rounds: int, number: int, repeat: int, here: str | None = None) -> None:
    """Alternate ``here`` (this tree) and ``other``; print medians and same-round ratios (here / other)."""
    here = here or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ratios: dict[str, list[float]] = {}
    times: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
    for index in range(rounds):
        order = [("A", here), ("B", other)] if index % 2 == 0 else [("B", other), ("A", here)]
        round_results = {}
        for label, tree in order:
            result = run_in(tree, number, repeat)
            round_results[label] = result["us"]
            if index == 0:
                print(f"{label}: {tree} imports {result['hyper']}", file=sys.stderr)
        for name, a_us in round_results["A"].items():
            b_us = round_results["B"].get(name)
            if b_us is None:
                continue
            ratios.setdefault(name, []).append(a_us / b_us)
            times["A"].setdefault(name, []).append(a_us)
            times["B"].setdefault(name, []).append(b_us)
        print(f"round {index + 1}/{rounds} done", file=sys.stderr)
    print(f"A = {here}, B = {other}; {rounds} rounds, best of {repeat} x {number} calls per process")
    print(f"{'case':34} {'A us':>8} {'B us':>8} {'A/B (median of rounds)':>24}  per-round A/B")
    for name, values in ratios.items():
        a = statistics.median(times["A"][name])
        b = statistics.median(times["B"][name])
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:34} {a:8.2f} {b:8.2f} {statistics.median(values):24.3f}  {shown}")


def main(argv: list[str] | None = None) -> None:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.api_micro", description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--number", type=int, default=2000, help="calls per timing (2000)")
    parser.add_argument("-r", "--repeat", type=int, default=7, help="timings per case; the best counts (7)")
    parser.add_argument("--ab", metavar="OTHER_TREE", help="compare with the hyper of another source tree")
    parser.add_argument("--a", metavar="TREE", help="side A of --ab (default: this tree)")
    parser.add_argument("--rounds", type=int, default=5, help="A/B rounds, alternating order (5)")
    parser.add_argument("--json", action="store_true", help="one JSON object (used by --ab)")
    parser.add_argument("--check", action="store_true", help="print the request fields the stub received")
    args = parser.parse_args(argv)
    if args.ab:
        ab(args.ab, args.rounds, args.number, args.repeat, args.a)
        return
    if args.check:
        check()
        return
    import hyper

    results = measure(args.number, args.repeat)
    if args.json:
        print(json.dumps({"hyper": hyper.__file__, "us": results}))
        return
    print(f"hyper from {hyper.__file__}; best of {args.repeat} x {args.number} calls")
    for name, us in results.items():
        print(f"{name:34} {us:8.2f} us")


if __name__ == "__main__":
    main()

"""Where a request's client CPU goes, layer by layer: ``python -m bench.layers``.

Issue 14 asks, for every target missed, for the profile that shows what
stands in the way.  A sampling or tracing profile of the whole client mixes
the server's pace and the profiler's own cost into the figure; this
measures each layer by *subtraction* instead, in one process, with the
client thread's own CPU clock (:func:`time.thread_time`: not the server
threads', not time spent waiting for a core):

==========================  =================================================
row                          what runs in the client thread
==========================  =================================================
``h2``                       h2's client connection alone through its
                             public API, in memory: send the request
                             HEADERS, take the server's bytes, acknowledge
                             the body (for scale: hyper's core skips h2's
                             general path where its fast paths apply)
``hyper core``               hyper's sans-I/O core (:class:`H2Core`, h2
                             underneath) doing the same, in memory
``hyper (cleartext)``       the whole of hyper (API, session, core) over a
                             loopback TCP socket with prior knowledge
``hyper``                    the same over TLS: what users run
``hyper batch()``            the same with each mux burst in ``conn.batch()``
                             (one write per burst; seq is hyper's own)
``floor``                    the pure-Python floor client (bench/floor.py)
``pycurl``                   libcurl through pycurl
==========================  =================================================

Every row talks to the same in-process server (:mod:`bench.layers_server`,
on other threads or between the timed spans), answering 1 KiB with nginx's
7 response fields, either as literals (``literal``: like nginx) or indexed
(``indexed``: like nghttpd, h2o, apache2).  Workloads: ``seq`` (one request
at a time) and ``mux`` (100 in flight).  The differences between rows are
the layers' costs: the core (h2 included), session + API + socket calls,
TLS.
Rounds alternate the rows' order; each figure is a median of rounds.
The in-process server answers more slowly than nginx or nghttpd (it is
Python), which moves clients that poll in a loop while they wait (pycurl's
multi handle in ``mux``): the peers' rows are for scale, hyper's layers are
the figures.
No figure here is a target: the targets are in ``python -m bench``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events

from bench.layers_server import BODY, STYLES, AnsweringServer, ThreadedServer, server_context
from bench.server import pick_work_dir, write_certs

PATH = "/1k.bin"
WORKLOADS = {"seq": 1, "mux": 100}
ROWS = ("h2", "hyper core", "hyper (cleartext)", "hyper", "hyper batch()", "floor", "pycurl")
#: Rows that need a socket and a server thread (the others run in memory).
SOCKET_ROWS = ROWS[2:]


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    requests: int
    rounds: int
    warmup: int


FULL = Plan(requests=2000, rounds=7, warmup=200)
QUICK = Plan(requests=200, rounds=2, warmup=20)


def request_fields(authority: str) -> list[tuple[bytes, bytes]]:
    """What hyper, the floor and curl send for a plain GET (curl adds accept and user-agent too)."""
    return [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", authority.encode()),
        (b":path", PATH.encode()),
    ]


# -- the in-memory rows: client spans timed, the server's work between them not --------


def _timer_cost(samples: int = 2000) -> float:
    """CPU seconds one thread_time() pair costs (subtracted per timed span)."""
    clock = time.thread_time
    best = float("inf")
    for _ in range(5):
        start = clock()
        for _ in range(samples):
            clock()
            clock()
        best = min(best, (clock() - start) / samples)
    return best


class _H2Client:
    """h2's client connection alone, driven through its public API."""

    row = "h2"

    def __init__(self) -> None:
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.data_to_send = self.conn.data_to_send  # bound once: no extra call in the timed spans

    def start(self, server: AnsweringServer) -> None:
        """The preface and SETTINGS exchange, with the connection window opened wide."""
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window((1 << 30) - 65536)
        self.conn.receive_data(server.receive(self.data_to_send()))

    def open_streams(self, fields: list[tuple[bytes, bytes]], count: int) -> list[int]:
        """Queue ``count`` requests' HEADERS (END_STREAM); their stream ids."""
        ids = []
        for _ in range(count):
            stream_id = self.conn.get_next_available_stream_id()
            self.conn.send_headers(stream_id, fields, end_stream=True)
            ids.append(stream_id)
        return ids

    def take_bodies(self, answer: bytes, ids: list[int]) -> list[bytes]:
        """Take the server's bytes, acknowledge each body's DATA; the bodies of ``ids``."""
        bodies: dict[int, list[bytes]] = {stream_id: [] for stream_id in ids}
        for event in self.conn.receive_data(answer):
            if isinstance(event, h2.events.DataReceived) and event.stream_id is not None:
                bodies[event.stream_id].append(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        return [b"".join(pieces) for pieces in bodies.values()]


class _CoreClient:
    """hyper's sans-I/O core alone, driven as the session drives it."""

    row = "core"

    def __init__(self) -> None:
        from hyper.http20.core import H2Core

        self.core = H2Core(origin=("https", "127.0.0.1", 443))
        self.data_to_send = self.core.data_to_send  # bound once: no extra call in the timed spans

    def start(self, server: AnsweringServer) -> None:
        """The preface and SETTINGS exchange (the core opens the connection window itself)."""
        self.core.initiate()
        self.core.receive(server.receive(self.data_to_send()))

    def open_streams(self, fields: list[tuple[bytes, bytes]], count: int) -> list[int]:
        """Queue ``count`` requests' HEADERS (END_STREAM); their stream ids."""
        return [self.core.open_stream(fields, True) for _ in range(count)]

    def take_bodies(self, answer: bytes, ids: list[int]) -> list[bytes]:
        """Take the server's bytes; the bodies of ``ids``, each stream then discarded."""
        self.core.receive(answer)
        bodies = []
        for stream_id in ids:
            stream = self.core.streams[stream_id]
            if not stream.headers:
                raise RuntimeError("core row: no response headers")
            bodies.append(self.core.take_data(stream_id))
            self.core.discard_stream(stream_id)
        return bodies


def run_in_memory(client: _H2Client | _CoreClient, style: str, requests: int, in_flight: int) -> float:
    """Client CPU seconds of ``client`` alone for *requests* exchanges, *in_flight* at a time.

    Two timed spans per batch: making the requests' bytes, and taking the
    answer (with what the client sends back for it); the server's work
    between them is not timed.
    """
    server = AnsweringServer(style)
    client.start(server)
    server.receive(client.data_to_send())
    fields = request_fields("127.0.0.1:443")
    clock, spent, done = time.thread_time, 0.0, 0
    while done < requests:
        batch = min(in_flight, requests - done)
        start = clock()
        ids = client.open_streams(fields, batch)
        out = client.data_to_send()
        spent += clock() - start
        answer = server.receive(out)
        start = clock()
        bodies = client.take_bodies(answer, ids)
        out = client.data_to_send()
        spent += clock() - start
        server.receive(out)
        if any(body != BODY for body in bodies):
            raise RuntimeError(f"{client.row} row: a body came out wrong")
        done += batch
    return spent


#: The in-memory rows and the client each drives.
IN_MEMORY_CLIENTS: dict[str, type[_H2Client | _CoreClient]] = {"h2": _H2Client, "hyper core": _CoreClient}


# -- the socket rows: the client thread's CPU over the whole run ------------------------


def _client(row: str, port: int, ca_file: str) -> Any:
    from bench.clients import CLIENTS

    if row == "hyper (cleartext)":
        import hyper

        return _CleartextHyper(hyper.HTTP20Connection("127.0.0.1", port, secure=False, timeout=30))
    name = {"hyper": "hyper", "hyper batch()": "hyper-batch", "floor": "floor", "pycurl": "pycurl"}[row]
    return CLIENTS[name]({"host": "127.0.0.1", "port": port, "ca": ca_file, "timeout": 30, "workload": "seq"})


class _CleartextHyper:
    """hyper with prior knowledge in cleartext, offering what bench.clients' clients offer."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def get(self, path: str) -> bytes:
        return bytes(self.conn.getresponse(self.conn.request("GET", path)).read())

    def mux(self, path: str, count: int, in_flight: int) -> int:
        total = 0
        for start in range(0, count, in_flight):
            ids = [self.conn.request("GET", path) for _ in range(min(in_flight, count - start))]
            total += sum(len(self.conn.getresponse(stream_id).read()) for stream_id in ids)
        return total

    def close(self) -> None:
        self.conn.close()


def run_socket_row(row: str, port: int, ca_file: str, plan: Plan, in_flight: int) -> float:
    """Client-thread CPU seconds for ``plan.requests`` requests of *row* against the server at *port*."""
    client = _client(row, port, ca_file)
    try:
        for _ in range(plan.warmup):
            if client.get(PATH) != BODY:
                raise RuntimeError(f"{row}: warm-up body came out wrong")
        start = time.thread_time()
        if in_flight == 1:
            total = sum(len(client.get(PATH)) for _ in range(plan.requests))
        else:
            total = client.mux(PATH, plan.requests, in_flight)
        spent = time.thread_time() - start
    finally:
        client.close()
    if total != plan.requests * len(BODY):
        raise RuntimeError(f"{row}: {total} body bytes, expected {plan.requests * len(BODY)}")
    return spent


# -- measuring and reporting ---------------------------------------------------------------


def measure(
    plan: Plan, styles: list[str], workloads: list[str], rows: list[str], ca_file: str, cert: Any
) -> dict[tuple[str, str, str], list[float]]:
    """Microseconds of client CPU per request: (style, workload, row) -> one figure per round."""
    figures: dict[tuple[str, str, str], list[float]] = {}
    timer = _timer_cost()
    context = server_context(cert.cert_file, cert.key_file)
    for style in styles:
        with ThreadedServer(style, None) as plain, ThreadedServer(style, context) as tls:
            for round_index in range(plan.rounds):
                order = rows if round_index % 2 == 0 else rows[::-1]
                for workload in workloads:
                    in_flight = WORKLOADS[workload]
                    for row in order:
                        gc.collect()
                        if row in IN_MEMORY_CLIENTS:
                            spent = run_in_memory(IN_MEMORY_CLIENTS[row](), style, plan.requests, in_flight)
                            # Two timed spans per batch of requests: their clock reads go.
                            batches = -(-plan.requests // in_flight)
                            spent -= 2 * batches * timer
                        else:
                            port = plain.port if row == "hyper (cleartext)" else tls.port
                            spent = run_socket_row(row, port, ca_file, plan, in_flight)
                        figures.setdefault((style, workload, row), []).append(spent / plan.requests * 1e6)
            for server in (plain, tls):
                if server.errors:
                    raise RuntimeError(f"the {style} server failed: {server.errors[0]!r}")
    return figures


def report(figures: dict[tuple[str, str, str], list[float]], plan: Plan, command: str) -> str:
    """Markdown: per style and workload, each row's median and the layers' differences."""
    lines = [
        "# Client CPU per request, layer by layer",
        "",
        f"Produced by `{command}`: {plan.requests:,} requests per figure, median of "
        f"{plan.rounds} rounds, microseconds of the client thread's CPU time per request "
        "(`time.thread_time`). The server is in-process (bench/layers_server.py), so no row "
        "pays for it. See bench/layers.py for what each row runs.",
        "",
    ]
    styles = sorted({key[0] for key in figures}, key=STYLES.index)
    workloads = sorted({key[1] for key in figures}, key=list(WORKLOADS).index)
    for style in styles:
        for workload in workloads:
            med = {
                row: statistics.median(v) for (s, w, row), v in figures.items() if (s, w) == (style, workload)
            }
            lines += [f"## {workload}, {style} response fields", "", "| row | µs per request | spread |"]
            lines += ["| --- | --- | --- |"]
            for row in ROWS:
                if row in med:
                    values = figures[(style, workload, row)]
                    lines.append(f"| {row} | {med[row]:.1f} | {min(values):.1f}-{max(values):.1f} |")
            lines.append("")
            # h2 alone is not a layer under hyper's core (the core skips
            # h2's general path on its fast paths): it is shown for scale.
            parts = [
                ("hyper's core (h2 included), in memory", "hyper core", None),
                ("hyper's session, API and socket calls", "hyper (cleartext)", "hyper core"),
                ("TLS (OpenSSL and the ssl module)", "hyper", "hyper (cleartext)"),
            ]
            shown = [(label, a, b) for label, a, b in parts if a in med and (b is None or b in med)]
            if shown and "hyper" in med:
                lines += ["| layer of hyper's time | µs per request | share |", "| --- | --- | --- |"]
                for label, a, b in shown:
                    cost = med[a] - (med[b] if b else 0.0)
                    lines.append(f"| {label} | {cost:.1f} | {cost / med['hyper']:.0%} |")
                for peer in ("h2", "hyper batch()", "floor", "pycurl"):
                    if peer in med:
                        lines.append(f"| (for scale: {peer}, all of it) | {med[peer]:.1f} | – |")
                lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.layers", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 requests, 2 rounds (the smoke test)")
    parser.add_argument("--rounds", type=int, help="rounds (default 7)")
    parser.add_argument("--requests", type=int, help="requests per figure (default 2000)")
    parser.add_argument("--styles", default=",".join(STYLES), help="literal,indexed")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="seq,mux")
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows (default: all)")
    parser.add_argument("--output", metavar="FILE", help="also write the Markdown report there")
    args = parser.parse_args(argv)
    for name, allowed in (("styles", STYLES), ("only", tuple(WORKLOADS)), ("rows", ROWS)):
        chosen = [item.strip() for item in getattr(args, name).split(",") if item.strip()]
        unknown = [item for item in chosen if item not in allowed]
        if unknown or not chosen:
            parser.error(
                f"--{name}: unknown {', '.join(unknown) or 'empty list'}; choose from {','.join(allowed)}"
            )
        setattr(args, name, chosen)
    return args


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.layers``: prints the report; exit status 1 if a row failed."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    base = QUICK if args.quick else FULL
    plan = Plan(args.requests or base.requests, args.rounds or base.rounds, base.warmup)
    work_dir = pick_work_dir()
    ca_file, cert = write_certs(work_dir)
    command = "python -m bench.layers " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        figures = measure(plan, args.styles, args.only, args.rows, ca_file, cert)
    except RuntimeError as exc:
        print(f"bench.layers: {exc}", file=sys.stderr)
        return 1
    text = report(figures, plan, command.strip())
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What is measured: workloads, their sizes, and the targets of issue 5."""

from __future__ import annotations

from dataclasses import dataclass

#: Workloads in report order.
WORKLOADS = ("seq", "mux", "download", "upload", "threads")

#: Every client the harness knows, in table column order.  ``tls`` is the
#: pure-Python TLS limit (download and upload only).
ALL_CLIENTS = ("h2load", "curl", "pycurl", "httpx", "niquests", "hyper", "tls")
#: Clients that run inside a Python worker process (bench/worker.py).
PYTHON_CLIENTS = ("pycurl", "httpx", "niquests", "hyper")

#: Human-readable description of each workload (table rows).
DESCRIPTIONS = {
    "seq": "seq: {seq_requests:,} sequential GETs of 1 KiB",
    "mux": "mux: {mux_requests:,} GETs of 1 KiB, {mux_in_flight} in flight",
    "download": "download: {body_mib} MiB in 64 KiB reads",
    "upload": "upload: {body_mib} MiB from a file",
    "threads": "threads: {threads} threads x {per_thread:,} GETs, one shared client",
}

#: Rate unit per workload: requests per second or MB/s (10^6 bytes).
UNITS = {
    "seq": "req/s",
    "mux": "req/s",
    "download": "MB/s",
    "upload": "MB/s",
    "threads": "req/s",
}

#: How each client does the "mux" and "threads" workloads when that differs
#: from the obvious (shown under the tables).
NOTES = {
    ("httpx", "mux"): "httpx: 16 threads (its sync client has no multiplexing API)",
    ("niquests", "mux"): "niquests: Session(multiplexed=True), 100 lazy responses then gather()",
    ("niquests", "threads"): "niquests: Session(pool_maxsize=1), or each thread opens its own connection",
    ("h2load", "threads"): "h2load: 8 concurrent streams on one connection (-m 8)",
    ("curl", "seq"): "curl CLI: one process for all requests, timed with its start-up and handshake",
    ("curl", "mux"): "curl: --parallel --parallel-max 100 (one multiplexed connection)",
    ("pycurl", "mux"): "pycurl: CurlMulti with CURLPIPE_MULTIPLEX, 100 easy handles",
}

#: Targets of issue 5: (workload, peer, minimum ratio hyper/peer).
TARGETS = (
    ("seq", "httpx", 3.0),
    ("seq", "niquests", 3.0),
    ("mux", "httpx", 4.0),
    ("mux", "niquests", 4.0),
    ("download", "tls", 0.60),
    ("upload", "tls", 0.85),
    ("threads", "httpx", 3.0),
)
#: Issue 5: peak RSS growth must stay under this for a 1 GiB body.
RSS_LIMIT_MIB = 64


@dataclass(frozen=True)
class Sizes:
    """Sizes of every workload, and the time bounds."""

    seq_requests: int
    mux_requests: int
    mux_in_flight: int
    body_mib: int
    read_chunk: int
    threads: int
    per_thread: int
    warmup_requests: int
    #: Seconds one client run may take before it is reported as "stalled".
    timeout: float

    @property
    def body_bytes(self) -> int:
        """Size of the download and upload bodies in bytes."""
        return self.body_mib * 1024 * 1024

    def describe(self, workload: str) -> str:
        """Row label of *workload* with these sizes."""
        return DESCRIPTIONS[workload].format(**self.__dict__)


#: The sizes of issue 5.
FULL = Sizes(
    seq_requests=2000,
    mux_requests=2000,
    mux_in_flight=100,
    body_mib=100,
    read_chunk=65536,
    threads=8,
    per_thread=250,
    warmup_requests=20,
    timeout=45.0,
)

#: Tiny sizes for a CI smoke run (the whole run takes well under a minute).
QUICK = Sizes(
    seq_requests=100,
    mux_requests=200,
    mux_in_flight=100,
    body_mib=4,
    read_chunk=65536,
    threads=8,
    per_thread=10,
    warmup_requests=2,
    timeout=20.0,
)

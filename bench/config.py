"""What is measured: workloads, their sizes, and the targets of issues 5 and 14."""

from __future__ import annotations

from dataclasses import dataclass

#: Workloads in report order.
WORKLOADS = ("seq", "mux", "download", "upload", "threads")

#: Every client the harness knows, in table column order.  ``tls`` is the
#: pure-Python TLS limit (download and upload only); ``floor`` the minimal
#: pure-Python HTTP/2 client of bench/floor.py (no upload).
ALL_CLIENTS = ("h2load", "curl", "pycurl", "floor", "httpx", "niquests", "hyper", "hyper-batch", "tls")
#: ``hyper-batch`` is hyper with each mux burst in ``conn.batch()`` (bench/hyper_batch.py).
#: Clients that run inside a Python worker process (bench/worker.py).
PYTHON_CLIENTS = ("pycurl", "floor", "httpx", "niquests", "hyper", "hyper-batch")

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
    ("pycurl", "seq"): "pycurl: one easy handle reused for every request",
    ("pycurl", "mux"): "pycurl: CurlMulti with CURLPIPE_MULTIPLEX (one connection), 100 easy handles",
    ("pycurl", "threads"): "pycurl: 8 threads, each with its own easy handle and so its own connection "
    "(a libcurl handle must not be used by two threads at once): 8 connections, not one",
    ("floor", "seq"): "floor: bench/floor.py, one connection; checks every status and body length",
    ("floor", "mux"): "floor: 100 HEADERS frames in one write, then reads until all 100 are done",
    ("floor", "threads"): "floor: 8 threads share one connection; a waiting thread reads for all of them",
    (
        "floor",
        "download",
    ): "floor: counts DATA payloads as each read brings them (no 64 KiB reads to imitate)",
}


@dataclass(frozen=True)
class Target:
    """A speed target: hyper's rate / *peer*'s rate must be at least *minimum*."""

    workload: str
    peer: str
    minimum: float
    #: The issue that set it.
    issue: int


#: The targets, checked on every server.  Issue 14's replace issue 5's for the
#: Python peers (its mux target is 5x, not 4x); issue 5's TLS-limit targets stay.
TARGETS = (
    Target("seq", "pycurl", 1.0, 14),
    Target("mux", "pycurl", 0.5, 14),
    Target("threads", "pycurl", 0.5, 14),
    Target("download", "pycurl", 0.9, 14),
    Target("upload", "pycurl", 0.9, 14),
    Target("seq", "floor", 0.6, 14),
    Target("mux", "floor", 0.2, 14),
    Target("threads", "floor", 0.5, 14),
    Target("seq", "httpx", 3.0, 14),
    Target("seq", "niquests", 3.0, 14),
    Target("mux", "httpx", 5.0, 14),
    Target("mux", "niquests", 5.0, 14),
    Target("threads", "httpx", 3.0, 14),
    Target("download", "tls", 0.60, 5),
    Target("upload", "tls", 0.85, 5),
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

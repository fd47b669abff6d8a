"""The C peers: h2load (nghttp2) and the curl command line tool.

They show what the machine and nginx can do, so the Python figures can be
read against a ceiling.  Each function runs one workload once and returns the
same kind of result dict as :mod:`bench.worker` (``ok``, ``elapsed``,
``amount``, ``protocol``), or ``None`` when the tool cannot run the workload.

Timing:

* h2load: its own "finished in" figure (from its first connect to the last
  response; one connection, so the TLS handshake is in it).
* curl, seq and mux: the wall-clock time of the whole process, so its
  start-up and TLS handshake (a few ms) are in it; subtracting a one-URL run
  was tried and is too noisy on a busy machine.
* curl, download and upload: ``time_total - time_appconnect`` from ``-w``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.config import Sizes
from bench.server import BIG_PATH, SMALL_PATH, UPLOAD_PATH, BenchServer

_FINISHED = re.compile(r"finished in ([0-9.]+)(us|ms|s),")
_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded")
_STATUS = re.compile(r"status codes: (\d+) 2xx")


def available(tool: str) -> bool:
    """Whether *tool* (``h2load`` or ``curl``) is installed."""
    return shutil.which(tool) is not None


def _failure(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message[:300]}


def _run(argv: list[str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    return proc, time.perf_counter() - started


# ---------------------------------------------------------------------------
# h2load
# ---------------------------------------------------------------------------


def run_h2load(workload: str, server: BenchServer, sizes: Sizes, work_dir: Path) -> dict[str, Any] | None:
    """One h2load run of *workload* over one connection."""
    base = ["h2load", "-c", "1", "-t", "1"]
    if workload == "seq":
        argv = [*base, "-m", "1", "-n", str(sizes.seq_requests), server.url(SMALL_PATH)]
        amount = sizes.seq_requests
    elif workload == "mux":
        argv = [*base, "-m", str(sizes.mux_in_flight), "-n", str(sizes.mux_requests), server.url(SMALL_PATH)]
        amount = sizes.mux_requests
    elif workload == "threads":
        # No threads in h2load: as many concurrent streams as there are threads.
        count = sizes.threads * sizes.per_thread
        argv = [*base, "-m", str(sizes.threads), "-n", str(count), server.url(SMALL_PATH)]
        amount = count
    elif workload == "download":
        argv = [*base, "-m", "1", "-n", "1", server.url(BIG_PATH)]
        amount = sizes.body_bytes
    elif workload == "upload":
        argv = [*base, "-m", "1", "-n", "1", "-d", server.upload_file, server.url(UPLOAD_PATH)]
        amount = sizes.body_bytes
    else:
        return None
    proc, _ = _run(argv, sizes.timeout)
    out = proc.stdout
    finished, requests, status = _FINISHED.search(out), _REQUESTS.search(out), _STATUS.search(out)
    if proc.returncode != 0 or not (finished and requests and status):
        return _failure(f"h2load exit {proc.returncode}: {(proc.stderr or out)[-200:]}")
    total = int(requests.group(1))
    if int(requests.group(4)) != total or int(status.group(1)) != total:
        return _failure(f"h2load: {requests.group(0)}, {status.group(0)}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[finished.group(2)]
    return {"ok": True, "elapsed": float(finished.group(1)) * scale, "amount": amount, "protocol": "HTTP/2"}


# ---------------------------------------------------------------------------
# curl
# ---------------------------------------------------------------------------


def _curl_base(server: BenchServer) -> list[str]:
    return ["curl", "--http2", "--cacert", server.ca_file, "--silent", "--show-error", "--fail"]


def _curl_many(server: BenchServer, count: int, parallel: int, work_dir: Path, timeout: float) -> float:
    """Wall-clock seconds of one curl process fetching the small file *count* times."""
    config = work_dir / f"curl-{count}.cfg"
    line = f'url = "{server.url(SMALL_PATH)}"\noutput = "/dev/null"\n'
    config.write_text(line * count)
    argv = [*_curl_base(server), "--config", str(config)]
    if parallel > 1:
        argv += ["--parallel", "--parallel-max", str(parallel)]
    proc, elapsed = _run(argv, timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"curl exit {proc.returncode}: {proc.stderr[-200:]}")
    return elapsed


def run_curl(workload: str, server: BenchServer, sizes: Sizes, work_dir: Path) -> dict[str, Any] | None:
    """One run of the curl command line tool."""
    if workload in ("seq", "mux"):
        count = sizes.seq_requests if workload == "seq" else sizes.mux_requests
        parallel = 1 if workload == "seq" else sizes.mux_in_flight
        try:
            elapsed = _curl_many(server, count, parallel, work_dir, sizes.timeout)
        except RuntimeError as exc:
            return _failure(str(exc))
        return {"ok": True, "elapsed": elapsed, "amount": count, "protocol": "HTTP/2"}
    if workload not in ("download", "upload"):
        return None
    write_out = (
        "%{time_total} %{time_appconnect} %{size_download} %{size_upload} %{http_version} %{http_code}"
    )
    argv = [*_curl_base(server), "--output", "/dev/null", "--write-out", write_out]
    if workload == "download":
        argv.append(server.url(BIG_PATH))
    else:
        # No "Expect: 100-continue" round trip.
        argv += ["--header", "Expect:", "--upload-file", server.upload_file, server.url(UPLOAD_PATH)]
    proc, _ = _run(argv, sizes.timeout)
    fields = proc.stdout.split()
    if proc.returncode != 0 or len(fields) != 6:
        return _failure(f"curl exit {proc.returncode}: {proc.stderr[-200:]} {proc.stdout[-100:]}")
    total, appconnect = float(fields[0]), float(fields[1])
    moved = int(fields[2] if workload == "download" else fields[3])
    if fields[4] != "2" or fields[5] != "200" or moved != sizes.body_bytes:
        return _failure(f"curl: HTTP version {fields[4]}, status {fields[5]}, {moved:,} bytes")
    return {
        "ok": True,
        "elapsed": max(total - appconnect, 1e-6),
        "amount": sizes.body_bytes,
        "protocol": "HTTP/2",
    }

"""One Python client running one workload, in a fresh process.

Run by the harness as ``python -m bench.worker '<json spec>'``; prints one line
``BENCH-RESULT {json}`` and exits.  A fresh process per run keeps clients from
affecting each other (imports, caches, threads) and makes the peak RSS growth
of one workload measurable: ``ru_maxrss`` after the workload minus
``ru_maxrss`` just before it (after imports, client setup and warm-up).

The clients are in :mod:`bench.clients`.  Every workload is bounded in count; the harness
kills a worker that overruns its timeout and reports it as "stalled".
"""

from __future__ import annotations

import cProfile
import json
import os
import resource
import sys
import threading
import time
from typing import Any

from bench.clients import CLIENTS, Client, WorkloadError, check
from bench.crew import run_crew

RESULT_MARKER = "BENCH-RESULT "

# ---------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------


def run_threads(client: Client, path: str, threads: int, per_thread: int, timeout: float) -> int:
    """*threads* threads doing *per_thread* GETs each through one client."""
    totals = [0] * threads
    start = threading.Barrier(threads)

    def work(index: int) -> None:
        start.wait(timeout)  # all start together: the crew's threads compete from the first request
        for _ in range(per_thread):
            totals[index] += len(client.get(path))

    try:
        errors = run_crew(work, range(threads), timeout)
    except RuntimeError as exc:  # a thread still running at the deadline
        raise WorkloadError(f"threads still running at the deadline: {exc}") from exc
    if errors:
        raise WorkloadError(f"{len(errors)} of {threads} threads failed; first: {errors[0]!r}")
    return sum(totals)


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _peak_rss_kib() -> int:
    """Peak RSS of this process so far, in KiB.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` over
    ``execve``, so a worker would start with its parent's peak.
    """
    peak = _proc_status_kib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_rss_baseline() -> int:
    """Reset the peak-RSS mark to the current RSS if Linux allows; the baseline."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # 5: reset the peak RSS (VmHWM) to the current RSS
    except OSError:
        pass
    return _peak_rss_kib()


def _report_stalled(timeout: float) -> None:
    result = {"ok": False, "stalled": True, "error": f"stalled: not done after {timeout:g} s"}
    print(RESULT_MARKER + json.dumps(result), flush=True)
    os._exit(0)


def run_workload(client: Client, spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up, then time the workload; return the measurements."""
    sizes = spec["sizes"]
    small, small_size = spec["small_path"], spec["small_size"]
    workload = spec["workload"]
    timeout = spec["timeout"]

    # Warm-up: connect, negotiate, fill caches.  Not timed.  The mux warm-up
    # goes through mux() only: pycurl's multi handle has its own connection.
    warmup = sizes["warmup_requests"]
    if workload == "mux":
        check(client.mux(small, warmup, warmup) == warmup * small_size, "short warm-up body")
    else:
        for _ in range(warmup):
            check(len(client.get(small)) == small_size, "short warm-up body")
    if workload == "threads":
        client.prepare_threads(sizes["threads"])
    check(client.protocol == "HTTP/2", f"negotiated {client.protocol}, not HTTP/2")

    profiler = None
    if spec.get("profile"):
        # "cpu": attribute only this process's CPU time, so waits for the
        # server (or for a core, on a busy machine) do not count.
        clock = time.process_time if spec.get("profile_clock") == "cpu" else time.perf_counter
        profiler = cProfile.Profile(clock)
    rss_before = _peak_rss_baseline()
    # A workload that overruns its timeout is reported as stalled from in
    # here (the harness's kill is the backstop for hangs during set-up).
    watchdog = threading.Timer(timeout, _report_stalled, args=(timeout,))
    watchdog.daemon = True
    watchdog.start()
    if profiler is not None:
        profiler.enable()
    started = time.perf_counter()
    # CPU time of the whole process (every thread): what the client itself
    # costs, much less moved by other processes than the wall clock is.
    cpu_started = time.process_time()
    if workload == "seq":
        count = sizes["seq_requests"]
        done = sum(len(client.get(small)) for _ in range(count))
        expected, amount = count * small_size, count
    elif workload == "mux":
        count = sizes["mux_requests"]
        done = client.mux(small, count, sizes["mux_in_flight"])
        expected, amount = count * small_size, count
    elif workload == "threads":
        count = sizes["threads"] * sizes["per_thread"]
        done = run_threads(client, small, sizes["threads"], sizes["per_thread"], timeout)
        expected, amount = count * small_size, count
    elif workload == "download":
        done = client.download(spec["big_path"], sizes["read_chunk"])
        expected = amount = spec["body_bytes"]
    elif workload == "upload":
        status = client.upload(spec["upload_path"], spec["upload_file"])
        check(status == 200, f"upload answered {status}")
        done = expected = amount = spec["body_bytes"]
    else:
        raise ValueError(f"unknown workload {workload!r}")
    elapsed = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    watchdog.cancel()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(spec["profile"])
    rss_after = _peak_rss_kib()
    check(done == expected, f"got {done:,} body bytes, expected {expected:,}")
    return {
        "ok": True,
        "elapsed": elapsed,
        "cpu_seconds": cpu_seconds,
        "amount": amount,
        "protocol": client.protocol,
        "rss_base_kib": rss_before,
        "rss_growth_kib": rss_after - rss_before,
    }


def main(argv: list[str]) -> int:
    """Entry point: ``python -m bench.worker '<json spec>'``."""
    spec = json.loads(argv[0])
    try:
        client = CLIENTS[spec["client"]](spec)
        try:
            result = run_workload(client, spec)
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 -- every failure becomes a report line
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    # Which hyper this process ran: the A/B comparison (bench/compare.py)
    # checks that each side imported its own revision's tree.
    hyper = sys.modules.get("hyper")
    if hyper is not None:
        result["hyper_file"] = getattr(hyper, "__file__", None)
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A/B of two source trees' hyper against the same running servers, by client CPU per request.

    python -m bench.ab_trees --a /tmp/new --b /tmp/old --rounds 7
    python -m bench.ab_trees --b /work/main --only seq --servers nghttpd

``python -m bench`` restarts its servers for every invocation and reports
wall-clock rates, which on a shared 2-core machine move by 2x between runs.
This starts nginx and nghttpd once, then, round after round, runs hyper's
seq, mux and threads workloads (issue 5's sizes: 2,000 requests of 1 KiB)
from tree A and tree B alternately (the order flips every round) against
them. Each run is a fresh process with ``PYTHONPATH`` and its working
directory set to its tree; it reports ``hyper.__file__``, which must lie in
that tree (else the run stops). The figure is the client's CPU time per
request over the timed part (``time.process_time``: all its threads, none
of the server's, none of the time it waited for a core), next to the rate.
Printed: the median of each side and the median of the same-round ratios
A / B (below 1: A spends less CPU per request).

The worker half (``worker`` mode) runs by path in both trees, so the other
tree needs no copy of this file; it uses :class:`bench.clients.HyperClient`
and the request counts of :data:`bench.config.FULL`, from its own tree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

WORKLOADS = ("seq", "mux", "threads")
MARKER = "AB-RESULT "


# -- the worker: one tree, one workload, one process ------------------------------


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up, then time one workload; CPU and wall time of the timed part."""
    import hyper
    from bench.clients import HyperClient
    from bench.config import FULL

    client = HyperClient(spec)
    small, size = spec["path"], spec["size"]
    try:
        for _ in range(FULL.warmup_requests):
            if len(client.get(small)) != size:
                raise RuntimeError("short warm-up body")
        workload = spec["workload"]
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        if workload == "seq":
            count = FULL.seq_requests
            done = sum(len(client.get(small)) for _ in range(count))
        elif workload == "mux":
            count = FULL.mux_requests
            done = client.mux(small, count, FULL.mux_in_flight)
        else:
            count = FULL.threads * FULL.per_thread
            done = _threads(client, small, FULL.threads, FULL.per_thread, FULL.timeout)
        cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    finally:
        client.close()
    if done != count * size:
        raise RuntimeError(f"got {done} body bytes, expected {count * size}")
    return {"hyper": hyper.__file__, "cpu_us": cpu / count * 1e6, "rate": count / wall}


def _threads(client: Any, path: str, threads: int, per_thread: int, timeout: float) -> int:
    totals = [0] * threads
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(index: int) -> None:
        try:
            start.wait(timeout)
            for _ in range(per_thread):
                totals[index] += len(client.get(path))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in pool:
        thread.join(max(0.0, deadline - time.monotonic()))
    if errors or any(thread.is_alive() for thread in pool):
        raise RuntimeError(f"threads failed or stalled: {errors[:1]!r}")
    return sum(totals)


# -- the driver ---------------------------------------------------------------------


def run_worker(tree: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One run in a fresh process importing ``hyper`` (and ``bench``) from ``tree``."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PROXY") and not k.endswith("_proxy")}
    env["PYTHONPATH"] = tree
    command = [sys.executable, os.path.abspath(__file__), "worker", json.dumps(spec)]
    out = subprocess.run(
        command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    for line in out.stdout.splitlines():
        if line.startswith(MARKER):
            result: dict[str, Any] = json.loads(line[len(MARKER) :])
            if not os.path.realpath(result["hyper"]).startswith(os.path.realpath(tree) + os.sep):
                raise SystemExit(f"{tree}: the run imported {result['hyper']}, not this tree's hyper")
            return result
    raise SystemExit(f"{tree}: {spec['workload']} failed: {out.stderr.strip()[-500:]}")


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["worker"]:
        spec = json.loads(args_list[1])
        print(MARKER + json.dumps(worker(spec)), flush=True)
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.ab_trees", description=__doc__.splitlines()[0])
    here = str(Path(__file__).resolve().parent.parent)
    parser.add_argument("--a", default=here, help="tree A (default: this tree)")
    parser.add_argument("--b", required=True, help="tree B, e.g. an export of main")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating order (5)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="workloads (seq,mux,threads)")
    parser.add_argument("--servers", default="nginx,nghttpd", help="servers (nginx,nghttpd)")
    args = parser.parse_args(args_list)

    from bench.server import SMALL_PATH, SMALL_SIZE, pick_work_dir, prepare_files, start_server

    workloads = args.only.split(",")
    work_dir = pick_work_dir()
    servers = []
    ratios: dict[tuple[str, str, str], list[float]] = {}
    values: dict[tuple[str, str, str, str], list[float]] = {}
    try:
        files = prepare_files(work_dir, 1024 * 1024)  # no download here: a small big.bin
        servers = [start_server(name, work_dir, files) for name in args.servers.split(",")]
        for index in range(args.rounds):
            for server in servers:
                for workload in workloads:
                    spec = {
                        "host": server.host,
                        "port": server.port,
                        "ca": server.ca_file,
                        "path": SMALL_PATH,
                        "size": SMALL_SIZE,
                        "workload": workload,
                    }
                    sides = [("A", args.a), ("B", args.b)]
                    if index % 2:
                        sides.reverse()
                    results = {label: run_worker(tree, spec, 300) for label, tree in sides}
                    if index == 0:
                        for label in ("A", "B"):
                            shown = results[label]["hyper"]
                            print(f"{label} {server.name} {workload}: {shown}", file=sys.stderr)
                    for metric in ("cpu_us", "rate"):
                        key = (server.name, workload, metric)
                        ratios.setdefault(key, []).append(results["A"][metric] / results["B"][metric])
                        for label in ("A", "B"):
                            values.setdefault((*key, label), []).append(results[label][metric])
            print(f"round {index + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for server in servers:
            server.process.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    print(f"A = {args.a}\nB = {args.b}\n{args.rounds} rounds, order alternating; ratios are A / B per round")
    print(f"{'server':8} {'workload':8} {'metric':12} {'A':>9} {'B':>9} {'A/B median':>11}  per round")
    for (server_name, workload, metric), found in ratios.items():
        a = statistics.median(values[(server_name, workload, metric, "A")])
        b = statistics.median(values[(server_name, workload, metric, "B")])
        shown = " ".join(f"{ratio:.2f}" for ratio in found)
        label = "CPU us/req" if metric == "cpu_us" else "req/s"
        median = statistics.median(found)
        print(f"{server_name:8} {workload:8} {label:12} {a:9.1f} {b:9.1f} {median:11.3f}  {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

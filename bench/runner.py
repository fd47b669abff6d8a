"""Command line and orchestration of ``python -m bench``."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pstats
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import external, machine, report
from bench.config import ALL_CLIENTS, FULL, PYTHON_CLIENTS, QUICK, WORKLOADS, Sizes
from bench.peers import available_clients, log
from bench.report import Cell, Results
from bench.server import (
    BIG_PATH,
    OPTIONAL_SERVERS,
    SERVER_NAMES,
    SMALL_PATH,
    SMALL_SIZE,
    UPLOAD_PATH,
    BenchFiles,
    BenchServer,
    pick_work_dir,
    prepare_files,
    start_server,
)
from bench.worker import RESULT_MARKER
from tests.servers import ServerStartError, find_binary

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Seconds the TLS-limit server may take to start.
STARTUP_TIMEOUT = 15.0
#: Environment variables that would change what the clients verify or where
#: they connect; workers run without them.
_SCRUBBED_ENV = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


# ---------------------------------------------------------------------------
# Running one client on one workload
# ---------------------------------------------------------------------------


def _worker_env(import_first: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    first = [str(import_first)] if import_first is not None else []
    env["PYTHONPATH"] = os.pathsep.join([*first, str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONWARNINGS", None)
    return env


def _spec(client: str, workload: str, server: BenchServer, sizes: Sizes, port: int) -> dict[str, Any]:
    return {
        "client": client,
        "workload": workload,
        "host": server.host,
        "port": port,
        "ca": server.ca_file,
        "sizes": sizes.__dict__,
        "timeout": sizes.timeout,
        "small_path": SMALL_PATH,
        "small_size": SMALL_SIZE,
        "big_path": BIG_PATH,
        "upload_path": UPLOAD_PATH,
        "upload_file": server.upload_file,
        "body_bytes": sizes.body_bytes,
    }


def run_subprocess(argv: list[str], timeout: float, import_first: Path | None = None) -> dict[str, Any]:
    """Run a worker; its result, or a "stalled" result if it overran *timeout*.

    *import_first*: a directory whose packages shadow the repository's (the
    A/B comparison puts another revision's ``hyper`` there).  It is also the
    working directory, because ``python -m`` puts that first on ``sys.path``.
    """
    proc = subprocess.Popen(
        argv,
        cwd=REPO_ROOT if import_first is None else import_first,
        env=_worker_env(import_first),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"ok": False, "stalled": True, "error": f"stalled: no result after {timeout:.0f} s (killed)"}
    for line in out.splitlines():
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return result
    return {"ok": False, "error": f"exit {proc.returncode}, no result: {err.strip()[-300:]}"}


def run_one(
    client: str,
    workload: str,
    server: BenchServer,
    sizes: Sizes,
    work_dir: Path,
    tls_port: int | None,
    import_first: Path | None = None,
) -> dict[str, Any] | None:
    """One run; ``None`` when *client* has no such workload.

    *import_first* (Python clients only): see :func:`run_subprocess`.
    """
    # Workers report "stalled" themselves when the timed part overruns the
    # timeout; the kill at timeout + grace covers hangs during set-up.
    grace = 10.0
    accepted_before = server.accepted_connections()
    if client == "tls":
        if workload not in ("download", "upload") or tls_port is None:
            return None
        spec = _spec(client, workload, server, sizes, tls_port)
        argv = [sys.executable, "-m", "bench.tlslimit", "client", json.dumps(spec)]
        result = run_subprocess(argv, sizes.timeout + grace)
    elif client in PYTHON_CLIENTS:
        if client == "floor" and workload == "upload":
            return None  # the floor client only downloads (issue 14)
        spec = _spec(client, workload, server, sizes, server.port)
        argv = [sys.executable, "-m", "bench.worker", json.dumps(spec)]
        result = run_subprocess(argv, sizes.timeout + grace, import_first)
    else:
        runner = external.run_h2load if client == "h2load" else external.run_curl
        if client == "curl" and workload == "threads":
            return None
        try:
            outcome = runner(workload, server, sizes, work_dir)
        except subprocess.TimeoutExpired:
            outcome = {"ok": False, "stalled": True, "error": f"stalled: killed after {sizes.timeout:.0f} s"}
        if outcome is None:
            return None
        result = outcome
    _add_rate(result, workload)
    accepted_after = server.accepted_connections()
    if client != "tls" and accepted_before is not None and accepted_after is not None:
        # The status request itself is one accepted connection, and nginx's
        # proxy to the upload sink another.
        result["connections"] = accepted_after - accepted_before - 1 - (workload == "upload")
    return result


def _add_rate(result: dict[str, Any], workload: str) -> None:
    """Requests per second, or MB/s (10^6 bytes) for download and upload."""
    if result.get("ok"):
        scale = 1e6 if workload in ("download", "upload") else 1.0
        result["rate"] = result["amount"] / result["elapsed"] / scale


def _describe(result: dict[str, Any], workload: str) -> str:
    if not result.get("ok"):
        return result.get("error", "failed")
    unit = "MB/s" if workload in ("download", "upload") else "req/s"
    text = f"{result['rate']:,.0f} {unit} ({result['elapsed']:.2f} s)"
    if result.get("rss_growth_kib") is not None:
        text += f", RSS +{result['rss_growth_kib'] / 1024:.1f} MiB"
    return text


# ---------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------


def profile_hyper(
    workloads: list[str], server: BenchServer, sizes: Sizes, work_dir: Path, clock: str
) -> list[str]:
    """Run hyper once per workload under cProfile against *server*; Markdown sections."""
    sections = [
        f"Against {server.name}. Clock: "
        f"{'CPU time of the client process' if clock == 'cpu' else 'wall-clock time'}.",
        "",
    ]
    for workload in workloads:
        path = work_dir / f"hyper-{server.name}-{workload}.prof"
        spec = _spec("hyper", workload, server, sizes, server.port)
        spec["profile"] = str(path)
        spec["profile_clock"] = clock
        log(f"profiling hyper {workload} ({clock} clock) ...")
        result = run_subprocess([sys.executable, "-m", "bench.worker", json.dumps(spec)], sizes.timeout * 3)
        _add_rate(result, workload)
        if not result.get("ok") or not path.exists():
            sections += [f"### {server.name} {workload}", "", f"no profile: {result.get('error')}", ""]
            continue
        sections += [f"### {server.name} {workload} ({_describe(result, workload)} under the profiler)", ""]
        for order in ("tottime", "cumulative"):
            buffer = io.StringIO()
            stats = pstats.Stats(str(path), stream=buffer)
            stats.strip_dirs().sort_stats(order).print_stats(15)
            text = buffer.getvalue()
            start = text.find("   ncalls")
            sections += [f"Top 15 by {order}:", "", "```", text[start:].rstrip(), "```", ""]
    return sections


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark hyper against httpx, niquests, pycurl, curl, h2load, the "
        "pure-Python HTTP/2 floor and the pure-Python TLS limit, "
        "against nginx, nghttpd and h2o on 127.0.0.1.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one run (CI smoke test, < 60 s)")
    parser.add_argument(
        "--only",
        metavar="WORKLOAD",
        help=f"comma-separated workloads (default: all of {','.join(WORKLOADS)})",
    )
    parser.add_argument(
        "--servers",
        metavar="NAMES",
        help=f"comma-separated servers (default: all of {','.join(SERVER_NAMES)})",
    )
    parser.add_argument(
        "--clients",
        metavar="NAMES",
        help=f"comma-separated clients (default: all of {','.join(ALL_CLIENTS)})",
    )
    parser.add_argument("--runs", type=int, help="runs per figure (default 3, or 1 with --quick)")
    parser.add_argument("--output", metavar="FILE", help="write a Markdown report (e.g. bench/RESULTS.md)")
    parser.add_argument("--body-mib", type=int, help="download/upload body size in MiB (default 100)")
    parser.add_argument("--timeout", type=float, help="seconds before a client run counts as stalled")
    parser.add_argument(
        "--budget",
        type=float,
        help="seconds for the whole run; later runs are skipped (default 1800, quick 55)",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="wall",
        choices=("wall", "cpu"),
        help="also profile hyper on each workload (cProfile, top 15); "
        "'--profile cpu' counts only the client's CPU time",
    )
    parser.add_argument("--no-install", action="store_true", help="do not pip-install missing peers")
    args = parser.parse_args(argv)
    for name, allowed in (("only", WORKLOADS), ("clients", ALL_CLIENTS), ("servers", SERVER_NAMES)):
        value = getattr(args, name)
        if value is not None:
            items = [item.strip() for item in value.split(",") if item.strip()]
            unknown = [item for item in items if item not in allowed]
            if unknown or not items:
                parser.error(f"--{name}: unknown {', '.join(unknown) or 'empty list'}; choose from {allowed}")
            setattr(args, name, items)
    if args.runs is not None and not 1 <= args.runs <= 50:
        parser.error("--runs must be between 1 and 50")
    return args


def choose_sizes(args: argparse.Namespace) -> Sizes:
    """The sizes for this run, with the command line overrides."""
    sizes = QUICK if args.quick else FULL
    overrides: dict[str, Any] = {}
    if args.body_mib is not None:
        overrides["body_mib"] = max(1, args.body_mib)
    if args.timeout is not None:
        overrides["timeout"] = max(1.0, args.timeout)
    return Sizes(**{**sizes.__dict__, **overrides}) if overrides else sizes


def nginx_errors(server: BenchServer, limit: int = 10) -> list[str]:
    """Distinct error lines of nginx's error log (e.g. a client's protocol error)."""
    lines: list[str] = []
    for path in server.process.spec.extra_logs:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            serious = any(level in line for level in ("[error]", "[crit]", "[alert]", "[emerg]"))
            # Protocol violations by a client are logged at "info".
            if not serious and "client sent" not in line:
                continue
            # Drop the timestamp and pid so repeats collapse.
            message = line.split("] ", 1)[-1]
            message = message.split(": ", 1)[-1] if message[:1].isdigit() else message
            if message not in lines:
                lines.append(message)
    return lines[:limit]


@contextlib.contextmanager
def tls_limit_server(files: BenchFiles, wanted: bool) -> Iterator[int | None]:
    """The TLS-limit server process for the whole run (its port), if wanted."""
    if not wanted:
        yield None
        return
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.tlslimit", "serve", files.cert.cert_file, files.cert.key_file],
        cwd=REPO_ROOT,
        env=_worker_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], STARTUP_TIMEOUT)
        line = proc.stdout.readline() if ready else ""
        port = int(line.split()[1]) if line.startswith("PORT ") else None
        if port is None:
            log("the TLS-limit server did not start")
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def measure(
    servers: list[BenchServer],
    workloads: list[str],
    runnable: list[str],
    sizes: Sizes,
    runs: int,
    budget: float,
    work_dir: Path,
    tls_port: int | None,
    results: dict[str, Results],
) -> None:
    """Every round: every server, every workload, every client once (into *results*)."""
    measuring_since = time.monotonic()
    for run in range(runs):
        for server in servers:
            server_results = results[server.name]
            for workload in workloads:
                # Rotate the client order between runs so that no client
                # always runs first (or last) after a server warm-up.
                shift = run % max(1, len(runnable))
                order = runnable[shift:] + runnable[:shift]
                for client in order:
                    cell = server_results.setdefault((workload, client), Cell())
                    if cell.skipped is not None or cell.stalled:
                        continue  # a client that stalled once is not waited on again
                    if time.monotonic() - measuring_since > budget:
                        skipped = {"ok": False, "budget": True, "error": "skipped: time budget used up"}
                        cell.runs.append(skipped)
                        continue
                    # A run that fails (not stalls) is tried once more, so
                    # that a flaky peer still gets a figure; every failure
                    # stays in the report.
                    for attempt in range(2):
                        result = run_one(client, workload, server, sizes, work_dir, tls_port)
                        if result is None:
                            cell.skipped = "n/a"
                            break
                        result["run"] = run
                        cell.runs.append(result)
                        label = f"[run {run + 1}/{runs}] {server.name:7}" + (" retry" if attempt else "")
                        log(f"{label} {workload:8} {client:8} {_describe(result, workload)}")
                        if result.get("ok") or result.get("stalled"):
                            break


def _installed_or_required(server: str) -> bool:
    """Whether a default run includes *server*: required ones always, optional ones if installed."""
    if server not in OPTIONAL_SERVERS:
        return True
    try:
        find_binary(server)
    except ServerStartError:
        log(f"{server} is not installed (Debian: apt-get install {server}); running without it")
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m bench``: run the benchmark and print (and write) the report."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    sizes = choose_sizes(args)
    runs = args.runs or (1 if args.quick else 3)
    budget = args.budget or (55.0 if args.quick else 1800.0)
    workloads = args.only or list(WORKLOADS)
    server_names = args.servers or [name for name in SERVER_NAMES if _installed_or_required(name)]
    clients, unavailable = available_clients(args.clients or list(ALL_CLIENTS), not args.no_install)
    details = machine.machine_details()
    runnable = [c for c in clients if c not in unavailable]

    results: dict[str, Results] = {name: {} for name in server_names}
    for server_results in results.values():
        for client, why in unavailable.items():
            for workload in workloads:
                server_results[(workload, client)] = Cell(skipped=why)

    work_dir = pick_work_dir()
    log(f"work dir {work_dir}; starting {', '.join(server_names)} ...")
    servers: list[BenchServer] = []
    profiles: list[str] = []
    server_errors: list[str] = []
    try:
        files = prepare_files(work_dir, sizes.body_bytes)
        for name in server_names:
            servers.append(start_server(name, work_dir, files))
        wants_tls = "tls" in runnable and any(w in ("download", "upload") for w in workloads)
        with tls_limit_server(files, wants_tls) as tls_port:
            # The budget covers the measurements, not a first-time pip install.
            measure(servers, workloads, runnable, sizes, runs, budget, work_dir, tls_port, results)
        if args.profile:
            for server in servers:
                profiles += profile_hyper(workloads, server, sizes, work_dir, args.profile)
    except ServerStartError as exc:
        log(f"cannot start a server: {exc}")
        return 2
    finally:
        for server in servers:
            server.process.stop()
            server_errors += [f"{server.name}: {line}" for line in nginx_errors(server)]
        shutil.rmtree(work_dir, ignore_errors=True)

    duration = time.monotonic() - started
    with contextlib.suppress(OSError):
        details.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    text = report.markdown_report(
        results, workloads, clients, sizes, details, command.strip(), duration, profiles, server_errors, runs
    )
    print(text)
    if args.output:
        Path(args.output).write_text(text)
        log(f"wrote {args.output}")
    # A smoke run must notice when hyper breaks; peers' failures are theirs.
    hyper_failed = [
        f"{server_name} {workload}"
        for server_name, server_results in results.items()
        for (workload, client), cell in server_results.items()
        if client == "hyper" and any(not run.get("ok") and not run.get("budget") for run in cell.runs)
    ]
    if hyper_failed:
        log(f"hyper failed or stalled on: {', '.join(hyper_failed)}")
        return 1
    return 0

"""The runnable examples under ``examples/`` work, run as a user would run them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from hyper.testing import CA_FILE, TestServer

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_PATTERN = REPO_ROOT / "examples" / "worker_pattern.py"
NEGOTIATION = REPO_ROOT / "examples" / "negotiation.py"
SERVER_PUSH = REPO_ROOT / "examples" / "server_push.py"
PING_KEEPALIVE = REPO_ROOT / "examples" / "ping_keepalive.py"
#: One line per worker, e.g. ``worker-0: 23 responses over 1 connection(s), stream ids 1..45``.
WORKER_LINE = re.compile(r"worker-\d+: (\d+) responses over (\d+) connection\(s\), stream ids (\S+)")


def run_example(script: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with this interpreter, warnings as errors, this checkout's hyper first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run(
        [sys.executable, "-W", "error", str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=env,
        check=False,
    )


def check_worker_report(output: str, workers: int, requests: int) -> None:
    lines = output.strip().splitlines()
    worker_lines = [line for line in lines if line.startswith("worker-")]
    assert len(worker_lines) == workers, output
    served = 0
    for line in worker_lines:
        match = WORKER_LINE.fullmatch(line)
        assert match, line
        count, connections = int(match[1]), int(match[2])
        served += count
        # One connection per worker thread: every response came over it.
        assert connections == (1 if count else 0), line
    assert served == requests
    summary = f"OK: {requests} responses from {workers} workers verified byte for byte"
    assert lines[-1].startswith(summary), output


def test_worker_pattern_with_its_own_server() -> None:
    result = run_example(WORKER_PATTERN, "--workers", "3", "--requests", "90", "--in-flight", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    check_worker_report(result.stdout, 3, 90)


def test_worker_pattern_against_a_running_server() -> None:
    with TestServer() as server:
        result = run_example(
            WORKER_PATTERN,
            "--url",
            f"https://127.0.0.1:{server.port}",
            "--ca-file",
            server.ca_file,
            "--workers",
            "4",
            "--requests",
            "200",
        )
    assert result.returncode == 0, result.stdout + result.stderr
    check_worker_report(result.stdout, 4, 200)


def test_worker_pattern_reports_failure_instead_of_hanging() -> None:
    # A bound socket that does not listen: connecting to it is refused, and
    # nobody else can take the port while the test runs.
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        result = run_example(
            WORKER_PATTERN,
            "--url",
            f"https://127.0.0.1:{port}",
            "--ca-file",
            CA_FILE,
            "--requests",
            "10",
            timeout=30,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ConnectError" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("FAILED:")


def test_negotiation_example() -> None:
    result = run_example(NEGOTIATION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines == [
        "TLS server:       HTTP/2 200 b'Hello from hyper.testing!'",
        "cleartext server: HTTP/1.1 b'hello over HTTP/1.1\\n' x2",
        "through proxy:    HTTP/2 200 1000 bytes",
    ]


def test_server_push_example() -> None:
    result = run_example(SERVER_PUSH)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "page: 99 bytes",
        "pushed:    GET /style.css -> 200, 22 bytes",
        "pushed:    GET /app.js -> 200, 23 bytes",
        "cancelled: GET /video.bin",
    ]


def test_ping_keepalive_example() -> None:
    result = run_example(PING_KEEPALIVE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    ping_line, keepalive_line = result.stdout.splitlines()
    assert re.fullmatch(r"ping: 3 answered, slowest in \d+\.\d ms", ping_line), ping_line
    assert keepalive_line == "after idling: status 200, keep-alive thread running: True"

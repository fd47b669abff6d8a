"""The soak benchmark, small enough for CI: 20,000 requests, 4 GOAWAYs, one restart.

Correctness only, never timing: every response is the right one, no thread
is stuck, failures happen only where a GOAWAY or the restart explains them,
and the process holds exactly the descriptors it had before the connection
was opened. The full run is ``python -m bench.soak`` (bench/README.md).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.soak import Soak, SoakConfig, run_soak

CI_SOAK = SoakConfig(
    requests=20_000,
    threads=8,
    goaway_every=5_000,
    restarts=1,
    timeout=30,
    stuck_after=90,
    # A bound, not a target: a loaded 2-core machine does this in well under a minute.
    max_seconds=400,
    samples=10,
)


@pytest.mark.timeout(600)
def test_soak_20000_requests_through_goaways_and_a_restart(tmp_path: Path) -> None:
    result = run_soak(CI_SOAK, work_dir=tmp_path)
    assert result.ok, result.report()
    assert result.completed == CI_SOAK.requests
    assert result.restarts == 1
    # Four GOAWAYs (every 5,000 requests) and a restart: at least 4 connections.
    assert result.connections >= CI_SOAK.requests // CI_SOAK.goaway_every
    assert result.fds_before is not None and result.fds_after == result.fds_before
    # Every retry has a cause the soak accepts; a restart cuts at least one request
    # only if one was in flight, so no count is asserted for it.
    assert all(cause == "goaway-refused" or cause.startswith("restart: ") for cause in result.retries)


def test_soak_config_refuses_a_watchdog_shorter_than_the_timeout() -> None:
    with pytest.raises(ValueError, match="stuck_after"):
        SoakConfig(timeout=30, stuck_after=10)


def test_the_watchdog_reports_a_stuck_thread_with_its_stack() -> None:
    # The soak's watchdog must name a thread that stopped making progress and
    # show where it waits; here a thread parked on an Event plays the stuck one.
    release = threading.Event()

    def parked_forever() -> None:
        release.wait(60)

    server = SimpleNamespace(site=SimpleNamespace(static=b""))
    soak = Soak(SoakConfig(requests=1, threads=1), server)  # type: ignore[arg-type]
    thread = threading.Thread(target=parked_forever, name="soak-0")
    thread.start()
    try:
        now = time.monotonic()
        soak._progress_at = [now - 2 * soak.config.stuck_after]
        soak._finished = [False]
        soak._check_stuck([thread], now)
    finally:
        release.set()
        thread.join(30)
    assert len(soak.result.problems) == 1
    assert "thread 0 stuck" in soak.result.problems[0]
    assert "parked_forever" in soak.result.problems[0]
    assert not soak.result.ok

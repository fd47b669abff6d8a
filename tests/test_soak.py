"""The soak benchmark, small enough for CI: 20,000 requests, 4 GOAWAYs, one restart.

Correctness only, never timing: every response is the right one, no thread
is stuck, failures happen only where a GOAWAY or the restart explains them,
the process holds exactly the descriptors it had before the connection
was opened, dead sessions do not pile up in memory and none is left after
close(). The full run is ``python -m bench.soak`` (bench/README.md).
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.soak import Soak, SoakConfig, run_soak
from bench.soak_stats import Sample, SessionCensus
from hyper.http20.h2_adapters import new_client_connection

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
    # Generous: with replaced sessions freed at once a sample sees 0-2 (the
    # session the server just closed, an error a thread is handling); a
    # reference cycle per reconnect (the bug this guards) piles up past it
    # only over many reconnects, which the full run has.
    dead_session_limit=6,
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
    assert len(result.samples) >= 2
    assert result.max_dead <= CI_SOAK.dead_session_limit
    # After close() and a full collection, none of the run's sessions is left.
    assert result.sessions_left == 0
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


def test_the_census_counts_a_dead_h2_state_held_only_by_a_cycle() -> None:
    # The soak's dead-session count must see garbage the cyclic collector has
    # not reached yet: that is what piled up. An h2 connection refers to
    # itself (its frame dispatch table), so dropping it leaves garbage.
    census = SessionCensus()
    gc.disable()
    try:
        state = new_client_connection()
        assert census.dead() == 1  # no open session uses it
        del state
        assert census.dead() == 1  # unreachable, but still in memory
    finally:
        gc.enable()
    assert census.left() == 0  # a collection frees it


def test_the_soak_fails_when_dead_sessions_pile_up() -> None:
    server = SimpleNamespace(site=SimpleNamespace(static=b""), restarts=0)
    soak = Soak(SoakConfig(requests=1, threads=1, restarts=0, dead_session_limit=2), server)  # type: ignore[arg-type]
    soak._done = 1
    soak.result.samples = [Sample(1, 0.1, None, None, 4, 0, dead=3)]
    soak.result.sessions_left = 1
    soak._finish()
    assert not soak.result.ok
    assert any("3 dead sessions in memory" in p for p in soak.result.problems)
    assert any("still reachable after close()" in p for p in soak.result.problems)

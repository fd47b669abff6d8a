"""bench/crew.py runs the threads workloads' crews: every share runs, failures come back, stuck runs end."""

from __future__ import annotations

import threading

import pytest

from bench.crew import run_crew


def test_every_share_runs_on_a_thread_of_its_own() -> None:
    seen: list[tuple[int, str]] = []
    lock = threading.Lock()

    def work(share: int) -> None:
        with lock:  # guards seen
            seen.append((share, threading.current_thread().name))

    assert run_crew(work, [3, 1, 2], limit=30.0) == []
    assert sorted(share for share, _ in seen) == [1, 2, 3]
    assert len({name for _, name in seen}) == 3
    assert threading.current_thread().name not in {name for _, name in seen}


def test_what_the_threads_raise_is_returned() -> None:
    def work(share: int) -> None:
        if share % 2:
            raise ValueError(f"share {share}")

    errors = run_crew(work, range(4), limit=30.0)
    assert sorted(str(error) for error in errors) == ["share 1", "share 3"]
    assert all(isinstance(error, ValueError) for error in errors)


def test_a_thread_still_running_at_the_limit_ends_the_run() -> None:
    release = threading.Event()
    finished = threading.Event()

    def work(share: int) -> None:
        if share:
            release.wait(30.0)  # held until the test has seen the run end
            finished.set()

    try:
        with pytest.raises(RuntimeError, match="1 of 2 threads still running"):
            run_crew(work, [0, 1], limit=0.01)
    finally:
        release.set()
    assert finished.wait(30.0)  # the stuck thread is let go, not leaked past the test

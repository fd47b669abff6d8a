"""A crew of threads sharing one piece of work, waited for within a bound.

The threads workloads of bench.threads, bench.threads_counts and
bench.worker start one thread per share of the requests, wait for all of
them against one deadline and collect what they raised; this is that, once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

Share = TypeVar("Share")


def run_crew(work: Callable[[Share], None], shares: Sequence[Share], limit: float) -> list[BaseException]:
    """Run ``work(share)`` on a daemon thread of its own for each of ``shares``; wait for them all.

    Returns what the threads raised, in the order they raised it (empty when
    all finished cleanly). Raises :class:`RuntimeError` when a thread is
    still running ``limit`` seconds after the crew started: the run is
    bounded in time whatever the threads do (daemon threads: a stuck one
    does not keep the process alive).
    """
    errors: list[BaseException] = []  # list.append is atomic: no lock needed

    def guarded(share: Share) -> None:
        try:
            work(share)
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller
            errors.append(exc)

    crew = [threading.Thread(target=guarded, args=(share,), daemon=True) for share in shares]
    for thread in crew:
        thread.start()
    deadline = time.monotonic() + limit
    for thread in crew:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(thread.is_alive() for thread in crew)
    if stuck:
        raise RuntimeError(f"{stuck} of {len(crew)} threads still running after {limit:g} s")
    return errors

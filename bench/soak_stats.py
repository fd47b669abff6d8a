"""Process figures the soak samples: resident memory and open file descriptors.

Both read ``/proc/self`` (Linux); on macOS the descriptors come from
``/dev/fd`` and RSS from ``resource`` (the peak, which still shows growth).
A platform with neither gives ``None``, and the soak reports "unknown"
rather than guessing.
"""

from __future__ import annotations

import gc
import os
import sys
import weakref
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One sample: how far the soak was and what the process held."""

    done: int
    seconds: float
    rss_bytes: int | None
    fds: int | None
    #: h2 connection states (``h2.connection.H2Connection``) in memory, freed
    #: or not: 1-2 when replaced connections are released promptly; a count
    #: that climbs means they wait for the cyclic garbage collector.
    sessions: int
    #: Python objects' memory blocks (``sys.getallocatedblocks()``): flat
    #: while RSS grows means the growth is below Python (allocator, OpenSSL).
    blocks: int
    #: Dead sessions: h2 connection states of the soak still in memory that
    #: no open session uses (closed, replaced, or from a failed connect),
    #: counted without collecting. Reference counting frees them at once
    #: unless a reference cycle holds them; 1-2 is normal (the current
    #: session just closed by the server, an error a thread is handling).
    dead: int = 0

    @property
    def rss_mib(self) -> float:
        """RSS in MiB (NaN when unknown)."""
        return float("nan") if self.rss_bytes is None else self.rss_bytes / 2**20


def resident_bytes() -> int | None:
    """The current resident set size of this process, in bytes."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        # Second field: resident pages.
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    try:
        import resource
    except ImportError:  # Windows
        return None
    # ru_maxrss is in bytes on macOS (the peak, not the current size).
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def allocated_blocks() -> int:
    """Memory blocks held by Python objects right now."""
    return sys.getallocatedblocks()


def live_sessions() -> int:
    """How many h2 connection states exist (in use, draining, or garbage not yet collected)."""
    import h2.connection

    return sum(1 for obj in gc.get_objects() if isinstance(obj, h2.connection.H2Connection))


class SessionCensus:
    """Counts the HTTP/2 sessions made after it was created: dead ones, and any left at the end.

    Sessions and h2 states that already existed (other connections of the
    same process, as in the test suite) are remembered, weakly, and never
    counted. Counting walks ``gc.get_objects()``, which also lists garbage
    not yet collected: that is the point, a cycle shows up as a dead session.
    """

    def __init__(self) -> None:
        """Collect once, then note what exists already."""
        import h2.connection

        from hyper.http20.session import H2Session

        self._session_type = H2Session
        self._state_type = h2.connection.H2Connection
        gc.collect()  # garbage from before the run (h2 self-tests at import) is not the soak's
        self._before: weakref.WeakSet[object] = weakref.WeakSet(self._ours())

    def _ours(self) -> list[object]:
        """Our client-side h2 states and our sessions, made since the census began."""
        before = getattr(self, "_before", ())
        found: list[object] = []
        for obj in gc.get_objects():
            if isinstance(obj, self._session_type) or (
                isinstance(obj, self._state_type) and getattr(obj.config, "client_side", False)
            ):
                if obj not in before:
                    found.append(obj)
        return found

    def dead(self) -> int:
        """h2 states in memory that no open session uses (collectable or not)."""
        objects = self._ours()
        states = sum(1 for obj in objects if isinstance(obj, self._state_type))
        open_sessions = sum(
            1 for obj in objects if isinstance(obj, self._session_type) and obj.fileno() != -1
        )
        return max(0, states - open_sessions)

    def left(self) -> int:
        """Sessions and h2 states still reachable after a full collection (after close(): a leak)."""
        gc.collect()
        return len(self._ours())


def open_fds() -> int | None:
    """How many file descriptors this process has open."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(directory):
            # listdir itself opens one descriptor, which it lists: not counted.
            return len(os.listdir(directory)) - 1
    return None

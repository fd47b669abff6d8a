"""Process figures the soak samples: resident memory and open file descriptors.

Both read ``/proc/self`` (Linux); on macOS the descriptors come from
``/dev/fd`` and RSS from ``resource`` (the peak, which still shows growth).
A platform with neither gives ``None``, and the soak reports "unknown"
rather than guessing.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    #: Bytes the C allocator holds free (glibc's ``mallinfo2().fordblks``:
    #: freed, not given back to the system), ``None`` where unknown. RSS
    #: growing with this and nothing else is allocator fragmentation.
    malloc_free: int | None = None

    @property
    def malloc_free_mib(self) -> float:
        """``malloc_free`` in MiB (NaN when unknown)."""
        return float("nan") if self.malloc_free is None else self.malloc_free / 2**20

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


class _MallInfo2(ctypes.Structure):
    # glibc's struct mallinfo2 (glibc 2.33 and later): ten size_t fields.
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _find_mallinfo2() -> Any:
    """glibc's ``mallinfo2``, or ``None`` (another C library, an older glibc, not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        function = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    function.restype = _MallInfo2
    function.argtypes = []
    return function


_MALLINFO2 = _find_mallinfo2()


def malloc_free_bytes() -> int | None:
    """Bytes glibc's allocator holds free in its arenas (all threads'), or ``None`` if unknown.

    Read only, for the report: nothing here trims or tunes the allocator.
    """
    if _MALLINFO2 is None:
        return None
    return int(_MALLINFO2().fordblks)


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

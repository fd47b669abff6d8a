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


def open_fds() -> int | None:
    """How many file descriptors this process has open."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(directory):
            # listdir itself opens one descriptor, which it lists: not counted.
            return len(os.listdir(directory)) - 1
    return None

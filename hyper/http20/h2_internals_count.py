"""The fence's count of our open streams: h2's walk, made once per change instead of per request.

Part of the fence (:mod:`hyper.http20.h2_internals`): only the fence modules
name h2's private internals. RFC 9113 section 5.1.2 bounds how many streams
we may have open (the server's SETTINGS_MAX_CONCURRENT_STREAMS), and h2
counts them by walking every stream it holds, moving the closed ones to its
record of closed streams as it goes (that record decides how a late frame on
them is treated, section 5.1). The session asks before every request, so a
burst of 100 requests made that walk 100 times over up to 100 streams:
O(n^2), most of the cost of opening a stream in a burst.

:class:`OpenStreamCount` keeps the walk's answer while nothing but our own
fast opens (:func:`~hyper.http20.h2_internals.open_request_stream`) changed
h2's streams. After one walk no closed stream is left in h2's table, and a
fast open adds one stream that counts (OPEN or HALF_CLOSED_LOCAL, section
5.1): so the cached count + 1, with nothing to move, is exactly what the
next walk would find and do. Whatever else may move a stream's state (every
frame received, a reset, our END_STREAM, h2's own send path, GOAWAY) calls
:meth:`OpenStreamCount.forget`, and the next question walks again. The
number of h2's streams is checked on every question too, as a guard.
``tests/test_open_stream_count.py`` compares it with h2's own walk after
every step of many mixed sequences.
"""

from __future__ import annotations

from collections.abc import Callable

import h2.connection


class OpenStreamCount:
    """h2's ``open_outbound_streams`` of one client connection, side effect included, cached.

    :param walk: the count that walks h2's streams (the fence's
        :func:`~hyper.http20.h2_internals.open_outbound_streams`), or
        ``None`` for h2's own property, asked every time (the fast paths
        are off: public API only, nothing cached).
    """

    __slots__ = ("_conn", "_walk", "_count", "_streams", "cached")

    def __init__(
        self, conn: h2.connection.H2Connection, walk: Callable[[h2.connection.H2Connection], int] | None
    ) -> None:
        self._conn = conn
        self._walk = walk
        # The walk's answer plus our fast opens since; None: walk again.
        self._count: int | None = None
        # len(h2's streams) that count goes with (the guard).
        self._streams = 0
        #: The count is used between walks (the fast paths are on for this
        #: connection). A plain field, fixed for the connection's life: the
        #: core asks once per request.
        self.cached = walk is not None

    def get(self) -> int:
        """How many of our streams count against the server's limit now (h2's answer)."""
        walk = self._walk
        if walk is None:
            return self._conn.open_outbound_streams
        count = self._count
        streams = len(self._conn.streams)
        if count is None or streams != self._streams:
            count = self._count = walk(self._conn)
            # The walk moved the closed streams out: the table is smaller now.
            self._streams = len(self._conn.streams)
        return count

    def opened(self) -> None:
        """A fast open added one stream, which counts (a new request, section 5.1.2)."""
        if self._count is not None:
            self._count += 1
            self._streams += 1

    def forget(self) -> None:
        """Something may have changed a stream's state: the next question walks h2's streams."""
        self._count = None

"""Upload runs whose payload the session read in place: the core's half (window debit, frame headers).

:class:`CoreFileRuns` is a base of :class:`~hyper.http20.core.H2Core`. A
file body may be read straight into the payload slots of a buffer laid out
as DATA frames (:mod:`hyper.common.file_body`,
:func:`hyper.http20.data_frames.payload_slots`), outside the session's
state lock. Under the lock the core then debits both send windows for what
fits them (RFC 9113 section 6.9.1), writes the frame headers into the gaps
and queues the frames as one piece. Sans-I/O, like the rest of the core.
"""

from __future__ import annotations

from typing import Any

import h2.connection

from .data_frames import frame_read_run
from .h2_connections import AdaptedH2Connection
from .h2_internals_count import OpenStreamCount
from .h2_internals_steps import STEPS_PROBLEM


class CoreFileRuns:
    """DATA runs framed in a buffer the caller filled (a base of the core)."""

    # Set by H2Core.__init__ (and its methods, used here).
    _h2: h2.connection.H2Connection
    _open_count: OpenStreamCount

    def send_window(self, stream_id: int) -> int:  # pragma: no cover - H2Core's own is used
        raise NotImplementedError

    def _queue_frames(self, pieces: list[Any]) -> None:  # pragma: no cover - H2Core's own is used
        raise NotImplementedError

    def framed_runs_available(self) -> bool:
        """True when :meth:`send_framed_run` can frame runs (the fast paths are on)."""
        return STEPS_PROBLEM is None and type(self._h2) is AdaptedH2Connection

    def send_framed_run(
        self, stream_id: int, buffer: bytearray, count: int, frame_payload: int
    ) -> int | None:
        """Queue as much of the ``count`` payload bytes laid out in ``buffer`` as the windows allow.

        ``buffer`` holds them in the slots of
        :func:`~hyper.http20.data_frames.payload_slots` for ``frame_payload``.
        Returns how many were queued (the first ones, in order: 0 when a
        window is shut), or ``None`` (nothing queued) when they cannot be
        framed that way: the fast paths are off, h2's state is not a plain
        sending one, or a SETTINGS since the layout lowered the frame size
        limit below ``frame_payload`` (RFC 9113 section 4.2); the caller
        then sends the slots through :meth:`send_body`. The queued frames
        are a view of ``buffer``: it must stay unchanged until sent.
        """
        self._open_count.forget()  # the fence's debit may not change states, but h2's view is re-read
        # A SETTINGS change may leave a window below zero (section 6.9.2):
        # then nothing may be sent.
        total = max(0, min(self.send_window(stream_id), count))
        if not total:
            return 0
        if frame_payload > self._h2.max_outbound_frame_size:
            return None
        piece = frame_read_run(self._h2, stream_id, buffer, total, frame_payload)
        if piece is None:
            return None
        self._queue_frames([piece])
        return total

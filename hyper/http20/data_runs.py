"""Runs of DATA frames: consecutive plain DATA frames of one stream, delivered as one event.

The frame splitter (:class:`~hyper.http20.h2_adapters.FrameSplitter`)
accounts for each plain DATA frame on its own, with h2's bookkeeping, and
gathers the payloads of a run here: one ``DataReceived`` event for the run,
instead of one per 16 KiB frame. Its ``data`` is not bytes but a list of
the payloads, as views of the buffer the bytes were received in: nothing is
copied here. The core buffers the views as they are
(:meth:`~hyper.http20.core_bodies.CoreBodies._on_data`) and copies them once,
when the application takes them; the session keeps the receive buffer's
bytes under those views intact until then, or copies the views out before it
reads over them (see :mod:`hyper.http20.session_wire`). Runs once per DATA
frame; nothing here touches h2's internals.
"""

from __future__ import annotations

from typing import Any

import h2.events

#: A run of DATA frames is delivered once it holds this much. When runs
#: were joined into one bytes object, runs longer than 32 KiB made the
#: allocator return and re-fault memory; views allocate nothing, so a run
#: now goes on to the end of what one read brought (the session reads at
#: most 512 KiB at a time), and the core's per-event steps (window
#: bookkeeping, buffering, credit) run about once per read instead of once
#: per 32 KiB. The bound only keeps a run's list of views finite.
RUN_BYTES = 1024 * 1024
#: A run whose payloads average fewer bytes than this is joined into one
#: bytes object instead of being handed on as views: a view object costs
#: 184 bytes however little it shows, so a server sending 1-byte DATA frames
#: would make the 16 MiB of body the windows let it buffer cost gigabytes.
#: At this average the views cost at most a fifth more than the bytes.
MIN_VIEW_AVERAGE = 1024


class DataRun:
    """Consecutive plain DATA frames of one stream, delivered as one event.

    Each frame is accounted for on its own (windows, content-length); only
    the payloads are joined, with one copy out of the receive buffer, and one
    event (and one buffered piece) stands for the run.
    """

    __slots__ = ("stream", "pieces", "size")

    def __init__(self) -> None:
        # h2's stream the run is on (from the fence), None between runs.
        self.stream: Any = None
        # Views of the receive buffer, handed on uncopied by flush().
        self.pieces: list[memoryview] = []
        self.size = 0

    def add(self, payload: memoryview) -> None:
        """Add one frame's payload, already accounted for, to the run."""
        self.pieces.append(payload)
        self.size += len(payload)

    def add_payloads(self, view: memoryview, bounds: list[int], events: list[h2.events.Event]) -> None:
        """Add the payloads at ``bounds`` (start, stop, start, stop...) of ``view``, all accounted for.

        Each time the run holds :data:`RUN_BYTES` it is delivered (to
        ``events``) and goes on, on the same stream.
        """
        pieces = self.pieces
        size = self.size
        for index in range(0, len(bounds), 2):
            start, stop = bounds[index], bounds[index + 1]
            pieces.append(view[start:stop])
            size += stop - start
            if size >= RUN_BYTES:
                self.size = size
                stream = self.stream
                self.flush(events)
                self.stream = stream
                pieces = self.pieces
                size = 0
        self.size = size

    def flush(self, events: list[h2.events.Event]) -> None:
        """Append the run's one ``DataReceived`` to ``events`` (if any) and start anew.

        The event's ``data`` is the list of payload views (see the module
        docstring), or their bytes joined when the frames are tiny (see
        :data:`MIN_VIEW_AVERAGE`); ``flow_controlled_length`` is their total,
        as the frames have no padding (RFC 9113 section 6.1).
        """
        if self.pieces:
            assert self.stream is not None
            # h2 types ``data`` as bytes; this event never leaves hyper's core.
            data: Any = self.pieces
            if len(data) * MIN_VIEW_AVERAGE > self.size:
                # Tiny frames: one copy now, as one bytes object, costs less
                # than keeping a view object per frame (see MIN_VIEW_AVERAGE).
                data = b"".join(data)
            events.append(
                h2.events.DataReceived(
                    stream_id=self.stream.stream_id, data=data, flow_controlled_length=self.size
                )
            )
            self.pieces = []
            self.size = 0
        self.stream = None

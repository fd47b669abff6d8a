"""Runs of DATA frames: consecutive plain DATA frames of one stream, delivered as one event.

The frame splitter (:class:`~hyper.http20.h2_adapters.FrameSplitter`)
accounts for each plain DATA frame on its own, with h2's bookkeeping, and
gathers the payloads of a run here: one copy out of the receive buffer and
one ``DataReceived`` event (one buffered piece) for the run, instead of one
per 16 KiB frame. Runs once per DATA frame; nothing here touches h2's
internals.
"""

from __future__ import annotations

from typing import Any

import h2.events

#: A run of DATA frames is delivered once it holds this much. Longer runs
#: meant fewer, larger pieces held while unread, and at 64 KiB the allocator
#: began to return and re-fault memory: four times the page faults of 16 KiB
#: pieces (one 512 KiB piece per socket read was worse still).
RUN_BYTES = 32 * 1024


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
        # Views of the receive buffer: copied once, by flush().
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
        """Append the run's one ``DataReceived`` to ``events`` (if any) and start anew."""
        if self.pieces:
            pieces = self.pieces
            data = pieces[0].tobytes() if len(pieces) == 1 else b"".join(pieces)
            assert self.stream is not None
            events.append(
                h2.events.DataReceived(
                    stream_id=self.stream.stream_id, data=data, flow_controlled_length=self.size
                )
            )
            self.pieces = []
            self.size = 0
        self.stream = None

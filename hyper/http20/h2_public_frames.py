"""Frames through h2's public API, one whole frame at a time: the splitter's mode with the fast paths off.

:class:`~hyper.http20.h2_adapters.FrameSplitter` uses these methods when the
fence (:mod:`hyper.http20.h2_internals`) has the fast paths off, or for a
connection not built with its internals. Two things are still done here
rather than by h2, because h2 4.x disagrees with RFC 9113 on them:

* GOAWAY is read here and never shown to h2, which would close the whole
  connection at once: section 6.8 lets the server finish the streams up to
  its last_stream_id;
* HEADERS on one of our streams that h2 already closed and dropped (a
  response in flight when we reset the stream) is decoded, to keep the HPACK
  state, and ignored (see :mod:`hyper.http20.forgotten_streams`).
"""

from __future__ import annotations

import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from . import h2_internals as fence
from .forgotten_streams import ForgottenBlock, h2_forgot
from .h2_connections import PublicH2Connection

#: RFC 9113 section 4.1: every frame starts with a 9-byte header.
FRAME_HEADER = 9
#: Frame types (section 6) and flags this mode looks at.
DATA_FRAME = 0x0
HEADERS_FRAME = 0x1
PUSH_PROMISE_FRAME = 0x5
GOAWAY_FRAME = 0x7
CONTINUATION_FRAME = 0x9
END_HEADERS = 0x4


class DataOnClosedStream(h2.events.Event):
    """Not an h2 event: h2 took DATA on a stream it had closed, and delivered none of it.

    RFC 9113 section 6.9: the bytes still count against the connection
    window. h2 counts them; hyper's window manager must too, or it believes
    the window more open than h2 (and the server) do. ``credited_by_h2`` is
    the connection credit h2 gave back on its own for them (public mode;
    the fence's adaptation keeps it 0, see h2_internals.install_adaptations).
    """

    def __init__(self, stream_id: int, flow_controlled_length: int, credited_by_h2: int) -> None:
        self.stream_id = stream_id
        self.flow_controlled_length = flow_controlled_length
        self.credited_by_h2 = credited_by_h2


class PublicFrames:
    """The public-API half of the frame splitter (mixed into FrameSplitter)."""

    # Set by FrameSplitter.__init__ (see there).
    _conn: h2.connection.H2Connection
    _block_open: bool
    _forgotten_block: ForgottenBlock | None

    def _public_frame(
        self, whole: memoryview, kind: int, flags: int, stream_id: int, events: list[h2.events.Event]
    ) -> None:
        """One whole frame through h2's public API (the fast paths are off)."""
        goaway = kind == GOAWAY_FRAME and stream_id == 0 and len(whole) >= FRAME_HEADER + 8
        if goaway and not self._block_open:
            # h2 closes the connection on GOAWAY and refuses every later
            # frame; RFC 9113 6.8 lets the server finish the streams up to
            # last_stream_id, so h2 is not told. The core opens no more streams.
            event = h2.events.ConnectionTerminated()
            code = int.from_bytes(whole[13:17], "big")
            try:
                event.error_code = h2.errors.ErrorCodes(code)
            except ValueError:
                event.error_code = code
            event.last_stream_id = int.from_bytes(whole[9:13], "big") & 0x7FFFFFFF
            event.additional_data = whole[17:].tobytes() or None
            events.append(event)
            return
        if self._forgotten_block is not None or (
            # A HEADERS inside another header block is h2's to refuse (RFC 9113 6.10).
            kind == HEADERS_FRAME
            and not self._block_open
            and h2_forgot(self._conn, stream_id, internal=False)
        ):
            self._public_forgotten_headers(whole, kind, flags, stream_id, events)
            return
        if kind in (HEADERS_FRAME, PUSH_PROMISE_FRAME):
            self._block_open = not flags & END_HEADERS
        elif kind == CONTINUATION_FRAME and flags & END_HEADERS:
            self._block_open = False
        if kind != DATA_FRAME:
            self._h2_receive(whole.tobytes(), events)
            return
        window = self._conn.inbound_flow_control_window
        first = len(events)
        self._h2_receive(whole.tobytes(), events)
        self._swallowed_data(events, first, stream_id, len(whole) - FRAME_HEADER, window)

    def _swallowed_data(
        self, events: list[h2.events.Event], first: int, stream_id: int, size: int, window: int
    ) -> None:
        """Report a DATA frame h2 took without delivering it (its stream was closed).

        ``events[first:]`` are the frame's events, ``size`` its flow-controlled
        length (the whole payload, padding included: RFC 9113 section 6.1),
        ``window`` h2's connection window before it.
        """
        for index in range(first, len(events)):
            if type(events[index]) is h2.events.DataReceived:
                return  # delivered: the core counts it with the stream's body
        credited = self._conn.inbound_flow_control_window - (window - size)
        events.append(DataOnClosedStream(stream_id, size, credited))

    def _h2_receive(self, frame: bytes, events: list[h2.events.Event]) -> None:
        """One whole frame to h2's public ``receive_data``."""
        try:
            events.extend(self._conn.receive_data(frame))
        except h2.exceptions.ProtocolError:
            # h2 queued a GOAWAY of its own; the core sends hyper's, once.
            if isinstance(self._conn, PublicH2Connection):
                self._conn.withdraw_goaway()
            raise

    def _public_forgotten_headers(
        self, whole: memoryview, kind: int, flags: int, stream_id: int, events: list[h2.events.Event]
    ) -> None:
        """Public mode: collect a header block on a stream h2 dropped, and absorb it once whole."""
        block = self._forgotten_block
        if block is None:
            block = self._forgotten_block = ForgottenBlock(stream_id)
            self._block_open = True  # only its CONTINUATIONs may follow (RFC 9113 6.10)
        complete = block.add(whole.tobytes(), kind, flags, stream_id)
        if complete is None:
            return
        self._forgotten_block = None
        self._block_open = False
        if not fence.absorb_headers_on_forgotten_stream(self._conn, block.stream_id, complete):
            # The internals are not there to decode it: h2 refuses the block,
            # a connection error, as it would have without the splitter.
            for frame in block.raw_frames:
                self._h2_receive(frame, events)

"""Where hyper adapts h2 4.x and hpack: RFC fixes and speed, in one place.

Each adaptation is small and says why. They change behaviour only where h2
disagrees with RFC 9113 or spends time on work nobody asked for; everything
else is h2 as shipped. Every private name of h2 they need is reached through
:mod:`hyper.http20.h2_internals` (the fence): when its self-test fails, or
``HYPER_FAST_PATHS=0``, connections are built and fed with h2's public API
only (see :class:`FrameSplitter`). The connections themselves and the send
fast paths live in :mod:`hyper.http20.h2_connections` (re-exported here),
the joining of DATA frame runs into one event in :mod:`hyper.http20.data_runs`,
the frames of the public-API mode in :mod:`hyper.http20.h2_public_frames`.
"""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import hpack.exceptions
import hyperframe.frame

from . import h2_internals as fence
from .data_runs import DataRun
from .forgotten_streams import ForgottenBlock, h2_forgot
from .h2_connections import AdaptedH2Connection
from .h2_connections import new_client_connection as new_client_connection
from .h2_connections import send_plain_data as send_plain_data
from .h2_connections import send_request_headers as send_request_headers
from .h2_internals_data import receive_stream_window_update
from .h2_public_frames import END_HEADERS as _END_HEADERS
from .h2_public_frames import FRAME_HEADER as _FRAME_HEADER
from .h2_public_frames import HEADERS_FRAME as _HEADERS_FRAME
from .h2_public_frames import DataOnClosedStream as DataOnClosedStream
from .h2_public_frames import PublicFrames


class StreamMalformed(h2.events.Event):
    """Not an h2 event: h2 raised a connection error for what is an error of one stream."""

    def __init__(self, stream_id: int, message: str, flow_controlled_length: int = 0) -> None:
        self.stream_id = stream_id
        self.message = message
        self.flow_controlled_length = flow_controlled_length


#: A frame header in one unpack: (length << 8 | type, flags, R bit and stream id).
_HEAD = struct.Struct(">IBL")
_DATA_FRAME = 0x0
_END_STREAM = 0x1
_PADDED = 0x8
_WINDOW_UPDATE_FRAME = 0x8
_PRIORITY = 0x20


class FrameSplitter(PublicFrames):
    """Cuts received bytes into frames and hands them to h2, DATA mostly not.

    A download is thousands of 16 KiB DATA frames, and h2's generic path
    (hyperframe objects, flag sets, two copies of the payload, a state machine
    step per frame) cost more than decrypting them. An unpadded DATA frame on
    a stream that is receiving is handled here instead, with exactly h2's
    bookkeeping (connection and stream windows, content-length; the stream's
    own state machine when it ends the stream), and its payload is copied
    once, straight from the receive buffer. A whole HEADERS frame without
    padding or priority on such a stream skips hyperframe and goes straight
    to the HPACK decoder and the stream's state machine. Everything else,
    including frames that are padded, empty, split into CONTINUATIONs or
    arrive in an unexpected state, goes through h2 as shipped. The length of
    every frame is checked on its 9-byte header, so a server announcing
    16 MiB and going silent (or answering in HTTP/1.1, whose "HTT" reads as
    a 4.7 MB length) fails at once instead of at the timeout.

    When the fence has the fast paths off, every frame goes to h2's public
    ``receive_data`` one whole frame at a time; the checks on raw bytes
    stay, and GOAWAY is read here so the streams it spares can finish
    (RFC 9113 section 6.8). A frame h2 refuses is then a connection error,
    which RFC 9113 section 5.4 allows for any stream error.

    In both modes, HEADERS on one of our streams that h2 has closed and
    dropped (a response still in flight when we reset the stream) is
    decoded and ignored instead of failing the connection (see
    :mod:`hyper.http20.forgotten_streams`).
    """

    #: Take plain DATA and HEADERS frames past h2's generic path (tests turn
    #: it off to compare both paths).
    fast_path = True
    #: On that path, hand a plain response's HEADERS and last DATA frame on
    #: as records (:mod:`hyper.http20.receive_records`), not h2's events
    #: (tests turn it off to compare both).
    records = True

    def __init__(self, conn: h2.connection.H2Connection) -> None:
        self._conn = conn
        # The fenced internals are used for connections built with them only.
        self._internal = type(conn) is AdaptedH2Connection
        self._slow = fence.SlowFrameBuffer(server=False) if self._internal else None
        self._max_frame_size = conn.max_inbound_frame_size
        # (stream id, reason) of stream errors found on raw bytes.
        self._stream_errors: list[tuple[int, str]] = []
        # Public mode: a header block is open (HEADERS or PUSH_PROMISE without
        # END_HEADERS); only its CONTINUATION frames may follow (RFC 9113 6.10).
        self._block_open = False
        # The start of a frame that has not fully arrived.
        self._partial = bytearray()
        # Public mode: the header block of HEADERS on a stream h2 dropped,
        # while its CONTINUATIONs arrive (see hyper.http20.forgotten_streams).
        self._forgotten_block: ForgottenBlock | None = None
        # The run of plain DATA frames being joined; one object for every
        # read (a new one per read cost an allocation per response).
        self._run = DataRun()

    def receive(self, data: Any) -> tuple[list[Any], h2.exceptions.ProtocolError | None]:
        """Process ``data``: the events of its whole frames, and a connection error if any.

        The events of frames before a connection error are kept (and no
        GOAWAY is queued: the caller does that). h2's errors about one
        malformed response become :class:`StreamMalformed` (RFC 9113 8.1.1).
        With :attr:`records` on, a plain response's HEADERS and last DATA
        frame taken on the fast path come as
        :mod:`hyper.http20.receive_records` tuples instead of the h2 events
        they stand for (h2's bookkeeping is the same).
        """
        events: list[Any] = []
        self._max_frame_size = self._conn.max_inbound_frame_size
        if self._slow is not None:
            self._slow.max_frame_size = self._max_frame_size
        try:
            self._split(memoryview(data), events)
        except h2.exceptions.ProtocolError as exc:
            return events, exc
        finally:
            for stream_id, message in self._stream_errors:
                if self._reset_for_stream_error(stream_id):
                    events.append(StreamMalformed(stream_id, message))
            self._stream_errors.clear()
        return events, None

    def _reset_for_stream_error(self, stream_id: int) -> bool:
        """Reset ``stream_id`` with PROTOCOL_ERROR if h2 still knows it; True if it did."""
        if self._internal:
            if not fence.has_stream(self._conn, stream_id):
                return False
            fence.reset_closed_stream(self._conn, stream_id)
            return True
        try:
            self._conn.reset_stream(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        except h2.exceptions.ProtocolError:
            return False  # closed or unknown: nothing to reset
        return True

    def _split(self, view: memoryview, events: list[h2.events.Event]) -> None:
        offset = 0
        end = len(view)
        if self._partial:
            offset = self._complete_partial(view, events)
            if self._partial:
                return  # still incomplete: all of view went into it
        run = self._run  # empty between calls (flush below empties it)
        try:
            offset = self._split_whole_frames(view, offset, end, run, events)
        finally:
            # Frames already accounted for must reach the core even when a
            # later frame in the same read is a connection error. A run
            # holds payloads only while it is on a stream (DataRun.flush):
            # none open, nothing to deliver, and the call is skipped.
            if run.stream is not None:
                run.flush(events)
        if offset < end:
            self._partial += view[offset:]

    def _split_whole_frames(
        self, view: memoryview, offset: int, end: int, run: DataRun, events: list[h2.events.Event]
    ) -> int:
        """Process the whole frames of ``view`` from ``offset``; return where the rest starts."""
        unpack = _HEAD.unpack_from
        max_size = self._max_frame_size
        # Whole HEADERS and DATA frames may skip h2's generic path (the
        # public-API mode has no such path: _frame hands it every frame).
        slow = self._slow
        fast = self.fast_path and slow is not None
        records = self.records
        conn = self._conn
        # Whether a header block is open (only its CONTINUATIONs may follow):
        # asked once, and again only after a frame took h2's path (the fast
        # steps never open or close a block). None: not asked yet.
        headers_pending: bool | None = None
        while end - offset >= _FRAME_HEADER:
            head, flags, stream_id = unpack(view, offset)
            length = head >> 8
            if length > max_size:
                self._checked_length(view[offset : offset + 40])  # raises, saying why
            if end - offset < _FRAME_HEADER + length:
                break
            kind = head & 0xFF
            if not kind and length and not flags & (_PADDED | _END_STREAM):
                # A plain DATA frame: on a stream that may take the fast path,
                # it starts (or continues) a run of such frames.
                stream_id &= 0x7FFFFFFF
                if run.stream is None or run.stream.stream_id != stream_id:
                    run.flush(events)
                    run.stream = self._fast_stream(stream_id, needs_headers=True)
                if run.stream is not None:
                    offset = self._data_run(view, offset, end, run, events)
                    continue
            if run.stream is not None:  # a run is open only on a stream (DataRun.add_payloads)
                run.flush(events)
            if fast and (
                # The common frames of a response, as _frame would pick them
                # (its other checks concern WINDOW_UPDATE and the public
                # mode), taken here with the header already parsed: a
                # response's HEADERS (END_HEADERS, no padding or priority:
                # RFC 9113 section 6.2) and its DATA (unpadded, not empty,
                # section 6.1), END_STREAM or not.
                (kind == _HEADERS_FRAME and flags & _END_HEADERS and not flags & (_PADDED | _PRIORITY))
                or (kind == _DATA_FRAME and length and not flags & _PADDED)
            ):
                stream_id &= 0x7FFFFFFF  # the reserved bit is ignored (section 4.1)
                # _fast_stream and _fast_frame, written out: this runs for
                # every response (two frames of a small one), and the calls
                # were a tenth of the splitter's cost per response.
                if headers_pending is None:
                    headers_pending = slow.headers_pending  # type: ignore[union-attr]
                stream = (
                    None if headers_pending else fence.receiving_stream(conn, stream_id, kind == _DATA_FRAME)
                )
                if stream is not None:
                    start = offset + _FRAME_HEADER
                    offset = start + length
                    payload = view[start:offset].tobytes()
                    try:
                        if kind == _DATA_FRAME:
                            events.extend(
                                fence.receive_plain_data(
                                    conn, stream, payload, bool(flags & _END_STREAM), records
                                )
                            )
                        else:
                            events.extend(
                                fence.receive_plain_headers(
                                    conn, stream, payload, bool(flags & _END_STREAM), records
                                )
                            )
                    except h2.exceptions.ProtocolError as exc:
                        size = length if kind == _DATA_FRAME else 0
                        self._stream_error_or_raise(stream_id, exc, size, events)
                    continue
            self._frame(view, offset, length, events)
            # A frame on h2's path may open or close a header block: asked again.
            headers_pending = None
            offset += _FRAME_HEADER + length
        return offset

    def _data_run(
        self, view: memoryview, offset: int, end: int, run: DataRun, events: list[h2.events.Event]
    ) -> int:
        """Take the plain DATA frames on ``run.stream`` from ``offset`` (one at least).

        Returns where the next frame starts.

        h2's accounting is done once for all of them when none can fail it
        (the usual case); otherwise frame by frame, so the error belongs to
        the frame that causes it and the frames before it are delivered.
        """
        unpack = _HEAD.unpack_from
        max_size = self._max_frame_size
        stream_id = run.stream.stream_id
        # Where each frame's payload starts and stops, in pairs.
        bounds: list[int] = []
        total = 0
        scan = offset
        while end - scan >= _FRAME_HEADER:
            head, flags, frame_stream = unpack(view, scan)
            length = head >> 8
            stop = scan + _FRAME_HEADER + length
            if (
                head & 0xFF
                or not length
                or flags & (_PADDED | _END_STREAM)
                or frame_stream & 0x7FFFFFFF != stream_id
                or length > max_size
                or stop > end
            ):
                break  # not one of the run: the main loop takes it
            bounds.append(scan + _FRAME_HEADER)
            bounds.append(stop)
            total += length
            scan = stop
        if fence.consume_plain_data_run(self._conn, run.stream, total):
            run.add_payloads(view, bounds, events)
            return scan
        # Some frame of the run breaks a window or content-length: find it.
        for index in range(0, len(bounds), 2):
            start, stop = bounds[index], bounds[index + 1]
            try:
                fence.consume_plain_data(self._conn, run.stream, stop - start)
            except h2.exceptions.ProtocolError as exc:
                run.flush(events)
                self._stream_error_or_raise(stream_id, exc, stop - start, events)
                return stop  # the stream is reset: its later frames take the general path
            run.add_payloads(view, bounds[index : index + 2], events)
        return scan

    def _fast_stream(self, stream_id: int, needs_headers: bool) -> Any:
        """The h2 stream if a frame on it may take the fast path now, else ``None``."""
        if not (self.fast_path and self._slow is not None) or self._slow.headers_pending:
            return None
        return fence.receiving_stream(self._conn, stream_id, needs_headers)

    def _complete_partial(self, view: memoryview, events: list[h2.events.Event]) -> int:
        """Add bytes of ``view`` to the partial frame; process it if whole. Returns bytes taken."""
        partial = self._partial
        taken = 0
        if len(partial) < _FRAME_HEADER:
            taken = min(_FRAME_HEADER - len(partial), len(view))
            partial += view[:taken]
            if len(partial) < _FRAME_HEADER:
                return taken
        length = self._checked_length(bytes(partial[:_FRAME_HEADER]) + view[taken : taken + 31].tobytes())
        more = min(_FRAME_HEADER + length - len(partial), len(view) - taken)
        partial += view[taken : taken + more]
        taken += more
        if len(partial) == _FRAME_HEADER + length:
            # Views of the buffer may outlive this call: a reference cycle
            # in h2 (an exception and its traceback) can keep the frames
            # below us, with their views, alive until the garbage collector
            # runs, and a bytearray with live views cannot be resized
            # (BufferError). So a fresh buffer is in place first, and the
            # old one goes with its last view.
            self._partial = bytearray()
            with memoryview(partial) as whole:
                self._frame(whole, 0, length, events)
            # Usually no view lives on: the same buffer is then reused. A new
            # one per split frame made malloc hand heap back to the system
            # and fault it in again (a 100 MiB download: ~1.5x the page
            # faults and ~4 % more client CPU).
            with contextlib.suppress(BufferError):
                partial.clear()
                self._partial = partial
        return taken

    def _checked_length(self, head: Any) -> int:
        length = int.from_bytes(head[:3], "big")
        if length > self._max_frame_size:
            if bytes(head[:5]) == b"HTTP/":
                raise h2.exceptions.ProtocolError(
                    "server answered in HTTP/1.x, not HTTP/2: "
                    + bytes(head).split(b"\r\n")[0].decode("latin-1")
                )
            raise h2.exceptions.FrameTooLargeError(
                f"frame of {length} bytes announced, our limit is {self._max_frame_size}"
            )
        return length

    def _frame(self, view: memoryview, offset: int, length: int, events: list[h2.events.Event]) -> None:
        kind = view[offset + 3]
        flags = view[offset + 4]
        stream_id = int.from_bytes(view[offset + 5 : offset + 9], "big") & 0x7FFFFFFF
        # RFC 9113 6.10: inside a header block only its CONTINUATIONs may
        # come; anything else goes to the parser that knows the block is open
        # (h2's in fast mode, the public-mode tracking otherwise), which
        # makes it the connection error the section demands.
        block_open = self._slow.headers_pending if self._slow is not None else self._block_open
        if kind == _WINDOW_UPDATE_FRAME and length == 4 and stream_id and not block_open:
            raw = int.from_bytes(view[offset + 9 : offset + 13], "big")
            increment = raw & 0x7FFFFFFF
            if not increment:
                # hyperframe refuses WINDOW_UPDATE 0 while parsing, which h2
                # turns into a connection error; on a stream RFC 9113 6.9
                # makes it a stream error.
                self._stream_errors.append((stream_id, "WINDOW_UPDATE with an increment of 0"))
                return
            if self._slow is not None and raw == increment:
                # An upload waiting for credit takes one of these per window
                # it runs dry (nghttpd: ~200 per 100 MiB); h2's generic path
                # costs ~40 calls each. The fence does h2's exact bookkeeping
                # in the plain case and declines (None) in every other. A set
                # reserved bit goes to h2 too: RFC 9113 6.9 says to ignore it,
                # but hyperframe refuses it (a connection error), and both
                # modes must answer a frame alike.
                credited = receive_stream_window_update(self._conn, stream_id, increment)
                if credited is not None:
                    events.extend(credited)
                    return
        if self._slow is None:
            self._public_frame(view[offset : offset + _FRAME_HEADER + length], kind, flags, stream_id, events)
            return
        if (kind == _DATA_FRAME and length and not flags & _PADDED) or (
            kind == _HEADERS_FRAME and flags & _END_HEADERS and not flags & (_PADDED | _PRIORITY)
        ):
            stream = self._fast_stream(stream_id, needs_headers=kind == _DATA_FRAME)
            if stream is not None:
                payload = view[offset + _FRAME_HEADER : offset + _FRAME_HEADER + length].tobytes()
                self._fast_frame(payload, kind, flags, stream, events)
                return
        frame = self._slow.feed(view[offset : offset + _FRAME_HEADER + length])
        if frame is None:
            return  # the start of a header block, or a frame h2 ignores
        if (
            isinstance(frame, hyperframe.frame.HeadersFrame)
            and h2_forgot(self._conn, frame.stream_id, internal=True)
            and fence.absorb_headers_on_forgotten_stream(self._conn, frame.stream_id, frame.data)
        ):
            return  # HEADERS on a stream we reset, still in flight (RFC 9113 5.1)
        data = isinstance(frame, hyperframe.frame.DataFrame)
        window = self._conn.inbound_flow_control_window if data else 0
        first = len(events)
        try:
            events.extend(fence.receive_frame(self._conn, frame))
            if data:
                self._swallowed_data(events, first, frame.stream_id, length, window)
        except h2.exceptions.ProtocolError as exc:
            if isinstance(frame, hyperframe.frame.PushPromiseFrame):
                # A refused promise left its header block undecoded: the
                # HPACK state is lost, so this is never one stream's error.
                raise
            size = frame.flow_controlled_length if isinstance(frame, hyperframe.frame.DataFrame) else 0
            self._stream_error_or_raise(frame.stream_id, exc, size, events)

    def _fast_frame(
        self, payload: bytes, kind: int, flags: int, stream: Any, events: list[h2.events.Event]
    ) -> None:
        """A whole unpadded DATA frame, or HEADERS without priority, on a receiving ``stream``.

        h2's bookkeeping through the fence; an error h2 would raise for it
        fails that stream or the connection, as h2's own path decides.
        """
        end_stream = bool(flags & _END_STREAM)
        try:
            if kind == _DATA_FRAME:
                events.extend(fence.receive_plain_data(self._conn, stream, payload, end_stream, self.records))
            else:
                events.extend(
                    fence.receive_plain_headers(self._conn, stream, payload, end_stream, self.records)
                )
        except h2.exceptions.ProtocolError as exc:
            size = len(payload) if kind == _DATA_FRAME else 0
            self._stream_error_or_raise(stream.stream_id, exc, size, events)

    def _stream_error_or_raise(
        self, stream_id: int, exc: h2.exceptions.ProtocolError, size: int, events: list[h2.events.Event]
    ) -> None:
        if not _is_stream_error(self._conn, stream_id, exc):
            raise exc
        fence.reset_closed_stream(self._conn, stream_id)
        events.append(StreamMalformed(stream_id, str(exc), size))


def _is_stream_error(
    conn: h2.connection.H2Connection, stream_id: int, exc: h2.exceptions.ProtocolError
) -> bool:
    """A malformed message on one of our open streams, not a broken connection."""
    if isinstance(
        exc,
        (h2.exceptions.FlowControlError, h2.exceptions.DenialOfServiceError, h2.exceptions.StreamClosedError),
    ) or isinstance(exc.__cause__, (hpack.exceptions.HPACKError, IndexError)):
        return False  # flow control and HPACK state are connection-wide
    return (
        stream_id % 2 == 1
        and fence.has_stream(conn, stream_id)
        and stream_id <= conn.highest_outbound_stream_id
    )

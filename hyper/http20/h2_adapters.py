"""Where hyper adapts h2 4.x and hpack: RFC fixes and speed, in one place.

Each adaptation is small and says why. They change behaviour only where h2
disagrees with RFC 9113 or spends time on work nobody asked for; everything
else is h2 as shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.frame_buffer
import h2.stream
import hpack.exceptions
import hpack.hpack
import hyperframe.exceptions
import hyperframe.frame

from . import hpack_cache


class _GracefulGoawayStateMachine(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, except that GOAWAY keeps it open.

    h2 4.x treats a received GOAWAY as the end of the connection and rejects
    every later frame, but RFC 9113 section 6.8 lets the server finish the
    streams up to ``last_stream_id`` (nginx does, after keepalive_requests).
    We stop opening streams ourselves once GOAWAY is seen.
    """

    _transitions = {
        **h2.connection.H2ConnectionStateMachine._transitions,
        (h2.connection.ConnectionState.CLIENT_OPEN, h2.connection.ConnectionInputs.RECV_GOAWAY): (
            None,
            h2.connection.ConnectionState.CLIENT_OPEN,
        ),
    }


def _quiet_repr(frame: hyperframe.frame.Frame) -> str:
    return f"{type(frame).__bases__[0].__name__}(stream_id={frame.stream_id}, flags={sorted(frame.flags)})"


# h2 calls repr() on every frame it receives, for a trace log that is off by
# default; hyperframe's repr hex-dumps payloads and formats every field, which
# cost a tenth of a download and several percent of each small request. The
# frames we hand to h2 are of these subclasses, whose repr is cheap.
_QUIET_FRAMES: dict[type[hyperframe.frame.Frame], type[hyperframe.frame.Frame]] = {
    cls: type(cls.__name__, (cls,), {"__repr__": _quiet_repr, "__slots__": ()})
    for cls in (*hyperframe.frame.FRAMES.values(), hyperframe.frame.ExtensionFrame)
}


class _SlowFrameBuffer(h2.frame_buffer.FrameBuffer):
    """h2's frame buffer, fed one whole frame at a time by :class:`FrameSplitter`.

    It parses every frame the fast path leaves alone and keeps h2's handling
    of header blocks split over CONTINUATION frames.
    """

    #: (stream id, reason) of stream errors found while splitting frames.
    stream_errors: list[tuple[int, str]]

    def __next__(self) -> hyperframe.frame.Frame:
        while self._zero_stream_window_update():
            pass
        try:
            frame = super().__next__()
        except hyperframe.exceptions.InvalidPaddingError as exc:
            # h2's own receive_data converts this one; our frame loop must too.
            raise h2.exceptions.ProtocolError(f"frame with invalid padding: {exc}") from exc
        frame.__class__ = _QUIET_FRAMES.get(frame.__class__, frame.__class__)
        return frame

    def _zero_stream_window_update(self) -> bool:
        # hyperframe refuses WINDOW_UPDATE 0 while parsing, which h2 turns into
        # a connection error; on a stream RFC 9113 6.9 makes it a stream error.
        data = self._data
        if len(data) < 13 or data[3] != 0x8 or int.from_bytes(data[:3], "big") != 4:
            return False
        stream_id = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        if stream_id == 0 or int.from_bytes(data[9:13], "big") & 0x7FFFFFFF:
            return False
        del data[:13]
        self.stream_errors.append((stream_id, "WINDOW_UPDATE with an increment of 0"))
        return True


class StreamMalformed(h2.events.Event):
    """Not an h2 event: h2 raised a connection error for what is an error of one stream."""

    def __init__(self, stream_id: int, message: str, flow_controlled_length: int = 0) -> None:
        self.stream_id = stream_id
        self.message = message
        self.flow_controlled_length = flow_controlled_length


_FRAME_HEADER = 9
_DATA_FRAME = 0x0
_END_STREAM = 0x1
_PADDED = 0x8
_HEADERS_FRAME = 0x1
_CONTINUATION_FRAME = 0x9
_END_HEADERS = 0x4
_PRIORITY = 0x20
_RECEIVING = (h2.stream.StreamState.OPEN, h2.stream.StreamState.HALF_CLOSED_LOCAL)


class FrameSplitter:
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
    """

    #: Take plain DATA and HEADERS frames past h2's generic path (tests turn
    #: it off to compare both paths).
    fast_path = True

    def __init__(self, conn: h2.connection.H2Connection) -> None:
        self._conn = conn
        self._slow = _SlowFrameBuffer(server=False)
        self._slow.stream_errors = []
        self._slow.max_frame_size = conn.max_inbound_frame_size
        # The start of a frame that has not fully arrived.
        self._partial = bytearray()

    def receive(self, data: Any) -> tuple[list[h2.events.Event], h2.exceptions.ProtocolError | None]:
        """Process ``data``: the events of its whole frames, and a connection error if any.

        The events of frames before a connection error are kept (and no
        GOAWAY is queued: the caller does that). h2's errors about one
        malformed response become :class:`StreamMalformed` (RFC 9113 8.1.1).
        """
        events: list[h2.events.Event] = []
        self._slow.max_frame_size = self._conn.max_inbound_frame_size
        try:
            self._split(memoryview(data), events)
        except h2.exceptions.ProtocolError as exc:
            return events, exc
        finally:
            slow = self._slow
            for stream_id, message in slow.stream_errors:
                if stream_id in self._conn.streams:
                    _reset_closed_stream(self._conn, stream_id)
                    events.append(StreamMalformed(stream_id, message))
            slow.stream_errors.clear()
        return events, None

    def _split(self, view: memoryview, events: list[h2.events.Event]) -> None:
        offset = 0
        end = len(view)
        partial = self._partial
        if partial:
            offset = self._complete_partial(view, events)
            if partial:
                return  # still incomplete: all of view went into it
        run = _DataRun()
        try:
            offset = self._split_whole_frames(view, offset, end, run, events)
        finally:
            # Frames already accounted for must reach the core even when a
            # later frame in the same read is a connection error.
            run.flush(events)
        if offset < end:
            partial += view[offset:]

    def _split_whole_frames(
        self, view: memoryview, offset: int, end: int, run: _DataRun, events: list[h2.events.Event]
    ) -> int:
        """Process the whole frames of ``view`` from ``offset``; return where the rest starts."""
        while end - offset >= _FRAME_HEADER:
            length = self._checked_length(view[offset : offset + 40])
            if end - offset < _FRAME_HEADER + length:
                break
            if view[offset + 3] == _DATA_FRAME and length and not view[offset + 4] & (_PADDED | _END_STREAM):
                stream_id = int.from_bytes(view[offset + 5 : offset + 9], "big") & 0x7FFFFFFF
                if run.stream is None or run.stream.stream_id != stream_id:
                    run.flush(events)
                    run.stream = self._fast_stream(stream_id, needs_headers=True)
                if run.stream is not None:
                    try:
                        _consume_plain_data(self._conn, run.stream, length)
                    except h2.exceptions.ProtocolError as exc:
                        run.flush(events)
                        self._stream_error_or_raise(stream_id, exc, length, events)
                    else:
                        run.add(view[offset + _FRAME_HEADER : offset + _FRAME_HEADER + length])
                        if run.size >= _RUN_BYTES:
                            stream = run.stream
                            run.flush(events)
                            run.stream = stream
                    offset += _FRAME_HEADER + length
                    continue
            run.flush(events)
            self._frame(view, offset, length, events)
            offset += _FRAME_HEADER + length
        return offset

    def _fast_stream(self, stream_id: int, needs_headers: bool) -> h2.stream.H2Stream | None:
        """The stream if a frame on it may take the fast path now, else ``None``.

        DATA ``needs_headers``: before the response headers it is h2's to refuse.
        """
        conn = self._conn
        stream = conn.streams.get(stream_id)
        if (
            self.fast_path
            and stream is not None
            and stream.state_machine.state in _RECEIVING
            and (stream.state_machine.headers_received or not needs_headers)
            and not self._slow._headers_buffer
            and conn.state_machine.state is h2.connection.ConnectionState.CLIENT_OPEN
        ):
            return stream
        return None

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
            with memoryview(partial) as whole:
                self._frame(whole, 0, length, events)
            partial.clear()
        return taken

    def _checked_length(self, head: Any) -> int:
        length = int.from_bytes(head[:3], "big")
        if length > self._slow.max_frame_size:
            if bytes(head[:5]) == b"HTTP/":
                raise h2.exceptions.ProtocolError(
                    "server answered in HTTP/1.x, not HTTP/2: "
                    + bytes(head).split(b"\r\n")[0].decode("latin-1")
                )
            raise h2.exceptions.FrameTooLargeError(
                f"frame of {length} bytes announced, our limit is {self._slow.max_frame_size}"
            )
        return length

    def _frame(self, view: memoryview, offset: int, length: int, events: list[h2.events.Event]) -> None:
        conn = self._conn
        kind = view[offset + 3]
        flags = view[offset + 4]
        if (kind == _DATA_FRAME and length and not flags & _PADDED) or (
            kind == _HEADERS_FRAME and flags & _END_HEADERS and not flags & (_PADDED | _PRIORITY)
        ):
            stream_id = int.from_bytes(view[offset + 5 : offset + 9], "big") & 0x7FFFFFFF
            stream = self._fast_stream(stream_id, needs_headers=kind == _DATA_FRAME)
            if stream is not None:
                payload = view[offset + _FRAME_HEADER : offset + _FRAME_HEADER + length].tobytes()
                end_stream = bool(flags & _END_STREAM)
                try:
                    if kind == _DATA_FRAME:
                        events.extend(_receive_plain_data(conn, stream, payload, end_stream))
                    else:
                        events.extend(_receive_plain_headers(conn, stream, payload, end_stream))
                except h2.exceptions.ProtocolError as exc:
                    self._stream_error_or_raise(stream_id, exc, length if kind == _DATA_FRAME else 0, events)
                return
        slow = self._slow
        slow._data += view[offset : offset + _FRAME_HEADER + length]
        frame = next(slow, None)
        if frame is None:
            return  # the start of a header block, or a frame h2 ignores
        try:
            events.extend(conn._receive_frame(frame))
        except h2.exceptions.ProtocolError as exc:
            if isinstance(frame, hyperframe.frame.PushPromiseFrame):
                # A refused promise left its header block undecoded: the
                # HPACK state is lost, so this is never one stream's error.
                raise
            size = frame.flow_controlled_length if isinstance(frame, hyperframe.frame.DataFrame) else 0
            self._stream_error_or_raise(frame.stream_id, exc, size, events)

    def _stream_error_or_raise(
        self, stream_id: int, exc: h2.exceptions.ProtocolError, size: int, events: list[h2.events.Event]
    ) -> None:
        if not _is_stream_error(self._conn, stream_id, exc):
            raise exc
        _reset_closed_stream(self._conn, stream_id)
        events.append(StreamMalformed(stream_id, str(exc), size))


#: A run of DATA frames is delivered once it holds this much. Longer runs
#: meant fewer, larger pieces held while unread, and at 64 KiB the allocator
#: began to return and re-fault memory: four times the page faults of 16 KiB
#: pieces (one 512 KiB piece per socket read was worse still).
_RUN_BYTES = 32 * 1024


class _DataRun:
    """Consecutive plain DATA frames of one stream, delivered as one event.

    Each frame is accounted for on its own (windows, content-length); only
    the payloads are joined, with one copy out of the receive buffer, and one
    event (and one buffered piece) stands for the run.
    """

    __slots__ = ("stream", "pieces", "size")

    def __init__(self) -> None:
        self.stream: h2.stream.H2Stream | None = None
        self.pieces: list[memoryview] = []
        self.size = 0

    def add(self, payload: memoryview) -> None:
        self.pieces.append(payload)
        self.size += len(payload)

    def flush(self, events: list[h2.events.Event]) -> None:
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


def _consume_plain_data(conn: h2.connection.H2Connection, stream: h2.stream.H2Stream, size: int) -> None:
    """h2's accounting for an unpadded DATA frame without END_STREAM on a receiving stream."""
    conn._inbound_flow_control_window_manager.window_consumed(size)
    stream._inbound_window_manager.window_consumed(size)
    stream._track_content_length(size, False)


def _receive_plain_data(
    conn: h2.connection.H2Connection, stream: h2.stream.H2Stream, payload: bytes, end_stream: bool
) -> list[h2.events.Event]:
    """What h2 does for an unpadded DATA frame on a receiving stream, minus the overhead."""
    size = len(payload)
    if end_stream:
        # The stream's own state machine closes the stream and makes the
        # StreamEnded event, as in h2's path.
        conn._inbound_flow_control_window_manager.window_consumed(size)
        return stream.receive_data(payload, True, size)[1]
    _consume_plain_data(conn, stream, size)
    return [h2.events.DataReceived(stream_id=stream.stream_id, data=payload, flow_controlled_length=size)]


def _receive_plain_headers(
    conn: h2.connection.H2Connection, stream: h2.stream.H2Stream, block: bytes, end_stream: bool
) -> list[h2.events.Event]:
    """What h2 does for a whole, unpadded HEADERS frame without priority on one of our streams.

    Skipped: hyperframe's parse (padding and priority fields, a flag set) and
    the generic dispatch; kept: the HPACK decode with h2's error translation
    and the stream's own state machine, which makes the events.
    """
    headers = h2.connection._decode_headers(conn.decoder, block)
    frames, events = stream.receive_headers(headers, end_stream, conn.config.header_encoding)
    if frames:
        conn._prepare_for_sending(frames)
    return events


_OPENABLE = (h2.connection.ConnectionState.IDLE, h2.connection.ConnectionState.CLIENT_OPEN)


def send_request_headers(
    conn: h2.connection.H2Connection, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool
) -> list[bytes] | None:
    """Open a new request stream the way h2's ``send_headers`` would, and return its frames' bytes.

    h2 builds hyperframe objects, flag sets and validation flags for every
    request, serializes them into its buffer and copies that out again; for
    small requests that was most of the cost of sending one. Here the stream
    goes through exactly h2's bookkeeping (concurrency check, stream
    creation, the stream's state machine, the HPACK encoder, the request
    method and authority h2 remembers) and the HEADERS (and, for a large
    block, CONTINUATION) frames are written directly. ``headers`` must be
    plain ``(bytes, bytes)`` tuples, pseudo-headers first. Returns ``None``
    without changing anything when the connection is not in a plain state;
    the caller then uses h2's own ``send_headers``.
    """
    if stream_id in conn.streams or conn.state_machine.state not in _OPENABLE:
        return None
    limit = conn.remote_settings.max_concurrent_streams
    open_now = conn.open_outbound_streams
    if open_now + 1 > limit:
        raise h2.exceptions.TooManyStreamsError(f"Max outbound streams is {limit}, {open_now} open")
    conn.state_machine.process_input(h2.connection.ConnectionInputs.SEND_HEADERS)
    stream = conn._begin_new_stream(stream_id, h2.connection.AllowedStreamIDs.ODD)
    # The state changes before encoding, as in h2: encoding cannot be undone.
    stream.state_machine.process_input(h2.stream.StreamInputs.SEND_HEADERS)
    block = conn.encoder.encode(headers)
    if end_stream:
        stream.state_machine.process_input(h2.stream.StreamInputs.SEND_END_STREAM)
    stream._authority = next((value for name, value in headers if name == b":authority"), None)
    stream.request_method = headers[0][1] if headers and headers[0][0] == b":method" else None
    max_size = conn.max_outbound_frame_size
    sid = stream_id.to_bytes(4, "big")
    if len(block) <= max_size:
        flags = _END_HEADERS | (_END_STREAM if end_stream else 0)
        return [len(block).to_bytes(3, "big") + bytes((_HEADERS_FRAME, flags)) + sid + block]
    pieces = [block[start : start + max_size] for start in range(0, len(block), max_size)]
    frames = [
        len(pieces[0]).to_bytes(3, "big")
        + bytes((_HEADERS_FRAME, _END_STREAM if end_stream else 0))
        + sid
        + pieces[0]
    ]
    for index, piece in enumerate(pieces[1:], start=2):
        flags = _END_HEADERS if index == len(pieces) else 0
        frames.append(len(piece).to_bytes(3, "big") + bytes((_CONTINUATION_FRAME, flags)) + sid + piece)
    return frames


_SENDING = (h2.stream.StreamState.OPEN, h2.stream.StreamState.HALF_CLOSED_REMOTE)
#: Frames at least this big go out as header and payload separately (no copy);
#: smaller ones are joined into one piece so the header does not cost a TLS record.
_SPLIT_FRAME_MIN = 64 * 1024


def send_plain_data(
    conn: h2.connection.H2Connection, stream_id: int, payload: memoryview
) -> list[Any] | None:
    """Queue one DATA frame without flags the way h2's ``send_data`` would, minus the copies.

    h2 serializes each frame, appends it to its output buffer and copies that
    buffer out again: three copies of every uploaded byte before TLS makes
    its own. Here the frame is returned as pieces to send in order (the
    payload itself, not a copy, when the frame is big), after h2's windows
    and stream state are updated exactly as ``send_data`` does. Returns
    ``None`` when the stream or connection is not in a plain sending state;
    the caller then uses h2's own path, which raises as h2 does.
    """
    stream = conn.streams.get(stream_id)
    size = payload.nbytes
    if (
        stream is None
        or stream.state_machine.state not in _SENDING
        or conn.state_machine.state is not h2.connection.ConnectionState.CLIENT_OPEN
        or not 0 < size <= min(conn.max_outbound_frame_size, conn.outbound_flow_control_window)
        or size > stream.outbound_flow_control_window
    ):
        return None
    stream.outbound_flow_control_window -= size
    conn.outbound_flow_control_window -= size
    header = size.to_bytes(3, "big") + b"\x00\x00" + stream_id.to_bytes(4, "big")
    if size >= _SPLIT_FRAME_MIN:
        return [header, payload]
    return [header + payload]


def _reset_closed_stream(conn: h2.connection.H2Connection, stream_id: int) -> None:
    """Send RST_STREAM(PROTOCOL_ERROR) for a stream h2 closed when it raised.

    Marked as reset by us, so h2 answers later frames on it with
    RST_STREAM(STREAM_CLOSED), as for any stream we reset.
    """
    stream = conn.streams.get(stream_id)
    if stream is None:
        return
    stream.state_machine.state = h2.stream.StreamState.CLOSED
    stream.state_machine.stream_closed_by = h2.stream.StreamClosedBy.SEND_RST_STREAM
    frame = hyperframe.frame.RstStreamFrame(stream_id)
    frame.error_code = h2.errors.ErrorCodes.PROTOCOL_ERROR
    conn._prepare_for_sending([frame])


def _is_stream_error(
    conn: h2.connection.H2Connection, stream_id: int, exc: h2.exceptions.ProtocolError
) -> bool:
    """A malformed message on one of our open streams, not a broken connection."""
    if isinstance(
        exc,
        (h2.exceptions.FlowControlError, h2.exceptions.DenialOfServiceError, h2.exceptions.StreamClosedError),
    ) or isinstance(exc.__cause__, (hpack.exceptions.HPACKError, IndexError)):
        return False  # flow control and HPACK state are connection-wide
    return stream_id % 2 == 1 and stream_id in conn.streams and stream_id <= conn.highest_outbound_stream_id


def new_client_connection() -> h2.connection.H2Connection:
    """An h2 client connection with hyper's adaptations installed.

    h2's own header validation is off in both directions: outgoing fields
    are checked (more strictly, CR/LF/NUL included) by
    :func:`hyper.http20.fields.build_request_headers`, and incoming ones by
    :func:`hyper.http20.fields.response_header_problem`, which fails only the
    stream concerned where h2 would fail the whole connection.
    """
    config = h2.config.H2Configuration(
        client_side=True,
        header_encoding=None,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
        validate_inbound_headers=False,
        normalize_inbound_headers=True,
    )
    conn = h2.connection.H2Connection(config=config)
    conn.state_machine = _GracefulGoawayStateMachine()
    table = conn._frame_dispatch_table
    for original, quiet in _QUIET_FRAMES.items():
        if original in table:
            table[quiet] = table[original]
    hpack_cache.install(conn)
    # h2 empties its output buffer when a GOAWAY arrives, as if the connection
    # were over; it is not (streams up to last_stream_id go on), so SETTINGS
    # and PING ACKs or WINDOW_UPDATEs queued in the same read must still go.
    conn.clear_outbound_data_buffer = _keep_outbound_data  # type: ignore[method-assign]
    _install_huffman_cache()
    return conn


def _keep_outbound_data() -> None:
    """Stands in for h2's clear_outbound_data_buffer (see new_client_connection)."""


# Servers send the same header values over and over (server, content-type,
# cache-control...) as Huffman-coded literals; hpack decodes each in pure
# Python, which was the largest single cost of a small response. Decoding is
# a pure function, so a bounded memo of short strings gives identical results.
_HUFFMAN_CACHE_ENTRIES = 1024
_HUFFMAN_CACHE_MAX_LEN = 256


def _install_huffman_cache() -> None:
    original: Callable[[Any], bytes] = hpack.hpack.decode_huffman  # type: ignore[attr-defined]
    if getattr(original, "_hyper_cached", False):
        return
    cache: dict[bytes, bytes] = {}

    def decode_huffman(data: Any) -> bytes:
        if data is None or len(data) > _HUFFMAN_CACHE_MAX_LEN:
            return original(data)
        key = bytes(data)
        try:
            return cache[key]
        except KeyError:
            pass
        value = original(key)
        if len(cache) >= _HUFFMAN_CACHE_ENTRIES:
            cache.clear()
        cache[key] = value
        return value

    decode_huffman._hyper_cached = True  # type: ignore[attr-defined]
    hpack.hpack.decode_huffman = decode_huffman  # type: ignore[attr-defined,assignment]

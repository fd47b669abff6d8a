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


class _DataFrame(hyperframe.frame.DataFrame):
    """A DATA frame whose repr() does not hex-dump its payload.

    h2 calls repr() on every frame it receives for a trace log that is off by
    default; for DATA that meant copying and hex-encoding every payload, about
    a tenth of the time of a download.
    """

    def _body_repr(self) -> str:
        return f"<{len(self.data)} bytes>"


class _EarlyCheckFrameBuffer(h2.frame_buffer.FrameBuffer):
    """h2's frame buffer, but an oversized frame fails at its 9-byte header.

    h2 waits for the whole announced body before checking the length, so a
    server announcing 16 MiB and going silent (or answering in HTTP/1.1,
    whose "HTT" reads as a 4.7 MB length) would hold us until the timeout.
    """

    #: (stream id, reason) of stream errors found while splitting frames.
    stream_errors: list[tuple[int, str]]

    def __next__(self) -> hyperframe.frame.Frame:
        while self._zero_stream_window_update():
            pass
        if len(self._data) >= 9:
            length = int.from_bytes(self._data[:3], "big")
            if length > self.max_frame_size:
                if self._data[:5] == b"HTTP/":
                    raise h2.exceptions.ProtocolError(
                        "server answered in HTTP/1.x, not HTTP/2: "
                        + bytes(self._data[:40]).split(b"\r\n")[0].decode("latin-1")
                    )
                raise h2.exceptions.FrameTooLargeError(
                    f"frame of {length} bytes announced, our limit is {self.max_frame_size}"
                )
        try:
            frame = super().__next__()
        except hyperframe.exceptions.InvalidPaddingError as exc:
            # h2's own receive_data converts this one; our frame loop must too.
            raise h2.exceptions.ProtocolError(f"frame with invalid padding: {exc}") from exc
        if frame.__class__ is hyperframe.frame.DataFrame:
            frame.__class__ = _DataFrame
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


def receive_frames(
    conn: h2.connection.H2Connection, data: Any
) -> tuple[list[h2.events.Event], h2.exceptions.ProtocolError | None]:
    """h2's ``receive_data``, but it keeps the events of the frames before a
    connection error (and queues no GOAWAY: the caller does), and turns h2's
    errors about one malformed response into :class:`StreamMalformed`
    (RFC 9113 8.1.1: a stream error)."""
    events: list[h2.events.Event] = []
    buffer = conn.incoming_buffer
    assert isinstance(buffer, _EarlyCheckFrameBuffer)
    buffer.add_data(data)
    buffer.max_frame_size = conn.max_inbound_frame_size
    try:
        for frame in buffer:
            try:
                events.extend(conn._receive_frame(frame))
            except h2.exceptions.ProtocolError as exc:
                if not _is_stream_error(conn, frame, exc):
                    raise
                size = frame.flow_controlled_length if isinstance(frame, hyperframe.frame.DataFrame) else 0
                _reset_closed_stream(conn, frame.stream_id)
                events.append(StreamMalformed(frame.stream_id, str(exc), size))
    except h2.exceptions.ProtocolError as exc:
        return events, exc
    finally:
        for stream_id, message in buffer.stream_errors:
            if stream_id in conn.streams:
                _reset_closed_stream(conn, stream_id)
                events.append(StreamMalformed(stream_id, message))
        buffer.stream_errors.clear()
    return events, None


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
    conn: h2.connection.H2Connection, frame: hyperframe.frame.Frame, exc: h2.exceptions.ProtocolError
) -> bool:
    """A malformed message on one of our open streams, not a broken connection."""
    if isinstance(
        exc,
        (h2.exceptions.FlowControlError, h2.exceptions.DenialOfServiceError, h2.exceptions.StreamClosedError),
    ) or isinstance(exc.__cause__, (hpack.exceptions.HPACKError, IndexError)):
        return False  # flow control and HPACK state are connection-wide
    stream_id = frame.stream_id
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
    early_buffer = _EarlyCheckFrameBuffer(server=False)
    early_buffer.stream_errors = []
    early_buffer.max_frame_size = conn.incoming_buffer.max_frame_size
    conn.incoming_buffer = early_buffer
    conn._frame_dispatch_table[_DataFrame] = conn._receive_data_frame
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

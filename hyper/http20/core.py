"""The sans-I/O HTTP/2 client core: ``h2`` events in, per-stream state out.

This module never touches sockets, threads or clocks. It takes the bytes the
server sent (:meth:`H2Core.receive`), keeps what each stream has received so
far, decides on flow-control credit as the application consumes data, and
hands back the bytes to send (:meth:`H2Core.data_to_send`). The connection
layer owns the socket and the locks and calls in here with the state lock
held.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack.exceptions

from ..common.hints import add_hint, failed_start_hint
from ..common.url import origin_of
from ..exceptions import (
    ConnectionTerminated,
    HyperError,
    InvalidHeader,
    ProtocolError,
    StreamResetError,
)
from ..limits import Limits
from .fields import push_request_problem, response_header_problem
from .h2_adapters import (
    FrameSplitter,
    StreamMalformed,
    new_client_connection,
    send_plain_data,
    send_request_headers,
)
from .h2_internals import mark_head_request, set_header_list_limit
from .hpack_cache import MEMO_MAX_BLOCK
from .window import BaseFlowControlManager, FlowControlManager

log = logging.getLogger("hyper")

#: Per-stream receive window we advertise (browsers use about 6 MiB).
DEFAULT_STREAM_WINDOW = 6 * 1024 * 1024
#: Connection receive window we open up to right after the preface.
DEFAULT_CONNECTION_WINDOW = 16 * 1024 * 1024
#: Until the server's SETTINGS arrive, RFC 9113 lets us assume this many.
ASSUMED_MAX_CONCURRENT_STREAMS = 100
#: The largest odd stream id (RFC 9113 section 5.1.1).
_LAST_CLIENT_STREAM_ID = 2**31 - 1
#: Valid header blocks remembered per connection.
_VALID_BLOCKS_MEMO = 64
#: HTTP/2's initial window, before any WINDOW_UPDATE or SETTINGS.
_INITIAL_WINDOW = 65535
# How much of what a server sends before its SETTINGS is kept to explain a failure.
_FIRST_BYTES = 512


def error_name(code: int) -> str:
    """The registered name of an HTTP/2 error code, e.g. ``'REFUSED_STREAM'``."""
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"UNKNOWN_ERROR_{code:#x}"


@dataclass
class StreamState:
    """What one request stream has sent and received so far."""

    stream_id: int
    window: BaseFlowControlManager
    #: Final response headers, ``None`` until they arrive.
    headers: list[tuple[bytes, bytes]] | None = None
    informational: int = 0
    trailers: list[tuple[bytes, bytes]] | None = None
    #: Body pieces received and not yet taken (bytes, or views of a larger piece).
    data: deque[bytes | memoryview] = field(default_factory=deque)
    #: Flow-controlled bytes received and not yet consumed (padding excluded).
    buffered: int = 0
    #: The server ended its side (END_STREAM seen).
    ended: bool = False
    #: Our side is done sending (END_STREAM sent, or we reset the stream).
    request_ended: bool = False
    #: The response was closed by the application: drop further data.
    discarded: bool = False
    #: Why this stream failed, if it did.
    error: HyperError | None = None
    #: The request was HEAD: any response DATA is malformed.
    head: bool = False

    @property
    def complete(self) -> bool:
        """The whole response has arrived (it may still be unread)."""
        return self.ended and self.headers is not None


@dataclass
class PushPromise:
    """A server push the application has not taken yet."""

    #: The promised (even) stream the pushed response arrives on.
    stream_id: int
    #: The request stream the promise came on.
    parent_id: int
    #: The promised request's fields, pseudo-headers first.
    request_headers: list[tuple[bytes, bytes]]


class H2Core:
    """HTTP/2 client state for one connection, with no I/O of its own.

    :param window_manager: the :class:`BaseFlowControlManager` subclass that
        decides when to credit receive windows back.
    :param limits: the bounds on what the server may make us do.
    """

    def __init__(
        self,
        *,
        window_manager: type[BaseFlowControlManager] = FlowControlManager,
        stream_window: int = DEFAULT_STREAM_WINDOW,
        connection_window: int = DEFAULT_CONNECTION_WINDOW,
        limits: Limits | None = None,
        enable_push: bool = False,
        origin: tuple[str, str, int] | None = None,
    ) -> None:
        self._h2 = new_client_connection()
        self._enable_push = enable_push
        # (scheme, host, port) of the connection: pushes for others are refused.
        self._origin = origin
        #: Pushes promised and not yet taken by the application, oldest first.
        self.pushes: list[PushPromise] = []
        # What the server sent before its SETTINGS (at most _FIRST_BYTES): if
        # the connection fails then, it says why (a TLS alert, an HTTP/1.x
        # page). None once an h2c upgrade proved the server speaks HTTP.
        self._first_bytes: bytes | None = b""
        # PING payloads sent and not yet acknowledged (payload -> count), and
        # acknowledgements not yet collected by their waiter.
        self._pings_out: dict[bytes, int] = {}
        self._ping_acks: dict[bytes, int] = {}
        self._frames = FrameSplitter(self._h2)
        self._window_manager = window_manager
        self._stream_window = stream_window
        self._connection_window_size = connection_window
        self.limits = limits = limits or Limits()
        self._max_buffered = limits.max_buffered if limits.max_buffered is not None else connection_window
        self._connection_window: BaseFlowControlManager | None = None
        self.streams: dict[int, StreamState] = {}
        #: Bytes received over all streams and not yet consumed.
        self.total_buffered = 0
        # Connection-level credit not yet handed to the window manager because
        # too much is buffered; released as the application reads.
        self._withheld = 0
        #: The server's SETTINGS have arrived.
        self.settings_received = False
        self._control_frames = 0
        #: The first connection-fatal error; every stream sees it.
        self.fatal: HyperError | None = None
        #: GOAWAY received: (error_code, last_stream_id, debug data).
        self.goaway: tuple[int, int, bytes] | None = None
        #: No new streams: we or the server are ending the connection.
        self.closed = False
        # Our own GOAWAY went out (a server's GOAWAY does not count).
        self._goaway_sent = False
        # Frames queued by reference (upload payloads), ahead of h2's own buffer.
        self._outbound: list[Any] = []
        # Header blocks already found valid (servers repeat themselves).
        self._valid_blocks: dict[tuple[Any, bool], None] = {}
        # What receive() changed, for targeted wake-ups: stream ids, and
        # whether something connection-wide happened.
        self._touched: set[int] = set()
        self._touched_all = False
        # Connection credit gathered during one receive(); -1 outside it.
        self._batch_received = self._batch_freed = -1

    # -- connection lifecycle -------------------------------------------------

    def initiate(self) -> None:
        """Queue the connection preface, our SETTINGS and the window opening."""
        self._apply_local_settings()
        self._h2.initiate_connection()
        self._open_connection_window()

    def initiate_upgrade(self, head: bool = False) -> bytes:
        """Prepare an ``Upgrade: h2c`` connection; return the ``HTTP2-Settings`` value.

        The preface and SETTINGS are queued (to send after the server's 101),
        and stream 1 stands for the HTTP/1.1 request that carried the upgrade:
        its request side is complete and its response comes as HTTP/2.
        ``head`` says that request was HEAD (its response has no body).
        """
        self._apply_local_settings()
        self._first_bytes = None  # the server answered our HTTP/1.1 request with 101
        settings = self._h2.initiate_upgrade_connection()
        assert settings is not None  # always returned on the client side
        self._open_connection_window()
        if head:
            # h2 learns the method from HEADERS it sends; stream 1's went as HTTP/1.1.
            mark_head_request(self._h2, 1)
        self.streams[1] = StreamState(
            1, self._window_manager(self._stream_window), request_ended=True, head=head
        )
        return settings

    def _apply_local_settings(self) -> None:
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: int(self._enable_push),
                # Only pushed streams are opened by the server.
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: (
                    self.limits.max_pushed_streams if self._enable_push else 0
                ),
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self._stream_window,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: self.limits.max_header_list_size,
            },
        )
        set_header_list_limit(self._h2, self.limits.max_header_list_size)

    def _open_connection_window(self) -> None:
        self._connection_window = self._window_manager(self._connection_window_size)
        extra = self._connection_window_size - _INITIAL_WINDOW
        if extra > 0:
            self._h2.increment_flow_control_window(extra)

    def data_to_send(self) -> bytes:
        """Bytes queued for the server (empty when there are none)."""
        return b"".join(self.pieces_to_send())

    def _queue_frames(self, pieces: list[Any]) -> None:
        """Queue frames written outside h2, after whatever h2 queued before them."""
        pending = self._h2.data_to_send()
        if pending:
            self._outbound.append(pending)
        self._outbound.extend(pieces)

    def pieces_to_send(self) -> list[Any]:
        """What is queued for the server, as bytes-like pieces to send in order."""
        pending = self._h2.data_to_send()
        if not self._outbound:
            return [pending] if pending else []
        pieces, self._outbound = self._outbound, []
        if pending:
            pieces.append(pending)
        return pieces

    def close(self, error_code: int = 0, message: str = "connection closed") -> None:
        """Queue GOAWAY, once; later calls do nothing."""
        self.closed = True
        if self._goaway_sent:
            return
        self._goaway_sent = True
        try:
            self._h2.close_connection(error_code=error_code)
        except h2.exceptions.ProtocolError:
            pass  # already closed by the peer or by an earlier error
        log.debug("sending GOAWAY (%s): %s", error_name(error_code), message)

    # -- opening streams ------------------------------------------------------

    @property
    def max_concurrent_streams(self) -> int:
        """How many streams the server lets us have open at once."""
        limit = self._h2.remote_settings.max_concurrent_streams
        if not self.settings_received:
            return min(limit, ASSUMED_MAX_CONCURRENT_STREAMS)
        return limit

    def can_open_stream(self) -> bool:
        """True when a new stream fits within the server's concurrency limit."""
        return self._h2.open_outbound_streams < self.max_concurrent_streams

    def accepting_streams(self) -> HyperError | None:
        """Why no new stream may be opened on this connection, or ``None``."""
        if self.fatal is not None:
            return self.fatal
        if self.goaway is not None:
            code, last, data = self.goaway
            return ConnectionTerminated(
                f"server sent GOAWAY ({error_name(code)}); a new connection is needed",
                error_code=code,
                last_stream_id=last,
                retryable=True,
                additional_data=data,
            )
        if self.closed:
            return ConnectionTerminated("connection is closing", retryable=True)
        if self.ids_exhausted:
            return ConnectionTerminated(
                "stream ids of this connection are used up; a new connection is needed", retryable=True
            )
        return None

    @property
    def ids_exhausted(self) -> bool:
        """Stream ids of this connection are used up: a new connection is needed.

        Computed, not stored: asking (e.g. from :meth:`accepting_streams`)
        changes nothing (RFC 9113 section 5.1.1: client ids end at 2**31-1).
        """
        return self._h2.highest_outbound_stream_id >= _LAST_CLIENT_STREAM_ID

    @property
    def next_stream_id(self) -> int:
        """The id the next :meth:`open_stream` will use."""
        return self._h2.get_next_available_stream_id()

    def open_stream(self, headers: list[tuple[bytes, bytes]], end_stream: bool) -> int:
        """Queue HEADERS for a new request and return its stream id.

        ``headers`` holds pseudo-headers first, as :func:`~hyper.http20.fields.build_request_headers`
        makes them. The caller checked :meth:`can_open_stream`.
        """
        refusal = self.accepting_streams()
        if refusal is not None:
            raise refusal
        try:
            stream_id = self._h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError as exc:
            raise ConnectionTerminated(
                "stream ids of this connection are used up; a new connection is needed",
                retryable=True,
            ) from exc
        try:
            frames = send_request_headers(self._h2, stream_id, headers, end_stream)
            if frames is None:
                self._h2.send_headers(stream_id, headers, end_stream=end_stream)
            else:
                self._queue_frames(frames)
        except h2.exceptions.ProtocolError as exc:
            raise InvalidHeader(f"request headers refused: {exc}") from exc
        self.streams[stream_id] = StreamState(
            stream_id,
            self._window_manager(self._stream_window),
            request_ended=end_stream,
            head=headers[0][1] == b"HEAD",
        )
        log.debug("stream %d opened", stream_id)
        return stream_id

    # -- request bodies -------------------------------------------------------

    def send_window(self, stream_id: int) -> int:
        """How many body bytes may be sent on ``stream_id`` right now."""
        try:
            return self._h2.local_flow_control_window(stream_id)
        except (h2.exceptions.ProtocolError, KeyError):
            return 0

    def send_body(self, stream_id: int, data: memoryview) -> int:
        """Queue as much of ``data`` as the windows allow; return how much.

        The payload is queued by reference: the caller keeps ``data``
        unchanged until :meth:`pieces_to_send` has been sent.
        """
        window = self.send_window(stream_id)
        frame_size = self._h2.max_outbound_frame_size
        sent = 0
        total = min(window, data.nbytes)
        while sent < total:
            size = min(frame_size, total - sent)
            chunk = data[sent : sent + size]
            pieces = send_plain_data(self._h2, stream_id, chunk)
            if pieces is None:
                self._h2.send_data(stream_id, chunk)
            else:
                self._queue_frames(pieces)
            sent += size
        return sent

    def end_body(self, stream_id: int) -> None:
        """Send END_STREAM on our side of ``stream_id``."""
        stream = self.streams.get(stream_id)
        if stream is not None and not stream.request_ended:
            stream.request_ended = True
            try:
                self._h2.end_stream(stream_id)
            except h2.exceptions.StreamClosedError:
                pass  # the server reset it meanwhile; its error reaches the reader

    # -- receiving ------------------------------------------------------------

    def receive(self, data: bytes | memoryview) -> None:
        """Process bytes from the server; the state of affected streams changes."""
        if self.fatal is not None:
            return
        first = self._first_bytes
        if first is not None and not self.settings_received and len(first) < _FIRST_BYTES:
            self._first_bytes = first + bytes(data[: _FIRST_BYTES - len(first)])
        events, error = self._frames.receive(data)
        data_received = h2.events.DataReceived
        touched = self._touched
        self._batch_received = self._batch_freed = 0
        try:
            for event in events:
                if type(event) is data_received and event.data and self.settings_received:
                    self._control_frames = 0  # progress: see _flooded
                    touched.add(event.stream_id)
                    self._on_data(event)
                    continue
                stream_id = getattr(event, "stream_id", None)
                if stream_id:
                    touched.add(stream_id)
                else:
                    self._touched_all = True
                if not self.settings_received and type(event) is not h2.events.RemoteSettingsChanged:
                    # RFC 9113 section 3.4: the server preface is a SETTINGS frame.
                    self.fail(
                        ProtocolError(
                            "server's first frame was not SETTINGS: this is not an HTTP/2 server", 1
                        ),
                        1,
                    )
                    return
                if self._flooded(event):
                    self.fail(
                        ProtocolError(
                            f"server sent more than {self.limits.max_control_frames_per_second} PING, "
                            "SETTINGS or empty "
                            "DATA frames without making progress (flood)",
                            h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                        ),
                        h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                    )
                    return
                handler = _HANDLERS.get(type(event))
                if handler is not None:
                    handler(self, event)
        finally:
            # The connection window is credited once per batch of frames, not
            # per DATA frame: the window manager's decision costs a call.
            received, freed = self._batch_received, self._batch_freed
            self._batch_received = self._batch_freed = -1
            if received or freed:
                self._credit_connection(received, freed)
            if self.pushes and self.total_buffered > self._max_buffered:
                self._shed_untaken_pushes()
        if error is not None:
            code = getattr(error, "error_code", None) or h2.errors.ErrorCodes.PROTOCOL_ERROR
            if isinstance(error.__cause__, (hpack.exceptions.HPACKError, IndexError)) and not isinstance(
                error.__cause__, hpack.exceptions.OversizedHeaderListError
            ):
                code = h2.errors.ErrorCodes.COMPRESSION_ERROR  # RFC 9113 section 4.3
            failure = ProtocolError(f"server broke the HTTP/2 protocol: {error}", int(code))
            failure.__cause__ = error  # keep h2's own error for debugging
            self.fail(failure, int(code))

    def reset_flood_budget(self) -> None:
        """Start a new budget of control frames (the session does so every second)."""
        self._control_frames = 0

    def _flooded(self, event: Any) -> bool:
        """Count frames that cost us work but carry no response progress."""
        kind = type(event)
        if kind is h2.events.DataReceived and event.data:
            self._control_frames = 0
        elif kind in (
            h2.events.PingReceived,
            h2.events.RemoteSettingsChanged,
            h2.events.DataReceived,
        ) or (kind is h2.events.PingAckReceived and event.ping_data not in self._pings_out):
            self._control_frames += 1
            return self._control_frames > self.limits.max_control_frames_per_second
        elif kind in (h2.events.ResponseReceived, h2.events.StreamEnded):
            self._control_frames = 0
        return False

    def take_touched(self) -> set[int] | None:
        """Stream ids that :meth:`receive` changed since the last call; ``None`` for "all of them"."""
        touched, everything = self._touched, self._touched_all
        self._touched, self._touched_all = set(), False
        return None if everything else touched

    def fail(self, error: HyperError, error_code: int | None = None) -> None:
        """Record a connection-fatal error; queue GOAWAY when we detected it."""
        self._touched_all = True
        if self.fatal is None:
            self._explain_failed_start(error)
            self.fatal = error
            log.debug("connection failed: %s", error)
        if error_code is not None:
            self.close(error_code, str(error))

    def connection_lost(self, error: HyperError) -> None:
        """The socket closed or broke: everything incomplete fails with ``error``."""
        self.closed = True
        if self.fatal is None:
            self._explain_failed_start(error)
            self.fatal = error

    def _explain_failed_start(self, error: HyperError) -> None:
        """Before the server's SETTINGS, add what its first bytes suggest (hints) to ``error``."""
        if self._first_bytes is not None and not self.settings_received:
            secure = self._origin is not None and self._origin[0] == "https"
            add_hint(error, failed_start_hint(self._first_bytes, secure=secure, http2=True))

    def _checked_fields(
        self, event: Any, what: str, trailers: bool = False
    ) -> tuple[StreamState, list[tuple[bytes, bytes]]] | None:
        """The live stream of a header event and its fields, if they are valid.

        A malformed block fails that stream only (RST_STREAM PROTOCOL_ERROR).
        """
        stream = self._live_stream(event.stream_id)
        if stream is None:
            return None
        fields = list(event.headers or [])
        key = (tuple(fields), trailers)
        if key in self._valid_blocks:
            return stream, fields  # the very same fields were checked before
        problem = response_header_problem(fields, trailers=trailers)
        if problem is None and sum(len(name) + len(value) for name, value in fields) <= MEMO_MAX_BLOCK:
            if len(self._valid_blocks) >= _VALID_BLOCKS_MEMO:
                self._valid_blocks.clear()
            self._valid_blocks[key] = None
        elif problem is not None:
            self._reset_with_error(stream, 0x1, f"stream {stream.stream_id}: malformed {what}: {problem}")
            return None
        return stream, fields

    def _on_response(self, event: h2.events.ResponseReceived) -> None:
        checked = self._checked_fields(event, "response")
        if checked is not None:
            stream, fields = checked
            stream.headers = fields
            log.debug("stream %d: response headers received", event.stream_id)

    def _on_informational(self, event: h2.events.InformationalResponseReceived) -> None:
        checked = self._checked_fields(event, "1xx response")
        if checked is None:
            return
        stream = checked[0]
        stream.informational += 1
        if stream.informational > self.limits.max_informational_responses:
            self._reset_with_error(
                stream,
                h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                f"server sent more than {self.limits.max_informational_responses} informational responses",
            )

    def _on_trailers(self, event: h2.events.TrailersReceived) -> None:
        checked = self._checked_fields(event, "trailers", trailers=True)
        if checked is not None:
            stream, fields = checked
            stream.trailers = fields

    def _on_data(self, event: h2.events.DataReceived) -> None:
        size = event.flow_controlled_length or 0
        payload = event.data or b""
        padding = size - len(payload)
        if self._connection_window is not None:
            self._connection_window._data_received(size)
        stream = self.streams.get(event.stream_id)
        if stream is None or stream.discarded or stream.error is not None:
            # Nobody will read it: give the connection window straight back.
            self._batch_credit(size, size)
            return
        if payload and _cannot_have_body(stream):
            self._batch_credit(size, size)
            self._reset_with_error(
                stream,
                h2.errors.ErrorCodes.PROTOCOL_ERROR,
                f"stream {stream.stream_id}: body on a response that cannot have one (RFC 9110 6.4.1)",
            )
            return
        stream.window._data_received(size)
        if payload:
            stream.data.append(payload)
            stream.buffered += len(payload)
            self.total_buffered += len(payload)
        if padding:
            # Padding is never consumed by the application; credit it at once.
            self._credit_stream(stream, padding)
        self._batch_credit(size, padding)

    def _batch_credit(self, received: int, freed: int) -> None:
        """Connection credit for :meth:`_credit_connection` at the end of ``receive``."""
        if self._batch_received < 0:  # not inside receive()
            self._credit_connection(received, freed)
        else:
            self._batch_received += received
            self._batch_freed += freed

    # -- server push -----------------------------------------------------------

    def _on_push(self, event: h2.events.PushedStreamReceived) -> None:
        pushed_id, parent_id = event.pushed_stream_id, event.parent_stream_id
        if pushed_id is None or parent_id is None:  # h2 always sets both
            return
        if not self._enable_push:
            # RFC 9113 section 8.4: push was disabled in our SETTINGS (h2 only
            # checks once the server acknowledged them).
            self.fail(ProtocolError("server sent PUSH_PROMISE although push is disabled", 1), 1)
            return
        fields = list(event.headers or [])
        problem = push_request_problem(fields)
        if problem is not None:
            log.debug("push on stream %d refused: %s", pushed_id, problem)
            self.reset(pushed_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        request = dict(fields)
        origin = origin_of(request[b":scheme"].decode("latin-1"), request[b":authority"].decode("latin-1"))
        if origin is None or origin != self._origin:
            log.debug("push on stream %d refused: %r is not this connection's origin", pushed_id, origin)
            self.reset(pushed_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        if self.pushed_streams() >= self.limits.max_pushed_streams:
            log.debug("push on stream %d refused: %d pushed streams held", pushed_id, self.pushed_streams())
            self.reset(pushed_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        self.streams[pushed_id] = StreamState(
            pushed_id,
            self._window_manager(self._stream_window),
            request_ended=True,
            head=request[b":method"] == b"HEAD",
        )
        self.pushes.append(PushPromise(pushed_id, parent_id, fields))
        log.debug("stream %d: push promised on stream %d", pushed_id, parent_id)

    def _shed_untaken_pushes(self) -> None:
        """Cancel pushes nobody took, oldest first, while too much is buffered.

        A push is the server's guess; unlike a response the application asked
        for, its data must not hold the connection window shut for the
        streams that were asked for.
        """
        for push in list(self.pushes):
            if self.total_buffered <= self._max_buffered:
                return
            stream = self.streams.get(push.stream_id)
            if stream is not None and stream.buffered:
                self.pushes.remove(push)
                log.debug(
                    "stream %d: untaken push cancelled, %d bytes buffered", push.stream_id, stream.buffered
                )
                self.discard_stream(push.stream_id)

    def pushed_streams(self) -> int:
        """Pushed streams held now (promised, not yet finished with by the application)."""
        return sum(1 for stream_id in self.streams if not stream_id % 2)

    def take_pushes(self, parent_id: int | None = None) -> list[PushPromise]:
        """Remove and return the untaken pushes (of one request stream, or all)."""
        if parent_id is None:
            taken, self.pushes = self.pushes, []
        else:
            taken = [push for push in self.pushes if push.parent_id == parent_id]
            self.pushes = [push for push in self.pushes if push.parent_id != parent_id]
        return taken

    # -- ping -------------------------------------------------------------------

    def send_ping(self, payload: bytes) -> None:
        """Queue a PING carrying ``payload`` (8 bytes)."""
        self._h2.ping(payload)
        self._pings_out[payload] = self._pings_out.get(payload, 0) + 1

    def forget_ping(self, payload: bytes) -> None:
        """Stop waiting for one ACK of ``payload`` (its waiter gave up)."""
        outstanding = self._pings_out.get(payload, 0)
        if outstanding > 1:
            self._pings_out[payload] = outstanding - 1
        else:
            self._pings_out.pop(payload, None)

    def take_ping_ack(self, payload: bytes) -> bool:
        """True (once per ACK) when a PING carrying ``payload`` was acknowledged."""
        count = self._ping_acks.get(payload, 0)
        if not count:
            return False
        if count == 1:
            del self._ping_acks[payload]
        else:
            self._ping_acks[payload] = count - 1
        return True

    def _on_ping_ack(self, event: h2.events.PingAckReceived) -> None:
        payload = event.ping_data
        outstanding = self._pings_out.get(payload, 0)
        if not outstanding:
            return  # not ours (or answered twice): ignored, counted as a control frame
        if outstanding == 1:
            del self._pings_out[payload]
        else:
            self._pings_out[payload] = outstanding - 1
        self._ping_acks[payload] = self._ping_acks.get(payload, 0) + 1

    def _on_stream_ended(self, event: h2.events.StreamEnded) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.ended = True
            log.debug("stream %d: response complete", event.stream_id)

    def _on_stream_reset(self, event: h2.events.StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        code = int(event.error_code or 0)
        stream.request_ended = True
        if stream.complete or stream.discarded:
            # RST_STREAM(NO_ERROR) after a full response (e.g. an early 413
            # during an upload) only means "stop sending".
            log.debug("stream %d: reset (%s) after a complete response", stream.stream_id, error_name(code))
            return
        # In both cases below the body bytes already buffered stay: the
        # reader gets every byte that arrived before the failure, then the
        # error (the buffer is released when taken or discarded).
        if not event.remote_reset:
            # h2 reset the stream itself because the server broke a rule on it.
            stream.error = ProtocolError(
                f"stream {stream.stream_id}: server broke the protocol ({error_name(code)}); "
                "we reset the stream",
                code,
            )
            return
        retryable = code == h2.errors.ErrorCodes.REFUSED_STREAM
        stream.error = StreamResetError(
            f"server reset stream {stream.stream_id} ({error_name(code)})"
            + ("; it was not processed and is safe to retry" if retryable else ""),
            stream_id=stream.stream_id,
            error_code=code,
            retryable=retryable,
        )
        log.debug("stream %d: reset by server (%s)", stream.stream_id, error_name(code))

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        code = int(event.error_code or 0)
        last = event.last_stream_id if event.last_stream_id is not None else 2**31 - 1
        data = event.additional_data or b""
        if self.goaway is not None:
            # A later GOAWAY may only lower last_stream_id; never trust a raise.
            last = min(last, self.goaway[1])
        self.goaway = (code, last, data)
        self.closed = True
        log.debug("GOAWAY received (%s, last stream %d, %r)", error_name(code), last, data[:100])

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        self.settings_received = True

    # -- consuming ------------------------------------------------------------

    def take_data(self, stream_id: int, max_bytes: int | None = None) -> bytes:
        """Remove up to ``max_bytes`` of buffered body from a stream (all if None).

        Consuming is what credits windows back to the server.
        """
        stream = self.streams[stream_id]
        data = stream.data
        if not data:
            return b""
        chunk: Any
        if max_bytes is None or max_bytes >= stream.buffered:
            chunk = b"".join(data) if len(data) > 1 else data[0]
            data.clear()
        else:
            pieces = []
            wanted = max_bytes
            while wanted:
                head = data[0]
                if len(head) <= wanted:
                    pieces.append(data.popleft())
                    wanted -= len(head)
                else:
                    # The rest stays as a view: a large piece read in small
                    # steps must not be copied again at every step.
                    view = head if type(head) is memoryview else memoryview(head)
                    pieces.append(view[:wanted])
                    data[0] = view[wanted:]
                    wanted = 0
            chunk = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        taken: bytes = chunk if type(chunk) is bytes else bytes(chunk)
        self._consumed(stream, len(taken))
        return taken

    def _consumed(self, stream: StreamState, size: int) -> None:
        stream.buffered -= size
        self.total_buffered -= size
        if not stream.ended and stream.error is None:
            self._credit_stream(stream, size)
        self._credit_connection(0, size)

    def _credit_stream(self, stream: StreamState, size: int) -> None:
        increment = stream.window._data_consumed(size)
        if increment and not stream.ended:
            try:
                self._h2.increment_flow_control_window(increment, stream.stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                pass  # the stream closed meanwhile; nothing to credit

    def _credit_connection(self, received: int, freed: int) -> None:
        """Give connection window back to the server.

        ``received`` bytes just arrived; ``freed`` bytes just left our buffers
        (read by the application, or dropped). While little is buffered every
        byte is credited on arrival; above ``max_buffered`` only as much as is
        freed, so memory stays bounded yet reading any stream always reopens
        the window for the others.
        """
        self._withheld += received
        if self.total_buffered <= self._max_buffered:
            release = self._withheld
        else:
            release = min(freed, self._withheld)
        window = self._connection_window
        if window is None:
            return
        if not release and (window.window_size > 0 or not window.unacknowledged):
            return
        # With release 0 we get here only when the window is shut while the
        # manager still holds credit it was waiting to batch: asking it now
        # (its blocked() hook) is the only way that credit ever leaves.
        self._withheld -= release
        increment = window._data_consumed(release)
        # After the server's graceful GOAWAY its streams may still finish and
        # need window; only our own GOAWAY or a failure ends the crediting.
        if increment and not self._goaway_sent and self.fatal is None:
            try:
                self._h2.increment_flow_control_window(increment)
            except h2.exceptions.ProtocolError:
                pass

    # -- closing streams ------------------------------------------------------

    def discard_stream(self, stream_id: int) -> None:
        """The application is done with this response: drop it, reset if unfinished."""
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        stream.discarded = True
        if not stream.ended and stream.error is None and self.fatal is None:
            self.reset(stream_id, h2.errors.ErrorCodes.CANCEL)
        self._release_stream_buffer(stream)
        del self.streams[stream_id]

    def reset(self, stream_id: int, error_code: int) -> None:
        """Send RST_STREAM for ``stream_id`` (errors if already closed are ignored)."""
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.request_ended = True
        try:
            self._h2.reset_stream(stream_id, error_code=error_code)
            log.debug("stream %d: reset by us (%s)", stream_id, error_name(error_code))
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            pass

    def _reset_with_error(self, stream: StreamState, code: int, message: str) -> None:
        # Body bytes that arrived before the fault stay for the reader, who
        # gets them and then this error.
        stream.error = ProtocolError(message, code)
        self.reset(stream.stream_id, code)

    def _release_stream_buffer(self, stream: StreamState) -> None:
        if stream.buffered:
            size, stream.buffered = stream.buffered, 0
            stream.data.clear()
            self.total_buffered -= size
            self._credit_connection(0, size)

    # -- what a waiting stream should see --------------------------------------

    def stream_failure(self, stream: StreamState) -> HyperError | None:
        """The error a waiter on ``stream`` gets now, or ``None`` if it may go on."""
        if stream.error is not None:
            return stream.error
        if stream.complete:
            return None
        if self.goaway is not None:
            code, last, data = self.goaway
            if stream.stream_id > last:
                return ConnectionTerminated(
                    f"server sent GOAWAY ({error_name(code)}) before processing stream "
                    f"{stream.stream_id}; it is safe to retry",
                    error_code=code,
                    last_stream_id=last,
                    retryable=True,
                    additional_data=data,
                )
            if code != 0:
                return ConnectionTerminated(
                    f"server ended the connection with GOAWAY ({error_name(code)})"
                    + (f": {data.decode('utf-8', 'replace')}" if data else ""),
                    error_code=code,
                    last_stream_id=last,
                    retryable=False,
                    additional_data=data,
                )
        return self.fatal

    def _live_stream(self, stream_id: int) -> StreamState | None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.discarded or stream.error is not None:
            return None
        return stream


def _cannot_have_body(stream: StreamState) -> bool:
    if stream.head:
        return True
    headers = stream.headers
    return headers is not None and headers[0][1] in (b"204", b"304")


def _on_stream_malformed(core: H2Core, event: StreamMalformed) -> None:
    if core._connection_window is not None and event.flow_controlled_length:
        # h2 counted the DATA against the connection window: give it back.
        core._connection_window._data_received(event.flow_controlled_length)
        core._batch_credit(event.flow_controlled_length, event.flow_controlled_length)
    stream = core.streams.get(event.stream_id)
    if stream is not None:  # RST_STREAM is already queued (h2_adapters._reset_closed_stream)
        core._reset_with_error(stream, 0x1, f"stream {event.stream_id}: malformed response: {event.message}")


_HANDLERS: dict[type[h2.events.Event], Callable[[H2Core, Any], None]] = {
    StreamMalformed: _on_stream_malformed,
    h2.events.ResponseReceived: H2Core._on_response,
    h2.events.InformationalResponseReceived: H2Core._on_informational,
    h2.events.TrailersReceived: H2Core._on_trailers,
    h2.events.DataReceived: H2Core._on_data,
    h2.events.StreamEnded: H2Core._on_stream_ended,
    h2.events.StreamReset: H2Core._on_stream_reset,
    h2.events.ConnectionTerminated: H2Core._on_goaway,
    h2.events.RemoteSettingsChanged: H2Core._on_settings,
    h2.events.PushedStreamReceived: H2Core._on_push,
    h2.events.PingAckReceived: H2Core._on_ping_ack,
}

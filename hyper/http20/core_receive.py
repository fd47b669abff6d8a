"""The receiving half of the HTTP/2 core: frames from the server in, stream states changed.

:class:`CoreReceiver` is the base of :class:`~hyper.http20.core.H2Core`: it
splits the received bytes into ``h2`` events, checks what RFC 9113 leaves to
the client (header blocks, the server preface, floods of control frames),
and moves each stream's state (:mod:`~hyper.http20.streams`). DATA and the
window credit it gives back are handled by its base
:class:`~hyper.http20.core_bodies.CoreBodies`, connection-fatal errors
recorded by its base :class:`~hyper.http20.core_failures.CoreFailures`.
Policy lives in the bookkeeping modules it calls: connection credit
(:mod:`~hyper.http20.credit`), pushes (:mod:`~hyper.http20.pushes`) and pings
(:mod:`~hyper.http20.pings`). Sans-I/O: no sockets, threads or clocks; the
session calls in under its state lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import hpack.exceptions

from ..common.body import LengthCounter
from ..exceptions import HyperError, ProtocolError, StreamResetError
from ..limits import Limits
from .core_bodies import CoreBodies
from .core_failures import CoreFailures, error_name
from .credit import ConnectionCredit
from .fields import response_header_problem
from .h2_adapters import DataOnClosedStream, FrameSplitter, StreamMalformed
from .h2_internals_count import OpenStreamCount
from .hpack_cache import MEMO_MAX_BLOCK
from .pings import PingBook
from .pushes import PushBook, PushPromise
from .receive_records import RESPONSE_FIELDS
from .streams import RequestEvent, RequestState, ResponseEvent, ResponseState, StreamState
from .window import BaseFlowControlManager

log = logging.getLogger("hyper")

#: Events that show a response progressing (they reset the flood count).
_PROGRESS = frozenset((h2.events.ResponseReceived, h2.events.StreamEnded))
#: Events that cost work and show no progress (counted against the flood budget).
_COSTLY = frozenset((h2.events.PingReceived, h2.events.RemoteSettingsChanged, h2.events.DataReceived))

#: Until the server's SETTINGS arrive, RFC 9113 lets us assume this many
#: concurrent streams (section 6.5.2 gives no default; 100 is the floor it
#: recommends servers allow).
ASSUMED_MAX_CONCURRENT_STREAMS = 100
#: Valid header blocks remembered per connection.
_VALID_BLOCKS_MEMO = 64
#: How much of what a server sends before its SETTINGS is kept to explain a failure.
FIRST_BYTES = 512


class CoreReceiver(CoreBodies, CoreFailures):
    """What the server sent, applied to the connection's state (see the module docstring)."""

    # Set by H2Core.__init__; declared here, where they are used most.
    _h2: h2.connection.H2Connection
    _frames: FrameSplitter
    _credit: ConnectionCredit
    _pushes: PushBook
    _pings: PingBook
    _enable_push: bool
    _first_bytes: bytes | None
    _window_manager: type[BaseFlowControlManager]
    _stream_window: int
    _control_frames: int
    _valid_blocks: dict[tuple[Any, bool], None]
    _touched: set[int]
    _touched_all: bool
    _open_count: OpenStreamCount
    limits: Limits
    streams: dict[int, StreamState]
    settings_received: bool
    max_concurrent_streams: int
    fatal: HyperError | None
    goaway: tuple[int, int, bytes] | None
    closed: bool

    # Defined by H2Core (the sending half).
    def close(self, error_code: int = 0, message: str = "connection closed") -> None:
        raise NotImplementedError

    def reset(self, stream_id: int, error_code: int) -> None:
        raise NotImplementedError

    def discard_stream(self, stream_id: int) -> None:
        raise NotImplementedError

    def _new_stream(
        self, stream_id: int, request_ended: bool, head: bool, declared_length: int | None = None
    ) -> StreamState:
        request = RequestState.DONE if request_ended else RequestState.SENDING
        # RFC 9113 section 8.1.1: DATA beyond (or short of) a declared
        # content-length makes the request malformed; the upload checks it.
        return StreamState(
            stream_id,
            self._window_manager(self._stream_window),
            request=request,
            head=head,
            upload=LengthCounter(declared_length),
        )

    # -- the frame loop ---------------------------------------------------------------

    def receive(self, data: bytes | memoryview) -> None:
        """Process bytes from the server; the state of affected streams changes."""
        if self.fatal is not None:
            return  # nothing is received: h2's streams stay as they are
        first = self._first_bytes
        if first is not None and not self.settings_received and len(first) < FIRST_BYTES:
            # Kept to explain a failure before the server's SETTINGS (hints).
            self._first_bytes = first + bytes(data[: FIRST_BYTES - len(first)])
        try:
            # h2's events, and a plain response's frames as records
            # (hyper.http20.receive_records), which the loop below applies.
            events, error = self._frames.receive(data)
        finally:
            # Any frame may move a stream's state (section 5.1): the cached
            # count of open streams goes (see h2_internals_count.OpenStreamCount),
            # also when the splitter stopped on an error part-way. Nothing
            # asks for the count while the frames are split.
            self._open_count.forget()
        data_received = h2.events.DataReceived
        touched = self._touched
        credit = self._credit
        credit.begin_batch()
        event: Any  # each kind is told apart by its exact type, below
        # The StreamEnded already handled with the DATA frame that carried
        # its END_STREAM (see below): the next event, skipped.
        ended_with_data = None
        # Every event was handled: set after the loop. A loop left early (a
        # failure, an unforeseen error) may have skipped a SETTINGS that h2
        # already applied: the stream limit is read again then (finally).
        handled_all = False
        try:
            for event in events:
                if event is ended_with_data:
                    continue
                kind = type(event)
                if kind is tuple and self.settings_received:
                    # A plain response's HEADERS or last DATA as a record
                    # (hyper.http20.receive_records): h2's bookkeeping is
                    # done; what the shortcuts below do for the events it
                    # stands for (a stream event, progress), without them.
                    self._control_frames = 0
                    stream_id = event[1]
                    touched.add(stream_id)
                    if event[0] == RESPONSE_FIELDS:
                        self._on_response_fields(stream_id, event[2])
                    else:
                        self._on_last_data(stream_id, event[2], event[3])
                    continue
                if kind in _PROGRESS_HANDLERS and self.settings_received:
                    # Response headers or an end of stream, the common case
                    # after the server's preface: what the general steps
                    # below decide for them (a stream event, always with its
                    # id; progress, see _flooded), without their questions.
                    self._control_frames = 0
                    touched.add(event.stream_id)
                    _PROGRESS_HANDLERS[kind](self, event)
                    continue
                if kind is data_received and event.data and self.settings_received:
                    self._control_frames = 0  # progress: see _flooded
                    stream_id = event.stream_id
                    touched.add(stream_id)
                    self._on_body(stream_id, event.data, event.flow_controlled_length or 0)
                    ended = event.stream_ended
                    if ended is not None:
                        # DATA with END_STREAM (RFC 9113 section 6.1): h2 lists
                        # its StreamEnded right after it, and handling it here
                        # is what the shortcut above would do with it (same
                        # stream, progress), minus one turn of this loop.
                        self._stream_ended(stream_id)
                        ended_with_data = ended
                    continue
                if kind is tuple:
                    # A record before the server's SETTINGS: the failure below.
                    stream_id = event[1]
                else:
                    stream_id = getattr(event, "stream_id", None)
                if stream_id:
                    touched.add(stream_id)
                else:
                    self._touched_all = True
                if not self.settings_received and type(event) is not h2.events.RemoteSettingsChanged:
                    # RFC 9113 section 3.4: the server preface is a SETTINGS frame.
                    message = "server's first frame was not SETTINGS: this is not an HTTP/2 server"
                    self.fail(ProtocolError(message, 1), 1)
                    return
                if self._flooded(event):
                    calm = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM  # RFC 9113 section 10.5
                    self.fail(
                        ProtocolError(
                            f"server sent more than {self.limits.max_control_frames_per_second} PING, "
                            "SETTINGS or empty DATA frames without making progress (flood)",
                            calm,
                        ),
                        calm,
                    )
                    return
                handler = _HANDLERS.get(type(event))
                if handler is not None:
                    handler(self, event)
            handled_all = True
        finally:
            if not handled_all:
                self._note_stream_limit()
            # The connection window is credited once per batch of frames, not
            # per DATA frame: the window manager's decision costs a call.
            received, freed = credit.end_batch()
            if received or freed:
                self._credit_connection(received, freed)
            # credit.over_budget, written out and asked first: the usual
            # answer (no) skips the push book's __bool__ call too.
            if credit.total_buffered > credit.max_buffered and self._pushes:
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
        """Count frames that cost us work but carry no response progress (RFC 9113 section 10.5)."""
        kind = type(event)
        if kind in _PROGRESS:
            # Response headers or an end of stream (the common case first):
            # progress. DATA with a payload is progress too (see receive()).
            self._control_frames = 0
        elif kind is h2.events.DataReceived and event.data:
            self._control_frames = 0
        elif kind is DataOnClosedStream and not event.flow_controlled_length:
            # Empty DATA on a closed stream: no progress, and h2 answers each
            # with a RST_STREAM (section 5.1). Non-empty ones are not counted:
            # cancelling a download legitimately brings up to a window of them.
            self._control_frames += 1
            return self._control_frames > self.limits.max_control_frames_per_second
        elif kind in _COSTLY or (
            kind is h2.events.PingAckReceived and not self._pings.is_ours(event.ping_data)
        ):
            # PING, SETTINGS, empty DATA and ACKs of PINGs we never sent.
            self._control_frames += 1
            return self._control_frames > self.limits.max_control_frames_per_second
        return False

    def take_touched(self) -> set[int] | None:
        """Stream ids that :meth:`receive` changed since the last call; ``None`` for "all of them"."""
        touched, everything = self._touched, self._touched_all
        self._touched, self._touched_all = set(), False
        return None if everything else touched

    # -- header blocks ----------------------------------------------------------------

    def _checked_fields(
        self, stream_id: int, headers: Any, what: str, trailers: bool = False
    ) -> tuple[StreamState, list[tuple[bytes, bytes]]] | None:
        """The live stream of a header block and its fields, if they are valid.

        A malformed block fails that stream only (RST_STREAM PROTOCOL_ERROR,
        RFC 9113 section 8.1.1).
        """
        stream = self.streams.get(stream_id)
        if stream is None or stream.discarded or stream.error is not None:  # stream.live, written out
            return None
        # The event's own list (h2's, or the fast path's decode) is not
        # shared: the stream may keep it. Anything else is copied.
        fields = headers if type(headers) is list else list(headers or [])
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
        self._on_response_fields(event.stream_id, event.headers)

    def _on_response_fields(self, stream_id: int, headers: Any) -> None:
        """A final response's header block (a ResponseReceived, or a RESPONSE_FIELDS record)."""
        checked = self._checked_fields(stream_id, headers, "response")
        if checked is not None:
            stream, fields = checked
            # stream.final_headers(fields), written out: once per response.
            stream.headers = fields
            if stream.response is ResponseState.AWAITING_HEADERS:
                # response_event(FINAL_HEADERS) from there, written out: the
                # body may come (ended and complete stay False).
                stream.response = ResponseState.RECEIVING_BODY
            else:
                stream.response_event(ResponseEvent.FINAL_HEADERS)
            if log.isEnabledFor(logging.DEBUG):  # once per response: one call, not two, when off
                log.debug("stream %d: response headers received", stream_id)

    def _on_informational(self, event: h2.events.InformationalResponseReceived) -> None:
        checked = self._checked_fields(event.stream_id, event.headers, "1xx response")
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
        checked = self._checked_fields(event.stream_id, event.headers, "trailers", trailers=True)
        if checked is not None:
            stream, fields = checked
            stream.trailers = fields

    # -- stream ends and resets ---------------------------------------------------------

    def _on_stream_ended(self, event: h2.events.StreamEnded) -> None:
        self._stream_ended(event.stream_id)

    def _stream_ended(self, stream_id: int) -> None:
        """END_STREAM from the server on ``stream_id`` (RFC 9113 section 5.1)."""
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.response_event(ResponseEvent.END_STREAM)
            if log.isEnabledFor(logging.DEBUG):  # once per response: one call, not two, when off
                log.debug("stream %d: response complete", stream_id)

    def _on_stream_reset(self, event: h2.events.StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        code = int(event.error_code or 0)
        stream.request_event(RequestEvent.SERVER_RESET)
        if stream.complete or stream.discarded:
            # RST_STREAM(NO_ERROR) after a full response (e.g. an early 413
            # during an upload) only means "stop sending" (RFC 9113 section 8.1).
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
        # REFUSED_STREAM: the server did not process it (RFC 9113 section 8.7).
        retryable = code == h2.errors.ErrorCodes.REFUSED_STREAM
        stream.error = StreamResetError(
            f"server reset stream {stream.stream_id} ({error_name(code)})"
            + ("; it was not processed and is safe to retry" if retryable else ""),
            stream_id=stream.stream_id,
            error_code=code,
            retryable=retryable,
        )
        log.debug("stream %d: reset by server (%s)", stream.stream_id, error_name(code))

    def _on_stream_malformed(self, event: StreamMalformed) -> None:
        if self._credit.window is not None and event.flow_controlled_length:
            # h2 counted the DATA against the connection window: give it back.
            self._data_credit(event.flow_controlled_length, event.flow_controlled_length)
        stream = self.streams.get(event.stream_id)
        if stream is not None:  # RST_STREAM is already queued (h2_adapters._reset_closed_stream)
            self._reset_with_error(
                stream, 0x1, f"stream {event.stream_id}: malformed response: {event.message}"
            )

    def _on_data_on_closed_stream(self, event: DataOnClosedStream) -> None:
        # h2 took DATA on a stream it had closed (in flight when we reset
        # it, RFC 9113 section 5.1): it counts against the connection window
        # like any DATA (section 6.9), and nobody will read it, so the window
        # manager hears of it as received and freed at once.
        size = event.flow_controlled_length
        if self._credit.window is None:
            return
        if size:
            self._data_credit(size, size)
        # Even an empty frame: h2's process_bytes may credit then what it
        # gathered from earlier ones (the public-API mode's own rule).
        self._credit.credited_by_h2(event.credited_by_h2)

    def _reset_with_error(self, stream: StreamState, code: int, message: str) -> None:
        # Body bytes that arrived before the fault stay for the reader, who
        # gets them and then this error.
        stream.error = ProtocolError(message, code)
        self.reset(stream.stream_id, code)

    # -- connection-wide frames -------------------------------------------------------

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        code = int(event.error_code or 0)
        last = event.last_stream_id if event.last_stream_id is not None else 2**31 - 1
        data = event.additional_data or b""
        if self.goaway is not None:
            # A later GOAWAY may only lower last_stream_id (RFC 9113 section 6.8).
            last = min(last, self.goaway[1])
            if code == 0 and self.goaway[0] != 0:
                # Nor may it take back an error: after GOAWAY(INTERNAL_ERROR)
                # a NO_ERROR one must not make the connection's end look
                # graceful (its streams would be sent again elsewhere, and
                # the connection reopened silently). The error stays, with
                # its debug data.
                code, data = self.goaway[0], self.goaway[2]
        self.goaway = (code, last, data)
        self.closed = True
        log.debug("GOAWAY received (%s, last stream %d, %r)", error_name(code), last, data[:100])

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        self.settings_received = True
        # h2 applied the SETTINGS on receipt (RFC 9113 section 6.5.3): the
        # server's MAX_CONCURRENT_STREAMS may have changed (it may change at
        # any time, section 6.5.2).
        self._note_stream_limit()

    def _note_stream_limit(self) -> None:
        """Set :attr:`max_concurrent_streams` from h2's remote settings in force (RFC 9113 section 5.1.2).

        Called wherever those may have changed: at the start, and after
        every SETTINGS h2 received. Before the server's SETTINGS arrive, at
        most :data:`ASSUMED_MAX_CONCURRENT_STREAMS`.
        """
        limit = self._h2.remote_settings.max_concurrent_streams
        self.max_concurrent_streams = (
            limit if self.settings_received else min(limit, ASSUMED_MAX_CONCURRENT_STREAMS)
        )

    def _on_ping_ack(self, event: h2.events.PingAckReceived) -> None:
        self._pings.ack_received(event.ping_data)

    # -- server push ------------------------------------------------------------------

    def _on_push(self, event: h2.events.PushedStreamReceived) -> None:
        pushed_id, parent_id = event.pushed_stream_id, event.parent_stream_id
        if pushed_id is None or parent_id is None:  # h2 always sets both
            return
        if not self._enable_push:
            # RFC 9113 section 8.4: push was disabled in our SETTINGS (h2 only
            # checks once the server acknowledged them).
            self.fail(ProtocolError("server sent PUSH_PROMISE although push is disabled", 1), 1)
            return
        parent = self.streams.get(parent_id)
        if parent is not None:
            # Whatever becomes of the push (refused below, taken, dropped), the
            # server answered on the parent: a later refusal of it is no
            # promise that it was not processed (resending.py asks this).
            parent.promised = True
        headers = event.headers
        # The event's own list (h2's, or the fast path's decode) is not
        # shared: the stream may keep it. Anything else is copied.
        fields = headers if type(headers) is list else list(headers or [])
        held = sum(1 for stream_id in self.streams if not stream_id % 2)
        refusal = self._pushes.refusal(pushed_id, fields, held)
        if refusal is not None:
            self.reset(pushed_id, refusal)
            return
        stream = StreamState(
            pushed_id, self._window_manager(self._stream_window), head=dict(fields)[b":method"] == b"HEAD"
        )
        stream.request_event(RequestEvent.END_STREAM)  # a pushed request has no body to send
        self.streams[pushed_id] = stream
        self._pushes.add(PushPromise(pushed_id, parent_id, fields))

    def _shed_untaken_pushes(self) -> None:
        """Cancel pushes nobody took, oldest first, while too much is buffered.

        A push is the server's guess; unlike a response the application asked
        for, its data must not hold the connection window shut for the
        streams that were asked for.
        """
        for push in self._pushes.oldest_first():
            if not self._credit.over_budget:
                return
            stream = self.streams.get(push.stream_id)
            if stream is not None and stream.buffered:
                self._pushes.remove(push)
                log.debug(
                    "stream %d: untaken push cancelled, %d bytes buffered", push.stream_id, stream.buffered
                )
                self.discard_stream(push.stream_id)


_HANDLERS: dict[type[h2.events.Event], Callable[[CoreReceiver, Any], None]] = {
    StreamMalformed: CoreReceiver._on_stream_malformed,
    DataOnClosedStream: CoreReceiver._on_data_on_closed_stream,
    h2.events.ResponseReceived: CoreReceiver._on_response,
    h2.events.InformationalResponseReceived: CoreReceiver._on_informational,
    h2.events.TrailersReceived: CoreReceiver._on_trailers,
    h2.events.DataReceived: CoreReceiver._on_data,
    h2.events.StreamEnded: CoreReceiver._on_stream_ended,
    h2.events.StreamReset: CoreReceiver._on_stream_reset,
    h2.events.ConnectionTerminated: CoreReceiver._on_goaway,
    h2.events.RemoteSettingsChanged: CoreReceiver._on_settings,
    h2.events.PushedStreamReceived: CoreReceiver._on_push,
    h2.events.PingAckReceived: CoreReceiver._on_ping_ack,
}

#: The handlers of the events that show progress (_PROGRESS), for the
#: receive loop's shortcut.
_PROGRESS_HANDLERS = {kind: _HANDLERS[kind] for kind in _PROGRESS}

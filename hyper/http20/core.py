"""The sans-I/O HTTP/2 client core: the connection's state, and what we send.

This module never touches sockets, threads or clocks. :class:`H2Core` holds
the connection's state: the ``h2`` state machine, every stream's state
(:mod:`~hyper.http20.streams`), the connection credit
(:mod:`~hyper.http20.credit`), the push and ping books
(:mod:`~hyper.http20.pushes`, :mod:`~hyper.http20.pings`). It queues what we
send (preface, HEADERS, DATA, RST_STREAM, GOAWAY) and hands back the bytes
(:meth:`H2Core.pieces_to_send`); what the server sent goes through
:meth:`~hyper.http20.core_receive.CoreReceiver.receive`, its receiving half.
Response bodies and the window credit they give back are
:mod:`~hyper.http20.core_bodies`; the connection-fatal error and what each
waiter is told, :mod:`~hyper.http20.core_failures`.
The session owns the socket and the locks and calls in here with its state
lock held.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import h2.errors
import h2.exceptions
import h2.settings

from ..exceptions import ConnectionTerminated, HyperError, InvalidHeader, fresh
from ..limits import Limits
from .core_failures import error_name
from .core_file_runs import CoreFileRuns
from .core_push_ping import CorePushPing
from .core_receive import ASSUMED_MAX_CONCURRENT_STREAMS, CoreReceiver
from .credit import ConnectionCredit
from .data_frames import frame_data_run
from .h2_adapters import FrameSplitter, new_client_connection, send_plain_data, send_request_headers
from .h2_connections import AdaptedH2Connection
from .h2_internals import mark_head_request, release_connection, set_header_list_limit
from .h2_internals_count import OpenStreamCount
from .h2_internals_output import queued_output
from .h2_internals_steps import STEPS_PROBLEM, open_outbound_streams, take_output
from .pings import PingBook
from .pushes import PushBook, PushPromise
from .streams import RequestEvent, StreamState
from .window import BaseFlowControlManager, FlowControlManager

__all__ = [
    "ASSUMED_MAX_CONCURRENT_STREAMS",
    "DEFAULT_CONNECTION_WINDOW",
    "DEFAULT_STREAM_WINDOW",
    "H2Core",
    "PushPromise",
    "StreamState",
    "error_name",
]

log = logging.getLogger("hyper")

#: Per-stream receive window we advertise (browsers use about 6 MiB).
DEFAULT_STREAM_WINDOW = 6 * 1024 * 1024
#: Connection receive window we open up to right after the preface.
DEFAULT_CONNECTION_WINDOW = 16 * 1024 * 1024
#: The largest odd stream id (RFC 9113 section 5.1.1).
_LAST_CLIENT_STREAM_ID = 2**31 - 1


class H2Core(CoreReceiver, CorePushPing, CoreFileRuns):
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
        # h2's count of open streams, through the fence's walk (made once
        # per change, see OpenStreamCount) when this connection uses the fast
        # paths; h2's property every time otherwise (public API only).
        self._count_open_streams = (
            open_outbound_streams if type(self._h2) is AdaptedH2Connection and STEPS_PROBLEM is None else None
        )
        self._open_count = OpenStreamCount(self._h2, self._count_open_streams)
        # h2's queued output: through the fence when h2 may be read directly
        # (no copy when nothing is queued); h2's public method otherwise.
        self._take_output: Callable[[], bytes] = (
            partial(take_output, self._h2) if self._count_open_streams is not None else self._h2.data_to_send
        )
        # h2's output buffer, looked at without taking it (has_output), where
        # take_output reads it anyway; None: only taking it would tell.
        self._peek_output: Callable[[Any], Any] | None = (
            queued_output if self._count_open_streams is not None else None
        )
        self._frames = FrameSplitter(self._h2)
        self._enable_push = enable_push
        self.limits = limits = limits or Limits()
        # (scheme, host, port) of the connection: pushes for others are refused.
        self._pushes = PushBook(origin, limits.max_pushed_streams)
        self._origin = origin
        # What the server sent before its SETTINGS (at most FIRST_BYTES): if
        # the connection fails then, it says why (a TLS alert, an HTTP/1.x
        # page). None once an h2c upgrade proved the server speaks HTTP.
        self._first_bytes: bytes | None = b""
        self._pings = PingBook()
        self._window_manager = window_manager
        self._stream_window = stream_window
        self._connection_window_size = connection_window
        max_buffered = limits.max_buffered if limits.max_buffered is not None else connection_window
        self._credit = ConnectionCredit(window_manager, connection_window, max_buffered)
        #: The connection credit (:mod:`~hyper.http20.credit`), the same
        #: object for the core's life: its plain ``total_buffered`` (bytes
        #: received over all streams and not yet consumed, the same count
        #: as :attr:`total_buffered`) is what the session reads, twice per
        #: read, without a property call. Read-only outside the core.
        self.credit = self._credit
        self.streams: dict[int, StreamState] = {}
        #: The server's SETTINGS have arrived.
        self.settings_received = False
        #: How many streams the server lets us have open at once: h2's
        #: SETTINGS_MAX_CONCURRENT_STREAMS in force, at most
        #: ASSUMED_MAX_CONCURRENT_STREAMS before the server's SETTINGS.
        #: A plain attribute (asked before every request), kept equal to
        #: that by _note_stream_limit wherever h2's remote settings change:
        #: h2 applies them only on receiving SETTINGS (RFC 9113 section 6.5.3).
        self.max_concurrent_streams = ASSUMED_MAX_CONCURRENT_STREAMS
        self._note_stream_limit()
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
        self._open_count.forget()  # h2 opens stream 1 itself
        settings = self._h2.initiate_upgrade_connection()
        assert settings is not None  # always returned on the client side
        self._open_connection_window()
        if head:
            # h2 learns the method from HEADERS it sends; stream 1's went as HTTP/1.1.
            mark_head_request(self._h2, 1)
        # Its request went as HTTP/1.1, so our half of stream 1 is done.
        self.streams[1] = self._new_stream(1, request_ended=True, head=head)
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
        # RFC 9113 section 6.9.2: the connection window starts at 65535 and
        # only WINDOW_UPDATE (never SETTINGS) widens it.
        extra = self._credit.open()
        if extra > 0:
            self._h2.increment_flow_control_window(extra)

    def data_to_send(self) -> bytes:
        """Bytes queued for the server (empty when there are none)."""
        return b"".join(self.pieces_to_send())

    def _queue_frames(self, pieces: list[Any]) -> None:
        """Queue frames written outside h2, after whatever h2 queued before them."""
        pending = self._take_output()
        if pending:
            self._outbound.append(pending)
        self._outbound.extend(pieces)

    def has_output(self) -> bool:
        """Something may be queued for the server; False only when :meth:`pieces_to_send` would give nothing.

        Exact with the fast paths on: false exactly when neither our own
        queue nor h2's output buffer (which h2 also fills by itself: ACKs,
        RST_STREAM, WINDOW_UPDATE) holds a byte. Without them h2's buffer
        is not looked at, and the answer is always True. Cheaper than a
        flush that finds nothing: the session asks after each response.
        """
        if self._outbound:
            return True
        peek = self._peek_output
        if peek is None:
            return True
        return True if peek(self._h2) else False

    def pieces_to_send(self) -> list[Any]:
        """What is queued for the server, as bytes-like pieces to send in order."""
        pending = self._take_output()
        if not self._outbound:
            return [pending] if pending else []
        pieces, self._outbound = self._outbound, []
        if pending:
            pieces.append(pending)
        return pieces

    def release(self) -> None:
        """The socket is closed and nothing more will be received: let h2's state go.

        Streams already received stay readable (they are hyper's own
        :class:`StreamState` objects); only h2's receiving machinery goes.
        """
        self._open_count.forget()  # h2's stream tables are emptied below
        release_connection(self._h2)

    def close(self, error_code: int = 0, message: str = "connection closed") -> None:
        """Queue GOAWAY, once; later calls do nothing."""
        self.closed = True
        self._open_count.forget()  # GOAWAY moves h2's connection state (RFC 9113 section 6.8)
        if self._goaway_sent:
            return
        self._goaway_sent = True
        try:
            self._h2.close_connection(error_code=error_code)
        except h2.exceptions.ProtocolError:
            pass  # already closed by the peer or by an earlier error
        log.debug("sending GOAWAY (%s): %s", error_name(error_code), message)

    # -- opening streams ------------------------------------------------------

    def can_open_stream(self) -> bool:
        """True when a new stream fits within the server's concurrency limit (RFC 9113 section 5.1.2)."""
        # One comparison: the limit is an attribute, kept up to date on receipt.
        return self._open_count.get() < self.max_concurrent_streams

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

    def open_stream(
        self,
        headers: list[tuple[bytes, bytes]],
        end_stream: bool,
        declared_length: int | None = None,
        slot_checked: bool = False,
        refusal_checked: bool = False,
    ) -> int:
        """Queue HEADERS for a new request and return its stream id.

        ``headers`` holds pseudo-headers first, as :func:`~hyper.http20.fields.build_request_headers`
        makes them. The caller checked :meth:`can_open_stream`.
        ``declared_length`` is the ``content-length`` the HEADERS declare:
        the stream's body is counted against it across every send.
        ``slot_checked``: :meth:`can_open_stream` was true just before, with
        nothing changed since (the session holds its lock across both), so
        the count of open streams h2 would make again is skipped.
        ``refusal_checked``: :meth:`accepting_streams` is known to answer
        ``None`` (the session saw it so after its last step that could change
        it, under the lock it still holds), so it is not asked again.
        """
        if not refusal_checked:
            refusal = self.accepting_streams()
            if refusal is not None:
                # A copy: raising the stored error itself would give it a
                # traceback whose frames hold this core (a reference cycle).
                raise fresh(refusal)
        highest = self._h2.highest_outbound_stream_id
        if highest and highest <= _LAST_CLIENT_STREAM_ID - 2 and self._open_count.cached:
            # What get_next_available_stream_id answers after our first
            # stream (RFC 9113 section 5.1.1: the next odd id, within 2**31-1),
            # without its two calls (it and its debug log to h2's DummyLogger:
            # hyper's config passes no logger). Fast paths only.
            stream_id = highest + 2
        else:
            stream_id = self._next_stream_id_from_h2()
        if not slot_checked and self._open_count.cached:
            # h2's own check (send_headers refuses a stream over the server's
            # MAX_CONCURRENT_STREAMS, RFC 9113 section 5.1.2), on the cached
            # count; over the limit, h2's path raises its own error below.
            slot_checked = self._open_count.get() + 1 <= self._h2.remote_settings.max_concurrent_streams
        try:
            frames = send_request_headers(self._h2, stream_id, headers, end_stream, slot_checked)
            if frames is None:
                self._open_count.forget()  # h2's own path: its walk, its changes
                self._h2.send_headers(stream_id, headers, end_stream=end_stream)
            else:
                self._queue_frames(frames)
                self._open_count.opened()  # one more stream that counts
        except h2.exceptions.ProtocolError as exc:
            self._open_count.forget()
            raise InvalidHeader(f"request headers refused: {exc}") from exc
        # The upload is held to ``declared_length`` (see _new_stream).
        self.streams[stream_id] = self._new_stream(
            stream_id,
            request_ended=end_stream,
            head=headers[0][1] == b"HEAD",
            declared_length=declared_length,
        )
        if log.isEnabledFor(logging.DEBUG):  # once per request: one call, not two, when off
            log.debug("stream %d opened", stream_id)
        return stream_id

    def _next_stream_id_from_h2(self) -> int:
        """h2's ``get_next_available_stream_id``; a connection out of ids is retryable elsewhere."""
        try:
            return self._h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError as exc:
            raise ConnectionTerminated(
                "stream ids of this connection are used up; a new connection is needed",
                retryable=True,
            ) from exc

    # -- request bodies -------------------------------------------------------

    def send_window(self, stream_id: int) -> int:
        """How many body bytes may be sent on ``stream_id`` right now."""
        try:
            return self._h2.local_flow_control_window(stream_id)
        except (h2.exceptions.ProtocolError, KeyError):
            return 0

    def send_body(self, stream_id: int, data: memoryview, frame_payload: int | None = None) -> int:
        """Queue as much of ``data`` as the windows allow; return how much.

        The payload is queued by reference: the caller keeps ``data``
        unchanged until :meth:`pieces_to_send` has been sent.
        ``frame_payload``: bytes per DATA frame the caller prefers (the
        frames of one call are framed as one run); never above the peer's
        SETTINGS_MAX_FRAME_SIZE in force (RFC 9113 section 4.2).
        """
        self._open_count.forget()  # h2's send path (below) may change the stream's state
        window = self.send_window(stream_id)
        frame_size = self._h2.max_outbound_frame_size
        sent = 0
        # A SETTINGS change may leave the window below zero (RFC 9113
        # section 6.9.2): nothing may be sent then, and a negative length
        # must not slice from the end of the data.
        total = max(0, min(window, data.nbytes))
        if frame_payload is not None and total:
            # One window debit for the whole run (section 6.9.1: ``total``
            # fits both send windows), frames built without h2's per-frame
            # step; None when h2's state is not a plain sending one.
            run = frame_data_run(self._h2, stream_id, data[:total], min(frame_payload, frame_size))
            if run is not None:
                self._queue_frames(run)
                return total
            frame_size = min(frame_payload, frame_size)
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
        self._open_count.forget()  # our END_STREAM moves h2's stream state (section 5.1)
        if stream is not None and not stream.request_ended:
            stream.request_event(RequestEvent.END_STREAM)
            try:
                self._h2.end_stream(stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                # The server reset it meanwhile, or the connection was closed
                # (h2 refuses any send once closed): the error reaches the reader.
                pass

    def remote_settings(self) -> dict[int, int]:
        """The server's SETTINGS in force, by code (RFC 9113 section 6.5.2)."""
        return dict(self._h2.remote_settings)

    # -- closing streams ------------------------------------------------------

    def discard_stream(self, stream_id: int) -> None:
        """The application is done with this response: drop it, reset if unfinished."""
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        stream.discarded = True
        if not stream.ended and stream.error is None and self.fatal is None:
            self.reset(stream_id, h2.errors.ErrorCodes.CANCEL)
        if stream.buffered:  # unread bytes hold connection window (section 6.9)
            self._release_stream_buffer(stream)
        del self.streams[stream_id]

    def reset(self, stream_id: int, error_code: int) -> None:
        """Send RST_STREAM for ``stream_id`` (errors if already closed are ignored)."""
        stream = self.streams.get(stream_id)
        self._open_count.forget()  # RST_STREAM closes h2's stream (section 5.1)
        if stream is not None:
            stream.request_event(RequestEvent.RESET)
        try:
            self._h2.reset_stream(stream_id, error_code=error_code)
            log.debug("stream %d: reset by us (%s)", stream_id, error_name(error_code))
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            pass

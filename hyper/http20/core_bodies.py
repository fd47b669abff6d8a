"""Response bodies in the HTTP/2 core: DATA buffered per stream, taken, and credited back.

:class:`CoreBodies` is a base of :class:`~hyper.http20.core.H2Core`. Each
DATA frame's payload is kept on its stream (:meth:`CoreBodies._on_data`, the
receiving half's handler for DATA; a run of plain DATA frames as views of
the receive buffer, copied once, on taking), the application takes it
(:meth:`CoreBodies.take_data`), and what is taken, padded or dropped is
credited back to the server as WINDOW_UPDATE (RFC 9113 section 6.9), when
the stream's window manager and the connection credit
(:mod:`~hyper.http20.credit`) decide. This runs once per DATA frame and
once per read: whole methods, no layers between them. Sans-I/O, like the
rest of the core.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from ..exceptions import HyperError
from .credit import ConnectionCredit
from .streams import ResponseEvent, ResponseState, StreamState
from .window import BaseFlowControlManager

log = logging.getLogger("hyper")


class CoreBodies:
    """Body bytes in and out of the core, and the window credit they give back."""

    # Set by H2Core.__init__.
    _h2: h2.connection.H2Connection
    _credit: ConnectionCredit
    _goaway_sent: bool
    streams: dict[int, StreamState]
    fatal: HyperError | None

    if TYPE_CHECKING:
        # Defined by CoreReceiver (the receiving half).
        def _reset_with_error(self, stream: StreamState, code: int, message: str) -> None: ...

        def _stream_ended(self, stream_id: int) -> None: ...

    # Read by tests/test_frame_splitter.py, which compares two cores' state.
    @property
    def total_buffered(self) -> int:
        """Bytes received over all streams and not yet consumed."""
        return self._credit.total_buffered

    @property
    def _connection_window(self) -> BaseFlowControlManager | None:
        return self._credit.window

    @property
    def _withheld(self) -> int:
        return self._credit.withheld

    @property
    def _max_buffered(self) -> int:
        return self._credit.max_buffered

    # -- DATA in ----------------------------------------------------------------------

    def _on_data(self, event: h2.events.DataReceived) -> None:
        # bytes from h2, or a DATA run's list of views (hyper.http20.data_runs).
        self._on_body(event.stream_id, event.data or b"", event.flow_controlled_length or 0)

    def _on_body(self, stream_id: int, payload: Any, size: int) -> None:
        """A DATA frame's ``payload`` (bytes, or a run's list of views) and its flow-controlled ``size``."""
        # Runs once per DATA frame or run: stream checks are written out,
        # not asked through properties, and the credit takes one call.
        stream = self.streams.get(stream_id)
        if stream is None or stream.discarded or stream.error is not None:
            # Nobody will read it: give the connection window straight back.
            self._data_credit(size, size)
            return
        if payload and (
            # stream.cannot_have_body(), written out (RFC 9110 section 6.4.1:
            # a response to HEAD, or a 204/304, carries no content).
            stream.head or (stream.headers is not None and stream.headers[0][1] in (b"204", b"304"))
        ):
            self._data_credit(size, size)
            self._reset_with_error(
                stream,
                h2.errors.ErrorCodes.PROTOCOL_ERROR,
                f"stream {stream.stream_id}: body on a response that cannot have one (RFC 9110 6.4.1)",
            )
            return
        # The stream's manager counts it (its _data_received, written out).
        stream.window.window_size -= size
        credit = self._credit
        if type(payload) is list:
            # A run of plain DATA frames (hyper.http20.data_runs): views of
            # the receive buffer, kept as they are until take_data copies
            # them (the session copies them out first if it must read over
            # them: detach_views). No padding (RFC 9113 section 6.1), so the
            # flow-controlled size is the payloads' total.
            stream.data.extend(payload)
            stream.buffered += size
            credit.total_buffered += size
            if not credit.received(size, 0):  # _data_credit, written out
                self._credit_connection(size, 0)
            return
        if payload:
            stream.data.append(payload)
            stream.buffered += len(payload)
            credit.total_buffered += len(payload)
        padding = size - len(payload)
        if padding:
            # Padding is never consumed by the application; credit it at once.
            self._credit_stream(stream, padding)
        if not credit.received(size, padding):  # _data_credit, written out
            self._credit_connection(size, padding)

    def _on_last_data(self, stream_id: int, payload: bytes, size: int) -> None:
        """A response's last DATA frame (a LAST_DATA record, :mod:`hyper.http20.receive_records`).

        What :meth:`_on_body` and then :meth:`_stream_ended` do for the
        ``DataReceived`` and ``StreamEnded`` it stands for: written out for
        a live stream receiving the body of a response that may have one
        (once per response), those two otherwise.
        """
        stream = self.streams.get(stream_id)
        if (
            stream is None
            or stream.response is not ResponseState.RECEIVING_BODY
            or stream.discarded
            or stream.error is not None
            # stream.cannot_have_body(), written out (RFC 9110 section 6.4.1);
            # RECEIVING_BODY means the final headers are in.
            or stream.head
            or stream.headers[0][1] in (b"204", b"304")  # type: ignore[index]
        ):
            self._on_body(stream_id, payload, size)
            self._stream_ended(stream_id)
            return
        # _on_body's steps for an unpadded frame (size == len(payload)).
        stream.window.window_size -= size
        stream.data.append(payload)
        stream.buffered += size
        credit = self._credit
        credit.total_buffered += size
        if not credit.received(size, 0):  # _data_credit, written out
            self._credit_connection(size, 0)
        # RECEIVING_BODY to COMPLETE: the whole response is in.
        stream.response_event(ResponseEvent.END_STREAM)
        if log.isEnabledFor(logging.DEBUG):  # once per response: one call, not two, when off
            log.debug("stream %d: response complete", stream_id)

    def _data_credit(self, size: int, freed: int) -> None:
        """A DATA frame's connection credit: gathered for the end of ``receive``, or released now."""
        if not self._credit.received(size, freed):
            self._credit_connection(size, freed)

    def _credit_stream(self, stream: StreamState, size: int) -> None:
        """Give ``size`` bytes of ``stream``'s window back, as its window manager decides."""
        increment = stream.window._data_consumed(size)
        if increment and not stream.ended:
            try:
                self._h2.increment_flow_control_window(increment, stream.stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                pass  # the stream closed meanwhile; nothing to credit

    def _credit_connection(self, received: int, freed: int) -> None:
        """Give connection window back to the server, as :class:`ConnectionCredit` decides."""
        increment = self._credit.release(received, freed)
        # After the server's graceful GOAWAY its streams may still finish and
        # need window; only our own GOAWAY or a failure ends the crediting.
        if increment and not self._goaway_sent and self.fatal is None:
            try:
                self._h2.increment_flow_control_window(increment)
            except h2.exceptions.ProtocolError:
                pass

    # -- consuming --------------------------------------------------------------------

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
        # Taken bytes free window on both levels (RFC 9113 section 6.9); a
        # stream that ended or failed gets no more DATA, so no stream credit.
        stream.buffered -= size
        credit = self._credit
        credit.total_buffered -= size
        if not stream.ended and stream.error is None:
            self._credit_stream(stream, size)
        window = credit.window
        # ConnectionCredit.release's own "nothing to do" answer, asked here
        # first: with nothing withheld (received bytes are handed to the
        # manager at the end of each read while under budget) and the
        # window open, the read returns no credit, and this runs per read.
        if credit.withheld or (window is not None and window.window_size <= 0 and window.unacknowledged):
            self._credit_connection(0, size)

    def detach_views(self, buffer: bytearray) -> None:
        """Copy every buffered piece that is a view of ``buffer`` into bytes of its own.

        The session calls this before it reads over a receive buffer that
        still holds bytes no one has taken yet (see
        :mod:`hyper.http20.session_wire`): DATA runs are buffered as views of
        it. Pieces keep their order, so no byte moves and none is lost;
        ``buffered`` and the window credit are unchanged (nothing is taken).
        """
        for stream in self.streams.values():
            data = stream.data
            if not data:
                continue
            # Only views of this buffer are copied: bytes (and views of
            # other objects, e.g. a partly taken bytes piece) stay as they are.
            detached = [
                piece.tobytes() if type(piece) is memoryview and piece.obj is buffer else piece
                for piece in data
            ]
            data.clear()
            data.extend(detached)

    def _release_stream_buffer(self, stream: StreamState) -> None:
        # A dropped stream's unread bytes still hold connection window:
        # give it back, or the other streams would starve (section 6.9).
        if stream.buffered:
            size, stream.buffered = stream.buffered, 0
            stream.data.clear()
            self._credit.total_buffered -= size
            self._credit_connection(0, size)

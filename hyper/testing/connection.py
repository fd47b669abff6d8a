"""One client connection of a :class:`~hyper.testing.TestServer`, on its own thread.

The connection thread owns the socket and the ``h2`` state machine; nothing
else touches them. It reads frames, hands each complete request to a worker
thread (:mod:`hyper.testing.runner`) and sends what the workers produce as
the client's flow-control windows allow. Its select loop watches three
things: the socket, the server's stop signal and its own :class:`Waker`,
which workers poke whenever they queue headers or a chunk. So a chunk goes
out as soon as it is yielded, and a route that blocks holds up only its own
stream.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from .routes import Handler, Request, header_text
from .runner import ResponseChannel, Waker, run_route

log = logging.getLogger("hyper.testing.server")

_RECV_SIZE = 65536
_SEND_BUDGET = 1 << 20  # bytes of DATA per round before checking for input
_POLL = 1.0  # longest select() wait; stop() and workers wake the loop sooner


@dataclass(frozen=True)
class ServerHooks:
    """What a connection needs from the :class:`~hyper.testing.TestServer` that accepted it.

    The server builds one when it starts and hands it to every connection,
    so a connection reaches the server only through these.
    """

    #: Socket timeout for the connection's blocking calls.
    io_timeout: float
    #: Largest request body accepted; a longer one is reset.
    max_request_body: int
    #: The server's TLS context, or ``None`` for cleartext.
    tls_context: ssl.SSLContext | None
    #: Becomes readable when the server stops (wakes the select loop).
    stop_signal: socket.socket
    #: Set when the server stops.
    stopping: threading.Event
    #: Called once when the connection ends.
    forget: Callable[[ServerConnection], None]
    #: Called with the ALPN protocol a TLS handshake selected.
    record_alpn: Callable[[str | None], None]
    #: The route that answers a request.
    handler_for: Callable[[Request], Handler]
    #: Runs a route on one of the server's worker threads.
    submit_route: Callable[[Callable[[], None]], None]


class _Incoming:
    """A request whose body is still arriving."""

    __slots__ = ("chunks", "headers", "size")

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers
        self.chunks: list[bytes] = []
        self.size = 0


class ServerConnection:
    """One client connection, served by its own thread (see the module docs)."""

    def __init__(self, server: ServerHooks, sock: socket.socket, peer: object) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.thread: threading.Thread | None = None
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.incoming: dict[int, _Incoming] = {}
        # Responses being produced by workers, by stream id. Only this
        # connection's thread touches the dict; each channel has its own lock.
        self.channels: dict[int, ResponseChannel] = {}
        self.waker = Waker()
        self.done = False
        # False until the serve loop (which watches the wake-up socket) runs.
        self.serving = False

    # -- thread entry point ------------------------------------------------

    def run(self) -> None:
        """Serve the connection until EOF, GOAWAY, an error or the server's stop."""
        selector: selectors.BaseSelector | None = None
        try:
            self.sock.settimeout(self.server.io_timeout)
            # Without this, Nagle + delayed ACKs stall every flow-control round
            # trip by ~40 ms once a window is exhausted.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.server.tls_context is not None and not self._handshake():
                return
            selector = selectors.DefaultSelector()
            selector.register(self.sock, selectors.EVENT_READ, "sock")
            selector.register(self.server.stop_signal, selectors.EVENT_READ, "stop")
            selector.register(self.waker.reader, selectors.EVENT_READ, "route")
            self._serve(selector)
        except Exception as exc:  # noqa: BLE001 - a thread must not raise
            if not self.server.stopping.is_set():
                log.debug("connection from %s ended: %r", self.peer, exc)
        finally:
            # Workers still producing for this connection stop at their next chunk.
            for channel in self.channels.values():
                channel.cancel()
            self.channels.clear()
            if selector is not None:
                selector.close()
            self.waker.close()
            self.close_socket()
            self.server.forget(self)

    def _handshake(self) -> bool:
        context = self.server.tls_context
        assert context is not None
        tls_sock = context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
        self.sock = tls_sock  # wrap_socket detached the plain socket
        tls_sock.do_handshake()
        alpn = tls_sock.selected_alpn_protocol()
        self.server.record_alpn(alpn)
        if alpn != "h2":
            log.debug("closing %s: ALPN negotiated %r, not 'h2'", self.peer, alpn)
            return False
        return True

    def _serve(self, selector: selectors.BaseSelector) -> None:
        self.serving = True
        self.h2.initiate_connection()
        self._flush()
        stopping = self.server.stopping
        while not self.done:
            if stopping.is_set():
                self._goodbye()
                return
            sendable = self._send_pending()
            readable = self._has_buffered_input()
            if not readable:
                ready = selector.select(0 if sendable else _POLL)
                for key, _ in ready:
                    if key.data == "sock":
                        readable = True
                    elif key.data == "route":
                        # Consumed before the next _send_pending(), which sees
                        # everything queued before these wake-ups.
                        self.waker.drain()
            if readable:
                data = self.sock.recv(_RECV_SIZE)
                if not data:
                    return  # EOF
                self._receive(data)
                self._flush()

    def _has_buffered_input(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def _goodbye(self) -> None:
        """Best-effort GOAWAY(NO_ERROR) when the server stops (RFC 9113, section 6.8)."""
        try:
            self.h2.close_connection()
            self.sock.settimeout(min(1.0, self.server.io_timeout))
            self._flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass

    # -- receiving -----------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.debug("protocol error from %s: %r", self.peer, exc)
            self.done = True
            # Errors in frames already queued a GOAWAY; a bad connection
            # preface did not (h2 raises it before its error handling).
            try:
                self.h2.close_connection(h2.errors.ErrorCodes.PROTOCOL_ERROR)
            except h2.exceptions.ProtocolError:
                pass
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = [(header_text(k), header_text(v)) for k, v in event.headers]
                self.incoming[event.stream_id] = _Incoming(headers)
            elif isinstance(event, h2.events.DataReceived):
                # Hand the window back at once, whatever we do with the data,
                # so big uploads never stall.
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                incoming = self.incoming.get(event.stream_id)
                if incoming is not None:
                    incoming.chunks.append(event.data)
                    incoming.size += len(event.data)
                    if incoming.size > self.server.max_request_body:
                        del self.incoming[event.stream_id]
                        self._reject_too_large(event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                incoming = self.incoming.pop(event.stream_id, None)
                if incoming is not None:
                    self._dispatch(event.stream_id, incoming)
            elif isinstance(event, h2.events.StreamReset):
                self.incoming.pop(event.stream_id, None)
                self._drop(event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.done = True

    def _reject_too_large(self, stream_id: int) -> None:
        # A complete (bodyless) response, then RST_STREAM(NO_ERROR) to tell the
        # client to stop uploading (RFC 9113, section 8.1). h2 keeps crediting
        # the connection window for DATA that still arrives on the stream.
        try:
            self.h2.send_headers(
                stream_id,
                [(b":status", b"413"), (b"content-length", b"0"), (b"server", b"hyper.testing")],
                end_stream=True,
            )
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)
        except h2.exceptions.StreamClosedError:
            pass

    def _dispatch(self, stream_id: int, incoming: _Incoming) -> None:
        """Hand a complete request to a worker thread."""
        pseudo = {k: v for k, v in incoming.headers if k.startswith(":")}
        path, _, query = pseudo.get(":path", "").partition("?")
        request = Request(
            method=pseudo.get(":method", ""),
            path=path,
            query=query,
            headers=incoming.headers,
            body=b"".join(incoming.chunks),
            stream_id=stream_id,
        )
        channel = ResponseChannel(stream_id, self.waker)
        self.channels[stream_id] = channel
        handler = self.server.handler_for(request)
        self.server.submit_route(lambda: run_route(handler, request, channel))

    # -- sending ---------------------------------------------------------------

    def _send_pending(self) -> bool:
        """Send what the workers produced, as windows allow; True if more could go now."""
        # HEADERS first: a response's HEADERS must precede its DATA (RFC 9113,
        # section 8.1), and they are not flow-controlled, so they never wait.
        for stream_id, channel in list(self.channels.items()):
            taken = channel.take_headers()
            if taken is not None:
                self._send_headers(stream_id, *taken)
        # DATA round-robin over the streams, each frame no larger than the
        # stream's window, the connection's window (h2 folds both into
        # local_flow_control_window, RFC 9113 section 5.2) and the peer's
        # SETTINGS_MAX_FRAME_SIZE (section 4.2). The budget bounds one round
        # so that WINDOW_UPDATEs and new requests get read in between.
        budget = _SEND_BUDGET
        progress = True
        while self.channels and progress and budget > 0:
            progress = False
            for stream_id, channel in list(self.channels.items()):
                try:
                    window = self.h2.local_flow_control_window(stream_id)
                except h2.exceptions.StreamClosedError:
                    self._drop(stream_id)
                    continue
                # A zero window still lets an empty DATA frame with
                # END_STREAM end the stream: it carries no flow-controlled
                # bytes (RFC 9113, section 6.9.1).
                size = min(window, self.h2.max_outbound_frame_size, budget)
                data, ended, error = channel.take(max(size, 0))
                if not data and not ended and error is None:
                    continue
                try:
                    if error is not None:
                        # Too late for a 500: send what we have, then
                        # RST_STREAM(INTERNAL_ERROR) so the client knows the
                        # body is incomplete (RFC 9113, section 6.4).
                        if data:
                            self.h2.send_data(stream_id, data)
                        self._reset(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                    else:
                        self.h2.send_data(stream_id, data, end_stream=ended)
                        if ended:
                            del self.channels[stream_id]
                except h2.exceptions.StreamClosedError:
                    self._drop(stream_id)  # the client reset the stream meanwhile
                budget -= len(data)
                progress = True
            self._flush()
        self._flush()  # HEADERS that completed a response, when no DATA followed
        return any(self._window(sid) > 0 and channel.has_output() for sid, channel in self.channels.items())

    def _send_headers(self, stream_id: int, headers: list[tuple[bytes, bytes]], complete: bool) -> None:
        try:
            self.h2.send_headers(stream_id, headers, end_stream=complete)
        except h2.exceptions.StreamClosedError:
            self._drop(stream_id)  # the client reset the stream meanwhile
            return
        except h2.exceptions.ProtocolError:
            # h2 refused the headers (e.g. a route returned a ":custom"
            # pseudo-header or "te: gzip"); the headers were not sent.
            log.error("cannot send response headers %r", headers, exc_info=True)
            self._reset(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return
        if complete:
            del self.channels[stream_id]

    def _drop(self, stream_id: int) -> None:
        """Forget a stream's response; its worker stops at its next chunk.

        Called when the stream is closed: reset by the client (RFC 9113,
        section 6.4), or by us.
        """
        channel = self.channels.pop(stream_id, None)
        if channel is not None:
            channel.cancel()

    def _reset(self, stream_id: int, error_code: h2.errors.ErrorCodes) -> None:
        self._drop(stream_id)
        try:
            self.h2.reset_stream(stream_id, error_code)
        except h2.exceptions.ProtocolError:
            pass

    def _window(self, stream_id: int) -> int:
        try:
            return self.h2.local_flow_control_window(stream_id)
        except h2.exceptions.StreamClosedError:
            return 0

    # -- teardown -----------------------------------------------------------

    def force_shutdown(self) -> None:
        """Wake a thread stuck in a blocking call (used by stop())."""
        try:
            # The base-class method: SSLSocket.shutdown() would tear down the
            # SSL object under the feet of the thread still using it.
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def close_socket(self) -> None:
        """Close the client socket (idempotent)."""
        try:
            self.sock.close()
        except OSError:
            pass

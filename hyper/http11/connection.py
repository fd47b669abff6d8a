"""HTTP11Connection: the HTTP/2 connection's interface over HTTP/1.1.

``h11`` does the wire format; this module owns the socket, the lock and the
order of exchanges. HTTP/1.1 carries one exchange at a time, so:

* ``request()`` sends at once when the connection is idle. When an earlier
  response has not been read to its end, its remaining body is first read
  into that response's buffer (up to ``Limits.max_buffered``, default
  16 MiB, over all unread responses) and then the new request goes out.
  Responses may still be taken with ``getresponse(id)`` in any order.
* One lock serializes the wire: two threads never interleave bytes. A thread
  waits for the lock at most the read timeout (:class:`~hyper.ReadTimeout`).
* Keep-alive: the socket is reused unless the server said ``Connection:
  close``, closed it, or a response was abandoned mid-body. A kept-alive
  socket the server closed meanwhile is replaced before use; an idempotent
  request (GET, HEAD, PUT...) without a streaming body is re-sent once if
  the server closed a reused connection without a byte of answer.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import h11

from ..common.body import BodyType, LengthCounter, RequestBody, prepare_body
from ..common.decoding import ACCEPT_ENCODING
from ..common.options import connection_options
from ..common.request import (
    HeadersType,
    IncrementalRequests,
    PendingRequest,
    TimeoutType,
    declared_length,
    request_line,
    to_header_map,
)
from ..common.transport import open_transport
from ..common.url import (
    request_target,
)
from ..exceptions import (
    ConnectionClosed,
    ConnectionTerminated,
    HyperError,
    InvalidHeader,
    InvalidStreamID,
    ProtocolError,
    ReadTimeout,
    TLSError,
    fresh,
)
from ..headers import HTTPHeaderMap
from ..limits import Limits
from ..tls import init_context
from .response import HTTP11Response
from .wire import (
    RECV_SIZE,
    EarlyResponse,
    Exchange,
    StaleConnection,
    Wire,
    head_size_problem,
    protocol_failure,
    still_open,
)

log = logging.getLogger("hyper")

#: ALPN protocols offered by :class:`HTTP11Connection`.
HTTP11_ALPN: tuple[str, ...] = ("http/1.1",)
#: Unread response bytes buffered, over all responses, when ``Limits.max_buffered`` is None.
DEFAULT_MAX_BUFFERED = 16 * 1024 * 1024
#: A response closed with at most this much body left is read to its end to keep the socket.
DRAIN_LIMIT = 64 * 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class HTTP11Connection(IncrementalRequests):
    """One HTTP/1.1 connection (kept alive and re-opened as needed), safe to share between threads.

    The calls are those of :class:`~hyper.HTTP20Connection`; ``request()``
    returns an id to pass to ``getresponse()``.

    :param host: ``'host'``, ``'host:port'`` or ``'[v6addr]:port'``.
    :param port: overrides a port in ``host``; without one, 80 (443 when
        ``secure=True`` or an ``ssl_context`` asks for TLS), as in hyper 0.7.
    :param secure: TLS or not; by default TLS when the port is 443 or an
        ``ssl_context`` is given, cleartext otherwise.
    :param ssl_context: used as given; by default :func:`hyper.tls.init_context`
        offering ALPN ``http/1.1``.
    :param proxy_host: an HTTP proxy, ``'host'`` or ``'host:port'`` (port
        8080 when not given). TLS targets are reached through a ``CONNECT``
        tunnel; cleartext requests go to the proxy in absolute form.
    :param proxy_port: overrides a port in ``proxy_host``.
    :param proxy_headers: header fields for the proxy, e.g.
        ``{'proxy-authorization': 'Basic ...'}``.
    :param timeout: seconds, or ``(connect, read)``; bounds every wait.
    :param limits: a :class:`~hyper.Limits` (header size, decoded size,
        1xx responses, buffered data).
    :param deadline: overall bound in seconds on each exchange.
    :param proxy_from_env: without ``proxy_host``, take the proxy from
        ``HTTPS_PROXY``/``HTTP_PROXY``, honouring ``NO_PROXY``.
    """

    #: The protocol this connection speaks.
    version = "HTTP/1.1"

    def __init__(
        self,
        host: str,
        port: int | None = None,
        secure: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
        proxy_headers: HeadersType = None,
        timeout: TimeoutType = None,
        *,
        limits: Limits | None = None,
        deadline: float | None = None,
        proxy_from_env: bool = False,
        **kwargs: Any,
    ) -> None:
        options = connection_options(
            "HTTP11Connection",
            host,
            port,
            secure,
            ssl_context,
            proxy_host,
            proxy_port,
            proxy_headers,
            timeout,
            limits=limits,
            deadline=deadline,
            proxy_from_env=proxy_from_env,
            bare_port="80-unless-tls",
            unknown=kwargs,
        )
        self.host, self.port, self.secure = options.host, options.port, options.secure
        self.ssl_context = ssl_context
        self.connect_timeout, self.read_timeout = options.connect_timeout, options.read_timeout
        #: The bounds on what a server may make this connection do.
        self.limits = options.limits
        #: Overall bound (seconds) on one exchange, or ``None``.
        self.deadline = options.deadline
        self.authority = options.authority
        self._scheme = options.scheme
        #: The proxy in use (host, port, headers), or ``None``.
        self.proxy = options.proxy
        #: The ALPN protocol of the current socket (``None`` in cleartext).
        self.negotiated_protocol: str | None = None
        self._max_buffered = (
            self.limits.max_buffered if self.limits.max_buffered is not None else DEFAULT_MAX_BUFFERED
        )
        self._lock = threading.Lock()
        # Signalled when a request sent piecewise (putrequest) is complete.
        self._cond = threading.Condition(self._lock)
        self._wire: Wire | None = None
        # Exchanges whose response was not yet taken, oldest first.
        self._untaken: OrderedDict[int, Exchange] = OrderedDict()
        # The exchange whose response is being received on the wire.
        self._active: Exchange | None = None
        # close() is shutting the socket down: a read that ends now is ours, not the server's.
        self._closing = False
        self._next_id = 1
        self._local = threading.local()

    # -- locking ------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        timeout = self.read_timeout
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise ReadTimeout(f"another thread kept the HTTP/1.1 connection busy for {timeout} s")
        try:
            yield
        finally:
            self._lock.release()

    # -- connecting -----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while an exchange is in progress (a response not yet read to its end).

        A new request would first have to buffer that response's rest; pools
        (e.g. :class:`hyper.contrib.HTTP20Adapter`) use another connection.
        """
        return self._active is not None

    def connect(self) -> None:
        """Open the connection now instead of at the first request."""
        with self._locked():
            self._usable_wire_locked()

    def _usable_wire_locked(self) -> Wire:
        wire = self._wire
        if wire is not None and wire.requests and not still_open(wire.sock):
            log.debug("kept-alive connection to %s was closed by the server; reconnecting", self.authority)
            self._drop_wire_locked(wire)
            wire = None
        if wire is None:
            wire = self._open_wire()
            self._wire = wire
        return wire

    def _open_wire(self) -> Wire:
        context = None
        if self.secure:
            context = self.ssl_context or init_context(alpn=HTTP11_ALPN)
        sock, early = open_transport(
            self.host,
            self.port,
            ssl_context=context,
            proxy=self.proxy,
            tunnel=False,
            connect_timeout=self.connect_timeout,
        )
        if isinstance(sock, ssl.SSLSocket):
            selected = sock.selected_alpn_protocol()
            if selected not in (None, "http/1.1", "http/1.0"):
                sock.close()
                raise TLSError(
                    f"{self.authority} selected {selected!r} in ALPN, not HTTP/1.1 "
                    "(use hyper.HTTPConnection to speak whatever the server selects)",
                    selected_protocol=selected,
                )
            self.negotiated_protocol = selected
        log.debug("connected to %s (HTTP/1.1, %s)", self.authority, "TLS" if self.secure else "cleartext")
        return self._new_wire(sock, early)

    def _new_wire(self, sock: socket.socket, early: bytes) -> Wire:
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=self.limits.max_header_list_size)
        return Wire(sock, conn, early)

    def _adopt(self, sock: socket.socket, early: bytes = b"", negotiated_protocol: str | None = None) -> None:
        """Use an already connected socket (HTTPConnection's negotiation made it)."""
        with self._locked():
            if self._wire is not None:
                self._drop_wire_locked(self._wire)
            self._wire = self._new_wire(sock, early)
            self.negotiated_protocol = negotiated_protocol

    def _drop_wire_locked(self, wire: Wire) -> None:
        if not wire.closed:
            wire.closed = True
            try:
                wire.sock.close()
            except OSError:
                pass
        if self._wire is wire:
            self._wire = None
        active = self._active
        if active is not None and active.wire is wire:
            self._active = None
            if not active.ended and active.error is None:
                active.error = ConnectionTerminated(
                    "the connection was closed before the response was complete"
                )

    # -- sending ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        body: BodyType = None,
        headers: HeadersType = None,
    ) -> int:
        """Send a request and return its id, without waiting for the response.

        ``body`` may be bytes, str, a file-like object or an iterable of
        bytes. A body of known length is sent with ``content-length``, one of
        unknown length (an iterator, a pipe) with chunked transfer-encoding.
        """
        method, url = request_line(method, url, secure=self.secure, authority=self.authority)
        if getattr(self._local, "pending", None) is not None:
            raise HyperError("finish the request started with putrequest() before request()")
        target, header_map = self._prepare(method, url, headers)
        prepared = prepare_body(body)
        declared = declared_length(header_map, prepared, method, body is None)
        if declared is None and b"transfer-encoding" not in header_map:
            header_map[b"transfer-encoding"] = b"chunked"
        # RFC 9112 9.3.1: only idempotent requests may be sent again unasked.
        replayable = method.upper() in _IDEMPOTENT and (
            body is None or isinstance(body, (bytes, bytearray, memoryview, str))
        )
        with self._locked():
            exchange = self._begin_locked(method, target, header_map, replayable)
            self._send_request_locked(exchange, header_map, target, prepared, declared, replayable)
        return exchange.stream_id

    def _prepare(self, method: str, url: str, headers: HeadersType) -> tuple[str, HTTPHeaderMap]:
        if not method or any(c in method for c in " \r\n\x00\t"):
            raise InvalidHeader(f"invalid method {method!r}")
        path, _, authority = request_target(url)
        header_map = to_header_map(headers)
        if b"host" not in header_map:
            header_map[b"host"] = authority if authority is not None else self.authority
        if b"accept-encoding" not in header_map:
            header_map[b"accept-encoding"] = ACCEPT_ENCODING
        target = path
        if self.proxy is not None and not self.secure and path != "*":
            # No tunnel in cleartext: the proxy needs the absolute form.
            host = header_map.get_first(b"host") or self.authority.encode("ascii")
            target = f"http://{host.decode('latin-1')}{path}"
            for name, value in self.proxy.headers.items():
                if name not in header_map:
                    header_map.add(name, value)
        return target, header_map

    def _begin_locked(
        self,
        method: str,
        target: str,
        header_map: HTTPHeaderMap,
        replayable: bool,
        stream_id: int | None = None,
    ) -> Exchange:
        """Make room on the wire for a new exchange (with a reserved id, if given)."""
        self._wait_request_complete_locked()
        self._finish_active_locked()
        if stream_id is None:
            stream_id = self._next_id
            self._next_id += 1
        exchange = Exchange(stream_id, method.upper())
        if self.deadline is not None:
            exchange.deadline_at = time.monotonic() + self.deadline
        return exchange

    def _wait_request_complete_locked(self) -> None:
        active = self._active
        if active is None or not active.request_open:
            return
        if not self._cond.wait_for(
            lambda: self._active is None or not self._active.request_open, self.read_timeout
        ):
            raise ReadTimeout(
                f"another thread's putrequest() on stream {active.stream_id} did not finish "
                f"within {self.read_timeout} s"
            )

    def _finish_active_locked(self) -> None:
        """Read the rest of the current response into its buffer, bounded."""
        active = self._active
        while active is not None and active.error is None and not active.ended:
            if self._buffered_total() > self._max_buffered:
                raise HyperError(
                    f"response {active.stream_id} is not read yet and more than {self._max_buffered} "
                    "bytes of unread responses are buffered; read it before sending another request "
                    "on this HTTP/1.1 connection"
                )
            try:
                self._advance_locked(active)
            except HyperError:
                pass  # recorded in active.error: its reader gets it; the new request goes on
            active = self._active

    def _buffered_total(self) -> int:
        total = sum(ex.buffered for ex in self._untaken.values())
        if self._active is not None and self._active.stream_id not in self._untaken:
            total += self._active.buffered
        return total

    def _send_request_locked(
        self,
        exchange: Exchange,
        header_map: HTTPHeaderMap,
        target: str,
        body: RequestBody,
        declared: int | None,
        replayable: bool,
        end: bool = True,
    ) -> None:
        try:
            request = h11.Request(
                method=exchange.method, target=target.encode("utf-8"), headers=header_map.items()
            )
        except h11.LocalProtocolError as exc:
            raise InvalidHeader(f"request refused: {exc}") from exc
        # A replayable body is in memory already (bytes or str): keep views, no copy.
        blocks = list(body.blocks()) if replayable else None
        if blocks is not None:
            exchange.replay = (request, blocks)
        for attempt in (1, 2):
            wire = self._usable_wire_locked()
            wire.requests += 1
            exchange.wire = wire
            self._active = exchange
            self._untaken[exchange.stream_id] = exchange
            try:
                self._send_head_locked(wire, request)
            except StaleConnection:
                # Nothing complete reached the server: any request may go again.
                self._drop_wire_locked(wire)
                exchange.error = None
                if attempt == 1:
                    continue
                self._untaken.pop(exchange.stream_id, None)
                raise ConnectionTerminated("the server closed every connection before the request") from None
            except BaseException:
                self._untaken.pop(exchange.stream_id, None)
                self._drop_wire_locked(wire)
                raise
            break
        source = iter(blocks) if blocks is not None else body.blocks()
        self._send_body_locked(exchange, source, declared, end=end)

    def _send_head_locked(self, wire: Wire, request: h11.Request) -> None:
        data = wire.h11.send(request)  # the event was validated when made
        assert data is not None
        try:
            self._sendall_locked(wire, data)
        except ConnectionTerminated as exc:
            if wire.requests > 1:
                raise StaleConnection() from exc
            raise

    def _send_body_locked(
        self, exchange: Exchange, blocks: Iterator[Any], declared: int | None, end: bool
    ) -> None:
        wire = exchange.wire
        assert wire is not None
        counter = LengthCounter(declared if end else None)
        try:
            for block in blocks:
                view = memoryview(block).cast("B")
                counter.add(view.nbytes)
                # h11 only measures and passes the data on, so a view saves a copy.
                pieces = wire.h11.send_with_data_passthrough(h11.Data(data=view))  # type: ignore[arg-type]
                for piece in pieces or ():
                    self._sendall_locked(wire, piece, exchange)
            if end:
                counter.check_complete()
                data = wire.h11.send(h11.EndOfMessage())
                if data:
                    self._sendall_locked(wire, data)
                exchange.request_open = False
                self._cond.notify_all()
            else:
                exchange.request_open = True
        except h11.LocalProtocolError as exc:
            # h11 enforces a content-length header put with putheader().
            exchange.request_open = False
            exchange.error = HyperError(f"request body does not match its headers: {exc}")
            self._untaken.pop(exchange.stream_id, None)
            self._drop_wire_locked(wire)
            self._cond.notify_all()
            raise fresh(exchange.error) from exc
        except (EarlyResponse, ConnectionTerminated):
            # The server answered early (e.g. 413), or closed after doing so:
            # the upload stops, getresponse() reads the answer, and the
            # connection, with half a request on it, closes after that.
            exchange.request_open = False
            self._cond.notify_all()
        except BaseException as exc:
            # Half a request is on the wire: this connection is unusable.
            exchange.request_open = False
            error = exc if isinstance(exc, HyperError) else ConnectionClosed("request body failed")
            exchange.error = exchange.error or error
            self._untaken.pop(exchange.stream_id, None)
            self._drop_wire_locked(wire)
            self._cond.notify_all()
            raise

    def _sendall_locked(self, wire: Wire, data: bytes | memoryview, exchange: Exchange | None = None) -> None:
        wire.send_all(data, self.read_timeout, exchange)

    # -- the incremental form ------------------------------------------------------

    def putrequest(self, method: str, selector: str, **kwargs: Any) -> int:
        """Start a request to be completed with putheader/endheaders/send; returns its id."""
        method, selector = request_line(method, selector, secure=self.secure, authority=self.authority)
        if getattr(self._local, "pending", None) is not None:
            raise HyperError("a putrequest() is already in progress in this thread")
        target, header_map = self._prepare(method, selector, None)
        with self._locked():
            # Reserved now: another thread's request() may go out before endheaders().
            stream_id = self._next_id
            self._next_id += 1
        self._local.pending = PendingRequest(method, target, header_map, stream_id)
        return stream_id

    def endheaders(
        self, message_body: BodyType = None, final: bool = False, stream_id: int | None = None
    ) -> None:
        """Send the headers and ``message_body`` (if any); with ``final``, finish the request.

        With ``final`` the request is complete: a ``message_body`` of known
        length goes with ``content-length``. Without it, more body follows
        with :meth:`send` (the last call with ``final=True``): chunked unless a
        ``content-length`` header was put. Other threads' requests wait until
        the request is finished. A request whose headers cannot be sent is
        abandoned: start again with :meth:`putrequest`.
        """
        pending = self._pending(stream_id)
        self._local.pending = None
        body = prepare_body(message_body)
        headers = pending.headers
        declared = declared_length(headers, body, pending.method, message_body is None) if final else None
        if declared is None and b"content-length" not in headers and b"transfer-encoding" not in headers:
            headers[b"transfer-encoding"] = b"chunked"
        with self._locked():
            exchange = self._begin_locked(pending.method, pending.target, headers, False, pending.stream_id)
            self._send_request_locked(exchange, headers, pending.target, body, declared, False, end=final)

    def send(self, data: BodyType, final: bool = False, stream_id: int | None = None) -> None:
        """Send (more) body data for the request whose headers went out with endheaders."""
        with self._locked():
            exchange = self._active
            if exchange is None or not exchange.request_open:
                raise InvalidStreamID(f"no request body in progress for stream {stream_id}", stream_id)
            if stream_id is not None and stream_id != exchange.stream_id:
                raise InvalidStreamID(f"no request body in progress for stream {stream_id}", stream_id)
            self._send_body_locked(exchange, prepare_body(data).blocks(), None, end=final)

    # -- receiving ------------------------------------------------------------------

    def getresponse(self, stream_id: int | None = None) -> HTTP11Response:
        """Wait for and return the response to request ``stream_id``.

        Without an id, the oldest response not yet taken. Taking a later
        response first reads the earlier ones into memory (bounded, see the
        module notes).
        """
        with self._locked():
            if stream_id is None:
                if not self._untaken:
                    raise InvalidStreamID("no request is waiting for its response", None)
                stream_id = next(iter(self._untaken))
            exchange = self._untaken.get(stream_id)
            if exchange is None:
                raise InvalidStreamID(f"no response is waiting for request {stream_id}", stream_id)
            if exchange.request_open:
                raise HyperError(f"request {stream_id} is still being sent: call send(..., final=True) first")
            try:
                self._wait_head_locked(exchange)
            except BaseException:
                self._untaken.pop(stream_id, None)
                raise
            self._untaken.pop(stream_id, None)
            return HTTP11Response(self, exchange, self.limits)

    get_response = getresponse

    def _wait_head_locked(self, exchange: Exchange) -> None:
        while exchange.head is None and not exchange.switched:
            if exchange.error is not None:
                raise fresh(exchange.error)
            if exchange is not self._active:
                raise ConnectionClosed(f"the connection of request {exchange.stream_id} was closed")
            self._advance_locked(exchange)

    def _pull(self, exchange: Exchange, max_bytes: int | None) -> bytes:
        """Raw body bytes of ``exchange``: waits for some; ``b''`` at the end."""
        with self._locked():
            while True:
                if exchange.chunks:
                    return exchange.take(max_bytes)
                if exchange.ended or exchange.discarded:
                    return b""
                if exchange.error is not None:
                    raise fresh(exchange.error)
                if exchange is not self._active:
                    raise ConnectionClosed(f"the connection of request {exchange.stream_id} was closed")
                self._advance_locked(exchange)

    def _advance_locked(self, exchange: Exchange) -> None:
        """Process one h11 event of the response on the wire; errors stick to it."""
        wire = exchange.wire
        assert wire is not None
        try:
            event = self._next_event_locked(exchange, wire)
            self._handle_event_locked(exchange, wire, event)
        except StaleConnection:
            self._resend_locked(exchange)
        except HyperError as exc:
            if exchange.error is None:
                exchange.error = exc
            self._drop_wire_locked(wire)
            raise

    def _handle_event_locked(self, exchange: Exchange, wire: Wire, event: Any) -> None:
        if isinstance(event, h11.Data):
            data = bytes(event.data)
            exchange.received += len(data)
            if not exchange.discarded:
                exchange.chunks.append(data)
                exchange.buffered += len(data)
        elif isinstance(event, h11.Response):
            problem = head_size_problem(exchange, event, self.limits.max_header_list_size)
            if problem is not None:
                raise problem
            exchange.head = event
        elif isinstance(event, h11.InformationalResponse):
            if event.status_code == 101 and wire.h11.their_state is h11.SWITCHED_PROTOCOL:
                exchange.switched = True
                exchange.head = None
                return
            exchange.informational += 1
            if exchange.informational > self.limits.max_informational_responses:
                raise ProtocolError(
                    f"server sent more than {self.limits.max_informational_responses} informational "
                    f"responses to request {exchange.stream_id}"
                )
        elif isinstance(event, h11.EndOfMessage):
            exchange.trailers = list(event.headers)
            exchange.ended = True
            self._end_cycle_locked(wire)
        elif isinstance(event, h11.ConnectionClosed):  # pragma: no cover - only after EndOfMessage
            self._drop_wire_locked(wire)

    def _end_cycle_locked(self, wire: Wire) -> None:
        """The response is complete: keep the connection for the next one, or close it."""
        self._active = None
        conn = wire.h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            self._cond.notify_all()
        else:
            # Connection: close, HTTP/1.0, or our request body was cut short.
            self._drop_wire_locked(wire)

    def _next_event_locked(self, exchange: Exchange, wire: Wire) -> Any:
        while True:
            try:
                event = wire.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise protocol_failure(exchange, wire, exc, self.limits.max_header_list_size) from exc
            if event is h11.NEED_DATA:
                self._receive_locked(exchange, wire)
                continue
            if event is h11.PAUSED:
                if exchange.switched or wire.h11.their_state is h11.SWITCHED_PROTOCOL:
                    return event
                raise ProtocolError(f"server sent data after the response to request {exchange.stream_id}")
            return event

    def _receive_locked(self, exchange: Exchange, wire: Wire) -> None:
        if self._closing:
            raise ConnectionClosed("the connection was closed")
        if wire.early:
            data, wire.early = wire.early, b""
        else:
            timeout, expired = self._read_limit(exchange)
            if timeout is not None and timeout <= 0:
                # settimeout(0.0) would make the socket non-blocking: recv
                # would raise BlockingIOError, not time out.
                raise expired
            try:
                wire.sock.settimeout(timeout)
                data = wire.sock.recv(RECV_SIZE)
            except TimeoutError as exc:
                raise expired from exc
            except OSError as exc:
                if self._closing:
                    raise ConnectionClosed("the connection was closed") from exc
                if not exchange.answered and wire.requests > 1 and exchange.replay is not None:
                    raise StaleConnection() from exc
                raise ConnectionTerminated(
                    f"connection broke while waiting for the response to request {exchange.stream_id}: {exc}",
                    retryable=not exchange.answered,
                ) from exc
        if not data:
            if self._closing:  # our own close() shut the socket down
                raise ConnectionClosed("the connection was closed")
            self._on_eof_locked(exchange, wire)
        wire.note_received(exchange, data)

    def _on_eof_locked(self, exchange: Exchange, wire: Wire) -> None:
        if exchange.head is not None or exchange.switched:
            return  # h11 decides: the end of an EOF-delimited body, or a truncated one
        if not exchange.answered and wire.requests > 1 and exchange.replay is not None:
            raise StaleConnection()
        raise ConnectionTerminated(
            f"server closed the connection without answering request {exchange.stream_id}",
            retryable=not exchange.answered,
        )

    def _read_limit(self, exchange: Exchange) -> tuple[float | None, ReadTimeout]:
        what = f"no response data for request {exchange.stream_id}"
        timeout = self.read_timeout
        if exchange.deadline_at is not None:
            # 0.0 once the deadline passed: the caller raises at once.
            remaining = max(0.0, exchange.deadline_at - time.monotonic())
            if timeout is None or remaining < timeout:
                return remaining, ReadTimeout(f"{what}: the exchange's overall deadline passed")
        return timeout, ReadTimeout(f"{what} within the read timeout of {timeout} s")

    def _resend_locked(self, exchange: Exchange) -> None:
        """The server closed a reused connection unanswered: send once more on a new one."""
        old = exchange.wire
        assert old is not None and exchange.replay is not None
        request, body = exchange.replay
        exchange.replay = None  # only once
        self._drop_wire_locked(old)
        exchange.error = None
        log.debug("re-sending request %d on a new connection", exchange.stream_id)
        wire = self._usable_wire_locked()
        wire.requests += 1
        exchange.wire = wire
        self._active = exchange
        try:
            data = wire.h11.send(request)
            assert data is not None
            self._sendall_locked(wire, data)
            self._send_body_locked(exchange, iter(body), None, end=True)
        except HyperError as exc:
            exchange.error = exchange.error or exc
            self._drop_wire_locked(wire)
            raise

    # -- upgrade (used by HTTPConnection) ----------------------------------------------------

    def _upgrade_request(self, method: str, url: str, headers: HeadersType, settings: bytes) -> int:
        """Send a body-less request proposing ``Upgrade: h2c``; returns its id."""
        target, header_map = self._prepare(method, url, headers)
        header_map.add(b"connection", b"Upgrade, HTTP2-Settings")
        header_map[b"upgrade"] = b"h2c"
        header_map[b"http2-settings"] = settings
        with self._locked():
            exchange = self._begin_locked(method, target, header_map, True)
            self._send_request_locked(exchange, header_map, target, prepare_body(None), 0, True)
        return exchange.stream_id

    def _await_upgrade(self, stream_id: int) -> tuple[socket.socket, bytes] | None:
        """Wait for the answer to an upgrade proposal.

        On ``101 Switching Protocols`` this connection lets go of its socket
        and returns it with the bytes already received after the 101 (the
        start of HTTP/2). Otherwise ``None``: the response is an ordinary
        HTTP/1.1 one, waiting for ``getresponse(stream_id)``.
        """
        with self._locked():
            exchange = self._untaken.get(stream_id)
            if exchange is None:  # close() from another thread came first
                raise ConnectionClosed("the connection was closed before the server answered the upgrade")
            self._wait_head_locked(exchange)
            if not exchange.switched:
                return None
            wire = exchange.wire
            assert wire is not None
            data, _ = wire.h11.trailing_data
            self._untaken.pop(stream_id, None)
            self._active = None
            wire.closed = True  # handed over, not closed
            self._wire = None
            return wire.sock, bytes(data) + wire.early

    # -- closing ------------------------------------------------------------------------

    def _discard(self, exchange: Exchange) -> None:
        """A response closed by the application before its end."""
        with self._locked():
            exchange.discarded = True
            exchange.chunks.clear()
            exchange.buffered = 0
            if exchange is self._active and not exchange.ended and exchange.wire is not None:
                # The rest of a body cannot be skipped without reading it. A
                # short known rest is read and dropped to keep the socket;
                # anything longer costs less as a new connection.
                if not self._drain_locked(exchange):
                    self._drop_wire_locked(exchange.wire)
                exchange.error = None

    def _drain_locked(self, exchange: Exchange) -> bool:
        """Read a discarded response to its end if little is left; True when done."""
        head = exchange.head
        declared = [value for name, value in head.headers if name == b"content-length"] if head else []
        if not declared or int(declared[0]) - exchange.received > DRAIN_LIMIT:
            return False
        try:
            while not exchange.ended and exchange is self._active:
                self._advance_locked(exchange)
        except HyperError:
            return False
        return exchange.ended

    def fileno(self) -> int:
        """The socket's file descriptor (-1 when not connected)."""
        wire = self._wire
        return -1 if wire is None or wire.closed else wire.sock.fileno()

    def close(self) -> None:
        """Close the socket. Unread responses fail; a later request reconnects."""
        # A thread waiting for a response holds the lock while it reads:
        # shutting the socket down (no lock needed) ends that read at once.
        self._closing = True
        wire = self._wire
        if wire is not None and not wire.closed:
            try:
                wire.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected, or already shut
        try:
            self._close_locked_part()
        finally:
            self._closing = False

    def _close_locked_part(self) -> None:
        with self._locked():
            wire = self._wire
            active = self._active
            if active is not None and active.error is None and not active.ended:
                active.error = ConnectionClosed("the connection was closed")
            if wire is not None:
                self._drop_wire_locked(wire)
            self._active = None
            self._untaken.clear()
            self._cond.notify_all()

    def __enter__(self) -> HTTP11Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<HTTP11Connection {self._scheme}://{self.authority}>"

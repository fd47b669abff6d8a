"""HTTP11Connection: the HTTP/2 connection's interface over HTTP/1.1, and its connection policy.

``h11`` does the wire format. The exchange state machine is split by
direction, over the state one lock guards (:mod:`~hyper.http11.channel`):
:mod:`~hyper.http11.sending` and :mod:`~hyper.http11.receiving`. This module
decides the policy:

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
* Sockets: opened by :mod:`~hyper.http11.route` (TLS offering ALPN
  ``http/1.1``, proxies, and the request head each route needs), or adopted
  from :class:`~hyper.HTTPConnection`'s negotiation (:meth:`~HTTP11Connection.adopt`),
  and handed over after ``101 Switching Protocols``
  (:meth:`~HTTP11Connection.detach_if_switched`).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from typing import Any

from ..common.body import BodyType, prepare_body
from ..common.closing import ClosesOnExit
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
from ..common.stream_ids import checked_stream_id
from ..exceptions import ConnectionClosed, HyperError, InvalidStreamID, ProtocolError
from ..headers import HTTPHeaderMap
from ..limits import Limits
from .batching import NoBatching
from .channel import Channel
from .receiving import (
    ExchangeBody,
    finish_active_locked,
    switched_socket_locked,
    wait_head_locked,
)
from .response import HTTP11Response
from .route import HTTP11_ALPN, RouteToServer  # noqa: F401 - HTTP11_ALPN: importable here, as before the split
from .sending import checked_caller_field, send_more, send_request_locked
from .wire import Exchange

log = logging.getLogger("hyper")

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class HTTP11Connection(RouteToServer, IncrementalRequests, NoBatching, ClosesOnExit):
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
        # The socket, the exchange on it, the untaken responses, and their lock.
        self._channel = Channel(self.authority, self.read_timeout, self.limits, self._open_wire)
        self._local = threading.local()

    # -- connecting -----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while an exchange is in progress (a response not yet read to its end).

        A new request would first have to buffer that response's rest; pools
        (e.g. :class:`hyper.contrib.HTTP20Adapter`) use another connection.
        """
        return self._channel.active is not None

    def connect(self) -> None:
        """Open the connection now instead of at the first request."""
        with self._channel.locked():
            self._channel.usable_wire_locked()

    def adopt(self, sock: socket.socket, early: bytes = b"", negotiated_protocol: str | None = None) -> None:
        """Speak HTTP/1.1 on a socket another layer connected (for :class:`~hyper.HTTPConnection`).

        ``early`` holds bytes the server already sent on it. The current
        socket, if any, is closed. Later sockets are opened as usual.
        """
        with self._channel.locked():
            self._channel.install_wire_locked(self._new_wire(sock, early))
            self.negotiated_protocol = negotiated_protocol

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
        Fields only hyper manages (``upgrade``, ``http2-settings``, a
        ``connection`` naming them, a ``transfer-encoding`` other than
        ``chunked``) are :class:`~hyper.InvalidHeader`, before anything is sent.
        """
        header_map = to_header_map(headers)
        for name, value in header_map.items():
            checked_caller_field(name, value)  # before anything is sent
        return self._request(method, url, body, header_map)

    def request_offering_upgrade(self, method: str, url: str, headers: HTTPHeaderMap) -> int:
        """Send a body-less request whose ``Upgrade`` fields are hyper's own; return its id.

        For :mod:`hyper.negotiation`'s ``h2c`` offer (``upgrade``,
        ``http2-settings`` and a ``connection`` naming them), which
        :meth:`request` refuses from a caller. Follow it with
        :meth:`detach_if_switched`.
        """
        return self._request(method, url, None, headers)

    def _request(self, method: str, url: str, body: BodyType, headers: HeadersType) -> int:
        """:meth:`request` without the check of caller fields (see :meth:`request_offering_upgrade`)."""
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
        with self._channel.locked():
            exchange = self._begin_locked(method, target, None)
            send_request_locked(self._channel, exchange, header_map, target, prepared, declared, replayable)
        return exchange.stream_id

    def _begin_locked(self, method: str, target: str, stream_id: int | None) -> Exchange:
        """Make room on the wire for a new exchange (with a reserved id, if given).

        One exchange at a time: a request still being sent piecewise is
        waited for, and the rest of an unread response is read into its
        buffer (bounded by ``Limits.max_buffered``).
        """
        channel = self._channel
        active = channel.active
        if active is not None and active.request_open and active.stream_id == self._own_open_id():
            # Waiting would wait for this very thread: only it can finish that body.
            raise HyperError(
                f"this thread's request {active.stream_id} is still being sent: "
                "finish it with send(..., final=True) first"
            )
        channel.wait_request_complete_locked()
        finish_active_locked(channel)
        if stream_id is None:
            stream_id = channel.take_id_locked()
        exchange = Exchange(stream_id, method.upper(), target)
        if self.deadline is not None:
            exchange.deadline_at = time.monotonic() + self.deadline
        return exchange

    def _own_open_id(self) -> int | None:
        """The id of the request whose body this thread left open with endheaders(), if any.

        It may have ended since (a failure, an early response): callers
        compare it with the channel's active exchange under the lock.
        """
        own: int | None = getattr(self._local, "open_id", None)
        return own

    def _check_put_field(self, name: bytes, value: bytes) -> None:
        checked_caller_field(name, value)

    # -- the incremental form ------------------------------------------------------

    def putrequest(self, method: str, selector: str, **kwargs: Any) -> int:
        """Start a request to be completed with putheader/endheaders/send; returns its id."""
        method, selector = request_line(method, selector, secure=self.secure, authority=self.authority)
        if getattr(self._local, "pending", None) is not None:
            raise HyperError("a putrequest() is already in progress in this thread")
        target, header_map = self._prepare(method, selector, None)
        with self._channel.locked():
            # Reserved now: another thread's request() may go out before endheaders().
            stream_id = self._channel.take_id_locked()
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
        with self._channel.locked():
            exchange = self._begin_locked(pending.method, pending.target, pending.stream_id)
            # This thread's own open request, for send() without an id.
            self._local.open_id = None if final else exchange.stream_id
            send_request_locked(
                self._channel, exchange, headers, pending.target, body, declared, False, end=final
            )

    def send(self, data: BodyType, final: bool = False, stream_id: int | None = None) -> None:
        """Send (more) body data for the request whose headers went out with endheaders.

        Without ``stream_id``, the request this thread left open with
        :meth:`endheaders`; none is :class:`~hyper.InvalidStreamID` (never
        another thread's request, as over HTTP/2).
        """
        if stream_id is not None:
            stream_id = checked_stream_id(stream_id)
        else:
            stream_id = self._own_open_id()
            if stream_id is None:
                raise InvalidStreamID("this thread has no request body in progress", None)
        send_more(self._channel, data, final, stream_id)

    # -- receiving ------------------------------------------------------------------

    def getresponse(self, stream_id: int | None = None) -> HTTP11Response:
        """Wait for and return the response to request ``stream_id``.

        Without an id, the oldest response not yet taken. Taking a later
        response first reads the earlier ones into memory (bounded, see the
        module notes).
        """
        if stream_id is not None:
            stream_id = checked_stream_id(stream_id)
        channel = self._channel
        with channel.locked():
            exchange = channel.untaken_exchange_locked(stream_id)
            if exchange.request_open:
                raise HyperError(
                    f"request {exchange.stream_id} is still being sent: call send(..., final=True) first"
                )
            try:
                wait_head_locked(channel, exchange)
            finally:
                channel.untaken.pop(exchange.stream_id, None)
            if exchange.switched and exchange.wire is not None:
                # A 101 only detach_if_switched() can take over (hyper's own
                # h2c upgrade): the socket now speaks another protocol, so it
                # closes; the next request opens a new one.
                channel.drop_wire_locked(exchange.wire)
                raise ProtocolError(
                    f"the server switched protocols (101) in answer to request {exchange.stream_id}"
                )
            response = HTTP11Response(ExchangeBody(channel, exchange), self.limits)
        # For logs: what was asked of whom (response.url, response.authority).
        response.record_request(self._scheme, self.authority, exchange.target)
        return response

    get_response = getresponse

    def detach_if_switched(self, stream_id: int) -> tuple[socket.socket, bytes] | None:
        """Wait for the response head of request ``stream_id``; after a 101, give up the socket.

        For a request that proposed ``Upgrade`` (RFC 9110 section 7.8;
        :class:`~hyper.HTTPConnection` proposes ``h2c``). On ``101 Switching
        Protocols`` this connection lets go of its socket and returns it with
        the bytes already received after the 101 (the start of the new
        protocol); its next request opens a new socket. Otherwise ``None``:
        the response is an ordinary one, waiting for ``getresponse(stream_id)``.
        """
        channel = self._channel
        with channel.locked():
            exchange = channel.untaken.get(stream_id)
            if exchange is None:  # close() from another thread came first
                raise ConnectionClosed("the connection was closed before the server answered the request")
            return switched_socket_locked(channel, exchange)

    # -- closing ------------------------------------------------------------------------

    def fileno(self) -> int:
        """The socket's file descriptor (-1 when not connected)."""
        return self._channel.fileno()

    def close(self) -> None:
        """Close the socket. Unread responses fail; a later request reconnects."""
        channel = self._channel
        # A thread waiting for a response holds the lock while it reads:
        # shutting the socket down (no lock needed) ends that read at once.
        channel.closing = True
        channel.shut_down()
        try:
            with channel.locked():  # every field of the channel changes here
                wire = channel.wire
                active = channel.active
                if active is not None and active.error is None and not active.ended:
                    active.error = ConnectionClosed("the connection was closed")
                if wire is not None:
                    channel.drop_wire_locked(wire)
                channel.active = None
                channel.untaken.clear()
                channel.cond.notify_all()
        finally:
            channel.closing = False

    def __repr__(self) -> str:
        return f"<HTTP11Connection {self._scheme}://{self.authority}>"

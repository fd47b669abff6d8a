"""HTTPConnection: one API, HTTP/2 where the server offers it, HTTP/1.1 otherwise.

The protocol is chosen once per connection, at the first use:

* TLS: the handshake offers ALPN ``h2`` and ``http/1.1``; the server's choice
  decides, and the socket is handed to an :class:`~hyper.HTTP20Connection` or
  an :class:`~hyper.HTTP11Connection`.
* Cleartext: the first request goes out as HTTP/1.1 carrying ``Upgrade: h2c``
  and ``HTTP2-Settings``. ``101 Switching Protocols`` turns the socket into
  HTTP/2, and that request's response arrives on stream 1; any other answer
  is the response itself and the connection stays HTTP/1.1.

Every later call goes to the chosen connection, so the calls behave as
documented for that protocol. :meth:`HTTPConnection.close` forgets the
choice; the next request negotiates again.
"""

from __future__ import annotations

import inspect
import logging
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Union

from .common.body import BodyType, prepare_body
from .common.closing import ClosesOnExit
from .common.options import connection_options
from .common.request import HeadersType, TimeoutType, request_line
from .common.stream_ids import checked_stream_id
from .exceptions import ConnectionClosed, HyperError, InvalidStreamID, ReadTimeout
from .headers import HeaderKey, HeaderValue
from .http11.connection import HTTP11Connection
from .http11.response import HTTP11Response
from .http11.wire import PriorKnowledgeOnly
from .http20.connection import HTTP20Connection
from .http20.push import HTTP20Push
from .http20.response import HTTP20Response
from .limits import Limits
from .negotiation import NEGOTIATED_ALPN, adopt_negotiated, connect_offering_alpn, request_with_h2c_upgrade
from .tls import init_context

log = logging.getLogger("hyper")

# NEGOTIATED_ALPN lives in hyper.negotiation; re-exported where it used to be.
__all__ = ["NEGOTIATED_ALPN", "HTTPConnection", "Response"]


Response = Union[HTTP20Response, HTTP11Response]

# The keyword arguments only HTTP/2 takes (stream_window, keepalive...): passed on when given.
_H2_OPTIONS = frozenset(inspect.signature(HTTP20Connection).parameters) - {"kwargs"}


class HTTPConnection(ClosesOnExit):
    """A connection that speaks HTTP/2 when the server can, HTTP/1.1 otherwise.

    The arguments are those of :class:`~hyper.HTTP20Connection`; options
    that only mean something for HTTP/2 (``window_manager``, ``force_proto``,
    ``stream_window``...) apply when HTTP/2 is chosen.

    :param ssl_context: used as given for the negotiating handshake; it
        should offer ALPN ``h2`` and ``http/1.1`` (the default context does).
    :param force_proto: ``'h2'`` in cleartext means HTTP/2 with prior
        knowledge (no Upgrade); over TLS, HTTP/2 whatever ALPN selected.
    :param upgrade: in cleartext, offer ``Upgrade: h2c`` on the first
        request (default); ``False`` stays with HTTP/1.1.

    A cleartext connection through a proxy speaks HTTP/1.1 in absolute form
    (a forward proxy does not pass ``Upgrade`` on); over TLS the proxy
    tunnels with ``CONNECT`` and ALPN happens inside the tunnel.
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        secure: bool | None = None,
        window_manager: Any = None,
        enable_push: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
        proxy_headers: HeadersType = None,
        force_proto: str | None = None,
        timeout: TimeoutType = None,
        *,
        limits: Limits | None = None,
        deadline: float | None = None,
        proxy_from_env: bool = False,
        upgrade: bool = True,
        **h2_options: Any,
    ) -> None:
        options = connection_options(
            "HTTPConnection",
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
            bare_port="443-unless-cleartext",
            unknown={name: value for name, value in h2_options.items() if name not in _H2_OPTIONS},
        )
        h2_options = {name: value for name, value in h2_options.items() if name in _H2_OPTIONS}
        self.host, self.port, self.secure = options.host, options.port, options.secure
        secure = options.secure
        self.authority = options.authority
        self.connect_timeout, self.read_timeout = options.connect_timeout, options.read_timeout
        self.proxy = options.proxy
        self.force_proto = force_proto
        self._ssl_context = ssl_context
        common: dict[str, Any] = dict(
            port=self.port,
            secure=secure,
            proxy_host=self.proxy.host if self.proxy else None,
            proxy_port=self.proxy.port if self.proxy else None,
            proxy_headers=self.proxy.headers if self.proxy else None,
            timeout=timeout,
            limits=limits,
            deadline=deadline,
        )
        self._h2 = HTTP20Connection(
            self.host,
            window_manager=window_manager,
            enable_push=enable_push,
            ssl_context=ssl_context,
            force_proto=force_proto,
            **common,
            **h2_options,
        )
        self._h1 = HTTP11Connection(
            self.host,
            ssl_context=ssl_context,  # None: HTTP/1.1's own default, made when needed
            **common,
        )
        self._upgrade = upgrade and not secure and self.proxy is None and force_proto is None
        self._delegate: HTTP20Connection | HTTP11Connection | None = None
        self._upgrade_pending = False
        #: The ``HTTP2-Settings`` value (base64url of our SETTINGS) that hyper's
        #: ``Upgrade: h2c`` offer carried, once one was sent; ``None`` before.
        #: For logs and ``hyper -v``: the header block as it went on the wire.
        self.upgrade_settings: bytes | None = None
        # Held while choosing the protocol (network waits), bounded by the timeouts.
        self._negotiate_lock = threading.Lock()

    # -- negotiation ---------------------------------------------------------------

    @property
    def version(self) -> str | None:
        """``"HTTP/2"`` or ``"HTTP/1.1"`` once chosen; ``None`` before the first use.

        In cleartext the choice is made by the first request (its upgrade),
        so after :meth:`connect` alone it is still ``None``.
        """
        delegate = self._delegate
        if delegate is None or self._upgrade_pending:
            return None
        return delegate.version

    @property
    def retry_refused(self) -> bool:
        """Whether :meth:`getresponse` sends a request the server refused unprocessed again.

        True once HTTP/2 was chosen with ``retry_refused`` on (the default,
        see :class:`~hyper.HTTP20Connection`); False over HTTP/1.1 and
        before the choice.
        """
        delegate = self._delegate
        if delegate is None or self._upgrade_pending or delegate.version != "HTTP/2":
            return False
        return bool(getattr(delegate, "retry_refused", False))

    @property
    def negotiated_protocol(self) -> str | None:
        """The ALPN protocol the server selected (``None`` in cleartext)."""
        delegate = self._delegate
        return None if delegate is None else delegate.negotiated_protocol

    @property
    def busy(self) -> bool:
        """True while an HTTP/1.1 exchange is in progress (HTTP/2 never is: it multiplexes)."""
        delegate = self._delegate
        return isinstance(delegate, HTTP11Connection) and delegate.busy

    def connect(self) -> None:
        """Connect (and over TLS negotiate) now instead of at the first request."""
        delegate = self._negotiated()
        delegate.connect()

    def _negotiated(self) -> HTTP20Connection | HTTP11Connection:
        delegate = self._delegate
        if delegate is not None:
            return delegate
        with self._negotiating():
            if self._delegate is None:
                self._delegate = self._choose()
            return self._delegate

    def _negotiating(self) -> _BoundedLock:
        bound = None
        if self.connect_timeout is not None or self.read_timeout is not None:
            bound = (self.connect_timeout or 0.0) + (self.read_timeout or 0.0)
        return _BoundedLock(self._negotiate_lock, bound)

    def _choose(self) -> HTTP20Connection | HTTP11Connection:
        if not self.secure:
            if self.force_proto == "h2":
                return self._h2  # prior knowledge (through a CONNECT tunnel with a proxy)
            self._upgrade_pending = self._upgrade
            return self._h1
        context = self._ssl_context or init_context(alpn=NEGOTIATED_ALPN)
        sock, selected = connect_offering_alpn(
            self.host, self.port, context, self.proxy, self.connect_timeout
        )
        chosen: HTTP20Connection | HTTP11Connection = self._h1
        if selected == "h2" or self.force_proto == "h2":
            chosen = self._h2
        adopt_negotiated(chosen, sock, selected)
        return chosen

    # -- requests ------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        body: BodyType = None,
        headers: HeadersType = None,
    ) -> int:
        """Send a request and return its stream id.

        In cleartext, the first request of a connection carries the h2c
        upgrade offer when it has no body, and waits for the response head
        (to know the protocol) before it returns. A first request with a body
        is sent as plain HTTP/1.1 and the connection stays HTTP/1.1.
        """
        method, url = request_line(method, url, secure=self.secure, authority=self.authority)
        delegate = self._negotiated()
        if self._upgrade_pending:
            # Other threads wait here until the first request has settled the
            # protocol, then use whichever connection it chose.
            with self._negotiating():
                if self._upgrade_pending:
                    try:
                        if body is None or prepare_body(body).length == 0:
                            return self._request_with_upgrade(method, url, headers)
                    finally:
                        self._upgrade_pending = False
                delegate = self._chosen()
        return delegate.request(method, url, body, headers)

    def _chosen(self) -> HTTP20Connection | HTTP11Connection:
        delegate = self._delegate
        if delegate is None:
            raise ConnectionClosed("the connection was closed while the protocol was being chosen")
        return delegate

    def _request_with_upgrade(self, method: str, url: str, headers: HeadersType) -> int:
        try:
            stream_id, upgraded, self.upgrade_settings = request_with_h2c_upgrade(
                self._h1, self._h2, method, url, headers
            )
        except PriorKnowledgeOnly:
            # A server that speaks only HTTP/2 (nginx's "listen ... http2"
            # in cleartext, nghttpd --no-tls) answers the HTTP/1.1 offer with
            # its SETTINGS and a GOAWAY: it never processed the request, so
            # it is sent again, over HTTP/2 with prior knowledge.
            log.debug("%s speaks HTTP/2 with prior knowledge only; switching", self.authority)
            self._h1.close()
            self._delegate = self._h2
            return self._h2.request(method, url, None, headers)
        if upgraded:
            self._delegate = self._h2
        return stream_id

    def getresponse(self, stream_id: int | None = None) -> Response:
        """Wait for and return the response on ``stream_id`` (oldest untaken if None).

        Over HTTP/1.1 responses arrive in request order; taking a later one
        first buffers the earlier ones (see :class:`~hyper.HTTP11Connection`).
        """
        if stream_id is not None:
            stream_id = checked_stream_id(stream_id)
        delegate = self._delegate
        if delegate is None:
            raise InvalidStreamID("no request was sent on this connection", stream_id)
        try:
            return delegate.getresponse(stream_id)
        except PriorKnowledgeOnly:
            if delegate is self._h1 and not self.secure:
                # A first request with a body went out as plain HTTP/1.1 to a
                # server that speaks only HTTP/2: this one fails (its body may
                # not be re-sendable), the next ones use prior knowledge.
                self._h1.close()
                self._delegate = self._h2
            raise

    get_response = getresponse

    # -- HTTP/2 only ------------------------------------------------------------------

    def get_pushes(self, stream_id: int | None = None, capture_all: bool = False) -> Iterator[HTTP20Push]:
        """Server pushes, as :meth:`HTTP20Connection.get_pushes <hyper.HTTP20Connection.get_pushes>`.

        Needs ``enable_push=True`` and a connection that negotiated HTTP/2.
        """
        return self._http2_only("server push").get_pushes(stream_id, capture_all)

    def ping(self, opaque_data: bytes | str | None = None) -> float:
        """PING round trip, as :meth:`HTTP20Connection.ping <hyper.HTTP20Connection.ping>` (HTTP/2 only)."""
        if self._delegate is None:
            self._negotiated()
        return self._http2_only("ping").ping(opaque_data)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Over HTTP/2, :meth:`HTTP20Connection.batch <hyper.HTTP20Connection.batch>`; else a no-op.

        A no-op over HTTP/1.1, or in cleartext before the first request chose
        the protocol. Entering connects (and negotiates) if not connected yet.
        """
        delegate = self._negotiated()
        if delegate is self._h2 and not self._upgrade_pending:
            with self._h2.batch():
                yield
        else:
            yield

    def _http2_only(self, what: str) -> HTTP20Connection:
        delegate = self._delegate
        if delegate is not self._h2:
            pending = delegate is None or self._upgrade_pending
            version = "no protocol yet (the first request chooses it)" if pending else "HTTP/1.1"
            raise HyperError(f"{what} needs HTTP/2, and this connection speaks {version}")
        return self._h2

    def putrequest(self, method: str, selector: str, **kwargs: Any) -> int:
        """Start a request to be completed with putheader/endheaders/send.

        In cleartext this form never upgrades: a first request made with it
        keeps the connection on HTTP/1.1.
        """
        method, selector = request_line(method, selector, secure=self.secure, authority=self.authority)
        delegate = self._negotiated()
        if self._upgrade_pending:
            with self._negotiating():
                self._upgrade_pending = False
                delegate = self._chosen()
        return delegate.putrequest(method, selector, **kwargs)

    def putheader(
        self, header: HeaderKey, argument: HeaderValue, stream_id: int | None = None, replace: bool = False
    ) -> None:
        """Add a header field to the request started with :meth:`putrequest`."""
        self._negotiated().putheader(header, argument, stream_id, replace)

    def endheaders(
        self, message_body: BodyType = None, final: bool = False, stream_id: int | None = None
    ) -> None:
        """Send the headers and ``message_body`` (if any); with ``final``, finish the request.

        Without ``final``, more body follows with :meth:`send`.
        """
        self._negotiated().endheaders(message_body, final, stream_id)

    def send(self, data: BodyType, final: bool = False, stream_id: int | None = None) -> None:
        """Send (more) body data for a request started with putrequest/endheaders."""
        self._negotiated().send(data, final, stream_id)

    # -- closing -----------------------------------------------------------------

    def close(self, error_code: int = 0) -> None:
        """Close the connection; the next request negotiates again.

        ``error_code`` goes in HTTP/2's GOAWAY (as hyper 0.7's ``close(error_code)``).
        """
        # The sockets close first and without the negotiation lock: a first
        # request may hold that lock for a whole upgrade exchange.
        self._h2.close(error_code)
        self._h1.close()
        try:
            with self._negotiating():
                self._delegate = None
                self._upgrade_pending = False
        except ReadTimeout:
            # The negotiating thread fails on the closed sockets; forget its choice anyway.
            self._delegate = None
            self._upgrade_pending = False

    def __repr__(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"<HTTPConnection {scheme}://{self.authority} {self.version or 'not negotiated'}>"


class _BoundedLock:
    """``with`` a lock acquired within a bound, else :class:`ReadTimeout`."""

    def __init__(self, lock: threading.Lock, bound: float | None) -> None:
        self._lock = lock
        self._bound = bound

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=-1 if self._bound is None else self._bound):
            raise ReadTimeout(f"another thread was negotiating the protocol for more than {self._bound} s")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

"""The ``requests`` transport adapter: sends a ``PreparedRequest`` with hyper.

Which connection carries a request is the pool's job
(:mod:`hyper.contrib.pool`); the response's body is :class:`RawResponse`'s.
This module maps ``requests``' arguments to hyper's and hyper's failures to
``requests``' exceptions.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import requests.cookies
import requests.exceptions
import requests.structures
import requests.utils
from urllib3.exceptions import InsecureRequestWarning

from ..connection import NEGOTIATED_ALPN, HTTPConnection
from ..exceptions import (
    ConnectionClosed,
    ConnectionTerminated,
    ConnectTimeout,
    HyperError,
    InvalidHeader,
    InvalidURL,
    ProtocolError,
    ProxyError,
    ReadTimeout,
    StreamResetError,
    TLSError,
    TransportError,
    WriteTimeout,
)
from ..headers import HTTPHeaderMap
from ..http20.connection import HTTP20Connection
from ..tls import H2_ALPN
from .pool import (
    CertArg,
    ConnectionPool,
    ContextCache,
    SiteKey,
    TimeoutArg,
    VerifyArg,
    proxy_headers_for,
    select_proxy,
)
from .raw import AdapterConnection, RawResponse


class HTTP20Adapter(requests.adapters.BaseAdapter):
    """A ``requests`` transport adapter that sends requests with hyper.

    Mount it on a :class:`requests.Session` for the URL prefixes that should
    use it: ``session.mount("https://", HTTP20Adapter())``. The usual
    ``requests`` options work: ``verify`` (bool or CA bundle path), ``cert``,
    ``timeout`` (number or ``(connect, read)`` pair), ``stream=True``,
    ``proxies`` and cookies.

    Connections are pooled per scheme, host, port, TLS settings, timeout and
    proxy. An HTTP/2 connection is shared by every thread and request (hyper
    connections are thread-safe and HTTP/2 multiplexes); over HTTP/1.1, a
    connection busy with an unread (``stream=True``) response is not reused
    while it is busy: another one is opened, up to ``pool_maxsize`` per
    site. :meth:`close` (or ``session.close()``) closes them all.

    :param connection_class: the hyper connection class to use.
    :param pool_maxsize: HTTP/1.1 connections kept per site at most.
    :param connection_kwargs: passed to every connection made, e.g.
        ``limits=`` or ``deadline=``.
    """

    #: The connection class used when the constructor is given none.
    connection_class: Callable[..., AdapterConnection] = HTTPConnection
    #: ALPN protocols offered by the contexts made for ``verify``/``cert``;
    #: they must suit :attr:`connection_class`.
    alpn_protocols: tuple[str, ...] = NEGOTIATED_ALPN

    def __init__(
        self,
        connection_class: Callable[..., AdapterConnection] | None = None,
        pool_maxsize: int = 10,
        **connection_kwargs: Any,
    ) -> None:
        super().__init__()
        if pool_maxsize < 1:
            raise ValueError(f"pool_maxsize must be at least 1, not {pool_maxsize!r}")
        if connection_class is not None:
            self.connection_class = connection_class
            if connection_class is HTTP20Connection:
                self.alpn_protocols = H2_ALPN
        # TLS contexts by (verify, cert), shared by the connections made with them.
        self._contexts = ContextCache()
        # Bound methods and a late lookup of connection_class, so subclasses
        # (hyper.httpie_plugin's _context_for) and class attributes still apply.
        self._pool = ConnectionPool(
            lambda *args, **kwargs: self.connection_class(*args, **kwargs),
            connection_kwargs,
            pool_maxsize,
            self._context_for,
            self.proxy_headers,
        )

    @property
    def pool_maxsize(self) -> int:
        """HTTP/1.1 connections kept per site at most."""
        return self._pool.pool_maxsize

    @pool_maxsize.setter
    def pool_maxsize(self, value: int) -> None:
        self._pool.pool_maxsize = value

    # -- requests' adapter interface -----------------------------------------

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: TimeoutArg = None,
        verify: VerifyArg = True,
        cert: CertArg = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send ``request`` and return a :class:`requests.Response`."""
        url = request.url if isinstance(request.url, str) else str(request.url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise requests.exceptions.InvalidSchema(f"hyper cannot send {scheme!r} URLs", request=request)
        if not parts.hostname:
            raise requests.exceptions.InvalidURL(f"no host in {url!r}", request=request)
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise requests.exceptions.InvalidURL(f"invalid port in {url!r}", request=request) from exc
        timeout = _check_timeout(timeout)
        if scheme == "https" and verify is False:
            warnings.warn(
                f"certificate verification is off for https://{parts.hostname}:{port}; "
                "anyone on the network path can read and change this exchange",
                InsecureRequestWarning,
                stacklevel=2,
            )
        proxy = select_proxy(url, proxies)
        connection, key = self._pool.get(scheme, parts.hostname, port, verify, cert, timeout, proxy)
        method = (request.method or "GET").upper()
        headers = _request_headers(request.headers)
        # A request the server promised not to have processed (refused
        # stream, or above a GOAWAY's last stream id, as when nginx retires
        # a connection after keepalive_requests) is sent once more, if its
        # body can be sent again.
        # Over HTTP/2 getresponse() already sends such a request again
        # itself (retry_refused, up to three times): a refusal it raises is
        # final, and sending again here would only multiply the copies.
        attempts = 2 if isinstance(request.body, (type(None), bytes, str)) else 1
        for attempt in range(1, attempts + 1):
            resent_by_connection = False
            try:
                stream_id = connection.request(method, request.path_url, body=request.body, headers=headers)
                resent_by_connection = _resends_refused(connection)
                response = connection.getresponse(stream_id)
                break
            except HyperError as exc:
                if _breaks_connection(exc):
                    self._evict(key, connection)
                if attempt < attempts and getattr(exc, "retryable", False) and not resent_by_connection:
                    connection, key = self._pool.get(
                        scheme, parts.hostname, port, verify, cert, timeout, proxy
                    )
                    continue
                raise _send_error(exc, request) from exc

        def on_body_error(exc: HyperError) -> None:
            if _breaks_connection(exc):
                self._evict(key, connection)

        raw = RawResponse(response, connection, request, on_body_error)
        if not stream:
            raw.preload()
        return self.build_response(request, raw)

    def build_response(self, request: requests.PreparedRequest, raw: RawResponse) -> requests.Response:
        """Turn a hyper response into a :class:`requests.Response`."""
        response = requests.Response()
        response.status_code = raw.status
        response.reason = raw.reason
        response.headers = _response_headers(raw.hyper_response.headers)
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.raw = raw
        response.url = request.url if isinstance(request.url, str) else str(request.url)
        response.request = request
        # As requests' own adapter does (auth hooks use it); its stub says HTTPAdapter.
        response.connection = self  # type: ignore[assignment]
        requests.cookies.extract_cookies_to_jar(response.cookies, request, raw)  # type: ignore[no-untyped-call]
        return response

    def close(self) -> None:
        """Close every pooled connection; later requests open new ones."""
        self._pool.close()

    def proxy_headers(self, proxy: str) -> dict[str, str]:
        """Headers for the proxy itself: ``Proxy-Authorization`` from the proxy URL's credentials."""
        return proxy_headers_for(proxy)

    # -- hyper 0.7's pool interface ---------------------------------------------

    @property
    def connections(self) -> dict[tuple[str, int, str, CertArg], AdapterConnection]:
        """A snapshot of the pool as hyper 0.7 exposed it: ``{(host, port, scheme, cert): connection}``.

        One connection per key (the first of its pool). Changing the dict does
        not change the pool: close connections with :meth:`close`.
        """
        return {(key[1], key[2], key[0], key[4]): pool[0] for key, pool in self._pool.sites().items() if pool}

    def get_connection(
        self,
        host: str,
        port: int | None,
        scheme: str,
        cert: CertArg = None,
        verify: VerifyArg = True,
        timeout: TimeoutArg = None,
        proxy: str | None = None,
    ) -> AdapterConnection:
        """The pooled connection :meth:`send` would use for this site (made if needed), as in hyper 0.7."""
        scheme = scheme.lower()
        if port is None:
            port = 443 if scheme == "https" else 80
        return self._pool.get(scheme, host, port, verify, cert, _check_timeout(timeout), proxy)[0]

    # -- the pool ---------------------------------------------------------------

    def _context_for(self, verify: VerifyArg, cert: CertArg) -> ssl.SSLContext | None:
        """The (shared) TLS context for ``verify``/``cert``, made once, outside the pool lock.

        Subclasses may override it (``hyper.httpie_plugin`` does, for HTTPie's
        key passwords); the pool asks it for every TLS connection it makes.
        """
        return self._contexts.get(verify, cert, self.alpn_protocols)

    def _evict(self, key: SiteKey, connection: AdapterConnection) -> None:
        """Drop a broken connection, unless another thread already replaced it."""
        self._pool.evict(key, connection)


# -- timeouts, headers, errors ---------------------------------------------------


def _check_timeout(timeout: Any) -> TimeoutArg:
    if timeout is None or (isinstance(timeout, (int, float)) and not isinstance(timeout, bool)):
        return timeout
    if isinstance(timeout, tuple) and len(timeout) == 2:
        connect, read = timeout
        if all(part is None or isinstance(part, (int, float)) for part in timeout):
            return (connect, read)
    raise ValueError(f"invalid timeout {timeout!r}: pass a number, a (connect, read) tuple or None")


def _request_headers(headers: Mapping[str, str | bytes]) -> list[tuple[bytes, bytes]]:
    """requests' header dict as bytes; str values as Latin-1 when they fit, like http.client."""
    fields = []
    for name, value in headers.items():
        if isinstance(value, str):
            try:
                encoded = value.encode("latin-1")
            except UnicodeEncodeError:
                encoded = value.encode("utf-8")
        else:
            encoded = value
        fields.append((name.encode("ascii") if isinstance(name, str) else name, encoded))
    return fields


def _response_headers(headers: HTTPHeaderMap) -> requests.structures.CaseInsensitiveDict[str]:
    """One entry per name; repeated fields joined with ``', '`` as urllib3 does."""
    joined: dict[bytes, list[str]] = {}
    for name, value in headers.items():
        joined.setdefault(name.lower(), []).append(value.decode("latin-1"))
    return requests.structures.CaseInsensitiveDict(
        {name.decode("latin-1"): ", ".join(values) for name, values in joined.items()}
    )


def _resends_refused(connection: Any) -> bool:
    """Whether ``connection``'s ``getresponse()`` sends refused requests again itself.

    Over HTTP/2 with ``retry_refused`` on (the default); never over HTTP/1.1.
    """
    return connection.version == "HTTP/2" and bool(getattr(connection, "retry_refused", False))


def _breaks_connection(exc: HyperError) -> bool:
    """Whether the connection itself is unusable after ``exc`` (not just one stream)."""
    if isinstance(exc, (ConnectTimeout, ConnectionClosed)):
        return True
    if isinstance(exc, (ReadTimeout, WriteTimeout, StreamResetError, InvalidHeader, InvalidURL)):
        return False
    if isinstance(exc, ConnectionTerminated):
        # After a graceful GOAWAY the connection opens a new one by itself;
        # after an error GOAWAY it raises the server's error until closed,
        # even for the streams above last_stream_id (retryable ones).
        return not exc.retryable or bool(exc.error_code)
    return isinstance(exc, (TransportError, ProtocolError))


# hyper's failures before the response headers arrived, and the requests
# exception each becomes; the first match wins, anything else is a
# ConnectionError.
_SEND_ERRORS: tuple[tuple[type[HyperError], type[requests.exceptions.RequestException]], ...] = (
    (ConnectTimeout, requests.exceptions.ConnectTimeout),
    (ReadTimeout, requests.exceptions.ReadTimeout),
    (WriteTimeout, requests.exceptions.Timeout),
    (TLSError, requests.exceptions.SSLError),
    (ProxyError, requests.exceptions.ProxyError),
    (InvalidURL, requests.exceptions.InvalidURL),
    (InvalidHeader, requests.exceptions.InvalidHeader),
)


def _send_error(exc: HyperError, request: requests.PreparedRequest) -> requests.exceptions.RequestException:
    """The requests exception for a failure before the response headers arrived."""
    for hyper_error, requests_error in _SEND_ERRORS:
        if isinstance(exc, hyper_error):
            return requests_error(exc, request=request)
    return requests.exceptions.ConnectionError(exc, request=request)

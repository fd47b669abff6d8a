"""A transport adapter that lets ``requests`` speak HTTP/2 through hyper.

::

    import requests
    from hyper.contrib import HTTP20Adapter

    session = requests.Session()
    session.mount("https://", HTTP20Adapter())
    print(session.get("https://example.org/").status_code)

``requests`` is an optional dependency: ``pip install hyper[requests]``.
"""

from __future__ import annotations

import base64
import os
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar, Union
from urllib.parse import unquote, urlsplit

try:
    import requests
    import requests.adapters
    import requests.cookies
    import requests.exceptions
    import requests.structures
    import requests.utils
except ImportError as exc:  # pragma: no cover - exercised only without requests
    raise ImportError("hyper.contrib needs the 'requests' package: pip install hyper[requests]") from exc

from urllib3.exceptions import InsecureRequestWarning

from .common.url import host_literal
from .connection import NEGOTIATED_ALPN, HTTPConnection
from .exceptions import (
    BodyLengthError,
    ConnectionClosed,
    ConnectionTerminated,
    ConnectTimeout,
    DecodeError,
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
from .headers import HTTPHeaderMap
from .http20.connection import HTTP20Connection
from .http20.response import HTTP20Response
from .tls import H2_ALPN, init_context

__all__ = ["HTTP20Adapter", "RawResponse"]

TimeoutArg = Union[None, float, tuple[Union[float, None], Union[float, None]]]
CertArg = Union[None, str, tuple[str, str]]
VerifyArg = Union[bool, str]
# Everything that makes two requests unable to share one connection.
_PoolKey = tuple[str, str, int, VerifyArg, CertArg, TimeoutArg, Union[str, None], tuple[tuple[str, str], ...]]

_T = TypeVar("_T")

# iter_content(None) and raw.stream() without a size read what arrived.
_DEFAULT_STREAM_CHUNK = 64 * 1024


class _Response(Protocol):
    """What the adapter needs of a hyper response (HTTP/2 or HTTP/1.1)."""

    status: int
    reason: str
    headers: HTTPHeaderMap

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes: ...
    def read_chunked(self, decode_content: bool = True) -> Iterator[bytes]: ...
    def close(self) -> None: ...


class _Connection(Protocol):
    """What the adapter needs of a hyper connection class's instances."""

    def request(self, method: str, url: str, body: Any = None, headers: Any = None) -> int: ...
    def getresponse(self, stream_id: int | None = None) -> _Response: ...
    def close(self) -> None: ...


class _HeaderMessage:
    """The ``http.client.HTTPMessage`` subset that cookie extraction reads.

    ``requests.cookies.extract_cookies_to_jar`` hands ``raw._original_response.msg``
    to :mod:`http.cookiejar`, which asks for every ``Set-Cookie`` field
    separately; joining them with commas (as ``response.headers`` does)
    would break cookies whose values or expiry dates hold commas.
    """

    def __init__(self, headers: HTTPHeaderMap) -> None:
        self._map = headers
        # http.client.HTTPMessage keeps (name, value) str pairs here; HTTPie
        # and hyper 0.7's adapter read it.
        self._headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers.iter_raw()]

    def get_all(self, name: str, failobj: Any = None) -> Any:
        values = [v.decode("latin-1") for v in self._map.get(name, [])]
        return values or failobj

    def getheaders(self, name: str) -> list[str]:
        return [v.decode("latin-1") for v in self._map.get(name, [])]

    # The read side of email.message.Message, which http.client's HTTPMessage is.

    def get(self, name: str, failobj: Any = None) -> Any:
        """The first value of ``name``, or ``failobj``."""
        first = self._map.get_first(name)
        return failobj if first is None else first.decode("latin-1")

    def __getitem__(self, name: str) -> str | None:
        """The first value of ``name``; ``None`` when absent (as for ``Message``)."""
        first = self._map.get_first(name)
        return None if first is None else first.decode("latin-1")

    def __contains__(self, name: object) -> bool:
        return name in self._map

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._headers)

    def __len__(self) -> int:
        return len(self._headers)

    def keys(self) -> list[str]:
        return [name for name, _ in self._headers]

    def values(self) -> list[str]:
        return [value for _, value in self._headers]

    def items(self) -> list[tuple[str, str]]:
        return list(self._headers)


class _OriginalResponse:
    """Stands where urllib3 keeps the ``http.client`` response.

    Tools built on ``requests`` read ``response.raw._original_response``:
    HTTPie prints its ``version`` (``20`` for HTTP/2, ``11`` for HTTP/1.1, as
    ``http.client`` numbers them), ``status`` and ``reason``; cookie
    extraction reads ``msg``.
    """

    def __init__(
        self, headers: HTTPHeaderMap, version: int = 11, status: int = 200, reason: str = "OK"
    ) -> None:
        #: 20 for HTTP/2, 11 for HTTP/1.1, 10 for HTTP/1.0: what was negotiated.
        self.version = version
        #: The status code.
        self.status = status
        #: The reason phrase (over HTTP/2, which sends none, the standard one for the status).
        self.reason = reason
        #: The header fields, in ``http.client.HTTPMessage`` form.
        self.msg = _HeaderMessage(headers)

    @classmethod
    def of(cls, response: _Response) -> _OriginalResponse:
        """The stand-in for a hyper response, HTTP/2 or HTTP/1.x."""
        return cls(response.headers, _version_number(response), response.status, response.reason)


def _version_number(response: _Response) -> int:
    """``http.client``'s number for the response's protocol version."""
    if isinstance(response, HTTP20Response):
        return 20
    version = getattr(response, "version", "HTTP/1.1")
    return {"HTTP/1.0": 10, "HTTP/2": 20}.get(version, 11)


class RawResponse:
    """``response.raw`` for a request sent through :class:`HTTP20Adapter`.

    It behaves like the parts of urllib3's response that ``requests`` uses:
    :meth:`read`, :meth:`stream` (which ``iter_content`` calls), :meth:`close`
    and :meth:`release_conn`. As in ``requests``, :meth:`read` returns the body
    as sent (still compressed) unless ``decode_content`` is set; ``iter_content``
    and ``content`` always decode. Errors come out as ``requests`` exceptions.

    For a request sent without ``stream=True`` the adapter reads the whole
    (decoded) body before returning, so network errors surface in
    ``session.get()`` itself; ``requests`` then moves it into
    ``response.content``.
    """

    def __init__(
        self,
        response: _Response,
        connection: _Connection,
        request: requests.PreparedRequest,
        on_error: Callable[[HyperError], None] | None = None,
    ) -> None:
        self._response = response
        self._request = request
        self._on_error = on_error
        #: The hyper connection that carried the exchange (shared with other requests).
        self.connection = connection
        #: The status code.
        self.status = response.status
        #: The reason phrase.
        self.reason = response.reason
        #: Whether :meth:`read` undoes gzip/deflate/br by default (``False``, as in requests).
        self.decode_content = False
        self._original_response = _OriginalResponse.of(response)
        #: The protocol version as urllib3's ``HTTPResponse.version`` numbers it:
        #: ``20`` for HTTP/2, ``11`` for HTTP/1.1, ``10`` for HTTP/1.0.
        self.version: int = self._original_response.version
        self._preloaded: memoryview | None = None
        self._offset = 0
        self._closed = False

    def _preload(self) -> None:
        """Read the whole decoded body now (the adapter's ``stream=False`` path)."""
        data = self._guarded(lambda: self._response.read(decode_content=True))
        self._preloaded = memoryview(data)
        self._response.close()

    @property
    def closed(self) -> bool:
        """True once the body was read to its end or the response was closed."""
        return self._closed

    def readable(self) -> bool:
        """Always true: this is a readable stream."""
        return True

    def read(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        """Read up to ``amt`` bytes (everything when ``None``); ``b''`` at the end."""
        if self._preloaded is not None:
            end = len(self._preloaded) if amt is None else min(len(self._preloaded), self._offset + amt)
            data = self._preloaded[self._offset : end].tobytes()
            self._offset = end
            if end == len(self._preloaded):
                self._closed = True
            return data
        if self._closed:
            return b""
        decode = self.decode_content if decode_content is None else decode_content
        data = self._guarded(lambda: self._response.read(amt, decode_content=decode))
        if amt is None or len(data) < amt:
            self._closed = True  # the body ended
        return data

    def stream(
        self, amt: int | None = _DEFAULT_STREAM_CHUNK, decode_content: bool | None = None
    ) -> Iterator[bytes]:
        """Yield the body in pieces of ``amt`` bytes, or as it arrives when ``amt`` is None."""
        if self._preloaded is not None or amt is not None:
            while True:
                chunk = self.read(amt, decode_content)
                if not chunk:
                    return
                yield chunk
        if self._closed:
            return
        decode = self.decode_content if decode_content is None else decode_content
        chunks = self._response.read_chunked(decode_content=decode)
        while True:
            chunk = self._guarded(lambda: next(chunks, b""))
            if not chunk:
                self._closed = True
                return
            yield chunk

    def _guarded(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except HyperError as exc:
            self._response.close()
            self._closed = True
            if self._on_error is not None:
                self._on_error(exc)
            raise _body_error(exc, self._request) from exc

    def close(self) -> None:
        """Stop reading: an unfinished HTTP/2 stream is reset, the connection lives on."""
        self._closed = True
        self._preloaded = None
        self._response.close()

    def release_conn(self) -> None:
        """Nothing to give back: HTTP/2 connections stay shared between requests."""


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
    connection_class: Callable[..., _Connection] = HTTPConnection
    #: ALPN protocols offered by the contexts made for ``verify``/``cert``;
    #: they must suit :attr:`connection_class`.
    alpn_protocols: tuple[str, ...] = NEGOTIATED_ALPN

    def __init__(
        self,
        connection_class: Callable[..., _Connection] | None = None,
        pool_maxsize: int = 10,
        **connection_kwargs: Any,
    ) -> None:
        super().__init__()
        if pool_maxsize < 1:
            raise ValueError(f"pool_maxsize must be at least 1, not {pool_maxsize!r}")
        #: HTTP/1.1 connections kept per site at most.
        self.pool_maxsize = pool_maxsize
        if connection_class is not None:
            self.connection_class = connection_class
            if connection_class is HTTP20Connection:
                self.alpn_protocols = H2_ALPN
        self._connection_kwargs = connection_kwargs
        # Guards the pool; never held while waiting on the network (hyper
        # connections connect lazily, on their first request).
        self._lock = threading.Lock()
        self._pool: dict[_PoolKey, list[_Connection]] = {}
        # TLS contexts by (verify, cert), shared by the connections made with them.
        self._contexts: dict[tuple[Any, Any], ssl.SSLContext | None] = {}

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
        connection, key = self._connection_for(scheme, parts.hostname, port, verify, cert, timeout, proxy)
        method = (request.method or "GET").upper()
        headers = _request_headers(request.headers)
        # A request the server promised not to have processed (refused
        # stream, or above a GOAWAY's last stream id, as when nginx retires
        # a connection after keepalive_requests) is sent once more, if its
        # body can be sent again.
        attempts = 2 if isinstance(request.body, (type(None), bytes, str)) else 1
        for attempt in range(1, attempts + 1):
            try:
                stream_id = connection.request(method, request.path_url, body=request.body, headers=headers)
                response = connection.getresponse(stream_id)
                break
            except HyperError as exc:
                if _breaks_connection(exc):
                    self._evict(key, connection)
                if attempt < attempts and getattr(exc, "retryable", False):
                    connection, key = self._connection_for(
                        scheme, parts.hostname, port, verify, cert, timeout, proxy
                    )
                    continue
                raise _send_error(exc, request) from exc

        def on_body_error(exc: HyperError) -> None:
            if _breaks_connection(exc):
                self._evict(key, connection)

        raw = RawResponse(response, connection, request, on_body_error)
        if not stream:
            raw._preload()
        return self.build_response(request, raw)

    def build_response(self, request: requests.PreparedRequest, raw: RawResponse) -> requests.Response:
        """Turn a hyper response into a :class:`requests.Response`."""
        response = requests.Response()
        response.status_code = raw.status
        response.reason = raw.reason
        response.headers = _response_headers(raw._response.headers)
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
        with self._lock:
            pools, self._pool = list(self._pool.values()), {}
        connections = [connection for pool in pools for connection in pool]
        for connection in connections:
            connection.close()

    def proxy_headers(self, proxy: str) -> dict[str, str]:
        """Headers for the proxy itself: ``Proxy-Authorization`` from the proxy URL's credentials."""
        return proxy_headers_for(proxy)

    # -- hyper 0.7's pool interface ---------------------------------------------

    @property
    def connections(self) -> dict[tuple[str, int, str, CertArg], _Connection]:
        """A snapshot of the pool as hyper 0.7 exposed it: ``{(host, port, scheme, cert): connection}``.

        One connection per key (the first of its pool). Changing the dict does
        not change the pool: close connections with :meth:`close`.
        """
        with self._lock:
            return {(key[1], key[2], key[0], key[4]): pool[0] for key, pool in self._pool.items() if pool}

    def get_connection(
        self,
        host: str,
        port: int | None,
        scheme: str,
        cert: CertArg = None,
        verify: VerifyArg = True,
        timeout: TimeoutArg = None,
        proxy: str | None = None,
    ) -> _Connection:
        """The pooled connection :meth:`send` would use for this site (made if needed), as in hyper 0.7."""
        scheme = scheme.lower()
        if port is None:
            port = 443 if scheme == "https" else 80
        return self._connection_for(scheme, host, port, verify, cert, _check_timeout(timeout), proxy)[0]

    # -- the pool ---------------------------------------------------------------

    def _connection_for(
        self,
        scheme: str,
        host: str,
        port: int,
        verify: VerifyArg,
        cert: CertArg,
        timeout: TimeoutArg,
        proxy: str | None,
    ) -> tuple[_Connection, _PoolKey]:
        secure = scheme == "https"
        proxy_headers = tuple(sorted(self.proxy_headers(proxy).items())) if proxy else ()
        if isinstance(cert, list):
            cert = (cert[0], cert[1])  # requests allows a list; keys must be hashable
        key: _PoolKey = (
            scheme,
            host.lower(),
            port,
            verify if secure else True,
            cert if secure else None,
            timeout,
            proxy,
            proxy_headers,
        )
        context = self._context_for(verify, cert) if secure else None
        with self._lock:
            pool = self._pool.setdefault(key, [])
            # HTTP/2 (or not yet negotiated) connections are never busy.
            connection = next((c for c in pool if not getattr(c, "busy", False)), None)
            if connection is None and len(pool) >= self.pool_maxsize:
                connection = pool[0]  # all busy: that one buffers or waits
            if connection is None:
                kwargs = dict(self._connection_kwargs)
                if context is not None:
                    kwargs["ssl_context"] = context
                if proxy is not None:
                    kwargs.update(_proxy_kwargs(proxy, dict(proxy_headers)))
                connection = self.connection_class(
                    host_literal(host), port, secure=secure, timeout=timeout, **kwargs
                )
                pool.append(connection)
        return connection, key

    def _context_for(self, verify: VerifyArg, cert: CertArg) -> ssl.SSLContext | None:
        """The (shared) TLS context for ``verify``/``cert``, made once, outside the pool lock.

        Making one loads the CA bundle (tens of milliseconds); other threads'
        requests must not wait for that.
        """
        key = (verify, cert)
        with self._lock:
            if key in self._contexts:
                return self._contexts[key]
        context = _ssl_context(verify, cert, self.alpn_protocols)
        with self._lock:
            return self._contexts.setdefault(key, context)

    def _evict(self, key: _PoolKey, connection: _Connection) -> None:
        """Drop a broken connection, unless another thread already replaced it."""
        with self._lock:
            pool = self._pool.get(key, [])
            if connection not in pool:
                return
            pool.remove(connection)
        connection.close()


# -- proxies -------------------------------------------------------------------


def select_proxy(url: str, proxies: Mapping[str, str] | None) -> str | None:
    """The proxy URL ``requests`` would use for ``url`` (``None`` for none)."""
    if not proxies:
        return None
    return requests.utils.select_proxy(url, dict(proxies))


def proxy_headers_for(proxy: str) -> dict[str, str]:
    """``Proxy-Authorization: Basic ...`` when the proxy URL carries a user name."""
    username, password = requests.utils.get_auth_from_url(proxy)
    if not username:
        return {}
    token = base64.b64encode(f"{username}:{password}".encode("latin-1")).decode("ascii")
    return {"Proxy-Authorization": f"Basic {token}"}


def _proxy_kwargs(proxy: str, headers: dict[str, str]) -> dict[str, Any]:
    """The connection arguments for tunnelling through ``proxy``."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise requests.exceptions.InvalidProxyURL(f"hyper supports only http:// proxies, not {proxy!r}")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise requests.exceptions.InvalidProxyURL(f"invalid port in proxy URL {proxy!r}") from exc
    host = unquote(parts.hostname)
    kwargs: dict[str, Any] = {"proxy_host": host_literal(host), "proxy_port": port}
    if headers:
        kwargs["proxy_headers"] = headers
    return kwargs


# -- TLS, timeouts, headers -----------------------------------------------------------


def _ssl_context(verify: VerifyArg, cert: CertArg, alpn: tuple[str, ...]) -> ssl.SSLContext | None:
    """The context for requests' ``verify``/``cert``; ``None`` for the connection's default."""
    if verify is True and cert is None:
        return None  # the connection builds its default context (certifi, its own ALPN)
    if isinstance(verify, str):
        if not os.path.exists(verify):
            raise OSError(f"no CA certificate bundle or directory at {verify!r} (given as verify=)")
        context = init_context(cert_path=verify, cert=cert, alpn=alpn)
    else:
        context = init_context(cert=cert, alpn=alpn)
    if verify is False:
        context.check_hostname = False  # must come before CERT_NONE
        context.verify_mode = ssl.CERT_NONE
    return context


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


# -- errors ------------------------------------------------------------------------


def _breaks_connection(exc: HyperError) -> bool:
    """Whether the connection itself is unusable after ``exc`` (not just one stream)."""
    if isinstance(exc, (ConnectTimeout, ConnectionClosed)):
        return True
    if isinstance(exc, (ReadTimeout, WriteTimeout, StreamResetError, InvalidHeader, InvalidURL)):
        return False
    if isinstance(exc, ConnectionTerminated):
        # After a graceful GOAWAY the connection opens a new one by itself.
        return not exc.retryable
    return isinstance(exc, (TransportError, ProtocolError))


def _send_error(exc: HyperError, request: requests.PreparedRequest) -> requests.exceptions.RequestException:
    """The requests exception for a failure before the response headers arrived."""
    if isinstance(exc, ConnectTimeout):
        return requests.exceptions.ConnectTimeout(exc, request=request)
    if isinstance(exc, ReadTimeout):
        return requests.exceptions.ReadTimeout(exc, request=request)
    if isinstance(exc, WriteTimeout):
        return requests.exceptions.Timeout(exc, request=request)
    if isinstance(exc, TLSError):
        return requests.exceptions.SSLError(exc, request=request)
    if isinstance(exc, ProxyError):
        return requests.exceptions.ProxyError(exc, request=request)
    if isinstance(exc, InvalidURL):
        return requests.exceptions.InvalidURL(exc, request=request)
    if isinstance(exc, InvalidHeader):
        return requests.exceptions.InvalidHeader(exc, request=request)
    return requests.exceptions.ConnectionError(exc, request=request)


def _body_error(exc: HyperError, request: requests.PreparedRequest) -> requests.exceptions.RequestException:
    """The requests exception for a failure while reading a body.

    As with requests' own adapter, a read timeout in the middle of a body is a
    ``ConnectionError`` and a body cut short is a ``ChunkedEncodingError``.
    """
    if isinstance(exc, DecodeError):
        return requests.exceptions.ContentDecodingError(exc, request=request)
    if isinstance(
        exc, (BodyLengthError, StreamResetError, ConnectionTerminated, ProtocolError, ConnectionClosed)
    ):
        return requests.exceptions.ChunkedEncodingError(exc, request=request)
    if isinstance(exc, TLSError):
        return requests.exceptions.SSLError(exc, request=request)
    return requests.exceptions.ConnectionError(exc, request=request)

"""``response.raw`` for the requests adapter: the body, and what tools read of urllib3's response.

:class:`RawResponse` stands where ``requests`` expects urllib3's
``HTTPResponse``; :class:`_OriginalResponse` stands where urllib3 keeps the
``http.client`` response (HTTPie and cookie extraction read it). hyper
exceptions met while reading a body come out as ``requests`` exceptions.

:class:`AdapterConnection` and :class:`AdapterResponse` say what the adapter
needs of a hyper connection and response (any connection class given to
``HTTP20Adapter(connection_class=...)`` must meet the first).
:meth:`RawResponse.preload` and :attr:`RawResponse.hyper_response` are the
adapter's interface to the raw response, for :mod:`hyper.contrib` itself:
``requests`` and the tools built on it use only urllib3's interface.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import requests
import requests.exceptions

from ..exceptions import (
    BodyLengthError,
    ConnectionClosed,
    ConnectionTerminated,
    DecodeError,
    HyperError,
    ProtocolError,
    StreamResetError,
    TLSError,
)
from ..headers import HTTPHeaderMap
from ..http20.response import HTTP20Response

__all__ = ["AdapterConnection", "AdapterResponse", "RawResponse"]

_T = TypeVar("_T")

# iter_content(None) and raw.stream() without a size read what arrived.
_DEFAULT_STREAM_CHUNK = 64 * 1024


class AdapterResponse(Protocol):
    """What the adapter needs of a hyper response (HTTP/2 or HTTP/1.1)."""

    status: int
    reason: str
    headers: HTTPHeaderMap

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes: ...
    def read_chunked(self, decode_content: bool = True) -> Iterator[bytes]: ...
    def close(self) -> None: ...


class AdapterConnection(Protocol):
    """What the adapter needs of a hyper connection class's instances.

    :class:`~hyper.HTTPConnection`, :class:`~hyper.HTTP20Connection` and
    :class:`~hyper.HTTP11Connection` all meet it.
    """

    def request(self, method: str, url: str, body: Any = None, headers: Any = None) -> int: ...
    def getresponse(self, stream_id: int | None = None) -> AdapterResponse: ...
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
    def of(cls, response: AdapterResponse) -> _OriginalResponse:
        """The stand-in for a hyper response, HTTP/2 or HTTP/1.x."""
        return cls(response.headers, _version_number(response), response.status, response.reason)


def _version_number(response: AdapterResponse) -> int:
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
        response: AdapterResponse,
        connection: AdapterConnection,
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

    @property
    def hyper_response(self) -> AdapterResponse:
        """The hyper response this reads the body of (for the adapter: its header fields).

        Read the body through :meth:`read` or :meth:`stream`, not through this
        object, so that errors come out as ``requests`` exceptions.
        """
        return self._response

    def preload(self) -> None:
        """Read the whole decoded body now, and give the stream back.

        The adapter calls it for a request sent without ``stream=True``, so
        that network errors surface in ``session.get()`` itself; later
        :meth:`read` calls then return the stored bytes.
        """
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

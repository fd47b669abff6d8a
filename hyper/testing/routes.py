"""What a :class:`~hyper.testing.TestServer` serves: requests, responses, built-in routes.

Nothing here touches sockets or threads: a route is a function from a
:class:`Request` to ``(status, headers, body)``, and :func:`prepare` turns
that into HTTP/2 header fields and an iterator of body chunks for the
connection to send.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias

#: Largest body ``GET /bytes/<n>`` sends; bigger *n* are capped to this.
MAX_BYTES: int = 1 << 30

#: Header names and values as route handlers may return them.
HeaderPairs: TypeAlias = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]
#: A response body: bytes, or an iterable of byte chunks that is streamed.
Body: TypeAlias = bytes | bytearray | memoryview | Iterable[bytes]
#: What a route handler returns: ``(status, headers, body)``.
Response: TypeAlias = tuple[int, HeaderPairs, Body]
#: A route handler.
Handler: TypeAlias = Callable[["Request"], Response]


_PERIOD = 251  # prime, so dropped or repeated 16 KiB frames change the data
_CHUNK = 64 * 1024
_PATTERN = bytes(range(_PERIOD)) * (_CHUNK // _PERIOD + 2)

_GREETING = (
    b"Hello from hyper.testing!\n"
    b"This response travelled over HTTP/2 from a local test server.\n"
    b"Try /bytes/1024, POST /echo, /gzip, /status/418 and /headers.\n"
)
_NO_BODY_STATUSES = frozenset({204, 304})


def _pattern_chunks(n: int, offset: int = 0) -> Iterator[bytes]:
    end = offset + n
    while offset < end:
        size = min(_CHUNK, end - offset)
        start = offset % _PERIOD
        yield _PATTERN[start : start + size]
        offset += size


def expected_bytes(n: int, offset: int = 0) -> bytes:
    """Return the *n* bytes ``GET /bytes/<N>`` sends starting at *offset*.

    Byte *i* of the response is ``i % 251``, so ``expected_bytes(n)`` is
    exactly the body of ``GET /bytes/n`` (for ``n <= MAX_BYTES``).
    """
    if n < 0 or offset < 0:
        raise ValueError("n and offset must be non-negative")
    return b"".join(_pattern_chunks(n, offset))


def header_text(value: str | bytes) -> str:
    """A header name or value as ``str``: bytes decoded as Latin-1 (lossless)."""
    return value.decode("latin-1") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Request:
    """A complete request, as given to route handlers.

    Header names and values are ``str`` decoded from the wire as Latin-1
    (lossless: ``value.encode('latin-1')`` gives back the exact bytes).
    """

    #: The ``:method`` pseudo-header, e.g. ``"GET"``.
    method: str
    #: The path part of ``:path``, without the query string.
    path: str
    #: The query string (without ``?``), or ``""``.
    query: str
    #: All request headers in order, pseudo-headers (``:method``...) first.
    headers: list[tuple[str, str]]
    #: The whole request body.
    body: bytes
    #: The HTTP/2 stream the request arrived on.
    stream_id: int = 0

    def header(self, name: str) -> str | None:
        """Return the first value of header *name* (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


def prepare(
    method: str, status: int, headers: HeaderPairs, body: Body | str
) -> tuple[list[tuple[bytes, bytes]], Iterator[bytes] | None]:
    """Turn a route's result into HTTP/2 header fields and body chunks (None for HEAD).

    Header names are lower-cased; ``content-length`` (for a ``bytes`` body)
    and ``server`` are added unless the route set them.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    fields: list[tuple[bytes, bytes]] = [(b":status", str(int(status)).encode())]
    names = set()
    for name, value in items:
        raw_name = name.encode("utf-8") if isinstance(name, str) else bytes(name)
        raw_value = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        raw_name = raw_name.lower()
        names.add(raw_name)
        fields.append((raw_name, raw_value))
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
        if b"content-length" not in names and status not in _NO_BODY_STATUSES and status >= 200:
            fields.append((b"content-length", str(len(data)).encode()))
        chunks: Iterator[bytes] = iter([data] if data else [])
    else:
        chunks = iter(body)
    if b"server" not in names:
        fields.append((b"server", b"hyper.testing"))
    return fields, None if method == "HEAD" else chunks


# -- built-in routes -----------------------------------------------------------


def _text_response(status: int, text: str) -> Response:
    return status, [("content-type", "text/plain; charset=utf-8")], text.encode()


def _method_not_allowed(request: Request, allowed: str) -> Response:
    status, headers, body = _text_response(405, f"405 Method Not Allowed: {request.method} {request.path}\n")
    return status, [*headers, ("allow", allowed)], body


def _greeting(request: Request) -> Response:
    return 200, [("content-type", "text/plain; charset=utf-8")], _GREETING


def _bytes(request: Request, n: int) -> Response:
    n = min(n, MAX_BYTES)
    headers = [
        ("content-type", "application/octet-stream"),
        ("content-length", str(n)),
    ]
    return 200, headers, _pattern_chunks(n)


def _echo(request: Request) -> Response:
    return 200, [("content-type", "application/octet-stream")], request.body


def _gzip(request: Request) -> Response:
    headers = [
        ("content-type", "text/plain; charset=utf-8"),
        ("content-encoding", "gzip"),
    ]
    return 200, headers, gzip.compress(_GREETING, mtime=0)


def _status(request: Request, code: int) -> Response:
    if not 200 <= code <= 599:
        return _text_response(400, f"400 Bad Request: status {code} not in 200-599\n")
    return code, [], b""


def _headers(request: Request) -> Response:
    merged: dict[str, str] = {}
    for name, value in request.headers:
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    body = json.dumps(merged, indent=2).encode() + b"\n"
    return 200, [("content-type", "application/json")], body


_GET_ROUTES: dict[str, Callable[[Request], Response]] = {
    "/": _greeting,
    "/gzip": _gzip,
    "/headers": _headers,
}


def builtin(request: Request) -> Response:
    """Answer *request* from the built-in routes (404/405 for anything else)."""
    path, method = request.path, request.method
    get_like = method in ("GET", "HEAD")
    if path in _GET_ROUTES:
        return _GET_ROUTES[path](request) if get_like else _method_not_allowed(request, "GET, HEAD")
    if path == "/echo":
        return _echo(request) if method in ("POST", "PUT") else _method_not_allowed(request, "POST, PUT")
    prefix, _, arg = path.rpartition("/")
    if arg.isdigit() and arg.isascii():
        # Clamp before int(): Python refuses to parse >4300-digit numbers.
        number = int(arg) if len(arg) <= 18 else 10**18
        if prefix == "/bytes":
            return _bytes(request, number) if get_like else _method_not_allowed(request, "GET, HEAD")
        if prefix == "/status":
            return _status(request, number)
    return _text_response(404, f"404 Not Found: {path}\n")

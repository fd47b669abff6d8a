"""Request arguments shared by the HTTP/2 and HTTP/1.1 connections.

Header maps, timeouts and the ``content-length`` decision mean the same thing
whichever protocol carries the request, so they are decided once, here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Union

from ..exceptions import HyperError
from ..headers import HeaderKey, HeaderValue, HTTPHeaderMap, to_bytes
from .body import RequestBody

TimeoutType = Union[None, float, tuple[float | None, float | None]]
HeadersType = Union[
    Mapping[HeaderKey, HeaderValue], Iterable[tuple[HeaderKey, HeaderValue]], HTTPHeaderMap, None
]

#: Methods whose requests carry a body by convention: an empty one still
#: gets ``content-length: 0`` (RFC 9110 8.6).
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def split_timeout(timeout: TimeoutType) -> tuple[float | None, float | None]:
    """``(connect, read)`` from a number, ``None`` or a pair."""
    if isinstance(timeout, tuple):
        connect, read = timeout
        return connect, read
    return timeout, timeout


def to_header_map(headers: HeadersType) -> HTTPHeaderMap:
    """A fresh :class:`HTTPHeaderMap` from anything ``request()`` accepts."""
    if headers is None:
        return HTTPHeaderMap()
    if isinstance(headers, HTTPHeaderMap):
        return headers.copy()
    if isinstance(headers, Mapping):
        return HTTPHeaderMap(headers.items())
    return HTTPHeaderMap(headers)


def declared_length(header_map: HTTPHeaderMap, body: RequestBody, method: str, no_body: bool) -> int | None:
    """The content-length to enforce: the caller's, else the body's, else None.

    The body's length is also written into ``header_map``, except for a
    request without body whose method does not expect one (RFC 9110 8.6).
    """
    given = header_map.get(b"content-length")
    if given is not None:
        try:
            value = int(given[0])
        except ValueError as exc:
            raise HyperError(f"invalid content-length {given[0]!r}") from exc
        if len(set(given)) != 1 or value < 0:
            raise HyperError(f"invalid content-length {given!r}")
        return value
    if body.length is not None and not (no_body and method.upper() not in METHODS_WITH_BODY):
        header_map[b"content-length"] = to_bytes(body.length)
    return body.length


def is_empty(body: RequestBody, declared: int | None) -> bool:
    """The request has no body bytes at all (HEADERS can end the stream)."""
    return body.length == 0 and (declared is None or declared == 0)

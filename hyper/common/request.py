"""Request arguments shared by the HTTP/2 and HTTP/1.1 connections.

Header maps, timeouts and the ``content-length`` decision mean the same thing
whichever protocol carries the request, so they are decided once, here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Union

from ..exceptions import HyperError, InvalidStreamID
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


@dataclass
class PendingRequest:
    """A request being assembled with putrequest/putheader/endheaders."""

    method: str
    target: str
    headers: HTTPHeaderMap
    stream_id: int


class IncrementalRequests:
    """``putheader`` and the per-thread request in progress, for both connection classes.

    ``putrequest()`` stores a :class:`PendingRequest` in ``self._local`` (a
    ``threading.local``); each thread assembles its own request.
    """

    _local: threading.local

    def putheader(
        self, header: HeaderKey, argument: HeaderValue, stream_id: int | None = None, replace: bool = False
    ) -> None:
        """Add a header field to the request started with ``putrequest()``."""
        pending = self._pending(stream_id)
        if replace:
            pending.headers[header] = argument
        else:
            pending.headers.add(header, argument)

    def _pending(self, stream_id: int | None) -> PendingRequest:
        pending: PendingRequest | None = getattr(self._local, "pending", None)
        if pending is None or (stream_id is not None and stream_id != pending.stream_id):
            raise InvalidStreamID(f"no request in progress for stream {stream_id}", stream_id)
        return pending

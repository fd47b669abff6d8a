"""HTTP11Response: one HTTP/1.1 response, pulling its body through its exchange's :class:`ExchangeBody`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..common.closing import ClosesOnExit
from ..common.reading import DecodedBodyReader
from ..exceptions import ConnectionClosed
from ..headers import HTTPHeaderMap
from ..limits import Limits

if TYPE_CHECKING:  # the receiving module imports only what it needs at run time
    from .receiving import ExchangeBody


class HTTP11Response(DecodedBodyReader, ClosesOnExit):
    """The response to one request sent over an :class:`~hyper.HTTP11Connection`.

    The same interface as :class:`~hyper.HTTP20Response`: ``status``,
    ``reason`` (as the server sent it), ``headers``, ``trailers`` (filled in
    once a chunked body has been read to its end), :meth:`read`,
    :meth:`read_chunked`, :meth:`close` and ``with``. ``version`` is
    ``"HTTP/1.1"`` or ``"HTTP/1.0"``, as the server answered.

    Closing a response before its end reads and drops a short rest (up to
    64 KiB) to keep the connection; with more left it closes the connection
    (HTTP/1.1 cannot skip the rest of a body without reading it), and the
    next request opens a new one by itself. Reading a response closed before
    its end raises :class:`~hyper.ConnectionClosed`.
    """

    def __init__(self, body: ExchangeBody, limits: Limits) -> None:
        head = body.head
        # The response's only way to its connection: body bytes, trailers, stop.
        self._body = body
        self._limits = limits
        #: The status code, e.g. ``200``.
        self.status: int = head.status_code
        #: The reason phrase the server sent (may be empty).
        self.reason: str = head.reason.decode("latin-1")
        #: The response header fields.
        self.headers = HTTPHeaderMap.from_wire(list(head.headers))
        #: The protocol version of the response, ``"HTTP/1.1"`` or ``"HTTP/1.0"``.
        self.version = "HTTP/" + head.http_version.decode("ascii")
        self._trailers = HTTPHeaderMap()
        # The body was read to its end (as opposed to closed part-way).
        self._complete = False
        self._closed = False

    @property
    def stream_id(self) -> int:
        """The id :meth:`HTTP11Connection.request` returned for this exchange."""
        return self._body.stream_id

    @property
    def trailers(self) -> HTTPHeaderMap:
        """Trailing header fields; empty until the body has been read to its end."""
        return self._trailers

    @property
    def closed(self) -> bool:
        """True once the body was read to its end or :meth:`close` was called."""
        return self._closed

    def _pull(self, max_bytes: int | None) -> bytes:
        if self._closed:
            if self._complete:
                return b""
            # b'' would pass for a complete body.
            raise ConnectionClosed(f"response {self.stream_id} was closed before its end")
        data = self._body.read(max_bytes)
        if not data:
            self._complete = True
            self._closed = True
            for name, value in self._body.trailers:
                self._trailers.add(name, value)
        return data

    def close(self) -> None:
        """Stop reading; a long unread rest of the body closes the connection."""
        if self._closed:
            return
        self._closed = True
        self._body.discard()

    def fileno(self) -> int:
        """The connection socket's file descriptor (-1 when it is closed)."""
        return self._body.fileno()

    def __repr__(self) -> str:
        return f"<HTTP11Response {self.stream_id} status={self.status}>"

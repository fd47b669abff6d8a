"""Reading a response body, decoded or raw: the part both protocols share.

An HTTP/2 stream and an HTTP/1.1 message differ only in where raw body bytes
come from. A response class supplies ``_pull(max_bytes)`` (raw bytes, waiting
for some; ``b''`` only at the end of the body) and inherits ``read`` and
``read_chunked``, which run them through one :class:`ContentDecoder`.

The same base class gives both response classes the comforts of
:class:`http.client.HTTPResponse`: :meth:`~DecodedBodyReader.getheader`,
:meth:`~DecodedBodyReader.getheaders` and :meth:`~DecodedBodyReader.readinto`,
iteration over the body in chunks, and ``url``/``authority`` naming where the
request went (for logs).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar, overload

from ..exceptions import DecodedSizeExceeded, HyperError
from ..headers import HeaderKey, HTTPHeaderMap
from ..limits import Limits
from .decoding import ContentDecoder

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# How much read() without a size, and read_chunked(), decode per step.
DECODE_STEP = 1024 * 1024

_Default = TypeVar("_Default")


class DecodedBodyReader:
    """``read``/``read_chunked`` over a raw byte source, with transparent decoding.

    Subclasses set ``headers``, ``version`` and ``_limits`` and implement
    :meth:`_pull`; the connection that makes a response calls
    :meth:`record_request` so that ``url`` and ``authority`` can name it.
    """

    #: The response header fields.
    headers: HTTPHeaderMap
    #: The protocol version of the response: ``"HTTP/2"``, ``"HTTP/1.1"`` or
    #: ``"HTTP/1.0"`` (a ``str``; :mod:`http.client` has an ``int`` there).
    version: str
    _limits: Limits
    _decoder: ContentDecoder | None = None
    _decode_choice: bool | None = None
    # Set by a subclass once its raw body was taken to the end, when _pull
    # would only return b'': read() then stops without that last call.
    _body_ended = False
    # A whole body a subclass already holds (HTTP/2: handed over with the
    # headers); while set, read() of everything asks _read_held_whole first.
    _held: object = None
    # Where the request went, as the connection recorded it (record_request).
    _request_scheme: str | None = None
    _request_authority: str | None = None
    _request_target: str | None = None

    # -- where the request went -------------------------------------------------

    def record_request(self, scheme: str, authority: str, target: str) -> None:
        """Remember where the request went: ``'https'``, ``'host:port'``, the request target.

        Called by the connection (or push) that made this response, once,
        before the response is handed out; not meant for applications.

        ``authority`` is the connection's (``:authority``/``Host``: the port
        only when not the scheme's default, an IPv6 address in brackets);
        ``target`` the path and query as sent, or an absolute URL (a
        cleartext request through a proxy), or ``'*'``.
        """
        self._request_scheme = scheme
        self._request_authority = authority
        self._request_target = target

    @property
    def authority(self) -> str | None:
        """The server the request went to, ``'host'`` or ``'host:port'``, for logs.

        As in the request's ``:authority`` (or ``Host``): the port only when it
        is not the scheme's default, an IPv6 address in brackets
        (``'[::1]:8443'``). ``None`` only for a response made without a
        connection that records it.
        """
        return self._request_authority

    @property
    def url(self) -> str | None:
        """The URL the request went to, e.g. ``'https://example.org/a?b=1'``, for logs.

        Built from the scheme, :attr:`authority` and the request target as
        sent (so a path hyper percent-encoded shows encoded). An
        ``OPTIONS *`` request gives the bare origin. ``None`` only for a
        response made without a connection that records it.
        """
        scheme, authority, target = self._request_scheme, self._request_authority, self._request_target
        if scheme is None or authority is None or target is None:
            return None
        if target.startswith(("http://", "https://")):
            return target  # absolute form, as sent to a cleartext proxy
        if target == "*":
            return f"{scheme}://{authority}"
        return f"{scheme}://{authority}{target}"

    # -- header access as in http.client ----------------------------------------

    @overload
    def getheader(self, name: HeaderKey) -> str | None: ...
    @overload
    def getheader(self, name: HeaderKey, default: _Default) -> str | _Default: ...

    def getheader(self, name: HeaderKey, default: object = None) -> object:
        """The value of header ``name`` as a ``str``, or ``default`` when there is none.

        As :meth:`http.client.HTTPResponse.getheader`: the name in any case,
        several fields of that name joined with ``', '``. Values are decoded
        as by :meth:`HTTPHeaderMap.get_str <hyper.HTTPHeaderMap.get_str>`
        (UTF-8, else latin-1, where :mod:`http.client` always uses latin-1;
        the same for ASCII). ``set-cookie`` values contain commas of their
        own: take them one by one with
        ``headers.get_all_str('set-cookie')``. Trailers are in
        :attr:`trailers`, not here.
        """
        return self.headers.get_str(name, default)

    def getheaders(self) -> list[tuple[str, str]]:
        """Every header field as a ``(name, value)`` pair of ``str``, in order, repeats included.

        As :meth:`http.client.HTTPResponse.getheaders`, decoded as
        :meth:`getheader` does. Names come in lower case, over either
        protocol.
        """
        return self.headers.items_str()

    # -- reading -------------------------------------------------------------------

    def _pull(self, max_bytes: int | None) -> bytes:
        """Raw body bytes: waits for some, returns ``b''`` only at the end."""
        raise NotImplementedError

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        """Read up to ``amt`` bytes of the body (all of it when ``amt`` is None).

        Blocks until ``amt`` bytes are there or the body ends, so fewer bytes
        than asked means the end was reached. With ``decode_content`` (the
        default) gzip, deflate and br are undone and ``amt`` counts decoded
        bytes; with ``decode_content=False`` the bytes come as sent.
        Choose one mode per response.

        When the body fails part-way (the stream is reset, the connection
        breaks, a decoding error), no byte is lost and no short body passes
        for a whole one: the bytes returned by earlier calls are exactly
        what arrived, and the call that meets the failure raises it with the
        bytes it had gathered in the exception's ``partial`` attribute
        (``b''`` if none; not kept when the decoded-size limit was hit, since
        that limit exists to bound memory). Every later call raises again.
        """
        if amt is not None and amt < 0:
            amt = None
        if amt == 0:
            return b""
        if amt is None and self._held is not None:
            # The whole body, already here: one step when the subclass can
            # take it so (no decoding, nothing taken yet), else the loop below.
            whole = self._read_held_whole(decode_content)
            if whole is not None:
                return whole
        decoder = self._decoder_for(decode_content)
        pieces: list[bytes] = []
        got = 0
        try:
            while amt is None or got < amt:
                want = DECODE_STEP if amt is None else amt - got
                piece = decoder.read(want) if decoder is not None else self._pull(want)
                if piece:
                    pieces.append(piece)
                    got += len(piece)
                    if decoder is None and self._body_ended:
                        break  # the next _pull could only say "the end"
                    continue
                if decoder is None:
                    break  # _pull returned nothing: the body ended
                raw = self._pull(DECODE_STEP)
                if not raw:
                    decoder.finish()
                    break
                decoder.feed(raw)
        except DecodedSizeExceeded:
            raise  # the limit exists to bound memory: no copy of what it cut off
        except HyperError as exc:
            # The bytes taken so far are gone from the connection: hand them
            # over with the error rather than drop them.
            setattr(exc, "partial", b"".join(pieces))  # noqa: B010 - not declared on HyperError
            raise
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readinto(self, b: WriteableBuffer) -> int:
        """Read decoded body bytes into the writable buffer ``b``; return how many.

        The :mod:`io` contract, as :meth:`read` with ``amt=len(b)``: waits
        until ``b`` is full or the body ends, so a count below ``len(b)``
        means the end was reached, and ``0`` (for a non-empty ``b``) that
        the body is exhausted. A failure part-way raises as :meth:`read`
        does, with the bytes it had gathered in the exception's ``partial``
        (none of them written to ``b``).
        """
        with memoryview(b) as view, view.cast("B") as target:
            if target.readonly:
                raise TypeError("readinto() needs a writable buffer")
            data = self.read(target.nbytes)
            target[: len(data)] = data
        return len(data)

    def __iter__(self) -> Iterator[bytes]:
        """``for chunk in response:`` the decoded body in pieces as they arrive (:meth:`read_chunked`).

        Unlike :class:`http.client.HTTPResponse`, which iterates over lines,
        this yields chunks of the sizes they arrive in: no line splitting,
        and binary bodies iterate the same way.
        """
        return self.read_chunked()

    def read_chunked(self, decode_content: bool = True) -> Iterator[bytes]:
        """Yield the body in pieces as they arrive, decoded unless asked not to.

        A body that fails part-way yields every piece that arrived, then
        raises the failure.
        """
        while True:
            chunk = self._read_available(decode_content)
            if not chunk:
                return
            yield chunk

    def _read_available(self, decode_content: bool) -> bytes:
        decoder = self._decoder_for(decode_content)
        if decoder is None:
            return self._pull(None)
        while True:
            piece = decoder.read(DECODE_STEP)
            if piece:
                return piece
            raw = self._pull(None)
            if not raw:
                decoder.finish()
                return b""
            decoder.feed(raw)

    def _read_held_whole(self, decode_content: bool) -> bytes | None:
        """The whole body in one step, from what ``_held`` holds; ``None``: use the general read."""
        return None

    def _decoder_for(self, decode_content: bool) -> ContentDecoder | None:
        if self._decode_choice is None:
            self._decode_choice = decode_content
            codings = self.headers.get(b"content-encoding") if decode_content else None
            # No content-encoding at all (most bodies): nothing to decode and
            # nothing to set up; a decoder would hand every byte on as it came.
            if codings is not None:
                decoder = ContentDecoder.for_headers(
                    codings,
                    self._limits.max_decoded_size,
                    self._limits.max_codings,
                )
                self._decoder = decoder if decoder.active else None
        return self._decoder

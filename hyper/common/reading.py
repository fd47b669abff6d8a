"""Reading a response body, decoded or raw: the part both protocols share.

An HTTP/2 stream and an HTTP/1.1 message differ only in where raw body bytes
come from. A response class supplies ``_pull(max_bytes)`` (raw bytes, waiting
for some; ``b''`` only at the end of the body) and inherits ``read`` and
``read_chunked``, which run them through one :class:`ContentDecoder`.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..exceptions import DecodedSizeExceeded, HyperError
from ..headers import HTTPHeaderMap
from ..limits import Limits
from .decoding import ContentDecoder

# How much read() without a size, and read_chunked(), decode per step.
DECODE_STEP = 1024 * 1024


class DecodedBodyReader:
    """``read``/``read_chunked`` over a raw byte source, with transparent decoding.

    Subclasses set ``headers`` and ``_limits`` and implement :meth:`_pull`.
    """

    headers: HTTPHeaderMap
    _limits: Limits
    _decoder: ContentDecoder | None = None
    _decode_choice: bool | None = None

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

    def _decoder_for(self, decode_content: bool) -> ContentDecoder | None:
        if self._decode_choice is None:
            self._decode_choice = decode_content
            if decode_content:
                decoder = ContentDecoder.for_headers(
                    self.headers.get(b"content-encoding", []),
                    self._limits.max_decoded_size,
                    self._limits.max_codings,
                )
                self._decoder = decoder if decoder.active else None
        return self._decoder

"""Incremental, size-bounded decoding of content-encoded bodies.

A :class:`ContentDecoder` takes the raw body bytes as they arrive and hands
out decoded bytes in pieces no larger than the caller asks for, so memory
stays bounded whatever the compression ratio. The total decoded size is
limited too: a decompression bomb ends in :class:`DecodedSizeExceeded`.

Stacked codings are undone in reverse order of application
(``content-encoding: gzip, br`` means gzip first, then brotli, so brotli is
decoded first). A coding we do not know makes the whole body pass through
undecoded, since the layers under it cannot be reached.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Iterable
from typing import Protocol

import brotli

from ..exceptions import DecodedSizeExceeded, DecodeError

#: The ``accept-encoding`` value hyper sends unless the caller sets one.
ACCEPT_ENCODING = b"gzip, deflate, br"

#: More stacked codings than this is an attack, not a real server.
MAX_CODINGS = 5

#: Default cap on the decoded size of one body (bytes). Raise it with the
#: connection's ``limits`` (:class:`hyper.Limits`), or pass ``None`` for no cap.
DEFAULT_MAX_DECODED_SIZE = 1 << 30

#: Encoded bytes a body may take without producing a single decoded byte.
#: Real encoders produce output within their first block (a gzip header is
#: at most a few KiB); a stream of empty blocks past this is an attack on
#: our CPU and ends in :class:`DecodeError`.
MAX_SILENT_INPUT = 1 << 20

# How much decoded data one inner layer hands to the next at a time.
_STEP = 64 * 1024

# How much of a "deflate" body's start is kept to retry it as raw deflate
# (see _ZlibLayer._retry_as_raw_deflate). A zlib header that turns out wrong
# fails within its first bytes, so a small window is enough, and it bounds
# what is held while a body produces nothing.
_RETRY_WINDOW = 64 * 1024

_IDENTITY = {"identity", ""}
_KNOWN = {"gzip", "x-gzip", "deflate", "br"}


class _Layer(Protocol):
    def feed(self, data: bytes) -> None: ...
    def read(self, max_length: int) -> bytes: ...
    def needs_input(self) -> bool: ...
    def check_complete(self) -> None: ...


class _ZlibLayer:
    """gzip (several members allowed) or deflate (zlib-wrapped or raw)."""

    def __init__(self, coding: str) -> None:
        self._gzip = coding in ("gzip", "x-gzip")
        self._wbits = 16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS
        self._obj = zlib.decompressobj(self._wbits)
        self._pending = b""
        # The input consumed before any output, while a raw retry is possible.
        self._first_input: bytearray | None = None if self._gzip else bytearray()
        self._produced = False
        self._held = False

    def feed(self, data: bytes) -> None:
        self._pending = self._pending + data if self._pending else data

    def needs_input(self) -> bool:
        return not self._pending and not self._held

    def read(self, max_length: int) -> bytes:
        while self._pending or self._held:
            if self._obj.eof:
                self._held = False
                if not self._start_next_member():
                    return b""
                continue
            data = self._pending
            try:
                out = self._obj.decompress(data, max_length)
            except zlib.error as exc:
                if self._retry_as_raw_deflate(data):
                    continue
                raise DecodeError(f"invalid {'gzip' if self._gzip else 'deflate'} data: {exc}") from exc
            if self._first_input is not None:
                self._keep_first_input(data, out)
            self._pending = self._obj.unconsumed_tail
            self._held = len(out) == max_length and not self._obj.eof
            if self._obj.eof:
                self._pending = self._obj.unused_data + self._pending
            if out:
                self._produced = True
                return out
        return b""

    def _keep_first_input(self, data: bytes, out: bytes) -> None:
        """Remember consumed input for a raw retry, until output or the window's end."""
        first = self._first_input
        assert first is not None
        consumed = len(data) - len(self._obj.unconsumed_tail)
        if out or len(first) + consumed > _RETRY_WINDOW:
            # Output shows the zlib reading was right; past the window a
            # retry is no longer worth the memory. Either way: let go.
            self._first_input = None
        else:
            first += data[:consumed]  # in place: no quadratic copying

    def _retry_as_raw_deflate(self, data: bytes) -> bool:
        # Servers disagree about "deflate": RFC 9110 says zlib-wrapped, some send
        # raw deflate. Retry raw once, only if nothing was produced yet.
        if self._gzip or self._produced or self._wbits < 0 or self._first_input is None:
            return False
        self._wbits = -zlib.MAX_WBITS
        self._obj = zlib.decompressobj(self._wbits)
        self._pending = bytes(self._first_input) + data
        self._first_input = None
        return True

    def _start_next_member(self) -> bool:
        # gzip allows several members back to back; anything else after the end
        # of the stream is padding some servers add, and is dropped.
        rest = self._pending
        if self._gzip and rest.lstrip(b"\x00"):
            self._obj = zlib.decompressobj(self._wbits)
            self._pending = rest.lstrip(b"\x00")
            return True
        self._pending = b""
        return False

    def check_complete(self) -> None:
        if not self._obj.eof:
            raise DecodeError(f"truncated {'gzip' if self._gzip else 'deflate'} body")


class _BrotliLayer:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()
        self._pending = b""
        self._spill = b""
        self._held = False

    def feed(self, data: bytes) -> None:
        self._pending = self._pending + data if self._pending else data

    def needs_input(self) -> bool:
        return not self._pending and not self._spill and not self._held and self._obj.can_accept_more_data()

    def read(self, max_length: int) -> bytes:
        if self._spill:
            out, self._spill = self._spill[:max_length], self._spill[max_length:]
            return out
        while True:
            if self._obj.can_accept_more_data():
                data, self._pending = self._pending, b""
                if not data and not self._held:
                    return b""
            else:
                data = b""
            try:
                out = self._obj.process(data, output_buffer_limit=max_length)
            except brotli.error as exc:
                raise DecodeError(f"invalid brotli data: {exc}") from exc
            self._held = bool(out) and not self._obj.is_finished()
            if out:
                # The limit stops the buffer growing; it may overshoot a little.
                out, self._spill = out[:max_length], out[max_length:]
                return bytes(out)
            if self._obj.is_finished():
                self._pending = b""
                return b""

    def check_complete(self) -> None:
        if not self._obj.is_finished():
            raise DecodeError("truncated brotli body")


def parse_codings(values: Iterable[bytes]) -> list[str]:
    """The codings named by ``content-encoding`` field values, in order applied."""
    codings: list[str] = []
    for value in values:
        for item in value.decode("latin-1").split(","):
            coding = item.strip().lower()
            if coding not in _IDENTITY:
                codings.append(coding)
    return codings


class ContentDecoder:
    """Decode one body, incrementally and within a size limit.

    Feed raw bytes with :meth:`feed`; take decoded bytes with :meth:`read`,
    which never returns more than asked and returns ``b''`` when it needs more
    input. Call :meth:`finish` once the raw body has ended.
    """

    def __init__(
        self,
        codings: list[str],
        max_decoded_size: int | None = DEFAULT_MAX_DECODED_SIZE,
        max_codings: int = MAX_CODINGS,
    ) -> None:
        if len(codings) > max_codings:
            raise DecodeError(f"{len(codings)} stacked content codings; at most {max_codings} are accepted")
        self.codings = codings
        #: False when some coding is unknown: the body is handed out as sent.
        self.active = bool(codings) and all(c in _KNOWN for c in codings)
        self._layers: list[_Layer] = []
        if self.active:
            for coding in reversed(codings):
                self._layers.append(_BrotliLayer() if coding == "br" else _ZlibLayer(coding))
        self._raw: deque[bytes] = deque()
        self._fed_any = False
        self._limit = max_decoded_size
        self.decoded_size = 0
        # Encoded bytes handed to the layers while nothing came out yet.
        self._silent_input = 0

    @classmethod
    def for_headers(
        cls,
        content_encoding: Iterable[bytes],
        max_decoded_size: int | None = DEFAULT_MAX_DECODED_SIZE,
        max_codings: int = MAX_CODINGS,
    ) -> ContentDecoder:
        """A decoder for the given ``content-encoding`` field values."""
        return cls(parse_codings(content_encoding), max_decoded_size, max_codings)

    def feed(self, data: bytes) -> None:
        """Add raw (still encoded) body bytes."""
        if data:
            self._raw.append(data)
            self._fed_any = True

    def read(self, max_length: int) -> bytes:
        """Up to ``max_length`` decoded bytes; ``b''`` when more input is needed."""
        if max_length <= 0:
            return b""
        if not self.active:
            return self._take_raw(max_length)
        if self._limit is not None:
            # Ask for one byte past the limit so reaching it is detected, but no
            # more, so a bomb never gets to allocate its output.
            max_length = min(max_length, self._limit - self.decoded_size + 1)
        out = self._pull(len(self._layers) - 1, max_length)
        self.decoded_size += len(out)
        if self._limit is not None and self.decoded_size > self._limit:
            raise DecodedSizeExceeded(f"decoded body exceeds the limit of {self._limit} bytes", self._limit)
        return out

    def finish(self) -> None:
        """Check that every layer reached its end (the body was not truncated)."""
        if self.active and self._fed_any:
            for layer in self._layers:
                layer.check_complete()

    def _pull(self, index: int, max_length: int) -> bytes:
        layer = self._layers[index]
        while True:
            out = layer.read(max_length)
            if out or not layer.needs_input():
                return out
            if index == 0:
                source = self._take_raw(_STEP)
                self._count_silent_input(len(source))
            else:
                source = self._pull(index - 1, _STEP)
            if not source:
                return b""
            layer.feed(source)

    def _count_silent_input(self, size: int) -> None:
        """Fail once too much input produced no output at all (see MAX_SILENT_INPUT)."""
        if self.decoded_size:
            return
        self._silent_input += size
        if self._silent_input > MAX_SILENT_INPUT:
            raise DecodeError(
                f"{'+'.join(self.codings)} body produced no decoded byte from its first "
                f"{MAX_SILENT_INPUT} bytes (a stream of empty blocks?)"
            )

    def _take_raw(self, max_length: int) -> bytes:
        if not self._raw:
            return b""
        head = self._raw[0]
        if len(head) <= max_length:
            return self._raw.popleft()
        self._raw[0] = head[max_length:]
        return head[:max_length]

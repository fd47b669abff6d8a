"""Normalising request bodies: bytes, str, file-like objects, iterables.

Every accepted body becomes a :class:`RequestBody`: a known length when one can
be found, and an iterator of blocks read lazily, so a file of any size is sent
with bounded memory.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable, Iterator
from typing import IO, Any, Union

from ..exceptions import BodyLengthError

#: How much of a file-like body is read at a time.
READ_BLOCK = 256 * 1024

BodyType = Union[bytes, bytearray, memoryview, str, IO[bytes], IO[str], Iterable[bytes], None]


class RequestBody:
    """A request body ready to be sent in blocks.

    ``length`` is the number of bytes when it can be known without reading
    the body, else ``None``. :meth:`blocks` yields non-empty bytes-like blocks;
    :meth:`check_length` enforces a declared ``content-length``.
    """

    def __init__(self, length: int | None, blocks: Iterator[Any]) -> None:
        self.length = length
        self._blocks = blocks

    def blocks(self) -> Iterator[memoryview]:
        """Yield the body's blocks as byte ``memoryview`` objects, empties skipped."""
        for block in self._blocks:
            if isinstance(block, str):
                block = block.encode("utf-8")
            if not isinstance(block, (bytes, bytearray, memoryview)):
                raise TypeError(f"body blocks must be bytes-like, not {type(block).__name__}")
            view = memoryview(block).cast("B")
            if view.nbytes:
                yield view


def _file_blocks(fileobj: Any) -> Iterator[bytes]:
    text = isinstance(fileobj, io.TextIOBase)
    while True:
        block = fileobj.read(READ_BLOCK)
        if not block:
            return
        yield block.encode("utf-8") if text or isinstance(block, str) else block


def _file_length(fileobj: Any) -> int | None:
    """Bytes left in a file-like object, from fstat or seek/tell, if knowable."""
    if isinstance(fileobj, io.TextIOBase) or isinstance(getattr(fileobj, "file", None), io.TextIOBase):
        return None  # characters are not bytes; length unknown until encoded
    try:
        fd = fileobj.fileno()
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            return max(info.st_size - int(fileobj.tell()), 0)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    try:
        position = fileobj.tell()
        fileobj.seek(0, os.SEEK_END)
        end = fileobj.tell()
        fileobj.seek(position, os.SEEK_SET)
        return max(int(end) - int(position), 0)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def prepare_body(body: BodyType) -> RequestBody:
    """Turn anything ``request()`` accepts as a body into a :class:`RequestBody`."""
    if body is None:
        return RequestBody(0, iter(()))
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        view = memoryview(body).cast("B")
        return RequestBody(view.nbytes, iter((view,)))
    if hasattr(body, "read"):
        return RequestBody(_file_length(body), _file_blocks(body))
    if isinstance(body, Iterable):
        length: int | None = None
        if hasattr(body, "__len__") and isinstance(body, (list, tuple)):
            try:
                length = sum(
                    len(b.encode("utf-8")) if isinstance(b, str) else memoryview(b).nbytes for b in body
                )
            except TypeError:
                length = None
        return RequestBody(length, iter(body))
    raise TypeError(f"unsupported body type {type(body).__name__}")


class LengthCounter:
    """Counts bytes sent against a declared length and refuses a mismatch."""

    def __init__(self, declared: int | None) -> None:
        self.declared = declared
        self.sent = 0

    def add(self, size: int) -> None:
        """Account for ``size`` more bytes, failing before they exceed the declared length."""
        if self.declared is not None and self.sent + size > self.declared:
            raise BodyLengthError(
                f"body is longer than its content-length of {self.declared} bytes",
                expected=self.declared,
                actual=self.sent + size,
            )
        self.sent += size

    def check_complete(self) -> None:
        """Fail when the body ended short of the declared length."""
        if self.declared is not None and self.sent != self.declared:
            raise BodyLengthError(
                f"body ended after {self.sent} bytes, content-length said {self.declared}",
                expected=self.declared,
                actual=self.sent,
            )

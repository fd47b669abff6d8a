"""Normalising request bodies: bytes, str, file-like objects, iterables.

Every accepted body becomes a :class:`RequestBody`: a known length when one can
be found, and an iterator of blocks read lazily, so a file of any size is sent
with bounded memory.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, Union

from ..exceptions import BodyLengthError
from .file_body import direct_file_candidate

#: How much of a file-like body is read at a time.
READ_BLOCK = 256 * 1024

BodyType = Union[
    bytes,
    bytearray,
    memoryview,
    str,
    IO[bytes],
    IO[str],
    Iterable[Union[bytes, bytearray, memoryview, str]],
    None,
]


class RequestBody:
    """A request body ready to be sent in blocks.

    ``length`` is the number of bytes when it can be known without reading
    the body, else ``None``. :meth:`blocks` yields non-empty bytes-like blocks.
    A declared ``content-length`` is enforced while sending, by a
    :class:`LengthCounter`. ``file``: the binary file object itself when an
    HTTP/2 upload may read it straight into its frames instead of through
    :meth:`blocks` (:mod:`hyper.common.file_body` decides when the upload
    starts), else ``None``.
    """

    def __init__(self, length: int | None, blocks: Iterator[Any], file: Any = None) -> None:
        self.length = length
        self._blocks = blocks
        self.file = file

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
            # No view of this block may outlive its turn: a generator that
            # refills one bytearray (clear, extend, yield) cannot resize it
            # while one is held (BufferError inside the caller's code).
            del view


def _file_blocks(fileobj: Any) -> Iterator[bytes]:
    text = isinstance(fileobj, io.TextIOBase)
    while True:
        block = fileobj.read(READ_BLOCK)
        if not block:
            return
        yield block.encode("utf-8") if text or isinstance(block, str) else block


def file_length(fileobj: Any) -> int | None:
    """Bytes left in a file-like object, from fstat or seek/tell; ``None`` if not knowable.

    ``None`` for text files (characters are not bytes), character devices,
    pipes and sockets (no size), and regular files whose size is not their
    content's: Linux's /proc files (size 0, with bytes) and /sys files
    (size 4096, with a few bytes).
    """
    if isinstance(fileobj, io.TextIOBase) or isinstance(getattr(fileobj, "file", None), io.TextIOBase):
        return None  # characters are not bytes; length unknown until encoded
    try:
        fd = fileobj.fileno()
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            position = int(fileobj.tell())
            if info.st_size == 0 and _bytes_at(fd, position):
                # A regular file whose size says nothing of its content
                # (Linux's /proc files report 0 and have bytes): unknown,
                # so it is sent to its end, not declared empty.
                return None
            if info.st_size > position and _last_byte_missing(fd, info.st_size):
                # A size larger than the content (Linux's /sys files report
                # a page, 4096, for a few bytes): unknown as well, rather
                # than a declared length the body then falls short of.
                return None
            return max(info.st_size - position, 0)
        if not stat.S_ISBLK(info.st_mode):
            # A character device, pipe or socket has no size: seeking one
            # such as /dev/zero "succeeds" at offset 0, which would declare
            # an endless body empty. Unknown: sent as read, to its end.
            return None
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


def _bytes_at(fd: int, position: int) -> bool:
    """Whether the file ``fd`` has a byte at ``position`` (its offset untouched); True if unknowable."""
    pread = getattr(os, "pread", None)
    if pread is None:
        return False  # Windows: no positioned read, and no /proc either: trust the size
    try:
        return bool(pread(fd, 1, position))
    except OSError:
        return True  # cannot tell: unknown beats a silently empty body


def _last_byte_missing(fd: int, size: int) -> bool:
    """Whether the file ``fd`` lacks the byte its ``size`` promises at ``size - 1`` (offset untouched)."""
    pread = getattr(os, "pread", None)
    if pread is None:
        return False  # Windows: no positioned read, and no /sys either: trust the size
    try:
        return not pread(fd, 1, size - 1)
    except OSError:
        return True  # cannot tell: unknown beats a declared length the body falls short of


def _refuse_unreadable(fileobj: Any) -> None:
    """``ValueError`` for a file body that is closed or not open for reading, before anything is sent."""
    if getattr(fileobj, "closed", False) is True:
        raise ValueError("the request body is a closed file")
    readable = getattr(fileobj, "readable", None)
    if callable(readable) and readable() is False:
        raise ValueError("the request body is a file not open for reading")


#: What a request body may be, for the messages that refuse anything else.
ACCEPTED_BODIES = (
    "bytes, bytearray, memoryview (or another buffer), str (sent as UTF-8), a file-like object "
    "with read(), or an iterable of bytes such as a list, tuple or generator"
)


def prepare_body(body: BodyType) -> RequestBody:
    """Turn anything ``request()`` accepts as a body into a :class:`RequestBody`.

    Anything else is ``TypeError`` (before a byte is sent): a dict would
    otherwise be iterated and its keys sent as the body, a set in no
    particular order. A file that is closed or not open for reading is
    ``ValueError``, also before a byte is sent. A list or tuple is checked item by item here; a
    generator's items can only be checked as they are sent.
    """
    if body is None:
        return RequestBody(0, iter(()))
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        view = _byte_view(body)
        return RequestBody(view.nbytes, iter((view,)))
    if hasattr(body, "read"):
        _refuse_unreadable(body)
        length = file_length(body)
        # A plain binary file of known length may be read straight into the
        # upload's frames (hyper.common.file_body); its blocks stay the
        # fallback, and the only way for a file whose size tells nothing.
        direct = body if length is not None and direct_file_candidate(body) else None
        return RequestBody(length, _file_blocks(body), direct)
    if isinstance(body, Mapping):
        raise TypeError(
            f"a {type(body).__name__} cannot be a request body: encode it first, e.g. with "
            f"json.dumps() or urllib.parse.urlencode(); a body is {ACCEPTED_BODIES}"
        )
    if isinstance(body, (set, frozenset)):
        raise TypeError(f"a set has no order, so it cannot be a request body; a body is {ACCEPTED_BODIES}")
    try:
        buffer = memoryview(body)  # type: ignore[arg-type]
    except TypeError:
        pass
    else:
        view = _byte_view(buffer)  # e.g. array.array: its bytes, not its items
        return RequestBody(view.nbytes, iter((view,)))
    if isinstance(body, (list, tuple)):
        length = 0
        for index, block in enumerate(body):
            if isinstance(block, str):
                length += len(block.encode("utf-8"))
            elif isinstance(block, (bytes, bytearray, memoryview)):
                length += memoryview(block).nbytes
            else:
                raise TypeError(
                    f"item {index} of the body is a {type(block).__name__}; "
                    "the items of a body list must be bytes or str"
                )
        return RequestBody(length, iter(body))
    if isinstance(body, Iterable):
        return RequestBody(None, iter(body))
    raise TypeError(f"a {type(body).__name__} cannot be a request body; a body is {ACCEPTED_BODIES}")


def _byte_view(buffer: bytes | bytearray | memoryview) -> memoryview:
    """A flat byte view of any buffer (copied only when it is not contiguous)."""
    view = memoryview(buffer)
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    return view.cast("B")


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

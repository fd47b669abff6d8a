"""File bodies read straight into the frames that carry them (``os.preadv``).

An upload lays a run of DATA frames out in one buffer, headers and payloads
back to back (:mod:`hyper.http20.data_frames`). A body read with ``read()``
lands in a fresh ``bytes`` object first and is then copied behind each
frame header. For a plain binary file, one ``os.preadv`` into the payload
slots of the run puts the bytes where they are sent from: the kernel's one
copy out of the page cache, none in user space.

Only where that is exactly what ``read()`` would have given
(:func:`direct_read_start`): an unbuffered ``io.FileIO`` or an
``io.BufferedReader`` holding no read-ahead (the exact types: a subclass may
override ``read``), open for reading, seekable, on a regular file, with
``os.preadv`` available (Linux, macOS, the BSDs; not Windows). The file is
read from its current position, and the upload leaves the position where
``read()`` calls would have: after the last byte read
(:func:`leave_position`). Everything else (text files, pipes, sockets,
objects with only ``read()``, iterables) is read as before.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Sequence
from typing import Any

#: The exact types read directly: their ``read()`` is the file's bytes.
_DIRECT_TYPES = (io.FileIO, io.BufferedReader)


def direct_file_candidate(fileobj: Any) -> bool:
    """True when ``fileobj`` is of a type :func:`direct_read_start` may accept (cheap: no system call)."""
    return type(fileobj) in _DIRECT_TYPES


def direct_read_start(fileobj: Any) -> tuple[int, int] | None:
    """``(fd, position)`` to read ``fileobj`` from with :func:`read_into`, or ``None`` for ``read()``.

    Checked when its upload starts, not when the request was made: the
    caller may have read or seeked the file in between. ``None`` unless
    every condition in the module's docstring holds.
    """
    if getattr(os, "preadv", None) is None or not direct_file_candidate(fileobj):
        return None  # Windows (or an unusual build): read() it is
    try:
        if fileobj.closed or not fileobj.readable() or not fileobj.seekable():
            return None
        if type(fileobj) is io.BufferedReader and type(fileobj.raw) is not io.FileIO:
            return None  # a raw stream of its own may give other bytes than its descriptor holds
        fd = fileobj.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None  # a pipe, socket, tty or device: no positioned reads
        position = int(fileobj.tell())
        # A BufferedReader's tell() is the descriptor's offset minus what it
        # read ahead (e.g. after peek()): those bytes belong to the object,
        # and read() hands them out first. Only an empty buffer is skipped.
        if os.lseek(fd, 0, os.SEEK_CUR) != position:
            return None
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return fd, position


def read_into(fd: int, slots: Sequence[Any], position: int) -> int:
    """Fill ``slots`` (writable buffers, in order) from ``fd`` at ``position``; return the bytes read.

    One ``os.preadv``: the slots are filled in order, so the count says
    exactly which bytes are the file's (fewer than asked at the end of the
    file, or when the kernel returns a short read; 0 at the end). The
    descriptor's own offset is not moved. ``EINTR`` is retried by Python
    (PEP 475); other errors raise ``OSError`` as ``read()`` would.
    """
    count: int = os.preadv(fd, slots, position)
    return count


def file_size_from(fd: int, position: int) -> int:
    """How many bytes the file has from ``position`` on, as it is now (for an error message)."""
    try:
        return max(os.fstat(fd).st_size - position, 0)
    except OSError:
        return 0


def leave_position(fileobj: Any, position: int) -> None:
    """Move ``fileobj`` to ``position``, where ``read()`` of the same bytes would have left it.

    Quietly nothing when the caller closed it meanwhile (there is no
    position left to keep).
    """
    try:
        if not fileobj.closed:
            fileobj.seek(position, os.SEEK_SET)
    except (OSError, ValueError):
        pass

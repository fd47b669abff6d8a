"""What ``--print`` shows: the request head (H) and body (B), the response head (h) and body (b).

Heads are written as the fields went on the wire, in order, names in lower
case as both protocols send them. Values are shown as UTF-8 (the encoding
hyper sends ``str`` values in), falling back to latin-1 for bytes that are
not UTF-8. Bodies are written as they are, except that a binary body (one
with a NUL byte near its start) is not written to a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

from .body import Body

#: How many leading bytes decide whether a body is binary.
SNIFF = 1024
#: Bytes read per step when copying a body.
CHUNK = 64 * 1024
_RULE = b"+-----------------------------------------+"
#: Written instead of a binary body on a terminal (as HTTPie does).
BINARY_NOTE = _RULE + b"\n| NOTE: binary data not shown in terminal |\n" + _RULE

#: The ``--print`` letters.
REQUEST_HEAD, REQUEST_BODY, RESPONSE_HEAD, RESPONSE_BODY = "H", "B", "h", "b"
PRINT_LETTERS = frozenset("HBhb")


def field_text(value: bytes | str) -> str:
    """A header name or value as text: UTF-8 where it is, latin-1 otherwise."""
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def format_head(first_line: str, fields: Iterable[tuple[bytes | str, bytes | str]]) -> bytes:
    """A message head: its first line, one ``name: value`` line per field, a blank line."""
    lines = [first_line] + [f"{field_text(name)}: {field_text(value)}" for name, value in fields]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def is_binary(chunk: bytes) -> bool:
    """Whether a body starting with ``chunk`` is binary (not for a terminal)."""
    return b"\x00" in chunk[:SNIFF]


class Printer:
    """Writes the parts ``--print`` chose to one binary stream.

    :param out: where the parts go (stdout, or the ``--output`` file).
    :param parts: the ``--print`` letters.
    :param terminal: ``out`` is a terminal: binary bodies are replaced by a note.
    """

    def __init__(self, out: IO[bytes], parts: str, terminal: bool) -> None:
        self.out = out
        self.parts = parts
        self.terminal = terminal
        # Something was written: the next message is separated from it.
        self._written = False
        self._body_ended_with_newline = True

    def wants(self, letter: str) -> bool:
        """Whether ``--print`` chose this part."""
        return letter in self.parts

    def head(self, first_line: str, fields: Iterable[tuple[bytes | str, bytes | str]]) -> None:
        """Write a request or response head."""
        self._separate()
        self.out.write(format_head(first_line, fields))
        self.out.flush()
        self._written = True
        self._body_ended_with_newline = True

    def request_body(self, body: Body) -> None:
        """Write a request body (a file body is read again from its start)."""
        body.rewind()
        if isinstance(body.data, bytes):
            self.body_chunks(iter([body.data]))
        else:
            self.body_chunks(_file_chunks(body.data, body.length))
        body.rewind()

    def body_chunks(self, chunks: Iterator[bytes], on_chunk: Any = None) -> int:
        """Write a body from its chunks; returns the byte count that arrived.

        ``on_chunk(len)`` is called for every chunk (the progress bar).
        """
        count = 0
        first = b""
        for chunk in chunks:
            if chunk:
                first = chunk
                break
        if not first:
            return 0
        if self.terminal and is_binary(first):
            self._separate()
            self.out.write(BINARY_NOTE + b"\n")
            self.out.flush()
            self._written = True
            # The rest is not shown but still counted (and read, so the exchange ends cleanly).
            count = len(first)
            if on_chunk is not None:
                on_chunk(len(first))
            for chunk in chunks:
                count += len(chunk)
                if on_chunk is not None:
                    on_chunk(len(chunk))
            return count
        self._written = True
        last = first
        for chunk in _prepend(first, chunks):
            self.out.write(chunk)
            count += len(chunk)
            if chunk:
                last = chunk
            if on_chunk is not None:
                on_chunk(len(chunk))
        self.out.flush()
        self._body_ended_with_newline = last.endswith(b"\n")
        return count

    def finish(self) -> None:
        """End the output: on a terminal, a body without a final newline gets one (for the prompt)."""
        if self.terminal and self._written and not self._body_ended_with_newline:
            self.out.write(b"\n")
            self.out.flush()

    def _separate(self) -> None:
        # Between two messages: the previous body ends its line, then a blank line.
        if self._written and not self._body_ended_with_newline:
            self.out.write(b"\n\n")
            self._body_ended_with_newline = True


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _file_chunks(handle: IO[bytes], length: int) -> Iterator[bytes]:
    left = length
    while left > 0:
        chunk = handle.read(min(CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def binary_stdout() -> IO[bytes]:
    """stdout as a binary stream."""
    buffer: IO[bytes] | None = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        raise OSError("stdout does not accept bytes")
    return buffer

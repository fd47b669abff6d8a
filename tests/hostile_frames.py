"""Raw HTTP/2 frames and HPACK blocks for fault-injection tests.

``h2`` refuses to send what a hostile server sends (bad SETTINGS values,
WINDOW_UPDATE of 0, HEADERS without ``:status``, floods of empty frames, an
HPACK bomb...), so the tests in :mod:`tests.test_hostile` build such frames
here, byte by byte, and write them with :meth:`tests.scripted.Peer.send_raw`.

The HPACK helpers only emit representations that leave the dynamic table
alone (literals *without* indexing, static-table indexes), so raw header
blocks can be mixed freely with blocks ``h2`` encodes on the same
connection. :func:`literal_indexed` is the exception, for the HPACK bomb.

:class:`FrameReader` parses what the client sends with ``hyperframe``, for
scripts that run without ``h2`` on the server side.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterable

import hpack
import hyperframe.frame

#: The client connection preface.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 section 6).
DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

# Flags.
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8

# SETTINGS identifiers.
HEADER_TABLE_SIZE = 0x1
ENABLE_PUSH = 0x2
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6


# -- frames -------------------------------------------------------------------


def frame_header(length: int, frame_type: int, flags: int, stream_id: int) -> bytes:
    """The 9-byte frame header; ``length`` may be anything up to 2^24-1."""
    return struct.pack(">I", length)[1:] + struct.pack(">BBI", frame_type, flags, stream_id & 0x7FFFFFFF)


def frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A whole frame: header and payload, no validation at all."""
    return frame_header(len(payload), frame_type, flags, stream_id) + payload


def settings(values: dict[int, int] | Iterable[tuple[int, int]] = (), ack: bool = False) -> bytes:
    """SETTINGS with any identifiers and values (32-bit), in the given order."""
    pairs = values.items() if isinstance(values, dict) else values
    payload = b"".join(struct.pack(">HI", ident, value) for ident, value in pairs)
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def ping(opaque: bytes = b"\0" * 8, ack: bool = False) -> bytes:
    return frame(PING, ACK if ack else 0, 0, opaque)


def data(stream_id: int, payload: bytes = b"", end_stream: bool = False, flags: int = 0) -> bytes:
    return frame(DATA, flags | (END_STREAM if end_stream else 0), stream_id, payload)


def padded_data(stream_id: int, payload: bytes, pad: int | None = None, end: bool = False) -> bytes:
    """A DATA frame built by hyperframe; ``pad`` adds the PADDED flag and that much padding (RFC 9113 6.1)."""
    frame = hyperframe.frame.DataFrame(stream_id)
    frame.data = payload
    if pad is not None:
        frame.flags.add("PADDED")
        frame.pad_length = pad
    if end:
        frame.flags.add("END_STREAM")
    return bytes(frame.serialize())


def flow_controlled(payload: int, pad: int | None) -> int:
    """A DATA frame's flow-controlled size: payload, pad length byte and padding (RFC 9113 6.1, 6.9)."""
    return payload + (0 if pad is None else pad + 1)


def headers(stream_id: int, block: bytes, end_stream: bool = False, end_headers: bool = True) -> bytes:
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, stream_id, block)


def continuation(stream_id: int, block: bytes = b"", end_headers: bool = False) -> bytes:
    return frame(CONTINUATION, END_HEADERS if end_headers else 0, stream_id, block)


def window_update(stream_id: int, increment: int) -> bytes:
    """WINDOW_UPDATE with any 31-bit increment, 0 included."""
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment & 0x7FFFFFFF))


def rst_stream(stream_id: int, error_code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", error_code))


def goaway(last_stream_id: int, error_code: int = 0, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, struct.pack(">II", last_stream_id & 0x7FFFFFFF, error_code) + debug)


# -- HPACK ----------------------------------------------------------------------


def hpack_int(value: int, prefix_bits: int, first_byte: int = 0) -> bytes:
    """An HPACK integer (RFC 7541 section 5.1) with ``first_byte``'s high bits set."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(text: bytes) -> bytes:
    return hpack_int(len(text), 7) + text  # no Huffman coding


def indexed(index: int) -> bytes:
    """An indexed field (static table 1-61, dynamic table from 62)."""
    return hpack_int(index, 7, 0x80)


def literal(name: bytes, value: bytes) -> bytes:
    """A literal field without indexing: the dynamic table is not touched."""
    return b"\x00" + _string(name) + _string(value)


def literal_indexed(name: bytes, value: bytes) -> bytes:
    """A literal field with incremental indexing: it enters the dynamic table."""
    return b"\x40" + _string(name) + _string(value)


def block(*fields: tuple[bytes, bytes]) -> bytes:
    """A header block of literals, exactly as given (no validation, any order)."""
    return b"".join(literal(name, value) for name, value in fields)


#: ``:status: 200`` from the static table.
STATUS_200 = indexed(8)


def response_headers(stream_id: int, *fields: tuple[bytes, bytes], end_stream: bool = False) -> bytes:
    """HEADERS with ``:status: 200`` followed by ``fields``."""
    return headers(stream_id, STATUS_200 + block(*fields), end_stream=end_stream)


# -- reading what the client sends ------------------------------------------


class FrameReader:
    """Parse the client's frames from a raw socket (no ``h2`` on this side).

    Request header blocks are decoded with a connection-wide HPACK decoder,
    so its dynamic table follows the client's encoder.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self._preface_seen = False
        self._decoder = hpack.Decoder()
        self.eof = False

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except TimeoutError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self._buffer += chunk
        return True

    def next_frame(self, timeout: float = 5.0) -> hyperframe.frame.Frame | None:
        """The next frame, or ``None`` at EOF or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        if not self._preface_seen:
            while len(self._buffer) < len(PREFACE):
                if not self._fill(deadline):
                    return None
            if bytes(self._buffer[: len(PREFACE)]) != PREFACE:
                raise AssertionError(f"client sent no HTTP/2 preface: {bytes(self._buffer[:30])!r}")
            del self._buffer[: len(PREFACE)]
            self._preface_seen = True
        while True:
            if len(self._buffer) >= 9:
                parsed, length = hyperframe.frame.Frame.parse_frame_header(memoryview(self._buffer[:9]))
                if len(self._buffer) >= 9 + length:
                    parsed.parse_body(memoryview(bytes(self._buffer[9 : 9 + length])))
                    del self._buffer[: 9 + length]
                    if isinstance(parsed, hyperframe.frame.HeadersFrame):
                        parsed.decoded = self._decoder.decode(parsed.data, raw=True)
                    return parsed
            if not self._fill(deadline):
                return None

    def wait_for(
        self, predicate: Callable[[hyperframe.frame.Frame], bool], timeout: float = 5.0
    ) -> hyperframe.frame.Frame:
        """Read frames until one matches ``predicate``; fail at EOF or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            parsed = self.next_frame(max(0.0, deadline - time.monotonic()))
            if parsed is None:
                raise AssertionError("client sent no matching frame (EOF or timeout)")
            if predicate(parsed):
                return parsed

    def frames_until_closed(self, timeout: float = 5.0) -> list[hyperframe.frame.Frame]:
        """Every frame until the client hangs up (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        frames = []
        while time.monotonic() < deadline:
            parsed = self.next_frame(max(0.0, deadline - time.monotonic()))
            if parsed is None:
                break
            frames.append(parsed)
        return frames


def drain_raw(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Read and keep everything until the client hangs up or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    received = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(received)
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            return bytes(received)
        except OSError:
            return bytes(received)
        if not chunk:
            return bytes(received)
        received += chunk


def parse_frames(raw: bytes) -> list[hyperframe.frame.Frame]:
    """Split bytes the client sent after its preface into frames (header blocks not decoded)."""
    frames = []
    view = memoryview(raw)
    while len(view) >= 9:
        parsed, length = hyperframe.frame.Frame.parse_frame_header(view[:9])
        if len(view) < 9 + length:
            break
        parsed.parse_body(memoryview(bytes(view[9 : 9 + length])))
        frames.append(parsed)
        view = view[9 + length :]
    return frames

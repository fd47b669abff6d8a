"""The "pure-Python floor": a minimal HTTP/2 client on ``ssl``, ``socket`` and ``struct`` only.

Issue 14 measures hyper against what the interpreter, OpenSSL and the kernel
cost per request when nothing else is done.  This client does only what an
HTTP/2 exchange strictly needs, so its figures are a floor for any Python
client, not a usable library:

* request HEADERS are encoded once per path; per request only the stream id
  in the 9-byte frame header changes (RFC 9113 section 4.1);
* frame headers are parsed with :mod:`struct`; of every response header block
  only ``:status`` is decoded (:mod:`bench.floor_status`);
* SETTINGS are acknowledged (section 6.5.3), PINGs answered (section 6.7),
  and receive-window credit is returned (section 6.9) so long bodies flow;
* the body of every stream is kept (or, for a download, counted) so the
  caller can check status and length: the figures are of correct exchanges.

It never uploads (issue 14's table has no floor figure for uploads).
Every wait is bounded by the connection's timeout.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
import time
from typing import Any

from bench.floor_status import FloorError, decode_status

__all__ = ["FloorConnection", "FloorError", "decode_status"]

# Frame types (RFC 9113 section 6).
DATA, HEADERS, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0x0,
    0x1,
    0x3,
    0x4,
    0x5,
    0x6,
    0x7,
    0x8,
    0x9,
)
# Flags (section 6): END_STREAM and ACK share a bit, as do the others.
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY = 0x20

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: Our receive windows: stream windows large enough that a 1 KiB response
#: never needs credit, and the connection window opened wide at once.
STREAM_WINDOW = 1 << 24
CONNECTION_WINDOW = (1 << 30) - 1
#: Credit is returned once half of a window has been used (the usual rule).
STREAM_REFILL = STREAM_WINDOW // 2
CONNECTION_REFILL = 1 << 24
#: Receive buffer: room for many frames; a frame never exceeds 16 KiB + 9
#: because this client keeps SETTINGS_MAX_FRAME_SIZE at its default.
BUFFER_SIZE = 256 * 1024
MAX_FRAME = 16384 + 9

# 9-byte frame header: 24-bit length and 8-bit type packed in one int, flags, stream id.
_FRAME_HEAD = struct.Struct(">IBI")
_UINT32 = struct.Struct(">I")
_SETTING = struct.Struct(">HI")


def _frame(frame_type: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return _FRAME_HEAD.pack(len(payload) << 8 | frame_type, flags, stream_id) + payload


class FloorConnection:
    """One HTTP/2 connection over TLS, doing only GETs.

    With ``shared=True`` several threads may call :meth:`get` at once: one lock
    protects the socket and the stream table, and whichever waiting thread
    finds nobody reading becomes the reader; it waits for the socket *outside*
    the lock (so the others can send meanwhile), then reads and dispatches
    every complete frame for everyone and wakes them.
    """

    def __init__(
        self, host: str, port: int, ca_file: str, timeout: float = 30.0, shared: bool = False
    ) -> None:
        context = ssl.create_default_context(cafile=ca_file)
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = context.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        self.timeout = timeout
        self.shared = shared
        self.authority = f"{host}:{port}"
        #: Protects the socket and everything below (only used when shared).
        self.cond = threading.Condition()
        self.reading = False
        # Bytes are read into one preallocated buffer (no allocation per read:
        # SSL_read returns one TLS record, at most 16 KiB, per call);
        # unparsed bytes are buffer[parsed:filled].
        self.buffer = bytearray(BUFFER_SIZE)
        self.view = memoryview(self.buffer)
        self.parsed = self.filled = 0
        self.next_stream_id = 1
        #: Open streams: id -> [status, body pieces, bytes received, bytes not yet credited].
        self.streams: dict[int, list[Any]] = {}
        #: Finished streams: id -> (status, body), or (status, length) when counted.
        self.done: dict[int, tuple[int, Any]] = {}
        #: Streams whose body is only counted, not kept (download).
        self.counting: set[int] = set()
        self.connection_unacked = 0
        self.peer_max_streams = 100  # until the server's SETTINGS say otherwise
        self.header_blocks: dict[str, bytes] = {}
        self.pending_headers: tuple[int, int, bytearray] | None = None
        try:
            if self.sock.selected_alpn_protocol() != "h2":
                raise FloorError(f"ALPN chose {self.sock.selected_alpn_protocol()!r}, not h2")
            # Preface, our SETTINGS (no push, 16 MiB stream windows) and the
            # connection window opened wide (RFC 9113 sections 3.4, 6.5, 6.9).
            settings = _SETTING.pack(0x2, 0) + _SETTING.pack(0x4, STREAM_WINDOW)
            self.sock.sendall(
                PREFACE
                + _frame(SETTINGS, 0, 0, settings)
                + _frame(WINDOW_UPDATE, 0, 0, _UINT32.pack(CONNECTION_WINDOW - 65535))
            )
        except BaseException:
            self.sock.close()  # no socket leaks from a failed start
            raise

    # -- sending ---------------------------------------------------------------

    def _headers_frame(self, path: str) -> tuple[bytes, bytes]:
        """(frame-header prefix, HPACK block) of a GET of *path*, encoded once."""
        block = self.header_blocks.get(path)
        if block is None:
            encoded_path, authority = path.encode("ascii"), self.authority.encode("ascii")
            if len(encoded_path) > 126 or len(authority) > 126:
                raise FloorError("path or authority too long for the one-byte length this client encodes")
            # :method GET (static 2), :scheme https (static 7), then literals
            # without indexing with indexed names :path (4) and :authority (1).
            block = (
                b"\x82\x87\x04"
                + bytes([len(encoded_path)])
                + encoded_path
                + b"\x01"
                + bytes([len(authority)])
                + authority
            )
            self.header_blocks[path] = block
        # 24-bit length and type HEADERS, then flags END_STREAM | END_HEADERS.
        return _UINT32.pack(len(block) << 8 | HEADERS) + bytes([END_STREAM | END_HEADERS]), block

    def _open_streams(self, path: str, count: int, counting: bool = False) -> tuple[list[int], bytes]:
        """Allocate *count* stream ids for GETs of *path*; their frames, not yet sent."""
        prefix, block = self._headers_frame(path)
        if len(self.streams) + count > self.peer_max_streams:
            raise FloorError(f"{count} more streams would exceed the server's limit {self.peer_max_streams}")
        ids, frames = [], []
        for _ in range(count):
            stream_id = self.next_stream_id
            self.next_stream_id += 2
            self.streams[stream_id] = [0, [], 0, 0]
            if counting:
                self.counting.add(stream_id)
            ids.append(stream_id)
            frames.append(prefix + _UINT32.pack(stream_id) + block)
        return ids, b"".join(frames)

    # -- receiving -------------------------------------------------------------

    def _receive(self) -> None:
        """One read from the socket; process every complete frame in the buffer."""
        buffer, pos = self.buffer, self.parsed
        if BUFFER_SIZE - self.filled < MAX_FRAME:
            # Move the partial frame to the front so a whole frame fits
            # (through a copy: the two ranges may overlap).
            self.buffer[: self.filled - pos] = self.view[pos : self.filled].tobytes()
            self.filled -= pos
            pos = 0
        received = self.sock.recv_into(self.view[self.filled :])
        if not received:
            raise FloorError("server closed the connection")
        end = self.filled = self.filled + received
        replies: list[bytes] = []
        while end - pos >= 9:
            length_type, flags, stream_id = _FRAME_HEAD.unpack_from(buffer, pos)
            length = length_type >> 8
            if length > MAX_FRAME - 9:
                # Over our SETTINGS_MAX_FRAME_SIZE (RFC 9113 section 4.2).
                raise FloorError(f"{length}-byte frame exceeds the 16,384-byte maximum")
            if end - pos - 9 < length:
                break
            start = pos + 9
            pos = start + length
            frame_type = length_type & 0xFF
            stream_id &= 0x7FFFFFFF
            if frame_type == DATA:
                self._on_data(stream_id, flags, buffer, start, length, replies)
            elif frame_type in (HEADERS, CONTINUATION):
                self._on_headers(frame_type, stream_id, flags, self.view[start:pos].tobytes())
            elif frame_type == SETTINGS:
                if not flags & ACK:
                    self._on_settings(self.view[start:pos].tobytes())
                    replies.append(_frame(SETTINGS, ACK, 0, b""))
            elif frame_type == PING:
                if not flags & ACK:
                    replies.append(_frame(PING, ACK, 0, self.view[start:pos].tobytes()))
            elif frame_type == RST_STREAM:
                code = _UINT32.unpack_from(buffer, start)[0]
                raise FloorError(f"server reset stream {stream_id} (error {code})")
            elif frame_type == GOAWAY:
                last, code = struct.unpack_from(">II", buffer, start)
                raise FloorError(f"server sent GOAWAY (error {code}, last stream {last & 0x7FFFFFFF})")
            elif frame_type == PUSH_PROMISE:
                raise FloorError("server pushed although SETTINGS_ENABLE_PUSH is 0")
            # WINDOW_UPDATE, PRIORITY and unknown types need nothing: this
            # client sends no DATA (RFC 9113 section 5.5 for unknown types).
        if pos == end:
            pos = self.filled = 0  # all parsed: start again at the front
        self.parsed = pos
        if replies:
            self.sock.sendall(b"".join(replies))

    def _on_settings(self, payload: bytes) -> None:
        for offset in range(0, len(payload) - len(payload) % 6, 6):
            key, value = _SETTING.unpack_from(payload, offset)
            if key == 0x3:  # SETTINGS_MAX_CONCURRENT_STREAMS
                self.peer_max_streams = value

    def _on_headers(self, frame_type: int, stream_id: int, flags: int, payload: bytes) -> None:
        if frame_type == HEADERS:
            pos, end = 0, len(payload)
            if flags & PADDED:  # section 6.2: pad length byte, padding at the end
                end -= payload[0]
                pos = 1
            if flags & PRIORITY:  # 5 bytes of stream dependency and weight
                pos += 5
            fragment = bytearray(payload[pos:end])
            if not flags & END_HEADERS:
                self.pending_headers = (stream_id, flags, fragment)
                return
        else:
            # CONTINUATION must follow on the same stream (section 6.10).
            if self.pending_headers is None or self.pending_headers[0] != stream_id:
                raise FloorError("unexpected CONTINUATION frame")
            _, first_flags, fragment = self.pending_headers
            fragment += payload
            if not flags & END_HEADERS:
                return
            self.pending_headers = None
            flags = first_flags
        state = self.streams.get(stream_id)
        if state is None:
            raise FloorError(f"HEADERS on stream {stream_id}, which is not open")
        if state[0] == 0:
            state[0] = decode_status(bytes(fragment))
        # A second block is trailers: not decoded.
        if flags & END_STREAM:
            self._finish(stream_id, state)

    def _on_data(
        self, stream_id: int, flags: int, buffer: bytearray, start: int, length: int, replies: list[bytes]
    ) -> None:
        state = self.streams.get(stream_id)
        if state is None:
            raise FloorError(f"DATA on stream {stream_id}, which is not open")
        body_start, body_end = start, start + length
        if flags & PADDED:
            body_end -= buffer[start]
            body_start += 1
        if stream_id not in self.counting:
            state[1].append(self.view[body_start:body_end].tobytes())
        state[2] += body_end - body_start
        # The whole payload, padding included, counts against both windows
        # (RFC 9113 section 6.9.1); credit is returned in batches.
        self.connection_unacked += length
        if self.connection_unacked >= CONNECTION_REFILL:
            replies.append(_frame(WINDOW_UPDATE, 0, 0, _UINT32.pack(self.connection_unacked)))
            self.connection_unacked = 0
        if flags & END_STREAM:
            self._finish(stream_id, state)
            return
        state[3] += length
        if state[3] >= STREAM_REFILL:
            replies.append(_frame(WINDOW_UPDATE, 0, stream_id, _UINT32.pack(state[3])))
            state[3] = 0

    def _finish(self, stream_id: int, state: list[Any]) -> None:
        del self.streams[stream_id]
        if stream_id in self.counting:
            self.counting.discard(stream_id)
            self.done[stream_id] = (state[0], state[2])
        else:
            self.done[stream_id] = (state[0], b"".join(state[1]))

    # -- waiting -----------------------------------------------------------------

    def _wait_for(self, stream_ids: list[int], deadline: float) -> None:
        """Read until every stream in *stream_ids* is done (caller holds ``cond`` if shared)."""
        done = self.done
        for stream_id in stream_ids:
            while stream_id not in done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FloorError(f"no response on stream {stream_id} within {self.timeout:g} s")
                if not self.shared:
                    self._receive()
                    continue
                if self.reading:
                    # Another thread reads for everyone and wakes us.
                    self.cond.wait(remaining)
                    continue
                self.reading = True
                try:
                    if not self.sock.pending():
                        # Wait outside the lock, so other threads can send.
                        self.cond.release()
                        try:
                            select.select([self.sock], [], [], remaining)
                        finally:
                            self.cond.acquire()
                    self._receive()
                finally:
                    self.reading = False
                    self.cond.notify_all()

    def _take(self, stream_id: int) -> tuple[int, Any]:
        status, body = self.done.pop(stream_id)
        if status == 0:
            raise FloorError(f"stream {stream_id} ended without a :status")
        return status, body

    # -- the workloads --------------------------------------------------------------

    def get(self, path: str) -> tuple[int, bytes]:
        """One GET: (status, body).  Thread-safe when the connection is shared."""
        deadline = time.monotonic() + self.timeout
        if not self.shared:
            (stream_id,), frame = self._open_streams(path, 1)
            self.sock.sendall(frame)
            self._wait_for([stream_id], deadline)
            return self._take(stream_id)
        with self.cond:
            (stream_id,), frame = self._open_streams(path, 1)
            self.sock.sendall(frame)
            self._wait_for([stream_id], deadline)
            return self._take(stream_id)

    def get_many(self, path: str, count: int) -> list[tuple[int, bytes]]:
        """*count* concurrent GETs sent in one write: their (status, body) in order."""
        stream_ids, frames = self._open_streams(path, count)
        self.sock.sendall(frames)
        self._wait_for(stream_ids, time.monotonic() + self.timeout)
        return [self._take(stream_id) for stream_id in stream_ids]

    def download(self, path: str) -> tuple[int, int]:
        """One GET whose body is counted, not kept: (status, body length)."""
        (stream_id,), frame = self._open_streams(path, 1, counting=True)
        self.sock.sendall(frame)
        self._wait_for([stream_id], time.monotonic() + self.timeout)
        status, length = self._take(stream_id)
        return status, int(length)

    def close(self) -> None:
        """Say GOAWAY (best effort) and close the socket."""
        try:
            self.sock.settimeout(1.0)
            self.sock.sendall(_frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
        except OSError:
            pass
        finally:
            self.sock.close()

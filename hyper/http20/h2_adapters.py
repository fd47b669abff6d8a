"""Where hyper adapts h2 4.x and hpack: RFC fixes and speed, in one place.

Each adaptation is small and says why. They change behaviour only where h2
disagrees with RFC 9113 or spends time on work nobody asked for; everything
else is h2 as shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.exceptions
import h2.frame_buffer
import hpack.hpack
import hyperframe.frame


class _GracefulGoawayStateMachine(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, except that GOAWAY keeps it open.

    h2 4.x treats a received GOAWAY as the end of the connection and rejects
    every later frame, but RFC 9113 section 6.8 lets the server finish the
    streams up to ``last_stream_id`` (nginx does, after keepalive_requests).
    We stop opening streams ourselves once GOAWAY is seen.
    """

    _transitions = {
        **h2.connection.H2ConnectionStateMachine._transitions,
        (h2.connection.ConnectionState.CLIENT_OPEN, h2.connection.ConnectionInputs.RECV_GOAWAY): (
            None,
            h2.connection.ConnectionState.CLIENT_OPEN,
        ),
    }


class _DataFrame(hyperframe.frame.DataFrame):
    """A DATA frame whose repr() does not hex-dump its payload.

    h2 calls repr() on every frame it receives for a trace log that is off by
    default; for DATA that meant copying and hex-encoding every payload, about
    a tenth of the time of a download.
    """

    def _body_repr(self) -> str:
        return f"<{len(self.data)} bytes>"


class _EarlyCheckFrameBuffer(h2.frame_buffer.FrameBuffer):
    """h2's frame buffer, but an oversized frame fails at its 9-byte header.

    h2 waits for the whole announced body before checking the length, so a
    server announcing 16 MiB and going silent (or answering in HTTP/1.1,
    whose "HTT" reads as a 4.7 MB length) would hold us until the timeout.
    """

    def __next__(self) -> hyperframe.frame.Frame:
        if len(self._data) >= 9:
            length = int.from_bytes(self._data[:3], "big")
            if length > self.max_frame_size:
                if self._data[:5] == b"HTTP/":
                    raise h2.exceptions.ProtocolError(
                        "server answered in HTTP/1.x, not HTTP/2: "
                        + bytes(self._data[:40]).split(b"\r\n")[0].decode("latin-1")
                    )
                raise h2.exceptions.FrameTooLargeError(
                    f"frame of {length} bytes announced, our limit is {self.max_frame_size}"
                )
        frame = super().__next__()
        if frame.__class__ is hyperframe.frame.DataFrame:
            frame.__class__ = _DataFrame
        return frame


def new_client_connection() -> h2.connection.H2Connection:
    """An h2 client connection with hyper's adaptations installed.

    h2's own header validation is off in both directions: outgoing fields
    are checked (more strictly, CR/LF/NUL included) by
    :func:`hyper.http20.fields.build_request_headers`, and incoming ones by
    :func:`hyper.http20.fields.response_header_problem`, which fails only the
    stream concerned where h2 would fail the whole connection.
    """
    config = h2.config.H2Configuration(
        client_side=True,
        header_encoding=None,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
        validate_inbound_headers=False,
        normalize_inbound_headers=True,
    )
    conn = h2.connection.H2Connection(config=config)
    conn.state_machine = _GracefulGoawayStateMachine()
    early_buffer = _EarlyCheckFrameBuffer(server=False)
    early_buffer.max_frame_size = conn.incoming_buffer.max_frame_size
    conn.incoming_buffer = early_buffer
    conn._frame_dispatch_table[_DataFrame] = conn._receive_data_frame
    _install_huffman_cache()
    return conn


# Servers send the same header values over and over (server, content-type,
# cache-control...) as Huffman-coded literals; hpack decodes each in pure
# Python, which was the largest single cost of a small response. Decoding is
# a pure function, so a bounded memo of short strings gives identical results.
_HUFFMAN_CACHE_ENTRIES = 1024
_HUFFMAN_CACHE_MAX_LEN = 256


def _install_huffman_cache() -> None:
    original: Callable[[Any], bytes] = hpack.hpack.decode_huffman  # type: ignore[attr-defined]
    if getattr(original, "_hyper_cached", False):
        return
    cache: dict[bytes, bytes] = {}

    def decode_huffman(data: Any) -> bytes:
        if data is None or len(data) > _HUFFMAN_CACHE_MAX_LEN:
            return original(data)
        key = bytes(data)
        try:
            return cache[key]
        except KeyError:
            pass
        value = original(key)
        if len(cache) >= _HUFFMAN_CACHE_ENTRIES:
            cache.clear()
        cache[key] = value
        return value

    decode_huffman._hyper_cached = True  # type: ignore[attr-defined]
    hpack.hpack.decode_huffman = decode_huffman  # type: ignore[attr-defined,assignment]

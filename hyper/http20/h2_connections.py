"""The h2 connections hyper builds, and the send fast paths for the adapted kind.

:func:`new_client_connection` gives the core an :class:`AdaptedH2Connection`
(with the fenced adaptations of :mod:`hyper.http20.h2_internals` and the
HPACK memos of :mod:`hyper.http20.hpack_cache`) when the fence allows it,
and a :class:`PublicH2Connection`, used through h2's public API only,
otherwise. :func:`send_request_headers` and :func:`send_plain_data` write
frames directly for an adapted connection and decline for the other kind.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events

from . import h2_internals as fence
from . import hpack_cache

_FRAME_HEADER = 9
_END_STREAM = 0x1
_HEADERS_FRAME = 0x1
_GOAWAY_FRAME = 0x7
_CONTINUATION_FRAME = 0x9
_END_HEADERS = 0x4


#: How many closed streams h2 remembers per connection (h2's default: 65,536).
#: h2 keeps how each closed stream ended, to ignore a late frame on a stream
#: we reset (RFC 9113 section 5.1, which lets an endpoint limit how long it
#: does so); late WINDOW_UPDATE and RST_STREAM frames are ignored even for
#: streams it forgot. At 65,536 that table is a 5-9 MiB dict per connection,
#: re-allocated as it grows and churns, by whichever thread reads: with
#: several threads each glibc arena kept its own freed copies, and the
#: soak's RSS crept by 36 MiB over 1M requests (bench/README.md). 4096
#: streams is far more than a server can complete within the round trips
#: a late frame takes, with any realistic concurrency limit.
CLOSED_STREAM_RECORDS = 4096


class AdaptedH2Connection(h2.connection.H2Connection):
    """h2's connection, built with the fenced adaptations (the fast paths may use it).

    A class of its own so the fast paths tell it apart with one type check.
    """

    MAX_CLOSED_STREAMS = CLOSED_STREAM_RECORDS


def new_client_connection() -> h2.connection.H2Connection:
    """An h2 client connection, with hyper's adaptations when the fence allows them.

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
    if not fence.fast_paths_enabled():
        return PublicH2Connection(config=config)
    conn = AdaptedH2Connection(config=config)
    fence.install_adaptations(conn)
    hpack_cache.install(conn)
    return conn


class PublicH2Connection(h2.connection.H2Connection):
    """h2's connection used through its public API only, able to hold output back.

    With the fast paths off, h2's ``receive_data`` queues a GOAWAY of its own
    choosing when a frame is refused; the core sends hyper's (with, e.g.,
    COMPRESSION_ERROR for a broken header block, RFC 9113 section 4.3).
    :class:`FrameSplitter` takes h2's GOAWAY out and holds what was queued
    before it, which goes out first.
    """

    MAX_CLOSED_STREAMS = CLOSED_STREAM_RECORDS

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        #: Bytes to send before anything h2 queues from now on.
        self.held_output = b""

    def data_to_send(self, amount: int | None = None) -> bytes:
        """h2's ``data_to_send``, after the held output."""
        if not self.held_output:
            return super().data_to_send(amount)
        data = self.held_output + super().data_to_send()
        if amount is None:
            amount = len(data)
        self.held_output = data[amount:]
        return data[:amount]

    def withdraw_goaway(self) -> None:
        """Drop the GOAWAY h2 just queued (the last frame queued); hold the rest."""
        data = self.data_to_send()
        offset = last = 0
        while offset + _FRAME_HEADER <= len(data):
            last = offset
            offset += _FRAME_HEADER + int.from_bytes(data[offset : offset + 3], "big")
        if offset == len(data) and data and data[last + 3] == _GOAWAY_FRAME:
            data = data[:last]
        self.held_output = data


def send_request_headers(
    conn: h2.connection.H2Connection,
    stream_id: int,
    headers: list[tuple[bytes, bytes]],
    end_stream: bool,
    slot_checked: bool = False,
) -> list[bytes] | None:
    """Open a new request stream the way h2's ``send_headers`` would, and return its frames' bytes.

    h2 builds hyperframe objects, flag sets and validation flags for every
    request, serializes them into its buffer and copies that out again; for
    small requests that was most of the cost of sending one. Here the stream
    goes through exactly h2's bookkeeping (see
    :func:`~hyper.http20.h2_internals.open_request_stream`) and the HEADERS
    (and, for a large block, CONTINUATION) frames are written directly.
    ``headers`` must be plain ``(bytes, bytes)`` tuples, pseudo-headers
    first. Returns ``None`` without changing anything when the connection is
    not in a plain state or the fast paths are off; the caller then uses
    h2's own ``send_headers``. ``slot_checked``: the caller has just found a
    free stream slot (see :func:`~hyper.http20.h2_internals.open_request_stream`).
    """
    if type(conn) is not AdaptedH2Connection:
        return None
    block = fence.open_request_stream(conn, stream_id, headers, end_stream, slot_checked)
    if block is None:
        return None
    max_size = conn.max_outbound_frame_size
    sid = stream_id.to_bytes(4, "big")
    if len(block) <= max_size:
        flags = _END_HEADERS | (_END_STREAM if end_stream else 0)
        return [len(block).to_bytes(3, "big") + bytes((_HEADERS_FRAME, flags)) + sid + block]
    pieces = [block[start : start + max_size] for start in range(0, len(block), max_size)]
    frames = [
        len(pieces[0]).to_bytes(3, "big")
        + bytes((_HEADERS_FRAME, _END_STREAM if end_stream else 0))
        + sid
        + pieces[0]
    ]
    for index, piece in enumerate(pieces[1:], start=2):
        flags = _END_HEADERS if index == len(pieces) else 0
        frames.append(len(piece).to_bytes(3, "big") + bytes((_CONTINUATION_FRAME, flags)) + sid + piece)
    return frames


#: Frames at least this big go out as header and payload separately (no copy);
#: smaller ones are joined into one piece so the header does not cost a TLS record.
_SPLIT_FRAME_MIN = 64 * 1024


def send_plain_data(
    conn: h2.connection.H2Connection, stream_id: int, payload: memoryview
) -> list[Any] | None:
    """Queue one DATA frame without flags the way h2's ``send_data`` would, minus the copies.

    h2 serializes each frame, appends it to its output buffer and copies that
    buffer out again: three copies of every uploaded byte before TLS makes
    its own. Here the frame is returned as pieces to send in order (the
    payload itself, not a copy, when the frame is big), after h2's windows
    are debited exactly as ``send_data`` does. Returns ``None`` when the
    stream or connection is not in a plain sending state or the fast paths
    are off; the caller then uses h2's own path, which raises as h2 does.
    """
    size = payload.nbytes
    if type(conn) is not AdaptedH2Connection or not fence.take_send_credit(conn, stream_id, size):
        return None
    header = size.to_bytes(3, "big") + b"\x00\x00" + stream_id.to_bytes(4, "big")
    if size >= _SPLIT_FRAME_MIN:
        return [header, payload]
    return [header + payload]

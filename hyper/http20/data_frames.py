"""A run of uploaded DATA frames, built with one window debit and one Python step per frame.

h2's ``send_data`` (and hyper's per-frame fast path) costs a few
microseconds of Python per frame; with the 16 KiB frames most servers allow
(SETTINGS_MAX_FRAME_SIZE 16,384, RFC 9113 section 6.5.2) that is ~6,400
frames per 100 MiB and, measured against nghttpd, about as much client CPU
as encrypting the bytes. Here a run of frames of one payload size takes the
send credit for all of them at once (:mod:`hyper.http20.h2_internals_data`)
and every full frame shares one prebuilt 9-byte header (RFC 9113 section
4.1: length, type DATA, no flags, stream id), so a frame costs one slice and
one join.

Frames leave in groups of :data:`FRAMES_PER_PIECE`, headers and payloads
joined into one piece (one copy, into a buffer small enough to stay in the
CPU cache), so that with record-filling payloads
(:mod:`hyper.http20.upload_frames`) every ``send()`` is whole TLS records,
and one Python step sends several of them.
"""

from __future__ import annotations

from typing import Any

from .h2_connections import AdaptedH2Connection
from .h2_internals_data import take_send_credit_run

#: DATA's frame type and no flags (RFC 9113 section 6.1): END_STREAM goes
#: separately, through h2.
_DATA_NO_FLAGS = b"\x00\x00"

#: Full frames joined into one piece to send. Each piece is one Python
#: ``send()`` (and one SSL_write) however many TLS records it fills: eight
#: record-filling frames (128 KiB) cut the Python steps per 100 MiB from
#: ~6,400 sends to ~800, and measured against nghttpd about 5-9 % of an
#: upload's client CPU (one send per frame: 0.75 ms/MB; four: 0.73; eight:
#: 0.69; sixteen: 0.73, the piece no longer staying in the CPU cache).
FRAMES_PER_PIECE = 8


def frame_data_run(conn: Any, stream_id: int, data: memoryview, frame_payload: int) -> list[bytes] | None:
    """Debit the windows for all of ``data`` and return it as DATA frames, a few per piece.

    The caller has checked that ``data`` fits both send windows. Returns
    ``None`` (nothing debited) when the fast paths are off or h2's state is
    not a plain sending one; the caller then frames through h2.
    """
    total = data.nbytes
    if type(conn) is not AdaptedH2Connection:
        return None
    if not take_send_credit_run(conn, stream_id, total, frame_payload):
        return None
    tail = total % frame_payload
    end = total - tail
    sid = stream_id.to_bytes(4, "big")
    header = frame_payload.to_bytes(3, "big") + _DATA_NO_FLAGS + sid
    # Frames go out in groups of FRAMES_PER_PIECE, each group one piece
    # (one copy, one send()): with record-filling frames a group is whole
    # TLS records, so the records are the same as one send() per frame.
    group = FRAMES_PER_PIECE * frame_payload
    pieces = []
    for group_start in range(0, end, group):
        parts = []
        for start in range(group_start, min(group_start + group, end), frame_payload):
            parts.append(header)  # RFC 9113 section 4.1: length, DATA, no flags, stream id
            parts.append(data[start : start + frame_payload])
        pieces.append(b"".join(parts))
    if tail:
        pieces.append(tail.to_bytes(3, "big") + _DATA_NO_FLAGS + sid + data[end:])
    return pieces

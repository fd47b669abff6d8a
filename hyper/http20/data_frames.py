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

Each frame leaves as one piece, header and payload joined (one copy, into a
buffer small enough to stay in the CPU cache), so that with record-filling
payloads (:mod:`hyper.http20.upload_frames`) every ``send()`` is whole TLS
records.
"""

from __future__ import annotations

from typing import Any

from .h2_connections import AdaptedH2Connection
from .h2_internals_data import take_send_credit_run

#: DATA's frame type and no flags (RFC 9113 section 6.1): END_STREAM goes
#: separately, through h2.
_DATA_NO_FLAGS = b"\x00\x00"


def frame_data_run(conn: Any, stream_id: int, data: memoryview, frame_payload: int) -> list[bytes] | None:
    """Debit the windows for all of ``data`` and return it as DATA frames, one piece each.

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
    pieces = [header + data[start : start + frame_payload] for start in range(0, end, frame_payload)]
    if tail:
        pieces.append(tail.to_bytes(3, "big") + _DATA_NO_FLAGS + sid + data[end:])
    return pieces

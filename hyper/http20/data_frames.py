"""A run of uploaded DATA frames, built with one window debit and written as one piece.

h2's ``send_data`` (and hyper's per-frame fast path) costs a few
microseconds of Python per frame; with the 16 KiB frames most servers allow
(SETTINGS_MAX_FRAME_SIZE 16,384, RFC 9113 section 6.5.2) that is ~6,400
frames per 100 MiB. Here a run of frames of one payload size takes the send
credit for all of them at once (:mod:`hyper.http20.h2_internals_data`) and
every full frame shares one prebuilt 9-byte header (RFC 9113 section 4.1:
length, type DATA, no flags, stream id).

The frames of a run are laid out back to back in one buffer (each payload
byte copied once, as joining a header to it would) and leave in one
``send()``: TLS cuts that into full 16,384-byte records itself (RFC 8446
section 5.1), so frames can keep the peer's full size and still fill every
record. Measured against h2o 2.2, 16,384-byte payloads cost the server about
a fifth less CPU per MB than the 16,375-byte ones that one-frame-per-record
needs; the client's CPU is the same either way.

The buffer is kept per connection and reused: a fresh ~256 KiB allocation per
run costs more than the copy (the allocator hands the memory back to the
kernel and faults it in again each time). It is reused only when no view of
it is alive any more, i.e. when everything framed in it before has been sent
or dropped; otherwise the run gets a new one.
"""

from __future__ import annotations

import weakref
from typing import Any

from .h2_connections import AdaptedH2Connection
from .h2_internals_data import take_send_credit_run
from .upload_frames import FRAME_HEADER

#: DATA's frame type and no flags (RFC 9113 section 6.1): END_STREAM goes
#: separately, through h2.
_DATA_NO_FLAGS = b"\x00\x00"

#: The reusable run buffer of each connection (the session's state lock
#: serialises a connection's runs; different connections never share one).
_RUN_BUFFERS: weakref.WeakKeyDictionary[Any, bytearray] = weakref.WeakKeyDictionary()


def _run_buffer(conn: Any, size: int) -> bytearray:
    """A buffer of at least ``size`` bytes for ``conn``'s next run, no longer referenced elsewhere."""
    buffer = reusable(_RUN_BUFFERS.get(conn), size)
    if buffer is None:
        buffer = bytearray(size)
        _RUN_BUFFERS[conn] = buffer
    return buffer


def reusable(buffer: bytearray | None, size: int) -> bytearray | None:
    """``buffer`` when it holds ``size`` bytes and no view of it is alive, else ``None``."""
    if buffer is None or len(buffer) < size:
        return None
    try:
        # A bytearray refuses to change size while a view of it exists:
        # the pieces of an earlier run still queued or being sent (a
        # failed send's traceback, say). Then it must not be written.
        buffer.append(0)
        buffer.pop()
    except BufferError:
        return None
    return buffer


def frame_data_run(conn: Any, stream_id: int, data: memoryview, frame_payload: int) -> list[Any] | None:
    """Debit the windows for all of ``data`` and return it as DATA frames of ``frame_payload`` bytes.

    The caller has checked that ``data`` fits both send windows. The frames
    come back as one piece (a view of the connection's run buffer) to be
    sent before the next run on the connection is framed. Returns ``None``
    (nothing debited) when the fast paths are off or h2's state is not a
    plain sending one; the caller then frames through h2.
    """
    total = data.nbytes
    if type(conn) is not AdaptedH2Connection:
        return None
    if not take_send_credit_run(conn, stream_id, total, frame_payload):
        return None
    tail = total % frame_payload
    end = total - tail
    frames = end // frame_payload + (1 if tail else 0)
    size = total + frames * FRAME_HEADER
    buffer = _run_buffer(conn, size)
    sid = stream_id.to_bytes(4, "big")
    header = frame_payload.to_bytes(3, "big") + _DATA_NO_FLAGS + sid
    frame = frame_payload + FRAME_HEADER
    at = 0
    for start in range(0, end, frame_payload):
        buffer[at : at + FRAME_HEADER] = header
        buffer[at + FRAME_HEADER : at + frame] = data[start : start + frame_payload]
        at += frame
    if tail:
        buffer[at : at + FRAME_HEADER] = tail.to_bytes(3, "big") + _DATA_NO_FLAGS + sid
        buffer[at + FRAME_HEADER : size] = data[end:]
    return [memoryview(buffer)[:size]]


# -- runs whose payload was read in place (hyper.common.file_body) ----------


def framed_size(total: int, frame_payload: int) -> int:
    """The bytes ``total`` bytes of payload take as DATA frames of ``frame_payload`` bytes."""
    return total + -(-total // frame_payload) * FRAME_HEADER


def payload_slots(buffer: bytearray, total: int, frame_payload: int) -> list[memoryview]:
    """Views of where the payload of each frame goes, for ``total`` bytes laid out as frames.

    Frame ``i`` starts at ``i * (FRAME_HEADER + frame_payload)``: 9 bytes of
    header (written by :func:`frame_read_run`), then its payload. Reading
    the body into these slots in order puts every byte where it is sent
    from. The caller lets the views go before the buffer is reused.
    """
    view = memoryview(buffer)
    slots = []
    at = FRAME_HEADER
    for start in range(0, total, frame_payload):
        size = min(frame_payload, total - start)
        slots.append(view[at : at + size])
        at += size + FRAME_HEADER
    return slots


def frame_read_run(
    conn: Any, stream_id: int, buffer: bytearray, total: int, frame_payload: int
) -> memoryview | None:
    """Debit the windows for the first ``total`` payload bytes in ``buffer``, frame them, return the frames.

    ``buffer`` holds payload laid out by :func:`payload_slots` (for at
    least ``total`` bytes, with the same ``frame_payload``); the caller has
    checked that ``total`` fits both send windows and that ``frame_payload``
    is within the peer's SETTINGS_MAX_FRAME_SIZE (RFC 9113 sections 6.9.1
    and 4.2). The 9-byte gaps before the payloads get each frame's header
    (the last frame's length is what is left of ``total``, which may end
    inside a slot: the rest of that slot is not sent). Returns one view of
    the buffer, to be sent before the buffer is written again, or ``None``
    (nothing debited, nothing written) when the fast paths are off or h2's
    state is not a plain sending one.
    """
    if type(conn) is not AdaptedH2Connection:
        return None
    if not take_send_credit_run(conn, stream_id, total, frame_payload):
        return None
    sid = stream_id.to_bytes(4, "big")
    header = frame_payload.to_bytes(3, "big") + _DATA_NO_FLAGS + sid
    frame = FRAME_HEADER + frame_payload
    full, tail = divmod(total, frame_payload)
    at = 0
    for _ in range(full):
        buffer[at : at + FRAME_HEADER] = header
        at += frame
    if tail:
        buffer[at : at + FRAME_HEADER] = tail.to_bytes(3, "big") + _DATA_NO_FLAGS + sid
        at += FRAME_HEADER + tail
    return memoryview(buffer)[:at]

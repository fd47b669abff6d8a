"""The fence's upload primitive: h2's send-window bookkeeping for a run of DATA frames.

Part of the fence (listed in ``tests/test_fence.py``): it names h2's private
state machine states, as :mod:`hyper.http20.h2_internals_steps` does. h2's
``send_data`` debits the stream's and the connection's send windows by each
frame's size (RFC 9113 section 6.9.1: a sender must not exceed either).
Debiting a run of frames of at most SETTINGS_MAX_FRAME_SIZE each (section
4.2) by their total leaves both windows exactly where one ``send_data`` per
frame would, with one Python call instead of one per 16 KiB.
"""

from __future__ import annotations

from typing import Any

import h2.connection

from .h2_internals_steps import STEPS_PROBLEM

#: The stream states in which our side may still send DATA (RFC 9113 section 5.1).
_SENDING: tuple[Any, ...] = ()

try:
    from h2.connection import ConnectionState  # not part of h2's documented API
    from h2.stream import StreamState

    _SENDING = (StreamState.OPEN, StreamState.HALF_CLOSED_REMOTE)
except ImportError:  # pragma: no cover - only with an incompatible h2 (STEPS_PROBLEM says so too)
    pass  # _SENDING stays empty: every run is refused, h2's own path sends


def take_send_credit_run(
    conn: h2.connection.H2Connection, stream_id: int, total: int, frame_payload: int
) -> bool:
    """Debit both send windows for ``total`` bytes sent as DATA frames of ``frame_payload`` bytes.

    Every frame but the last carries ``frame_payload`` bytes and none has
    flags: the same debits as ``send_data`` once per frame. False (nothing
    changed) when the stream or connection is not in a plain sending state,
    a frame would exceed the peer's SETTINGS_MAX_FRAME_SIZE, or the total
    does not fit both windows; the caller then uses h2's own path.
    """
    if STEPS_PROBLEM is not None:
        return False
    stream = conn.streams.get(stream_id)
    if (
        stream is None
        or stream.state_machine.state not in _SENDING
        or conn.state_machine.state is not ConnectionState.CLIENT_OPEN
        # RFC 9113 section 4.2: no frame beyond what the peer allows.
        or not 0 < frame_payload <= conn.max_outbound_frame_size
        # RFC 9113 section 6.9.1: neither window may go below zero.
        or not 0 < total <= conn.outbound_flow_control_window
        or total > stream.outbound_flow_control_window
    ):
        return False
    stream.outbound_flow_control_window -= total
    conn.outbound_flow_control_window -= total
    return True

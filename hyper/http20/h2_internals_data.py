"""The fence's upload primitives: h2's send-window bookkeeping for runs of DATA and for WINDOW_UPDATE.

Part of the fence (listed in ``tests/test_fence.py``): it names h2's private
state machine states, as :mod:`hyper.http20.h2_internals_steps` does. h2's
``send_data`` debits the stream's and the connection's send windows by each
frame's size (RFC 9113 section 6.9.1: a sender must not exceed either).
Debiting a run of frames of at most SETTINGS_MAX_FRAME_SIZE each (section
4.2) by their total leaves both windows exactly where one ``send_data`` per
frame would, with one Python call instead of one per 16 KiB.

The credit that comes back, a WINDOW_UPDATE on an uploading stream (RFC
9113 section 6.9), is what an upload waits for when the server's window is
small (nghttpd: 1 MiB, credited per 512 KiB, ~200 times per 100 MiB). h2
parses it into a frame object and runs both state machines, about forty
Python calls for one addition; :func:`receive_stream_window_update` makes
the same change and the same event when h2's tables say both machines only
stay where they are, and leaves every other case to h2.
"""

from __future__ import annotations

from typing import Any

import h2.connection
import h2.events

from .h2_internals_steps import STEPS_PROBLEM

#: The stream states in which our side may still send DATA (RFC 9113 section 5.1).
_SENDING: tuple[Any, ...] = ()

#: The stream states in which h2 takes a WINDOW_UPDATE by staying put and
#: firing WindowUpdated (checked against h2's own table below), and the
#: connection state in which it takes one without a change.
_CREDITED: frozenset[Any] = frozenset()
_CLIENT_OPEN: Any = None

#: RFC 9113 section 6.9.1: no flow-control window may exceed 2**31 - 1.
_LARGEST_WINDOW = 2**31 - 1

try:
    from h2.connection import ConnectionInputs, ConnectionState  # not part of h2's documented API
    from h2.connection import H2ConnectionStateMachine as _ConnectionMachine
    from h2.stream import H2StreamStateMachine, StreamInputs, StreamState
    from h2.stream import _transitions as _STREAM_TABLE

    _SENDING = (StreamState.OPEN, StreamState.HALF_CLOSED_REMOTE)
    # Only where h2's own tables say RECV_WINDOW_UPDATE leaves the state as
    # it is, with window_updated as the stream's step (h2 4.x): a changed h2
    # leaves these empty, and h2 takes every WINDOW_UPDATE itself.
    if _ConnectionMachine._transitions.get(
        (ConnectionState.CLIENT_OPEN, ConnectionInputs.RECV_WINDOW_UPDATE)
    ) == (None, ConnectionState.CLIENT_OPEN):
        _CLIENT_OPEN = ConnectionState.CLIENT_OPEN
    _CREDITED = frozenset(
        state
        for state in _SENDING
        if _STREAM_TABLE.get((state, StreamInputs.RECV_WINDOW_UPDATE))
        == (H2StreamStateMachine.window_updated, state)
    )
except (ImportError, AttributeError):  # pragma: no cover - only with an incompatible h2
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


def receive_stream_window_update(
    conn: h2.connection.H2Connection, stream_id: int, increment: int
) -> list[h2.events.Event] | None:
    """h2's handling of a WINDOW_UPDATE of ``increment`` on stream ``stream_id``, or ``None``.

    The caller has parsed the frame: 4 bytes of payload, no CONTINUATION
    expected (RFC 9113 section 6.10), the reserved bit dropped and the
    increment not 0 (section 6.9: h2 and the caller treat those). Done here
    only in the plain case: a client connection open, the stream one h2
    keeps in a state where its table just fires WindowUpdated, and the new
    window within 2**31 - 1 (section 6.9.1; above it h2 resets the stream).
    Then the stream's send window grows by ``increment`` and the event is
    h2's, as ``receive_data`` of the frame would give. ``None``, nothing
    changed, in every other case: the caller hands the frame to h2.
    """
    if STEPS_PROBLEM is not None or conn.state_machine.state is not _CLIENT_OPEN:
        return None
    stream = conn.streams.get(stream_id)
    if stream is None or stream.state_machine.state not in _CREDITED:
        return None
    window = stream.outbound_flow_control_window + increment
    if window > _LARGEST_WINDOW:
        return None  # h2 resets the stream with FLOW_CONTROL_ERROR
    stream.outbound_flow_control_window = window
    return [h2.events.WindowUpdated(stream_id=stream_id, delta=increment)]

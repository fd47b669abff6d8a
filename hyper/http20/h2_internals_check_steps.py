"""The fence's self-test of its prepared state machine steps (:mod:`hyper.http20.h2_internals_steps`).

Part of the fence. Each prepared step is run on one of h2's stream state
machines and ``process_input`` on another, from the same state with the
same flags; states, flags, events and errors must agree. The connection
step hyper skips (HEADERS in CLIENT_OPEN) must still change nothing.
"""

from __future__ import annotations

import enum
from typing import Any

import h2.events
import h2.exceptions

from . import h2_internals_steps as steps

try:
    from h2.connection import AllowedStreamIDs, ConnectionInputs, ConnectionState, H2ConnectionStateMachine
    from h2.stream import H2StreamStateMachine, StreamInputs, StreamState
except ImportError:  # pragma: no cover - reported through STEPS_PROBLEM
    pass


class StepMismatch(Exception):
    """A prepared step did not do what h2's ``process_input`` does."""


def _outcome(machine: Any, prepared: dict[Any, Any] | None, input_: Any) -> tuple[Any, ...]:
    """What one step returned or raised, and the machine's state after it.

    ``prepared``: through :func:`~hyper.http20.h2_internals_steps.step` with
    those entries; ``None``: through h2's ``process_input``.
    """
    try:
        if prepared is None:
            events = machine.process_input(input_)
        else:
            events = steps.step(machine, prepared, input_)
        result: Any = [(type(e).__name__, repr(sorted(vars(e).items(), key=repr))) for e in events]
    except h2.exceptions.ProtocolError as exc:
        result = ("raised", type(exc).__name__)
    return result, repr(sorted(vars(machine).items(), key=repr))


def _machine(state: Any, headers_received: bool) -> Any:
    machine = H2StreamStateMachine(1)
    machine.state = state
    machine.client = True
    machine.headers_sent = True
    machine.headers_received = headers_received or None
    return machine


def _vars(value: Any) -> Any:
    """An h2 object's attributes as plain values, nested h2 objects included (the config by identity)."""
    if (
        isinstance(value, enum.Enum)
        or not type(value).__module__.startswith("h2.")
        or not hasattr(value, "__dict__")
    ):
        return repr(value)
    return sorted((name, _vars(item)) for name, item in vars(value).items() if name != "config")


def _check_new_request_stream() -> None:
    """:func:`~hyper.http20.h2_internals_steps.new_request_stream` makes what ``_begin_new_stream`` makes."""
    import h2.config
    import h2.connection

    twins = []
    for ours in (True, False):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.local_settings.initial_window_size = 1234567  # not the defaults: both read the settings
        conn.local_settings.acknowledge()
        conn.max_outbound_frame_size = 20000
        for stream_id in (1, 7):
            if ours:
                stream = steps.new_request_stream(conn, stream_id)
            else:
                stream = conn._begin_new_stream(stream_id, AllowedStreamIDs.ODD)
        twins.append(
            (
                _vars(stream),
                sorted(conn.streams),
                conn.highest_outbound_stream_id,
                stream.config is conn.config,
            )
        )
    if twins[0] != twins[1]:
        raise StepMismatch(f"a new request stream differs from h2's: {twins[0]} != {twins[1]}")


def _check_take_output() -> None:
    """:func:`~hyper.http20.h2_internals_steps.take_output` gives what ``data_to_send`` gives."""
    import h2.config
    import h2.connection

    ours, theirs = (h2.connection.H2Connection(h2.config.H2Configuration(client_side=True)) for _ in range(2))
    for conn in (ours, theirs):
        conn.initiate_connection()
    # Queued output, then none, then queued again: the same bytes each time.
    for _ in range(2):
        for _ in range(2):
            if steps.take_output(ours) != theirs.data_to_send():
                raise StepMismatch("take_output differs from data_to_send")
        ours.ping(b"12345678")
        theirs.ping(b"12345678")


def check_steps() -> None:
    """Raise :class:`StepMismatch` when a prepared step and h2 disagree."""
    if steps.STEPS_PROBLEM is not None:
        raise StepMismatch(steps.STEPS_PROBLEM)
    prepared = [
        (steps._SEND_HEADERS, StreamInputs.SEND_HEADERS),
        (steps._SEND_END_STREAM, StreamInputs.SEND_END_STREAM),
        (steps._RECV_HEADERS, StreamInputs.RECV_HEADERS),
        (steps._RECV_DATA, StreamInputs.RECV_DATA),
        (steps._RECV_END_STREAM, StreamInputs.RECV_END_STREAM),
    ]
    for table, input_ in prepared:
        for state in table:
            # Before and after the response headers: DATA before them is
            # refused, HEADERS after them are trailers.
            for headers_received in (False, True):
                ours, theirs = _machine(state, headers_received), _machine(state, headers_received)
                if state.name == "IDLE":
                    ours.client = theirs.client = ours.headers_sent = theirs.headers_sent = None
                got, want = _outcome(ours, table, input_), _outcome(theirs, None, input_)
                if got != want:
                    raise StepMismatch(f"{input_.name} in {state.name}: {got} != {want}")
    # A state with no prepared entry goes through process_input itself.
    machine = _machine(StreamState.CLOSED, True)
    try:
        steps.step(machine, steps._RECV_DATA, StreamInputs.RECV_DATA)
    except h2.exceptions.ProtocolError:
        pass
    else:
        raise StepMismatch("DATA on a closed stream was not refused")
    if steps._OPEN_STAYS_OPEN:
        connection = H2ConnectionStateMachine()
        connection.state = ConnectionState.CLIENT_OPEN
        before = dict(vars(connection))
        if connection.process_input(ConnectionInputs.SEND_HEADERS) or vars(connection) != before:
            raise StepMismatch("HEADERS in CLIENT_OPEN changed the connection state")
    _check_new_request_stream()
    _check_take_output()
    event = h2.events.StreamEnded(stream_id=1)
    if event.stream_id != 1:  # pragma: no cover - events are built by keyword since h2 4.3
        raise StepMismatch("events are not built by keyword")

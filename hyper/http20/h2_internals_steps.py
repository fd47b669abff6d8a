"""The fence's stream primitives: h2's bookkeeping for the common frames, minus its dispatch.

Part of the fence (:mod:`hyper.http20.h2_internals`, which re-exports every
name below): only the fence modules name h2's private internals. A small
request is a handful of state machine steps in h2 (open the connection
state, open the stream, end our side; response headers, DATA, the end of
the server's side), and each step of h2's ``process_input`` builds a tuple
key of two enums, hashes them through ``Enum.__hash__`` (Python code) and
looks the pair up in the transition table. That lookup cost more than the
step itself. Here the entries of the steps hyper takes on its fast paths
are looked up once, at import, *from h2's own tables*; a step then runs
h2's own transition function for the state it finds, with the error
handling ``process_input`` has. A state the table has no prepared entry for
goes through ``process_input`` itself, so the outcome (state, flags,
events, errors) is h2's in every case. ``self_test`` (in
:mod:`hyper.http20.h2_internals_check`) and ``tests/test_fast_steps.py``
compare both ways step by step. The steps of a received response, and
their fused forms, are :mod:`hyper.http20.h2_internals_receive`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h2.connection
import h2.events
import h2.exceptions

#: Why the steps cannot be prepared (the fast paths are then off), or ``None``.
STEPS_PROBLEM: str | None = None
try:
    from h2.connection import (  # not part of h2's documented API
        ConnectionInputs,
        ConnectionState,
        H2ConnectionStateMachine,
    )
    from h2.settings import SettingCodes
    from h2.stream import STREAM_OPEN, H2Stream, H2StreamStateMachine, StreamInputs, StreamState
    from h2.stream import _transitions as _STREAM_TABLE
    from h2.windows import WindowManager

    _INITIAL_WINDOW_SIZE = SettingCodes.INITIAL_WINDOW_SIZE
except ImportError as exc:  # pragma: no cover - only with an incompatible h2
    STEPS_PROBLEM = f"cannot import an internal: {exc}"

#: One prepared step: h2's transition function (or ``None``) and the target state.
Entry = tuple[Callable[..., list[h2.events.Event]] | None, Any]


def _prepare(states: tuple[str, ...], input_name: str) -> dict[Any, Entry]:
    """h2's own table entries for ``input_name`` in each of ``states``, keyed by state.

    StreamState is an ``IntEnum``, so looking a state up here hashes an int
    in C, unlike h2's (state, input) keys.
    """
    table: dict[Any, Entry] = {}
    for name in states:
        state = StreamState[name]
        table[state] = _STREAM_TABLE[(state, StreamInputs[input_name])]
    return table


try:
    if STEPS_PROBLEM is None:
        # Our side of a new request: IDLE -> OPEN, then OPEN -> HALF_CLOSED_LOCAL.
        _SEND_HEADERS = _prepare(("IDLE",), "SEND_HEADERS")
        _SEND_END_STREAM = _prepare(("OPEN",), "SEND_END_STREAM")
        # The server's side, in the two states a stream receives in.
        _RECV_HEADERS = _prepare(("OPEN", "HALF_CLOSED_LOCAL"), "RECV_HEADERS")
        _RECV_DATA = _prepare(("OPEN", "HALF_CLOSED_LOCAL"), "RECV_DATA")
        _RECV_END_STREAM = _prepare(("OPEN", "HALF_CLOSED_LOCAL"), "RECV_END_STREAM")
        # RFC 9113 section 5.1.1 bookkeeping of the connection: HEADERS in
        # the CLIENT_OPEN state leave it as it is, with no side effect.
        _OPEN_STAYS_OPEN = H2ConnectionStateMachine._transitions.get(
            (ConnectionState.CLIENT_OPEN, ConnectionInputs.SEND_HEADERS)
        ) == (None, ConnectionState.CLIENT_OPEN)
        _RECEIVING = (StreamState.OPEN, StreamState.HALF_CLOSED_LOCAL)
        _OPENABLE = (ConnectionState.IDLE, ConnectionState.CLIENT_OPEN)
        _SENDING = (StreamState.OPEN, StreamState.HALF_CLOSED_REMOTE)
        # The states h2 counts against the peer's MAX_CONCURRENT_STREAMS
        # (RFC 9113 section 5.1.2), from h2's own table.
        _COUNTED = frozenset(state for state in StreamState if STREAM_OPEN[state])
        # A new request's two steps, written out in open_request_stream (see
        # there) only where h2's table holds exactly what that writes out:
        # request_sent taking IDLE to OPEN, and END_STREAM taking OPEN to
        # HALF_CLOSED_LOCAL with no function (RFC 9113 section 5.1).
        _SEND_FUSABLE = _SEND_HEADERS[StreamState.IDLE] == (
            H2StreamStateMachine.request_sent,
            StreamState.OPEN,
        ) and _SEND_END_STREAM[StreamState.OPEN] == (None, StreamState.HALF_CLOSED_LOCAL)
except (KeyError, AttributeError, TypeError) as exc:  # pragma: no cover - only with a changed h2
    STEPS_PROBLEM = f"h2's state machine tables changed: {type(exc).__name__}: {exc}"
    _SEND_FUSABLE = False

#: Take a new request's steps fused where h2's table allows (see _SEND_FUSABLE);
#: tests turn it off to compare with the prepared steps one at a time.
fuse_send_steps = True


def step(machine: Any, prepared: dict[Any, Entry], input_: Any) -> list[h2.events.Event]:
    """What ``machine.process_input(input_)`` does, through a prepared entry when there is one.

    ``prepared`` holds h2's entries for ``input_``, by state. The error
    handling is ``process_input``'s: a transition function that raises
    leaves the stream CLOSED.
    """
    previous = machine.state
    entry = prepared.get(previous)
    if entry is None:
        return machine.process_input(input_)  # type: ignore[no-any-return]
    function, machine.state = entry
    if function is None:
        return []
    try:
        return function(machine, previous)
    except h2.exceptions.ProtocolError:
        machine.state = StreamState.CLOSED
        raise
    except AssertionError as err:  # pragma: no cover - h2 asserts its own invariants
        machine.state = StreamState.CLOSED
        raise h2.exceptions.ProtocolError(err) from err


# -- receiving (the rest of it: hyper.http20.h2_internals_receive) --------------------


def consume_plain_data(conn: h2.connection.H2Connection, stream: Any, size: int) -> None:
    """h2's accounting for an unpadded DATA frame without END_STREAM on a receiving stream."""
    conn._inbound_flow_control_window_manager.window_consumed(size)
    stream._inbound_window_manager.window_consumed(size)
    stream._track_content_length(size, False)


# -- sending ------------------------------------------------------------------------


def open_outbound_streams(conn: h2.connection.H2Connection) -> int:
    """``conn.open_outbound_streams`` of a client connection, side effect included.

    h2's count walks every stream through two properties each and, as it
    goes, moves closed streams to its record of closed ones (which decides
    how a late frame on them is treated). The same walk, reading each
    stream's state once: the count and the records come out as h2's.
    """
    count = 0
    closed: list[int] = []
    for stream_id, stream in conn.streams.items():
        state = stream.state_machine.state
        if state in _COUNTED and stream_id % 2 == 1:  # ours: client stream ids are odd
            count += 1
        elif state is StreamState.CLOSED:
            closed.append(stream_id)
    for stream_id in closed:
        stream = conn.streams.pop(stream_id)
        # stream.closed_by, without the property's call (it returns this).
        conn._closed_streams[stream_id] = stream.state_machine.stream_closed_by
    return count


def open_request_stream(
    conn: h2.connection.H2Connection,
    stream_id: int,
    headers: list[tuple[bytes, bytes]],
    end_stream: bool,
    slot_checked: bool = False,
) -> bytes | None:
    """h2's bookkeeping of ``send_headers`` for a new request; returns the HPACK block.

    Concurrency check, stream creation, the stream's state machine, the
    encoder, and the method and authority h2 remembers. ``None`` (nothing
    changed) when the connection is not in a plain state. ``slot_checked``:
    the caller found a free slot within the server's MAX_CONCURRENT_STREAMS
    (RFC 9113 section 5.1.2) with nothing changed since, so h2's count of
    open streams (a walk over every stream) is not made a second time.
    """
    machine = conn.state_machine
    if (
        stream_id in conn.streams
        or machine.state not in _OPENABLE
        # h2 refuses a stream id not above the last one, or even (RFC 9113
        # section 5.1.1): its own path raises that error.
        or stream_id <= conn.highest_outbound_stream_id
        or not stream_id % 2
    ):
        return None
    if not slot_checked:
        limit = conn.remote_settings.max_concurrent_streams
        open_now = conn.open_outbound_streams
        if open_now + 1 > limit:
            raise h2.exceptions.TooManyStreamsError(f"Max outbound streams is {limit}, {open_now} open")
    if not (_OPEN_STAYS_OPEN and machine.state is ConnectionState.CLIENT_OPEN):
        machine.process_input(ConnectionInputs.SEND_HEADERS)
    stream = new_request_stream(conn, stream_id)
    # The state changes before encoding, as in h2: encoding cannot be undone.
    stream_machine = stream.state_machine
    if fuse_send_steps and _SEND_FUSABLE:
        # request_sent, fused: the stream is new (IDLE), we are its client
        # and our HEADERS open it (section 5.1). Its _RequestSent event is
        # dropped by h2's own send path too.
        stream_machine.state = StreamState.OPEN
        stream_machine.client = True
        stream_machine.headers_sent = True
    else:
        step(stream_machine, _SEND_HEADERS, StreamInputs.SEND_HEADERS)
    block: bytes = conn.encoder.encode(headers)
    if end_stream:
        if fuse_send_steps and _SEND_FUSABLE:
            stream_machine.state = StreamState.HALF_CLOSED_LOCAL  # no function in h2's table
        else:
            step(stream_machine, _SEND_END_STREAM, StreamInputs.SEND_END_STREAM)
    authority = None
    for name, value in headers:
        if name == b":authority":
            authority = value
            break
    stream._authority = authority
    stream.request_method = headers[0][1] if headers and headers[0][0] == b":method" else None
    return block


def new_request_stream(conn: h2.connection.H2Connection, stream_id: int) -> Any:
    """h2's ``_begin_new_stream`` for a new request stream whose id the caller checked.

    The same stream object, windows and connection records (the self-test
    compares every attribute with h2's own), without the two debug log
    calls and the generic id checks: ``stream_id`` is odd and above every
    id used so far (RFC 9113 section 5.1.1). Where the self-test found
    h2's constructors to set exactly the attributes written out below
    (:data:`_STREAM_WRITTEN_OUT`), they are set here without the five calls
    (three constructors, two settings properties) that made them.
    """
    if not _STREAM_WRITTEN_OUT:
        stream = H2Stream(
            stream_id,
            config=conn.config,
            inbound_window_size=conn.local_settings.initial_window_size,
            outbound_window_size=conn.remote_settings.initial_window_size,
        )
        stream.max_outbound_frame_size = conn.max_outbound_frame_size
    else:
        # H2StreamStateMachine.__init__: a new stream is IDLE, nothing
        # sent or received on it yet (section 5.1).
        machine = _new_object(H2StreamStateMachine)
        machine.state = StreamState.IDLE
        machine.stream_id = stream_id
        machine.client = None
        machine.headers_sent = None
        machine.trailers_sent = None
        machine.headers_received = None
        machine.trailers_received = None
        machine.stream_closed_by = None
        # WindowManager.__init__, sized by our SETTINGS_INITIAL_WINDOW_SIZE
        # in force (what the settings property reads, section 6.9.2).
        inbound = conn.local_settings._settings[_INITIAL_WINDOW_SIZE][0]
        window = _new_object(WindowManager)
        window.max_window_size = inbound
        window.current_window_size = inbound
        window._bytes_processed = 0
        # H2Stream.__init__, then the frame size _begin_new_stream sets.
        stream = _new_object(H2Stream)
        stream.state_machine = machine
        stream.stream_id = stream_id
        stream.max_outbound_frame_size = conn.max_outbound_frame_size
        stream.request_method = None
        stream.outbound_flow_control_window = conn.remote_settings._settings[_INITIAL_WINDOW_SIZE][0]
        stream._inbound_window_manager = window
        stream._expected_content_length = None
        stream._actual_content_length = 0
        stream._authority = None
        stream.config = conn.config
    conn.streams[stream_id] = stream
    conn.highest_outbound_stream_id = stream_id
    return stream


def _stream_written_out() -> bool:
    """True when h2's three constructors set exactly what new_request_stream writes out.

    Compared on objects h2 makes itself: the attribute names of each, and
    the settings' storage the window sizes are read from. Anything else
    (another h2) keeps h2's constructors.
    """
    try:
        import h2.config
        import h2.settings

        stream = H2Stream(
            3, config=h2.config.H2Configuration(), inbound_window_size=7, outbound_window_size=9
        )
        settings = h2.settings.Settings(client=True, initial_values={_INITIAL_WINDOW_SIZE: 5})
        return (
            set(vars(stream)) == _STREAM_FIELDS
            and set(vars(stream.state_machine)) == _MACHINE_FIELDS
            and type(stream._inbound_window_manager) is WindowManager
            and set(vars(stream._inbound_window_manager)) == _WINDOW_FIELDS
            and settings._settings[_INITIAL_WINDOW_SIZE][0] == settings.initial_window_size == 5
        )
    except (AttributeError, KeyError, TypeError, ValueError):  # pragma: no cover - only with a changed h2
        return False


_new_object = object.__new__
_STREAM_FIELDS = {
    "state_machine",
    "stream_id",
    "max_outbound_frame_size",
    "request_method",
    "outbound_flow_control_window",
    "_inbound_window_manager",
    "_expected_content_length",
    "_actual_content_length",
    "_authority",
    "config",
}
_MACHINE_FIELDS = {
    "state",
    "stream_id",
    "client",
    "headers_sent",
    "trailers_sent",
    "headers_received",
    "trailers_received",
    "stream_closed_by",
}
_WINDOW_FIELDS = {"max_window_size", "current_window_size", "_bytes_processed"}
#: new_request_stream sets a stream's attributes itself (see _stream_written_out).
_STREAM_WRITTEN_OUT = STEPS_PROBLEM is None and _stream_written_out()


def take_output(conn: h2.connection.H2Connection) -> bytes:
    """``conn.data_to_send()``, without its copy and fresh buffer when nothing is queued.

    The session asks for output several times per request (after opening
    a stream, after each read, before waiting), and most of the time h2 has
    nothing queued: h2 then still copies its empty buffer and makes a new
    one. The answer is the same empty bytes.
    """
    # Bytes an adapted connection held back from an earlier short take
    # (AdaptedH2Connection.held_output) are output too: never skipped.
    if not conn._data_to_send and not getattr(conn, "held_output", b""):
        return b""
    return conn.data_to_send()


def take_send_credit(conn: h2.connection.H2Connection, stream_id: int, size: int) -> bool:
    """Debit both send windows for a DATA frame without flags, as ``send_data`` does.

    False (nothing changed) when the stream or connection is not in a plain
    sending state or the frame does not fit; the caller then uses h2's path.
    """
    stream = conn.streams.get(stream_id)
    if (
        stream is None
        or stream.state_machine.state not in _SENDING
        or conn.state_machine.state is not ConnectionState.CLIENT_OPEN
        or not 0 < size <= min(conn.max_outbound_frame_size, conn.outbound_flow_control_window)
        or size > stream.outbound_flow_control_window
    ):
        return False
    stream.outbound_flow_control_window -= size
    conn.outbound_flow_control_window -= size
    return True

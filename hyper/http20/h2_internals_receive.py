"""The fence's steps of a received response: h2's bookkeeping for HEADERS and DATA, fused.

Part of the fence (:mod:`hyper.http20.h2_internals`, which re-exports the
public names below): only the fence modules name h2's private internals.
The frame splitter (:mod:`hyper.http20.h2_adapters`) hands a whole HEADERS
frame without padding or priority, or an unpadded DATA frame, on one of our
receiving streams straight to :func:`receive_plain_headers` or
:func:`receive_plain_data`: the HPACK decode, the stream's state machine
steps, its window and content-length, in h2's order, without h2's generic
frame dispatch. The prepared steps are :mod:`hyper.http20.h2_internals_steps`';
the fused forms here write out the common ones (see below).
``tests/test_fast_steps.py`` and ``tests/test_fused_steps.py`` compare
everything with h2's own path after every frame; ``self_test`` (in
:mod:`hyper.http20.h2_internals_check`) checks them at start-up.
"""

from __future__ import annotations

from typing import Any

import h2.connection
import h2.events
import h2.exceptions

from .h2_internals_steps import STEPS_PROBLEM, consume_plain_data, step
from .receive_records import LAST_DATA, RESPONSE_FIELDS

try:
    from h2.connection import ConnectionState, _decode_headers  # not part of h2's documented API
    from h2.stream import H2StreamStateMachine, StreamClosedBy, StreamInputs, StreamState
    from h2.utilities import is_informational_response

    # The prepared steps (missing when h2's internals are not as expected).
    from .h2_internals_steps import _RECEIVING, _RECV_DATA, _RECV_END_STREAM, _RECV_HEADERS
except ImportError:  # pragma: no cover - only with an incompatible h2 (STEPS_PROBLEM says so too)
    pass


def tables_fusable() -> bool:
    """True when h2's table maps a response's steps to the functions the fused forms write out.

    The fused steps (below) do what h2's transition functions for a
    response do: only where h2's own table names exactly those functions,
    with the states they are written for. END_STREAM is fused only in
    HALF_CLOSED_LOCAL (our request complete): in OPEN (an upload still
    going) h2 half-closes instead, through its own step.
    """
    if STEPS_PROBLEM is not None:
        return False
    from . import h2_internals_steps as steps

    try:
        return all(
            steps._RECV_HEADERS[state] == (H2StreamStateMachine.response_received, state)
            and steps._RECV_DATA[state] == (H2StreamStateMachine.data_received, state)
            for state in steps._RECEIVING
        ) and steps._RECV_END_STREAM[StreamState.HALF_CLOSED_LOCAL] == (
            H2StreamStateMachine.stream_ended,
            StreamState.CLOSED,
        )
    except (KeyError, AttributeError, TypeError):  # pragma: no cover - only with a changed h2
        return False


_FUSABLE = tables_fusable()

#: Take a response's steps fused where h2's table allows (see _fused); tests
#: turn it off to compare with the prepared steps one at a time.
fuse_steps = True

# -- the fused steps --------------------------------------------------------------
#
# A response is at most three steps of a stream's state machine: RECV_HEADERS
# (response_received), RECV_DATA (data_received) and RECV_END_STREAM
# (stream_ended, once our request is complete). In the states a stream
# receives in (OPEN and HALF_CLOSED_LOCAL, RFC 9113 section 5.1), h2's table
# maps them to those functions, which do nothing but set a flag or two and
# make one event. The fused forms below write that out, once per frame
# instead of once per step (a call to step(), a table look-up, a call to
# h2's function, a list each), where _FUSABLE found h2's table to be exactly
# that; in any other state, or with flags other than the fused form assumes,
# the prepared steps run. tests/test_fused_steps.py compares both with h2.


# When a fused form applies: fuse_steps and _FUSABLE, the stream in a state
# the forms are written for (_RECEIVING) and we its client (machine.client is
# True). Written out at both uses below (a call fewer per frame).


def ended_by_peer(machine: Any) -> h2.events.StreamEnded:
    """RECV_END_STREAM in HALF_CLOSED_LOCAL: h2's ``stream_ended``, fused (the caller checked the state).

    The stream closes (section 5.1: END_STREAM from the server with our
    side already done), closed by the server's END_STREAM, which decides
    how h2 treats a late frame on it.
    """
    machine.state = StreamState.CLOSED
    machine.stream_closed_by = StreamClosedBy.RECV_END_STREAM
    return h2.events.StreamEnded(stream_id=machine.stream_id)


def receiving_stream(conn: h2.connection.H2Connection, stream_id: int, needs_headers: bool) -> Any:
    """The h2 stream if a plain frame on it may skip h2's generic path, else ``None``.

    DATA ``needs_headers``: before the response headers it is h2's to refuse.
    """
    stream = conn.streams.get(stream_id)
    if (
        stream is not None
        and stream.state_machine.state in _RECEIVING
        and (stream.state_machine.headers_received or not needs_headers)
        and conn.state_machine.state is ConnectionState.CLIENT_OPEN
    ):
        return stream
    return None


def receive_plain_data(
    conn: h2.connection.H2Connection, stream: Any, payload: bytes, end_stream: bool, records: bool = False
) -> list[Any]:
    """What h2 does for an unpadded DATA frame on a receiving stream, minus the overhead.

    With ``records``, the fused last frame of a response (END_STREAM in
    HALF_CLOSED_LOCAL) comes back as one :data:`~hyper.http20.receive_records.LAST_DATA`
    record instead of h2's two events; h2's bookkeeping is the same.
    """
    size = len(payload)
    if not end_stream:
        consume_plain_data(conn, stream, size)
        return [h2.events.DataReceived(stream_id=stream.stream_id, data=payload, flow_controlled_length=size)]
    # The connection window first (h2's _receive_data_frame), then the
    # stream's steps in h2's order: RECV_DATA (refused before the response
    # headers), its window and content-length (RFC 9113 section 8.1.1: a
    # body short of content-length is malformed), then RECV_END_STREAM,
    # which closes the stream and makes the StreamEnded event.
    connection_window = conn._inbound_flow_control_window_manager
    machine = stream.state_machine
    if (
        machine.headers_received
        and machine.state is StreamState.HALF_CLOSED_LOCAL  # one of _RECEIVING
        and machine.client is True
        and fuse_steps
        and _FUSABLE
    ):
        # data_received (after the headers: an event, the state unchanged),
        # the stream's window and content-length (either may raise, with
        # the state unchanged, as in h2), then stream_ended, fused.
        stream_window = stream._inbound_window_manager
        expected = stream._expected_content_length
        actual = stream._actual_content_length + size
        if (
            _ACCOUNTING_WRITTEN_OUT
            and connection_window.current_window_size >= size
            and stream_window.current_window_size >= size
            and (expected is None or expected == actual)
        ):
            # The three calls below, written out where none of them can
            # fail (both windows hold the frame, RFC 9113 section 6.9; the
            # body ends at its content-length, RFC 9110 section 8.6):
            # what they change, without the calls.
            connection_window.current_window_size -= size
            stream_window.current_window_size -= size
            stream._actual_content_length = actual
        else:
            connection_window.window_consumed(size)
            stream_window.window_consumed(size)
            stream._track_content_length(size, True)
        # ended_by_peer(machine), written out (once per response).
        machine.state = StreamState.CLOSED
        machine.stream_closed_by = StreamClosedBy.RECV_END_STREAM
        if records:
            # The events below, as the one tuple the core reads them for.
            return [(LAST_DATA, machine.stream_id, payload, size)]
        end = h2.events.StreamEnded(stream_id=machine.stream_id)
        data = h2.events.DataReceived(
            stream_id=machine.stream_id, data=payload, flow_controlled_length=size, stream_ended=end
        )
        return [data, end]
    connection_window.window_consumed(size)
    events = step(machine, _RECV_DATA, StreamInputs.RECV_DATA)
    stream._inbound_window_manager.window_consumed(size)
    stream._track_content_length(size, True)
    ended = step(machine, _RECV_END_STREAM, StreamInputs.RECV_END_STREAM)
    data_event: Any = events[0]
    data_event.stream_ended = ended[0]
    data_event.data = payload
    data_event.flow_controlled_length = size
    events.extend(ended)
    return events


def receive_plain_headers(
    conn: h2.connection.H2Connection, stream: Any, block: bytes, end_stream: bool, records: bool = False
) -> list[Any]:
    """What h2 does for a whole HEADERS frame without padding or priority on one of our streams.

    Kept: the HPACK decode with h2's error translation, and the stream's
    own transitions, content-length and header normalisation, in h2's
    order. A 1xx response (rare) goes through h2's own method. With
    ``records``, a final response without END_STREAM whose block h2 leaves
    as decoded comes back as one
    :data:`~hyper.http20.receive_records.RESPONSE_FIELDS` record instead of
    h2's ``ResponseReceived``; h2's bookkeeping is the same.
    """
    headers = _decode_headers(conn.decoder, block)
    first = headers[0] if type(headers) is list and headers else None
    # h2's is_informational_response looks for :status among the leading
    # pseudo-fields; when :status comes first (RFC 9113 section 8.3: the
    # pseudo-fields lead, and servers put :status first) its answer is that
    # value's first digit, read here without the call.
    if (
        is_informational_response(headers)
        if first is None or first[0] != b":status"
        else first[1][:1] == b"1"
    ):
        frames, informational = stream.receive_headers(headers, end_stream, conn.config.header_encoding)
        if frames:  # pragma: no cover - h2 sends nothing for received headers
            conn._prepare_for_sending(frames)
        return informational  # type: ignore[no-any-return]
    machine = stream.state_machine
    headers_event: Any
    events: list[Any]
    end: h2.events.Event
    # The fused response_received's event, made only when asked for: a
    # record may stand for it (see the end).
    deferred = False
    if (
        not machine.headers_received
        and machine.state in _RECEIVING
        and machine.client is True
        and fuse_steps
        and _FUSABLE
    ):
        # response_received, fused: the first HEADERS on our request's
        # stream are its response (section 8.1), the state unchanged.
        machine.headers_received = True
        if records and not end_stream:
            headers_event = None
            events = []
            deferred = True
        else:
            headers_event = h2.events.ResponseReceived(stream_id=machine.stream_id)
            events = [headers_event]
        if end_stream:
            # stream_ended, fused when our request is complete; else h2's step.
            if machine.state is StreamState.HALF_CLOSED_LOCAL:
                end = ended_by_peer(machine)
            else:
                end = step(machine, _RECV_END_STREAM, StreamInputs.RECV_END_STREAM)[0]
            headers_event.stream_ended = end
            events.append(end)
    else:
        events = step(machine, _RECV_HEADERS, StreamInputs.RECV_HEADERS)
        headers_event = events[0]
        if end_stream:
            ended = step(machine, _RECV_END_STREAM, StreamInputs.RECV_END_STREAM)
            headers_event.stream_ended = ended[0]
            events += ended
    # One pass over the block for what h2 looks at in it: content-length
    # (h2's _initialize_content_length) and cookie (its joining, below).
    declared: Any = None  # the one content-length value; _TWICE: more than one
    cookie = False
    plain = type(headers) is list
    if plain:
        for name, value in headers:
            if name == b"content-length":
                declared = value if declared is None else _TWICE
            elif name == b"cookie":
                cookie = True
    if (
        plain
        and stream.request_method != b"HEAD"
        and (declared is None or (type(declared) is bytes and len(declared) <= 18 and declared.isdigit()))
    ):
        # _initialize_content_length's outcome for a block without
        # content-length, or with one value of at most 18 ASCII digits
        # (which int() always parses; longer strings may pass
        # sys.get_int_max_str_digits and raise ValueError, which h2's own
        # method turns into its ProtocolError): the value, or None (no
        # length declared).
        stream._expected_content_length = None if declared is None else int(declared)
    else:
        # HEAD (h2 expects no body, RFC 9110 section 9.3.2), several
        # values or an invalid one: h2's own method decides, errors included.
        stream._initialize_content_length(headers)
    if type(headers_event) is h2.events.TrailersReceived and not end_stream:
        # RFC 9113 section 8.1: trailers end the stream.
        raise h2.exceptions.ProtocolError("Trailers must have END_STREAM set")
    config = conn.config
    # config.header_encoding and config.validate_inbound_headers, read from
    # where h2 keeps them (three calls fewer); another h2 that keeps them
    # elsewhere takes its own pipeline below, which is always right.
    stored = config.__dict__
    if (
        plain
        and stored.get("_header_encoding", _UNKNOWN) is None
        and stored.get("_validate_inbound_headers") is False
        and not cookie
    ):
        # hyper's configuration (h2_connections.new_client_connection): the
        # only processing h2 does is joining ``cookie`` fields (RFC 9113
        # section 8.2.3), which leaves a block without one as it is. Its
        # pipeline would build validation flags and a chain of generators
        # per block only to copy the list; the decoded list is this block's
        # own, so it is the result.
        if deferred:
            # What the ResponseReceived would carry, as the core's record.
            return [(RESPONSE_FIELDS, machine.stream_id, headers)]
        headers_event.headers = headers
        return events
    if deferred:
        # h2's pipeline below reads the events: the fused step's own, made now.
        headers_event = h2.events.ResponseReceived(stream_id=machine.stream_id)
        events = [headers_event]
    flags = stream._build_hdr_validation_flags(events)
    headers_event.headers = stream._process_received_headers(headers, flags, config.header_encoding)
    return events


#: A content-length field seen more than once (h2 then decides).
_TWICE = object()
#: A config attribute h2 does not keep where expected.
_UNKNOWN = object()


def accounting_written_out() -> bool:
    """True when h2's window and content-length steps change only what receive_plain_data writes out.

    Checked on h2's own objects: ``window_consumed`` lowers
    ``current_window_size`` by the size and nothing else;
    ``_track_content_length`` of a body that ends at its declared length
    (or declares none) raises nothing and adds the size to
    ``_actual_content_length``, nothing else.
    """
    if STEPS_PROBLEM is not None:
        return False
    try:
        import h2.config
        from h2.stream import H2Stream
        from h2.windows import WindowManager

        window = WindowManager(100)
        before = dict(vars(window))
        window.window_consumed(30)
        before["current_window_size"] -= 30
        if vars(window) != before:
            return False
        for declared in (None, 12):
            stream = H2Stream(
                1, config=h2.config.H2Configuration(), inbound_window_size=9, outbound_window_size=9
            )
            stream._expected_content_length = declared
            stream._actual_content_length = 5
            expected_vars = dict(vars(stream))
            expected_vars["_actual_content_length"] = 12
            stream._track_content_length(7, True)
            if vars(stream) != expected_vars:
                return False
        return True
    except (AttributeError, KeyError, TypeError, ValueError, h2.exceptions.ProtocolError):  # pragma: no cover
        return False  # only with a changed h2


#: receive_plain_data writes out h2's window and content-length steps (see accounting_written_out).
_ACCOUNTING_WRITTEN_OUT = accounting_written_out()

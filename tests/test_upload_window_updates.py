"""The fence's WINDOW_UPDATE primitive against h2's own handling of the same frame.

:func:`hyper.http20.h2_internals_data.receive_stream_window_update` makes the
change h2's ``receive_data`` makes for a WINDOW_UPDATE on a stream our side
still sends on (RFC 9113 section 6.9), or declines (``None``) and changes
nothing. Each test builds two identical client connections, hands one the
frame through h2 and the other through the primitive, and compares the send
windows, the events and what each would send; where the primitive declines,
the connection must be untouched.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import hyperframe.frame
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper.http20 import h2_internals_data
from hyper.http20.h2_internals_data import receive_stream_window_update

POST = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/up")]
RESPONSE = [(b":status", b"200")]
LARGEST_WINDOW = 2**31 - 1


def pair(
    streams: int = 1, server_ends: bool = False, client_ends: bool = False
) -> h2.connection.H2Connection:
    """A client connection past the handshake, with ``streams`` uploads open (ids 1, 3, ...).

    ``server_ends``: the server answered and ended its side of each
    (HALF_CLOSED_REMOTE for us, as when a server answers early);
    ``client_ends``: we ended ours (HALF_CLOSED_LOCAL).
    """
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    client.initiate_connection()
    server.initiate_connection()
    for index in range(streams):
        client.send_headers(2 * index + 1, POST, end_stream=client_ends)
    server.receive_data(client.data_to_send())
    for index in range(streams):
        if server_ends:
            server.send_headers(2 * index + 1, RESPONSE, end_stream=True)
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())  # the client's SETTINGS ACK
    client.data_to_send()
    return client


def twin(build: Any) -> tuple[h2.connection.H2Connection, h2.connection.H2Connection]:
    """Two connections built the same way: one for h2's path, one for the primitive."""
    return build(), build()


def window_update(stream_id: int, increment: int) -> bytes:
    frame = hyperframe.frame.WindowUpdateFrame(stream_id)
    frame.window_increment = increment
    return frame.serialize()


def state(conn: h2.connection.H2Connection) -> tuple[Any, ...]:
    """What a WINDOW_UPDATE may change: every send window and state."""
    streams = tuple(
        (stream_id, stream.state_machine.state, stream.outbound_flow_control_window)
        for stream_id, stream in sorted(conn.streams.items())
    )
    return (conn.state_machine.state, conn.outbound_flow_control_window, streams)


def described(events: list[h2.events.Event]) -> list[tuple[Any, ...]]:
    return [(type(event), event.stream_id, getattr(event, "delta", None)) for event in events]


@settings(max_examples=60, deadline=None)
@given(
    server_ends=st.booleans(),
    streams=st.integers(min_value=1, max_value=3),
    updates=st.lists(
        st.tuples(st.integers(min_value=0, max_value=2), st.integers(min_value=1, max_value=2**20)),
        min_size=1,
        max_size=12,
    ),
)
def test_same_windows_and_events_as_h2(
    server_ends: bool, streams: int, updates: list[tuple[int, int]]
) -> None:
    """Credit on open (or half-closed remote) uploads: the primitive does exactly what h2 does."""
    reference, fast = twin(lambda: pair(streams, server_ends=server_ends))
    for index, increment in updates:
        stream_id = 2 * (index % streams) + 1
        expected = reference.receive_data(window_update(stream_id, increment))
        got = receive_stream_window_update(fast, stream_id, increment)
        assert got is not None
        assert described(got) == described(expected)
        assert state(fast) == state(reference)
        assert fast.data_to_send() == reference.data_to_send() == b""


def test_credit_a_data_run_spent_comes_back_the_same() -> None:
    """Windows debited by sent DATA, then credited: both paths end where h2 alone would."""
    reference, fast = twin(pair)
    for conn in (reference, fast):
        for _ in range(4):  # 4 x 15,000 bytes, in frames within the 16,384 limit (section 4.2)
            conn.send_data(1, b"x" * 15_000)
        conn.data_to_send()
    expected = reference.receive_data(window_update(1, 40_000))
    got = receive_stream_window_update(fast, 1, 40_000)
    assert got is not None and described(got) == described(expected)
    assert state(fast) == state(reference)
    assert fast.local_flow_control_window(1) == reference.local_flow_control_window(1)


def test_declines_beyond_the_largest_window() -> None:
    """Section 6.9.1: h2 resets the stream (FLOW_CONTROL_ERROR); the primitive leaves that to h2."""
    conn = pair()
    before = state(conn)
    increment = LARGEST_WINDOW - conn.streams[1].outbound_flow_control_window + 1
    assert receive_stream_window_update(conn, 1, increment) is None
    assert state(conn) == before
    # Up to the limit exactly is allowed (and is h2's result too).
    reference = pair()
    exact = LARGEST_WINDOW - conn.streams[1].outbound_flow_control_window
    expected = reference.receive_data(window_update(1, exact))
    got = receive_stream_window_update(conn, 1, exact)
    assert got is not None and described(got) == described(expected)
    assert state(conn) == state(reference)


@pytest.mark.parametrize(
    "build, stream_id",
    [
        (lambda: pair(client_ends=True), 1),  # HALF_CLOSED_LOCAL: h2 fires the event; left to it
        (pair, 3),  # a stream h2 never had
        (pair, 2),  # an even id: never ours
    ],
    ids=["half-closed-local", "unknown-stream", "even-stream"],
)
def test_declines_streams_it_does_not_take(build: Any, stream_id: int) -> None:
    conn = build()
    before = state(conn)
    assert receive_stream_window_update(conn, stream_id, 1000) is None
    assert state(conn) == before


def test_declines_a_closed_stream() -> None:
    conn = pair()
    conn.reset_stream(1)
    conn.data_to_send()
    before = state(conn)
    assert receive_stream_window_update(conn, 1, 1000) is None
    assert state(conn) == before


def test_declines_once_the_connection_is_closed() -> None:
    """After GOAWAY h2's connection state machine is CLOSED: h2 decides (it raises there)."""
    conn = pair()
    conn.close_connection()
    conn.data_to_send()
    before = state(conn)
    assert receive_stream_window_update(conn, 1, 1000) is None
    assert state(conn) == before


def test_declines_with_a_changed_h2(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the self-check found h2's tables changed (or an internal missing), h2 takes every frame."""
    conn = pair()
    before = state(conn)
    monkeypatch.setattr(h2_internals_data, "_CREDITED", frozenset())
    assert receive_stream_window_update(conn, 1, 1000) is None
    monkeypatch.undo()
    monkeypatch.setattr(h2_internals_data, "STEPS_PROBLEM", "turned off by the test")
    assert receive_stream_window_update(conn, 1, 1000) is None
    assert state(conn) == before


def test_h2_tables_checked_at_import() -> None:
    """With this h2, the plain sending states qualify (else the fast path would never run)."""
    import h2.stream

    sending = {h2.stream.StreamState.OPEN, h2.stream.StreamState.HALF_CLOSED_REMOTE}
    assert h2_internals_data._CREDITED == sending
    assert h2_internals_data._CLIENT_OPEN is h2.connection.ConnectionState.CLIENT_OPEN


def test_events_are_h2s_type_with_h2s_fields() -> None:
    conn = pair()
    got = receive_stream_window_update(conn, 1, 12345)
    assert got is not None
    (event,) = got
    assert isinstance(event, h2.events.WindowUpdated)
    assert (event.stream_id, event.delta) == (1, 12345)
    assert repr(event) == "<WindowUpdated stream_id:1, delta:12345>"


def test_settings_change_then_credit() -> None:
    """A server's new INITIAL_WINDOW_SIZE (section 6.9.2) moves the window first; the credit adds to it."""
    reference, fast = twin(pair)
    settings_frame = hyperframe.frame.SettingsFrame(0)
    settings_frame.settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100}
    for conn in (reference, fast):
        conn.receive_data(settings_frame.serialize())
        conn.data_to_send()
    expected = reference.receive_data(window_update(1, 500))
    got = receive_stream_window_update(fast, 1, 500)
    assert got is not None and described(got) == described(expected)
    assert state(fast) == state(reference)
    assert fast.local_flow_control_window(1) == 600

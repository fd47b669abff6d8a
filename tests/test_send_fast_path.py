"""The send fast paths write exactly the bytes h2's own send_headers/send_data would.

:func:`hyper.http20.h2_adapters.send_request_headers` and
:func:`~hyper.http20.h2_adapters.send_plain_data` bypass h2's frame objects
and buffers. Two h2 connections in the same state, one sending through h2 and
one through the fast path, must produce identical wire bytes and end in the
same h2 state (stream states, windows, highest stream id, HPACK table).
"""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from hyper.http20.h2_adapters import new_client_connection, send_plain_data, send_request_headers
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark

# These compare the fast paths with h2's own: they need them on.
pytestmark = pytest.mark.usefixtures("fast_paths_on")

AUTHORITY = b"example.org"


def request(path: bytes, *extra: tuple[bytes, bytes], method: bytes = b"GET") -> list[tuple[bytes, bytes]]:
    return [
        (b":method", method),
        (b":scheme", b"https"),
        (b":authority", AUTHORITY),
        (b":path", path),
        *extra,
    ]


def connected_pair(max_frame_size: int | None = None) -> tuple[h2.connection.H2Connection, ...]:
    """Two identical client connections that completed their handshake with a server."""
    clients = []
    for _ in range(2):
        client = new_client_connection()
        client.initiate_connection()
        server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        server.initiate_connection()
        if max_frame_size is not None:
            server.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: max_frame_size})
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        server.receive_data(client.data_to_send())
        clients.append(client)
    return tuple(clients)


def h2_state(conn: h2.connection.H2Connection) -> tuple[object, ...]:
    return (
        conn.state_machine.state,
        conn.highest_outbound_stream_id,
        conn.outbound_flow_control_window,
        sorted(
            (sid, s.state_machine.state, s.outbound_flow_control_window, s.request_method, s._authority)
            for sid, s in conn.streams.items()
        ),
        list(conn.encoder.header_table.dynamic_entries),
        conn.encoder.header_table._current_size,
    )


REQUESTS = [
    (request(b"/"), True),
    (request(b"/"), True),  # repeated: all indexed (and memoised)
    (request(b"/upload", (b"content-length", b"5"), method=b"POST"), False),
    (request(b"/a?q=1", (b"accept-encoding", b"gzip, br"), (b"user-agent", b"hyper-test")), True),
    (request(b"/big", (b"x-big", b"v" * 40_000)), True),  # HEADERS + CONTINUATIONs
    (request(b"/big", (b"x-big", b"v" * 40_000)), False),
    (request(b"/" + b"p" * 20_000), True),
]


@pytest.mark.parametrize("max_frame_size", [None, 16_384 * 4])
def test_request_headers_are_byte_for_byte_h2s(max_frame_size: int | None) -> None:
    via_h2, fast = connected_pair(max_frame_size)
    stream_id = 1
    for headers, end_stream in REQUESTS:
        via_h2.send_headers(stream_id, headers, end_stream=end_stream)
        frames = send_request_headers(fast, stream_id, headers, end_stream)
        assert frames is not None
        assert b"".join(frames) == via_h2.data_to_send()
        assert h2_state(fast) == h2_state(via_h2)
        stream_id += 2


def test_a_connection_not_plainly_open_is_left_to_h2() -> None:
    conn = connected_pair()[0]
    conn.close_connection()
    conn.data_to_send()
    assert send_request_headers(conn, 1, request(b"/"), True) is None
    assert 1 not in conn.streams


def test_an_existing_stream_is_left_to_h2() -> None:
    conn = connected_pair()[0]
    conn.send_headers(1, request(b"/", method=b"POST"), end_stream=False)
    conn.data_to_send()
    assert send_request_headers(conn, 1, [(b"x-trailer", b"1")], True) is None


@pytest.mark.parametrize("size", [1, 1000, 16_384])
def test_data_frames_are_byte_for_byte_h2s(size: int) -> None:
    via_h2, fast = connected_pair()
    for conn in (via_h2, fast):
        conn.send_headers(1, request(b"/up", method=b"POST"), end_stream=False)
        conn.data_to_send()
    payload = memoryview(bytes(range(256)) * (size // 256 + 1))[:size]
    for _ in range(3):
        via_h2.send_data(1, payload.tobytes())
        pieces = send_plain_data(fast, 1, payload)
        assert pieces is not None
        assert b"".join(bytes(piece) for piece in pieces) == via_h2.data_to_send()
        assert h2_state(fast) == h2_state(via_h2)


def test_a_big_data_frame_is_sent_by_reference() -> None:
    conn = connected_pair(max_frame_size=2**20)[0]
    conn.send_headers(1, request(b"/up", method=b"POST"), end_stream=False)
    conn.data_to_send()
    conn.increment_flow_control_window(2**20)  # ours, irrelevant; the server's windows are what count
    payload = memoryview(b"z" * 60_000)
    pieces = send_plain_data(conn, 1, payload)
    assert pieces is not None and len(pieces) == 1  # under 64 KiB: joined with its header
    big = memoryview(bytearray(65_535 - 60_000))
    pieces = send_plain_data(conn, 1, big)
    assert pieces is not None


@pytest.mark.parametrize("why", ["window", "frame size", "closed stream", "empty"])
def test_data_that_h2_would_refuse_is_left_to_h2(why: str) -> None:
    conn = connected_pair()[0]
    conn.send_headers(1, request(b"/up", method=b"POST"), end_stream=why == "closed stream")
    conn.data_to_send()
    size = {"window": 70_000, "frame size": 20_000, "closed stream": 10, "empty": 0}[why]
    before = h2_state(conn)
    assert send_plain_data(conn, 1, memoryview(b"d" * size)) is None
    assert h2_state(conn) == before

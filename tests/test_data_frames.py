"""A run of DATA frames built by :mod:`hyper.http20.data_frames` is byte for byte h2's.

Two h2 client connections in the same state, one sending a body through
h2's ``send_data`` one frame at a time and one through
:func:`~hyper.http20.data_frames.frame_data_run`, must produce identical wire
bytes and end with identical send windows (RFC 9113 section 6.9.1). Refusals
(a stream not in a sending state, a frame beyond SETTINGS_MAX_FRAME_SIZE, a
run beyond a window) must change nothing, so the caller can fall back to h2.
"""

from __future__ import annotations

import h2.config
import h2.connection
import pytest

from hyper.http20.data_frames import frame_data_run
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark
from tests.test_send_fast_path import connected_pair, request

pytestmark = pytest.mark.usefixtures("fast_paths_on")

BODY = memoryview(bytes((i * 13 + i // 7) % 256 for i in range(60_000)))


def windows(conn: h2.connection.H2Connection, stream_id: int) -> tuple[int, int]:
    return conn.outbound_flow_control_window, conn.streams[stream_id].outbound_flow_control_window


def open_upload(conn: h2.connection.H2Connection) -> int:
    stream_id = conn.get_next_available_stream_id()
    conn.send_headers(stream_id, request(b"/upload", method=b"POST"))
    conn.data_to_send()
    return stream_id


@pytest.mark.parametrize(
    ("max_frame_size", "payload", "size"),
    [
        (None, 16375, 60_000),  # frames smaller than the limit and a short last one
        (None, 16384, 60_000),  # full frames and a short last one
        (None, 16384, 49_152),  # exactly three full frames, no tail
        (None, 16384, 1),
        (40_000, 32759, 60_000),
    ],
)
def test_run_is_byte_for_byte_h2s_frames(max_frame_size: int | None, payload: int, size: int) -> None:
    ours, theirs = connected_pair(max_frame_size)
    our_id, their_id = open_upload(ours), open_upload(theirs)
    data = BODY[:size]
    pieces = frame_data_run(ours, our_id, data, payload)
    assert pieces is not None
    assert len(pieces) == 1  # the whole run leaves in one send
    for start in range(0, size, payload):
        theirs.send_data(their_id, data[start : start + payload].tobytes())
    assert b"".join(pieces) == theirs.data_to_send()
    assert windows(ours, our_id) == windows(theirs, their_id)
    assert ours.data_to_send() == b""  # nothing left behind in h2's buffer


def test_refusals_change_nothing() -> None:
    (conn,) = connected_pair()[:1]
    stream_id = open_upload(conn)
    before = windows(conn, stream_id)
    # A frame beyond SETTINGS_MAX_FRAME_SIZE (RFC 9113 section 4.2).
    assert frame_data_run(conn, stream_id, BODY[:20_000], 16_385) is None
    # A run beyond the stream's and connection's 65,535-byte windows (section 6.9.1).
    assert frame_data_run(conn, stream_id, memoryview(bytes(65_536)), 16_384) is None
    # A stream that does not exist, and one whose sending side has ended.
    assert frame_data_run(conn, stream_id + 2, BODY[:10], 16_384) is None
    conn.end_stream(stream_id)
    assert frame_data_run(conn, stream_id, BODY[:10], 16_384) is None
    assert windows(conn, stream_id) == before


def test_a_connection_without_the_adaptations_is_left_to_h2() -> None:
    """With the fast paths off, connections are h2's own class: no run, nothing debited."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    stream_id = open_upload(conn)
    before = windows(conn, stream_id)
    assert frame_data_run(conn, stream_id, BODY[:10], 16_384) is None
    assert windows(conn, stream_id) == before


def run_of(conn: h2.connection.H2Connection, stream_id: int, data: memoryview) -> memoryview:
    pieces = frame_data_run(conn, stream_id, data, 16_384)
    assert pieces is not None and len(pieces) == 1
    piece: memoryview = pieces[0]
    return piece


def test_a_run_still_referenced_is_never_written_over() -> None:
    """A run not yet sent (a view of it alive) keeps its bytes: the next run gets a new buffer."""
    conn, _ = connected_pair()
    stream_id = open_upload(conn)
    first = run_of(conn, stream_id, BODY[:20_000])
    before = first.tobytes()
    second = run_of(conn, stream_id, BODY[20_000:40_000])
    assert first.tobytes() == before  # untouched by the second run
    assert second.obj is not first.obj
    assert before + second.tobytes() == frames_as_h2_sends(BODY[:40_000], [20_000, 20_000])


def test_a_sent_run_buffer_is_reused() -> None:
    """Once no view of a run is left (it was sent), the connection's next run reuses its buffer."""
    conn, _ = connected_pair()
    stream_id = open_upload(conn)
    first = run_of(conn, stream_id, BODY[:30_000])
    buffer = first.obj
    first_bytes = first.tobytes()
    first.release()
    del first
    second = run_of(conn, stream_id, BODY[30_000:50_000])  # smaller: fits the same buffer
    assert second.obj is buffer
    assert first_bytes + second.tobytes() == frames_as_h2_sends(BODY[:50_000], [30_000, 20_000])


def test_connections_never_share_a_run_buffer() -> None:
    one, _ = connected_pair()
    other, _ = connected_pair()
    first = run_of(one, open_upload(one), BODY[:1000])
    buffer = first.obj
    first.release()
    second = run_of(other, open_upload(other), BODY[:1000])
    assert second.obj is not buffer


def frames_as_h2_sends(data: memoryview, runs: list[int]) -> bytes:
    """The bytes h2 itself sends for ``data`` in runs of the given sizes, 16,384-byte frames."""
    conn, _ = connected_pair()
    stream_id = open_upload(conn)
    offset = 0
    for size in runs:
        for start in range(offset, offset + size, 16_384):
            conn.send_data(stream_id, data[start : min(start + 16_384, offset + size)].tobytes())
        offset += size
    return conn.data_to_send()

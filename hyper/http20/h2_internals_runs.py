"""The fence's primitive for runs of DATA frames: h2's accounting for several frames at once.

Part of the fence (:mod:`hyper.http20.h2_internals` re-exports the names
below): only the fence modules name h2's private internals. A download
arrives as runs of unpadded 16 KiB DATA frames on one stream, and h2's
accounting for each of them (connection window, stream window,
content-length) is three subtractions and comparisons. The frame splitter
(:class:`~hyper.http20.h2_adapters.FrameSplitter`) therefore asks once per
run: :func:`consume_plain_data_run` does exactly what that many calls of
``consume_plain_data`` would, when none of them can fail. When one could
(a window overrun, more body than content-length promised), it does
nothing and the splitter takes the frames one by one, so the error comes
from the very frame that causes it, with the frames before it delivered.
"""

from __future__ import annotations

from typing import Any

import h2.connection


def consume_plain_data_run(conn: h2.connection.H2Connection, stream: Any, total: int) -> bool:
    """h2's accounting for unpadded DATA frames without END_STREAM, ``total`` bytes in all.

    The frames are on ``stream`` (one receiving stream). True when done;
    False, with nothing changed, when any of them would fail h2's checks
    (RFC 9113 section 6.9: more than either window allows; RFC 9110 8.6 /
    RFC 9113 8.1.1: more body than content-length). Windows and
    content-length only add up, so one step of ``total`` leaves exactly the
    state the per-frame steps would.
    """
    connection_window = conn._inbound_flow_control_window_manager
    stream_window = stream._inbound_window_manager
    expected = stream._expected_content_length
    if (
        connection_window.current_window_size < total
        or stream_window.current_window_size < total
        or (expected is not None and stream._actual_content_length + total > expected)
    ):
        return False
    connection_window.window_consumed(total)
    stream_window.window_consumed(total)
    stream._track_content_length(total, False)
    return True


def runs_problem() -> str | None:
    """``None`` when :func:`consume_plain_data_run` matches h2's per-frame accounting; else why not.

    Drives an in-memory client and server to an open stream with a
    content-length, then checks a run against the same frames one by one on
    a twin connection, and that a run that would overrun is refused
    untouched.
    """
    try:
        return _check()
    except Exception as exc:  # noqa: BLE001 - anything a changed internal may raise means "off"
        return f"DATA runs: {type(exc).__name__}: {exc}"


def _open_pair(content_length: int | None) -> tuple[h2.connection.H2Connection, Any]:
    """A client with stream 1 open and its response headers (with ``content_length``) received."""
    import h2.config

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    request = [(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "a")]
    client.send_headers(1, request, end_stream=True)
    server.receive_data(client.data_to_send())
    length = [] if content_length is None else [("content-length", str(content_length))]
    server.send_headers(1, [(":status", "200"), *length])
    client.receive_data(server.data_to_send())
    return client, client._get_stream_by_id(1)


def _state(conn: h2.connection.H2Connection, stream: Any) -> tuple[int, int, int]:
    return (
        conn.inbound_flow_control_window,
        stream._inbound_window_manager.current_window_size,
        stream._actual_content_length,
    )


def _check() -> str | None:
    from .h2_internals_steps import consume_plain_data

    run_conn, run_stream = _open_pair(10000)
    frame_conn, frame_stream = _open_pair(10000)
    if not consume_plain_data_run(run_conn, run_stream, 3000):
        return "DATA runs: a run within the windows was refused"
    for _ in range(3):
        consume_plain_data(frame_conn, frame_stream, 1000)
    if _state(run_conn, run_stream) != _state(frame_conn, frame_stream):
        return "DATA runs: a run's accounting differs from the frames one by one"
    # More body than content-length promised, well within the windows.
    before = _state(run_conn, run_stream)
    past_length = 10000 - 3000 + 1
    if consume_plain_data_run(run_conn, run_stream, past_length) or _state(run_conn, run_stream) != before:
        return "DATA runs: a run past content-length was not refused untouched"
    open_conn, open_stream = _open_pair(None)  # no content-length: only the windows bound it
    before = _state(open_conn, open_stream)
    window = open_conn.inbound_flow_control_window
    if consume_plain_data_run(open_conn, open_stream, window + 1) or _state(open_conn, open_stream) != before:
        return "DATA runs: a run over the window was not refused untouched"
    return None

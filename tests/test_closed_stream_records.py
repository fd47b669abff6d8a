"""h2 remembers a bounded number of closed streams per connection, and still ignores late frames on them.

At h2's default (65,536 records) the table is a 5-9 MiB dict per connection,
re-allocated as it churns by whichever thread reads; with 8 threads the
soak's RSS crept by 36 MiB over 1M requests as glibc's arenas kept freed
copies. hyper's connections keep CLOSED_STREAM_RECORDS (4096) instead. These
tests drive hyper's h2 client connections against an h2 server in memory.
"""

from __future__ import annotations

import h2.config
import h2.connection
import hyperframe.frame
import pytest

from hyper.http20.h2_connections import CLOSED_STREAM_RECORDS, PublicH2Connection, new_client_connection

_REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"), (b":path", b"/")]


def _client(kind: str) -> h2.connection.H2Connection:
    if kind == "adapted":
        return new_client_connection()
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    return PublicH2Connection(config=config)


def _pair(kind: str) -> tuple[h2.connection.H2Connection, h2.connection.H2Connection]:
    client = _client(kind)
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    return client, server


def _exchange(client: h2.connection.H2Connection, server: h2.connection.H2Connection) -> int:
    """One complete request and response; returns its stream id."""
    stream_id = client.get_next_available_stream_id()
    client.send_headers(stream_id, _REQUEST, end_stream=True)
    server.receive_data(client.data_to_send())
    server.send_headers(stream_id, [(b":status", b"200")], end_stream=True)
    client.receive_data(server.data_to_send())
    # Counting open streams is when h2 moves closed ones to its records (hyper
    # does it before every new stream).
    assert client.open_outbound_streams == 0
    return stream_id


@pytest.mark.parametrize("kind", ["adapted", "public"])
def test_closed_stream_records_stay_bounded(kind: str) -> None:
    client, server = _pair(kind)
    for _ in range(CLOSED_STREAM_RECORDS + 200):
        _exchange(client, server)
    assert client.MAX_CLOSED_STREAMS == CLOSED_STREAM_RECORDS
    assert len(client._closed_streams) == CLOSED_STREAM_RECORDS


@pytest.mark.parametrize("kind", ["adapted", "public"])
def test_a_late_data_frame_on_a_recently_reset_stream_is_still_ignored(kind: str) -> None:
    # RFC 9113 section 5.1: frames on a stream we reset are ignored (h2 answers
    # RST_STREAM again), here with a few hundred streams closed in between.
    client, server = _pair(kind)
    reset_id = client.get_next_available_stream_id()
    client.send_headers(reset_id, _REQUEST, end_stream=True)
    client.reset_stream(reset_id)
    server.receive_data(client.data_to_send())
    for _ in range(300):
        _exchange(client, server)
    late = hyperframe.frame.DataFrame(reset_id, data=b"late")
    events = client.receive_data(late.serialize())
    assert events == [] or all(getattr(e, "stream_id", reset_id) == reset_id for e in events)
    # The connection goes on.
    _exchange(client, server)

"""A finished HTTP/2 connection's memory goes when it is dropped, not at the next GC cycle.

h2's ``H2Connection`` refers to itself (its frame dispatch table holds its
own bound methods), so a replaced connection, with every closed-stream
record it keeps, lived until Python's cyclic collector ran: in a long run
(the soak: a GOAWAY every 100,000 requests) several dead connections of
~10 MiB each piled up. These tests run with the cyclic collector off, so
only reference counting can free the connection.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import h2.connection
import pytest

import hyper
import hyper.tls
from hyper.testing import TestServer


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer() as srv:
        yield srv


def _connection(server: TestServer) -> hyper.HTTP20Connection:
    context = hyper.tls.init_context(cert_path=server.ca_file)
    return hyper.HTTP20Connection(f"localhost:{server.port}", secure=True, ssl_context=context, timeout=30)


def test_a_closed_connections_h2_state_is_freed_without_the_cyclic_collector(
    server: TestServer, made: list[weakref.ref[h2.connection.H2Connection]], no_cyclic_gc: None
) -> None:
    conn = _connection(server)
    for _ in range(3):
        assert conn.getresponse(conn.request("GET", "/")).status == 200
    conn.close()
    # close() drops the session; a later request opens a new one.
    assert conn.getresponse(conn.request("GET", "/")).status == 200
    assert len(made) == 2
    assert made[0]() is None, "the replaced connection's h2 state is still alive"
    conn.close()
    del conn
    assert made[1]() is None, "the closed connection's h2 state is still alive"


def test_ending_a_body_after_close_and_release_raises_nothing_from_h2() -> None:
    """A body's END_STREAM after another thread closed the connection: no bare h2 error.

    h2 refuses any send once its connection is closed (a raw
    ``h2.exceptions.ProtocolError``); the core treats it like a stream the
    server reset meanwhile, and the closed connection's own error reaches
    the caller (found by review).
    """
    from hyper.http20.core import H2Core

    core = H2Core()
    core.initiate()
    fields = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"x"), (b":path", b"/")]
    stream_id = core.open_stream(fields, end_stream=False)
    core.close(0)
    core.release()
    core.end_body(stream_id)  # must not raise

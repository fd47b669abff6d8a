"""A connection that failed goes when it is dropped, not at the next cyclic collection.

The soak (``python -m bench.soak``) found dead HTTP/2 states piling up
across reconnects: not reachable, but held in reference cycles that only
Python's cyclic collector breaks, and it runs rarely in a big process. Each
cycle came from a failure:

* a connect that failed (the server restarting) left the new core's h2
  state unreleased (h2's connection refers to itself);
* a connection-fatal error was kept with a traceback (the stored error
  itself raised, or h2's own error kept as its cause): the traceback's
  frames hold the core and the session that hold the error.

Each test runs with the cyclic collector off, so only reference counting
can free what it checks (weak references tell whether it did).
"""

from __future__ import annotations

import socket
import struct
import weakref

import pytest

import hyper
from hyper.exceptions import ConnectError, ConnectionTerminated, HyperError, ProtocolError
from hyper.http20 import session as session_module
from tests.memory_fixtures import Refs
from tests.scripted import Peer, ScriptedServer


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[weakref.ref[session_module.H2Session]]:
    """Weak references to every session opened during the test."""
    refs: list[weakref.ref[session_module.H2Session]] = []
    original_init = session_module.H2Session.__init__

    def recording(self: session_module.H2Session, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]
        refs.append(weakref.ref(self))

    monkeypatch.setattr(session_module.H2Session, "__init__", recording)
    return refs


def _closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cleartext(port: int) -> hyper.HTTP20Connection:
    return hyper.HTTP20Connection("127.0.0.1", port, secure=False, timeout=10)


def _failure_of(conn: hyper.HTTP20Connection) -> str:
    """Run one request that must fail; return the error's type name (the error itself is dropped)."""
    try:
        conn.getresponse(conn.request("GET", "/")).read()
    except HyperError as exc:
        return type(exc).__name__
    raise AssertionError("the request did not fail")


def test_a_failed_connect_leaves_no_h2_state_behind(made: Refs, no_cyclic_gc: None) -> None:
    conn = _cleartext(_closed_port())
    for _ in range(3):  # as when a server restarts: several attempts fail
        with pytest.raises(ConnectError):
            conn.request("GET", "/")
    assert len(made) == 3
    assert all(ref() is None for ref in made), "a failed connect's h2 state is still alive"
    conn.close()


def _answer_then_break(peer: Peer) -> None:
    """Answer one request, then break the protocol: a DATA frame on stream 0 (RFC 9113 section 6.1)."""
    request = peer.wait_request()
    peer.respond(request.stream_id, body=b"ok")
    second = peer.wait_request()
    assert second.stream_id == 3
    # Type DATA, no flags, stream 0: a connection error of type PROTOCOL_ERROR.
    peer.send_raw(struct.pack(">I", 4)[1:] + b"\x00\x00" + struct.pack(">I", 0) + b"oops")
    peer.drain_until_closed()


def test_a_protocol_error_is_stored_without_frames(
    made: Refs, sessions: list[weakref.ref[session_module.H2Session]], no_cyclic_gc: None
) -> None:
    # h2's own error is kept as the cause of hyper's ProtocolError; its
    # traceback held the core that received the frame.
    with ScriptedServer(_answer_then_break) as server:
        conn = _cleartext(server.port)
        assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
        assert _failure_of(conn) == ProtocolError.__name__
        session = sessions[0]()
        assert session is not None
        fatal = session._core.fatal
        assert fatal is not None and fatal.__traceback__ is None
        assert fatal.__cause__ is not None and fatal.__cause__.__traceback__ is None
        del session, fatal
        conn.close()
    assert made[0]() is None, "the failed connection's h2 state is still alive"
    assert sessions[0]() is None, "the failed session is still alive"


def _answer_then_reset(peer: Peer) -> None:
    """Answer one request, then take the second and abort the TCP connection (RST)."""
    request = peer.wait_request()
    peer.respond(request.stream_id, body=b"ok")
    peer.wait_request()
    # SO_LINGER with a zero timeout: close() sends RST, so the client's
    # recv() fails with ECONNRESET (the path that raised the stored error).
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.sock.close()
    peer.closed = True


def test_a_connection_broken_by_the_network_is_freed_without_the_cyclic_collector(
    made: Refs, sessions: list[weakref.ref[session_module.H2Session]], no_cyclic_gc: None
) -> None:
    with ScriptedServer(_answer_then_reset) as server:
        conn = _cleartext(server.port)
        assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
        assert _failure_of(conn) == ConnectionTerminated.__name__
        session = sessions[0]()
        assert session is not None
        fatal = session._core.fatal
        assert fatal is not None and fatal.__traceback__ is None
        del session, fatal
        conn.close()
    assert made[0]() is None, "the broken connection's h2 state is still alive"
    assert sessions[0]() is None, "the broken session is still alive"


def _goaway_after_each(peer: Peer) -> None:
    """One response per connection, announced by a graceful GOAWAY, then a clean hang-up.

    The GOAWAY goes first (RFC 9113 section 6.8 lets the server still answer
    streams up to its last_stream_id): sent after the response, it could
    arrive after the client had already sent its next request on this
    connection, which is then refused as retryable.
    """
    request = peer.wait_request()
    peer.send_goaway(request.stream_id)
    peer.respond(request.stream_id, body=b"ok")
    peer.hang_up()


def test_no_replaced_session_outlives_its_reconnect(
    made: Refs, sessions: list[weakref.ref[session_module.H2Session]], no_cyclic_gc: None
) -> None:
    reconnects = 5
    with ScriptedServer(_goaway_after_each, connections=reconnects) as server:
        conn = _cleartext(server.port)
        for _ in range(reconnects):
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"
        # Every session but the last was replaced by the next request.
        assert len(sessions) == reconnects
        assert [ref() is None for ref in sessions[:-1]] == [True] * (reconnects - 1)
        assert [ref() is None for ref in made[:-1]] == [True] * (reconnects - 1)
        conn.close()
    assert sessions[-1]() is None and made[-1]() is None

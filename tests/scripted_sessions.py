"""Connections to scripted servers for the session tests, set up once, every wait bounded.

tests/test_session_steps.py and tests/test_review7_session.py drive the
public API against scripted servers (tests/scripted.py) and force orders with
events, never with sleeps. What each of their tests began and ended with (a
server, a cleartext connection to it, the events to release and the
connection to close whatever happened; a script answering one request; a
thread whose result or error is kept for the test to check) lives here.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import h2.events

from hyper import HTTP20Connection
from tests.scripted import Peer, ScriptedServer
from tests.test_hostile import reconnecting_server

#: Bounds every wait of a test (and of its server's script) for the other side.
WAIT = 10.0

Script = Callable[[Peer], None]


@contextmanager
def _closed_after(conn: HTTP20Connection, release: Iterable[threading.Event]) -> Iterator[HTTP20Connection]:
    """``conn``; on the way out, failed or not, the ``release`` events set (a script
    waiting on one ends), then ``conn`` closed."""
    try:
        yield conn
    finally:
        for event in release:
            event.set()
        conn.close()


@contextmanager
def scripted_connection(
    script: Script,
    *,
    timeout: float = WAIT,
    release: Iterable[threading.Event] = (),
    client_context: ssl.SSLContext | None = None,
    **server_options: Any,
) -> Iterator[HTTP20Connection]:
    """A connection to a :class:`ScriptedServer` running ``script``.

    Cleartext with prior knowledge; over TLS to ``localhost`` when
    ``client_context`` is given (the server then needs ``tls_context`` among
    ``server_options``, which go to the server). On the way out the
    ``release`` events are set and the connection is closed before the server stops.
    """
    with ScriptedServer(script, **server_options) as server:
        if client_context is None:
            conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=timeout)
        else:
            conn = HTTP20Connection("localhost", server.port, ssl_context=client_context, timeout=timeout)
        with _closed_after(conn, release):
            yield conn


@contextmanager
def reconnecting_connection(
    *scripts: Script, release: Iterable[threading.Event] = ()
) -> Iterator[HTTP20Connection]:
    """As :func:`scripted_connection`, to a server running one script per connection, in order."""
    with reconnecting_server(*scripts) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=WAIT)
        with _closed_after(conn, release):
            yield conn


def answer_with(body: bytes, requests: int = 1) -> Script:
    """A script answering ``requests`` requests with ``body`` each, then waiting for the client to go."""

    def script(peer: Peer) -> None:
        for _ in range(requests):
            request = peer.wait_request()
            peer.respond(request.stream_id, body=body)
        peer.drain_until_closed()

    return script


def await_ping_ack(peer: Peer) -> None:
    """Until the client acknowledged the server's PING (RFC 9113 section 6.7)."""
    peer.wait_for(lambda e: isinstance(e, h2.events.PingAckReceived), WAIT)


def await_settings_ack(peer: Peer) -> None:
    """Until the client acknowledged the server's SETTINGS (RFC 9113 section 6.5.3)."""
    peer.wait_for(lambda e: isinstance(e, h2.events.SettingsAcknowledged), WAIT)


def start_thread(work: Callable[[], object], results: dict[str, Any], key: str) -> threading.Thread:
    """``work`` run in a new thread, started: ``results[key]`` gets what it returns,
    ``results["error"]`` what it raises."""

    def run() -> None:
        try:
            results[key] = work()
        except BaseException as exc:  # noqa: BLE001 - the test checks results["error"]
            results["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread

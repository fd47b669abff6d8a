"""Review of ``conn.batch()`` (issue 14): what happens to held requests when their session dies."""

from __future__ import annotations

import socket
import threading
from typing import Any

import h2.events

from hyper import HTTP20Connection
from tests.scripted import Peer, ScriptedServer

WAIT = 10.0


def connect_scripted(server: ScriptedServer) -> HTTP20Connection:
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=WAIT)


def answer_all(peer: Peer) -> None:
    """Answer every request until the client hangs up."""
    while not peer.closed:
        try:
            events = peer.read_events(WAIT)
        except (TimeoutError, OSError):
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                peer.respond(event.stream_id, body=b"ok")
            if isinstance(event, h2.events.ConnectionTerminated):
                return


def test_a_session_gone_while_requests_are_held_does_not_fail_the_block() -> None:
    # The server says goodbye (graceful GOAWAY, then FIN) after the batch's
    # first request was held but before its second: the second opens a new
    # connection and is answered. The held bytes of the dead session can go
    # nowhere; leaving the block must not raise that dead session's error
    # (the caller would lose the ids of requests that were sent fine).
    held, gone = threading.Event(), threading.Event()
    connections: list[int] = []

    def script(peer: Peer) -> None:
        connections.append(1)
        if len(connections) == 1:
            peer.wait_for(lambda e: isinstance(e, h2.events.SettingsAcknowledged))
            peer.wait_for(lambda e: isinstance(e, h2.events.PingReceived))
            assert held.wait(WAIT)
            peer.send_goaway(0)  # RFC 9113 6.8: no stream was processed
            peer.sock.shutdown(socket.SHUT_WR)
            gone.set()
            peer.sock.settimeout(WAIT)
            while peer.sock.recv(65536):  # until the client closes its end
                pass
            return
        answer_all(peer)

    outcome: dict[str, Any] = {}
    with ScriptedServer(script, connections=2) as server, connect_scripted(server) as conn:
        conn.ping()
        with conn.batch():
            conn.request("GET", "/first")
            held.set()
            assert gone.wait(WAIT)
            outcome["second"] = conn.request("GET", "/second")
        assert conn.getresponse(outcome["second"]).read() == b"ok"

"""Review 12: what a real server and a scripted one receive from remembered requests.

request() remembers the fields of a request with no body and a dict of str
caller fields. Here the requests go to hypercorn (``/headers-echo`` answers
with the fields it received, over real TLS) and to a scripted h2 server
(which shows each field's HPACK kind): a remembered request must arrive as
the general path's (``_CALLER_FIELDS_MEMO`` off) does, also after the
connection was closed and reopened (a new session, a new HPACK table), and
credentials must still go never-indexed (RFC 7541 section 7.1.3).
"""

from __future__ import annotations

import json
from typing import Any

import h2.events
import hpack
import pytest

import hyper.http20.connection as connection_module
import hyper.tls
from hyper import HTTP20Connection

from .scripted import Peer, ScriptedServer
from .servers import ServerInfo

# Connection-specific fields in odd case (dropped, RFC 9113 section 8.2.2),
# te: trailers (kept), a host field (it names :authority), padded values.
_FIELDS: dict[Any, Any] = {
    "User-Agent": "review12/1.0",
    "Connection": "keep-alive",
    "Keep-Alive": "timeout=5",
    "TE": "trailers",
    "X-Padded": "  value\t",
    "Accept": "application/json",
    "x-accept": "one",
    "X-Accept": "two",
}


def _connection(server: ServerInfo) -> HTTP20Connection:
    context = hyper.tls.init_context(cert_path=server.ca_file) if server.secure else None
    return HTTP20Connection(server.authority, secure=server.secure, ssl_context=context, timeout=30)


def _echoed(conn: HTTP20Connection, headers: dict[Any, Any]) -> list[list[str]]:
    response = conn.getresponse(conn.request("GET", "/headers-echo?memo=1", headers=headers))
    assert response.status == 200
    document: dict[str, Any] = json.loads(response.read())
    return [pair for pair in document["headers"]]


@pytest.mark.parametrize("which", ["hypercorn_server", "hypercorn_h2c_server"])
def test_a_real_server_receives_remembered_requests_as_the_general_path_sends_them(
    which: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    server: ServerInfo = request.getfixturevalue(which)
    monkeypatch.setattr(connection_module, "_CALLER_FIELDS_MEMO", False)
    with _connection(server) as conn:
        general = _echoed(conn, _FIELDS)
    monkeypatch.setattr(connection_module, "_CALLER_FIELDS_MEMO", True)
    with _connection(server) as conn:
        first = _echoed(conn, _FIELDS)
        assert len(conn._plain_requests) == 1
        second = _echoed(conn, dict(_FIELDS))  # an equal dict: a hit
        third = _echoed(conn, _FIELDS)
        conn.close()  # a new session and HPACK table; the memo is the connection's
        fourth = _echoed(conn, _FIELDS)
    assert first == second == third == fourth == general
    names = [name for name, _ in general]
    assert "connection" not in names and "keep-alive" not in names
    assert ["te", "trailers"] in general and ["x-padded", "value"] in general
    assert [pair for pair in general if pair[0] == "x-accept"] == [["x-accept", "one"], ["x-accept", "two"]]


def _recording_script(seen: list[list[tuple[str, bytes, bytes]]], requests: int) -> Any:
    def script(peer: Peer) -> None:
        for _ in range(requests):
            event: h2.events.RequestReceived = peer.wait_request()
            # The decoder's own kinds: a never-indexed literal arrives as a NeverIndexedHeaderTuple.
            # :authority names the port, which differs from server to server: left out.
            seen.append(
                [
                    (type(field).__name__, field[0], field[1])
                    for field in event.headers
                    if field[0] != b":authority"
                ]
            )
            peer.respond(event.stream_id, 200, body=b"ok")
        peer.drain_until_closed()

    return script


def test_the_wire_carries_the_same_fields_and_kinds_with_and_without_the_memo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain: dict[Any, Any] = {"accept": "*/*", "x-api-key": "k1"}
    secret: dict[Any, Any] = {"Authorization": "Bearer t0ken", "Cookie": "id=1", "accept": "*/*"}
    calls = [plain, plain, secret, secret, plain]
    results = []
    for memo in (True, False):
        monkeypatch.setattr(connection_module, "_CALLER_FIELDS_MEMO", memo)
        seen: list[list[tuple[str, bytes, bytes]]] = []
        with ScriptedServer(_recording_script(seen, len(calls))) as server:
            with HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10) as conn:
                for headers in calls:
                    assert conn.getresponse(conn.request("GET", "/", headers=headers)).read() == b"ok"
        results.append(seen)
    assert results[0] == results[1]
    never = hpack.NeverIndexedHeaderTuple.__name__
    for fields in results[0][2:4]:
        kinds = {name: kind for kind, name, _ in fields}
        assert kinds[b"authorization"] == kinds[b"cookie"] == never
    assert results[0][0] == results[0][1] == results[0][4]

"""Findings of the second review of the speed round (review2): each test shows one."""

from __future__ import annotations

from collections.abc import Callable

import hpack

from hyper import HTTP20Connection
from tests.scripted import Peer, ScriptedServer


def _record_request_fields(seen: list[list[tuple[bytes, bytes]]]) -> Callable[[Peer], None]:
    """A script answering two requests, recording its fields (as h2 decoded them, with their kind)."""

    def script(peer: Peer) -> None:
        # h2 would join the cookies into one field it marks never-indexed
        # itself: the fields as they came over the wire are wanted here, so
        # normalisation is off before the first request can be read.
        peer.h2.config.normalize_inbound_headers = False
        peer.handshake()
        for _ in range(2):
            request = peer.wait_request()
            seen.append(list(request.headers))
            peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    return script


def test_credentials_go_out_as_never_indexed_fields() -> None:
    """Credentials and short cookies stay out of HPACK's dynamic table (RFC 7541 7.1.3), as h2 keeps them.

    Twice: the second, identical request must not come from a memo of
    plain fields. A long cookie keeps its compression (h2's rule).
    """
    seen: list[list[tuple[bytes, bytes]]] = []
    headers = {
        "authorization": "Basic c2VjcmV0",
        "proxy-authorization": "Basic c2VjcmV0",
        "x-plain": "1",
        "cookie": "id=1",
    }
    with ScriptedServer(_record_request_fields(seen), handshake=False) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=5)
        for _ in range(2):
            assert conn.getresponse(conn.request("GET", "/", headers=headers)).read() == b"ok"
        conn.close()
    for fields in seen:
        kinds = {field[0]: type(field) for field in fields}
        assert kinds[b"authorization"] is hpack.NeverIndexedHeaderTuple
        assert kinds[b"proxy-authorization"] is hpack.NeverIndexedHeaderTuple
        assert kinds[b"cookie"] is hpack.NeverIndexedHeaderTuple
        assert kinds[b"x-plain"] is hpack.HeaderTuple


def test_a_long_cookie_keeps_its_compression() -> None:
    seen: list[list[tuple[bytes, bytes]]] = []
    with ScriptedServer(_record_request_fields(seen), handshake=False) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=5)
        for _ in range(2):
            response = conn.getresponse(conn.request("GET", "/", headers={"cookie": "session=" + "a" * 32}))
            assert response.read() == b"ok"
        conn.close()
    assert [type(dict((f[0], f) for f in fields)[b"cookie"]) for fields in seen] == [hpack.HeaderTuple] * 2

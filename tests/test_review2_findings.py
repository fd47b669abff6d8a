"""Findings of the second review of the speed round (review2): each test shows one."""

from __future__ import annotations

from collections.abc import Callable

import hpack
import pytest

from hyper import HTTP20Connection
from tests.scripted import Peer, ScriptedServer


def _record_request_fields(seen: list[list[tuple[bytes, bytes]]]) -> Callable[[Peer], None]:
    """A script answering one request, recording its fields (as h2 decoded them, with their kind)."""

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        seen.append(list(request.headers))
        peer.respond(request.stream_id, body=b"ok")
        peer.drain_until_closed()

    return script


@pytest.mark.xfail(
    strict=True,
    reason="hyper turns h2's outbound normalisation off and does not mark credentials "
    "never-indexed itself: authorization and short cookies enter the HPACK dynamic table "
    "(RFC 7541 section 7.1.3), which h2 alone would have prevented",
)
def test_credentials_go_out_as_never_indexed_fields() -> None:
    seen: list[list[tuple[bytes, bytes]]] = []
    with ScriptedServer(_record_request_fields(seen)) as server:
        conn = HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=5)
        headers = {"authorization": "Basic c2VjcmV0", "cookie": "id=1"}
        assert conn.getresponse(conn.request("GET", "/", headers=headers)).read() == b"ok"
        conn.close()
    kinds = {name: type(field) for name, field in ((f[0], f) for f in seen[0])}
    assert kinds[b"authorization"] is hpack.NeverIndexedHeaderTuple
    assert kinds[b"cookie"] is hpack.NeverIndexedHeaderTuple

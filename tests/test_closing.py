"""``with`` on the classes that mix in ClosesOnExit: the block's end closes, errors pass through."""

from __future__ import annotations

import pytest

import hyper
from hyper.common.closing import ClosesOnExit
from hyper.tls import init_context
from tests.servers import ServerInfo, docroot_content


def test_every_connection_and_the_http11_response_mix_it_in() -> None:
    for cls in (hyper.HTTPConnection, hyper.HTTP20Connection, hyper.HTTP11Connection, hyper.HTTP11Response):
        assert issubclass(cls, ClosesOnExit)


def test_an_error_in_an_http11_response_block_closes_it_and_is_not_swallowed(
    nginx_http11_server: ServerInfo,
) -> None:
    context = init_context(cert_path=nginx_http11_server.ca_file, alpn=("http/1.1",))
    with hyper.HTTP11Connection(nginx_http11_server.authority, ssl_context=context, timeout=20) as conn:
        response = conn.getresponse(conn.request("GET", "/1k.bin"))
        with pytest.raises(LookupError, match="raised in the block"):
            with response as entered:
                assert entered is response
                assert entered.read(10) == docroot_content("1k.bin")[:10]
                raise LookupError("raised in the block")
        assert response.closed
        # A short unread rest was dropped; the connection serves the next request.
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == docroot_content("1k.bin")

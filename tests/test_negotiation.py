"""HTTPConnection against real servers: ALPN on TLS, h2c Upgrade in cleartext."""

from __future__ import annotations

import threading

import pytest

import hyper
from hyper.tls import init_context
from tests.servers import HELLO_TEXT, ServerInfo, one_k_bytes
from tests.waiting import wait_until_blocked_in

TIMEOUT = 10


def _context(server: ServerInfo, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> object:
    return init_context(cert_path=server.ca_file, alpn=alpn)


def test_tls_server_offering_h2_gives_http2(nginx_alpn_server: ServerInfo) -> None:
    server = nginx_alpn_server
    with hyper.HTTPConnection(server.authority, ssl_context=_context(server), timeout=TIMEOUT) as conn:
        assert conn.version is None  # nothing negotiated before the first use
        stream_id = conn.request("GET", "/hello.txt")
        assert conn.version == "HTTP/2"
        assert conn.negotiated_protocol == "h2"
        response = conn.getresponse(stream_id)
        assert isinstance(response, hyper.HTTP20Response)
        assert response.status == 200
        assert response.read() == HELLO_TEXT  # gzip undone transparently
        assert response.headers.get_first(b"content-encoding") == b"gzip"


def test_same_listener_gives_http11_to_a_client_offering_only_http11(nginx_alpn_server: ServerInfo) -> None:
    # ALPN the other way: the h2-capable listener also speaks HTTP/1.1.
    server = nginx_alpn_server
    context = init_context(cert_path=server.ca_file, alpn=("http/1.1",))
    with hyper.HTTPConnection(server.authority, ssl_context=context, timeout=TIMEOUT) as conn:
        response = conn.getresponse(conn.request("GET", "/1k.bin"))
        assert conn.version == "HTTP/1.1"
        assert conn.negotiated_protocol == "http/1.1"
        assert isinstance(response, hyper.HTTP11Response)
        assert response.read() == one_k_bytes()


def test_http11_only_tls_server_gives_http11(nginx_http11_server: ServerInfo) -> None:
    server = nginx_http11_server
    with hyper.HTTPConnection(server.authority, ssl_context=_context(server), timeout=TIMEOUT) as conn:
        first = conn.request("GET", "/hello.txt")
        second = conn.request("GET", "/1k.bin")
        assert conn.version == "HTTP/1.1"
        # Responses may be taken in any order, as over HTTP/2.
        assert conn.getresponse(second).read() == one_k_bytes()
        response = conn.getresponse(first)
        assert response.status == 200
        assert response.reason == "OK"
        assert response.read() == HELLO_TEXT


def test_http2_connection_refuses_http11_only_server(nginx_http11_server: ServerInfo) -> None:
    server = nginx_http11_server
    with hyper.HTTP20Connection(server.authority, ssl_context=_context(server), timeout=TIMEOUT) as conn:
        with pytest.raises(hyper.TLSError) as info:
            conn.request("GET", "/")
    assert info.value.selected_protocol == "http/1.1"


def test_h2c_upgrade_turns_cleartext_into_http2(hypercorn_h2c_server: ServerInfo) -> None:
    server = hypercorn_h2c_server
    with hyper.HTTPConnection(server.authority, secure=False, timeout=TIMEOUT) as conn:
        stream_id = conn.request("GET", "/bytes/100000")
        assert stream_id == 1
        assert conn.version == "HTTP/2"
        response = conn.getresponse(stream_id)
        assert isinstance(response, hyper.HTTP20Response)
        assert response.stream_id == 1
        body = response.read()
        assert len(body) == 100000
        # The connection goes on as HTTP/2: the next requests are streams 3, 5.
        third = conn.request("GET", "/headers-echo")
        fifth = conn.request("GET", "/status/204")
        assert (third, fifth) == (3, 5)
        assert conn.getresponse(fifth).status == 204
        echo = conn.getresponse(third).read()
        assert b'"http_version": "2"' in echo


def test_h2c_upgrade_head_request(hypercorn_h2c_server: ServerInfo) -> None:
    server = hypercorn_h2c_server
    with hyper.HTTPConnection(server.authority, secure=False, timeout=TIMEOUT) as conn:
        response = conn.getresponse(conn.request("HEAD", "/bytes/10"))
        assert conn.version == "HTTP/2"
        assert response.status == 200
        assert response.read() == b""


def test_first_request_with_body_stays_http11(hypercorn_h2c_server: ServerInfo) -> None:
    # The upgrade is offered only on a first request without a body.
    server = hypercorn_h2c_server
    with hyper.HTTPConnection(server.authority, secure=False, timeout=TIMEOUT) as conn:
        stream_id = conn.request("POST", "/echo", body=b"payload")
        assert conn.version == "HTTP/1.1"
        assert conn.getresponse(stream_id).read() == b"payload"
        # Chunked upload of unknown length over HTTP/1.1.
        stream_id = conn.request("POST", "/echo", body=iter([b"a" * 1000, b"b" * 10]))
        assert conn.getresponse(stream_id).read() == b"a" * 1000 + b"b" * 10


def test_upgrade_disabled_stays_http11(hypercorn_h2c_server: ServerInfo) -> None:
    server = hypercorn_h2c_server
    with hyper.HTTPConnection(server.authority, secure=False, upgrade=False, timeout=TIMEOUT) as conn:
        response = conn.getresponse(conn.request("GET", "/headers-echo"))
        assert conn.version == "HTTP/1.1"
        echo = response.read()
        assert b'"http_version": "1.1"' in echo
        assert b"upgrade" not in echo.lower()


def test_server_without_upgrade_answers_http11(nginx_http11_plain_server: ServerInfo) -> None:
    server = nginx_http11_plain_server
    with hyper.HTTPConnection(server.authority, secure=False, timeout=TIMEOUT) as conn:
        response = conn.getresponse(conn.request("GET", "/hello.txt"))
        assert conn.version == "HTTP/1.1"
        assert response.read() == HELLO_TEXT
        # Keep-alive: the second request reuses the socket.
        fileno = response.fileno()
        again = conn.getresponse(conn.request("GET", "/1k.bin"))
        assert again.fileno() == fileno
        assert again.read() == one_k_bytes()


def test_close_forgets_the_protocol_and_negotiates_again(hypercorn_h2c_server: ServerInfo) -> None:
    server = hypercorn_h2c_server
    with hyper.HTTPConnection(server.authority, secure=False, timeout=TIMEOUT) as conn:
        conn.getresponse(conn.request("GET", "/status/200")).read()
        assert conn.version == "HTTP/2"
        conn.close()
        assert conn.version is None
        conn.getresponse(conn.request("GET", "/status/200")).read()
        assert conn.version == "HTTP/2"


@pytest.mark.parametrize("name", ["nghttpd", "nginx"])
def test_a_prior_knowledge_only_server_is_spoken_to_in_http2_after_its_answer(
    name: str, nghttpd_h2c_server: ServerInfo, nginx_h2c_server: ServerInfo
) -> None:
    # Both answer the HTTP/1.1 upgrade offer with HTTP/2 frames (they never
    # read it as HTTP/1.1): the request is sent again over HTTP/2, no hang.
    server = nghttpd_h2c_server if name == "nghttpd" else nginx_h2c_server
    with hyper.HTTPConnection(server.authority, secure=False, timeout=TIMEOUT) as conn:
        response = conn.getresponse(conn.request("GET", "/1k.bin"))
        assert conn.version == "HTTP/2"
        assert response.read() == one_k_bytes()
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == one_k_bytes()


def test_a_prior_knowledge_only_answer_to_plain_http11_is_a_clear_error(
    nghttpd_h2c_server: ServerInfo,
) -> None:
    # Without the upgrade offer (a first request with a body) nothing is re-sent.
    server = nghttpd_h2c_server
    with hyper.HTTPConnection(server.authority, secure=False, timeout=TIMEOUT) as conn:
        with pytest.raises(hyper.ProtocolError, match="HTTP/2 frames.*force_proto='h2'"):
            conn.getresponse(conn.request("POST", "/echo", body=b"x"))
        # The connection learned: later requests speak HTTP/2 with prior knowledge.
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == one_k_bytes()
        assert conn.version == "HTTP/2"


def test_prior_knowledge_server_works_with_force_proto(nghttpd_h2c_server: ServerInfo) -> None:
    server = nghttpd_h2c_server
    with hyper.HTTPConnection(server.authority, secure=False, force_proto="h2", timeout=TIMEOUT) as conn:
        response = conn.getresponse(conn.request("GET", "/1k.bin"))
        assert conn.version == "HTTP/2"
        assert response.read() == one_k_bytes()


def test_putrequest_form_works_after_negotiation(nginx_alpn_server: ServerInfo) -> None:
    server = nginx_alpn_server
    with hyper.HTTPConnection(server.authority, ssl_context=_context(server), timeout=TIMEOUT) as conn:
        stream_id = conn.putrequest("GET", "/1k.bin")
        conn.putheader("x-test", "1", stream_id)
        conn.endheaders(final=True, stream_id=stream_id)
        assert conn.getresponse(stream_id).read() == one_k_bytes()
        assert conn.version == "HTTP/2"


def test_threads_racing_for_the_first_request_share_one_upgrade(hypercorn_h2c_server: ServerInfo) -> None:
    server = hypercorn_h2c_server
    results: list[bytes] = []
    errors: list[BaseException] = []
    with hyper.HTTPConnection(server.authority, secure=False, timeout=TIMEOUT) as conn:

        def worker() -> None:
            try:
                for _ in range(5):
                    results.append(conn.getresponse(conn.request("GET", "/bytes/1000")).read())
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert conn.version == "HTTP/2"
    assert errors == []
    assert len(results) == 20 and all(len(body) == 1000 for body in results)


def test_getresponse_before_any_request() -> None:
    conn = hyper.HTTPConnection("example.org:443")
    with pytest.raises(hyper.InvalidStreamID):
        conn.getresponse()
    assert repr(conn) == "<HTTPConnection https://example.org not negotiated>"


def test_ping_and_pushes_through_a_negotiated_http2_connection(nginx_alpn_server: ServerInfo) -> None:
    server = nginx_alpn_server
    context = init_context(cert_path=server.ca_file, alpn=("h2", "http/1.1"))
    with hyper.HTTPConnection(
        server.authority, ssl_context=context, enable_push=True, timeout=TIMEOUT
    ) as conn:
        assert conn.ping() > 0
        assert conn.version == "HTTP/2"
        conn.getresponse(conn.request("GET", "/1k.bin")).read()
        assert list(conn.get_pushes()) == []  # nginx 1.22 pushes nothing unless told to


def test_ping_over_http11_is_a_clear_error(nginx_http11_server: ServerInfo) -> None:
    server = nginx_http11_server
    context = init_context(cert_path=server.ca_file, alpn=("h2", "http/1.1"))
    with hyper.HTTPConnection(server.authority, ssl_context=context, timeout=TIMEOUT) as conn:
        with pytest.raises(hyper.HyperError, match="ping needs HTTP/2.*HTTP/1.1"):
            conn.ping()
        with pytest.raises(hyper.HyperError, match="server push needs HTTP/2"):
            conn.get_pushes()


def test_close_during_a_first_request_upgrade_closes_at_once() -> None:
    """close() must not wait for (or fail behind) another thread's upgrade exchange."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    outcome: list[BaseException] = []
    conn = hyper.HTTPConnection("127.0.0.1", listener.getsockname()[1], secure=False, timeout=(5, 30))

    def first_request() -> None:
        try:
            conn.getresponse(conn.request("GET", "/"))  # the server never answers the upgrade offer
        except BaseException as exc:  # noqa: BLE001 - inspected below
            outcome.append(exc)

    worker = threading.Thread(target=first_request)
    worker.start()
    try:
        server_side, _ = listener.accept()
        accepted.append(server_side)
        server_side.recv(65536)  # the request with its Upgrade: h2c is out; the client now waits
        # The hard case: the worker is blocked reading the answer (it waits
        # up to 30 s) and holds the HTTP/1.1 connection's lock meanwhile.
        wait_until_blocked_in(worker, "_receive_locked")
        assert conn._h1._channel.lock.locked()
        started = time.monotonic()
        conn.close()
        worker.join(10)
        assert not worker.is_alive()
        assert time.monotonic() - started < 25  # below the 30 s read timeout: close() woke it
        assert outcome and isinstance(outcome[0], hyper.HyperError)
    finally:
        for sock in (*accepted, listener):
            sock.close()


@pytest.mark.parametrize(("alpn", "protocol"), [(("h2", "http/1.1"), "h2"), (("http/1.1",), "http/1.1")])
def test_a_negotiated_tls_connection_logs_where_it_connected(
    nginx_alpn_server: ServerInfo, caplog: pytest.LogCaptureFixture, alpn: tuple[str, ...], protocol: str
) -> None:
    # The chosen connection adopts the socket and does not open one itself,
    # so the negotiation logs the "connected to" line the others log.
    server = nginx_alpn_server
    context = init_context(cert_path=server.ca_file, alpn=alpn)
    with caplog.at_level("DEBUG", logger="hyper"):
        with hyper.HTTPConnection(server.authority, ssl_context=context, timeout=TIMEOUT) as conn:
            conn.getresponse(conn.request("GET", "/hello.txt")).read()
    connected = [r.getMessage() for r in caplog.records if r.getMessage().startswith("connected to")]
    assert connected == [f"connected to 127.0.0.1:{server.port} (TLS, protocol {protocol})"]

"""HTTP11Connection: nginx over real TLS, and scripted peers for the edge cases."""

from __future__ import annotations

import gc
import gzip
import hashlib
import threading
import time
import types
import weakref
from pathlib import Path

import h11
import pytest

import hyper
import hyper.http11.receiving as exchange_module
from hyper.tls import init_context
from tests.http11_scripted import Peer, scripted
from tests.servers import HELLO_TEXT, ServerInfo, one_k_bytes

TIMEOUT = 10
# Bound on a scripted server's wait for the test to let it go.
SCRIPT_WAIT = 30


def _nginx(server: ServerInfo, **kwargs: object) -> hyper.HTTP11Connection:
    context = init_context(cert_path=server.ca_file, alpn=("http/1.1",))
    return hyper.HTTP11Connection(server.authority, ssl_context=context, timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]


def _serve_forever(answer: bytes = b"ok") -> object:
    def script(peer: Peer) -> None:
        while (request := peer.read_request()) is not None:
            peer.respond(200, [(b"x-target", request.target)], body=answer)

    return script


# -- nginx ------------------------------------------------------------------------


def test_nginx_get_decodes_and_keeps_alive(nginx_http11_server: ServerInfo) -> None:
    with _nginx(nginx_http11_server) as conn:
        assert conn.version == "HTTP/1.1"
        response = conn.getresponse(conn.request("GET", "/hello.txt"))
        assert (response.status, response.reason, response.version) == (200, "OK", "HTTP/1.1")
        assert response.headers.get_first(b"content-encoding") == b"gzip"
        assert response.read() == HELLO_TEXT
        assert response.closed
        fileno = conn.fileno()
        raw = conn.getresponse(conn.request("GET", "/hello.txt"))
        assert conn.fileno() == fileno  # the same socket served both
        assert gzip.decompress(raw.read(decode_content=False)) == HELLO_TEXT
        assert conn.negotiated_protocol == "http/1.1"


def test_nginx_partial_reads_and_chunks(nginx_http11_server: ServerInfo) -> None:
    with _nginx(nginx_http11_server) as conn:
        response = conn.getresponse(conn.request("GET", "/1k.bin"))
        assert response.read(100) == one_k_bytes()[:100]
        assert response.read(1000) == one_k_bytes()[100:]
        assert response.read() == b""
        pieces = list(conn.getresponse(conn.request("GET", "/1k.bin")).read_chunked())
        assert b"".join(pieces) == one_k_bytes()


def test_nginx_big_download_streams(nginx_http11_server: ServerInfo) -> None:
    expected = hashlib.sha256((Path(nginx_http11_server.docroot or "") / "big.bin").read_bytes()).digest()
    with _nginx(nginx_http11_server) as conn:
        digest = hashlib.sha256()
        for piece in conn.getresponse(conn.request("GET", "/big.bin")).read_chunked():
            assert len(piece) <= 1024 * 1024
            digest.update(piece)
        assert digest.digest() == expected


def test_nginx_uploads_with_length_and_chunked(nginx_http11_server: ServerInfo) -> None:
    with _nginx(nginx_http11_server) as conn:
        known = conn.getresponse(conn.request("POST", "/upload", body=b"x" * 300000))
        assert known.read() == b"upload received: 300000 bytes\n"
        chunked = conn.getresponse(conn.request("POST", "/upload", body=(b"y" * 1000 for _ in range(70))))
        assert chunked.read() == b"upload received: 70000 bytes\n"


def test_nginx_head_and_404(nginx_http11_server: ServerInfo) -> None:
    with _nginx(nginx_http11_server) as conn:
        head = conn.getresponse(conn.request("HEAD", "/1k.bin"))
        assert head.status == 200 and head.read() == b""
        missing = conn.getresponse(conn.request("GET", "/missing"))
        assert missing.status == 404
        missing.read()
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == one_k_bytes()


def test_nginx_shared_by_threads(nginx_http11_server: ServerInfo) -> None:
    errors: list[BaseException] = []
    with _nginx(nginx_http11_server) as conn:

        def worker() -> None:
            try:
                for _ in range(10):
                    response = conn.getresponse(conn.request("GET", "/1k.bin"))
                    assert response.read() == one_k_bytes()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []


# -- request framing ---------------------------------------------------------------


def test_request_framing_host_length_and_chunked() -> None:
    seen = []

    def script(peer: Peer) -> None:
        while (request := peer.read_request()) is not None:
            seen.append(request)
            peer.respond(200, body=request.body)

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            assert conn.getresponse(conn.request("GET", "/a")).read() == b""
            assert conn.getresponse(conn.request("PUT", "/b", body="text")).read() == b"text"
            blocks = iter([b"one", b"two"])
            assert conn.getresponse(conn.request("POST", "/c", body=blocks)).read() == b"onetwo"
            assert conn.getresponse(conn.request("POST", "/d")).read() == b""
    assert server.errors == [] and server.connections == 1
    get, put, post, empty = seen
    assert get.header(b"host") == f"127.0.0.1:{server.port}".encode()
    assert get.header(b"content-length") is None and get.header(b"transfer-encoding") is None
    assert get.header(b"accept-encoding") == b"gzip, deflate, br"
    assert put.header(b"content-length") == b"4"
    assert post.header(b"transfer-encoding") == b"chunked" and post.header(b"content-length") is None
    assert empty.header(b"content-length") == b"0"


def test_default_port_is_not_in_host() -> None:
    conn = hyper.HTTP11Connection("example.org", secure=False)
    assert (conn.port, conn.authority) == (80, "example.org")
    assert hyper.HTTP11Connection("example.org").authority == "example.org"
    assert hyper.HTTP11Connection("example.org:8443", secure=True).authority == "example.org:8443"


def test_invalid_header_is_refused_before_sending() -> None:
    with scripted(_serve_forever()) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            with pytest.raises(hyper.InvalidHeader):
                conn.request("GET", "/", headers={"x-bad": "a\r\nInjected: 1"})
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("upgrade", "h2c"),
        ("HTTP2-Settings", "AAMAAABkAAQAAP__"),
        ("connection", "keep-alive, Upgrade"),
        ("connection", "http2-settings"),
        ("transfer-encoding", "gzip"),
        ("transfer-encoding", "gzip, chunked"),
    ],
)
def test_fields_only_hyper_manages_are_refused_before_sending(name: str, value: str) -> None:
    seen = []

    def script(peer: Peer) -> None:
        while (request := peer.read_request()) is not None:
            seen.append(request)
            peer.respond(200, body=b"ok")

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            with pytest.raises(hyper.InvalidHeader):
                conn.request("GET", "/refused", headers={name: value})
            stream_id = conn.putrequest("GET", "/put")
            with pytest.raises(hyper.InvalidHeader):
                conn.putheader(name, value)  # at once, and the request stays as it was
            conn.endheaders(final=True)
            assert conn.getresponse(stream_id).read() == b"ok"
    assert [request.target for request in seen] == [b"/put"]
    assert seen[0].header(name.lower().encode()) is None


def test_connection_close_and_chunked_from_the_caller_are_kept() -> None:
    seen = []

    def script(peer: Peer) -> None:
        while (request := peer.read_request()) is not None:
            seen.append(request)
            peer.respond(200, body=request.body)

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            stream_id = conn.putrequest("POST", "/chunked")
            conn.putheader("transfer-encoding", "chunked")
            conn.putheader("connection", "close")
            conn.endheaders(b"abc", final=True)
            assert conn.getresponse(stream_id).read() == b"abc"
    assert seen[0].header(b"transfer-encoding") == b"chunked"
    assert seen[0].header(b"connection") == b"close"


def test_send_and_request_concern_this_threads_own_request() -> None:
    def script(peer: Peer) -> None:
        while (request := peer.read_request()) is not None:
            peer.respond(200, body=request.body)

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=None) as conn:
            with pytest.raises(hyper.InvalidStreamID):
                conn.send(b"nobody's", final=True)  # no request of this thread's own
            stream_id = conn.putrequest("POST", "/own")
            conn.endheaders()
            # This thread's body is open: waiting for it would wait forever.
            with pytest.raises(hyper.HyperError):
                conn.request("GET", "/next")
            refused: list[BaseException] = []

            def other_thread() -> None:
                try:
                    conn.send(b"INTRUDER")
                except hyper.InvalidStreamID as exc:
                    refused.append(exc)

            thread = threading.Thread(target=other_thread)
            thread.start()
            thread.join(TIMEOUT)
            assert not thread.is_alive() and len(refused) == 1
            conn.send(b"mine", final=True)
            assert conn.getresponse(stream_id).read() == b"mine"
            with pytest.raises(hyper.InvalidStreamID):
                conn.send(b"late")  # finished: no longer open
            assert conn.getresponse(conn.request("GET", "/next")).read() == b""
    assert server.errors == []


@pytest.mark.parametrize("url", ["/\ud800", "http://host\udfff/x", "/a?q=\udc80"])
def test_url_with_a_lone_surrogate_is_invalid_url(url: str) -> None:
    with scripted(_serve_forever()) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            with pytest.raises(hyper.InvalidURL):
                conn.request("GET", url)
            with pytest.raises(hyper.InvalidURL):
                conn.putrequest("GET", url)
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"


def test_a_101_read_as_a_response_closes_that_socket_cleanly() -> None:
    # Only hyper's own h2c upgrade may propose Upgrade (and take the 101 with
    # detach_if_switched()); read with getresponse() instead, the 101 is a
    # ProtocolError and that socket closes: no AssertionError, no wedge.
    def script(peer: Peer) -> None:
        peer.read_request()
        peer.send_raw(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n")
        peer.wait_closed()

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            headers = {"connection": "upgrade", "upgrade": "h2c"}
            stream_id = conn._request("GET", "/", None, headers)
            with pytest.raises(hyper.ProtocolError):
                conn.getresponse(stream_id)
            assert conn.fileno() == -1  # that socket is closed
    assert server.errors == []


def test_body_longer_than_declared_length() -> None:
    with scripted(_serve_forever()) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            with pytest.raises(hyper.BodyLengthError):
                conn.request("POST", "/", body=iter([b"12345"]), headers={"content-length": "3"})
            # The broken connection was dropped; the next request uses a new one.
            assert conn.getresponse(conn.request("GET", "/")).read() == b"ok"


def test_putrequest_form_streams_a_chunked_body() -> None:
    def script(peer: Peer) -> None:
        request = peer.read_request()
        assert request is not None
        peer.respond(200, body=request.body + b"|" + (request.header(b"transfer-encoding") or b""))

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            stream_id = conn.putrequest("POST", "/upload")
            conn.putheader("x-a", "1", stream_id)
            conn.endheaders(stream_id=stream_id)
            conn.send(b"part1 ", stream_id=stream_id)
            conn.send(b"part2", final=True, stream_id=stream_id)
            assert conn.getresponse(stream_id).read() == b"part1 part2|chunked"
    assert server.errors == []


# -- responses ------------------------------------------------------------------------


def test_chunked_response_with_trailers() -> None:
    def script(peer: Peer) -> None:
        peer.read_request()
        peer.respond(
            200,
            [(b"transfer-encoding", b"chunked"), (b"trailer", b"x-checksum")],
            body=b"chunked body",
            trailers=[(b"x-checksum", b"abc")],
        )

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            assert response.trailers == hyper.HTTPHeaderMap()
            assert response.read() == b"chunked body"
            assert response.trailers[b"x-checksum"] == [b"abc"]


def test_gzip_response_is_decoded_by_the_shared_decoder() -> None:
    payload = b"compress me " * 1000

    def script(peer: Peer) -> None:
        peer.read_request()
        peer.respond(200, [(b"content-encoding", b"gzip")], body=gzip.compress(payload))

    with scripted(script) as server:
        limits = hyper.Limits(max_decoded_size=100)
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            assert conn.getresponse(conn.request("GET", "/")).read() == payload
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT, limits=limits) as conn:
            with pytest.raises(hyper.DecodedSizeExceeded):
                conn.getresponse(conn.request("GET", "/")).read()


def test_connection_close_makes_the_next_request_reconnect() -> None:
    def script(peer: Peer) -> None:
        peer.read_request()
        peer.respond(200, [(b"connection", b"close")], body=f"conn {peer.index}".encode())

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"conn 0"
            assert conn.getresponse(conn.request("GET", "/")).read() == b"conn 1"
    assert server.connections == 2 and server.errors == []


def test_response_without_length_is_read_to_eof() -> None:
    def script(peer: Peer) -> None:
        peer.read_request()
        peer.send_raw(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        peer.sock.close()

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            assert response.read() == b"until the end"
            assert conn.getresponse(conn.request("GET", "/")).read() == b"until the end"
    assert server.connections == 2


def test_http10_response() -> None:
    def script(peer: Peer) -> None:
        peer.read_request()
        peer.send_raw(b"HTTP/1.0 200 Fine\r\ncontent-length: 2\r\n\r\nhi")

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            assert (response.version, response.reason, response.read()) == ("HTTP/1.0", "Fine", b"hi")


def test_informational_responses_are_skipped_and_bounded() -> None:
    def script(peer: Peer) -> None:
        peer.read_request()
        peer.send_raw(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n")
        peer.respond(200, body=b"final")
        peer.read_request()
        peer.send_raw(b"HTTP/1.1 102 Processing\r\n\r\n" * 3)
        peer.wait_closed()

    with scripted(script) as server:
        with hyper.HTTP11Connection(
            server.address, timeout=TIMEOUT, limits=hyper.Limits(max_informational_responses=2)
        ) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            assert (response.status, response.read()) == (200, b"final")
            with pytest.raises(hyper.ProtocolError, match="informational"):
                conn.getresponse(conn.request("GET", "/"))


def test_server_closing_an_idle_connection_is_replaced() -> None:
    closed = threading.Event()

    def script(peer: Peer) -> None:
        peer.read_request()
        peer.respond(200, body=f"conn {peer.index}".encode())
        if peer.index == 0:
            peer.sock.close()  # keep-alive promised, then closed while idle
            closed.set()
            return
        while peer.read_request() is not None:
            peer.respond(200, body=f"conn {peer.index}".encode())

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"conn 0"
            assert closed.wait(TIMEOUT)
            assert conn.getresponse(conn.request("POST", "/", body=b"x")).read() == b"conn 1"
    assert server.connections == 2 and server.errors == []


def test_server_closing_right_after_a_response_is_survived_by_idempotent_requests() -> None:
    # No synchronisation: the close may reach us before or after the next
    # request was sent; a GET is then sent once more on a new connection.
    def script(peer: Peer) -> None:
        peer.read_request()
        peer.respond(200, body=b"once")

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            for _ in range(5):
                assert conn.getresponse(conn.request("GET", "/")).read() == b"once"
    assert server.errors == []


def test_later_response_first_buffers_the_earlier_one() -> None:
    with scripted(_serve_forever()) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            first = conn.request("GET", "/first")
            second = conn.request("GET", "/second")
            third = conn.request("GET", "/third")
            assert conn.getresponse(third).headers[b"x-target"] == [b"/third"]
            assert conn.getresponse().headers[b"x-target"] == [b"/first"]
            assert conn.getresponse(second).headers[b"x-target"] == [b"/second"]
            assert first == 1 and second == 2 and third == 3
            with pytest.raises(hyper.InvalidStreamID):
                conn.getresponse(second)


def test_buffering_an_unread_response_is_bounded() -> None:
    big = b"z" * 200_000
    with scripted(_serve_forever(big)) as server:
        limits = hyper.Limits(max_buffered=50_000)
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT, limits=limits) as conn:
            first = conn.request("GET", "/")
            with pytest.raises(hyper.HyperError, match="read it before sending another request"):
                conn.request("GET", "/")
            # Nothing was lost: the first response reads in full, then the
            # connection serves the next request.
            assert conn.getresponse(first).read() == big
            assert conn.getresponse(conn.request("GET", "/")).read() == big


def test_closing_a_response_mid_body_closes_the_connection() -> None:
    with scripted(_serve_forever(b"q" * 500_000)) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            assert response.read(10) == b"q" * 10
            response.close()
            with pytest.raises(hyper.ConnectionClosed):  # b'' would pass for a complete body
                response.read()
            assert conn.getresponse(conn.request("GET", "/")).read() == b"q" * 500_000
    assert server.connections == 2


# -- hostile servers ------------------------------------------------------------------


def _one_reply(raw: bytes, close: bool = True) -> object:
    def script(peer: Peer) -> None:
        peer.read_request()
        peer.send_raw(raw)
        if close:
            peer.sock.close()
        else:
            peer.wait_closed()

    return script


def test_garbage_status_line() -> None:
    with scripted(_one_reply(b"HTTP/1.1 abc Nope\r\n\r\n")) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            with pytest.raises(hyper.ProtocolError, match="invalid HTTP/1.1 response"):
                conn.getresponse(conn.request("GET", "/"))
    with scripted(_one_reply(b"\x16\x03\x01 not http at all\r\n\r\n")) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            with pytest.raises(hyper.ProtocolError):
                conn.getresponse(conn.request("GET", "/"))


@pytest.mark.parametrize("size", [70_000, 1_000_000])
def test_oversized_response_head(size: int) -> None:
    raw = b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * size + b"\r\ncontent-length: 0\r\n\r\n"
    with scripted(_one_reply(raw, close=False)) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            with pytest.raises(hyper.ProtocolError, match="max_header_list_size"):
                conn.getresponse(conn.request("GET", "/"))


def test_head_under_the_byte_limit_but_over_the_field_limit() -> None:
    # Many small fields: RFC 9113's 32 bytes of overhead per field count too.
    fields = b"".join(b"x-%d: v\r\n" % i for i in range(300))
    raw = b"HTTP/1.1 200 OK\r\n" + fields + b"content-length: 0\r\n\r\n"
    with scripted(_one_reply(raw, close=False)) as server:
        limits = hyper.Limits(max_header_list_size=8000)
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT, limits=limits) as conn:
            with pytest.raises(hyper.ProtocolError, match="max_header_list_size"):
                conn.getresponse(conn.request("GET", "/"))


def test_truncated_body_with_content_length() -> None:
    with scripted(_one_reply(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            with pytest.raises(hyper.BodyLengthError) as info:
                response.read()
    assert (info.value.expected, info.value.actual) == (100, 9)


def test_truncated_chunked_body() -> None:
    raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nshort"
    with scripted(_one_reply(raw)) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            with pytest.raises(hyper.ConnectionTerminated, match="chunked body"):
                response.read()


def test_close_before_any_response() -> None:
    with scripted(_one_reply(b"")) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            with pytest.raises(hyper.ConnectionTerminated, match="without answering"):
                conn.getresponse(conn.request("GET", "/"))


def test_stalled_head_and_stalled_body_time_out() -> None:
    with scripted(_one_reply(b"", close=False)) as server:
        # 2 s: short, yet a loaded machine's scripted server answers within it.
        with hyper.HTTP11Connection(server.address, timeout=2) as conn:
            with pytest.raises(hyper.ReadTimeout):
                conn.getresponse(conn.request("GET", "/"))
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"
    with scripted(_one_reply(raw, close=False)) as server:
        with hyper.HTTP11Connection(server.address, timeout=(TIMEOUT, 2)) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            with pytest.raises(hyper.ReadTimeout):
                response.read()


def test_deadline_bounds_a_dribbling_server() -> None:
    def script(peer: Peer) -> None:
        peer.read_request()
        peer.send_raw(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        for _ in range(1000):
            peer.send_raw(b"x")
            threading.Event().wait(0.05)

    with scripted(script) as server:
        # The 2 s deadline leaves a loaded machine time to get the head; the
        # dribble (1,000 pauses of 0.05 s) outlasts it by far whatever the load.
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT, deadline=2) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            with pytest.raises(hyper.ReadTimeout, match="deadline"):
                response.read()


def test_a_deadline_already_passed_is_a_read_timeout_before_any_recv(monkeypatch: pytest.MonkeyPatch) -> None:
    # Once the deadline has passed, the wait left is 0.0 s; given to
    # settimeout() that would make the socket non-blocking and recv() would
    # fail with BlockingIOError (a ConnectionTerminated), not time out. The
    # clock is moved instead of waited on, so the test does not depend on
    # how loaded the machine is.
    release = threading.Event()

    def script(peer: Peer) -> None:
        peer.read_request()
        peer.send_raw(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nxy")
        release.wait(SCRIPT_WAIT)  # the rest never comes while the client reads

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT, deadline=600) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            assert response.read(2) == b"xy"
            later = time.monotonic() + 3600
            monkeypatch.setattr(exchange_module, "time", types.SimpleNamespace(monotonic=lambda: later))
            try:
                with pytest.raises(hyper.ReadTimeout, match="deadline passed"):
                    response.read()
            finally:
                release.set()


def test_closed_connection_fails_unread_response() -> None:
    with scripted(_serve_forever(b"w" * 500_000)) as server:
        conn = hyper.HTTP11Connection(server.address, timeout=TIMEOUT)
        response = conn.getresponse(conn.request("GET", "/"))
        conn.close()
        with pytest.raises(hyper.ConnectionClosed):
            response.read()
        with pytest.raises(hyper.InvalidStreamID):
            conn.getresponse()
        conn.close()


def _drop_second_request(peer: Peer) -> None:
    """Connection 0 answers once, then reads the next request and closes unanswered."""
    if peer.index == 0:
        peer.read_request()
        peer.respond(200, body=b"first")
        peer.read_request()
        peer.sock.close()
        return
    while peer.read_request() is not None:
        peer.respond(200, body=f"conn {peer.index}".encode())


def test_unanswered_idempotent_request_on_a_reused_connection_is_sent_again() -> None:
    with scripted(_drop_second_request) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"first"
            assert conn.getresponse(conn.request("PUT", "/", body=b"data")).read() == b"conn 1"
    assert server.connections == 2 and server.errors == []


def test_unanswered_post_is_not_sent_again() -> None:
    with scripted(_drop_second_request) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            assert conn.getresponse(conn.request("GET", "/")).read() == b"first"
            stream_id = conn.request("POST", "/", body=b"data")
            with pytest.raises(hyper.ConnectionTerminated, match="without answering"):
                conn.getresponse(stream_id)
            # The connection recovers for the next request.
            assert conn.getresponse(conn.request("GET", "/")).read() == b"conn 1"
    assert server.connections == 2


def test_early_response_stops_the_upload() -> None:
    # The server refuses after the head and stops reading: the upload must
    # not block until the timeout, and the refusal is the response.
    def script(peer: Peer) -> None:
        while not isinstance(peer.h11.next_event(), h11.Request):
            peer.h11.receive_data(peer.sock.recv(65536))
        peer.send_raw(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\nconnection: close\r\n\r\ntoo big!"
        )
        peer.wait_closed()

    with scripted(script) as server:
        with hyper.HTTP11Connection(server.address, timeout=(TIMEOUT, 5)) as conn:
            stream_id = conn.request("POST", "/", body=b"u" * (64 * 1024 * 1024))
            response = conn.getresponse(stream_id)
            assert (response.status, response.read()) == (413, b"too big!")
            # The half-sent request left the connection unusable: a new one serves the next.
    assert server.errors == []


def test_early_response_over_tls(nginx_http11_server: ServerInfo) -> None:
    # nginx answers a POST to a static file with 405 at once and discards the
    # body meanwhile: the answer may arrive while the upload is under way.
    with _nginx(nginx_http11_server) as conn:
        response = conn.getresponse(conn.request("POST", "/1k.bin", body=b"v" * (32 * 1024 * 1024)))
        assert response.status == 405
        response.read()
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == one_k_bytes()


def test_closing_a_response_with_little_left_keeps_the_connection() -> None:
    with scripted(_serve_forever(b"s" * 20_000)) as server:
        with hyper.HTTP11Connection(server.address, timeout=TIMEOUT) as conn:
            with conn.getresponse(conn.request("GET", "/")) as response:
                assert response.read(10) == b"s" * 10
            assert response.closed
            assert conn.getresponse(conn.request("GET", "/")).read() == b"s" * 20_000
    assert server.connections == 1


def test_a_dropped_connection_is_freed_without_the_garbage_collector() -> None:
    # The connection owns its channel; the channel's way back (to open
    # sockets) is weak, so no cycle keeps a dropped connection and its
    # buffers alive until the next collection.
    gc.disable()
    try:
        conn = hyper.HTTP11Connection("127.0.0.1:9", timeout=TIMEOUT)
        ref = weakref.ref(conn)
        del conn
        assert ref() is None
    finally:
        gc.enable()

"""hyper.contrib.HTTP20Adapter: a real requests.Session against nginx, nghttpd and hypercorn."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import shutil
import socket
import subprocess
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from urllib3.exceptions import InsecureRequestWarning

import hyper
from hyper.contrib import (
    HTTP20Adapter,
    RawResponse,
    _check_timeout,
    _OriginalResponse,
    _proxy_kwargs,
    proxy_headers_for,
    select_proxy,
)
from tests import asgi_app
from tests.scripted import Peer, ScriptedServer
from tests.servers import ServerInfo, docroot_content

BIG = 64 * 1024 * 1024


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A session whose http:// and https:// requests go through hyper."""
    with requests.Session() as s:
        # Proxy variables of the machine running the tests must not apply.
        s.trust_env = False
        adapter = HTTP20Adapter()
        s.mount("https://", adapter)
        s.mount("http://", adapter)
        yield s


# -- ordinary exchanges ---------------------------------------------------------------


def test_get_from_nginx(session: requests.Session, nginx_server: ServerInfo) -> None:
    response = session.get(nginx_server.url("/hello.txt"), verify=nginx_server.ca_file, timeout=20)
    assert response.status_code == 200
    assert response.reason == "OK"
    assert response.url == nginx_server.url("/hello.txt")
    # nginx gzips text for clients that accept it; content is decoded.
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.content == docroot_content("hello.txt")
    # text/plain without charset: requests' rule gives ISO-8859-1.
    assert response.encoding == "ISO-8859-1"
    assert response.text == docroot_content("hello.txt").decode("latin-1")
    assert isinstance(response.raw, RawResponse)
    assert response.raw.closed
    assert response.connection is session.get_adapter(nginx_server.url())


def test_raw_version_numbers_the_negotiated_protocol_as_urllib3_does(
    session: requests.Session, nginx_server: ServerInfo, nginx_http11_server: ServerInfo
) -> None:
    # Issue 15: r.raw.version, as urllib3's HTTPResponse has it (20 or 11).
    for server, expected in ((nginx_server, 20), (nginx_http11_server, 11)):
        response = session.get(server.url("/hello.txt"), verify=server.ca_file, timeout=20)
        assert response.status_code == 200
        assert response.raw.version == expected
        assert response.raw._original_response.version == expected


def test_cleartext_prior_knowledge(session: requests.Session, nginx_h2c_server: ServerInfo) -> None:
    response = session.get(nginx_h2c_server.url("/1k.bin"), timeout=20)
    assert response.status_code == 200
    assert response.content == docroot_content("1k.bin")
    assert response.headers["content-type"] == "application/octet-stream"


def test_post_bytes_and_generator_to_nghttpd_echo(
    session: requests.Session, nghttpd_server: ServerInfo
) -> None:
    body = bytes(range(256)) * 4000
    response = session.post(nghttpd_server.url("/echo"), data=body, verify=nghttpd_server.ca_file, timeout=20)
    assert response.status_code == 200
    assert response.content == body

    def pieces() -> Iterator[bytes]:
        for index in range(50):
            yield bytes([index]) * 1000

    response = session.put(
        nghttpd_server.url("/echo"), data=pieces(), verify=nghttpd_server.ca_file, timeout=20
    )
    assert response.content == b"".join(bytes([index]) * 1000 for index in range(50))


def test_file_upload_is_streamed_and_echoed(
    session: requests.Session, nghttpd_server: ServerInfo, tmp_path: Path
) -> None:
    source = tmp_path / "upload.bin"
    payload = bytes(range(251)) * 40_000  # ~10 MB: many flow-control windows
    source.write_bytes(payload)
    with source.open("rb") as body:
        response = session.post(
            nghttpd_server.url("/echo"), data=body, verify=nghttpd_server.ca_file, timeout=20
        )
    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(payload).digest()


def test_json_post_and_request_headers(session: requests.Session, hypercorn_server: ServerInfo) -> None:
    response = session.post(
        hypercorn_server.url("/headers-echo?x=1"),
        json={"name": "hyper"},
        headers={"X-Custom": "café"},
        verify=hypercorn_server.ca_file,
        timeout=20,
    )
    assert response.status_code == 200
    document = response.json()
    assert document["method"] == "POST"
    assert document["query_string"] == "x=1"
    assert document["http_version"] == "2"
    sent = dict(document["headers"])
    assert sent["content-type"] == "application/json"
    assert sent["content-length"] == str(len(b'{"name": "hyper"}'))
    # str header values go out as Latin-1 when they fit, as with http.client.
    assert sent["x-custom"].encode("latin-1") == "café".encode("latin-1")
    # HTTP/1.1-only fields that requests adds are not sent over HTTP/2.
    assert "connection" not in sent


def test_repeated_headers_are_joined_and_cookies_kept_apart(
    session: requests.Session, hypercorn_server: ServerInfo
) -> None:
    response = session.get(
        hypercorn_server.url("/multi-headers"), verify=hypercorn_server.ca_file, timeout=20
    )
    assert response.headers["x-list"] == "one, two"
    assert response.headers["set-cookie"] == "a=1; Path=/, b=2, with comma; Path=/"
    # Each set-cookie field was parsed on its own.
    assert response.cookies.get("a") == "1"
    assert response.cookies.get("b") == "2, with comma"


def test_cookies_reach_the_session_jar_and_go_back(
    session: requests.Session, hypercorn_server: ServerInfo
) -> None:
    response = session.get(hypercorn_server.url("/set-cookies"), verify=hypercorn_server.ca_file, timeout=20)
    assert response.status_code == 200
    assert response.cookies.get("session") == "abc123"
    jar = {cookie.name: cookie for cookie in session.cookies}
    assert jar["session"].value == "abc123"
    assert jar["session"].has_nonstandard_attr("HttpOnly")
    # The comma in the expiry date did not split the field.
    assert jar["theme"].value == "dark"
    assert jar["theme"].expires is not None and jar["theme"].expires > 4_000_000_000
    echoed = session.get(hypercorn_server.url("/headers-echo"), verify=hypercorn_server.ca_file, timeout=20)
    cookie_header = dict(echoed.json()["headers"])["cookie"]
    assert sorted(cookie_header.split("; ")) == ["session=abc123", "theme=dark"]


def test_redirect_is_followed_with_its_cookie(
    session: requests.Session, hypercorn_server: ServerInfo
) -> None:
    response = session.get(hypercorn_server.url("/redirect"), verify=hypercorn_server.ca_file, timeout=20)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [302]
    assert response.url == hypercorn_server.url("/headers-echo")
    assert dict(response.json()["headers"])["cookie"] == "redirected=yes"


def test_status_codes_without_body(session: requests.Session, hypercorn_server: ServerInfo) -> None:
    for status in (204, 404, 503):
        response = session.get(
            hypercorn_server.url(f"/status/{status}"), verify=hypercorn_server.ca_file, timeout=20
        )
        assert response.status_code == status
        assert response.content == b""
    response = session.head(hypercorn_server.url("/bytes/1000"), verify=hypercorn_server.ca_file, timeout=20)
    assert response.headers["content-length"] == "1000"
    assert response.content == b""


# -- streaming ---------------------------------------------------------------------------


def test_stream_iter_content_keeps_memory_bounded(
    session: requests.Session, nginx_server: ServerInfo, docroot: str
) -> None:
    expected = hashlib.sha256(Path(docroot, "big.bin").read_bytes()).hexdigest()
    digest = hashlib.sha256()
    total = 0
    tracemalloc.start()
    try:
        with session.get(
            nginx_server.url("/big.bin"), stream=True, verify=nginx_server.ca_file, timeout=20
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_content(64 * 1024):
                digest.update(chunk)
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == BIG
    assert digest.hexdigest() == expected
    # At most one stream window (6 MiB) waits unread; never the 64 MiB body.
    assert peak < 24 * 1024 * 1024


def test_stream_raw_read_gives_bytes_as_sent(session: requests.Session, nginx_server: ServerInfo) -> None:
    response = session.get(
        nginx_server.url("/hello.txt"), stream=True, verify=nginx_server.ca_file, timeout=20
    )
    assert response.headers["content-encoding"] == "gzip"
    compressed = response.raw.read()
    assert response.raw.read() == b""
    assert gzip.decompress(compressed) == docroot_content("hello.txt")
    response.close()


def test_iter_content_none_yields_data_as_it_arrives(
    session: requests.Session, hypercorn_server: ServerInfo
) -> None:
    response = session.get(
        hypercorn_server.url("/slow-body"), stream=True, verify=hypercorn_server.ca_file, timeout=20
    )
    body = b"".join(response.iter_content(None))
    assert body == b"".join(asgi_app.SLOW_BODY_CHUNKS)


def test_streamed_gzip_body_is_decoded_in_small_pieces(
    session: requests.Session, hypercorn_server: ServerInfo
) -> None:
    response = session.get(
        hypercorn_server.url("/encoded/gzip"), stream=True, verify=hypercorn_server.ca_file, timeout=20
    )
    assert response.headers["content-encoding"] == "gzip"
    pieces = list(response.iter_content(1000))
    assert b"".join(pieces) == asgi_app.ENCODED_PAYLOAD
    assert max(len(piece) for piece in pieces) == 1000


def test_decoded_size_limit_is_a_content_decoding_error(hypercorn_server: ServerInfo) -> None:
    with requests.Session() as s:
        s.trust_env = False
        s.mount("https://", HTTP20Adapter(limits=hyper.Limits(max_decoded_size=1000)))
        with pytest.raises(requests.exceptions.ContentDecodingError):
            s.get(hypercorn_server.url("/encoded/gzip"), verify=hypercorn_server.ca_file, timeout=20)


# -- TLS ------------------------------------------------------------------------------------


def test_default_verification_rejects_the_test_ca(
    session: requests.Session, nginx_server: ServerInfo
) -> None:
    # certifi's bundle does not hold the CA made for this test run.
    with pytest.raises(requests.exceptions.SSLError):
        session.get(nginx_server.url("/hello.txt"), timeout=20)


def test_wrong_host_fails_with_the_ca_and_passes_with_verify_false(
    session: requests.Session, nginx_wrong_host_server: ServerInfo
) -> None:
    url = nginx_wrong_host_server.url("/1k.bin")
    with pytest.raises(requests.exceptions.SSLError):
        session.get(url, verify=nginx_wrong_host_server.ca_file, timeout=20)
    with pytest.warns(InsecureRequestWarning, match="verification is off"):
        response = session.get(url, verify=False, timeout=20)
    assert response.content == docroot_content("1k.bin")


def test_verify_with_a_directory_of_ca_certificates(
    session: requests.Session, nginx_server: ServerInfo, tmp_path: Path
) -> None:
    # OpenSSL finds certificates in a directory by their subject-hash names.
    ca_dir = tmp_path / "cas"
    ca_dir.mkdir()
    shutil.copy(str(nginx_server.ca_file), ca_dir / "test-ca.pem")
    subprocess.run(["openssl", "rehash", str(ca_dir)], check=True, capture_output=True, timeout=30)
    response = session.get(nginx_server.url("/1k.bin"), verify=str(ca_dir), timeout=20)
    assert response.content == docroot_content("1k.bin")


def test_missing_ca_bundle_is_an_os_error(
    session: requests.Session, nginx_server: ServerInfo, tmp_path: Path
) -> None:
    with pytest.raises(OSError, match="no CA certificate bundle"):
        session.get(nginx_server.url("/"), verify=str(tmp_path / "missing.pem"), timeout=20)


def test_client_certificate_gets_its_own_connection(
    session: requests.Session, nginx_server: ServerInfo, server_cert_files: object
) -> None:
    # nginx does not ask for client certificates; this proves the pair loads
    # and that a different TLS identity never shares a connection.
    cert = (server_cert_files.cert_file, server_cert_files.key_file)  # type: ignore[attr-defined]
    plain = session.get(nginx_server.url("/1k.bin"), verify=nginx_server.ca_file, timeout=20)
    with_cert = session.get(nginx_server.url("/1k.bin"), verify=nginx_server.ca_file, cert=cert, timeout=20)
    again = session.get(nginx_server.url("/1k.bin"), verify=nginx_server.ca_file, timeout=20)
    assert with_cert.content == plain.content == docroot_content("1k.bin")
    assert with_cert.raw.connection is not plain.raw.connection
    assert again.raw.connection is plain.raw.connection


# -- timeouts and failures --------------------------------------------------------------------


def test_read_timeout_on_a_stalled_response_leaves_the_connection_usable(
    session: requests.Session, hypercorn_server: ServerInfo
) -> None:
    timeout = (10, 0.5)
    first = session.get(hypercorn_server.url("/status/200"), verify=hypercorn_server.ca_file, timeout=timeout)
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(hypercorn_server.url("/stall"), verify=hypercorn_server.ca_file, timeout=timeout)
    after = session.get(hypercorn_server.url("/status/200"), verify=hypercorn_server.ca_file, timeout=timeout)
    assert after.status_code == 200
    assert after.raw.connection is first.raw.connection


def test_stall_in_the_middle_of_a_streamed_body(
    session: requests.Session, hypercorn_server: ServerInfo
) -> None:
    response = session.get(
        hypercorn_server.url("/stall-body"), stream=True, verify=hypercorn_server.ca_file, timeout=(10, 0.5)
    )
    chunks = response.iter_content(None)
    assert next(chunks) == asgi_app.STALL_FIRST_CHUNK
    # requests' own adapter also reports a timeout inside a body this way.
    with pytest.raises(requests.exceptions.ConnectionError):
        next(chunks)
    response.close()


def test_stall_in_a_body_read_in_full_fails_in_get(
    session: requests.Session, hypercorn_server: ServerInfo
) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(hypercorn_server.url("/stall-body"), verify=hypercorn_server.ca_file, timeout=(10, 0.5))


def test_connect_timeout_against_a_server_that_never_answers_tls(session: requests.Session) -> None:
    # The kernel completes the TCP handshake for a listening socket nobody
    # accepts on; the TLS handshake then waits for an answer that never comes.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(requests.exceptions.ConnectTimeout):
            session.get(f"https://127.0.0.1:{port}/", timeout=(0.5, 10))


def test_refused_connection_is_a_connection_error(session: requests.Session) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nobody listens there now.
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        session.get(f"https://127.0.0.1:{port}/", timeout=5)
    assert isinstance(info.value.__cause__, hyper.ConnectError)


def test_unsupported_scheme_and_bad_timeout(session: requests.Session) -> None:
    adapter = HTTP20Adapter()
    request = requests.Request("GET", "ftp://127.0.0.1/").prepare()
    with pytest.raises(requests.exceptions.InvalidSchema):
        adapter.send(request)
    with pytest.raises(ValueError, match="invalid timeout"):
        _check_timeout((1, 2, 3))
    assert _check_timeout((1, None)) == (1, None)
    assert _check_timeout(2.5) == 2.5


# -- sharing and closing ------------------------------------------------------------------------


def test_threads_share_one_session_and_one_connection(
    session: requests.Session, nginx_server: ServerInfo
) -> None:
    expected = docroot_content("1k.bin")
    connections: set[int] = set()
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            for _ in range(15):
                response = session.get(nginx_server.url("/1k.bin"), verify=nginx_server.ca_file, timeout=20)
                assert response.status_code == 200
                assert response.content == expected
                with lock:
                    connections.add(id(response.raw.connection))
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert len(connections) == 1


def test_close_ends_open_streams_and_later_requests_reconnect(
    session: requests.Session, nginx_server: ServerInfo
) -> None:
    response = session.get(nginx_server.url("/big.bin"), stream=True, verify=nginx_server.ca_file, timeout=20)
    chunks = response.iter_content(64 * 1024)
    assert len(next(chunks)) == 64 * 1024
    session.close()
    with pytest.raises(requests.exceptions.RequestException):
        for _ in chunks:
            pass
    again = session.get(nginx_server.url("/1k.bin"), verify=nginx_server.ca_file, timeout=20)
    assert again.content == docroot_content("1k.bin")
    assert again.raw.connection is not response.raw.connection


# -- retrying what the server did not process (scripted: real servers won't do it on cue) --------


def _goaway_then_answer(peers: list[str]) -> Callable[[Peer], None]:
    """First connection: GOAWAY before stream 1 and hang up; later ones answer 200."""

    def script(peer: Peer) -> None:
        request = peer.wait_request()
        if not peers:
            peers.append("goaway")
            peer.send_goaway(last_stream_id=0)
            peer.hang_up()
            return
        peers.append("answered")
        peer.respond(request.stream_id, 200, [(b"content-length", b"3")], b"ok\n")
        peer.drain_until_closed()

    return script


def test_request_refused_by_goaway_is_sent_again_on_a_new_connection() -> None:
    peers: list[str] = []
    with ScriptedServer(_goaway_then_answer(peers), connections=2) as server:
        with requests.Session() as s:
            s.trust_env = False
            s.mount("http://", HTTP20Adapter(connection_class=hyper.HTTP20Connection))
            response = s.get(f"http://127.0.0.1:{server.port}/", timeout=10)
            assert (response.status_code, response.content) == (200, b"ok\n")
    assert peers == ["goaway", "answered"]


def test_the_adapter_sends_again_itself_when_the_connection_does_not() -> None:
    # With retry_refused=False the connection raises the refusal at once, and
    # the adapter's own single retry (kept for that, and for HTTP/1.1) sends
    # the request on a new connection.
    peers: list[str] = []
    no_resends = functools.partial(hyper.HTTP20Connection, retry_refused=False)
    with ScriptedServer(_goaway_then_answer(peers), connections=2) as server:
        with requests.Session() as s:
            s.trust_env = False
            s.mount("http://", HTTP20Adapter(connection_class=no_resends))
            response = s.get(f"http://127.0.0.1:{server.port}/", timeout=10)
            assert (response.status_code, response.content) == (200, b"ok\n")
    assert peers == ["goaway", "answered"]


def test_a_generator_body_is_not_sent_twice() -> None:
    peers: list[str] = []
    with ScriptedServer(_goaway_then_answer(peers), connections=1) as server:
        with requests.Session() as s:
            s.trust_env = False
            s.mount("http://", HTTP20Adapter(connection_class=hyper.HTTP20Connection))
            with pytest.raises(requests.exceptions.ConnectionError) as info:
                s.post(f"http://127.0.0.1:{server.port}/", data=iter([b"once"]), timeout=10)
    assert isinstance(info.value.__cause__, hyper.ConnectionTerminated)
    assert info.value.__cause__.retryable
    assert peers == ["goaway"]


# -- proxy selection (pure; tests/test_proxy.py drives a real proxy through the adapter) ---------


def test_select_proxy_follows_requests_rules() -> None:
    proxies = {
        "https": "http://proxy.example:3128",
        "http://special.example": "http://other.example:8080",
    }
    assert select_proxy("https://example.org/x", proxies) == "http://proxy.example:3128"
    assert select_proxy("http://special.example/", proxies) == "http://other.example:8080"
    assert select_proxy("http://example.org/", proxies) is None
    assert select_proxy("https://example.org/", None) is None


def test_proxy_authorization_comes_from_the_proxy_url() -> None:
    headers = proxy_headers_for("http://user%40corp:p%3Ass@proxy.example:3128")
    assert headers == {"Proxy-Authorization": "Basic " + base64.b64encode(b"user@corp:p:ss").decode()}
    assert proxy_headers_for("http://proxy.example:3128") == {}
    assert HTTP20Adapter().proxy_headers("http://a:b@proxy.example") == {
        "Proxy-Authorization": "Basic " + base64.b64encode(b"a:b").decode()
    }


def test_proxy_url_becomes_connection_arguments() -> None:
    assert _proxy_kwargs("http://proxy.example:3128", {}) == {
        "proxy_host": "proxy.example",
        "proxy_port": 3128,
    }
    assert _proxy_kwargs("proxy.example", {"Proxy-Authorization": "Basic eA=="}) == {
        "proxy_host": "proxy.example",
        "proxy_port": 80,
        "proxy_headers": {"Proxy-Authorization": "Basic eA=="},
    }
    assert _proxy_kwargs("http://[::1]:3128", {})["proxy_host"] == "[::1]"
    with pytest.raises(requests.exceptions.InvalidProxyURL):
        _proxy_kwargs("socks5://proxy.example:1080", {})


def test_the_cookie_source_gives_each_field() -> None:
    headers = hyper.HTTPHeaderMap([(b"set-cookie", b"a=1"), (b"Set-Cookie", b"b=2, 3"), (b"x", b"y")])
    message = _OriginalResponse(headers).msg
    assert message.get_all("Set-Cookie") == ["a=1", "b=2, 3"]
    assert message.getheaders("set-cookie") == ["a=1", "b=2, 3"]
    assert message.get_all("Set-Cookie2", []) == []
    assert json.dumps(message.get_all("missing")) == "null"


def test_an_unread_http11_stream_does_not_hold_up_the_next_request(nginx_http11_server: ServerInfo) -> None:
    """HTTP/1.1 carries one exchange at a time: a busy connection is not reused.

    A 64 MiB streamed body left unread would otherwise have to be buffered
    (over Limits.max_buffered) before the next request could go out.
    """
    server = nginx_http11_server
    adapter = HTTP20Adapter(pool_maxsize=2)
    with requests.Session() as s:
        s.mount("https://", adapter)
        big = s.get(server.url("/big.bin"), stream=True, verify=server.ca_file, timeout=20)
        assert len(next(big.iter_content(65536))) > 0
        small = s.get(server.url("/1k.bin"), verify=server.ca_file, timeout=20)
        assert small.content == docroot_content("1k.bin")
        pools = list(adapter._pool.sites().values())
        assert [len(pool) for pool in pools] == [2]
        assert all(connection.version == "HTTP/1.1" for connection in pools[0])  # type: ignore[attr-defined]
        big.close()
        # Both idle again: the next request reuses one, no third connection.
        assert s.get(server.url("/1k.bin"), verify=server.ca_file, timeout=20).status_code == 200
        assert [len(pool) for pool in adapter._pool.sites().values()] == [2]


def test_pool_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError, match="pool_maxsize"):
        HTTP20Adapter(pool_maxsize=0)

"""hyper against real HTTP/2 servers on 127.0.0.1: nginx, nghttpd and hypercorn over TLS."""

from __future__ import annotations

import gzip
import hashlib
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

import hyper
import hyper.testing
import hyper.tls
from tests import asgi_app
from tests.scripted import ScriptedServer
from tests.servers import CertFiles, ServerInfo, docroot_content

BIG = 64 * 1024 * 1024


def connect(info: ServerInfo, **kwargs: object) -> hyper.HTTP20Connection:
    kwargs.setdefault("timeout", 20)
    if info.secure:
        kwargs.setdefault("ssl_context", hyper.tls.init_context(cert_path=info.ca_file))
    return hyper.HTTP20Connection(info.host, info.port, secure=info.secure, **kwargs)  # type: ignore[arg-type]


def test_the_readme_example_against_nginx(nginx_server: ServerInfo) -> None:
    with connect(nginx_server) as conn:
        conn.request("GET", "/hello.txt")
        response = conn.getresponse()
        assert response.status == 200
        assert response.reason == "OK"
        assert conn.negotiated_protocol == "h2"
        # nginx gzips text for clients that accept it; hyper decodes it.
        assert response.headers.get("content-encoding") == [b"gzip"]
        assert response.read() == docroot_content("hello.txt")


def test_localhost_name_and_authority_with_port(nginx_server: ServerInfo) -> None:
    with hyper.HTTP20Connection(
        f"localhost:{nginx_server.port}",
        secure=True,
        ssl_context=hyper.tls.init_context(cert_path=nginx_server.ca_file),
        timeout=10,
    ) as conn:
        assert conn.authority == f"localhost:{nginx_server.port}"
        response = conn.getresponse(conn.request("GET", "/1k.bin"))
        assert response.read() == docroot_content("1k.bin")


def test_ipv6_literal_host_against_the_bundled_server() -> None:
    with hyper.testing.TestServer(host="::1") as server:
        context = hyper.tls.init_context(cert_path=server.ca_file)
        with hyper.HTTP20Connection(f"[::1]:{server.port}", ssl_context=context, timeout=10) as conn:
            assert conn.authority == f"[::1]:{server.port}"
            assert conn.getresponse(conn.request("GET", "/bytes/1000")).read() == (
                hyper.testing.expected_bytes(1000)
            )


def test_cleartext_prior_knowledge_against_nginx(nginx_h2c_server: ServerInfo) -> None:
    with connect(nginx_h2c_server) as conn:
        response = conn.getresponse(conn.request("GET", "/1k.bin"))
        assert response.read() == docroot_content("1k.bin")
        assert conn.negotiated_protocol is None


def test_200_concurrent_streams_read_in_reverse_order(nginx_server: ServerInfo) -> None:
    # nginx allows 128 streams at once: the rest wait for slots as we go.
    expected = docroot_content("1k.bin")
    with connect(nginx_server) as conn:
        ids = [conn.request("GET", "/1k.bin") for _ in range(200)]
        assert len(set(ids)) == 200
        for stream_id in reversed(ids):
            assert conn.getresponse(stream_id).read() == expected


@pytest.mark.parametrize("server", ["nginx_server", "nghttpd_server"])
def test_64_mib_download_in_64_kib_reads(server: str, request: pytest.FixtureRequest) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    expected = hashlib.sha256(docroot_content("big.bin")).hexdigest()
    with connect(info) as conn:
        response = conn.getresponse(conn.request("GET", "/big.bin"))
        digest = hashlib.sha256()
        total = 0
        while chunk := response.read(65536):
            assert len(chunk) == 65536 or total + len(chunk) == BIG
            digest.update(chunk)
            total += len(chunk)
        assert total == BIG
        assert digest.hexdigest() == expected
        assert response.closed


def test_64_mib_download_with_read_chunked(nginx_server: ServerInfo) -> None:
    expected = hashlib.sha256(docroot_content("big.bin")).hexdigest()
    with connect(nginx_server) as conn:
        response = conn.getresponse(conn.request("GET", "/big.bin"))
        digest = hashlib.sha256()
        total = 0
        for chunk in response.read_chunked():
            assert chunk
            digest.update(chunk)
            total += len(chunk)
        assert total == BIG
        assert digest.hexdigest() == expected


def test_64_mib_upload_from_a_file_is_echoed_back(nghttpd_server: ServerInfo, tmp_path: Path) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(docroot_content("big.bin")[::-1])  # differs from anything served
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    with connect(nghttpd_server) as conn, source.open("rb") as body:
        stream_id = conn.request("POST", "/", body=body)
        response = conn.getresponse(stream_id)
        assert response.status == 200
        digest = hashlib.sha256()
        total = 0
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            total += len(chunk)
    assert total == BIG
    assert digest.hexdigest() == expected


def test_upload_from_a_generator_to_nginx(nginx_server: ServerInfo) -> None:
    blocks = (bytes([i]) * 100_000 for i in range(50))  # 5 MB, length unknown
    with connect(nginx_server) as conn:
        response = conn.getresponse(conn.request("PUT", "/upload", body=blocks))
        assert response.status == 200
        assert response.headers.get_first("x-upload-length") == b"5000000"


@pytest.mark.parametrize("coding", sorted(asgi_app.CODINGS))
def test_encoded_bodies_are_decoded(hypercorn_server: ServerInfo, coding: str) -> None:
    with connect(hypercorn_server) as conn:
        response = conn.getresponse(conn.request("GET", f"/encoded/{coding}"))
        assert response.status == 200
        assert response.read() == asgi_app.ENCODED_PAYLOAD


def test_stacked_gzip_br_body_in_small_reads(hypercorn_server: ServerInfo) -> None:
    with connect(hypercorn_server) as conn:
        response = conn.getresponse(conn.request("GET", "/encoded/gzip-br"))
        pieces = []
        while piece := response.read(1000):
            assert len(piece) <= 1000
            pieces.append(piece)
        assert b"".join(pieces) == asgi_app.ENCODED_PAYLOAD


def test_decode_content_false_returns_bytes_as_sent(nginx_server: ServerInfo) -> None:
    with connect(nginx_server) as conn:
        response = conn.getresponse(conn.request("GET", "/hello.txt"))
        raw = response.read(decode_content=False)
        assert raw[:2] == b"\x1f\x8b"
        assert gzip.decompress(raw) == docroot_content("hello.txt")


def test_caller_accept_encoding_is_sent_as_given(nginx_server: ServerInfo) -> None:
    with connect(nginx_server) as conn:
        response = conn.getresponse(
            conn.request("GET", "/hello.txt", headers={"accept-encoding": "identity"})
        )
        assert "content-encoding" not in response.headers
        assert response.read() == docroot_content("hello.txt")


def test_trailers(hypercorn_server: ServerInfo) -> None:
    with connect(hypercorn_server) as conn:
        response = conn.getresponse(conn.request("GET", "/trailers", headers={"te": "trailers"}))
        assert len(response.trailers) == 0  # nothing until the body is read
        assert response.read() == asgi_app.TRAILERS_BODY
        assert response.trailers.get_first("x-checksum") == b"abc123"
        assert response.trailers["X-Trailer-Two"] == [b"2"]


def test_multi_valued_headers_are_not_split(hypercorn_server: ServerInfo) -> None:
    with connect(hypercorn_server) as conn:
        response = conn.getresponse(conn.request("GET", "/multi-headers"))
        assert response.headers[b"set-cookie"] == [b"a=1; Path=/", b"b=2, with comma; Path=/"]
        assert response.headers["X-List"] == [b"one, two"]
        response.read()


def test_status_codes_and_reasons(hypercorn_server: ServerInfo) -> None:
    with connect(hypercorn_server) as conn:
        for status, reason in ((204, "No Content"), (404, "Not Found"), (418, "I'm a Teapot")):
            response = conn.getresponse(conn.request("GET", f"/status/{status}"))
            assert (response.status, response.reason) == (status, reason)
            assert response.read() == b""


def test_closing_a_response_halfway_leaves_the_connection_usable(nginx_server: ServerInfo) -> None:
    with connect(nginx_server) as conn:
        big = conn.getresponse(conn.request("GET", "/big.bin"))
        small = conn.request("GET", "/1k.bin")
        assert len(big.read(100_000)) == 100_000
        big.close()
        assert conn.getresponse(small).read() == docroot_content("1k.bin")
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == docroot_content("1k.bin")


def test_unknown_ca_is_a_tls_error(nginx_server: ServerInfo) -> None:
    # The default context trusts certifi's CAs, not the test CA.
    conn = hyper.HTTP20Connection(nginx_server.host, nginx_server.port, secure=True, timeout=10)
    with pytest.raises(hyper.TLSError) as info:
        conn.request("GET", "/")
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    conn.close()


def test_wrong_hostname_is_a_tls_error(nginx_wrong_host_server: ServerInfo, ca_file: str) -> None:
    conn = hyper.HTTP20Connection(
        "localhost",
        nginx_wrong_host_server.port,
        secure=True,
        ssl_context=hyper.tls.init_context(cert_path=ca_file),
        timeout=10,
    )
    with pytest.raises(hyper.TLSError, match="not trusted"):
        conn.connect()
    conn.close()


@pytest.mark.parametrize(("client_offers", "selected"), [(["h2"], None), (["h2", "http/1.1"], "http/1.1")])
def test_alpn_without_h2_is_refused_saying_what_was_selected(
    server_cert_files: CertFiles, ca_file: str, client_offers: list[str], selected: str | None
) -> None:
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)
    server_context.set_alpn_protocols(["http/1.1"])

    with ScriptedServer(
        lambda peer: peer.drain_until_closed(2), handshake=False, tls_context=server_context
    ) as server:
        conn = hyper.HTTP20Connection(
            "localhost",
            server.port,
            ssl_context=hyper.tls.init_context(cert_path=ca_file, alpn=client_offers),
            timeout=5,
        )
        with pytest.raises(hyper.TLSError, match="did not select HTTP/2") as info:
            conn.connect()
        assert info.value.selected_protocol == selected
        conn.close()


def test_a_callers_ssl_context_is_used_as_given(nginx_server: ServerInfo) -> None:
    context = ssl.create_default_context(cafile=nginx_server.ca_file)
    context.set_alpn_protocols(["h2"])
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with hyper.HTTP20Connection(
        nginx_server.host, nginx_server.port, ssl_context=context, timeout=10
    ) as conn:
        assert conn.secure  # an ssl_context implies TLS
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == docroot_content("1k.bin")


def test_the_quick_start_demo_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hyper.testing"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "200" in result.stdout
    assert "h2" in result.stdout

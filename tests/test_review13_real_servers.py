"""Review 13: seq5's written-out steps and the WINDOW_UPDATE hookup against real servers over TLS.

Many sequential requests on one connection mix what the reviewed steps
treat differently: HEAD (h2 expects no body whatever content-length says,
RFC 9110 9.3.2 and RFC 9113 8.1.1), 304 and 204 (no body), gzip-encoded
bodies, bodies that end with a DATA frame carrying END_STREAM, and uploads
that wait for the server's stream WINDOW_UPDATEs (nghttpd's 64 KiB window)
while our own receive window is small (so we credit the server often too).
Every answer is checked against the file it serves; the suite runs these
in both modes (``HYPER_FAST_PATHS=0`` in CI), so the public path checks the
same expectations.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

import hyper
import hyper.tls
from tests.servers import ServerInfo, docroot_content

ONE_K = docroot_content("1k.bin")
HELLO = docroot_content("hello.txt")


def connect(info: ServerInfo, **kwargs: object) -> hyper.HTTP20Connection:
    kwargs.setdefault("timeout", 30)
    kwargs.setdefault("ssl_context", hyper.tls.init_context(cert_path=info.ca_file))
    return hyper.HTTP20Connection(info.host, info.port, secure=True, **kwargs)  # type: ignore[arg-type]


def _check_mixed_round(conn: hyper.HTTP20Connection, validators: dict[str, str], round_: int) -> None:
    """One round of a GET, a HEAD, a conditional GET (304) and a gzip GET, each read whole."""
    # A plain GET of 1 KiB: content-length 1024, the body's last DATA ends it.
    response = conn.getresponse(conn.request("GET", "/1k.bin"))
    assert response.status == 200
    assert response.headers.get_first("content-length") == b"1024"
    assert response.read() == ONE_K
    # HEAD: the same content-length, no body, and the stream ends cleanly.
    response = conn.getresponse(conn.request("HEAD", "/1k.bin"))
    assert response.status == 200
    assert response.headers.get_first("content-length") == b"1024"
    assert response.read() == b""
    # A conditional GET the server answers 304 (no body; RFC 9110 15.4.5).
    response = conn.getresponse(conn.request("GET", "/1k.bin", headers=validators))
    assert response.status == 304, round_
    assert response.read() == b""
    # HEAD of a gzip-able text: nginx may declare no length; no body either way.
    response = conn.getresponse(conn.request("HEAD", "/hello.txt"))
    assert response.status == 200
    assert response.read() == b""
    # A text GET (gzip from nginx): decoded to the file.
    response = conn.getresponse(conn.request("GET", "/hello.txt"))
    assert response.status == 200
    assert response.read() == HELLO


def _validators(conn: hyper.HTTP20Connection) -> dict[str, str]:
    """What makes the server answer 304 for /1k.bin: its ETag or, failing that, its Last-Modified."""
    response = conn.getresponse(conn.request("GET", "/1k.bin"))
    assert response.read() == ONE_K
    etag = response.headers.get_first("etag")
    if etag is not None:
        return {"if-none-match": etag.decode("latin-1")}
    modified = response.headers.get_first("last-modified")
    assert modified is not None, "the server sends neither ETag nor Last-Modified"
    return {"if-modified-since": modified.decode("latin-1")}


@pytest.mark.parametrize("stream_window", [6 * 1024 * 1024, 65535, 1024])
def test_many_mixed_requests_on_one_nginx_connection(nginx_server: ServerInfo, stream_window: int) -> None:
    with connect(nginx_server, stream_window=stream_window) as conn:
        validators = _validators(conn)
        for round_ in range(25):
            _check_mixed_round(conn, validators, round_)
        # The connection is still usable and its stream ids went up by 2 each.
        last = conn.request("GET", "/1k.bin")
        assert last == 1 + 2 * (1 + 25 * 5)
        assert conn.getresponse(last).read() == ONE_K


@pytest.mark.parametrize("stream_window", [6 * 1024 * 1024, 65535, 1024])
def test_many_mixed_requests_on_one_nghttpd_connection(
    nghttpd_server: ServerInfo, stream_window: int
) -> None:
    with connect(nghttpd_server, stream_window=stream_window) as conn:
        validators = _validators(conn)
        for round_ in range(25):
            _check_mixed_round(conn, validators, round_)
        last = conn.request("GET", "/1k.bin")
        assert last == 1 + 2 * (1 + 25 * 5)
        assert conn.getresponse(last).read() == ONE_K


def test_gzip_bodies_read_raw_and_decoded_alternately(nginx_server: ServerInfo) -> None:
    with connect(nginx_server, stream_window=4096) as conn:
        for round_ in range(20):
            response = conn.getresponse(conn.request("GET", "/hello.txt"))
            if round_ % 2:
                raw = response.read(decode_content=False)
                assert gzip.decompress(raw) == HELLO
            else:
                assert response.read() == HELLO


@pytest.mark.parametrize("size", [1, 65535, 65536, 200_000, 1 << 20])
def test_uploads_waiting_for_nghttpds_window_updates_are_echoed(
    nghttpd_server: ServerInfo, tmp_path: Path, size: int
) -> None:
    """nghttpd's 64 KiB window: an upload waits for its stream WINDOW_UPDATEs (the fenced step)."""
    source = tmp_path / "up.bin"
    source.write_bytes(bytes(range(256)) * (size // 256) + b"z" * (size % 256))
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    with connect(nghttpd_server, stream_window=16384) as conn:
        for round_ in range(3):
            with source.open("rb") as body:
                response = conn.getresponse(conn.request("POST", "/", body=body))
                assert response.status == 200
                digest = hashlib.sha256()
                total = 0
                while chunk := response.read(7000):
                    digest.update(chunk)
                    total += len(chunk)
            assert (total, digest.hexdigest()) == (size, expected), round_
            # A HEAD between uploads: nghttpd declares a length, sends no body.
            head = conn.getresponse(conn.request("HEAD", "/1k.bin"))
            assert head.read() == b""


def test_uploads_and_gets_interleaved_on_nginx(nginx_server: ServerInfo) -> None:
    with connect(nginx_server, stream_window=8192) as conn:
        for round_ in range(6):
            size = 100_000 * (round_ + 1)
            response = conn.getresponse(conn.request("PUT", "/upload", body=b"u" * size))
            assert response.status == 200
            assert response.headers.get_first("x-upload-length") == str(size).encode()
            response.read()
            assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == ONE_K


@pytest.mark.parametrize("status", [204, 304, 200])
def test_bodiless_statuses_from_hypercorn(hypercorn_server: ServerInfo, status: int) -> None:
    info = hypercorn_server
    with connect(info) as conn:
        for _ in range(10):
            response = conn.getresponse(conn.request("GET", f"/status/{status}"))
            assert response.status == status
            response.read()
            head = conn.getresponse(conn.request("HEAD", f"/status/{status}"))
            assert head.status == status
            assert head.read() == b""

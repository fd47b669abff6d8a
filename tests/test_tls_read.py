"""Reading TLS records through the SSL object's C method, and the public fallback.

:mod:`hyper.common.tls_read` lets the session call ``SSLSocket._sslobj.read``
directly (two Python frames fewer per TLS record) when the socket is a plain
:class:`ssl.SSLSocket`, and the public ``recv_into`` otherwise. These tests
check that both give the same bytes and the same endings: a download from
nginx and nghttpd byte for byte, an end of the stream without close_notify
(a "ragged" EOF, which only ``SSLSocket.read`` turns into a clean 0) failing
a body the same way, and the feature check refusing what it must.
"""

from __future__ import annotations

import hashlib
import inspect
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

import hyper
import hyper.tls
from hyper.common import tls_read
from hyper.exceptions import ConnectionTerminated
from tests.scripted import Peer, ScriptedServer
from tests.servers import BIG_BIN_SIZE, CertFiles, ServerInfo, docroot_content

READERS = ["direct", "public"]


@pytest.fixture(params=READERS)
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the C method (where usable) and with the public fallback forced."""
    if request.param == "public":
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")  # read per connection by tls_read
    else:
        monkeypatch.delenv("HYPER_FAST_PATHS", raising=False)
    return str(request.param)


def session_reader(conn: hyper.HTTP20Connection) -> object:
    """The read function the connection's session fills its buffer with."""
    session = conn._sessions.current
    assert session is not None
    return session._read_into


def assert_reader_is(conn: hyper.HTTP20Connection, reader: str) -> None:
    read = session_reader(conn)
    if reader == "direct":
        # The C method of the socket's SSL object: no Python frame at all.
        assert not inspect.isfunction(read)
        # (Checked by type: the socket may be closed, and its _sslobj gone, by now.)
        assert type(getattr(read, "__self__", None)) is ssl._ssl._SSLSocket  # type: ignore[attr-defined]
    else:
        assert inspect.isfunction(read)


@pytest.mark.parametrize("server", ["nginx_server", "nghttpd_server"])
def test_a_download_is_byte_exact_with_either_reader(
    server: str, reader: str, request: pytest.FixtureRequest
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    expected = hashlib.sha256(docroot_content("big.bin")).hexdigest()
    context = hyper.tls.init_context(cert_path=info.ca_file)
    with hyper.HTTP20Connection(info.host, info.port, secure=True, ssl_context=context, timeout=20) as conn:
        response = conn.getresponse(conn.request("GET", "/big.bin"))
        assert_reader_is(conn, reader)
        digest = hashlib.sha256()
        total = 0
        while chunk := response.read(65536):
            digest.update(chunk)
            total += len(chunk)
        assert total == BIG_BIN_SIZE
        assert digest.hexdigest() == expected


def tls_server_context(server_cert_files: CertFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)
    context.set_alpn_protocols(["h2"])
    return context


def test_a_ragged_eof_mid_body_fails_the_read_the_same_way(
    reader: str, server_cert_files: CertFiles, ca_file: str
) -> None:
    """The server's TCP connection ends without close_notify, 5000 bytes into a 100000-byte body."""

    def script(peer: Peer) -> None:
        stream_id = peer.wait_request().stream_id
        peer.h2.send_headers(stream_id, [(b":status", b"200"), (b"content-length", b"100000")])
        peer.flush()
        peer.send_data(stream_id, b"x" * 5000)
        peer.hang_up()  # a TCP FIN, no TLS close_notify

    context = hyper.tls.init_context(cert_path=ca_file)
    with ScriptedServer(script, tls_context=tls_server_context(server_cert_files)) as server:
        with hyper.HTTP20Connection("localhost", server.port, ssl_context=context, timeout=5) as conn:
            response = conn.getresponse(conn.request("GET", "/"))
            assert_reader_is(conn, reader)
            with pytest.raises(ConnectionTerminated, match="before the response was complete") as caught:
                response.read()
            assert caught.value.partial == b"x" * 5000  # type: ignore[attr-defined]


# -- the feature check and the reader contract ---------------------------------------


class _OwnSSLSocket(ssl.SSLSocket):
    """A subclass, as ``SSLContext.sslsocket_class`` may make: it might read differently."""


@pytest.fixture
def tls_pair(
    server_cert_files: CertFiles, ca_file: str
) -> Iterator[tuple[ssl.SSLContext, int, threading.Event]]:
    """A one-connection TLS server sending 100000 bytes then a ragged EOF; (client context, port, done)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    server_context = tls_server_context(server_cert_files)
    done = threading.Event()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            raw, _ = listener.accept()
            with server_context.wrap_socket(raw, server_side=True) as tls:
                tls.settimeout(10)
                tls.sendall(b"0123456789" * 10000)
                tls.shutdown(socket.SHUT_WR)  # no close_notify
                done.wait(10)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=ca_file)
    try:
        yield client_context, listener.getsockname()[1], done
    finally:
        done.set()
        thread.join(10)
        listener.close()
    assert not errors


def read_all(read: tls_read.BufferReader, ragged_is_eof: bool) -> bytes:
    """Everything until the end, read as the session does (blocking socket here)."""
    buffer = bytearray(65536)
    view = memoryview(buffer)
    received = bytearray()
    while True:
        try:
            got = read(len(buffer), view)
        except ssl.SSLEOFError:
            assert ragged_is_eof, "SSLEOFError from a reader that should have reported 0"
            break
        if not got:
            break
        received += view[:got]
    return bytes(received)


@pytest.mark.parametrize("kind", READERS)
def test_both_readers_give_the_same_bytes_and_end(
    kind: str, tls_pair: tuple[ssl.SSLContext, int, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, port, _ = tls_pair
    if kind == "public":
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")
    else:
        monkeypatch.delenv("HYPER_FAST_PATHS", raising=False)  # the CI run sets it to 0
    with context.wrap_socket(
        socket.create_connection(("127.0.0.1", port), 10), server_hostname="localhost"
    ) as tls:
        read, ragged_is_eof = tls_read.buffer_reader(tls)
        assert inspect.isfunction(read) == (kind == "public")
        # Only the C method leaves the ragged EOF to the caller.
        assert ragged_is_eof == (kind == "direct")
        assert read_all(read, ragged_is_eof) == b"0123456789" * 10000


def test_the_c_method_is_refused_where_it_would_change_reading(
    tls_pair: tuple[ssl.SSLContext, int, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, port, _ = tls_pair
    monkeypatch.delenv("HYPER_FAST_PATHS", raising=False)  # the CI run sets it to 0
    plain_a, plain_b = socket.socketpair()
    with plain_a, plain_b:
        assert tls_read.direct_read(plain_a) is None  # cleartext
    own = ssl.create_default_context()
    own.sslsocket_class = _OwnSSLSocket
    with own.wrap_socket(socket.socket(), server_hostname="localhost") as unconnected:
        assert tls_read.direct_read(unconnected) is None  # a subclass may override reading
    with ssl.create_default_context().wrap_socket(
        socket.socket(), server_hostname="localhost"
    ) as unconnected:
        assert tls_read.direct_read(unconnected) is None  # no SSL object yet
    with context.wrap_socket(
        socket.create_connection(("127.0.0.1", port), 10), server_hostname="localhost"
    ) as tls:
        assert tls_read.direct_read(tls) is not None
        monkeypatch.setenv("HYPER_FAST_PATHS", "off")
        assert tls_read.direct_read(tls) is None
        monkeypatch.delenv("HYPER_FAST_PATHS")
        read_all(*tls_read.buffer_reader(tls))

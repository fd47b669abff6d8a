"""The benchmark's pure-Python floor client (bench/floor.py) gets real answers right.

Its figures are only honest if every response it counts really arrived with
the right status and length: these tests check statuses, bodies and lengths
against nginx and nghttpd (the test suite's and the benchmark's own), the
``:status`` decoder against every HPACK form, and that the harness rejects a
floor run whose bodies are short.  No timing is asserted.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hpack
import pytest

from bench.clients import FloorClient, HyperClient, WorkloadError
from bench.config import QUICK
from bench.floor import FloorConnection, FloorError, decode_status
from bench.server import (
    BIG_PATH,
    SERVER_NAMES,
    SMALL_PATH,
    SMALL_SIZE,
    UPLOAD_PATH,
    BenchServer,
    prepare_files,
    start_server,
)
from bench.worker import run_workload
from tests.servers import BIG_BIN_SIZE, CertFiles, ServerInfo, one_k_bytes

SERVERS = ["nginx_server", "nghttpd_server"]


def _connect(info: ServerInfo, shared: bool = False) -> FloorConnection:
    assert info.ca_file is not None
    return FloorConnection(info.host, info.port, info.ca_file, timeout=30, shared=shared)


# ---------------------------------------------------------------------------
# :status decoding
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 204, 206, 304, 400, 404, 500, 302, 418, 503, 101])
@pytest.mark.parametrize("huffman", [True, False])
def test_status_is_decoded_in_every_form_an_encoder_uses(status: int, huffman: bool) -> None:
    block = hpack.Encoder().encode([(":status", str(status)), ("server", "x")], huffman=huffman)
    assert decode_status(block) == status


def test_status_after_a_table_size_update() -> None:
    encoder = hpack.Encoder()
    encoder.header_table_size = 256  # the next block starts with a size update
    block = encoder.encode([(":status", "404")])
    assert block[0] & 0xE0 == 0x20
    assert decode_status(block) == 404


@pytest.mark.parametrize(
    "block",
    [
        b"",
        b"\xbe",  # dynamic-table entry 62: this client keeps no table
        b"\x82",  # static entry 2 is :method, not :status
        b"\x44\x01/",  # literal :path
        b"\x08\x02ab",  # literal :status that is not three digits
        b"\x08",  # cut short before the value's length
        b"\x08\x05200",  # value cut short
        b"\x08\x03\xff\xfe\xfd",  # not ASCII
        b"\x3f",  # a table size update cut short
    ],
)
def test_anything_else_is_refused_not_guessed(block: bytes) -> None:
    with pytest.raises(FloorError):
        decode_status(block)


# ---------------------------------------------------------------------------
# Against the test suite's servers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
def test_get_returns_status_and_body(server: str, request: pytest.FixtureRequest) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    conn = _connect(info)
    try:
        for _ in range(3):
            assert conn.get("/1k.bin") == (200, one_k_bytes())
        status, _ = conn.get("/no-such-file")
        assert status == 404
        # The connection is still good after a 404.
        assert conn.get("/1k.bin") == (200, one_k_bytes())
    finally:
        conn.close()


@pytest.mark.parametrize("server", SERVERS)
def test_concurrent_gets_each_get_their_own_body(server: str, request: pytest.FixtureRequest) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    conn = _connect(info)
    try:
        for _ in range(3):
            answers = conn.get_many("/1k.bin", 50)
            assert answers == [(200, one_k_bytes())] * 50
    finally:
        conn.close()


@pytest.mark.parametrize("server", SERVERS)
def test_download_returns_window_credit_until_the_end(server: str, request: pytest.FixtureRequest) -> None:
    # 64 MiB is four times the 16 MiB stream window the floor advertises: the
    # body only arrives whole if credit is returned as it goes.
    info: ServerInfo = request.getfixturevalue(server)
    conn = _connect(info)
    try:
        assert conn.download("/big.bin") == (200, BIG_BIN_SIZE)
        assert conn.get("/1k.bin") == (200, one_k_bytes())
    finally:
        conn.close()


@pytest.mark.parametrize("server", SERVERS)
def test_threads_sharing_one_connection(server: str, request: pytest.FixtureRequest) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    conn = _connect(info, shared=True)
    results: list[tuple[int, bytes]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            for _ in range(25):
                answer = conn.get("/1k.bin")
                with lock:
                    results.append(answer)
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert not errors
        assert results == [(200, one_k_bytes())] * 100
    finally:
        conn.close()


def test_a_server_without_h2_is_refused_and_the_socket_closed(nginx_http11_server: ServerInfo) -> None:
    # nginx refuses the handshake itself (no_application_protocol alert) when
    # the client offers only h2; a server that ignored ALPN would get
    # FloorError.  pytest turns a leaked socket's ResourceWarning into a failure.
    with pytest.raises((FloorError, ssl.SSLError), match="not h2|no application protocol"):
        _connect(nginx_http11_server)


def test_a_server_that_ignores_alpn_is_refused_and_the_socket_closed(
    server_cert_files: CertFiles, ca_file: str
) -> None:
    # A TLS server that negotiates no ALPN protocol at all: the handshake
    # succeeds, and the floor must refuse to speak HTTP/2 on it.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    served = threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with conn, context.wrap_socket(conn, server_side=True) as tls:
                tls.settimeout(30)
                tls.recv(1)  # until the client closes
        except OSError:
            pass  # the client may close mid-handshake; the assertion is on its side
        finally:
            served.set()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with pytest.raises(FloorError, match="not h2"):
            FloorConnection("127.0.0.1", listener.getsockname()[1], ca_file, timeout=30)
        assert served.wait(30)
    finally:
        thread.join(30)
        listener.close()


# ---------------------------------------------------------------------------
# Through the harness, against the benchmark's own servers
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench_servers() -> Iterator[dict[str, BenchServer]]:
    """The benchmark's nginx, nghttpd and h2o with 1 MiB bodies."""
    work_dir = Path(tempfile.mkdtemp(prefix="hyper-bench-test-"))
    servers: dict[str, BenchServer] = {}
    try:
        files = prepare_files(work_dir, 1024 * 1024)
        for name in SERVER_NAMES:
            servers[name] = start_server(name, work_dir, files)
        yield servers
    finally:
        for server in servers.values():
            server.process.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


def _spec(server: BenchServer, client: str, workload: str, **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "client": client,
        "workload": workload,
        "host": server.host,
        "port": server.port,
        "ca": server.ca_file,
        "sizes": QUICK.__dict__,
        "timeout": 30.0,
        "small_path": SMALL_PATH,
        "small_size": SMALL_SIZE,
        "big_path": BIG_PATH,
        "upload_path": UPLOAD_PATH,
        "upload_file": server.upload_file,
        "body_bytes": server.body_bytes,
    }
    spec.update(changes)
    return spec


@pytest.mark.parametrize("server_name", SERVER_NAMES)
@pytest.mark.parametrize("workload", ["seq", "mux", "threads", "download"])
def test_floor_workloads_in_the_harness(
    bench_servers: dict[str, BenchServer], server_name: str, workload: str
) -> None:
    spec = _spec(bench_servers[server_name], "floor", workload)
    client = FloorClient(spec)
    try:
        result = run_workload(client, spec)
    finally:
        client.close()
    assert result["ok"] and result["protocol"] == "HTTP/2"
    expected = {"seq": QUICK.seq_requests, "mux": QUICK.mux_requests, "download": 1024 * 1024}
    assert result["amount"] == expected.get(workload, QUICK.threads * QUICK.per_thread)


@pytest.mark.parametrize("server_name", SERVER_NAMES)
def test_floor_run_with_wrong_expectations_fails(
    bench_servers: dict[str, BenchServer], server_name: str
) -> None:
    server = bench_servers[server_name]
    client = FloorClient(_spec(server, "floor", "seq"))
    try:
        # A wrong status is an error, not a counted request.
        with pytest.raises(WorkloadError, match="status 404"):
            client.get("/no-such-file")
        # A body of the wrong length fails the run.
        with pytest.raises(WorkloadError, match="short warm-up body"):
            run_workload(client, _spec(server, "floor", "seq", small_size=SMALL_SIZE + 1))
    finally:
        client.close()


@pytest.mark.parametrize("server_name", SERVER_NAMES)
def test_upload_is_answered_200_by_every_server(
    bench_servers: dict[str, BenchServer], server_name: str
) -> None:
    # nghttpd answers /upload from the docroot file "upload", h2o from an
    # mruby handler, both only after the whole request body has arrived:
    # the upload workload measures a complete upload on every server.
    spec = _spec(bench_servers[server_name], "hyper", "upload")
    client = HyperClient(spec)
    try:
        result = run_workload(client, spec)
    finally:
        client.close()
    assert result["ok"] and result["amount"] == 1024 * 1024

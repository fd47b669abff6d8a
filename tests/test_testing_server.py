"""Tests for hyper.testing.TestServer.

The server is driven by curl and nghttp subprocesses and by a raw h2 client
defined here, never by hyper's own client, so that a bug in one cannot hide a
bug in the other.
"""

from __future__ import annotations

import gzip
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest

from hyper.testing import CA_FILE, MAX_BYTES, Request, Response, TestServer, expected_bytes
from hyper.testing.server import CERT_FILE, KEY_FILE

ROOT = Path(__file__).resolve().parent.parent
CURL = shutil.which("curl")
NGHTTP = shutil.which("nghttp")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl not installed")
needs_nghttp = pytest.mark.skipif(NGHTTP is None, reason="nghttp not installed")


# -- a raw h2 client ----------------------------------------------------------


class Stream:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.data = bytearray()
        self.ended = False
        self.reset: int | None = None

    @property
    def status(self) -> int:
        return int(dict(self.headers)[b":status"])

    def header(self, name: bytes) -> bytes | None:
        return dict(self.headers).get(name)


class RawClient:
    """Just enough of an HTTP/2 client, built directly on h2."""

    def __init__(
        self,
        port: int,
        *,
        tls: bool = True,
        host: str = "127.0.0.1",
        settings: dict[int, int] | None = None,
        auto_ack: bool = True,
    ) -> None:
        raw = socket.create_connection((host, port), timeout=5)
        self.sock: socket.socket = raw
        if tls:
            ctx = ssl.create_default_context(cafile=CA_FILE)
            ctx.set_alpn_protocols(["h2"])
            try:
                self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
            except BaseException:
                raw.close()
                raise
            assert self.sock.selected_alpn_protocol() == "h2"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.auto_ack = auto_ack
        self.streams: dict[int, Stream] = {}
        self.terminated: h2.events.ConnectionTerminated | None = None
        self.flush()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> int:
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = Stream()
        hdrs = [(":method", method), (":path", path), (":scheme", "https"), (":authority", "localhost")]
        hdrs += headers or []
        self.conn.send_headers(sid, hdrs, end_stream=body is None)
        self.flush()
        if body is not None:
            self.send_body(sid, body)
        return sid

    def send_body(self, sid: int, body: bytes) -> None:
        """Send *body* as flow control allows, reading while windows are shut.

        Gives up quietly if the server resets the stream.
        """
        view = memoryview(body)
        stream = self.streams[sid]
        while view:
            if stream.reset is not None:
                return
            window = self.conn.local_flow_control_window(sid)
            if window <= 0:
                self.read()
                continue
            size = min(window, self.conn.max_outbound_frame_size, len(view))
            self.conn.send_data(sid, bytes(view[:size]))
            view = view[size:]
            self.flush()
        self.conn.end_stream(sid)
        self.flush()

    def read(self, timeout: float = 5.0) -> list[h2.events.Event] | None:
        """Read once; returns None on timeout, raises EOFError on EOF.

        The list of events may be empty (a partial frame arrived).
        """
        if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return None
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        events = self.conn.receive_data(data)
        for event in events:
            stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
            if isinstance(event, h2.events.ResponseReceived) and stream:
                stream.headers = list(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                if stream:
                    stream.data += event.data
                if self.auto_ack:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and stream:
                stream.ended = True
            elif isinstance(event, h2.events.StreamReset) and stream:
                stream.reset = event.error_code
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.terminated = event
        self.flush()
        return events

    def wait(self, *sids: int, timeout: float = 10.0) -> list[Stream]:
        deadline = time.monotonic() + timeout
        while not all(self.streams[s].ended or self.streams[s].reset is not None for s in sids):
            remaining = deadline - time.monotonic()
            assert remaining > 0, "timed out waiting for responses"
            self.read(remaining)
        return [self.streams[s] for s in sids]

    def get(self, path: str, **kw: object) -> Stream:
        (stream,) = self.wait(self.request("GET", path, **kw))  # type: ignore[arg-type]
        return stream

    def read_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            assert remaining > 0, "condition not reached"
            self.read(remaining)

    def drain_quiet(self, quiet: float = 0.2) -> None:
        """Read until nothing arrives for *quiet* seconds."""
        while self.read(quiet) is not None:
            pass

    def read_until_eof(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "server did not close the connection"
            try:
                self.read(remaining)
            except (EOFError, ConnectionResetError, ssl.SSLEOFError):
                return


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# -- fixtures -----------------------------------------------------------------


def _custom_routes() -> dict[str, object]:
    def info(req: Request) -> Response:
        payload = {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "x-test": req.header("X-Test"),
            "body": req.body.decode(),
            "stream_id": req.stream_id,
        }
        return 201, {"content-type": "application/json", "x-custom": "yes"}, json.dumps(payload).encode()

    def boom(req: Request) -> Response:
        raise RuntimeError("handler exploded")

    def chunks(req: Request) -> Response:
        return 200, [("content-type", "text/plain")], (f"chunk {i}\n".encode() for i in range(1000))

    def empty_iter(req: Request) -> Response:
        return 200, [], iter([])

    def root(req: Request) -> Response:
        return 200, [], b"overridden"

    def bad_header(req: Request) -> Response:
        return 200, [(":bogus", "x")], b"h2 refuses to send custom pseudo-headers"

    def stripped_header(req: Request) -> Response:
        return 200, [("connection", "close"), ("x-kept", "yes")], b"h2 drops connection headers"

    def fails_at_once(req: Request) -> Response:
        def gen() -> Iterator[bytes]:
            raise ValueError("no body today")
            yield b""

        return 200, [], gen()

    def fails_later(req: Request) -> Response:
        def gen() -> Iterator[bytes]:
            yield b"x" * 100_000
            raise ValueError("ran dry")

        return 200, [], gen()

    def text(req: Request) -> Response:
        return 200, [], "caf\u00e9"  # type: ignore[return-value]

    return {
        "/info": info,
        "/boom": boom,
        "/chunks": chunks,
        "/empty": empty_iter,
        "/override": root,
        "/bad-header": bad_header,
        "/stripped-header": stripped_header,
        "/fails-at-once": fails_at_once,
        "/fails-later": fails_later,
        "/text": text,
    }


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer(routes=_custom_routes()) as srv:  # type: ignore[arg-type]
        yield srv


@pytest.fixture(scope="module")
def plain_server() -> Iterator[TestServer]:
    with TestServer(tls=False) as srv:
        yield srv


def curl(srv: TestServer, path: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    assert CURL is not None
    cmd = [CURL, "-sS", "--max-time", "10"]
    if "-I" not in args:  # -I already prints the headers
        cmd += ["-D", "-"]
    if srv.tls:
        cmd += ["--http2", "--cacert", srv.ca_file, "--resolve", f"localhost:{srv.port}:127.0.0.1"]
    else:
        cmd += ["--http2-prior-knowledge"]
    cmd += [*args, f"{srv.url}{path.lstrip('/')}"]
    return subprocess.run(cmd, capture_output=True, timeout=20, check=True)


def split_response(out: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/2 "), lines[0]
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


# -- basics -------------------------------------------------------------------


def test_attributes(server: TestServer) -> None:
    assert server.host == "127.0.0.1"
    assert server.port > 0
    assert server.url == f"https://localhost:{server.port}/"
    assert server.ca_file == CA_FILE and os.path.exists(CA_FILE)
    assert "running" in repr(server)
    with pytest.raises(RuntimeError):
        server.start()


def test_not_collected_by_pytest() -> None:
    assert TestServer.__test__ is False  # type: ignore[attr-defined]


def test_start_stop_explicitly_and_stop_is_idempotent() -> None:
    srv = TestServer(tls=False)
    srv.stop()  # never started: no-op
    assert srv.start() is srv
    assert srv.url == f"http://localhost:{srv.port}/"
    with RawClient(srv.port, tls=False) as client:
        assert client.get("/").status == 200
    srv.stop()
    srv.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


# -- curl ---------------------------------------------------------------------


@needs_curl
def test_curl_greeting(server: TestServer) -> None:
    status, headers, body = split_response(curl(server, "/").stdout)
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    assert int(headers["content-length"]) == len(body)
    assert body.startswith(b"Hello from hyper.testing!") and body.count(b"\n") >= 3


@needs_curl
@pytest.mark.parametrize("n", [0, 1, 16384, 16385, 300_000])
def test_curl_bytes(server: TestServer, n: int) -> None:
    status, headers, body = split_response(curl(server, f"/bytes/{n}").stdout)
    assert status == 200
    assert headers["content-type"] == "application/octet-stream"
    assert int(headers["content-length"]) == n
    assert body == expected_bytes(n)


@needs_curl
def test_curl_echo(server: TestServer, tmp_path: Path) -> None:
    payload = os.urandom(200_000)
    (tmp_path / "up.bin").write_bytes(payload)
    for method in ("POST", "PUT"):
        out = curl(server, "/echo", "-X", method, "--data-binary", f"@{tmp_path / 'up.bin'}").stdout
        status, headers, body = split_response(out)
        assert status == 200
        assert headers["content-type"] == "application/octet-stream"
        assert body == payload


@needs_curl
def test_curl_gzip(server: TestServer) -> None:
    status, headers, body = split_response(curl(server, "/gzip").stdout)
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert gzip.decompress(body).startswith(b"Hello from hyper.testing!")
    _, _, decoded = split_response(curl(server, "/gzip", "--compressed").stdout)
    assert decoded == gzip.decompress(body)


@needs_curl
@pytest.mark.parametrize("code", [200, 204, 301, 418, 503])
def test_curl_status(server: TestServer, code: int) -> None:
    status, _, body = split_response(curl(server, f"/status/{code}").stdout)
    assert status == code and body == b""


@needs_curl
def test_curl_headers_json(server: TestServer) -> None:
    out = curl(server, "/headers", "-H", "X-Test: one", "-H", "Accept: text/x-test").stdout
    status, headers, body = split_response(out)
    assert status == 200 and headers["content-type"] == "application/json"
    seen = json.loads(body)
    assert seen[":method"] == "GET"
    assert seen[":path"] == "/headers"
    assert seen[":scheme"] == "https"
    assert seen["x-test"] == "one"
    assert seen["accept"] == "text/x-test"
    assert seen["user-agent"].startswith("curl/")


@needs_curl
def test_curl_not_found_and_head(server: TestServer) -> None:
    assert split_response(curl(server, "/nope").stdout)[0] == 404
    status, headers, body = split_response(curl(server, "/bytes/5000", "-I").stdout)
    assert status == 200 and headers["content-length"] == "5000" and body == b""


@needs_curl
def test_curl_prior_knowledge(plain_server: TestServer) -> None:
    status, _, body = split_response(curl(plain_server, "/bytes/70000").stdout)
    assert status == 200 and body == expected_bytes(70000)


@needs_curl
def test_curl_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        srv = TestServer(host="::1").start()
    except OSError:
        pytest.skip("cannot bind ::1")
    with srv:
        assert srv.url == f"https://[::1]:{srv.port}/"
        assert CURL is not None
        out = subprocess.run(
            [CURL, "-sS", "--max-time", "10", "--http2", "--cacert", srv.ca_file, srv.url + "bytes/10"],
            capture_output=True,
            timeout=20,
            check=True,
        ).stdout
        assert out == expected_bytes(10)


# -- nghttp -------------------------------------------------------------------


def nghttp(srv: TestServer, path: str, *args: str) -> bytes:
    assert NGHTTP is not None
    env = dict(os.environ, SSL_CERT_FILE=srv.ca_file)
    proc = subprocess.run(
        [NGHTTP, "-t", "10", *args, f"{srv.url}{path.lstrip('/')}"],
        capture_output=True,
        timeout=20,
        env=env,
        check=True,
    )
    assert b"ERROR" not in proc.stderr, proc.stderr
    return proc.stdout


@needs_nghttp
def test_nghttp_tiny_windows_download(server: TestServer) -> None:
    # 1 KiB stream windows and a 4 KiB connection window: hundreds of
    # WINDOW_UPDATE round trips.
    assert nghttp(server, "/bytes/200000", "-w", "10", "-W", "12") == expected_bytes(200_000)


@needs_nghttp
def test_nghttp_tiny_windows_upload(server: TestServer, tmp_path: Path) -> None:
    payload = os.urandom(500_000)
    (tmp_path / "up.bin").write_bytes(payload)
    assert nghttp(server, "/echo", "-d", str(tmp_path / "up.bin"), "-w", "12", "-W", "14") == payload


@needs_nghttp
def test_nghttp_many_streams(server: TestServer) -> None:
    # -m repeats the request on concurrent streams of one connection; their
    # bodies come out interleaved, so check the statistics and the total.
    out = nghttp(server, "/bytes/50000", "-m", "40")
    assert len(out) == 40 * 50000
    assert sorted(out) == sorted(expected_bytes(50000) * 40)
    stats = nghttp(server, "/bytes/50000", "-m", "40", "-n", "-s").decode()
    assert stats.count(" 200 ") == 40


@needs_nghttp
def test_nghttp_statistics(server: TestServer) -> None:
    stats = nghttp(server, "/status/418", "-n", "-s").decode()
    assert " 418 " in stats


# -- raw h2 client --------------------------------------------------------------


def test_raw_get_routes(server: TestServer) -> None:
    with RawClient(server.port) as client:
        root = client.get("/")
        assert root.status == 200 and root.data.startswith(b"Hello from hyper.testing!")
        assert root.header(b"server") == b"hyper.testing"
        gz = client.get("/gzip")
        assert gz.header(b"content-encoding") == b"gzip"
        assert gzip.decompress(gz.data) == root.data
        hdrs = json.loads(client.get("/headers", headers=[("x-test", "a"), ("x-test", "b")]).data)
        assert hdrs["x-test"] == "a, b" and hdrs[":authority"] == "localhost"
        assert client.get("/status/599").status == 599
        assert client.get("/status/99").status == 400
        assert client.get("/bytes/abc").status == 404
        assert client.get("/bytes/12?x=1").data == expected_bytes(12)
        assert client.get("/").header(b"content-length") == str(len(root.data)).encode()


def test_raw_methods(server: TestServer) -> None:
    with RawClient(server.port) as client:
        (bad,) = client.wait(client.request("POST", "/", body=b"x"))
        assert bad.status == 405 and bad.header(b"allow") == b"GET, HEAD"
        bad = client.get("/echo")
        assert bad.status == 405 and bad.header(b"allow") == b"POST, PUT"
        (created,) = client.wait(client.request("DELETE", "/status/202"))
        assert created.status == 202
        (head,) = client.wait(client.request("HEAD", f"/bytes/{10**30}"))
        assert head.status == 200 and head.data == b""
        assert head.header(b"content-length") == str(MAX_BYTES).encode()


def test_raw_many_concurrent_streams(server: TestServer) -> None:
    sizes = [(i * 7919) % 40_000 for i in range(90)]
    with RawClient(server.port) as client:
        sids = [client.request("GET", f"/bytes/{n}") for n in sizes]
        for n, stream in zip(sizes, client.wait(*sids), strict=True):
            assert stream.status == 200 and stream.data == expected_bytes(n)


def test_raw_stream_flow_control(server: TestServer) -> None:
    # A 1000-byte stream window, and nothing handed back until we say so.
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000}
    with RawClient(server.port, settings=settings, auto_ack=False) as client:
        sid = client.request("GET", "/bytes/50000")
        stream = client.streams[sid]
        client.read_until(lambda: len(stream.data) >= 1000)
        client.drain_quiet()
        assert len(stream.data) == 1000 and not stream.ended
        client.conn.increment_flow_control_window(3000, stream_id=sid)
        client.flush()
        client.read_until(lambda: len(stream.data) >= 4000)
        client.drain_quiet()
        assert len(stream.data) == 4000 and not stream.ended
        client.conn.increment_flow_control_window(46000, stream_id=sid)
        client.flush()
        client.wait(sid)
        assert stream.data == expected_bytes(50000)


def test_raw_connection_flow_control(server: TestServer) -> None:
    # Big stream windows, but the 65535-byte connection window is never
    # replenished: the server must stop at exactly 65535 bytes over 3 streams.
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20}
    with RawClient(server.port, settings=settings, auto_ack=False) as client:
        sids = [client.request("GET", "/bytes/100000") for _ in range(3)]

        def total() -> int:
            return sum(len(client.streams[s].data) for s in sids)

        client.read_until(lambda: total() >= 65535)
        client.drain_quiet()
        assert total() == 65535
        client.auto_ack = True
        client.conn.increment_flow_control_window(300_000)
        client.flush()
        for stream in client.wait(*sids):
            assert stream.data == expected_bytes(100_000)


def test_raw_big_upload_is_acknowledged(server: TestServer) -> None:
    payload = os.urandom(2 * 1024 * 1024)  # 32 times the default windows
    with RawClient(server.port) as client:
        (stream,) = client.wait(client.request("POST", "/echo", body=payload))
        assert stream.status == 200 and bytes(stream.data) == payload


def test_raw_rst_stream_from_client(server: TestServer) -> None:
    with RawClient(server.port) as client:
        big = client.request("GET", f"/bytes/{MAX_BYTES}")
        while len(client.streams[big].data) < 200_000:
            client.read()
        client.conn.reset_stream(big, h2.errors.ErrorCodes.CANCEL)
        client.flush()
        # The connection carries on; the cancelled stream stops.
        assert client.get("/bytes/1000").data == expected_bytes(1000)
        received = len(client.streams[big].data)
        client.drain_quiet(0.2)
        assert len(client.streams[big].data) == received
        assert not client.streams[big].ended


def test_raw_reset_before_request_body_ends(server: TestServer) -> None:
    with RawClient(server.port) as client:
        sid = client.conn.get_next_available_stream_id()
        client.streams[sid] = Stream()
        client.conn.send_headers(
            sid, [(":method", "POST"), (":path", "/echo"), (":scheme", "https"), (":authority", "x")]
        )
        client.conn.send_data(sid, b"partial")
        client.conn.reset_stream(sid)
        client.flush()
        assert client.get("/").status == 200
        assert client.streams[sid].headers == []


def test_raw_goaway_from_client_closes(server: TestServer) -> None:
    with RawClient(server.port) as client:
        assert client.get("/").status == 200
        client.conn.close_connection()
        client.flush()
        client.read_until_eof()


def test_raw_eof_from_client_ends_connection_thread() -> None:
    with TestServer() as srv:
        with RawClient(srv.port) as client:
            assert client.get("/").status == 200
            assert srv.active_connections == 1
        wait_for(lambda: srv.active_connections == 0)
        assert srv.alpn_protocols == ["h2"]


def test_raw_protocol_error_gets_goaway() -> None:
    with TestServer(tls=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        # Server SETTINGS, then GOAWAY (type 0x7), last stream 0, PROTOCOL_ERROR.
        assert data.endswith(b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + bytes(4) + b"\x00\x00\x00\x01")
        wait_for(lambda: srv.active_connections == 0)


def test_raw_bad_frame_gets_goaway() -> None:
    with TestServer(tls=False) as srv, RawClient(srv.port, tls=False) as client:
        assert client.get("/").status == 200
        client.sock.sendall(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")  # DATA on stream 0
        client.read_until_eof()
        assert client.terminated is not None
        assert client.terminated.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
        wait_for(lambda: srv.active_connections == 0)


def test_raw_plaintext(plain_server: TestServer) -> None:
    with RawClient(plain_server.port, tls=False) as client:
        (echo,) = client.wait(client.request("PUT", "/echo", body=b"hello"))
        assert echo.data == b"hello" and echo.header(b"content-length") == b"5"


def test_request_body_limit() -> None:
    with TestServer(max_request_body=10_000) as srv, RawClient(srv.port) as client:
        sid = client.request("POST", "/echo", body=os.urandom(100_000))
        (stream,) = client.wait(sid)
        assert stream.status == 413
        client.read_until(lambda: stream.reset is not None)
        assert stream.reset == h2.errors.ErrorCodes.NO_ERROR
        assert client.get("/").status == 200  # connection still fine


# -- custom routes -------------------------------------------------------------


def test_custom_route(server: TestServer) -> None:
    with RawClient(server.port) as client:
        sid = client.request("POST", "/info?a=1&b=2", headers=[("x-test", "yes")], body=b"data")
        (stream,) = client.wait(sid)
        assert stream.status == 201
        assert stream.header(b"x-custom") == b"yes"
        assert json.loads(stream.data) == {
            "method": "POST",
            "path": "/info",
            "query": "a=1&b=2",
            "x-test": "yes",
            "body": "data",
            "stream_id": sid,
        }


def test_custom_route_errors_and_streaming(server: TestServer, caplog: pytest.LogCaptureFixture) -> None:
    with RawClient(server.port) as client:
        boom = client.get("/boom")
        assert boom.status == 500 and b"handler exploded" in boom.data
        assert "route handler for GET /boom failed" in caplog.text
        streamed = client.get("/chunks")
        assert streamed.data == b"".join(f"chunk {i}\n".encode() for i in range(1000))
        assert streamed.header(b"content-length") is None
        empty = client.get("/empty")
        assert empty.status == 200 and empty.data == b"" and empty.ended
        assert client.get("/override").data == b"overridden"


def test_custom_route_failures(server: TestServer, caplog: pytest.LogCaptureFixture) -> None:
    with RawClient(server.port) as client:
        bad = client.get("/bad-header")
        assert bad.reset == h2.errors.ErrorCodes.INTERNAL_ERROR and bad.headers == []
        early = client.get("/fails-at-once")
        assert early.status == 500 and b"no body today" in early.data
        late = client.get("/fails-later")
        assert late.status == 200 and late.reset == h2.errors.ErrorCodes.INTERNAL_ERROR
        assert late.data == b"x" * 100_000 and not late.ended
        stripped = client.get("/stripped-header")
        assert stripped.header(b"connection") is None and stripped.header(b"x-kept") == b"yes"
        text = client.get("/text")
        assert text.data == "caf\u00e9".encode() and text.header(b"content-length") == b"5"
        assert client.get("/").status == 200  # the connection survived all that
    assert "cannot send response headers" in caplog.text
    assert "response body iterator failed" in caplog.text


def test_custom_route_overrides_builtin() -> None:
    def mine(req: Request) -> Response:
        return 200, [("Content-Type", "text/x-mine")], b"mine"

    with TestServer(tls=False, routes={"/": mine}) as srv, RawClient(srv.port, tls=False) as client:
        stream = client.get("/")
        assert stream.data == b"mine"
        assert stream.header(b"content-type") == b"text/x-mine"  # lower-cased name


# -- routes run on their own threads ---------------------------------------------------

#: Bound on a route waiting for the test (the test sets the event long before).
GATE_WAIT = 30.0


def _wait(event: threading.Event) -> None:
    if not event.wait(GATE_WAIT):
        raise RuntimeError("the test never set the event")


def test_chunk_is_sent_as_soon_as_it_is_yielded() -> None:
    release = threading.Event()

    def trickle(req: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield b"first"
            _wait(release)  # only the test, after it got "first", lets this go on
            yield b"second"

        return 200, [("content-type", "text/plain")], body()

    with TestServer(routes={"/trickle": trickle}) as srv, RawClient(srv.port) as client:
        try:
            sid = client.request("GET", "/trickle")
            stream = client.streams[sid]
            client.read_until(lambda: bytes(stream.data) == b"first")
            assert stream.status == 200 and not stream.ended
            # Meanwhile another stream on the same connection is answered in full.
            assert client.get("/bytes/100").data == expected_bytes(100)
            release.set()
            client.wait(sid)
            assert bytes(stream.data) == b"firstsecond" and stream.reset is None
        finally:
            release.set()


def test_blocked_handler_does_not_block_other_streams() -> None:
    release = threading.Event()
    entered = threading.Event()

    def blocked(req: Request) -> Response:
        entered.set()
        _wait(release)
        return 200, [], b"finally"

    with TestServer(routes={"/blocked": blocked}) as srv, RawClient(srv.port) as client:
        try:
            slow = client.request("GET", "/blocked")
            assert entered.wait(GATE_WAIT)
            # The handler is now blocked; the connection serves other streams.
            fast = [client.request("GET", f"/bytes/{n}") for n in (10, 70_000, 0)]
            for n, stream in zip((10, 70_000, 0), client.wait(*fast), strict=True):
                assert stream.status == 200 and stream.data == expected_bytes(n)
            assert client.streams[slow].headers == []
            release.set()
            (done,) = client.wait(slow)
            assert done.status == 200 and done.data == b"finally"
        finally:
            release.set()


def test_route_threads_are_bounded() -> None:
    release = threading.Event()
    lock = threading.Lock()
    running = 0
    most = 0
    both_in = threading.Event()

    def counted(req: Request) -> Response:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            if running == 2:
                both_in.set()
        try:
            _wait(release)
        finally:
            with lock:
                running -= 1
        return 200, [], b"ok"

    with TestServer(routes={"/counted": counted}, route_threads=2) as srv, RawClient(srv.port) as client:
        try:
            sids = [client.request("GET", "/counted") for _ in range(6)]
            assert both_in.wait(GATE_WAIT)  # two run at once...
            release.set()
            for stream in client.wait(*sids):
                assert stream.status == 200 and stream.data == b"ok"
        finally:
            release.set()
    assert most == 2  # ...and never more, however many requests wait


def test_route_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="route_threads"):
        TestServer(route_threads=0)


def test_reset_stream_stops_its_producer() -> None:
    closed = threading.Event()

    def endless(req: Request) -> Response:
        def body() -> Iterator[bytes]:
            try:
                while True:
                    yield b"x" * 65536
            finally:
                closed.set()

        return 200, [], body()

    with TestServer(routes={"/endless": endless}) as srv:
        # The client never hands back window: the producer fills its buffer
        # and waits, until the reset cancels it.
        with RawClient(srv.port, auto_ack=False) as client:
            sid = client.request("GET", "/endless")
            client.read_until(lambda: len(client.streams[sid].data) >= 65535)
            client.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            client.flush()
            assert closed.wait(GATE_WAIT)  # the generator was closed (its finally ran)
            # The connection lives on once the client gives window back.
            client.auto_ack = True
            client.conn.increment_flow_control_window(1 << 20)
            client.flush()
            assert client.get("/").status == 200


def test_stop_ends_producers_of_unread_responses() -> None:
    closed = threading.Event()

    def endless(req: Request) -> Response:
        def body() -> Iterator[bytes]:
            try:
                while True:
                    yield b"y" * 65536
            finally:
                closed.set()

        return 200, [], body()

    before = set(threading.enumerate())
    srv = TestServer(routes={"/endless": endless}).start()
    with RawClient(srv.port, auto_ack=False) as client:
        sid = client.request("GET", "/endless")
        client.read_until(lambda: len(client.streams[sid].data) >= 65535)
        srv.stop()
    assert closed.wait(GATE_WAIT)
    wait_for(lambda: set(threading.enumerate()) <= before)


# -- TLS --------------------------------------------------------------------------


def test_tls_verifies_every_identity(server: TestServer) -> None:
    ctx = ssl.create_default_context(cafile=CA_FILE)
    ctx.set_alpn_protocols(["h2"])
    for name in ("localhost", "127.0.0.1"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as tls:
                assert tls.selected_alpn_protocol() == "h2"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="example.com")


def test_tls_without_h2_alpn_is_refused() -> None:
    with TestServer() as srv:
        ctx = ssl.create_default_context(cafile=CA_FILE)
        ctx.set_alpn_protocols(["http/1.1"])
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.selected_alpn_protocol() is None
                try:
                    assert tls.recv(100) == b""
                except (ConnectionResetError, ssl.SSLEOFError):
                    pass
        wait_for(lambda: srv.alpn_protocols == [None])


def test_bundled_certificates() -> None:
    x509 = pytest.importorskip("cryptography.x509")
    ca = x509.load_pem_x509_certificate(Path(CA_FILE).read_bytes())
    leaf_pems = Path(CERT_FILE).read_bytes()
    leaf = x509.load_pem_x509_certificates(leaf_pems)[0]
    for cert in (ca, leaf):
        assert cert.not_valid_after_utc.year >= 2999
        assert cert.not_valid_before_utc.year <= 2000
    assert leaf.issuer == ca.subject
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sorted(str(ip) for ip in san.get_values_for_type(x509.IPAddress)) == ["127.0.0.1", "::1"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT_FILE, KEY_FILE)  # key matches the leaf
    assert "private key is public" in ca.subject.rfc4514_string()


# -- stop(), threads and sockets ----------------------------------------------------


def test_stop_sends_goaway_and_closes_idle_connections() -> None:
    srv = TestServer().start()
    clients = [RawClient(srv.port) for _ in range(3)]
    try:
        for client in clients:
            assert client.get("/").status == 200
        assert srv.active_connections == 3
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 2  # no forced shutdown needed
        assert srv.active_connections == 0
        for client in clients:
            client.read_until_eof()
            assert client.terminated is not None
            assert client.terminated.error_code == h2.errors.ErrorCodes.NO_ERROR
    finally:
        for client in clients:
            client.close()


def test_stop_with_stuck_clients_is_bounded() -> None:
    srv = TestServer().start()
    # One client stuck before its TLS handshake...
    handshaking = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    # ...and one that asks for a huge body with huge windows and never reads,
    # so the server ends up blocked in sendall().
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1}
    reader = RawClient(srv.port, settings=settings)
    try:
        reader.conn.increment_flow_control_window(2**31 - 1 - 65535)
        reader.request("GET", f"/bytes/{MAX_BYTES}")
        time.sleep(0.3)
        wait_for(lambda: srv.active_connections == 2)
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 3
        assert srv.active_connections == 0
    finally:
        handshaking.close()
        reader.close()


def test_no_thread_or_socket_leaks() -> None:
    import gc
    import threading
    import warnings

    before = set(threading.enumerate())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for tls in (True, False):
            with TestServer(tls=tls) as srv, RawClient(srv.port, tls=tls) as client:
                assert client.get("/bytes/100").status == 200
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    wait_for(lambda: set(threading.enumerate()) <= before)


# -- python -m hyper.testing ---------------------------------------------------------


def _module_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_main_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hyper.testing", "--help"],
        capture_output=True,
        timeout=20,
        env=_module_env(),
        check=True,
    )
    assert b"--serve" in proc.stdout and b"--port" in proc.stdout


@needs_curl
def test_main_serve() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "hyper.testing", "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_module_env(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        assert first.startswith("Serving HTTP/2 on https://localhost:"), first
        url = first.split()[-1]
        assert proc.stdout.readline().decode().strip() == f"CA certificate: {CA_FILE}"
        port = url.rstrip("/").rsplit(":", 1)[1]
        assert CURL is not None
        out = subprocess.run(
            [
                CURL,
                "-sS",
                "--max-time",
                "10",
                "--http2",
                "--cacert",
                CA_FILE,
                "--resolve",
                f"localhost:{port}:127.0.0.1",
                url,
            ],
            capture_output=True,
            timeout=20,
            check=True,
        ).stdout
        assert out.startswith(b"Hello from hyper.testing!")
        # SIGINT would do too, but a shell running pytest in the background
        # makes its children ignore SIGINT.
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr
        assert b"Stopping." in stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

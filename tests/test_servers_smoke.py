"""Smoke tests for the real-server fixtures.

These prove that every server fixture starts, speaks HTTP/2 with the test CA
and behaves as documented, using independent clients (``curl``, ``nghttp``)
rather than hyper itself: when a hyper test against these servers fails, the
fixtures are known to be sound.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import brotli
import pytest
import trustme
from cryptography import x509

from tests import asgi_app, servers
from tests.servers import (
    DOCROOT_FILES,
    NGINX_UPLOAD_PATH,
    LaunchSpec,
    Probe,
    ServerInfo,
    ServerProcess,
    ServerStartError,
)

# Generous per-command ceiling; a healthy run finishes far below it.
CLIENT_TIMEOUT = 60


# ---------------------------------------------------------------------------
# Client helpers
# ---------------------------------------------------------------------------


@dataclass
class CurlResult:
    """What one ``curl`` invocation returned."""

    returncode: int
    stderr: str
    http_version: str
    status: int
    #: Header names are lower-cased; the final response's block only.
    headers: list[tuple[str, str]]
    body_path: Path

    @property
    def body(self) -> bytes:
        """Response body bytes."""
        return self.body_path.read_bytes()

    def header(self, name: str) -> str | None:
        """The single value of header *name*, ``None`` if absent."""
        values = self.header_values(name)
        assert len(values) <= 1, f"{name} appears {len(values)} times"
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """All values of header *name*, in order."""
        return [value for key, value in self.headers if key == name.lower()]


def _parse_header_dump(text: str) -> list[tuple[str, str]]:
    # -D may hold several blocks (e.g. after 100-continue); use the last one.
    blocks = [block for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]
    if not blocks:
        return []
    headers = []
    for line in blocks[-1].splitlines()[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return headers


def curl(
    tmp_path: Path,
    info: ServerInfo,
    path: str,
    *args: str,
    host: str | None = None,
    check: bool = True,
) -> CurlResult:
    """Request *path* from *info* with ``curl`` over HTTP/2.

    TLS servers are verified against the test CA; *host* replaces the URL's
    host while still connecting to ``info.host`` (``--resolve``).
    """
    binary = shutil.which("curl")
    assert binary, "curl is required by the smoke tests"
    run_id = f"{time.monotonic_ns()}"
    header_file = tmp_path / f"curl-{run_id}.headers"
    body_file = tmp_path / f"curl-{run_id}.body"
    url_host = host or info.host
    cmd = [
        binary,
        "--silent",
        "--show-error",
        "--max-time",
        str(CLIENT_TIMEOUT),
        "--dump-header",
        str(header_file),
        "--output",
        str(body_file),
        "--write-out",
        "%{http_version} %{response_code}",
    ]
    if info.secure:
        assert info.ca_file
        cmd += ["--http2", "--cacert", info.ca_file]
    else:
        cmd += ["--http2-prior-knowledge"]
    if host is not None:
        cmd += ["--resolve", f"{host}:{info.port}:{info.host}"]
    cmd += [*args, f"{info.scheme}://{url_host}:{info.port}{path}"]
    proc = subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT + 10, check=False)
    version, _, status = proc.stdout.decode().partition(" ")
    headers = _parse_header_dump(header_file.read_text("latin-1")) if header_file.exists() else []
    if not body_file.exists():
        body_file.write_bytes(b"")
    result = CurlResult(
        returncode=proc.returncode,
        stderr=proc.stderr.decode(errors="replace"),
        http_version=version,
        status=int(status or 0),
        headers=headers,
        body_path=body_file,
    )
    if check:
        assert result.returncode == 0, f"curl failed: {result.stderr}"
        assert result.http_version == "2", "curl did not negotiate HTTP/2"
    return result


def nghttp(info: ServerInfo, path: str, *args: str) -> str:
    """Run ``nghttp -v`` against *info* and return its frame log.

    nghttp 1.52 has no --cacert; it only warns on verification failure and
    takes its trust store from OpenSSL, so SSL_CERT_FILE points it at the test
    CA.  It also does not match IP-address SANs, so TLS URLs use "localhost".
    """
    binary = shutil.which("nghttp")
    assert binary, "nghttp is required by the smoke tests"
    env = dict(os.environ)
    host = info.host
    if info.secure:
        assert info.ca_file
        env["SSL_CERT_FILE"] = info.ca_file
        host = "localhost"
    url = f"{info.scheme}://{host}:{info.port}{path}"
    cmd = [binary, "--verbose", f"--timeout={CLIENT_TIMEOUT}", *args, url]
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=CLIENT_TIMEOUT + 10, check=False)
    output = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, output[-4000:]
    assert "Certificate verification failed" not in output, output[:2000]
    return output


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file, read in chunks (big.bin is 64 MiB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_upload(path: Path, size: int) -> Path:
    """Write *size* bytes of non-repeating test data to *path*."""
    with path.open("wb") as out:
        for piece in servers.iter_big_bin():
            remaining = size - out.tell()
            if remaining <= 0:
                break
            out.write(piece[:remaining])
    return path


# ---------------------------------------------------------------------------
# Certificates, data types and process handling
# ---------------------------------------------------------------------------


def _sans(cert: trustme.LeafCert) -> list[str]:
    parsed = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in names]


def test_certificates(
    test_ca: trustme.CA,
    ca_file: str,
    server_cert: trustme.LeafCert,
    wrong_host_cert: trustme.LeafCert,
) -> None:
    assert Path(ca_file).read_bytes() == test_ca.cert_pem.bytes()
    sans = _sans(server_cert)
    assert "localhost" in sans
    assert {ipaddress.ip_address(s) for s in sans if s != "localhost"} == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert _sans(wrong_host_cert) == ["wrong.invalid"]


def test_server_info() -> None:
    info = ServerInfo("127.0.0.1", 8443, True, "/ca.pem", None, "x")
    assert info.authority == "127.0.0.1:8443"
    assert info.url("/a") == "https://127.0.0.1:8443/a"
    assert ServerInfo("127.0.0.1", 80, False, None, None, "y").url("b") == "http://127.0.0.1:80/b"
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.port = 1  # type: ignore[misc]


def test_missing_binary_fails_loudly() -> None:
    with pytest.raises(ServerStartError, match="not found"):
        servers.find_binary("hyper-no-such-server-binary")


def test_startup_failure_includes_logs(tmp_path: Path) -> None:
    spec = LaunchSpec(
        name="doomed",
        argv=[sys.executable, "-c", "print('doomed server says hi'); raise SystemExit(3)"],
        run_dir=tmp_path,
        probes=[(servers.pick_free_ports(1)[0], Probe.TCP)],
    )
    with pytest.raises(ServerStartError) as excinfo:
        ServerProcess(spec).start()
    message = str(excinfo.value)
    assert "exited with status 3" in message
    assert "doomed server says hi" in message


_LISTENER = """
import socket, sys, time
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
print("listening", flush=True)
time.sleep(120)
"""


def test_retry_when_port_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_pick = servers.pick_free_ports
        picks = iter([[taken]])
        monkeypatch.setattr(servers, "pick_free_ports", lambda n: next(picks, None) or real_pick(n))

        def make_spec(run_dir: Path, ports: list[int]) -> LaunchSpec:
            run_dir.mkdir(parents=True)
            return LaunchSpec(
                name="listener",
                argv=[sys.executable, "-c", _LISTENER, str(ports[0])],
                run_dir=run_dir,
                probes=[(ports[0], Probe.TCP)],
            )

        server, ports = servers.start_with_retry(tmp_path, 1, make_spec)
        try:
            assert ports[0] != taken
            assert (tmp_path / "attempt1").is_dir()
            assert "address already in use" in (
                (tmp_path / "attempt1" / "listener.out.log").read_text().lower()
            )
        finally:
            server.stop()


def test_docroot_files(docroot: str) -> None:
    root = Path(docroot)
    for name in ("hello.txt", "1k.bin", "index.html"):
        assert (root / name).read_bytes() == servers.docroot_content(name)
    assert len(servers.HELLO_TEXT) > 1024
    assert (root / "1k.bin").stat().st_size == 1024
    assert (root / "big.bin").stat().st_size == 64 * 1024 * 1024
    with open(root / "big.bin", "rb") as fh:
        blocks = [fh.read(1 << 20) for _ in range(3)]
    assert len(set(blocks)) == 3, "big.bin blocks must differ"
    assert set(DOCROOT_FILES) <= {p.name for p in root.iterdir()}


# ---------------------------------------------------------------------------
# nginx
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hello.txt", "1k.bin", "index.html"])
def test_nginx_serves_docroot(nginx_server: ServerInfo, tmp_path: Path, name: str) -> None:
    assert nginx_server.docroot
    result = curl(tmp_path, nginx_server, f"/{name}")
    assert result.status == 200
    assert result.header("content-encoding") is None  # no accept-encoding sent
    assert result.body == (Path(nginx_server.docroot) / name).read_bytes()


def test_nginx_index_and_localhost_name(nginx_server: ServerInfo, tmp_path: Path) -> None:
    result = curl(tmp_path, nginx_server, "/", host="localhost")
    assert result.status == 200
    assert result.body == servers.INDEX_HTML


def test_nginx_gzip_only_when_asked(nginx_server: ServerInfo, tmp_path: Path) -> None:
    text = curl(tmp_path, nginx_server, "/hello.txt", "-H", "accept-encoding: gzip")
    assert text.header("content-encoding") == "gzip"
    assert text.header("content-length") is None  # gzip streams the body
    assert gzip.decompress(text.body) == servers.HELLO_TEXT
    binary = curl(tmp_path, nginx_server, "/1k.bin", "-H", "accept-encoding: gzip")
    assert binary.header("content-encoding") is None  # not in gzip_types
    assert binary.body == servers.one_k_bytes()


def test_nginx_big_file(nginx_server: ServerInfo, tmp_path: Path) -> None:
    assert nginx_server.docroot
    result = curl(tmp_path, nginx_server, "/big.bin")
    assert result.header("content-length") == str(64 * 1024 * 1024)
    assert sha256_file(result.body_path) == sha256_file(Path(nginx_server.docroot) / "big.bin")


def test_nginx_upload_10mib(nginx_server: ServerInfo, tmp_path: Path) -> None:
    size = 10 * 1024 * 1024
    upload = write_upload(tmp_path / "upload.bin", size)
    result = curl(tmp_path, nginx_server, NGINX_UPLOAD_PATH, "--data-binary", f"@{upload}")
    assert result.status == 200
    assert result.header("x-upload-length") == str(size)
    assert result.body == f"upload received: {size} bytes\n".encode()

    # curl does not show a RST_STREAM sent after a complete response; nghttp
    # prints every frame.
    frames = nghttp(nginx_server, NGINX_UPLOAD_PATH, f"--data={upload}")
    assert ":status: 200" in frames
    assert "RST_STREAM" not in frames
    assert f"x-upload-length: {size}" in frames


def test_nginx_upload_without_content_length(nginx_server: ServerInfo, tmp_path: Path) -> None:
    size = 300_000
    upload = write_upload(tmp_path / "upload.bin", size)
    frames = nghttp(nginx_server, NGINX_UPLOAD_PATH, f"--data={upload}", "--no-content-length")
    assert "content-length: 300000" not in frames.split("recv")[0]  # request side
    assert ":status: 200" in frames
    assert "RST_STREAM" not in frames
    assert f"x-upload-length: {size}" in frames


def test_nginx_h2c(nginx_h2c_server: ServerInfo, tmp_path: Path) -> None:
    assert not nginx_h2c_server.secure and nginx_h2c_server.ca_file is None
    result = curl(tmp_path, nginx_h2c_server, "/hello.txt")
    assert result.status == 200
    assert result.body == servers.HELLO_TEXT


def test_nginx_wrong_host(nginx_wrong_host_server: ServerInfo, tmp_path: Path) -> None:
    for host in (None, "localhost"):
        result = curl(tmp_path, nginx_wrong_host_server, "/hello.txt", host=host, check=False)
        assert result.returncode == 60, result.stderr  # CURLE_PEER_FAILED_VERIFICATION
        assert "no alternative certificate subject name matches" in result.stderr
    # The chain itself is fine: only the name is wrong.
    ok = curl(tmp_path, nginx_wrong_host_server, "/hello.txt", host="wrong.invalid")
    assert ok.status == 200


# ---------------------------------------------------------------------------
# nghttpd
# ---------------------------------------------------------------------------


def test_nghttpd_serves_docroot(nghttpd_server: ServerInfo, tmp_path: Path) -> None:
    result = curl(tmp_path, nghttpd_server, "/hello.txt")
    assert result.status == 200
    assert result.body == servers.HELLO_TEXT


def test_nghttpd_echoes_64mib_upload(nghttpd_server: ServerInfo, tmp_path: Path) -> None:
    assert nghttpd_server.docroot
    big = Path(nghttpd_server.docroot) / "big.bin"
    result = curl(tmp_path, nghttpd_server, "/echo", "--data-binary", f"@{big}")
    assert result.status == 200
    assert result.body_path.stat().st_size == big.stat().st_size
    assert sha256_file(result.body_path) == sha256_file(big)


def test_nghttpd_echoes_put(nghttpd_server: ServerInfo, tmp_path: Path) -> None:
    upload = write_upload(tmp_path / "put.bin", 12345)
    result = curl(tmp_path, nghttpd_server, "/anything", "--upload-file", str(upload))
    assert result.status == 200
    assert result.body == upload.read_bytes()


# ---------------------------------------------------------------------------
# hypercorn
# ---------------------------------------------------------------------------


def _after_first_data(frames: str) -> str:
    marker = "recv DATA frame"
    assert marker in frames, frames
    return frames[frames.index(marker) :]


def test_hypercorn_trailers(hypercorn_server: ServerInfo) -> None:
    frames = nghttp(hypercorn_server, "/trailers", "--header=te: trailers")
    assert "trailer body" in frames
    tail = _after_first_data(frames)
    for name, value in asgi_app.TRAILERS:
        assert f"{name.decode()}: {value.decode()}" in tail
    assert "RST_STREAM" not in frames


def test_hypercorn_no_trailers_without_te(hypercorn_server: ServerInfo) -> None:
    frames = nghttp(hypercorn_server, "/trailers")
    assert "trailer body" in frames
    tail = _after_first_data(frames)
    assert "x-checksum: abc123" not in tail
    # The stream still ends cleanly, with an empty END_STREAM DATA frame.
    assert "END_STREAM" in tail
    assert "RST_STREAM" not in frames


def _decode(coding: str, body: bytes) -> bytes:
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "deflate":
        return zlib.decompress(body)
    if coding == "deflate-raw":
        return zlib.decompress(body, -zlib.MAX_WBITS)
    if coding == "br":
        return brotli.decompress(body)
    if coding == "gzip-br":
        return gzip.decompress(brotli.decompress(body))
    return body


@pytest.mark.parametrize("coding", sorted(asgi_app.CODINGS))
def test_hypercorn_encoded(hypercorn_server: ServerInfo, tmp_path: Path, coding: str) -> None:
    result = curl(tmp_path, hypercorn_server, f"/encoded/{coding}")
    assert result.status == 200
    assert result.header("content-encoding") == asgi_app.CODINGS[coding]
    body = result.body
    assert result.header("content-length") == str(len(body))
    assert _decode(coding, body) == asgi_app.ENCODED_PAYLOAD


def test_hypercorn_echo(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    upload = write_upload(tmp_path / "echo.bin", 200_000)
    result = curl(tmp_path, hypercorn_server, "/echo", "--data-binary", f"@{upload}")
    assert result.status == 200
    assert result.body == upload.read_bytes()
    assert result.header("x-request-method") == "POST"
    # host (from :authority), user-agent, accept, content-length, content-type
    assert result.header("x-request-header-count") == "5"


def test_hypercorn_headers_echo(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    result = curl(tmp_path, hypercorn_server, "/headers-echo?x=1", "-H", "x-custom: yes")
    document = json.loads(result.body)
    assert document["method"] == "GET"
    assert document["query_string"] == "x=1"
    assert document["http_version"] == "2"
    assert ["x-custom", "yes"] in document["headers"]
    assert document["headers"][0] == ["host", hypercorn_server.authority]


def test_hypercorn_multi_headers(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    result = curl(tmp_path, hypercorn_server, "/multi-headers")
    assert result.header_values("set-cookie") == ["a=1; Path=/", "b=2, with comma; Path=/"]
    assert result.header("x-list") == "one, two"


@pytest.mark.parametrize(("status", "length"), [(200, "0"), (204, None), (304, None), (418, "0")])
def test_hypercorn_status(
    hypercorn_server: ServerInfo, tmp_path: Path, status: int, length: str | None
) -> None:
    result = curl(tmp_path, hypercorn_server, f"/status/{status}")
    assert result.status == status
    assert result.header("content-length") == length
    assert result.body == b""


def test_hypercorn_bytes(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    count = 300_001
    result = curl(tmp_path, hypercorn_server, f"/bytes/{count}")
    assert result.header("content-length") == str(count)
    assert result.body == asgi_app.deterministic_bytes(count)


def test_hypercorn_slow_body(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    started = time.monotonic()
    result = curl(tmp_path, hypercorn_server, "/slow-body")
    elapsed = time.monotonic() - started
    assert result.body == b"".join(asgi_app.SLOW_BODY_CHUNKS)
    # Nine pauses between ten chunks; sleeps never end early.
    assert elapsed >= 9 * asgi_app.SLOW_BODY_DELAY


def test_hypercorn_not_found(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    assert curl(tmp_path, hypercorn_server, "/nope").status == 404

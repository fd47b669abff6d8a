"""HTTPie through hyper's transport plugin (hyper.httpie_plugin).

Every test runs the real ``http`` command in a subprocess against local
servers over TLS, with the test CA passed as HTTPie's own ``--verify``.

Which transport plugin HTTPie uses must not depend on what else is
installed (httpie-http2 also claims ``https://``): tests.httpie_env runs
``http`` with hyper's plugin, as this tree's ``setup.py`` declares it, as the
only transport plugin, and ``test_only_hypers_plugin_is_loaded`` asserts that.

The status line (``HTTP/2.0 200 OK``) comes from
``response.raw._original_response.version``, which hyper.contrib sets.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from hyper.testing import CA_FILE, Request, Response, TestServer, expected_bytes
from tests.httpie_env import ROOT, RUN_TIMEOUT, HTTPie, isolated_httpie
from tests.servers import ServerInfo

PLUGIN_CLASS = "hyper.httpie_plugin.HyperTransportPlugin"
#: Bound on a route waiting for the test to let it go on.
ROUTE_WAIT = 30.0


@pytest.fixture(scope="module")
def httpie(tmp_path_factory: pytest.TempPathFactory) -> HTTPie:
    return isolated_httpie(tmp_path_factory.mktemp("httpie"), keep="hyper")


def _text(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stdout.decode("utf-8", "replace")


def _status_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    assert proc.returncode == 0, proc.stderr.decode()
    return _text(proc).split("\r\n", 1)[0]


# -- the controlled environment ---------------------------------------------------


def test_only_hypers_plugin_is_loaded(httpie: HTTPie) -> None:
    # What the `http` command itself lists...
    assert httpie.debug_adapters() == [PLUGIN_CLASS]
    # ...agrees with HTTPie's plugin manager, and hyper is this checkout's.
    seen = httpie.probe()
    assert seen["transports"] == [PLUGIN_CLASS]
    assert Path(str(seen["hyper_file"])).resolve() == ROOT / "hyper" / "__init__.py"


def test_plugin_module_needs_httpie() -> None:
    # Without HTTPie the import fails with one clear message, not a bare ModuleNotFoundError.
    code = (
        "import sys; sys.modules['httpie'] = None\n"
        "try:\n    import hyper.httpie_plugin\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=RUN_TIMEOUT)
    assert proc.stdout.decode().strip() == "hyper.httpie_plugin needs HTTPie: pip install hyper[httpie]"


# -- GET, the negotiated version and --verify -------------------------------------


def test_get_over_http2(httpie: HTTPie, nghttpd_server: ServerInfo) -> None:
    assert nghttpd_server.ca_file is not None and nghttpd_server.docroot is not None
    proc = httpie.run("--print=hb", f"--verify={nghttpd_server.ca_file}", nghttpd_server.url("/hello.txt"))
    # Depends on hyper.contrib giving raw._original_response a version (20).
    assert _status_line(proc) == "HTTP/2.0 200 OK"
    head, _, body = proc.stdout.partition(b"\r\n\r\n")
    assert body.rstrip(b"\n") == (Path(nghttpd_server.docroot) / "hello.txt").read_bytes().rstrip(b"\n")


def test_http2_status_line_against_nginx(httpie: HTTPie, nginx_server: ServerInfo) -> None:
    proc = httpie.run("--headers", f"--verify={nginx_server.ca_file}", nginx_server.url("/1k.bin"))
    # Depends on hyper.contrib giving raw._original_response a version (20).
    assert _status_line(proc) == "HTTP/2.0 200 OK"
    assert re.search(r"(?im)^content-length: 1024\r$", _text(proc))


def test_http11_fallback(httpie: HTTPie, nginx_http11_server: ServerInfo) -> None:
    # nginx without http2 on this port: ALPN settles on http/1.1.
    proc = httpie.run(
        "--print=hb", f"--verify={nginx_http11_server.ca_file}", nginx_http11_server.url("/1k.bin")
    )
    assert _status_line(proc) == "HTTP/1.1 200 OK"
    assert proc.stdout.endswith(
        b"\r\n\r\n" + (Path(str(nginx_http11_server.docroot)) / "1k.bin").read_bytes()
    )


def test_request_went_over_http2(httpie: HTTPie, hypercorn_server: ServerInfo) -> None:
    # The server's own view of the protocol, independent of the status line.
    proc = httpie.run("--body", f"--verify={hypercorn_server.ca_file}", hypercorn_server.url("/headers-echo"))
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["http_version"] == "2"


def test_verify_default_rejects_the_test_ca(httpie: HTTPie, nginx_server: ServerInfo) -> None:
    # No --verify: certifi's bundle, which does not hold the test CA.
    proc = httpie.run(nginx_server.url("/hello.txt"))
    assert proc.returncode == 1
    assert re.search(r"SSL|certificate", proc.stderr.decode(), re.I), proc.stderr.decode()


def test_requests_ca_bundle_from_the_environment(httpie: HTTPie, nginx_server: ServerInfo) -> None:
    # --verify=yes (the default) lets requests take REQUESTS_CA_BUNDLE, as
    # with HTTPie's own transport.
    assert nginx_server.ca_file is not None
    proc = httpie.with_env(REQUESTS_CA_BUNDLE=nginx_server.ca_file).run("--body", nginx_server.url("/1k.bin"))
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(proc.stdout) == 1024


def test_verify_no(httpie: HTTPie, nginx_server: ServerInfo) -> None:
    proc = httpie.run("--verify=no", "--body", nginx_server.url("/1k.bin"))
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(proc.stdout) == 1024


def test_verify_wrong_ca_file_is_refused(httpie: HTTPie, nginx_server: ServerInfo) -> None:
    # The bundled hyper.testing CA did not sign nginx's certificate.
    proc = httpie.run(f"--verify={CA_FILE}", nginx_server.url("/hello.txt"))
    assert proc.returncode == 1
    assert re.search(r"SSL|certificate", proc.stderr.decode(), re.I), proc.stderr.decode()


# -- POST --------------------------------------------------------------------------


def test_post_json_items(httpie: HTTPie, hypercorn_server: ServerInfo) -> None:
    verify = f"--verify={hypercorn_server.ca_file}"
    proc = httpie.run("--body", verify, "POST", hypercorn_server.url("/echo"), "name=hyper", "count:=3")
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout) == {"name": "hyper", "count": 3}
    proc = httpie.run("--body", verify, "POST", hypercorn_server.url("/headers-echo"), "name=hyper")
    assert proc.returncode == 0, proc.stderr.decode()
    seen = json.loads(proc.stdout)
    headers = dict(seen["headers"])
    assert seen["method"] == "POST" and seen["http_version"] == "2"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(json.dumps({"name": "hyper"})))


def test_post_file_body_to_nghttpd(httpie: HTTPie, nghttpd_server: ServerInfo, tmp_path: Path) -> None:
    payload = os.urandom(300_000)  # several flow-control windows
    (tmp_path / "payload.bin").write_bytes(payload)
    proc = httpie.run(
        "--body",
        f"--verify={nghttpd_server.ca_file}",
        "POST",
        nghttpd_server.url("/"),
        f"@{tmp_path / 'payload.bin'}",
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == payload


# -- --follow and --proxy -------------------------------------------------------------


def test_follow_redirect_with_cookie(httpie: HTTPie, hypercorn_server: ServerInfo) -> None:
    proc = httpie.run(
        "--follow", "--body", f"--verify={hypercorn_server.ca_file}", hypercorn_server.url("/redirect")
    )
    assert proc.returncode == 0, proc.stderr.decode()
    seen = json.loads(proc.stdout)
    assert seen["path"] == "/headers-echo" and seen["http_version"] == "2"
    # The cookie set by the 302 went along with the followed request.
    assert ["cookie", "redirected=yes"] in seen["headers"]


def test_proxy_reaches_the_adapter(
    httpie: HTTPie, nginx_server: ServerInfo, proxy_server: ServerInfo
) -> None:
    verify = f"--verify={nginx_server.ca_file}"
    proc = httpie.run(
        f"--proxy=https:http://{proxy_server.authority}", "--body", verify, nginx_server.url("/1k.bin")
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(proc.stdout) == 1024
    # A proxy that is not there fails the request: the setting is not ignored.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = unused.getsockname()[1]
    proc = httpie.run(f"--proxy=https:http://127.0.0.1:{dead}", verify, nginx_server.url("/1k.bin"))
    assert proc.returncode == 1
    assert proc.stdout == b""


# -- --download --------------------------------------------------------------------


def test_download(httpie: HTTPie, nginx_server: ServerInfo, tmp_path: Path) -> None:
    assert nginx_server.docroot is not None
    target = tmp_path / "big.bin"
    proc = httpie.run(
        "--download", f"--output={target}", f"--verify={nginx_server.ca_file}", nginx_server.url("/big.bin")
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert "Done." in proc.stderr.decode()
    expected = hashlib.sha256((Path(nginx_server.docroot) / "big.bin").read_bytes()).hexdigest()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == expected


# -- a hyper.testing server for streaming, statuses and timeouts --------------------


@dataclass
class Gate:
    """Lets a route go on once the test says so (never by the clock)."""

    event: threading.Event

    def wait(self) -> None:
        if not self.event.wait(ROUTE_WAIT):
            raise RuntimeError("the test never opened the gate")


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate(threading.Event())
    yield gate
    gate.event.set()  # never leave a route blocked


@pytest.fixture
def test_server(gate: Gate) -> Iterator[TestServer]:
    def lines(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield b"first line\n"
            gate.wait()
            yield b"second line\n"

        return 200, [("content-type", "text/plain")], body()

    def stall(request: Request) -> Response:
        gate.wait()
        return 200, [], b"too late\n"

    with TestServer(routes={"/lines": lines, "/stall": stall}) as srv:
        try:
            yield srv
        finally:
            gate.event.set()  # let blocked routes end before the server stops


def test_stream_shows_each_chunk_as_it_arrives(httpie: HTTPie, test_server: TestServer, gate: Gate) -> None:
    proc = httpie.popen("--stream", "--body", f"--verify={test_server.ca_file}", test_server.url + "lines")
    try:
        assert proc.stdout is not None
        # The route holds back its second line until we have seen the first.
        assert proc.stdout.readline() == b"first line\n"
        gate.event.set()
        rest, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        assert proc.returncode == 0, stderr.decode()
        assert rest == b"second line\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_download_of_a_streamed_body(httpie: HTTPie, test_server: TestServer, tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    size = 3_000_000
    proc = httpie.run(
        "--download",
        f"--output={target}",
        f"--verify={test_server.ca_file}",
        test_server.url + f"bytes/{size}",
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(expected_bytes(size)).digest()


@pytest.mark.parametrize(
    ("status", "exit_code"), [(200, 0), (302, 3), (404, 4), (418, 4), (500, 5), (503, 5)]
)
def test_check_status(httpie: HTTPie, test_server: TestServer, status: int, exit_code: int) -> None:
    url = test_server.url + f"status/{status}"
    proc = httpie.run("--check-status", "--headers", f"--verify={test_server.ca_file}", url)
    assert proc.returncode == exit_code, proc.stderr.decode()
    version, code, _ = _text(proc).split(" ", 2)
    assert code == str(status)
    assert version == "HTTP/2.0"  # depends on hyper.contrib giving raw._original_response a version
    if status >= 300:
        assert f"HTTP {status}" in proc.stderr.decode()  # HTTPie's warning


def test_check_status_against_nginx(httpie: HTTPie, nginx_server: ServerInfo) -> None:
    proc = httpie.run(
        "--check-status", "--headers", f"--verify={nginx_server.ca_file}", nginx_server.url("/missing")
    )
    assert proc.returncode == 4
    assert "404" in proc.stderr.decode()


def test_timeout_reaches_the_adapter(httpie: HTTPie, test_server: TestServer) -> None:
    # The route waits for the gate, which opens only after the test: HTTPie's
    # --timeout must end the wait (exit status 2, as HTTPie documents).
    proc = httpie.run("--timeout=1", f"--verify={test_server.ca_file}", test_server.url + "stall")
    assert proc.returncode == 2, proc.stderr.decode()
    assert "timed out" in proc.stderr.decode().lower()


# -- client certificates -------------------------------------------------------------


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A client certificate and its key, encrypted with a password."""
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    directory = tmp_path_factory.mktemp("client-cert")
    leaf = trustme.CA().issue_cert("client.example")
    cert_file, key_file, password = directory / "cert.pem", directory / "key.pem", "s3cret"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )
    key_file.write_bytes(encrypted)
    return str(cert_file), str(key_file), password


def test_cert_key_password_reaches_the_adapter(
    httpie: HTTPie, test_server: TestServer, client_cert: tuple[str, str, str]
) -> None:
    cert_file, key_file, password = client_cert
    verify = f"--verify={test_server.ca_file}"
    args = ("--body", verify, f"--cert={cert_file}", f"--cert-key={key_file}")
    proc = httpie.run(*args, f"--cert-key-pass={password}", test_server.url)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.startswith(b"Hello from hyper.testing!")
    # A wrong password fails cleanly instead of OpenSSL prompting on the terminal.
    proc = httpie.run(*args, "--cert-key-pass=wrong", test_server.url)
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert "wrong password" in proc.stderr.decode()

"""Session fixtures: a test CA, certificates, real HTTP servers and proxies.

Servers start lazily (on first use) and once per session; each one is stopped
by its fixture's teardown even when tests fail.  A missing server binary makes
the fixture error out instead of skipping: the real-server tier must not
disappear silently from CI.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.portability import hide_poll_during_hyper_import

# HYPER_TEST_NO_POLL=1 runs the suite the way hyper behaves on Windows: hyper
# is imported while select.poll is hidden, so it picks its select() fallback.
# (poll itself is put back at once: subprocess and selectors need it.)
hide_poll_during_hyper_import()

# The memory tests' fixtures (weak references to h2 states, the cyclic GC off).
from tests.memory_fixtures import made, no_cyclic_gc  # noqa: E402, F401
from tests.servers import (  # noqa: E402 (after the poll switch above)
    CertFiles,
    NginxPorts,
    ServerInfo,
    ServerProcess,
    start_hypercorn,
    start_nghttpd,
    start_nginx,
    start_squid,
    start_tinyproxy,
    write_docroot,
)

#: Names the main server certificate is valid for.
SERVER_IDENTITIES = ("localhost", "127.0.0.1", "::1")
#: The only name the wrong-host certificate is valid for.
WRONG_HOST_IDENTITY = "wrong.invalid"


def _write_cert_files(cert: trustme.LeafCert, directory: Path, stem: str) -> CertFiles:
    cert_path = directory / f"{stem}.pem"
    key_path = directory / f"{stem}.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_path), append=True)
    cert.private_key_pem.write_to_path(str(key_path))
    return CertFiles(cert_file=str(cert_path), key_file=str(key_path))


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding the CA and certificate PEM files."""
    return tmp_path_factory.mktemp("pki")


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    """A CA created for this test run; it signs all server certificates."""
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(test_ca: trustme.CA, pki_dir: Path) -> str:
    """Path of the test CA certificate (PEM), for ``--cacert`` / ``cafile``."""
    path = pki_dir / "ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def server_cert(test_ca: trustme.CA) -> trustme.LeafCert:
    """Server certificate for ``localhost``, ``127.0.0.1`` and ``::1``."""
    return test_ca.issue_cert(*SERVER_IDENTITIES)


@pytest.fixture(scope="session")
def server_cert_files(server_cert: trustme.LeafCert, pki_dir: Path) -> CertFiles:
    """PEM files of :func:`server_cert` (chain and key)."""
    return _write_cert_files(server_cert, pki_dir, "server")


@pytest.fixture(scope="session")
def wrong_host_cert(test_ca: trustme.CA) -> trustme.LeafCert:
    """Certificate valid only for ``wrong.invalid`` (hostname-mismatch tests)."""
    return test_ca.issue_cert(WRONG_HOST_IDENTITY)


@pytest.fixture(scope="session")
def wrong_host_cert_files(wrong_host_cert: trustme.LeafCert, pki_dir: Path) -> CertFiles:
    """PEM files of :func:`wrong_host_cert`."""
    return _write_cert_files(wrong_host_cert, pki_dir, "wrong-host")


@pytest.fixture(scope="session")
def docroot(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Document root shared by nginx and nghttpd (written once per session).

    Contains ``hello.txt``, ``1k.bin``, ``big.bin`` (64 MiB) and
    ``index.html``; see :mod:`tests.servers` for their content.
    """
    return str(write_docroot(tmp_path_factory.mktemp("docroot")))


@pytest.fixture(scope="session")
def nginx_process(
    tmp_path_factory: pytest.TempPathFactory,
    server_cert_files: CertFiles,
    wrong_host_cert_files: CertFiles,
    docroot: str,
) -> Iterator[tuple[ServerProcess, NginxPorts]]:
    """The single nginx process behind all ``nginx_*`` server fixtures."""
    server, ports = start_nginx(
        tmp_path_factory.mktemp("nginx"),
        server_cert_files,
        wrong_host_cert_files,
        Path(docroot),
    )
    try:
        yield server, ports
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nginx_server(nginx_process: tuple[ServerProcess, NginxPorts], ca_file: str, docroot: str) -> ServerInfo:
    """nginx over TLS (ALPN h2) with the docroot, gzip and ``/upload``."""
    _, ports = nginx_process
    return ServerInfo("127.0.0.1", ports.tls, True, ca_file, docroot, "nginx")


@pytest.fixture(scope="session")
def nginx_h2c_server(nginx_process: tuple[ServerProcess, NginxPorts], docroot: str) -> ServerInfo:
    """The same nginx over cleartext HTTP/2 with prior knowledge."""
    _, ports = nginx_process
    return ServerInfo("127.0.0.1", ports.h2c, False, None, docroot, "nginx-h2c")


@pytest.fixture(scope="session")
def nginx_wrong_host_server(
    nginx_process: tuple[ServerProcess, NginxPorts], ca_file: str, docroot: str
) -> ServerInfo:
    """nginx over TLS with a certificate for ``wrong.invalid`` only.

    The chain is valid for the test CA, so only hostname checking fails.
    """
    _, ports = nginx_process
    return ServerInfo("127.0.0.1", ports.wrong_host, True, ca_file, docroot, "nginx-wrong-host")


@pytest.fixture(scope="session")
def nghttpd_server(
    tmp_path_factory: pytest.TempPathFactory,
    server_cert_files: CertFiles,
    ca_file: str,
    docroot: str,
) -> Iterator[ServerInfo]:
    """``nghttpd --echo-upload`` over TLS: serves the docroot, echoes POST/PUT."""
    server, port = start_nghttpd(tmp_path_factory.mktemp("nghttpd"), server_cert_files, Path(docroot))
    try:
        yield ServerInfo("127.0.0.1", port, True, ca_file, docroot, "nghttpd")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def hypercorn_server(
    tmp_path_factory: pytest.TempPathFactory, server_cert_files: CertFiles, ca_file: str
) -> Iterator[ServerInfo]:
    """hypercorn over TLS serving :mod:`tests.asgi_app` (no docroot)."""
    server, port = start_hypercorn(tmp_path_factory.mktemp("hypercorn"), server_cert_files)
    try:
        yield ServerInfo("127.0.0.1", port, True, ca_file, None, "hypercorn")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nginx_alpn_server(nginx_server: ServerInfo) -> ServerInfo:
    """nginx over TLS offering ``h2`` and ``http/1.1`` in ALPN (ALPN both ways).

    The same listener as :func:`nginx_server`: a client offering ``h2`` gets
    HTTP/2, one offering only ``http/1.1`` gets HTTP/1.1.
    """
    return nginx_server


@pytest.fixture(scope="session")
def nginx_http11_server(
    nginx_process: tuple[ServerProcess, NginxPorts], ca_file: str, docroot: str
) -> ServerInfo:
    """nginx over TLS without http2: ALPN selects only ``http/1.1``."""
    _, ports = nginx_process
    return ServerInfo("127.0.0.1", ports.http11_tls, True, ca_file, docroot, "nginx-http11")


@pytest.fixture(scope="session")
def nginx_http11_plain_server(nginx_process: tuple[ServerProcess, NginxPorts], docroot: str) -> ServerInfo:
    """nginx over cleartext HTTP/1.1 only (no h2c)."""
    _, ports = nginx_process
    return ServerInfo("127.0.0.1", ports.http11_plain, False, None, docroot, "nginx-http11-plain")


@pytest.fixture(scope="session")
def hypercorn_h2c_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """hypercorn in cleartext: HTTP/1.1, ``Upgrade: h2c`` and prior-knowledge HTTP/2."""
    server, port = start_hypercorn(tmp_path_factory.mktemp("hypercorn-h2c"), None)
    try:
        yield ServerInfo("127.0.0.1", port, False, None, None, "hypercorn-h2c")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nghttpd_h2c_server(
    tmp_path_factory: pytest.TempPathFactory, server_cert_files: CertFiles, docroot: str
) -> Iterator[ServerInfo]:
    """``nghttpd --no-tls``: cleartext HTTP/2 with prior knowledge only (no Upgrade)."""
    server, port = start_nghttpd(
        tmp_path_factory.mktemp("nghttpd-h2c"), server_cert_files, Path(docroot), tls=False
    )
    try:
        yield ServerInfo("127.0.0.1", port, False, None, docroot, "nghttpd-h2c")
    finally:
        server.stop()


#: Credentials the authenticating proxy accepts.
PROXY_USER = ("hyper", "s3cret")


@pytest.fixture(scope="session")
def proxy_server(
    tmp_path_factory: pytest.TempPathFactory, nginx_process: tuple[ServerProcess, NginxPorts]
) -> Iterator[ServerInfo]:
    """tinyproxy without authentication.

    CONNECT is allowed only to nginx's TLS, HTTP/1.1-TLS and h2c ports; any
    other port is refused with 403.
    """
    _, ports = nginx_process
    server, port = start_tinyproxy(
        tmp_path_factory.mktemp("tinyproxy"), connect_ports=(ports.tls, ports.http11_tls, ports.h2c)
    )
    try:
        yield ServerInfo("127.0.0.1", port, False, None, None, "tinyproxy")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def auth_proxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """tinyproxy demanding Basic proxy authentication with :data:`PROXY_USER` (407 without)."""
    server, port = start_tinyproxy(tmp_path_factory.mktemp("tinyproxy-auth"), basic_auth=PROXY_USER)
    try:
        yield ServerInfo("127.0.0.1", port, False, None, None, "tinyproxy-auth")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def squid_server(nginx_process: tuple[ServerProcess, NginxPorts]) -> Iterator[ServerInfo]:
    """Squid demanding Basic auth with :data:`PROXY_USER` (407 without).

    CONNECT is allowed only to nginx's TLS and HTTP/1.1-TLS ports (403 for
    others). Unlike tinyproxy, Squid keeps client connections alive.
    """
    _, ports = nginx_process
    server, port, base = start_squid(PROXY_USER, (ports.tls, ports.http11_tls))
    try:
        yield ServerInfo("127.0.0.1", port, False, None, None, "squid")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)

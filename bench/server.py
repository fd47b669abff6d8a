"""The benchmark's servers (nginx, nghttpd): test CA, document root, config, start and stop.

Process handling (free ports, readiness by a real HTTP/2 handshake, process
groups, retry when a port was stolen) is reused from ``tests.servers``; only
the configuration differs from the test suite's nginx:

* ``http2_chunk_size 16k`` and ``http2_max_concurrent_streams 256``, as in the
  peer figures of ``PEERS.md``;
* ``keepalive_requests 100000``, so no client meets nginx's GOAWAY after
  1,000 requests in the middle of a timed run;
* no access log, no gzip;
* ``client_body_buffer_size 8m`` and ``http2_body_preread_size 1m``: with the
  defaults (16k / 64k) nginx spills an upload to its temp file and opens the
  stream window in small steps, and the server, not the client, sets the pace
  of every client's upload;
* ``/upload`` reads the whole request body before it answers (nginx's
  ``return`` would answer first and reset the stream): it proxies to an
  internal plain-HTTP listener without forwarding the body, exactly like the
  ``/upload`` location of ``tests.servers``;
* the internal listener also serves ``stub_status``, whose "accepts" counter
  tells how many connections a client opened.

nghttpd and h2o (issue 14) serve the same document root: see :mod:`bench.more_servers`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import trustme

from tests.nginx_conf import config_head
from tests.servers import CertFiles, LaunchSpec, Probe, ServerProcess, find_binary, start_with_retry

#: The document every request workload fetches.
SMALL_PATH = "/1k.bin"
SMALL_SIZE = 1024
#: The large document of the download workload.
BIG_PATH = "/big.bin"
#: Where uploads go.
UPLOAD_PATH = "/upload"
HOST = "127.0.0.1"


#: The servers the harness knows, in report order.
SERVER_NAMES = ("nginx", "nghttpd", "h2o")
#: Servers left out, with a note, when they are not installed and ``--servers``
#: does not name them (nginx and nghttpd are required).
OPTIONAL_SERVERS = ("h2o",)


@dataclass(frozen=True)
class BenchFiles:
    """What every server shares: the test CA, the certificate, the files."""

    ca_file: str
    cert: CertFiles
    docroot: Path
    #: The file uploaded by the upload workload (same size as big.bin).
    upload_file: str
    body_bytes: int


@dataclass(frozen=True)
class BenchServer:
    """A running server and the files the workloads need."""

    #: One of :data:`SERVER_NAMES`.
    name: str
    process: ServerProcess
    host: str
    port: int
    #: nginx's plain HTTP/1.1 listener: the upload sink and ``/status``
    #: (``None`` for the other servers, which have no connection counter).
    internal_port: int | None
    ca_file: str
    cert: CertFiles
    #: The file uploaded by the upload workload (same size as big.bin).
    upload_file: str
    body_bytes: int

    def url(self, path: str) -> str:
        """``https://host:port/path`` on the benchmark server."""
        return f"https://{self.host}:{self.port}{path}"

    def accepted_connections(self) -> int | None:
        """nginx's total count of accepted connections (``None`` if unknown)."""
        if self.internal_port is None:
            return None
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://{self.host}:{self.internal_port}/status", timeout=5) as resp:
                text = resp.read().decode("ascii", "replace")
        except OSError:
            return None
        # "Active connections: 1 \nserver accepts handled requests\n 5 5 12 \n..."
        lines = text.splitlines()
        try:
            return int(lines[2].split()[0])
        except (IndexError, ValueError):
            return None


def pick_work_dir() -> Path:
    """A fresh directory for certs, docroot, upload file and nginx temp files.

    tmpfs (/dev/shm) is preferred: nginx spools every uploaded body to a
    temporary file, and disk writeback would add noise to the upload figures.
    """
    shm = Path("/dev/shm")
    base: str | None = None
    if shm.is_dir() and os.access(shm, os.W_OK):
        usage = shutil.disk_usage(shm)
        if usage.free > 2 * 1024**3:
            base = str(shm)
    return Path(tempfile.mkdtemp(prefix="hyper-bench-", dir=base))


def write_certs(directory: Path) -> tuple[str, CertFiles]:
    """Create a throw-away CA and a server certificate for 127.0.0.1/localhost."""
    ca = trustme.CA()
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf = ca.issue_cert(HOST, "localhost")
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    leaf.private_key_pem.write_to_path(str(key_file))
    return str(ca_file), CertFiles(cert_file=str(cert_file), key_file=str(key_file))


def write_payload(path: Path, size: int) -> None:
    """Write *size* bytes of incompressible data (a random block, rotated)."""
    block = os.urandom(1024 * 1024 + 7)
    written = 0
    with path.open("wb") as fh:
        offset = 0
        while written < size:
            piece = block[offset:] + block[:offset]
            piece = piece[: min(len(piece), size - written)]
            fh.write(piece)
            written += len(piece)
            offset = (offset + 4099) % len(block)


def write_docroot(directory: Path, body_bytes: int) -> None:
    """The 1 KiB document, the large download body, and nghttpd's answer to an upload."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SMALL_PATH.lstrip("/")).write_bytes(os.urandom(SMALL_SIZE))
    (directory / UPLOAD_PATH.lstrip("/")).write_bytes(b"upload received\n")
    write_payload(directory / BIG_PATH.lstrip("/"), body_bytes)


def nginx_config(run_dir: Path, tls_port: int, internal_port: int, cert: CertFiles, docroot: Path) -> str:
    """Render the benchmark's nginx.conf (nginx 1.22 syntax)."""
    return f"""{config_head(run_dir, generated_by="bench/server.py", error_level="info")}

    sendfile on;
    keepalive_requests 100000;
    client_max_body_size 0;
    client_body_buffer_size 8m;
    http2_body_preread_size 1m;
    http2_max_concurrent_streams 256;
    http2_chunk_size 16k;
    ssl_protocols TLSv1.2 TLSv1.3;

    server {{
        listen {HOST}:{tls_port} ssl http2;
        server_name localhost;
        ssl_certificate {cert.cert_file};
        ssl_certificate_key {cert.key_file};
        root {docroot};

        location / {{
        }}
        location = {UPLOAD_PATH} {{
            # The proxy module reads the whole body before it contacts the
            # upstream; the body itself is not forwarded.
            proxy_pass http://{HOST}:{internal_port}/upload-done;
            proxy_request_buffering on;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Upload-Length $content_length;
        }}
    }}

    server {{
        # Internal: answers /upload once the front server has read the body.
        listen {HOST}:{internal_port};
        location / {{
            default_type text/plain;
            return 200 "upload received: $http_x_upload_length bytes\\n";
        }}
        location = /status {{
            stub_status;
        }}
    }}
}}
"""


def prepare_files(work_dir: Path, body_bytes: int) -> BenchFiles:
    """Write certs, docroot and upload file into *work_dir* (shared by every server)."""
    ca_file, cert = write_certs(work_dir)
    docroot = work_dir / "docroot"
    write_docroot(docroot, body_bytes)
    upload_file = work_dir / "upload.bin"
    write_payload(upload_file, body_bytes)
    return BenchFiles(ca_file, cert, docroot, str(upload_file), body_bytes)


def start_nginx(work_dir: Path, files: BenchFiles) -> BenchServer:
    """Start nginx serving *files*."""
    binary = find_binary("nginx")
    cert, docroot = files.cert, files.docroot

    def make_spec(attempt_dir: Path, ports: list[int]) -> LaunchSpec:
        attempt_dir.mkdir(parents=True, exist_ok=True)
        conf = attempt_dir / "nginx.conf"
        conf.write_text(nginx_config(attempt_dir, ports[0], ports[1], cert, docroot))
        error_log = attempt_dir / "error.log"
        return LaunchSpec(
            name="nginx",
            argv=[binary, "-p", str(attempt_dir), "-c", str(conf), "-e", str(error_log)],
            run_dir=attempt_dir,
            probes=[(ports[0], Probe.H2_TLS), (ports[1], Probe.TCP)],
            extra_logs=[error_log],
        )

    process, ports = start_with_retry(work_dir / "nginx", 2, make_spec)
    return BenchServer(
        "nginx", process, HOST, ports[0], ports[1], files.ca_file, cert, files.upload_file, files.body_bytes
    )


def start_server(name: str, work_dir: Path, files: BenchFiles) -> BenchServer:
    """Start the server called *name* (one of :data:`SERVER_NAMES`)."""
    from bench.more_servers import start_h2o, start_nghttpd  # they import this module

    starters = {"nginx": start_nginx, "nghttpd": start_nghttpd, "h2o": start_h2o}
    if name not in starters:
        raise ValueError(f"unknown server {name!r}")
    return starters[name](work_dir, files)

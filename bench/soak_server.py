"""The soak's nginx: closes each connection after N requests, and restarts.

nginx 1.19.7 and later (Debian ships 1.22) count HTTP/2 requests with
``keepalive_requests`` (``http2_max_requests`` is obsolete): after that many
requests on one connection nginx sends a graceful GOAWAY (NO_ERROR), finishes
the streams it accepted and closes. That is the soak's "the server closes
the connection every N requests".

A restart is the real thing: the nginx process group gets SIGTERM (a fast
shutdown: open connections are cut, in-flight streams fail) and a new nginx
is started on the same port, with the same certificate.

Responses are chosen so that each one proves it answers its own request:
``/r/<n>`` answers ``soak /r/<n>`` (nginx's ``return`` with
``$request_uri``) and ``/1k.bin`` is a 1 KiB random file checked byte for
byte. Every response carries ``x-connection: $connection``, nginx's serial
number of the connection, so the client can count connections.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from bench.server import HOST, write_certs
from tests.nginx_conf import config_head
from tests.servers import CertFiles, LaunchSpec, Probe, find_binary, start_with_retry

#: The static document fetched by some of the requests.
STATIC_PATH = "/1k.bin"


def expected_body(path: str, static: bytes) -> bytes:
    """The exact body nginx sends for ``path`` (see :func:`soak_nginx_config`)."""
    if path == STATIC_PATH:
        return static
    return f"soak {path}\n".encode("ascii")


def soak_nginx_config(run_dir: Path, port: int, cert: CertFiles, docroot: Path, goaway_every: int) -> str:
    """nginx.conf for the soak (nginx 1.22 syntax)."""
    return f"""{config_head(run_dir, generated_by="bench/soak_server.py", error_level="warn")}

    # The point of the soak: a graceful GOAWAY after this many requests.
    keepalive_requests {goaway_every};
    # Idle timeouts far above any pause of the soak, so every closed
    # connection is one the soak asked for.
    keepalive_timeout 600s;
    ssl_protocols TLSv1.2 TLSv1.3;

    server {{
        listen {HOST}:{port} ssl http2;
        server_name localhost;
        ssl_certificate {cert.cert_file};
        ssl_certificate_key {cert.key_file};
        root {docroot};
        add_header x-connection $connection always;

        location / {{
        }}
        location /r/ {{
            default_type text/plain;
            return 200 "soak $request_uri\\n";
        }}
    }}
}}
"""


@dataclass(frozen=True)
class SoakSite:
    """Where the soak's files live."""

    work_dir: Path
    ca_file: str
    static: bytes


class SoakServer:
    """One nginx on a fixed port that can be stopped and started again."""

    def __init__(self, work_dir: Path, goaway_every: int) -> None:
        """Write certificates and the document root into ``work_dir``; start nginx."""
        self.binary = find_binary("nginx")
        ca_file, self._cert = write_certs(work_dir)
        self._docroot = work_dir / "docroot"
        self._docroot.mkdir(parents=True, exist_ok=True)
        static = os.urandom(1024)
        (self._docroot / STATIC_PATH.lstrip("/")).write_bytes(static)
        self.site = SoakSite(work_dir=work_dir, ca_file=ca_file, static=static)
        self._goaway_every = goaway_every
        # stop()/start() of the process come from one controller thread, but
        # close() may race with it from a failing soak: serialise them.
        self._lock = threading.Lock()
        self.restarts = 0

        def make_spec(attempt_dir: Path, ports: list[int]) -> LaunchSpec:
            attempt_dir.mkdir(parents=True, exist_ok=True)
            conf = attempt_dir / "nginx.conf"
            conf.write_text(soak_nginx_config(attempt_dir, ports[0], self._cert, self._docroot, goaway_every))
            error_log = attempt_dir / "error.log"
            return LaunchSpec(
                name="nginx",
                argv=[self.binary, "-p", str(attempt_dir), "-c", str(conf), "-e", str(error_log)],
                run_dir=attempt_dir,
                probes=[(ports[0], Probe.H2_TLS)],
                extra_logs=[error_log],
            )

        self._process, ports = start_with_retry(work_dir / "nginx", 1, make_spec)
        self.host = HOST
        self.port = ports[0]

    def restart(self) -> None:
        """Stop nginx (SIGTERM: connections are cut) and start it again on the same port.

        The new process binds the port nginx just released (nginx sets
        SO_REUSEADDR, so connections in TIME_WAIT do not block it). Raises
        ``tests.servers.ServerStartError`` if it does not come back.
        """
        with self._lock:
            self._process.stop()
            self._process.start()
            self.restarts += 1

    def close(self) -> None:
        """Stop nginx for good."""
        with self._lock:
            self._process.stop()

    def logs(self) -> str:
        """The tails of nginx's logs, for failure reports."""
        return self._process.describe_logs()

"""An nginx that retires each HTTP/2 connection after a few requests (``keepalive_requests``).

nginx counts the requests of a connection; at the limit it sends GOAWAY
whose last-stream-id is the last request it will answer, and ignores the
streams above it (RFC 9113 section 6.8): the real server behind the tests of
transparent resends (tests/test_refused_resend_nginx.py). Its own process,
so the shared test nginx keeps its large limit.
"""

from __future__ import annotations

from pathlib import Path

from tests.nginx_conf import config_head
from tests.servers import CertFiles, LaunchSpec, Probe, ServerProcess, find_binary, start_with_retry

#: Requests nginx answers on one connection before its GOAWAY.
REQUESTS_PER_CONNECTION = 5


def retiring_nginx_config(run_dir: Path, tls_port: int, h2c_port: int, cert: CertFiles, docroot: Path) -> str:
    """nginx.conf: TLS and cleartext HTTP/2 listeners, :data:`REQUESTS_PER_CONNECTION` each."""
    head = config_head(run_dir, generated_by="tests/nginx_retiring.py", error_level="notice")
    return f"""{head}

    keepalive_requests {REQUESTS_PER_CONNECTION};
    http2_max_concurrent_streams 128;
    gzip off;

    server {{
        listen 127.0.0.1:{tls_port} ssl http2;
        server_name localhost;
        ssl_certificate {cert.cert_file};
        ssl_certificate_key {cert.key_file};
        root {docroot};
    }}

    server {{
        listen 127.0.0.1:{h2c_port} http2;
        server_name localhost;
        root {docroot};
    }}
}}
"""


def start_retiring_nginx(run_dir: Path, cert: CertFiles, docroot: Path) -> tuple[ServerProcess, int, int]:
    """Start it; return the process, its TLS port and its cleartext (prior knowledge) port."""

    def make_spec(attempt_dir: Path, ports: list[int]) -> LaunchSpec:
        attempt_dir.mkdir(parents=True, exist_ok=True)
        conf = attempt_dir / "nginx.conf"
        conf.write_text(retiring_nginx_config(attempt_dir, ports[0], ports[1], cert, docroot))
        error_log = attempt_dir / "error.log"
        return LaunchSpec(
            name="nginx-retiring",
            argv=[find_binary("nginx"), "-p", str(attempt_dir), "-c", str(conf), "-e", str(error_log)],
            run_dir=attempt_dir,
            probes=[(ports[0], Probe.H2_TLS), (ports[1], Probe.H2C)],
            extra_logs=[error_log],
        )

    server, ports = start_with_retry(run_dir, 2, make_spec)
    return server, ports[0], ports[1]

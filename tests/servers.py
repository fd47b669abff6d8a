"""Process management for the real-server test tier.

This module starts real HTTP/2 servers (nginx, nghttpd, hypercorn) on
127.0.0.1 with a TLS certificate issued by a throw-away test CA, waits until
they really speak HTTP/2, and stops them again. It also starts real forward
proxies (tinyproxy, Squid) for the proxy tests.  It is deliberately free of
pytest fixtures so that it can be used from scripts and benchmarks too; the
fixtures live in ``tests/conftest.py``.

Design notes:

* Every server gets its own directory for configuration, logs, pid and temp
  files, so nothing is written outside the pytest temp dir.
* Free ports are chosen by binding port 0 on 127.0.0.1 and closing the socket
  before the server binds the port.  Another process could grab the port in
  between, so a start that fails with "Address already in use" is retried
  once with fresh ports.
* Readiness is decided by an HTTP/2 handshake (TLS + ALPN ``h2`` + a SETTINGS
  exchange), not by a bare TCP connect: nginx's master binds its sockets long
  before its worker can answer, and a test that races the worker would be
  flaky.
* Every server runs in its own session (process group) so that stopping it
  also reaps worker processes (nginx workers, hypercorn workers) even when the
  leader has to be SIGKILLed.
* A missing binary raises :class:`ServerStartError`; the tier must never be
  skipped silently.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from tests.nginx_conf import config_head

#: Upper bound for a server to become ready (brief: ~15 s).
READY_TIMEOUT = 15.0
#: How long a server gets to exit after SIGTERM before it is SIGKILLed.
STOP_TIMEOUT = 5.0
#: Interval between readiness probes.
PROBE_INTERVAL = 0.05
#: How much of each log file is quoted in a startup error.
LOG_TAIL_BYTES = 8192

#: The repository root: hypercorn runs from here so ``tests.asgi_app`` imports.
REPO_ROOT = Path(__file__).resolve().parent.parent

# Some distributions install servers in sbin directories that are not on a
# normal user's PATH.
_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")

# HTTP/2 client connection preface followed by an empty SETTINGS frame.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
# GOAWAY(last_stream_id=0, NO_ERROR): closes the probe connection politely so
# servers do not log it as an error.
_H2_GOAWAY = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + b"\x00" * 8
_H2_FRAME_SETTINGS = 0x4


# ---------------------------------------------------------------------------
# Public data types
# ---------------------------------------------------------------------------


class ServerStartError(RuntimeError):
    """A test server could not be started (missing binary, bad config, ...)."""


@dataclass(frozen=True)
class ServerInfo:
    """Where a running test server can be reached.

    Attributes:
        host: Address the server listens on (always ``127.0.0.1``).
        port: TCP port.
        secure: ``True`` for TLS (ALPN h2), ``False`` for cleartext HTTP/2
            with prior knowledge (h2c).
        ca_file: Path of the PEM file of the CA that issued the server
            certificate, or ``None`` for cleartext servers.
        docroot: Directory the server serves static files from (see
            :data:`DOCROOT_FILES`), or ``None`` if it serves no files.
        name: Short human readable label, e.g. ``"nginx"``.
    """

    host: str
    port: int
    secure: bool
    ca_file: str | None
    docroot: str | None
    name: str

    @property
    def authority(self) -> str:
        """``host:port``, as used in ``:authority`` and URLs."""
        return f"{self.host}:{self.port}"

    @property
    def scheme(self) -> str:
        """``https`` for TLS servers, ``http`` for h2c servers."""
        return "https" if self.secure else "http"

    def url(self, path: str = "/") -> str:
        """Absolute URL of *path* on this server."""
        if not path.startswith("/"):
            path = "/" + path
        return f"{self.scheme}://{self.authority}{path}"


@dataclass(frozen=True)
class CertFiles:
    """PEM files of a server certificate (chain) and its private key."""

    cert_file: str
    key_file: str


class Probe(Enum):
    """How readiness of a listening port is checked."""

    #: TLS handshake with ALPN h2, then an HTTP/2 SETTINGS exchange.
    H2_TLS = "h2-tls"
    #: Cleartext HTTP/2 prior knowledge SETTINGS exchange.
    H2C = "h2c"
    #: Plain TCP connect (for internal HTTP/1.x helper listeners).
    TCP = "tcp"


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to start one server process."""

    name: str
    argv: list[str]
    run_dir: Path
    probes: list[tuple[int, Probe]]
    env: dict[str, str] | None = None
    cwd: Path | None = None
    #: Log files written by the server itself (besides captured stdout/stderr).
    extra_logs: list[Path] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def find_binary(name: str) -> str:
    """Return the absolute path of executable *name* or raise loudly.

    Raising (instead of ``pytest.skip``) is deliberate: a CI image without the
    server must fail, not quietly drop the whole real-server tier.
    """
    found = shutil.which(name)
    if found is None:
        search = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_BIN_DIRS])
        found = shutil.which(name, path=search)
    if found is None:
        raise ServerStartError(
            f"required server binary {name!r} not found on PATH or in "
            f"{', '.join(_EXTRA_BIN_DIRS)}; the real-server test tier needs it "
            "(install nginx / nghttp2-server / hypercorn)"
        )
    return found


def pick_free_ports(count: int) -> list[int]:
    """Return *count* distinct ports that were free on 127.0.0.1 a moment ago.

    All sockets are held open until every port is chosen, so the kernel cannot
    hand out the same port twice within one call.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _h2_settings_exchange(sock: socket.socket) -> bool:
    """Send the HTTP/2 preface and check the server answers with SETTINGS."""
    sock.sendall(_H2_PREFACE)
    header = b""
    while len(header) < 9:
        chunk = sock.recv(9 - len(header))
        if not chunk:
            return False
        header += chunk
    ok = header[3] == _H2_FRAME_SETTINGS
    with contextlib.suppress(OSError):
        sock.sendall(_H2_GOAWAY)
    return ok


def probe(host: str, port: int, kind: Probe, timeout: float = 2.0) -> bool:
    """Return whether *host:port* answers according to *kind*.

    Certificate verification is disabled here on purpose: the probe only asks
    "is the worker up", and the wrong-hostname listener must pass it too.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            if kind is Probe.TCP:
                return True
            if kind is Probe.H2C:
                return _h2_settings_exchange(raw)
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                if tls.selected_alpn_protocol() != "h2":
                    return False
                return _h2_settings_exchange(tls)
    except (OSError, ssl.SSLError):
        return False


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    """Prefix *argv* so the server gets SIGTERM if the test process dies.

    The servers run in their own sessions, so a test run killed from outside
    (CI timeout, SIGKILL) would otherwise leave them running.  util-linux's
    ``setpriv --pdeathsig`` sets the Linux parent-death signal and then execs
    the server (same pid); nginx's master passes the SIGTERM on to its
    workers.  This avoids a ``preexec_fn``, which is unsafe with threads.
    Without setpriv the command runs unchanged and cleanup relies on the
    fixture teardown alone.
    """
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    if setpriv is None:
        return argv
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


def _listening_socket_inodes(port: int) -> set[str]:
    """Inodes of TCP sockets listening on *port* (any address), from /proc."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # fields: sl, local "ADDR:PORT" (hex), remote, state, ..., inode
            if len(fields) > 9 and fields[3] == "0A":  # 0A = TCP_LISTEN
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def listener_owned_by(pid: int, port: int) -> bool | None:
    """Whether process *pid* holds the socket listening on *port*.

    Returns ``None`` when that cannot be determined (no Linux /proc), so
    callers treat "unknown" as "probably ours".
    """
    if not Path("/proc/net/tcp").exists():
        return None
    inodes = _listening_socket_inodes(port)
    if not inodes:
        return False
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # fd closed meanwhile
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def _tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    """Last *limit* bytes of *path* as text (for error messages)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            data = fh.read()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    prefix = "...\n" if size > limit else ""
    return prefix + data.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Process handling
# ---------------------------------------------------------------------------


class ServerProcess:
    """One running server process, started from a :class:`LaunchSpec`."""

    def __init__(self, spec: LaunchSpec) -> None:
        """Remember *spec*; call :meth:`start` to launch."""
        self.spec = spec
        self.output_log = spec.run_dir / f"{spec.name}.out.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_files(self) -> list[Path]:
        """All log files of this server (captured output first)."""
        return [self.output_log, *self.spec.extra_logs]

    @property
    def pid(self) -> int | None:
        """Process id of the server's leader process, if started."""
        return None if self._proc is None else self._proc.pid

    def describe_logs(self) -> str:
        """The tails of all log files, for error messages."""
        parts = []
        for path in self.log_files:
            if path.exists():
                parts.append(f"----- {path} -----\n{_tail(path)}")
            else:
                parts.append(f"----- {path} (not created) -----")
        return "\n".join(parts)

    def logs_mention(self, needle: str) -> bool:
        """Whether any log file contains *needle* (case-insensitive)."""
        needle = needle.lower()
        return any(needle in _tail(path).lower() for path in self.log_files if path.exists())

    def start(self) -> None:
        """Launch the process and wait until every probe succeeds.

        Raises:
            ServerStartError: the process exited or did not become ready in
                :data:`READY_TIMEOUT` seconds.  The process is stopped first.
        """
        spec = self.spec
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        # The child gets its own copy of the descriptor; closing ours right
        # away means no file handle can leak from the test process.
        with self.output_log.open("wb") as log:
            try:
                self._proc = subprocess.Popen(
                    _with_parent_death_signal(spec.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=spec.cwd or spec.run_dir,
                    env=spec.env,
                    # Own process group: lets stop() kill workers too.
                    start_new_session=True,
                )
            except OSError as exc:
                raise ServerStartError(f"cannot run {spec.argv[0]}: {exc}") from exc
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(self.spec.probes)
        while True:
            code = self._proc.poll()
            if code is not None:
                raise ServerStartError(self._failure(f"exited with status {code} during startup"))
            pending = [(port, kind) for port, kind in pending if not self._port_ready(port, kind)]
            if not pending:
                return
            if time.monotonic() >= deadline:
                ports = ", ".join(f"{port} ({kind.value})" for port, kind in pending)
                raise ServerStartError(
                    self._failure(f"not ready after {READY_TIMEOUT:.0f} s; waiting for {ports}")
                )
            time.sleep(PROBE_INTERVAL)

    def _port_ready(self, port: int, kind: Probe) -> bool:
        """Whether *port* answers *and* is served by our process.

        If another process took the port between :func:`pick_free_ports` and
        our server's bind(), the probe would happily talk to that process
        (possibly another test run's HTTP/2 server) while ours is about to
        exit with "Address already in use" -- nginx even retries bind() for
        2.5 s first.  Checking socket ownership turns that into a clean
        failure, which :func:`start_with_retry` then retries.
        """
        assert self._proc is not None
        # Ownership first: it is cheap, and probing a foreign listener that
        # accepts but never answers would block for the probe timeout.
        if listener_owned_by(self._proc.pid, port) is False:
            return False
        return probe("127.0.0.1", port, kind)

    def _failure(self, what: str) -> str:
        return (
            f"{self.spec.name} {what}\ncommand: {' '.join(self.spec.argv)}\n"
            f"run dir: {self.spec.run_dir}\n{self.describe_logs()}"
        )

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL to the whole group.

        Safe to call more than once and on a process that already died.  The
        process is always waited for, so Popen never warns about a child that
        is still running.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill_group(proc.pid)
                proc.wait(timeout=STOP_TIMEOUT)
        # Sweep up workers that outlived their leader (e.g. after a crash).
        self._kill_group(proc.pid)

    @staticmethod
    def _kill_group(pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def __enter__(self) -> ServerProcess:
        """Allow ``with ServerProcess(spec) as proc`` (starts the server)."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()


def start_with_retry(
    run_dir: Path, port_count: int, make_spec: Callable[[Path, list[int]], LaunchSpec]
) -> tuple[ServerProcess, list[int]]:
    """Start a server on fresh ports, retrying once if a port was stolen.

    *make_spec* gets a fresh per-attempt directory and the chosen ports and
    returns the launch spec (writing any config files it needs).
    """
    attempts = 2
    for attempt in range(1, attempts + 1):
        ports = pick_free_ports(port_count)
        spec = make_spec(run_dir / f"attempt{attempt}", ports)
        server = ServerProcess(spec)
        try:
            server.start()
        except ServerStartError:
            if attempt < attempts and server.logs_mention("address already in use"):
                continue
            raise
        return server, ports
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------
# Document root shared by nginx and nghttpd
# ---------------------------------------------------------------------------

#: Content of ``hello.txt``: compressible text, larger than 1 KiB.
HELLO_TEXT = b"hello, world\n" * 100
#: Content of ``index.html``.
INDEX_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>hyper test server</title></head>\n"
    b"<body><h1>hyper test server</h1><p>It works.</p></body></html>\n"
)
#: Size of ``big.bin`` (64 MiB).
BIG_BIN_SIZE = 64 * 1024 * 1024
_BIG_BLOCK_SIZE = 1024 * 1024
# An odd rotation step: consecutive blocks are shifted copies of one random
# block, and because the step is odd no two blocks line up at any chunk size
# that is a power of two >= 128, so a misordered or duplicated read shows up.
_BIG_BLOCK_ROTATION = 4099
#: Names of the files in the shared document root.
DOCROOT_FILES = ("hello.txt", "1k.bin", "big.bin", "index.html")


def one_k_bytes() -> bytes:
    """Content of ``1k.bin``: 1024 deterministic pseudo-random bytes."""
    return random.Random(1024).randbytes(1024)


def iter_big_bin() -> Iterator[bytes]:
    """Yield the content of ``big.bin`` in pieces (64 MiB in total)."""
    base = random.Random(0x68797065).randbytes(_BIG_BLOCK_SIZE)
    for index in range(BIG_BIN_SIZE // _BIG_BLOCK_SIZE):
        shift = (index * _BIG_BLOCK_ROTATION) % _BIG_BLOCK_SIZE
        yield base[shift:]
        yield base[:shift]


def docroot_content(name: str) -> bytes:
    """Expected bytes of docroot file *name* (64 MiB for ``big.bin``).

    Tests that only need ``big.bin``'s digest should hash the file in the
    served docroot instead of building it in memory.
    """
    if name == "hello.txt":
        return HELLO_TEXT
    if name == "1k.bin":
        return one_k_bytes()
    if name == "index.html":
        return INDEX_HTML
    if name == "big.bin":
        return b"".join(iter_big_bin())
    raise KeyError(name)


def write_docroot(path: Path) -> Path:
    """Create the document root with all :data:`DOCROOT_FILES` in *path*."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "hello.txt").write_bytes(HELLO_TEXT)
    (path / "1k.bin").write_bytes(one_k_bytes())
    (path / "index.html").write_bytes(INDEX_HTML)
    with (path / "big.bin").open("wb") as fh:
        for piece in iter_big_bin():
            fh.write(piece)
    return path


# ---------------------------------------------------------------------------
# nginx
# ---------------------------------------------------------------------------

#: Path of the nginx location that accepts uploads (see :func:`nginx_config`).
NGINX_UPLOAD_PATH = "/upload"


@dataclass(frozen=True)
class NginxPorts:
    """The listeners of the single nginx test process."""

    tls: int
    h2c: int
    wrong_host: int
    #: Internal HTTP/1.x listener that answers proxied uploads.
    upload_sink: int
    #: TLS without http2: ALPN offers only http/1.1 (HTTP/1.1-only server).
    http11_tls: int
    #: Cleartext HTTP/1.1 (no h2c): the target of absolute-form proxy requests.
    http11_plain: int


#: The MIME types the test nginx knows (its config names them inline).
_MIME_TYPES = (
    ("text/html", "html"),
    ("text/plain", "txt"),
    ("application/json", "json"),
    ("application/octet-stream", "bin"),
)


def nginx_config(
    run_dir: Path,
    ports: NginxPorts,
    cert: CertFiles,
    wrong_cert: CertFiles,
    docroot: Path,
) -> str:
    """Render nginx.conf (nginx 1.22 syntax: ``listen ... ssl http2``).

    The upload location cannot simply ``return 200``: that answers before
    the request body is read and nginx then resets the HTTP/2 stream.  It
    proxies to an internal listener instead, because the proxy module reads
    the *whole* client body before it contacts the upstream
    (``proxy_request_buffering on``).  The body itself is not forwarded
    (``proxy_pass_request_body off``); only its length, which nginx knows once
    the body has been read, even without a content-length request header.
    """
    shared_locations = f"""
        root {docroot};
        location / {{
        }}
        location = {NGINX_UPLOAD_PATH} {{
            proxy_pass http://127.0.0.1:{ports.upload_sink}/upload-done;
            # Keep the short confirmation byte-exact for every client.
            gzip off;
            proxy_request_buffering on;
            proxy_pass_request_body off;
            # Drop the length of the body we do not forward, or the
            # upstream would wait for it.
            proxy_set_header Content-Length "";
            proxy_set_header X-Upload-Length $content_length;
        }}
"""
    head = config_head(
        run_dir,
        generated_by="tests/servers.py for one test session",
        error_level="notice",
        mime_types=_MIME_TYPES,
        access_log=f"{run_dir}/access.log",
    )
    return f"""{head}

    sendfile on;
    # Since 1.19.7 this also replaces http2_max_requests (default 1000 would
    # make nginx send GOAWAY in long-running client tests).
    keepalive_requests 100000;
    client_max_body_size 0;
    http2_max_concurrent_streams 128;

    gzip on;
    gzip_types text/plain application/json;
    gzip_min_length 20;

    ssl_protocols TLSv1.2 TLSv1.3;

    server {{
        listen 127.0.0.1:{ports.tls} ssl http2;
        server_name localhost;
        ssl_certificate {cert.cert_file};
        ssl_certificate_key {cert.key_file};
{shared_locations}
    }}

    server {{
        # Cleartext HTTP/2 with prior knowledge only (no Upgrade).
        listen 127.0.0.1:{ports.h2c} http2;
        server_name localhost;
{shared_locations}
    }}

    server {{
        # Certificate for wrong.invalid only: hostname mismatch for clients
        # that connect to 127.0.0.1 / localhost.
        listen 127.0.0.1:{ports.wrong_host} ssl http2;
        server_name wrong.invalid;
        ssl_certificate {wrong_cert.cert_file};
        ssl_certificate_key {wrong_cert.key_file};
{shared_locations}
    }}

    server {{
        # HTTP/1.1 only over TLS: no http2, so ALPN selects http/1.1.
        listen 127.0.0.1:{ports.http11_tls} ssl;
        server_name localhost;
        ssl_certificate {cert.cert_file};
        ssl_certificate_key {cert.key_file};
{shared_locations}
    }}

    server {{
        # HTTP/1.1 only in cleartext.
        listen 127.0.0.1:{ports.http11_plain};
        server_name localhost;
{shared_locations}
    }}

    server {{
        # Internal: answers /upload once the front server has read the body.
        listen 127.0.0.1:{ports.upload_sink};
        access_log off;
        location / {{
            default_type text/plain;
            add_header X-Upload-Length $http_x_upload_length always;
            return 200 "upload received: $http_x_upload_length bytes\\n";
        }}
    }}
}}
"""


def start_nginx(
    run_dir: Path, cert: CertFiles, wrong_cert: CertFiles, docroot: Path
) -> tuple[ServerProcess, NginxPorts]:
    """Start one nginx serving all nginx listeners; return it and its ports."""
    binary = find_binary("nginx")

    def make_spec(attempt_dir: Path, raw_ports: list[int]) -> LaunchSpec:
        ports = NginxPorts(*raw_ports)
        attempt_dir.mkdir(parents=True, exist_ok=True)
        conf = attempt_dir / "nginx.conf"
        conf.write_text(nginx_config(attempt_dir, ports, cert, wrong_cert, docroot))
        error_log = attempt_dir / "error.log"
        return LaunchSpec(
            name="nginx",
            # -p: prefix for relative paths; -e: log early startup errors
            # here instead of the compiled-in default path.
            argv=[
                binary,
                "-p",
                str(attempt_dir),
                "-c",
                str(conf),
                "-e",
                str(error_log),
            ],
            run_dir=attempt_dir,
            probes=[
                (ports.tls, Probe.H2_TLS),
                (ports.h2c, Probe.H2C),
                (ports.wrong_host, Probe.H2_TLS),
                (ports.upload_sink, Probe.TCP),
                (ports.http11_tls, Probe.TCP),
                (ports.http11_plain, Probe.TCP),
            ],
            extra_logs=[error_log, attempt_dir / "access.log"],
        )

    server, raw_ports = start_with_retry(run_dir, 6, make_spec)
    return server, NginxPorts(*raw_ports)


# ---------------------------------------------------------------------------
# nghttpd
# ---------------------------------------------------------------------------


def start_nghttpd(
    run_dir: Path, cert: CertFiles, docroot: Path, tls: bool = True
) -> tuple[ServerProcess, int]:
    """Start ``nghttpd --echo-upload`` on 127.0.0.1; return it and its port.

    With ``tls=False`` it serves cleartext HTTP/2 with prior knowledge only
    (``--no-tls``; nghttpd does not implement ``Upgrade: h2c``).

    nghttpd spools uploads to a temporary file before echoing them; TMPDIR
    keeps that file inside the run directory.
    """
    binary = find_binary("nghttpd")

    def make_spec(attempt_dir: Path, ports: list[int]) -> LaunchSpec:
        tmp = attempt_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return LaunchSpec(
            name="nghttpd",
            argv=[
                binary,
                "--echo-upload",
                "--address=127.0.0.1",
                f"--htdocs={docroot}",
                *([] if tls else ["--no-tls"]),
                str(ports[0]),
                *([cert.key_file, cert.cert_file] if tls else []),
            ],
            run_dir=attempt_dir,
            probes=[(ports[0], Probe.H2_TLS if tls else Probe.H2C)],
            env={**os.environ, "TMPDIR": str(tmp)},
        )

    server, ports = start_with_retry(run_dir, 1, make_spec)
    return server, ports[0]


# ---------------------------------------------------------------------------
# hypercorn
# ---------------------------------------------------------------------------

#: ASGI application served by hypercorn.
HYPERCORN_APP = "tests.asgi_app:app"


def start_hypercorn(
    run_dir: Path,
    cert: CertFiles | None,
    app: str = HYPERCORN_APP,
    extra_args: Sequence[str] = (),
) -> tuple[ServerProcess, int]:
    """Start hypercorn with TLS serving *app*; return it and its port.

    ``--workers 0`` serves from the launched process itself instead of a
    spawned child, so SIGTERM/SIGKILL reach the process that owns the socket.
    Without ``cert`` it serves cleartext: HTTP/1.1, ``Upgrade: h2c`` and
    HTTP/2 with prior knowledge on the same port.
    """
    # The server runs under this interpreter, so ask this interpreter.
    if importlib.util.find_spec("hypercorn") is None:
        raise ServerStartError(
            f"hypercorn is not installed for {sys.executable}; the real-server test tier needs it"
        )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    # Warnings-as-errors from the test run must not leak into the server.
    env.pop("PYTHONWARNINGS", None)

    def make_spec(attempt_dir: Path, ports: list[int]) -> LaunchSpec:
        attempt_dir.mkdir(parents=True, exist_ok=True)
        return LaunchSpec(
            name="hypercorn",
            argv=[
                sys.executable,
                "-m",
                "hypercorn",
                "--workers",
                "0",
                *(["--certfile", cert.cert_file, "--keyfile", cert.key_file] if cert else []),
                "--bind",
                f"127.0.0.1:{ports[0]}",
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "1",
                *extra_args,
                app,
            ],
            run_dir=attempt_dir,
            probes=[(ports[0], Probe.H2_TLS if cert else Probe.H2C)],
            env=env,
            cwd=REPO_ROOT,
        )

    server, ports = start_with_retry(run_dir, 1, make_spec)
    return server, ports[0]


# ---------------------------------------------------------------------------
# tinyproxy (a real forward proxy for CONNECT and absolute-form requests)
# ---------------------------------------------------------------------------


def start_tinyproxy(
    run_dir: Path,
    basic_auth: tuple[str, str] | None = None,
    connect_ports: Sequence[int] = (),
) -> tuple[ServerProcess, int]:
    """Start tinyproxy on 127.0.0.1 in the foreground; return it and its port.

    ``basic_auth`` makes it demand ``Proxy-Authorization`` (407 without);
    ``connect_ports`` limits CONNECT to those target ports (403 for others;
    empty: any port).
    """
    binary = find_binary("tinyproxy")

    def make_spec(attempt_dir: Path, ports: list[int]) -> LaunchSpec:
        attempt_dir.mkdir(parents=True, exist_ok=True)
        log_file = attempt_dir / "tinyproxy.log"
        lines = [
            f"Port {ports[0]}",
            "Listen 127.0.0.1",
            "Timeout 30",
            "MaxClients 50",
            "LogLevel Info",
            f'LogFile "{log_file}"',
            f'PidFile "{attempt_dir / "tinyproxy.pid"}"',
            "DisableViaHeader Yes",
            *(f"ConnectPort {port}" for port in connect_ports),
        ]
        if basic_auth is not None:
            lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
        conf = attempt_dir / "tinyproxy.conf"
        conf.write_text("\n".join(lines) + "\n")
        return LaunchSpec(
            name="tinyproxy",
            # -d: stay in the foreground, so the fixture owns the process.
            argv=[binary, "-d", "-c", str(conf)],
            run_dir=attempt_dir,
            probes=[(ports[0], Probe.TCP)],
            extra_logs=[log_file],
        )

    server, ports = start_with_retry(run_dir, 1, make_spec)
    return server, ports[0]


# ---------------------------------------------------------------------------
# Squid (the most common real forward proxy; keeps client connections alive)
# ---------------------------------------------------------------------------


def _htpasswd_line(user: str, password: str) -> str:
    """An htpasswd line Squid's basic_ncsa_auth accepts (made by ``htpasswd -b``)."""
    result = subprocess.run(
        [find_binary("htpasswd"), "-nb", user, password],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.strip() + "\n"


def start_squid(
    basic_auth: tuple[str, str],
    connect_ports: Sequence[int],
) -> tuple[ServerProcess, int, Path]:
    """Start Squid on 127.0.0.1 requiring Basic auth; return it, its port and its directory.

    CONNECT is allowed only to ``connect_ports`` (403 for others); requests
    without valid credentials get 407. Squid refuses to run as root, so a
    root test run lets it switch to its ``proxy`` user: its directory is made
    under the system temp dir (pytest's are private to root) and handed to
    that user. The caller removes the directory after :meth:`ServerProcess.stop`.
    """
    binary = find_binary("squid")
    helper = Path("/usr/lib/squid/basic_ncsa_auth")
    if not helper.exists():
        raise ServerStartError(f"Squid's {helper} is missing (install the squid package)")
    base = Path(tempfile.mkdtemp(prefix="hyper-squid-"))
    base.chmod(0o755)
    passwd = _htpasswd_line(*basic_auth)

    def make_spec(attempt_dir: Path, ports: list[int]) -> LaunchSpec:
        attempt_dir.mkdir(parents=True, exist_ok=True)
        (attempt_dir / "passwd").write_text(passwd)
        allowed = " ".join(str(port) for port in connect_ports)
        conf = attempt_dir / "squid.conf"
        conf.write_text(
            f"""# Generated by tests/servers.py for one test session.
http_port 127.0.0.1:{ports[0]}
pid_filename {attempt_dir}/squid.pid
access_log stdio:{attempt_dir}/access.log
cache_log {attempt_dir}/cache.log
cache_store_log none
cache deny all
cache_mem 8 MB
coredump_dir {attempt_dir}
netdb_filename none
shutdown_lifetime 0 seconds
auth_param basic program {helper} {attempt_dir}/passwd
auth_param basic realm hyper-tests
acl authed proxy_auth REQUIRED
acl tunnel_ports port {allowed}
acl CONNECT method CONNECT
http_access deny !authed
http_access deny CONNECT !tunnel_ports
http_access allow all
"""
        )
        if os.geteuid() == 0:
            for path in [attempt_dir, *attempt_dir.iterdir()]:
                shutil.chown(path, "proxy", "proxy")
        return LaunchSpec(
            name="squid",
            # -N: no daemon, one process, so the fixture owns it.
            argv=[binary, "-N", "-f", str(conf)],
            run_dir=attempt_dir,
            probes=[(ports[0], Probe.TCP)],
            extra_logs=[attempt_dir / "cache.log"],
        )

    try:
        server, ports = start_with_retry(base, 1, make_spec)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return server, ports[0], base

"""A small, threaded, real HTTP/2 server for tests and demos.

:class:`TestServer` listens on a loopback address, speaks HTTP/2 (over TLS
with ALPN ``h2`` by default, or cleartext with prior knowledge), and serves a
handful of built-in routes plus any routes you give it::

    from hyper.testing import TestServer

    with TestServer() as srv:
        ...  # talk to srv.url (https://localhost:PORT/), trusting srv.ca_file

Built-in routes (``HEAD`` works wherever ``GET`` does):

``GET /``
    200, ``text/plain``: a short greeting.
``GET /bytes/<n>``
    200, ``application/octet-stream``: *n* deterministic bytes, streamed
    (byte *i* is ``i % 251``; see :func:`expected_bytes`). *n* is capped at
    1 GiB (:data:`MAX_BYTES`).
``POST /echo``, ``PUT /echo``
    200, ``application/octet-stream``: the request body.
``GET /gzip``
    200, the greeting gzip-compressed, with ``content-encoding: gzip``.
``GET /status/<n>``
    Status *n* (200-599, any method) with an empty body.
``GET /headers``
    200, ``application/json``: the request headers (pseudo-headers included)
    as an object; repeated names are joined with ``", "``.
anything else
    404 (or 405 for a known path with the wrong method).

TLS material: the server uses the certificates bundled in
``hyper/testing/certs/``: a CA (:data:`CA_FILE`) and a leaf for
``localhost``, ``127.0.0.1`` and ``::1`` valid until the year 3000.

.. warning::

   The private keys of these certificates are **public**: they ship in the
   package and in its source repository. They are only good for tests
   against servers on localhost. Never add ``ca.pem`` to a trust store or use
   it for anything else.

Threading model: one accept thread, one thread per connection and a
bounded pool of route threads (all daemon threads). A connection thread
reads frames and sends responses as the client's flow-control windows allow;
route handlers and their body iterators run on the route threads (see
:mod:`hyper.testing.runner`), so each chunk a route yields goes out as soon
as it is yielded and a slow or blocked route holds up only its own stream.
Every socket operation has a timeout; :meth:`TestServer.stop` wakes all
threads, sends GOAWAY, closes every socket and joins every thread with a
bounded wait. The code is split by job: :mod:`hyper.testing.routes` (what
is served), :mod:`hyper.testing.runner` (running routes),
:mod:`hyper.testing.connection` (HTTP/2 on one connection) and this module
(the server's life cycle).
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from .connection import ServerConnection, ServerHooks
from .routes import (
    MAX_BYTES,
    Body,
    Handler,
    HeaderPairs,
    Request,
    Response,
    builtin,
    expected_bytes,
)
from .runner import RoutePool

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "CA_FILE",
    "CERT_FILE",
    "KEY_FILE",
    "MAX_BYTES",
    "Body",
    "Handler",
    "HeaderPairs",
    "Request",
    "Response",
    "TestServer",
    "expected_bytes",
]

log = logging.getLogger(__name__)

_CERTS = Path(__file__).resolve().parent / "certs"
#: Path of the bundled test CA certificate; trust it to talk to a TestServer.
CA_FILE: str = str(_CERTS / "ca.pem")
#: Path of the server certificate chain (leaf for localhost/127.0.0.1/::1).
CERT_FILE: str = str(_CERTS / "server.pem")
#: Path of the server's private key. It is public: localhost tests only.
KEY_FILE: str = str(_CERTS / "server.key")

_POLL = 1.0  # longest select() wait of the accept loop; stop() wakes it sooner


class TestServer:
    """A threaded HTTP/2 server on a loopback address.

    :param host: address to listen on (``"127.0.0.1"``, ``"::1"``...).
    :param port: port to listen on; 0 picks a free one (see :attr:`port`).
    :param tls: serve TLS with ALPN ``h2`` using the bundled certificates
        (default); if false, serve cleartext HTTP/2 with prior knowledge.
    :param routes: extra routes, ``{path: handler}``. A handler gets a
        :class:`Request` and returns ``(status, headers, body)``: headers as a
        mapping or a list of ``(name, value)`` pairs, body as ``bytes`` (or
        an iterable of ``bytes`` chunks to stream). These take precedence over
        the built-in routes and match the path without its query string. A
        handler that raises produces a 500 response; a body iterator that
        raises after the headers went out gets the stream reset with
        INTERNAL_ERROR. Header names are lower-cased; ``content-length`` (for
        ``bytes`` bodies) and ``server`` are added unless present; h2 itself
        drops connection-specific headers such as ``connection``. ``HEAD``
        gets the headers without the body. Handlers and body iterators run
        on route threads, so they may run concurrently (also for one
        connection): a handler that sleeps or blocks delays only its own
        stream, and each chunk a body iterator yields is sent at once (the
        headers go out with the first chunk).
    :param io_timeout: timeout in seconds for each blocking socket operation
        (TLS handshake, a read, a whole ``sendall``).
    :param max_request_body: largest request body buffered; beyond it the
        server answers 413 and resets the stream.
    :param route_threads: most route threads running at once (for all
        connections); requests beyond it wait for a free thread.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with TestServer() as srv:
            print(srv.url)   # https://localhost:PORT/
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = True,
        routes: Mapping[str, Handler] | None = None,
        *,
        io_timeout: float = 10.0,
        max_request_body: int = 256 * 1024 * 1024,
        route_threads: int = 64,
    ) -> None:
        #: The address the server listens on.
        self.host: str = host
        #: The port; the real one once started (when 0 was asked for).
        self.port: int = port
        #: Whether the server speaks TLS.
        self.tls: bool = tls
        #: The CA certificate file clients should trust.
        self.ca_file: str = CA_FILE
        #: The ALPN protocol of each TLS connection accepted, in order.
        self.alpn_protocols: list[str | None] = []
        self.routes: dict[str, Handler] = dict(routes or {})
        self.io_timeout = io_timeout
        self.max_request_body = max_request_body
        self._tls_context: ssl.SSLContext | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket
        self._wake_w: socket.socket
        self._hooks: ServerHooks  # set by start(): what each connection may use
        self._accept_thread: threading.Thread | None = None
        self._connections: set[ServerConnection] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._started = False
        self._route_pool = RoutePool(route_threads, name=f"hyper.testing {host}")

    # -- public API ----------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. ``https://localhost:8443/``.

        ``localhost`` stands for 127.0.0.1 (the certificate covers it); an
        IPv6 host is shown in brackets.
        """
        scheme = "https" if self.tls else "http"
        if self.host in ("127.0.0.1", "localhost", "0.0.0.0", ""):
            name = "localhost"
        elif ":" in self.host:
            name = f"[{self.host}]"
        else:
            name = self.host
        return f"{scheme}://{name}:{self.port}/"

    def start(self) -> Self:
        """Bind, listen and start the accept thread; return ``self``."""
        if self._started:
            raise RuntimeError("a TestServer can only be started once")
        if self.tls:
            self._tls_context = self._make_tls_context()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.create_server((self.host, self.port), family=family, backlog=128)
        try:
            listener.settimeout(self.io_timeout)
            self.port = listener.getsockname()[1]
            self._wake_r, self._wake_w = socket.socketpair()
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._hooks = ServerHooks(
            io_timeout=self.io_timeout,
            max_request_body=self.max_request_body,
            tls_context=self._tls_context,
            stop_signal=self._wake_r,
            stopping=self._stopping,
            forget=self._forget,
            record_alpn=self._record_alpn,
            handler_for=self._handler_for,
            submit_route=self._route_pool.submit,
        )
        self._started = True
        thread = threading.Thread(
            target=self._accept_loop,
            name=f"hyper.testing accept :{self.port}",
            daemon=True,
        )
        self._accept_thread = thread
        thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: close every socket and join every thread.

        Connection threads get half a second to say GOAWAY; any still busy
        then have their sockets shut down. Route threads still inside a
        handler are waited for too. Waits at most about *timeout* seconds in
        all. Safe to call more than once.
        """
        if not self._started or self._stopping.is_set():
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._accept_thread is not None:
            self._accept_thread.join(max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            self._listener.close()  # no-op if the accept thread closed it
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            if not conn.serving:  # e.g. stuck in a TLS handshake
                conn.force_shutdown()
        grace = min(deadline, time.monotonic() + 0.5)
        for conn in connections:
            if conn.thread is not None:
                conn.thread.join(max(0.0, grace - time.monotonic()))
        for conn in connections:
            if conn.thread is not None and conn.thread.is_alive():
                conn.force_shutdown()
        for conn in connections:
            if conn.thread is not None:
                conn.thread.join(max(0.0, deadline - time.monotonic()))
            conn.close_socket()
        # Route threads whose streams went away stop at their next chunk;
        # one blocked inside a handler is waited for until the deadline.
        self._route_pool.close(deadline, time.monotonic)
        self._wake_r.close()
        self._wake_w.close()

    @property
    def active_connections(self) -> int:
        """How many client connections are open right now."""
        with self._lock:
            return len(self._connections)

    def __enter__(self) -> Self:
        if self._stopping.is_set():
            raise RuntimeError("this TestServer has been stopped")
        if not self._started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopping.is_set() else "running" if self._started else "new"
        return f"<TestServer {self.url} {state}>"

    # -- internals -----------------------------------------------------------

    @staticmethod
    def _make_tls_context() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(CERT_FILE, KEY_FILE)
        except FileNotFoundError as exc:
            raise RuntimeError(
                f"hyper.testing's bundled TLS files are missing ({exc.filename}); "
                "the package was installed without its package data"
            ) from exc
        context.set_alpn_protocols(["h2"])
        context.options |= ssl.OP_NO_COMPRESSION
        return context

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        selector = selectors.DefaultSelector()
        try:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = selector.select(_POLL)
                if self._stopping.is_set():
                    break
                if not any(key.fileobj is listener for key, _ in ready):
                    continue
                try:
                    sock, peer = listener.accept()
                except (TimeoutError, BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:  # e.g. out of file descriptors
                    log.warning("accept() failed: %r", exc)
                    self._stopping.wait(0.1)  # back off rather than spin
                    continue
                self._start_connection(sock, peer)
        except Exception as exc:  # noqa: BLE001 - a thread must not raise
            log.debug("accept loop ended: %r", exc)
        finally:
            selector.close()
            listener.close()

    def _start_connection(self, sock: socket.socket, peer: object) -> None:
        conn = ServerConnection(self._hooks, sock, peer)
        thread = threading.Thread(target=conn.run, name=f"hyper.testing conn {peer}", daemon=True)
        conn.thread = thread
        with self._lock:
            if self._stopping.is_set():
                sock.close()
                return
            self._connections.add(conn)
        try:
            thread.start()
        except RuntimeError:
            self._forget(conn)
            sock.close()

    def _forget(self, conn: ServerConnection) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _record_alpn(self, protocol: str | None) -> None:
        with self._lock:
            self.alpn_protocols.append(protocol)

    def _handler_for(self, request: Request) -> Handler:
        """The route that answers *request*: a custom one, else the built-in routes."""
        return self.routes.get(request.path, builtin)

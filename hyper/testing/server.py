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

Threading model: one accept thread and one thread per connection (all daemon
threads). A connection thread reads frames, runs route handlers inline and
sends response bodies as the client's flow-control windows allow, so a slow
handler delays the other streams of its connection (but not other
connections). Every socket operation has a timeout; :meth:`TestServer.stop`
wakes all threads, sends GOAWAY, closes every socket and joins every thread
with a bounded wait.
"""

from __future__ import annotations

import gzip
import json
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeAlias

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "CA_FILE",
    "CERT_FILE",
    "KEY_FILE",
    "MAX_BYTES",
    "Handler",
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

#: Largest body ``GET /bytes/<n>`` sends; bigger *n* are capped to this.
MAX_BYTES: int = 1 << 30

#: Header names and values as route handlers may return them.
HeaderPairs: TypeAlias = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]
#: A response body: bytes, or an iterable of byte chunks that is streamed.
Body: TypeAlias = bytes | bytearray | memoryview | Iterable[bytes]
#: What a route handler returns: ``(status, headers, body)``.
Response: TypeAlias = tuple[int, HeaderPairs, Body]
#: A route handler.
Handler: TypeAlias = Callable[["Request"], Response]

_PERIOD = 251  # prime, so dropped or repeated 16 KiB frames change the data
_CHUNK = 64 * 1024
_PATTERN = bytes(range(_PERIOD)) * (_CHUNK // _PERIOD + 2)

_GREETING = (
    b"Hello from hyper.testing!\n"
    b"This response travelled over HTTP/2 from a local test server.\n"
    b"Try /bytes/1024, POST /echo, /gzip, /status/418 and /headers.\n"
)
_NO_BODY_STATUSES = frozenset({204, 304})
_RECV_SIZE = 65536
_SEND_BUDGET = 1 << 20  # bytes of DATA per round before checking for input
_POLL = 1.0  # longest select() wait; stop() wakes threads sooner anyway


def _pattern_chunks(n: int, offset: int = 0) -> Iterator[bytes]:
    end = offset + n
    while offset < end:
        size = min(_CHUNK, end - offset)
        start = offset % _PERIOD
        yield _PATTERN[start : start + size]
        offset += size


def expected_bytes(n: int, offset: int = 0) -> bytes:
    """Return the *n* bytes ``GET /bytes/<N>`` sends starting at *offset*.

    Byte *i* of the response is ``i % 251``, so ``expected_bytes(n)`` is
    exactly the body of ``GET /bytes/n`` (for ``n <= MAX_BYTES``).
    """
    if n < 0 or offset < 0:
        raise ValueError("n and offset must be non-negative")
    return b"".join(_pattern_chunks(n, offset))


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Request:
    """A complete request, as given to route handlers.

    Header names and values are ``str`` decoded from the wire as Latin-1
    (lossless: ``value.encode('latin-1')`` gives back the exact bytes).
    """

    #: The ``:method`` pseudo-header, e.g. ``"GET"``.
    method: str
    #: The path part of ``:path``, without the query string.
    path: str
    #: The query string (without ``?``), or ``""``.
    query: str
    #: All request headers in order, pseudo-headers (``:method``...) first.
    headers: list[tuple[str, str]]
    #: The whole request body.
    body: bytes
    #: The HTTP/2 stream the request arrived on.
    stream_id: int = 0

    def header(self, name: str) -> str | None:
        """Return the first value of header *name* (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


class _Outgoing:
    """A response body waiting for flow-control window.

    Invariant while queued: ``buffer`` is non-empty. If the body iterator
    raises, ``error`` holds the exception and the body counts as finished.
    """

    __slots__ = ("buffer", "chunks", "error", "exhausted")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.buffer = b""
        self.exhausted = False
        self.error: Exception | None = None
        self.fill()

    def fill(self) -> None:
        while not self.buffer and not self.exhausted:
            try:
                self.buffer = bytes(next(self.chunks))
            except StopIteration:
                self.exhausted = True
            except Exception as exc:  # noqa: BLE001 - a route's body iterator failed
                log.error("response body iterator failed", exc_info=True)
                self.error = exc
                self.exhausted = True

    def take(self, size: int) -> bytes:
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        self.fill()
        return data

    @property
    def finished(self) -> bool:
        return self.exhausted and not self.buffer


class _Incoming:
    __slots__ = ("chunks", "headers", "size")

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers
        self.chunks: list[bytes] = []
        self.size = 0


def _prepare(
    method: str, status: int, headers: HeaderPairs, body: Body | str
) -> tuple[list[tuple[bytes, bytes]], _Outgoing | None]:
    """Turn a route's result into wire headers and a pending body (None for HEAD)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[bytes, bytes]] = [(b":status", str(int(status)).encode())]
    names = set()
    for name, value in items:
        raw_name = name.encode("utf-8") if isinstance(name, str) else bytes(name)
        raw_value = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        raw_name = raw_name.lower()
        names.add(raw_name)
        out.append((raw_name, raw_value))
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
        if b"content-length" not in names and status not in _NO_BODY_STATUSES and status >= 200:
            out.append((b"content-length", str(len(data)).encode()))
        chunks: Iterator[bytes] = iter([data] if data else [])
    else:
        chunks = iter(body)
    if b"server" not in names:
        out.append((b"server", b"hyper.testing"))
    return out, None if method == "HEAD" else _Outgoing(chunks)


class _Connection:
    """One client connection, served by its own thread."""

    def __init__(self, server: TestServer, sock: socket.socket, peer: object) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.thread: threading.Thread | None = None
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.incoming: dict[int, _Incoming] = {}
        self.outgoing: dict[int, _Outgoing] = {}
        self.done = False
        # False until the serve loop (which watches the wake-up socket) runs.
        self.serving = False

    # -- thread entry point ------------------------------------------------

    def run(self) -> None:
        selector: selectors.BaseSelector | None = None
        try:
            self.sock.settimeout(self.server.io_timeout)
            # Without this, Nagle + delayed ACKs stall every flow-control round
            # trip by ~40 ms once a window is exhausted.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.server._tls_context is not None and not self._handshake():
                return
            selector = selectors.DefaultSelector()
            selector.register(self.sock, selectors.EVENT_READ, "sock")
            selector.register(self.server._wake_r, selectors.EVENT_READ, "wake")
            self._serve(selector)
        except Exception as exc:  # noqa: BLE001 - a thread must not raise
            if not self.server._stopping.is_set():
                log.debug("connection from %s ended: %r", self.peer, exc)
        finally:
            if selector is not None:
                selector.close()
            self.close_socket()
            self.server._forget(self)

    def _handshake(self) -> bool:
        context = self.server._tls_context
        assert context is not None
        tls_sock = context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
        self.sock = tls_sock  # wrap_socket detached the plain socket
        tls_sock.do_handshake()
        alpn = tls_sock.selected_alpn_protocol()
        self.server._record_alpn(alpn)
        if alpn != "h2":
            log.debug("closing %s: ALPN negotiated %r, not 'h2'", self.peer, alpn)
            return False
        return True

    def _serve(self, selector: selectors.BaseSelector) -> None:
        self.serving = True
        self.h2.initiate_connection()
        self._flush()
        stopping = self.server._stopping
        while not self.done:
            if stopping.is_set():
                self._goodbye()
                return
            sendable = self._send_pending()
            if self._has_buffered_input():
                readable = True
            else:
                ready = selector.select(0 if sendable else _POLL)
                readable = any(key.data == "sock" for key, _ in ready)
            if readable:
                data = self.sock.recv(_RECV_SIZE)
                if not data:
                    return  # EOF
                self._receive(data)
                self._flush()

    def _has_buffered_input(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def _goodbye(self) -> None:
        """Best-effort GOAWAY when the server stops."""
        try:
            self.h2.close_connection()
            self.sock.settimeout(min(1.0, self.server.io_timeout))
            self._flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass

    # -- receiving -----------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.debug("protocol error from %s: %r", self.peer, exc)
            self.done = True
            # Errors in frames already queued a GOAWAY; a bad connection
            # preface did not (h2 raises it before its error handling).
            try:
                self.h2.close_connection(h2.errors.ErrorCodes.PROTOCOL_ERROR)
            except h2.exceptions.ProtocolError:
                pass
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = [(_text(k), _text(v)) for k, v in event.headers]
                self.incoming[event.stream_id] = _Incoming(headers)
            elif isinstance(event, h2.events.DataReceived):
                # Hand the window back at once, whatever we do with the data,
                # so big uploads never stall.
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                incoming = self.incoming.get(event.stream_id)
                if incoming is not None:
                    incoming.chunks.append(event.data)
                    incoming.size += len(event.data)
                    if incoming.size > self.server.max_request_body:
                        del self.incoming[event.stream_id]
                        self._reject_too_large(event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                incoming = self.incoming.pop(event.stream_id, None)
                if incoming is not None:
                    self._dispatch(event.stream_id, incoming)
            elif isinstance(event, h2.events.StreamReset):
                self.incoming.pop(event.stream_id, None)
                self.outgoing.pop(event.stream_id, None)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.done = True

    def _reject_too_large(self, stream_id: int) -> None:
        # A complete (bodyless) response, then RST_STREAM(NO_ERROR) to tell the
        # client to stop uploading (RFC 9113, section 8.1). h2 keeps crediting
        # the connection window for DATA that still arrives on the stream.
        try:
            self.h2.send_headers(
                stream_id,
                [(b":status", b"413"), (b"content-length", b"0"), (b"server", b"hyper.testing")],
                end_stream=True,
            )
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)
        except h2.exceptions.StreamClosedError:
            pass

    def _dispatch(self, stream_id: int, incoming: _Incoming) -> None:
        pseudo = {k: v for k, v in incoming.headers if k.startswith(":")}
        method = pseudo.get(":method", "")
        path, _, query = pseudo.get(":path", "").partition("?")
        request = Request(
            method=method,
            path=path,
            query=query,
            headers=incoming.headers,
            body=b"".join(incoming.chunks),
            stream_id=stream_id,
        )
        try:
            status, headers, body = self.server._handle(request)
            out, pending = _prepare(method, status, headers, body)
            if pending is not None and pending.error is not None:
                raise pending.error
        except Exception as exc:
            log.exception("route handler for %s %s failed", method, path)
            text = f"500 Internal Server Error\n{exc!r}\n".encode()
            out, pending = _prepare(method, 500, [("content-type", "text/plain; charset=utf-8")], text)
        self._start_response(stream_id, out, pending)

    # -- sending ---------------------------------------------------------------

    def _start_response(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], pending: _Outgoing | None
    ) -> None:
        try:
            if pending is None or pending.finished:
                self.h2.send_headers(stream_id, headers, end_stream=True)
            else:
                self.h2.send_headers(stream_id, headers)
                self.outgoing[stream_id] = pending
        except h2.exceptions.StreamClosedError:
            pass  # the client reset the stream meanwhile
        except h2.exceptions.ProtocolError:
            # h2 refused the headers (e.g. a route returned a ":custom"
            # pseudo-header or "te: gzip"); the headers were not sent.
            log.error("cannot send response headers %r", headers, exc_info=True)
            self._reset(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)

    def _reset(self, stream_id: int, error_code: h2.errors.ErrorCodes) -> None:
        self.outgoing.pop(stream_id, None)
        try:
            self.h2.reset_stream(stream_id, error_code)
        except h2.exceptions.ProtocolError:
            pass

    def _send_pending(self) -> bool:
        """Send queued DATA as windows allow; True if more could go now."""
        budget = _SEND_BUDGET
        progress = True
        while self.outgoing and progress and budget > 0:
            progress = False
            for stream_id, pending in list(self.outgoing.items()):
                try:
                    window = self.h2.local_flow_control_window(stream_id)
                except h2.exceptions.StreamClosedError:
                    del self.outgoing[stream_id]
                    continue
                size = min(window, self.h2.max_outbound_frame_size, budget)
                if size <= 0:
                    continue
                data = pending.take(size)
                if pending.error is not None:
                    # Too late for a 500: send what we have, then reset.
                    self.h2.send_data(stream_id, data)
                    self._reset(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                else:
                    self.h2.send_data(stream_id, data, end_stream=pending.finished)
                    if pending.finished:
                        del self.outgoing[stream_id]
                budget -= len(data)
                progress = True
            self._flush()
        return any(self._window(stream_id) > 0 for stream_id in self.outgoing)

    def _window(self, stream_id: int) -> int:
        try:
            return self.h2.local_flow_control_window(stream_id)
        except h2.exceptions.StreamClosedError:
            return 0

    # -- teardown -----------------------------------------------------------

    def force_shutdown(self) -> None:
        """Wake a thread stuck in a blocking call (used by stop())."""
        try:
            # The base-class method: SSLSocket.shutdown() would tear down the
            # SSL object under the feet of the thread still using it.
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def close_socket(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


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
        gets the headers without the body. Handlers run on the connection's
        thread, so different connections may call them concurrently.
    :param io_timeout: timeout in seconds for each blocking socket operation
        (TLS handshake, a read, a whole ``sendall``).
    :param max_request_body: largest request body buffered; beyond it the
        server answers 413 and resets the stream.

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
        self._accept_thread: threading.Thread | None = None
        self._connections: set[_Connection] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._started = False

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
        then have their sockets shut down. Waits at most about *timeout*
        seconds in all. Safe to call more than once.
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
        conn = _Connection(self, sock, peer)
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

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _record_alpn(self, protocol: str | None) -> None:
        with self._lock:
            self.alpn_protocols.append(protocol)

    def _handle(self, request: Request) -> Response:
        handler = self.routes.get(request.path)
        if handler is not None:
            return handler(request)
        return _builtin(request)


# -- built-in routes -----------------------------------------------------------


def _text_response(status: int, text: str) -> Response:
    return status, [("content-type", "text/plain; charset=utf-8")], text.encode()


def _method_not_allowed(request: Request, allowed: str) -> Response:
    status, headers, body = _text_response(405, f"405 Method Not Allowed: {request.method} {request.path}\n")
    return status, [*headers, ("allow", allowed)], body


def _greeting(request: Request) -> Response:
    return 200, [("content-type", "text/plain; charset=utf-8")], _GREETING


def _bytes(request: Request, n: int) -> Response:
    n = min(n, MAX_BYTES)
    headers = [
        ("content-type", "application/octet-stream"),
        ("content-length", str(n)),
    ]
    return 200, headers, _pattern_chunks(n)


def _echo(request: Request) -> Response:
    return 200, [("content-type", "application/octet-stream")], request.body


def _gzip(request: Request) -> Response:
    headers = [
        ("content-type", "text/plain; charset=utf-8"),
        ("content-encoding", "gzip"),
    ]
    return 200, headers, gzip.compress(_GREETING, mtime=0)


def _status(request: Request, code: int) -> Response:
    if not 200 <= code <= 599:
        return _text_response(400, f"400 Bad Request: status {code} not in 200-599\n")
    return code, [], b""


def _headers(request: Request) -> Response:
    merged: dict[str, str] = {}
    for name, value in request.headers:
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    body = json.dumps(merged, indent=2).encode() + b"\n"
    return 200, [("content-type", "application/json")], body


_GET_ROUTES: dict[str, Callable[[Request], Response]] = {
    "/": _greeting,
    "/gzip": _gzip,
    "/headers": _headers,
}


def _builtin(request: Request) -> Response:
    path, method = request.path, request.method
    get_like = method in ("GET", "HEAD")
    if path in _GET_ROUTES:
        return _GET_ROUTES[path](request) if get_like else _method_not_allowed(request, "GET, HEAD")
    if path == "/echo":
        return _echo(request) if method in ("POST", "PUT") else _method_not_allowed(request, "POST, PUT")
    prefix, _, arg = path.rpartition("/")
    if arg.isdigit() and arg.isascii():
        # Clamp before int(): Python refuses to parse >4300-digit numbers.
        number = int(arg) if len(arg) <= 18 else 10**18
        if prefix == "/bytes":
            return _bytes(request, number) if get_like else _method_not_allowed(request, "GET, HEAD")
        if prefix == "/status":
            return _status(request, number)
    return _text_response(404, f"404 Not Found: {path}\n")

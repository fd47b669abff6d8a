"""The in-process HTTP/2 server of ``python -m bench.layers``: every GET gets the same 1 KiB.

``bench.layers`` measures the *client's* CPU time per request, layer by
layer, so its server runs in the same process but on other threads (whose
CPU time :func:`time.thread_time` in the client thread does not count) or,
for the in-memory rows, between the client's timed spans.  One server
object is one ``h2`` server connection that answers each request at once
with the headers of :data:`RESPONSE_FIELDS` and a 1 KiB body.

Two header styles, because servers differ where it costs a client most
(issue 14): ``literal`` sends every field as a never-indexed literal (no
dynamic-table entry is read; like nginx, whose blocks a decoder can memoise)
and ``indexed`` lets the encoder index and then refer to the dynamic table
(like nghttpd, h2o, apache2 and Go servers).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from typing import Any

import h2.config
import h2.connection
import h2.events
from hpack import HeaderTuple, NeverIndexedHeaderTuple

from bench.api_micro import RESPONSE_FIELDS

BODY = bytes(range(256)) * 4
STYLES = ("literal", "indexed")
#: Seconds any socket operation of the server may wait (bounded, never a hang).
IO_TIMEOUT = 30.0


def response_fields(style: str) -> list[Any]:
    """The response header block's fields in *style* (see the module docstring).

    The fields are nginx's for a static 1 KiB file, the same as the API
    layer's micro-benchmark answers with.
    """
    kind = NeverIndexedHeaderTuple if style == "literal" else HeaderTuple
    return [kind(name, value) for name, value in RESPONSE_FIELDS]


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A TLS server context with the bench certificate, offering only ALPN ``h2``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["h2"])
    return context


class AnsweringServer:
    """One ``h2`` server connection that answers every request with :data:`BODY`, at once."""

    def __init__(self, style: str) -> None:
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {style!r}")
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config)
        self.h2.initiate_connection()
        # Wide windows: the benchmark's client never waits for credit.
        self.h2.increment_flow_control_window((1 << 30) - 65536)
        self.fields = response_fields(style)
        self.answered = 0
        self.ended = False

    def receive(self, data: bytes) -> bytes:
        """Take the client's bytes; what the server sends back (answers included)."""
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived) and event.stream_id is not None:
                self.h2.send_headers(event.stream_id, self.fields)
                self.h2.send_data(event.stream_id, BODY, end_stream=True)
                self.answered += 1
            elif isinstance(event, h2.events.DataReceived) and event.stream_id is not None:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.ended = True
        return self.h2.data_to_send()


class ThreadedServer:
    """A listening socket on 127.0.0.1; one :class:`AnsweringServer` per connection, on its own thread.

    With *context*, connections are TLS (ALPN ``h2``); without, cleartext
    HTTP/2 with prior knowledge. Use as a context manager: leaving it stops
    the threads and closes every socket.
    """

    def __init__(self, style: str, context: ssl.SSLContext | None) -> None:
        self.style = style
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # how often the accept loop looks at _stopping
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()  # guards _threads and _sockets (accept thread vs close)
        self.errors: list[BaseException] = []
        accept = threading.Thread(target=self._accept_loop, name="layers-accept", daemon=True)
        self._threads.append(accept)
        accept.start()

    def __enter__(self) -> ThreadedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            worker = threading.Thread(target=self._serve, args=(conn,), name="layers-conn", daemon=True)
            with self._lock:
                self._sockets.append(conn)
                self._threads.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        sock: socket.socket = conn
        try:
            conn.settimeout(IO_TIMEOUT)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock = self._context.wrap_socket(conn, server_side=True)
                with self._lock:
                    self._sockets.append(sock)
            server = AnsweringServer(self.style)
            sock.sendall(server.h2.data_to_send())
            while not server.ended and not self._stopping.is_set():
                data = sock.recv(65536)
                if not data:
                    return
                out = server.receive(data)
                if out:
                    sock.sendall(out)
        except (OSError, ssl.SSLError) as exc:
            if not self._stopping.is_set():
                self.errors.append(exc)
        except BaseException as exc:  # noqa: BLE001 -- reported by the benchmark, never lost
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        """Stop accepting, close every connection, join the threads (bounded)."""
        self._stopping.set()
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        for thread in threads:
            thread.join(IO_TIMEOUT)

"""A scripted HTTP/2 server for tests: a real socket, server-side h2, a test's own script.

Real servers never misbehave on cue; this one does whatever the test's script
says, on 127.0.0.1, in a thread, and reports any failure of the script back to
the test when it stops.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import hyperframe.frame

Script = Callable[["Peer"], None]


class Peer:
    """The server side of one accepted connection, driven by a script."""

    def __init__(self, sock: socket.socket, settings: dict[int, int] | None = None) -> None:
        self.sock = sock
        self.sock.settimeout(5)
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config)
        self._settings = settings or {}
        self.events: list[Any] = []
        self.closed = False

    def handshake(self) -> None:
        """Send our preface and SETTINGS, then read the client's preface.

        A client may connect and close before this server thread gets to
        the handshake (a test closing its first connection at once, on a
        loaded machine): our SETTINGS then meet a reset. That is not a
        server failure: the peer is marked closed and the script runs
        anyway, so a script that expected more from that client fails on
        its own terms, and the server goes on to its next connection
        instead of dying with the reset (which left later connections
        never accepted).
        """
        if self._settings:
            self.h2.local_settings = h2.settings.Settings(client=False, initial_values=self._settings)
        self.h2.initiate_connection()
        try:
            self.flush()
            self.wait_for(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
            # (Over TLS a client that closed first shows as an EOF.)
            self.closed = True
        except AssertionError:
            if not self.closed:
                raise  # a client still there that never sent its SETTINGS

    def flush(self) -> None:
        """Send whatever h2 has queued."""
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        """Send bytes straight to the socket, h2 bypassed."""
        self.sock.sendall(data)

    def send_goaway(self, last_stream_id: int, error_code: int = 0, debug: bytes = b"") -> None:
        """Send GOAWAY raw, so h2 still lets the script answer older streams."""
        frame = hyperframe.frame.GoAwayFrame(0)
        frame.last_stream_id = last_stream_id
        frame.error_code = error_code
        frame.additional_data = debug
        self.flush()
        self.sock.sendall(frame.serialize())

    def read_events(self, timeout: float = 5.0) -> list[Any]:
        """Receive one batch of bytes and return the events they made (may be [])."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return []
        events = self.h2.receive_data(data)
        self.events.extend(events)
        self.flush()
        return events

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        """Read until an event matching ``predicate`` arrives; return it."""
        for event in self.events:
            if predicate(event):
                self.events.remove(event)
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.read_events(deadline - time.monotonic()):
                if predicate(event):
                    self.events.remove(event)
                    return event
            if self.closed:
                raise AssertionError("client closed the connection while the script waited")
        raise AssertionError("script timed out waiting for an event")

    def wait_request(self, timeout: float = 5.0) -> h2.events.RequestReceived:
        """The next request's HEADERS."""
        return self.wait_for(lambda e: isinstance(e, h2.events.RequestReceived), timeout)

    def collect_upload(self, stream_id: int, got: bytearray, events: list[str], timeout: float = 10.0) -> Any:
        """Take ``stream_id``'s DATA into ``got`` until the stream ends or is reset; return that last event.

        Each event's class name goes to ``events`` in order (DataReceived
        ..., then StreamEnded or StreamReset), for tests that check how an
        upload ended as well as what it carried.
        """
        ends = (h2.events.StreamEnded, h2.events.StreamReset)
        while True:
            event = self.wait_for(
                lambda e: isinstance(e, (h2.events.DataReceived, *ends)) and e.stream_id == stream_id,
                timeout=timeout,
            )
            events.append(type(event).__name__)
            if not isinstance(event, h2.events.DataReceived):
                return event
            got.extend(event.data)

    def data_until_closed(self, got: bytearray, timeout: float = 10.0) -> None:
        """Take every DATA payload, of any stream, into ``got`` until the client hangs up.

        DATA that came in the same read as an event a script waited for
        waits in ``events``; it is taken first, then every later read's.
        """
        pending, self.events = self.events, []
        while True:
            got.extend(b"".join(e.data for e in pending if isinstance(e, h2.events.DataReceived)))
            if self.closed:
                return
            pending = self.read_events(timeout)

    def read_body(self, stream_id: int, timeout: float = 5.0) -> bytes:
        """Collect a request body until END_STREAM, acknowledging it as it comes."""
        body = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = [e for e in self.events if getattr(e, "stream_id", None) == stream_id]
            for event in pending:
                self.events.remove(event)
                if isinstance(event, h2.events.DataReceived):
                    body += event.data
                    self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
                    self.flush()
                elif isinstance(event, h2.events.StreamEnded):
                    return bytes(body)
            self.read_events(deadline - time.monotonic())
            if self.closed:
                raise AssertionError("client closed before the request body ended")
        raise AssertionError("request body did not end in time")

    def respond(
        self,
        stream_id: int,
        status: int = 200,
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        end_stream: bool = True,
    ) -> None:
        """Send a response that fits in the client's windows."""
        self.h2.send_headers(
            stream_id, [(b":status", str(status).encode()), *headers], end_stream=not body and end_stream
        )
        if body:
            self.send_data(stream_id, body, end_stream=end_stream)
        self.flush()

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Send body bytes in frames, waiting for window when needed."""
        view = memoryview(data)
        while view:
            window = self.h2.local_flow_control_window(stream_id)
            size = min(window, self.h2.max_outbound_frame_size, len(view))
            if size == 0:
                self.read_events(5)
                if self.closed:
                    raise AssertionError("client closed while we waited for window")
                continue
            self.h2.send_data(stream_id, view[:size].tobytes())
            view = view[size:]
            self.flush()
        if end_stream:
            self.h2.end_stream(stream_id)
        self.flush()

    def hang_up(self) -> None:
        """Close cleanly: FIN first, then drain, so the kernel sends no RST
        (an RST can destroy data the client has not read yet)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        deadline = time.monotonic() + 2
        self.sock.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(65536):
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        self.closed = True

    def drain_until_closed(self, timeout: float = 5.0) -> None:
        """Keep reading (answering PINGs/SETTINGS) until the client hangs up."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            try:
                self.read_events(deadline - time.monotonic())
            except (TimeoutError, OSError):
                return


class ScriptedServer:
    """Accept connections on 127.0.0.1 and run ``script(peer)`` for each.

    ``handshake=False`` hands the raw socket to the script before any HTTP/2
    is spoken (for servers that answer in HTTP/1.1, stall, and so on).
    """

    def __init__(
        self,
        script: Script,
        *,
        settings: dict[int, int] | None = None,
        handshake: bool = True,
        tls_context: ssl.SSLContext | None = None,
        connections: int = 1,
    ) -> None:
        self._script = script
        self._settings = settings
        self._handshake = handshake
        self._tls = tls_context
        self._connections = connections
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(10)
        self.port: int = self._listener.getsockname()[1]
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._socks: list[socket.socket] = []
        self.done = threading.Event()

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            for _ in range(self._connections):
                sock, _ = self._listener.accept()
                self._socks.append(sock)
                if self._tls is not None:
                    sock.settimeout(5)
                    sock = self._tls.wrap_socket(sock, server_side=True)
                    self._socks.append(sock)
                peer = Peer(sock, self._settings)
                if self._handshake:
                    peer.handshake()
                self._script(peer)
        except BaseException as exc:  # noqa: BLE001 - reported to the test in stop()
            self.errors.append(exc)
        finally:
            self.done.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Wait for the script, close every socket, re-raise a script failure."""
        self._thread.join(timeout)
        for sock in self._socks:
            try:
                sock.close()
            except OSError:
                pass
        self._listener.close()
        if self._thread.is_alive():
            raise AssertionError("scripted server did not finish")
        if self.errors:
            raise self.errors[0]

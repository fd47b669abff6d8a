"""Scripted HTTP/1.1 peers: a loopback server that runs one script per connection.

Real servers (nginx) cover ordinary HTTP/1.1; these scripts produce what a
real server will not: truncated bodies, garbage status lines, stalls, huge
heads, closes at awkward moments. Each script gets the accepted socket and a
server-side ``h11.Connection``; helpers read requests and write raw bytes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import h11

Script = Callable[["Peer"], None]

#: Bound on every wait of a script, so a broken test never hangs the suite.
SCRIPT_TIMEOUT = 10.0


@dataclass
class ReceivedRequest:
    """A request as the scripted server saw it."""

    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Peer:
    """One accepted connection and helpers to script it."""

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        #: 0 for the first connection the server accepted, 1 for the next...
        self.index = index
        self.h11 = h11.Connection(h11.SERVER)

    def read_request(self) -> ReceivedRequest | None:
        """The next complete request, or None when the client closed."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        request: h11.Request | None = None
        body = b""
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                data = self.sock.recv(65536)
                self.h11.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return ReceivedRequest(
                    request.method, request.target, list(request.headers), body, list(event.headers)
                )

    def respond(
        self,
        status: int = 200,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes = b"",
        trailers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Send a whole response through h11 (content-length unless chunked is asked for)."""
        fields = list(headers or [])
        names = {name.lower() for name, _ in fields}
        if b"content-length" not in names and b"transfer-encoding" not in names:
            fields.append((b"content-length", str(len(body)).encode()))
        out = self.h11.send(h11.Response(status_code=status, headers=fields)) or b""
        if body:
            out += self.h11.send(h11.Data(data=body)) or b""
        out += self.h11.send(h11.EndOfMessage(headers=trailers or [])) or b""
        self.sock.sendall(out)

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are, bypassing h11."""
        self.sock.sendall(data)

    def wait_closed(self) -> None:
        """Block until the client closes (or the script timeout passes)."""
        with contextlib.suppress(OSError):
            while self.sock.recv(65536):
                pass


class ScriptedServer:
    """A loopback TCP server running ``script(peer)`` for each accepted connection.

    Use as a context manager; ``connections`` counts accepted sockets and
    ``errors`` collects exceptions raised by scripts (tests assert it empty).
    """

    def __init__(self, script: Script) -> None:
        self._script = script
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def address(self) -> str:
        """``127.0.0.1:port``."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> ScriptedServer:
        self._accept_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accept_thread.join(SCRIPT_TIMEOUT)
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(SCRIPT_TIMEOUT)
        for sock in self._sockets:
            sock.close()
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(SCRIPT_TIMEOUT)
            self._sockets.append(sock)
            index = self.connections
            self.connections += 1
            thread = threading.Thread(target=self._run, args=(sock, index), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket, index: int) -> None:
        try:
            self._script(Peer(sock, index))
        except (OSError, h11.ProtocolError):
            pass  # the client went away: part of many scripts
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def scripted(script: Script) -> Iterator[ScriptedServer]:
    """``with scripted(script) as server:`` -- a running :class:`ScriptedServer`."""
    with ScriptedServer(script) as server:
        yield server

"""Server push with HTTP20Connection(enable_push=True). Runs on its own.

The script starts a small HTTP/2 server on 127.0.0.1 (cleartext, prior
knowledge; written with ``h2`` in a thread, since few real servers still
push). Asked for ``/page.html``, it pushes ``/style.css``, ``/app.js`` and
``/video.bin`` with the page. The client reads the page, takes the pushed
stylesheet and script and cancels the video push.

Run it::

    python examples/server_push.py
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.events
import h2.exceptions

import hyper

PAGE = b'<html><head><link rel="stylesheet" href="/style.css"><script src="/app.js"></script></head></html>\n'
PUSHED = {
    b"/style.css": b"body { color: #333; }\n",
    b"/app.js": b"console.log('pushed');\n",
    b"/video.bin": bytes(40_000),
}


def fetch_page_and_pushes(host: str, port: int) -> None:
    """Get a page and the resources the server pushes with it."""
    with hyper.HTTP20Connection(host, port, secure=False, enable_push=True, timeout=10) as conn:
        stream_id = conn.request("GET", "/page.html")
        page = conn.getresponse(stream_id).read()
        print(f"page: {len(page)} bytes")
        # The page has been read to its end, so every push promised with it
        # has arrived; capture_all=True would also wait for pushes to come.
        for push in conn.get_pushes(stream_id):
            if push.path.endswith(".bin"):
                push.cancel()  # not wanted: reset the pushed stream, drop its data
                print(f"cancelled: {push.method} {push.path}")
                continue
            with push.getresponse() as response:
                body = response.read()
            print(f"pushed:    {push.method} {push.path} -> {response.status}, {len(body)} bytes")


def _respond(conn: h2.connection.H2Connection, stream_id: int, body: bytes) -> None:
    """Headers and body in one go: every body here fits the client's windows."""
    fields = [(b":status", b"200"), (b"content-length", str(len(body)).encode())]
    conn.send_headers(stream_id, fields, end_stream=not body)
    size = conn.max_outbound_frame_size
    for start in range(0, len(body), size):
        conn.send_data(stream_id, body[start : start + size], end_stream=start + size >= len(body))


def _serve(sock: socket.socket) -> None:
    """Serve one client connection: pages with pushes, then whatever else it asks."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    with sock:
        sock.sendall(conn.data_to_send())
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                return
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    request = dict(event.headers or [])
                    if request[b":path"] == b"/page.html":
                        # Promise first, on the page's stream, then answer everything.
                        promised = []
                        for path, body in PUSHED.items():
                            pushed_id = conn.get_next_available_stream_id()
                            conn.push_stream(
                                event.stream_id,
                                pushed_id,
                                [
                                    (b":method", b"GET"),
                                    (b":scheme", b"http"),
                                    (b":authority", request[b":authority"]),
                                    (b":path", path),
                                ],
                            )
                            promised.append((pushed_id, body))
                        _respond(conn, event.stream_id, PAGE)
                        for pushed_id, body in promised:
                            with contextlib.suppress(h2.exceptions.StreamClosedError):
                                _respond(conn, pushed_id, body)
                    else:
                        _respond(conn, event.stream_id, b"not pushed\n")
            sock.sendall(conn.data_to_send())


@contextlib.contextmanager
def pushing_server() -> Iterator[int]:
    """The pushing server on 127.0.0.1; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            client.settimeout(10)
            worker = threading.Thread(target=_serve, args=(client,), daemon=True)
            worker.start()
            workers.append(worker)

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()
        for worker in workers:
            worker.join(10)


def main() -> None:
    with pushing_server() as port:
        fetch_page_and_pushes("127.0.0.1", port)


if __name__ == "__main__":
    main()

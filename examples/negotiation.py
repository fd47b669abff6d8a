"""HTTPConnection picks the protocol; proxies tunnel with CONNECT. Runs on its own.

The script starts three servers on 127.0.0.1 in threads, then talks to them
with one ``hyper.HTTPConnection`` API:

* an HTTP/2 server over TLS (``hyper.testing.TestServer``, bundled test CA),
* a plain HTTP/1.1 server (the standard library's ``http.server``),
* a minimal forward proxy that only knows ``CONNECT`` (enough for TLS).

Run it::

    python examples/negotiation.py
"""

from __future__ import annotations

import contextlib
import http.server
import select
import socket
import threading
from collections.abc import Iterator

import hyper
from hyper.testing import CA_FILE, TestServer
from hyper.tls import init_context


class Hello(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a short text, keeping connections alive."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        body = b"hello over HTTP/1.1\n"
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep the example's output short


def relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until one side closes."""
    with client, upstream:
        while True:
            readable, _, _ = select.select([client, upstream], [], [], 30)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)


def handle_proxy_client(client: socket.socket) -> None:
    """Read ``CONNECT host:port``, connect there, answer 200, relay."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = client.recv(4096)
        if not chunk:
            client.close()
            return
        head += chunk
    method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if method != b"CONNECT":
        client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
        client.close()
        return
    host, _, port = target.decode().rpartition(":")
    upstream = socket.create_connection((host, int(port)), timeout=10)
    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    relay(client, upstream)


@contextlib.contextmanager
def connect_proxy() -> Iterator[int]:
    """A CONNECT-only proxy on 127.0.0.1; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            threading.Thread(target=handle_proxy_client, args=(client,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def main() -> None:
    # The bundled test CA is trusted here; the default context trusts certifi's.
    context = init_context(cert_path=CA_FILE, alpn=("h2", "http/1.1"))
    http11 = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    http11.daemon_threads = True
    threading.Thread(target=http11.serve_forever, daemon=True).start()
    try:
        with TestServer() as h2_server, connect_proxy() as proxy_port:
            # TLS: ALPN offers h2 and http/1.1, the server chooses HTTP/2.
            with hyper.HTTPConnection(f"localhost:{h2_server.port}", ssl_context=context, timeout=10) as conn:
                response = conn.getresponse(conn.request("GET", "/"))
                first_line = response.read().splitlines()[0]
                print(f"TLS server:       {conn.version} {response.status} {first_line!r}")

            # Cleartext: the first request offers Upgrade: h2c; http.server
            # ignores it, so the connection stays HTTP/1.1 (and is kept alive).
            with hyper.HTTPConnection(f"127.0.0.1:{http11.server_port}", secure=False, timeout=10) as conn:
                first = conn.request("GET", "/one")
                second = conn.request("GET", "/two")
                bodies = [conn.getresponse(first).read(), conn.getresponse(second).read()]
                print(f"cleartext server: {conn.version} {bodies[0]!r} x{len(bodies)}")

            # Through a proxy: CONNECT tunnel first, then TLS and ALPN inside it.
            with hyper.HTTPConnection(
                f"localhost:{h2_server.port}",
                ssl_context=context,
                proxy_host=f"127.0.0.1:{proxy_port}",
                timeout=10,
            ) as conn:
                response = conn.getresponse(conn.request("GET", "/bytes/1000"))
                print(f"through proxy:    {conn.version} {response.status} {len(response.read())} bytes")
    finally:
        http11.shutdown()
        http11.server_close()


if __name__ == "__main__":
    main()

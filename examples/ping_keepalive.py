"""ping() and keep-alive on an HTTP20Connection. Runs on its own.

The script starts a :class:`hyper.testing.TestServer` on 127.0.0.1, measures
a few round trips with ``ping()``, then keeps a connection idle with
``keepalive=`` switched on and uses it again.

Run it::

    python examples/ping_keepalive.py
"""

from __future__ import annotations

import ssl
import threading
import time

import hyper
import hyper.tls
from hyper.testing import TestServer


def measure(host: str, port: int, context: ssl.SSLContext) -> None:
    """Round trips to the server, measured with PING frames."""
    with hyper.HTTP20Connection(host, port, ssl_context=context, timeout=10) as conn:
        # ping() opens the connection if needed and waits for the ACK,
        # bounded by the read timeout (ReadTimeout if none comes).
        round_trips = [conn.ping() for _ in range(3)]
        conn.ping(b"my-bytes")  # your own 8 bytes of opaque data
        print(f"ping: {len(round_trips)} answered, slowest in {max(round_trips) * 1000:.1f} ms")


def idle_with_keepalive(host: str, port: int, context: ssl.SSLContext) -> None:
    """An idle connection is pinged, so a dead one is noticed before it is used."""
    with hyper.HTTP20Connection(
        host, port, ssl_context=context, timeout=10, keepalive=0.2, keepalive_timeout=5
    ) as conn:
        conn.getresponse(conn.request("GET", "/")).read()
        time.sleep(0.5)  # idle: the keep-alive thread sends PING meanwhile
        pinging = any(thread.name == "hyper-keepalive" for thread in threading.enumerate())
        # Had the server stopped answering, waiters would have got
        # ConnectionTerminated and this request would open a new connection.
        response = conn.getresponse(conn.request("GET", "/"))
        print(f"after idling: status {response.status}, keep-alive thread running: {pinging}")
    # Closing the connection ends its keep-alive thread.


def main() -> None:
    with TestServer() as server:
        context = hyper.tls.init_context(cert_path=server.ca_file)
        measure("localhost", server.port, context)
        idle_with_keepalive("localhost", server.port, context)


if __name__ == "__main__":
    main()

"""``python -m hyper.testing``: a self-contained demo of hyper.

With no arguments, start a :class:`~hyper.testing.TestServer` on 127.0.0.1
(a free port), fetch ``/`` with hyper over TLS, print the status, negotiated
protocol, headers and body, and stop. Nothing leaves the machine.

``--serve`` instead runs the server in the foreground until Ctrl-C (or
SIGTERM), printing its URL and the CA file to trust, e.g.::

    python -m hyper.testing --serve --port 8443
    curl --http2 --cacert <CA file> https://localhost:8443/bytes/16

The bundled certificates' private keys are public: localhost tests only.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from hyper.testing.server import TestServer


def demo(port: int = 0) -> int:
    """Run the quick-start demo; return a process exit status."""
    # Imported here so that --serve works even without the client importable.
    import hyper
    import hyper.tls

    with TestServer(port=port) as srv:
        ctx = hyper.tls.init_context(cert_path=srv.ca_file)
        with hyper.HTTP20Connection("localhost", srv.port, ssl_context=ctx) as conn:
            stream_id = conn.request("GET", "/")
            resp = conn.getresponse(stream_id)
            body = resp.read()
        # The server records what ALPN settled on for each TLS connection.
        protocol = srv.alpn_protocols[-1] if srv.alpn_protocols else None

    print(f"GET {srv.url}")
    print(f"status:   {resp.status} {resp.reason}")
    print(f"protocol: {protocol or 'unknown'} (ALPN, as negotiated with the server)")
    print("headers:")
    for name, value in resp.headers.items():
        print(f"  {name.decode('latin-1')}: {value.decode('latin-1')}")
    print("body:")
    print(body.decode("utf-8", "replace"), end="" if body.endswith(b"\n") else "\n")
    return 0 if resp.status == 200 else 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(host: str = "127.0.0.1", port: int = 0, tls: bool = True) -> int:
    """Run a TestServer in the foreground until Ctrl-C or SIGTERM; return an exit status."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        with TestServer(host=host, port=port, tls=tls) as srv:
            try:
                print(f"Serving HTTP/2 on {srv.url}")
                if tls:
                    print(f"CA certificate: {srv.ca_file}")
                    print(f"Try: curl --http2 --cacert {srv.ca_file} {srv.url}")
                else:
                    print(f"Try: curl --http2-prior-knowledge {srv.url}")
                print("Press Ctrl-C to stop.", flush=True)
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("Stopping.", flush=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m hyper.testing``."""
    parser = argparse.ArgumentParser(
        prog="python -m hyper.testing",
        description="Fetch / from a local HTTP/2 test server with hyper, or (--serve) just run the server.",
        epilog="The bundled TLS private key is public: use it for localhost tests only.",
    )
    parser.add_argument("--serve", action="store_true", help="run the server in the foreground until Ctrl-C")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on with --serve (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="with --serve: cleartext HTTP/2 (prior knowledge) instead of TLS",
    )
    args = parser.parse_args(argv)
    if not args.serve and (args.plain or args.host != "127.0.0.1"):
        parser.error("--plain and --host only apply with --serve")
    if args.serve:
        return serve(args.host, args.port, tls=not args.plain)
    return demo(args.port)


if __name__ == "__main__":
    sys.exit(main())

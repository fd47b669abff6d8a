"""The pure-Python TLS limit: raw bytes through one ``ssl`` socket.

Two Python processes on 127.0.0.1, no HTTP at all: the server sends (or
receives) N bytes over TLS with the benchmark's certificate, the client
receives them with ``recv_into`` a large reusable buffer (or sends them with
``sendall`` of 1 MiB ``memoryview`` slices).  No Python HTTP client can move
body bytes faster than this, so it is the yardstick of the download and
upload targets.

* ``python -m bench.tlslimit serve CERT KEY`` prints ``PORT <n>`` and serves
  connections one at a time (at most :data:`MAX_CONNECTIONS`, each bounded
  by a socket timeout) until it is killed.
* ``python -m bench.tlslimit client '<json spec>'`` measures one transfer and
  prints ``BENCH-RESULT {json}`` like :mod:`bench.worker`.

Protocol: the client sends ``b"D"`` or ``b"U"`` and the size as 8 bytes big
endian.  For ``D`` the server sends that many bytes; for ``U`` it reads that
many and answers one byte, ``b"k"``.  The client's clock runs from just
before the command is sent until the last byte (or the ``k``) has arrived.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import time

from bench.worker import RESULT_MARKER

BLOCK = 1024 * 1024
MAX_CONNECTIONS = 1000
SOCKET_TIMEOUT = 60.0


def _recv_exactly(sock: ssl.SSLSocket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        piece = sock.recv(count - len(data))
        if not piece:
            raise ConnectionError("peer closed early")
        data += piece
    return data


def _serve_one(tls: ssl.SSLSocket, block: memoryview, buffer: bytearray) -> None:
    header = _recv_exactly(tls, 9)
    command, size = header[:1], int.from_bytes(header[1:], "big")
    if command == b"D":
        remaining = size
        while remaining:
            step = min(remaining, len(block))
            tls.sendall(block[:step])
            remaining -= step
        # Wait for the client to hang up, so the last bytes are not cut off.
        tls.recv(1)
    elif command == b"U":
        received = 0
        while received < size:
            count = tls.recv_into(buffer)
            if count == 0:
                raise ConnectionError("client closed during upload")
            received += count
        tls.sendall(b"k")


def serve(cert_file: str, key_file: str) -> int:
    """Serve transfers until killed (or :data:`MAX_CONNECTIONS` were served)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    block = memoryview(os.urandom(BLOCK))
    buffer = bytearray(BLOCK)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        print(f"PORT {listener.getsockname()[1]}", flush=True)
        for _ in range(MAX_CONNECTIONS):
            raw, _ = listener.accept()
            raw.settimeout(SOCKET_TIMEOUT)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    _serve_one(tls, block, buffer)
            except (OSError, ValueError) as exc:
                print(f"transfer failed: {exc!r}", file=sys.stderr, flush=True)
            finally:
                raw.close()
    return 0


def measure(spec: dict[str, object]) -> dict[str, object]:
    """One timed transfer as described by *spec* (direction, size, ...)."""
    host, port, size = str(spec["host"]), int(str(spec["port"])), int(str(spec["body_bytes"]))
    direction = spec["workload"]
    context = ssl.create_default_context(cafile=str(spec["ca"]))
    buffer = bytearray(BLOCK)
    block = memoryview(os.urandom(BLOCK))
    with socket.create_connection((host, port), timeout=float(str(spec["timeout"]))) as raw:
        # As HTTP clients do: no Nagle delay for the small command.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with context.wrap_socket(raw, server_hostname=host) as tls:
            started = time.perf_counter()
            if direction == "download":
                tls.sendall(b"D" + size.to_bytes(8, "big"))
                received = 0
                while received < size:
                    count = tls.recv_into(buffer)
                    if count == 0:
                        raise ConnectionError(f"server closed after {received:,} bytes")
                    received += count
            elif direction == "upload":
                tls.sendall(b"U" + size.to_bytes(8, "big"))
                remaining = size
                while remaining:
                    step = min(remaining, BLOCK)
                    tls.sendall(block[:step])
                    remaining -= step
                if _recv_exactly(tls, 1) != b"k":
                    raise ConnectionError("bad acknowledgement")
            else:
                raise ValueError(f"the TLS limit has no {direction!r} workload")
            elapsed = time.perf_counter() - started
            protocol = str(tls.version())
    return {"ok": True, "elapsed": elapsed, "amount": size, "protocol": protocol}


def main(argv: list[str]) -> int:
    """Entry point: ``serve CERT KEY`` or ``client '<json spec>'``."""
    if argv[:1] == ["serve"] and len(argv) == 3:
        return serve(argv[1], argv[2])
    if argv[:1] == ["client"] and len(argv) == 2:
        try:
            result = measure(json.loads(argv[1]))
        except Exception as exc:  # noqa: BLE001 -- every failure becomes a report line
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        print(RESULT_MARKER + json.dumps(result), flush=True)
        return 0
    print("usage: python -m bench.tlslimit serve CERT KEY | client JSON", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

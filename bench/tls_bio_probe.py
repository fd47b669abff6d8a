"""Probe (issue 14, tls8): does reading TLS through memory BIOs save client CPU?

Python's :mod:`ssl` never turns on OpenSSL's read-ahead, so an
:class:`ssl.SSLSocket` reads every TLS record with two ``recv()`` calls (the
5-byte record header, then the body), and a drain that reads until "would
block" ends with one more ``recv()`` that fails with ``EAGAIN`` and an
:class:`ssl.SSLWantReadError`. An :class:`ssl.SSLObject` over two
:class:`ssl.MemoryBIO` objects instead lets one ``recv_into`` of the plain
socket carry many records, which the SSL object then decrypts without a
system call; a short ``recv_into`` says the kernel had nothing more, so no
``EAGAIN`` round is needed either.

This script measures both readers side by side, in one process and one
run, against the benchmark's nginx and nghttpd, on the floor client's
minimal HTTP/2 logic (:mod:`bench.floor`), so that the readers' costs are
not hidden under a library's:

* ``sock``: what hyper does today: a non-blocking :class:`ssl.SSLSocket`,
  ``poll()`` when nothing is buffered, then the SSL object's C ``read``
  until "would block" (or, for a lone response, a short read with nothing
  pending, as hyper's reader stops);
* ``bio``: the same loop over an :class:`ssl.SSLObject` and memory BIOs:
  ``poll()`` only when neither the SSL object nor the incoming BIO holds
  bytes and the last ``recv_into`` was short.

Writes: ``sock`` uses ``SSLSocket.sendall``; ``bio`` encrypts into the
outgoing BIO and sends its bytes with the plain socket's ``sendall``.

Usage: ``python -m bench.tls_bio_probe [--rounds 5] [--servers nginx,nghttpd]``;
client CPU (``time.process_time``) per request (seq, mux) or per MiB
(download), medians over rounds, the two readers alternating in each round.
"""

from __future__ import annotations

import argparse
import select
import shutil
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.floor import BUFFER_SIZE, FloorConnection, FloorError
from bench.server import (
    BIG_PATH,
    SMALL_PATH,
    SMALL_SIZE,
    BenchServer,
    pick_work_dir,
    prepare_files,
    start_server,
)

#: What one ``recv_into`` of the plain socket asks for (many TLS records).
RAW_CHUNK = 64 * 1024


class SockReader:
    """Today's reader: a non-blocking SSLSocket read with the SSL object's C ``read``."""

    def __init__(self, raw: socket.socket, context: ssl.SSLContext, host: str, timeout: float) -> None:
        self.tls = context.wrap_socket(raw, server_hostname=host)
        self.tls.setblocking(False)
        self.timeout_ms = int(timeout * 1000)
        sslobj = self.tls._sslobj  # type: ignore[attr-defined]
        self._read, self._pending = sslobj.read, sslobj.pending
        self.poller = select.poll()
        self.poller.register(self.tls.fileno(), select.POLLIN)

    def selected_alpn_protocol(self) -> str | None:
        return self.tls.selected_alpn_protocol()

    def sendall(self, data: bytes) -> None:
        # Requests are small: a non-blocking sendall does not meet a full buffer here.
        self.tls.sendall(data)

    def recv_into(self, view: memoryview) -> int:
        """Wait if need be, then read until "would block" or a short read with nothing pending."""
        read, pending, limit = self._read, self._pending, len(view)
        total = 0
        if not pending() and not self.poller.poll(self.timeout_ms):
            # Like hyper's reader: poll first (TLS holds nothing decrypted).
            raise TimeoutError("no bytes within the timeout")
        while True:
            try:
                got = read(limit - total, view[total:])
            except ssl.SSLWantReadError:
                if total:
                    return total
                if not self.poller.poll(self.timeout_ms):
                    raise TimeoutError("no bytes within the timeout") from None
                continue
            if not got:
                return total
            total += got
            if limit - total < 16384 + 9 or (got < 16384 and not pending()):
                return total

    def close(self) -> None:
        self.tls.close()


class BioReader:
    """The experiment: an SSLObject over memory BIOs, the plain socket read in large chunks."""

    #: Bytes asked of the plain socket per ``recv_into`` (``--raw-chunk``).
    chunk = RAW_CHUNK

    def __init__(self, raw: socket.socket, context: ssl.SSLContext, host: str, timeout: float) -> None:
        self.raw = raw
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self.incoming, self.outgoing, server_hostname=host)
        raw.settimeout(timeout)
        # The handshake, driven by hand: flush what the SSL object wrote, feed what came.
        while True:
            try:
                self.sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = raw.recv(self.chunk)
                if not data:
                    raise ConnectionError("EOF during the handshake") from None
                self.incoming.write(data)
        self._flush()
        raw.setblocking(False)
        self.timeout_ms = int(timeout * 1000)
        self.raw_buffer = bytearray(self.chunk)
        self.raw_view = memoryview(self.raw_buffer)
        self.kernel_maybe_more = True
        self.poller = select.poll()
        self.poller.register(raw.fileno(), select.POLLIN)

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.raw.sendall(data)

    def selected_alpn_protocol(self) -> str | None:
        return self.sslobj.selected_alpn_protocol()

    def sendall(self, data: bytes) -> None:
        self.sslobj.write(data)
        out = self.outgoing.read()
        # Non-blocking: small requests fit the socket buffer (a real one waits on POLLOUT).
        sent = self.raw.send(out)
        if sent != len(out):
            self.raw.setblocking(True)
            try:
                self.raw.sendall(memoryview(out)[sent:])
            finally:
                self.raw.setblocking(False)

    def recv_into(self, view: memoryview) -> int:
        """Decrypt what the BIO holds; read the socket in large chunks; poll only when all is empty."""
        incoming, read, pending = self.incoming, self.sslobj.read, self.sslobj.pending
        limit = len(view)
        total = 0
        while True:
            # Decrypt while the BIO (or the SSL object) holds bytes.
            while incoming.pending or pending():
                try:
                    got = read(limit - total, view[total:])
                except ssl.SSLWantReadError:
                    break  # only part of a record in the BIO
                if not got:
                    return total
                total += got
                if limit - total < 16384 + 9:
                    return total
            if self.outgoing.pending:
                self._flush()  # a post-handshake message wanted an answer
            if total and not self.kernel_maybe_more:
                return total
            if not self.kernel_maybe_more:
                if not self.poller.poll(self.timeout_ms):
                    raise TimeoutError("no bytes within the timeout")
            try:
                got = self.raw.recv_into(self.raw_view)
            except BlockingIOError:
                self.kernel_maybe_more = False
                continue
            if not got:
                incoming.write_eof()
                return total
            incoming.write(self.raw_view[:got])
            # A short read: the kernel had no more (poll before asking again).
            self.kernel_maybe_more = got == self.chunk

    def close(self) -> None:
        self.raw.close()


class ProbeConnection(FloorConnection):
    """The floor client over one of the two readers."""

    def __init__(
        self, host: str, port: int, ca_file: str, reader: Callable[..., Any], timeout: float = 30.0
    ) -> None:
        context = ssl.create_default_context(cafile=ca_file)
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = reader(raw, context, host, timeout)
        except BaseException:
            raw.close()
            raise
        # The floor's own state (as FloorConnection.__init__ sets it).
        self.timeout, self.shared, self.authority = timeout, False, f"{host}:{port}"
        self.cond, self.reading = threading.Condition(), False
        self.buffer = bytearray(BUFFER_SIZE)
        self.view = memoryview(self.buffer)
        self.parsed = self.filled = 0
        self.next_stream_id = 1
        self.streams, self.done, self.counting = {}, {}, set()
        self.connection_unacked = 0
        self.peer_max_streams = 100
        self.header_blocks, self.pending_headers = {}, None
        from bench.floor import (
            _SETTING,
            _UINT32,
            CONNECTION_WINDOW,
            PREFACE,
            SETTINGS,
            STREAM_WINDOW,
            WINDOW_UPDATE,
            _frame,
        )

        settings = _SETTING.pack(0x2, 0) + _SETTING.pack(0x4, STREAM_WINDOW)
        self.sock.sendall(
            PREFACE
            + _frame(SETTINGS, 0, 0, settings)
            + _frame(WINDOW_UPDATE, 0, 0, _UINT32.pack(CONNECTION_WINDOW - 65535))
        )

    def close(self) -> None:
        self.sock.close()


READERS: dict[str, Callable[..., Any]] = {"sock": SockReader, "bio": BioReader}


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise FloorError(what)


def run_workload(
    server: BenchServer, reader: Callable[..., Any], workload: str, count: int
) -> tuple[float, float]:
    """(client CPU seconds, units): units are requests, or MiB for a download."""
    return run_on(server.host, server.port, server.ca_file, server.body_bytes, reader, workload, count)


def run_on(
    host: str,
    port: int,
    ca_file: str,
    body_bytes: int,
    reader: Callable[..., Any],
    workload: str,
    count: int,
) -> tuple[float, float]:
    """:func:`run_workload` on any server serving ``/1k.bin`` and ``/big.bin`` (``body_bytes`` long)."""
    conn = ProbeConnection(host, port, ca_file, reader)
    try:
        # Warm-up: the SETTINGS exchange and a few requests.
        for status, _ in conn.get_many(SMALL_PATH, 10):
            _check(status == 200, f"warm-up status {status}")
        started = time.process_time()
        if workload == "seq":
            for _ in range(count):
                status, body = conn.get(SMALL_PATH)
                _check(status == 200 and len(body) == SMALL_SIZE, f"seq: {status}, {len(body)} bytes")
            units = float(count)
        elif workload == "mux":
            for _ in range(count // 100):
                for status, body in conn.get_many(SMALL_PATH, 100):
                    _check(status == 200 and len(body) == SMALL_SIZE, f"mux: {status}, {len(body)} bytes")
            units = float(count // 100 * 100)
        else:
            status, length = conn.download(BIG_PATH)
            _check(status == 200 and length == body_bytes, f"download: {status}, {length} bytes")
            units = length / 2**20
        return time.process_time() - started, units
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--servers", default="nginx,nghttpd")
    parser.add_argument("--workloads", default="seq,mux,download")
    parser.add_argument("--seq", type=int, default=2000)
    parser.add_argument("--mux", type=int, default=10000)
    parser.add_argument("--body-mib", type=int, default=64)
    parser.add_argument("--readers", default="sock,bio", help="which readers to run (for strace -c)")
    parser.add_argument(
        "--raw-chunk", type=int, default=RAW_CHUNK, help="bytes per recv_into of the plain socket"
    )
    args = parser.parse_args()
    BioReader.chunk = args.raw_chunk
    work_dir = pick_work_dir()
    servers: list[BenchServer] = []
    try:
        files = prepare_files(work_dir, args.body_mib * 2**20)
        for name in args.servers.split(","):
            servers.append(start_server(name, work_dir, files))
        print("| server | workload | sock µs CPU/unit | bio µs CPU/unit | bio/sock | paired ratio IQR |")
        print("|---|---|---|---|---|---|")
        for server in servers:
            for workload in args.workloads.split(","):
                count = {"seq": args.seq, "mux": args.mux}.get(workload, 0)
                names = args.readers.split(",")
                figures: dict[str, list[float]] = {name: [float("nan")] for name in READERS}
                for name in names:
                    figures[name] = []
                for round_no in range(args.rounds):
                    order = names if round_no % 2 == 0 else list(reversed(names))
                    for name in order:
                        cpu, units = run_workload(server, READERS[name], workload, count)
                        figures[name].append(cpu / units * 1e6)
                sock, bio = (statistics.median(figures[name]) for name in ("sock", "bio"))
                # Paired ratios (the two readers ran back to back in each round): their spread.
                ratios = sorted(b / a for a, b in zip(figures["sock"], figures["bio"], strict=False))
                spread = (
                    f"{ratios[len(ratios) // 4]:.2f}-{ratios[3 * len(ratios) // 4]:.2f}" if ratios else "-"
                )
                unit = "MiB" if workload == "download" else "req"
                row = [
                    server.name,
                    workload,
                    f"{sock:.1f} /{unit}",
                    f"{bio:.1f} /{unit}",
                    f"{bio / sock:.2f}",
                    spread,
                ]
                print("| " + " | ".join(row) + " |", flush=True)
    finally:
        for server in servers:
            server.process.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

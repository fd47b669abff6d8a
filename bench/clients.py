"""The Python clients of the benchmark, each written the way its users would write it.

Each runs inside a worker process (:mod:`bench.worker`); the workloads call
only the methods of :class:`Client`.  The code is not tuned, except that each
client keeps its connection from the warm-up to the timed part.
"""

from __future__ import annotations

import io
import os
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class WorkloadError(Exception):
    """A workload finished, but not correctly (bad status, short body, ...)."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`WorkloadError` with *message* unless *condition* holds."""
    if not condition:
        raise WorkloadError(message)


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------


class Client:
    """What every client provides; the workloads below call only these."""

    #: Negotiated protocol after the warm-up, e.g. "HTTP/2".
    protocol = "?"

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.base = f"https://{spec['host']}:{spec['port']}"

    def get(self, path: str) -> bytes:
        """One GET; the whole body."""
        raise NotImplementedError

    def mux(self, path: str, count: int, in_flight: int) -> int:
        """*count* GETs with *in_flight* concurrent; total body bytes."""
        raise NotImplementedError

    def download(self, path: str, chunk: int) -> int:
        """One GET read in *chunk*-sized pieces; body bytes read."""
        raise NotImplementedError

    def upload(self, path: str, file_name: str) -> int:
        """PUT the file; the response status."""
        raise NotImplementedError

    def prepare_threads(self, threads: int) -> None:
        """Get ready (untimed) for *threads* threads calling :meth:`get` at once."""

    def close(self) -> None:
        """Release the connection."""


class HyperClient(Client):
    """hyper: one HTTP20Connection."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        import hyper
        from hyper.tls import init_context

        self.conn = hyper.HTTP20Connection(
            spec["host"],
            spec["port"],
            secure=True,
            ssl_context=init_context(cert_path=spec["ca"]),
            timeout=30,
        )

    @property
    def protocol(self) -> str:
        return "HTTP/2" if self.conn.negotiated_protocol == "h2" else str(self.conn.negotiated_protocol)

    def get(self, path: str) -> bytes:
        stream_id = self.conn.request("GET", path)
        return self.conn.getresponse(stream_id).read()

    def mux(self, path: str, count: int, in_flight: int) -> int:
        total = 0
        for start in range(0, count, in_flight):
            stream_ids = [self.conn.request("GET", path) for _ in range(min(in_flight, count - start))]
            for stream_id in stream_ids:
                total += len(self.conn.getresponse(stream_id).read())
        return total

    def download(self, path: str, chunk: int) -> int:
        stream_id = self.conn.request("GET", path)
        response = self.conn.getresponse(stream_id)
        total = 0
        while data := response.read(chunk):
            total += len(data)
        return total

    def upload(self, path: str, file_name: str) -> int:
        with open(file_name, "rb") as body:
            stream_id = self.conn.request("PUT", path, body=body)
        response = self.conn.getresponse(stream_id)
        response.read()
        return response.status

    def close(self) -> None:
        self.conn.close()


class HttpxClient(Client):
    """httpx: one ``httpx.Client(http2=True)``."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        import httpx

        context = ssl.create_default_context(cafile=spec["ca"])
        self.client = httpx.Client(http2=True, verify=context, timeout=30)

    def get(self, path: str) -> bytes:
        response = self.client.get(self.base + path)
        response.raise_for_status()
        if self.protocol == "?":
            self.protocol = response.http_version
        return response.content

    def mux(self, path: str, count: int, in_flight: int) -> int:
        # The sync client has no multiplexing API: threads are how users do it.
        with ThreadPoolExecutor(max_workers=16) as pool:
            return sum(len(body) for body in pool.map(lambda _: self.get(path), range(count)))

    def download(self, path: str, chunk: int) -> int:
        total = 0
        with self.client.stream("GET", self.base + path) as response:
            for data in response.iter_bytes(chunk):
                total += len(data)
        return total

    def upload(self, path: str, file_name: str) -> int:
        with open(file_name, "rb") as body:
            response = self.client.put(self.base + path, content=body)
        return response.status_code

    def close(self) -> None:
        self.client.close()


class NiquestsClient(Client):
    """niquests: one Session; ``multiplexed=True`` for the mux workload."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        import niquests

        if spec["workload"] == "mux":
            self.session = niquests.Session(multiplexed=True)
        elif spec["workload"] == "threads":
            # By default every thread gets a connection of its own (up to 10);
            # the workload is about threads sharing one connection.
            self.session = niquests.Session(pool_maxsize=1)
        else:
            self.session = niquests.Session()
        self.session.verify = spec["ca"]

    def get(self, path: str) -> bytes:
        response = self.session.get(self.base + path)
        response.raise_for_status()
        if self.protocol == "?":
            self.protocol = _niquests_version(response)
        return response.content or b""

    def mux(self, path: str, count: int, in_flight: int) -> int:
        total = 0
        for start in range(0, count, in_flight):
            responses = [self.session.get(self.base + path) for _ in range(min(in_flight, count - start))]
            self.session.gather()
            for response in responses:
                response.raise_for_status()
                total += len(response.content or b"")
            self.protocol = _niquests_version(responses[0])
        return total

    def download(self, path: str, chunk: int) -> int:
        total = 0
        with self.session.get(self.base + path, stream=True) as response:
            for data in response.iter_content(chunk):
                total += len(data)
        return total

    def upload(self, path: str, file_name: str) -> int:
        with open(file_name, "rb") as body:
            response = self.session.put(self.base + path, data=body)
        return response.status_code or 0

    def close(self) -> None:
        self.session.close()


def _niquests_version(response: Any) -> str:
    version = getattr(response, "http_version", None)
    return {11: "HTTP/1.1", 20: "HTTP/2", 30: "HTTP/3"}.get(version, str(version))


class PycurlClient(Client):
    """pycurl (libcurl): one easy handle, or one multi handle for mux."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        import pycurl

        self.pycurl = pycurl
        self.curl = self._easy()
        #: threads workload: one easy handle (and connection) per thread, as
        #: libcurl requires; handed out to threads on their first request.
        self.thread_handles: list[Any] = []
        self.handles_given = 0
        self.handles_lock = threading.Lock()
        self.local = threading.local()
        self.multi: Any = None
        self.mux_handles: list[Any] = []

    def _easy(self) -> Any:
        pycurl = self.pycurl
        curl = pycurl.Curl()
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
        curl.setopt(pycurl.CAINFO, self.spec["ca"])
        curl.setopt(pycurl.PIPEWAIT, 1)
        return curl

    def _perform(self, curl: Any, path: str) -> bytes:
        buffer = io.BytesIO()
        curl.setopt(self.pycurl.URL, self.base + path)
        curl.setopt(self.pycurl.WRITEDATA, buffer)
        curl.perform()
        status = curl.getinfo(self.pycurl.RESPONSE_CODE)
        check(status == 200, f"status {status}")
        self._note_protocol(curl)
        return buffer.getvalue()

    def _note_protocol(self, curl: Any) -> None:
        if self.protocol == "?":
            version = curl.getinfo(self.pycurl.INFO_HTTP_VERSION)
            self.protocol = "HTTP/2" if version == self.pycurl.CURL_HTTP_VERSION_2_0 else f"curl {version}"

    def prepare_threads(self, threads: int) -> None:
        # Each thread's handle connects here, outside the timed part, as the
        # shared connection of the other clients does during their warm-up.
        self.thread_handles = [self._easy() for _ in range(threads)]
        for curl in self.thread_handles:
            for _ in range(2):
                check(
                    len(self._perform(curl, self.spec["small_path"])) == self.spec["small_size"], "short body"
                )

    def _handle(self) -> Any:
        if not self.thread_handles:
            return self.curl
        curl = getattr(self.local, "curl", None)
        if curl is None:
            with self.handles_lock:  # protects the hand-out index
                check(self.handles_given < len(self.thread_handles), "more threads than handles")
                curl = self.local.curl = self.thread_handles[self.handles_given]
                self.handles_given += 1
        return curl

    def get(self, path: str) -> bytes:
        return self._perform(self._handle(), path)

    def mux(self, path: str, count: int, in_flight: int) -> int:
        pycurl = self.pycurl
        # One multi handle for the warm-up and the timed part: its connection
        # cache keeps the connection (a new one would put a TLS handshake in
        # the timed part); its easy handles are reused as a user would.
        if self.multi is None:
            self.multi = pycurl.CurlMulti()
            self.multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
            self.multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 1)
        multi = self.multi
        while len(self.mux_handles) < in_flight:
            self.mux_handles.append(self._easy())
        handles = self.mux_handles
        deadline = time.monotonic() + self.spec["timeout"]
        total = 0
        for start in range(0, count, in_flight):
            batch = handles[: min(in_flight, count - start)]
            buffers = []
            for curl in batch:
                buffer = io.BytesIO()
                buffers.append(buffer)
                curl.setopt(pycurl.URL, self.base + path)
                curl.setopt(pycurl.WRITEDATA, buffer)
                multi.add_handle(curl)
            running = len(batch)
            while running:
                check(time.monotonic() < deadline, "multi loop overran its deadline")
                # libcurl's own timers (e.g. PIPEWAIT) must bound the wait,
                # or a transfer can sit out a whole select() timeout.
                wait_ms = multi.timeout()
                if wait_ms != 0:
                    multi.select(1.0 if wait_ms < 0 else min(1.0, wait_ms / 1000))
                while True:
                    ret, running = multi.perform()
                    if ret != pycurl.E_CALL_MULTI_PERFORM:
                        break
            _, _, failed = multi.info_read()
            check(not failed, f"{len(failed)} transfers failed: {failed[:1]}")
            for curl in batch:
                multi.remove_handle(curl)
            total += sum(len(buffer.getvalue()) for buffer in buffers)
            self._note_protocol(batch[0])
        return total

    def download(self, path: str, chunk: int) -> int:
        pycurl = self.pycurl
        received = [0]

        def write(data: bytes) -> None:
            received[0] += len(data)

        self.curl.setopt(pycurl.URL, self.base + path)
        self.curl.setopt(pycurl.BUFFERSIZE, chunk)
        self.curl.setopt(pycurl.WRITEFUNCTION, write)
        self.curl.perform()
        return received[0]

    def upload(self, path: str, file_name: str) -> int:

        pycurl = self.pycurl
        with open(file_name, "rb") as body:
            self.curl.setopt(pycurl.URL, self.base + path)
            self.curl.setopt(pycurl.UPLOAD, 1)
            self.curl.setopt(pycurl.READDATA, body)
            self.curl.setopt(pycurl.INFILESIZE_LARGE, os.fstat(body.fileno()).st_size)
            self.curl.setopt(pycurl.WRITEDATA, io.BytesIO())
            self.curl.perform()
        return int(self.curl.getinfo(pycurl.RESPONSE_CODE))

    def close(self) -> None:
        for curl in self.thread_handles + self.mux_handles:
            curl.close()
        if self.multi is not None:
            self.multi.close()
        self.curl.close()


class FloorClient(Client):
    """The pure-Python floor of issue 14 (bench/floor.py): one connection."""

    protocol = "HTTP/2"  # FloorConnection refuses anything but ALPN h2

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        from bench.floor import FloorConnection

        self.conn = FloorConnection(
            spec["host"], spec["port"], spec["ca"], timeout=30, shared=spec["workload"] == "threads"
        )

    def get(self, path: str) -> bytes:
        status, body = self.conn.get(path)
        check(status == 200, f"status {status}")
        return bytes(body)

    def mux(self, path: str, count: int, in_flight: int) -> int:
        total = 0
        for start in range(0, count, in_flight):
            for status, body in self.conn.get_many(path, min(in_flight, count - start)):
                check(status == 200, f"status {status}")
                total += len(body)
        return total

    def download(self, path: str, chunk: int) -> int:
        # The floor reads whatever the socket has (up to 256 KiB) and counts
        # DATA payloads in place; there are no 64 KiB reads to imitate.
        status, length = self.conn.download(path)
        check(status == 200, f"status {status}")
        return int(length)

    def upload(self, path: str, file_name: str) -> int:
        raise WorkloadError("the floor client does not upload")

    def close(self) -> None:
        self.conn.close()


CLIENTS: dict[str, Callable[[dict[str, Any]], Client]] = {
    "hyper": HyperClient,
    "hyper-batch": lambda spec: _hyper_batch(spec),
    "httpx": HttpxClient,
    "niquests": NiquestsClient,
    "pycurl": PycurlClient,
    "floor": FloorClient,
}


def _hyper_batch(spec: dict[str, Any]) -> Client:
    from bench.hyper_batch import HyperBatchClient  # imported late: it subclasses HyperClient

    return HyperBatchClient(spec)

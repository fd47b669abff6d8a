"""One Python client running one workload, in a fresh process.

Run by the harness as ``python -m bench.worker '<json spec>'``; prints one line
``BENCH-RESULT {json}`` and exits.  A fresh process per run keeps clients from
affecting each other (imports, caches, threads) and makes the peak RSS growth
of one workload measurable: ``ru_maxrss`` after the workload minus
``ru_maxrss`` just before it (after imports, client setup and warm-up).

The code for each client is written the way a user of that client would
write it; it is not tuned.  Every workload is bounded in count; the harness
kills a worker that overruns its timeout and reports it as "stalled".
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import resource
import ssl
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

RESULT_MARKER = "BENCH-RESULT "


class WorkloadError(Exception):
    """A workload finished, but not correctly (bad status, short body, ...)."""


def _check(condition: bool, message: str) -> None:
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
        _check(status == 200, f"status {status}")
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
                _check(
                    len(self._perform(curl, self.spec["small_path"])) == self.spec["small_size"], "short body"
                )

    def _handle(self) -> Any:
        if not self.thread_handles:
            return self.curl
        curl = getattr(self.local, "curl", None)
        if curl is None:
            with self.handles_lock:  # protects the hand-out index
                _check(self.handles_given < len(self.thread_handles), "more threads than handles")
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
                _check(time.monotonic() < deadline, "multi loop overran its deadline")
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
            _check(not failed, f"{len(failed)} transfers failed: {failed[:1]}")
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
        import os

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
        _check(status == 200, f"status {status}")
        return bytes(body)

    def mux(self, path: str, count: int, in_flight: int) -> int:
        total = 0
        for start in range(0, count, in_flight):
            for status, body in self.conn.get_many(path, min(in_flight, count - start)):
                _check(status == 200, f"status {status}")
                total += len(body)
        return total

    def download(self, path: str, chunk: int) -> int:
        # The floor reads whatever the socket has (up to 256 KiB) and counts
        # DATA payloads in place; there are no 64 KiB reads to imitate.
        status, length = self.conn.download(path)
        _check(status == 200, f"status {status}")
        return int(length)

    def upload(self, path: str, file_name: str) -> int:
        raise WorkloadError("the floor client does not upload")

    def close(self) -> None:
        self.conn.close()


CLIENTS: dict[str, Callable[[dict[str, Any]], Client]] = {
    "hyper": HyperClient,
    "httpx": HttpxClient,
    "niquests": NiquestsClient,
    "pycurl": PycurlClient,
    "floor": FloorClient,
}


# ---------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------


def run_threads(client: Client, path: str, threads: int, per_thread: int, timeout: float) -> int:
    """*threads* threads doing *per_thread* GETs each through one client."""
    errors: list[BaseException] = []
    totals = [0] * threads
    start = threading.Barrier(threads)

    def work(index: int) -> None:
        try:
            start.wait(timeout)
            for _ in range(per_thread):
                totals[index] += len(client.get(path))
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    _check(not any(worker.is_alive() for worker in workers), "threads still running at the deadline")
    if errors:
        raise WorkloadError(f"{len(errors)} of {threads} threads failed; first: {errors[0]!r}")
    return sum(totals)


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _peak_rss_kib() -> int:
    """Peak RSS of this process so far, in KiB.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` over
    ``execve``, so a worker would start with its parent's peak.
    """
    peak = _proc_status_kib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_rss_baseline() -> int:
    """Reset the peak-RSS mark to the current RSS if Linux allows; the baseline."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # 5: reset the peak RSS (VmHWM) to the current RSS
    except OSError:
        pass
    return _peak_rss_kib()


def _report_stalled(timeout: float) -> None:
    result = {"ok": False, "stalled": True, "error": f"stalled: not done after {timeout:g} s"}
    print(RESULT_MARKER + json.dumps(result), flush=True)
    os._exit(0)


def run_workload(client: Client, spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up, then time the workload; return the measurements."""
    sizes = spec["sizes"]
    small, small_size = spec["small_path"], spec["small_size"]
    workload = spec["workload"]
    timeout = spec["timeout"]

    # Warm-up: connect, negotiate, fill caches.  Not timed.  The mux warm-up
    # goes through mux() only: pycurl's multi handle has its own connection.
    warmup = sizes["warmup_requests"]
    if workload == "mux":
        _check(client.mux(small, warmup, warmup) == warmup * small_size, "short warm-up body")
    else:
        for _ in range(warmup):
            _check(len(client.get(small)) == small_size, "short warm-up body")
    if workload == "threads":
        client.prepare_threads(sizes["threads"])
    _check(client.protocol == "HTTP/2", f"negotiated {client.protocol}, not HTTP/2")

    profiler = None
    if spec.get("profile"):
        # "cpu": attribute only this process's CPU time, so waits for the
        # server (or for a core, on a busy machine) do not count.
        clock = time.process_time if spec.get("profile_clock") == "cpu" else time.perf_counter
        profiler = cProfile.Profile(clock)
    rss_before = _peak_rss_baseline()
    # A workload that overruns its timeout is reported as stalled from in
    # here (the harness's kill is the backstop for hangs during set-up).
    watchdog = threading.Timer(timeout, _report_stalled, args=(timeout,))
    watchdog.daemon = True
    watchdog.start()
    if profiler is not None:
        profiler.enable()
    started = time.perf_counter()
    if workload == "seq":
        count = sizes["seq_requests"]
        done = sum(len(client.get(small)) for _ in range(count))
        expected, amount = count * small_size, count
    elif workload == "mux":
        count = sizes["mux_requests"]
        done = client.mux(small, count, sizes["mux_in_flight"])
        expected, amount = count * small_size, count
    elif workload == "threads":
        count = sizes["threads"] * sizes["per_thread"]
        done = run_threads(client, small, sizes["threads"], sizes["per_thread"], timeout)
        expected, amount = count * small_size, count
    elif workload == "download":
        done = client.download(spec["big_path"], sizes["read_chunk"])
        expected = amount = spec["body_bytes"]
    elif workload == "upload":
        status = client.upload(spec["upload_path"], spec["upload_file"])
        _check(status == 200, f"upload answered {status}")
        done = expected = amount = spec["body_bytes"]
    else:
        raise ValueError(f"unknown workload {workload!r}")
    elapsed = time.perf_counter() - started
    watchdog.cancel()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(spec["profile"])
    rss_after = _peak_rss_kib()
    _check(done == expected, f"got {done:,} body bytes, expected {expected:,}")
    return {
        "ok": True,
        "elapsed": elapsed,
        "amount": amount,
        "protocol": client.protocol,
        "rss_base_kib": rss_before,
        "rss_growth_kib": rss_after - rss_before,
    }


def main(argv: list[str]) -> int:
    """Entry point: ``python -m bench.worker '<json spec>'``."""
    spec = json.loads(argv[0])
    try:
        client = CLIENTS[spec["client"]](spec)
        try:
            result = run_workload(client, spec)
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 -- every failure becomes a report line
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Running a :class:`~hyper.testing.TestServer`'s routes off the connection thread.

A route may sleep, block on an event or produce its body slowly; none of
that may hold up the other streams of its connection, and every chunk it
yields must reach the client at once. So each request runs on a worker
thread from a bounded :class:`RoutePool`, and hands its response to the
connection thread through a :class:`ResponseChannel`: the worker puts header
fields and chunks in, the connection thread takes them out as the HTTP/2
flow-control windows allow. Each put wakes the connection's select loop
through its :class:`Waker`.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator

from .routes import Request, Response, prepare

log = logging.getLogger("hyper.testing.server")

#: Bytes a route may produce ahead of what the connection has sent; past it
#: the route's thread waits, so a client that does not read bounds memory.
CHANNEL_LIMIT = 256 * 1024
# Longest single wait of a worker for buffer space; it re-checks cancellation.
_CANCEL_POLL = 1.0


class Waker:
    """Wakes a select loop from other threads: a socket pair, one byte per wake-up.

    The lock makes :meth:`wake` and :meth:`close` exclusive, so a late wake-up
    from a worker never writes to a closed (or reused) descriptor.
    """

    def __init__(self) -> None:
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)
        self._lock = threading.Lock()
        self._closed = False

    def wake(self) -> None:
        """Make :attr:`reader` readable (a no-op once closed)."""
        with self._lock:  # protects _writer against a concurrent close()
            if self._closed:
                return
            try:
                self._writer.send(b"\0")
            except OSError:
                pass  # full: a wake-up is pending anyway

    def drain(self) -> None:
        """Consume the pending wake-ups (called by the loop's thread)."""
        try:
            while self.reader.recv(4096):
                pass
        except OSError:
            pass  # BlockingIOError: nothing more to read

    def close(self) -> None:
        """Close both ends; later :meth:`wake` calls do nothing."""
        with self._lock:
            self._closed = True
            self._writer.close()
            self.reader.close()


class ResponseChannel:
    """One stream's response on its way from a worker thread to the connection.

    The worker calls :meth:`put_headers` once, then :meth:`put` per chunk,
    then :meth:`finish` or :meth:`fail`. The connection thread calls
    :meth:`take_headers` and :meth:`take`, and :meth:`cancel` when the
    stream or connection goes away. ``_cond`` guards every field below it.
    """

    def __init__(self, stream_id: int, waker: Waker) -> None:
        self.stream_id = stream_id
        self._waker = waker
        self._cond = threading.Condition()
        self._headers: list[tuple[bytes, bytes]] | None = None
        self._headers_taken = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._finished = False
        self._error: Exception | None = None
        self._cancelled = False

    # -- the worker's side ------------------------------------------------

    def put_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Publish the response header fields."""
        with self._cond:
            self._headers = headers
        self._waker.wake()

    def put(self, chunk: bytes) -> bool:
        """Queue one body chunk; False if the stream was cancelled (stop producing).

        Waits while :data:`CHANNEL_LIMIT` bytes are queued: the connection
        sends only as fast as the client's windows allow.
        """
        # _cond: the queue and its byte count, shared with take(); waiting on
        # it releases the lock so the connection can drain the queue.
        with self._cond:
            while self._buffered >= CHANNEL_LIMIT and not self._cancelled:
                self._cond.wait(_CANCEL_POLL)
            if self._cancelled:
                return False
            self._chunks.append(chunk)
            self._buffered += len(chunk)
        # Outside the lock: the wake-up needs no channel state.
        self._waker.wake()
        return True

    def finish(self) -> None:
        """The body is complete."""
        with self._cond:
            self._finished = True
        self._waker.wake()

    def fail(self, error: Exception) -> None:
        """The body iterator failed after the headers: the stream gets reset."""
        with self._cond:
            self._error = error
            self._finished = True
        self._waker.wake()

    @property
    def cancelled(self) -> bool:
        """Whether the connection gave up on this stream."""
        with self._cond:
            return self._cancelled

    # -- the connection's side --------------------------------------------------

    def take_headers(self) -> tuple[list[tuple[bytes, bytes]], bool] | None:
        """The header fields, once, with whether the body is already empty and complete."""
        with self._cond:
            if self._headers is None or self._headers_taken:
                return None
            self._headers_taken = True
            return self._headers, self._finished and not self._chunks and self._error is None

    def take(self, size: int) -> tuple[bytes, bool, Exception | None]:
        """Up to *size* queued bytes, whether the body ends with them, and a body error.

        The error is returned only once every byte before it was taken.
        """
        with self._cond:
            if not self._headers_taken:
                return b"", False, None
            parts: list[bytes] = []
            wanted = size
            while self._chunks and wanted > 0:
                chunk = self._chunks.popleft()
                if len(chunk) > wanted:
                    # Split: the rest stays at the front for the next frame.
                    self._chunks.appendleft(chunk[wanted:])
                    chunk = chunk[:wanted]
                parts.append(chunk)
                wanted -= len(chunk)
            data = b"".join(parts)
            self._buffered -= len(data)
            if data:
                self._cond.notify_all()  # room for a waiting put()
            drained = not self._chunks
            ended = self._finished and drained and self._error is None
            error = self._error if self._finished and drained else None
            return data, ended, error

    def has_output(self) -> bool:
        """Whether :meth:`take` has something to hand out (data, the end or an error)."""
        with self._cond:
            return self._headers_taken and (bool(self._chunks) or self._finished)

    def cancel(self) -> None:
        """Stop the worker at its next :meth:`put` and drop what is queued."""
        with self._cond:
            self._cancelled = True
            self._chunks.clear()
            self._buffered = 0
            self._cond.notify_all()


def run_route(handler: Callable[[Request], Response], request: Request, channel: ResponseChannel) -> None:
    """Call *handler* and feed its response into *channel* (runs on a worker thread).

    A handler that raises, or a body iterator that fails before its first
    chunk, becomes a 500 response; one that fails later has its stream reset.
    The headers go out with the first chunk, so a route's own status is
    still replaceable by that 500.
    """
    method, path = request.method, request.path
    chunks: Iterator[bytes] | None = None
    try:
        status, headers, body = handler(request)
        fields, chunks = prepare(method, status, headers, body)
        first = _next_chunk(chunks)
    except Exception as exc:
        log.exception("route handler for %s %s failed", method, path)
        _close(chunks)
        text = f"500 Internal Server Error\n{exc!r}\n".encode()
        fields, chunks = prepare(method, 500, [("content-type", "text/plain; charset=utf-8")], text)
        first = _next_chunk(chunks)
    channel.put_headers(fields)
    try:
        chunk = first
        while chunk is not None:
            if chunk and not channel.put(chunk):
                return  # the stream is gone: stop producing
            chunk = _next_chunk(chunks)
    except Exception as exc:  # noqa: BLE001 - a route's body iterator failed
        log.error("response body iterator failed", exc_info=True)
        channel.fail(exc)
        return
    finally:
        _close(chunks)
    channel.finish()


def _next_chunk(chunks: Iterator[bytes] | None) -> bytes | None:
    """The next chunk as bytes, or None at the end (or for a HEAD response)."""
    if chunks is None:
        return None
    try:
        return bytes(next(chunks))
    except StopIteration:
        return None


def _close(chunks: Iterator[bytes] | None) -> None:
    """Close a generator body early so its ``finally`` blocks run."""
    close = getattr(chunks, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001 - a route's generator failed while closing
            log.debug("closing a response body iterator failed", exc_info=True)


class RoutePool:
    """At most *max_threads* daemon threads running queued jobs, started as needed.

    Jobs beyond the limit wait in the queue; a job that blocks forever holds
    one thread, never the connections. ``_cond`` guards every field.
    """

    def __init__(self, max_threads: int, name: str) -> None:
        if max_threads < 1:
            raise ValueError(f"route_threads must be at least 1, not {max_threads!r}")
        self._max_threads = max_threads
        self._name = name
        self._cond = threading.Condition()
        self._jobs: deque[Callable[[], None]] = deque()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        """Queue *job*; a new thread starts if none is idle and the limit allows."""
        # _cond: the job queue, the thread set and the idle count, which
        # together decide whether a new thread is needed.
        with self._cond:
            if self._closed:
                return  # the server is stopping: the stream is going away too
            self._jobs.append(job)
            if len(self._jobs) > self._idle and len(self._threads) < self._max_threads:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name} route {len(self._threads) + 1}", daemon=True
                )
                self._threads.add(thread)
                thread.start()
            self._cond.notify()

    def _work(self) -> None:
        me = threading.current_thread()
        try:
            while True:
                # _cond: take a job (or learn of close()) atomically with
                # the idle count that submit() reads.
                with self._cond:
                    while not self._jobs and not self._closed:
                        self._idle += 1
                        self._cond.wait()
                        self._idle -= 1
                    if self._closed:
                        return
                    job = self._jobs.popleft()
                try:
                    job()
                except Exception:  # noqa: BLE001 - a worker thread must not die
                    log.exception("route job failed")
        finally:
            with self._cond:
                self._threads.discard(me)

    def close(self, deadline: float, clock: Callable[[], float]) -> None:
        """Drop queued jobs, let idle threads end and join them all until *deadline*.

        A thread still inside a route (blocked on something the test never
        sets) is a daemon and is left behind.
        """
        with self._cond:
            self._closed = True
            self._jobs.clear()
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - clock()))

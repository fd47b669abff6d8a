"""One HTTP/2 connection on one socket: the layer that owns the socket and the locks.

Threads share a session safely:

* Every call into the protocol core happens under one state lock, and bytes
  taken from the core are sent before that lock is released, so frames leave
  in the order the state changed (stream ids always increase on the wire).
* The socket is non-blocking. One thread at a time is *the reader*: it waits
  for readability with the state lock released, then takes the lock, drains
  the socket, feeds the core and wakes every waiting thread (a condition on
  the state lock). Whichever waiter needs progress next becomes the reader, so
  no background thread is needed and no thread busy-polls.
* The only network wait under the state lock is the ordered send; while it
  waits for the socket to drain it keeps reading, so a server that is itself
  blocked writing to us cannot deadlock the pair. :meth:`H2Session.close`
  interrupts that wait (through a second wake-up socket) before it takes the
  lock, so closing never waits for a server that stopped reading.
* Every read or write of the core (and of the session's own flags) happens
  under the state lock; the only exceptions are commented where they occur.
* The first fatal error is stored in the core and raised to every waiter.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable

from ..common.body import LengthCounter, RequestBody
from ..common.sockets import wait_for_socket
from ..exceptions import (
    ConnectionClosed,
    ConnectionTerminated,
    HyperError,
    HyperTimeout,
    InvalidStreamID,
    ReadTimeout,
    TransportError,
    WriteTimeout,
    fresh,
)
from .core import H2Core, StreamState

log = logging.getLogger("hyper")

#: Size of the reusable receive buffer; one drain reads at most this much.
RECV_BUFFER_SIZE = 512 * 1024
#: Seconds per budget of control frames (see H2Core.reset_flood_budget).
FLOOD_BUDGET_PERIOD = 1.0
#: Body bytes queued per lock hold while uploading, so readers get a turn.
SEND_BATCH = 1024 * 1024

_WOULD_BLOCK_READ = (ssl.SSLWantReadError, BlockingIOError, InterruptedError)
_WOULD_BLOCK_WRITE = (ssl.SSLWantWriteError, BlockingIOError, InterruptedError)


class _Sleeper:
    """A thread waiting in :meth:`H2Session.wait_for` (not as the reader)."""

    __slots__ = ("cond", "stream_id")

    def __init__(self, cond: threading.Condition) -> None:
        self.cond = cond
        self.stream_id: int | None = None


class StateCondition(threading.Condition):
    """The state lock's condition, with wake-ups aimed at the threads concerned.

    With many threads on one connection, waking every one of them for each
    frame that arrives (most go straight back to sleep) cost more than the
    frames. Each waiting thread sleeps on its own condition over the same
    lock, tagged with the stream it waits for; :meth:`notify_changed` wakes
    only those whose stream changed, and untagged ones. ``notify_all`` still
    wakes everybody.
    """

    def __init__(self, lock: threading.Lock) -> None:
        super().__init__(lock)
        self._state_lock = lock
        self._sleepers: list[_Sleeper] = []
        self._local = threading.local()

    def sleep(self, stream_id: int | None, timeout: float | None) -> None:
        """Wait (lock held) for news about ``stream_id`` (``None``: any news) or the timeout."""
        sleeper: _Sleeper | None = getattr(self._local, "sleeper", None)
        if sleeper is None:
            sleeper = self._local.sleeper = _Sleeper(threading.Condition(self._state_lock))
        sleeper.stream_id = stream_id
        self._sleepers.append(sleeper)
        try:
            sleeper.cond.wait(timeout)
        finally:
            self._sleepers.remove(sleeper)

    def notify_all(self) -> None:
        """Wake every waiting thread (lock held)."""
        for sleeper in self._sleepers:
            sleeper.cond.notify()

    def notify_changed(self, streams: set[int] | None) -> None:
        """Wake the threads waiting for one of ``streams`` (all when ``None``) and untagged ones."""
        for sleeper in self._sleepers:
            if streams is None or sleeper.stream_id is None or sleeper.stream_id in streams:
                sleeper.cond.notify()

    def notify_one(self) -> None:
        """Wake one waiting thread, if any (to take over reading)."""
        if self._sleepers:
            self._sleepers[0].cond.notify()


class H2Session:
    """A live HTTP/2 connection: a socket, an :class:`H2Core` and the locks.

    :param read_timeout: bound on each wait for the server (``None``: no bound).
    :param write_timeout: bound on each wait to send (socket or flow control).

    The session owns ``sock`` from the start: if its own setup fails, it
    closes the socket before raising :class:`~hyper.TransportError`.
    """

    def __init__(
        self,
        sock: socket.socket,
        core: H2Core,
        read_timeout: float | None,
        write_timeout: float | None,
    ) -> None:
        try:
            sock.setblocking(False)
            # Wakes the reader out of its unlocked poll when another thread fed
            # the core with data (while sending) that the reader would wait for.
            self._waker_r, self._waker_w = socket.socketpair()
            try:
                # Wakes a sender waiting (under the state lock) for the socket
                # to drain, when close() is called: see close().
                self._interrupt_r, self._interrupt_w = socket.socketpair()
            except BaseException:
                self._waker_r.close()
                self._waker_w.close()
                raise
        except OSError as exc:
            sock.close()
            raise TransportError(f"could not set up the HTTP/2 connection: {exc}") from exc
        except BaseException:
            sock.close()
            raise
        for end in (self._waker_r, self._waker_w, self._interrupt_r, self._interrupt_w):
            end.setblocking(False)
        # Guards the interrupt socket's write end against being closed under
        # close()'s write (close() writes without the state lock). Never held
        # across a wait: the write is non-blocking.
        self._interrupt_lock = threading.Lock()
        self._fds_closed = False
        self._sock = sock
        self.core = core
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self._lock = threading.Lock()
        #: Waiters sleep here; notified whenever the core's state may have changed.
        self.cond = StateCondition(self._lock)
        self._reading = False
        self._socket_closed = False
        self._close_when_reader_done = False
        self._closed_by_user = False
        # Set (without the lock: a plain flag, read by the sender it
        # interrupts) when close() starts; a send waiting for the socket
        # gives up instead of waiting on.
        self._closing = False
        # A send was cut off mid-frame: the byte stream is torn and no
        # further frame (not even GOAWAY) may follow.
        self._torn = False
        self._flood_budget_started = time.monotonic()
        #: Added to wire stream ids to make the connection's public ids.
        self.id_base = 0
        #: The keep-alive gave up on the peer: the next request reconnects.
        self.declared_dead = False
        #: ``time.monotonic()`` when bytes last arrived (for keep-alive).
        self.last_received = time.monotonic()
        #: Set once the socket is closed (a keep-alive thread stops on it).
        self.stopped = threading.Event()
        self._recv_buffer = bytearray(RECV_BUFFER_SIZE)
        self._recv_view = memoryview(self._recv_buffer)

    # -- lifecycle --------------------------------------------------------------

    def start(self, received: bytes = b"") -> None:
        """Send the connection preface and our SETTINGS.

        ``received``: bytes the server sent before we spoke (through a fresh
        proxy tunnel), processed once our preface is out.
        """
        # The state lock: the preface must be the first bytes out, before
        # any thread's HEADERS, and the core is fed only under it.
        with self.cond:
            self.core.initiate()
            self.flush_locked()
            self._feed_received_locked(received)

    def start_upgraded(self, received: bytes) -> None:
        """Start on a socket an ``Upgrade: h2c`` switched to HTTP/2.

        The core was prepared with :meth:`H2Core.initiate_upgrade`; this sends
        the queued preface and processes ``received``, the bytes that came
        after the server's 101 response.
        """
        with self.cond:  # as in start(): the preface goes out first, the core is fed under it
            self.flush_locked()
            self._feed_received_locked(received)

    def _feed_received_locked(self, received: bytes) -> None:
        if received:
            self.core.receive(received)
            self.flush_locked()

    def usable_locked(self) -> bool:
        """True while new streams may be opened here. Caller holds the state lock."""
        return not self._socket_closed and self.core.accepting_streams() is None

    def refusal(self) -> tuple[HyperError | None, bool]:
        """Why no new stream may be opened here (``None``: they may), and whether it ended cleanly.

        Takes the state lock: the core's GOAWAY, failure and id counters
        change under it as the reader processes frames.
        """
        with self.cond:  # see above: one consistent view of GOAWAY, failure and ids
            if self.usable_locked():
                return None, True
            error = self.core.fatal or self.core.accepting_streams()
            if error is None:  # the socket closed with no error recorded
                error = ConnectionClosed("the connection is closed")
            return error, self._closed_cleanly_locked()

    def _closed_cleanly_locked(self) -> bool:
        """Closed by us, by a graceful GOAWAY, or by the server when idle."""
        core = self.core
        if self._closed_by_user or core.ids_exhausted or self.declared_dead:
            return True
        goaway = core.goaway
        if goaway is not None:
            return goaway[0] == 0
        return isinstance(core.fatal, ConnectionTerminated) and core.fatal.retryable

    def has_streams(self) -> bool:
        """True while some stream of this session is not yet finished with."""
        with self.cond:  # the reader adds (pushed) and removes streams under it
            return bool(self.core.streams)

    def may_have_pushes(self, wire_id: int) -> bool:
        """True while request stream ``wire_id`` is open or has untaken pushes."""
        with self.cond:  # pushes arrive and are taken under it
            if self._socket_closed:
                return False
            core = self.core
            return wire_id in core.streams or any(push.parent_id == wire_id for push in core.pushes)

    def close(self, error_code: int = 0) -> None:
        """Send GOAWAY (best effort) and close the socket; waiters get an error.

        Prompt even when a thread is stuck sending to a server that stopped
        reading: that thread waits for the socket while holding the state
        lock, so it is interrupted first (it raises
        :class:`~hyper.ConnectionClosed`), then the lock is taken.
        """
        # Without the lock, on purpose: the flag and the wake-up byte are how
        # a sender holding the lock learns to let go. The byte stays unread
        # until the lock is ours, so a sender that starts waiting after this
        # point still wakes at once.
        self._closing = True
        with self._interrupt_lock:
            if not self._fds_closed:
                try:
                    self._interrupt_w.send(b"\0")
                except OSError:
                    pass  # a byte is already waiting
        # The state lock: the core (GOAWAY), the flags and the socket.
        with self.cond:
            self._closed_by_user = True
            self._stop_interrupting_locked()
            if not self._socket_closed and not self._torn:
                self.core.close(error_code, "closed by the application")
                try:
                    self.flush_locked(timeout=1.0)
                except HyperError:
                    pass  # the peer is gone or stuck; closing anyway
            self.core.connection_lost(ConnectionClosed("the connection was closed"))
            self._close_socket_locked()
            self.cond.notify_all()

    def _stop_interrupting_locked(self) -> None:
        """Under the state lock no sender waits: clear the interrupt, so GOAWAY gets its second."""
        self._closing = False
        if self._socket_closed:
            return
        try:
            while self._interrupt_r.recv(64):
                pass
        except OSError:
            pass  # drained

    def _close_socket_locked(self) -> None:
        if self._socket_closed:
            return
        self._socket_closed = True
        self.stopped.set()
        if self._reading:
            # The reader polls this socket without the lock: wake it with a
            # shutdown and let it close the socket once it is done.
            self._close_when_reader_done = True
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            self._close_fds()

    def _close_fds(self) -> None:
        self._sock.close()
        self._waker_r.close()
        self._waker_w.close()
        with self._interrupt_lock:  # close() may be writing to it without the state lock
            self._fds_closed = True
            self._interrupt_r.close()
            self._interrupt_w.close()

    def _wake_reader_locked(self) -> None:
        self.cond.notify_changed(self.core.take_touched())
        if self._reading:
            try:
                self._waker_w.send(b"\0")
            except OSError:
                pass  # already full: the reader will wake anyway

    def _lost(self, error: HyperError) -> HyperError:
        """The socket failed or hit EOF: record, close, wake everyone."""
        self.core.connection_lost(error)
        self._close_socket_locked()
        self.cond.notify_all()
        return self.core.fatal or error

    def fileno(self) -> int:
        """The socket's file descriptor (-1 once closed).

        No lock: the state lock may be held for as long as a send waits, and
        a stale view of the flag is harmless (the socket object itself
        reports -1 once closed).
        """
        return -1 if self._socket_closed else self._sock.fileno()

    # -- sending ------------------------------------------------------------------

    def flush_locked(self, timeout: float | None = None) -> None:
        """Send everything the core has queued. Caller holds the state lock."""
        while True:
            pieces = self.core.pieces_to_send()
            if not pieces:
                return
            for piece in pieces:
                self._send_locked(piece, self.write_timeout if timeout is None else timeout)

    def _send_locked(self, data: bytes | memoryview, timeout: float | None) -> None:
        if self._socket_closed:
            raise _stored(self.core.fatal) or ConnectionClosed("the connection is closed")
        view = memoryview(data)
        size = view.nbytes
        deadline = None if timeout is None else time.monotonic() + timeout
        while view:
            if self._closing:
                # close() in another thread waits for the lock we hold: give
                # up. A frame cut in half means nothing more may be sent.
                self._torn = self._torn or view.nbytes != size
                raise ConnectionClosed("the connection was closed while data was being sent")
            try:
                sent = self._sock.send(view)
            except _WOULD_BLOCK_WRITE:
                self._wait_writable_locked(deadline)
                continue
            except ssl.SSLWantReadError:
                self._wait_readable_while_sending(deadline)
                continue
            except OSError as exc:
                raise self._lost(
                    ConnectionTerminated(f"connection broke while sending: {exc}", retryable=False)
                ) from exc
            view = view[sent:]

    def _write_time_left(self, deadline: float | None) -> float | None:
        """Seconds left to send; past the deadline the connection is lost."""
        remaining = _remaining(deadline)
        if remaining is not None and remaining <= 0:
            # A half-sent frame leaves the connection unusable.
            self._lost(ConnectionTerminated("write timed out mid-frame; connection closed"))
            raise WriteTimeout("the server did not accept our data in time")
        return remaining

    def _wait_writable_locked(self, deadline: float | None) -> None:
        remaining = self._write_time_left(deadline)
        # The interrupt socket lets close() end this wait (we hold the state
        # lock it needs); _send_locked then sees self._closing.
        readable, woken = wait_for_socket(
            self._sock, read=True, write=True, timeout=remaining, wake=self._interrupt_r
        )
        if woken and not self._closing:
            self._stop_interrupting_locked()  # a stale byte (two close() calls raced): no spinning
        if readable and self._drain_locked():
            # The server may be blocked writing to us; we read so it can go on,
            # and tell the reader (if any) that there is news.
            self._wake_reader_locked()

    def _wait_readable_while_sending(self, deadline: float | None) -> None:
        remaining = self._write_time_left(deadline)
        wait_for_socket(self._sock, read=True, write=False, timeout=remaining, wake=self._interrupt_r)

    # -- receiving ------------------------------------------------------------

    def _drain_locked(self) -> bool:
        """Read all the socket has now and feed it to the core; False on nothing.

        Reading stops only when the socket would block (or at EOF), never
        because our buffer is full: TLS may hold decrypted bytes that poll()
        cannot see, and nobody would come back for them.
        """
        progressed = False
        while not self._socket_closed:
            total, more, eof = self._fill_buffer_locked()
            if total:
                progressed = True
                self._feed_locked(total)
            if eof:
                self._on_eof_locked()
                return True
            if not more:
                break
        return progressed

    def _fill_buffer_locked(self) -> tuple[int, bool, bool]:
        """Receive into the buffer: (bytes, buffer filled up, EOF)."""
        view = self._recv_view
        total = 0
        while total < RECV_BUFFER_SIZE:
            try:
                got = self._sock.recv_into(view[total:])
            except (*_WOULD_BLOCK_READ, ssl.SSLWantWriteError):
                return total, False, False
            except ssl.SSLZeroReturnError:
                return total, False, True
            except OSError as exc:
                if total:
                    self._feed_locked(total)
                in_flight = self._streams_in_flight()
                raise self._lost(
                    ConnectionTerminated(f"connection broke: {exc}", retryable=not in_flight)
                ) from exc
            if not got:
                return total, False, True
            total += got
        return total, True, False

    def _feed_locked(self, size: int) -> None:
        now = self.last_received = time.monotonic()
        if now - self._flood_budget_started > FLOOD_BUDGET_PERIOD:
            self._flood_budget_started = now
            self.core.reset_flood_budget()
        # The frame splitter copies what it keeps, so no copy is needed here.
        self.core.receive(self._recv_view[:size])

    def _streams_in_flight(self) -> bool:
        return any(not s.complete for s in self.core.streams.values())

    def _on_eof_locked(self) -> None:
        in_flight = self._streams_in_flight()
        self._lost(
            ConnectionTerminated(
                "server closed the connection" + (" before the response was complete" if in_flight else ""),
                retryable=not in_flight,
            )
        )

    def wait_for(
        self,
        ready: Callable[[], bool],
        failure: Callable[[], HyperError | None],
        timeout: float | None,
        on_timeout: Callable[[], HyperTimeout],
        stream_id: int | None = None,
    ) -> None:
        """Block until ``ready()`` or ``failure()``; the caller holds ``cond``.

        The waiting thread becomes the reader when nobody else is reading,
        otherwise sleeps until the reader has news about ``stream_id`` (any
        news when ``None``: pass the stream only when nothing but a change
        of that stream can make ``ready()`` or ``failure()`` true).
        """
        try:
            self._wait_for(ready, failure, timeout, on_timeout, stream_id)
        finally:
            if not self._reading:
                # Leaving with nobody reading: a sleeper must take over.
                self.cond.notify_one()

    def _wait_for(
        self,
        ready: Callable[[], bool],
        failure: Callable[[], HyperError | None],
        timeout: float | None,
        on_timeout: Callable[[], HyperTimeout],
        stream_id: int | None,
    ) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if ready():
                return
            error = failure()
            if error is not None:
                raise fresh(error)
            if self._socket_closed:
                raise _stored(self.core.fatal) or ConnectionClosed("the connection is closed")
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                raise on_timeout()
            if self._reading:
                self.cond.sleep(stream_id, remaining)
                continue
            self._reading = True
            try:
                self._read_once_locked(remaining)
            finally:
                self._reading = False
                if self._close_when_reader_done:
                    self._close_when_reader_done = False
                    self._close_fds()
                self.cond.notify_changed(self.core.take_touched())

    def _read_once_locked(self, timeout: float | None) -> None:
        # The reader waits for the socket WITHOUT the state lock, so other
        # threads can send and take data meanwhile; self._reading (set under
        # the lock) keeps anyone from closing the socket under this poll.
        self._lock.release()
        try:
            readable, woken = wait_for_socket(
                self._sock, read=True, write=False, timeout=timeout, wake=self._waker_r
            )
        except (OSError, ValueError):
            readable, woken = True, False  # closed under us; the code below finds out
        finally:
            self._lock.acquire()
        if woken and not self._socket_closed:
            try:
                while self._waker_r.recv(4096):
                    pass
            except OSError:
                pass
        if readable:
            self._drain_and_answer_locked()

    def _drain_and_answer_locked(self) -> None:
        """Feed what arrived, then send what the core queued in answer."""
        if self._socket_closed:
            return
        self._drain_locked()
        if not self._socket_closed:
            self.flush_locked()

    def poll_locked(self) -> None:
        """Process whatever the server already sent, without waiting.

        Used before opening a stream, so the server's SETTINGS limits and a
        GOAWAY that arrived while the connection sat idle are known first.
        """
        if self._reading or self._socket_closed:
            return
        readable, _ = wait_for_socket(self._sock, read=True, write=False, timeout=0)
        if readable:
            try:
                self._drain_and_answer_locked()
            except HyperError:
                pass  # recorded in the core; the caller sees the session unusable
            self.cond.notify_changed(self.core.take_touched())

    # -- liveness -----------------------------------------------------------------

    def ping(self, payload: bytes, timeout: float | None) -> float:
        """Send PING, wait for its ACK; return the round trip in seconds."""
        core = self.core
        # The state lock: queuing the PING and sending it keep frame order;
        # the wait for the ACK releases it while polling (wait_for).
        with self.cond:
            if self._socket_closed:
                raise _stored(core.fatal) or ConnectionClosed("the connection is closed")
            core.send_ping(payload)
            started = time.monotonic()
            try:
                self.flush_locked()
                self.wait_for(
                    lambda: core.take_ping_ack(payload),
                    lambda: core.fatal,
                    timeout,
                    lambda: ReadTimeout(f"no PING ACK within {timeout} s"),
                )
            except BaseException:
                core.forget_ping(payload)
                raise
            return time.monotonic() - started

    def declare_dead(self, error: HyperError) -> None:
        """The peer stopped answering: fail everything with ``error`` and close."""
        with self.cond:  # the core's failure, the socket and the waiters it wakes
            if not self._socket_closed:
                log.debug("connection declared dead: %s", error)
                self.declared_dead = True
                self._lost(error)

    def streams_in_flight(self) -> bool:
        """True while some stream's response is not complete."""
        with self.cond:  # the reader changes stream states under it
            return self._streams_in_flight()

    # -- streams ----------------------------------------------------------------

    def stream_locked(self, stream_id: int) -> StreamState:
        """The state of a stream opened on this session. Caller holds the state lock.

        Raises :class:`InvalidStreamID` when it is gone (its response was
        closed or forgotten, possibly by another thread).
        """
        stream = self.core.streams.get(stream_id)
        if stream is None:
            raise InvalidStreamID(f"stream {stream_id} was closed", stream_id)
        return stream

    def send_body(
        self, stream_id: int, body: RequestBody, declared: int | None, end_stream: bool = True
    ) -> None:
        """Send a request body as the windows allow, then END_STREAM if ``end_stream``.

        Blocks until the body is sent, the server answers in full and stops
        the upload, or an error. A body that does not match ``declared``
        resets the stream and raises :class:`BodyLengthError`.
        """
        counter = LengthCounter(declared)
        core = self.core
        with self.cond:  # the reader may be removing the stream right now
            stream = self.stream_locked(stream_id)
        try:
            for block in body.blocks():  # read outside the lock: files may be slow
                counter.add(block.nbytes)
                view = block
                # The state lock, per block: the windows, queuing DATA and its
                # send keep frame order; readers get a turn between blocks.
                with self.cond:
                    while view.nbytes:
                        if self._upload_should_stop(stream):
                            return
                        sent = core.send_body(stream_id, view[:SEND_BATCH])
                        if sent:
                            view = view[sent:]
                            self.flush_locked()
                            continue
                        self.wait_for(
                            lambda: core.send_window(stream_id) > 0 or stream.request_ended,
                            lambda: core.stream_failure(stream),
                            self.write_timeout,
                            lambda: WriteTimeout(
                                f"server kept the flow-control window of stream {stream_id} "
                                f"closed for {self.write_timeout} s"
                            ),
                            stream_id,
                        )
            if end_stream:
                counter.check_complete()
        except BaseException:
            with self.cond:  # the RST_STREAM is queued and sent in order, waiters woken
                if not stream.request_ended:
                    core.reset(stream_id, 0x8)  # CANCEL
                    self.flush_quietly_locked()
                self.cond.notify_all()
            raise
        if not end_stream:
            return
        with self.cond:  # END_STREAM is queued and sent in order
            if not self._upload_should_stop(stream):
                core.end_body(stream_id)
                self.flush_locked()

    def _upload_should_stop(self, stream: StreamState) -> bool:
        error = self.core.stream_failure(stream)
        if error is not None:
            raise fresh(error)
        return stream.request_ended

    def discard_locked(self, stream_id: int, flush: bool = True) -> None:
        """The application is done with a stream: drop it (reset if unfinished).

        Wakes only the threads that may care: those on that stream (an upload,
        another reader) and untagged ones (a freed stream slot).
        """
        self.core.discard_stream(stream_id)
        if flush:
            self.flush_quietly_locked()
        self.cond.notify_changed({stream_id})

    def flush_quietly_locked(self) -> None:
        """Flush, ignoring a dead connection (used while cleaning up)."""
        try:
            self.flush_locked()
        except HyperError:
            pass

    def remote_settings(self, timeout: float | None) -> dict[int, int]:
        """The server's SETTINGS by code, once its first SETTINGS frame is in.

        Waits (bounded by ``timeout``) for that frame, reading the socket if no
        other thread is: right after connecting, h2 still holds the protocol
        defaults (RFC 9113 section 6.5.2), not the server's real limits.
        """
        core = self.core
        # The state lock guards the core: the copy is taken while no reader
        # thread can be feeding it a SETTINGS frame.
        with self.cond:
            self.wait_for(
                lambda: core.settings_received,
                lambda: core.fatal,
                timeout,
                lambda: ReadTimeout(f"no SETTINGS from the server within {timeout} s"),
            )
            # H2Core has no public accessor for h2's remote settings yet.
            return dict(core._h2.remote_settings)


def _stored(error: HyperError | None) -> HyperError | None:
    return None if error is None else fresh(error)


def wait_limit(
    read_timeout: float | None, deadline_at: float | None, what: str
) -> tuple[float | None, Callable[[], HyperTimeout]]:
    """The bound of one wait, and the error when it expires.

    The read timeout, or less when the exchange's overall deadline (a
    ``time.monotonic()`` value) comes first. ``what`` starts the message.
    """
    if deadline_at is not None:
        remaining = max(0.0, deadline_at - time.monotonic())
        if read_timeout is None or remaining < read_timeout:
            return remaining, lambda: ReadTimeout(f"{what}: the exchange's overall deadline passed")
    return read_timeout, lambda: ReadTimeout(f"{what} within the read timeout of {read_timeout} s")


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()

"""The socket half of an HTTP/2 session: the socket, the state lock, the core, and draining.

:class:`SessionWire` is the base of :class:`~hyper.http20.session.H2Session`
and part of it: it owns the non-blocking socket, the two wake-up socket
pairs, the state lock and its condition, and the core (fed only from here).
The locking argument for the whole session is stated once, in
:mod:`hyper.http20.session`; this module keeps to it:

* every ``*_locked`` method runs with the state lock held;
* the one place the lock is let go is the reader's poll (in
  :mod:`hyper.http20.session_reader`), guarded by ``_reading`` so that
  nobody closes the socket under that poll;
* sends (in order, with the lock held while they wait) are the next layer
  up, :mod:`hyper.http20.session_send`; this one drains what arrives.

No module outside the session uses this one.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable

from ..common.tls_read import buffer_reader, pending_counter
from ..exceptions import (
    ConnectionTerminated,
    HyperError,
    TransportError,
    fresh,
)
from .core import H2Core
from .session_wakeups import StateCondition
from .streams import RequestEvent

#: Size of the reusable receive buffer; one fill reads at most this much.
RECV_BUFFER_SIZE = 512 * 1024
#: A fill starts where the last one stopped while the core still holds views
#: of the buffer (DATA runs, see hyper.http20.data_runs), and goes back to
#: the start, copying those views out first, once less than this is left.
MIN_FILL_SPACE = 64 * 1024
#: Why a fill of the receive buffer stopped (see SessionWire._fill_buffer_locked).
_BLOCKED, _FULL, _SHORT, _ROOM_LOW = object(), object(), object(), object()
#: Most application bytes one TLS record carries (RFC 8446 section 5.1).
_FULL_TLS_RECORD = 16384
#: Seconds per budget of control frames (see H2Core.reset_flood_budget).
FLOOD_BUDGET_PERIOD = 1.0

_WOULD_BLOCK_READ = (ssl.SSLWantReadError, BlockingIOError, InterruptedError)
# What ends a fill of the receive buffer as "nothing more now" (a TLS
# renegotiation-style want-write included): one tuple, not built per read.
_FILL_BLOCKED = (*_WOULD_BLOCK_READ, ssl.SSLWantWriteError)


class SessionWire:
    """The socket, the state lock and the core of one session, and the I/O between them.

    :param read_timeout: bound on each wait for the server (``None``: no bound).
    :param write_timeout: bound on each wait to send (socket or flow control).

    Owns ``sock`` from the start: if its own setup fails, it closes the
    socket before raising :class:`~hyper.TransportError`.
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
            core.release()  # h2's self-referencing state goes now, not at a garbage collection
            raise TransportError(f"could not set up the HTTP/2 connection: {exc}") from exc
        except BaseException:
            sock.close()
            core.release()
            raise
        for end in (self._waker_r, self._waker_w, self._interrupt_r, self._interrupt_w):
            end.setblocking(False)
        # Guards the interrupt socket's write end against being closed under
        # close()'s write (close() writes without the state lock). Never held
        # across a wait: the write is non-blocking.
        self._interrupt_lock = threading.Lock()
        self._fds_closed = False
        self._sock = sock
        # The sans-I/O protocol state: read and changed only under self._lock.
        self._core = core
        # The core's connection credit (the same object for the core's
        # life): its plain count of buffered body bytes is read per read
        # below, without the core's property call.
        self._core_credit = core.credit
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        # The state lock (see hyper.http20.session for what it protects).
        self._lock = threading.Lock()
        # Waiters sleep here; notified whenever the core's state may have changed.
        self._cond = StateCondition(self._lock)
        self._reading = False
        self._socket_closed = False
        # Set under the lock once the session may refuse new streams (a
        # GOAWAY, a failure, closing, stream ids used up), never cleared;
        # read WITHOUT the lock by H2Session.refusal() (see there).
        self._refusal_possible = False
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
        #: Added to wire stream ids to make the connection's public ids (set
        #: once, by the connection, before any stream is opened).
        self.id_base = 0
        # The keep-alive gave up on the peer: the next request reconnects.
        self._declared_dead = False
        # ``time.monotonic()`` when bytes last arrived (for keep-alive).
        self._last_received = time.monotonic()
        #: Set once the socket is closed (a keep-alive thread stops on it).
        self.stopped = threading.Event()
        self._recv_buffer = bytearray(RECV_BUFFER_SIZE)
        # Where the next fill of the buffer starts. The core buffers the
        # payloads of DATA runs as views of this buffer, uncopied until the
        # application takes them (one copy per body byte instead of two), so
        # bytes under a view still held must not be read over. A fill
        # therefore goes on after the previous one while the core holds any
        # body bytes, and starts again at 0 once it holds none (all taken),
        # or, when the buffer is nearly used up, after the core copied the
        # views still held into bytes of their own (CoreBodies.detach_views).
        self._recv_offset = 0
        # How many decrypted bytes TLS holds (``None`` in cleartext): the SSL
        # object's C method where usable (two Python frames fewer per read),
        # else the public one; see hyper.common.tls_read.
        self._tls_pending: Callable[[], int] | None = pending_counter(sock)
        self._recv_view = memoryview(self._recv_buffer)
        # read(nbytes, buffer): the SSL object's C method where usable (two
        # Python frames fewer per TLS record), else the public recv_into; see
        # hyper.common.tls_read. With the C method an unannounced EOF comes
        # as SSLEOFError, which SSLSocket.read would have made a clean EOF.
        self._read_into, self._ragged_eof_is_eof = buffer_reader(sock)

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
        self._refusal_possible = True
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
        # Nothing can be received any more: h2's self-referencing state can go
        # now rather than at the next cyclic garbage collection (a long-lived
        # connection replaced after GOAWAY holds every closed-stream record).
        self._core.release()
        self._sock.close()
        self._waker_r.close()
        self._waker_w.close()
        with self._interrupt_lock:  # close() may be writing to it without the state lock
            self._fds_closed = True
            self._interrupt_r.close()
            self._interrupt_w.close()

    def _wake_reader_locked(self) -> None:
        self._cond.notify_changed(self._core.take_touched())
        self._poke_reader_locked()

    def _poke_reader_locked(self) -> None:
        """Make the reader, polling the socket without the lock, look again.

        A change made under the lock by another thread (a freed stream slot,
        a reset stream) wakes the sleepers on the condition, but the reader
        waits on the socket and would see it only when bytes arrive: with a
        quiet server, never. The reader may be the very thread that waits
        for that change.
        """
        if self._reading:
            try:
                self._waker_w.send(b"\0")
            except OSError:
                pass  # already full: the reader will wake anyway

    def _lost(self, error: HyperError) -> HyperError:
        """The socket failed or hit EOF: record, close, wake everyone; return a copy to raise.

        The stored error itself is never raised: its traceback would hold
        this session's frames, a reference cycle (see ``without_frames``).
        """
        self._core.connection_lost(error)
        self._refusal_possible = True
        self._close_socket_locked()
        self._cond.notify_all()
        return fresh(self._core.fatal or error)

    def fileno(self) -> int:
        """The socket's file descriptor (-1 once closed).

        No lock: the state lock may be held for as long as a send waits, and
        a stale view of the flag is harmless (the socket object itself
        reports -1 once closed).
        """
        return -1 if self._socket_closed else self._sock.fileno()

    # -- receiving ------------------------------------------------------------

    def _drain_locked(self, until_blocked: bool = True) -> bool:
        """Read all the socket has now and feed it to the core; False on nothing.

        Reading stops when the socket would block (or at EOF), never because
        our buffer is full: TLS may hold decrypted bytes that poll() cannot
        see, and nobody would come back for them.

        Without ``until_blocked`` (the reader's own drain) it also stops
        after a short read (less than a full TLS record or, in cleartext,
        than asked for) that left nothing decrypted in TLS, once the server
        owes no response: then its write most likely ended there, and asking
        again would cost a system call and an exception only to hear "would
        block" (one per request, for sequential requests). Whatever else
        arrived is in the kernel, where the next poll() sees it. While a
        response is still owed (several requests in flight, a download) the
        drain goes on to "would block", as more is likely right behind;
        except that it also stops when the buffer is nearly used up, at the
        end of a TLS record, while the core holds body bytes (views of the
        buffer, perhaps: see ``__init__``), so that the application takes
        them before they would have to be copied out.
        """
        progressed = False
        while not self._socket_closed:
            total, status, eof = self._fill_buffer_locked(until_blocked)
            if total:
                progressed = True
                self._feed_locked(total)
            if eof:
                self._on_eof_locked()
                return True
            if status is _BLOCKED:
                break
            if status is _SHORT:
                # _streams_in_flight(), inline (asked after most reads of
                # sequential requests): stop unless a response is still owed.
                for stream in self._core.streams.values():
                    if not stream.complete:
                        break  # owed: read on
                else:
                    break
            if status is _ROOM_LOW and self._core_credit.total_buffered:
                # The buffer is nearly used up, and the core holds body
                # bytes, views of it perhaps: the reader lets the waiters
                # take them before it reads on, so that the next fill can
                # start at the beginning again instead of copying the views
                # out (see __init__). The rest waits in the kernel, where
                # the next poll() sees it.
                break
        return progressed

    def _fill_buffer_locked(self, until_blocked: bool = True) -> tuple[int, object, bool]:
        """Receive into the buffer: (bytes, why it stopped, EOF).

        It stops when the socket would block (``_BLOCKED``), the buffer is
        full (``_FULL``), or, without ``until_blocked``, after a short read
        with nothing left decrypted in TLS (``_SHORT``; see
        :meth:`_drain_locked`), or with less than :data:`MIN_FILL_SPACE`
        left in the buffer at the end of a TLS record (``_ROOM_LOW``).
        """
        # Nothing buffered in the core: no view of the buffer is held, and
        # the fill may start at the beginning.
        # (_feed_locked reads the bytes from _recv_offset on: it is set here.)
        start = self._recv_offset = self._recv_offset if self._core_credit.total_buffered else 0
        if RECV_BUFFER_SIZE - start < MIN_FILL_SPACE:
            # Too little room left after bytes the core may still hold views
            # of: those views become bytes of their own, and the whole
            # buffer is free again (see __init__).
            self._core.detach_views(self._recv_buffer)
            start = self._recv_offset = 0
        limit = RECV_BUFFER_SIZE - start
        view = self._recv_view
        pending = self._tls_pending
        read = self._read_into
        total = 0
        while total < limit:
            try:
                got = read(limit - total, view[start + total :])
            except _FILL_BLOCKED:
                return total, _BLOCKED, False
            except ssl.SSLZeroReturnError:
                return total, _BLOCKED, True
            except OSError as exc:
                if self._ragged_eof_is_eof and isinstance(exc, ssl.SSLEOFError):
                    return total, _BLOCKED, True  # what SSLSocket.read reports as EOF
                if total:
                    self._feed_locked(total)
                in_flight = self._streams_in_flight()
                raise self._lost(
                    ConnectionTerminated(f"connection broke: {exc}", retryable=not in_flight)
                ) from exc
            if not got:
                return total, _BLOCKED, True
            total += got
            if not until_blocked and limit - total < MIN_FILL_SPACE and (pending is None or not pending()):
                # The reader's drain, with the buffer nearly used up, at the
                # end of a TLS record: stop here (see _drain_locked).
                # Nothing is left decrypted in TLS, so the next poll() sees
                # whatever else has arrived.
                return total, _ROOM_LOW, False
            # Only while this drain has read less than one full record: a
            # short record after more data (a download's, a burst's) means
            # the response goes on, and stopping there would only split the
            # bytes into more, smaller feeds of the core.
            if (
                not until_blocked
                and total < _FULL_TLS_RECORD
                and (
                    not pending()
                    if pending is not None
                    else total < limit  # cleartext: the kernel had no more than this
                )
            ):
                return total, _SHORT, False
        return total, _FULL, False

    def _feed_locked(self, size: int) -> None:
        now = self._last_received = time.monotonic()
        if now - self._flood_budget_started > FLOOD_BUDGET_PERIOD:
            self._flood_budget_started = now
            self._core.reset_flood_budget()
        # No copy here: the frame splitter copies what it keeps, except the
        # payloads of DATA runs, which the core holds as views (see __init__).
        start = self._recv_offset
        # Past these bytes before the core sees them: should receive() raise
        # something unforeseen after buffering views of them, the next fill
        # still goes on after them instead of reading over held bytes.
        self._recv_offset = start + size
        self._core.receive(self._recv_view[start : start + size])
        # While the core holds body bytes (views of this buffer among them,
        # perhaps), the next fill must not read over them: it goes on after
        # these. Once it holds none, nothing can point into the buffer.
        if not self._core_credit.total_buffered:
            self._recv_offset = 0
        # _note_refusal_locked(), inline and without its core call (once per
        # read): of what makes the core refuse new streams (accepting_streams),
        # a read can bring only a GOAWAY (the core then marks itself closed,
        # RFC 9113 section 6.8) or a failure (fatal; an error GOAWAY of ours
        # marks it closed too); the last stream id is used up by an open,
        # noted there. So "closed or failed" is the core's own answer here
        # (tests/test_session_refusal_after_read.py holds them together).
        core = self._core
        if not self._refusal_possible and (core.closed or core.fatal is not None):
            self._refusal_possible = True

    def _note_refusal_locked(self) -> None:
        """After a step that may have made the core refuse new streams: remember it for refusal()."""
        if not self._refusal_possible and self._core.accepting_streams() is not None:
            self._refusal_possible = True

    def _streams_in_flight(self) -> bool:
        return any(not s.complete for s in self._core.streams.values())

    def _on_eof_locked(self) -> None:
        # HEADERS still held (a batch or a burst, session_batch.py) never
        # left: the server cannot have acted on those requests, so they do
        # not make the close an interrupted exchange, and each gets a
        # retryable error of its own (RFC 9113 section 8.7's spirit: not
        # processed, safe to send again). Lock held.
        held = {stream_id for stream_id, _ in getattr(self, "_held", ())}
        core = self._core
        in_flight = any(not s.complete and s.stream_id not in held for s in core.streams.values())
        for stream_id in held:
            stream = core.streams.get(stream_id)
            # (One a GOAWAY already excludes keeps that failure: it is sent
            # again from there, resending.py.)
            if stream is not None and stream.error is None and core.stream_failure(stream) is None:
                # As session_batch's _never_sent_locked: the stream's own
                # failure, and our half ended (nothing may name it on the wire).
                stream.error = ConnectionTerminated(
                    "server closed the connection before this request was sent; it is safe to retry",
                    retryable=True,
                )
                stream.request_event(RequestEvent.RESET)
        self._lost(
            ConnectionTerminated(
                "server closed the connection" + (" before the response was complete" if in_flight else ""),
                retryable=not in_flight,
            )
        )


def fresh_or_none(error: HyperError | None) -> HyperError | None:
    """A fresh copy of a stored error, to raise (see ``without_frames``); ``None`` for none."""
    return None if error is None else fresh(error)


def time_left(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value); ``None`` waits forever."""
    return None if deadline is None else deadline - time.monotonic()

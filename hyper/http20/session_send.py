"""The sending half of an HTTP/2 session: whatever the core queued, in order, within the write timeout.

:class:`SessionSend` sits between :class:`~hyper.http20.session_wire.SessionWire`
(the socket, the state lock, the core, draining) and the reader election of
:mod:`hyper.http20.session_reader`. The locking argument for the whole
session is stated once, in :mod:`hyper.http20.session`; this module keeps to
it:

* every ``*_locked`` method runs with the state lock held, and a send waits
  for the socket *with* the lock held: frames must leave in the order the
  state changed (RFC 9113 section 5.1.1: stream ids in increasing order,
  HPACK blocks in encoding order, RFC 7541 section 2.2);
* while it waits it still reads (``_drain_locked``), so a server that is
  itself blocked writing to us cannot deadlock the pair;
* ``close()`` from another thread ends such a wait through the interrupt
  socket; a frame cut in half then marks the connection torn (nothing more
  may be written on it).

No module outside the session uses this one.
"""

from __future__ import annotations

import ssl
import time
from typing import TYPE_CHECKING

from ..common.sockets import wait_for_socket
from ..exceptions import ConnectionClosed, ConnectionTerminated, HyperError, WriteTimeout
from .session_wire import SessionWire, fresh_or_none, time_left

_WOULD_BLOCK_WRITE = (ssl.SSLWantWriteError, BlockingIOError, InterruptedError)


class SessionSend(SessionWire):
    """Ordered, bounded sends of what the core queued (a base of the session)."""

    if TYPE_CHECKING:
        # HEADERS a corked thread holds back, and their sending: defined by
        # session_batch (a subclass), asked here so that one flush method,
        # not an override calling this one, serves every flush (two per
        # request).
        _held: list[tuple[int, bytes]]

        def _send_held_locked(self, timeout: float | None) -> None: ...

    def _flush_locked(self, timeout: float | None = None) -> None:
        """Send the bytes a batch holds (session_batch), then everything the core queued. Lock held."""
        # Held HEADERS were taken from the core before anything it queued
        # since: they go first, so frames leave in the order the state
        # changed (RFC 9113 section 5.1.1). Empty unless a thread is corked.
        if self._held:
            self._send_held_locked(timeout)
        while True:
            pieces = self._core.pieces_to_send()
            if not pieces:
                return
            # Only the careful way (_send_locked) reads while it waits (it
            # drains the socket so a server blocked writing to us goes on),
            # and only a read makes the core queue more (ACKs, RFC 9113
            # sections 6.5.3 and 6.7). When every piece left in one plain
            # send, the core has nothing new: asking it again would only
            # hear "nothing" (one call fewer per flush, two flushes per
            # request).
            careful = False
            for piece in pieces:
                # The common case first: the kernel takes the whole piece in
                # one call. Anything else (a short send, a full socket, a
                # TLS renegotiation wanting a read, an error, a close in
                # progress) goes the careful way, from the first unsent byte:
                # a failed send took nothing, so resending from there loses
                # and repeats no byte.
                sent = 0
                if not self._socket_closed and not self._closing:
                    try:
                        sent = self._sock.send(piece)
                    except OSError:
                        sent = 0
                if sent != len(piece):
                    careful = True
                    self._send_locked(
                        memoryview(piece)[sent:], self.write_timeout if timeout is None else timeout
                    )
            if not careful:
                return

    def _flush_quietly_locked(self) -> None:
        """Flush, ignoring a dead connection (used while cleaning up, and after each response).

        Asked first whether there is anything to send (held HEADERS of a
        batch, or the core's queue): after a response there usually is not,
        and the question is cheaper than the flush's own.
        """
        if not self._held and not self._core.has_output():
            return
        try:
            self._flush_locked()
        except HyperError:
            pass

    def _send_locked(self, data: bytes | memoryview, timeout: float | None) -> None:
        if self._socket_closed:
            raise fresh_or_none(self._core.fatal) or ConnectionClosed("the connection is closed")
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
        remaining = time_left(deadline)
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

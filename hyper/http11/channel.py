"""The state one HTTP/1.1 connection shares between its threads, under one lock.

HTTP/1.1 carries one exchange at a time, so one lock serializes the wire: it
is held while a request goes out and while a response's bytes are read, and
it guards every field of :class:`Channel`. A thread waits for it at most the
read timeout (:class:`~hyper.ReadTimeout`). The sending
(:mod:`~hyper.http11.sending`) and receiving (:mod:`~hyper.http11.receiving`)
halves of the exchange state machine work on this state; methods named
``*_locked`` expect the caller to hold the lock.
"""

from __future__ import annotations

import logging
import socket
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..common.stream_ids import unknown_stream_id
from ..exceptions import ConnectionClosed, ConnectionTerminated, InvalidStreamID, ReadTimeout
from ..limits import Limits
from .wire import Exchange, Wire, still_open

log = logging.getLogger("hyper")

#: Unread response bytes buffered, over all responses, when ``Limits.max_buffered`` is None.
DEFAULT_MAX_BUFFERED = 16 * 1024 * 1024


class Channel:
    """The current socket, the exchange on it and the responses not yet taken.

    :param authority: names the server in log lines.
    :param read_timeout: bounds each wait for the lock, each read and each send.
    :param limits: the bounds on what the server may make the connection hold.
    :param open_wire: a bound method that opens a new socket when the connection needs one; the
        connection's policy (TLS, ALPN, proxy) lives there.
    """

    def __init__(
        self, authority: str, read_timeout: float | None, limits: Limits, open_wire: Callable[[], Wire]
    ) -> None:
        self.authority = authority
        self.read_timeout = read_timeout
        self.limits = limits
        #: Unread response bytes buffered at most, over all responses, before a new request fails.
        self.max_buffered = limits.max_buffered if limits.max_buffered is not None else DEFAULT_MAX_BUFFERED
        # Weak: the connection owns this channel, and a strong reference back
        # would make a cycle that keeps both (and their buffers) alive until
        # the garbage collector runs, long after the application dropped them.
        self._open_wire = weakref.WeakMethod(open_wire)
        #: Serializes the wire and guards every field below.
        self.lock = threading.Lock()
        #: Signalled (under the lock) when a request sent piecewise is complete
        #: or a response ended: waiters for the wire may go on.
        self.cond = threading.Condition(self.lock)
        #: The socket in use, or ``None`` before the first request and after a drop.
        self.wire: Wire | None = None
        #: Exchanges whose response was not yet taken, oldest first.
        self.untaken: OrderedDict[int, Exchange] = OrderedDict()
        #: The exchange whose response is being received on the wire.
        self.active: Exchange | None = None
        #: close() is shutting the socket down: a read that ends now is ours, not the server's.
        self.closing = False
        self._next_id = 1

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lock, waiting for it at most the read timeout."""
        timeout = self.read_timeout
        if not self.lock.acquire(timeout=-1 if timeout is None else timeout):
            raise ReadTimeout(f"another thread kept the HTTP/1.1 connection busy for {timeout} s")
        try:
            yield
        finally:
            self.lock.release()

    def take_id_locked(self) -> int:
        """A new request id (1, 2, 3...), never reused on this connection."""
        stream_id = self._next_id
        self._next_id += 1
        return stream_id

    def wait_request_complete_locked(self) -> None:
        """Wait (bounded) until no request is half sent: one sent piecewise holds the wire."""
        active = self.active
        if active is None or not active.request_open:
            return
        # cond.wait_for releases the lock while waiting; send(..., final=True) notifies.
        if not self.cond.wait_for(
            lambda: self.active is None or not self.active.request_open, self.read_timeout
        ):
            raise ReadTimeout(
                f"another thread's putrequest() on stream {active.stream_id} did not finish "
                f"within {self.read_timeout} s"
            )

    def untaken_exchange_locked(self, stream_id: int | None) -> Exchange:
        """The exchange of request ``stream_id`` (the oldest if None) whose response is not taken yet."""
        untaken = self.untaken
        if stream_id is None:
            if not untaken:
                raise InvalidStreamID("no request is waiting for its response", None)
            stream_id = next(iter(untaken))
        exchange = untaken.get(stream_id)
        if exchange is None:
            raise unknown_stream_id(stream_id, self._next_id, odd_only=False)
        return exchange

    # -- the socket ----------------------------------------------------------------

    def usable_wire_locked(self) -> Wire:
        """The current socket, or a new one when there is none or the server closed it."""
        wire = self.wire
        if wire is not None and wire.requests and not still_open(wire.sock):
            log.debug("kept-alive connection to %s was closed by the server; reconnecting", self.authority)
            self.drop_wire_locked(wire)
            wire = None
        if wire is None:
            open_wire = self._open_wire()
            if open_wire is None:  # the connection is gone: nothing may open sockets for it
                raise ConnectionClosed("the connection was closed")
            wire = open_wire()
            self.wire = wire
        return wire

    def install_wire_locked(self, wire: Wire) -> None:
        """Use ``wire`` (an adopted socket) from now on, closing the current one."""
        if self.wire is not None:
            self.drop_wire_locked(self.wire)
        self.wire = wire

    def drop_wire_locked(self, wire: Wire) -> None:
        """Close ``wire``; the exchange on it, if unfinished, fails."""
        if not wire.closed:
            wire.closed = True
            try:
                wire.sock.close()
            except OSError:
                pass
        if self.wire is wire:
            self.wire = None
        active = self.active
        if active is not None and active.wire is wire:
            self.active = None
            if not active.ended and active.error is None:
                active.error = ConnectionTerminated(
                    "the connection was closed before the response was complete"
                )

    def release_wire_locked(self, wire: Wire) -> tuple[socket.socket, bytes]:
        """Let go of ``wire`` without closing it (after 101 Switching Protocols).

        Returns its socket and the bytes h11 received after the end of the
        HTTP/1.1 response: they belong to the protocol switched to.
        """
        data, _ = wire.h11.trailing_data
        self.active = None
        wire.closed = True  # handed over, not closed
        if self.wire is wire:
            self.wire = None
        return wire.sock, bytes(data) + wire.early

    def buffered_total_locked(self) -> int:
        """Body bytes received but not yet read, over all responses of this connection."""
        total = sum(ex.buffered for ex in self.untaken.values())
        if self.active is not None and self.active.stream_id not in self.untaken:
            total += self.active.buffered
        return total

    def fileno(self) -> int:
        """The socket's file descriptor (-1 when not connected)."""
        wire = self.wire
        return -1 if wire is None or wire.closed else wire.sock.fileno()

    def shut_down(self) -> None:
        """Shut the socket down without the lock, ending any read in progress at once."""
        wire = self.wire
        if wire is not None and not wire.closed:
            try:
                wire.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected, or already shut

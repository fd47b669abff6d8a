"""One HTTP/2 connection on one socket: the only owner of the core and its lock.

The upper layers (:mod:`~hyper.http20.connection`, :mod:`~hyper.http20.response`,
:mod:`~hyper.http20.push`, :mod:`~hyper.http20.keepalive`) call the
operations of :class:`H2Session` (open a stream, send a body, wait for
headers, read body bytes, take pushes, ping, close, ...) and never see the
lock, its condition or the core. The session is this module plus its
private parts: :mod:`~hyper.http20.session_wire` (the socket, draining),
:mod:`~hyper.http20.session_send` (ordered sends),
:mod:`~hyper.http20.session_reader` (waiting, the reader election),
:mod:`~hyper.http20.session_responses` (response headers and bodies),
:mod:`~hyper.http20.session_upload` (request bodies),
:mod:`~hyper.http20.session_batch` (requests held and sent together),
:mod:`~hyper.http20.session_coalesce` and :mod:`~hyper.http20.session_flusher`
(a burst of requests held and sent in one write),
:mod:`~hyper.http20.session_push_ping_settings` (server push, PING, the
server's SETTINGS) and :mod:`~hyper.http20.session_wakeups` (aimed wake-ups);
``tests/test_session_owns_lock.py`` checks that no other module names them.
The thread-safety argument, in one place:

* **One state lock** guards the core (every stream's state, the windows, the
  push and ping books) and the session's own flags. Every operation of the
  session takes it for the whole of its step, so each step sees and leaves one
  consistent state.
* **Frames leave in the order the state changed.** Bytes the core queues are
  sent before the lock is released. That is what keeps new stream ids
  increasing on the wire (RFC 9113 section 5.1.1: a lower id after a higher
  one is a connection error), and HEADERS, DATA and RST_STREAM of one
  stream in order (section 5.1).
* **One reader, elected.** The socket is non-blocking. A thread that must
  wait for the server becomes *the reader* if nobody is: it polls the socket
  with the lock released (the only place it is let go), then takes it back,
  drains the socket into the core, sends what the core answers (SETTINGS
  ACK, PING ACK, WINDOW_UPDATE, section 6) and wakes the threads whose
  streams changed. Everyone else sleeps on the condition until there is news
  for them; a waiter that leaves while nobody reads hands the role on. No
  background thread, no busy polling.
* **The only network wait under the lock is the ordered send.** While it
  waits for the socket to drain it keeps reading, so a server blocked
  writing to us cannot deadlock the pair; :meth:`H2Session.close`
  interrupts it through a wake-up socket *before* taking the lock, so
  closing never waits for a server that stopped reading.
* **Errors are stored, not lost.** The first connection-fatal error is kept
  in the core and raised (a fresh copy) to every waiter; a stream's own
  error only to that stream's waiters.

The few reads without the lock are commented where they occur (:meth:`fileno`
and the close flag :meth:`close` raises).
"""

from __future__ import annotations

import logging
import select
import time
from threading import get_ident
from typing import Any

from ..common import sockets as _sockets
from ..exceptions import (
    ConnectionClosed,
    ConnectionTerminated,
    HyperError,
    ReadTimeout,
)
from .session_coalesce import SessionCoalesce
from .session_push_ping_settings import SessionPushPingSettings
from .session_responses import HELD_BODY_MAX as HELD_BODY_MAX
from .session_responses import BodyPiece as BodyPiece
from .session_responses import SessionResponses
from .session_upload import SessionUpload

log = logging.getLogger("hyper")


class H2Session(SessionCoalesce, SessionPushPingSettings, SessionUpload, SessionResponses):
    """A live HTTP/2 connection: a socket, an :class:`H2Core` and the locks.

    :param read_timeout: bound on each wait for the server (``None``: no bound).
    :param write_timeout: bound on each wait to send (socket or flow control).

    The session owns ``sock`` from the start: if its own setup fails, it
    closes the socket before raising :class:`~hyper.TransportError`.
    """

    # -- lifecycle --------------------------------------------------------------

    def start(self, received: bytes = b"") -> None:
        """Send the connection preface and our SETTINGS.

        ``received``: bytes the server sent before we spoke (through a fresh
        proxy tunnel), processed once our preface is out.
        """
        # The state lock: the preface must be the first bytes out, before
        # any thread's HEADERS (RFC 9113 section 3.4), and the core is fed
        # only under it.
        with self._cond:
            self._core.initiate()
            self._flush_locked()
            self._feed_received_locked(received)

    def start_upgraded(self, received: bytes) -> None:
        """Start on a socket an ``Upgrade: h2c`` switched to HTTP/2.

        The core was prepared with :meth:`H2Core.initiate_upgrade`; this sends
        the queued preface and processes ``received``, the bytes that came
        after the server's 101 response.
        """
        with self._cond:  # as in start(): the preface goes out first, the core is fed under it
            self._flush_locked()
            self._feed_received_locked(received)

    def _feed_received_locked(self, received: bytes) -> None:
        if received:
            self._core.receive(received)
            self._note_refusal_locked()
            self._flush_locked()

    def _usable_locked(self) -> bool:
        """True while new streams may be opened here. Caller holds the state lock."""
        if not self._socket_closed and self._core.accepting_streams() is None:
            return True
        self._refusal_possible = True
        return False

    def refusal(self) -> tuple[HyperError | None, bool]:
        """Why no new stream may be opened here (``None``: they may), and whether it ended cleanly."""
        # Asked before every request. The common answer ("usable") comes
        # WITHOUT the state lock, which eight threads on one connection would
        # otherwise queue for once more per request: _refusal_possible is a
        # plain flag, set (under the lock) by every step after which the
        # session may refuse streams, and never cleared, so reading it
        # unlocked gives an answer the lock would have given a moment
        # earlier. A refusal that comes just after is found by open_stream(),
        # which checks again under the lock (as it always had to: a GOAWAY
        # may still sit unread in the socket here).
        if not self._refusal_possible:
            return None, True
        # The state lock: the core's GOAWAY, failure and id counters change
        # under it as the reader processes frames; one consistent view.
        with self._cond:
            # What the flusher's send raised (session_coalesce) is raised to
            # this caller, as if its own flush had failed: not taken for a
            # clean end (which would reconnect silently and lose it).
            if self._flusher_error is not None:
                self._raise_flusher_error_locked()
            if self._usable_locked():
                return None, True
            error = self._core.fatal or self._core.accepting_streams()
            if error is None:  # the socket closed with no error recorded
                error = ConnectionClosed("the connection is closed")
            return error, self._closed_cleanly_locked()

    def _closed_cleanly_locked(self) -> bool:
        """Closed by us, by a graceful GOAWAY, or by the server when idle."""
        core = self._core
        if self._closed_by_user or core.ids_exhausted or self._declared_dead:
            return True
        goaway = core.goaway
        if goaway is not None:
            return goaway[0] == 0  # NO_ERROR: a graceful shutdown (RFC 9113 section 6.8)
        return isinstance(core.fatal, ConnectionTerminated) and core.fatal.retryable

    def has_streams(self) -> bool:
        """True while some stream of this session is not yet finished with."""
        with self._cond:  # the reader adds (pushed) and removes streams under it
            return bool(self._core.streams)

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
        with self._interrupt_lock:  # the interrupt socket's write end, not the state
            if not self._fds_closed:
                try:
                    self._interrupt_w.send(b"\0")
                except OSError:
                    pass  # a byte is already waiting
        # The state lock: the core (GOAWAY), the flags and the socket.
        with self._cond:
            self._closed_by_user = True
            self._refusal_possible = True
            self._stop_interrupting_locked()
            if not self._socket_closed and not self._torn:
                # GOAWAY tells the server which streams we saw (RFC 9113 section 6.8).
                self._core.close(error_code, "closed by the application")
                try:
                    self._flush_locked(timeout=1.0)
                except HyperError:
                    pass  # the peer is gone or stuck; closing anyway
            self._core.connection_lost(ConnectionClosed("the connection was closed"))
            self._close_socket_locked()
            self._cond.notify_all()

    # -- liveness -----------------------------------------------------------------

    def idle_seconds(self) -> float:
        """Seconds since bytes last arrived from the server (for keep-alive)."""
        with self._cond:  # written by whichever thread is reading
            return time.monotonic() - self._last_received

    def declare_dead(self, error: HyperError) -> None:
        """The peer stopped answering: fail everything with ``error`` and close."""
        with self._cond:  # the core's failure, the socket and the waiters it wakes
            if not self._socket_closed:
                log.debug("connection declared dead: %s", error)
                self._declared_dead = True
                self._lost(error)

    def streams_in_flight(self) -> bool:
        """True while some stream's response is not complete."""
        with self._cond:  # the reader changes stream states under it
            return self._streams_in_flight()

    # -- requests -----------------------------------------------------------------

    def open_stream(
        self,
        fields: list[tuple[bytes, bytes]],
        end_stream: bool,
        may_refuse: bool,
        declared_length: int | None = None,
    ) -> int | None:
        """Send HEADERS for a new request; return its wire stream id.

        ``declared_length``: the ``content-length`` in ``fields``, if any;
        :meth:`send_body` holds the whole body (every part) to it.

        Waits (bounded by the read timeout) for a free stream slot. ``None``
        when ``may_refuse`` and this session takes no new streams (a GOAWAY
        came in, say): the caller opens another. Otherwise the refusal is
        raised.
        """
        core = self._core
        caller = get_ident()
        # The state lock, for the whole step: taking the wire id and sending
        # the HEADERS in one hold is what keeps stream ids increasing on the
        # wire (RFC 9113 section 5.1.1).
        with self._cond:
            # A burst (session_coalesce): this thread made the last request
            # here and nothing waited or read a response since. Never true
            # with coalescing off (_burst_thread is then never set).
            burst = self._burst_thread == caller
            if self._flusher_error is not None:
                self._raise_flusher_error_locked()  # the flusher's failed send, as if ours
            # Read what already arrived: a GOAWAY or the server's SETTINGS
            # (its MAX_CONCURRENT_STREAMS, section 5.1.2) must be known first.
            # (In a burst too: a GOAWAY found here moves this request to a
            # new connection, and the held ones it excludes are never sent.)
            self._poll_before_open_locked()
            # _refusal_possible is set (under this lock) by every step after
            # which the core may refuse streams or the socket is gone, and
            # never cleared: while it is unset, _usable_locked() is True.
            if may_refuse and self._refusal_possible and not self._usable_locked():
                return None
            # The usual case (a slot free) asks once and skips the wait's
            # set-up (three callables, a deadline, the hand-on of the reading).
            if not core.can_open_stream():
                try:
                    self._wait_for_slot_locked()
                except HyperError:
                    # The read that ended the wait may also have made this
                    # session refuse (a GOAWAY, a failure): nothing was sent
                    # for this request, so it may go to another session
                    # (RFC 9113 section 6.8), as before any wait.
                    if may_refuse and not self._usable_locked():
                        return None
                    raise
                # The read that freed the slot may have brought a GOAWAY too:
                # a new stream now would be one the server ignores (6.8).
                if may_refuse and self._refusal_possible and not self._usable_locked():
                    return None
            # Still under the lock that saw can_open_stream() true: the slot is ours.
            # While _refusal_possible is unset, every step that could make the
            # core refuse new streams (a read: GOAWAY or a failure; a close;
            # the last stream id) was followed by a look that found it would
            # not, all under this lock: the core need not ask again.
            wire_id = core.open_stream(
                fields,
                end_stream,
                declared_length,
                slot_checked=True,
                refusal_checked=not self._refusal_possible,
            )
            # Of what makes the core refuse streams, sending HEADERS changes
            # only the stream ids left: that may have been the last one
            # (RFC 9113 section 5.1.1; a GOAWAY or failure comes with a read,
            # noted there).
            if core.ids_exhausted:
                self._refusal_possible = True
            # Sent now, or held while this thread is in a batch (session_batch)
            # or a burst (session_coalesce): still under the lock, so the
            # HEADERS leave (or join the held bytes) in stream id order.
            if self._corked():
                self._hold_locked()
            elif burst and end_stream:
                # Only a request with no body: one with a body sends it
                # before request() returns, and its first DATA would send
                # the HEADERS anyway (an upload must never find its HEADERS
                # still held, RFC 9113 section 5.1: DATA on an idle stream).
                self._hold_burst_locked()
            else:
                self._flush_locked()
            if self._coalesce:
                self._burst_thread = caller  # the next request of this thread, unless a wait comes first
        return wire_id

    def _wait_for_slot_locked(self) -> None:
        """Wait (bounded by the read timeout) until a new stream fits (RFC 9113 section 5.1.2). Lock held."""
        core = self._core
        self._wait_locked(
            core.can_open_stream,
            core.accepting_streams,
            self.read_timeout,
            lambda: ReadTimeout(
                f"no stream slot freed within {self.read_timeout} s "
                f"(server allows {core.max_concurrent_streams} at once)"
            ),
        )

    #: A poll object watching the socket for input, made on first use and
    #: kept for the session's life (``None`` before, or where there is no poll()).
    _ready_poller: Any = None

    def _poll_before_open_locked(self) -> None:
        """:meth:`_poll_locked`, minus its cost (a poll object made, a second poll) per request.

        Asked before every request. :meth:`_poll_locked` makes a poll object
        and registers the socket each time; the question "did anything
        arrive?" is asked here of one kept for the session's life (the
        socket never changes), and only a yes goes on to it. Caller holds
        the state lock, which also guards the socket against closing under
        the poll.
        """
        if self._reading or self._socket_closed:
            return  # as _poll_locked: the reader's socket is not ours to poll
        poller = self._ready_poller
        # The same switches as the reader's kept poll object (ReadWatcher).
        # (Read at each call: HAVE_POLL is patched where a test plays a platform without poll.)
        if poller is None and _sockets.HAVE_POLL and not _sockets.fast_paths_forced_off():
            poller = self._ready_poller = select.poll()
            poller.register(self._sock.fileno(), select.POLLIN)
        # Input, an error or a hang-up (poll reports the last two always):
        # read and handled at once, with no second poll (no one is reading,
        # checked above). Without poll(), _poll_locked decides.
        if poller is None:
            self._poll_locked()
        elif poller.poll(0):
            self._process_arrived_locked()

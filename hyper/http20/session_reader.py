"""The reader election of an HTTP/2 session: waiting for progress, one thread reading for all.

:class:`SessionReader` is part of the session (the locking argument for the
whole session is stated once, in :mod:`hyper.http20.session`), between the
socket half (:mod:`hyper.http20.session_wire`; sends in
:mod:`hyper.http20.session_send`) and the operations. A thread that needs
progress waits here with the state lock held: it becomes *the
reader* if nobody is reading, and otherwise sleeps until the reader has news
for its stream (:mod:`hyper.http20.session_wakeups`). The reader's poll is
the one place the state lock is let go; ``_reading``, set under the lock,
keeps anyone from closing the socket under it.

No module outside the session uses this one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..common.sockets import ReadWatcher, wait_for_socket
from ..exceptions import ConnectionClosed, HyperError, HyperTimeout, fresh
from .session_send import SessionSend
from .session_wire import fresh_or_none


class SessionReader(SessionSend):
    """Waiting for the server, and the reader election (see the module docstring)."""

    #: The reader's kept poll object (see ReadWatcher), made on its first wait.
    _read_watcher: ReadWatcher | None = None

    if TYPE_CHECKING:
        # Set by session_coalesce (a subclass), under the state lock: the
        # thread whose burst of requests is going on (0: none), and what the
        # flusher's send raised, for the next caller.
        _burst_thread: int
        _flusher_error: BaseException | None

    def _wait_locked(
        self,
        ready: Callable[[], bool],
        failure: Callable[[], HyperError | None],
        timeout: float | None,
        on_timeout: Callable[[], HyperTimeout],
        stream_id: int | None = None,
        answer_later: bool = False,
    ) -> None:
        """Block until ``ready()`` or ``failure()``; the caller holds the state lock.

        The waiting thread becomes the reader when nobody else is reading,
        otherwise sleeps until the reader has news about ``stream_id`` (any
        news when ``None``: pass the stream only when nothing but a change
        of that stream can make ``ready()`` or ``failure()`` true).

        With ``answer_later``, what the read that made ``ready()`` true
        queued in answer (a SETTINGS or PING ACK, a WINDOW_UPDATE) stays
        queued: the caller must flush before it lets the lock go, and it then
        leaves with what the caller's own step queues, in one send instead
        of two. Every other read is answered at once, as usual.

        A corked thread (session_batch) may be about to wait for an answer
        to a request it holds: the held bytes are sent first, which is what
        keeps a batch from waiting on itself.

        One method for what were three layers (the batch's override, this
        one, the loop), asked per response: each layer cost a call.
        """
        cond = self._cond
        # A wait ends any burst (session_coalesce): the next request is
        # written at once. And the flusher's failed send is raised here, as
        # if this caller's own flush of the held bytes had failed.
        self._burst_thread = 0
        if self._flusher_error is not None:
            taken, self._flusher_error = self._flusher_error, None
            raise taken
        try:
            if self._held and not ready():
                if self._socket_closed:
                    # Nothing can be sent: the held HEADERS are dropped (their
                    # streams carry the connection's failure). Trying to send
                    # what else the core queued (an ACK read along with the
                    # server's FIN) would raise the dead socket's error before
                    # the wait below gives the stream's own: for a request a
                    # GOAWAY excluded, the retryable one (RFC 9113 section 6.8).
                    self._flush_quietly_locked()
                else:
                    self._flush_locked()
            deadline = None if timeout is None else time.monotonic() + timeout
            remaining = None
            while True:
                if ready():
                    return
                error = failure()
                if error is not None:
                    raise fresh(error)
                if self._socket_closed:
                    raise fresh_or_none(self._core.fatal) or ConnectionClosed("the connection is closed")
                if deadline is not None:  # time_left(), inline: once per wait
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise on_timeout()
                if self._reading:
                    cond.sleep(stream_id, remaining)
                    continue
                # The reader role, taken under the lock: _reading keeps the
                # socket open while _read_once_locked polls it unlocked.
                self._reading = True
                try:
                    self._read_once_locked(remaining)
                except HyperError:
                    # What the read fed before the socket failed may have
                    # completed this wait's answer: the caller gets it (a
                    # sleeper would have); the failure stays recorded in the
                    # core and the session for every other wait.
                    if not ready():
                        raise
                finally:
                    self._reading = False
                    if self._close_when_reader_done:
                        self._close_when_reader_done = False
                        self._close_fds()
                    # The touched set is taken (cleared) on every read; the
                    # wake-up call only when someone sleeps on the condition
                    # (the list is changed only under this lock).
                    touched = self._core.take_touched()
                    if cond.sleepers:
                        cond.notify_changed(touched)
                # What the core queued in answer to the read (SETTINGS and PING
                # ACKs, WINDOW_UPDATE: RFC 9113 section 6) goes now, before the
                # next wait (the server may be waiting for it), unless the
                # caller said it will send it with its own step's bytes. Ready
                # now means the loop would return at its top: it returns here,
                # asking ready() once, not twice.
                if not self._socket_closed:
                    if answer_later and ready():
                        return
                    self._flush_locked()
        finally:
            # Leaving with nobody reading: a sleeper must take over (the
            # call only when someone sleeps; the list changes under the lock).
            if not self._reading and cond.sleepers:
                cond.notify_one()

    def _read_once_locked(self, timeout: float | None) -> None:
        """Wait (lock released) for the socket, then feed what arrived to the core.

        What the core queues in answer is sent by the caller,
        :meth:`_wait_locked` (see ``answer_later`` there).
        """
        # The reader waits for the socket WITHOUT the state lock, so other
        # threads can send and take data meanwhile; self._reading (set under
        # the lock) keeps anyone from closing the socket under this poll.
        # The watcher keeps one poll object over the socket and the waker
        # for the session's life (made under the lock, before the first
        # poll); _reading keeps both open while it waits.
        watcher = self._read_watcher
        if watcher is None:
            watcher = self._read_watcher = ReadWatcher(self._sock, self._waker_r)
        self._lock.release()
        try:
            readable, woken = watcher.wait_for_socket(timeout)
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
            # The reader loops back to its predicate and polls again if it
            # still waits, so its drain may stop at the end of the server's
            # write once no response is owed (see _drain_locked).
            # (_poll_locked, before a new stream, drains to the end: a
            # GOAWAY right behind a response must be seen first.)
            if not self._socket_closed:
                self._drain_locked(until_blocked=False)

    def _drain_and_answer_locked(self, until_blocked: bool = True) -> None:
        """Feed what arrived, then send what the core queued in answer.

        Only when it queued something: a flush would also send the HEADERS
        a burst or a batch holds (session_coalesce, session_batch), and
        bytes that merely arrived (a response to the burst's first request,
        say) are no reason to cut the burst short. What is held leaves with
        the next answer, at the next wait, or by the flusher; a GOAWAY read
        here still keeps the held streams it excludes off the wire then
        (RFC 9113 section 6.8).
        """
        if self._socket_closed:
            return
        self._drain_locked(until_blocked)
        if not self._socket_closed and self._core.has_output():
            self._flush_locked()

    def _poll_locked(self) -> None:
        """Process whatever the server already sent, without waiting.

        Used before opening a stream, so the server's SETTINGS limits and a
        GOAWAY that arrived while the connection sat idle are known first.
        """
        if self._reading or self._socket_closed:
            return
        readable, _ = wait_for_socket(self._sock, read=True, write=False, timeout=0)
        if readable:
            self._process_arrived_locked()

    def _process_arrived_locked(self) -> None:
        """The socket is readable (or failed): drain it to the end, answer, wake who it concerns.

        Not the reader's way (the caller is not reading; no one may be, see
        :meth:`_poll_locked`). Errors are recorded in the core, not raised:
        the caller sees the session unusable.
        """
        try:
            self._drain_and_answer_locked()
        except HyperError:
            pass  # recorded in the core; the caller sees the session unusable
        # The touched set is taken (cleared) either way; the wake-up call
        # only when someone sleeps (the list changes only under the state
        # lock, held here). Asked before many requests in a burst.
        touched = self._core.take_touched()
        if self._cond.sleepers:
            self._cond.notify_changed(touched)

"""Requests issued in a burst leave in one write: HEADERS held back, sent by the next wait or the flusher.

:class:`SessionCoalesce` is part of the session (the locking argument for
the whole session is stated once, in :mod:`hyper.http20.session`). It reuses
the batch machinery of :mod:`hyper.http20.session_batch` (``_held``,
``_send_held_locked``, :data:`~hyper.http20.session_batch.BATCH_LIMIT`):

* **Who holds.** A request is *in a burst* when the same thread made the
  previous request on this session and nothing waited for the server or
  read a response since (``_burst_thread``, under the state lock). Its
  HEADERS are held instead of written. Any other request (the first, one
  after a response, another thread's) is written at once, as always: the
  sequential case (request, response, request, ...) keeps one write per
  request, wakes no thread and adds no system call; eight threads each
  doing that on one connection never hold either.
* **When held bytes leave.** Every flush sends ``_held`` first (another
  thread's request, the reader's answer to the server), every wait sends
  it before it waits (so a burst never waits on itself), and it is bounded
  by ``BATCH_LIMIT``. If the caller never comes back (fire-and-forget, or
  it goes off to compute), the process's flusher thread
  (:mod:`hyper.http20.session_flusher`), asked once per burst, takes the
  state lock like any caller and sends what is held, one switch interval
  (:func:`sys.getswitchinterval`) after the burst's first held request,
  plus, with the GIL, up to one more if the caller keeps computing (none if
  it blocks). Bytes that merely arrive meanwhile (a response to the burst's
  first request) do not send them: only an answer the core queued does
  (session_reader's ``_drain_and_answer_locked``).
* **Order and GOAWAY.** As for a batch: held bytes precede anything queued
  later (RFC 9113 section 5.1.1, stream ids increase on the wire), and a
  held stream that can no longer succeed (a GOAWAY read meanwhile) is never
  sent (section 6.8; see ``_still_wanted_locked``).
* **Errors are not lost.** A send that fails in the flusher (a reset
  socket, the write timeout) is recorded in the core as a caller's would be,
  and the exception itself is raised to the next caller of the session (its
  request, its wait for a response), exactly as if that caller's own flush
  had failed; never printed by a thread.

Off with ``HTTP20Connection(coalesce_requests=False)`` or
``HYPER_FAST_PATHS=0``: every request is then written before request()
returns. No module outside the session uses this one.
"""

from __future__ import annotations

from typing import Any

from ..common.sockets import fast_paths_forced_off
from .session_batch import SessionBatch
from .session_flusher import Flusher, flusher


class SessionCoalesce(SessionBatch):
    """Holding a burst's HEADERS and having them sent (see the module docstring)."""

    def __init__(self, *args: Any, coalesce: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Whether bursts are held at all (read under the state lock).
        self._coalesce = coalesce and not fast_paths_forced_off()
        # The thread (get_ident()) that made the last request with nothing
        # waiting or reading a response since; 0 for none. Read and changed
        # only under the state lock.
        self._burst_thread = 0
        # The flusher this session asked to send its held bytes and that has
        # not run for it yet (``None``: none asked). A flusher object, not a
        # flag: after os.fork the child's flusher is a new one, and a request
        # there must ask it. Under the state lock.
        self._flusher_asked: Flusher | None = None
        # What the flusher's send raised, for the next caller (under the state lock).
        self._flusher_error: BaseException | None = None

    def _hold_burst_locked(self) -> None:
        """Hold a burst's HEADERS (what the core queued) and make sure they leave soon. Lock held."""
        self._hold_locked()  # sends the lot at once past BATCH_LIMIT
        if not self._held:
            return
        current = flusher()
        if self._flusher_asked is current:
            return  # asked once per burst: it has not run yet, and will send these too
        # The flusher's own lock is taken inside this one (never the other
        # way round: see session_flusher).
        if current.schedule(self):
            self._flusher_asked = current
        else:
            self._flush_locked()  # no thread to be had: sent now, as without coalescing

    def send_held_for_flusher(self, blocking: bool = True) -> bool:
        """The flusher's turn: send what is held, keeping a failure for the next caller.

        ``blocking=False`` (the flusher's timing thread) only looks: True
        when nothing is held (done), False when the lock is busy or there
        is something to send, which may wait for the socket; the flusher
        then calls again, blocking, from a thread of its own; a blocking
        call answers True. Never raises (a thread's exception would only be
        printed and lost).
        """
        # The state lock: _held and its ordered send (RFC 9113 section
        # 5.1.1), the socket, the asked flag and the error kept for the next
        # caller. Not waited for by the timing thread: whoever holds it is
        # busy with this connection, and other connections must not wait.
        if not self._cond.acquire(blocking):
            return False
        try:
            if not self._held:
                self._flusher_asked = None
                return True  # a wait, another thread or the batch's end sent them first
            if not blocking:
                # Still asked (a request meanwhile adds to what the sender
                # thread will send, instead of asking again).
                return False
            self._flusher_asked = None
            if self._socket_closed or self._closed_by_user:
                # Closed: the held HEADERS can go nowhere (their streams
                # already carry the connection's failure); dropped quietly.
                self._flush_quietly_locked()
                return True
            try:
                self._flush_locked()
            except Exception as exc:  # noqa: BLE001 - kept for the next caller, raised there
                # A send failure was recorded in the core by the send itself
                # (the connection is lost: every waiter was woken and sees
                # it); the exception the caller's own flush would have raised
                # is kept too, without this thread's frames (no cycle through
                # the traceback), and raised to the next caller.
                self._flusher_error = exc.with_traceback(None)
            return True
        finally:
            self._cond.release()

    def _raise_flusher_error_locked(self) -> None:
        """Raise, once, what the flusher's send raised (the caller's own flush would have). Lock held."""
        error, self._flusher_error = self._flusher_error, None
        if error is not None:
            raise error

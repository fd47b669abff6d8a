"""The process's flusher: one background thread that sends HEADERS a burst of requests left held.

Part of the session (see :mod:`hyper.http20.session` for the locking
argument and :mod:`hyper.http20.session_coalesce` for what is held and
why). A request that follows the same thread's previous request with no
wait in between may leave its HEADERS held in the session, so that a burst
leaves in one TLS write; the session then asks this flusher, once per
burst, to send them should the caller not come back first. The flusher
takes the session's state lock like any caller (through the session's own
method: this module never touches it) and sends what is held.

When: one GIL switch interval (:func:`sys.getswitchinterval`, 5 ms by
default) after the burst's first held request. Not sooner, on purpose: the
caller lets the GIL go at every request (its poll of the socket), and a
flusher that ran at the first such chance would send one or two requests
at a time, with a thread switch each. The caller's own next wait (for a
response, a stream slot, a window) sends everything at once anyway; the
flusher is the bound for a caller that does not come back. Once its time
is up it still needs the GIL: a caller that keeps computing gives it up
within one more switch interval; one that blocks, at once.

Lifecycle:

* one timing thread per process, started on the first burst, a daemon (it
  never delays the interpreter's exit); what it still has queued at exit is
  sent then, by an :mod:`atexit` hook (a script that makes a burst of
  requests and ends without ``close()`` sends them all, as it would
  without coalescing);
* it keeps a session it was asked to flush alive until it has served it
  (about one switch interval), then drops it: a connection the application
  drops right after a burst still sends its requests, and no socket is
  kept open for longer than that;
* one connection never holds back another's flush: the timing thread only
  looks (taking the session's state lock without waiting for it) and, when
  there is something to send or the lock is busy, hands that session's
  send to a short-lived sender thread, since a send may wait for a full
  socket (up to the connection's write timeout);
* it ends after :data:`IDLE_SECONDS` with nothing to do, and a later burst
  starts another: no thread outlives the connections that use it for long;
* in a child made by :func:`os.fork` the flusher starts afresh (the parent's
  thread does not exist there, and its lock may have been held at the fork).

Lock order: the flusher's own lock (``_lock``) is taken by a session with
its state lock held (:meth:`Flusher.schedule`); the flusher thread never
takes a session's state lock while holding its own, so the two can never
wait on each other.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections import deque
from typing import Protocol

#: Seconds the flusher thread waits for work before it ends.
IDLE_SECONDS = 1.0


class Flushable(Protocol):
    """What the flusher asks of a session (:class:`~hyper.http20.session_coalesce.SessionCoalesce`)."""

    def send_held_for_flusher(self, blocking: bool = True) -> bool:
        """Send whatever the session still holds (takes its own lock; never raises).

        ``blocking=False``: only look, without waiting for the lock or the
        socket: True when nothing was held (done), False when a send is
        needed or the lock is busy (the caller then calls again with
        ``blocking=True`` from a thread that may wait).
        """


class Flusher:
    """A background thread sending held bytes for the sessions that ask (see the module docstring)."""

    def __init__(self) -> None:
        # Guards the queue, the thread handle and the counter below; held
        # only for those updates, never across a wait for the network or for
        # a session's lock.
        self._lock = threading.Lock()
        # The thread sleeps here until the oldest due session's time is up,
        # or a session becomes due with none before it (or it has been idle
        # long enough to end).
        self._work = threading.Condition(self._lock)
        # Sessions waiting for their held bytes to be sent, with the
        # time.monotonic() at which each asked: oldest first, and so in
        # order of time to send too (every one waits the same delay). Strong
        # references: a session dropped by the application right after its
        # burst must still send it (it is freed once served).
        self._due: deque[tuple[float, Flushable]] = deque()
        #: Seconds from a session's asking to the send; ``None``: the GIL's
        #: switch interval, read each time (tests set a long one, to look
        #: at held bytes, then 0 and :meth:`wake`, to let them go).
        self.delay: float | None = None
        self._thread: threading.Thread | None = None
        #: How many times a session asked (one per burst): tests and the
        #: bench count these, to show sequential requests never ask.
        self.scheduled = 0
        #: How many times the thread served a session (sent or found nothing held).
        self.served = 0

    def schedule(self, session: Flushable) -> bool:
        """Have ``session``'s held bytes sent in one switch interval; False when no thread could be started.

        Called with the session's state lock held (the flusher's lock is
        taken inside it, never the other way round). On False the caller
        sends its bytes itself: nothing is ever left held with no one to
        send it.
        """
        asked = time.monotonic()
        # The flusher's lock: the queue and the thread handle change together.
        with self._lock:
            idle = not self._due
            self._due.append((asked, session))
            self.scheduled += 1
            if self._thread is not None:
                if idle:
                    # The thread waits for work (or is about to look): this
                    # is now the first entry. With entries before it, the
                    # thread already waits for an earlier time and finds this
                    # one after: no wake-up needed.
                    self._work.notify()
                return True
            thread = threading.Thread(target=self._run, name="hyper-h2-flusher", daemon=True)
            try:
                thread.start()
            except RuntimeError:
                # No thread now (the interpreter is shutting down, or a
                # limit on threads): the caller sends at once, as without
                # coalescing.
                self._due.pop()
                return False
            self._thread = thread
            return True

    def wake(self) -> None:
        """Have the thread look at its queue again now (after :attr:`delay` changed)."""
        with self._lock:  # a Condition is notified with its lock held
            self._work.notify()

    def thread(self) -> threading.Thread | None:
        """The running flusher thread, if any (for tests: it ends when idle)."""
        with self._lock:  # the handle changes under it
            return self._thread

    def _next_due(self) -> Flushable | None:
        """Wait for the oldest entry's time and take it; ``None``: idle for IDLE_SECONDS, the thread ends."""
        # The flusher's lock: the queue and, on leaving, the thread handle
        # (a schedule() after this sees no thread and starts one).
        with self._lock:
            while True:
                if not self._due:
                    self._work.wait(IDLE_SECONDS)
                    if not self._due:
                        if self._thread is threading.current_thread():
                            self._thread = None
                        return None
                    continue
                asked, session = self._due[0]
                delay = self.delay
                left = asked + (sys.getswitchinterval() if delay is None else delay) - time.monotonic()
                if left <= 0:
                    self._due.popleft()
                    self.served += 1
                    return session
                self._work.wait(left)

    def send_all_now(self) -> None:
        """Serve every queued session at once, in this thread (the interpreter is exiting)."""
        # The flusher's lock: the queue is taken whole, then served outside
        # it (each session takes its own state lock).
        with self._lock:
            due = [session for _, session in self._due]
            self._due.clear()
        for session in due:
            session.send_held_for_flusher()

    def _run(self) -> None:
        """The thread's loop: serve due sessions in order, each once its time is up."""
        while True:
            session = self._next_due()
            if session is None:
                return
            # Outside the flusher's lock: the session takes its own state
            # lock, without waiting for it. Usually the caller's own next
            # wait sent the burst already and this is all.
            if not session.send_held_for_flusher(blocking=False):
                # Bytes to send, or the lock busy: the send may wait (a full
                # socket, a long upload holding the lock), so it gets its
                # own thread and this one goes on serving other sessions.
                _send_in_own_thread(session)
            # No reference kept while waiting: a session the application
            # dropped can be collected (and its socket closed) meanwhile.
            session = None


def _send_in_own_thread(session: Flushable) -> None:
    """Have ``session`` send what it holds from a new daemon thread (this one if none can start)."""
    sender = threading.Thread(target=session.send_held_for_flusher, name="hyper-h2-flusher", daemon=True)
    try:
        sender.start()
    except RuntimeError:
        # No thread now (shutdown, or a limit on threads): sent from here.
        session.send_held_for_flusher()


_flusher = Flusher()


def flusher() -> Flusher:
    """The process's flusher (a fresh one in a child after :func:`os.fork`)."""
    return _flusher


def _after_fork_in_child() -> None:
    # The parent's flusher thread does not exist in the child, and its lock
    # may have been held at the fork: the child starts from a fresh flusher.
    global _flusher
    _flusher = Flusher()


def _send_all_at_exit() -> None:
    # The daemon threads stop with the interpreter: what a burst still holds
    # leaves now (the current flusher only: a forked child never sends its
    # parent's queue).
    _flusher.send_all_now()


atexit.register(_send_all_at_exit)

if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)

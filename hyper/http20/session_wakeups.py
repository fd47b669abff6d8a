"""Aimed wake-ups for the threads waiting on an HTTP/2 session's state lock.

Part of the session (see :mod:`hyper.http20.session` for the whole locking
argument): every method here except the lock's own entry and exit is called
with the session's state lock held, and no other module uses this one.
"""

from __future__ import annotations

import threading
from types import TracebackType

_allocate_lock = threading.Lock


class _Sleeper:
    """A thread waiting for news about the session (not as the reader)."""

    __slots__ = ("signal", "stream_id", "woken")

    def __init__(self, stream_id: int | None) -> None:
        # A fresh lock, taken at once: the sleeper blocks taking it again,
        # and a wake-up releases it. Fresh per sleep, so a release that
        # comes after the sleeper gave up waiting touches nobody.
        self.signal = _allocate_lock()
        self.signal.acquire()
        self.stream_id = stream_id
        #: Already woken for news since it went to sleep: it will get up anyway.
        self.woken = False

    def wait(self, timeout: float | None) -> None:
        """Block (state lock NOT held) until woken or ``timeout`` seconds passed."""
        self.signal.acquire(True, -1 if timeout is None else max(0.0, timeout))


class StateCondition(threading.Condition):
    """The state lock's condition, with wake-ups aimed at the threads concerned.

    With many threads on one connection, waking every one of them for each
    frame that arrives (most go straight back to sleep) cost more than the
    frames. Each waiting thread sleeps on its own signal, tagged with the
    stream it waits for; :meth:`notify_changed` wakes only those whose
    stream changed, and untagged ones. ``notify_all`` still wakes everybody.

    A wake-up is decided under the state lock but *delivered* only once the
    lock is let go (at the end of a ``with`` block, or when the reader or a
    sleeper lets go of it): a thread woken while the waker still held the
    lock would only get up to block on it again, two context switches
    instead of one on a busy machine.
    """

    def __init__(self, lock: threading.Lock) -> None:
        super().__init__(lock)
        self._state_lock = lock
        self._sleepers: list[_Sleeper] = []
        # Signals of sleepers woken under the lock, released when it is let go.
        self._due: list[threading.Lock] = []

    # -- the lock ----------------------------------------------------------------

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release_and_deliver()

    def release_and_deliver(self) -> None:
        """Let go of the state lock (held), then deliver the wake-ups decided under it."""
        due = self._due
        if due:
            # Taken under the lock: wake-ups decided after this belong to
            # whoever holds the lock next, who delivers them in turn.
            self._due = []
        self._state_lock.release()
        for signal in due:
            signal.release()

    # -- waiting -------------------------------------------------------------------

    def sleep(self, stream_id: int | None, timeout: float | None) -> None:
        """Wait (lock held) for news about ``stream_id`` (``None``: any news) or the timeout."""
        sleeper = _Sleeper(stream_id)
        self._sleepers.append(sleeper)
        try:
            # Registered under the lock before letting it go: a waker that
            # decides after this point finds the sleeper and releases its
            # signal, whether the sleeper already blocks on it or not yet.
            self.release_and_deliver()
            try:
                sleeper.wait(timeout)
            finally:
                self._state_lock.acquire()
        finally:
            self._sleepers.remove(sleeper)

    # -- waking (lock held) --------------------------------------------------------

    def _wake(self, sleeper: _Sleeper) -> None:
        if not sleeper.woken:
            sleeper.woken = True
            self._due.append(sleeper.signal)

    def notify_all(self) -> None:
        """Wake every waiting thread (lock held)."""
        for sleeper in self._sleepers:
            self._wake(sleeper)

    def notify_changed(self, streams: set[int] | None) -> None:
        """Wake the threads waiting for one of ``streams`` (all when ``None``) and untagged ones."""
        for sleeper in self._sleepers:
            if streams is None or sleeper.stream_id is None or sleeper.stream_id in streams:
                self._wake(sleeper)

    def notify_one(self) -> None:
        """Wake one waiting thread, if any (to take over reading).

        One not already woken for news, if there is one: a thread woken
        because its response arrived takes it and leaves, and would have to
        hand the reading on once more (another wake-up, another take of the
        lock). A thread still waiting becomes the reader at once. If every
        sleeper was woken, any of them will get up anyway: whichever finds
        itself still waiting reads, and one that leaves hands on again.
        """
        for sleeper in self._sleepers:
            if not sleeper.woken:
                self._wake(sleeper)
                return

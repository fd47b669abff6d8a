"""Aimed wake-ups for the threads waiting on an HTTP/2 session's state lock.

Part of the session (see :mod:`hyper.http20.session` for the whole locking
argument): every method here is called with the session's state lock held,
and no other module uses this one.
"""

from __future__ import annotations

import threading


class _Sleeper:
    """A thread waiting for news about the session (not as the reader): its own condition."""

    __slots__ = ("wakeup", "stream_id", "woken")

    def __init__(self, wakeup: threading.Condition) -> None:
        self.wakeup = wakeup
        self.stream_id: int | None = None
        #: Already woken for news since it went to sleep: it will get up anyway.
        self.woken = False

    def wake(self) -> None:
        """Wake this thread (the state lock is held)."""
        self.woken = True
        self.wakeup.notify()


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
        #: The threads asleep on their own conditions, in the order they went
        #: to sleep. Read and changed only under the state lock; the session
        #: reads it (empty: nobody to wake) to skip a wake-up call when one
        #: thread uses the connection, the common case.
        self.sleepers: list[_Sleeper] = []
        self._local = threading.local()

    def sleep(self, stream_id: int | None, timeout: float | None) -> None:
        """Wait (lock held) for news about ``stream_id`` (``None``: any news) or the timeout."""
        sleeper: _Sleeper | None = getattr(self._local, "sleeper", None)
        if sleeper is None:
            sleeper = self._local.sleeper = _Sleeper(threading.Condition(self._state_lock))
        sleeper.stream_id = stream_id
        sleeper.woken = False
        self.sleepers.append(sleeper)
        try:
            sleeper.wakeup.wait(timeout)
        finally:
            self.sleepers.remove(sleeper)

    def notify_all(self) -> None:
        """Wake every waiting thread (lock held)."""
        for sleeper in self.sleepers:
            sleeper.wake()

    def notify_changed(self, streams: set[int] | None) -> None:
        """Wake the threads waiting for one of ``streams`` (all when ``None``) and untagged ones."""
        for sleeper in self.sleepers:
            if streams is None or sleeper.stream_id is None or sleeper.stream_id in streams:
                sleeper.wake()

    def notify_one(self) -> None:
        """Wake one waiting thread, if any (to take over reading).

        One not already woken for news, if there is one: a thread woken
        because its response arrived takes it and leaves, and would have to
        hand the reading on once more (another wake-up, another take of the
        lock). A thread still waiting becomes the reader at once. If every
        sleeper was woken, any of them will do: whichever finds itself
        still waiting reads, and one that leaves hands on again.
        """
        sleepers = self.sleepers
        if not sleepers:
            return
        for sleeper in sleepers:
            if not sleeper.woken:
                sleeper.wake()
                return
        sleepers[0].wake()

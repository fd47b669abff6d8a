"""Which HTTP/2 session a connection uses now, and the replaced ones still draining.

An :class:`~hyper.http20.connection.HTTP20Connection` outlives its sessions:
after a graceful GOAWAY (RFC 9113 section 6.8), a used-up id space (section
5.1.1) or a keep-alive that gave up, the next request opens a new session,
while streams the old one still carries finish on it. :class:`SessionSet`
keeps the current session and the draining ones, opens a new one at most
once at a time, and closes drained ones.

Two locks, neither held with a session's state lock (a session's operations
take that themselves):

* ``_lock`` guards which session is current, the draining list and the
  public id base of each session's pushed streams. Held only for those
  updates, never across a wait.
* ``_connect_lock`` is held while a new session is opened (network waits),
  so that two threads that find the session gone open one, not two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..exceptions import fresh
from .session import H2Session

# Each new session's pushed-stream ids start 2**31 above the previous one's,
# so the public ids of pushes never repeat across reconnects.
_IDS_PER_SESSION = 2**31


class SessionSet:
    """The current session of a connection, and the ones draining their last streams."""

    def __init__(self) -> None:
        # Guards the three fields below; never held while waiting on the network.
        # (_session is also read without it, by _usable(): see there.)
        self._lock = threading.Lock()
        self._session: H2Session | None = None
        self._draining: list[H2Session] = []
        self._next_id_base = 0
        # Held while opening a session (network waits), never with _lock.
        self._connect_lock = threading.Lock()

    @property
    def current(self) -> H2Session | None:
        """The current session, usable or not (``None`` before the first)."""
        with self._lock:  # which session is current
            return self._session

    def usable(self, open_new: Callable[[], H2Session]) -> H2Session:
        """The current session if it takes new streams, else a new one from ``open_new()``.

        Raises the session's error when it broke (rather than ended
        cleanly): the caller sees it until it closes the connection.
        """
        # The common case first, as _usable() would answer it (asked before
        # every request: one call fewer): the current session, read without
        # self._lock as there (see _usable), says it takes new streams.
        # Anything else (none yet, a refusal, a broken session) goes the
        # whole way below.
        session = self._session
        if session is not None and session.refusal()[0] is None:
            return session
        session = self._usable()
        if session is not None:
            return session
        # Opening waits on the network, so it happens under its own lock:
        # other threads may keep using the state guarded by self._lock.
        with self._connect_lock:
            session = self._usable()  # another thread may have opened one meanwhile
            if session is not None:
                return session
            new = open_new()
            self._install(new)
        self.close_drained()
        return new

    def adopt(self, new: H2Session) -> None:
        """Make an already started session the current one."""
        with self._connect_lock:  # no thread may be installing its own session meanwhile
            self._install(new)

    def _install(self, new: H2Session) -> None:
        """Make ``new`` current; the old one drains its streams. Caller holds _connect_lock."""
        with self._lock:  # guards _session, _draining and the id base together
            # The id base first: _usable() reads _session without this lock,
            # so the session must be complete before it becomes visible.
            new.id_base = self._next_id_base
            self._next_id_base += _IDS_PER_SESSION
            old, self._session = self._session, new
            if old is not None:
                self._draining.append(old)

    def _usable(self) -> H2Session | None:
        """The current session, ``None`` if a new one is due; raises if it broke."""
        # self._lock only guards which session is current; the session's own
        # state is read by session.refusal() under its state lock, never while
        # holding self._lock: an upload may hold that state lock for as long
        # as the socket takes to drain, and self._lock must stay short.
        # The current session is read WITHOUT self._lock (asked before every
        # request): one attribute read is atomic, and _install() only ever
        # swaps in a complete session. A thread that reads the old one just
        # before a swap gets what the lock would have given it a moment
        # earlier; the old session's own refusal() (under its state lock)
        # then answers for it, and open_stream() checks again under that lock.
        session = self._session
        if session is None:
            return None
        refusal, cleanly = session.refusal()
        if refusal is None:
            return session
        if not cleanly:
            # Broken, not ended: say so until the caller close()s.
            raise fresh(refusal)
        return None

    def close_drained(self) -> None:
        """Close replaced sessions with no stream left to finish."""
        with self._lock:  # a snapshot of the list only
            draining = list(self._draining)
        # Outside self._lock: has_streams() takes each session's state lock.
        drained = [old for old in draining if not old.has_streams()]
        if not drained:
            return
        with self._lock:  # the list again: another thread may have added to it
            self._draining = [old for old in self._draining if old not in drained]
        for finished in drained:
            finished.close()

    def detach_all(self) -> list[H2Session]:
        """Forget every session (the current one last) and return them, for the caller to close."""
        with self._lock:  # detach everything at once; the sessions close outside it
            session, self._session = self._session, None
            draining, self._draining = self._draining, []
        return draining + ([session] if session is not None else [])

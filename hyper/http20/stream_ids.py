"""The connection's public stream ids, and where each one's stream lives.

Public stream ids are the connection's own: odd, increasing, never repeated
across reconnects. They are separate from the wire ids of the session that
carries the stream: ``putrequest()`` hands one out before any wire id exists
and takes no wire id (nor any lock) until ``endheaders()`` sends the
HEADERS. Wire ids reach the wire in order because each is taken and sent
under its session's state lock (RFC 9113 section 5.1.1), which is the
session's business, not this module's.

:class:`StreamRegistry` maps a public id to its :class:`StreamHandle`
(session, wire id, deadline), remembers which responses nobody took yet
(oldest first, for ``getresponse()`` without an id), and, with push on, the
request streams whose pushes may still be asked for. Its one lock guards
those maps and the id counter; it is held only for their updates, never
across a wait or together with a session's state lock. (One update needs
no lock: :meth:`StreamRegistry.release`, a single atomic ``dict.pop``.)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..common.stream_ids import unknown_stream_id
from ..exceptions import InvalidStreamID
from .session import H2Session

# Request streams remembered for get_pushes() before the map is pruned.
_PUSH_PARENTS_AT_LEAST = 64


@dataclass(slots=True)
class StreamHandle:
    """Where a public stream id lives: the session and wire id its HEADERS went out on.

    Slots: one is made per request. Whether its response was taken is not
    a field: a stream is untaken exactly while the registry's untaken map
    holds it, so taking it is one step on that map.
    """

    session: H2Session
    wire_id: int
    #: ``time.monotonic()`` by which the whole exchange must be done, if bounded.
    deadline_at: float | None = None
    #: The request target (path and query) as sent, for the response's ``url``.
    target: str = ""
    #: What it takes to send the request again exactly, if the server
    #: refuses it unprocessed (:mod:`~hyper.http20.resending`): its fields,
    #: whether the HEADERS end the stream, the declared length and the body
    #: (bytes, or ``None``); ``None`` when it may not be sent again.
    resend: tuple[tuple[tuple[bytes, bytes], ...], bool, int | None, bytes | None] | None = None


class StreamRegistry:
    """Public stream ids, their handles, untaken responses and push parents."""

    def __init__(self) -> None:
        # Guards every field below; never held while waiting on anything.
        self._lock = threading.Lock()
        self._next_public_id = 1
        # Every stream whose response the connection still holds a handle
        # for: untaken, or taken by a thread still waiting for its headers
        # (send() may go on meanwhile, from another thread).
        self._streams: dict[int, StreamHandle] = {}
        # The responses nobody took yet, oldest first: a subset of _streams.
        # A thread takes one by removing it from here, so two threads can
        # never both take the same response.
        self._untaken: OrderedDict[int, StreamHandle] = OrderedDict()
        # With push on: request streams whose pushes get_pushes() may still
        # ask for (their handles outlive the taken response). Pruned as it grows.
        self._push_parents: dict[int, StreamHandle] = {}
        self._push_parents_limit = _PUSH_PARENTS_AT_LEAST

    def take_id(self) -> int:
        """A new public stream id (for ``putrequest()``, before anything is sent)."""
        with self._lock:  # the id counter, shared by every thread's requests
            public_id = self._next_public_id
            self._next_public_id += 2  # odd, like client-initiated wire ids
            return public_id

    # register(), claim() and release() run once per request each: they take
    # the lock with acquire() and a try/finally rather than a with-statement,
    # which costs about twice as much in CPython (the __enter__ and __exit__
    # calls). The same guarantee: the lock is released however the block ends.

    def register(self, handle: StreamHandle, public_id: int | None, track_pushes: bool) -> int:
        """Record a stream whose HEADERS went out; return its public id (a new one if ``None``).

        ``track_pushes``: remember it for ``get_pushes()`` (push is on).
        """
        lock = self._lock
        lock.acquire()  # the id counter and the maps every thread's requests read
        try:
            if public_id is None:
                public_id = self._next_public_id
                self._next_public_id += 2  # odd, like client-initiated wire ids
            self._streams[public_id] = handle
            self._untaken[public_id] = handle
            if not track_pushes:
                return public_id  # the usual case: push is off
            self._push_parents[public_id] = handle
            prune = len(self._push_parents) > self._push_parents_limit
        finally:
            lock.release()
        if prune:
            # Outside the lock: pruning asks the sessions (their own locks).
            self._prune_push_parents()
        return public_id

    def claim(self, stream_id: int | None) -> tuple[int, StreamHandle]:
        """Claim the response of ``stream_id`` (the oldest untaken one if ``None``) for this thread."""
        # One step under the lock: two threads asking for the same (or the
        # oldest) response never both get it, which would split its body.
        lock = self._lock
        lock.acquire()
        try:
            if stream_id is None:
                if not self._untaken:
                    raise InvalidStreamID("no request is waiting for its response", None)
                return self._untaken.popitem(last=False)
            handle = self._untaken.pop(stream_id, None)
            if handle is None:
                # Says which: never handed out, forgotten by close(), or taken.
                raise unknown_stream_id(stream_id, self._next_public_id, odd_only=True)
        finally:
            lock.release()
        return stream_id, handle

    def release(self, stream_id: int) -> None:
        """Drop the claimed ``stream_id``: its response is taken (the response holds the stream)."""
        # Without the lock: claim() already took the id off _untaken, so
        # this is one step on one map, and one dict.pop is atomic (CPython
        # runs it whole: int keys call no Python code; a free-threaded build
        # locks the dict for it). A thread reading _streams under the lock
        # sees the entry before or after it, as it would if this waited for
        # the lock; clear() and forget() leave it popped either way.
        self._streams.pop(stream_id, None)

    def rehome(self, stream_id: int, old: StreamHandle, new: StreamHandle) -> bool:
        """Point ``stream_id`` at ``new`` (its request was sent again); False if it is gone.

        Handles are never changed in place: another thread (``send()``,
        ``get_pushes()``, the push-parent pruning) reads a handle's session
        and wire id without any lock, and must never see one of each. The
        map entries are swapped instead, only where they still hold ``old``
        (``close()`` or a failed wait may have dropped the id meanwhile).
        """
        with self._lock:  # the maps from public ids
            if self._streams.get(stream_id) is not old:
                return False
            self._streams[stream_id] = new
            if self._push_parents.get(stream_id) is old:
                self._push_parents[stream_id] = new
            return True

    def forget(self, stream_id: int) -> None:
        """Drop ``stream_id`` from the maps (its response was never taken, or its wait failed)."""
        with self._lock:  # the maps from public ids
            self._streams.pop(stream_id, None)
            self._untaken.pop(stream_id, None)

    def handle(self, stream_id: int) -> StreamHandle:
        """The handle of a stream whose response was not taken yet."""
        with self._lock:  # the map from public ids
            handle = self._streams.get(stream_id)
        if handle is None:
            raise InvalidStreamID(f"no request was sent on stream {stream_id}", stream_id)
        return handle

    def push_parent(self, stream_id: int) -> tuple[StreamHandle | None, bool]:
        """The handle of request stream ``stream_id`` for ``get_pushes()``, if kept.

        Also whether that id was ever handed out: an old request whose
        pushes were all taken is known, yet has no handle left.
        """
        with self._lock:  # the push-parent map and the id counter
            known = stream_id < self._next_public_id and stream_id % 2 == 1
            return self._push_parents.get(stream_id), known

    def _prune_push_parents(self) -> None:
        """Forget request streams that can have no push left to hand out."""
        with self._lock:  # a snapshot of the map; checked without the lock
            candidates = list(self._push_parents.items())
        # Outside self._lock: may_have_pushes() takes the session's state lock.
        done = {
            public_id
            for public_id, handle in candidates
            if not handle.session.may_have_pushes(handle.wire_id)
        }
        with self._lock:  # the map again: other threads' requests write it
            for public_id in done:
                self._push_parents.pop(public_id, None)
            self._push_parents_limit = max(_PUSH_PARENTS_AT_LEAST, 2 * len(self._push_parents))

    def clear(self) -> None:
        """Forget every stream (the connection is closing)."""
        with self._lock:  # the maps, all at once
            self._streams.clear()
            self._untaken.clear()
            self._push_parents.clear()

"""Request batching for an HTTP/2 session: HEADERS held back and written in one send.

:class:`SessionBatch` is part of the session (the locking argument for the
whole session is stated once, in :mod:`hyper.http20.session`). A thread
inside :meth:`SessionBatch.batch` is *corked*: the HEADERS its requests
queue are moved from the core into ``_held`` instead of being sent, and go
out together, in one send, when the outermost block ends.

Why this keeps the session's promises:

* **Order.** Held bytes were taken from the core before anything it queued
  later, and every flush sends ``_held`` first (:meth:`_flush_locked`), so
  frames still leave in the order the state changed (RFC 9113 section 5.1.1:
  stream ids increase on the wire).
* **Only the calling thread is corked.** The corked flag is thread-local and
  read under the state lock. Another thread's send (or the reader answering
  the server) flushes everything, the held bytes first: another thread's
  request is never held, and a batch's requests only ever leave early. One
  wait is possible: a thread already waiting for a free stream slot, when a
  corked thread takes the freed slot with HEADERS it holds, waits until that
  batch sends (its end, its first wait, or the size bound), at most its
  own timeout.
* **No deadlock.** Every wait for the server (:meth:`_wait_locked`: a
  response, a body, a stream slot, flow-control window, a PING) sends the
  held bytes first, and the held bytes are bounded by :data:`BATCH_LIMIT`.

No module outside the session uses this one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..exceptions import HyperError, HyperTimeout
from .session_reader import SessionReader

#: Held bytes past which a batch is written early (bounded memory, no huge write).
BATCH_LIMIT = 256 * 1024


class SessionBatch(SessionReader):
    """Holding a corked thread's frames back until its batch ends (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Bytes taken from the core for a corked thread, not yet sent; and
        # their size. Both read and changed only under the state lock.
        self._held: list[bytes] = []
        self._held_bytes = 0
        # Per thread: how deep in batch() blocks it is (0 or missing: not corked).
        self._batch_depth = threading.local()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Within the block, this thread's new requests are held and sent together at its end.

        Blocks nest; the outermost one sends. The held bytes are sent when
        the block ends, normally or by an exception (the requests already
        returned their ids), and earlier whenever anything waits for the
        server or they pass :data:`BATCH_LIMIT`.
        """
        depth = self._batch_depth
        depth.value = getattr(depth, "value", 0) + 1
        failed = True
        try:
            yield
            failed = False
        finally:
            depth.value -= 1
            if depth.value == 0:
                self._end_batch(quietly=failed)

    def _end_batch(self, quietly: bool) -> None:
        # The state lock: _held, and the ordered send of it.
        with self._cond:
            if not self._held:
                return  # nothing held (or another thread's flush already sent it)
            if quietly:
                # Leaving by an exception: that exception is the caller's
                # news; a send failure is recorded in the core and reaches
                # the requests' responses.
                self._flush_quietly_locked()
            else:
                self._flush_locked()

    def _corked(self) -> bool:
        """True when the calling thread is inside a batch (read under the state lock)."""
        return bool(getattr(self._batch_depth, "value", 0))

    def _flush_or_hold_locked(self) -> None:
        """Send what the core queued, unless this thread is corked: then hold it. Lock held."""
        if not self._corked():
            self._flush_locked()
            return
        for piece in self._core.pieces_to_send():
            data = bytes(piece)
            self._held.append(data)
            self._held_bytes += len(data)
        if self._held_bytes > BATCH_LIMIT:
            self._flush_locked()  # bounded: the batch so far goes out now

    def _flush_locked(self, timeout: float | None = None) -> None:
        """Send the held bytes (as one piece), then what the core queued. Lock held."""
        if self._held:
            # Taken first, so a failed send does not send them twice later.
            held, self._held, self._held_bytes = self._held, [], 0
            if self._socket_closed:
                # The session died (server EOF, GOAWAY and close) with them
                # still held: they can go nowhere, and their streams already
                # carry the session's failure. Raising it here would fail the
                # caller's block, and a flush for another purpose, for a
                # session they may have left already (a reconnect).
                super()._flush_locked(timeout)
                return
            self._send_locked(b"".join(held), self.write_timeout if timeout is None else timeout)
        super()._flush_locked(timeout)

    def _wait_locked(
        self,
        ready: Callable[[], bool],
        failure: Callable[[], HyperError | None],
        timeout: float | None,
        on_timeout: Callable[[], HyperTimeout],
        stream_id: int | None = None,
    ) -> None:
        """As :meth:`SessionReader._wait_locked`, after sending anything held.

        A corked thread may be about to wait for an answer to a request it
        holds: sending first is what keeps a batch from waiting on itself.
        """
        if self._held and not ready():
            self._flush_locked()
        super()._wait_locked(ready, failure, timeout, on_timeout, stream_id)

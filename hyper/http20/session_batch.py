"""Request batching for an HTTP/2 session: HEADERS held back and written in one send.

:class:`SessionBatch` is part of the session (the locking argument for the
whole session is stated once, in :mod:`hyper.http20.session`). A thread
inside :meth:`SessionBatch.batch` is *corked*: the HEADERS its requests
queue are moved from the core into ``_held`` instead of being sent, and go
out together, in one send, when the outermost block ends.

Why this keeps the session's promises:

* **Order.** Held bytes were taken from the core before anything it queued
  later, and every flush sends ``_held`` first (:meth:`_send_held_locked`), so
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
* **No deadlock.** Every wait for the server (the session's one ``_wait_locked``, in session_reader: a
  response, a body, a stream slot, flow-control window, a PING) sends the
  held bytes first, and the held bytes are bounded by :data:`BATCH_LIMIT`.
* **No new stream on a dying connection.** The server's GOAWAY (or a
  failure, or the socket's end) may become known while HEADERS are held:
  a held stream that can then no longer succeed is never sent (RFC 9113
  section 6.8) and nothing else names it on the wire; its response gets the
  (retryable, above the GOAWAY's last id) error instead, and the end of the
  block raises nothing for it (:meth:`_still_wanted_locked`).

No module outside the session uses this one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..exceptions import HyperError
from .session_reader import SessionReader
from .streams import RequestEvent, StreamState

#: Held bytes past which a batch is written early (bounded memory, no huge write).
BATCH_LIMIT = 256 * 1024


class _BatchDepth(threading.local):
    """Per thread: how deep in ``batch()`` blocks it is (0: not corked).

    The class default answers for a thread that never entered a block: a
    plain attribute read, where ``getattr(local, "value", 0)`` on a missing
    attribute raises and catches an AttributeError inside (asked once per
    request, by every thread).
    """

    value = 0


class SessionBatch(SessionReader):
    """Holding a corked thread's frames back until its batch ends (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # HEADERS taken from the core for a corked thread, not yet sent: per
        # request, its stream id and its bytes, in the order the streams were
        # opened; and their size. Both read and changed only under the state lock.
        self._held: list[tuple[int, bytes]] = []
        self._held_bytes = 0
        # Per thread: how deep in batch() blocks it is (0: not corked).
        self._batch_depth = _BatchDepth()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Within the block, this thread's new requests are held and sent together at its end.

        Blocks nest; the outermost one sends. The held bytes are sent when
        the block ends, normally or by an exception (the requests already
        returned their ids), and earlier whenever anything waits for the
        server or they pass :data:`BATCH_LIMIT`.
        """
        depth = self._batch_depth
        depth.value += 1
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
            if quietly or self._socket_closed:
                # Leaving by an exception: that exception is the caller's
                # news; a send failure is recorded in the core and reaches
                # the requests' responses. With the socket closed, nothing
                # can be sent: the held HEADERS are dropped, and what else
                # the core still queued (the ACK of a PING or SETTINGS read
                # along with the server's FIN, say) would only raise the
                # dead session's error here, which every held request's
                # response already carries, and which would lose the ids of
                # the block's requests made meanwhile on a new connection.
                self._flush_quietly_locked()
            else:
                self._flush_locked()

    def _corked(self) -> bool:
        """True when the calling thread is inside a batch (read under the state lock)."""
        return self._batch_depth.value != 0

    def _hold_locked(self) -> None:
        """Hold what the core queued (a corked thread's new HEADERS) instead of sending it. Lock held."""
        # open_stream(), the only caller (when _corked() says so), added the new stream to the core's
        # (insertion-ordered) table in this same hold of the lock: it is the
        # newest entry, and what the core queued since is its HEADERS.
        stream_id = next(reversed(self._core.streams), 0)
        # One piece in the common case: join then returns it, uncopied.
        data = b"".join(self._core.pieces_to_send())
        self._held.append((stream_id, data))
        self._held_bytes += len(data)
        if self._held_bytes > BATCH_LIMIT:
            self._flush_locked()  # bounded: the batch so far goes out now

    def _send_held_locked(self, timeout: float | None) -> None:
        """Send the held bytes still worth sending, as one piece. Lock held.

        Called by every flush (SessionSend._flush_locked) before what the
        core queued, whenever anything is held.
        """
        # Taken first, so a failed send does not send them twice later.
        held, self._held, self._held_bytes = self._held, [], 0
        wanted = self._still_wanted_locked(held)
        if wanted:
            self._send_locked(b"".join(wanted), self.write_timeout if timeout is None else timeout)

    def _still_wanted_locked(self, held: list[tuple[int, bytes]]) -> list[bytes]:
        """The held HEADERS to send now; those of streams that can no longer succeed are dropped.

        Held HEADERS are not on the wire yet. Once the connection is ending
        (``core.closed``), a held stream that already fails is better never
        opened there:

        * above the last stream id of the server's GOAWAY it would be a new
          stream on a connection that said goodbye (RFC 9113 section 6.8:
          none may be opened; the server ignores it); it fails retryably;
        * after an error GOAWAY or a connection failure nothing answers it;
        * with the socket closed the bytes can go nowhere, and trying would
          raise the dead session's error from whatever flushed: the end of a
          block whose later requests went on a new connection, say.

        Their streams carry the failure (the core's ``stream_failure``) to the
        caller's response. Only a tail of the held blocks is ever dropped,
        which keeps HPACK in step (RFC 7541 section 2.3.2: each block may
        refer to table entries the blocks before it added): those kept
        precede those dropped, and no header block follows on a connection
        that opens no more streams. Lock held.
        """
        core = self._core
        if not core.closed:
            return [data for _, data in held]  # the common case: nothing is ending
        if self._socket_closed:
            # Nowhere to go; every unfinished stream already carries the
            # connection's failure (set when the socket closed).
            return []
        keep = len(held)
        while keep:
            stream = core.streams.get(held[keep - 1][0])
            # A stream gone from the table (discarded while held) is sent:
            # its RST_STREAM is already queued behind it.
            failure = None if stream is None else core.stream_failure(stream)
            if stream is None or failure is None:
                break  # this one, and all before it, go out
            self._never_sent_locked(stream, failure)
            keep -= 1
        return [data for _, data in held[:keep]]

    @staticmethod
    def _never_sent_locked(stream: StreamState, failure: HyperError) -> None:
        """Record that a held stream's HEADERS are dropped: nothing may name it on the wire.

        RFC 9113 section 5.1: to the server the stream is idle, and a DATA,
        END_STREAM or RST_STREAM frame on an idle stream is a connection
        error. The failure as the stream's own error makes the core skip the
        RST_STREAM it sends when the response is discarded; our half ending
        (RESET) stops an upload and its END_STREAM. The caller's response gets
        ``failure``, as it would have anyway. Lock held.
        """
        stream.error = failure
        stream.request_event(RequestEvent.RESET)

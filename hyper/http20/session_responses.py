"""The response half of an HTTP/2 session: waiting for headers, taking body bytes, letting streams go.

:class:`SessionResponses` is part of the session (the locking argument for
the whole session is stated once, in :mod:`hyper.http20.session`): every
operation here takes the state lock for its whole step, waits through the
reader election (:mod:`hyper.http20.session_reader`), and sends the window
credit that taking body bytes frees before it returns (RFC 9113 section
6.9), so that streams waiting for exactly that window go on.

No module outside the session uses this one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..exceptions import HyperTimeout, InvalidStreamID, fresh
from .session_reader import SessionReader

#: What :meth:`SessionResponses.read_body` returns: body bytes, and the
#: trailers once the body is complete (``None`` while more may come).
BodyPiece = tuple[bytes, "list[tuple[bytes, bytes]] | None"]

#: The largest complete body :meth:`SessionResponses.await_response_start`
#: hands over with the headers (a larger one is read piece by piece, as asked).
HELD_BODY_MAX = 64 * 1024


class SessionResponses(SessionReader):
    """Response headers, body bytes and the end of streams (a base of the session)."""

    def await_response_start(
        self,
        stream_id: int,
        timeout: float | None,
        on_timeout: Callable[[], HyperTimeout],
    ) -> tuple[list[tuple[bytes, bytes]], BodyPiece | None]:
        """Wait for the final response headers; with them, the whole body if it is already here.

        The body comes along (as :meth:`read_body` would return its last
        piece: the bytes and the trailers, the stream then finished with)
        only when the response is complete, sound, small
        (at most :data:`HELD_BODY_MAX` bytes) and has no pushes waiting on
        it; otherwise the second item is ``None`` and the body is read with
        :meth:`read_body` as usual. A small response usually arrives whole in
        one read: this saves the reader a second hold of the lock and a wait.
        """
        core = self._core
        # The state lock guards the stream table, the headers and body the
        # reader stores, and the window credit that taking the body releases.
        with self._cond:
            # A response read ends any burst (session_coalesce): the next
            # request is written at once (one write per sequential request).
            self._burst_thread = 0
            stream = core.streams.get(stream_id)
            if stream is None:
                raise InvalidStreamID(f"stream {stream_id} is gone", stream_id)
            if stream.headers is None:
                ready = lambda: stream.headers is not None  # noqa: E731
                # A partial, not a lambda: calling it runs no Python frame
                # of its own before the core's (asked at least once per wait).
                failure = partial(core.stream_failure, stream)
                # The read's own answer (ACKs, WINDOW_UPDATE) may leave with
                # the window credit that taking the body frees: one flush,
                # below, instead of two. (A batch holding HEADERS sends them
                # first: session_batch's _wait_locked.)
                self._wait_locked(ready, failure, timeout, on_timeout, stream_id, answer_later=True)
            headers = stream.headers or []
            if not (
                stream.complete
                and stream.error is None
                and stream.buffered <= HELD_BODY_MAX
                and not core.has_pushes(stream_id)
            ):
                # The read's answer (see answer_later) must leave before the
                # lock does; a failed send is recorded in the core and
                # reaches the next operation, after these headers.
                self._flush_quietly_locked()
                return headers, None
            # What read_body does for a complete body taken in one piece: the
            # bytes (their window credit given back), the trailers, and the
            # stream finished with.
            data = core.take_data(stream_id, None)
            trailers = stream.trailers or []
            self._discard_locked(stream_id, flush=False)
            # Credit freed by taking the bytes must leave now (WINDOW_UPDATE,
            # RFC 9113 section 6.9), as in read_body; a failed send is
            # recorded in the core and reaches the next operation.
            self._flush_quietly_locked()
            return headers, (data, trailers)

    def read_body(
        self,
        stream_id: int,
        max_bytes: int | None,
        timeout: float | None,
        on_timeout: Callable[[], HyperTimeout],
    ) -> BodyPiece | None:
        """Wait for and take up to ``max_bytes`` of a stream's body (all buffered if ``None``).

        Returns the bytes and, once the body is complete and fully taken, its
        trailers (the stream is then finished with); ``None`` when the stream
        is gone (its response was closed). Bytes that arrived before a
        stream's failure are returned first; the error comes at the next call.
        """
        core = self._core
        # The state lock guards the stream's buffer, which the reading thread
        # fills, and the window credit that taking data releases.
        with self._cond:
            stream = core.streams.get(stream_id)
            if stream is None:
                return None
            # stream.data is asked directly (not has_data): this runs per read.
            self._wait_locked(
                lambda: bool(stream.data) or stream.ended,
                lambda: None if stream.data else core.stream_failure(stream),
                timeout,
                on_timeout,
                stream_id,
            )
            if stream.error is not None and not stream.data:
                raise fresh(stream.error)  # e.g. malformed trailers after a complete body
            data = core.take_data(stream_id, max_bytes)
            trailers = None
            if stream.ended and not stream.data and stream.error is None:
                # Complete and fully taken: done with the stream at once, so
                # the caller's next read needs no lock and no wait.
                trailers = stream.trailers or []
                self._discard_locked(stream_id, flush=False)
            # Connection credit freed by this read must leave now (WINDOW_UPDATE,
            # RFC 9113 section 6.9): other streams may wait for exactly that
            # window. A failed send is recorded in the core, and reaches this
            # reader at its next read, after the bytes in hand.
            self._flush_quietly_locked()
        return data, trailers

    def nothing_answered(self, stream_id: int) -> bool:
        """True when no part of a response came on ``stream_id``: no 1xx, no final headers, no push.

        Asked before a refused request is sent again
        (:mod:`~hyper.http20.resending`): a server that answered anything at
        all began processing it, whatever it says later, and such a request
        is never sent twice. ``False`` for a stream no longer known (nothing
        can be said of it).
        """
        core = self._core
        with self._cond:  # the reader stores headers and promises under it
            stream = core.streams.get(stream_id)
            return (
                stream is not None
                and stream.headers is None
                and not stream.informational
                and not stream.promised  # any PUSH_PROMISE, taken or refused
            )

    def discard(self, stream_id: int) -> None:
        """The application is done with a stream: drop it (RST_STREAM CANCEL if unfinished)."""
        with self._cond:  # the stream table, and the RST_STREAM queued and sent in order
            self._discard_locked(stream_id)

    def _discard_locked(self, stream_id: int, flush: bool = True) -> None:
        self._core.discard_stream(stream_id)
        if flush:
            self._flush_quietly_locked()
        # Wakes only the threads that may care: those on that stream (an
        # upload, another reader) and untagged ones (a freed stream slot).
        # The sleepers list changes only under the state lock, held here:
        # empty, there is nobody to wake (one thread on the connection).
        cond = self._cond
        if cond.sleepers:
            cond.notify_changed({stream_id})
        # The reader too: it may be the thread waiting for this stream's
        # slot. _reading is set only under this lock: unset, nobody polls.
        if self._reading:
            self._poke_reader_locked()

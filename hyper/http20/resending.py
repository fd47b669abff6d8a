"""Sending a request again, transparently, when the server refused it unprocessed.

RFC 9113 names two ways a server says it did not process a request, so that
the client may send it again:

* section 6.8: a GOAWAY's last-stream-id is the highest stream the server
  may have acted on; every stream above it "can be safely retried" on a new
  connection (a server closing after N requests, like nginx's
  ``keepalive_requests``, sends one while more requests are in flight).
  Only a graceful GOAWAY (NO_ERROR): after an error GOAWAY the connection
  raises its error until it is closed, as it always did;
* section 8.7: a stream reset with REFUSED_STREAM was not processed either
  (a server over its stream limit, or shedding load).

:class:`RefusedResends` (a base of
:class:`~hyper.http20.connection.HTTP20Connection`) makes ``getresponse()``
send such a request again, on a usable session (a new one after a GOAWAY),
under the same public stream id, and return that response. It only does so
when the request can be sent again *exactly* and *nothing* of a response came:

* no body, or a body given as ``bytes`` or ``str`` (immutable, held whole);
  never a file, an iterator, a ``bytearray`` or ``memoryview`` (the caller
  may change it) nor a body sent with ``send()``: those get the retryable
  error, as before;
* no response headers (final or 1xx) and no PUSH_PROMISE on the stream: a
  server that answered anything began processing it.

At most :data:`MAX_RESENDS` times per request; then the retryable error is
raised, as without resends. The exchange's ``deadline`` keeps running from
the first send. ``HTTP20Connection(retry_refused=False)`` turns it off.

Threads: the thread in ``getresponse()`` owns the stream's response (the
registry's claim); the registry's entry is switched to a new, complete
:class:`~hyper.http20.stream_ids.StreamHandle` under the registry's lock
(:meth:`~hyper.http20.stream_ids.StreamRegistry.rehome`), never changed in
place, so other threads never see a session of one send and the wire id of
another.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import h2.errors

from ..common.body import BodyType, prepare_body
from ..exceptions import ConnectionTerminated, HyperError, InvalidStreamID, StreamResetError
from .response import public_stream_ids
from .stream_ids import StreamHandle

if TYPE_CHECKING:
    from .session import H2Session
    from .stream_ids import StreamRegistry

log = logging.getLogger("hyper")

#: Resends per request. One covers the usual case (the server's GOAWAY or a
#: refusal, then a new connection that answers). A second covers a new
#: connection that also ends before it reaches this request (a server with a
#: small per-connection request limit and many requests in flight, or a
#: GOAWAY that arrived just after the poll before the resend). Three
#: refusals in a row mean a server that refuses this request whatever we
#: do: the caller gets the error rather than a loop.
MAX_RESENDS = 3

_REFUSED_STREAM = int(h2.errors.ErrorCodes.REFUSED_STREAM)

#: What a handle keeps to send its request again (see StreamHandle.resend).
ResendPlan = tuple[tuple[tuple[bytes, bytes], ...], bool, "int | None", "bytes | None"]


def resendable_body(body: BodyType) -> bytes | None:
    """``body`` as bytes when a request carrying it may be sent again exactly, else ``None``.

    Only ``bytes`` and ``str``: immutable, so what a resend sends is what
    the first send sent. ``str`` is encoded as ``request()`` sends it.
    """
    if type(body) is bytes:
        return body
    if type(body) is str:
        return body.encode("utf-8")
    return None


def refused_unprocessed(error: HyperError, wire_id: int) -> bool:
    """True when ``error``, raised to the waiter on wire stream ``wire_id``, says it was not processed."""
    if isinstance(error, StreamResetError):
        # RFC 9113 section 8.7: REFUSED_STREAM, nothing was processed.
        return error.retryable and error.error_code == _REFUSED_STREAM
    if isinstance(error, ConnectionTerminated):
        # Section 6.8: above the GOAWAY's last stream id (a held, never sent
        # request gets the same error, and may be sent just the same). Only
        # a graceful GOAWAY (NO_ERROR): after an error one the connection
        # stays broken until the caller closes it (sessions.py; hyper never
        # reconnects silently after a server's error), so the caller gets
        # the refusal, which says it is safe to retry.
        last = error.last_stream_id
        return error.retryable and error.error_code == 0 and last is not None and wire_id > last
    return False


class RefusedResends:
    """``getresponse()``'s resends of refused requests (see the module docstring)."""

    # Set by HTTP20Connection.
    retry_refused: bool
    _registry: StreamRegistry

    if TYPE_CHECKING:

        def _usable_session_stream(
            self, fields: list[tuple[bytes, bytes]], end_stream: bool, declared: int | None
        ) -> tuple[H2Session, int]: ...

    def _may_resend(self, handle: StreamHandle, error: HyperError, resends: int) -> bool:
        """True when the request of ``handle``, which failed with ``error``, is to be sent again."""
        plan = handle.resend
        if plan is None or resends >= MAX_RESENDS or not self.retry_refused:
            return False
        _, end_stream, _, body = plan
        if not end_stream and body is None:
            return False  # a body that cannot be sent again (a file, an iterator, send())
        if not refused_unprocessed(error, handle.wire_id):
            return False
        if handle.deadline_at is not None and time.monotonic() >= handle.deadline_at:
            # The exchange's deadline is over: a resend could only end in a
            # timeout for a request the server would then have received.
            return False
        # Asked last (the session's lock): nothing of a response came.
        return handle.session.nothing_answered(handle.wire_id)

    def _resend(self, stream_id: int, old: StreamHandle) -> StreamHandle | None:
        """Send the request of ``old`` again; its new handle, or ``None`` if the stream was dropped.

        ``None``: ``close()`` (or another thread's failure) dropped public id
        ``stream_id`` meanwhile; the caller raises the refusal. Any error
        sending is raised, the stream forgotten.
        """
        plan = old.resend
        assert plan is not None  # checked by _may_resend
        fields, end_stream, declared, body = plan
        try:
            current = self._registry.handle(stream_id)
        except InvalidStreamID:
            current = None
        if current is not old:
            # close() (or a failed wait in another thread) dropped the
            # stream: nothing is sent again, and no connection is opened
            # for it after close() returned. (A close() from here on races
            # the resend as it races any request(): rehome() below sees it.)
            return None
        # The refused stream has nothing more to give: let it go (it is
        # closed, or above the GOAWAY's last id and ignored by the server).
        old.session.discard(old.wire_id)
        try:
            session, wire_id = self._usable_session_stream(list(fields), end_stream, declared)
        except BaseException:
            self._registry.forget(stream_id)
            raise
        log.debug("stream %d refused unprocessed; sent again as %d", stream_id, wire_id)
        new = StreamHandle(session, wire_id, old.deadline_at, old.target, plan)
        if not self._registry.rehome(stream_id, old, new):
            session.discard(wire_id)
            return None
        if body is not None:
            try:
                # Errors name the public id, as request()'s own send does.
                with public_stream_ids(wire_id, stream_id):
                    session.send_body(wire_id, prepare_body(body))
            except BaseException:
                self._registry.forget(stream_id)
                session.discard(wire_id)
                raise
        return new

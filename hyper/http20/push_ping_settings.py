"""What an HTTP/2 connection offers beyond requests: server push, PING and the server's SETTINGS.

:class:`PushPingSettings` is mixed into :class:`~hyper.HTTP20Connection`:
``get_pushes()``, ``ping()``, ``remote_settings`` and
``max_concurrent_streams``, ``batch()`` (requests sent together), and
hyper 0.7's ``_conn`` accessor that apns2 reads the server's stream limit
through. Each is one call on the session
(which takes its own lock); nothing here holds state of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..common.stream_ids import checked_stream_id
from ..exceptions import HyperError, InvalidStreamID
from ..limits import Limits
from .push import HTTP20Push
from .settings import LegacySettingsGuard, RemoteSettings
from .stream_ids import StreamRegistry

if TYPE_CHECKING:
    from .session import H2Session


class PushPingSettings:
    """Server push, PING and the server's SETTINGS for HTTP20Connection."""

    # Set by HTTP20Connection.__init__.
    enable_push: bool
    read_timeout: float | None
    limits: Limits
    _registry: StreamRegistry

    if TYPE_CHECKING:
        # From SessionOpening and HTTP20Connection.
        def _current_session(self) -> H2Session: ...

        def _latest_of_this_thread(self) -> int: ...

    # -- server push ----------------------------------------------------------------

    def get_pushes(self, stream_id: int | None = None, capture_all: bool = False) -> Iterator[HTTP20Push]:
        """The server pushes promised on a request stream, as :class:`~hyper.HTTP20Push` objects.

        ``stream_id`` is the request's stream (by default the most recent
        request sent from this thread). Each push is returned once, whichever call takes it. With
        ``capture_all`` the iterator also waits (each wait bounded by the read
        timeout) for pushes still to come, until that request's response has
        fully arrived; otherwise it returns the pushes received so far.
        """
        if not self.enable_push:
            raise HyperError("server push is disabled on this connection; pass enable_push=True")
        if stream_id is None:
            stream_id = self._latest_of_this_thread()
        stream_id = checked_stream_id(stream_id)
        handle, known = self._registry.push_parent(stream_id)
        if handle is None:
            if known:
                # An older request whose pushes were all handed out (or that
                # never got any): nothing more can come for it.
                return iter(())
            raise InvalidStreamID(f"no request was sent on stream {stream_id} of this connection", stream_id)
        return self._pushes_of(handle.session, handle.wire_id, stream_id, capture_all)

    def _pushes_of(
        self, session: H2Session, wire_id: int, stream_id: int, capture_all: bool
    ) -> Iterator[HTTP20Push]:
        while True:
            # Taken (and waited for) under the session's state lock; yielded
            # without it, so the caller may read responses meanwhile.
            promises, more_to_come = session.take_pushes(wire_id, capture_all, self.read_timeout)
            for promise in promises:
                yield HTTP20Push(session, promise, stream_id, self.read_timeout, self.limits)
            if not more_to_come:
                return

    # -- batching -------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Send the requests this thread makes inside the ``with`` block together, at its end.

        ``with conn.batch(): ...``: each ``request()`` (or ``endheaders()``)
        in the block still returns its stream id at once, but its HEADERS
        are held and written with the others in one send when the block
        ends, normally or by an exception. Held requests go out earlier
        whenever this thread waits for the server (``getresponse()``,
        reading a response, a body's ``send()``, ``ping()``), when another
        thread sends on the connection, and once 256 KiB are held, so a
        batch never waits on itself. A request with a body is sent, with
        everything held before it, as its body is sent.

        Only the calling thread is batched: other threads' requests go out
        as usual (and take the held ones with them). Blocks nest; the
        outermost one sends. Entering connects if the connection is not open
        yet; a request that has to open a new connection inside the block
        (after the server's GOAWAY, say) is sent at once.

        If the server's GOAWAY (RFC 9113 section 6.8) arrives while requests
        are held and excludes them, they are never sent on that connection,
        and leaving the block raises nothing for them, so the ids of the
        requests that did go out are not lost. Their ``getresponse()`` sends
        them on a new connection (``retry_refused``, the default), or raises
        :class:`~hyper.exceptions.ConnectionTerminated` with
        ``retryable=True`` where it can't.
        """
        with self._current_session().batch():
            yield

    # -- PING -------------------------------------------------------------------------

    def ping(self, opaque_data: bytes | str | None = None) -> float:
        """Send PING and wait (bounded by the read timeout) for its ACK; return the round trip in seconds.

        ``opaque_data`` is the 8-byte payload (``str`` is encoded as UTF-8, as
        hyper 0.7 did); by default a random one, so concurrent pings from
        several threads never answer each other.
        """
        # hyper 0.7 took str too (apns2's heartbeat sends '-' * 8), as UTF-8.
        if isinstance(opaque_data, str):
            opaque_data = opaque_data.encode("utf-8")
        elif opaque_data is not None and not isinstance(opaque_data, (bytes, bytearray, memoryview)):
            # bytes(8) would silently make eight zero bytes.
            raise TypeError(f"PING data must be bytes or str, not {type(opaque_data).__name__}")
        payload = os.urandom(8) if opaque_data is None else bytes(opaque_data)
        if len(payload) != 8:
            raise ValueError(f"PING data must be exactly 8 bytes, not {len(payload)}")
        return self._current_session().ping(payload, self.read_timeout)

    # -- the server's SETTINGS, and hyper 0.7's _conn ----------------------------

    @property
    def remote_settings(self) -> RemoteSettings:
        """The server's current SETTINGS, as a read-only snapshot.

        Connects first if needed and waits (bounded by the read timeout) for
        the server's first SETTINGS frame. The server may change them later:
        read again rather than keeping the snapshot.
        """
        return RemoteSettings.from_codes(self._current_session().remote_settings(self.read_timeout))

    @property
    def max_concurrent_streams(self) -> int:
        """How many streams the server lets this connection have open at once (see :attr:`remote_settings`).

        h2 reports ``2**32 + 1`` when the server set no limit.
        """
        return self.remote_settings.max_concurrent_streams

    @property
    def _conn(self) -> LegacySettingsGuard:
        """hyper 0.7 compatibility: ``with conn._conn as h2conn: h2conn.remote_settings``.

        apns2 reads the server's stream limit this way. New code should use
        :attr:`remote_settings` or :attr:`max_concurrent_streams`.
        """
        return LegacySettingsGuard(lambda: self.remote_settings)

"""Server push, PING and the server's SETTINGS on an HTTP/2 session.

:class:`SessionPushPingSettings` is part of the session (the locking
argument for the whole session is stated once, in
:mod:`hyper.http20.session`): the operations beyond requests and responses
that :class:`~hyper.http20.push_ping_settings.PushPingSettings`, the
pushed responses (:mod:`~hyper.http20.push`) and the keep-alive call.
Each takes the state lock for its whole step, sends what it queued before
letting go (frame order, RFC 9113 section 5.1), and waits for the server
through the reader election (:meth:`~hyper.http20.session_reader.SessionReader._wait_locked`),
every wait bounded by the caller's timeout.

No module outside the session uses this one.
"""

from __future__ import annotations

import time

from ..exceptions import ConnectionClosed, ReadTimeout
from .pushes import PushPromise
from .session_reader import SessionReader
from .session_wire import fresh_or_none
from .streams import StreamState


class SessionPushPingSettings(SessionReader):
    """PING, the server's SETTINGS and server push for :class:`~hyper.http20.session.H2Session`."""

    # -- liveness and settings --------------------------------------------------------

    def ping(self, payload: bytes, timeout: float | None) -> float:
        """Send PING, wait for its ACK; return the round trip in seconds."""
        core = self._core
        # The state lock: queuing the PING and sending it keep frame order;
        # the wait for the ACK releases it only while polling (_wait_locked).
        with self._cond:
            if self._socket_closed:
                raise fresh_or_none(core.fatal) or ConnectionClosed("the connection is closed")
            core.send_ping(payload)
            started = time.monotonic()
            try:
                self._flush_locked()
                self._wait_locked(
                    lambda: core.take_ping_ack(payload),  # RFC 9113 section 6.7: the ACK echoes it
                    lambda: core.fatal,
                    timeout,
                    lambda: ReadTimeout(f"no PING ACK within {timeout} s"),
                )
            except BaseException:
                core.forget_ping(payload)
                raise
            return time.monotonic() - started

    def remote_settings(self, timeout: float | None) -> dict[int, int]:
        """The server's SETTINGS by code, once its first SETTINGS frame is in.

        Waits (bounded by ``timeout``) for that frame, reading the socket if no
        other thread is: right after connecting, h2 still holds the protocol
        defaults (RFC 9113 section 6.5.2), not the server's real limits.
        """
        core = self._core
        # The state lock: the copy is taken while no reader can be feeding
        # the core a SETTINGS frame.
        with self._cond:
            self._wait_locked(
                lambda: core.settings_received,
                lambda: core.fatal,
                timeout,
                lambda: ReadTimeout(f"no SETTINGS from the server within {timeout} s"),
            )
            return core.remote_settings()

    # -- server push ------------------------------------------------------------------

    def take_pushes(self, wire_id: int, wait: bool, timeout: float | None) -> tuple[list[PushPromise], bool]:
        """Take the pushes promised on request stream ``wire_id``; and whether more may come.

        With ``wait``, waits (bounded by ``timeout``) while none is there and
        the request's response has not ended: promises come before the
        response that refers to them ends (RFC 9113 section 8.4).
        """
        core = self._core
        # The state lock: the core's push list and the parent's state, which
        # the reader changes.
        with self._cond:
            while True:
                self._poll_locked()
                promises = core.take_pushes(wire_id)
                parent = core.streams.get(wire_id)
                more_to_come = wait and parent is not None and parent.may_get_pushes
                if promises or not more_to_come or parent is None:
                    return promises, more_to_come
                self._wait_for_push_locked(wire_id, parent, timeout)

    def _wait_for_push_locked(self, wire_id: int, parent: StreamState, timeout: float | None) -> None:
        core = self._core
        self._wait_locked(
            # A reset page ends the iteration (with the pushes made so far);
            # only a failed connection is an error here.
            lambda: not parent.may_get_pushes or core.has_pushes(wire_id),
            lambda: core.stream_failure(parent),
            timeout,
            lambda: ReadTimeout(f"no push and no end of stream {wire_id} within {timeout} s"),
        )

    def may_have_pushes(self, wire_id: int) -> bool:
        """True while request stream ``wire_id`` is open or has untaken pushes."""
        with self._cond:  # pushes arrive and are taken under it
            if self._socket_closed:
                return False
            return wire_id in self._core.streams or self._core.has_pushes(wire_id)

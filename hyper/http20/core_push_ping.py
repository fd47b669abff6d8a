"""Server push and PING in the HTTP/2 core: the books the session asks, and the PINGs it sends.

:class:`CorePushPing` is a base of :class:`~hyper.http20.core.H2Core`. The
push book (:mod:`~hyper.http20.pushes`) holds the pushes the receiving half
accepted (RFC 9113 section 8.4) until the application takes them; the ping
book (:mod:`~hyper.http20.pings`) matches each PING ACK with the PING we
sent (section 6.7). Sans-I/O, like the rest of the core: the session calls
in under its state lock.
"""

from __future__ import annotations

import h2.connection

from .pings import PingBook
from .pushes import PushBook, PushPromise


class CorePushPing:
    """Pushes waiting to be taken, and our PINGs (a base of the core)."""

    # Set by H2Core.__init__.
    _h2: h2.connection.H2Connection
    _pushes: PushBook
    _pings: PingBook

    def has_pushes(self, parent_id: int) -> bool:
        """True when pushes promised on request stream ``parent_id`` wait to be taken."""
        # Asked for every response: an empty book (push is rarely on) answers at once.
        return bool(self._pushes) and self._pushes.has_pushes(parent_id)

    def take_pushes(self, parent_id: int | None = None) -> list[PushPromise]:
        """Remove and return the untaken pushes (of one request stream, or all)."""
        return self._pushes.take(parent_id)

    def send_ping(self, payload: bytes) -> None:
        """Queue a PING carrying ``payload`` (8 bytes, RFC 9113 section 6.7)."""
        self._h2.ping(payload)
        self._pings.sent(payload)

    def forget_ping(self, payload: bytes) -> None:
        """Stop waiting for one ACK of ``payload`` (its waiter gave up)."""
        self._pings.forget(payload)

    def take_ping_ack(self, payload: bytes) -> bool:
        """True (once per ACK) when a PING carrying ``payload`` was acknowledged."""
        return self._pings.take_ack(payload)

"""Keep-alive: ping an idle HTTP/2 connection and give up on a silent one.

A connection can die without a word: a NAT or firewall forgets it, a server
host vanishes. TCP notices only when we next send, and a request would then
wait for its full read timeout. With ``HTTP20Connection(keepalive=N)`` a
daemon thread sends PING once nothing has arrived for ``N`` seconds; when no
ACK comes within the ACK timeout the connection is declared dead: every
waiter gets :class:`~hyper.ConnectionTerminated` at once, and the next
request opens a new connection. The thread holds only a weak reference to
the connection's session and stops when it closes.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref

from ..exceptions import ConnectionTerminated, HyperError, HyperTimeout
from .session import H2Session

log = logging.getLogger("hyper")


class Keepalive:
    """Pings ``session`` after ``interval`` idle seconds; no ACK within ``ack_timeout`` kills it."""

    def __init__(self, session: H2Session, interval: float, ack_timeout: float) -> None:
        if interval <= 0 or ack_timeout <= 0:
            raise ValueError("keepalive interval and ACK timeout must be positive")
        self.interval = interval
        self.ack_timeout = ack_timeout
        self._session = weakref.ref(session)
        self._stopped = session.stopped
        self._thread = threading.Thread(target=self._run, name="hyper-keepalive", daemon=True)

    def start(self) -> None:
        """Start the pinging thread."""
        self._thread.start()

    def _run(self) -> None:
        while True:
            session = self._session()
            if session is None:
                return
            # Under the session's state lock: a long send holding it delays
            # this check, which is fine (a send is activity, and the PING
            # below would wait for the same lock anyway).
            idle = session.idle_seconds()
            del session  # never keep the session alive while sleeping
            if idle < self.interval:
                if self._stopped.wait(self.interval - idle):
                    return
                continue
            if not self._ping_once():
                return

    def _ping_once(self) -> bool:
        """One PING; False once the session is gone, dead or closed."""
        session = self._session()
        if session is None or self._stopped.is_set():
            return False
        try:
            rtt = session.ping(os.urandom(8), self.ack_timeout)
        except HyperTimeout:
            session.declare_dead(
                ConnectionTerminated(
                    f"no PING ACK within {self.ack_timeout} s of a keep-alive ping: "
                    "the connection is considered dead",
                    retryable=not session.streams_in_flight(),
                )
            )
            return False
        except HyperError:
            return False  # closed or failed otherwise; its waiters already know
        log.debug("keep-alive PING answered in %.1f ms", rtt * 1000)
        return True

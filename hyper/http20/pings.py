"""PING bookkeeping: which payloads we sent, and which ACKs wait for their waiter.

RFC 9113 section 6.7: a PING ACK echoes the payload of the PING it answers.
Several threads may ping at once (even with equal payloads), so each payload
is counted. An ACK nobody asked for is not ours; the core counts it against
the control-frame flood budget instead. Sans-I/O and lock-free: the core
calls in here under the session's state lock.
"""

from __future__ import annotations


class PingBook:
    """PINGs sent and not yet acknowledged, and ACKs not yet collected."""

    def __init__(self) -> None:
        # payload -> PINGs carrying it that still wait for an ACK.
        self._outstanding: dict[bytes, int] = {}
        # payload -> ACKs received that no waiter has collected yet.
        self._acked: dict[bytes, int] = {}

    def sent(self, payload: bytes) -> None:
        """A PING carrying ``payload`` was queued."""
        self._outstanding[payload] = self._outstanding.get(payload, 0) + 1

    def forget(self, payload: bytes) -> None:
        """Stop waiting for one ACK of ``payload`` (its waiter gave up)."""
        _take_one(self._outstanding, payload)

    def is_ours(self, payload: bytes) -> bool:
        """True when an ACK of ``payload`` would answer one of our PINGs."""
        return payload in self._outstanding

    def ack_received(self, payload: bytes) -> None:
        """A PING ACK arrived; one that answers nothing of ours is ignored."""
        if _take_one(self._outstanding, payload):
            self._acked[payload] = self._acked.get(payload, 0) + 1

    def take_ack(self, payload: bytes) -> bool:
        """True (once per ACK) when a PING carrying ``payload`` was acknowledged."""
        return _take_one(self._acked, payload)


def _take_one(counts: dict[bytes, int], payload: bytes) -> bool:
    """Lower ``payload``'s count by one; False when it had none."""
    count = counts.get(payload, 0)
    if not count:
        return False
    if count == 1:
        del counts[payload]
    else:
        counts[payload] = count - 1
    return True

"""Server push bookkeeping: which promises to accept, and which wait to be taken.

RFC 9113 section 8.4: the server promises a request (PUSH_PROMISE on one of
our streams) and answers it on a new even-numbered stream. A client checks
the promise (a safe, cacheable request for an origin the connection is
authoritative for, section 8.4.1) and may refuse any push with RST_STREAM.
This module decides; the core resets, opens the pushed stream and keeps the
promise here until the application takes it. Sans-I/O and lock-free: the
core calls in here under the session's state lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import h2.errors

from ..common.url import origin_of
from .fields import push_request_problem

log = logging.getLogger("hyper")


@dataclass
class PushPromise:
    """A server push the application has not taken yet."""

    #: The promised (even) stream the pushed response arrives on.
    stream_id: int
    #: The request stream the promise came on.
    parent_id: int
    #: The promised request's fields, pseudo-headers first.
    request_headers: list[tuple[bytes, bytes]]


class PushBook:
    """The promises accepted and not yet taken, oldest first, and the acceptance rules.

    :param origin: ``(scheme, host, port)`` of the connection; pushes for
        any other origin are refused.
    :param max_pushed: pushed streams held at once; more are refused.
    """

    def __init__(self, origin: tuple[str, str, int] | None, max_pushed: int) -> None:
        self._origin = origin
        self._max_pushed = max_pushed
        self._promises: list[PushPromise] = []

    def __bool__(self) -> bool:
        return bool(self._promises)

    def refusal(self, pushed_id: int, fields: list[tuple[bytes, bytes]], held: int) -> int | None:
        """The RST_STREAM error code that refuses this promise, or ``None`` to accept it.

        ``held``: pushed streams the connection holds now.
        """
        problem = push_request_problem(fields)
        if problem is not None:
            # A malformed or unsafe promised request (RFC 9113 section 8.4.1).
            log.debug("push on stream %d refused: %s", pushed_id, problem)
            return h2.errors.ErrorCodes.PROTOCOL_ERROR
        request = dict(fields)
        origin = origin_of(request[b":scheme"].decode("latin-1"), request[b":authority"].decode("latin-1"))
        if origin is None or origin != self._origin:
            log.debug("push on stream %d refused: %r is not this connection's origin", pushed_id, origin)
            return h2.errors.ErrorCodes.REFUSED_STREAM
        if held >= self._max_pushed:
            log.debug("push on stream %d refused: %d pushed streams held", pushed_id, held)
            return h2.errors.ErrorCodes.REFUSED_STREAM
        return None

    def add(self, promise: PushPromise) -> None:
        """Keep an accepted promise until the application takes it."""
        self._promises.append(promise)
        log.debug("stream %d: push promised on stream %d", promise.stream_id, promise.parent_id)

    def has_pushes(self, parent_id: int) -> bool:
        """True when promises made on request stream ``parent_id`` wait to be taken."""
        return any(push.parent_id == parent_id for push in self._promises)

    def take(self, parent_id: int | None = None) -> list[PushPromise]:
        """Remove and return the untaken promises (of one request stream, or all)."""
        if parent_id is None:
            taken, self._promises = self._promises, []
        else:
            taken = [push for push in self._promises if push.parent_id == parent_id]
            self._promises = [push for push in self._promises if push.parent_id != parent_id]
        return taken

    def oldest_first(self) -> list[PushPromise]:
        """The untaken promises, oldest first (a copy: the caller may remove while going)."""
        return list(self._promises)

    def remove(self, promise: PushPromise) -> None:
        """Forget one untaken promise (it is being cancelled)."""
        self._promises.remove(promise)

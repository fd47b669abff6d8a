"""Failures in the HTTP/2 core: the connection-fatal error, and what each waiter is told.

:class:`CoreFailures` is a base of :class:`~hyper.http20.core.H2Core`. The
first connection-fatal error is recorded once (:meth:`CoreFailures.fail`,
:meth:`CoreFailures.connection_lost`), stripped of its traceback so that a
dead connection holds no reference cycle; before the server's SETTINGS it
carries a hint of what the server's first bytes suggest. From that error,
a GOAWAY and the core's own state, it answers the two questions the session
asks under its state lock: may a new stream be opened
(:meth:`CoreFailures.accepting_streams`), and what does a thread waiting
on a stream get (:meth:`CoreFailures.stream_failure`). Sans-I/O, like the
rest of the core.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import h2.errors

from ..common.hints import add_hint, failed_start_hint
from ..exceptions import ConnectionTerminated, HyperError
from .streams import StreamState

log = logging.getLogger("hyper")


def error_name(code: int) -> str:
    """The registered name of an HTTP/2 error code, e.g. ``'REFUSED_STREAM'``."""
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"UNKNOWN_ERROR_{code:#x}"


def without_frames(error: HyperError) -> HyperError:
    """``error``, made safe to keep: no traceback on it or on the errors it was raised from.

    A traceback holds every frame it passed through, and those frames hold
    this core and its session (``self``): an error kept in ``fatal`` with a
    traceback is a reference cycle, and a dead connection, with all it holds,
    would wait for the cyclic garbage collector instead of going when its
    last user lets go. Type, message, attributes and the ``__cause__`` chain
    (hyper's error, then h2's or the socket's) stay; every waiter is raised
    a fresh copy (:func:`hyper.exceptions.fresh`) with a traceback of its own.

    Only the ``__cause__`` chain is hyper's own. An implicit ``__context__``
    is whatever the calling thread happened to be handling when the error
    was raised, the application's own exception included: that link is cut,
    and the exception at its end is left as it is (its traceback is still
    in use by whoever is handling it).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:  # a cause chain may loop
        seen.add(id(current))
        current.__traceback__ = None
        current.__context__ = None
        current = current.__cause__
    return error


class CoreFailures:
    """The core's failure state, and the error each asker gets (see the module docstring)."""

    # Set by H2Core.__init__ (and changed by the receiving half).
    _first_bytes: bytes | None
    _origin: tuple[str, str, int] | None
    _touched_all: bool
    settings_received: bool
    fatal: HyperError | None
    goaway: tuple[int, int, bytes] | None
    closed: bool

    if TYPE_CHECKING:
        # Defined by H2Core (the sending half).
        def close(self, error_code: int = 0, message: str = "connection closed") -> None: ...

        @property
        def ids_exhausted(self) -> bool: ...

    def fail(self, error: HyperError, error_code: int | None = None) -> None:
        """Record a connection-fatal error; queue GOAWAY when we detected it (RFC 9113 section 5.4.1)."""
        self._touched_all = True
        if self.fatal is None:
            self._explain_failed_start(error)
            self.fatal = without_frames(error)
            log.debug("connection failed: %s", error)
        if error_code is not None:
            self.close(error_code, str(error))

    def connection_lost(self, error: HyperError) -> None:
        """The socket closed or broke: everything incomplete fails with ``error``."""
        self.closed = True
        if self.fatal is None:
            self._explain_failed_start(error)
            self.fatal = without_frames(error)

    def _explain_failed_start(self, error: HyperError) -> None:
        """Before the server's SETTINGS, add what its first bytes suggest (hints) to ``error``."""
        if self._first_bytes is not None and not self.settings_received:
            secure = self._origin is not None and self._origin[0] == "https"
            add_hint(error, failed_start_hint(self._first_bytes, secure=secure, http2=True))

    def accepting_streams(self) -> HyperError | None:
        """Why no new stream may be opened on this connection, or ``None``."""
        if self.fatal is not None:
            return self.fatal
        if self.goaway is not None:
            # RFC 9113 section 6.8: after a GOAWAY, graceful or not, we open no
            # new stream here; the next request needs a new connection.
            code, last, data = self.goaway
            return ConnectionTerminated(
                f"server sent GOAWAY ({error_name(code)}); a new connection is needed",
                error_code=code,
                last_stream_id=last,
                retryable=True,
                additional_data=data,
            )
        if self.closed:
            # Our own GOAWAY, or the socket gone: nothing new goes out here.
            return ConnectionTerminated("connection is closing", retryable=True)
        if self.ids_exhausted:
            # Section 5.1.1: client stream ids are never reused.
            return ConnectionTerminated(
                "stream ids of this connection are used up; a new connection is needed", retryable=True
            )
        return None

    def stream_failure(self, stream: StreamState) -> HyperError | None:
        """The error a waiter on ``stream`` gets now, or ``None`` if it may go on."""
        if stream.error is not None:
            return stream.error  # the stream's own failure comes first
        if stream.complete:
            return None  # whole: a later connection failure does not take it back
        if self.goaway is not None:
            code, last, data = self.goaway
            if stream.stream_id > last:
                # RFC 9113 section 6.8: streams above last_stream_id were not
                # processed, so retrying them elsewhere is safe.
                return ConnectionTerminated(
                    f"server sent GOAWAY ({error_name(code)}) before processing stream "
                    f"{stream.stream_id}; it is safe to retry",
                    error_code=code,
                    last_stream_id=last,
                    retryable=True,
                    additional_data=data,
                )
            if code != 0:
                # An error GOAWAY: streams it covered may be cut off mid-way.
                return ConnectionTerminated(
                    f"server ended the connection with GOAWAY ({error_name(code)})"
                    + (f": {data.decode('utf-8', 'replace')}" if data else ""),
                    error_code=code,
                    last_stream_id=last,
                    retryable=False,
                    additional_data=data,
                )
        return self.fatal

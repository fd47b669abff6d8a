"""Flow-control window managers: when to give receive window back to the server.

hyper credits window back only as the application *consumes* body bytes, so a
slow reader slows the server down (back-pressure) and buffered data stays
bounded by the window. A manager decides how much to credit and when: crediting
in batches saves a WINDOW_UPDATE frame (and often a socket write) per DATA
frame.

Pass a subclass of :class:`BaseFlowControlManager` as
``HTTP20Connection(window_manager=...)``; one instance manages the connection
window and one each stream window.
"""

from __future__ import annotations

#: The largest window HTTP/2 allows (RFC 9113 section 6.9.1).
MAX_WINDOW_SIZE = 2**31 - 1


class BaseFlowControlManager:
    """Tracks one receive window and decides on WINDOW_UPDATE increments.

    Subclasses implement :meth:`increase_window_size`. ``window_size`` is how
    much the server may still send; ``initial_window_size`` is the size the
    window is restored to.
    """

    def __init__(self, initial_window_size: int, document_size: int | None = None) -> None:
        if not 0 < initial_window_size <= MAX_WINDOW_SIZE:
            raise ValueError(f"window size must be in 1..2**31-1, not {initial_window_size}")
        self.initial_window_size = initial_window_size
        self.window_size = initial_window_size
        #: Bytes consumed by the application and not yet credited back.
        self.unacknowledged = 0
        #: The body size when known (``content-length``), as a hint.
        self.document_size = document_size

    def increase_window_size(self, consumed: int) -> int:
        """Return how many bytes to credit back now (0 for none).

        Called each time the application consumes data, with the total of
        consumed bytes not yet credited. It must not return more than that.
        """
        raise NotImplementedError

    def blocked(self) -> int:
        """Called when the window reached zero; return an increment to unblock."""
        return self.unacknowledged

    # Called by the protocol core; not for subclasses to override.
    def _data_received(self, size: int) -> None:
        self.window_size -= size

    def _data_consumed(self, size: int) -> int:
        self.unacknowledged += size
        if self.window_size <= 0:
            increment = self.blocked()
        else:
            increment = self.increase_window_size(self.unacknowledged)
        increment = max(0, min(increment, self.unacknowledged, MAX_WINDOW_SIZE - self.window_size))
        self.unacknowledged -= increment
        self.window_size += increment
        return increment


class FlowControlManager(BaseFlowControlManager):
    """The default: credit back in batches, sooner as the open window shrinks.

    With the large windows hyper advertises, that is one WINDOW_UPDATE per
    several megabytes instead of one per DATA frame. Looking at what is left
    open (not only at what was consumed) matters when part of the window is
    held by data nobody has read yet: reads must then reopen it in smaller
    steps, or the other streams would starve.
    """

    def increase_window_size(self, consumed: int) -> int:
        """Credit everything consumed, or nothing yet.

        Half a window consumed always earns credit; a sixteenth does once the
        open window is down to a quarter; anything does once it is down to a
        sixteenth, so the window can never stay shut while data is read.
        """
        initial = self.initial_window_size
        step = max(initial // 16, 1)
        if (
            consumed >= initial // 2
            or (self.window_size <= initial // 4 and consumed >= step)
            or self.window_size <= step
        ):
            return consumed
        return 0


class EagerFlowControlManager(BaseFlowControlManager):
    """Credit every consumed byte at once: lowest latency, most WINDOW_UPDATEs."""

    def increase_window_size(self, consumed: int) -> int:
        """Credit everything consumed."""
        return consumed

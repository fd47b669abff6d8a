"""Connection flow-control credit: how much receive window to give back, and when.

RFC 9113 section 6.9: the server may send only as much DATA as we have
credited, per stream and for the connection as a whole. Per-stream credit is
the window manager's call (:mod:`hyper.http20.window`). For the connection
this module adds one policy on top: while little is buffered, every byte is
credited back as it arrives (the window stays wide open); once more than
``max_buffered`` bytes wait unread, only as much as the application frees
is credited, so memory stays bounded, yet reading *any* stream reopens the
window for all the others. Padding and data nobody will read are freed at
once.

Sans-I/O and lock-free: :meth:`ConnectionCredit.release` returns the
WINDOW_UPDATE increment and the core sends it; the core calls in here under
the session's state lock.
"""

from __future__ import annotations

from .window import BaseFlowControlManager

#: HTTP/2's initial window, before any WINDOW_UPDATE or SETTINGS (RFC 9113 section 6.9.2).
INITIAL_WINDOW = 65535


class ConnectionCredit:
    """The connection-level receive window, the bytes buffered, and the crediting policy.

    :param manager: the window manager class deciding when credit is returned.
    :param size: the connection window we open up to.
    :param max_buffered: unread bytes above which credit follows reading only.
    """

    def __init__(self, manager: type[BaseFlowControlManager], size: int, max_buffered: int) -> None:
        self._manager = manager
        self.size = size
        self.max_buffered = max_buffered
        #: The window manager, once the connection window is open.
        self.window: BaseFlowControlManager | None = None
        #: Bytes received over all streams and not yet consumed.
        self.total_buffered = 0
        #: Credit not yet handed to the window manager because too much is
        #: buffered; released as the application reads.
        self.withheld = 0
        # Credit gathered during one batch of received frames; -1 outside one.
        self._batch_received = self._batch_freed = -1

    def open(self) -> int:
        """Start the window manager; return the WINDOW_UPDATE that opens the window past 65535."""
        self.window = self._manager(self.size)
        return max(0, self.size - INITIAL_WINDOW)

    @property
    def over_budget(self) -> bool:
        """More than ``max_buffered`` bytes wait unread."""
        return self.total_buffered > self.max_buffered

    def received(self, size: int, freed: int) -> bool:
        """``size`` flow-controlled bytes (padding included) arrived, ``freed`` of them freed at once.

        Counts them against the window and adds them to the open batch;
        False when no batch is open (the caller releases credit now). One
        call per DATA frame, so it does both.
        """
        window = self.window
        if window is not None:
            # The manager's _data_received (not for subclasses to override), written out.
            window.window_size -= size
        if self._batch_received < 0:
            return False
        self._batch_received += size
        self._batch_freed += freed
        return True

    def credited_by_h2(self, amount: int) -> None:
        """h2 gave ``amount`` of connection window back on its own (DATA on a closed stream).

        Only where h2's own rule for such DATA stays (the public-API mode):
        the server's window is wider by ``amount``, so the manager's is too,
        and that much of the credit still waiting here is spent: taken from
        what the manager holds, then what is withheld, then this batch's.
        """
        window = self.window
        if window is None or amount <= 0:
            return
        window.window_size += amount
        taken = min(amount, window.unacknowledged)
        window.unacknowledged -= taken
        amount -= taken
        taken = min(amount, self.withheld)
        self.withheld -= taken
        amount -= taken
        if self._batch_received > 0:
            # Under the read budget every byte received in the batch is owed
            # (credited when the batch ends), freed or not: h2's credit is
            # taken from all of it, and from the freed count as far as it
            # goes (the bytes h2 credited may be another stream's, unread).
            taken = min(amount, self._batch_received)
            self._batch_received -= taken
            self._batch_freed -= min(taken, self._batch_freed)

    def begin_batch(self) -> None:
        """Frames are about to be processed: gather their credit, decide once at the end."""
        self._batch_received = self._batch_freed = 0

    def end_batch(self) -> tuple[int, int]:
        """Stop gathering; return the (received, freed) bytes gathered."""
        gathered = self._batch_received, self._batch_freed
        self._batch_received = self._batch_freed = -1
        return gathered

    def release(self, received: int, freed: int) -> int:
        """The connection credit to return now (0: none).

        ``received`` bytes just arrived; ``freed`` bytes just left our
        buffers (read by the application, or dropped).
        """
        self.withheld += received
        if self.total_buffered <= self.max_buffered:
            amount = self.withheld
        else:
            amount = min(freed, self.withheld)
        window = self.window
        if window is None:
            return 0
        if not amount and (window.window_size > 0 or not window.unacknowledged):
            return 0
        # With amount 0 we get here only when the window is shut while the
        # manager still holds credit it was waiting to batch: asking it now
        # (its blocked() hook) is the only way that credit ever leaves.
        self.withheld -= amount
        return window._data_consumed(amount)

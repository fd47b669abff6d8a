"""The download progress bar, drawn on stderr when stderr is a terminal."""

from __future__ import annotations

import time
from typing import IO


class Progress:
    """A one-line progress bar for downloads, redrawn in place on a terminal.

    :param stream: where to draw (the CLI passes stderr, and only when it is a terminal).
    :param total: the expected number of bytes, or ``None`` when unknown.
    :param already: bytes already there (a resumed download).
    """

    #: Seconds between two redraws: often enough to look alive, rarely enough to cost nothing.
    INTERVAL = 0.1
    WIDTH = 30

    def __init__(self, stream: IO[str], total: int | None, already: int = 0) -> None:
        self._stream = stream
        self._total = total
        self._done = already
        self._drawn_at: float | None = None

    def update(self, count: int) -> None:
        """Count ``count`` more bytes; redraw if the last drawing is old enough."""
        self._done += count
        now = time.monotonic()
        if self._drawn_at is None or now - self._drawn_at >= self.INTERVAL:
            self._drawn_at = now
            self._draw()

    def finish(self) -> None:
        """Draw the final state and end the line."""
        self._draw()
        self._stream.write("\n")
        self._stream.flush()

    def line(self) -> str:
        """The text of the bar as it stands."""
        done = size_text(self._done)
        if not self._total:
            return f"{done} received"
        fraction = min(self._done / self._total, 1.0)
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        return f"[{bar}] {fraction:4.0%} {done} / {size_text(self._total)}"

    def _draw(self) -> None:
        # \r returns to the start of the line; \x1b[K clears what a longer line left.
        self._stream.write("\r" + self.line() + "\x1b[K")
        self._stream.flush()


def size_text(count: int) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ``64.0 MiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover

"""``batch()`` on an HTTP/1.1 connection: accepted, and nothing to do.

Code written for :meth:`hyper.HTTP20Connection.batch` runs unchanged on
:class:`~hyper.HTTP11Connection` (whose calls are those of the HTTP/2
class). HTTP/1.1 sends one request at a time on a connection, each written
when ``request()`` returns, so there is nothing to hold back and send
together.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class NoBatching:
    """The no-op ``batch()`` of HTTP11Connection."""

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Accepted for code written for HTTP/2; does nothing over HTTP/1.1.

        Each request inside the block is written when ``request()``
        returns, as outside it (HTTP/1.1 has no multiplexing to batch).
        """
        yield

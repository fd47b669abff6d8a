"""A core and the in-memory h2 server it talks to, for tests that run two cores side by side.

tests/test_open_stream_count.py and tests/test_review6_core.py drive two
cores through the same steps (one keeps hyper's cached count of open streams,
the reference asks h2's walk before every question) and compare what each
sent and holds. The reference count and the client-server pair live here once;
each test module adds its own steps and its own way of answering.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events

from hyper.http20.core import H2Core
from hyper.http20.h2_internals_count import OpenStreamCount


class AlwaysWalks(OpenStreamCount):
    """The reference: h2's walk before every question, nothing kept."""

    __slots__ = ()

    def get(self) -> int:
        self.forget()
        return super().get()


class CoreAndServer:
    """One core and the h2 server it talks to, in memory: no socket, no thread.

    ``reference`` gives the core :class:`AlwaysWalks` for its count;
    ``server_options`` go to the server's :class:`h2.config.H2Configuration`.
    Both sides have queued their prefaces; nothing has been exchanged yet.
    """

    def __init__(self, core: H2Core, reference: bool, **server_options: Any) -> None:
        self.core = core
        if reference:
            core._open_count = AlwaysWalks(core._h2, core._count_open_streams)
        self.server = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None, **server_options)
        )
        self.server.initiate_connection()
        core.initiate()
        #: Every take of the client's output, in order (compared between the two cores).
        self.sent: list[bytes] = []
        #: Request streams the server saw, in order.
        self.pending: list[int] = []
        #: Streams the server sent final response headers on, and ended.
        self.answered: set[int] = set()
        self.ended: set[int] = set()

    def send_to_server(self) -> None:
        """The client's queued bytes to the server; remember them and the requests the server saw."""
        out = self.core.data_to_send()
        self.sent.append(out)
        for event in self.server_receives(out):
            if isinstance(event, h2.events.RequestReceived):
                self.pending.append(event.stream_id)

    def server_receives(self, data: bytes) -> list[h2.events.Event]:
        """What the server makes of the client's bytes (a subclass may let it stop listening)."""
        return self.server.receive_data(data)

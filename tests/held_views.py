"""What the tests of DATA held as views of the receive buffer share.

tests/test_received_views.py and tests/test_review8_views.py both run
downloads through a shrunken receive buffer (so that it wraps many times
while views of it are still held), counting the views the session copies
out, along the three frame paths; and both read real servers' ``big.bin``
over TLS. Those set-ups live here once.
"""

from __future__ import annotations

import pytest

import hyper.tls
from hyper import HTTP20Connection
from hyper.http20 import h2_internals, session_wire
from hyper.http20.core_bodies import CoreBodies
from hyper.http20.h2_adapters import FrameSplitter
from tests.fast_paths import force_fast_paths_on
from tests.servers import ServerInfo


def shrink_receive_buffer(patch: pytest.MonkeyPatch, size: int, min_fill_space: int) -> list[int]:
    """A ``size``-byte receive buffer, started again once less than ``min_fill_space`` is left.

    Returns a list that gets, per copy-out (``detach_views``), how many views
    of the buffer were still held then.
    """
    patch.setattr(session_wire, "RECV_BUFFER_SIZE", size)
    patch.setattr(session_wire, "MIN_FILL_SPACE", min_fill_space)
    detached: list[int] = []
    original = CoreBodies.detach_views

    def counting_detach(self: CoreBodies, buffer: bytearray) -> None:
        detached.append(
            sum(
                type(piece) is memoryview and piece.obj is buffer
                for stream in self.streams.values()
                for piece in stream.data
            )
        )
        original(self, buffer)

    patch.setattr(CoreBodies, "detach_views", counting_detach)
    return detached


@pytest.fixture(params=["fast", "h2", "public"])
def frame_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The splitter's fast path (views), every frame through h2 (bytes), and the public-API mode (bytes).

    "fast" is forced on even under ``HYPER_FAST_PATHS=0`` (as in
    tests/fast_paths.py); "public" is what ``HYPER_FAST_PATHS=0`` gives.
    """
    if request.param == "fast":
        force_fast_paths_on(monkeypatch)
    elif request.param == "h2":
        monkeypatch.setattr(FrameSplitter, "fast_path", False)
    else:
        monkeypatch.setattr(h2_internals, "_enabled", False)
        monkeypatch.setattr(h2_internals, "_problem", "turned off by the test")
    return str(request.param)


def tls_connection(info: ServerInfo) -> HTTP20Connection:
    """An HTTP/2 connection over TLS (the test CA) to a real server, 20 s bound on each wait."""
    context = hyper.tls.init_context(cert_path=info.ca_file)
    return HTTP20Connection(info.host, info.port, secure=True, ssl_context=context, timeout=20)

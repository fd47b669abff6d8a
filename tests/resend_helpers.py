"""What the resend tests share: the wait bound, both fast-path modes, a cleartext connection.

Importing ``fast_paths_both_ways`` into a test module makes every test there
run twice: with the fast paths on and with ``HYPER_FAST_PATHS=0``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import h2.errors
import h2.events
import pytest

from hyper import HTTP20Connection
from tests.scripted import ScriptedServer

WAIT = 10.0  # bounds every wait; nothing is timed
REFUSED = h2.errors.ErrorCodes.REFUSED_STREAM


@pytest.fixture(params=[True, False], ids=["fast paths", "HYPER_FAST_PATHS=0"], autouse=True)
def fast_paths_both_ways(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not request.param:
        monkeypatch.setenv("HYPER_FAST_PATHS", "0")
    yield


def connect(server: ScriptedServer, **options: Any) -> HTTP20Connection:
    """A cleartext connection (prior knowledge) to a scripted server."""
    return HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=WAIT, **options)


def path_of(event: h2.events.RequestReceived) -> bytes:
    return dict(event.headers)[b":path"]

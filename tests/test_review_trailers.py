"""Review of the lazy trailers map (6c9f7d9): a reference taken while the body ends must see the trailers.

``HTTP20Response.trailers`` made its map on first use, from whichever thread
asked first: an application thread asking for ``trailers`` while the reading
thread took the end of the body could each make a map, and the later
assignment won. With the application's map assigned last, the trailers the
reader had put in the other one were gone for good (before, the map was
made with the response, once).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import hyper.http20.response as response_module
from hyper.headers import HTTPHeaderMap
from tests.test_api_fast_paths import response

_WAIT = 10.0  # bounds every wait; the test orders events, it does not time them


def test_trailers_asked_for_while_the_body_ends_are_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    asker_inside = threading.Event()  # the asking thread is making a map
    reader_done = threading.Event()  # the body was read to its end meanwhile
    asker_name = "trailers-asker"

    class PausingMap(HTTPHeaderMap):
        """Pauses the asking thread inside the map's construction, until the reader is done."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if threading.current_thread().name == asker_name:
                asker_inside.set()
                reader_done.wait(_WAIT)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(response_module, "HTTPHeaderMap", PausingMap)
    resp, _ = response([(b"body", [(b"grpc-status", b"0")])])
    taken: list[HTTPHeaderMap] = []

    def ask() -> None:
        taken.append(resp.trailers)
        asker_inside.set()  # also when no map had to be made

    asker = threading.Thread(target=ask, name=asker_name)
    asker.start()
    assert asker_inside.wait(_WAIT)
    assert resp.read() == b"body"  # the reader takes the end, and the trailers
    reader_done.set()
    asker.join(_WAIT)
    assert not asker.is_alive()
    assert resp.trailers.get(b"grpc-status") == [b"0"]
    assert taken[0] is resp.trailers

"""The core's receive loop: DATA that ends its stream is handled with its end, once, both ways.

h2 lists a ``StreamEnded`` right after the ``DataReceived`` that carried
END_STREAM (and attaches it as ``stream_ended``); the core's loop handles
the end with the DATA and skips that event. Here the same exchanges run
with the splitter's fast path on and off (h2's generic frame path, whose
events are h2's own): the end is applied once, the response is whole,
and both cores end in the same state. The header list the stream keeps is
the event's own list (not copied) where it is a plain list.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from hyper.http20 import h2_internals
from hyper.http20.core import H2Core
from hyper.http20.streams import ResponseEvent, ResponseState, StreamState
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark

pytestmark = pytest.mark.usefixtures("fast_paths_on")

REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/")]
FIELDS = [(b":status", b"200"), (b"content-length", b"6"), (b"server", b"test")]


def _count_ends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The stream ids each END_STREAM was applied to, in order (every stream state, from now on)."""
    ends: list[int] = []
    real = StreamState.response_event

    def counting(self: StreamState, event: ResponseEvent) -> None:
        if event is ResponseEvent.END_STREAM:
            ends.append(self.stream_id)
        real(self, event)

    monkeypatch.setattr(StreamState, "response_event", counting)
    return ends


class Exchange:
    """One core and the in-memory h2 server that answers it."""

    def __init__(self, fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
        self.core = H2Core()
        monkeypatch.setattr(self.core._frames, "fast_path", fast)
        self.server = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.server.initiate_connection()
        self.core.initiate()
        self.flush()
        self.flush()
        self.ends = _count_ends(monkeypatch)

    def flush(self) -> None:
        self.server.receive_data(self.core.data_to_send())
        self.core.receive(self.server.data_to_send())

    def request(self) -> int:
        stream_id = self.core.open_stream(REQUEST, True)
        self.server.receive_data(self.core.data_to_send())
        return stream_id

    def answer(self, stream_id: int, pieces: list[bytes], end_with_data: bool) -> None:
        self.server.send_headers(stream_id, FIELDS)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            self.server.send_data(stream_id, piece, end_stream=last and end_with_data)
        if not end_with_data:
            self.server.end_stream(stream_id)
        self.core.receive(self.server.data_to_send())


def _state(core: H2Core) -> list[Any]:
    return [
        (s.stream_id, s.response, s.headers, list(s.data), s.buffered, s.error) for s in core.streams.values()
    ]


@pytest.mark.parametrize("end_with_data", [True, False], ids=["END_STREAM on DATA", "empty DATA ends"])
@pytest.mark.parametrize("pieces", [[b"abcdef"], [b"abc", b"def"]], ids=["one frame", "two frames"])
def test_a_response_ends_once_both_ways(
    end_with_data: bool, pieces: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    sides = [Exchange(fast, monkeypatch) for fast in (True, False)]
    ends = sides[0].ends
    for side in sides:
        ends.clear()
        stream_id = side.request()
        side.answer(stream_id, pieces, end_with_data)
        stream = side.core.streams[stream_id]
        assert stream.response is ResponseState.COMPLETE
        assert ends == [stream_id]  # the end applied once
        assert side.core.take_data(stream_id) == b"abcdef"
    assert _state(sides[0].core) == _state(sides[1].core)


def test_many_responses_in_one_read_end_once_each(monkeypatch: pytest.MonkeyPatch) -> None:
    for fast in (True, False):
        side = Exchange(fast, monkeypatch)
        side.ends.clear()
        ids = [side.request() for _ in range(10)]
        for stream_id in ids:
            side.server.send_headers(stream_id, FIELDS)
            side.server.send_data(stream_id, b"abcdef", end_stream=True)
        side.core.receive(side.server.data_to_send())  # all ten in one read
        assert side.ends == ids
        assert all(side.core.streams[i].complete for i in ids)


def _spy_headers(monkeypatch: pytest.MonkeyPatch, change: Any = None) -> list[Any]:
    """The header lists of the response events the fast path makes (after ``change``, if given)."""
    seen: list[Any] = []
    real = h2_internals.receive_plain_headers

    def spying(*args: Any) -> Any:
        events = real(*args)
        if type(events[0]) is tuple:
            # A RESPONSE_FIELDS record (hyper.http20.receive_records): its fields are third.
            if change is not None:
                events[0] = (*events[0][:2], change(events[0][2]))
            seen.append(events[0][2])
            return events
        if change is not None:
            events[0].headers = change(events[0].headers)
        seen.append(events[0].headers)
        return events

    monkeypatch.setattr(h2_internals, "receive_plain_headers", spying)
    return seen


def test_the_stream_keeps_the_events_own_header_list(monkeypatch: pytest.MonkeyPatch) -> None:
    side = Exchange(True, monkeypatch)
    seen = _spy_headers(monkeypatch)
    stream_id = side.request()
    side.answer(stream_id, [b"abcdef"], True)
    headers = side.core.streams[stream_id].headers
    assert headers == FIELDS
    assert type(seen[0]) is list and headers is seen[0]  # no copy of a list nobody else holds


def test_a_header_tuple_is_copied_into_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Header blocks that are not a plain list (an h2 that hands a tuple) are copied."""
    side = Exchange(True, monkeypatch)
    seen = _spy_headers(monkeypatch, tuple)
    stream_id = side.request()
    side.answer(stream_id, [b"abcdef"], True)
    headers = side.core.streams[stream_id].headers
    assert type(seen[0]) is tuple and type(headers) is list and headers == FIELDS

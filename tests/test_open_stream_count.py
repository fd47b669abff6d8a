"""The core's cached count of open streams is h2's walk, step for step.

:class:`~hyper.http20.h2_internals_count.OpenStreamCount` answers "how many
of our streams count against the server's SETTINGS_MAX_CONCURRENT_STREAMS"
(RFC 9113 section 5.1.2) from one walk of h2's streams plus the fast opens
since, instead of walking at every request. Here two cores take the same
random mix of steps (requests opened with and without the session's
``slot_checked``, responses whole or in parts, server and client resets,
request bodies ended, concurrency limits moved by the server's SETTINGS):
one caches, the other walks h2's streams before every question. After every
step both agree on the count, send the same bytes, and h2's tables of open
and closed streams (which the walk cleans up as it goes) are the same.
"""

from __future__ import annotations

import random
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from hyper.exceptions import InvalidHeader
from hyper.http20.core import H2Core
from tests.core_pairs import AlwaysWalks, CoreAndServer
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used below

REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/")]
POST = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/up")]


class Side(CoreAndServer):
    """One core and the h2 server it talks to, in memory."""

    def __init__(self, reference: bool) -> None:
        super().__init__(H2Core(), reference)
        self.flush()
        self.flush()

    def flush(self) -> None:
        """Client bytes to the server and the server's answer back; remember what the client sent."""
        self.send_to_server()
        self.core.receive(self.server.data_to_send())


def _step(side: Side, action: str, choice: int) -> Any:
    """One step on one side; returns what the caller sees (for comparing both sides)."""
    core, server = side.core, side.server
    if action == "open":
        if not core.can_open_stream():
            return "full"
        return core.open_stream(REQUEST, True, slot_checked=True)
    if action == "open-unchecked":  # as bench.layers does: h2's own check decides
        try:
            return core.open_stream(REQUEST, True)
        except InvalidHeader:
            return "refused"
    if action == "open-upload":
        if not core.can_open_stream():
            return "full"
        return core.open_stream(POST, False, slot_checked=True)
    live = [sid for sid in side.pending if sid in server.streams and not server.streams[sid].closed]
    if not live:
        return None
    stream_id = live[choice % len(live)]
    answered = stream_id in side.answered
    if action in ("respond-whole", "respond-headers", "respond-data-end") and stream_id in side.ended:
        return None  # the server's side is over: it sends nothing more
    if action == "respond-whole" and not answered:
        server.send_headers(stream_id, [(b":status", b"200")], end_stream=True)
        side.ended.add(stream_id)
    elif action == "respond-headers" and not answered:
        server.send_headers(stream_id, [(b":status", b"200")])
        side.answered.add(stream_id)
    elif action in ("respond-data-end", "respond-whole"):
        if not answered:
            server.send_headers(stream_id, [(b":status", b"200")])
            side.answered.add(stream_id)
        server.send_data(stream_id, b"x" * 10, end_stream=True)
        side.ended.add(stream_id)
    elif action == "server-reset":
        server.reset_stream(stream_id)
    elif action == "client-discard":
        core.discard_stream(stream_id)
    elif action == "end-upload":
        core.end_body(stream_id)
    elif action == "limit":
        server.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1 + choice % 12})
    return stream_id


ACTIONS = (
    ["open"] * 6
    + ["open-unchecked", "open-upload"]
    + ["respond-whole"] * 3
    + ["respond-headers", "respond-data-end", "server-reset", "client-discard", "end-upload", "limit"]
)


def _same_h2_state(one: H2Core, two: H2Core) -> None:
    a, b = one._h2, two._h2
    assert sorted(a.streams) == sorted(b.streams)
    assert dict(a._closed_streams) == dict(b._closed_streams)
    for stream_id, stream in a.streams.items():
        assert stream.state_machine.state == b.streams[stream_id].state_machine.state


@pytest.mark.usefixtures("fast_paths_on")
@pytest.mark.parametrize("seed", range(40))
def test_the_cached_count_is_h2s_walk_after_every_step(seed: int) -> None:
    rng = random.Random(seed)
    cached, reference = Side(reference=False), Side(reference=True)
    assert cached.core._open_count.cached and not isinstance(cached.core._open_count, AlwaysWalks)
    for _ in range(400):
        action, choice = rng.choice(ACTIONS), rng.randrange(1000)
        outcome = [_step(side, action, choice) for side in (cached, reference)]
        assert outcome[0] == outcome[1], action
        # Several opens in a row between flushes: the burst the cache is for.
        if rng.random() < 0.6:
            for side in (cached, reference):
                side.flush()
        counts = [side.core._open_count.get() for side in (cached, reference)]
        assert counts[0] == counts[1], action
        _same_h2_state(cached.core, reference.core)
    for side in (cached, reference):
        side.flush()
    assert cached.sent == reference.sent  # every byte the two clients sent


@pytest.mark.usefixtures("fast_paths_on")
def test_a_burst_walks_h2s_streams_once(monkeypatch: pytest.MonkeyPatch) -> None:
    core = H2Core()
    core.initiate()
    walks = []
    real = core._open_count._walk
    assert real is not None

    def counting(conn: h2.connection.H2Connection) -> int:
        walks.append(1)
        return real(conn)

    monkeypatch.setattr(core._open_count, "_walk", counting)
    for _ in range(50):
        assert core.can_open_stream()
        core.open_stream(REQUEST, True, slot_checked=True)
    assert len(walks) == 1
    assert core._open_count.get() == core._h2.open_outbound_streams == 50
    core.receive(b"")  # anything received: the next question walks again
    core.can_open_stream()
    assert len(walks) == 2


def test_without_the_fast_paths_h2s_own_count_is_asked_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from hyper.http20 import h2_internals

    monkeypatch.setattr(h2_internals, "_enabled", False)
    core = H2Core()
    core.initiate()
    assert not core._open_count.cached
    for _ in range(5):
        assert core.can_open_stream()
        core.open_stream(REQUEST, True, slot_checked=True)
    assert core._open_count.get() == core._h2.open_outbound_streams == 5

"""Stream WINDOW_UPDATEs through the core's frame splitter: the fenced step against h2's.

The splitter hands a WINDOW_UPDATE on a stream we upload on to
:func:`hyper.http20.h2_internals_data.receive_stream_window_update` (h2's
bookkeeping without its generic path) and to h2 whenever that declines.
tests/test_upload_window_updates.py proves the primitive alone; here two
cores take the same exchange through :meth:`H2Core.receive`, one with the
step, one with the step always declining (h2's own path), and must agree on
every send window, on what each sends back (RFC 9113 6.9.1: an overflow
resets the stream with FLOW_CONTROL_ERROR), and on each stream's failure.
"""

from __future__ import annotations

import random
from typing import Any

import h2.connection
import pytest

from hyper.http20 import h2_adapters, h2_internals
from hyper.http20.core import H2Core
from tests.core_pairs import CoreAndServer

POST = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/up")]
LARGEST_WINDOW = 2**31 - 1

#: With HYPER_FAST_PATHS=0 frames go through h2's public API, no splitter.
pytestmark = pytest.mark.skipif(not h2_internals.fast_paths_enabled(), reason="needs the splitter")


def window_update(stream_id: int, increment: int) -> bytes:
    """A raw WINDOW_UPDATE frame (the reserved bit may be set: RFC 9113 6.9 says ignore it)."""
    return (4).to_bytes(3, "big") + b"\x08\x00" + stream_id.to_bytes(4, "big") + increment.to_bytes(4, "big")


def uploads(streams: int) -> tuple[CoreAndServer, list[int]]:
    """A core past the handshake with ``streams`` uploads open (HEADERS sent, no END_STREAM)."""
    pair = CoreAndServer(H2Core(), reference=False)
    pair.send_to_server()
    pair.core.receive(pair.server.data_to_send())
    ids = [pair.core.open_stream(list(POST), end_stream=False) for _ in range(streams)]
    pair.send_to_server()
    pair.core.receive(pair.server.data_to_send())
    pair.send_to_server()  # the SETTINGS ACK
    return pair, ids


def windows(core: H2Core, ids: list[int]) -> list[int | None]:
    h2conn: h2.connection.H2Connection = core._h2
    return [h2conn.streams[i].outbound_flow_control_window if i in h2conn.streams else None for i in ids]


def failures(core: H2Core, ids: list[int]) -> list[str | None]:
    found = []
    for stream_id in ids:
        stream = core.streams.get(stream_id)
        error = None if stream is None else core.stream_failure(stream)
        found.append(None if error is None else f"{type(error).__name__}: {error}")
    return found


def run(frames: list[bytes], streams: int, fenced: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """Feed ``frames`` (one receive each) and return what the core then holds and sends."""
    calls = []
    real = h2_adapters.receive_stream_window_update

    def step(conn: Any, stream_id: int, increment: int) -> Any:
        calls.append(stream_id)
        return real(conn, stream_id, increment) if fenced else None

    monkeypatch.setattr(h2_adapters, "receive_stream_window_update", step)
    pair, ids = uploads(streams)
    seen = []
    for frame in frames:
        pair.core.receive(frame)
        seen.append((windows(pair.core, ids), pair.core.data_to_send()))
    monkeypatch.undo()
    return calls, seen, failures(pair.core, ids)


@pytest.mark.parametrize("seed", range(25))
def test_random_window_updates_agree_with_h2(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    streams = rng.randint(1, 3)
    frames = []
    asks = 0  # frames the splitter offers the step: reserved bit clear (see h2_adapters._frame)
    for _ in range(rng.randint(1, 12)):
        stream_id = 1 + 2 * rng.randrange(streams + 1)  # sometimes a stream never opened
        increment = rng.choice([1, 1024, 65535, 2**30, LARGEST_WINDOW, rng.randint(1, LARGEST_WINDOW)])
        repeat = rng.randint(1, 3)
        if rng.random() < 0.2:
            increment |= 0x80000000  # the reserved bit: h2 refuses it, a connection error
        else:
            asks += repeat
        frames.append(window_update(stream_id, increment) * repeat)
    calls, fenced, fenced_failures = run(frames, streams, True, monkeypatch)
    _, declined, declined_failures = run(frames, streams, False, monkeypatch)
    assert fenced == declined
    assert fenced_failures == declined_failures
    if asks and not frames[0][9] & 0x80:
        # The first frame is always read (later ones may not be, after a
        # connection error), and a clear reserved bit means it was offered.
        assert calls, "the splitter never offered the fenced step a frame"


def test_an_upload_credited_many_times_uses_the_fenced_step(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [window_update(1, 16384)] * 50
    calls, fenced, _ = run(frames, 1, True, monkeypatch)
    assert len(calls) == 50
    assert fenced[-1][0] == [65535 + 50 * 16384]
    assert all(sent == b"" for _, sent in fenced)  # a credit needs no answer


def test_an_overflowing_credit_resets_only_that_stream_as_h2_does(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [window_update(1, LARGEST_WINDOW), window_update(3, 1000)]
    _, fenced, fenced_failures = run(frames, 2, True, monkeypatch)
    _, declined, declined_failures = run(frames, 2, False, monkeypatch)
    assert fenced == declined
    assert fenced_failures == declined_failures
    assert fenced_failures[0] is not None and fenced_failures[1] is None
    assert fenced[-1][0][1] == 65535 + 1000

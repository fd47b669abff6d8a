"""The core's cheap answers to the session's per-request questions, against what they stand for.

The session asks the core, per request, whether a stream fits
(:meth:`~hyper.http20.core.H2Core.can_open_stream`, on the plain attribute
``max_concurrent_streams``), how much body is buffered (the plain
``credit.total_buffered``, twice per read) and whether anything is queued to send
(:meth:`~hyper.http20.core.H2Core.has_output`, before the flush after each
response). Each answer is kept or looked up cheaply; here each is compared,
after every step of random sequences (requests, uploads, resets, server
responses, pushes, SETTINGS changes, GOAWAY, bytes cut across reads), with
what it stands for:

* ``max_concurrent_streams``: h2's SETTINGS_MAX_CONCURRENT_STREAMS in force
  (RFC 9113 section 6.5.2; h2 applies the server's SETTINGS on receipt),
  at most 100 before the server's SETTINGS arrive;
* ``credit.total_buffered``: the sum of every stream's buffered body bytes;
* ``has_output()``: whether taking the core's output gives any byte (h2's
  own ACKs, RST_STREAM and WINDOW_UPDATE included); with the fast paths off
  it always says "maybe" (True).

Both with the fast paths on and off (``HYPER_FAST_PATHS=0``), and with a
small ``max_buffered`` so that the credit policy's over-budget branch and
the shedding of untaken pushes run too.
"""

from __future__ import annotations

import random

import h2.errors
import h2.events
import h2.settings
import pytest

from hyper.http20 import h2_internals
from hyper.http20.core import ASSUMED_MAX_CONCURRENT_STREAMS, H2Core
from hyper.limits import Limits
from tests.core_pairs import CoreAndServer
from tests.fast_paths import force_fast_paths_on
from tests.test_review6_core import ACTIONS, GET, Side, _step


def expected_limit(core: H2Core) -> int:
    """What the core's old property computed from h2's remote settings each time."""
    limit = core._h2.remote_settings.max_concurrent_streams
    return limit if core.settings_received else min(limit, ASSUMED_MAX_CONCURRENT_STREAMS)


def buffered_sum(core: H2Core) -> int:
    """Body bytes held over all streams, counted from the streams themselves."""
    return sum(stream.buffered for stream in core.streams.values())


class Checked(Side):
    """A :class:`Side` whose core's answers are checked after every step and every read.

    The output is taken at every check (to compare ``has_output()`` with
    what there was) and kept to go to the server at the next flush, so the
    exchange itself is the one an unchecked side would have.
    """

    def __init__(self, fast: bool, max_buffered: int | None) -> None:
        self.fast = fast
        self.stash = b""
        self.checks = 0
        core = H2Core(
            enable_push=True, origin=("https", "a.test", 443), limits=Limits(max_buffered=max_buffered)
        )
        CoreAndServer.__init__(self, core, False, validate_outbound_headers=False)
        self.pushed: list[int] = []
        self.server_broken = False
        self.injected = b""
        self.check()
        self.flush(0)
        self.flush(0)

    def check(self) -> None:
        core = self.core
        assert core.max_concurrent_streams == expected_limit(core)
        assert core.can_open_stream() == (core._open_count.get() < expected_limit(core))
        assert core.credit.total_buffered == core.total_buffered == buffered_sum(core)
        maybe = core.has_output()
        out = core.data_to_send()
        if self.fast:
            assert maybe == bool(out)
        else:
            assert maybe  # unknown without taking h2's output: always "maybe"
        self.stash += out
        self.checks += 1

    def send_to_server(self) -> None:
        out = self.stash + self.core.data_to_send()
        self.stash = b""
        self.sent.append(out)
        for event in self.server_receives(out):
            if isinstance(event, h2.events.RequestReceived):
                self.pending.append(event.stream_id)

    def flush(self, chunk: int) -> None:
        self.send_to_server()
        back = self.injected + self.server.data_to_send()
        self.injected = b""
        step = chunk or max(1, len(back))
        for start in range(0, len(back), step):
            self.core.receive(back[start : start + step])
            self.check()  # after every read: h2 may have applied SETTINGS or queued ACKs


#: Steps that take body bytes (the application reading), added to review6's.
READS = ["take", "take-some"]


def _take(side: Checked, action: str, choice: int) -> None:
    core = side.core
    held = [stream_id for stream_id, stream in core.streams.items() if stream.data]
    if not held:
        return
    stream_id = held[choice % len(held)]
    core.take_data(stream_id, None if action == "take" else 1 + choice % 17)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "public"])
@pytest.mark.parametrize("max_buffered", [None, 64], ids=["default-budget", "small-budget"])
@pytest.mark.parametrize("seed", range(12))
def test_answers_match_what_they_stand_for(
    seed: int, max_buffered: int | None, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fast:
        force_fast_paths_on(monkeypatch)
    else:
        monkeypatch.setattr(h2_internals, "_enabled", False)
    rng = random.Random(seed * 104729 + 17)
    side = Checked(fast, max_buffered)
    assert (side.core._peek_output is not None) == fast
    actions = ACTIONS + READS * 4 + ["limit"] * 2
    steps = 250
    goaway_at = rng.randrange(steps // 2, steps * 2)
    for index in range(steps):
        action, choice = rng.choice(actions), rng.randrange(1000)
        if index == goaway_at:
            action = "goaway"
        if action in READS:
            _take(side, action, choice)
        else:
            _step(side, action, choice)
        side.check()
        if rng.random() < 0.6:
            side.flush(rng.choice([0, 0, 1, 7, 9, 10, 50]))
    side.flush(0)
    assert side.checks > steps


def test_before_the_servers_settings_at_most_the_assumed_limit() -> None:
    core = H2Core()
    assert core.max_concurrent_streams == ASSUMED_MAX_CONCURRENT_STREAMS == expected_limit(core)
    assert core.credit.total_buffered == core.total_buffered == 0
    assert not core.has_output() or core._peek_output is None  # nothing queued before initiate()
    core.initiate()
    assert core.has_output()  # the preface
    core.data_to_send()
    assert not core.has_output() or core._peek_output is None


def _settings_frame(settings: dict[int, int]) -> bytes:
    payload = b"".join(code.to_bytes(2, "big") + value.to_bytes(4, "big") for code, value in settings.items())
    return len(payload).to_bytes(3, "big") + b"\x04\x00\x00\x00\x00\x00" + payload


PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"p" * 8
MAX_STREAMS = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "public"])
def test_settings_applied_after_a_failure_in_the_same_read(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first frame other than SETTINGS fails the connection; h2 still applied the SETTINGS after it."""
    if fast:
        force_fast_paths_on(monkeypatch)
    else:
        monkeypatch.setattr(h2_internals, "_enabled", False)
    core = H2Core()
    core.initiate()
    core.data_to_send()
    core.receive(PING + _settings_frame({MAX_STREAMS: 5}))
    assert core.fatal is not None  # RFC 9113 section 3.4: the server preface is SETTINGS
    assert core._h2.remote_settings.max_concurrent_streams == 5  # h2 went on with the read
    assert core.max_concurrent_streams == expected_limit(core) == 5


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "public"])
def test_settings_after_a_flood_in_the_same_read(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flood check stops the event loop; a SETTINGS later in that read still counts (h2 applied it)."""
    if fast:
        force_fast_paths_on(monkeypatch)
    else:
        monkeypatch.setattr(h2_internals, "_enabled", False)
    core = H2Core(limits=Limits(max_control_frames_per_second=3))
    core.initiate()
    core.data_to_send()
    core.receive(_settings_frame({MAX_STREAMS: 50}))
    assert core.max_concurrent_streams == 50
    core.receive(PING * 5 + _settings_frame({MAX_STREAMS: 2}))
    assert core.fatal is not None
    assert core._h2.remote_settings.max_concurrent_streams == 2
    assert core.max_concurrent_streams == expected_limit(core) == 2


def test_a_limit_lowered_to_zero_and_raised_again_is_followed() -> None:
    """RFC 9113 section 6.5.2: the server may change the limit at any time, 0 included."""
    side = Checked(fast=True, max_buffered=None)
    core = side.core
    for limit in (0, 3, 0, 2**31 - 1, 1):
        side.server.update_settings({MAX_STREAMS: limit})
        side.flush(0)
        side.flush(0)  # its ACK back to the server
        assert core.max_concurrent_streams == limit
        assert core.can_open_stream() == (core._open_count.get() < limit)
    assert core.can_open_stream()
    core.open_stream(GET, True, slot_checked=True)
    assert not core.can_open_stream()


def test_has_output_sees_what_h2_queues_by_itself() -> None:
    """ACKs of SETTINGS and PING, and our RST_STREAM, are queued inside h2: has_output sees them."""
    side = Checked(fast=True, max_buffered=None)
    core = side.core
    if core._peek_output is None:
        pytest.skip("the fast paths are off here: has_output always says maybe")
    side.stash += core.data_to_send()
    side.send_to_server()
    assert not core.has_output()
    core.receive(PING)  # h2 queues the PING ACK itself (RFC 9113 section 6.7)
    assert core.has_output()
    assert core.data_to_send().startswith(b"\x00\x00\x08\x06\x01")
    assert not core.has_output()
    stream_id = core.open_stream(GET, True, slot_checked=True)
    assert core.has_output()
    side.send_to_server()
    core.reset(stream_id, h2.errors.ErrorCodes.CANCEL)
    assert core.has_output()
    assert core.data_to_send()[3] == 0x3  # RST_STREAM
    assert not core.has_output()

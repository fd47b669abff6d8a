"""Runs of DATA frames accounted for at once, against h2 frame by frame.

The frame splitter takes consecutive plain DATA frames of one stream as a
run and does h2's accounting (windows, content-length) once for the run
(:func:`hyper.http20.h2_internals.consume_plain_data_run`) when no frame of
it can fail, and frame by frame otherwise. Each case here is fed to two
cores, one with the fast paths and one with every frame through h2
(``tests/test_frame_splitter.py``'s differential harness compares every
observable after every read), and then checked for what the run must do: the
bytes before a failing frame are delivered, the failure is that frame's,
and the run takes one accounting step when nothing fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hyper.exceptions import ProtocolError
from hyper.http20 import h2_internals
from tests import hostile_frames as hf
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark
from tests.test_frame_splitter import MAX_FRAME, Scenario, run

pytestmark = pytest.mark.usefixtures("fast_paths_on")

FLOW_CONTROL_ERROR = 0x3


def frames(stream_id: int, *payloads: bytes) -> bytes:
    return b"".join(hf.data(stream_id, payload) for payload in payloads)


@pytest.fixture
def accounting_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Every call of the run and per-frame accounting primitives, in order: (which, bytes)."""
    calls: list[tuple[str, int]] = []
    run_step, frame_step = h2_internals.consume_plain_data_run, h2_internals.consume_plain_data

    def counted_run(conn: Any, stream: Any, total: int) -> bool:
        calls.append(("run", total))
        return run_step(conn, stream, total)

    def counted_frame(conn: Any, stream: Any, size: int) -> None:
        calls.append(("frame", size))
        frame_step(conn, stream, size)

    monkeypatch.setattr(h2_internals, "consume_plain_data_run", counted_run)
    monkeypatch.setattr(h2_internals, "consume_plain_data", counted_frame)
    yield calls


@pytest.mark.parametrize("cuts", [(), (200,), (50, 20000, 20001)], ids=["whole", "cut", "cuts"])
def test_a_run_within_the_limits_takes_one_step(
    cuts: tuple[int, ...], accounting_calls: list[tuple[str, int]]
) -> None:
    body = [bytes([65 + i]) * size for i, size in enumerate([MAX_FRAME, 100, MAX_FRAME, 7])]
    wire = (
        hf.settings()
        + hf.response_headers(1, (b"content-length", str(sum(map(len, body))).encode()))
        + frames(1, *body)
    )
    pair = run(Scenario(0, ("GET",), wire, cuts=cuts))
    assert pair.fast.take_data(1) == b"".join(body)
    # Nothing failed: no per-frame step. A frame cut by a read is taken
    # whole once its last byte is there, on its own (not counted here).
    assert {which for which, _ in accounting_calls} == {"run"}
    if not cuts:
        assert accounting_calls == [("run", sum(map(len, body)))]


def test_a_run_past_content_length_fails_at_the_frame_that_crosses_it(
    accounting_calls: list[tuple[str, int]],
) -> None:
    wire = (
        hf.settings()
        + hf.response_headers(1, (b"content-length", b"10"))
        + frames(1, b"abc", b"def", b"ghij!", b"late")
    )
    pair = run(Scenario(0, ("GET", "GET"), wire))
    stream = pair.fast.streams[1]
    assert isinstance(stream.error, ProtocolError) and pair.fast.fatal is None
    assert pair.fast.take_data(1) == b"abcdef"  # the frames before the crossing one
    # The run was refused untouched, then taken frame by frame up to the failing one.
    assert accounting_calls == [("run", 15), ("frame", 3), ("frame", 3), ("frame", 5)]


def test_a_run_past_the_stream_window_is_a_connection_error_at_that_frame(
    accounting_calls: list[tuple[str, int]],
) -> None:
    # Config 1: a 16384-byte stream window once our SETTINGS are acknowledged.
    wire = (
        hf.settings()
        + hf.settings(ack=True)
        + hf.response_headers(1)
        + frames(1, b"a" * 10000, b"b" * 6384, b"c")
    )
    pair = run(Scenario(1, ("GET",), wire))
    assert isinstance(pair.fast.fatal, ProtocolError) and pair.fast.fatal.error_code == FLOW_CONTROL_ERROR
    assert accounting_calls == [("run", 16385), ("frame", 10000), ("frame", 6384), ("frame", 1)]


def test_runs_on_interleaved_streams_stay_apart() -> None:
    wire = (
        hf.settings()
        + hf.response_headers(1)
        + hf.response_headers(3)
        + frames(1, b"1" * 5, b"1" * 6)
        + frames(3, b"3" * 7)
        + frames(1, b"1" * 8)
        + hf.data(3, b"3", end_stream=True)
        + hf.data(1, b"1", end_stream=True)
    )
    pair = run(Scenario(0, ("GET", "GET"), wire, cuts=(len(wire) - 20,)))
    assert pair.fast.take_data(1) == b"1" * 20
    assert pair.fast.take_data(3) == b"3" * 8


def test_the_run_accounting_passes_its_self_check() -> None:
    assert h2_internals.runs_problem() is None

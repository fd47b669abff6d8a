"""A request's and its response's state machine steps taken fused do exactly what h2's own path does.

:mod:`hyper.http20.h2_internals_receive` writes out h2's ``response_received``,
``data_received`` and ``stream_ended`` for the states they are common in,
and :func:`~hyper.http20.h2_internals_steps.open_request_stream` a new
request's ``request_sent`` and END_STREAM, instead of running each through
a prepared step. These tests run the same
exchanges with the fused forms on and off, each against h2's public path on
an identical connection (``tests.test_fast_steps.Pair`` compares events,
errors and every flag of every stream's state machine after each frame),
check that the fused forms are what actually ran, and that a changed h2
table turns them off.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hyper.http20 import h2_internals, h2_internals_receive, h2_internals_steps
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark
from tests.test_fast_steps import (
    CONTENT_LENGTH_CASES,
    REQUEST,
    Pair,
    _blocks,
    content_length_against_body,
    data_before_the_response_headers,
    head_response_without_body,
    informational_then_final,
    many_streams_in_flight,
    response_in_parts,
)

pytestmark = pytest.mark.usefixtures("fast_paths_on")


@pytest.fixture(params=[True, False], ids=["fused", "step by step"])
def fused(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fused forms on or off; yields the prepared steps that ran (counted)."""
    monkeypatch.setattr(h2_internals_receive, "fuse_steps", request.param)
    monkeypatch.setattr(h2_internals_steps, "fuse_send_steps", request.param)
    ran: list[Any] = []
    real = h2_internals_steps.step

    def counting(machine: Any, prepared: Any, input_: Any) -> Any:
        ran.append(input_.name)
        return real(machine, prepared, input_)

    monkeypatch.setattr(h2_internals_receive, "step", counting)
    monkeypatch.setattr(h2_internals_steps, "step", counting)
    yield ran


def test_the_tables_are_fusable() -> None:
    assert h2_internals_receive.tables_fusable()
    assert h2_internals_receive._FUSABLE
    assert h2_internals_steps._SEND_FUSABLE


@pytest.mark.parametrize("request_ends", [True, False])
def test_a_response_in_headers_data_and_end(fused: list[Any], request_ends: bool) -> None:
    response_in_parts(request_ends, slot_checked=True)
    if not h2_internals_receive.fuse_steps:
        sent = ["SEND_HEADERS", "SEND_END_STREAM"] if request_ends else ["SEND_HEADERS"]
        assert fused == [*sent, "RECV_HEADERS", "RECV_DATA", "RECV_END_STREAM"]
    elif request_ends:
        assert fused == []  # HALF_CLOSED_LOCAL: every step fused
    else:
        # OPEN (our side still sending): headers fused; DATA with END_STREAM
        # half-closes the stream through h2's own steps.
        assert fused == ["RECV_DATA", "RECV_END_STREAM"]


def test_headers_that_end_the_stream_then_trailers(fused: list[Any]) -> None:
    pair = Pair()
    pair.open(1, REQUEST, True, True)
    events = pair.headers(1, _blocks(pair, [(b":status", b"204")]), True)
    assert [e[0] for e in events] == ["ResponseReceived", "StreamEnded"]
    pair.open(3, REQUEST, False, True)
    events = pair.headers(3, _blocks(pair, [(b":status", b"204")]), True)  # OPEN: half-closed by h2
    assert [e[0] for e in events] == ["ResponseReceived", "StreamEnded"]
    pair.open(5, REQUEST, True, True)
    pair.headers(5, _blocks(pair, [(b":status", b"200")]), False)
    pair.data(5, b"body", False)
    # Trailers are never fused: the response's headers came already.
    events = pair.headers(5, _blocks(pair, [(b"x-trailer", b"1")]), True)
    assert [e[0] for e in events] == ["TrailersReceived", "StreamEnded"]


def test_informational_then_final_response(fused: list[Any]) -> None:
    informational_then_final(request_ends=True)


@pytest.mark.parametrize(("length", "body"), CONTENT_LENGTH_CASES)
def test_content_length_is_held_alike(fused: list[Any], length: bytes, body: bytes) -> None:
    content_length_against_body(length, body)


def test_content_length_in_headers_that_end_the_stream_is_taken_alike(fused: list[Any]) -> None:
    """No body after a content-length of 5 (h2 takes it as is; so must the fused form), and a bad value."""
    pair = Pair()
    pair.open(1, REQUEST, True, True)
    pair.headers(1, _blocks(pair, [(b":status", b"200"), (b"content-length", b"5")]), True)
    pair.open(3, REQUEST, True, True)
    events = pair.headers(3, _blocks(pair, [(b":status", b"200"), (b"content-length", b"x")]), True)
    assert events[0][0] == "raised"


def test_head_response_with_content_length_and_no_body(fused: list[Any]) -> None:
    head_response_without_body()


def test_data_before_the_response_headers_is_refused_alike(fused: list[Any]) -> None:
    data_before_the_response_headers()


def test_many_streams_in_flight(fused: list[Any]) -> None:
    pair = many_streams_in_flight(lambda stream_id: stream_id % 4 == 1)  # OPEN and HALF_CLOSED_LOCAL mixed
    assert pair.fast.open_outbound_streams == pair.plain.open_outbound_streams


def test_a_changed_table_turns_the_fused_forms_off(monkeypatch: pytest.MonkeyPatch) -> None:
    state = h2_internals_steps.StreamState.HALF_CLOSED_LOCAL
    changed = dict(h2_internals_steps._RECV_END_STREAM)
    changed[state] = (None, state)  # as if h2 no longer closed the stream here
    monkeypatch.setattr(h2_internals_steps, "_RECV_END_STREAM", changed)
    assert not h2_internals_receive.tables_fusable()


def test_the_fused_forms_pass_the_self_test() -> None:
    assert h2_internals_receive.fuse_steps
    assert h2_internals.self_test() is None

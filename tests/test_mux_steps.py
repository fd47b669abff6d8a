"""Per-burst and per-read steps of the mux workload, written out (issue 14, mux round 7).

Two steps that run once per mux burst or once per read are written out; each
is compared here with the code it stands for:

* the walk that counts a client's open streams moves the closed ones to
  h2's size-limited record of closed streams; the written-out form inserts
  them all and trims the oldest once (``_RECORDS_WRITTEN_OUT``), against
  one insert-and-trim per stream (the same function without it) and h2's
  own ``open_outbound_streams`` property;
* a new request stream's :class:`~hyper.http20.streams.StreamState` made
  from a template (``StreamState.for_request``), against ``__init__``;
* the connection credit's "not yet" answer of the default
  :class:`~hyper.http20.window.FlowControlManager`, written out in
  :meth:`~hyper.http20.credit.ConnectionCredit.release`, against the
  manager's own ``_data_consumed`` (a subclass with the same behaviour takes
  the general path), over generated sequences of reads and consumption.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterator

import h2.config
import h2.connection
import pytest
from h2.utilities import SizeLimitDict
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper.common.body import LengthCounter
from hyper.http20 import h2_internals_steps
from hyper.http20.credit import ConnectionCredit
from hyper.http20.streams import RequestState, StreamState
from hyper.http20.window import FlowControlManager

# -- closed streams moved to h2's records ------------------------------------------------


def _client_with_closed_streams(opened: int, closed: int, limit: int) -> h2.connection.H2Connection:
    """A client with ``opened`` request streams, the first ``closed`` of them answered and closed."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    request = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")]
    for index in range(opened):
        client.send_headers(1 + 2 * index, request, end_stream=True)
    server.receive_data(client.data_to_send())
    for index in range(closed):
        server.send_headers(1 + 2 * index, [(b":status", b"200")], end_stream=True)
    client.receive_data(server.data_to_send())
    # A small record, already holding older ids, so that the walk evicts.
    client._closed_streams = SizeLimitDict(size_limit=limit)
    for old in range(limit):
        client._closed_streams[10_001 + 2 * old] = None
    return client


@pytest.fixture(params=[True, False], ids=["written-out", "per-insert"])
def records_written_out(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    monkeypatch.setattr(h2_internals_steps, "_RECORDS_WRITTEN_OUT", request.param)
    yield request.param


def test_the_written_out_records_are_chosen_by_checking_h2s_class() -> None:
    assert h2_internals_steps._records_written_out()
    assert h2_internals_steps._RECORDS_WRITTEN_OUT


@pytest.mark.parametrize(
    ("opened", "closed", "limit"), [(8, 5, 3), (8, 0, 3), (12, 12, 4), (6, 3, 10), (100, 100, 40)]
)
def test_the_walk_moves_closed_streams_as_h2_does(
    records_written_out: bool, opened: int, closed: int, limit: int
) -> None:
    ours = _client_with_closed_streams(opened, closed, limit)
    reference = _client_with_closed_streams(opened, closed, limit)
    assert (
        h2_internals_steps.open_outbound_streams(ours) == reference.open_outbound_streams == opened - closed
    )
    assert list(ours.streams) == list(reference.streams)
    assert list(ours._closed_streams.items()) == list(reference._closed_streams.items())
    assert len(ours._closed_streams) == limit  # the oldest went


def test_records_of_another_type_take_h2s_inserts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record that is not h2's SizeLimitDict (another h2) gets each insert through its own method."""
    inserts: list[int] = []

    class Recording(dict):  # type: ignore[type-arg]
        def __setitem__(self, key: int, value: object) -> None:
            inserts.append(key)
            super().__setitem__(key, value)

    conn = _client_with_closed_streams(6, 4, 3)
    conn._closed_streams = Recording()
    assert h2_internals_steps.open_outbound_streams(conn) == 2
    assert inserts == [1, 3, 5, 7]


# -- the connection credit's "not yet" ----------------------------------------------------


class _SameManager(FlowControlManager):
    """FlowControlManager's behaviour through the general path (not the exact default type)."""


# One step: bytes received in a read (gathered, then released), or bytes
# the application consumed (freed).
_STEP = st.one_of(
    st.tuples(st.just("read"), st.integers(min_value=0, max_value=70_000)),
    st.tuples(st.just("consume"), st.integers(min_value=0, max_value=70_000)),
)


@settings(max_examples=300, deadline=None)
@given(
    size=st.sampled_from([1, 3, 17, 65_535, 1 << 20, 16 << 20]),
    max_buffered=st.sampled_from([0, 10_000, 1 << 30]),
    steps=st.lists(_STEP, max_size=40),
)
def test_the_written_out_answer_is_the_managers(
    size: int, max_buffered: int, steps: list[tuple[str, int]]
) -> None:
    ours = ConnectionCredit(FlowControlManager, size, max_buffered)
    reference = ConnectionCredit(_SameManager, size, max_buffered)
    assert ours.open() == reference.open()
    for kind, amount in steps:
        for credit in (ours, reference):
            if kind == "read":
                credit.received(amount, 0)
                credit.total_buffered += amount
            else:
                amount = min(amount, credit.total_buffered)
                credit.total_buffered -= amount
        if kind == "read":
            answers = [credit.release(amount, 0) for credit in (ours, reference)]
        else:
            answers = [credit.release(0, amount) for credit in (ours, reference)]
        assert answers[0] == answers[1]
        assert ours.window is not None and reference.window is not None
        assert vars(ours.window) == vars(reference.window)
        assert (ours.withheld, ours.total_buffered) == (reference.withheld, reference.total_buffered)


def test_the_written_out_answer_runs_for_the_default_manager_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = FlowControlManager._data_consumed

    def counting(self: FlowControlManager, size: int) -> int:
        calls.append(size)
        return original(self, size)

    monkeypatch.setattr(FlowControlManager, "_data_consumed", counting)
    ours = ConnectionCredit(FlowControlManager, 1 << 24, 1 << 30)
    reference = ConnectionCredit(_SameManager, 1 << 24, 1 << 30)
    ours.open()
    reference.open()
    for credit in (ours, reference):
        credit.received(1024, 0)
        assert credit.release(1024, 0) == 0  # far from half a window: not yet
    assert calls == [1024]  # the subclass asked its manager; the default was written out
    for credit in (ours, reference):
        credit.received(9 << 20, 0)
        assert credit.release(9 << 20, 0) == 1024 + (9 << 20)  # over half a window: all of it
    assert calls == [1024, 9 << 20, 9 << 20]  # an answer other than "not yet": the manager's own


# -- a new request stream's state -----------------------------------------------------------


@pytest.mark.parametrize("request_ended", [True, False])
@pytest.mark.parametrize("head", [True, False])
@pytest.mark.parametrize("declared_length", [None, 0, 1024])
def test_a_request_streams_state_is_inits(
    request_ended: bool, head: bool, declared_length: int | None
) -> None:
    window = FlowControlManager(65535)
    made = StreamState.for_request(7, window, request_ended, head, declared_length)
    expected = StreamState(
        7,
        window,
        request=RequestState.DONE if request_ended else RequestState.SENDING,
        head=head,
        upload=LengthCounter(declared_length),
    )
    # Every field (the two made per stream compared by content below).
    fields = {name: value for name, value in vars(made).items() if name not in ("data", "upload")}
    assert fields == {name: value for name, value in vars(expected).items() if name not in ("data", "upload")}
    assert type(made.data) is deque and not made.data
    assert vars(made.upload) == vars(expected.upload)


def test_request_stream_states_share_no_mutable_field() -> None:
    first = StreamState.for_request(1, FlowControlManager(65535), True, False, None)
    second = StreamState.for_request(3, FlowControlManager(65535), True, False, None)
    for name, value in vars(first).items():
        if name in ("stream_id", "window", "data", "upload"):
            assert value is not getattr(second, name)
        else:
            # What the template copies to every stream: immutable values only.
            assert value is None or isinstance(value, (bool, int, enum.Enum)), name
    first.data.append(b"x")
    first.upload.add(5)
    assert not second.data and second.upload.sent == 0

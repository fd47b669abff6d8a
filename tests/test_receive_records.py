"""A plain response's frames as records (hyper.http20.receive_records), against h2's own events.

The splitter hands the core a response's HEADERS and its last DATA frame as
tuples when its fast path takes them; the core applies them with written-out
steps. The claim: every core ends in exactly the state, output and failures
it would reach from h2's events. Checked three ways, over random and hostile
exchanges:

- twin cores, one with records, one with the splitter's records off (the
  same fast path, h2's events) and one with h2's public API only (what
  ``HYPER_FAST_PATHS=0`` gives): the core's streams, buffers, credit, touched
  streams and flood count, h2's stream records, and the bytes sent back, after
  every read;
- the frame splitter's Hypothesis scenarios (tests/test_frame_splitter.py),
  with the records expanded into the events they stand for
  (:func:`~hyper.http20.receive_records.as_events`) and compared with h2's;
- the records really are made on the common path, and never in the
  public-API mode.
"""

from __future__ import annotations

import random
from typing import Any

import h2.events
import pytest
from hypothesis import given, settings

from hyper.exceptions import HyperError
from hyper.http20 import h2_adapters, h2_internals
from hyper.http20.core import H2Core
from hyper.http20.receive_records import LAST_DATA, RESPONSE_FIELDS, as_events
from tests import test_frame_splitter as splitter_tests
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark
from tests.test_review13_twin_cores import GET, HEAD, POST, Twin, data, frame, headers, snapshot

pytestmark = pytest.mark.usefixtures("fast_paths_on")

DATA_FRAME, HEADERS_FRAME, RST_STREAM = 0, 1, 3
END_STREAM, END_HEADERS = 0x1, 0x4


def full_snapshot(twin: Twin) -> dict[str, Any]:
    """snapshot() and what the record steps also touch: buffers, credit, flags, touched, floods."""
    core = twin.core
    shot = snapshot(twin)
    shot["streams_more"] = {
        sid: (s.buffered, s.ended, s.complete, s.request.name, s.window.window_size, s.window.document_size)
        for sid, s in sorted(core.streams.items())
    }
    window = core._credit.window
    shot["credit"] = (
        core._credit.total_buffered,
        core._credit.withheld,
        None if window is None else (window.window_size, window.unacknowledged),
    )
    shot["touched"] = core.take_touched()
    shot["control_frames"] = core._control_frames
    return shot


def run_modes(script: Any, modes: tuple[str, ...] = ("records", "events", "public")) -> list[list[Any]]:
    """Run ``script(twin, feed)`` in each mode; the snapshots after each read, per mode."""
    results = []
    for mode in modes:
        shots: list[Any] = []
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(h2_adapters.FrameSplitter, "records", mode == "records")
            twin = Twin("public" if mode == "public" else "fast")

            def feed(raw: bytes, twin: Twin = twin, shots: list[Any] = shots) -> None:
                twin.core.receive(raw)
                shots.append(full_snapshot(twin))

            try:
                script(twin, feed)
            except HyperError as exc:
                shots.append({"raised": f"{type(exc).__name__}: {exc}"})
        results.append(shots)
    return results


def assert_alike(script: Any, with_public: bool = True) -> list[Any]:
    """Records, h2's events on the fast path and (unless a stream error only the fenced path
    tells apart is involved) the public API agree after every read; the records twin's shots."""
    modes = ("records", "events", "public") if with_public else ("records", "events")
    results = run_modes(script, modes)
    for mode, shots in zip(modes[1:], results[1:], strict=True):
        assert len(shots) == len(results[0]), mode
        for index, (ours, theirs) in enumerate(zip(results[0], shots, strict=True)):
            assert ours == theirs, f"records and {mode} part after read {index}"
    return results[0]


def response(twin: Twin, sid: int, fields: list[tuple[bytes, bytes]], body: bytes | None) -> bytes:
    """HEADERS (END_STREAM when ``body`` is None), then one DATA frame with END_STREAM."""
    block = twin.block(sid, fields)
    if body is None:
        return headers(block, sid, end=True)
    return headers(block, sid) + data(sid, body, end=True)


OK = [(b":status", b"200"), (b"content-length", b"5"), (b"server", b"t")]


# -- the plain case and its neighbours ---------------------------------------------------------


def test_many_plain_responses_in_one_read_agree_and_take_the_records() -> None:
    made: list[Any] = []
    real = h2_adapters.FrameSplitter.receive

    def script(twin: Twin, feed: Any) -> None:
        ids = [twin.open(GET) for _ in range(9)]
        feed(b"".join(response(twin, sid, OK, b"hello") for sid in ids))
        for sid in ids[:4]:
            twin.core.take_data(sid)
            twin.core.discard_stream(sid)
        feed(b"")

    def spying(self: Any, raw: Any) -> Any:
        events, error = real(self, raw)
        made.extend(events)
        return events, error

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(h2_adapters.FrameSplitter, "receive", spying)
        shots = assert_alike(script)
    kinds = [item[0] for item in made if type(item) is tuple]
    # The records twin ran first: 9 responses, each a RESPONSE_FIELDS and a LAST_DATA.
    assert kinds[:18] == [RESPONSE_FIELDS, LAST_DATA] * 9
    assert all(state[0] == "COMPLETE" for state in shots[0]["streams"].values())


@pytest.mark.parametrize(
    "case",
    [
        "head-with-body",
        "204-with-body",
        "304-with-body",
        "short-content-length",
        "long-content-length",
        "discarded-first",
        "reset-by-us-first",
        "malformed-headers",
        "informational-first",
        "headers-end-stream",
        "trailers",
        "upload-still-open",
        "data-after-end",
        "headers-twice",
    ],
)
def test_neighbours_of_the_plain_case_agree(case: str) -> None:
    """Every case a record's steps must decline or get exactly right, against h2's events."""

    def script(twin: Twin, feed: Any) -> None:
        method = HEAD if case == "head-with-body" else POST if case == "upload-still-open" else GET
        sid = twin.open(method, end_stream=case != "upload-still-open")
        fields = list(OK)
        body: bytes | None = b"hello"
        if case in ("204-with-body", "304-with-body"):
            fields = [(b":status", case[:3].encode())]
        elif case == "short-content-length":
            body = b"hell"
        elif case == "long-content-length":
            body = b"hello!"
        elif case == "malformed-headers":
            fields = [(b":status", b"200"), (b"Upper", b"x")]
        elif case == "headers-end-stream":
            fields, body = [(b":status", b"200")], None
        if case == "discarded-first":
            feed(headers(twin.block(sid, fields), sid))
            twin.core.discard_stream(sid)
            feed(data(sid, b"hello", end=True))
            return
        if case == "reset-by-us-first":
            feed(headers(twin.block(sid, fields), sid))
            twin.core.reset(sid, 8)
            twin.send_to_server()
            feed(data(sid, b"hello", end=True))
            return
        if case == "informational-first":
            feed(headers(twin.block(sid, [(b":status", b"103"), (b"link", b"</a>")]), sid))
        if case == "trailers":
            feed(headers(twin.block(sid, fields), sid) + data(sid, b"hello"))
            feed(headers(twin.block(sid, [(b"x-checksum", b"1")]), sid, end=True))
            return
        if case == "headers-twice":
            feed(headers(twin.block(sid, fields), sid) + headers(twin.block(sid, fields), sid))
            return
        feed(response(twin, sid, fields, body))
        if case == "upload-still-open":
            twin.core.send_body(sid, memoryview(b"abc"))
            twin.core.end_body(sid)
            twin.send_to_server()
            feed(b"")
        if case == "data-after-end":
            feed(data(sid, b"late", end=True))

    # The public API cannot tell a stream error from a connection error
    # (tests/test_review13_twin_cores.py: it fails the connection instead).
    stream_errors = ("short-content-length", "long-content-length", "head-with-body", "headers-twice")
    shots = assert_alike(script, with_public=case not in stream_errors)
    assert shots


def test_a_record_before_the_servers_settings_fails_as_the_events_do() -> None:
    """RFC 9113 section 3.4: the server preface is a SETTINGS frame; a record does not skip that."""

    def script(twin: Twin, feed: Any) -> None:
        sid = twin.open(GET)
        feed(response(twin, sid, OK, b"hello"))

    def no_preface(mode: str) -> list[Any]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(h2_adapters.FrameSplitter, "records", mode == "records")
            twin = Twin("fast", _handshake=False)
            twin.send_to_server()
            twin.server.data_to_send()  # the server's SETTINGS, never delivered
            twin.server.receive_data(twin.core.data_to_send())
            sid = twin.open(GET)
            twin.core.receive(response(twin, sid, OK, b"hello"))
            return [snapshot(twin)]

    records, events = no_preface("records"), no_preface("events")
    assert records == events
    assert "not an HTTP/2 server" in records[0]["fatal"]


# -- random exchanges, hostile ones included ----------------------------------------------------


def random_script(seed: int) -> Any:
    """Responses in random shapes, sizes, orders and cuts, with application steps between reads."""

    def script(twin: Twin, feed: Any) -> None:
        rng = random.Random(seed)
        ids = [twin.open(rng.choice([GET, GET, GET, HEAD])) for _ in range(rng.randint(1, 8))]
        wire = b""
        for sid in ids:
            status = rng.choice([b"200", b"200", b"200", b"204", b"404"])
            length = rng.choice([0, 1, 5, 300])
            declared = rng.choice([length, length, length, length + 1, max(0, length - 1), None])
            fields = [(b":status", status), (b"server", b"x" * rng.randint(0, 3))]
            if declared is not None:
                fields.append((b"content-length", str(declared).encode()))
            if rng.random() < 0.05:
                fields.append((b"Bad", b"upper-case name"))  # malformed: a stream error
            wire += headers(twin.block(sid, fields), sid, end=length == 0 and rng.random() < 0.5)
            body = bytes(rng.getrandbits(8) for _ in range(length))
            if length and rng.random() < 0.3:
                wire += data(sid, body[: length // 2]) + data(sid, body[length // 2 :], end=True)
            elif length:
                wire += data(sid, body, end=True)
            elif rng.random() < 0.5:
                wire += data(sid, b"", end=True)
            if rng.random() < 0.05:
                wire += frame(RST_STREAM, 0, sid, (8).to_bytes(4, "big"))
            if rng.random() < 0.05:
                wire += data(sid, b"late", end=True)  # after the end: a stream error (section 5.1)
        cuts = sorted(rng.sample(range(1, len(wire)), min(3, len(wire) - 1))) if len(wire) > 1 else []
        start = 0
        for cut in [*cuts, len(wire)]:
            feed(wire[start:cut])
            start = cut
            for sid in ids:
                if sid in twin.core.streams and rng.random() < 0.3:
                    if rng.random() < 0.5:
                        twin.core.take_data(sid, rng.choice([None, 1, 100]))
                    else:
                        twin.core.discard_stream(sid)
            twin.send_to_server()

    return script


@pytest.mark.parametrize("seed", range(60))
def test_random_exchanges_agree_with_h2s_events(seed: int) -> None:
    assert_alike(random_script(seed), with_public=False)


@pytest.mark.parametrize("seed", range(60, 80))
def test_random_exchanges_agree_with_the_public_api_where_it_can_tell(seed: int) -> None:
    # Only exchanges without stream errors: the public API makes those
    # connection errors (RFC 9113 section 5.4 allows it).
    results = run_modes(random_script(seed), ("records", "public"))
    faults = any(
        "error" in str(shot.get("fatal")) or any(state[4] for state in shot.get("streams", {}).values())
        for shot in results[0] + results[1]
    )
    if not faults:
        assert results[0] == results[1]


# -- the splitter's own scenarios, records expanded ---------------------------------------------


def expanding_record_events(core: H2Core, raw: list[Any] | None = None) -> list[list[tuple[Any, ...]]]:
    """tests/test_frame_splitter.record_events, with each record expanded into its h2 events."""
    calls: list[list[tuple[Any, ...]]] = []
    splitter = core._frames
    original = splitter.receive

    def receive(data: Any) -> Any:
        events, error = original(data)
        expanded = [event for item in events for event in as_events(item)]
        if raw is not None:
            raw.extend(expanded)
        merged = splitter_tests.merge_data_runs(expanded)
        signatures = [splitter_tests.event_signature(e) for e in merged]
        calls.append([*signatures, ("error", type(error).__name__, str(error))])
        return events, error

    splitter.receive = receive  # type: ignore[method-assign]
    return calls


@settings(max_examples=200, derandomize=True, database=None, deadline=None, print_blob=True)
@given(splitter_tests.scenarios())
@splitter_tests.examples
def test_the_splitters_scenarios_give_h2s_events_once_records_are_expanded(
    scenario: splitter_tests.Scenario,
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(splitter_tests, "record_events", expanding_record_events)
        splitter_tests.run(scenario)


def test_as_events_gives_h2s_events() -> None:
    fields = [(b":status", b"200")]
    response_event = h2.events.ResponseReceived(stream_id=3, headers=fields)
    assert as_events((RESPONSE_FIELDS, 3, fields)) == [response_event]
    ended = h2.events.StreamEnded(stream_id=3)
    data_event = h2.events.DataReceived(stream_id=3, data=b"ab", flow_controlled_length=2, stream_ended=ended)
    assert as_events((LAST_DATA, 3, b"ab", 2)) == [data_event, ended]
    assert as_events(ended) == [ended]


def test_the_public_api_mode_makes_no_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h2_internals, "_enabled", False)
    made: list[Any] = []
    real = h2_adapters.FrameSplitter.receive

    def spying(self: Any, raw: Any) -> Any:
        events, error = real(self, raw)
        made.extend(events)
        return events, error

    monkeypatch.setattr(h2_adapters.FrameSplitter, "receive", spying)
    twin = Twin("public")
    sid = twin.open(GET)
    twin.core.receive(response(twin, sid, OK, b"hello"))
    assert twin.core.take_data(sid) == b"hello"
    assert made and not any(type(item) is tuple for item in made)

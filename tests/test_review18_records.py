"""Review 18: core9's response records against h2's events, where tests/test_receive_records.py is silent.

Each script runs three times (tests/test_receive_records.run_modes): with
records, with the splitter's records off (the same fast path, h2's events),
and with h2's public API only (``HYPER_FAST_PATHS=0``); after every read the
cores must hold and send exactly the same (streams, buffers, credit, touched
streams, flood count, h2's stream records, the bytes sent back). The cases:
bodies a window or frame size long (the credit sent back after a LAST_DATA),
pushed responses, a server reset after a RESPONSE_FIELDS record,
multi-valued and cookie fields, the open-stream count that
MAX_CONCURRENT_STREAMS is checked against, and the debug log a user sees.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from hyper.http20 import h2_adapters
from hyper.limits import Limits
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark
from tests.test_receive_records import assert_alike, run_modes
from tests.test_review13_twin_cores import GET, POST, Twin, data, frame, headers

pytestmark = pytest.mark.usefixtures("fast_paths_on")

RST_STREAM = 3
MAX_FRAME = 16384


@contextlib.contextmanager
def core_options(**options: Any) -> Iterator[None]:
    """Every Twin built meanwhile gets these H2Core options (run_modes builds its own)."""
    original = Twin.__init__

    def with_options(self: Twin, mode: str, **more: Any) -> None:
        original(self, mode, **options, **more)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Twin, "__init__", with_options)
        yield


def body_frames(stream_id: int, body: bytes) -> bytes:
    """``body`` in DATA frames of at most 16 KiB (default SETTINGS_MAX_FRAME_SIZE), END_STREAM on the last."""
    pieces = [body[at : at + MAX_FRAME] for at in range(0, len(body), MAX_FRAME)] or [b""]
    return b"".join(
        data(stream_id, piece, end=index == len(pieces) - 1) for index, piece in enumerate(pieces)
    )


@pytest.mark.parametrize("size", [1, 16383, 16384, 16385, 40000, 65535])
@pytest.mark.parametrize("take", ["after-each-read", "at-the-end", "in-small-pieces"])
def test_window_credit_after_a_last_data_agrees(size: int, take: str) -> None:
    """The connection and stream WINDOW_UPDATEs we send back after a body ends (RFC 9113 section 6.9)."""
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)

    def script(twin: Twin, feed: Any) -> None:
        ids = [twin.open(GET) for _ in range(3)]
        for sid in ids:
            fields = [(b":status", b"200"), (b"content-length", str(size).encode())]
            wire = headers(twin.block(sid, fields), sid) + body_frames(sid, body)
            # Two reads per response, cut inside its last frame.
            cut = len(wire) - 3
            feed(wire[:cut])
            feed(wire[cut:])
            if take == "after-each-read":
                assert twin.core.take_data(sid) == body
            elif take == "in-small-pieces":
                got = b""
                while len(got) < size:
                    got += twin.core.take_data(sid, 5000)
                assert got == body
            twin.send_to_server()
        if take == "at-the-end":
            for sid in ids:
                assert twin.core.take_data(sid) == body
            feed(b"")

    assert_alike(script)


def test_only_the_last_data_frame_carries_the_whole_body_and_matches_content_length() -> None:
    """The LAST_DATA record is the response's only DATA: content-length checked on it alone."""

    def script(twin: Twin, feed: Any) -> None:
        for length, body in ((b"5", b"hello"), (b"4", b"hello"), (b"6", b"hello"), (b"0", b"x")):
            sid = twin.open(GET)
            feed(headers(twin.block(sid, [(b":status", b"200"), (b"content-length", length)]), sid))
            feed(data(sid, body, end=True))
            twin.send_to_server()

    # Stream errors (a body off its content-length) are connection errors in the public API.
    shots = assert_alike(script, with_public=False)
    states = [state[0] for state in shots[-1]["streams"].values()]
    assert states[0] == "COMPLETE"


def test_a_pushed_response_agrees() -> None:
    """PUSH_PROMISE, then the pushed response's HEADERS and last DATA (RFC 9113 section 8.4)."""

    def script(twin: Twin, feed: Any) -> None:
        sid = twin.open(GET)
        request = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"a.test"),
            (b":path", b"/p"),
        ]
        twin.server.push_stream(sid, 2, request)
        feed(twin.server.data_to_send())
        ok = [(b":status", b"200"), (b"content-length", b"6")]
        feed(headers(twin.block(2, ok), 2) + data(2, b"pushed", end=True))
        feed(headers(twin.block(sid, ok), sid) + data(sid, b"parent", end=True))
        assert twin.core.take_data(2) == b"pushed"
        assert twin.core.take_data(sid) == b"parent"
        twin.send_to_server()
        feed(b"")

    def run(mode_script: Any) -> None:
        results = run_modes(mode_script)
        assert results[0] == results[1] == results[2]
        assert results[0][-1]["streams"][2][0] == "COMPLETE"

    with core_options(enable_push=True, origin=("https", "a.test", 443)):
        run(script)


@pytest.mark.parametrize("code", [0, 2, 8])
@pytest.mark.parametrize("when", ["after-headers", "after-some-data", "after-last-data"])
def test_a_server_reset_after_a_response_fields_record_agrees(code: int, when: str) -> None:
    """RST_STREAM after the HEADERS came as a record: the reader gets the bytes, then the error (or none)."""

    def script(twin: Twin, feed: Any) -> None:
        sid = twin.open(GET)
        wire = headers(twin.block(sid, [(b":status", b"200")]), sid)
        if when == "after-some-data":
            wire += data(sid, b"part")
        elif when == "after-last-data":
            wire += data(sid, b"whole", end=True)
        feed(wire)
        feed(frame(RST_STREAM, 0, sid, code.to_bytes(4, "big")))
        twin.send_to_server()

    assert_alike(script)


def test_a_response_while_the_upload_is_open_then_reset_no_error_agrees() -> None:
    """An early response (request open: no LAST_DATA record), then RST_STREAM(NO_ERROR) (RFC 9113 8.1)."""

    def script(twin: Twin, feed: Any) -> None:
        sid = twin.open(POST, end_stream=False)
        twin.core.send_body(sid, memoryview(b"part of it"))
        twin.send_to_server()
        fields = [(b":status", b"413"), (b"content-length", b"3")]
        feed(headers(twin.block(sid, fields), sid) + data(sid, b"big", end=True))
        feed(frame(RST_STREAM, 0, sid, (0).to_bytes(4, "big")))
        twin.send_to_server()

    shots = assert_alike(script)
    assert shots[-1]["streams"][1][0] == "COMPLETE"


def test_multi_valued_and_cookie_fields_agree() -> None:
    """Repeated fields, set-cookie, and a response ``cookie`` (which h2 joins: no record) keep their order."""

    def script(twin: Twin, feed: Any) -> None:
        blocks = [
            [(b":status", b"200"), (b"set-cookie", b"a=1"), (b"vary", b"x"), (b"set-cookie", b"b=2")],
            [(b":status", b"200"), (b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"x", b"1")],
            [(b":status", b"200"), (b"link", b"</a>"), (b"link", b"</b>"), (b"link", b"</c>")],
        ]
        for fields in blocks:
            sid = twin.open(GET)
            feed(headers(twin.block(sid, fields), sid) + data(sid, b"body", end=True))
        twin.send_to_server()

    shots = assert_alike(script)
    assert shots[-1]["streams"][1][1][1] == (b"set-cookie", b"a=1")


def test_the_open_stream_count_agrees_after_records() -> None:
    """Streams closed by a LAST_DATA record stop counting for MAX_CONCURRENT_STREAMS (RFC 9113 5.1.2)."""
    counts: dict[bool, list[Any]] = {}
    for records in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(h2_adapters.FrameSplitter, "records", records)
            twin = Twin("fast")
            seen: list[Any] = []
            ids = [twin.open(GET) for _ in range(5)]
            seen.append((twin.core._open_count.get(), twin.core.can_open_stream()))
            for sid in ids[:3]:
                twin.core.receive(
                    headers(twin.block(sid, [(b":status", b"200")]), sid) + data(sid, b"x", end=True)
                )
                seen.append((twin.core._open_count.get(), twin.core.can_open_stream()))
            seen.append(twin.core._h2.open_outbound_streams)
            counts[records] = seen
    assert counts[True] == counts[False]
    assert counts[True][-1] == 2


def test_the_debug_log_is_the_same_with_records(caplog: pytest.LogCaptureFixture) -> None:
    """A user debugging with the ``hyper`` logger sees the same lines either way."""
    logs = []
    for mode in ("records", "events"):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="hyper"):

            def script(twin: Twin, feed: Any) -> None:
                sid = twin.open(GET)
                feed(headers(twin.block(sid, [(b":status", b"200")]), sid) + data(sid, b"x", end=True))

            run_modes(script, (mode,))
        logs.append([r.getMessage() for r in caplog.records if "stream" in r.getMessage()])
    assert logs[0] == logs[1]
    assert "stream 1: response headers received" in logs[0]
    assert "stream 1: response complete" in logs[0]


@pytest.mark.parametrize("max_buffered", [1, 5000, 70000])
def test_connection_credit_withheld_under_max_buffered_agrees(max_buffered: int) -> None:
    """Limits.max_buffered withholds connection credit while bodies wait unread: LAST_DATA counts alike."""

    def script(twin: Twin, feed: Any) -> None:
        ids = [twin.open(GET) for _ in range(4)]
        for sid in ids:
            body = bytes([sid]) * 20000
            fields = [(b":status", b"200"), (b"content-length", b"20000")]
            feed(headers(twin.block(sid, fields), sid) + body_frames(sid, body))
            twin.send_to_server()
        for sid in ids:
            assert twin.core.take_data(sid) == bytes([sid]) * 20000
            feed(b"")
            twin.send_to_server()

    with core_options(limits=Limits(max_buffered=max_buffered)):
        assert_alike(script)


def test_control_frame_budget_reset_by_record_responses_agrees() -> None:
    """RFC 9113 section 10.5: PINGs between responses; a record is progress exactly as h2's events are."""
    limit = 20

    def script(twin: Twin, feed: Any) -> None:
        pings = b"".join(frame(6, 0, 0, index.to_bytes(8, "big")) for index in range(limit - 1))
        for _ in range(3):
            sid = twin.open(GET)
            feed(pings + headers(twin.block(sid, [(b":status", b"200")]), sid) + pings)
            feed(data(sid, b"x", end=True) + pings)
            twin.send_to_server()
        # Now over the budget with no progress between: the connection fails alike.
        feed(pings + pings)

    with core_options(limits=Limits(max_control_frames_per_second=limit)):
        shots = assert_alike(script)
    assert "flood" in str(shots[-1].get("fatal") or shots[-1].get("raised"))


@pytest.mark.parametrize("shape", ["continuation", "empty-last-data", "padded-last-data", "only-empty-data"])
def test_frames_that_are_never_records_next_to_ones_that_are_agree(shape: str) -> None:
    """A block in CONTINUATIONs, an empty or padded last DATA (RFC 9113 6.1, 6.10): h2's events, alike."""

    def script(twin: Twin, feed: Any) -> None:
        sid = twin.open(GET)
        length = b"0" if shape == "only-empty-data" else b"10"
        block = twin.block(sid, [(b":status", b"200"), (b"content-length", length), (b"x-pad", b"y" * 40)])
        if shape == "continuation":
            feed(
                frame(1, 0, sid, block[:10])
                + frame(9, 0x4, sid, block[10:])
                + data(sid, b"0123456789", end=True)
            )
        elif shape == "empty-last-data":
            feed(headers(block, sid) + data(sid, b"0123456789") + data(sid, b"", end=True))
        elif shape == "padded-last-data":
            feed(headers(block, sid) + data(sid, b"01234") + data(sid, b"56789", end=True, pad=7))
        else:
            feed(headers(block, sid) + data(sid, b"", end=True))
        twin.send_to_server()
        # A plain response after it on the same connection (records again).
        sid = twin.open(GET)
        feed(headers(twin.block(sid, [(b":status", b"200")]), sid) + data(sid, b"next", end=True))
        twin.send_to_server()

    shots = assert_alike(script)
    states = [state[0] for state in shots[-1]["streams"].values()]
    assert states == ["COMPLETE", "COMPLETE"]

"""Review 13: seq5's written-out steps and the splitter's WINDOW_UPDATE step, against h2's public path.

Two cores take the same server bytes: one built with the fast paths on (the
fence's written-out steps, the splitter's fused frames and its
``receive_stream_window_update`` hookup), one built with them off (every
frame through h2's public ``receive_data``, what ``HYPER_FAST_PATHS=0``
gives). The claim under review is that both keep identical bookkeeping and
fail alike; so after each read the tests compare what the two cores hold
(each stream's response, body, trailers and failure, the connection's
failure), what they send back, and h2's own per-stream records (state,
windows, expected and received content-length).

The server is an in-memory h2 connection for the handshake and header
blocks (its HPACK encoder keeps both cores' decoders in step); frames a real
server would not send (a DATA frame over the window, a WINDOW_UPDATE inside
a header block) are written byte by byte.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.settings
import pytest

import hyper.exceptions
from hyper.exceptions import HyperError
from hyper.http20 import core as core_module
from hyper.http20 import h2_adapters, h2_internals, h2_internals_receive, h2_internals_steps
from hyper.http20.core import H2Core
from tests.core_pairs import AlwaysWalks, CoreAndServer
from tests.fast_paths import force_fast_paths_on

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/")]
HEAD = [(b":method", b"HEAD"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/")]
POST = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/up")]

DATA, HEADERS, RST_STREAM, SETTINGS, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 8, 9
END_STREAM, END_HEADERS, PADDED = 0x1, 0x4, 0x8


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    """One raw frame (RFC 9113 section 4.1)."""
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big") + payload


def data(stream_id: int, body: bytes, end: bool = False, pad: int | None = None) -> bytes:
    """A DATA frame; ``pad`` adds the PADDED flag with that many padding bytes (section 6.1)."""
    flags = END_STREAM if end else 0
    if pad is None:
        return frame(DATA, flags, stream_id, body)
    return frame(DATA, flags | PADDED, stream_id, bytes([pad]) + body + b"\0" * pad)


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, increment.to_bytes(4, "big"))


class Twin(CoreAndServer):
    """A core and its in-memory h2 server, past the handshake.

    ``mode``: ``"fast"``, every fast path on; ``"public"``, the fast paths
    off (h2's public API, as with ``HYPER_FAST_PATHS=0``: a malformed
    response then fails the connection, since the public API cannot tell a
    stream error); ``"h2path"``, the fenced connection with each step under
    review turned off (see :func:`h2_steps_only`), so h2's own methods do
    the bookkeeping and stream errors stay stream errors.
    """

    def __init__(self, mode: str, **core_options: Any) -> None:
        handshake = core_options.pop("_handshake", True)
        with pytest.MonkeyPatch.context() as patch:
            if mode == "public":
                patch.setattr(h2_internals, "_enabled", False)
            else:
                force_fast_paths_on(patch)
            super().__init__(
                H2Core(**core_options),
                reference=False,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        self.mode = mode
        if mode == "h2path":
            self.core._frames.fast_path = False  # every DATA and HEADERS through h2's _receive_frame
            # h2's walk for every count, h2's next id and its own slot check.
            self.core._open_count = AlwaysWalks(self.core._h2, self.core._count_open_streams)
            self.core._open_count.cached = False
        if handshake:
            self.handshake()

    def handshake(self) -> None:
        """Both prefaces exchanged and both SETTINGS acknowledged."""
        self.send_to_server()
        self.core.receive(self.server.data_to_send())
        self.send_to_server()  # the SETTINGS ACK

    def open(self, headers: list[tuple[bytes, bytes]], end_stream: bool = True) -> int:
        stream_id = self.core.open_stream(list(headers), end_stream=end_stream)
        self.send_to_server()
        return stream_id

    def block(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        """The server's HPACK encoding of ``headers``, its encoder's state moving as when sent.

        Straight from the server's encoder: the frame around it is written
        by hand, so it may be one h2's server side would refuse to send.
        """
        del stream_id  # the block does not depend on it (RFC 9113 section 4.3)
        return bytes(self.server.encoder.encode(headers))


def headers(block: bytes, stream_id: int, end: bool = False) -> bytes:
    return frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), stream_id, block)


def snapshot(twin: Twin) -> dict[str, Any]:
    """What a core holds and sends, and h2's records of each stream, comparable across modes."""
    core = twin.core
    streams = {}
    for stream_id, stream in sorted(core.streams.items()):
        failure = core.stream_failure(stream)
        streams[stream_id] = (
            stream.response.name,
            stream.headers,
            stream.trailers,
            b"".join(bytes(chunk) for chunk in stream.data),
            None if failure is None else f"{type(failure).__name__}: {failure}",
        )
    h2conn: h2.connection.H2Connection = core._h2
    records = {}
    for stream_id, h2stream in sorted(h2conn.streams.items()):
        records[stream_id] = (
            h2stream.state_machine.state.name,
            h2stream.state_machine.stream_closed_by,
            h2stream._inbound_window_manager.current_window_size,
            h2stream.outbound_flow_control_window,
            h2stream._expected_content_length,
            h2stream._actual_content_length,
        )
    fatal = core.fatal
    return {
        "streams": streams,
        "h2": records,
        "fatal": None if fatal is None else f"{type(fatal).__name__}: {fatal}",
        "sent": core.data_to_send(),
        "windows": (h2conn.inbound_flow_control_window, h2conn.outbound_flow_control_window),
    }


def h2_steps_only(patch: pytest.MonkeyPatch) -> None:
    """Turn off every step under review: h2's own code does what they write out."""
    patch.setattr(core_module, "send_request_headers", lambda *args, **kwargs: None)
    patch.setattr(h2_internals_steps, "_STREAM_WRITTEN_OUT", False)
    patch.setattr(h2_internals_receive, "fuse_steps", False)
    patch.setattr(h2_internals_receive, "_ACCOUNTING_WRITTEN_OUT", False)
    patch.setattr(h2_adapters, "receive_stream_window_update", lambda *args: None)


def both(
    script: Any, reference: str = "h2path", **core_options: Any
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Run ``script(twin, feed)`` on a fast and a reference twin; yield their snapshots after each feed."""
    fast_shots: list[dict[str, Any]] = []
    public_shots: list[dict[str, Any]] = []
    for mode, shots in (("fast", fast_shots), (reference, public_shots)):
        with pytest.MonkeyPatch.context() as patch:
            if mode == "h2path":
                h2_steps_only(patch)
            twin = Twin(mode, **core_options)

            def feed(raw: bytes, twin: Twin = twin, shots: list[dict[str, Any]] = shots) -> None:
                twin.core.receive(raw)
                shots.append(snapshot(twin))

            try:
                script(twin, feed)
            except HyperError as exc:
                # A core that failed refuses new requests: where and how, compared.
                shots.append({"raised": f"{type(exc).__name__}: {exc}"})
    assert len(fast_shots) == len(public_shots)
    yield from zip(fast_shots, public_shots, strict=True)


def assert_alike(script: Any, reference: str = "h2path", **core_options: Any) -> list[dict[str, Any]]:
    """The fast twin and the reference agree after every read; returns the fast twin's snapshots."""
    fast_shots = []
    for index, (fast, public) in enumerate(both(script, reference, **core_options)):
        assert fast == public, f"the modes part after read {index}"
        fast_shots.append(fast)
    return fast_shots


# -- bae3760: a stream WINDOW_UPDATE inside a header block ------------------------------------


def test_window_update_inside_a_header_block_is_a_connection_error_in_both_modes() -> None:
    def script(twin: Twin, feed: Any) -> None:
        upload = twin.open(POST, end_stream=False)  # OPEN: the step's case
        other = twin.open(GET)
        block = twin.block(other, [(b":status", b"200")])
        feed(
            frame(HEADERS, 0, other, block[:1])  # the block stays open
            + window_update(upload, 1000)
            + frame(CONTINUATION, END_HEADERS, other, block[1:])
        )

    shots = assert_alike(script, reference="public")
    assert shots[-1]["fatal"] is not None


def test_zero_window_update_inside_a_header_block_fails_the_connection_in_both_modes() -> None:
    def script(twin: Twin, feed: Any) -> None:
        upload = twin.open(POST, end_stream=False)
        other = twin.open(GET)
        block = twin.block(other, [(b":status", b"200")])
        feed(
            frame(HEADERS, 0, other, block[:1])
            + window_update(upload, 0)
            + frame(CONTINUATION, END_HEADERS, other, block[1:])
        )

    shots = assert_alike(script, reference="public")
    assert shots[-1]["fatal"] is not None


# -- bae3760: a stream WINDOW_UPDATE in every state -------------------------------------------


def _reset_by_us(twin: Twin, stream_id: int) -> None:
    twin.core.reset(stream_id, 8)  # CANCEL
    twin.send_to_server()


@pytest.mark.parametrize(
    "state",
    ["open", "half-closed-local", "half-closed-remote", "closed", "reset-by-us", "idle", "connection"],
)
@pytest.mark.parametrize("increment", [1, 65535, 2**31 - 1 - 65535, 2**31 - 65535, 2**31 - 1])
@pytest.mark.parametrize("reference", ["h2path", "public"])
def test_window_update_on_a_stream_in_each_state_agrees_with_h2(
    state: str, increment: int, reference: str
) -> None:
    def script(twin: Twin, feed: Any) -> None:
        stream_id = 0
        if state in ("open", "half-closed-remote", "closed", "reset-by-us"):
            stream_id = twin.open(POST, end_stream=False)
        elif state == "half-closed-local":
            stream_id = twin.open(GET)
        elif state == "idle":
            twin.open(GET)
            stream_id = 5  # never opened: above every id used (section 5.1)
        if state in ("half-closed-remote", "closed"):
            block = twin.block(stream_id, [(b":status", b"200")])
            feed(headers(block, stream_id, end=True))  # the server is done first
        if state == "closed":
            twin.core.end_body(stream_id)
            twin.send_to_server()
        if state == "reset-by-us":
            _reset_by_us(twin, stream_id)
        feed(window_update(stream_id, increment))
        feed(window_update(stream_id, increment))  # twice: an overflow on the second for large ones

    assert_alike(script, reference)


def test_a_credit_after_initial_window_size_shrinks_agrees_with_h2() -> None:
    """RFC 9113 6.9.2: SETTINGS_INITIAL_WINDOW_SIZE moves every open stream's window, even below 0."""

    def script(twin: Twin, feed: Any) -> None:
        upload = twin.open(POST, end_stream=False)
        twin.core.send_body(upload, memoryview(b"x" * 60000))
        twin.send_to_server()
        twin.server.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
        feed(twin.server.data_to_send())  # the window is now 1000 - 60000 < 0
        twin.send_to_server()
        feed(window_update(upload, 100))  # still below zero
        feed(window_update(upload, 2**31 - 1 - 100))  # h2: -58900 + ... within the limit
        twin.server.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
        feed(twin.server.data_to_send())  # the window would exceed 2**31-1: h2 decides
        feed(window_update(upload, 1))

    assert_alike(script)


# -- seq5: a response block's content-length and cookie, the last DATA frame ------------------

#: (content-length values, body frames as (size, end_stream, pad)) for a GET's response.
LENGTHS = [
    b"5",
    b"0005",
    b"+5",
    b" 5",
    b"5 ",
    b"5\t",
    b"0x5",
    b"5_0",
    b"",
    b"-0",
    b"\xd9\xa5",  # ARABIC-INDIC DIGIT FIVE in UTF-8: not ASCII digits
    b"99999999999999999999999",
    b"0",
]


def respond(
    method: list[tuple[bytes, bytes]],
    fields: list[tuple[bytes, bytes]],
    frames: list[tuple[int, bool, int | None]],
    end_on_headers: bool = False,
    trailers: list[tuple[bytes, bytes]] | None = None,
    one_read: bool = False,
    repeat: int = 2,
) -> list[dict[str, Any]]:
    """A request and its response through both modes, ``repeat`` times on one connection."""

    def script(twin: Twin, feed: Any) -> None:
        for _ in range(repeat):
            stream_id = twin.open(method)
            raw = [headers(twin.block(stream_id, fields), stream_id, end=end_on_headers)]
            for size, end, pad in frames:
                raw.append(data(stream_id, b"b" * size, end=end, pad=pad))
            if trailers is not None:
                raw.append(headers(twin.block(stream_id, trailers), stream_id, end=True))
            if one_read:
                feed(b"".join(raw))
            else:
                for piece in raw:
                    feed(piece)
            twin.send_to_server()

    return assert_alike(script)


@pytest.mark.parametrize("value", LENGTHS)
@pytest.mark.parametrize(
    "body",
    [
        [(5, True, None)],
        [(3, False, None), (2, True, None)],
        [(5, True, 4)],
        [(6, True, None)],
        [(4, True, None)],
        [(0, True, None)],
    ],
)
def test_content_length_values_agree_with_h2(value: bytes, body: list[Any]) -> None:
    respond(GET, [(b":status", b"200"), (b"content-length", value)], body)


@pytest.mark.parametrize("one_read", [False, True])
@pytest.mark.parametrize(
    "values",
    [[b"5", b"5"], [b"5", b"6"], [b"5", b"x"], [b"x", b"5"], [b"05", b"5"], [b"5", b"5", b"5"]],
)
def test_several_content_length_fields_agree_with_h2(values: list[bytes], one_read: bool) -> None:
    fields = [(b":status", b"200")] + [(b"content-length", value) for value in values]
    respond(GET, fields, [(5, True, None)], one_read=one_read)


@pytest.mark.parametrize("status", [b"200", b"204", b"304"])
@pytest.mark.parametrize("length", [None, b"5", b"0", b"x"])
@pytest.mark.parametrize("end_on_headers", [True, False])
def test_head_and_bodiless_statuses_with_content_length_agree_with_h2(
    status: bytes, length: bytes | None, end_on_headers: bool
) -> None:
    """RFC 9113 8.1.1: a HEAD response (or 204/304) declares a length it never sends."""
    fields = [(b":status", status)] + ([] if length is None else [(b"content-length", length)])
    body: list[Any] = [] if end_on_headers else [(0, True, None)]
    for method in (HEAD, GET):
        respond(method, fields, body, end_on_headers=end_on_headers)
    # A HEAD response that does carry a body (malformed: h2 expects 0 bytes).
    respond(HEAD, fields, [(5, True, None)])


#: More ASCII digits than int() converts (sys.get_int_max_str_digits(): 4300
#: by default since CPython 3.11 and 3.10.7); 0 there means no limit.
_DIGIT_LIMIT = getattr(sys, "get_int_max_str_digits", lambda: 0)()


@pytest.mark.skipif(not _DIGIT_LIMIT, reason="this interpreter converts any number of digits")
def test_a_content_length_longer_than_int_parses_agrees_with_h2() -> None:
    """ASCII digits int() refuses: a malformed response, as h2 says, never a ValueError."""
    value = b"9" * (_DIGIT_LIMIT + 1)
    shots = respond(GET, [(b":status", b"200"), (b"content-length", value)], [(5, True, None)])
    failure = shots[0]["streams"][1][4]
    assert failure is not None and "Invalid content-length header" in failure
    assert shots[-1]["fatal"] is None  # one stream's error; the second request went through
    assert shots[-1]["streams"][3][4] is not None


@pytest.mark.skipif(not _DIGIT_LIMIT, reason="this interpreter converts any number of digits")
def test_the_frames_read_with_a_content_length_of_too_many_digits_are_kept() -> None:
    def script(twin: Twin, feed: Any) -> None:
        first = twin.open(GET)  # our preface and request; the server's preface not read yet
        value = b"9" * (_DIGIT_LIMIT + 1)
        twin.server.receive_data(b"")  # nothing: its SETTINGS and ACK are queued
        read = (
            twin.server.data_to_send()
            + headers(twin.block(first, [(b":status", b"200"), (b"content-length", value)]), first)
            + data(first, b"abc", end=True)
        )
        try:
            feed(read)
        except ValueError:
            # The escaping error is the test above's; here: what the read left.
            feed(b"")
        twin.send_to_server()
        second = twin.open(GET)
        feed(headers(twin.block(second, [(b":status", b"200")]), second) + data(second, b"ok", end=True))

    shots = assert_alike(script, _handshake=False)
    assert shots[-1]["fatal"] is None
    assert shots[-1]["streams"][3][:4] == ("COMPLETE", [(b":status", b"200")], None, b"ok")


@pytest.mark.parametrize(
    "trailers",
    [
        [(b"x-checksum", b"1")],
        [(b"content-length", b"5")],
        [(b"content-length", b"7")],
        [(b"content-length", b"bad")],
        [(b"cookie", b"a=1"), (b"cookie", b"b=2")],
    ],
)
@pytest.mark.parametrize("length", [None, b"5"])
def test_trailers_agree_with_h2(trailers: list[tuple[bytes, bytes]], length: bytes | None) -> None:
    fields = [(b":status", b"200")] + ([] if length is None else [(b"content-length", length)])
    respond(GET, fields, [(5, False, None)], trailers=trailers)


def test_trailers_without_end_stream_and_a_bad_length_fail_in_h2s_order() -> None:
    """h2 reads the trailers' content-length before it refuses trailers without END_STREAM."""

    def script(twin: Twin, feed: Any) -> None:
        for value in (b"bad", b"5"):
            stream_id = twin.open(GET)
            feed(headers(twin.block(stream_id, [(b":status", b"200")]), stream_id))
            feed(data(stream_id, b"hello"))
            feed(headers(twin.block(stream_id, [(b"content-length", value)]), stream_id, end=False))

    assert_alike(script)


@pytest.mark.parametrize(
    "fields",
    [
        [(b"cookie", b"a=1")],
        [(b"cookie", b"a=1"), (b"cookie", b"b=2")],
        [(b"cookie", b"a=1"), (b"content-length", b"5"), (b"cookie", b"b=2")],
        [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
        [(b"cookie", b"")],
    ],
)
def test_cookie_crumbs_agree_with_h2(fields: list[tuple[bytes, bytes]]) -> None:
    respond(GET, [(b":status", b"200")] + fields, [(5, True, None)], repeat=3)


def test_informational_response_with_content_length_agrees_with_h2() -> None:
    def script(twin: Twin, feed: Any) -> None:
        stream_id = twin.open(GET)
        feed(headers(twin.block(stream_id, [(b":status", b"103"), (b"content-length", b"9")]), stream_id))
        feed(headers(twin.block(stream_id, [(b":status", b"200")]), stream_id))
        feed(data(stream_id, b"abc", end=True))

    assert_alike(script)


@pytest.mark.parametrize("over", ["stream", "connection", "both", "exact"])
@pytest.mark.parametrize("end", [True, False])
def test_last_data_bigger_than_a_window_agrees_with_h2(over: str, end: bool) -> None:
    """RFC 9113 6.9.1: a frame over the receiver's window is a flow-control error."""

    def script(twin: Twin, feed: Any) -> None:
        h2conn = twin.core._h2
        stream_id = twin.open(GET)
        feed(headers(twin.block(stream_id, [(b":status", b"200")]), stream_id))
        stream_window = h2conn.streams[stream_id]._inbound_window_manager.current_window_size
        connection_window = h2conn._inbound_flow_control_window_manager.current_window_size
        # Shrink the window to be tested by consuming it outside the frame
        # under test (both cores alike), so the frame stays small.
        if over in ("stream", "both"):
            h2conn.streams[stream_id]._inbound_window_manager.current_window_size = 3
        if over in ("connection", "both"):
            h2conn._inbound_flow_control_window_manager.current_window_size = 3
        if over == "exact":
            h2conn.streams[stream_id]._inbound_window_manager.current_window_size = 4
        assert stream_window > 4 and connection_window > 4
        feed(data(stream_id, b"abcd", end=end))
        other = twin.open(GET)  # the connection goes on (or stays failed) alike
        feed(headers(twin.block(other, [(b":status", b"200")]), other, end=True))

    assert_alike(script)


@pytest.mark.parametrize("pad", [0, 1, 200])
@pytest.mark.parametrize("length", [None, b"5"])
def test_padded_last_data_agrees_with_h2(pad: int, length: bytes | None) -> None:
    fields = [(b":status", b"200")] + ([] if length is None else [(b"content-length", length)])
    respond(GET, fields, [(2, False, pad), (3, True, pad)])
    respond(GET, fields, [(5, True, pad)], one_read=True)


@pytest.mark.parametrize("when", ["after-headers", "before-headers"])
def test_data_after_our_reset_agrees_with_h2(when: str) -> None:
    def script(twin: Twin, feed: Any) -> None:
        stream_id = twin.open(GET)
        if when == "after-headers":
            feed(headers(twin.block(stream_id, [(b":status", b"200"), (b"content-length", b"9")]), stream_id))
        _reset_by_us(twin, stream_id)
        feed(data(stream_id, b"abcd"))
        feed(data(stream_id, b"efghi", end=True))
        if when == "before-headers":
            feed(headers(twin.block(stream_id, [(b":status", b"200")]), stream_id, end=True))
        other = twin.open(GET)
        feed(headers(twin.block(other, [(b":status", b"200")]), other))
        feed(data(other, b"ok", end=True))

    assert_alike(script)


def test_a_core_reused_after_stream_errors_agrees_with_h2() -> None:
    """Malformed responses (stream errors) then plain ones on the same connection."""

    def script(twin: Twin, feed: Any) -> None:
        for fields, body in (
            ([(b":status", b"200"), (b"content-length", b"x")], b"abc"),
            ([(b":status", b"200"), (b"content-length", b"2")], b"abc"),
            ([(b":status", b"200"), (b"content-length", b"4")], b"abc"),
            ([(b":status", b"200"), (b"content-length", b"3")], b"abc"),
            ([(b":status", b"200")], b"abc"),
        ):
            stream_id = twin.open(GET)
            feed(headers(twin.block(stream_id, fields), stream_id) + data(stream_id, body, end=True))
            twin.send_to_server()

    assert_alike(script)


# -- odd orders of frames on a response ----------------------------------------------------------


@pytest.mark.parametrize(
    "order",
    [
        "data-before-headers",
        "data-after-informational",
        "data-after-end-on-headers",
        "headers-after-end",
        "two-final-headers",
        "end-on-informational",
        "continuation-response",
        "priority-headers",
        "padded-headers",
    ],
)
def test_odd_frame_orders_agree_with_h2(order: str) -> None:
    def script(twin: Twin, feed: Any) -> None:
        stream_id = twin.open(GET)
        ok = twin.block(stream_id, [(b":status", b"200"), (b"content-length", b"3")])
        if order == "data-before-headers":
            feed(data(stream_id, b"abc", end=True))
        elif order == "data-after-informational":
            feed(headers(twin.block(stream_id, [(b":status", b"100")]), stream_id))
            feed(data(stream_id, b"abc", end=True))
        elif order == "data-after-end-on-headers":
            feed(headers(ok, stream_id, end=True))
            feed(data(stream_id, b"abc", end=True))
        elif order == "headers-after-end":
            feed(headers(ok, stream_id) + data(stream_id, b"abc", end=True))
            feed(headers(twin.block(stream_id, [(b"x", b"1")]), stream_id, end=True))
        elif order == "two-final-headers":
            feed(headers(ok, stream_id))
            feed(headers(twin.block(stream_id, [(b":status", b"200")]), stream_id))
            feed(data(stream_id, b"abc", end=True))
        elif order == "end-on-informational":
            feed(headers(twin.block(stream_id, [(b":status", b"103")]), stream_id, end=True))
        elif order == "continuation-response":
            feed(
                frame(HEADERS, 0, stream_id, ok[:2])
                + frame(CONTINUATION, 0, stream_id, ok[2:4])
                + frame(CONTINUATION, END_HEADERS, stream_id, ok[4:])
                + data(stream_id, b"abc", end=True)
            )
        elif order == "priority-headers":
            feed(frame(HEADERS, END_HEADERS | 0x20, stream_id, b"\0\0\0\0\x10" + ok))
            feed(data(stream_id, b"abc", end=True))
        elif order == "padded-headers":
            feed(frame(HEADERS, END_HEADERS | PADDED | END_STREAM, stream_id, b"\x03" + ok + b"\0\0\0"))
        twin.send_to_server()
        other = twin.open(GET)
        feed(headers(twin.block(other, [(b":status", b"200")]), other) + data(other, b"ok", end=True))

    assert_alike(script)


@pytest.mark.parametrize("limit", [0, 1, 2])
def test_max_concurrent_streams_dropping_under_open_streams_agrees_with_h2(limit: int) -> None:
    """RFC 9113 5.1.2: a lowered limit leaves open streams be; new ones wait until the count is under it."""
    answers: dict[str, list[Any]] = {"fast": [], "h2path": []}

    def script(twin: Twin, feed: Any) -> None:
        seen = answers[twin.mode]
        ids = [twin.open(GET) for _ in range(3)] + [twin.open(POST, end_stream=False)]
        twin.server.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limit})
        feed(twin.server.data_to_send())
        twin.send_to_server()
        seen.append(twin.core.can_open_stream())
        twin.core.reset(ids[3], 8)  # the upload, reset by us
        seen.append(twin.core.can_open_stream())
        for stream_id in ids[:3]:
            feed(headers(twin.block(stream_id, [(b":status", b"200")]), stream_id, end=True))
            seen.append(twin.core.can_open_stream())
        if twin.core.can_open_stream():
            seen.append(twin.open(GET))

    assert_alike(script)
    assert answers["fast"] == answers["h2path"]


@pytest.mark.parametrize("reference", ["h2path", "public"])
def test_repeated_blocks_across_table_size_updates_decode_as_h2s(reference: str) -> None:
    """The decode memo's stamp (seq5: the table's size limit as a plain field) across size updates.

    The server's encoder resizes its dynamic table (RFC 7541 6.3: an update
    at the start of the next block), sometimes to the size it had before, and
    repeats the same fields so the memo sees identical blocks under each.
    """

    def script(twin: Twin, feed: Any) -> None:
        fields = [
            (b":status", b"200"),
            (b"content-type", b"text/plain"),
            (b"x-long", b"v" * 40),
            (b"content-length", b"2"),
        ]
        for size in (4096, 0, 100, 4096, 0, 4096, 60, 60, 4096):
            if twin.server.encoder.header_table_size != size:
                twin.server.encoder.header_table_size = size
            for _ in range(3):
                stream_id = twin.open(GET)
                feed(headers(twin.block(stream_id, fields), stream_id) + data(stream_id, b"ok", end=True))
                twin.send_to_server()

    assert_alike(script, reference)


@pytest.mark.parametrize("limit", [1, 2, 100])
def test_pushed_streams_and_the_open_stream_count_agree_with_h2(limit: int) -> None:
    """Promised streams are the server's (even ids): they never count against its limit for ours."""
    answers: dict[str, list[Any]] = {"fast": [], "h2path": []}

    def script(twin: Twin, feed: Any) -> None:
        seen = answers[twin.mode]
        server = twin.server
        server.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limit})
        feed(server.data_to_send())
        twin.send_to_server()
        parent = twin.open(GET)
        seen.append(twin.core.can_open_stream())
        promised = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"a.test"),
            (b":path", b"/p"),
        ]
        for index, pushed in enumerate((2, 4)):
            path = (b":path", b"/p%d" % index)
            server.push_stream(parent, pushed, [*promised[:3], path])
            feed(server.data_to_send())
            seen.append(twin.core.can_open_stream())
        server.send_headers(parent, [(b":status", b"200")])
        server.send_headers(2, [(b":status", b"200"), (b"content-length", b"3")])
        server.send_data(2, b"abc", end_stream=True)
        feed(server.data_to_send())
        seen.append(twin.core.can_open_stream())
        server.send_data(parent, b"", end_stream=True)
        feed(server.data_to_send())
        seen.append(twin.core.can_open_stream())
        twin.send_to_server()
        if twin.core.can_open_stream():
            seen.append(twin.open(GET))

    assert_alike(script, enable_push=True, origin=("https", "a.test", 443))
    assert answers["fast"] == answers["h2path"]


@pytest.mark.parametrize("length", [0, 3, 5, 8])
def test_a_window_update_of_the_wrong_length_agrees_with_h2(length: int) -> None:
    """RFC 9113 6.9: a WINDOW_UPDATE payload other than 4 bytes is a FRAME_SIZE_ERROR."""

    def script(twin: Twin, feed: Any) -> None:
        upload = twin.open(POST, end_stream=False)
        feed(
            frame(
                WINDOW_UPDATE,
                0,
                upload,
                (1000).to_bytes(4, "big").rjust(length, b"\0")[-length:] if length else b"",
            )
        )

    assert_alike(script, reference="public")
    assert_alike(script)


@pytest.mark.parametrize("stream_window", [65535, 1000, 6 * 1024 * 1024])
def test_streams_opened_before_our_settings_are_acknowledged_agree_with_h2(stream_window: int) -> None:
    """RFC 9113 6.9.2: a stream's receive window is the INITIAL_WINDOW_SIZE in force when it opens,
    and moves with it when the server acknowledges our SETTINGS."""

    def script(twin: Twin, feed: Any) -> None:
        early = twin.open(GET)  # our SETTINGS are sent, not yet acknowledged
        feed(twin.server.data_to_send())  # the server's SETTINGS and its ACK of ours
        twin.send_to_server()
        late = twin.open(GET)
        for stream_id in (early, late):
            feed(
                headers(twin.block(stream_id, [(b":status", b"200")]), stream_id)
                + data(stream_id, b"x" * 900)
            )
        feed(data(early, b"y" * 100, end=True) + data(late, b"z" * 100, end=True))

    assert_alike(script, stream_window=stream_window, _handshake=False)


def test_the_last_stream_ids_and_exhaustion_agree_with_h2() -> None:
    """RFC 9113 5.1.1: 2**31-1 is the last client id; then the connection is out of ids."""
    opened: dict[str, list[Any]] = {"fast": [], "h2path": []}

    def script(twin: Twin, feed: Any) -> None:
        seen = opened[twin.mode]
        twin.open(GET)  # stream 1, answered below: a highest id exists
        feed(headers(twin.block(1, [(b":status", b"200")]), 1, end=True))
        # As if the ids up to here were used.
        twin.core._h2.highest_outbound_stream_id = 2**31 - 7
        for _ in range(4):
            try:
                stream_id = twin.open(GET)
            except hyper.exceptions.ConnectionTerminated as exc:
                seen.append(("refused", exc.retryable))
                continue
            seen.append(stream_id)
            feed(
                headers(twin.block(stream_id, [(b":status", b"200")]), stream_id)
                + data(stream_id, b"x", end=True)
            )

    assert_alike(script)
    assert opened["fast"] == opened["h2path"] == [2**31 - 5, 2**31 - 3, 2**31 - 1, ("refused", True)]


# -- random exchanges ---------------------------------------------------------------------------


def _random_exchange(seed: int) -> Any:
    """A script of random requests and server frames, the same for both twins (one seed)."""

    def script(twin: Twin, feed: Any) -> None:
        rng = random.Random(seed)
        pending = b""
        for _ in range(rng.randint(5, 25)):
            action = rng.random()
            open_ids = sorted(sid for sid, stream in twin.core.streams.items() if not stream.ended)
            if action < 0.25 or not open_ids:
                if twin.core.fatal is not None or not twin.core.can_open_stream():
                    break
                method = rng.choice([GET, GET, HEAD, POST])
                stream_id = twin.open(method, end_stream=method is not POST or rng.random() < 0.3)
                continue
            # Now and then a stream never opened (a connection error, RFC 9113 5.1).
            stream_id = max(open_ids) + 2 if rng.random() < 0.03 else rng.choice(open_ids)
            if action < 0.45:
                fields = [(b":status", rng.choice([b"200", b"200", b"204", b"304", b"404", b"103"]))]
                for _ in range(rng.choice([0, 1, 1, 2])):
                    fields.append(
                        (b"content-length", rng.choice([b"0", b"3", b"5", b"05", b"x", b" 3", b"8"]))
                    )
                if rng.random() < 0.2:
                    fields.append((b"cookie", b"c=%d" % rng.randint(0, 3)))
                pending += headers(twin.block(stream_id, fields), stream_id, end=rng.random() < 0.3)
            elif action < 0.75:
                size = rng.choice([0, 1, 3, 5, 100, 16000])
                pad = rng.choice([None, None, None, 0, 7])
                pending += data(stream_id, b"d" * size, end=rng.random() < 0.5, pad=pad)
            elif action < 0.85:
                pending += window_update(stream_id, rng.choice([1, 1000, 2**31 - 1]))
            elif action < 0.9:
                pending += frame(RST_STREAM, 0, stream_id, rng.choice([0, 2, 8]).to_bytes(4, "big"))
            elif action < 0.95:
                if stream_id in twin.core.streams:
                    twin.core.reset(stream_id, 8)  # CANCEL, ours
                    twin.send_to_server()
            else:
                trailers = [(b"x-t", b"1")] + ([(b"content-length", b"5")] if rng.random() < 0.3 else [])
                pending += headers(twin.block(stream_id, trailers), stream_id, end=rng.random() < 0.8)
            if rng.random() < 0.5:
                cut = rng.randint(0, len(pending))
                feed(pending[:cut])
                pending = pending[cut:]
        feed(pending)

    return script


@pytest.mark.parametrize("seed", range(150))
def test_random_exchanges_agree_with_h2(seed: int) -> None:
    assert_alike(_random_exchange(seed))

"""The API layer's short paths and memos (issue 14) change nothing a caller can see.

Each one is compared with the general path it skips: ``request_target``'s
plain-path shortcut with the general parse; ``build_request_headers`` and
the ``HTTPHeaderMap`` methods that were rewritten with the plain code they
replaced (kept here as the reference); the check memos with cold memos and
repeated refusals; the response's read without decoder set-up or a last
``_pull`` with what the session was asked and what came back.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hyper.common.request as request_module
import hyper.common.url as url_module
import hyper.http20.fields as fields_module
from hyper.common.request import checked_field, request_method
from hyper.common.url import request_target
from hyper.exceptions import HyperError, InvalidHeader, ReadTimeout, StreamResetError
from hyper.headers import HTTPHeaderMap, to_bytes
from hyper.http20.fields import build_request_headers
from hyper.http20.response import HTTP20Response, await_response, public_stream_ids, wait_limit

# -- outcomes ---------------------------------------------------------------------


def outcome(call: Any, *args: Any) -> tuple[str, Any]:
    """What a call returns, or the type and message of what it raises."""
    try:
        return "ok", call(*args)
    except Exception as exc:  # noqa: BLE001 - every outcome is compared
        return type(exc).__name__, str(exc)


# -- request_target ----------------------------------------------------------------

_NEVER = re.compile(r"(?!)")


def general_request_target(url: Any) -> tuple[str, Any]:
    """request_target with its plain-path shortcut switched off."""
    saved = url_module._PLAIN_PATH
    url_module._PLAIN_PATH = _NEVER
    try:
        return outcome(request_target, url)
    finally:
        url_module._PLAIN_PATH = saved


_SAMPLE_CHARS = [chr(code) for code in range(0x80)] + ["\x80", "é", "\u2028", "\ud800", "\U0001f600"]


@pytest.mark.parametrize("char", _SAMPLE_CHARS, ids=[f"U+{ord(c):04X}" for c in _SAMPLE_CHARS])
def test_plain_path_shortcut_agrees_for_every_character(char: str) -> None:
    for url in ("/" + char, "/a" + char + "b", "/x?q=" + char, char + "/"):
        assert outcome(request_target, url) == general_request_target(url), url


def test_plain_path_shortcut_returns_the_callers_string() -> None:
    url = "/index.html?q=1&r=%20"
    path, scheme, authority = request_target(url)
    assert path is url and scheme is None and authority is None


class StrSubclass(str):
    pass


def test_str_subclass_and_bytes_take_the_general_path() -> None:
    for url in (StrSubclass("/a b"), StrSubclass("/ab"), b"/ab", b"/a\xe9"):
        assert outcome(request_target, url) == general_request_target(url)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", max_codepoint=0x2FF) | st.sampled_from('/?#%{}<>`" \t')))
def test_plain_path_shortcut_agrees_on_any_text(text: str) -> None:
    for url in (text, "/" + text):
        assert outcome(request_target, url) == general_request_target(url)


# -- build_request_headers -----------------------------------------------------------

_CONNECTION_SPECIFIC = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}


def reference_build(
    method: Any, path: Any, authority: Any, scheme: Any, headers: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """build_request_headers as it was written before its short paths (field by field)."""
    method = request_method(method)
    for text, what in ((path, "path"), (authority, "authority")):
        if not text or any(c in text for c in "\r\n\x00 "):
            raise InvalidHeader(f"invalid {what} {text!r}")
    fields: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        lower = name.lower()
        if not lower or lower.startswith(b":") or b" " in lower or b":" in lower:
            raise InvalidHeader(f"invalid header name {name!r}")
        for bad in (b"\r", b"\n", b"\x00"):
            if bad in name or bad in value:
                raise InvalidHeader(f"header {name!r} contains CR, LF or NUL")
        if lower in _CONNECTION_SPECIFIC:
            continue
        if lower == b"te" and value.strip().lower() != b"trailers":
            continue
        if lower == b"host":
            authority = value.decode("latin-1")
            continue
        fields.append((lower, value))
    return [
        (b":method", method.encode("ascii")),
        (b":scheme", scheme.encode("ascii")),
        (b":authority", authority.encode("idna") if not authority.isascii() else authority.encode("ascii")),
        (b":path", path.encode("utf-8")),
        *fields,
    ]


_NAME_BYTES = st.sampled_from([b"a", b"X", b"-", b" ", b":", b"\r", b"\n", b"\x00", b"\t", b"\xe9"])
_NAMES = st.one_of(
    st.sampled_from(
        [b"te", b"TE", b"host", b"Host", b"connection", b"Upgrade", b"accept", b"X-Id", b":path", b""]
    ),
    st.lists(_NAME_BYTES, max_size=5).map(b"".join),
)
_VALUES = st.one_of(
    st.sampled_from([b"trailers", b" Trailers ", b"gzip", b"example.org:8443", b"caf\xc3\xa9.example", b""]),
    st.lists(st.sampled_from([b"v", b" ", b"\r", b"\n", b"\x00", b"\x7f", b"\xff"]), max_size=5).map(
        b"".join
    ),
)
_TEXTS = st.sampled_from(["/", "/a", "/a b", "/\r", "", "example.org", "exämple.org", "h:1", "a\x00"])


@settings(max_examples=500, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", b"GET", "G T", "", "GÉT"]),
    path=_TEXTS,
    authority=_TEXTS,
    scheme=st.sampled_from(["https", "http"]),
    headers=st.lists(st.tuples(_NAMES, _VALUES), max_size=4),
)
def test_build_request_headers_agrees_with_the_field_by_field_code(
    method: Any, path: str, authority: str, scheme: str, headers: list[tuple[bytes, bytes]]
) -> None:
    # Twice: the second call may come from the leading-fields memo.
    for _ in range(2):
        expected = outcome(reference_build, method, path, authority, scheme, headers)
        assert outcome(build_request_headers, method, path, authority, scheme, headers) == expected


def test_leading_fields_memo_is_bounded() -> None:
    for index in range(fields_module._LEADING_MEMO_SIZE * 3):
        fields = build_request_headers("GET", "/", f"host{index}.example", "https", [])
        assert fields[2] == (b":authority", f"host{index}.example".encode())
        assert len(fields_module._LEADING_MEMO) <= fields_module._LEADING_MEMO_SIZE


# -- the check memos -----------------------------------------------------------------


def test_checked_field_memo_gives_what_a_cold_check_gives() -> None:
    samples: list[tuple[Any, Any]] = [
        ("User-Agent", "bench/1.0"),
        (b"accept", b" */* "),
        ("host", "café.example:8443"),
        ("Content-Length", "12"),
        ("x", 5),
        ("x", "\ud800"),
        ("bad name", "v"),
        (":path", "/"),
        ("x", "a\r\nb"),
        ("content-length", "1_0"),
        (b"x", bytearray(b"v")),
        (5, "v"),
    ]
    for name, value in samples:
        request_module._CHECKED_FIELDS.clear()
        cold = outcome(checked_field, name, value)
        warm = [outcome(checked_field, name, value) for _ in range(3)]
        assert warm == [cold] * 3, (name, value)
        if cold[0] != "ok":
            assert not request_module._CHECKED_FIELDS  # refusals are never remembered


def test_checked_field_memo_keeps_str_and_bytes_apart() -> None:
    assert checked_field("Accept", "a") == (b"Accept", b"a")
    assert checked_field(b"Accept", b"a") == (b"Accept", b"a")
    assert checked_field("ACCEPT", "a") == (b"ACCEPT", b"a")  # names keep the case they came in


def test_checked_field_memo_is_bounded() -> None:
    for index in range(request_module._MAX_REMEMBERED * 3):
        assert checked_field("x-id", str(index)) == (b"x-id", str(index).encode())
        assert len(request_module._CHECKED_FIELDS) <= request_module._MAX_REMEMBERED


def test_method_memo_remembers_only_what_passed() -> None:
    for _ in range(3):
        assert request_method("PATCH") == "PATCH" and type(request_method("PATCH")) is str
        assert request_method(b"PATCH") == "PATCH"
        with pytest.raises(InvalidHeader):
            request_method("PA TCH")
        with pytest.raises(TypeError):
            request_method(5)  # type: ignore[arg-type]
    assert "PA TCH" not in request_module._CHECKED_METHODS
    assert request_method(StrSubclass("GET")) == "GET"
    assert len(request_module._CHECKED_METHODS) <= request_module._MAX_REMEMBERED


# -- HTTPHeaderMap -----------------------------------------------------------------------


class ReferenceMap(HTTPHeaderMap):
    """HTTPHeaderMap with get, __contains__ and __setitem__ as they were written before."""

    def get(self, name: Any, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, (str, bytes)):
            return False
        wanted = to_bytes(name).lower()
        return any(n.lower() == wanted for n, _ in self._fields)

    def __setitem__(self, name: Any, value: Any) -> None:
        del_key = to_bytes(name).lower()
        self._fields = [(n, v) for n, v in self._fields if n.lower() != del_key]
        for item in value if isinstance(value, list) else [value]:
            self.add(name, item)


_MAP_NAMES = st.sampled_from(["a", "A", b"a", b"B", "b", "ü", 5, None, b"content-length"])
_MAP_VALUES = st.one_of(
    st.sampled_from(["x", b"y", 3, True, None, 1.5]),
    st.lists(st.sampled_from(["x", b"y", 3, None]), max_size=3),
)
_OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["get", "contains", "setitem", "getitem", "add"]), _MAP_NAMES, _MAP_VALUES),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(_OPERATIONS)
def test_header_map_agrees_with_the_plain_code(operations: list[tuple[str, Any, Any]]) -> None:
    ours, reference = HTTPHeaderMap(), ReferenceMap()
    for operation, name, value in operations:
        results = []
        for header_map in (ours, reference):
            if operation == "get":
                results.append(outcome(header_map.get, name, "default"))
            elif operation == "contains":
                results.append(outcome(header_map.__contains__, name))
            elif operation == "setitem":
                results.append(outcome(header_map.__setitem__, name, value))
            elif operation == "getitem":
                results.append(outcome(header_map.__getitem__, name))
            else:
                results.append(outcome(header_map.add, name, value))
        assert results[0] == results[1], (operation, name, value)
        assert ours._fields == reference._fields


def test_from_wire_takes_the_list_and_a_subclass_gets_its_init() -> None:
    fields = [(b"a", b"1")]
    header_map = HTTPHeaderMap.from_wire(fields)
    assert type(header_map) is HTTPHeaderMap and header_map.items() == fields
    header_map.add(b"b", b"2")
    assert fields == [(b"a", b"1"), (b"b", b"2")]  # taken over, as before

    class Tagged(HTTPHeaderMap):
        def __init__(self) -> None:
            super().__init__()
            self.tag = "set"

    tagged = Tagged.from_wire([(b"a", b"1")])
    assert tagged.tag == "set" and tagged[b"a"] == [b"1"]


# -- the response and its body reader ----------------------------------------------------


class ScriptedSession:
    """The session operations a response calls, answering from a script of body pieces."""

    read_timeout = 5.0

    def __init__(self, pieces: list[Any]) -> None:
        self.pieces = list(pieces)
        self.reads: list[int | None] = []
        self.discarded: list[int] = []

    def read_body(self, stream_id: int, max_bytes: int | None, timeout: Any, on_timeout: Any) -> Any:
        self.reads.append(max_bytes)
        self.last_on_timeout = on_timeout
        piece = self.pieces.pop(0)
        if isinstance(piece, BaseException):
            raise piece
        data, trailers = piece
        if max_bytes is not None and len(data) > max_bytes:
            # As the session does: what is left waits for the next read, and
            # the trailers come with the last bytes.
            self.pieces.insert(0, (data[max_bytes:], trailers))
            return data[:max_bytes], None
        return piece

    def await_response_start(self, stream_id: int, timeout: Any, on_timeout: Any) -> tuple[Any, None]:
        return self.await_headers(stream_id, timeout, on_timeout), None  # the body is read with read_body

    def await_headers(self, stream_id: int, timeout: Any, on_timeout: Any) -> list[tuple[bytes, bytes]]:
        self.last_on_timeout = on_timeout
        piece = self.pieces.pop(0)
        if isinstance(piece, BaseException):
            raise piece
        return list(piece)

    def discard(self, stream_id: int) -> None:
        self.discarded.append(stream_id)


def response(pieces: list[Any], fields: list[tuple[bytes, bytes]] | None = None) -> tuple[Any, Any]:
    session = ScriptedSession(pieces)
    head = [(b":status", b"200"), *(fields or [])]
    return HTTP20Response(session, 3, head, public_id=7), session  # type: ignore[arg-type]


def test_a_complete_plain_body_is_one_session_call() -> None:
    resp, session = response([(b"hello", [])])
    assert resp.read() == b"hello"
    assert session.reads == [1024 * 1024]  # no decoder, and no last call that could only say "the end"
    assert resp.read() == b"" and resp.read(10) == b"" and session.reads == [1024 * 1024]
    assert resp.closed and len(resp.trailers) == 0


def test_a_body_in_pieces_is_read_whole() -> None:
    resp, session = response([(b"he", None), (b"ll", None), (b"o", [(b"x-sum", b"1")])])
    assert resp.read(3) == b"hel"
    assert resp.read() == b"lo"
    assert resp.trailers[b"x-sum"] == [b"1"]
    assert resp.read() == b""


def test_content_encoding_still_decodes_and_identity_still_passes() -> None:
    packed = gzip.compress(b"hello" * 100)
    resp, _ = response([(packed[:10], None), (packed[10:], [])], [(b"content-encoding", b"gzip")])
    assert resp.read() == b"hello" * 100
    resp, _ = response([(b"raw", [])], [(b"content-encoding", b"identity")])
    assert resp.read() == b"raw"
    resp, _ = response([(packed, [])], [(b"content-encoding", b"gzip")])
    assert resp.read(decode_content=False) == packed


def test_trailers_taken_before_the_end_fill_in() -> None:
    resp, _ = response([(b"body", [(b"x-checksum", b"abc")])])
    early = resp.trailers
    assert len(early) == 0
    resp.read()
    assert early is resp.trailers and early[b"x-checksum"] == [b"abc"]


def test_a_failure_names_the_public_stream_and_keeps_the_partial_body() -> None:
    resp, _ = response([(b"part", None), StreamResetError("stream 3 was reset", 3, 8)])
    with pytest.raises(StreamResetError) as caught:
        resp.read()
    assert caught.value.stream_id == 7 and "stream 7" in str(caught.value)
    assert caught.value.partial == b"part"  # type: ignore[attr-defined]


def test_closed_response_still_refuses_reads() -> None:
    resp, session = response([(b"part", None)])
    resp.read(2)
    resp.close()
    assert session.discarded == [3]
    with pytest.raises(HyperError, match="closed before its end"):
        resp.read()


def test_lazy_timeout_errors_say_what_wait_limit_says() -> None:
    resp, session = response([(b"x", None)])
    resp.read(1)
    made = session.last_on_timeout()
    _, expected = wait_limit(5.0, None, "no data on stream 7")
    assert isinstance(made, ReadTimeout) and str(made) == str(expected())
    session = ScriptedSession([[(b":status", b"204")]])
    await_response(session, 3, 2.5, resp._limits, public_id=9)  # type: ignore[arg-type]
    _, expected = wait_limit(2.5, None, "no response on stream 9")
    assert str(session.last_on_timeout()) == str(expected())


def test_public_stream_ids_renames_only_the_wire_streams_errors() -> None:
    with pytest.raises(StreamResetError) as caught, public_stream_ids(3, 7):
        raise StreamResetError("stream 3 was reset (stream 33 untouched)", 3, 8)
    assert caught.value.stream_id == 7 and str(caught.value) == "stream 7 was reset (stream 33 untouched)"
    with pytest.raises(StreamResetError) as caught, public_stream_ids(3, 7):
        raise StreamResetError("stream 5 was reset", 5, 8)
    assert caught.value.stream_id == 5
    with pytest.raises(ValueError), public_stream_ids(3, 7):
        raise ValueError("not ours")
    with public_stream_ids(3, 7):
        pass

"""The API layer's per-request steps of issue 14, round 2, change nothing a caller can see.

Each short path is compared with the general one it replaces:

* a header map whose names are vouched lower case (``from_wire(lower_case=True)``,
  what a response's map is) answers every lookup as a map that lower-cases
  each name, and stops trusting its names once any is added;
* a response's whole held body read in one step, against the general read
  (``HYPER_FAST_PATHS=0`` switches the short path off: ``FAST_PATHS``);
* the :status table, against the parse it replaces;
* ``request()``'s memo keyed on the caller's own arguments, against a fresh
  connection, with refusals never remembered;
* the registry's lock-free ``release()``.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hyper.http20.response as response_module
from hyper import HTTP20Connection
from hyper.exceptions import HostChangedError, InvalidHeader, ProtocolError
from hyper.headers import HTTPHeaderMap
from hyper.http20.response import _STATUSES, HTTP20Response, _parsed_status, await_response
from hyper.limits import Limits

# -- outcomes ------------------------------------------------------------------------


def outcome(call: Any, *args: Any) -> tuple[str, Any]:
    """What a call returns, or the type and message of what it raises."""
    try:
        return "ok", call(*args)
    except Exception as exc:  # noqa: BLE001 - every outcome is compared
        return type(exc).__name__, str(exc)


# -- header maps with names vouched lower case -------------------------------------------

_LOWER_NAMES = st.sampled_from([b"a", b"b", b"content-encoding", b"set-cookie", b"x-1", b"\xc3\xa9"])
_ANY_NAMES = st.sampled_from(
    ["a", "A", b"a", b"B", "b", "Content-Encoding", b"content-encoding", "é", b"X-1"]
)
_VALUES = st.sampled_from([b"1", b"gzip", "x", b"y, z"])
_OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(
            ["get", "getitem", "contains", "get_first", "get_all_str", "get_str", "iter", "len", "delitem"]
            + ["add", "setitem", "merge", "replace", "eq"]
        ),
        _ANY_NAMES,
        _VALUES,
    ),
    max_size=14,
)


def _apply(header_map: HTTPHeaderMap, operation: str, name: Any, value: Any) -> tuple[str, Any]:
    calls = {
        "get": lambda: header_map.get(name, "default"),
        "getitem": lambda: header_map[name],
        "contains": lambda: name in header_map,
        "get_first": lambda: header_map.get_first(name),
        "get_all_str": lambda: header_map.get_all_str(name),
        "get_str": lambda: header_map.get_str(name),
        "iter": lambda: list(header_map),
        "len": lambda: len(header_map),
        "delitem": lambda: header_map.__delitem__(name),
        "add": lambda: header_map.add(name, value),
        "setitem": lambda: header_map.__setitem__(name, value),
        "merge": lambda: header_map.merge([(name, value)]),
        "replace": lambda: header_map.replace(name, value),
        "eq": lambda: header_map == HTTPHeaderMap([(name, value)]),
    }
    return outcome(calls[operation])


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(_LOWER_NAMES, _VALUES.map(lambda v: v if isinstance(v, bytes) else v.encode()))),
    _OPERATIONS,
)
def test_a_map_of_lower_case_names_answers_as_the_general_map(
    fields: list[tuple[bytes, bytes]], operations: list[tuple[str, Any, Any]]
) -> None:
    vouched = HTTPHeaderMap.from_wire(list(fields), lower_case=True)
    general = HTTPHeaderMap.from_wire(list(fields))
    assert vouched._names_lower and not general._names_lower
    for operation, name, value in operations:
        assert _apply(vouched, operation, name, value) == _apply(general, operation, name, value), operation
        assert vouched._fields == general._fields
        if vouched._names_lower:  # still trusted: every name really is lower case
            assert all(n == n.lower() for n, _ in vouched._fields)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.add("Content-Encoding", "gzip"),
        lambda m: m.__setitem__("Content-Encoding", "gzip"),
        lambda m: m.merge({"Content-Encoding": "gzip"}),
        lambda m: m.replace("Content-Encoding", "gzip"),
    ],
)
def test_adding_a_name_in_any_case_stops_the_short_lookup(change: Any) -> None:
    header_map = HTTPHeaderMap.from_wire([(b"server", b"x")], lower_case=True)
    change(header_map)
    assert not header_map._names_lower
    assert header_map.get(b"content-encoding") == [b"gzip"] and "content-encoding" in header_map


def test_deleting_keeps_the_names_trusted_and_other_maps_are_untouched() -> None:
    header_map = HTTPHeaderMap.from_wire([(b"a", b"1"), (b"b", b"2")], lower_case=True)
    del header_map["A"]
    assert header_map._names_lower and header_map.get("B") == [b"2"]
    assert not HTTPHeaderMap.from_wire([(b"a", b"1")])._names_lower
    assert not HTTPHeaderMap([(b"a", b"1")])._names_lower and not header_map.copy()._names_lower


# -- responses --------------------------------------------------------------------------


class HeldSession:
    """A session that hands the whole body over with the headers (as await_response_start may)."""

    read_timeout = 5.0

    def __init__(self, fields: list[tuple[bytes, bytes]], body: bytes, trailers: list[Any] | None) -> None:
        self.fields = fields
        self.held = (body, trailers)
        self.calls: list[str] = []

    def await_response_start(self, stream_id: int, timeout: Any, on_timeout: Any) -> tuple[Any, Any]:
        self.calls.append("start")
        return list(self.fields), self.held

    def read_body(self, *args: Any) -> Any:
        self.calls.append("read_body")
        raise AssertionError("a held body needs no session read")

    def discard(self, stream_id: int) -> None:
        self.calls.append("discard")


def _held_response(
    monkeypatch: pytest.MonkeyPatch,
    fast: bool,
    body: bytes,
    fields: list[tuple[bytes, bytes]] | None = None,
    trailers: list[Any] | None = None,
) -> tuple[HTTP20Response, HeldSession]:
    monkeypatch.setattr(response_module, "FAST_PATHS", fast)
    session = HeldSession([(b":status", b"200"), *(fields or [])], body, trailers)
    resp = await_response(session, 3, 5.0, Limits())  # type: ignore[arg-type]
    return resp, session


_READS = [
    [None],
    [None, None],
    [3, None],
    [0, None, 5],
    [2000, None],
    [-1],
]


@pytest.mark.parametrize("reads", _READS)
@pytest.mark.parametrize("decode", [True, False])
@pytest.mark.parametrize(
    ("body", "fields", "trailers"),
    [
        (b"hello" * 300, [], []),
        (b"", [], None),
        (b"abc", [(b"content-encoding", b"identity")], [(b"x-sum", b"1")]),
        (gzip.compress(b"zipped" * 50), [(b"content-encoding", b"gzip")], []),
    ],
)
def test_a_held_body_reads_as_the_general_read_gives_it(
    monkeypatch: pytest.MonkeyPatch,
    reads: list[int | None],
    decode: bool,
    body: bytes,
    fields: list[tuple[bytes, bytes]],
    trailers: list[Any] | None,
) -> None:
    seen = []
    for fast in (True, False):
        resp, session = _held_response(monkeypatch, fast, body, fields, trailers)
        got = [resp.read(amt, decode_content=decode) for amt in reads]
        seen.append(
            (got, resp.closed, resp.trailers.items(), session.calls, resp.read(), resp.headers.items())
        )
    assert seen[0] == seen[1]


def test_the_held_fast_read_hands_over_the_very_bytes_and_fills_trailers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = b"x" * 1024
    resp, session = _held_response(monkeypatch, True, body, trailers=[(b"x-sum", b"1")])
    early = resp.trailers
    assert resp.read() is body
    assert early[b"x-sum"] == [b"1"] and resp.closed and resp.read() == b""
    assert session.calls == ["start"]


def test_a_response_from_the_core_trusts_its_names_only_with_fast_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fields = [(b"content-type", b"text/plain"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    for fast in (True, False):
        resp, _ = _held_response(monkeypatch, fast, b"x", fields)
        assert resp.headers._names_lower is fast
        assert resp.getheader("Content-Type") == "text/plain"
        assert resp.headers.get_all_str("SET-COOKIE") == ["a=1", "b=2"]
        assert resp.getheaders() == [
            ("content-type", "text/plain"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]
    # Made directly (not by await_response), a response trusts nothing.
    direct = HTTP20Response(HeldSession([], b"", None), 1, [(b":status", b"200"), (b"A", b"1")])  # type: ignore[arg-type]
    assert not direct.headers._names_lower and direct.headers[b"a"] == [b"1"]


def test_the_status_table_gives_what_the_parse_gives() -> None:
    for raw, expected in _STATUSES.items():
        assert _parsed_status(raw) == expected
    for raw in (b"99", b"1000", b"20a", b"", b"\xd9\xa2\xd9\xa0\xd9\xa0", None, b"000", b"999"):
        session = HeldSession([], b"", None)
        if _parsed_status(raw) is None:
            with pytest.raises(ProtocolError):
                HTTP20Response(session, 1, [(b":status", raw)])  # type: ignore[arg-type,list-item]
        else:
            resp = HTTP20Response(session, 1, [(b":status", raw)])  # type: ignore[arg-type,list-item]
            assert (resp.status, resp.reason) == _parsed_status(raw)
    odd = HTTP20Response(HeldSession([], b"", None), 1, [(b":status", bytearray(b"404"))])  # type: ignore[arg-type,list-item]
    assert (odd.status, odd.reason) == (404, "Not Found")


# -- request()'s memo ----------------------------------------------------------------------


class RecordingSession:
    """Takes every request's HEADERS and answers nothing (no response is asked for)."""

    read_timeout = 5.0

    def __init__(self) -> None:
        self.sent: list[list[tuple[bytes, bytes]]] = []
        self._next = 1

    def open_stream(
        self, fields: Any, end_stream: bool, may_refuse: bool, declared_length: Any = None
    ) -> int:
        self.sent.append([tuple(field) for field in fields])
        wire_id = self._next
        self._next += 2
        return wire_id


def _recording(host: str = "example.org", secure: bool = True) -> tuple[HTTP20Connection, RecordingSession]:
    conn = HTTP20Connection(host, 443 if secure else 80, secure=secure)
    session = RecordingSession()
    conn._current_session = lambda: session  # type: ignore[method-assign,assignment,return-value]
    return conn, session


_METHODS = st.sampled_from(["GET", "POST", "get", b"GET", b"PUT", "BAD METHOD", "HEAD"])
_URLS = st.sampled_from(
    [
        "/",
        "/a b",
        "/x?y=1",
        b"/bytes",
        "https://example.org/abs",
        "http://example.org/abs",
        "https://other.org/",
        "",
        "/é",
        "*",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_METHODS, _URLS), max_size=8))
def test_remembered_requests_send_what_a_fresh_connection_sends(requests: list[tuple[Any, Any]]) -> None:
    warm, warm_session = _recording()
    for method, url in requests:
        # Twice on the warm connection (the second from its memo), once on a cold one.
        results = [outcome(warm.request, method, url), outcome(warm.request, method, url)]
        cold, cold_session = _recording()
        cold_result = outcome(cold.request, method, url)
        assert [kind for kind, _ in results] == [cold_result[0]] * 2
        if cold_result[0] == "ok":
            assert warm_session.sent[-1] == warm_session.sent[-2] == cold_session.sent[-1]
        else:
            assert results[0][1] == results[1][1] == cold_result[1]


def test_a_refused_url_is_refused_every_time_and_the_memo_follows_the_connection() -> None:
    conn, session = _recording()
    for _ in range(2):
        with pytest.raises(HostChangedError):
            conn.request("GET", "http://example.org/")  # the other scheme
        with pytest.raises(InvalidHeader):
            conn.request("GET /", "/")
    assert session.sent == []
    conn.request("GET", "/p")
    conn.authority = "example.net"  # a changed authority is part of the key
    conn.request("GET", "/p")
    assert dict(session.sent[0])[b":authority"] == b"example.org"
    assert dict(session.sent[1])[b":authority"] == b"example.net"
    conn.secure = False  # so is whether the connection is secure (absolute URLs' origin)
    with pytest.raises(HostChangedError):
        conn.request("GET", "https://example.net/p")


def test_a_putrequest_is_dropped_by_a_remembered_request_too() -> None:
    conn, _ = _recording()
    conn.request("GET", "/memo")  # remembered now
    conn.putrequest("GET", "/pending")
    conn.request("GET", "/memo")
    assert getattr(conn._local, "pending", None) is None


def test_the_memo_is_bounded() -> None:
    conn, _ = _recording()
    for index in range(200):
        conn.request("GET", f"/{index}")
    assert len(conn._plain_requests) <= 64


# -- the registry ------------------------------------------------------------------------


def test_release_drops_the_claimed_stream_without_the_lock() -> None:
    conn, _ = _recording()
    first = conn.request("GET", "/")
    registry = conn._registry
    stream_id, handle = registry.claim(first)
    assert registry.handle(first) is handle  # still known while its response is awaited
    registry._lock.acquire()  # release() does not wait for it
    try:
        registry.release(stream_id)
    finally:
        registry._lock.release()
    assert first not in registry._streams and first not in registry._untaken


def test_hyper_fast_paths_0_switches_the_response_short_paths_off() -> None:
    code = "import hyper.http20.response as r; print(r.FAST_PATHS)"
    for setting, expected in (("0", "False"), ("1", "True")):
        env = dict(os.environ, HYPER_FAST_PATHS=setting)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.stdout.strip() == expected, out.stderr

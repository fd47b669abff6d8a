"""Review 12: request()'s memo of caller fields against the general path, on its edges.

The memo (issue 14, round 5) remembers the fields of a request with no body
and a plain dict of str caller fields, per connection. These tests look for a
request whose fields, field kinds (a never-indexed field stays one), errors or
order of steps differ from what the general path (``_CALLER_FIELDS_MEMO``
off, what ``HYPER_FAST_PATHS=0`` does) gives: fields in any case and repeated
in another case, connection-specific fields (RFC 9113 section 8.2.2), host
against ``:authority``, values the checks refuse, str and dict subclasses,
a dict changed by another thread while a request is built, and what a real
server receives.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hyper.http20.connection as connection_module
import hyper.http20.request_memo as request_memo_module
from hyper import HTTP20Connection
from hyper.exceptions import InvalidHeader


@pytest.fixture(autouse=True)
def _memo_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # The memo is under test whatever HYPER_FAST_PATHS says (CI also runs the
    # suite with it at 0); the differentials switch it off themselves.
    monkeypatch.setattr(connection_module, "_CALLER_FIELDS_MEMO", True)


class RecordingSession:
    """Records every request's HEADERS exactly as handed over (field kinds kept); answers nothing."""

    read_timeout = 5.0

    def __init__(self) -> None:
        self.sent: list[tuple[list[tuple[str, bytes, bytes]], bool, int | None]] = []
        self._next = 1

    def open_stream(
        self, fields: Any, end_stream: bool, may_refuse: bool, declared_length: Any = None
    ) -> int:
        # The kind of each field matters: a NeverIndexedHeaderTuple must stay one.
        kinds = [(type(field).__name__, field[0], field[1]) for field in fields]
        self.sent.append((kinds, end_stream, declared_length))
        wire_id = self._next
        self._next += 2
        return wire_id

    def send_body(self, stream_id: int, body: Any, end_stream: bool = True) -> None:
        raise AssertionError("no request here has a body")

    def discard(self, stream_id: int) -> None:
        pass


def recording(secure: bool = True) -> tuple[HTTP20Connection, RecordingSession]:
    conn = HTTP20Connection("example.org", 443 if secure else 80, secure=secure)
    session = RecordingSession()
    conn._current_session = lambda: session  # type: ignore[method-assign,assignment,return-value]
    return conn, session


def loose(headers: dict[Any, Any]) -> dict[Any, Any]:
    """``headers`` as it is, typed loosely (test_review12_typing: HeadersType refuses a dict of str)."""
    return headers


def outcome(call: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """What a call returns, or the type and message of what it raises."""
    try:
        return "ok", call(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every outcome is compared
        return type(exc).__name__, str(exc)


def sent_by(memo: bool, calls: int, method: Any, url: Any, headers: Any, secure: bool = True) -> Any:
    """Outcomes and HEADERS of ``calls`` identical requests on one fresh connection."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(connection_module, "_CALLER_FIELDS_MEMO", memo)
        conn, session = recording(secure)
        results = [outcome(conn.request, method, url, headers=headers) for _ in range(calls)]
    return results, session.sent


# -- the differential, with names in every case and the fields HTTP/2 forbids ----------------

_NAME_STEMS = [
    "accept",
    "user-agent",
    "x-id",
    "host",
    "te",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "accept-encoding",
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
]


@st.composite
def _names(draw: st.DrawFn) -> str:
    """A field name in a random mix of upper and lower case (or an odd one)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["bad name", "x:y", ":authority", "", "é", "x\x7f", "x\ty", "Ab\x00"]))
    stem = draw(st.sampled_from(_NAME_STEMS))
    upper = draw(st.lists(st.booleans(), min_size=len(stem), max_size=len(stem)))
    return "".join(char.upper() if up else char for char, up in zip(stem, upper, strict=True))


_VALUES = st.one_of(
    st.sampled_from(
        [
            "x",
            " padded\t",
            "\tx",
            "trailers",
            " Trailers ",
            "trailers, deflate",
            "gzip",
            "0",
            "00",
            "7",
            "other.example:8443",
            "bücher.example",
            "é",
            "",
            "a\r\nb",
            "a\x00",
            "a\x7f",
            "a\x01b",
            "short",
            "a-cookie-value-longer-than-twenty-bytes",
            "\ud800",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=8),
)
_HEADERS = st.dictionaries(_names(), _VALUES, max_size=6)
_METHODS = st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "DELETE", "get"])
_URLS = st.sampled_from(["/", "/p?q=1", "/a b", "https://example.org/abs", "http://example.org/x", "*"])


@settings(max_examples=500, deadline=None)
@given(_METHODS, _URLS, _HEADERS, st.booleans())
def test_remembered_requests_send_the_general_paths_fields_kinds_and_errors(
    method: str, url: str, headers: dict[Any, Any], secure: bool
) -> None:
    # Three requests on a connection with the memo (the later ones may come
    # from it) against the same three with the memo off: every outcome, every
    # field with its kind (never-indexed or not), end of stream and length.
    warm = sent_by(True, 3, method, url, headers, secure)
    general = sent_by(False, 3, method, url, headers, secure)
    assert warm == general


def test_connection_specific_fields_are_dropped_in_any_case_on_a_memo_hit_too() -> None:
    conn, session = recording()
    headers: dict[Any, Any] = {
        "Connection": "keep-alive",
        "KEEP-ALIVE": "timeout=5",
        "Proxy-Connection": "close",
        "Transfer-Encoding": "chunked",
        "Upgrade": "h2c",
        "TE": "gzip",
        "X-Kept": "1",
    }
    for _ in range(3):
        conn.request("GET", "/", headers=headers)
    assert len(conn._plain_requests) == 1  # remembered: the later two are hits
    for kinds, end_stream, _ in session.sent:
        names = [name for _, name, _ in kinds]
        assert names == [b":method", b":scheme", b":authority", b":path", b"x-kept", b"accept-encoding"]
        assert end_stream


def test_host_in_any_case_names_the_authority_on_a_memo_hit_too() -> None:
    conn, session = recording()
    for _ in range(2):
        conn.request("GET", "/", headers=loose({"HoSt": "other.example:8443", "accept": "*/*"}))
    for kinds, _, _ in session.sent:
        fields = {name: value for _, name, value in kinds}
        assert fields[b":authority"] == b"other.example:8443" and b"host" not in fields
    # Two host fields differing only in case are refused every time, nothing sent.
    for _ in range(2):
        with pytest.raises(InvalidHeader):
            conn.request("GET", "/", headers=loose({"Host": "a.example", "host": "b.example"}))
    assert len(session.sent) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"x-bad": "a\r\nb"},
        {"x-bad": "a\x00"},
        {"x-bad": "a\x7f"},
        {"bad name": "x"},
        {":authority": "x"},
        {"content-length": "5x"},
        {"x-lone": "\ud800"},
        {"Content-Length": "1", "content-length": "2"},
    ],
)
def test_refused_fields_raise_before_anything_is_sent_every_time(headers: dict[Any, Any]) -> None:
    conn, session = recording()
    conn.request("GET", "/warm", headers=loose({"accept": "*/*"}))  # the memo is in use
    for _ in range(3):
        with pytest.raises(InvalidHeader):
            conn.request("GET", "/", headers=headers)
    assert len(session.sent) == 1 and len(conn._plain_requests) == 1


def test_duplicate_names_differing_in_case_are_both_sent_as_the_general_path_sends_them() -> None:
    headers: dict[Any, Any] = {"X-Dup": "1", "x-dup": "2", "X-DUP": "3"}
    warm = sent_by(True, 2, "GET", "/", headers)
    assert warm == sent_by(False, 2, "GET", "/", headers)
    kinds = warm[1][1][0]
    assert [(name, value) for _, name, value in kinds if name == b"x-dup"] == [
        (b"x-dup", b"1"),
        (b"x-dup", b"2"),
        (b"x-dup", b"3"),
    ]


def test_sensitive_fields_keep_their_never_indexed_kind_and_stay_out_of_the_memo() -> None:
    conn, session = recording()
    headers: dict[Any, Any] = {"Authorization": "Bearer t", "Cookie": "id=1", "accept": "*/*"}
    for _ in range(2):
        conn.request("GET", "/", headers=headers)
    assert conn._plain_requests == {}
    for kinds, _, _ in session.sent:
        kind = {name: kind for kind, name, _ in kinds}
        assert kind[b"authorization"] == kind[b"cookie"] == hpack.NeverIndexedHeaderTuple.__name__


class Text(str):
    """A str subclass: its own equality could make two different fields look alike."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 1


class Headers(dict):  # type: ignore[type-arg]
    """A dict subclass whose items() a program may have overridden."""


class MappingOnly(Mapping[str, str]):
    """A Mapping that is no dict."""

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields

    def __getitem__(self, key: str) -> str:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


@pytest.mark.parametrize(
    "make",
    [
        lambda: {Text("x-a"): "1"},
        lambda: {"x-a": Text("1")},
        lambda: Headers({"x-a": "1"}),
        lambda: OrderedDict({"x-a": "1"}),
        lambda: MappingProxyType({"x-a": "1"}),
        lambda: MappingOnly({"x-a": "1"}),
    ],
    ids=["str-subclass-name", "str-subclass-value", "dict-subclass", "ordereddict", "proxy", "mapping"],
)
def test_subclasses_and_other_mappings_go_the_general_way(make: Any) -> None:
    conn, session = recording()
    conn.request("GET", "/", headers=loose({"x-a": "1"}))  # a plain twin, remembered
    conn.request("GET", "/", headers=make())
    conn.request("GET", "/", headers=make())
    assert len(conn._plain_requests) == 1  # only the plain dict's entry
    assert session.sent[1] == session.sent[2] == sent_by(False, 1, "GET", "/", make())[1][0]


def test_a_str_subclass_method_or_url_is_not_remembered() -> None:
    conn, session = recording()
    conn.request(Text("GET"), "/", headers=loose({"x-a": "1"}))
    conn.request("GET", Text("/"), headers=loose({"x-a": "1"}))
    assert conn._plain_requests == {}
    assert session.sent[0] == session.sent[1]


def test_an_authority_or_scheme_change_is_a_different_request() -> None:
    conn, session = recording()
    headers: dict[Any, Any] = {"accept": "*/*"}
    conn.request("GET", "/", headers=headers)
    conn.authority = "proxy-target.example:8443"
    conn.request("GET", "/", headers=headers)
    conn._scheme = "http"
    conn.request("GET", "/", headers=headers)
    seen = [{name: value for _, name, value in kinds} for kinds, _, _ in session.sent]
    assert [(s[b":authority"], s[b":scheme"]) for s in seen] == [
        (b"example.org", b"https"),
        (b"proxy-target.example:8443", b"https"),
        (b"proxy-target.example:8443", b"http"),
    ]


def test_the_memo_holds_at_most_64_entries_of_at_most_4_kib_of_fields() -> None:
    conn, _ = recording()
    for index in range(300):
        conn.request("GET", "/", headers=loose({"x-id": str(index), "x-pad": "v" * (index * 17 % 4000)}))
    assert len(conn._plain_requests) <= 64
    for key in conn._plain_requests:
        assert sum(len(name) + len(value) for name, value in key[5]) <= 4096


def test_putrequest_putheader_endheaders_interleaved_with_remembered_requests() -> None:
    conn, session = recording()
    headers: dict[Any, Any] = {"accept": "*/*"}
    conn.request("GET", "/memo", headers=headers)
    conn.putrequest("GET", "/incremental")
    conn.putheader("x-inc", "1")
    conn.endheaders()
    conn.request("GET", "/memo", headers=headers)  # a hit between two incremental requests
    conn.putrequest("GET", "/incremental2")
    conn.putheader("accept", "*/*")
    conn.endheaders()
    paths = [{name: value for _, name, value in kinds}[b":path"] for kinds, _, _ in session.sent]
    assert paths == [b"/memo", b"/incremental", b"/memo", b"/incremental2"]
    assert session.sent[0] == session.sent[2]
    incremental = {name: value for _, name, value in session.sent[1][0]}
    assert incremental[b"x-inc"] == b"1" and b"accept" not in incremental


# -- a dict changed by another thread while its request is built ---------------------------


def test_a_dict_changed_while_its_request_is_built_never_poisons_the_memo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn, session = recording()
    shared: dict[Any, Any] = {"x-token": "old", "accept": "*/*"}
    real_request_line = getattr(request_memo_module, "request_line")  # noqa: B009 - not exported
    changed = threading.Event()

    def request_line_then_another_thread_writes(*args: Any, **kwargs: Any) -> Any:
        # Another thread updates the shared dict at this exact point (after
        # the items snapshot, before the fields are built): done here so the
        # interleaving is certain, not hoped for.
        answer = real_request_line(*args, **kwargs)
        if not changed.is_set():
            changed.set()
            writer = threading.Thread(target=shared.__setitem__, args=("x-token", "new"))
            writer.start()
            writer.join(timeout=10)
        return answer

    monkeypatch.setattr(request_memo_module, "request_line", request_line_then_another_thread_writes)
    conn.request("GET", "/", headers=shared)
    assert changed.is_set()
    # A later request with the very items the first one started with.
    conn.request("GET", "/", headers=loose({"x-token": "old", "accept": "*/*"}))
    sent = {name: value for _, name, value in session.sent[1][0]}
    assert sent[b"x-token"] == b"old"  # the general path sends what the dict holds


# -- what the memo holds ----------------------------------------------------------------------


def _chars_held(memo: dict[Any, Any]) -> int:
    """Characters and bytes of every str and bytes the memo's keys and values reach."""
    seen: set[int] = set()

    def size(item: Any) -> int:
        if id(item) in seen:
            return 0  # one object held twice costs once
        seen.add(id(item))
        if isinstance(item, (str, bytes)):
            return len(item)
        if isinstance(item, tuple):
            return sum(size(part) for part in item)
        return 0

    return sum(size(key) + size(value) for key, value in memo.items())


@pytest.mark.parametrize("headers", [None, {"accept": "*/*"}], ids=["plain", "caller-fields"])
def test_the_memo_holds_a_bounded_number_of_bytes_whatever_the_urls(headers: Any) -> None:
    conn, _ = recording()
    for index in range(64):
        conn.request("GET", f"/{index}/" + "u" * 65536, headers=headers)
    # 64 entries of at most 4 KiB of caller fields each, with their :path and key: a few MiB at most.
    assert _chars_held(conn._plain_requests) <= 64 * 3 * 4096

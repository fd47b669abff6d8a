"""request()'s memo of requests with caller fields and no body sends what the general path sends.

Issue 14, round 5: a program passes the same ``headers`` dict request after
request; the fields built for it are remembered per connection, keyed on
the method, URL and every (name, value) in order. Each request here goes
to three connections: a warm one (the second call comes from its memo),
a cold one, and one with the memo switched off (what ``HYPER_FAST_PATHS=0``
does): what is sent (fields, end of stream, declared length) and what is
raised must be the same on all three.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hyper.http20.connection as connection_module
from hyper import HTTP20Connection


@pytest.fixture(autouse=True)
def _memo_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # The memo's own behaviour is tested whatever HYPER_FAST_PATHS says (CI
    # also runs the suite with it at 0); the differential turns it off itself.
    monkeypatch.setattr(connection_module, "_CALLER_FIELDS_MEMO", True)


def outcome(call: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """What a call returns, or the type and message of what it raises."""
    try:
        return "ok", call(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every outcome is compared
        return type(exc).__name__, str(exc)


class RecordingSession:
    """Takes every request's HEADERS (and body, if any) and answers nothing."""

    read_timeout = 5.0

    def __init__(self) -> None:
        self.sent: list[tuple[list[tuple[bytes, bytes]], bool, int | None]] = []
        self.bodies: list[bytes] = []
        self._next = 1

    def open_stream(
        self, fields: Any, end_stream: bool, may_refuse: bool, declared_length: Any = None
    ) -> int:
        self.sent.append(([tuple(field) for field in fields], end_stream, declared_length))
        wire_id = self._next
        self._next += 2
        return wire_id

    def send_body(self, stream_id: int, body: Any, end_stream: bool = True) -> None:
        self.bodies.append(b"".join(bytes(block) for block in body.blocks()))

    def discard(self, stream_id: int) -> None:
        pass


def recording() -> tuple[HTTP20Connection, RecordingSession]:
    conn = HTTP20Connection("example.org", 443, secure=True)
    session = RecordingSession()
    conn._current_session = lambda: session  # type: ignore[method-assign,assignment,return-value]
    return conn, session


_NAMES = st.sampled_from(
    [
        "user-agent",
        "Accept",
        "accept",
        "X-Request-Id",
        "accept-encoding",
        "content-length",
        "Content-Length",
        "host",
        "Host",
        "connection",
        "te",
        "authorization",
        "Cookie",
        "bad name",
        ":path",
        "",
        "é",
        b"x-bytes",
    ]
)
_VALUES = st.sampled_from(
    [
        "x",
        " padded ",
        "0",
        "5",
        "12a",
        "trailers",
        "gzip",
        "other.example:8443",
        "a\r\nb",
        "é",
        "",
        b"bytes",
        1,
    ]
)
# Fields that pass, most of the time (what real programs send), and anything.
_GOOD_HEADERS = st.dictionaries(
    st.sampled_from(["user-agent", "Accept", "X-Id", "accept-encoding", "te", "host", "content-length"]),
    st.sampled_from(["x", "0", "trailers", "gzip", "other.example:8443", "é", " padded "]),
    max_size=5,
)
_HEADERS = st.one_of(_GOOD_HEADERS, st.dictionaries(_NAMES, _VALUES, max_size=5))
_METHODS = st.sampled_from(["GET", "POST", "HEAD", "get", b"GET", "BAD METHOD"])
_URLS = st.sampled_from(["/", "/x?y=1", "/a b", "https://example.org/abs", "https://other.org/", "", b"/b"])


def _sent(
    monkeypatch: pytest.MonkeyPatch, memo: bool, calls: int, method: Any, url: Any, headers: Any
) -> Any:
    monkeypatch.setattr(connection_module, "_CALLER_FIELDS_MEMO", memo)
    conn, session = recording()
    results = [outcome(conn.request, method, url, headers=headers) for _ in range(calls)]
    return results, session.sent, session.bodies, dict(conn._plain_requests)


@settings(max_examples=400, deadline=None)
@given(_METHODS, _URLS, _HEADERS)
def test_a_remembered_request_sends_what_the_general_path_sends(method: Any, url: Any, headers: Any) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        warm_results, warm_sent, warm_bodies, _ = _sent(monkeypatch, True, 2, method, url, headers)
        cold_results, cold_sent, cold_bodies, _ = _sent(monkeypatch, True, 1, method, url, headers)
        off_results, off_sent, off_bodies, off_memo = _sent(monkeypatch, False, 2, method, url, headers)
    assert warm_results == off_results and cold_results == off_results[:1]
    assert warm_sent == off_sent and cold_sent == off_sent[:1]
    assert warm_bodies == off_bodies and cold_bodies == off_bodies[:1]
    assert not any(len(key) == 6 and key[5] is not None for key in off_memo)  # memo off: none kept


def test_the_second_request_comes_from_the_memo_with_the_very_same_fields() -> None:
    conn, session = recording()
    headers = {"user-agent": "bench/1.0", "Accept": "*/*"}
    conn.request("GET", "/a", headers=headers)
    conn.request("GET", "/a", headers=headers)
    # The same field objects each time: the HPACK encoder's memo knows them by identity.
    assert all(a is b for a, b in zip(session.sent[0][0], session.sent[1][0], strict=True))
    assert session.sent[0][1:] == (True, 0)
    assert (b"user-agent", b"bench/1.0") in session.sent[0][0] and (b"accept", b"*/*") in session.sent[0][0]


def test_a_changed_value_order_or_connection_is_a_different_request() -> None:
    conn, session = recording()
    conn.request("GET", "/", headers={"a": "1", "b": "2"})
    conn.request("GET", "/", headers={"b": "2", "a": "1"})
    conn.request("GET", "/", headers={"a": "1", "b": "3"})
    conn.authority = "example.net"
    conn.request("GET", "/", headers={"a": "1", "b": "2"})
    names = [[field for field in fields if not field[0].startswith(b":")] for fields, _, _ in session.sent]
    assert names[0][:2] == [(b"a", b"1"), (b"b", b"2")]
    assert names[1][:2] == [(b"b", b"2"), (b"a", b"1")]
    assert names[2][:2] == [(b"a", b"1"), (b"b", b"3")]
    assert dict(session.sent[3][0])[b":authority"] == b"example.net"


@pytest.mark.parametrize("name", ["authorization", "Proxy-Authorization", "cookie"])
def test_credentials_are_never_remembered(name: str) -> None:
    conn, session = recording()
    for _ in range(2):
        conn.request("GET", "/", headers={name: "secret-value", "accept": "*/*"})
    assert conn._plain_requests == {}
    assert session.sent[0] == session.sent[1]


def test_large_or_many_fields_and_non_str_items_are_not_remembered() -> None:
    conn, session = recording()
    conn.request("GET", "/", headers={"x-big": "v" * 5000})
    conn.request("GET", "/", headers={f"x-{index}": "v" for index in range(40)})
    conn.request("GET", "/", headers={b"x-bytes": "v"})
    conn.request("GET", "/", headers={"x-bytes": b"v"})
    assert conn._plain_requests == {}
    assert len(session.sent) == 4


def test_a_content_length_without_a_body_goes_the_general_way() -> None:
    conn, session = recording()
    outcome(conn.request, "POST", "/", headers={"content-length": "5"})
    assert conn._plain_requests == {}
    assert session.sent[0][1:] == (False, 5)  # as before: HEADERS open, the empty body then refused


def test_a_pending_putrequest_is_dropped_whether_remembered_or_refused() -> None:
    conn, _ = recording()
    headers = {"accept": "*/*"}
    conn.request("GET", "/memo", headers=headers)  # remembered now
    conn.putrequest("GET", "/pending")
    conn.request("GET", "/memo", headers=headers)
    assert getattr(conn._local, "pending", None) is None
    # A field refused after the request line passed: dropped as the general path drops it.
    conn.putrequest("GET", "/pending")
    with pytest.raises(Exception, match="header"):
        conn.request("GET", "/memo", headers={"bad name": "x"})
    assert getattr(conn._local, "pending", None) is None


def test_the_memo_stays_bounded() -> None:
    conn, _ = recording()
    for index in range(200):
        conn.request("GET", "/", headers={"x-id": str(index)})
    assert len(conn._plain_requests) <= 64


def test_hyper_fast_paths_0_switches_the_memo_off() -> None:
    code = "import hyper.http20.connection as c; print(c._CALLER_FIELDS_MEMO)"
    for setting, expected in (("0", "False"), ("1", "True")):
        env = dict(os.environ, HYPER_FAST_PATHS=setting)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        assert out.stdout.strip() == expected


def test_bytes_twins_of_remembered_fields_never_meet_them_in_the_lookup() -> None:
    # b'accept' hashes as 'accept': were such a dict looked up, the key
    # comparison would be a BytesWarning, an error under ``python -bb``.
    code = (
        "from hyper import HTTP20Connection\n"
        "conn = HTTP20Connection('example.org', 443, secure=True)\n"
        "class S:\n"
        "    def open_stream(self, fields, end_stream, may_refuse, declared_length=None):\n"
        "        self.fields = [tuple(f) for f in fields]\n"
        "        return 1\n"
        "s = S()\n"
        "conn._current_session = lambda: s\n"
        "conn.request('GET', '/', headers={'accept': 'x'})\n"
        "first = s.fields\n"
        "conn.request('GET', '/', headers={b'accept': b'x'})\n"
        "assert s.fields == first, (s.fields, first)\n"
        "conn.request('GET', '/', headers={'accept': b'x'})\n"
        "assert s.fields == first\n"
        "print('ok')\n"
    )
    env = dict(os.environ, HYPER_FAST_PATHS="1")
    out = subprocess.run(
        [sys.executable, "-bb", "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr

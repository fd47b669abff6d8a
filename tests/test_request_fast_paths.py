"""HTTP20Connection's per-request short paths (issue 14) change nothing a caller can see.

Each is compared with the general path it skips, through a session stub
that records what the connection asks it to send:

* a request with neither body nor caller headers gets its header map and
  declared length directly (``_prepare(None)``, ``bodiless_length``): the
  same request with an empty header list takes the general path;
* the URL is parsed once (by ``request_line``): an absolute URL of the
  connection's own origin goes out as its path, with the connection's
  ``:authority``, as before;
* ``_send_headers`` reads the header map's own list (``_field_list``);
* the stream registry takes a response with one pop off its untaken map:
  still once, oldest first, and a claimed stream stays reachable for
  ``send()`` until its response is taken.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hyper
import hyper.common.request as request_module
from hyper.common.body import prepare_body
from hyper.common.request import bodiless_length, checked_field, declared_length, request_line, request_method
from hyper.common.stream_ids import unknown_stream_id
from hyper.common.url import origin_form
from hyper.headers import HTTPHeaderMap
from hyper.http20.stream_ids import StreamHandle, StreamRegistry

WAIT = 30.0  # seconds; only a failure ever waits this long


class RecordingSession:
    """Stands in for ``H2Session``: records each stream opened and each body sent; answers at once."""

    read_timeout = 30.0

    def __init__(self) -> None:
        self._next_id = 1
        self.opened: list[tuple[list[tuple[bytes, bytes]], bool, bool, int | None]] = []
        self.bodies: list[bytes] = []
        self.discarded: list[int] = []

    def open_stream(
        self,
        fields: list[tuple[bytes, bytes]],
        end_stream: bool,
        may_refuse: bool,
        declared_length: int | None = None,
    ) -> int:
        self.opened.append((fields, end_stream, may_refuse, declared_length))
        wire_id = self._next_id
        self._next_id += 2
        return wire_id

    def send_body(self, stream_id: int, body: Any, end_stream: bool = True) -> None:
        self.bodies.append(b"".join(bytes(block) for block in body.blocks()))

    def await_response_start(self, stream_id: int, timeout: Any, on_timeout: Any) -> tuple[Any, None]:
        return self.await_headers(stream_id, timeout, on_timeout), None  # the body is read with read_body

    def await_headers(self, stream_id: int, timeout: Any, on_timeout: Any) -> list[tuple[bytes, bytes]]:
        return [(b":status", b"200"), (b"content-length", b"2")]

    def read_body(
        self, stream_id: int, max_bytes: int | None, timeout: Any, on_timeout: Any
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        return b"ok", []

    def discard(self, stream_id: int) -> None:
        self.discarded.append(stream_id)


def connection(host: str = "example.org") -> tuple[hyper.HTTP20Connection, RecordingSession]:
    """A connection that never connects: every request goes to the recording stub."""
    conn = hyper.HTTP20Connection(host, 443, secure=True)
    session = RecordingSession()
    conn._current_session = lambda: session  # type: ignore[assignment, method-assign, return-value]
    return conn, session


# -- no body, no caller headers -------------------------------------------------------

METHODS: list[Any] = ["GET", "HEAD", "DELETE", "OPTIONS", "POST", "PUT", "PATCH", "post", "Put", "pAtCh"]
METHODS += [b"GET", b"POST", "CUSTOM-METHOD", "M-SEARCH"]


@pytest.mark.parametrize("method", METHODS, ids=[repr(m) for m in METHODS])
def test_a_bare_request_sends_what_the_general_path_sends(method: Any) -> None:
    short, short_session = connection()
    general, general_session = connection()
    short_id = short.request(method, "/x")
    general_id = general.request(method, "/x", headers=[])  # an empty list: the general path
    assert short_id == general_id
    assert short_session.opened == general_session.opened
    assert short_session.bodies == general_session.bodies == []
    # Both streams are registered alike: the response comes back on either.
    assert short.getresponse(short_id).read() == general.getresponse(general_id).read() == b"ok"


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}", fullmatch=True))
def test_bodiless_length_is_what_declared_length_decides(method: str) -> None:
    short_map, general_map = HTTPHeaderMap(), HTTPHeaderMap()
    assert bodiless_length(short_map, method) == declared_length(
        general_map, prepare_body(None), method, True
    )
    assert short_map.items() == general_map.items()


def test_the_bare_header_map_is_fresh_for_each_request() -> None:
    conn, _ = connection()
    first = conn._prepare(None)
    assert first.items() == conn._prepare([]).items() == conn._prepare({}).items()
    first.add("x-added", "1")  # what putheader() does to a pending request's map
    assert b"x-added" not in conn._prepare(None)


def test_putrequest_sends_what_it_sends_with_the_general_header_map() -> None:
    short, short_session = connection()
    general, general_session = connection()
    # The general path: what _prepare() does with an empty list of caller fields.
    general._prepare = lambda headers: hyper.HTTP20Connection._prepare(general, [])  # type: ignore[method-assign]
    for conn in (short, general):
        conn.putrequest("POST", "/x")
        conn.putheader("x-one", "1")
        conn.endheaders(b"body", final=True)
    assert short_session.opened == general_session.opened
    assert short_session.bodies == general_session.bodies == [b"body"]


# -- one URL parse ----------------------------------------------------------------------


def test_an_absolute_url_of_the_own_origin_goes_out_as_its_path_with_the_connections_authority() -> None:
    conn, session = connection()
    conn.request("GET", "https://EXAMPLE.org:443/a%20b?q=1#fragment")
    conn.request("GET", "https://example.org")
    fields = [dict(opened[0]) for opened in session.opened]
    assert [f[b":path"] for f in fields] == [b"/a%20b?q=1", b"/"]
    assert [f[b":authority"] for f in fields] == [b"example.org", b"example.org"]
    # A caller's host still names the authority, as before.
    conn.request("GET", "https://example.org/c", headers={"host": "example.org:443"})
    assert dict(session.opened[-1][0])[b":authority"] == b"example.org:443"


def outcome(call: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """What a call returns, or the type and message of what it raises."""
    try:
        return "ok", call(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every outcome is compared
        return type(exc).__name__, str(exc)


def general_request_line(method: Any, url: Any, secure: bool, authority: str) -> tuple[str, Any]:
    """request_line() as it was: the method check, then origin_form(), no shortcut."""

    def both() -> tuple[str, str]:
        checked = request_method(method)
        return checked, origin_form(url, "https" if secure else "http", authority)

    return outcome(both)


_URL_SAMPLES = ["/", "/file", "/a b", "/a#f", "/\u00e9", "*", "", "x", "https://example.org/p", "http://h/"]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["GET", "POST", "get", "BAD METHOD", "M\u00e9", b"GET", "GET\r\n"]),
    st.one_of(
        st.sampled_from(_URL_SAMPLES), st.text(max_size=12).map(lambda t: "/" + t), st.text(max_size=8)
    ),
    st.booleans(),
)
def test_request_line_shortcut_agrees_with_the_general_path(method: Any, url: str, secure: bool) -> None:
    for _ in range(2):  # the method memo cold (perhaps), then warm
        assert outcome(request_line, method, url, secure=secure, authority="example.org") == (
            general_request_line(method, url, secure, "example.org")
        )


def test_request_line_shortcut_returns_the_callers_path() -> None:
    request_line("GET", "/warm", secure=True, authority="example.org")
    url = "/index.html?q=1"
    assert request_line("GET", url, secure=True, authority="example.org")[1] is url


def test_another_origin_is_refused_before_anything_is_sent() -> None:
    conn, session = connection()
    with pytest.raises(hyper.HostChangedError):
        conn.request("GET", "https://example.com/a")
    with pytest.raises(hyper.HostChangedError):
        conn.putrequest("GET", "http://example.org/a")
    assert session.opened == []


# -- the header map's own list -------------------------------------------------------------


def test_field_list_is_the_maps_own_list_of_what_items_copies() -> None:
    header_map = HTTPHeaderMap([("a", "1"), ("B", "2"), ("a", "3")])
    assert header_map._field_list() == header_map.items()
    assert header_map._field_list() is header_map._field_list()
    assert header_map.items() is not header_map.items()


# -- getresponse's id check ------------------------------------------------------------------


class IntSubclass(int):
    pass


def test_getresponse_still_refuses_ids_that_are_not_ints_and_takes_int_subclasses() -> None:
    conn, session = connection()
    stream_id = conn.request("GET", "/")
    for wrong in (True, "1", 1.0, None.__class__):
        with pytest.raises(TypeError):
            conn.getresponse(wrong)  # type: ignore[arg-type]
    assert conn.getresponse(IntSubclass(stream_id)).read() == b"ok"


# -- the registry ---------------------------------------------------------------------------


def handle(wire_id: int) -> StreamHandle:
    return StreamHandle(RecordingSession(), wire_id)  # type: ignore[arg-type]


def test_a_response_is_taken_once_and_the_oldest_first() -> None:
    registry = StreamRegistry()
    handles = [handle(wire_id) for wire_id in (1, 3, 5)]
    ids = [registry.register(h, None, track_pushes=False) for h in handles]
    assert ids == [1, 3, 5]
    assert registry.claim(3) == (3, handles[1])
    with pytest.raises(hyper.InvalidStreamID) as taken:
        registry.claim(3)
    assert str(taken.value) == str(unknown_stream_id(3, 7, odd_only=True))
    assert registry.claim(None) == (1, handles[0])  # the oldest untaken
    assert registry.claim(None) == (5, handles[2])
    with pytest.raises(hyper.InvalidStreamID, match="no request is waiting"):
        registry.claim(None)
    for never in (7, 2, -1):
        with pytest.raises(hyper.InvalidStreamID) as refused:
            registry.claim(never)
        assert str(refused.value) == str(unknown_stream_id(never, 7, odd_only=True))


def test_a_claimed_stream_stays_reachable_until_released() -> None:
    registry = StreamRegistry()
    registered = handle(1)
    stream_id = registry.register(registered, None, track_pushes=False)
    registry.claim(stream_id)
    # send() from another thread while the taker waits for the headers.
    assert registry.handle(stream_id) is registered
    registry.release(stream_id)
    with pytest.raises(hyper.InvalidStreamID):
        registry.handle(stream_id)


def test_forget_drops_an_untaken_stream_and_an_explicit_id_keeps_registration_order() -> None:
    registry = StreamRegistry()
    early = registry.take_id()  # putrequest(): the id comes before the HEADERS
    later = registry.register(handle(1), None, track_pushes=False)
    registry.register(handle(3), early, track_pushes=False)
    registry.forget(later)
    with pytest.raises(hyper.InvalidStreamID):
        registry.claim(later)
    assert registry.claim(None)[0] == early


def test_threads_taking_the_oldest_responses_get_each_exactly_once() -> None:
    registry = StreamRegistry()
    count, threads = 2000, 4
    for wire_id in range(1, 2 * count, 2):
        registry.register(handle(wire_id), None, track_pushes=False)
    start = threading.Barrier(threads, timeout=WAIT)
    taken: list[list[int]] = [[] for _ in range(threads)]

    def take(mine: list[int]) -> None:
        start.wait()
        while True:
            try:
                mine.append(registry.claim(None)[0])
            except hyper.InvalidStreamID:
                return

    workers = [threading.Thread(target=take, args=(mine,)) for mine in taken]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
        assert not worker.is_alive()
    every = sorted(stream_id for mine in taken for stream_id in mine)
    assert every == list(range(1, 2 * count, 2))
    for mine in taken:
        assert mine == sorted(mine)  # each thread saw them oldest first


# -- to_header_map ---------------------------------------------------------------------------


def reference_to_header_map(headers: Any) -> HTTPHeaderMap:
    """to_header_map() as it was: field by field through HTTPHeaderMap.add()."""
    header_map = HTTPHeaderMap()
    if headers is None:
        return header_map
    pairs: Any
    if isinstance(headers, HTTPHeaderMap):
        pairs = headers.items()
    elif isinstance(headers, Mapping):
        pairs = request_module._mapping_fields(headers)
    elif isinstance(headers, Iterable) and not isinstance(headers, (str, bytes, bytearray)):
        pairs = headers
    else:
        raise TypeError(
            f"headers must be a mapping or an iterable of (name, value) pairs, not {type(headers).__name__}"
        )
    for pair in pairs:
        if isinstance(pair, (str, bytes, bytearray)) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"each header must be a (name, value) pair, not {pair!r}")
        name, value = checked_field(pair[0], pair[1])
        if name.lower() == b"host" and b"host" in header_map:
            raise request_module._second_host(value)
        header_map.add(name, value)
    return header_map


class ListSubclass(list):  # type: ignore[type-arg]
    pass


_NAMES = st.sampled_from(
    ["accept", "Host", "HOST", b"host", "x-a", b"X-B", "bad name", ":path", 7, "content-length"]
)
_VALUES = st.sampled_from(["v", b"w", 3, "a\r\nb", " pad ", "example.org", "12", "x y", True, None])
_VALUE_OR_LIST = st.one_of(_VALUES, st.lists(_VALUES, max_size=3), st.lists(_VALUES, max_size=2).map(tuple))
_ODD_PAIR = st.sampled_from(["ab", b"ab", ("a",), ("a", "b", "c"), ["x-l", "1"], 5, None])


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.dictionaries(_NAMES, _VALUE_OR_LIST, max_size=5),
        st.dictionaries(_NAMES, _VALUES, max_size=5),
        st.dictionaries(_NAMES, _VALUES.map(lambda v: ListSubclass([v])), max_size=3),
        st.lists(st.one_of(st.tuples(_NAMES, _VALUES), _ODD_PAIR), max_size=5),
        st.lists(st.tuples(_NAMES, _VALUES), max_size=5).map(tuple),
        st.sampled_from(["text", b"bytes", 5, None, {}, []]),
    )
)
def test_to_header_map_gives_what_the_field_by_field_code_gives(headers: Any) -> None:
    def items(build: Any) -> Any:
        return build(headers).items()

    assert outcome(items, request_module.to_header_map) == outcome(items, reference_to_header_map)


def test_to_header_map_from_a_header_map_and_a_generator() -> None:
    source = HTTPHeaderMap([("a", "1"), ("Host", "h"), ("a", "2")])
    assert request_module.to_header_map(source).items() == reference_to_header_map(source).items()
    pairs = [("x", "1"), ("y", "2")]
    assert request_module.to_header_map(iter(pairs)).items() == reference_to_header_map(iter(pairs)).items()

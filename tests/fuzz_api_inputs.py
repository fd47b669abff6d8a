"""Generated caller input for the API fuzzer, each piece labelled with what hyper must do.

Every generator here yields a :class:`Piece`: a way to make the argument (a
fresh generator or file object per call, since those are used up), a
readable description for hypothesis' failure reports, and a :class:`Verdict`
taken from docs/api.rst ("Argument types", "Methods and URLs"):

* ``OK``: documented as accepted; the request must go out and arrive as given.
* ``TYPE``: a wrong type; ``TypeError`` before anything is sent.
* ``VALUE``: the right type with a refused value; a ``ValueError`` (hyper's
  ``InvalidHeader``/``InvalidURL``/``HostChangedError`` are ValueErrors)
  before anything is sent.
* ``LATE_TYPE``: a generator body whose items are checked as they are sent
  (documented): ``TypeError``, but the headers may already be out.
* ``EITHER``: the docs leave it open (e.g. a connection-specific header, a
  random string): a documented exception or success, nothing more.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from hyper import HTTPHeaderMap
from tests.fuzz_recorder_app import TAG_HEADER


class Verdict(enum.IntEnum):
    """What hyper must do with an argument (higher wins when pieces combine)."""

    OK = 0
    LATE_TYPE = 1
    EITHER = 2
    VALUE = 3
    TYPE = 4


class Piece:
    """One generated argument: how to make it, how it reads, what hyper must do.

    A plain class (not a dataclass) so hypothesis prints it by its repr.
    """

    def __init__(
        self, text: str, verdict: Verdict, make: Callable[[], Any], payload: bytes | None = None
    ) -> None:
        self.text = text
        self.verdict = verdict
        self.make = make
        #: For an accepted body: the bytes that must arrive.
        self.payload = payload

    def __repr__(self) -> str:
        return f"{self.text}<{self.verdict.name}>"


def fixed(value: Any, verdict: Verdict, payload: bytes | None = None) -> Piece:
    """A piece whose value can be reused as it is."""
    return Piece(repr(value), verdict, lambda: value, payload)


# -- methods -------------------------------------------------------------------

_OK_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "X-FUZZ", "get", b"POST", b"GET"]
_BAD_METHODS = ["", "GE T", "GET\r\nX: y", "G\x00T", "G\u00c9T", "GET\t", b"G T", b"\xff"]
_TYPE_METHODS: list[Any] = [None, 1, 1.5, ["GET"], object()]


def methods() -> st.SearchStrategy[Piece]:
    """Request methods: tokens (str or bytes), refused values and wrong types."""
    return st.one_of(
        st.sampled_from([fixed(m, Verdict.OK) for m in _OK_METHODS]),
        st.sampled_from([fixed(m, Verdict.VALUE) for m in _BAD_METHODS]),
        st.sampled_from([fixed(m, Verdict.TYPE) for m in _TYPE_METHODS]),
        st.text(max_size=8).map(lambda t: fixed(t, Verdict.EITHER)),
    )


# -- URLs ----------------------------------------------------------------------


def urls(authority: str, secure: bool = True) -> st.SearchStrategy[Piece]:
    """URLs for a connection to *authority* (``localhost:port``), TLS or cleartext."""
    own, other = ("https", "http") if secure else ("http", "https")
    # Each accepted URL and the request target that must arrive (docs:
    # non-ASCII and "<>`{} percent-encoded, non-ASCII as UTF-8).
    ok: list[tuple[Any, str]] = [
        ("/", "/"),
        ("/a/b?x=1&y=2", "/a/b?x=1&y=2"),
        ("/p%20q", "/p%20q"),
        ("/caf\u00e9", "/caf%C3%A9"),
        ("/a<b>{c}", "/a%3Cb%3E%7Bc%7D"),
        ("/q?\u00fc=\u00e9", "/q?%C3%BC=%C3%A9"),
        (b"/bytes/path", "/bytes/path"),
        (f"{own}://{authority}/abs?q", "/abs?q"),
    ]
    bad = [
        "https://other.example/x",
        f"{other}://{authority}/",
        "https://[::1/y",
        "/a b",
        "/a\r\nb",
        "/a\x00",
        b"/a b",
    ]
    wrong_type: list[Any] = [None, 7, 1.5, object(), ["/"]]
    return st.one_of(
        st.sampled_from([fixed(u, Verdict.OK, target.encode()) for u, target in ok]),
        st.sampled_from([fixed(u, Verdict.VALUE) for u in bad]),
        st.sampled_from([fixed(u, Verdict.TYPE) for u in wrong_type]),
        st.text(max_size=12).map(lambda t: fixed("/" + t, Verdict.EITHER)),
        st.sampled_from(
            [fixed(u, Verdict.EITHER) for u in ("*", "", f"{own}://{authority}", "?q", "//x/y", "#frag")]
        ),
    )


# -- header fields --------------------------------------------------------------

_OK_NAMES: list[Any] = ["x-a", "X-Mixed-Case", b"x-bytes", "x-dup", "accept", "user-agent"]
_BAD_NAMES: list[Any] = ["bad name", "x:y", ":path", "", "x\r\ny", "caf\u00e9", b"x\x00"]
_TYPE_NAMES: list[Any] = [None, 1, 1.5, object()]
_EITHER_NAMES: list[Any] = ["connection", "transfer-encoding", "te", "upgrade", "keep-alive", "host"]
_OK_VALUES: list[Any] = ["v", b"bytes", 5, 0, "  padded  ", "caf\u00e9", "", "a, b", b"\xe9obs"]
_BAD_VALUES: list[Any] = ["a\r\nb", "a\nb", "nul\x00", "\x01", b"x\ry", "\x7f"]
_TYPE_VALUES: list[Any] = [None, 1.5, object()]


@dataclass(frozen=True)
class Field:
    """One (name, value) pair and its verdict."""

    name: Any
    value: Any
    #: The name's verdict and the value's.
    parts: tuple[Verdict, Verdict]

    @property
    def verdict(self) -> Verdict:
        return max(self.parts)

    def __repr__(self) -> str:
        return f"({self.name!r}, {self.value!r})<{self.verdict.name}>"


def fields() -> st.SearchStrategy[Field]:
    """Header fields, mostly valid."""
    names = st.one_of(
        st.sampled_from([(n, Verdict.OK) for n in _OK_NAMES]),
        st.sampled_from([(n, Verdict.VALUE) for n in _BAD_NAMES]),
        st.sampled_from([(n, Verdict.TYPE) for n in _TYPE_NAMES]),
        st.sampled_from([(n, Verdict.EITHER) for n in _EITHER_NAMES]),
    )
    values = st.one_of(
        st.sampled_from([(v, Verdict.OK) for v in _OK_VALUES]),
        st.sampled_from([(v, Verdict.VALUE) for v in _BAD_VALUES]),
        st.sampled_from([(v, Verdict.TYPE) for v in _TYPE_VALUES]),
        st.text(max_size=6).map(lambda t: (t, Verdict.EITHER)),
        # A list is several values in a mapping, a wrong type in a pair.
        st.just((["x", "y"], Verdict.EITHER)),
    )
    return st.builds(_field, names, values)


def _field(name: tuple[Any, Verdict], value: tuple[Any, Verdict]) -> Field:
    return Field(name[0], value[0], (name[1], value[1]))


@dataclass(frozen=True)
class Headers:
    """A header argument of some shape, with the fuzzer's tag added at call time."""

    shape: str
    items: tuple[Field, ...]

    @property
    def verdicts(self) -> list[Verdict]:
        """The verdict of every field (and of the shape itself)."""
        verdicts = [part for f in self.items for part in f.parts]
        if self.shape == "strings":
            verdicts.append(Verdict.TYPE)
        return verdicts

    @property
    def verdict(self) -> Verdict:
        return max(self.verdicts, default=Verdict.OK)

    def make(self, tag: str | None) -> Any:
        pairs = [(f.name, f.value) for f in self.items]
        if tag is not None:
            pairs.append((TAG_HEADER, tag))
        if self.shape == "none":
            return None if tag is None else {TAG_HEADER: tag}
        if self.shape == "dict":
            return dict(pairs)
        if self.shape == "dict-of-lists":
            grouped: dict[Any, list[Any]] = {}
            for name, value in pairs:
                grouped.setdefault(name, []).append(value)
            return grouped
        if self.shape == "list":
            return pairs
        if self.shape == "tuple":
            return tuple(pairs)
        if self.shape == "generator":
            return (pair for pair in pairs)
        if self.shape == "map":
            header_map = HTTPHeaderMap()
            for name, value in pairs:
                header_map.add(name, value)
            return header_map
        if self.shape == "strings":  # ['X-A: 1']: not pairs, a TypeError
            return [f"{name}: {value}" for name, value in pairs]
        raise AssertionError(self.shape)

    def __repr__(self) -> str:
        return f"Headers({self.shape}, {list(self.items)!r})"


def headers(valid_only: bool = False) -> st.SearchStrategy[Headers]:
    """Header arguments of every documented shape (and one undocumented)."""
    shapes = ["none", "dict", "dict-of-lists", "list", "tuple", "generator", "map"]
    if not valid_only:
        shapes.append("strings")
    items = fields()
    if valid_only:
        items = items.filter(lambda f: f.verdict is Verdict.OK)

    def build(shape: str, found: list[Field]) -> Headers:
        if shape == "none":
            found = []
        if shape == "map":
            # HTTPHeaderMap.add itself refuses wrong types; keep the map well-typed.
            found = [f for f in found if f.verdict is not Verdict.TYPE]
        return Headers(shape, tuple(found))

    return st.builds(build, st.sampled_from(shapes), st.lists(items, max_size=4))


# -- bodies ----------------------------------------------------------------------


class _Opaque:
    """An object that is no body at all."""

    def __repr__(self) -> str:
        return "<opaque object>"


def _gen(chunks: list[Any]) -> Callable[[], Iterator[Any]]:
    return lambda: (chunk for chunk in chunks)


def bodies() -> st.SearchStrategy[Piece]:
    """Bodies of every accepted type and of types that must be refused."""
    data = st.binary(max_size=300)
    text = st.text(max_size=60)
    chunk_lists = st.lists(st.binary(min_size=0, max_size=80), max_size=5)
    ok = st.one_of(
        st.just(Piece("None", Verdict.OK, lambda: None, b"")),
        data.map(lambda d: Piece(f"bytes {d!r}", Verdict.OK, lambda: d, d)),
        data.map(lambda d: Piece(f"bytearray {d!r}", Verdict.OK, lambda: bytearray(d), d)),
        data.map(lambda d: Piece(f"memoryview {d!r}", Verdict.OK, lambda: memoryview(d), d)),
        text.map(lambda t: Piece(f"str {t!r}", Verdict.OK, lambda: t, t.encode("utf-8"))),
        data.map(lambda d: Piece(f"BytesIO {d!r}", Verdict.OK, lambda: io.BytesIO(d), d)),
        text.map(lambda t: Piece(f"StringIO {t!r}", Verdict.OK, lambda: io.StringIO(t), t.encode("utf-8"))),
        chunk_lists.map(lambda c: Piece(f"list {c!r}", Verdict.OK, lambda: list(c), b"".join(c))),
        chunk_lists.map(lambda c: Piece(f"tuple {c!r}", Verdict.OK, lambda: tuple(c), b"".join(c))),
        chunk_lists.map(lambda c: Piece(f"generator {c!r}", Verdict.OK, _gen(c), b"".join(c))),
    )
    refused = st.sampled_from(
        [
            fixed({"a": 1}, Verdict.TYPE),
            fixed({b"a"}, Verdict.TYPE),
            fixed(5, Verdict.TYPE),
            fixed(0, Verdict.TYPE),
            fixed(1.5, Verdict.TYPE),
            fixed(True, Verdict.TYPE),
            Piece("<opaque object>", Verdict.TYPE, _Opaque),
            fixed([b"ok", 3], Verdict.TYPE),
            fixed((b"ok", None), Verdict.TYPE),
        ]
    )
    late = st.sampled_from(
        [
            Piece("generator [b'ok', 3]", Verdict.LATE_TYPE, _gen([b"ok", 3])),
            Piece("generator [None]", Verdict.LATE_TYPE, _gen([None])),
            Piece("generator [b'a', {}]", Verdict.LATE_TYPE, _gen([b"a", {}])),
        ]
    )
    # str items of a list or generator are sent as UTF-8, like a str body.
    text_items = st.lists(
        st.one_of(st.binary(max_size=20), st.text(max_size=10)), min_size=1, max_size=4
    ).map(
        lambda items: Piece(
            f"list {items!r}", Verdict.OK, lambda: list(items), b"".join(_utf8(item) for item in items)
        )
    )
    # Bodies beyond the peer's initial flow-control window (64 KiB), so that
    # senders wait for WINDOW_UPDATE while other threads go on.
    big = st.integers(70_000, 300_000).flatmap(
        lambda n: st.sampled_from(
            [
                Piece(f"bytes of {n}", Verdict.OK, lambda: _pattern(n), _pattern(n)),
                Piece(f"BytesIO of {n}", Verdict.OK, lambda: io.BytesIO(_pattern(n)), _pattern(n)),
                Piece(f"generator of {n}", Verdict.OK, _gen(_chunks(_pattern(n))), _pattern(n)),
            ]
        )
    )
    return st.one_of(ok, ok, text_items, big, refused, late)


def _pattern(n: int) -> bytes:
    return bytes(range(251)) * (n // 251) + bytes(range(n % 251))


def _chunks(data: bytes, size: int = 16_000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _utf8(item: bytes | str) -> bytes:
    return item.encode("utf-8") if isinstance(item, str) else item


# -- timeouts ----------------------------------------------------------------------------


def timeouts() -> st.SearchStrategy[Piece]:
    """Constructor timeouts, labelled as docs/api.rst's TimeoutType says."""
    inf = float("inf")
    nan = float("nan")
    return st.sampled_from(
        [
            fixed(None, Verdict.OK),
            fixed(10, Verdict.OK),
            fixed(10.0, Verdict.OK),
            fixed((10, 10), Verdict.OK),
            fixed((None, 10), Verdict.OK),
            fixed((10, None), Verdict.OK),
            fixed(inf, Verdict.OK),
            fixed((inf, 10.0), Verdict.OK),
            fixed("5", Verdict.TYPE),
            fixed(True, Verdict.TYPE),
            fixed([1, 2], Verdict.TYPE),
            fixed(object(), Verdict.TYPE),
            fixed(("1", 2), Verdict.TYPE),
            fixed(0, Verdict.VALUE),
            fixed(-1, Verdict.VALUE),
            fixed(nan, Verdict.VALUE),
            fixed((1, 2, 3), Verdict.VALUE),
            fixed((1,), Verdict.VALUE),
            fixed((1, -2), Verdict.VALUE),
            fixed((), Verdict.VALUE),
        ]
    )


def allowed_outcomes(verdicts: list[Verdict]) -> set[str]:
    """Outcomes (``ok``, ``type``, ``value``, ``hyper``) the docs allow for these verdicts.

    ``type`` is a ``TypeError``, ``value`` a ``ValueError`` (hyper's
    ``InvalidHeader``/``InvalidURL`` included), ``hyper`` any other
    ``HyperError``. A wrong type and a wrong value together may be reported
    either way (the order of the checks is not documented).
    """
    worst = max(verdicts, default=Verdict.OK)
    either = Verdict.EITHER in verdicts
    if worst in (Verdict.TYPE, Verdict.VALUE):
        allowed = {"type"} if Verdict.TYPE in verdicts else set()
        if Verdict.VALUE in verdicts:
            allowed.add("value")
        if either:
            allowed |= {"type", "value"}
        return allowed
    if worst is Verdict.EITHER:
        return {"ok", "type", "value", "hyper"}
    if worst is Verdict.LATE_TYPE:
        return {"type"}
    return {"ok"}

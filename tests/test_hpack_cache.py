"""Memoised HPACK (:mod:`hyper.http20.hpack_cache`) against plain hpack.

:class:`MemoEncoder` and :class:`MemoDecoder` skip work on header blocks they
have seen before. Nobody may be able to tell: the bytes on the wire, the
decoded fields (``HeaderTuple`` versus ``NeverIndexedHeaderTuple`` included),
every error, and the dynamic tables' contents and sizes must be exactly what
``hpack.Encoder`` and ``hpack.Decoder`` give.

1. A differential property test runs one random sequence of operations on a
   plain pair and a memoising pair and compares them after every step. The
   vocabulary is small so that blocks repeat and the memos are really used.
2. Explicit cases: what is served from a memo (and, as important, what never
   is), errors on repeat, and the bounds on the memos.
3. End to end: an :class:`~hyper.http20.core.H2Core` talking to an in-memory
   h2 server over 50 exchanges, each side's tables mirroring the other's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import hpack.exceptions
import hpack.hpack
import pytest
from hpack import HeaderTuple, NeverIndexedHeaderTuple
from hypothesis import given, settings
from hypothesis import strategies as st

import hyper
import hyper.tls
from hyper.http20 import hpack_cache
from hyper.http20.core import H2Core
from hyper.http20.hpack_cache import (
    MEMO_ENTRIES,
    MEMO_MAX_BLOCK,
    MEMO_MAX_BYTES,
    MEMO_MAX_ENTRY_BYTES,
    BoundedMemo,
    MemoDecoder,
    MemoEncoder,
)
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark
from tests.servers import ServerInfo

# Hypothesis imports libcst to write its patch file when a generated example
# fails; libcst warns about mypy_extensions, and ``filterwarnings = error``
# would turn the report of a real failure into an INTERNALERROR.
pytestmark = [
    pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"),
    # These compare the fast paths with h2's own: they need them on.
    pytest.mark.usefixtures("fast_paths_on"),
]

#: hpack's defaults, which h2 starts with as well.
DEFAULT_TABLE = 4096
DEFAULT_LIST_SIZE = 65536


# -- raw HPACK representations (RFC 7541 section 6), to craft blocks ------------------------


def integer(value: int, prefix_bits: int, flags: int) -> bytes:
    encoded = bytearray(hpack.hpack.encode_integer(value, prefix_bits))
    encoded[0] |= flags
    return bytes(encoded)


def string(data: bytes) -> bytes:
    return integer(len(data), 7, 0) + data


def literal(flags: int, prefix_bits: int, name: int | bytes, value: bytes) -> bytes:
    """A literal field: ``name`` is a table index or a literal name."""
    if isinstance(name, int):
        return integer(name, prefix_bits, flags) + string(value)
    return integer(0, prefix_bits, flags) + string(name) + string(value)


def incremental(name: int | bytes, value: bytes) -> bytes:
    """Literal with incremental indexing: adds the field to the table."""
    return literal(0x40, 6, name, value)


def not_indexed(name: int | bytes, value: bytes) -> bytes:
    return literal(0x00, 4, name, value)


def never_indexed(name: int | bytes, value: bytes) -> bytes:
    return literal(0x10, 4, name, value)


def indexed(index: int) -> bytes:
    return integer(index, 7, 0x80)


def size_update(size: int) -> bytes:
    return integer(size, 5, 0x20)


# Static table indices used below.
STATUS_200, STATUS_404 = 8, 13
CONTENT_LENGTH, CONTENT_TYPE, DATE, ETAG, LAST_MODIFIED = 28, 31, 33, 34, 44
SERVER, SET_COOKIE = 54, 55
FIRST_DYNAMIC = 62


def nginx_block(status: int = STATUS_200, date: bytes = b"Sat, 28 Nov 2026 07:00:00 GMT") -> bytes:
    """What nginx sends: every field a literal with incremental indexing of a static name."""
    return (
        indexed(status)
        + incremental(SERVER, b"nginx/1.24.0")
        + incremental(DATE, date)
        + incremental(CONTENT_TYPE, b"text/html")
        + incremental(CONTENT_LENGTH, b"615")
        + incremental(LAST_MODIFIED, b"Tue, 11 Apr 2023 01:45:34 GMT")
        + incremental(ETAG, b'"6434bbbe-267"')
        + incremental(b"accept-ranges", b"bytes")
    )


def fresh_encoding(fields: list[Any]) -> bytes:
    """A block as a new peer's encoder makes it (Huffman literals, no dynamic references)."""
    return hpack.Encoder().encode(fields)


#: Blocks fed to both decoders as they are, whatever state the tables are in.
CRAFTED: tuple[bytes, ...] = (
    nginx_block(),
    nginx_block(),  # the same bytes twice: picked twice as often
    nginx_block(STATUS_404, b"Sat, 28 Nov 2026 07:00:01 GMT"),
    fresh_encoding([(b":status", b"200"), (b"content-type", b"application/json"), (b"x-id", b"7")]),
    not_indexed(CONTENT_TYPE, b"text/plain"),
    not_indexed(b"x-plain", b"v") + indexed(STATUS_200),
    never_indexed(SET_COOKIE, b"session=abc"),
    never_indexed(b"x-secret", b"s3cr3t") + not_indexed(CONTENT_LENGTH, b"1"),
    incremental(b"x-custom", b"value"),
    b"",
    # References to the dynamic table, valid or not depending on its state.
    indexed(FIRST_DYNAMIC),
    indexed(FIRST_DYNAMIC + 1) + indexed(2),
    indexed(FIRST_DYNAMIC + 5),
    incremental(FIRST_DYNAMIC, b"new-value"),
    not_indexed(FIRST_DYNAMIC + 1, b"other"),
    never_indexed(FIRST_DYNAMIC, b"hidden"),
    # Table size updates, only allowed at the start of a block.
    size_update(0) + indexed(STATUS_200),
    size_update(100) + incremental(b"x-small", b"1"),
    size_update(DEFAULT_TABLE),
    size_update(8192) + nginx_block(),
    size_update(0) + size_update(DEFAULT_TABLE) + indexed(STATUS_200),
    indexed(STATUS_200) + size_update(100),
    # Broken blocks.
    b"\x41",  # literal with a static name and no value
    b"\x7f",  # an integer whose continuation bytes are missing
    indexed(STATUS_200) + b"\x0f",  # truncated name index
    indexed(0),
    indexed(300),
    not_indexed(b"x-bin", b"\xff\xfe"),  # not UTF-8: an error only when not raw
    # Large blocks: an entry bigger than any table (empties it), a block
    # above MEMO_MAX_BLOCK, and one too large for a small header list.
    incremental(b"x-huge", b"h" * 5000),
    b"".join(not_indexed(b"x-field-%d" % i, b"v" * 40) for i in range(60)),
    not_indexed(b"x-medium", b"m" * 300),
)

REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.org"), (b":path", b"/")]


def encoder_inputs() -> list[Any]:
    """What the client-side encoders are asked to encode (fresh objects each time)."""
    return [
        REQUEST,
        [*REQUEST[:3], (b":path", b"/other")],
        [*REQUEST, (b"user-agent", b"hyper"), (b"accept", b"*/*"), (b"accept-encoding", b"gzip, br")],
        [*REQUEST, NeverIndexedHeaderTuple(b"authorization", b"Bearer abc")],
        [*REQUEST, (b"authorization", b"Bearer abc")],
        [*REQUEST, (b"cookie", b"id=1", True)],
        [*REQUEST, (b"cookie", b"id=1", False)],
        [*REQUEST, (b"cookie", b"id=1")],
        [*REQUEST, HeaderTuple(b"x-tuple", b"1")],
        [*REQUEST, (b"x-tuple", b"1")],
        [(":method", "GET"), (":path", "/"), ("x-text", "caf\u00e9")],
        [(b":method", b"POST"), (b":path", b"/upload"), (b"content-length", 615)],
        {":method": "GET", ":path": "/dict", "x-dict": "1"},
        tuple(REQUEST),
        [*REQUEST, (b"x-huge", b"h" * 5000)],
        [*REQUEST, (b"x-huge", b"h" * 5000, True)],
        [*REQUEST, (b"x-medium", b"m" * 1000)],
        [*REQUEST, *[(b"x-many-%d" % i, b"value-%d" % i) for i in range(80)]],
        [(b"x-secret-%d" % i, b"s" * 40, True) for i in range(60)],
        [],
    ]


def server_inputs() -> list[Any]:
    """Responses a plain hpack encoder on the server side makes blocks of."""
    base = [(b":status", b"200"), (b"server", b"nginx"), (b"content-type", b"text/html")]
    return [
        base,
        [*base, (b"content-length", b"615"), (b"date", b"Sat, 28 Nov 2026 07:00:00 GMT")],
        [*base, (b"content-length", b"12"), (b"date", b"Sat, 28 Nov 2026 07:00:01 GMT")],
        [(b":status", b"404"), (b"server", b"nginx")],
        [*base, NeverIndexedHeaderTuple(b"set-cookie", b"id=42")],
        [*base, (b"set-cookie", b"id=42", True)],
        [*base, (b"x-huge", b"h" * 5000)],
        [*base, *[(b"x-many-%d" % i, b"value-%d" % i) for i in range(80)]],
        [(":status", "204"), ("x-text", "caf\u00e9")],
    ]


TABLE_SIZES = (0, 64, 256, DEFAULT_TABLE, 8192, 65536)
#: Header list limits; the small ones (rarer) make most blocks fail.
LIST_SIZES = (64, 1024, DEFAULT_LIST_SIZE, DEFAULT_LIST_SIZE, DEFAULT_LIST_SIZE, 2**31)


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """A call's result, or its exception type and message, in a comparable form."""
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 -- the exception is what is compared
        return ("raised", (type(exc), str(exc)))
    if isinstance(result, bytes):
        return ("bytes", result)
    return ("fields", [(type(field), field) for field in result])


def table_state(coder: Any) -> tuple[Any, ...]:
    """All hpack keeps in a table (``resized``: a size update the encoder still has to send)."""
    table = coder.header_table
    return (list(table.dynamic_entries), table._current_size, table.maxsize, table.resized)


def assert_bounded(memo: BoundedMemo) -> None:
    assert len(memo) <= MEMO_ENTRIES
    assert memo.size <= MEMO_MAX_BYTES


class Pair:
    """The same operations on plain hpack coders and on the memoising ones."""

    def __init__(self) -> None:
        self.plain_encoder = hpack.Encoder()
        self.memo_encoder = MemoEncoder()
        self.plain_decoder = hpack.Decoder(DEFAULT_LIST_SIZE)
        self.memo_decoder = MemoDecoder(DEFAULT_LIST_SIZE, DEFAULT_TABLE)
        # The peer whose blocks the decoders read, with references into the
        # dynamic table it believes the decoders hold.
        self.server = hpack.Encoder()

    def step(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "encode":
            _, index, huffman = op
            plain = outcome(lambda: self.plain_encoder.encode(encoder_inputs()[index], huffman))
            memo = outcome(lambda: self.memo_encoder.encode(encoder_inputs()[index], huffman))
            assert memo == plain
        elif kind == "encoder_table_size":  # h2 does this on the server's SETTINGS
            self.plain_encoder.header_table_size = op[1]
            self.memo_encoder.header_table_size = op[1]
        elif kind in ("decode_crafted", "decode_server"):
            _, index, raw = op
            if kind == "decode_crafted":
                block = CRAFTED[index]
            else:
                block = self.server.encode(server_inputs()[index])
            plain = outcome(lambda: self.plain_decoder.decode(block, raw))
            memo = outcome(lambda: self.memo_decoder.decode(memoryview(block), raw))
            assert memo == plain
        elif kind == "server_table_size":  # a size update starts the server's next block
            self.server.header_table_size = op[1]
        elif kind == "decoder_limits":  # h2 does this on our SETTINGS being acknowledged
            _, allowed, list_size = op
            for decoder in (self.plain_decoder, self.memo_decoder):
                decoder.max_allowed_table_size = allowed
                decoder.max_header_list_size = list_size
        else:  # pragma: no cover -- a typo in the strategy
            raise AssertionError(op)
        self.check()

    def check(self) -> None:
        assert table_state(self.memo_encoder) == table_state(self.plain_encoder)
        assert self.memo_encoder.table_size_changes == self.plain_encoder.table_size_changes
        assert table_state(self.memo_decoder) == table_state(self.plain_decoder)
        assert self.memo_decoder.max_allowed_table_size == self.plain_decoder.max_allowed_table_size
        assert_bounded(self.memo_encoder._memo)
        assert_bounded(self.memo_decoder._memo)


#: Operations that go into working sets most often, chosen so that a working
#: set often holds a pair that a wrong memo would get wrong: a dynamic
#: reference and blocks that change the entry it names; size updates that
#: undo one another; a field never indexed and the same field plain; the
#: usual requests; nginx's blocks.
HOT_ENCODES = (0, 1, 2, 3, 4, 5, 7)
HOT_DECODES = (0, 2, 4, 6, 8, 10, 11, 13, 14, 16, 18)
HOT = (
    *[("encode", index, True) for index in HOT_ENCODES],
    *[("decode_crafted", index, True) for index in HOT_DECODES],
    *[("decode_server", index, True) for index in (0, 1, 4)],
)

#: Any encoding or decoding.
CODING = st.one_of(
    st.tuples(st.just("encode"), st.integers(0, len(encoder_inputs()) - 1), st.booleans()),
    st.tuples(st.just("decode_crafted"), st.integers(0, len(CRAFTED) - 1), st.booleans()),
    st.tuples(st.just("decode_server"), st.integers(0, len(server_inputs()) - 1), st.booleans()),
)

OPERATIONS = st.one_of(
    CODING,
    st.tuples(st.just("encoder_table_size"), st.sampled_from(TABLE_SIZES)),
    st.tuples(st.just("server_table_size"), st.sampled_from(TABLE_SIZES)),
    # A table size allowed below the table's size fails every block until one
    # shrinks the table: keep it rare, or little would be decoded at all.
    st.tuples(
        st.just("decoder_limits"),
        st.sampled_from((DEFAULT_TABLE, DEFAULT_TABLE, DEFAULT_TABLE, 8192, 65536, 256)),
        st.sampled_from(LIST_SIZES),
    ),
)


def _sequences(working_set: list[tuple[Any, ...]]) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    # Three times in four a block of the working set: blocks repeat, with
    # now and then a change of table or limits (or other blocks) in between.
    # (st.one_of would not do: it picks among its strategies, not by weight.)
    pick = st.tuples(st.integers(0, 3), st.sampled_from(working_set), OPERATIONS)
    return st.lists(pick.map(lambda p: p[1] if p[0] else p[2]), min_size=20, max_size=80)


#: Each example draws a few operations that it then repeats, mixed with others.
_WORKING = st.tuples(st.booleans(), st.sampled_from(HOT), CODING).map(lambda p: p[1] if p[0] else p[2])
SEQUENCES = st.lists(_WORKING, min_size=2, max_size=6).flatmap(_sequences)


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(SEQUENCES)
def test_memo_coders_behave_exactly_like_hpack(ops: list[tuple[Any, ...]]) -> None:
    pair = Pair()
    for op in ops:
        pair.step(op)


# -- a real encoder's blocks: the generation-keyed decoder memo ---------------------------


class PolicyEncoder(hpack.Encoder):
    """hpack's encoder with servers' indexing choices.

    hpack's own encoder adds every field it sends as a literal to its table
    (or never indexes it); nghttp2 sends content-length, etag, :path and a
    few more as literals *without* indexing, so that they neither enter nor
    disturb the table. Names in ``not_indexed`` are sent that way here.
    """

    def __init__(self, not_indexed: frozenset[bytes]) -> None:
        super().__init__()
        self.not_indexed = not_indexed

    def add(self, to_add: tuple[bytes, bytes], sensitive: bool, huffman: bool = False) -> bytes:
        name, value = to_add
        if sensitive or name not in self.not_indexed:
            return super().add(to_add, sensitive, huffman)
        match = self.header_table.search(name, value)
        if match is not None and match[2] is not None:
            return self._encode_indexed(match[0])  # in the table: referred to
        if match is not None:
            return self._encode_indexed_literal(match[0], value, hpack.hpack.INDEX_NONE, huffman)
        return self._encode_literal(name, value, hpack.hpack.INDEX_NONE, huffman)


#: Names a server may send without indexing.
POLICY_NAMES = (b"content-length", b"etag", b"date", b"x-request-id", b"server", b"x-long")
#: Long values: larger than small tables (they empty them), or than MEMO_MAX_BLOCK.
LONG_VALUES = (b"", b"l" * 100, b"l" * 1000, b"l" * 5000)


def response_fields(status: int, variant: int, cookie: int, long: int, request_id: int | None) -> list[Any]:
    """A response as a server builds it; ``variant`` changes a few values."""
    fields: list[Any] = [
        (b":status", (b"200", b"404", b"204", b"304")[status]),
        (b"server", b"test-server/1.0"),
        (b"date", b"Sat, 05 Dec 2026 15:00:0%d GMT" % variant),
        (b"content-type", (b"text/html", b"application/json")[variant % 2]),
        (b"content-length", b"%d" % (600 + variant)),
        (b"etag", b'"e-%d"' % (variant % 2)),
        (b"cache-control", b"max-age=60"),
    ]
    if cookie == 1:
        fields.append(NeverIndexedHeaderTuple(b"set-cookie", b"id=%d" % variant))
    elif cookie == 2:
        fields.append((b"set-cookie", b"id=%d" % variant, True))
    elif cookie == 3:
        fields.append((b"set-cookie", b"id=%d" % variant))
    if LONG_VALUES[long]:
        fields.append((b"x-long", LONG_VALUES[long]))
    if request_id is not None:
        fields.append((b"x-request-id", b"%d" % request_id))  # new every time
    return fields


RESPONSES = st.tuples(
    st.just("respond"),
    st.integers(0, 3),  # status
    st.integers(0, 2),  # variant
    st.integers(0, 3),  # cookie: none, never indexed (two ways), plain
    st.sampled_from((0, 0, 0, 1, 2, 3)),  # long value
    st.booleans(),  # a new request id
)
SERVER_OPERATIONS = st.one_of(
    RESPONSES,
    st.tuples(st.just("server_table_size"), st.sampled_from(TABLE_SIZES)),
    st.tuples(st.just("huffman"), st.booleans()),
    st.tuples(
        st.just("decoder_limits"),
        st.sampled_from((DEFAULT_TABLE, DEFAULT_TABLE, 8192, 65536, 256)),
        st.sampled_from(LIST_SIZES),
    ),
)


@st.composite
def server_sessions(draw: st.DrawFn) -> tuple[frozenset[bytes], int, list[tuple[Any, ...]]]:
    """A server's indexing policy, its first table size, and what it does, with responses repeating."""
    not_indexed = frozenset(draw(st.sets(st.sampled_from(POLICY_NAMES))))
    table_size = draw(st.sampled_from((DEFAULT_TABLE, DEFAULT_TABLE, 64, 256, 512, 0)))
    working = draw(st.lists(RESPONSES, min_size=1, max_size=4))
    pick = st.tuples(st.integers(0, 4), st.sampled_from(working), SERVER_OPERATIONS)
    ops = draw(st.lists(pick.map(lambda p: p[1] if p[0] else p[2]), min_size=10, max_size=60))
    return not_indexed, table_size, ops


class ServerSession:
    """A server's encoder feeding a plain hpack decoder and a memoising one, side by side."""

    def __init__(self, not_indexed: frozenset[bytes], table_size: int) -> None:
        self.server = PolicyEncoder(not_indexed)
        if table_size != DEFAULT_TABLE:
            self.server.header_table_size = table_size  # a size update starts the first block
        self.huffman = True
        self.request_id = 0
        self.plain = hpack.Decoder(DEFAULT_LIST_SIZE)
        self.memo = MemoDecoder(DEFAULT_LIST_SIZE, DEFAULT_TABLE)

    def step(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "respond":
            _, status, variant, cookie, long, new_id = op
            self.request_id += new_id
            fields = response_fields(status, variant, cookie, long, self.request_id if new_id else None)
            self.decode(self.server.encode(fields, self.huffman))
        elif kind == "server_table_size":
            self.server.header_table_size = op[1]
        elif kind == "huffman":
            self.huffman = op[1]
        elif kind == "decoder_limits":
            _, allowed, list_size = op
            for decoder in (self.plain, self.memo):
                decoder.max_allowed_table_size = allowed
                decoder.max_header_list_size = list_size
        else:  # pragma: no cover -- a typo in the strategy
            raise AssertionError(op)

    def decode(self, block: bytes) -> None:
        """Both decoders, the block as it came and as a memoryview: same fields, same table."""
        expected = outcome(lambda: self.plain.decode(block, raw=True))
        got = outcome(lambda: self.memo.decode(memoryview(block), raw=True))
        assert got == expected
        assert table_state(self.memo) == table_state(self.plain)
        assert_bounded(self.memo._memo)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(server_sessions())
def test_generation_memo_decodes_a_real_encoders_blocks_as_hpack(
    session: tuple[frozenset[bytes], int, list[tuple[Any, ...]]],
) -> None:
    not_indexed, table_size, ops = session
    pair = ServerSession(not_indexed, table_size)
    for op in ops:
        pair.step(op)


NGHTTPD_POLICY = frozenset({b"content-length", b"etag"})


@pytest.mark.parametrize(
    ("policy", "table_size", "misses"),
    [
        pytest.param(NGHTTPD_POLICY, DEFAULT_TABLE, 4, id="nghttpd-like"),
        pytest.param(frozenset(), DEFAULT_TABLE, 4, id="indexes-everything"),
        # The second round's adds evict the first round's fields, which the
        # next block adds again: one more miss.
        pytest.param(NGHTTPD_POLICY, 256, 5, id="small-table"),
    ],
)
def test_a_server_referring_to_its_table_is_served_from_the_memo(
    policy: frozenset[bytes], table_size: int, misses: int, hpack_calls: dict[str, int]
) -> None:
    """After its first responses, a server's blocks only refer to its table: hits.

    Some values change after 100 responses (as the date does once a
    second): the block that adds them and the first one referring to them
    with the new indices are decoded by hpack, the rest come from the memo.
    """
    pair = ServerSession(policy, table_size)
    for i in range(200):
        pair.step(("respond", 0, i // 100, 0, 0, False))
    assert (pair.memo.hits, pair.memo.misses) == (200 - misses, misses)
    assert hpack_calls["memo_decode"] == misses


def test_a_new_entry_in_every_response_defeats_any_block_memo() -> None:
    """A server that indexes a value new each time (a request id): no block comes back."""
    pair = ServerSession(NGHTTPD_POLICY, DEFAULT_TABLE)
    for _ in range(50):
        pair.step(("respond", 0, 0, 0, 0, True))
    assert pair.memo.hits == 0
    # Sent without indexing, the same id field no longer disturbs the table.
    pair = ServerSession(NGHTTPD_POLICY | {b"x-request-id"}, DEFAULT_TABLE)
    for _ in range(50):
        pair.step(("respond", 0, 0, 0, 0, True))
    assert pair.memo.hits == 0  # the block differs each time all the same


# -- explicit cases -------------------------------------------------------------------------


@pytest.fixture
def hpack_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts how often hpack's own encode and decode run: all calls, and the memo misses."""
    calls = {"encode": 0, "decode": 0, "memo_encode": 0, "memo_decode": 0}
    encode, decode = hpack.Encoder.encode, hpack.Decoder.decode

    def counting_encode(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["encode"] += 1
        calls["memo_encode"] += isinstance(self, MemoEncoder)
        return encode(self, *args, **kwargs)

    def counting_decode(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["decode"] += 1
        calls["memo_decode"] += isinstance(self, MemoDecoder)
        return decode(self, *args, **kwargs)

    monkeypatch.setattr(hpack.Encoder, "encode", counting_encode)
    monkeypatch.setattr(hpack.Decoder, "decode", counting_decode)
    return calls


def decoders(list_size: int = DEFAULT_LIST_SIZE) -> tuple[hpack.Decoder, MemoDecoder]:
    return hpack.Decoder(list_size), MemoDecoder(list_size, DEFAULT_TABLE)


def decode_both(plain: hpack.Decoder, memo: MemoDecoder, block: bytes, raw: bool = True) -> tuple[str, Any]:
    expected = outcome(lambda: plain.decode(block, raw))
    got = outcome(lambda: memo.decode(block, raw))
    assert got == expected
    assert table_state(memo) == table_state(plain)
    return got


def test_repeated_nginx_block_is_served_from_the_memo(hpack_calls: dict[str, int]) -> None:
    plain, memo = decoders()
    block = nginx_block()
    first = decode_both(plain, memo, block)
    assert first[0] == "fields" and first[1][0] == (HeaderTuple, (b":status", b"200"))
    assert len(memo._memo) == 1
    for _ in range(3):
        assert decode_both(plain, memo, block) == first
    # Four decodes of the plain decoder, one of the memoising one.
    assert hpack_calls["decode"] == 4 + 1
    # The table holds each field as often as the block was seen (evictions included).
    assert memo.header_table.dynamic_entries[0] == (b"accept-ranges", b"bytes")


def test_never_indexed_fields_keep_their_type_when_replayed(hpack_calls: dict[str, int]) -> None:
    plain, memo = decoders()
    block = never_indexed(SET_COOKIE, b"session=abc") + not_indexed(CONTENT_TYPE, b"text/plain")
    for _ in range(3):
        kind, fields = decode_both(plain, memo, block, raw=False)
        assert fields == [
            (NeverIndexedHeaderTuple, ("set-cookie", "session=abc")),
            (HeaderTuple, ("content-type", "text/plain")),
        ]
    assert hpack_calls["decode"] == 3 + 1


def test_a_block_reading_the_dynamic_table_is_remembered_for_its_generation(
    hpack_calls: dict[str, int],
) -> None:
    plain, memo = decoders()
    reference = indexed(FIRST_DYNAMIC)
    decode_both(plain, memo, incremental(b"x-v", b"one"))
    assert decode_both(plain, memo, reference) == ("fields", [(HeaderTuple, (b"x-v", b"one"))])
    # The table is as it was: the same block is served from the memo.
    assert decode_both(plain, memo, reference) == ("fields", [(HeaderTuple, (b"x-v", b"one"))])
    assert memo.hits == 1
    # Once the table changed, the same bytes name another entry: hpack decodes them.
    decode_both(plain, memo, incremental(b"x-v", b"two"))
    assert decode_both(plain, memo, reference) == ("fields", [(HeaderTuple, (b"x-v", b"two"))])
    assert memo.hits == 1
    assert decode_both(plain, memo, reference) == ("fields", [(HeaderTuple, (b"x-v", b"two"))])
    assert memo.hits == 2
    # A literal whose name is a dynamic entry reads the table too.
    named = not_indexed(FIRST_DYNAMIC, b"three")
    assert decode_both(plain, memo, named) == ("fields", [(HeaderTuple, (b"x-v", b"three"))])
    assert decode_both(plain, memo, named) == ("fields", [(HeaderTuple, (b"x-v", b"three"))])
    # The two incremental blocks, and one entry for each reading block: the
    # stale generation of ``reference`` was replaced, not kept beside the new.
    assert len(memo._memo) == 4
    assert (memo.hits, memo.misses) == (3, 5)
    assert hpack_calls["decode"] == 8 + 5


def test_a_block_that_reads_and_changes_the_table_is_not_kept(hpack_calls: dict[str, int]) -> None:
    """Its table leaves the generation it was decoded at for good: it could never be served."""
    plain, memo = decoders()
    decode_both(plain, memo, incremental(b"x-v", b"one"))
    blocks = [
        incremental(FIRST_DYNAMIC, b"again"),  # a dynamic name, added again
        indexed(FIRST_DYNAMIC) + incremental(b"x-w", b"1"),  # a reference, then an add
        size_update(1024) + indexed(STATUS_200),  # a resize
    ]
    for block in blocks:
        for _ in range(2):
            decode_both(plain, memo, block)
    assert len(memo._memo) == 1  # the first block only
    assert memo.hits == 0 and hpack_calls["decode"] == 2 * 7


def test_replayed_adds_evict_as_hpack_does(hpack_calls: dict[str, int]) -> None:
    """A remembered block that adds entries, replayed against tables of other contents."""
    plain, memo = decoders()
    for decoder in (plain, memo):
        decoder.header_table_size = 200  # a few entries at most
    adds = incremental(b"x-a", b"a" * 40) + incremental(SERVER, b"s" * 30) + incremental(b"x-b", b"b")
    others = [incremental(b"x-other", b"o" * n) for n in (1, 60, 120, 10)]
    for other in others:
        decode_both(plain, memo, other)
        decode_both(plain, memo, adds)
        # A reference to the oldest entry left: whichever survived eviction.
        decode_both(plain, memo, indexed(FIRST_DYNAMIC + len(memo.header_table.dynamic_entries) - 1))
    assert memo.hits >= 3  # ``adds`` from the memo each time but the first


def test_a_memo_hit_returns_a_list_of_its_own() -> None:
    plain, memo = decoders()
    decode_both(plain, memo, incremental(b"x-v", b"one"))
    first = memo.decode(indexed(FIRST_DYNAMIC), raw=True)
    plain.decode(indexed(FIRST_DYNAMIC), raw=True)
    first.clear()  # type: ignore[attr-defined]  # what a caller may do with its list
    assert decode_both(plain, memo, indexed(FIRST_DYNAMIC)) == ("fields", [(HeaderTuple, (b"x-v", b"one"))])
    assert memo.hits == 1


def test_the_decoder_memo_is_bounded_in_bytes() -> None:
    plain, memo = decoders(list_size=2**31)
    # A small block can name large entries: 40 references to a 3 KB entry.
    decode_both(plain, memo, incremental(b"x-big", b"v" * 3000))
    many = indexed(FIRST_DYNAMIC) * 40
    assert len(many) < MEMO_MAX_BLOCK
    for _ in range(2):
        decode_both(plain, memo, many)
    assert memo.hits == 0 and len(memo._memo) == 0  # too costly to keep (the add: too long)
    # Blocks of about 10 KB each, decoded: the memo holds a bounded number.
    medium = [indexed(FIRST_DYNAMIC) * 3 + not_indexed(b"x-n", b"%d" % i) for i in range(100)]
    for block in medium:
        decode_both(plain, memo, block)
        assert_bounded(memo._memo)
    assert memo._memo.size > MEMO_MAX_BYTES - MEMO_MAX_ENTRY_BYTES
    assert len(memo._memo) < 40
    # The youngest ones are kept, and served.
    decode_both(plain, memo, medium[-1])
    assert memo.hits == 1


def test_bounded_memo_keeps_the_youngest_entries() -> None:
    memo = BoundedMemo(max_entries=3, max_bytes=100, max_entry_bytes=80)
    for key in "abc":
        memo.put(key, key.upper(), 10)
    memo.put("d", "D", 10)
    assert list(memo.entries) == ["b", "c", "d"] and memo.size == 30
    memo.put("b", "B2", 20)  # replaced, and now the youngest
    assert list(memo.entries.items()) == [("c", "C"), ("d", "D"), ("b", "B2")] and memo.size == 40
    memo.put("e", "E", 75)  # needs room in entries (c goes), then in bytes (d goes)
    assert list(memo.entries) == ["b", "e"] and memo.size == 95
    memo.put("f", "F", 81)  # too large for one entry: not kept, nothing evicted
    assert list(memo.entries) == ["b", "e"] and memo.size == 95


def test_a_block_with_a_table_size_update_is_not_remembered(hpack_calls: dict[str, int]) -> None:
    plain, memo = decoders()
    decode_both(plain, memo, nginx_block())
    block = size_update(100) + indexed(STATUS_200)
    for _ in range(2):
        decode_both(plain, memo, block)
    assert memo.header_table.maxsize == 100
    assert len(memo._memo) == 1  # the nginx block, remembered before the resize
    assert hpack_calls["decode"] == 2 * 3
    # The remembered block is keyed on the table's size, so it is decoded
    # afresh with the smaller table (and its adds evict as hpack's do).
    decode_both(plain, memo, nginx_block())
    assert hpack_calls["decode"] == 2 * 4


@pytest.mark.parametrize(
    ("block", "list_size", "error"),
    [
        pytest.param(b"\x41", DEFAULT_LIST_SIZE, hpack.exceptions.HPACKDecodingError, id="truncated-value"),
        pytest.param(b"\x7f", DEFAULT_LIST_SIZE, hpack.exceptions.HPACKDecodingError, id="truncated-integer"),
        pytest.param(indexed(0), DEFAULT_LIST_SIZE, hpack.exceptions.HPACKDecodingError, id="index-zero"),
        pytest.param(
            indexed(FIRST_DYNAMIC + 3),
            DEFAULT_LIST_SIZE,
            hpack.exceptions.InvalidTableIndex,
            id="index-range",
        ),
        pytest.param(
            indexed(STATUS_200) + size_update(0),
            DEFAULT_LIST_SIZE,
            hpack.exceptions.HPACKDecodingError,
            id="late-size-update",
        ),
        pytest.param(
            size_update(8192),
            DEFAULT_LIST_SIZE,
            hpack.exceptions.InvalidTableSizeError,
            id="size-not-allowed",
        ),
        pytest.param(
            indexed(STATUS_200) + not_indexed(b"x-big", b"b" * 100),
            64,
            hpack.exceptions.OversizedHeaderListError,
            id="oversized-list",
        ),
        pytest.param(
            incremental(b"x-a", b"1") + incremental(b"x-b", b"b" * 100),
            64,
            hpack.exceptions.OversizedHeaderListError,
            id="oversized-after-add",
        ),
    ],
)
def test_errors_are_raised_alike_every_time(block: bytes, list_size: int, error: type[Exception]) -> None:
    plain, memo = decoders(list_size)
    decode_both(plain, memo, incremental(b"x-seed", b"1"))  # one dynamic entry
    for _ in range(3):
        with pytest.raises(error):
            memo.decode(block)
        with pytest.raises(error):
            plain.decode(block)
        assert table_state(memo) == table_state(plain)
    assert len(memo._memo) == 1  # the seed block only


def test_a_remembered_block_fails_once_the_table_outgrew_the_allowed_size() -> None:
    """The check at the end of every block (the table fits the allowed size) is made again.

    The table's size limit is part of what a block that reads no dynamic
    entry is stamped with: between two uses of the same allowed size, the
    peer may have grown the table while a larger size was allowed.
    """
    plain, memo = decoders()
    block = incremental(b"x-v", b"1")
    decode_both(plain, memo, block)
    decode_both(plain, memo, block)
    assert memo.hits == 1
    for decoder in (plain, memo):
        decoder.max_allowed_table_size = 8192
    decode_both(plain, memo, size_update(8192))
    for decoder in (plain, memo):
        decoder.max_allowed_table_size = DEFAULT_TABLE  # our SETTINGS shrank it again
    kind, (error, _) = decode_both(plain, memo, block)
    assert error is hpack.exceptions.InvalidTableSizeError
    assert memo.hits == 1


def test_utf8_errors_depend_on_raw() -> None:
    plain, memo = decoders()
    block = not_indexed(b"x-bin", b"\xff\xfe")
    for _ in range(2):
        assert decode_both(plain, memo, block, raw=True) == (
            "fields",
            [(HeaderTuple, (b"x-bin", b"\xff\xfe"))],
        )
        kind, (error, _) = decode_both(plain, memo, block, raw=False)
        assert kind == "raised" and error is hpack.exceptions.HPACKDecodingError


def test_a_narrowed_list_size_is_applied_to_a_remembered_block() -> None:
    plain, memo = decoders()
    block = not_indexed(b"x-big", b"b" * 100)
    decode_both(plain, memo, block)
    decode_both(plain, memo, block)
    for decoder in (plain, memo):
        decoder.max_header_list_size = 64
    kind, (error, _) = decode_both(plain, memo, block)
    assert error is hpack.exceptions.OversizedHeaderListError


def test_the_decoder_memo_stays_bounded(hpack_calls: dict[str, int]) -> None:
    plain, memo = decoders()
    blocks = [not_indexed(b"x-n", b"%d" % i) for i in range(3 * MEMO_ENTRIES)]
    for block in blocks:
        decode_both(plain, memo, block)
        assert 0 < len(memo._memo) <= MEMO_ENTRIES
    # The latest ones are still remembered.
    before = hpack_calls["decode"]
    decode_both(plain, memo, blocks[-1])
    assert hpack_calls["decode"] == before + 1


def test_the_encoder_memo_stays_bounded() -> None:
    plain, memo = hpack.Encoder(), MemoEncoder()
    # Sensitive fields never change the table, so each of these is remembered.
    for i in range(3 * MEMO_ENTRIES):
        fields = [(b"x-secret", b"%d" % i, True)]
        assert memo.encode(fields) == plain.encode(fields)
        assert 0 < len(memo._memo) <= MEMO_ENTRIES
    assert table_state(memo) == table_state(plain) == ([], 0, DEFAULT_TABLE, False)


def test_blocks_above_the_limit_are_not_remembered(hpack_calls: dict[str, int]) -> None:
    plain, memo = decoders()
    # A 1-byte name and a 2 KiB value: 6 bytes of representation around the value.
    at_limit = not_indexed(b"x", b"a" * (MEMO_MAX_BLOCK - 6))
    above = not_indexed(b"x", b"a" * (MEMO_MAX_BLOCK - 5))
    assert (len(at_limit), len(above)) == (MEMO_MAX_BLOCK, MEMO_MAX_BLOCK + 1)
    for _ in range(2):
        decode_both(plain, memo, above)
    assert len(memo._memo) == 0
    for _ in range(2):
        decode_both(plain, memo, at_limit)
    assert len(memo._memo) == 1
    assert hpack_calls["decode"] == 2 * 2 + 2 + 1

    plain_encoder, memo_encoder = hpack.Encoder(), MemoEncoder()
    big = [(b"x-secret", b"s" * 3000, True)]
    for _ in range(2):
        assert memo_encoder.encode(big, huffman=False) == plain_encoder.encode(big, huffman=False)
    assert len(memo_encoder._memo) == 0


def test_encoder_remembers_only_blocks_that_leave_the_table_alone(hpack_calls: dict[str, int]) -> None:
    plain, memo = hpack.Encoder(), MemoEncoder()
    for _ in range(4):
        assert memo.encode(REQUEST) == plain.encode(REQUEST)
        assert table_state(memo) == table_state(plain)
    # The first adds ":authority" to the table; the second is all indexed and
    # remembered; the last two come from the memo.
    assert hpack_calls["encode"] == 4 + 2
    assert len(memo._memo) == 1


def test_encoder_tells_sensitive_fields_from_plain_ones() -> None:
    plain, memo = hpack.Encoder(), MemoEncoder()
    shapes: list[Any] = [
        [(b"authorization", b"secret")],
        [(b"authorization", b"secret")],
        [NeverIndexedHeaderTuple(b"authorization", b"other")],
        [(b"authorization", b"other", True)],
        [(b"authorization", b"other")],
        [(b"authorization", b"other", True)],
        [NeverIndexedHeaderTuple(b"authorization", b"other")],
        [HeaderTuple(b"authorization", b"other")],
    ]
    for fields in shapes * 2:
        assert memo.encode(fields) == plain.encode(fields)
        assert table_state(memo) == table_state(plain)


def test_encoder_table_size_change_is_sent_once_and_invalidates_the_memo(hpack_calls: dict[str, int]) -> None:
    plain, memo = hpack.Encoder(), MemoEncoder()
    for _ in range(3):
        assert memo.encode(REQUEST) == plain.encode(REQUEST)
    for encoder in (plain, memo):
        encoder.header_table_size = 256
    first = memo.encode(REQUEST)
    assert first == plain.encode(REQUEST)
    assert first.startswith(size_update(256))
    again = memo.encode(REQUEST)
    assert again == plain.encode(REQUEST)
    assert not again.startswith(size_update(256))
    for encoder in (plain, memo):
        encoder.header_table_size = 0  # empties the table
    for _ in range(3):
        assert memo.encode(REQUEST) == plain.encode(REQUEST)
        assert table_state(memo) == table_state(plain)


def test_encoder_keys_on_what_hpack_encodes() -> None:
    """A number equal to another of a different type is encoded differently by hpack.

    hpack turns a non-bytes, non-str value into ``str(value)``: ``200`` is
    ``b"200"`` (the static ``:status 200``) but ``200.0`` is ``b"200.0"`` and
    ``True`` is ``b"True"``. The memo keys on the fields as given, and
    ``200 == 200.0 == ...`` with equal hashes, so the second call is answered
    with the first one's block.
    """
    plain, memo = hpack.Encoder(), MemoEncoder()
    for fields in (
        [(b":status", 200)],
        [(b":status", 200.0)],
        [(b"x-n", 1)],
        [(b"x-n", 1)],
        [(b"x-n", True)],
    ):
        assert memo.encode(fields) == plain.encode(fields), fields
        assert table_state(memo) == table_state(plain)


# -- end to end through h2 ------------------------------------------------------------------


def response_for(i: int) -> list[tuple[bytes, bytes]]:
    fields = [
        (b":status", b"404" if i % 7 == 3 else b"200"),
        (b"server", b"nginx/1.24.0"),
        (b"date", b"Sat, 28 Nov 2026 07:00:%02d GMT" % (i // 10)),
        (b"content-type", b"text/html" if i % 3 else b"application/json"),
        (b"content-length", b"0"),
    ]
    if i % 5 == 0:
        fields.append((b"set-cookie", b"id=%d" % i))
    if i % 11 == 0:
        fields.append((b"x-trace", b"t" * 300 + b"%d" % i))
    return fields


def request_for(i: int) -> list[tuple[bytes, bytes]]:
    fields = [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"example.org"),
        (b":path", b"/%d" % (i % 3)),
        (b"user-agent", b"hyper"),
    ]
    if i % 10 == 9:
        fields.append((b"x-request-id", b"%d" % i))
    return fields


def exchange(core: H2Core, server: h2.connection.H2Connection) -> Iterator[Any]:
    """Moves bytes both ways until both sides are quiet; yields the server's events."""
    while True:
        to_server = core.data_to_send()
        events = server.receive_data(to_server) if to_server else []
        yield from events
        to_client = server.data_to_send()
        if to_client:
            core.receive(to_client)
        if not to_server and not to_client:
            return


def test_fifty_exchanges_through_h2(hpack_calls: dict[str, int]) -> None:
    core = H2Core()
    core.initiate()
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    server.initiate_connection()
    list(exchange(core, server))
    assert core.settings_received
    # The server is plain h2; the client memoises.
    assert isinstance(core._h2.encoder, MemoEncoder) and isinstance(core._h2.decoder, MemoDecoder)

    for i in range(50):
        if i == 25:
            # The server shrinks the table we encode into: the next request
            # block starts with a size update, and the encoder memo is void.
            server.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 256})
            list(exchange(core, server))
        if i == 30:
            # The server stops using its table (as nginx in effect does): its
            # blocks no longer refer to dynamic entries and can be remembered.
            server.encoder.header_table_size = 0
        if i == 40:
            server.encoder.header_table_size = 128
        request = request_for(i)
        stream_id = core.open_stream(request, end_stream=True)
        received = [e for e in exchange(core, server) if isinstance(e, h2.events.RequestReceived)]
        assert [list(map(tuple, e.headers)) for e in received] == [request]
        response = response_for(i)
        server.send_headers(stream_id, response, end_stream=True)
        list(exchange(core, server))
        stream = core.streams[stream_id]
        assert core.stream_failure(stream) is None
        assert stream.headers == response and stream.ended

        # Each side's dynamic table mirrors its peer's (an encoder's flag of a
        # size update still to send has no counterpart in the decoder).
        assert table_state(core._h2.encoder)[:3] == table_state(server.decoder)[:3]
        assert table_state(core._h2.decoder)[:3] == table_state(server.encoder)[:3]

    assert core.fatal is None
    assert server.decoder.header_table.maxsize == 256
    assert server.encoder.header_table.maxsize == 128
    # The memos were used: fewer hpack runs on our side than blocks.
    assert hpack_calls["memo_encode"] < 40
    assert hpack_calls["memo_decode"] < 45
    assert len(core._h2.encoder._memo) and len(core._h2.decoder._memo)


def test_install_keeps_the_decoder_limits() -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.decoder.max_header_list_size = 1234
    conn.decoder.max_allowed_table_size = 321
    hpack_cache.install(conn)
    assert isinstance(conn.encoder, MemoEncoder)
    assert (conn.decoder.max_header_list_size, conn.decoder.max_allowed_table_size) == (1234, 321)


# -- real servers ---------------------------------------------------------------------------


@pytest.mark.parametrize("server_fixture", ["nginx_server", "nghttpd_server"])
def test_real_servers_blocks_decode_as_hpack_and_hit_the_memo(
    server_fixture: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every response block of a real server, through the memo and through plain hpack.

    nginx empties its table (size 0) and re-adds its fields; nghttpd refers
    to entries it added before, so most of its blocks are served from the
    generation-keyed memo. Three paths, so that responses differ in a few
    fields and their blocks interleave.
    """
    server: ServerInfo = request.getfixturevalue(server_fixture)
    assert server.docroot is not None and server.ca_file is not None
    shadows: dict[int, hpack.Decoder] = {}
    memos: list[MemoDecoder] = []
    memo_decode = MemoDecoder.decode

    def decode_beside_hpack(self: MemoDecoder, data: Any, raw: bool = False) -> Any:
        if id(self) not in shadows:
            shadows[id(self)] = hpack.Decoder()
            memos.append(self)
        shadow = shadows[id(self)]
        shadow.max_header_list_size = self.max_header_list_size
        shadow.max_allowed_table_size = self.max_allowed_table_size
        expected = outcome(lambda: shadow.decode(bytes(data), raw))
        fields = memo_decode(self, data, raw)
        assert outcome(lambda: fields) == expected
        assert table_state(self) == table_state(shadow)
        return fields

    monkeypatch.setattr(MemoDecoder, "decode", decode_beside_hpack)
    paths = ["/1k.bin", "/hello.txt", "/index.html"]
    bodies = {path: Path(server.docroot, path.lstrip("/")).read_bytes() for path in paths}
    context = hyper.tls.init_context(cert_path=server.ca_file)
    with hyper.HTTP20Connection(server.host, server.port, ssl_context=context, timeout=30) as conn:
        for i in range(45):
            path = paths[i % 3]
            response = conn.getresponse(conn.request("GET", path))
            assert response.status == 200 and response.read() == bodies[path]
    assert len(memos) == 1
    memo = memos[0]
    assert memo.hits + memo.misses == 45
    # Misses: the first blocks of each path (adds, then the first block that
    # only refers), then a few for each new Date (a new second).
    assert memo.hits >= 15
    if server_fixture == "nghttpd_server":
        assert any(reads_table for reads_table, *_ in memo._memo.entries.values())

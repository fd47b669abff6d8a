"""Memoised HPACK: skip encoding or decoding a header block seen before.

Most exchanges repeat themselves: a client asks for the same few paths with
the same fields, and a server answers with much the same block each time.
hpack encodes and decodes in pure Python, which was the largest single cost
of a small request after the socket itself.

Both memos rest on the dynamic table's *generation*
(:class:`~hyper.http20.h2_internals.CountingHeaderTable`): a value that
changes on every add, eviction and resize and is never used twice. The
table's contents are a pure function of its history, so one generation is one
state of the table, and the outcome of a block depends only on that state,
the block and the coder's settings.

* Encoding: a block is remembered keyed by the fields, the Huffman choice and
  the generation, when producing it left the table as it was (all fields
  found in the table, or never indexed). A block that adds entries moves the
  table to a generation that never comes back, so it could not be used again.
* Decoding, two kinds of blocks:

  - a block that reads no dynamic entry and resizes nothing gives the same
    fields whatever the table holds, and changes it the same way each time
    (nginx, for one, sends each field as a literal "with incremental
    indexing"). It is remembered with the entries it added, stamped with
    the table's size limit (the decoder checks the limit against the
    allowed size at the end of the block); seeing it again replays those
    adds, evictions included, and returns the fields;
  - a block that reads the dynamic table or resizes it (nghttpd, h2o,
    apache2 and Go servers refer to entries they added before in every
    response) is remembered stamped with the generation it was decoded at,
    only when it left the table unchanged: a block that changed the table
    moved it to a generation that never returns, so it could never be
    served again.

The memo key holds everything else the decode depends on: the block's bytes,
``raw``, ``max_header_list_size`` and ``max_allowed_table_size``. Blocks that
fail are never remembered. So the bytes on the wire, the fields h2 sees
(``NeverIndexedHeaderTuple`` included), every error and the state of both
tables are exactly what hpack alone would produce; ``tests/test_hpack_cache.py``
compares them after every block. The memos are per connection and bounded in
entries and in bytes. The counting table and the Huffman memo of the decoder
rely on hpack internals, reached through :mod:`hyper.http20.h2_internals`;
hyper installs these coders only when its self-test found them sound.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

import hpack

from . import h2_internals as fence
from .h2_internals import CountingHeaderTable, TableChange

#: Blocks remembered per direction and connection.
MEMO_ENTRIES = 128
#: Larger blocks are not remembered (they are rare and would cost memory).
MEMO_MAX_BLOCK = 2048
#: Bytes (estimated: block, fields, added entries) one memo may hold.
MEMO_MAX_BYTES = 256 * 1024
#: A single block costing more is not remembered (a small block may decode
#: to large fields by naming large dynamic entries).
MEMO_MAX_ENTRY_BYTES = 16 * 1024
#: What a field costs besides its name and value (objects, references).
_FIELD_OVERHEAD = 32


class BoundedMemo:
    """A dict bounded in entries and in bytes; the oldest entries make room first."""

    __slots__ = ("entries", "_costs", "max_entries", "max_bytes", "max_entry_bytes", "size")

    def __init__(self, max_entries: int, max_bytes: int, max_entry_bytes: int) -> None:
        #: The remembered values by key (read it directly: the hit path is hot).
        self.entries: dict[Any, Any] = {}
        self._costs: dict[Any, int] = {}
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        #: Estimated bytes held, the sum of the entries' costs.
        self.size = 0

    def __len__(self) -> int:
        return len(self.entries)

    def put(self, key: Any, value: Any, cost: int) -> None:
        """Remember ``value`` (``cost`` bytes) under ``key``, replacing what was there."""
        if cost > self.max_entry_bytes:
            return
        old = self._costs.pop(key, None)
        if old is not None:
            # A stale entry for the same block (another generation): the new
            # one replaces it, at the young end.
            del self.entries[key]
            self.size -= old
        while self.entries and (len(self.entries) >= self.max_entries or self.size + cost > self.max_bytes):
            oldest = next(iter(self.entries))
            del self.entries[oldest]
            self.size -= self._costs.pop(oldest)
        self.entries[key] = value
        self._costs[key] = cost
        self.size += cost


class MemoEncoder(hpack.Encoder):
    """hpack's encoder, returning a remembered block when nothing it depends on changed."""

    def __init__(self) -> None:
        super().__init__()
        self.header_table = CountingHeaderTable()
        self._memo = BoundedMemo(MEMO_ENTRIES, MEMO_MAX_BYTES, MEMO_MAX_ENTRY_BYTES)
        # The last remembered block: (its fields, huffman, generation, block).
        self._last: tuple[tuple[Any, ...], bool, int, bytes] | None = None
        #: Blocks served from the memo, and blocks hpack encoded (diagnostics).
        self.hits = 0
        self.misses = 0

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        """Encode ``headers`` exactly as hpack would."""
        table: CountingHeaderTable = self.header_table  # type: ignore[assignment]
        last = self._last
        if (
            last is not None
            and type(headers) is list
            and len(headers) == len(last[0])
            and huffman == last[1]
            and table.generation == last[2]
            # The very field objects of the last remembered block, in order
            # (a loop in C; the block's own fields tuple keeps them alive, so
            # no object is a new one that merely reuses an old one's id).
            # They are immutable tuples of bytes, already found plain: the
            # same fields as then, and the table is as it was.
            and all(map(operator.is_, headers, last[0]))
            and not fence.size_update_pending(self)
        ):
            # A client sends one request's fields again and again: the
            # session hands the same field objects each time.
            self.hits += 1
            return last[3]
        key = None
        # Only plain tuples of bytes: a NeverIndexedHeaderTuple equals a plain
        # tuple but must be encoded differently, and values of other types may
        # compare equal yet encode differently (200 == 200.0). A pending table
        # size update is emitted once, so such a call is never remembered.
        if isinstance(headers, list) and not fence.size_update_pending(self) and _plain_fields(headers):
            key = (tuple(headers), huffman, table.generation)
            block = self._memo.entries.get(key)
            if block is not None:
                self.hits += 1
                self._last = (key[0], huffman, table.generation, block)
                return block  # type: ignore[no-any-return]
        self.misses += 1
        generation = table.generation
        block = super().encode(headers, huffman)
        # Remembered only when the table is as it was: the key's generation
        # still names the state the block was made against.
        if key is not None and table.generation == generation and len(block) <= MEMO_MAX_BLOCK:
            cost = len(block) + sum(len(field[0]) + len(field[1]) + _FIELD_OVERHEAD for field in headers)
            self._memo.put(key, block, cost)
            self._last = (key[0], huffman, generation, block)
        return block


class MemoDecoder(fence.HuffmanMemoDecoder):
    """hpack's decoder, replaying a remembered block whose outcome cannot have changed.

    Blocks it has not seen are decoded by hpack, with Huffman-coded strings
    going through a bounded memo of their own (hpack's module is untouched).
    """

    def __init__(self, max_header_list_size: int, max_allowed_table_size: int) -> None:
        super().__init__(max_header_list_size)
        self.max_allowed_table_size = max_allowed_table_size
        self.header_table = CountingHeaderTable()
        # key -> (reads_table, stamp, fields, changes); see decode().
        self._memo = BoundedMemo(MEMO_ENTRIES, MEMO_MAX_BYTES, MEMO_MAX_ENTRY_BYTES)
        #: Blocks served from the memo, and blocks hpack decoded (diagnostics).
        self.hits = 0
        self.misses = 0

    def decode(self, data: Any, raw: bool = False) -> Iterable[Any]:
        """Decode ``data`` exactly as hpack would (errors included)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return super().decode(data, raw)  # hpack's own errors for anything else
        table: CountingHeaderTable = self.header_table  # type: ignore[assignment]
        block = bytes(data)
        # Everything besides the table the outcome depends on.
        key = (block, raw, self.max_header_list_size, self.max_allowed_table_size)
        known = self._memo.entries.get(key)
        if known is not None:
            reads_table, stamp, fields, changes = known
            # A block that read the table needs the very state it was decoded
            # against; one that did not only needs the same size limit (the
            # end-of-block check compares it with the allowed size).
            if stamp == (table.generation if reads_table else table.size_limit):
                if changes:
                    table.replay(changes)
                self.hits += 1
                return list(fields)  # a new list: the caller may change it
        self.misses += 1
        generation, maxsize, lookups = table.generation, table.maxsize, table.dynamic_lookups
        recorded: list[TableChange] = []
        table.recorded = recorded
        try:
            decoded = super().decode(block, raw)
        finally:
            table.recorded = None
        reads_table = table.dynamic_lookups != lookups
        # A block that read the table and changed it left a generation that
        # never returns: it could not be served again, so it is not kept.
        if len(block) <= MEMO_MAX_BLOCK and not (reads_table and recorded):
            fields = tuple(decoded)
            cost = len(block) + sum(len(name) + len(value) + _FIELD_OVERHEAD for name, value in fields)
            cost += sum(_change_cost(change) for change in recorded)
            stamp = generation if reads_table else maxsize
            self._memo.put(key, (reads_table, stamp, fields, tuple(recorded)), cost)
        return decoded


def _change_cost(change: TableChange) -> int:
    return _FIELD_OVERHEAD + (len(change[0]) + len(change[1]) if type(change) is tuple else 0)


def _plain_fields(headers: list[Any]) -> bool:
    """Every field a ``(bytes, bytes)`` or ``(bytes, bytes, bool)`` tuple: equal ones encode equally.

    Runs for every request: one loop with the checks written out, not a
    call per field.
    """
    for field in headers:
        if type(field) is not tuple:
            return False  # NeverIndexedHeaderTuple included: equal to a tuple, encoded differently
        size = len(field)
        if (
            size < 2
            or size > 3
            or type(field[0]) is not bytes
            or type(field[1]) is not bytes
            or (size == 3 and type(field[2]) is not bool)
        ):
            return False
    return True


def install(conn: Any) -> None:
    """Give an h2 connection memoising HPACK coders (before any header is sent)."""
    fence.install_coders(conn, MemoEncoder(), MemoDecoder)

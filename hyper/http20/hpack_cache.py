"""Memoised HPACK: skip encoding or decoding a header block seen before.

Most exchanges repeat themselves: a client asks for the same few paths with
the same fields, and a server answers with much the same block each time.
hpack encodes and decodes in pure Python, which was the largest single cost
of a small request after the socket itself.

* Encoding is a pure function of the fields and the dynamic table, as long as
  encoding does not change the table. The encoder's table counts its changes
  (a generation); a block is remembered, keyed by the fields and the
  generation, only when producing it left the generation as it was.
* Decoding a block that refers to no entry of the dynamic table gives the
  same fields whatever the table holds, and changes the table the same way
  each time (nginx, for one, sends each field as a literal "with
  incremental indexing" that only ever adds to the table). Such a block is
  remembered with the entries it added; seeing it again replays those adds
  and returns the fields. A block that reads the dynamic table or resizes it
  is never served from the memo.

So what goes on the wire, what h2 sees, and the state of both tables are
exactly what hpack alone would produce. The memos are per connection and
bounded. The counting table and the Huffman memo of the decoder rely on
hpack internals, reached through :mod:`hyper.http20.h2_internals`; hyper
installs these coders only when its self-test found them sound.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hpack

from . import h2_internals as fence
from .h2_internals import CountingHeaderTable

#: Blocks remembered per direction and connection.
MEMO_ENTRIES = 128
#: Larger blocks are not remembered (they are rare and would cost memory).
MEMO_MAX_BLOCK = 2048


class MemoEncoder(hpack.Encoder):
    """hpack's encoder, returning a remembered block when nothing it depends on changed."""

    def __init__(self) -> None:
        super().__init__()
        self.header_table = CountingHeaderTable()
        self._memo: dict[Any, bytes] = {}

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        """Encode ``headers`` exactly as hpack would."""
        table: CountingHeaderTable = self.header_table  # type: ignore[assignment]
        key = None
        # Only plain tuples of bytes: a NeverIndexedHeaderTuple equals a plain
        # tuple but must be encoded differently, and values of other types may
        # compare equal yet encode differently (200 == 200.0). A pending table
        # size update is emitted once, so such a call is never remembered.
        if (
            isinstance(headers, list)
            and not fence.size_update_pending(self)
            and all(_plain_field(field) for field in headers)
        ):
            key = (tuple(headers), huffman, table.generation)
            block = self._memo.get(key)
            if block is not None:
                return block
        generation = table.generation
        block = super().encode(headers, huffman)
        if key is not None and table.generation == generation and len(block) <= MEMO_MAX_BLOCK:
            _remember(self._memo, key, block)
        return block


class MemoDecoder(fence.HuffmanMemoDecoder):
    """hpack's decoder, replaying a remembered block that does not read the dynamic table.

    Blocks it has not seen are decoded by hpack, with Huffman-coded strings
    going through a bounded memo of their own (hpack's module is untouched).
    """

    def __init__(self, max_header_list_size: int, max_allowed_table_size: int) -> None:
        super().__init__(max_header_list_size)
        self.max_allowed_table_size = max_allowed_table_size
        self.header_table = CountingHeaderTable()
        self._memo: dict[Any, tuple[tuple[Any, ...], tuple[tuple[bytes, bytes], ...]]] = {}

    def decode(self, data: Any, raw: bool = False) -> Iterable[Any]:
        """Decode ``data`` exactly as hpack would (errors included)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return super().decode(data, raw)  # hpack's own errors for anything else
        table: CountingHeaderTable = self.header_table  # type: ignore[assignment]
        block = bytes(data)
        key = (block, raw, table.maxsize, self.max_header_list_size, self.max_allowed_table_size)
        known = self._memo.get(key)
        if known is not None:
            fields, added = known
            for name, value in added:
                table.add(name, value)
            return list(fields)
        lookups = table.dynamic_lookups
        recorded: list[tuple[bytes, bytes]] = []
        table.recorded = recorded
        try:
            decoded = super().decode(block, raw)
        finally:
            table.recorded = None
        if table.dynamic_lookups == lookups and len(block) <= MEMO_MAX_BLOCK:
            _remember(self._memo, key, (tuple(decoded), tuple(recorded)))
        return decoded


def _plain_field(field: Any) -> bool:
    """A ``(bytes, bytes)`` or ``(bytes, bytes, bool)`` tuple: equal ones encode equally."""
    return (
        type(field) is tuple
        and 2 <= len(field) <= 3
        and type(field[0]) is bytes
        and type(field[1]) is bytes
        and (len(field) == 2 or type(field[2]) is bool)
    )


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= MEMO_ENTRIES:
        memo.clear()  # crude but bounded; a working set refills it at once
    memo[key] = value


def install(conn: Any) -> None:
    """Give an h2 connection memoising HPACK coders (before any header is sent)."""
    fence.install_coders(conn, MemoEncoder(), MemoDecoder)

"""The fence's self-test of the HPACK internals: the counting table and the Huffman memo.

Part of the fence, called by :func:`hyper.http20.h2_internals_check.self_test`:
the counting table must count every change and dynamic lookup as hpack makes
them, memoised Huffman decoding must equal hpack's, and a decoded block must
be a function of the table's generation (what the HPACK memos of
:mod:`hyper.http20.hpack_cache` rest on).
"""

from __future__ import annotations

from typing import Any

import hpack

from . import h2_internals as fence


class _Mismatch(Exception):
    """An internal behaved differently from what hyper relies on."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise _Mismatch(what)


def _check_hpack() -> None:
    """The counting table counts, and memoised Huffman decoding equals hpack's."""
    plain, counting = hpack.Encoder(), hpack.Encoder()
    table = fence.CountingHeaderTable()
    counting.header_table = table
    fields = [(b"server", b"hyper-fence-check"), (b"x-fence", b"one two three")]
    generations = {table.generation}
    first = counting.encode(fields)
    generations.add(table.generation)
    _expect(first == plain.encode(fields) and len(generations) == 2, "encoding or its count differs")
    again = counting.encode(fields)
    generations.add(table.generation)
    _expect(again == plain.encode(fields) and len(generations) == 2, "indexed encoding differs")
    _expect(not fence.size_update_pending(counting), "a size update was pending")
    counting.header_table_size = plain.header_table_size = 256
    generations.add(table.generation)
    _expect(fence.size_update_pending(counting) and table.maxsize == 256, "size update not seen")
    _expect(len(generations) == 3, "a resize kept the generation")
    _expect(fence.CountingHeaderTable().generation not in generations, "a new table reuses a generation")
    _expect(counting.encode(fields) == plain.encode(fields), "encoding after a resize differs")

    memo = fence.HuffmanMemoDecoder()
    decoder_table = fence.CountingHeaderTable()
    memo.header_table = decoder_table
    reference = hpack.Decoder()
    fence._huffman_memo.clear()
    recorded: list[fence.TableChange] = []
    decoder_table.recorded = recorded
    _expect(memo.decode(first) == reference.decode(first), "decoding differs")
    decoder_table.recorded = None
    _expect(recorded == fields and decoder_table.dynamic_lookups == 0, "added entries not recorded")
    _expect(bool(fence._huffman_memo), "Huffman literals did not go through the memo")
    _expect(memo.decode(again) == reference.decode(again), "indexed decoding differs")
    _expect(decoder_table.dynamic_lookups == 2, "dynamic lookups not counted")
    _expect(memo.decode(first) == reference.decode(first), "memoised decoding differs")


# Responses of a server that refers to its dynamic table (as nghttpd does),
# with a 256-byte table, so that adds evict.
_SERVER_FIELDS = [
    (b":status", b"200"),
    (b"server", b"nghttpd nghttp2/1.52.0"),
    (b"content-type", b"text/html"),
]
_DATE_1 = (b"date", b"Sat, 05 Dec 2026 15:00:00 GMT")
_DATE_2 = (b"date", b"Sat, 05 Dec 2026 15:00:01 GMT")
#: content-length: 615 as a literal without indexing (static name 28), as nghttpd sends it.
_NOT_INDEXED_LENGTH = bytes((0x0F, 28 - 15, 3)) + b"615"


def _counting_decoder() -> hpack.Decoder:
    decoder = fence.HuffmanMemoDecoder()
    decoder.header_table = fence.CountingHeaderTable()
    return decoder


def _typed(fields: Any) -> list[tuple[type, Any]]:
    return [(type(field), tuple(field)) for field in fields]


def _generation_blocks() -> list[bytes]:
    """Blocks as a server encoder makes them: size updates, adds, evictions, references."""
    server = hpack.Encoder()
    blocks = []
    steps: list[Any] = [
        ("size", 256),
        [*_SERVER_FIELDS, _DATE_1],  # a size update, then adds that evict
        [*_SERVER_FIELDS, _DATE_1],  # only references to the table: leaves it alone
        [*_SERVER_FIELDS, _DATE_1],
        [*_SERVER_FIELDS, _DATE_2],  # a reference and an add
        [*_SERVER_FIELDS, _DATE_2],
        [*_SERVER_FIELDS, hpack.NeverIndexedHeaderTuple(b"set-cookie", b"id=1")],
        [(b":status", b"404"), (b"x-big", b"b" * 300)],  # larger than the table: empties it
        [*_SERVER_FIELDS, _DATE_2],
        [*_SERVER_FIELDS, _DATE_2],
        ("size", 0),
        [*_SERVER_FIELDS, _DATE_1],  # with a table of 0, adds read nothing back
        [*_SERVER_FIELDS, _DATE_1],
    ]
    for step in steps:
        if isinstance(step, tuple):
            server.header_table_size = step[1]
        else:
            blocks.append(server.encode(step) + _NOT_INDEXED_LENGTH)
    return blocks


def _check_hpack_generations() -> None:
    """What the decoder memo relies on, block after block of a real encoder's output.

    hpack's decoder changes its table only through ``add`` and the size
    setter, each giving a new generation, in an order a replay reproduces;
    it reads dynamic entries only through ``get_by_index``; and the outcome
    of a block depends on nothing but the table's state, the block and the
    decoder's limits: a table brought to the same state by replaying gives
    the same fields, and a block that read no dynamic entry gives the same
    fields with any contents of the table.
    """
    decoder, plain = _counting_decoder(), hpack.Decoder()
    table: fence.CountingHeaderTable = decoder.header_table  # type: ignore[assignment]
    # Follows the decoder's table by replaying what it recorded, never decoding
    # a block that changes it.
    twin = _counting_decoder()
    twin_table: fence.CountingHeaderTable = twin.header_table  # type: ignore[assignment]
    neutral_references = static_blocks = 0
    for block in _generation_blocks():
        before, generation, lookups = table.snapshot(), table.generation, table.dynamic_lookups
        recorded: list[Any] = []
        table.recorded = recorded
        try:
            fields = decoder.decode(block, raw=True)
        finally:
            table.recorded = None
        _expect(_typed(fields) == _typed(plain.decode(block, raw=True)), "decoded fields differ")
        after = table.snapshot()
        _expect(after[:3] == (tuple(plain.header_table.dynamic_entries), *after[1:3]), "table differs")
        _expect(after == before or table.generation != generation, "a table change kept its generation")
        reads_table = table.dynamic_lookups != lookups
        if recorded:
            twin_table.replay(recorded)
        else:
            _expect(
                _typed(twin.decode(block, raw=True)) == _typed(fields),
                "a table reached by replay decodes differently",
            )
            neutral_references += reads_table
        _expect(twin_table.snapshot() == after, "replaying the recorded changes gives another table")
        if not reads_table:
            # Any contents, the same size limit: the same fields.
            other = _counting_decoder()
            other.header_table.add(b"x-other", b"entry")
            other.header_table_size = table.maxsize
            same = _typed(other.decode(block, raw=True)) == _typed(fields)
            _expect(same, "a block read the table uncounted")
            static_blocks += 1
    _expect(neutral_references >= 4 and static_blocks >= 2, "the blocks did not cover both kinds")

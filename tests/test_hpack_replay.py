"""The decoder memo's replay of a remembered block's table changes, written out (issue 14, mux).

A server that indexes its fields afresh in every response (nginx adds five
entries per response) has every block served from the memo replayed
against the table. :meth:`CountingHeaderTable.replay` writes hpack's
``add`` and eviction steps out in one loop; these tests hold it to hpack's
own steps (differential, with generated changes), check that the fallback
(hpack's ``add``) runs when the self-check fails, when hpack's table logger
wants DEBUG records or while a decoder records, and that whole decoders
give hpack's fields and tables either way.
"""

from __future__ import annotations

import logging
from typing import Any

import hpack
import hpack.table
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper.http20 import h2_internals_hpack
from hyper.http20.h2_internals_hpack import CountingHeaderTable, TableChange, replay_written_out
from hyper.http20.hpack_cache import MemoDecoder

# Entries of every size class against small tables: adds that fit, adds that
# evict one or many, adds larger than the table; size updates between them.
_ENTRY = st.tuples(st.binary(min_size=1, max_size=12), st.binary(max_size=120))
_CHANGE = st.one_of(_ENTRY, _ENTRY, _ENTRY, st.integers(min_value=0, max_value=300))


def _hpack_table(
    limit: int, before: list[tuple[bytes, bytes]], changes: list[Any]
) -> hpack.table.HeaderTable:
    """hpack's own table after ``before`` then ``changes``, through its own methods."""
    table = hpack.table.HeaderTable()
    table.maxsize = limit
    for name, value in before:
        table.add(name, value)
    for change in changes:
        if type(change) is tuple:
            table.add(*change)
        else:
            table.maxsize = change
    return table


def _snapshot(table: Any) -> tuple[Any, ...]:
    return (tuple(table.dynamic_entries), table._current_size, table._maxsize, table.resized)


def test_the_self_check_finds_hpack_as_written_out() -> None:
    assert replay_written_out()
    assert h2_internals_hpack._REPLAY_WRITTEN_OUT


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(min_value=0, max_value=400),
    before=st.lists(_ENTRY, max_size=6),
    changes=st.lists(_CHANGE, min_size=1, max_size=12),
)
def test_written_out_replay_equals_hpacks_steps(
    limit: int, before: list[tuple[bytes, bytes]], changes: list[TableChange]
) -> None:
    table = CountingHeaderTable()
    table.maxsize = limit  # type: ignore[assignment]
    for name, value in before:
        table.add(name, value)
    generation = table.generation
    table._replay_written_out(changes)
    assert _snapshot(table) == _snapshot(_hpack_table(limit, before, changes))
    assert table.size_limit == table._maxsize
    assert table.generation != generation  # a state no generation named before


NGINX_FIELDS = [
    (b":status", b"200"),
    (b"server", b"nginx/1.22.1"),
    (b"date", b"Sat, 05 Dec 2026 17:00:00 GMT"),
    (b"content-type", b"application/octet-stream"),
    (b"content-length", b"1024"),
    (b"last-modified", b"Sat, 05 Dec 2026 16:00:00 GMT"),
    (b"etag", b'"6750c000-400"'),
    (b"accept-ranges", b"bytes"),
]


def _nginx_block() -> bytes:
    """A response block that adds its fields to the table (as nginx sends every response)."""
    block = b"\x88"  # :status 200, indexed
    for name, value in NGINX_FIELDS[1:]:
        # Literal with incremental indexing, new name (RFC 7541 section 6.2.1).
        # Lengths below 127 fit the 7-bit prefix (no Huffman coding).
        block += b"\x40" + bytes((len(name),)) + name + bytes((len(value),)) + value
    return block


def _decode_many(memo: MemoDecoder, plain: hpack.Decoder, blocks: list[bytes]) -> None:
    for block in blocks:
        assert memo.decode(block, raw=True) == plain.decode(block, raw=True)
        assert _snapshot(memo.header_table) == _snapshot(plain.header_table)


@pytest.mark.parametrize("written_out", [True, False])
def test_repeated_indexing_blocks_decode_as_hpack_either_way(
    monkeypatch: pytest.MonkeyPatch, written_out: bool
) -> None:
    monkeypatch.setattr(h2_internals_hpack, "_REPLAY_WRITTEN_OUT", written_out)
    adds = []
    original_add = CountingHeaderTable.add

    def counting_add(self: CountingHeaderTable, name: bytes, value: bytes) -> None:
        adds.append(name)
        original_add(self, name, value)

    monkeypatch.setattr(CountingHeaderTable, "add", counting_add)
    memo, plain = MemoDecoder(65536, 4096), hpack.Decoder(65536)
    other = b"\x40\x07x-other" + b"\x05" + b"value"  # shifts the table between the nginx blocks
    _decode_many(memo, plain, [_nginx_block(), other] * 40 + [_nginx_block()] * 40)
    assert memo.hits >= 75  # the nginx block from the memo every time but the first
    decoded_adds = 7 + 1  # the first decode of each block went through hpack (and add)
    if written_out:
        assert len(adds) == decoded_adds  # the replays did not call add
    else:
        assert len(adds) == 80 * 7 + 40 * 1  # every entry of every block through add (the fallback)


def test_hpack_debug_records_take_hpacks_steps(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With hpack's table logger at DEBUG the replay goes through ``add``: its eviction records appear."""
    memo, plain = MemoDecoder(65536, 4096), hpack.Decoder(65536)
    _decode_many(memo, plain, [_nginx_block()] * 30)  # the table is full: every replay evicts
    with caplog.at_level(logging.DEBUG, logger="hpack.table"):
        _decode_many(memo, plain, [_nginx_block()] * 2)
    evictions = [record for record in caplog.records if record.getMessage().startswith("Evicting")]
    # hpack's own records of both decoders: the plain decoder's and the replay's.
    assert len(evictions) >= 2 * 2 * 7 - 2
    assert memo.hits == 31


def test_a_recording_table_takes_hpacks_steps() -> None:
    """While a decoder records a table's changes, a replay records them as hpack's ``add`` would."""
    table = CountingHeaderTable()
    recorded: list[TableChange] = []
    table.recorded = recorded
    changes: list[TableChange] = [(b"x-a", b"1"), 100, (b"x-b", b"2")]
    table.replay(changes)
    table.recorded = None
    assert recorded == changes
    assert _snapshot(table) == _snapshot(_hpack_table(4096, [], changes))

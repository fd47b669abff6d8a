"""The encoder's shortcut for the same field objects sent again gives hpack's bytes and table.

:class:`~hyper.http20.hpack_cache.MemoEncoder` returns its last remembered
block at once when it is handed the very field objects of that block again
(the session reuses one request's fields), the table unchanged and no size
update pending. Here a plain ``hpack.Encoder`` and a ``MemoEncoder`` take
the same random steps: the same list again, a fresh list of the same
objects, a list changed in place (a field swapped for an equal
``NeverIndexedHeaderTuple`` or an equal fresh tuple, one field more or
less), other requests that add entries to the table, Huffman on and off,
and table size changes from the peer's SETTINGS. After every step both
give the same bytes and hold the same table.
"""

from __future__ import annotations

import random
from typing import Any

import hpack
import pytest

from hyper.http20.hpack_cache import MemoEncoder

BASE = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"example.test"),
    (b":path", b"/1k.bin"),
]


def _table(encoder: hpack.Encoder) -> Any:
    table = encoder.header_table
    return (tuple(table.dynamic_entries), table._current_size, table._maxsize, table.resized)


@pytest.mark.parametrize("seed", range(30))
def test_reused_field_objects_encode_as_hpack_does(seed: int) -> None:
    rng = random.Random(seed)
    plain, memo = hpack.Encoder(), MemoEncoder()
    fields = list(BASE)  # the session's objects, handed again and again
    for step in range(300):
        action = rng.randrange(10)
        huffman = rng.random() < 0.8
        if action == 0 and len(fields) > 1:
            fields.pop()  # one field less, in place
        elif action == 1:
            index = rng.randrange(len(fields))
            fields[index] = hpack.NeverIndexedHeaderTuple(*fields[index][:2])  # equal, encoded otherwise
        elif action == 2:
            index = rng.randrange(len(fields))
            fields[index] = (bytes(fields[index][0]), bytes(fields[index][1]))  # an equal fresh tuple
        elif action == 3:
            fields.append((b"x-step", str(step).encode()))  # a new entry for the table
        elif action == 4:
            fields[:] = list(BASE)
        elif action == 5:
            size = rng.choice([0, 64, 256, 4096])
            plain.header_table_size = size
            memo.header_table_size = size
            continue
        elif action == 6:
            other = [*BASE[:3], (b":path", f"/other/{rng.randrange(20)}".encode())]
            assert memo.encode(other, huffman) == plain.encode(other, huffman)
        # The same list object, or a fresh list of the same objects (as the session makes).
        sent = fields if rng.random() < 0.5 else list(fields)
        assert memo.encode(sent, huffman) == plain.encode(sent, huffman), step
        assert _table(memo) == _table(plain)
    assert memo.hits > 0  # the shortcut (or the memo) served blocks


def test_the_shortcut_serves_the_same_objects_and_only_them() -> None:
    memo, plain = MemoEncoder(), hpack.Encoder()
    fields = list(BASE)
    # The first block indexes the fields (the table changes): nothing kept.
    # The second finds them all in the table: kept as the last block.
    for _ in range(2):
        block = memo.encode(fields)
        assert block == plain.encode(fields)
    assert memo._last is not None and all(a is b for a, b in zip(memo._last[0], fields, strict=True))
    hits = memo.hits
    assert memo.encode(list(fields)) == block == plain.encode(fields)
    assert memo.hits == hits + 1
    # An equal field that is never to be indexed is not the same object: hpack's own encode.
    never = [*fields[:3], hpack.NeverIndexedHeaderTuple(*fields[3])]
    assert memo.encode(never) == plain.encode(never)

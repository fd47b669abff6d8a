"""The fence's HPACK internals: a counting dynamic table and a decoder with a Huffman memo.

Part of the fence (:mod:`hyper.http20.h2_internals`, which re-exports every
name below): only the fence modules name hpack's private internals. The
HPACK memos of :mod:`hyper.http20.hpack_cache` rest on what is here; the
fence's self-test checks that these still count and decode as hpack does.
"""

from __future__ import annotations

import itertools
import logging
import types
from collections.abc import Callable, Iterable
from typing import Any

import hpack

try:
    from hpack.table import HeaderTable as _HeaderTableBase  # not part of hpack's documented API
except ImportError:  # pragma: no cover - only with an incompatible hpack (the fence reports it)
    _HeaderTableBase = object  # type: ignore[assignment,misc]


#: One change of a dynamic table, as hpack's decoder made it: an added entry
#: ``(name, value)``, or a new size limit (an ``int``, from a table size update).
TableChange = tuple[bytes, bytes] | int

# Generations come from one counter for the whole process, so a generation
# names one state of one table: no two tables (and no table replaced by a
# fresh one) ever share a value, and a memo keyed on it cannot confuse them.
_GENERATIONS = itertools.count(1)


class CountingHeaderTable(_HeaderTableBase):
    """hpack's dynamic table, keeping count of what happens to it (for the HPACK memos).

    hpack changes a table only through :meth:`add` (which also evicts) and the
    :attr:`maxsize` setter (which evicts or empties); the self-test checks
    that. Each of them gives the table a new :attr:`generation`, so the
    table's contents and size are the same whenever its generation is.
    """

    def __init__(self) -> None:
        super().__init__()
        #: Replaced by a new, never used value on every change of the table's
        #: contents or size limit.
        self.generation = next(_GENERATIONS)
        #: Bumped on every lookup of a dynamic (not static) entry, and on every
        #: resize: the block being decoded then depends on the table.
        self.dynamic_lookups = 0
        #: Changes made while a decoder records them, else ``None``.
        self.recorded: list[TableChange] | None = None
        #: :attr:`maxsize` as a plain field (the memos ask once per block):
        #: hpack sets the limit only in its ``__init__`` (above) and through
        #: the setter, which keeps this in step.
        self.size_limit: int = self._maxsize

    def add(self, name: bytes, value: bytes) -> None:
        """Add an entry (hpack's behaviour, evictions included), and count the change."""
        self.generation = next(_GENERATIONS)
        if self.recorded is not None:
            self.recorded.append((name, value))
        super().add(name, value)

    def get_by_index(self, index: int) -> tuple[bytes, bytes]:
        """Look an entry up (hpack's behaviour), counting dynamic lookups."""
        if index > self.STATIC_TABLE_LENGTH:
            self.dynamic_lookups += 1
        return super().get_by_index(index)

    @property
    def maxsize(self) -> int:
        """The table's size limit (hpack's property), counting changes."""
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.generation = next(_GENERATIONS)
        self.dynamic_lookups += 1  # a resize makes the block depend on the table
        if self.recorded is not None:
            self.recorded.append(newmax)
        _HeaderTableBase.maxsize.fset(self, newmax)  # type: ignore[attr-defined]
        self.size_limit = self._maxsize

    def replay(self, changes: Iterable[TableChange]) -> None:
        """Make ``changes`` (recorded while decoding a block) again, in their order.

        Going through :meth:`add` and the size setter, as hpack's decoder
        did, gives the same evictions and the same final state whenever the
        table starts from the same state. A server that indexes its fields
        afresh in every response (nginx: five adds each) has every
        response's block replayed: then hpack's ``add`` and eviction steps
        are written out below (one loop, no calls per entry), where
        :func:`replay_written_out` found them to change only what they
        change here.
        """
        if not _REPLAY_WRITTEN_OUT or self.recorded is not None or _TABLE_LOG.isEnabledFor(logging.DEBUG):
            # h2's own steps: a changed hpack, a recording decoder, or
            # hpack's eviction debug records wanted (the loop below logs none).
            for change in changes:
                if type(change) is tuple:
                    self.add(*change)
                else:
                    self.maxsize = change  # type: ignore[assignment]
            return
        self._replay_written_out(changes)

    def _replay_written_out(self, changes: Iterable[TableChange]) -> None:
        """:meth:`replay` with hpack's ``add`` and evictions written out (see :func:`replay_written_out`)."""
        entries = self.dynamic_entries
        size = self._current_size
        limit = self._maxsize
        for change in changes:
            if type(change) is not tuple:
                # A table size update (RFC 7541 section 6.3): the setter's
                # own evictions, on the size counted so far.
                self._current_size = size
                self.maxsize = change  # type: ignore[assignment]
                size, limit = self._current_size, self._maxsize
                continue
            name, value = change
            # RFC 7541 section 4.1: an entry's size is 32 plus its octets.
            cost = 32 + len(name) + len(value)
            if cost > limit:
                # Section 4.4: an entry larger than the table empties it.
                entries.clear()
                size = 0
            else:
                entries.appendleft(change)
                size += cost
                # Section 4.4: the oldest entries go until the new one fits.
                while size > limit:
                    old_name, old_value = entries.pop()
                    size -= 32 + len(old_name) + len(old_value)
        self._current_size = size
        # A state no generation named before (the per-add generations are
        # never seen: nothing reads the table in the middle of a replay).
        self.generation = next(_GENERATIONS)

    def snapshot(self) -> tuple[tuple[tuple[bytes, bytes], ...], int, int, bool]:
        """All hpack keeps in the table: entries (newest first), their size, the limit, the resize flag."""
        return (tuple(self.dynamic_entries), self._current_size, self._maxsize, self.resized)


def replay_written_out() -> bool:
    """True when hpack's ``add`` changes only what :meth:`CountingHeaderTable.replay` writes out.

    Checked on hpack's own table: the same entries (adds that evict, one
    larger than the table, a resize between them) through hpack's ``add``
    and through the written-out replay must leave equal snapshots, and
    ``add`` must change no attribute but the entries and their size.
    """
    try:
        import hpack.table

        changes: list[TableChange] = [(b"x-a", b"a" * 40), (b"server", b"s" * 30), (b"x-b", b"b")]
        changes += [(b"x-c", b"c" * 90), 150, (b"x-d", b"d" * 200), (b"x-e", b"e"), (b"x-f", b"f" * 70)]
        reference = hpack.table.HeaderTable()
        reference.maxsize = 200
        for change in changes:
            if isinstance(change, tuple):
                others = {key: value for key, value in vars(reference).items() if key != "_current_size"}
                reference.add(*change)
                if {key: value for key, value in vars(reference).items() if key != "_current_size"} != others:
                    return False  # add changed something besides the entries (a deque, changed in place)
            else:
                reference.maxsize = change
        twin = CountingHeaderTable()
        twin.maxsize = 200
        generation = twin.generation
        twin._replay_written_out(changes)
        entries = tuple(reference.dynamic_entries)
        expected = (entries, reference._current_size, reference._maxsize, reference.resized)
        return twin.snapshot() == expected and twin.generation != generation
    except (AttributeError, ImportError, TypeError, ValueError):  # pragma: no cover - a changed hpack
        return False


def size_update_pending(encoder: hpack.Encoder) -> bool:
    """The encoder will emit a table size update with its next block."""
    return bool(encoder.table_size_changes)


# Servers send the same header values over and over (server, content-type,
# cache-control...) as Huffman-coded literals; hpack decodes each in pure
# Python, the largest single cost of a small response. Decoding is a pure
# function, so a bounded memo of short strings gives identical results. The
# memo is used only by hyper's decoders: hpack's module is left untouched.
_HUFFMAN_MEMO_ENTRIES = 1024
_HUFFMAN_MEMO_MAX_LEN = 256
_huffman_memo: dict[bytes, bytes] = {}


def _memo_decode_huffman(original: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    def decode_huffman(data: Any) -> bytes:
        if data is None or len(data) > _HUFFMAN_MEMO_MAX_LEN:
            return original(data)
        key = bytes(data)
        try:
            return _huffman_memo[key]
        except KeyError:
            pass
        value = original(key)
        if len(_huffman_memo) >= _HUFFMAN_MEMO_ENTRIES:
            _huffman_memo.clear()
        _huffman_memo[key] = value
        return value

    return decode_huffman


def _huffman_memo_literal_decoder() -> Callable[..., Any] | None:
    """hpack's ``Decoder._decode_literal`` seeing a memoised ``decode_huffman``; ``None`` if impossible.

    The function is hpack's own code with a private copy of its globals, so
    only decoders that use it (hyper's) see the memo.
    """
    function = getattr(hpack.Decoder, "_decode_literal", None)
    if not isinstance(function, types.FunctionType) or "decode_huffman" not in function.__code__.co_names:
        return None
    namespace = dict(function.__globals__)
    original = namespace.get("decode_huffman")
    if not callable(original):
        return None
    namespace["decode_huffman"] = _memo_decode_huffman(original)
    rebound = types.FunctionType(
        function.__code__, namespace, function.__name__, function.__defaults__, function.__closure__
    )
    rebound.__kwdefaults__ = function.__kwdefaults__
    rebound.__doc__ = function.__doc__
    return rebound


_LITERAL_DECODER = _huffman_memo_literal_decoder()


#: hpack's table logger: its eviction records are wanted only at DEBUG (replay then takes hpack's steps).
_TABLE_LOG = logging.getLogger("hpack.table")
#: replay writes out hpack's add and evictions (see replay_written_out).
_REPLAY_WRITTEN_OUT = replay_written_out()


class HuffmanMemoDecoder(hpack.Decoder):
    """hpack's decoder whose Huffman-coded literals go through a bounded memo."""

    if _LITERAL_DECODER is not None:
        _decode_literal = _LITERAL_DECODER

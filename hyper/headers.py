"""HTTPHeaderMap: an ordered, case-insensitive multi-map of header fields.

Names and values are kept as ``bytes`` exactly as they came off the wire (names
are lower case in HTTP/2 anyway). Lookups accept ``str`` or ``bytes`` keys in
any case. Values are never split on commas: ``set-cookie`` values and dates
contain commas, so each field line stays one value.

For code that would rather not handle bytes, a ``str`` view sits beside the
bytes API (which hyper 0.7 code relies on and which is unchanged):
:meth:`HTTPHeaderMap.get_str`, :meth:`HTTPHeaderMap.get_all_str` and
:meth:`HTTPHeaderMap.items_str`. They decode with :func:`decode_value`: UTF-8,
falling back to latin-1 for a value that is not valid UTF-8. ASCII (almost
every header) reads the same either way; UTF-8 is what ``str`` values put
into a map are encoded as (:func:`to_bytes`), so ``str`` in gives the same
``str`` out, and what modern servers send for non-ASCII text (e.g. a
``content-disposition`` file name); latin-1, the fallback, is what
:mod:`http.client` uses for everything, and it never fails: every byte maps
to one character, so a value that is not UTF-8 still comes out whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import TypeVar, Union, overload

HeaderKey = Union[str, bytes]
HeaderValue = Union[str, bytes, int]
_Default = TypeVar("_Default")
#: What the constructor and :meth:`HTTPHeaderMap.merge` take.
HeaderSource = Union[
    "HTTPHeaderMap",
    Mapping[HeaderKey, Union[HeaderValue, list[HeaderValue]]],
    Iterable[tuple[HeaderKey, HeaderValue]],
]


def to_bytes(value: HeaderValue) -> bytes:
    """Encode a header name or value: ``str`` as UTF-8, ``int`` as decimal."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode("ascii")
    raise TypeError(f"header names and values must be str, bytes or int, not {type(value).__name__}")


def decode_value(value: bytes) -> str:
    """A header name or value as ``str``: UTF-8, or latin-1 where it is not valid UTF-8.

    Never raises, and never loses a byte: latin-1 maps each byte to one
    character, so ``value.decode('latin-1').encode('latin-1') == value``
    holds for the fallback.
    """
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _key(name: HeaderKey) -> bytes:
    # bytes is what hyper itself and most callers look up with: skip to_bytes
    # (the hottest lookups inline this test and skip the call too).
    if type(name) is bytes:
        return name.lower()
    return to_bytes(name).lower()


class HTTPHeaderMap(MutableMapping[HeaderKey, list[bytes]]):
    """Ordered, case-insensitive header map with several values per name.

    ``headers[b'set-cookie']`` returns every value of that name as a list of
    ``bytes`` (a ``KeyError`` if there is none, as for any mapping); iterating
    gives each distinct name once, in first-seen order. :meth:`items` gives
    every ``(name, value)`` field in order, repeats included.
    """

    # True only while every name in _fields is known to equal its own
    # .lower() (a map from_wire() was told so, not changed since): lookups
    # then compare names as they are, without a .lower() per field. Every
    # method that adds a name sets it back to False (an instance attribute,
    # stored only when it was True: the class default covers every other map).
    _names_lower = False

    def __init__(self, *sources: HeaderSource | None, **fields: HeaderValue) -> None:
        """Fields from each source in turn (see :meth:`merge`), then ``fields`` as name=value."""
        self._fields: list[tuple[bytes, bytes]] = []
        for source in sources:
            if source is not None:
                self.merge(source)
        for name, value in fields.items():
            self.add(name, value)

    def merge(self, other: HeaderSource) -> None:
        """Append every field of ``other``, keeping the ones already here.

        ``other`` is a header map, a mapping (a ``list`` value gives one field
        per item) or an iterable of ``(name, value)`` pairs. Anything else,
        such as a string or a pair that is not a pair, raises
        :class:`TypeError` and adds nothing.
        """
        pairs: Iterable[object]
        if isinstance(other, HTTPHeaderMap):
            pairs = other.items()
        elif isinstance(other, Mapping):
            pairs = [
                (name, item)
                for name, value in other.items()
                for item in (value if isinstance(value, list) else [value])
            ]
        elif isinstance(other, (str, bytes, bytearray)):
            raise TypeError(f"header fields must be (name, value) pairs or a mapping, not {other!r}")
        else:
            pairs = other
        added: list[tuple[bytes, bytes]] = []
        for pair in pairs:
            # A bare 2-character string would unpack into a "pair" of its
            # characters: {'ab': 'x'} iterated as names gave (b'a', b'b').
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"a header field must be a (name, value) pair, not {pair!r}")
            added.append((to_bytes(pair[0]), to_bytes(pair[1])))
        if self._names_lower:
            self._names_lower = False  # the names added may be in any case
        self._fields.extend(added)

    def replace(self, name: HeaderKey, value: HeaderValue) -> None:
        """Make ``value`` the only value of ``name``, where its first field was (appended if absent)."""
        field = (to_bytes(name), to_bytes(value))
        wanted = field[0].lower()
        kept: list[tuple[bytes, bytes]] = []
        placed = False
        for existing in self._fields:
            if existing[0].lower() != wanted:
                kept.append(existing)
            elif not placed:
                kept.append(field)
                placed = True
        if not placed:
            kept.append(field)
        if self._names_lower:
            self._names_lower = False  # field[0] is in the caller's case
        self._fields = kept

    @classmethod
    def from_wire(cls, fields: list[tuple[bytes, bytes]], *, lower_case: bool = False) -> HTTPHeaderMap:
        """A map of fields that are already ``bytes`` (as h2 hands them over).

        The map takes ``fields`` over as it is (no copy): one per response.
        ``lower_case=True`` vouches that every name is already lower case
        (``name == name.lower()``), as HTTP/2 requires of a received block
        (RFC 9113 section 8.2.1) and hyper's core checks: lookups then skip
        lower-casing each name, until a field is added. A name that is not
        lower case would then never be found: pass it only for checked names.
        """
        # __new__ alone: __init__ would only set an empty list to replace (a
        # subclass gets its own __init__ run, whatever it sets up).
        header_map = cls.__new__(cls) if cls is HTTPHeaderMap else cls()
        header_map._fields = fields
        if lower_case:
            header_map._names_lower = True
        return header_map

    def add(self, name: HeaderKey, value: HeaderValue) -> None:
        """Append one field, keeping any earlier values of the same name."""
        field = (to_bytes(name), to_bytes(value))
        if self._names_lower:
            self._names_lower = False  # the name keeps the caller's case
        self._fields.append(field)

    def __getitem__(self, name: HeaderKey) -> list[bytes]:
        wanted = name.lower() if type(name) is bytes else _key(name)
        if self._names_lower:
            values = [v for n, v in self._fields if n == wanted]
        else:
            values = [v for n, v in self._fields if n.lower() == wanted]
        if not values:
            raise KeyError(name)
        return values

    def __setitem__(self, name: HeaderKey, value: HeaderValue | list[bytes]) -> None:
        """Replace every value of ``name`` with ``value`` (or each item of a list)."""
        del_key = name.lower() if type(name) is bytes else _key(name)
        fields = self._fields
        for existing, _ in fields:
            if existing.lower() == del_key:
                # Only when there is something to remove: a new name (the
                # usual case, e.g. request() adding accept-encoding) keeps the list.
                self._fields = fields = [(n, v) for n, v in fields if n.lower() != del_key]
                break
        raw_name = to_bytes(name)
        if self._names_lower:
            self._names_lower = False  # raw_name keeps the caller's case
        if isinstance(value, list):
            for item in value:  # one by one, as add() would: a bad item stops there
                fields.append((raw_name, to_bytes(item)))
        else:
            fields.append((raw_name, to_bytes(value)))

    def __delitem__(self, name: HeaderKey) -> None:
        wanted = _key(name)
        kept = [(n, v) for n, v in self._fields if n.lower() != wanted]
        if len(kept) == len(self._fields):
            raise KeyError(name)
        self._fields = kept

    def __iter__(self) -> Iterator[bytes]:
        seen: set[bytes] = set()
        # The fields present when iteration started: __setitem__ appends a
        # new name to the live list, and a loop that sets new names (say,
        # a prefixed copy of each) would otherwise meet them and never end.
        fields = self._fields
        for index in range(len(fields)):
            name = fields[index][0]
            key = name.lower()
            if key not in seen:
                seen.add(key)
                yield name

    def __len__(self) -> int:
        return len({n.lower() for n, _ in self._fields})

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, (str, bytes)):
            return False
        wanted = name.lower() if type(name) is bytes else _key(name)
        if self._names_lower:
            for existing, _ in self._fields:
                if existing == wanted:
                    return True
            return False
        # A plain loop: no generator per lookup (request() asks twice per request).
        for existing, _ in self._fields:
            if existing.lower() == wanted:
                return True
        return False

    @overload
    def get(self, name: HeaderKey) -> list[bytes] | None: ...
    @overload
    def get(self, name: HeaderKey, default: _Default) -> list[bytes] | _Default: ...

    def get(self, name: HeaderKey, default: object = None) -> object:
        """All values of ``name`` as a list, or ``default`` when absent."""
        # What self[name] does, without raising and catching a KeyError for
        # an absent name (the usual answer for content-length and
        # content-encoding, asked on every request and response).
        wanted = name.lower() if type(name) is bytes else _key(name)
        if self._names_lower:
            values = [v for n, v in self._fields if n == wanted]
        else:
            values = [v for n, v in self._fields if n.lower() == wanted]
        return values if values else default

    def get_first(self, name: HeaderKey, default: bytes | None = None) -> bytes | None:
        """The first value of ``name``, or ``default``."""
        wanted = _key(name)
        lower = self._names_lower
        for n, v in self._fields:
            if (n if lower else n.lower()) == wanted:
                return v
        return default

    # -- the str view -----------------------------------------------------------

    @overload
    def get_str(self, name: HeaderKey) -> str | None: ...
    @overload
    def get_str(self, name: HeaderKey, default: _Default) -> str | _Default: ...

    def get_str(self, name: HeaderKey, default: object = None) -> object:
        """Every value of ``name`` as one ``str`` joined with ``', '``, or ``default`` when absent.

        The values are decoded with :func:`decode_value` (UTF-8, else
        latin-1). Joining repeated fields with ``', '`` is what
        :mod:`http.client` does and is right for list-valued fields
        (``accept``, ``cache-control``, ``vary``...). It is not for
        ``set-cookie``, whose values contain commas themselves (in
        ``Expires`` dates): take those one by one with :meth:`get_all_str`.
        """
        values = self.get_all_str(name)
        return ", ".join(values) if values else default

    def get_all_str(self, name: HeaderKey) -> list[str]:
        """Each value of ``name`` as a ``str``, in order (an empty list when absent).

        The one to use for ``set-cookie``: one item per cookie.
        """
        wanted = _key(name)
        if self._names_lower:
            return [decode_value(v) for n, v in self._fields if n == wanted]
        return [decode_value(v) for n, v in self._fields if n.lower() == wanted]

    def items_str(self) -> list[tuple[str, str]]:
        """Every field as ``(name, value)`` ``str`` pairs, in order, repeats included.

        Names keep the case they came with (lower case in HTTP/2).
        """
        return [(decode_value(n), decode_value(v)) for n, v in self._fields]

    # -- whole fields ------------------------------------------------------------

    def items(self) -> list[tuple[bytes, bytes]]:  # type: ignore[override]
        """Every field as ``(name, value)``, in order, repeated names included."""
        return list(self._fields)

    def _field_list(self) -> list[tuple[bytes, bytes]]:
        """The map's own list of fields, not a copy: for hyper's readers that neither keep nor change it.

        :meth:`items` copies, so that a caller may change the map while
        going through the fields; sending a request only reads them, once,
        and the copy would be one more list per request.
        """
        return self._fields

    def iter_raw(self) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over every ``(name, value)`` field, in order."""
        return iter(list(self._fields))

    def copy(self) -> HTTPHeaderMap:
        """A shallow copy."""
        return HTTPHeaderMap(self._fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HTTPHeaderMap):
            return [(n.lower(), v) for n, v in self._fields] == [(n.lower(), v) for n, v in other._fields]
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"HTTPHeaderMap({self._fields!r})"

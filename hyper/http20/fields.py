"""Header fields: building a request's, checking a response's.

Both replace h2's own validation (switched off in
:mod:`hyper.http20.h2_adapters`): ours refuses CR, LF and NUL that h2 would
send, and turns a malformed response into an error of that stream only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import hpack

from ..common.request import request_method
from ..exceptions import InvalidHeader

# Header fields that only mean something for one HTTP/1.1 hop; HTTP/2 forbids
# them (RFC 9113 section 8.2.2). Callers used to HTTP/1.1 send them, so they
# are dropped rather than refused.
_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
_FORBIDDEN_IN_FIELDS = (b"\r", b"\n", b"\x00")
# Credentials never enter the HPACK dynamic table (RFC 7541 section 7.1.3):
# an indexed secret can be guessed by an attacker who adds fields to the
# same connection and watches the compressed size (RFC 7541 section 7.1).
# h2 marks these itself, but its outbound normalisation is switched off.
_NEVER_INDEXED = frozenset({b"authorization", b"proxy-authorization"})
# Short cookies are as guessable; long ones keep their compression (h2's rule).
_SHORT_COOKIE = 20


def build_request_headers(
    method: str | bytes,
    path: str,
    authority: str,
    scheme: str,
    headers: Iterable[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """Pseudo-headers first, then the caller's fields, checked and lower-cased.

    CR, LF and NUL in a name or value are refused (``InvalidHeader``) before
    anything is sent: ``h2`` would let them through to the wire. Fields that
    only make sense for one HTTP/1.1 hop are dropped; ``host`` becomes
    ``:authority``. The method must be a token (``str`` or ``bytes``).
    """
    method = request_method(method)
    if not path or _BAD_IN_PSEUDO.search(path) is not None:
        raise InvalidHeader(f"invalid path {path!r}")
    if not authority or _BAD_IN_PSEUDO.search(authority) is not None:
        raise InvalidHeader(f"invalid authority {authority!r}")
    fields: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        lower = name.lower()
        # One search per name and per value finds anything unusual; the
        # field-by-field checks then say which rule it breaks.
        if not lower or _SUSPECT_IN_NAME.search(lower) is not None or _CR_LF_NUL.search(value) is not None:
            _refuse_field(name, value, lower)
        if lower in _CONNECTION_SPECIFIC:
            continue
        if lower == b"te" and value.strip().lower() != b"trailers":
            continue
        if lower == b"host":
            authority = value.decode("latin-1")
            continue
        if lower in _NEVER_INDEXED or (lower == b"cookie" and len(value) < _SHORT_COOKIE):
            fields.append(hpack.NeverIndexedHeaderTuple(lower, value))
            continue
        fields.append((lower, value))
    # request_target() percent-encoded the path, so it is ASCII.
    return [*_leading_fields(method, scheme, authority), (b":path", path.encode("utf-8")), *fields]


# Anything that may make a field unsendable: any hit is looked at in detail
# by _refuse_field (a space or colon in a name, CR, LF or NUL anywhere).
_SUSPECT_IN_NAME = re.compile(rb"[\r\n\x00 :]")
_CR_LF_NUL = re.compile(rb"[\r\n\x00]")
# What a pseudo-header's text (path, authority) cannot hold.
_BAD_IN_PSEUDO = re.compile(r"[\r\n\x00 ]")


def _refuse_field(name: bytes, value: bytes, lower: bytes) -> None:
    """Raise ``InvalidHeader`` for a field that cannot be sent (the first rule it breaks)."""
    if not lower or lower.startswith(b":") or b" " in lower or b":" in lower:
        raise InvalidHeader(f"invalid header name {name!r}")
    for bad in _FORBIDDEN_IN_FIELDS:
        if bad in name or bad in value:
            raise InvalidHeader(f"header {name!r} contains CR, LF or NUL")


# (method, scheme, authority) -> the pseudo-header fields before :path. A
# connection sends the same ones with nearly every request; encoding them
# (IDNA for an international authority) once is enough. Bounded: emptied
# when full.
_LEADING_MEMO: dict[tuple[str, str, str], tuple[tuple[bytes, bytes], ...]] = {}
_LEADING_MEMO_SIZE = 64


def _leading_fields(method: str, scheme: str, authority: str) -> tuple[tuple[bytes, bytes], ...]:
    """``:method``, ``:scheme`` and ``:authority``, encoded (remembered per triple)."""
    key = (method, scheme, authority)
    known = _LEADING_MEMO.get(key)
    if known is not None:
        return known
    encoded = (
        (b":method", method.encode("ascii")),
        (b":scheme", scheme.encode("ascii")),
        (b":authority", authority.encode("idna") if not authority.isascii() else authority.encode("ascii")),
    )
    # Exact types only: then equal keys give equal bytes.
    if type(method) is str and type(scheme) is str and type(authority) is str:
        if len(_LEADING_MEMO) >= _LEADING_MEMO_SIZE:
            _LEADING_MEMO.clear()
        _LEADING_MEMO[key] = encoded
    return encoded


def response_header_problem(fields: list[tuple[bytes, bytes]], trailers: bool = False) -> str | None:
    """What is wrong with a received header block, or ``None`` if it is valid.

    RFC 9113 section 8.3.2: a response has exactly one pseudo-header,
    ``:status`` (three digits), before every regular field; trailers have
    none. Names are lower case, without connection-specific fields; no name
    or value holds CR, LF or NUL.
    """
    if _plainly_valid(fields, trailers):
        return None
    status_seen = False
    regular_seen = False
    for name, value in fields:
        if not name:
            return "empty header name"
        if name[0] == 0x3A:  # b":"
            if trailers:
                return f"pseudo-header {name!r} in trailers"
            if name != b":status":
                return f"unexpected pseudo-header {name!r} in a response"
            if status_seen:
                return "duplicate :status"
            if regular_seen:
                return ":status after regular header fields"
            if len(value) != 3 or not value.isdigit() or not b"100" <= value <= b"599":
                return f"invalid :status {value!r}"
            status_seen = True
            continue
        regular_seen = True
        if name != name.lower():
            return f"upper-case header name {name!r}"
        if name in _CONNECTION_SPECIFIC:
            return f"connection-specific header {name!r}"
        for bad in _FORBIDDEN_IN_FIELDS:
            if bad in name or bad in value:
                return f"header {name!r} contains CR, LF or NUL"
    if not trailers and not status_seen:
        return "response without :status"
    return None


def _plainly_valid(fields: list[tuple[bytes, bytes]], trailers: bool) -> bool:
    """The common case, checked with a few whole-block operations instead of per field.

    True only when the block is certainly valid; anything unusual falls
    through to the field-by-field check, which also says what is wrong.
    """
    if trailers:
        if not fields or fields[0][0][:1] == b":":
            return False
        regular = fields
    else:
        if not fields or fields[0][0] != b":status":
            return False
        status = fields[0][1]
        if len(status) != 3 or not status.isdigit() or not b"100" <= status <= b"599":
            return False
        regular = fields[1:]
    names = [name for name, _ in regular]
    if not all(names) or _CONNECTION_SPECIFIC.intersection(names):
        return False
    joined_names = b"\x01".join(names)
    if b"\x01:" in b"\x01" + joined_names:  # a pseudo-header among the regular fields (or a false alarm)
        return False
    if joined_names != joined_names.lower():
        return False
    blob = joined_names + b"".join([value for _, value in regular])
    return b"\r" not in blob and b"\n" not in blob and b"\x00" not in blob


#: Methods a server may push (RFC 9113 section 8.4: safe and cacheable).
_PUSHABLE_METHODS = frozenset({b"GET", b"HEAD"})


def push_request_problem(fields: list[tuple[bytes, bytes]]) -> str | None:
    """What is wrong with the request of a PUSH_PROMISE, or ``None`` if it is valid.

    RFC 9113 section 8.4: exactly one each of ``:method`` (safe and
    cacheable: GET or HEAD), ``:scheme``, ``:authority`` and ``:path``,
    before every regular field; no request content.
    """
    seen: dict[bytes, bytes] = {}
    regular_seen = False
    for name, value in fields:
        if not name or name != name.lower():
            return f"invalid header name {name!r}"
        for bad in _FORBIDDEN_IN_FIELDS:
            if bad in name or bad in value:
                return f"header {name!r} contains CR, LF or NUL"
        if name[0] == 0x3A:  # b":"
            if name not in (b":method", b":scheme", b":authority", b":path"):
                return f"unexpected pseudo-header {name!r} in a pushed request"
            if name in seen:
                return f"duplicate {name.decode()}"
            if regular_seen:
                return f"{name.decode()} after regular header fields"
            seen[name] = value
        else:
            regular_seen = True
            if name in _CONNECTION_SPECIFIC:
                return f"connection-specific header {name!r}"
            if name == b"content-length" and value.strip() not in (b"", b"0"):
                return "a pushed request cannot have content"
    for required in (b":method", b":scheme", b":authority", b":path"):
        if not seen.get(required):
            return f"pushed request without {required.decode()}"
    if seen[b":method"] not in _PUSHABLE_METHODS:
        return f"method {seen[b':method']!r} cannot be pushed (only GET and HEAD)"
    return None

"""Request arguments shared by the HTTP/2 and HTTP/1.1 connections.

Methods, URLs, header maps, timeouts and the ``content-length`` decision mean
the same thing whichever protocol carries the request, so they are checked and
decided once, here. Every check runs before anything is sent: a caller's
mistake ends in :class:`~hyper.InvalidHeader`, :class:`~hyper.InvalidURL`
(:class:`~hyper.HostChangedError`), ``TypeError`` or ``ValueError``
and leaves the connection as it was.
"""

from __future__ import annotations

import math
import numbers
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from ..exceptions import InvalidHeader, InvalidStreamID, InvalidURL
from ..headers import HeaderKey, HeaderValue, HTTPHeaderMap, to_bytes
from .body import RequestBody
from .stream_ids import checked_stream_id
from .url import _PLAIN_PATH, has_port, host_literal, origin_form, split_host_port

TimeoutType = Union[None, float, tuple[float | None, float | None]]
#: A mapping's value: one field, or a list/tuple making one field per item
#: (list is invariant: a list[str] is no list[HeaderValue], so both named).
FieldValues = Union[HeaderValue, list[HeaderValue], list[str], list[bytes], tuple[HeaderValue, ...]]
# Mapping is invariant in its key: a dict[str, str] is not a
# Mapping[str | bytes, ...], so each key type is named too.
HeadersType = Union[
    Mapping[HeaderKey, FieldValues],
    Mapping[str, FieldValues],
    Mapping[bytes, FieldValues],
    Iterable[tuple[HeaderKey, HeaderValue]],
    HTTPHeaderMap,
    None,
]

#: Methods whose requests carry a body by convention: an empty one still
#: gets ``content-length: 0`` (RFC 9110 8.6).
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})

# RFC 9110 section 5.6.2: a method and a field name are tokens.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 section 5.5: a field value holds visible characters, spaces, tabs
# and obs-text; any other control (CR, LF and NUL above all) could split or
# end the field on the wire.
_BAD_VALUE_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 9110 section 8.6: Content-Length = 1*DIGIT (no sign, '_', spaces or
# non-ASCII digits, all of which int() would take).
_DIGITS = re.compile(rb"[0-9]+")

# Memos of checks that depend on their argument alone (never of a refusal:
# only values that passed are stored). Bounded: a memo that fills up is
# emptied (checked fields) or stops growing (methods, of which a program
# uses a handful).
_MAX_REMEMBERED = 256
# Longer fields (cookies, tokens, generated values) are checked each time:
# the memo is bounded in bytes too, and keeps no large value alive.
_MAX_REMEMBERED_FIELD = 1024
_CHECKED_METHODS: dict[str, str] = {}
_CHECKED_FIELDS: dict[tuple[Any, Any, Any, Any], tuple[bytes, bytes]] = {}
#: Fields that carry credentials: never kept in the memo above.
_NEVER_REMEMBERED = frozenset({b"authorization", b"proxy-authorization", b"cookie"})
# The argument types a field memo key may hold: for these, equal keys mean
# equal results (an int value is left out: True == 1, but True is refused).
_MEMO_TYPES = (str, bytes)


# -- the request line ---------------------------------------------------------------


def request_method(method: str | bytes) -> str:
    """``method`` as a ``str``, checked: a token such as ``'GET'`` (bytes accepted, as by hyper 0.7).

    A method that is not a token (spaces, control or non-ASCII characters)
    is :class:`~hyper.InvalidHeader`; a wrong type is ``TypeError``.
    """
    # Checked twice per request (the request line, then the pseudo-headers),
    # and a program uses a handful of methods: remember the ones that passed.
    if type(method) is str:
        known = _CHECKED_METHODS.get(method)
        if known is not None:
            return known
        # surrogatepass: a lone surrogate ("\ud800") has no UTF-8 bytes; its
        # raw ones are no token either, so it is refused as InvalidHeader below.
        raw = method.encode("utf-8", "surrogatepass")
    elif isinstance(method, (bytes, bytearray)):
        raw = bytes(method)
    elif isinstance(method, str):  # a str subclass: checked, not remembered
        raw = method.encode("utf-8", "surrogatepass")
    else:
        raise TypeError(f"method must be a str or bytes such as 'GET', not {type(method).__name__}")
    if not _TOKEN.fullmatch(raw):
        raise InvalidHeader(f"invalid method {method!r}: a method is a token such as 'GET'")
    checked = raw.decode("ascii")
    if type(method) is str and len(_CHECKED_METHODS) < _MAX_REMEMBERED:
        _CHECKED_METHODS[method] = checked
    return checked


def request_line(method: str | bytes, url: str | bytes, *, secure: bool, authority: str) -> tuple[str, str]:
    """The checked ``(method, path)`` of a request on a connection to ``authority``.

    ``url`` is a path or an absolute URL of the connection's own origin (its
    path is used); a URL of another origin, or of the other scheme, is
    :class:`~hyper.HostChangedError`. Bytes are accepted for both.
    """
    if type(method) is str and type(url) is str:
        # The usual request: a method checked before and a plain path, which
        # origin_form() returns as it is (its request_target() shortcut):
        # the same answer without the two calls.
        known = _CHECKED_METHODS.get(method)
        if known is not None and _PLAIN_PATH.fullmatch(url) is not None:
            return known, url
    checked = request_method(method)
    return checked, origin_form(url, "https" if secure else "http", authority)


# -- header fields ------------------------------------------------------------------


def checked_field(name: HeaderKey, value: HeaderValue) -> tuple[bytes, bytes]:
    """One request header field as bytes, refused when it cannot be sent as given.

    The name must be a token (no pseudo-header: hyper writes those); the
    value must hold no CR, LF, NUL or other control character, and loses
    its leading and trailing whitespace (RFC 9110 section 5.5 says they are
    not part of it). ``content-length`` must be digits; an international
    ``host`` is converted to IDNA. Raises :class:`~hyper.InvalidHeader`, or
    ``TypeError`` for a name or value that is not str, bytes (or int).
    """
    # The same fields (user-agent, accept...) come with every request of a
    # program: a field that passed once passes again, without a second check.
    memo_key: tuple[Any, Any, Any, Any] | None = None
    name_type, value_type = type(name), type(value)
    if (
        name_type in _MEMO_TYPES
        and value_type in _MEMO_TYPES
        and len(name) + len(value) <= _MAX_REMEMBERED_FIELD  # type: ignore[arg-type]
    ):
        # The types first: 'accept' and b'accept' hash alike, and comparing
        # them (as a key of names and values alone would) is a BytesWarning,
        # an exception under ``python -bb``. Tuples compare item by item and
        # stop at the types when they differ.
        memo_key = (name_type, value_type, name, value)
        known = _CHECKED_FIELDS.get(memo_key)
        if known is not None:
            return known
    checked = _checked_field(name, value)
    # Credentials are checked every time instead: a module-wide memo would
    # keep them in memory after the connection that sent them closed.
    if memo_key is not None and checked[0].lower() not in _NEVER_REMEMBERED:
        if len(_CHECKED_FIELDS) >= _MAX_REMEMBERED:
            _CHECKED_FIELDS.clear()  # bounded; the fields in use come back at once
        _CHECKED_FIELDS[memo_key] = checked
    return checked


def _checked_field(name: HeaderKey, value: HeaderValue) -> tuple[bytes, bytes]:
    """:func:`checked_field` itself, without the memo."""
    if isinstance(name, int):
        raise TypeError(f"header names must be str or bytes, not {type(name).__name__}")
    try:
        raw_name = to_bytes(name)
        raw_value = to_bytes(value).strip(b" \t")
    except UnicodeEncodeError as exc:  # a lone surrogate: no bytes can carry it
        raise InvalidHeader(f"header {name!r}: {value!r} is not valid Unicode (a lone surrogate)") from exc
    if not _TOKEN.fullmatch(raw_name):
        if raw_name.startswith(b":"):
            raise InvalidHeader(
                f"pseudo-header {name!r} cannot be set: hyper writes them from the method and url "
                "(use a 'host' header for :authority)"
            )
        raise InvalidHeader(f"invalid header name {name!r}: names are tokens (no spaces, colons, controls)")
    if _BAD_VALUE_BYTE.search(raw_value):
        raise InvalidHeader(f"header {name!r} has a value with CR, LF, NUL or another control character")
    lower = raw_name.lower()
    if lower == b"content-length" and not _DIGITS.fullmatch(raw_value):
        raise InvalidHeader(f"invalid content-length {value!r}: it must be a number of bytes in ASCII digits")
    if lower == b"host":
        raw_value = _checked_host(raw_value)
    return raw_name, raw_value


def _checked_host(value: bytes) -> bytes:
    """A ``host`` value that names a host (and port), international names in IDNA form.

    It becomes HTTP/2's ``:authority`` and decides which site the server
    serves, so it gets the same checks as the connection's own host.
    """
    try:
        text = value.decode("utf-8")
        host, port = split_host_port(text)
    except (UnicodeDecodeError, InvalidURL) as exc:
        raise InvalidHeader(f"invalid host header {value!r}: {exc}") from exc
    if value.isascii():
        return value  # as the caller wrote it
    shown = host_literal(host)
    return (f"{shown}:{port}" if has_port(text) else shown).encode("ascii")


def to_header_map(headers: HeadersType) -> HTTPHeaderMap:
    """A fresh, checked :class:`HTTPHeaderMap` from anything ``request()`` accepts.

    A mapping (a list value makes one field per item), an
    :class:`HTTPHeaderMap`, or an iterable of ``(name, value)`` pairs; each
    field goes through :func:`checked_field`.
    """
    if headers is None:
        return HTTPHeaderMap()
    pairs: Iterable[Any]
    if isinstance(headers, HTTPHeaderMap):
        pairs = headers.items()
    elif type(headers) is dict and not any([isinstance(value, (list, tuple)) for value in headers.values()]):
        # The usual form, one value per name: its own (name, value) tuples.
        pairs = headers.items()
    elif isinstance(headers, Mapping):
        pairs = _mapping_fields(headers)
    elif isinstance(headers, Iterable) and not isinstance(headers, (str, bytes, bytearray)):
        pairs = headers
    else:
        raise TypeError(
            f"headers must be a mapping or an iterable of (name, value) pairs, not {type(headers).__name__}"
        )
    # The checked fields are bytes pairs already: collected in a list the
    # map then takes over, rather than added (and converted again) one by one.
    fields: list[tuple[bytes, bytes]] = []
    host_seen = False
    for pair in pairs:
        # A tuple of two is a pair (the usual case, one test); anything else
        # gets the full check, a string above all ('ab' would unpack).
        if (type(pair) is not tuple or len(pair) != 2) and (
            isinstance(pair, (str, bytes, bytearray)) or not isinstance(pair, (tuple, list)) or len(pair) != 2
        ):
            raise TypeError(f"each header must be a (name, value) pair, not {pair!r}")
        field = checked_field(pair[0], pair[1])
        if field[0].lower() == b"host":
            if host_seen:
                raise _second_host(field[1])
            host_seen = True
        fields.append(field)
    return HTTPHeaderMap.from_wire(fields)


def _second_host(value: bytes) -> InvalidHeader:
    # RFC 9112 section 3.2: a server must answer 400 to more than one Host.
    return InvalidHeader(f"a second host header ({value!r}): a request names one host")


def _mapping_fields(headers: Mapping[Any, Any]) -> Iterable[tuple[Any, Any]]:
    for name, value in headers.items():
        if isinstance(value, (list, tuple)):
            # dict(HTTPHeaderMap) maps each name to a list of its values.
            yield from ((name, item) for item in value)
        else:
            yield name, value


# -- timeouts -----------------------------------------------------------------------


def split_timeout(timeout: TimeoutType) -> tuple[float | None, float | None]:
    """``(connect, read)`` from a number, ``None`` or a ``(connect, read)`` pair, checked.

    Each is ``None`` (wait forever; so is ``math.inf``) or a positive,
    finite number of seconds. A wrong type (a string, a bool, a list) is
    ``TypeError``; a wrong value (zero, negative, NaN, a tuple that is not a
    pair) is ``ValueError``. Connections call this in their constructor, so
    a bad timeout fails there and not at the first request.
    """
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            raise ValueError(f"a timeout tuple must be (connect, read), not {timeout!r}")
        return positive_seconds(timeout[0], "connect timeout"), positive_seconds(timeout[1], "read timeout")
    value = positive_seconds(timeout, "timeout", kind="a number of seconds, None or a (connect, read) tuple")
    return value, value


def positive_seconds(value: Any, what: str, kind: str = "a number of seconds or None") -> float | None:
    """``value`` checked as a wait in seconds: ``None`` (or ``math.inf``) for no limit.

    ``TypeError`` for anything but a real number or ``None`` (bools
    included); ``ValueError`` for zero, negative, NaN, or more than the
    platform can wait. ``what`` names the argument in the message, ``kind``
    says what it may be.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be {kind}, not {value!r}")
    number = float(value)
    if math.isnan(number) or number <= 0:
        raise ValueError(f"{what} must be a positive number of seconds (or None), not {value!r}")
    if math.isinf(number):
        return None
    # Locks and sockets refuse longer waits with OverflowError.
    if number > threading.TIMEOUT_MAX:
        raise ValueError(f"{what} of {value!r} s is longer than this platform can wait; use None")
    return value if isinstance(value, (int, float)) else number


# -- the body's length --------------------------------------------------------------


def declared_length(
    header_map: HTTPHeaderMap, body: RequestBody, method: str | bytes, no_body: bool
) -> int | None:
    """The content-length to enforce: the caller's, else the body's, else None.

    The body's length is also written into ``header_map``, except for a
    request without body whose method does not expect one (RFC 9110 8.6).
    """
    given = header_map.get(b"content-length")
    if given is not None:
        if not all(_DIGITS.fullmatch(value) for value in given) or len(set(given)) != 1:
            raise InvalidHeader(f"invalid content-length {given!r}")
        return int(given[0])
    length = body.length
    if length is None:
        return None
    if no_body:
        name = method.decode("latin-1") if isinstance(method, (bytes, bytearray)) else method
        if name.upper() not in METHODS_WITH_BODY:
            return length  # e.g. a GET: no content-length: 0 (RFC 9110 section 8.6)
    header_map[b"content-length"] = to_bytes(length)
    return length


def bodiless_length(header_map: HTTPHeaderMap, method: str) -> int:
    """:func:`declared_length` for a request with no body whose fields declare no length.

    What ``declared_length(header_map, prepare_body(None), method, True)``
    returns (the request is then empty: HEADERS end the stream), without
    building a body or looking for a ``content-length`` the caller could
    not have given. ``method`` is a checked ``str`` (from :func:`request_line`).
    ``content-length: 0`` goes into ``header_map`` only for a method that
    expects a body (RFC 9110 section 8.6).
    """
    if method.upper() in METHODS_WITH_BODY:
        header_map[b"content-length"] = b"0"
    return 0


def is_empty(body: RequestBody, declared: int | None) -> bool:
    """The request has no body bytes at all (HEADERS can end the stream)."""
    return body.length == 0 and (declared is None or declared == 0)


# -- the incremental form -----------------------------------------------------------


@dataclass
class PendingRequest:
    """A request being assembled with putrequest/putheader/endheaders."""

    method: str
    target: str
    headers: HTTPHeaderMap
    stream_id: int


class IncrementalRequests:
    """``putheader`` and the per-thread request in progress, for both connection classes.

    ``putrequest()`` stores a :class:`PendingRequest` in ``self._local`` (a
    ``threading.local``); each thread assembles its own request.
    """

    _local: threading.local

    def putheader(
        self, header: HeaderKey, argument: HeaderValue, stream_id: int | None = None, replace: bool = False
    ) -> None:
        """Add a header field to the request started with ``putrequest()``.

        The field is checked at once (:class:`~hyper.InvalidHeader` for CR,
        LF or NUL, a name that is not a token, a pseudo-header...); a refused
        field leaves the request as it was, over HTTP/2 and HTTP/1.1 alike.
        A ``host`` replaces the one taken from the connection (a request
        names one host). Each protocol adds its own checks
        (:meth:`_check_put_field`).
        """
        pending = self._pending(stream_id)
        name, value = checked_field(header, argument)
        self._check_put_field(name, value)
        if replace or name.lower() == b"host":
            # A request names one host (RFC 9112 section 3.2): a put host
            # replaces the one putrequest() filled in from the connection.
            pending.headers[name] = value
        else:
            pending.headers.add(name, value)

    def _check_put_field(self, name: bytes, value: bytes) -> None:
        """Refuse (:class:`~hyper.InvalidHeader`) a field this protocol cannot send as put.

        Nothing more by default: HTTP/2 drops connection-specific fields
        (RFC 9113 section 8.2.2) instead of refusing them.
        """

    def _pending(self, stream_id: int | None) -> PendingRequest:
        if stream_id is not None:
            checked_stream_id(stream_id)
        pending: PendingRequest | None = getattr(self._local, "pending", None)
        if pending is None or (stream_id is not None and stream_id != pending.stream_id):
            raise InvalidStreamID(f"no request in progress for stream {stream_id}", stream_id)
        return pending

"""The fields of requests with no body, built once per connection and remembered.

Most programs send the same few requests again and again: the same method,
URL and (often no) caller fields. :class:`RequestFieldsMemo` (a base of
:class:`~hyper.http20.connection.HTTP20Connection`) builds such a request's
HEADERS fields, declared length and path by the very steps
``request()``'s general path takes, and remembers them per connection, so a
request seen before skips the method check, the URL parse, the header map
and the field building. Bounded in entries and in bytes, and never holding
credentials (their fields live no longer than the request needs them).
"""

from __future__ import annotations

import threading
from typing import Any

from ..common.body import prepare_body
from ..common.decoding import ACCEPT_ENCODING
from ..common.request import (
    HeadersType,
    bodiless_length,
    declared_length,
    is_empty,
    request_line,
    to_header_map,
)
from ..headers import HTTPHeaderMap
from .fields import build_request_headers

#: Requests with no body whose fields are remembered, per connection (by
#: method, path, authority, scheme and the caller's fields, if any).
_PLAIN_REQUESTS_MEMO = 64
#: Requests with caller fields are remembered only with at most this many
#: fields, of at most this many characters in all (names and values).
_REMEMBERED_CALLER_FIELDS = 32
_REMEMBERED_CALLER_BYTES = 4096
#: Field names whose requests are never remembered: they carry credentials.
_NEVER_REMEMBERED = frozenset({b"authorization", b"proxy-authorization", b"cookie"})

#: What the memo keeps per request: its fields, declared length and path.
RememberedRequest = tuple[tuple[tuple[bytes, bytes], ...], int | None, str]


class RequestFieldsMemo:
    """Building, and remembering, the fields of requests with no body (see the module docstring)."""

    # Set by HTTP20Connection.
    authority: str
    secure: bool
    _scheme: str
    _local: threading.local
    # The request with no body, by what decides it: (method, url, authority,
    # secure, scheme) as the caller passed them (exact str method and url),
    # or, for other types, (checked method, path, authority, secure, scheme,
    # None); with caller fields, (method, url, authority, secure, scheme,
    # fields). Threads share it: a lookup or store is one dict operation,
    # atomic, and two threads building the same entry store equal values.
    _plain_requests: dict[tuple[Any, ...], RememberedRequest]

    def _plain_request_fields(self, key: tuple[Any, ...], method: str, path: str) -> RememberedRequest:
        """The fields, declared length and path of a request with no body and no caller field.

        What :meth:`request` sends for it (hyper's own fields, then what
        prepare_body/declared_length/is_empty decide, without their objects),
        remembered in ``_plain_requests`` under ``key`` once built without
        error. ``method`` and ``path`` are what request_line() returned.
        """
        header_map = self._prepare(None)
        declared: int | None = bodiless_length(header_map, method)
        fields = build_request_headers(method, path, self.authority, self._scheme, header_map._field_list())
        known = (tuple(fields), declared, path)
        # Bounded in bytes too, not only in entries: the key and the fields
        # each hold the URL, so a long one is built afresh every time.
        if len(key[0]) + len(key[1]) > _REMEMBERED_CALLER_BYTES:
            return known
        if len(self._plain_requests) >= _PLAIN_REQUESTS_MEMO:
            self._plain_requests.clear()  # bounded: many distinct URLs start it afresh
        self._plain_requests[key] = known
        return known

    def _caller_request_fields(
        self, method: Any, url: Any, headers: dict[Any, Any]
    ) -> RememberedRequest | None:
        """The fields, declared length and path of a request with no body and caller ``headers``.

        From ``_plain_requests`` when the same request (method, URL and
        fields, in order) was built before on this connection; else built
        by the very steps :meth:`request` takes (same errors, same order:
        this thread's pending putrequest() is dropped once the request line
        passed) and remembered when it may be. ``None`` when the memo does
        not take the request: not all of method, URL, names and values are
        exactly ``str``, too many fields, or a ``content-length`` with no
        body to send (the general path sends, and refuses, it).
        """
        if type(method) is not str or type(url) is not str:
            return None
        # One snapshot of the dict: what is checked, built and remembered is
        # what the key holds (another thread may change the dict meanwhile).
        items = tuple(headers.items())
        if len(items) > _REMEMBERED_CALLER_FIELDS:
            return None
        # Exactly str, every name and value: then equal keys mean equal
        # fields. A bytes item hashes as its str twin (comparing them in the
        # lookup is a BytesWarning) and 1 == True, but True is refused.
        for name, value in items:
            if type(name) is not str or type(value) is not str:
                return None
        key = (method, url, self.authority, self.secure, self._scheme, items)
        known = self._plain_requests.get(key)
        if known is not None:
            return known
        # What the general path of request() does, step by step.
        checked, path = request_line(method, url, secure=self.secure, authority=self.authority)
        self._local.pending = None
        header_map = self._prepare(items)  # the snapshot, never the live dict
        prepared = prepare_body(None)
        declared = declared_length(header_map, prepared, checked, True)
        if not is_empty(prepared, declared):
            return None
        fields = build_request_headers(checked, path, self.authority, self._scheme, header_map._field_list())
        known = (tuple(fields), declared, path)
        # Remembered unless it carries credentials (kept no longer than the
        # request needs them, as checked_field's memo does) or is large.
        size = len(method) + len(url) + sum(len(name) + len(value) for name, value in items)
        if size <= _REMEMBERED_CALLER_BYTES and not any(field[0] in _NEVER_REMEMBERED for field in fields):
            if len(self._plain_requests) >= _PLAIN_REQUESTS_MEMO:
                self._plain_requests.clear()  # bounded, as in _plain_request_fields
            self._plain_requests[key] = known
        return known

    def _prepare(self, headers: HeadersType) -> HTTPHeaderMap:
        """The request's header map: the caller's fields (checked), then the ones hyper adds.

        The URL was parsed once, by ``request_line()``, which checked that
        an absolute URL names this connection's own origin; ``:authority``
        comes from the connection (or a caller's ``host`` field).
        """
        if headers is None:
            # Nothing to check or look for: the map holds just hyper's own field.
            return HTTPHeaderMap.from_wire([(b"accept-encoding", ACCEPT_ENCODING)])
        header_map = to_header_map(headers)
        if b"accept-encoding" not in header_map:
            header_map[b"accept-encoding"] = ACCEPT_ENCODING
        return header_map

"""Properties of the caller-input checks, over generated input (hypothesis).

Whatever a caller passes as a method, URL, header field or timeout, the
checks in :mod:`hyper.common.request` and :mod:`hyper.common.url` either
return something that can go on the wire as it is, or raise a documented
exception: a :class:`~hyper.HyperError` (``InvalidURL``, ``InvalidHeader``)
or a ``TypeError``/``ValueError``. Never a bare ``UnicodeError``, an
unpacking error or an ``OverflowError``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hyper.common.request import (
    checked_field,
    positive_seconds,
    request_line,
    split_timeout,
    to_header_map,
)
from hyper.common.url import request_target, split_host_port
from hyper.exceptions import HyperError, InvalidHeader, InvalidURL

# Text that leans towards the characters that matter here.
_NASTY = st.sampled_from(list(":/?#[]@%\r\n\x00\t \x01\x7f\u00e9\u0661.-_~!$&'()*+,;=\"<>`{}|\\^"))
_TEXT = st.lists(st.one_of(_NASTY, st.characters()), max_size=40).map("".join)
_BYTES = st.one_of(st.binary(max_size=40), _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")))
_ANY = st.one_of(
    _TEXT, _BYTES, st.integers(), st.floats(), st.none(), st.booleans(), st.lists(_TEXT, max_size=3)
)
_DOCUMENTED = (HyperError, TypeError, ValueError)


def _wire_safe(data: bytes) -> bool:
    return not any(byte in data for byte in b"\r\n\x00")


@settings(max_examples=400, deadline=None)
@given(url=st.one_of(_TEXT, _BYTES, _TEXT.map(lambda t: "https://" + t), _TEXT.map(lambda t: "/" + t)))
def test_request_target_gives_an_ascii_target_or_a_documented_error(url: str | bytes) -> None:
    try:
        path, _, authority = request_target(url)
    except (InvalidURL, TypeError):
        return
    assert path.isascii() and path.isprintable() and " " not in path
    assert authority is None or (authority.isascii() and _wire_safe(authority.encode()))


@settings(max_examples=400, deadline=None)
@given(method=st.one_of(_TEXT, _BYTES, _ANY), url=st.one_of(_TEXT, _BYTES, _ANY), secure=st.booleans())
@example(method="\ud800", url="/", secure=False)  # a lone surrogate once escaped as UnicodeEncodeError
def test_request_line_returns_a_token_and_a_path_or_a_documented_error(
    method: Any, url: Any, secure: bool
) -> None:
    try:
        checked, path = request_line(method, url, secure=secure, authority="localhost:8443")
    except _DOCUMENTED as exc:
        assert not isinstance(exc, UnicodeError), exc
        return
    assert checked.isascii() and checked.isprintable() and " " not in checked
    assert path == "*" or path.startswith("/")
    assert path.isascii()


@settings(max_examples=400, deadline=None)
@given(name=st.one_of(_TEXT, _BYTES, _ANY), value=st.one_of(_TEXT, _BYTES, _ANY))
def test_checked_field_is_sendable_or_refused(name: Any, value: Any) -> None:
    try:
        raw_name, raw_value = checked_field(name, value)
    except (InvalidHeader, TypeError) as exc:
        assert not isinstance(exc, UnicodeError), exc
        return
    assert raw_name and not raw_name.startswith(b":")
    assert _wire_safe(raw_name) and _wire_safe(raw_value)
    assert raw_value == raw_value.strip(b" \t")


@settings(max_examples=300, deadline=None)
@given(headers=st.one_of(_ANY, st.lists(st.one_of(_ANY, st.tuples(_ANY, _ANY), st.tuples(_ANY)), max_size=4)))
def test_to_header_map_accepts_pairs_only(headers: Any) -> None:
    try:
        header_map = to_header_map(headers)
    except (InvalidHeader, TypeError) as exc:
        assert not isinstance(exc, UnicodeError), exc
        return
    for name, value in header_map.items():
        assert _wire_safe(name) and _wire_safe(value)


@settings(max_examples=300, deadline=None)
@given(host=st.one_of(_TEXT, _TEXT.map(lambda t: f"[{t}]:443"), _TEXT.map(lambda t: t + ".example")))
def test_split_host_port_gives_a_resolvable_name_or_invalid_url(host: str) -> None:
    try:
        name, port = split_host_port(host)
    except InvalidURL:
        return
    assert name.isascii() or "%" in name  # IDNA form; an IPv6 zone id may be anything
    assert 0 < port < 65536
    if ":" not in name:
        # What the resolver would do with it: must not be a bare UnicodeError.
        name.encode("idna")


@settings(max_examples=300, deadline=None)
@given(timeout=st.one_of(_ANY, st.tuples(_ANY, _ANY), st.tuples(_ANY, _ANY, _ANY)))
def test_split_timeout_gives_waitable_seconds_or_a_type_or_value_error(timeout: Any) -> None:
    try:
        connect, read = split_timeout(timeout)
    except (TypeError, ValueError) as exc:
        assert not isinstance(exc, HyperError)
        return
    for value in (connect, read):
        assert value is None or (0 < value < math.inf and not isinstance(value, bool))


def test_positive_seconds_names_the_argument() -> None:
    with pytest.raises(ValueError, match="deadline must be a positive"):
        positive_seconds(-1, "deadline")
    with pytest.raises(TypeError, match="keepalive must be a number"):
        positive_seconds("5", "keepalive")
    assert positive_seconds(2.5, "deadline") == 2.5
    assert positive_seconds(math.inf, "deadline") is None

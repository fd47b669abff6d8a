"""The constructor options the three connection classes share (hyper/common/options.py).

Every check runs in the constructor, before any socket exists: these tests
never connect.
"""

from __future__ import annotations

import math
import ssl
import warnings
from typing import Any

import pytest

import hyper
from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
from hyper.common.options import connection_options, keepalive_options

CLASSES = [HTTP20Connection, HTTP11Connection, HTTPConnection]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (math.nan, ValueError),
        (1e300, ValueError),
        ("5", TypeError),
        (True, TypeError),
        ([5], TypeError),
    ],
)
def test_a_bad_deadline_fails_in_the_constructor(cls: Any, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="^deadline (must be|of)"):
        cls("127.0.0.1:9", deadline=value)


@pytest.mark.parametrize("cls", CLASSES)
def test_a_good_deadline_is_kept_and_infinity_means_none(cls: Any) -> None:
    for value, expected in ((2.5, 2.5), (3, 3), (None, None), (math.inf, None)):
        conn = cls("127.0.0.1:9", deadline=value)
        inner = conn._h1 if isinstance(conn, HTTPConnection) else conn
        assert inner.deadline == expected


@pytest.mark.parametrize("cls", [HTTP20Connection, HTTPConnection])
@pytest.mark.parametrize("name", ["keepalive", "keepalive_timeout"])
@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-0.5, ValueError), (math.nan, ValueError), ("1", TypeError), (False, TypeError)],
)
def test_bad_keepalive_settings_fail_in_the_constructor(
    cls: Any, name: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=f"{name} must be"):
        cls("127.0.0.1:9", **{name: value})


def test_keepalive_timeout_defaults_to_the_read_timeout_then_to_keepalive() -> None:
    assert keepalive_options(None, None, None) == (None, None)
    assert keepalive_options(5, None, 2) == (5, 2)
    assert keepalive_options(5, None, None) == (5, 5)
    assert keepalive_options(5, 1.5, 2) == (5, 1.5)
    assert keepalive_options(math.inf, None, None) == (None, None)
    conn = HTTP20Connection("127.0.0.1:9", keepalive=30, timeout=4)
    assert (conn.keepalive, conn.keepalive_timeout) == (30, 4)


@pytest.mark.parametrize("cls", CLASSES)
def test_unknown_keyword_arguments_are_ignored_with_a_warning_at_the_callers_line(cls: Any) -> None:
    with pytest.warns(DeprecationWarning, match="ignores unknown keyword arguments: bogus") as caught:
        cls("127.0.0.1:9", bogus=1)
    # The warning points at this file (the caller), not at hyper's insides.
    assert [w.filename for w in caught] == [__file__]


@pytest.mark.parametrize("cls", CLASSES)
def test_known_arguments_do_not_warn(cls: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls("127.0.0.1:9", timeout=(1, 2), deadline=3, limits=hyper.Limits(), proxy_from_env=False)


@pytest.mark.parametrize(
    ("cls", "kwargs", "port", "secure"),
    [
        # HTTP/2: a bare host is 443, TLS unless asked otherwise (hyper 0.7).
        (HTTP20Connection, {}, 443, True),
        (HTTP20Connection, {"secure": False}, 443, False),
        # HTTP/1.1: 80 in cleartext, 443 when TLS is asked for (as http.client).
        (HTTP11Connection, {}, 80, False),
        (HTTP11Connection, {"secure": True}, 443, True),
        (HTTP11Connection, {"ssl_context": ssl.create_default_context()}, 443, True),
        # Negotiating: 443 with TLS, 80 with secure=False.
        (HTTPConnection, {}, 443, True),
        (HTTPConnection, {"secure": False}, 80, False),
    ],
)
def test_each_class_keeps_its_default_port(cls: Any, kwargs: dict[str, Any], port: int, secure: bool) -> None:
    conn = cls("example.org", **kwargs)
    assert (conn.port, conn.secure) == (port, secure)
    # The authority names the port only when it is not the scheme's default.
    default = 443 if secure else 80
    assert conn.authority == ("example.org" if port == default else f"example.org:{port}")
    explicit = cls("example.org:8443", **kwargs)
    assert explicit.port == 8443
    assert explicit.authority == "example.org:8443"


def test_the_parsed_options_say_what_the_constructor_was_given() -> None:
    context = ssl.create_default_context()
    options = connection_options(
        "Test",
        "[::1]:8443",
        None,
        None,
        context,
        "proxy.example",
        None,
        {"proxy-authorization": "Basic eA=="},
        (1, 2),
        limits=None,
        deadline=9,
        proxy_from_env=False,
        bare_port="443",
        unknown={},
    )
    assert (options.host, options.port, options.secure, options.scheme) == ("::1", 8443, True, "https")
    assert options.authority == "[::1]:8443"
    assert options.ssl_context is context
    assert (options.connect_timeout, options.read_timeout, options.deadline) == (1, 2, 9)
    assert options.limits == hyper.Limits()
    assert options.proxy is not None
    assert (options.proxy.host, options.proxy.port) == ("proxy.example", 8080)
    assert options.proxy.headers.get_first(b"proxy-authorization") == b"Basic eA=="


def test_a_timeout_message_still_mentions_the_pair_form() -> None:
    with pytest.raises(
        TypeError, match=r"timeout must be a number of seconds, None or a \(connect, read\) tuple"
    ):
        HTTP11Connection("127.0.0.1:9", timeout="3")
    with pytest.raises(TypeError, match=r"deadline must be a number of seconds or None, not '3'"):
        HTTP11Connection("127.0.0.1:9", deadline="3")

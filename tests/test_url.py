"""Unit tests for hyper.common.url: host/port splitting, authority, request target."""

from __future__ import annotations

import pytest

from hyper.common.url import (
    DEFAULT_CLEARTEXT_PORT,
    DEFAULT_TLS_PORT,
    authority_for,
    request_target,
    split_host_port,
)
from hyper.exceptions import HyperError, InvalidURL


def test_default_ports() -> None:
    assert DEFAULT_TLS_PORT == 443
    assert DEFAULT_CLEARTEXT_PORT == 80


def test_invalid_url_is_a_value_error_and_a_hyper_error() -> None:
    assert issubclass(InvalidURL, ValueError)
    assert issubclass(InvalidURL, HyperError)
    with pytest.raises(ValueError):
        split_host_port("host:abc")


# --- split_host_port ---------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.org", ("example.org", 443)),
        ("localhost", ("localhost", 443)),
        ("127.0.0.1", ("127.0.0.1", 443)),
        ("example.org:8080", ("example.org", 8080)),
        ("example.org:80", ("example.org", 80)),
        ("example.org:1", ("example.org", 1)),
        ("example.org:65535", ("example.org", 65535)),
        ("example.org:0443", ("example.org", 443)),
        ("127.0.0.1:8443", ("127.0.0.1", 8443)),
        ("[::1]:8443", ("::1", 8443)),
        ("[::1]", ("::1", 443)),
        ("[2001:db8::1]:80", ("2001:db8::1", 80)),
        ("::1", ("::1", 443)),
        ("2001:db8::1", ("2001:db8::1", 443)),
        ("Example.ORG", ("Example.ORG", 443)),
    ],
)
def test_split_host_port(host: str, expected: tuple[str, int]) -> None:
    result = split_host_port(host)
    assert result == expected
    assert type(result[1]) is int


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("example.org", 8080, ("example.org", 8080)),
        ("example.org:9000", 8080, ("example.org", 8080)),
        ("example.org:443", 80, ("example.org", 80)),
        ("[::1]:9000", 8443, ("::1", 8443)),
        ("[::1]", 80, ("::1", 80)),
        ("::1", 80, ("::1", 80)),
        ("example.org", 1, ("example.org", 1)),
        ("example.org", 65535, ("example.org", 65535)),
    ],
)
def test_split_host_port_explicit_port_wins(host: str, port: int, expected: tuple[str, int]) -> None:
    assert split_host_port(host, port) == expected


def test_split_host_port_explicit_none_is_like_no_port() -> None:
    assert split_host_port("example.org:8080", None) == ("example.org", 8080)
    assert split_host_port("example.org", None) == ("example.org", 443)


@pytest.mark.parametrize(
    "host",
    [
        "example.org:0",
        "example.org:70000",
        "example.org:65536",
        "example.org:99999999999999999999",
        "example.org:abc",
        "example.org:",
        "example.org:-1",
        "example.org:+80",
        "example.org:8o",
        "[::1]:0",
        "[::1]:70000",
        "[::1]:abc",
        "[::1]:",
    ],
)
def test_split_host_port_bad_port_in_host(host: str) -> None:
    with pytest.raises(InvalidURL):
        split_host_port(host)


@pytest.mark.parametrize("port", [0, 70000, 65536, -1, "abc", "", "443", 443.0, True, False])
def test_split_host_port_bad_explicit_port(port: object) -> None:
    with pytest.raises(InvalidURL):
        split_host_port("example.org", port)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host",
    [
        "",
        ":80",
        "[]",
        "[]:80",
        "[::1",
        "[::1]x",
        "[::1]80",
        "exa mple.org",
        " example.org",
        "example.org\n",
        "example.org\t",
        "example.org/path",
        "example.org?q",
        "example.org#f",
        "user@example.org",
    ],
)
def test_split_host_port_bad_host(host: str) -> None:
    with pytest.raises(InvalidURL):
        split_host_port(host)


@pytest.mark.parametrize("host", [None, b"example.org", 443])
def test_split_host_port_host_must_be_str(host: object) -> None:
    with pytest.raises(InvalidURL):
        split_host_port(host)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["example.org:\u00b2", "example.org:\u0661\u0662", "[::1]:\u0663"])
def test_split_host_port_non_ascii_digits_are_not_a_port(host: str) -> None:
    # BUG: str.isdigit() accepts superscripts and other scripts' digits:
    # 'host:\u00b2' escapes as a bare ValueError from int(), and Arabic-Indic
    # digits are silently accepted as port 12.
    with pytest.raises(InvalidURL):
        split_host_port(host)


# --- authority_for -----------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "secure", "expected"),
    [
        ("example.org", 443, True, "example.org"),
        ("example.org", 80, False, "example.org"),
        ("example.org", 80, True, "example.org:80"),
        ("example.org", 443, False, "example.org:443"),
        ("example.org", 8443, True, "example.org:8443"),
        ("example.org", 8080, False, "example.org:8080"),
        ("127.0.0.1", 443, True, "127.0.0.1"),
        ("127.0.0.1", 8080, False, "127.0.0.1:8080"),
        ("::1", 443, True, "[::1]"),
        ("::1", 80, False, "[::1]"),
        ("::1", 8443, True, "[::1]:8443"),
        ("::1", 443, False, "[::1]:443"),
        ("2001:db8::1", 80, True, "[2001:db8::1]:80"),
    ],
)
def test_authority_for(host: str, port: int, secure: bool, expected: str) -> None:
    assert authority_for(host, port, secure) == expected


@pytest.mark.parametrize(
    ("given", "secure", "expected"),
    [
        ("example.org", True, "example.org"),
        ("example.org:8443", True, "example.org:8443"),
        ("[::1]", True, "[::1]"),
        ("[::1]:8443", True, "[::1]:8443"),
        ("[::1]:80", False, "[::1]"),
    ],
)
def test_authority_round_trips_split_host_port(given: str, secure: bool, expected: str) -> None:
    host, port = split_host_port(given)
    assert authority_for(host, port, secure) == expected


# --- request_target ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/index.html",
        "/a/b/c?x=1&y=2",
        "/search?q=a,b;c",
        "/%20encoded%2Fpath",
        "//double/slash",
        "/?",
    ],
)
def test_request_target_path_kept_as_is(url: str) -> None:
    assert request_target(url) == (url, None, None)


def test_request_target_asterisk() -> None:
    assert request_target("*") == ("*", None, None)


def test_request_target_empty_means_root() -> None:
    assert request_target("") == ("/", None, None)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/x", ("/x", "https", "example.org")),
        ("https://example.org/x?q=1&r=2", ("/x?q=1&r=2", "https", "example.org")),
        ("https://example.org", ("/", "https", "example.org")),
        ("https://example.org/", ("/", "https", "example.org")),
        ("https://example.org?q=1", ("/?q=1", "https", "example.org")),
        ("http://example.org:8080/a/b", ("/a/b", "http", "example.org:8080")),
        ("https://example.org/x#fragment", ("/x", "https", "example.org")),
        ("https://example.org/x?q=1#fragment", ("/x?q=1", "https", "example.org")),
        ("http://[::1]:8080/x?y", ("/x?y", "http", "[::1]:8080")),
        ("https://[::1]/", ("/", "https", "[::1]")),
        ("HTTPS://example.org/x", ("/x", "https", "example.org")),
    ],
)
def test_request_target_absolute_url(url: str, expected: tuple[str, str, str]) -> None:
    assert request_target(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "/a\r\nInjected: yes",
        "/a\r",
        "/a\n",
        "/a b",
        " /a",
        "/a ",
        "/a\t",
        "/a\x00",
        "https://example.org/a b",
        "https://example.org/a\r\nX: y",
        "https://exa mple.org/",
    ],
)
def test_request_target_refuses_whitespace_and_crlf(url: str) -> None:
    with pytest.raises(InvalidURL):
        request_target(url)


@pytest.mark.parametrize("url", ["index.html", "example.org/x", "?q=1", "https:///x", "http://"])
def test_request_target_refuses_non_paths(url: str) -> None:
    with pytest.raises(InvalidURL):
        request_target(url)


@pytest.mark.parametrize("url", [None, b"/x", 1])
def test_request_target_url_must_be_str(url: object) -> None:
    with pytest.raises(InvalidURL):
        request_target(url)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "expected"),
    [("/x#frag", "/x"), ("/x?q=1#frag", "/x?q=1"), ("/#", "/")],
)
def test_request_target_drops_fragment_of_path(url: str, expected: str) -> None:
    # BUG: a fragment is never part of the request target (RFC 9110 section
    # 7.1); it is dropped from absolute URLs but sent as part of :path here.
    assert request_target(url) == (expected, None, None)


def test_request_target_never_puts_userinfo_in_authority() -> None:
    # BUG: RFC 9113 section 8.3.1: ':authority MUST NOT include the deprecated
    # userinfo subcomponent'. Refusing the URL or stripping the userinfo are
    # both acceptable; sending 'user:secret@' to the server is not.
    try:
        result = request_target("https://user:secret@example.org/x")
    except InvalidURL:
        return
    assert result == ("/x", "https", "example.org")

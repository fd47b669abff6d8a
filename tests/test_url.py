"""Unit tests for hyper.common.url: host/port splitting, authority, request target."""

from __future__ import annotations

import pytest

from hyper.common.url import (
    DEFAULT_CLEARTEXT_PORT,
    DEFAULT_TLS_PORT,
    authority_for,
    origin_form,
    request_target,
    split_host_port,
)
from hyper.exceptions import HostChangedError, HyperError, InvalidURL


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


@pytest.mark.parametrize("url", [None, 1, ["/x"]])
def test_request_target_url_must_be_str_or_bytes(url: object) -> None:
    with pytest.raises(TypeError, match="url must be a str or bytes"):
        request_target(url)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (b"/x", ("/x", None, None)),
        (bytearray(b"/x?q=1"), ("/x?q=1", None, None)),
        (b"https://example.org/y", ("/y", "https", "example.org")),
        # Valid UTF-8 bytes are the UTF-8 of the path; other bytes are sent as they are.
        ("/caf\u00e9".encode(), ("/caf%C3%A9", None, None)),
        (b"/caf\xe9", ("/caf%E9", None, None)),
    ],
)
def test_request_target_accepts_bytes_as_hyper_07_did(url: bytes, expected: tuple[str, str, str]) -> None:
    assert request_target(url) == expected


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


# --- hosts that cannot be resolved or sent (issue 12, item 8) -------------------


@pytest.mark.parametrize(
    "host",
    [
        "[zz]:443",
        "[zz]",
        "[::1::2]",
        "1:2:3",  # a bare "IPv6" that is not one
        "a..b",
        "." + "a" * 10,
        "a" * 64 + ".example",
        ("a" * 60 + ".") * 5 + "com",  # longer than 253 characters
        "exa%mple.org",
        "exa<mple.org",
        "b\u00fccher..example",  # IDNA refuses the empty label (was a bare UnicodeError)
    ],
)
def test_split_host_port_refuses_hosts_nobody_can_resolve(host: str) -> None:
    with pytest.raises(InvalidURL):
        split_host_port(host)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("b\u00fccher.example", ("xn--bcher-kva.example", 443)),
        ("B\u00dcCHER.example:8443", ("xn--bcher-kva.example", 8443)),
        ("[fe80::1%eth0]:8443", ("fe80::1%eth0", 8443)),
        ("example.org.", ("example.org.", 443)),
        ("under_score.example", ("under_score.example", 443)),
        ("a" * 63 + ".example", ("a" * 63 + ".example", 443)),
    ],
)
def test_split_host_port_accepts_and_normalises(given: str, expected: tuple[str, int]) -> None:
    assert split_host_port(given) == expected


# --- request targets the wire cannot carry as written ---------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/caf\u00e9", "/caf%C3%A9"),
        ("/\u00fc?q=\u00e9", "/%C3%BC?q=%C3%A9"),
        ("/a\x01b\x7f", "/a%01b%7F"),
        ('/a"b<c>d`e{f}g', "/a%22b%3Cc%3Ed%60e%7Bf%7Dg"),
        ("/already%20escaped", "/already%20escaped"),
        ("https://example.org/\u00e9", "/%C3%A9"),
    ],
)
def test_request_target_percent_encodes_what_a_request_line_cannot_carry(url: str, expected: str) -> None:
    assert request_target(url)[0] == expected
    assert request_target(url)[0].isascii()


@pytest.mark.parametrize("url", ["http://[::1/y", "http://[zz]/", "https://a..b/", "https://host:99999/"])
def test_request_target_bad_authority_is_invalid_url_not_bare_value_error(url: str) -> None:
    with pytest.raises(InvalidURL):
        request_target(url)


def test_request_target_international_host_in_idna_form() -> None:
    expected = ("/x", "https", "xn--bcher-kva.example:8443")
    assert request_target("https://b\u00fccher.example:8443/x") == expected


# --- origin_form: one connection, one origin (issue 12, item 7) ------------------


@pytest.mark.parametrize(
    ("url", "scheme", "authority", "expected"),
    [
        ("/x", "https", "localhost", "/x"),
        ("https://localhost/x", "https", "localhost", "/x"),
        ("https://LOCALHOST:443/x?y", "https", "localhost", "/x?y"),
        ("http://localhost:80/", "http", "localhost", "/"),
        ("http://127.0.0.1:8080/p", "http", "127.0.0.1:8080", "/p"),
        ("https://[0:0::1]:8443/", "https", "[::1]:8443", "/"),
        ("https://b\u00fccher.example/", "https", "xn--bcher-kva.example", "/"),
        ("https://user:pw@localhost/x", "https", "localhost", "/x"),
        ("*", "https", "localhost", "*"),
    ],
)
def test_origin_form_same_origin(url: str, scheme: str, authority: str, expected: str) -> None:
    assert origin_form(url, scheme, authority) == expected


@pytest.mark.parametrize(
    ("url", "scheme", "authority"),
    [
        ("https://other-host.example/x", "https", "localhost"),
        ("https://localhost:8443/x", "https", "localhost"),
        ("https://localhost/x", "https", "localhost:8443"),
        ("http://localhost/x", "https", "localhost"),  # cleartext URL on a TLS connection
        ("http://localhost:443/x", "https", "localhost"),
        ("https://localhost/x", "http", "localhost"),  # TLS URL on a cleartext connection
        ("https://localhost:80/x", "http", "localhost"),
        ("https://127.0.0.2/", "https", "127.0.0.1"),
    ],
)
def test_origin_form_refuses_other_origins(url: str, scheme: str, authority: str) -> None:
    with pytest.raises(HostChangedError) as info:
        origin_form(url, scheme, authority)
    assert info.value.url == url
    assert info.value.origin == f"{scheme}://{authority}"
    assert isinstance(info.value, InvalidURL)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("url", ["ftp://localhost/x", "ws://localhost/"])
def test_origin_form_refuses_other_schemes(url: str) -> None:
    with pytest.raises(InvalidURL, match="only http:// and https://"):
        origin_form(url, "https", "localhost")

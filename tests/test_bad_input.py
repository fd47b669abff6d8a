"""Bad input from the caller (issue 12, items 6-10 and putheader).

Every refused call must raise a documented exception (a :class:`HyperError`
subclass, or ``TypeError``/``ValueError`` for an argument of the wrong type)
before anything is sent, and leave the connection serving the next request.

The proof is taken at the server: a recording server (HTTP/2 or HTTP/1.1)
answers each request with its method and path and keeps a list of every
request that reached it. Each test makes one good request (so a live
connection is at stake), the bad call, then another good request on the same
connection, and checks that the server saw exactly the two good ones. Real
servers (hypercorn over TLS and in cleartext) repeat the check end to end.
"""

from __future__ import annotations

import json
import math
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import h2.events
import pytest

import hyper
from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
from hyper.exceptions import HostChangedError, HyperError, InvalidHeader, InvalidURL
from tests import http11_scripted, scripted
from tests.servers import ServerInfo

Connection = Any  # HTTP20Connection | HTTP11Connection | HTTPConnection


# --- recording servers -------------------------------------------------------------


@dataclass
class Recorded:
    """What reached a recording server: one entry per request, in order."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    #: HTTP/2 only: stream ids the client opened or reset (every frame with a stream id).
    streams: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        with self.lock:
            return [path for _, path, _ in self.requests]


def _h2_recording_script(recorded: Recorded) -> scripted.Script:
    def script(peer: scripted.Peer) -> None:
        heads: dict[int, list[tuple[bytes, bytes]]] = {}
        while True:
            # read_events() also keeps its events in peer.events, where the
            # handshake may have left a request that came with the preface.
            if not peer.events:
                try:
                    peer.read_events(timeout=30)
                except TimeoutError:
                    return
                if peer.closed:
                    return
            events, peer.events[:] = list(peer.events), []
            for event in events:
                stream_id = getattr(event, "stream_id", None)
                if stream_id:
                    with recorded.lock:
                        if stream_id not in recorded.streams:
                            recorded.streams.append(stream_id)
                if isinstance(event, h2.events.RequestReceived):
                    heads[event.stream_id] = list(event.headers)
                if isinstance(event, h2.events.DataReceived):
                    peer.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if isinstance(event, h2.events.StreamEnded):
                    fields = {k.decode(): v.decode("latin-1") for k, v in heads.pop(event.stream_id)}
                    method, path = fields[":method"], fields[":path"]
                    with recorded.lock:
                        recorded.requests.append((method, path, fields))
                    peer.respond(event.stream_id, body=f"{method} {path}".encode())
            peer.flush()

    return script


def _h11_recording_script(recorded: Recorded) -> http11_scripted.Script:
    def script(peer: http11_scripted.Peer) -> None:
        while True:
            request = peer.read_request()
            if request is None:
                return
            method, path = request.method.decode(), request.target.decode("latin-1")
            fields = {k.decode(): v.decode("latin-1") for k, v in request.headers}
            with recorded.lock:
                recorded.requests.append((method, path, fields))
            peer.respond(200, body=f"{method} {path}".encode())

    return script


@pytest.fixture(params=["h2", "h11", "negotiating-h2", "negotiating-h11"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Connection, Recorded, str]]:
    """A connection of each class to a recording server, and what the server saw."""
    recorded = Recorded()
    kind: str = request.param
    if kind.endswith("h2"):
        with scripted.ScriptedServer(_h2_recording_script(recorded)) as server:
            address = f"127.0.0.1:{server.port}"
            if kind == "h2":
                conn: Connection = HTTP20Connection(address, secure=False, timeout=10)
            else:
                conn = HTTPConnection(address, secure=False, force_proto="h2", timeout=10)
            with conn:
                yield conn, recorded, address
    else:
        with http11_scripted.scripted(_h11_recording_script(recorded)) as h11_server:
            address = h11_server.address
            if kind == "h11":
                conn = HTTP11Connection(address, secure=False, timeout=10)
            else:
                conn = HTTPConnection(address, secure=False, upgrade=False, timeout=10)
            with conn:
                yield conn, recorded, address
            assert not h11_server.errors


def _good_request(conn: Connection, path: str) -> None:
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.status == 200
    assert response.read() == f"GET {path}".encode()


def _assert_refused_and_usable(
    conn: Connection, recorded: Recorded, bad_call: Callable[[], object], expected: type[BaseException]
) -> BaseException:
    """One good request, the refused call, one more good request; the server saw only the good ones."""
    _good_request(conn, "/before")
    with pytest.raises(expected) as info:
        bad_call()
    _good_request(conn, "/after")
    assert recorded.paths() == ["/before", "/after"]
    if recorded.streams:  # HTTP/2: no stream was opened (or reset) for the refused call
        assert recorded.streams == [1, 3]
    return info.value


# --- 6. bodies of a type that cannot be sent -------------------------------------------


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"a": 1}, "cannot be a request body: encode it first"),
        ({b"k": b"v"}, "cannot be a request body"),
        ({b"a", b"b"}, "a set has no order"),
        (42, "a body is bytes, bytearray"),
        (4.5, "a body is bytes, bytearray"),
        (True, "a body is bytes, bytearray"),
        ([b"ok", 42], "item 1 of the body is a int"),
        (object(), "a body is bytes, bytearray"),
    ],
    ids=["dict", "dict-bytes", "set", "int", "float", "bool", "list-with-int", "object"],
)
def test_unsupported_body_is_a_type_error_before_sending(
    served: tuple[Connection, Recorded, str], body: object, match: str
) -> None:
    # Issue 12 item 6: a dict was sent as its keys ("a"), answered 200.
    conn, recorded, _ = served
    error = _assert_refused_and_usable(
        conn, recorded, lambda: conn.request("POST", "/x", body=body), TypeError
    )
    assert match in str(error)


def test_dict_body_in_send_after_endheaders_is_refused(served: tuple[Connection, Recorded, str]) -> None:
    conn, recorded, _ = served
    _good_request(conn, "/before")
    conn.putrequest("POST", "/stream")
    conn.endheaders()
    with pytest.raises(TypeError, match="cannot be a request body"):
        conn.send({"a": 1})
    conn.send(b"payload", final=True)
    response = conn.getresponse()
    assert response.read() == b"POST /stream"
    assert recorded.paths() == ["/before", "/stream"]


def test_dict_body_in_endheaders_is_refused(served: tuple[Connection, Recorded, str]) -> None:
    conn, recorded, _ = served
    _good_request(conn, "/before")
    conn.putrequest("POST", "/refused")
    with pytest.raises(TypeError, match="cannot be a request body"):
        conn.endheaders(message_body={"a": 1}, final=True)
    _good_request(conn, "/after")
    assert recorded.paths() == ["/before", "/after"]


# --- 7. a URL naming another origin ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://other-host.example/x",
        "http://other-host.example/x",
        "http://127.0.0.1/x",  # same host, default port 80: another origin
        "https://{address}/x",  # TLS scheme on a cleartext connection
        "http://127.0.0.2:{port}/x",
    ],
)
def test_url_of_another_origin_is_refused(served: tuple[Connection, Recorded, str], url: str) -> None:
    # Issue 12 item 7: such a URL went to the connection's server with
    # :authority / Host naming the other host.
    conn, recorded, address = served
    url = url.format(address=address, port=address.rpartition(":")[2])
    error = _assert_refused_and_usable(conn, recorded, lambda: conn.request("GET", url), HostChangedError)
    assert isinstance(error, HyperError) and isinstance(error, ValueError)
    assert isinstance(error, HostChangedError)
    assert error.url == url
    assert error.origin == f"http://{address}"


def test_url_of_another_origin_is_refused_by_putrequest(served: tuple[Connection, Recorded, str]) -> None:
    conn, recorded, _ = served
    _assert_refused_and_usable(
        conn, recorded, lambda: conn.putrequest("GET", "https://other-host.example/x"), HostChangedError
    )


@pytest.mark.parametrize(
    "template", ["http://{address}/same", "HTTP://{address}/same", "http://localhost:{port}/"]
)
def test_absolute_url_of_the_same_origin_is_sent_as_a_path(
    served: tuple[Connection, Recorded, str], template: str
) -> None:
    conn, recorded, address = served
    url = template.format(address=address, port=address.rpartition(":")[2])
    _good_request(conn, "/before")
    if "localhost" in url:
        # A different name for the same address is another origin (as for browsers).
        with pytest.raises(HostChangedError):
            conn.request("GET", url)
        return
    conn.request("GET", url)
    assert conn.getresponse().read() == b"GET /same"
    method, path, fields = recorded.requests[-1]
    assert path == "/same"
    assert fields.get(":authority", fields.get("host")) == address


# --- 8. methods, URLs, hosts and header fields that cannot be sent --------------------------------


BAD_CALLS: list[tuple[str, Callable[[Connection], object], type[BaseException], str]] = [
    ("non-ascii-method", lambda c: c.request("G\u00c9T", "/x"), InvalidHeader, "invalid method"),
    ("method-with-space", lambda c: c.request("GE T", "/x"), InvalidHeader, "invalid method"),
    ("method-with-tab", lambda c: c.request("GET\t", "/x"), InvalidHeader, "invalid method"),
    ("method-with-crlf", lambda c: c.request("GET\r\nX: y", "/x"), InvalidHeader, "invalid method"),
    ("empty-method", lambda c: c.request("", "/x"), InvalidHeader, "invalid method"),
    ("method-not-str", lambda c: c.request(None, "/x"), TypeError, "method must be a str or bytes"),
    ("unterminated-ipv6-url", lambda c: c.request("GET", "http://[::1/y"), InvalidURL, "cannot parse url"),
    ("invalid-idna-host", lambda c: c.request("GET", "https://b\u00fccher..example/"), InvalidURL, "host"),
    ("putrequest-method", lambda c: c.putrequest("GE T", "/x"), InvalidHeader, "invalid method"),
    ("putrequest-url", lambda c: c.putrequest("GET", "http://[::1/y"), InvalidURL, "cannot parse url"),
    ("url-not-str", lambda c: c.request("GET", 42), TypeError, "url must be a str or bytes"),
    ("header-line-not-pair", lambda c: c.request("GET", "/x", headers=["X-A: 1"]), TypeError, "pair"),
    ("headers-str", lambda c: c.request("GET", "/x", headers="X-A: 1"), TypeError, "headers must be"),
    ("header-value-none", lambda c: c.request("GET", "/x", headers={"x-a": None}), TypeError, "NoneType"),
    ("header-value-bool", lambda c: c.request("GET", "/x", headers={"x-a": True}), TypeError, "bool"),
    ("header-value-float", lambda c: c.request("GET", "/x", headers={"x-a": 1.5}), TypeError, "float"),
    ("header-name-int", lambda c: c.request("GET", "/x", headers={1: "x"}), TypeError, "header names"),
    ("header-name-space", lambda c: c.request("GET", "/x", headers={"x a": "1"}), InvalidHeader, "token"),
    ("header-name-colon", lambda c: c.request("GET", "/x", headers={"x:a": "1"}), InvalidHeader, "token"),
    ("header-name-empty", lambda c: c.request("GET", "/x", headers={"": "1"}), InvalidHeader, "token"),
    (
        "header-name-non-ascii",
        lambda c: c.request("GET", "/x", headers={"x-\u00e9": "1"}),
        InvalidHeader,
        "token",
    ),
    (
        "pseudo-header",
        lambda c: c.request("GET", "/x", headers={":authority": "evil"}),
        InvalidHeader,
        "pseudo",
    ),
    (
        "pseudo-header-path",
        lambda c: c.request("GET", "/x", headers=[(b":path", b"/y")]),
        InvalidHeader,
        "pseudo",
    ),
    ("value-crlf", lambda c: c.request("GET", "/x", headers={"x-a": "1\r\nx-b: 2"}), InvalidHeader, "CR, LF"),
    ("value-nul", lambda c: c.request("GET", "/x", headers={"x-a": b"1\x002"}), InvalidHeader, "NUL"),
    ("value-control", lambda c: c.request("GET", "/x", headers={"x-a": "1\x012"}), InvalidHeader, "control"),
    ("host-crlf", lambda c: c.request("GET", "/x", headers={"host": "a\r\nb"}), InvalidHeader, "CR, LF"),
    ("host-space", lambda c: c.request("GET", "/x", headers={"host": "a b"}), InvalidHeader, "invalid host"),
    (
        "host-bad-port",
        lambda c: c.request("GET", "/x", headers={"host": "a.example:"}),
        InvalidHeader,
        "port",
    ),
    ("host-empty", lambda c: c.request("GET", "/x", headers={"host": ""}), InvalidHeader, "invalid host"),
    (
        "two-hosts",
        lambda c: c.request("GET", "/x", headers=[("host", "a.example"), ("Host", "b.example")]),
        InvalidHeader,
        "second host",
    ),
    (
        "host-userinfo",
        lambda c: c.request("GET", "/x", headers={"host": "u@a"}),
        InvalidHeader,
        "invalid host",
    ),
]
for _bad_length in ["1_0", "+10", "-1", "0x10", "\u0661\u0660", "10, 10", "1e1", "ten"]:
    BAD_CALLS.append(
        (
            f"content-length-{_bad_length.encode('unicode_escape').decode()}",
            lambda c, v=_bad_length: c.request(
                "POST", "/x", body=b"0123456789", headers={"content-length": v}
            ),
            InvalidHeader,
            "content-length",
        )
    )


@pytest.mark.parametrize(
    ("call", "expected", "match"), [case[1:] for case in BAD_CALLS], ids=[case[0] for case in BAD_CALLS]
)
def test_bad_request_arguments_are_refused_before_sending(
    served: tuple[Connection, Recorded, str],
    call: Callable[[Connection], object],
    expected: type[BaseException],
    match: str,
) -> None:
    conn, recorded, _ = served
    error = _assert_refused_and_usable(conn, recorded, lambda: call(conn), expected)
    assert match in str(error)
    # Documented: a hyper error, or TypeError/ValueError for a wrong argument type.
    assert isinstance(error, (HyperError, TypeError))


def test_non_ascii_path_is_percent_encoded(served: tuple[Connection, Recorded, str]) -> None:
    # Issue 12 item 8: HTTP/2 sent the raw UTF-8 bytes in :path (HTTP/1.1 refused them).
    conn, recorded, _ = served
    conn.request("GET", "/caf\u00e9?q=\u00fc")
    assert conn.getresponse().read() == b"GET /caf%C3%A9?q=%C3%BC"
    conn.request("GET", "/already%20escaped/\u00e9")
    assert conn.getresponse().read() == b"GET /already%20escaped/%C3%A9"


def test_int_header_values_and_surrounding_whitespace(served: tuple[Connection, Recorded, str]) -> None:
    conn, recorded, _ = served
    conn.request(
        "POST", "/x", body=b"0123456789", headers={"x-int": 7, "x-padded": "  v  ", "content-length": " 10"}
    )
    assert conn.getresponse().read() == b"POST /x"
    _, _, fields = recorded.requests[-1]
    assert fields["x-int"] == "7"
    assert fields["x-padded"] == "v"  # RFC 9110 5.5: the whitespace is not part of the value
    assert fields["content-length"] == "10"


def test_headers_as_dict_of_lists(served: tuple[Connection, Recorded, str]) -> None:
    # dict(HTTPHeaderMap) maps each name to a list of values: one field per value.
    conn, recorded, _ = served
    conn.request("GET", "/x", headers={"x-multi": [b"a", "b"]})
    assert conn.getresponse().read() == b"GET /x"


def test_international_host_header_is_sent_in_idna_form(served: tuple[Connection, Recorded, str]) -> None:
    conn, recorded, _ = served
    conn.request("GET", "/x", headers={"host": "b\u00fccher.example:8080"})
    assert conn.getresponse().read() == b"GET /x"
    _, _, fields = recorded.requests[-1]
    assert fields.get(":authority", fields.get("host")) == "xn--bcher-kva.example:8080"


@pytest.mark.parametrize(
    "factory", [HTTP20Connection, HTTP11Connection, HTTPConnection], ids=["h2", "h11", "negotiating"]
)
@pytest.mark.parametrize(
    "host", ["[zz]:443", "[zz]", "b\u00fccher..example", "a..b", "a" * 64 + ".example", "h%st"]
)
def test_bad_host_is_refused_at_construction(factory: Callable[..., Connection], host: str) -> None:
    # Issue 12 item 8: HTTP20Connection('[zz]:443') was accepted (and
    # failed at connect with a bare error, as did invalid IDNA names).
    with pytest.raises(InvalidURL):
        factory(host)


@pytest.mark.parametrize(
    "factory", [HTTP20Connection, HTTP11Connection, HTTPConnection], ids=["h2", "h11", "negotiating"]
)
def test_international_host_is_kept_in_idna_form(factory: Callable[..., Connection]) -> None:
    conn = factory("b\u00fccher.example:8443")
    assert conn.host == "xn--bcher-kva.example"
    assert conn.authority == "xn--bcher-kva.example:8443"


# --- 9. timeouts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory", [HTTP20Connection, HTTP11Connection, HTTPConnection], ids=["h2", "h11", "negotiating"]
)
@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        ("5", TypeError),
        (b"5", TypeError),
        (True, TypeError),
        ([1, 2], TypeError),
        ((1, "2"), TypeError),
        (-1, ValueError),
        (0, ValueError),
        ((1, 2, 3), ValueError),
        ((1,), ValueError),
        (math.nan, ValueError),
        ((1, -2), ValueError),
        (1e300, ValueError),
    ],
)
def test_bad_timeout_fails_at_construction(
    factory: Callable[..., Connection], timeout: object, expected: type[BaseException]
) -> None:
    # Issue 12 item 9: these were accepted and failed at the first request.
    with pytest.raises(expected, match="timeout"):
        factory("127.0.0.1:9", timeout=timeout)


@pytest.mark.parametrize(
    ("timeout", "split"),
    [(None, (None, None)), (5, (5, 5)), (0.5, (0.5, 0.5)), ((1, None), (1, None)), (math.inf, (None, None))],
)
def test_good_timeouts_are_kept(timeout: object, split: tuple[object, object]) -> None:
    conn = HTTP20Connection("127.0.0.1:9", timeout=timeout)
    assert (conn.connect_timeout, conn.read_timeout) == split


# --- 10. bytes method and path, as hyper 0.7 accepted ---------------------------------------------


def test_bytes_method_and_path(served: tuple[Connection, Recorded, str]) -> None:
    conn, recorded, address = served
    conn.request(b"GET", b"/bytes?q=1")
    assert conn.getresponse().read() == b"GET /bytes?q=1"
    conn.request(b"POST", b"/bytes", body=b"x")
    assert conn.getresponse().read() == b"POST /bytes"
    conn.request(b"GET", f"http://{address}/absolute".encode())
    assert conn.getresponse().read() == b"GET /absolute"
    assert recorded.requests[1][2]["content-length"] == "1"


def test_putheader_host_replaces_the_connections_host(served: tuple[Connection, Recorded, str]) -> None:
    # A request names one host (RFC 9112 3.2): a put host is not a second one.
    conn, recorded, address = served
    conn.putrequest("GET", "/host")
    conn.putheader("host", "a.example")
    conn.putheader("Host", "b.example:8080")
    conn.endheaders(final=True)
    assert conn.getresponse().read() == b"GET /host"
    _, _, fields = recorded.requests[-1]
    assert fields.get(":authority", fields.get("host")) == "b.example:8080"


def test_bytes_method_and_path_in_putrequest(served: tuple[Connection, Recorded, str]) -> None:
    conn, recorded, _ = served
    conn.putrequest(b"DELETE", b"/put")
    conn.putheader(b"x-a", b"1")
    conn.endheaders(final=True)
    assert conn.getresponse().read() == b"DELETE /put"
    assert recorded.requests[-1][2]["x-a"] == "1"


# --- putheader checks at once and leaves nothing behind -------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("x-a", "1\r\nx-injected: yes", InvalidHeader),
        ("x-a", b"1\n", InvalidHeader),
        ("x-a", "1\x00", InvalidHeader),
        ("x\r\na", "1", InvalidHeader),
        ("x a", "1", InvalidHeader),
        (":method", "POST", InvalidHeader),
        ("content-length", "1_0", InvalidHeader),
        ("host", "a b", InvalidHeader),
        ("x-a", None, TypeError),
        (None, "1", TypeError),
    ],
)
def test_putheader_refuses_at_once_and_leaves_nothing_behind(
    served: tuple[Connection, Recorded, str], name: object, value: object, expected: type[BaseException]
) -> None:
    # Before: a CR/LF value was stored and refused only by endheaders().
    conn, recorded, _ = served
    _good_request(conn, "/before")
    conn.putrequest("GET", "/put")
    conn.putheader("x-first", "kept")
    with pytest.raises(expected):
        conn.putheader(name, value)
    conn.putheader("x-last", "kept")
    conn.endheaders(final=True)
    assert conn.getresponse().read() == b"GET /put"
    _good_request(conn, "/after")
    assert recorded.paths() == ["/before", "/put", "/after"]
    _, _, fields = recorded.requests[1]
    assert fields["x-first"] == fields["x-last"] == "kept"
    assert not any("injected" in key or "injected" in value for key, value in fields.items())
    if recorded.streams:
        assert recorded.streams == [1, 3, 5]


# --- end to end against real servers ----------------------------------------------------------------


def _client_context(server: ServerInfo) -> ssl.SSLContext:
    return hyper.tls.init_context(cert_path=server.ca_file)


def _real_connections(server: ServerInfo) -> list[Connection]:
    kwargs: dict[str, Any] = {"timeout": 30}
    if server.secure:
        return [
            HTTP20Connection(server.authority, ssl_context=_client_context(server), **kwargs),
            HTTP11Connection(
                server.authority,
                ssl_context=hyper.tls.init_context(cert_path=server.ca_file, alpn=("http/1.1",)),
                **kwargs,
            ),
            HTTPConnection(server.authority, secure=True, ssl_context=_client_context(server), **kwargs),
        ]
    return [
        HTTP20Connection(server.authority, secure=False, **kwargs),
        HTTP11Connection(server.authority, secure=False, **kwargs),
        HTTPConnection(server.authority, secure=False, **kwargs),
    ]


def _echo(conn: Connection, path: str, method: str = "GET", **kwargs: Any) -> dict[str, Any]:
    stream_id = conn.request(method, path, **kwargs)
    response = conn.getresponse(stream_id)
    assert response.status == 200
    echoed: dict[str, Any] = json.loads(response.read())
    echoed["stream_id"] = stream_id
    return echoed


REAL_BAD_CALLS: list[tuple[Callable[[Connection, ServerInfo], object], type[BaseException]]] = [
    (lambda c, s: c.request("POST", "/headers-echo", body={"a": 1}), TypeError),
    (lambda c, s: c.request("GET", "https://other-host.example/headers-echo"), HostChangedError),
    (
        lambda c, s: c.request("GET", f"{'http' if s.secure else 'https'}://{s.authority}/headers-echo"),
        HostChangedError,
    ),
    (lambda c, s: c.request("G\u00c9T", "/headers-echo"), InvalidHeader),
    (lambda c, s: c.request("GET", "http://[::1/y"), InvalidURL),
    (lambda c, s: c.request("GET", "/headers-echo", headers=["X-A: 1"]), TypeError),
    (
        lambda c, s: c.request(
            "POST", "/headers-echo", body=b"0123456789", headers={"content-length": "1_0"}
        ),
        InvalidHeader,
    ),
    (lambda c, s: c.request("GET", "/headers-echo", headers={":authority": "other"}), InvalidHeader),
    (lambda c, s: c.putrequest("GET", "https://other-host.example/"), HostChangedError),
]


@pytest.mark.parametrize("which", ["hypercorn_server", "hypercorn_h2c_server"])
def test_real_servers_see_only_the_good_requests(which: str, request: pytest.FixtureRequest) -> None:
    server: ServerInfo = request.getfixturevalue(which)
    for conn in _real_connections(server):
        with conn:
            first = _echo(conn, "/headers-echo")
            for bad_call, expected in REAL_BAD_CALLS:
                with pytest.raises(expected):
                    bad_call(conn, server)
            # Bytes method and path, a non-ASCII path, a same-origin absolute URL.
            second = _echo(conn, f"{server.scheme}://{server.authority}/headers-echo?caf\u00e9")
            third = _echo(conn, b"/headers-echo", method=b"GET")  # type: ignore[arg-type]
            assert first["path"] == second["path"] == third["path"] == "/headers-echo"
            assert second["query_string"] == "caf%C3%A9"
            if conn.version == "HTTP/2" and first["stream_id"] == 1:
                # Nothing was opened between the good requests: their stream ids follow on.
                assert (second["stream_id"], third["stream_id"]) == (3, 5)

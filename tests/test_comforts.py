"""The http.client comforts on both response classes, and what InvalidStreamID says.

getheader/getheaders, readinto, iteration, url/authority and version, run
against real servers (nginx over HTTP/2 and HTTP/1.1 with TLS, and in
cleartext).
"""

from __future__ import annotations

import array

import pytest
import requests

import hyper
import hyper.tls
from hyper.common.stream_ids import checked_stream_id, unknown_stream_id
from hyper.contrib import HTTP20Adapter
from hyper.headers import HTTPHeaderMap
from tests.servers import ServerInfo, docroot_content
from tests.test_push import PUSHED, push_docroot, pushing_nghttpd, tls_connect  # noqa: F401 - fixtures

Connection = type[hyper.HTTP20Connection] | type[hyper.HTTP11Connection]


def connect(info: ServerInfo, cls: Connection) -> hyper.HTTP20Connection | hyper.HTTP11Connection:
    context = hyper.tls.init_context(cert_path=info.ca_file) if info.secure else None
    return cls(info.host, info.port, secure=info.secure, ssl_context=context, timeout=20)


@pytest.fixture(params=["h2", "http/1.1"])
def server_and_class(
    request: pytest.FixtureRequest, nginx_server: ServerInfo, nginx_http11_server: ServerInfo
) -> tuple[ServerInfo, Connection]:
    """nginx over TLS through HTTP20Connection, and nginx (HTTP/1.1 only) through HTTP11Connection."""
    if request.param == "h2":
        return nginx_server, hyper.HTTP20Connection
    return nginx_http11_server, hyper.HTTP11Connection


# -- getheader / getheaders -----------------------------------------------------------


def test_getheader_and_getheaders_as_http_client(server_and_class: tuple[ServerInfo, Connection]) -> None:
    info, cls = server_and_class
    with connect(info, cls) as conn:
        response = conn.getresponse(conn.request("GET", "/hello.txt"))
        # Any case, str out; nginx gzips text for clients that accept it.
        assert response.getheader("Content-Encoding") == "gzip"
        assert response.getheader(b"content-type") == "text/plain"
        assert response.getheader("x-absent") is None
        assert response.getheader("x-absent", "fallback") == "fallback"
        fields = response.getheaders()
        assert all(isinstance(name, str) and isinstance(value, str) for name, value in fields)
        assert ("server", "nginx") in [(name.lower(), value.split("/")[0]) for name, value in fields]
        # The str view and the bytes view describe the same fields.
        assert [(n.encode(), v.encode()) for n, v in fields] == response.headers.items()
        assert response.read() == docroot_content("hello.txt")


def test_getheader_joins_repeated_fields_but_set_cookie_is_kept_apart() -> None:
    # The same code serves both classes (DecodedBodyReader): checked here on
    # a header map as a response holds it, with a value of each kind.
    cookie_1 = "id=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT"
    headers = HTTPHeaderMap(
        [("Vary", "accept"), ("set-cookie", cookie_1), ("vary", "cookie"), ("set-cookie", "b=2")]
    )
    response = _response_with(headers)
    assert response.getheader("vary") == "accept, cookie"
    assert response.getheader("set-cookie") == f"{cookie_1}, b=2"  # as http.client does
    assert response.headers.get_all_str("set-cookie") == [cookie_1, "b=2"]
    assert response.getheaders() == [
        ("Vary", "accept"),
        ("set-cookie", cookie_1),
        ("vary", "cookie"),
        ("set-cookie", "b=2"),
    ]


def test_getheader_decodes_utf8_and_falls_back_to_latin1() -> None:
    headers = HTTPHeaderMap([(b"content-disposition", "attachment; filename=\u00e9t\u00e9.txt".encode())])
    headers.add(b"x-legacy", b"caf\xe9")  # latin-1, not valid UTF-8
    response = _response_with(headers)
    assert response.getheader("content-disposition") == "attachment; filename=\u00e9t\u00e9.txt"
    assert response.getheader("x-legacy") == "caf\u00e9"


def _response_with(headers: HTTPHeaderMap) -> hyper.HTTP11Response:
    """A response object holding ``headers`` only, for the header accessors."""
    response = hyper.HTTP11Response.__new__(hyper.HTTP11Response)
    response.headers = headers
    return response


# -- readinto and iteration -------------------------------------------------------------


def test_readinto_fills_the_buffer_with_decoded_bytes_then_returns_zero(
    server_and_class: tuple[ServerInfo, Connection],
) -> None:
    info, cls = server_and_class
    expected = docroot_content("hello.txt")
    with connect(info, cls) as conn:
        response = conn.getresponse(conn.request("GET", "/hello.txt"))
        assert response.getheader("content-encoding") == "gzip"  # decoding is exercised
        buffer = bytearray(7)
        got = bytearray()
        while True:
            count = response.readinto(buffer)
            if count == 0:
                break
            # io contract: a short count only at the end.
            assert count == len(buffer) or len(got) + count == len(expected)
            got += buffer[:count]
        assert bytes(got) == expected
        assert response.readinto(buffer) == 0


def test_readinto_takes_any_writable_buffer(nginx_server: ServerInfo) -> None:
    expected = docroot_content("1k.bin")
    with connect(nginx_server, hyper.HTTP20Connection) as conn:
        response = conn.getresponse(conn.request("GET", "/1k.bin"))
        words = array.array("H", [0] * 128)  # 256 bytes seen as 128 unsigned shorts
        assert response.readinto(words) == 256
        assert words.tobytes() == expected[:256]
        view = memoryview(bytearray(2048))
        assert response.readinto(view[:100]) == 100
        assert bytes(view[:100]) == expected[256:356]
        assert response.readinto(bytearray(0)) == 0  # an empty buffer reads nothing
        with pytest.raises(TypeError):
            response.readinto(b"read-only")  # type: ignore[arg-type]
        rest = bytearray(2048)
        count = response.readinto(rest)
        assert rest[:count] == expected[356:]


def test_iterating_a_response_yields_its_decoded_body(
    server_and_class: tuple[ServerInfo, Connection],
) -> None:
    info, cls = server_and_class
    with connect(info, cls) as conn:
        response = conn.getresponse(conn.request("GET", "/hello.txt"))
        chunks = list(response)
        assert all(chunk for chunk in chunks)  # no empty pieces
        assert b"".join(chunks) == docroot_content("hello.txt")
        big = conn.getresponse(conn.request("GET", "/big.bin"))
        total = 0
        for chunk in big:
            total += len(chunk)
        assert total == 64 * 1024 * 1024
        assert list(big) == []  # read to its end: nothing more


def test_iterating_a_gzip_body_decodes_it_as_read_does(nginx_h2c_server: ServerInfo) -> None:
    with connect(nginx_h2c_server, hyper.HTTP20Connection) as conn:
        plain = conn.getresponse(
            conn.request("GET", "/hello.txt", headers={"accept-encoding": "identity"})
        ).read()
        response = conn.getresponse(conn.request("GET", "/hello.txt"))
        assert response.getheader("content-encoding") == "gzip"
        assert b"".join(response) == plain == docroot_content("hello.txt")


# -- version --------------------------------------------------------------------------


def test_http11_response_version(nginx_http11_server: ServerInfo) -> None:
    with connect(nginx_http11_server, hyper.HTTP11Connection) as conn:
        response = conn.getresponse(conn.request("GET", "/hello.txt"))
        assert response.version == "HTTP/1.1"
        response.read()


def test_http20_response_version(nginx_server: ServerInfo) -> None:
    with connect(nginx_server, hyper.HTTP20Connection) as conn:
        response = conn.getresponse(conn.request("GET", "/hello.txt"))
        response.read()
        assert response.version == "HTTP/2"


def test_requests_raw_version_through_the_adapter(nginx_server: ServerInfo) -> None:
    with requests.Session() as session:
        session.trust_env = False
        session.mount("https://", HTTP20Adapter())
        response = session.get(nginx_server.url("/hello.txt"), verify=nginx_server.ca_file, timeout=20)
        assert response.raw._original_response.version == 20
        assert response.raw.version == 20  # urllib3's number, as requests users read it


# -- url and authority -------------------------------------------------------------------


def test_url_and_authority_name_the_request(server_and_class: tuple[ServerInfo, Connection]) -> None:
    info, cls = server_and_class
    with connect(info, cls) as conn:
        response = conn.getresponse(conn.request("GET", "/hello.txt?x=1"))
        response.read()
        assert response.authority == f"127.0.0.1:{info.port}"
        assert response.url == f"https://127.0.0.1:{info.port}/hello.txt?x=1"
        # A path hyper had to percent-encode shows as it was sent.
        other = conn.getresponse(conn.request("GET", "/caf\u00e9"))
        other.read()
        assert other.url == f"https://127.0.0.1:{info.port}/caf%C3%A9"


def test_url_of_a_negotiated_cleartext_connection(nginx_http11_plain_server: ServerInfo) -> None:
    info = nginx_http11_plain_server
    with hyper.HTTPConnection(info.host, info.port, secure=False, timeout=20) as conn:
        response = conn.getresponse(conn.request("GET", "/hello.txt"))
        response.read()
        assert response.url == f"http://127.0.0.1:{info.port}/hello.txt"


def test_url_of_pushed_responses_is_the_promised_request(request: pytest.FixtureRequest) -> None:
    # tests.test_push's pushing nghttpd (the fixture is imported above).
    with tls_connect(request.getfixturevalue("pushing_nghttpd")) as conn:
        page = conn.request("GET", "/page.html")
        pushes = list(conn.get_pushes(page, capture_all=True))
        assert sorted(push.path for push in pushes) == sorted(PUSHED)
        for push in pushes:
            response = push.getresponse()
            assert response.read() == PUSHED[push.path]
            assert response.url == f"https://{conn.authority}{push.path}"
            assert response.authority == conn.authority
            assert response.version == "HTTP/2"
        conn.getresponse(page).read()


def test_url_composition() -> None:
    response = _response_with(HTTPHeaderMap())
    assert response.url is None and response.authority is None  # nothing recorded
    response.record_request("https", "[::1]:8443", "/a?b=1")
    assert response.url == "https://[::1]:8443/a?b=1"
    assert response.authority == "[::1]:8443"
    response.record_request("http", "example.org", "http://example.org/via-proxy")
    assert response.url == "http://example.org/via-proxy"  # absolute form, as sent to a proxy
    response.record_request("https", "example.org", "*")
    assert response.url == "https://example.org"  # OPTIONS *


# -- InvalidStreamID -----------------------------------------------------------------


def test_stream_id_messages_say_what_happened() -> None:
    taken = unknown_stream_id(13, next_id=15, odd_only=True)
    assert str(taken).startswith("the response to stream 13 was already taken")
    assert taken.stream_id == 13 and isinstance(taken, LookupError)
    never = unknown_stream_id(13, next_id=13, odd_only=True)
    assert str(never) == "no request was sent on stream 13"
    assert "odd" in str(unknown_stream_id(4, next_id=15, odd_only=True))
    assert str(unknown_stream_id(4, next_id=15, odd_only=False)).startswith("the response to stream 4 was")
    for bad in (0, -1):
        assert (
            str(unknown_stream_id(bad, next_id=15, odd_only=False)) == f"no request was sent on stream {bad}"
        )


@pytest.mark.parametrize("value", ["1", 1.0, None, True, b"1", [1]])
def test_non_int_stream_ids_are_type_errors(value: object) -> None:
    with pytest.raises(TypeError, match="stream_id must be an int"):
        checked_stream_id(value)
    assert checked_stream_id(7) == 7


def test_getresponse_says_taken_or_never_sent(server_and_class: tuple[ServerInfo, Connection]) -> None:
    info, cls = server_and_class
    with connect(info, cls) as conn:
        stream_id = conn.request("GET", "/hello.txt")
        conn.getresponse(stream_id).read()
        with pytest.raises(
            hyper.InvalidStreamID, match=f"the response to stream {stream_id} was already taken"
        ):
            conn.getresponse(stream_id)
        with pytest.raises(hyper.InvalidStreamID, match="no request was sent on stream 99"):
            conn.getresponse(99)
        with pytest.raises(TypeError, match="stream_id must be an int"):
            conn.getresponse(str(stream_id))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="stream_id must be an int"):
            conn.getresponse(True)  # type: ignore[arg-type]
        # The connection is unharmed by the mistakes.
        assert conn.getresponse(conn.request("GET", "/hello.txt")).read() == docroot_content("hello.txt")


def test_every_stream_id_argument_refuses_non_ints(server_and_class: tuple[ServerInfo, Connection]) -> None:
    info, cls = server_and_class
    with connect(info, cls) as conn:
        stream_id = conn.putrequest("POST", "/upload")
        with pytest.raises(TypeError, match="stream_id must be an int"):
            conn.endheaders(stream_id=str(stream_id))  # type: ignore[arg-type]
        conn.endheaders(stream_id=stream_id)
        with pytest.raises(TypeError, match="stream_id must be an int"):
            conn.send(b"data", final=True, stream_id=float(stream_id))  # type: ignore[arg-type]
        conn.send(b"data", final=True, stream_id=stream_id)
        assert conn.getresponse(stream_id).status == 200
    with hyper.HTTP20Connection(info.host, info.port, secure=True, enable_push=True, timeout=20) as h2:
        with pytest.raises(TypeError, match="stream_id must be an int"):
            list(h2.get_pushes("1"))  # type: ignore[arg-type]

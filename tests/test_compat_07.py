"""hyper 0.7's public API on this hyper: each difference restored, or kept with a reason.

docs/migration.rst lists the same decisions for users; each test here names
the one it pins down. Real servers (hypercorn, nginx) over TLS with the test CA.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import pytest
import requests
from h2.settings import SettingCodes

import hyper
import hyper.common.exceptions
import hyper.exceptions
import hyper.http20.exceptions
import hyper.tls
from hyper.contrib import HTTP20Adapter
from hyper.http20.settings import RemoteSettings
from tests.servers import ServerInfo

TIMEOUT = 30
H2_UNLIMITED = 2**32 + 1


def _h2(server: ServerInfo, **kwargs: object) -> hyper.HTTP20Connection:
    context = hyper.tls.init_context(cert_path=server.ca_file)
    return hyper.HTTP20Connection("localhost", server.port, ssl_context=context, timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]


# -- import paths (restored: thin aliases) ---------------------------------------


def test_0_7_import_paths_are_aliases_of_the_real_classes() -> None:
    from hyper.common.connection import HTTP20Connection, HTTPConnection
    from hyper.common.headers import HTTPHeaderMap

    assert HTTPHeaderMap is hyper.HTTPHeaderMap
    assert (HTTPConnection, HTTP20Connection) == (hyper.HTTPConnection, hyper.HTTP20Connection)
    common = hyper.common.exceptions
    assert common.MissingCertFile is hyper.exceptions.MissingCertFile
    assert common.ConnectionResetError is hyper.ConnectionTerminated
    assert common.ChunkedDecodeError is common.InvalidResponseError is hyper.ProtocolError
    assert common.SocketError is hyper.TransportError
    assert common.ProxyError is hyper.ProxyError
    http20 = hyper.http20.exceptions
    assert http20.HTTP20Error is hyper.HyperError
    assert http20.StreamResetError is hyper.StreamResetError
    assert http20.ProtocolError is http20.HPACKDecodingError is hyper.ProtocolError
    assert http20.HPACKEncodingError is hyper.InvalidHeader
    assert http20.ConnectionError is hyper.ConnectionTerminated
    assert hyper.tls.H2_NPN_PROTOCOLS == ["h2"]
    assert hyper.tls.SUPPORTED_NPN_PROTOCOLS == ["h2", "http/1.1"]
    assert hyper.tls.H2_NPN_PROTOCOLS + ["http/1.1"] == hyper.tls.SUPPORTED_NPN_PROTOCOLS
    assert (hyper.tls.NPN_PROTOCOL, hyper.tls.H2C_PROTOCOL) == ("h2", "h2c")
    for name in [
        "HTTPConnection",
        "HTTP20Connection",
        "HTTP20Response",
        "HTTP20Push",
        "HTTP11Connection",
        "HTTP11Response",
    ]:
        assert name in hyper.__all__


def test_http20_error_catches_what_hyper_raises(hypercorn_server: ServerInfo) -> None:
    """0.7 code catching ``HTTP20Error`` still catches hyper's errors (here a reset stream)."""
    with _h2(hypercorn_server) as conn:
        stream_id = conn.request("GET", "/headers-echo")
        conn.close()
        with pytest.raises(hyper.http20.exceptions.HTTP20Error):
            conn.get_response(stream_id)


# -- init_context (restored: h2 + http/1.1, MissingCertFile) ------------------------


def test_init_context_offers_h2_and_http11_and_keeps_0_7_protections(ca_file: str) -> None:
    context = hyper.tls.init_context(cert_path=ca_file)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.options & ssl.OP_NO_COMPRESSION
    # Tighter than 0.7 (which allowed anything OpenSSL did): RFC 9113 9.2.
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert hyper.tls.DEFAULT_ALPN == ("h2", "http/1.1")


def test_init_context_works_for_every_connection_class(
    hypercorn_server: ServerInfo, nginx_http11_server: ServerInfo
) -> None:
    context = hyper.tls.init_context(cert_path=nginx_http11_server.ca_file)
    # HTTPConnection falls back to HTTP/1.1 with a server that only speaks it...
    with hyper.HTTPConnection(
        "localhost", nginx_http11_server.port, ssl_context=context, timeout=TIMEOUT
    ) as conn:
        conn.request("GET", "/hello.txt")
        assert conn.get_response().status == 200
        assert conn.version == "HTTP/1.1"
    # ...HTTP11Connection handshakes with it too...
    with hyper.HTTP11Connection(
        "localhost", nginx_http11_server.port, ssl_context=context, timeout=TIMEOUT
    ) as h1:
        h1.request("GET", "/hello.txt")
        assert h1.get_response().status == 200
    # ...and HTTP20Connection gets HTTP/2 from a server that has it.
    with hyper.HTTP20Connection(
        "localhost", hypercorn_server.port, ssl_context=context, timeout=TIMEOUT
    ) as h2:
        h2.request("GET", "/headers-echo")
        assert h2.get_response().status == 200
        assert h2.negotiated_protocol == "h2"


def test_missing_ca_file_raises_missing_cert_file_naming_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-ca.pem")
    with pytest.raises(hyper.exceptions.MissingCertFile) as raised:
        hyper.tls.init_context(cert_path=missing)
    error = raised.value
    assert isinstance(error, hyper.HyperError) and isinstance(error, FileNotFoundError)
    assert error.filename == missing and missing in str(error)


@pytest.mark.parametrize("which", ["single", "pair-cert", "pair-key"])
def test_missing_client_cert_raises_missing_cert_file(tmp_path: Path, ca_file: str, which: str) -> None:
    missing = str(tmp_path / "missing.pem")
    cert: str | tuple[str, str] = {
        "single": missing,
        "pair-cert": (missing, ca_file),
        "pair-key": (ca_file, missing),
    }[which]
    with pytest.raises(hyper.common.exceptions.MissingCertFile, match="missing.pem") as raised:
        hyper.tls.init_context(cert_path=ca_file, cert=cert)
    assert raised.value.filename == missing


# -- HTTP20Connection (restored: _conn, str ping, close(error_code=), **kwargs) ------


def test_conn_compat_property_connects_and_reports_the_servers_settings(hypercorn_server: ServerInfo) -> None:
    with _h2(hypercorn_server) as conn:
        assert conn.negotiated_protocol is None  # not connected yet
        with conn._conn as h2conn:
            limit = h2conn.remote_settings.max_concurrent_streams
            # The block holds no lock: using the connection inside cannot deadlock.
            conn.request("GET", "/headers-echo")
            assert conn.get_response().status == 200
        assert conn.negotiated_protocol == "h2"
        # The server's own limit (hypercorn's default), not h2's "unlimited" placeholder.
        assert 0 < limit < H2_UNLIMITED
        assert conn.max_concurrent_streams == limit
        settings = conn.remote_settings
        assert isinstance(settings, RemoteSettings)
        assert settings[SettingCodes.MAX_CONCURRENT_STREAMS] == limit
        assert settings.max_frame_size >= 16384


def test_conn_compat_property_is_safe_from_many_threads(hypercorn_server: ServerInfo) -> None:
    errors: list[Exception] = []
    limits: list[int] = []
    start = threading.Barrier(8)

    def worker() -> None:
        try:
            start.wait(TIMEOUT)
            for _ in range(20):
                with conn._conn as h2conn:
                    limits.append(h2conn.remote_settings.max_concurrent_streams)
                conn.request("GET", "/headers-echo")
                conn.get_response().read()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    with _h2(hypercorn_server) as conn:
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT * 4)
    assert errors == []
    assert len(limits) == 160 and len(set(limits)) == 1


def test_ping_accepts_str_as_0_7_did_and_bytes(hypercorn_server: ServerInfo) -> None:
    with _h2(hypercorn_server) as conn:
        assert conn.ping("-" * 8) >= 0
        assert conn.ping(b"\x00" * 8) >= 0
        assert conn.ping(bytearray(b"12345678")) >= 0
        with pytest.raises(ValueError, match="8 bytes"):
            conn.ping("\u00e9" * 8)  # 16 bytes in UTF-8
        with pytest.raises(TypeError):
            conn.ping(8)  # type: ignore[arg-type]
    with hyper.HTTPConnection(
        "localhost",
        hypercorn_server.port,
        ssl_context=hyper.tls.init_context(cert_path=hypercorn_server.ca_file),
        timeout=TIMEOUT,
    ) as negotiating:
        assert negotiating.ping("-" * 8) >= 0


def test_close_takes_error_code_like_0_7(hypercorn_server: ServerInfo) -> None:
    conn = _h2(hypercorn_server)
    conn.connect()
    conn.close(error_code=0)
    # A closed connection reconnects for the next request, as before.
    conn.request("GET", "/headers-echo")
    assert conn.get_response().status == 200
    conn.close(error_code=2)
    with hyper.HTTPConnection(
        "localhost", hypercorn_server.port, secure=True, timeout=TIMEOUT
    ) as negotiating:
        negotiating.close(error_code=0)


@pytest.mark.parametrize("cls", [hyper.HTTP20Connection, hyper.HTTP11Connection, hyper.HTTPConnection])
def test_unknown_keyword_arguments_are_ignored_with_a_warning(cls: type) -> None:
    """0.7 swallowed them silently; they still work, with a DeprecationWarning naming them."""
    with pytest.warns(DeprecationWarning, match="network_buffer_sizes"):
        conn = cls("example.org", 443, network_buffer_sizes=1)
    conn.close()


# -- default ports (HTTP11Connection restored; HTTPConnection kept) -------------------


def test_http11_connection_default_port_is_80_as_in_0_7() -> None:
    bare = hyper.HTTP11Connection("example.org")
    assert (bare.port, bare.secure) == (80, False)
    # 0.7 spoke TLS to port 80 here (a bug): asking for TLS means 443.
    assert hyper.HTTP11Connection("example.org", secure=True).port == 443
    with_context = hyper.HTTP11Connection("example.org", ssl_context=ssl.create_default_context())
    assert (with_context.port, with_context.secure) == (443, True)
    assert hyper.HTTP11Connection("example.org:8080").port == 8080


def test_http20_connection_default_port_is_443_as_in_0_7() -> None:
    conn = hyper.HTTP20Connection("example.org")
    assert (conn.port, conn.secure) == (443, True)


def test_http_connection_default_is_https_not_0_7s_cleartext() -> None:
    """Kept: 0.7 defaulted to cleartext port 80, reaching HTTP/2 only by h2c Upgrade."""
    conn = hyper.HTTPConnection("example.org")
    assert (conn.port, conn.secure) == (443, True)
    cleartext = hyper.HTTPConnection("example.org", secure=False)
    assert (cleartext.port, cleartext.secure) == (80, False)


def test_secure_follows_a_given_context_on_any_port(ca_file: str) -> None:
    """Kept: 0.7 ignored ssl_context unless the port was 443 (a bug)."""
    context = hyper.tls.init_context(cert_path=ca_file)
    assert hyper.HTTP20Connection("example.org", 8443, ssl_context=context).secure is True


# -- responses ------------------------------------------------------------------------


def test_http2_response_reason_is_the_standard_phrase(hypercorn_server: ServerInfo) -> None:
    """Kept: 0.7 gave '' (HTTP/2 sends no reason phrase); the standard phrase reads better in logs."""
    with _h2(hypercorn_server) as conn:
        conn.request("GET", "/status/404")
        response = conn.get_response()
        assert (response.status, response.reason) == (404, "Not Found")
        assert response.read() == b""


def test_responses_work_as_context_managers_like_0_7(hypercorn_server: ServerInfo) -> None:
    with _h2(hypercorn_server) as conn:
        stream_id = conn.request("GET", "/multi-headers")
        with conn.get_response(stream_id) as response:
            assert response.headers[b"set-cookie"] == [b"a=1; Path=/", b"b=2, with comma; Path=/"]
            assert response.read() == b"multi\n"


def test_bytes_method_and_url_like_0_7(hypercorn_server: ServerInfo) -> None:
    with _h2(hypercorn_server) as conn:
        conn.request(b"GET", b"/headers-echo?via=bytes")
        assert conn.get_response().status == 200


# -- requests adapter (restored: _original_response, connections, get_connection) ------


def test_adapter_original_response_over_http2(hypercorn_server: ServerInfo) -> None:
    adapter = HTTP20Adapter()
    with requests.Session() as session:
        session.mount("https://", adapter)
        url = f"https://localhost:{hypercorn_server.port}/multi-headers"
        response = session.get(url, verify=hypercorn_server.ca_file, timeout=TIMEOUT)
        original = response.raw._original_response
        assert (original.version, original.status, original.reason) == (20, 200, "OK")
        assert original.msg.get_all("set-cookie") == ["a=1; Path=/", "b=2, with comma; Path=/"]
        assert ("x-list", "one, two") in original.msg._headers
        # The read side of http.client's HTTPMessage, as urllib3's has it.
        msg = original.msg
        assert msg.get("X-List") == msg["x-list"] == "one, two"
        assert msg["missing"] is None and msg.get("missing", "-") == "-"
        assert "set-cookie" in msg and "missing" not in msg
        assert msg.keys().count("set-cookie") == 2 and len(msg) == len(msg.items())
        assert list(msg) == msg.keys() and ("x-list", "one, two") in msg.items()
        # 0.7's pool interface: one connection, found by (host, port, scheme, cert).
        key = ("localhost", hypercorn_server.port, "https", None)
        assert list(adapter.connections) == [key]
        connection = adapter.connections[key]
        assert (
            adapter.get_connection(
                "localhost", hypercorn_server.port, "https", verify=hypercorn_server.ca_file, timeout=TIMEOUT
            )
            is connection
        )


def test_adapter_original_response_over_http11(nginx_http11_server: ServerInfo) -> None:
    with requests.Session() as session:
        session.mount("https://", HTTP20Adapter())
        url = f"https://localhost:{nginx_http11_server.port}/hello.txt"
        response = session.get(url, verify=nginx_http11_server.ca_file, timeout=TIMEOUT)
        original = response.raw._original_response
        assert (original.version, original.status, original.reason) == (11, 200, "OK")


# -- HTTPHeaderMap --------------------------------------------------------------------


def test_header_map_from_a_dict_is_handled_not_split_into_characters() -> None:
    """0.7 iterated a dict's keys as pairs: {'ab': 'x'} became [(b'a', b'b')]."""
    headers = hyper.HTTPHeaderMap({"ab": "x", "set-cookie": ["a=1", "b=2"]})
    assert headers.items() == [(b"ab", b"x"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    assert hyper.HTTPHeaderMap([("a", "1")], [("b", "2")], c="3").items() == [
        (b"a", b"1"),
        (b"b", b"2"),
        (b"c", b"3"),
    ]


@pytest.mark.parametrize("bad", [["ab"], "ab", [("a", "b", "c")], [b"xy"], 42])
def test_header_map_refuses_things_that_are_not_pairs(bad: object) -> None:
    with pytest.raises(TypeError):
        hyper.HTTPHeaderMap(bad)  # type: ignore[arg-type]
    headers = hyper.HTTPHeaderMap([("keep", "1")])
    with pytest.raises(TypeError):
        headers.merge([("fine", "1"), *([bad] if not isinstance(bad, (str, int)) else ["ab"])])  # type: ignore[list-item]
    assert headers.items() == [(b"keep", b"1")], "a failed merge adds nothing"


def test_header_map_getitem_and_get_return_lists_without_splitting_commas() -> None:
    """Lists as in 0.7; 0.7 also split values on commas, breaking dates and quoted values (a bug)."""
    headers = hyper.HTTPHeaderMap([("Date", "Sat, 05 Dec 2026 10:00:00 GMT"), ("x-list", "one, two")])
    assert headers["date"] == [b"Sat, 05 Dec 2026 10:00:00 GMT"]
    assert headers.get(b"X-LIST") == [b"one, two"]
    assert headers.get("missing") is None and headers.get("missing", []) == []


def test_header_map_iteration_len_and_setitem_follow_mapping_rules() -> None:
    """Kept: 0.7 iterated (name, value) pairs, counted split values in len() and
    appended on ``h[k] = v``; that broke dict(), update() and ``in h.keys()``.
    ``items()`` and ``add()`` give 0.7's meaning."""
    headers = hyper.HTTPHeaderMap([("a", "1"), ("b", "2"), ("A", "3")])
    assert list(headers) == [b"a", b"b"] and len(headers) == 2
    assert headers.items() == [(b"a", b"1"), (b"b", b"2"), (b"A", b"3")]
    headers["b"] = "9"
    assert headers["b"] == [b"9"]
    headers.add("b", "10")
    assert headers["b"] == [b"9", b"10"]
    assert dict(headers) == {b"a": [b"1", b"3"], b"b": [b"9", b"10"]}


def test_header_map_replace_merge_and_iter_raw_as_in_0_7() -> None:
    headers = hyper.HTTPHeaderMap([("X-A", "1"), ("b", "2"), ("x-a", "3")])
    headers.replace("x-a", "new")
    assert list(headers.iter_raw()) == [(b"x-a", b"new"), (b"b", b"2")]
    headers.replace("c", "appended")
    assert headers.items()[-1] == (b"c", b"appended")
    other = hyper.HTTPHeaderMap([("d", "4")])
    headers.merge(other)
    headers.merge({"e": "5"})
    headers.merge([("f", "6")])
    assert [name for name, _ in headers.iter_raw()][-3:] == [b"d", b"e", b"f"]

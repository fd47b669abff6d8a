"""Proxies: CONNECT tunnels and absolute-form requests through a real tinyproxy."""

from __future__ import annotations

import base64

import pytest

import hyper
from hyper.common.proxy import DEFAULT_PROXY_PORT, resolve_proxy
from hyper.tls import init_context
from tests.conftest import PROXY_USER
from tests.http11_scripted import Peer, scripted
from tests.servers import HELLO_TEXT, ServerInfo, one_k_bytes

TIMEOUT = 10


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"proxy-authorization": f"Basic {token}"}


def _ctx(server: ServerInfo, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> object:
    return init_context(cert_path=server.ca_file, alpn=alpn)


def test_http2_through_connect_tunnel(nginx_server: ServerInfo, proxy_server: ServerInfo) -> None:
    with hyper.HTTP20Connection(
        nginx_server.authority,
        ssl_context=_ctx(nginx_server, ("h2",)),
        proxy_host=proxy_server.host,
        proxy_port=proxy_server.port,
        timeout=TIMEOUT,
    ) as conn:
        first = conn.request("GET", "/hello.txt")
        second = conn.request("GET", "/1k.bin")
        assert conn.getresponse(second).read() == one_k_bytes()
        assert conn.getresponse(first).read() == HELLO_TEXT
        assert conn.negotiated_protocol == "h2"


def test_negotiation_happens_inside_the_tunnel(
    nginx_server: ServerInfo, nginx_http11_server: ServerInfo, proxy_server: ServerInfo
) -> None:
    for server, version in ((nginx_server, "HTTP/2"), (nginx_http11_server, "HTTP/1.1")):
        with hyper.HTTPConnection(
            server.authority, ssl_context=_ctx(server), proxy_host=proxy_server.authority, timeout=TIMEOUT
        ) as conn:
            response = conn.getresponse(conn.request("GET", "/1k.bin"))
            assert conn.version == version
            assert response.read() == one_k_bytes()


def test_http11_tls_through_tunnel_keeps_alive(
    nginx_http11_server: ServerInfo, proxy_server: ServerInfo
) -> None:
    server = nginx_http11_server
    with hyper.HTTP11Connection(
        server.authority,
        ssl_context=_ctx(server, ("http/1.1",)),
        proxy_host=proxy_server.authority,
        timeout=TIMEOUT,
    ) as conn:
        for _ in range(3):
            assert conn.getresponse(conn.request("GET", "/hello.txt")).read() == HELLO_TEXT


def test_cleartext_http11_uses_absolute_form(
    nginx_http11_plain_server: ServerInfo, proxy_server: ServerInfo
) -> None:
    server = nginx_http11_plain_server
    with hyper.HTTPConnection(
        server.authority, secure=False, proxy_host=proxy_server.authority, timeout=TIMEOUT
    ) as conn:
        response = conn.getresponse(conn.request("GET", "/hello.txt"))
        # No Upgrade through a forward proxy: plain HTTP/1.1 in absolute form.
        assert conn.version == "HTTP/1.1"
        assert response.read() == HELLO_TEXT
        # tinyproxy closes the client connection after each response without
        # saying so: the next (idempotent) request is sent again on a new one.
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == one_k_bytes()


def test_cleartext_http2_prior_knowledge_is_tunnelled(
    nginx_h2c_server: ServerInfo, proxy_server: ServerInfo
) -> None:
    with hyper.HTTP20Connection(
        nginx_h2c_server.authority, secure=False, proxy_host=proxy_server.authority, timeout=TIMEOUT
    ) as conn:
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == one_k_bytes()


def test_refused_connect_is_a_proxy_error(nginx_process: object, proxy_server: ServerInfo) -> None:
    # The proxy allows CONNECT only to the ports of nginx's TLS listeners.
    _, ports = nginx_process  # type: ignore[misc]
    conn = hyper.HTTP20Connection(
        f"127.0.0.1:{ports.upload_sink}", secure=True, proxy_host=proxy_server.authority, timeout=TIMEOUT
    )
    with pytest.raises(hyper.ProxyError) as info:
        conn.request("GET", "/")
    assert info.value.status == 403
    assert info.value.headers is not None
    assert isinstance(info.value, hyper.TransportError)


@pytest.mark.parametrize("cls", [hyper.HTTP20Connection, hyper.HTTP11Connection, hyper.HTTPConnection])
def test_proxy_authentication(cls: type, nginx_server: ServerInfo, auth_proxy_server: ServerInfo) -> None:
    alpn = (
        ("http/1.1",)
        if cls is hyper.HTTP11Connection
        else ("h2",)
        if cls is hyper.HTTP20Connection
        else (
            "h2",
            "http/1.1",
        )
    )
    with cls(
        nginx_server.authority,
        ssl_context=_ctx(nginx_server, alpn),
        proxy_host=auth_proxy_server.host,
        proxy_port=auth_proxy_server.port,
        proxy_headers=_basic(*PROXY_USER),
        timeout=TIMEOUT,
    ) as conn:
        assert conn.getresponse(conn.request("GET", "/hello.txt")).read() == HELLO_TEXT


# tinyproxy answers missing credentials with 407 and wrong ones with 401.
@pytest.mark.parametrize(("headers", "status"), [(None, 407), (_basic("hyper", "wrong"), 401)])
def test_missing_or_wrong_credentials_are_refused(
    headers: dict[str, str] | None, status: int, nginx_server: ServerInfo, auth_proxy_server: ServerInfo
) -> None:
    conn = hyper.HTTPConnection(
        nginx_server.authority,
        ssl_context=_ctx(nginx_server),
        proxy_host=auth_proxy_server.authority,
        proxy_headers=headers,
        timeout=TIMEOUT,
    )
    with pytest.raises(hyper.ProxyError) as info:
        conn.request("GET", "/")
    assert info.value.status == status
    assert info.value.headers is not None
    if status == 407:
        assert b"proxy-authenticate" in info.value.headers
    conn.close()


def test_absolute_form_with_proxy_authentication(
    nginx_http11_plain_server: ServerInfo, auth_proxy_server: ServerInfo
) -> None:
    server = nginx_http11_plain_server
    with hyper.HTTP11Connection(
        server.authority,
        secure=False,
        proxy_host=auth_proxy_server.authority,
        proxy_headers=_basic(*PROXY_USER),
        timeout=TIMEOUT,
    ) as conn:
        assert conn.getresponse(conn.request("GET", "/hello.txt")).read() == HELLO_TEXT
    with hyper.HTTP11Connection(
        server.authority, secure=False, proxy_host=auth_proxy_server.authority, timeout=TIMEOUT
    ) as conn:
        # Without a tunnel the proxy's refusal is an ordinary response.
        assert conn.getresponse(conn.request("GET", "/hello.txt")).status == 407


def test_proxy_from_environment(
    monkeypatch: pytest.MonkeyPatch, nginx_server: ServerInfo, auth_proxy_server: ServerInfo
) -> None:
    user, password = PROXY_USER
    monkeypatch.setenv("HTTPS_PROXY", f"http://{user}:{password}@{auth_proxy_server.authority}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    with hyper.HTTPConnection(
        nginx_server.authority, ssl_context=_ctx(nginx_server), proxy_from_env=True, timeout=TIMEOUT
    ) as conn:
        assert conn.proxy is not None and conn.proxy.port == auth_proxy_server.port
        assert conn.getresponse(conn.request("GET", "/1k.bin")).read() == one_k_bytes()
    # Without proxy_from_env the environment is ignored.
    assert hyper.HTTPConnection(nginx_server.authority).proxy is None


def test_no_proxy_bypasses_the_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "example.org,.internal")
    for name in ("https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert (
        resolve_proxy(
            None, None, None, from_env=True, target_host="example.org", target_port=443, secure=True
        )
        is None
    )
    assert (
        resolve_proxy(None, None, None, from_env=True, target_host="a.internal", target_port=443, secure=True)
        is None
    )
    proxy = resolve_proxy(
        None, None, None, from_env=True, target_host="other.org", target_port=443, secure=True
    )
    assert proxy is not None and (proxy.host, proxy.port) == ("proxy.invalid", 3128)
    # HTTP_PROXY is for cleartext targets only.
    assert (
        resolve_proxy(None, None, None, from_env=True, target_host="other.org", target_port=80, secure=False)
        is None
    )


def test_proxy_arguments() -> None:
    proxy = resolve_proxy(
        "proxy.local", None, None, from_env=False, target_host="x", target_port=443, secure=True
    )
    assert proxy is not None and proxy.port == DEFAULT_PROXY_PORT
    proxy = resolve_proxy(
        "[::1]:3128", None, {"x": "y"}, from_env=False, target_host="x", target_port=443, secure=True
    )
    assert proxy is not None and (proxy.host, proxy.port, proxy.headers[b"x"]) == ("::1", 3128, [b"y"])
    with pytest.raises(hyper.InvalidURL):
        resolve_proxy(None, 3128, None, from_env=False, target_host="x", target_port=443, secure=True)
    with pytest.raises(hyper.InvalidURL):
        hyper.HTTP20Connection("example.org", proxy_headers={"a": "b"})


def test_unreachable_proxy_is_a_connect_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = hyper.HTTPConnection("example.org:443", proxy_host=f"127.0.0.1:{port}", timeout=TIMEOUT)
    with pytest.raises(hyper.ConnectError):
        conn.request("GET", "/")


def _scripted_proxy(answer: bytes | None) -> object:
    """A fake proxy: reads the CONNECT head, then sends ``answer`` (None: stalls)."""

    def script(peer: Peer) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += peer.sock.recv(4096)
        assert head.startswith(b"CONNECT 127.0.0.1:443 HTTP/1.1\r\n")
        if answer is None:
            peer.wait_closed()
            return
        peer.send_raw(answer)
        peer.sock.close()

    return script


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "closed the connection"),
        (b"garbage\r\n\r\n", "invalid answer"),
        (b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n", "502 Bad Gateway"),
    ],
)
def test_broken_or_refusing_proxy(answer: bytes, message: str) -> None:
    with scripted(_scripted_proxy(answer)) as proxy:
        conn = hyper.HTTPConnection("127.0.0.1:443", proxy_host=proxy.address, timeout=TIMEOUT)
        with pytest.raises(hyper.ProxyError, match=message) as info:
            conn.request("GET", "/")
    assert info.value.status == (502 if b"502" in answer else None)


def test_stalling_proxy_is_a_connect_timeout() -> None:
    with scripted(_scripted_proxy(None)) as proxy:
        conn = hyper.HTTP11Connection("127.0.0.1:443", proxy_host=proxy.address, timeout=(0.3, TIMEOUT))
        with pytest.raises(hyper.ConnectTimeout):
            conn.request("GET", "/")


def test_proxy_data_before_tls_is_refused() -> None:
    # A proxy that sends bytes after its 200 broke the tunnel's contract.
    answer = b"HTTP/1.1 200 OK\r\n\r\nunexpected"
    with scripted(_scripted_proxy(answer)) as proxy:
        conn = hyper.HTTP20Connection("127.0.0.1:443", proxy_host=proxy.address, timeout=TIMEOUT)
        with pytest.raises(hyper.ProxyError, match="before the TLS handshake"):
            conn.request("GET", "/")


# -- Squid ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "version"), [("nginx_server", "HTTP/2"), ("nginx_http11_server", "HTTP/1.1")]
)
def test_squid_tunnel_with_authentication(
    target: str, version: str, request: pytest.FixtureRequest, squid_server: ServerInfo
) -> None:
    server: ServerInfo = request.getfixturevalue(target)
    with hyper.HTTPConnection(
        server.authority,
        ssl_context=_ctx(server),
        proxy_host=squid_server.authority,
        proxy_headers=_basic(*PROXY_USER),
        timeout=TIMEOUT,
    ) as conn:
        for _ in range(3):
            assert conn.getresponse(conn.request("GET", "/hello.txt")).read() == HELLO_TEXT
        assert conn.version == version


def test_squid_refusals(nginx_process: object, nginx_server: ServerInfo, squid_server: ServerInfo) -> None:
    conn = hyper.HTTP20Connection(
        nginx_server.authority, ssl_context=_ctx(nginx_server, ("h2",)), proxy_host=squid_server.authority
    )
    with pytest.raises(hyper.ProxyError) as info:
        conn.request("GET", "/")
    assert info.value.status == 407
    assert info.value.headers is not None
    assert info.value.headers.get_first(b"proxy-authenticate", b"").startswith(b"Basic")
    _, ports = nginx_process  # type: ignore[misc]
    conn = hyper.HTTP20Connection(
        f"127.0.0.1:{ports.h2c}",
        secure=True,
        proxy_host=squid_server.authority,
        proxy_headers=_basic(*PROXY_USER),
        timeout=TIMEOUT,
    )
    with pytest.raises(hyper.ProxyError) as info:
        conn.request("GET", "/")
    assert info.value.status == 403


def test_squid_absolute_form_keeps_the_connection_alive(
    nginx_http11_plain_server: ServerInfo, squid_server: ServerInfo
) -> None:
    server = nginx_http11_plain_server
    with hyper.HTTP11Connection(
        server.authority,
        secure=False,
        proxy_host=squid_server.authority,
        proxy_headers=_basic(*PROXY_USER),
        timeout=TIMEOUT,
    ) as conn:
        response = conn.getresponse(conn.request("GET", "/1k.bin"))
        fileno = conn.fileno()
        assert response.read() == one_k_bytes()
        for _ in range(3):
            assert conn.getresponse(conn.request("GET", "/hello.txt")).read() == HELLO_TEXT
        assert conn.fileno() == fileno  # Squid kept our connection alive
        upload = conn.getresponse(conn.request("POST", "/upload", body=b"p" * 5000))
        assert upload.read() == b"upload received: 5000 bytes\n"


def test_requests_adapter_through_squid(nginx_server: ServerInfo, squid_server: ServerInfo) -> None:
    # hyper.contrib passes requests' proxies on as proxy_host/proxy_headers.
    import requests

    from hyper.contrib import HTTP20Adapter

    user, password = PROXY_USER
    with requests.Session() as session:
        session.mount("https://", HTTP20Adapter())
        proxies = {"https": f"http://{user}:{password}@{squid_server.authority}"}
        response = session.get(
            nginx_server.url("/hello.txt"), verify=nginx_server.ca_file, proxies=proxies, timeout=TIMEOUT
        )
        assert response.status_code == 200
        assert response.content == HELLO_TEXT
        refused = {"https": f"http://{squid_server.authority}"}
        with pytest.raises(requests.exceptions.ProxyError):
            session.get(nginx_server.url("/"), verify=nginx_server.ca_file, proxies=refused, timeout=TIMEOUT)

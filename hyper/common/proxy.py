"""HTTP forward proxies: which proxy to use, and CONNECT tunnels through one.

A TLS target (and cleartext HTTP/2 with prior knowledge) is reached through a
``CONNECT host:port`` tunnel: once the proxy answers 2xx, the socket carries
bytes to the target unchanged. Cleartext HTTP/1.1 needs no tunnel; requests
go to the proxy in absolute form (``GET http://host/path HTTP/1.1``).

The CONNECT exchange is HTTP/1.1, so ``h11`` does the parsing here too. A
proxy that refuses (407, 403, 502...) becomes a :class:`~hyper.ProxyError`
carrying its status and headers.
"""

from __future__ import annotations

import base64
import socket
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import h11

from ..exceptions import ConnectTimeout, InvalidURL, ProxyError
from ..headers import HTTPHeaderMap
from .request import HeadersType, to_header_map
from .url import has_port, host_literal, split_host_port

#: The port of a proxy given without one (the customary HTTP proxy port).
DEFAULT_PROXY_PORT = 8080
#: Largest CONNECT response head accepted from a proxy.
MAX_PROXY_RESPONSE_HEAD = 64 * 1024
_RECV_SIZE = 64 * 1024


@dataclass(frozen=True)
class ProxyConfig:
    """Where the proxy is, and the header fields every request to it carries.

    ``headers`` (e.g. ``Proxy-Authorization``) go on the CONNECT request, or
    on each absolute-form request when no tunnel is used.
    """

    host: str
    port: int
    headers: HTTPHeaderMap = field(default_factory=HTTPHeaderMap)

    @property
    def address(self) -> str:
        """``host:port`` of the proxy, for messages."""
        return connect_authority(self.host, self.port)


def _split_proxy(host: str, port: int | None) -> tuple[str, int]:
    name, parsed = split_host_port(host, port)
    if port is None and not has_port(host):
        parsed = DEFAULT_PROXY_PORT
    return name, parsed


def resolve_proxy(
    proxy_host: str | None,
    proxy_port: int | None,
    proxy_headers: HeadersType,
    *,
    from_env: bool,
    target_host: str,
    target_port: int,
    secure: bool,
) -> ProxyConfig | None:
    """The proxy a connection should use, or ``None`` for a direct connection.

    An explicit ``proxy_host`` wins. Otherwise, with ``from_env``, the
    ``HTTPS_PROXY`` (TLS targets) or ``HTTP_PROXY`` (cleartext) environment
    variable is used unless ``NO_PROXY`` matches the target. A proxy URL's
    ``user:password@`` becomes a ``Proxy-Authorization: Basic`` header.
    """
    headers = to_header_map(proxy_headers)
    if proxy_host is None:
        if proxy_port is not None or proxy_headers is not None:
            raise InvalidURL("proxy_port and proxy_headers need a proxy_host")
        if not from_env:
            return None
        return _proxy_from_environment(target_host, target_port, secure)
    host, port = _split_proxy(proxy_host, proxy_port)
    return ProxyConfig(host, port, headers)


def _proxy_from_environment(target_host: str, target_port: int, secure: bool) -> ProxyConfig | None:
    proxies = urllib.request.getproxies_environment()
    url = proxies.get("https" if secure else "http")
    if not url:
        return None
    if urllib.request.proxy_bypass_environment(connect_authority(target_host, target_port), proxies):  # type: ignore[attr-defined]
        return None
    if "://" not in url:
        url = "http://" + url  # "proxy:3128" is a common way to write it
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        raise InvalidURL(f"only http:// proxies are supported, not {url!r}")
    if not parts.hostname:
        raise InvalidURL(f"no proxy host in {url!r}")
    netloc = parts.netloc.rpartition("@")[2]
    host, port = _split_proxy(netloc, None)
    headers = HTTPHeaderMap()
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers[b"proxy-authorization"] = f"Basic {token}"
    return ProxyConfig(host, port, headers)


def connect_authority(host: str, port: int) -> str:
    """The CONNECT target: ``host:port``, IPv6 literals in brackets."""
    return f"{host_literal(host)}:{port}"


def open_tunnel(
    sock: socket.socket, proxy: ProxyConfig, host: str, port: int, timeout: float | None
) -> bytes:
    """Ask the proxy on ``sock`` for a tunnel to ``host:port``.

    Returns the bytes that followed the proxy's 2xx answer (normally none:
    they already belong to the target). Raises :class:`ProxyError` when the
    proxy refuses or breaks the exchange, :class:`ConnectTimeout` when it
    does not answer within ``timeout``; ``sock`` is closed on any failure.
    """
    try:
        return _tunnel(sock, proxy, connect_authority(host, port), timeout)
    except BaseException:
        sock.close()
        raise


def _tunnel(sock: socket.socket, proxy: ProxyConfig, target: str, timeout: float | None) -> bytes:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_PROXY_RESPONSE_HEAD)
    fields: list[tuple[bytes, bytes]] = [(b"host", target.encode("idna"))]
    fields += [(name, value) for name, value in proxy.headers.items() if name != b"host"]
    try:
        data = conn.send(h11.Request(method=b"CONNECT", target=target.encode("idna"), headers=fields))
        data += conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError as exc:
        raise ProxyError(f"invalid proxy header: {exc}") from exc
    sock.settimeout(timeout)
    try:
        sock.sendall(data)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = sock.recv(_RECV_SIZE)
                conn.receive_data(chunk)
                if not chunk and conn.their_state is h11.SEND_RESPONSE:
                    raise ProxyError(
                        f"proxy {proxy.address} closed the connection instead of answering CONNECT"
                    )
                continue
            if isinstance(event, h11.InformationalResponse):
                continue  # RFC 9110 allows 1xx before the final answer
            if isinstance(event, h11.Response):
                headers = HTTPHeaderMap.from_wire(list(event.headers))
                if 200 <= event.status_code < 300:
                    return bytes(conn.trailing_data[0])
                reason = event.reason.decode("latin-1")
                raise ProxyError(
                    f"proxy {proxy.address} refused to tunnel to {target}: {event.status_code} {reason}",
                    status=event.status_code,
                    headers=headers,
                )
            raise ProxyError(
                f"proxy {proxy.address} ended the CONNECT exchange unexpectedly"
            )  # pragma: no cover
    except TimeoutError as exc:
        raise ConnectTimeout(f"proxy {proxy.address} did not answer CONNECT within {timeout} s") from exc
    except h11.RemoteProtocolError as exc:
        raise ProxyError(f"proxy {proxy.address} sent an invalid answer to CONNECT: {exc}") from exc
    except OSError as exc:
        raise ProxyError(f"connection to proxy {proxy.address} broke during CONNECT: {exc}") from exc

"""Connections for the ``hyper`` command: TLS choices, proxies, reuse across redirects.

Only the public library API is used: :class:`~hyper.HTTPConnection` (which
negotiates), :class:`~hyper.HTTP20Connection` (``--h2``) and
:func:`hyper.tls.init_context`.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from ..connection import NEGOTIATED_ALPN, HTTPConnection
from ..http20.connection import HTTP20Connection
from ..tls import H2_ALPN, init_context
from .status import UsageError
from .target import Target

#: The connection class used without ``--h2`` (tests may swap it).
CONNECTION_CLASS: Any = HTTPConnection
#: ALPN protocols offered by the contexts made for ``--cacert``/``--insecure``.
ALPN: tuple[str, ...] = NEGOTIATED_ALPN


@dataclass(frozen=True)
class Proxy:
    """One ``--proxy`` choice: the proxy's address and its credentials as a header."""

    host: str
    port: int
    headers: dict[str, str] = field(default_factory=dict)


def parse_proxy_option(text: str) -> tuple[str, Proxy]:
    """``--proxy PROTOCOL:URL`` (HTTPie's form), e.g. ``https:http://proxy:3128``.

    Returns ``(protocol, proxy)``, the protocol being the scheme of the
    requests that use it. Raises :class:`UsageError` when malformed.
    """
    protocol, colon, url = text.partition(":")
    protocol = protocol.lower()
    if not colon or protocol not in ("http", "https") or url.startswith("//"):
        raise UsageError(f"--proxy {text!r}: use PROTOCOL:URL, e.g. https:http://proxy.example:3128")
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"--proxy {text!r}: {exc}") from None
    if parts.scheme.lower() != "http":
        raise UsageError(f"--proxy {text!r}: only http:// proxies are supported")
    if not parts.hostname:
        raise UsageError(f"--proxy {text!r}: no proxy host")
    headers: dict[str, str] = {}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["proxy-authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
    return protocol, Proxy(parts.hostname, port or 8080, headers)


class Connections:
    """The open connections of one run, one per origin, closed together at the end."""

    def __init__(
        self,
        *,
        h2: bool,
        timeout: float,
        cacert: str | None,
        insecure: bool,
        proxies: dict[str, Proxy],
    ) -> None:
        self._h2 = h2
        self._timeout = timeout
        self._cacert = cacert
        self._insecure = insecure
        self._proxies = proxies
        self._open: dict[tuple[bool, str, int], Any] = {}

    def get(self, target: Target) -> tuple[Any, bool]:
        """The connection for ``target``'s origin, and whether it is new."""
        existing = self._open.get(target.origin)
        if existing is not None:
            return existing, False
        connection = self._make(target)
        self._open[target.origin] = connection
        return connection, True

    def forget(self, target: Target) -> None:
        """Close and drop the connection of ``target``'s origin (it is broken)."""
        connection = self._open.pop(target.origin, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Close every connection."""
        while self._open:
            _, connection = self._open.popitem()
            connection.close()

    def _make(self, target: Target) -> Any:
        host = f"[{target.host}]" if ":" in target.host else target.host
        kwargs: dict[str, Any] = {"secure": target.secure, "timeout": self._timeout}
        proxy = self._proxies.get("https" if target.secure else "http")
        if proxy is not None:
            kwargs.update(proxy_host=proxy.host, proxy_port=proxy.port, proxy_headers=proxy.headers or None)
        else:
            # *_proxy and NO_PROXY from the environment, as HTTPie and curl honour them.
            kwargs["proxy_from_env"] = True
        if self._h2:
            cls: Any = HTTP20Connection
            alpn: tuple[str, ...] = H2_ALPN
            if target.secure:
                kwargs["force_proto"] = "h2"  # HTTP/2 even if ALPN selects nothing
        else:
            cls, alpn = CONNECTION_CLASS, ALPN
        if target.secure and (self._cacert is not None or self._insecure):
            context = init_context(cert_path=self._cacert, alpn=alpn)
            if self._insecure:
                context.check_hostname = False  # must come before CERT_NONE
                context.verify_mode = ssl.CERT_NONE
            kwargs["ssl_context"] = context
        return cls(host, target.port, **kwargs)

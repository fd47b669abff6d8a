"""The adapter's connections: one pool per site, TLS contexts per ``verify``/``cert``, proxies.

A site is everything that makes two requests unable to share a connection:
scheme, host, port, TLS settings, timeout and proxy. HTTP/2 connections are
shared by every request of their site; an HTTP/1.1 connection busy with an
unread response is passed over for another one, up to ``pool_maxsize``.

:class:`ConnectionPool`, :class:`ContextCache`, :data:`SiteKey` and
:func:`ssl_context_for` serve :mod:`hyper.contrib.adapter`; the argument
types and the proxy helpers are also re-exported by :mod:`hyper.contrib`.
"""

from __future__ import annotations

import base64
import os
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any, Union
from urllib.parse import unquote, urlsplit

import requests
import requests.exceptions
import requests.utils

from ..common.url import host_literal
from ..tls import init_context
from .raw import AdapterConnection

__all__ = ["CertArg", "ConnectionPool", "ContextCache", "SiteKey", "TimeoutArg", "VerifyArg"]
__all__ += ["proxy_headers_for", "proxy_kwargs", "select_proxy", "ssl_context_for"]

TimeoutArg = Union[None, float, tuple[Union[float, None], Union[float, None]]]
CertArg = Union[None, str, tuple[str, str]]
VerifyArg = Union[bool, str]
#: A site: everything that makes two requests unable to share one connection
#: (scheme, host, port, verify, cert, timeout, proxy URL, proxy header fields).
SiteKey = tuple[str, str, int, VerifyArg, CertArg, TimeoutArg, Union[str, None], tuple[tuple[str, str], ...]]


class ConnectionPool:
    """The connections of one adapter, by site; safe to share between threads.

    :param make: builds a connection: ``make(host, port, secure=..., timeout=..., **kwargs)``.
    :param connection_kwargs: passed to every connection made.
    :param pool_maxsize: connections kept per site at most (only HTTP/1.1 needs more than one).
    :param context_for: the TLS context for ``(verify, cert)``, ``None`` for the default.
    :param proxy_headers: the header fields for a proxy URL.
    """

    def __init__(
        self,
        make: Callable[..., AdapterConnection],
        connection_kwargs: Mapping[str, Any],
        pool_maxsize: int,
        context_for: Callable[[VerifyArg, CertArg], ssl.SSLContext | None],
        proxy_headers: Callable[[str], dict[str, str]],
    ) -> None:
        self.make = make
        self.pool_maxsize = pool_maxsize
        self._connection_kwargs = dict(connection_kwargs)
        self._context_for = context_for
        self._proxy_headers = proxy_headers
        # Guards the pool; never held while waiting on the network (hyper
        # connections connect lazily, on their first request).
        self._lock = threading.Lock()
        self._sites: dict[SiteKey, list[AdapterConnection]] = {}

    def get(
        self,
        scheme: str,
        host: str,
        port: int,
        verify: VerifyArg,
        cert: CertArg,
        timeout: TimeoutArg,
        proxy: str | None,
    ) -> tuple[AdapterConnection, SiteKey]:
        """A connection for this site (made if needed) and the key to :meth:`evict` it by."""
        secure = scheme == "https"
        proxy_headers = tuple(sorted(self._proxy_headers(proxy).items())) if proxy else ()
        if isinstance(cert, list):
            cert = (cert[0], cert[1])  # requests allows a list; keys must be hashable
        key: SiteKey = (
            scheme,
            host.lower(),
            port,
            verify if secure else True,
            cert if secure else None,
            timeout,
            proxy,
            proxy_headers,
        )
        # Made outside self._lock: loading a CA bundle takes tens of milliseconds.
        context = self._context_for(verify, cert) if secure else None
        with self._lock:  # the site's list: every thread's requests pick from it
            pool = self._sites.setdefault(key, [])
            # HTTP/2 (or not yet negotiated) connections are never busy.
            connection = next((c for c in pool if not getattr(c, "busy", False)), None)
            if connection is None and len(pool) >= self.pool_maxsize:
                connection = pool[0]  # all busy: that one buffers or waits
            if connection is None:
                kwargs = dict(self._connection_kwargs)
                if context is not None:
                    kwargs["ssl_context"] = context
                if proxy is not None:
                    kwargs.update(proxy_kwargs(proxy, dict(proxy_headers)))
                connection = self.make(host_literal(host), port, secure=secure, timeout=timeout, **kwargs)
                pool.append(connection)
        return connection, key

    def evict(self, key: SiteKey, connection: AdapterConnection) -> None:
        """Drop a broken connection, unless another thread already replaced it."""
        with self._lock:  # the site's list
            pool = self._sites.get(key, [])
            if connection not in pool:
                return
            pool.remove(connection)
        connection.close()

    def close(self) -> None:
        """Close every connection; later requests open new ones."""
        with self._lock:  # detach all at once; closing happens outside the lock
            pools, self._sites = list(self._sites.values()), {}
        for pool in pools:
            for connection in pool:
                connection.close()

    def sites(self) -> dict[SiteKey, list[AdapterConnection]]:
        """A snapshot: the connections of each site."""
        with self._lock:
            return {key: list(pool) for key, pool in self._sites.items()}


class ContextCache:
    """TLS contexts by ``(verify, cert)``, each made once and shared by the connections using it."""

    def __init__(self) -> None:
        # Guards the dict only; a context is made outside it.
        self._lock = threading.Lock()
        self._contexts: dict[tuple[Any, Any], ssl.SSLContext | None] = {}

    def get(self, verify: VerifyArg, cert: CertArg, alpn: tuple[str, ...]) -> ssl.SSLContext | None:
        """The context for ``verify``/``cert`` (made now if new); ``None`` for the connection's default.

        Making one loads the CA bundle (tens of milliseconds); other threads
        must not wait for that, so two threads may both make one and the
        first stored wins.
        """
        key = (verify, cert)
        with self._lock:
            if key in self._contexts:
                return self._contexts[key]
        context = ssl_context_for(verify, cert, alpn)
        with self._lock:
            return self._contexts.setdefault(key, context)


def ssl_context_for(verify: VerifyArg, cert: CertArg, alpn: tuple[str, ...]) -> ssl.SSLContext | None:
    """The context for requests' ``verify``/``cert``; ``None`` for the connection's default."""
    if verify is True and cert is None:
        return None  # the connection builds its default context (certifi, its own ALPN)
    if isinstance(verify, str):
        if not os.path.exists(verify):
            raise OSError(f"no CA certificate bundle or directory at {verify!r} (given as verify=)")
        context = init_context(cert_path=verify, cert=cert, alpn=alpn)
    else:
        context = init_context(cert=cert, alpn=alpn)
    if verify is False:
        context.check_hostname = False  # must come before CERT_NONE
        context.verify_mode = ssl.CERT_NONE
    return context


# -- proxies -------------------------------------------------------------------


def select_proxy(url: str, proxies: Mapping[str, str] | None) -> str | None:
    """The proxy URL ``requests`` would use for ``url`` (``None`` for none)."""
    if not proxies:
        return None
    return requests.utils.select_proxy(url, dict(proxies))


def proxy_headers_for(proxy: str) -> dict[str, str]:
    """``Proxy-Authorization: Basic ...`` when the proxy URL carries a user name."""
    username, password = requests.utils.get_auth_from_url(proxy)
    if not username:
        return {}
    token = base64.b64encode(f"{username}:{password}".encode("latin-1")).decode("ascii")
    return {"Proxy-Authorization": f"Basic {token}"}


def proxy_kwargs(proxy: str, headers: dict[str, str]) -> dict[str, Any]:
    """The connection arguments for tunnelling through ``proxy``."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise requests.exceptions.InvalidProxyURL(f"hyper supports only http:// proxies, not {proxy!r}")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise requests.exceptions.InvalidProxyURL(f"invalid port in proxy URL {proxy!r}") from exc
    host = unquote(parts.hostname)
    kwargs: dict[str, Any] = {"proxy_host": host_literal(host), "proxy_port": port}
    if headers:
        kwargs["proxy_headers"] = headers
    return kwargs

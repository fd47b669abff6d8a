"""The constructor options all three connection classes take, checked once.

``HTTP20Connection``, ``HTTP11Connection`` and ``HTTPConnection`` take the
same address, TLS, proxy, timeout and bound arguments, and hyper 0.7's
tolerance of unknown keyword arguments. They mean the same thing in each
class and are parsed here, so a bad value fails the same way everywhere
(``TypeError`` for a wrong type, ``ValueError`` or
:class:`~hyper.InvalidURL` for a wrong value), in the constructor, before
any socket exists.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..limits import Limits
from .proxy import ProxyConfig, resolve_proxy
from .request import HeadersType, TimeoutType, positive_seconds, split_timeout
from .url import DEFAULT_CLEARTEXT_PORT, DEFAULT_TLS_PORT, authority_for, has_port, split_host_port

#: Which port a bare host (no port in ``host``, no ``port=``) means:
#:
#: * ``"443"``: always 443 (HTTP/2, TLS first, as in hyper 0.7);
#: * ``"80-unless-tls"``: 80, or 443 when TLS is asked for with
#:   ``secure=True`` or an ``ssl_context`` (HTTP/1.1, as ``http.client``);
#: * ``"443-unless-cleartext"``: 443, or 80 with ``secure=False``
#:   (the negotiating connection).
BarePort = Literal["443", "80-unless-tls", "443-unless-cleartext"]


@dataclass(frozen=True)
class ConnectionOptions:
    """The checked constructor options of one connection."""

    #: The host, without brackets for IPv6 and in IDNA form.
    host: str
    port: int
    #: TLS or cleartext.
    secure: bool
    #: The caller's TLS context, used as given; ``None`` for the class's default.
    ssl_context: ssl.SSLContext | None
    #: The ``Host``/``:authority`` value: the port only when not the default.
    authority: str
    connect_timeout: float | None
    read_timeout: float | None
    limits: Limits
    #: Overall bound in seconds on one exchange, or ``None``.
    deadline: float | None
    #: The proxy in use, or ``None`` for a direct connection.
    proxy: ProxyConfig | None

    @property
    def scheme(self) -> str:
        """``"https"`` or ``"http"``."""
        return "https" if self.secure else "http"


def connection_options(
    owner: str,
    host: str,
    port: int | None,
    secure: bool | None,
    ssl_context: ssl.SSLContext | None,
    proxy_host: str | None,
    proxy_port: int | None,
    proxy_headers: HeadersType,
    timeout: TimeoutType,
    *,
    limits: Limits | None,
    deadline: float | None,
    proxy_from_env: bool,
    bare_port: BarePort,
    unknown: Mapping[str, Any],
) -> ConnectionOptions:
    """Check and resolve the options ``owner`` (a class name, for messages) was given.

    ``secure`` defaults to TLS when the port is 443 or an ``ssl_context`` is
    given. ``unknown`` holds the keyword arguments the class does not know:
    hyper 0.7 ignored them silently, so they are ignored with a
    ``DeprecationWarning`` that points at the caller's line.
    """
    warn_unknown(owner, unknown, stacklevel=4)  # this function, the constructor, the caller
    name, resolved_port = split_host_port(host, port)
    if port is None and not has_port(host):
        resolved_port = _bare_port(bare_port, secure, ssl_context)
    if secure is None:
        secure = resolved_port == DEFAULT_TLS_PORT or ssl_context is not None
    connect_timeout, read_timeout = split_timeout(timeout)
    return ConnectionOptions(
        host=name,
        port=resolved_port,
        secure=secure,
        ssl_context=ssl_context,
        authority=authority_for(name, resolved_port, secure),
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        limits=limits or Limits(),
        deadline=positive_seconds(deadline, "deadline"),
        proxy=resolve_proxy(
            proxy_host,
            proxy_port,
            proxy_headers,
            from_env=proxy_from_env,
            target_host=name,
            target_port=resolved_port,
            secure=secure,
        ),
    )


def _bare_port(rule: BarePort, secure: bool | None, ssl_context: ssl.SSLContext | None) -> int:
    if rule == "80-unless-tls":
        # 0.7 spoke TLS to port 80 when asked for TLS without a port, which was a bug.
        wants_tls = secure is True or (secure is None and ssl_context is not None)
        return DEFAULT_TLS_PORT if wants_tls else DEFAULT_CLEARTEXT_PORT
    if rule == "443-unless-cleartext":
        return DEFAULT_CLEARTEXT_PORT if secure is False else DEFAULT_TLS_PORT
    return DEFAULT_TLS_PORT


def warn_unknown(owner: str, unknown: Mapping[str, Any], stacklevel: int) -> None:
    """Warn that ``owner`` ignores the keyword arguments in ``unknown`` (if any).

    hyper 0.7 silently ignored unknown keyword arguments; 0.7 code keeps
    working, and the warning points at the typo or leftover.
    """
    if unknown:
        warnings.warn(
            f"{owner} ignores unknown keyword arguments: {', '.join(sorted(unknown))}",
            DeprecationWarning,
            stacklevel=stacklevel,
        )


def keepalive_options(
    keepalive: float | None, keepalive_timeout: float | None, read_timeout: float | None
) -> tuple[float | None, float | None]:
    """``(keepalive, keepalive_timeout)`` checked, the timeout's default filled in.

    Both are ``None`` or positive seconds (``TypeError``/``ValueError`` as
    for timeouts). Without a ``keepalive_timeout`` the PING's ACK is waited
    for as long as the read timeout, or ``keepalive`` when there is none.
    """
    every = positive_seconds(keepalive, "keepalive")
    wait = positive_seconds(keepalive_timeout, "keepalive_timeout")
    return every, wait or read_timeout or every

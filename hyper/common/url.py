"""Parsing of ``host[:port]`` strings and request targets."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..exceptions import InvalidURL

DEFAULT_TLS_PORT = 443
DEFAULT_CLEARTEXT_PORT = 80


def split_host_port(host: str, port: int | None = None) -> tuple[str, int]:
    """Split ``'host'``, ``'host:port'`` or ``'[v6]:port'`` into host and port.

    An explicit ``port`` wins over one in ``host``; with neither, 443. The
    brackets of an IPv6 literal are removed from the returned host.
    """
    if not isinstance(host, str) or not host:
        raise InvalidURL(f"host must be a non-empty str, not {host!r}")
    if any(c.isspace() or c in "/?#@" for c in host):
        raise InvalidURL(f"host {host!r} is not a host name or address")
    name = host
    parsed_port: int | None = None
    if host.startswith("["):
        end = host.find("]")
        if end == -1:
            raise InvalidURL(f"unterminated IPv6 literal in {host!r}")
        name = host[1:end]
        rest = host[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise InvalidURL(f"unexpected text after IPv6 literal in {host!r}")
            parsed_port = _parse_port(rest[1:], host)
    elif host.count(":") == 1:
        name, _, port_text = host.partition(":")
        parsed_port = _parse_port(port_text, host)
    elif host.count(":") > 1:
        # A bare IPv6 literal without brackets and without a port.
        name = host
    if not name:
        raise InvalidURL(f"no host name in {host!r}")
    if port is not None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidURL(f"port must be an int in 1..65535, not {port!r}")
        return name, port
    return name, parsed_port if parsed_port is not None else DEFAULT_TLS_PORT


def has_port(host: str) -> bool:
    """Whether a ``host`` string names a port (``'h:8080'``, ``'[::1]:8080'``)."""
    if host.startswith("["):
        return "]:" in host
    return host.count(":") == 1


def _parse_port(text: str, whole: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise InvalidURL(f"invalid port in {whole!r}")
    value = int(text)
    if not 0 < value < 65536:
        raise InvalidURL(f"port out of range in {whole!r}")
    return value


def host_literal(host: str) -> str:
    """``host`` as written in an authority: an IPv6 literal in brackets."""
    return f"[{host}]" if ":" in host else host


def authority_for(host: str, port: int, secure: bool) -> str:
    """The ``:authority`` / ``Host`` value: the port only when not the default."""
    shown = host_literal(host)
    default = DEFAULT_TLS_PORT if secure else DEFAULT_CLEARTEXT_PORT
    return shown if port == default else f"{shown}:{port}"


def origin_of(scheme: str, authority: str) -> tuple[str, str, int] | None:
    """The origin ``(scheme, host, port)`` of a URL's parts, or ``None`` if they do not parse.

    The host is lower-cased and the port made explicit, so equal origins
    compare equal however they were written.
    """
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        return None
    try:
        host, port = split_host_port(authority)
    except InvalidURL:
        return None
    if not has_port(authority):
        port = DEFAULT_TLS_PORT if scheme == "https" else DEFAULT_CLEARTEXT_PORT
    return scheme, host.lower(), port


def request_target(url: str) -> tuple[str, str | None, str | None]:
    """Split a request URL into ``(path, scheme, authority)``.

    ``url`` is normally a path such as ``'/index.html?q=1'``; an absolute URL
    (``'https://example.org/x'``) is accepted too and its scheme and authority
    are returned so the caller can use them. ``'*'`` is kept for OPTIONS.
    """
    if not isinstance(url, str):
        raise InvalidURL(f"url must be a str, not {type(url).__name__}")
    if any(c in url for c in "\r\n\x00 \t"):
        raise InvalidURL(f"url {url!r} contains whitespace or control characters")
    if url == "*":
        return url, None, None
    if url.startswith("/"):
        return url.partition("#")[0], None, None
    if "://" in url:
        parts = urlsplit(url)
        if not parts.netloc:
            raise InvalidURL(f"no authority in {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return path, parts.scheme, parts.netloc.rpartition("@")[2]
    if not url:
        return "/", None, None
    raise InvalidURL(f"url must be a path starting with '/' or an absolute URL, not {url!r}")

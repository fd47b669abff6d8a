"""Parsing of ``host[:port]`` strings and request targets.

Everything a caller writes as a host or a URL is checked here, once, so a bad
one ends in :class:`~hyper.InvalidURL` before any byte is sent: IPv6 literals
must parse, international names become their IDNA (``xn--``) form, and a path
with characters a request line cannot carry is percent-encoded.
"""

from __future__ import annotations

import ipaddress
import re
import string
from urllib.parse import urlsplit

from ..exceptions import HostChangedError, InvalidURL

DEFAULT_TLS_PORT = 443
DEFAULT_CLEARTEXT_PORT = 80

# RFC 3986 section 3.2.2 reg-name: unreserved and sub-delims (percent escapes
# are refused: no resolver takes them).
_HOST_CHARS = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=")
# DNS limits (RFC 1035 section 2.3.4), which the resolver enforces with a bare
# UnicodeError at connect time if we do not check them here.
_MAX_LABEL = 63
_MAX_NAME = 253

# Characters a request target cannot carry as they are: non-ASCII, controls
# and the few printable ones RFC 3986 never allows unescaped (the set browsers
# escape in paths). CR, LF, NUL, space and tab are refused before this.
_NEEDS_ESCAPE = re.compile(r'[^\x21-\x7e]|["<>`{}]')
_REFUSED_IN_URL = "\r\n\x00 \t"
# A path that request_target() would return as it is: '/', then printable
# ASCII without the characters _NEEDS_ESCAPE escapes and without '#' (a
# fragment is cut). Almost every path a program requests.
_PLAIN_PATH = re.compile(r"/[\x21\x24-\x3b\x3d\x3f-\x5f\x61-\x7a\x7c\x7e]*")


def split_host_port(host: str, port: int | None = None) -> tuple[str, int]:
    """Split ``'host'``, ``'host:port'`` or ``'[v6]:port'`` into host and port.

    An explicit ``port`` wins over one in ``host``; with neither, 443. The
    brackets of an IPv6 literal are removed from the returned host; an
    international name is returned in its IDNA form (``xn--...``). A host
    that is neither a valid name nor an address is :class:`~hyper.InvalidURL`.
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
        _check_ipv6(name, host)
    elif host.count(":") == 1:
        name, _, port_text = host.partition(":")
        parsed_port = _parse_port(port_text, host)
        name = _checked_name(name, host)
    elif host.count(":") > 1:
        # A bare IPv6 literal without brackets and without a port.
        _check_ipv6(name, host)
    else:
        name = _checked_name(name, host)
    if port is not None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidURL(f"port must be an int in 1..65535, not {port!r}")
        return name, port
    return name, parsed_port if parsed_port is not None else DEFAULT_TLS_PORT


def _check_ipv6(address: str, whole: str) -> None:
    """Refuse what is not an IPv6 address (a zone such as ``%eth0`` is allowed)."""
    try:
        ipaddress.IPv6Address(address)
    except ValueError as exc:
        raise InvalidURL(f"{address!r} in {whole!r} is not an IPv6 address") from exc


def _checked_name(name: str, whole: str) -> str:
    """A host name (or IPv4 address) as the resolver and the Host header take it.

    A non-ASCII name is converted to IDNA; the labels must fit DNS's limits.
    """
    if not name:
        raise InvalidURL(f"no host name in {whole!r}")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidURL(f"host {name!r} is not a valid international domain name: {exc}") from exc
    if not _HOST_CHARS.issuperset(name):
        raise InvalidURL(f"host {whole!r} contains characters a host name cannot have")
    bare = name[:-1] if name.endswith(".") else name  # a trailing dot is a fully qualified name
    if len(bare) > _MAX_NAME or not all(0 < len(label) <= _MAX_LABEL for label in bare.split(".")):
        raise InvalidURL(f"host {whole!r} has an empty label or one longer than {_MAX_LABEL} characters")
    return name


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

    The host is lower-cased (IPv6 addresses written in their short form) and
    the port made explicit, so equal origins compare equal however they were
    written.
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
    if ":" in host:
        host = str(ipaddress.IPv6Address(host))
    return scheme, host.lower(), port


def request_target(url: str | bytes) -> tuple[str, str | None, str | None]:
    """Split a request URL into ``(path, scheme, authority)``.

    ``url`` is normally a path such as ``'/index.html?q=1'``; an absolute URL
    (``'https://example.org/x'``) is accepted too and its scheme and authority
    are returned so the caller can use them. ``'*'`` is kept for OPTIONS.
    ``bytes`` are accepted as hyper 0.7 did. The path comes back ASCII only:
    non-ASCII characters are percent-encoded as UTF-8 (bytes as they are),
    as browsers and httpx do.
    """
    if type(url) is str and _PLAIN_PATH.fullmatch(url) is not None:
        return url, None, None  # the general path below returns it unchanged: skip its steps
    text = _url_text(url)
    if not _encodable(text):  # a lone surrogate: no bytes can carry it
        raise InvalidURL(f"url {url!r} is not valid Unicode (a lone surrogate)")
    if any(c in text for c in _REFUSED_IN_URL):
        raise InvalidURL(f"url {url!r} contains whitespace or control characters")
    charset = "utf-8" if isinstance(url, str) or text.isascii() or _is_utf8(url) else "latin-1"
    if text == "*":
        return text, None, None
    if text.startswith("/"):
        return _escape(text.partition("#")[0], charset), None, None
    if "://" in text:
        try:
            parts = urlsplit(text)
        except ValueError as exc:  # e.g. an unterminated '[' in the authority
            raise InvalidURL(f"cannot parse url {url!r}: {exc}") from exc
        if not parts.netloc:
            raise InvalidURL(f"no authority in {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return _escape(path, charset), parts.scheme, _checked_authority(parts.netloc.rpartition("@")[2], url)
    if not text:
        return "/", None, None
    raise InvalidURL(f"url must be a path starting with '/' or an absolute URL, not {url!r}")


def origin_form(url: str | bytes, scheme: str, authority: str) -> str:
    """The request target for a connection to ``scheme://authority``: ``url`` as a path.

    An absolute URL is accepted only when it names the connection's own
    origin (scheme, host and port, the default port implied); then its path
    is returned. Any other origin, or ``http://`` on a TLS connection (and
    ``https://`` on a cleartext one), is :class:`~hyper.HostChangedError`:
    the request would go to a server the URL does not name.
    """
    path, url_scheme, url_authority = request_target(url)
    if url_scheme is None or url_authority is None:
        return path
    given = origin_of(url_scheme, url_authority)
    if given is None:
        raise InvalidURL(f"only http:// and https:// URLs can be requested, not {url!r}")
    own = origin_of(scheme, authority)
    if given != own:
        raise HostChangedError(
            f"url {url!r} names another origin than this connection's {scheme}://{authority}; "
            "open a connection to that origin instead",
            url=url,
            origin=f"{scheme}://{authority}",
        )
    return path


def _url_text(url: str | bytes) -> str:
    if isinstance(url, str):
        return url
    if isinstance(url, (bytes, bytearray)):
        raw = bytes(url)
        return raw.decode("utf-8") if _is_utf8(raw) else raw.decode("latin-1")
    raise TypeError(f"url must be a str or bytes, not {type(url).__name__}")


def _encodable(text: str) -> bool:
    """Whether ``text`` has UTF-8 bytes (not so with a lone surrogate such as ``'\\ud800'``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_utf8(raw: str | bytes) -> bool:
    if isinstance(raw, str):
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _escape(target: str, charset: str) -> str:
    """Percent-encode what a request target cannot carry; the rest stays as written."""
    if not _NEEDS_ESCAPE.search(target):
        return target  # the common case: nothing to do
    return _NEEDS_ESCAPE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode(charset)), target)


def _checked_authority(authority: str, url: str | bytes) -> str:
    """A URL's authority with its host checked (and in IDNA form when international)."""
    if not authority:
        raise InvalidURL(f"no host in {url!r}")
    host, _ = split_host_port(authority)
    shown = host_literal(host)
    return shown + authority[authority.rfind(":") :] if has_port(authority) else shown

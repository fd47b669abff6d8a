"""URLs on the command line (and in ``location`` headers): checked and split.

Everything that can be wrong with a URL is found here, before a connection
is made, and reported as one :class:`~hyper.cli.status.UsageError` line:
``urllib`` raises bare ``ValueError`` for ``https://[zz]/`` or
``http://[::1/y``, which must never reach the user as a traceback.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlencode, urljoin, urlsplit, urlunsplit

from .status import UsageError

# A host name: letters, digits, hyphens, dots and underscores (seen in the
# wild), or any non-ASCII label (IDNA, left to the connection to encode).
_HOST_NAME = re.compile(r"[A-Za-z0-9._-]+|.*[^\x00-\x7f].*")


@dataclass(frozen=True)
class Target:
    """Where one request goes."""

    url: str
    secure: bool
    #: The host as a connection takes it (IPv6 without brackets).
    host: str
    port: int
    #: Path and query, as sent in the request line / ``:path``.
    path: str
    username: str | None = None
    password: str | None = None

    @property
    def origin(self) -> tuple[bool, str, int]:
        """What a connection can be reused for."""
        return self.secure, self.host.lower(), self.port

    @property
    def authority(self) -> str:
        """``host[:port]`` as the ``host`` header carries it (default port left out)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"


def normalise_url(url: str) -> str:
    """Add the scheme a URL may leave out, and check the result.

    ``https://`` is assumed without a scheme; ``:8443/x`` (HTTPie's shorthand)
    means ``localhost``. Only http and https are allowed.
    """
    if url.startswith(":") and not url.startswith("://"):
        url = "localhost" + url
    if "://" not in url:
        url = "https://" + url
    parse_target(url)  # raises UsageError for anything malformed
    return url


def parse_target(url: str, query: list[tuple[str, str]] | None = None) -> Target:
    """Split an absolute http(s) URL into a :class:`Target`; ``query`` is appended."""
    if any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in url):
        raise UsageError(f"{url!r}: whitespace or control characters are not allowed in URLs")
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError as exc:
        # urllib's words: "Invalid IPv6 URL", "Port out of range 0-65535"...
        raise UsageError(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UsageError(f"unsupported URL scheme {parts.scheme!r} in {url!r} (use http or https)")
    if not hostname:
        raise UsageError(f"no host in URL {url!r}")
    _check_host(parts, hostname, url)
    if port == 0:
        raise UsageError(f"invalid port 0 in URL {url!r}")
    secure = scheme == "https"
    path = parts.path or "/"
    full_query = "&".join(filter(None, [parts.query, urlencode(query or [])]))
    if full_query:
        path += "?" + full_query
    if query:
        url = urlunsplit(parts._replace(query=full_query))
    return Target(
        url=url,
        secure=secure,
        host=hostname,
        port=port or (443 if secure else 80),
        path=path,
        username=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
    )


def _check_host(parts: SplitResult, hostname: str, url: str) -> None:
    bracketed = "[" in parts.netloc.rpartition("@")[2]
    if bracketed:
        try:
            ipaddress.IPv6Address(hostname.split("%", 1)[0])
        except ValueError:
            raise UsageError(f"invalid URL {url!r}: {hostname!r} is not an IPv6 address") from None
    elif not _HOST_NAME.fullmatch(hostname):
        raise UsageError(f"invalid host {hostname!r} in URL {url!r}")


def redirect_target(current: Target, location: str) -> Target:
    """The target of a ``location`` header, relative to ``current``."""
    try:
        joined = urljoin(current.url, location.strip())
    except ValueError as exc:  # urllib checks bracketed hosts while joining
        raise UsageError(f"invalid URL {location!r}: {exc}") from None
    return parse_target(joined)

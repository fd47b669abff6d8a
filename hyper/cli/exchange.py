"""One request and its response, and the next request of a redirect.

hyper adds a few fields on its own (``host``/``:authority``,
``content-length``, ``accept-encoding``, the ``h2c`` upgrade offer, a
proxy's credentials). The command passes the first three itself, so
``--verbose`` shows them exactly as sent; :func:`wire_head` adds the others
by the library's documented rules.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any

from .. import __version__
from .body import JSON_ACCEPT, JSON_TYPE, Body
from .status import UsageError
from .target import Target, redirect_target

#: What hyper decodes, and so asks for.
ACCEPT_ENCODING = "gzip, deflate, br"
#: Methods whose requests carry a body by convention: hyper sends
#: ``content-length: 0`` for them even without one (RFC 9110 8.6).
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
#: The statuses ``--follow`` follows (with a ``location``).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that describe a body: dropped when a redirect turns the request into a GET.
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding"})


@dataclass
class Request:
    """A request as the command sends it."""

    method: str
    target: Target
    #: User and default headers, without ``host`` and ``content-length`` (added per send).
    headers: list[tuple[str, str]]
    body: Body | None
    #: Headers the user removed with ``Header:``.
    unset: set[str] = field(default_factory=set)

    def fields(self) -> list[tuple[str, str]]:
        """Every field the command passes to the library, in order."""
        # host goes first (HTTP/2 turns it into :authority); a Host item replaces hyper's.
        given_host = [(name, value) for name, value in self.headers if name.lower() == "host"]
        fields = given_host[:1] or [("host", self.target.authority)]
        fields += [(name, value) for name, value in self.headers if name.lower() != "host"]
        names = {name.lower() for name, _ in fields}
        if "content-length" not in names and "content-length" not in self.unset:
            if self.body is not None:
                fields.append(("content-length", str(self.body.length)))
            elif self.method in METHODS_WITH_BODY:
                fields.append(("content-length", "0"))
        return fields


def default_headers(
    spec_headers: list[tuple[str, str]],
    unset: set[str],
    target: Target,
    body: Body | None,
    *,
    json_accept: bool,
    download: bool,
) -> list[tuple[str, str]]:
    """The user's headers after the defaults they did not set or remove."""
    given = {name.lower() for name, _ in spec_headers}
    defaults: list[tuple[str, str]] = [("user-agent", f"hyper/{__version__}")]
    # A download wants the bytes as stored, so a resumed Range counts the same bytes.
    defaults.append(("accept-encoding", "identity" if download else ACCEPT_ENCODING))
    json_body = body is not None and body.content_type == JSON_TYPE
    defaults.append(("accept", JSON_ACCEPT if json_accept or json_body else "*/*"))
    if body is not None and body.content_type is not None:
        defaults.append(("content-type", body.content_type))
    if target.username is not None:
        credentials = f"{target.username}:{target.password or ''}".encode()
        defaults.append(("authorization", "Basic " + base64.b64encode(credentials).decode("ascii")))
    headers = [(name, value) for name, value in defaults if name not in given and name not in unset]
    if "accept-encoding" in unset and "accept-encoding" not in given:
        # hyper adds accept-encoding when none is given; "none wanted" is identity.
        headers.append(("accept-encoding", "identity"))
    return headers + list(spec_headers)


@dataclass
class WireHead:
    """A request head as it went out."""

    first_line: str
    fields: list[tuple[str, str]]


def wire_head(request: Request, connection: Any, *, upgrade_offered: bool) -> WireHead:
    """The head of ``request`` as it went on the wire over ``connection``.

    Called after the request was sent, when the connection's protocol is
    known. With ``upgrade_offered`` the request went as HTTP/1.1 carrying
    hyper's ``h2c`` upgrade offer, whatever was chosen after.
    """
    # Both protocols send names in lower case (hyper's header map lower-cases them).
    fields = [(name.lower(), value) for name, value in request.fields()]
    version = "HTTP/1.1" if upgrade_offered else (getattr(connection, "version", None) or "HTTP/1.1")
    target = request.target.path
    if version == "HTTP/2":
        # host travels as the :authority pseudo-header, ahead of the other fields.
        fields = [
            (":authority", value) if name.lower() == "host" else (name, value) for name, value in fields
        ]
        return WireHead(f"{request.method} {target} HTTP/2", fields)
    proxy = getattr(connection, "proxy", None)
    if proxy is not None and not request.target.secure:
        # No tunnel in cleartext: the proxy gets the absolute form and its credentials.
        target = f"http://{request.target.authority}{target}"
        names = {name.lower() for name, _ in fields}
        fields += [
            (_text(name), _text(value))
            for name, value in proxy.headers.items()
            if _text(name).lower() not in names
        ]
    if upgrade_offered:
        # hyper's own SETTINGS (base64url), as the offer carried them.
        settings = getattr(connection, "upgrade_settings", None) or b""
        fields += [
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
            ("http2-settings", _text(settings)),
        ]
    return WireHead(f"{request.method} {target} {version}", fields)


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def offers_upgrade(connection: Any, request: Request, *, negotiating: bool) -> bool:
    """Whether this request carries the ``h2c`` upgrade offer (see :class:`~hyper.HTTPConnection`).

    In cleartext, without a proxy, the first request of a negotiating
    connection does, when it has no body.
    """
    return (
        negotiating
        and not request.target.secure
        and getattr(connection, "proxy", None) is None
        and getattr(connection, "version", "") is None
        and (request.body is None or request.body.length == 0)
    )


def next_request(request: Request, status: int, location: str) -> Request:
    """The request a redirect asks for (as browsers, curl -L and HTTPie do).

    303 turns any method but HEAD into GET; 301 and 302 turn POST into GET;
    307 and 308 repeat the request, body included. Credentials are not sent
    to another host.
    """
    try:
        target = redirect_target(request.target, location)
    except UsageError as exc:
        raise UsageError(f"the server redirected to an invalid location: {exc}") from None
    method, body, headers = request.method, request.body, list(request.headers)
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        headers = [(name, value) for name, value in headers if name.lower() not in _BODY_HEADERS]
    if target.host.lower() != request.target.host.lower():
        headers = [(name, value) for name, value in headers if name.lower() != "authorization"]
    if body is not None:
        body.rewind()
    return replace(request, method=method, target=target, body=body, headers=headers)

"""The ``hyper`` command: one HTTP/2 request from the command line.

::

    hyper [METHOD] URL [Header:Value ...] [name==value ...] [name=value ...] [name:=json ...]

Exit status: 0 when a response arrived (whatever its status code), 1 when the
transport or the protocol failed (one line on stderr: ``hyper: error: ...``),
2 for a usage error.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import ssl
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import unquote, urlencode, urlsplit

from . import __version__
from .common.decoding import ACCEPT_ENCODING
from .common.url import host_literal
from .connection import NEGOTIATED_ALPN, HTTPConnection
from .exceptions import HyperError, InvalidHeader, InvalidURL
from .http20.connection import HTTP20Connection
from .tls import H2_ALPN, init_context

#: The connection class used without ``--h2``.
CONNECTION_CLASS: Any = HTTPConnection
#: ALPN protocols offered by the contexts made for ``--cacert``/``--insecure``;
#: they must suit :data:`CONNECTION_CLASS`.
ALPN: tuple[str, ...] = NEGOTIATED_ALPN

#: Seconds each network wait may take unless ``--timeout`` says otherwise.
DEFAULT_TIMEOUT = 30.0

# Standard methods are recognised in any case; others must be upper case
# (PROPFIND, PURGE, ...), so a host name like "localhost" is never a method.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
_UPPER_METHOD = re.compile(r"[A-Z]+")
# Longest first: at the same position ":=" wins over ":", "==" over "=".
_SEPARATORS = (":=", "==", "=", ":")
# How much of the body is read per step when writing it out.
_CHUNK = 64 * 1024
# A body whose first bytes hold NUL is not printed to a terminal.
_SNIFF = 1024

_INSECURE_WARNING = (
    "hyper: WARNING: --insecure: the server's certificate and host name are NOT checked.\n"
    "hyper: WARNING: anyone on the network path can read and change this exchange.\n"
)


class UsageError(Exception):
    """The command line cannot be turned into a request (exit status 2)."""


@dataclass
class RequestSpec:
    """The request that a command line describes."""

    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    query: list[tuple[str, str]] = field(default_factory=list)
    json_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def body(self) -> bytes | None:
        """The JSON body, or ``None`` without data fields."""
        return json.dumps(self.json_fields).encode("utf-8") if self.json_fields else None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``METHOD``, ``URL`` and items are parsed afterwards)."""
    parser = argparse.ArgumentParser(
        prog="hyper",
        usage="%(prog)s [options] [METHOD] URL [ITEM ...]",
        description="Send one HTTP request (HTTP/2 where the server offers it) and write the "
        "response body to stdout.",
        epilog=(
            "items: 'Header:Value' adds a header, 'name==value' a query parameter, "
            "'name=value' a JSON string field, 'name:=json' a raw JSON field. "
            "JSON fields make a POST unless METHOD is given. "
            "Exit status: 0 response received, 1 transport or protocol error, 2 usage error."
        ),
    )
    parser.add_argument(
        "words",
        nargs="+",
        metavar="ARG",
        help="the METHOD (optional: GET, or POST with JSON fields), the URL (https:// when "
        "no scheme is given), then any ITEMs",
    )
    parser.add_argument("--h2", action="store_true", help="speak HTTP/2 without negotiating it")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show request and response headers on stderr"
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the body to FILE (progress on a terminal)"
    )
    parser.add_argument("--cacert", metavar="FILE", help="trust the CA certificates in FILE (or directory)")
    parser.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the server's certificate (dangerous)"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"bound on each network wait (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--version", action="version", version=f"hyper {__version__}")
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def parse_words(words: Sequence[str]) -> RequestSpec:
    """Split ``[METHOD] URL [ITEM ...]`` into a :class:`RequestSpec`."""
    words = list(words)
    method: str | None = None
    if len(words) > 1 and (words[0].upper() in _METHODS or _UPPER_METHOD.fullmatch(words[0])):
        method = words.pop(0).upper()
    url, items = words[0], words[1:]
    spec = RequestSpec(method or "GET", normalise_url(url))
    for item in items:
        add_item(spec, item)
    if method is None and spec.json_fields:
        spec.method = "POST"
    return spec


def normalise_url(url: str) -> str:
    """``https://`` is assumed without a scheme; only http and https are allowed."""
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise UsageError(f"unsupported URL scheme {parts.scheme!r} (use http or https)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise UsageError(f"invalid port in URL {url!r}") from None
    if not parts.hostname:
        raise UsageError(f"no host in URL {url!r}")
    return url


def add_item(spec: RequestSpec, item: str) -> None:
    """Add one ``Header:Value``, ``name==value``, ``name=value`` or ``name:=json`` item."""
    found: tuple[int, str] | None = None
    for separator in _SEPARATORS:
        index = item.find(separator)
        if index > 0 and (found is None or index < found[0]):
            found = (index, separator)
    if found is None:
        raise UsageError(f"{item!r} is not an item: use Header:Value, name==value, name=value or name:=json")
    index, separator = found
    name, value = item[:index], item[index + len(separator) :]
    if separator == ":":
        if any(c.isspace() for c in name):
            raise UsageError(f"invalid header name {name!r}")
        if any(c in value for c in "\r\n\x00"):
            raise UsageError(f"header {name!r}: CR, LF and NUL are not allowed in values")
        spec.headers.append((name, value.strip()))
    elif separator == "==":
        spec.query.append((name, value))
    elif separator == "=":
        spec.json_fields[name] = value
    else:
        try:
            spec.json_fields[name] = json.loads(value)
        except ValueError as exc:
            raise UsageError(f"{item!r}: the value after := is not JSON ({exc})") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line tool; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_intermixed_args(argv)
        try:
            spec = parse_words(args.words)
            if args.cacert is not None and not os.path.exists(args.cacert):
                raise UsageError(f"--cacert {args.cacert}: no such file or directory")
        except UsageError as exc:
            parser.error(str(exc))
    except SystemExit as exc:  # argparse's way to end: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if args.insecure:
        sys.stderr.write(_INSECURE_WARNING)
        sys.stderr.flush()
    try:
        return _run(args, spec)
    except (InvalidURL, InvalidHeader) as exc:
        # Refused before anything was sent: the command line was at fault.
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"hyper: error: {_one_line(exc)}\n")
        return 2
    except (HyperError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):
            return _broken_pipe()
        sys.stderr.write(f"hyper: error: {_one_line(exc)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("hyper: interrupted\n")
        return 130


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no details)"
    return f"{type(exc).__name__}: {text}"


def _broken_pipe() -> int:
    # The reader of stdout went away (``hyper URL | head``). Point stdout at
    # /dev/null so the interpreter's final flush cannot fail a second time.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 1


def _run(args: argparse.Namespace, spec: RequestSpec) -> int:
    parts = urlsplit(spec.url)
    secure = parts.scheme.lower() == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    path = parts.path or "/"
    query = "&".join(filter(None, [parts.query, urlencode(spec.query)]))
    if query:
        path += "?" + query

    headers = _request_headers(spec, parts.username, parts.password)
    connection = _connection(args, host, port, secure)
    with connection:
        connection.connect()
        if args.verbose:
            _show_connection(connection, host, port, secure)
            _show_request(spec.method, path, connection, headers)
        stream_id = connection.request(spec.method, path, body=spec.body, headers=headers)
        response = connection.getresponse(stream_id)
        if args.verbose:
            _show_response(response, connection)
        with response:
            if args.output is not None:
                _write_to_file(response, args.output)
            else:
                _write_to_stdout(response)
            if args.verbose and response.trailers:
                _show_fields("< ", response.trailers.items())
    return 0


def _request_headers(spec: RequestSpec, username: str | None, password: str | None) -> list[tuple[str, str]]:
    given = {name.lower() for name, _ in spec.headers}
    headers: list[tuple[str, str]] = []
    defaults = [("user-agent", f"hyper/{__version__}"), ("accept-encoding", ACCEPT_ENCODING.decode())]
    if spec.json_fields:
        defaults += [("content-type", "application/json"), ("accept", "application/json, */*;q=0.5")]
    else:
        defaults.append(("accept", "*/*"))
    if username is not None:
        credentials = f"{unquote(username)}:{unquote(password or '')}".encode()
        defaults.append(("authorization", "Basic " + base64.b64encode(credentials).decode("ascii")))
    headers += [(name, value) for name, value in defaults if name not in given]
    headers += spec.headers
    return headers


def _connection(args: argparse.Namespace, host: str, port: int, secure: bool) -> Any:
    """The connection for the URL; ``--h2`` always means HTTP/2 without negotiation."""
    kwargs: dict[str, Any] = {"secure": secure, "timeout": args.timeout}
    if args.h2:
        cls: Any = HTTP20Connection
        alpn: tuple[str, ...] = H2_ALPN
        if secure:
            kwargs["force_proto"] = "h2"
    else:
        cls, alpn = CONNECTION_CLASS, ALPN
    if secure and (args.cacert is not None or args.insecure):
        context = init_context(cert_path=args.cacert, alpn=alpn)
        if args.insecure:
            context.check_hostname = False  # must come before CERT_NONE
            context.verify_mode = ssl.CERT_NONE
        kwargs["ssl_context"] = context
    return cls(host_literal(host), port, **kwargs)


# -- output -------------------------------------------------------------------------------


def _binary_stdout() -> IO[bytes]:
    buffer: IO[bytes] | None = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        raise OSError("stdout does not accept bytes")
    return buffer


def _write_to_stdout(response: Any) -> None:
    out = _binary_stdout()
    chunks = response.read_chunked()
    first = next(chunks, b"")
    if first and sys.stdout.isatty() and b"\x00" in first[:_SNIFF]:
        sys.stderr.write("hyper: the body is binary data; not shown on a terminal (use --output FILE)\n")
        return  # leaving the with block resets the stream
    out.write(first)
    for chunk in chunks:
        out.write(chunk)
    out.flush()


def _write_to_file(response: Any, path: str) -> None:
    progress = None
    if sys.stderr.isatty():
        progress = Progress(sys.stderr, _expected_length(response))
    with open(path, "wb") as out:
        for chunk in response.read_chunked():
            out.write(chunk)
            if progress is not None:
                progress.update(len(chunk))
    if progress is not None:
        progress.finish()


def _expected_length(response: Any) -> int | None:
    """The decoded length, when the headers tell it (no content-encoding)."""
    if response.headers.get(b"content-encoding"):
        return None
    value = response.headers.get_first(b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def _show_connection(connection: Any, host: str, port: int, secure: bool) -> None:
    protocol = getattr(connection, "negotiated_protocol", None)
    version = getattr(connection, "version", None)
    if secure:
        if protocol:
            how = f"TLS, ALPN protocol {protocol}"
        else:
            how = f"TLS, no ALPN protocol ({'HTTP/2 forced' if version == 'HTTP/2' else version})"
    elif version is None:
        # Cleartext negotiation happens with the first request (h2c upgrade).
        how = "cleartext, protocol chosen with the first request"
    elif version == "HTTP/2":
        how = "cleartext, HTTP/2 with prior knowledge"
    else:
        how = f"cleartext, {version}"
    sys.stderr.write(f"* connected to {host}:{port} ({how})\n")


def _show_request(method: str, path: str, connection: Any, headers: list[tuple[str, str]]) -> None:
    version = getattr(connection, "version", None) or "HTTP/1.1 (offering an upgrade to h2c)"
    sys.stderr.write(f"> {method} {path} {version}\n")
    authority = ":authority" if version == "HTTP/2" else "host"
    sys.stderr.write(f"> {authority}: {connection.authority}\n")
    # HTTP/2 sends names in lower case; show them as they go out.
    _show_fields("> ", [(n.lower().encode(), v.encode()) for n, v in headers])


def _show_response(response: Any, connection: Any) -> None:
    version = getattr(connection, "version", "HTTP/2")
    sys.stderr.write(f"< {version} {response.status} {response.reason}\n")
    _show_fields("< ", response.headers.items())


def _show_fields(prefix: str, fields: Sequence[tuple[bytes, bytes]]) -> None:
    for name, value in fields:
        sys.stderr.write(f"{prefix}{name.decode('latin-1')}: {value.decode('latin-1')}\n")
    sys.stderr.write(f"{prefix}\n")
    sys.stderr.flush()


class Progress:
    """A one-line progress bar for downloads, redrawn in place on a terminal.

    :param stream: where to draw (the CLI passes stderr, and only when it is a terminal).
    :param total: the expected number of bytes, or ``None`` when unknown.
    """

    #: Seconds between two redraws: often enough to look alive, rarely enough to cost nothing.
    INTERVAL = 0.1
    WIDTH = 30

    def __init__(self, stream: IO[str], total: int | None) -> None:
        self._stream = stream
        self._total = total
        self._done = 0
        self._drawn_at: float | None = None

    def update(self, count: int) -> None:
        """Count ``count`` more bytes; redraw if the last drawing is old enough."""
        self._done += count
        now = time.monotonic()
        if self._drawn_at is None or now - self._drawn_at >= self.INTERVAL:
            self._drawn_at = now
            self._draw()

    def finish(self) -> None:
        """Draw the final state and end the line."""
        self._draw()
        self._stream.write("\n")
        self._stream.flush()

    def line(self) -> str:
        """The text of the bar as it stands."""
        done = _size(self._done)
        if not self._total:
            return f"{done} received"
        fraction = min(self._done / self._total, 1.0)
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        return f"[{bar}] {fraction:4.0%} {done} / {_size(self._total)}"

    def _draw(self) -> None:
        # \r returns to the start of the line; \x1b[K clears what a longer line left.
        self._stream.write("\r" + self.line() + "\x1b[K")
        self._stream.flush()


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover

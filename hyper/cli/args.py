"""The options of the ``hyper`` command, and the checks that need several of them.

Option names follow HTTPie's. argparse would print the usage and exit on its
own; :class:`Parser` raises :class:`~hyper.cli.status.UsageError` instead, so
``main`` reports every usage error the same way: one line, exit status 2.
"""

from __future__ import annotations

import argparse
import os
from typing import NoReturn

from .. import __version__
from .connections import Proxy, parse_proxy_option
from .output import PRINT_LETTERS
from .status import UsageError

#: Seconds each network wait may take unless ``--timeout`` says otherwise.
DEFAULT_TIMEOUT = 30.0
#: Redirects ``--follow`` takes before giving up (HTTPie's default).
DEFAULT_MAX_REDIRECTS = 30

EPILOG = """\
items:
  Header:Value      a request header (Header: removes a default one, Header; sends it empty)
  name==value       a query parameter
  name=value        a data field: a JSON string, or a form field with --form
  name:=json        a raw JSON data field (name:=3, tags:='["a"]')
  name=@file        a data field holding the text of file
  name:=@file.json  a raw JSON data field read from file.json
  name@file         a file upload (multipart, needs --form); name@file;type=image/png
  @file             the whole request body, from file

With data items or a body (from @file or stdin) the default method is POST.

exit status:
  0  a response arrived (any status, unless --check-status)
  1  the transport or protocol failed, or a download was incomplete
  2  a usage error (nothing was sent), or a timeout (--timeout)
  3, 4, 5  with --check-status: a 3xx (not followed), 4xx or 5xx response
  6  --follow met more than --max-redirects redirects
  130  interrupted (Ctrl-C)
"""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are :class:`UsageError` exceptions."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing and exiting."""
        raise UsageError(message)


def build_parser() -> Parser:
    """The parser of hyper's options (``METHOD``, ``URL`` and items are words, parsed later)."""
    parser = Parser(
        prog="hyper",
        usage="%(prog)s [options] [METHOD] URL [ITEM ...]",
        description="Send an HTTP request (HTTP/2 where the server offers it) and print the response.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    parser.add_argument(
        "words",
        nargs="*",
        metavar="ARG",
        help="the METHOD (optional), the URL (https:// when no scheme is given; :PORT/path for "
        "localhost), then any ITEMs",
    )
    body = parser.add_argument_group("request body")
    kind = body.add_mutually_exclusive_group()
    kind.add_argument(
        "-j", "--json", action="store_const", dest="mode", const="json",
        help="data items as a JSON object (the default)",
    )  # fmt: skip
    kind.add_argument(
        "-f", "--form", action="store_const", dest="mode", const="form",
        help="data items as a form (urlencoded; multipart with name@file items)",
    )  # fmt: skip
    kind.add_argument(
        "--multipart", action="store_const", dest="mode", const="multipart",
        help="data items as a multipart form, even without files",
    )  # fmt: skip
    body.add_argument("--ignore-stdin", action="store_true", help="never read a body from stdin")

    output = parser.add_argument_group("output")
    output.add_argument(
        "-p", "--print", dest="print_parts", metavar="WHAT",
        help="what to print: H request headers, B request body, h response headers, "
        "b response body (default: hb on a terminal, b otherwise)",
    )  # fmt: skip
    output.add_argument(
        "-h", "--headers", dest="print_parts", action="store_const", const="h",
        help="print only the response headers (--print=h)",
    )  # fmt: skip
    output.add_argument(
        "-b", "--body", dest="print_parts", action="store_const", const="b",
        help="print only the response body (--print=b)",
    )  # fmt: skip
    output.add_argument(
        "-v", "--verbose", action="store_true",
        help="print the whole exchange as it went on the wire (--print=HBhb), and how the "
        "connection was made (on stderr)",
    )  # fmt: skip
    output.add_argument("--all", action="store_true", help="with --follow, print the redirects too")
    output.add_argument("-o", "--output", metavar="FILE", help="write the output to FILE instead of stdout")
    output.add_argument(
        "-d", "--download", action="store_true",
        help="save the response body to a file (named from the response, or --output), "
        "with a progress bar",
    )  # fmt: skip
    output.add_argument(
        "-c", "--continue", dest="resume", action="store_true",
        help="with --download --output: resume a partial download",
    )  # fmt: skip
    output.add_argument("-q", "--quiet", action="store_true", help="no warnings, no progress bar")
    output.add_argument(
        "--check-status", action="store_true",
        help="exit with 3, 4 or 5 for a 3xx (not followed), 4xx or 5xx response",
    )  # fmt: skip

    network = parser.add_argument_group("network")
    network.add_argument("-F", "--follow", action="store_true", help="follow redirects")
    network.add_argument(
        "--max-redirects", type=_non_negative_int, default=DEFAULT_MAX_REDIRECTS, metavar="N",
        help=f"with --follow, give up after N redirects (default {DEFAULT_MAX_REDIRECTS})",
    )  # fmt: skip
    network.add_argument(
        "--timeout", type=_positive_float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help=f"bound on each network wait (default {DEFAULT_TIMEOUT:g})",
    )  # fmt: skip
    network.add_argument(
        "--proxy", action="append", default=[], metavar="PROTOCOL:URL",
        help="use a proxy for http or https URLs, e.g. https:http://proxy:3128 "
        "(default: the *_proxy and NO_PROXY environment)",
    )  # fmt: skip
    network.add_argument("--h2", action="store_true", help="speak HTTP/2 without negotiating it")
    network.add_argument("--cacert", metavar="FILE", help="trust the CA certificates in FILE (or directory)")
    network.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the server's certificate (dangerous)"
    )
    network.add_argument(
        "--verify", choices=("yes", "no"), help=argparse.SUPPRESS
    )  # HTTPie's spelling of --insecure
    other = parser.add_argument_group("other")
    other.add_argument("--help", action="help", help="show this help and exit")
    other.add_argument("--version", action="version", version=f"hyper {__version__}")
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0: {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def parse_args(parser: Parser, argv: list[str]) -> argparse.Namespace:
    """Parse and cross-check the options; raises :class:`UsageError`."""
    args = parser.parse_intermixed_args(argv)
    if args.verify == "no":
        args.insecure = True
    # -j/--json sends the JSON accept header even without data fields (HTTPie).
    args.json_explicit = args.mode == "json"
    args.mode = args.mode or "json"
    if args.print_parts is None:
        args.print_parts = "HBhb" if args.verbose else None
    elif not args.print_parts or set(args.print_parts) - PRINT_LETTERS:
        raise UsageError(f"--print {args.print_parts!r}: use the letters H, B, h and b")
    if args.resume and not (args.download and args.output):
        raise UsageError("--continue needs --download and --output FILE")
    if args.all and not args.follow and not args.download:
        raise UsageError("--all needs --follow")
    if args.cacert is not None and not os.path.exists(args.cacert):
        raise UsageError(f"--cacert {args.cacert}: no such file or directory")
    proxies: dict[str, Proxy] = {}
    for text in args.proxy:
        protocol, proxy = parse_proxy_option(text)
        proxies[protocol] = proxy
    args.proxies = proxies
    if args.download:
        args.follow = True  # as HTTPie: a download follows redirects to the file
    return args

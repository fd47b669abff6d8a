"""``main``: one run of the ``hyper`` command, from the command line to the exit status.

Order matters for the promises the command makes:

1. Everything the command line names is checked and opened first (URL,
   items, files, stdin, ``--output``): a usage error exits with 2, in one
   line on stderr, and nothing is sent.
2. The request goes out (and, with ``--follow``, the redirects after it).
3. What ``--print`` chose is written as it arrives; a download goes to its file.
4. The exit status tells how it went (see :mod:`hyper.cli.status`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .args import build_parser, parse_args
from .items import parse_words
from .status import USAGE_ERROR, ExitStatus, UsageError
from .transfer import Transfer

_INSECURE_WARNING = (
    "hyper: warning: --insecure: the server's certificate and host name are NOT checked.\n"
    "hyper: warning: anyone on the network path can read and change this exchange.\n"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line tool; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parse_args(parser, argv)
        spec = parse_words(args.words)
        transfer = Transfer.prepare(args, spec)
    except UsageError as exc:
        return usage_error(str(exc))
    except SystemExit as exc:  # --help and --version end the parse this way
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        sys.stderr.write("hyper: interrupted before anything was sent\n")
        return ExitStatus.ERROR_CTRL_C
    except OSError as exc:  # stdin or stdout unusable
        sys.stderr.write(f"hyper: error: {' '.join(str(exc).split())}\n")
        return ExitStatus.ERROR
    if args.insecure and not args.quiet:
        sys.stderr.write(_INSECURE_WARNING)
        sys.stderr.flush()
    return transfer.run()


def usage_error(message: str) -> int:
    """Report a usage error: one line on stderr, exit status 2."""
    text = " ".join(message.split()) or "(no details)"
    sys.stderr.write(f"hyper: error: {text} (see hyper --help)\n")
    sys.stderr.flush()
    return USAGE_ERROR

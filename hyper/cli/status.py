"""Exit statuses of the ``hyper`` command, and the errors that lead to them.

The numbers are HTTPie's, so scripts written for ``http`` read ``hyper``'s
the same way.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What the process exit status means."""

    SUCCESS = 0
    #: The transport or the protocol failed, or a download was incomplete.
    ERROR = 1
    #: A network wait ran past ``--timeout`` (argparse's usage errors share the number).
    ERROR_TIMEOUT = 2
    #: With ``--check-status``: a 3xx that was not followed.
    ERROR_HTTP_3XX = 3
    #: With ``--check-status``: a 4xx.
    ERROR_HTTP_4XX = 4
    #: With ``--check-status``: a 5xx.
    ERROR_HTTP_5XX = 5
    #: ``--follow`` met more than ``--max-redirects`` redirects.
    ERROR_TOO_MANY_REDIRECTS = 6
    #: Ctrl-C (128 + SIGINT, as shells report it).
    ERROR_CTRL_C = 130


#: Usage errors exit with 2, as argparse (and so HTTPie) does.
USAGE_ERROR = 2


class UsageError(Exception):
    """The command line cannot be turned into a request (exit status 2, nothing sent)."""


class TooManyRedirects(Exception):
    """``--follow`` met more redirects than ``--max-redirects`` allows (exit status 6)."""


class IncompleteDownload(Exception):
    """The body ended before the length the server announced (exit status 1)."""


def exit_status_for(status: int, follow: bool) -> ExitStatus:
    """The ``--check-status`` exit status for an HTTP status code.

    A 3xx counts as an error only when redirects are not followed: with
    ``--follow`` a final 3xx (a 304, or a redirect without ``location``) is
    the answer itself.
    """
    if 300 <= status < 400 and not follow:
        return ExitStatus.ERROR_HTTP_3XX
    if 400 <= status < 500:
        return ExitStatus.ERROR_HTTP_4XX
    if 500 <= status < 600:
        return ExitStatus.ERROR_HTTP_5XX
    return ExitStatus.SUCCESS

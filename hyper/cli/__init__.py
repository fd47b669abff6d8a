"""The ``hyper`` command: HTTP requests from the command line, HTTP/2 where the server offers it.

::

    hyper [options] [METHOD] URL [ITEM ...]

The syntax and the exit statuses follow HTTPie's (see :doc:`/cli`). One job
per module:

========================  ==========================================================
:mod:`~hyper.cli.run`     ``main``: from the command line to the exit status
:mod:`~hyper.cli.args`    the options and the checks across them
:mod:`~hyper.cli.items`   ``[METHOD] URL [ITEM ...]`` as a :class:`RequestSpec`
:mod:`~hyper.cli.target`  URLs checked and split
:mod:`~hyper.cli.body`    JSON, forms, multipart, ``@file`` and stdin bodies
:mod:`~hyper.cli.connections`  TLS choices, proxies, one connection per origin
:mod:`~hyper.cli.exchange`  headers, the request head as sent, redirects
:mod:`~hyper.cli.transfer`  one run: send, follow, print or download
:mod:`~hyper.cli.output`  what ``--print`` shows
:mod:`~hyper.cli.download`  ``--output`` and ``--download`` files
:mod:`~hyper.cli.progress`  the progress bar
:mod:`~hyper.cli.status`  exit statuses
========================  ==========================================================
"""

from __future__ import annotations

from .items import RequestSpec, parse_words
from .progress import Progress
from .run import main
from .status import ExitStatus, UsageError

__all__ = ["ExitStatus", "Progress", "RequestSpec", "UsageError", "main", "parse_words"]

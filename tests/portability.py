"""Run the tests as on a platform without ``select.poll`` (Windows).

``HYPER_TEST_NO_POLL=1`` in the environment makes :func:`hide_poll_during_hyper_import`
import hyper while ``select.poll`` is absent, so hyper decides, once and for
the whole run, to wait with its ``select()`` fallback. ``tools/run-tests.sh``
runs the socket, session and connection tests a second time that way.
"""

from __future__ import annotations

import importlib
import os
import select
import sys

#: Environment variable that switches the suite to hyper's no-poll path.
NO_POLL_VARIABLE = "HYPER_TEST_NO_POLL"


def poll_hidden_requested() -> bool:
    """Whether this test run asked for hyper's no-poll path."""
    return os.environ.get(NO_POLL_VARIABLE, "") not in ("", "0")


def hide_poll_during_hyper_import() -> None:
    """Import hyper with ``select.poll`` missing when the run asks for it.

    Only the import sees poll missing: hyper checks for it once, at import,
    and the standard library (subprocess, selectors) still needs it later.
    Fails loudly if hyper was already imported, since then the switch would
    silently test the poll path instead.
    """
    if not poll_hidden_requested():
        return
    if "hyper.common.sockets" in sys.modules:
        raise RuntimeError(f"{NO_POLL_VARIABLE}=1 but hyper was imported before the switch")
    saved = select.poll
    del select.poll
    try:
        sockets = importlib.import_module("hyper.common.sockets")
        importlib.import_module("hyper")
    finally:
        select.poll = saved
    if sockets.HAVE_POLL:
        raise RuntimeError(f"{NO_POLL_VARIABLE}=1 but hyper still chose poll()")

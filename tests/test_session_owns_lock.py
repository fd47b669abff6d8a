"""The HTTP/2 session is the only owner of the core and of its state lock (issue 13, item 1).

The thread-safety argument lives in :mod:`hyper.http20.session`; it holds
only if no other module takes the session's lock, waits on its condition,
reaches into its core or calls the methods that expect the lock held. This
test reads every module of the package (with :mod:`ast`, not by running it)
and fails on any such use outside the session's own modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hyper

PACKAGE = Path(hyper.__file__).parent
# The session: its operations, its socket half, its uploads, its push, PING
# and SETTINGS operations, and its wake-ups.
SESSION_MODULES = {
    "session.py",
    "session_push_ping_settings.py",
    "session_wire.py",
    "session_send.py",
    "session_responses.py",
    "session_reader.py",
    "session_upload.py",
    "session_wakeups.py",
    "session_batch.py",
    "session_coalesce.py",
    "session_flusher.py",
    "session_file_upload.py",
    "session_upload_turns.py",
}
# HTTP/1.1's lock belongs to its Channel (hyper/http11/channel.py). The
# connection's policy and the two halves of the exchange state machine work
# under it (``with channel.locked(): ... *_locked()``); what must hold for
# HTTP/1.1 is that the response and everything outside these modules talk to
# an exchange through ExchangeBody only.
CHANNEL_MODULES = {"channel.py", "connection.py", "sending.py", "receiving.py"}
# The session's condition and core (a session's lock is ``_lock``, checked too).
SESSION_PRIVATE = {"core", "_core", "cond", "_cond", "_state_lock"}


def offences(tree: ast.AST) -> list[str]:
    """Uses in ``tree`` of the session's lock, condition, core or ``*_locked`` methods."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        receiver = node.value
        on_self = isinstance(receiver, ast.Name) and receiver.id == "self"
        if on_self:
            continue  # a class's own lock, condition or *_locked helper is its own business
        if node.attr in SESSION_PRIVATE:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif node.attr == "_lock":
            found.append(f"line {node.lineno}: another object's ._lock")
        elif node.attr.endswith("_locked"):
            # "_locked" methods expect their object's lock held by the caller.
            found.append(f"line {node.lineno}: .{node.attr}() of another object")
    return sorted(found, key=lambda entry: int(entry.split(":")[0].split()[1]))


def test_only_the_session_names_its_lock_condition_and_core() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20  # the package was found
    report = {}
    for path in modules:
        if path.parent.name == "http20" and path.name in SESSION_MODULES:
            continue
        if path.parent.name == "http11" and path.name in CHANNEL_MODULES:
            continue
        found = offences(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if found:
            report[str(path.relative_to(PACKAGE))] = found
    assert report == {}


def test_the_check_catches_each_kind_of_use() -> None:
    source = (
        "with session.cond:\n"
        "    session.discard_locked(1)\n"
        "core = session.core\n"
        "session._lock.acquire()\n"
        "self._lock.release()\n"  # a class's own lock: allowed
        "self._cond.wait()\n"  # its own condition: allowed
        "self._take_id_locked()\n"  # its own *_locked helper: allowed
    )
    assert offences(ast.parse(source)) == [
        "line 1: .cond",
        "line 2: .discard_locked() of another object",
        "line 3: .core",
        "line 4: another object's ._lock",
    ]


def test_the_session_states_its_thread_safety_argument() -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / "http20" / "session.py").read_text(encoding="utf-8")))
    assert doc is not None
    for point in ("One state lock", "Frames leave in the order", "One reader", "RFC 9113 section 5.1.1"):
        assert point in doc

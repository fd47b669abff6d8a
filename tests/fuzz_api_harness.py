"""Machinery of the API fuzzer: the recording server's log, bounded runs, a watchdog.

Nothing here decides what hyper must do (that is :mod:`tests.fuzz_api_inputs`
and the tests); this module runs calls with bounded waits and collects what
happened.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import hyper
from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection, HyperError
from tests.fuzz_recorder_app import CONTROL_PREFIX, TAG_HEADER
from tests.servers import CertFiles, start_hypercorn
from tests.waiting import current_frames

#: The connection classes the fuzzer drives, by a short name.
KINDS = ("HTTP20Connection", "HTTP11Connection", "HTTPConnection")

#: Exceptions a call may raise, as docs/api.rst promises.
DOCUMENTED = (HyperError, TypeError, ValueError)

_tags = itertools.count(1)


def new_tag(prefix: str = "t") -> str:
    """A tag no other request of this session carries."""
    return f"{prefix}{next(_tags)}"


def sha256(data: bytes) -> str:
    """Hex SHA-256 of *data*, as the recorder reports bodies."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class RecorderServer:
    """The hypercorn process running :mod:`tests.fuzz_recorder_app`."""

    port: int
    ca_file: str | None
    _control: HTTP20Connection | None = None

    @property
    def tls(self) -> bool:
        """Whether the server speaks TLS (else cleartext: HTTP/1.1, h2c upgrade, prior knowledge)."""
        return self.ca_file is not None

    @property
    def authority(self) -> str:
        return f"localhost:{self.port}"

    def connect(self, kind: str, timeout: Any = 10.0) -> Any:
        """A new connection of class *kind* to the recorder (TLS with the test CA, or cleartext)."""
        if not self.tls:
            cleartext = {"HTTP20Connection": HTTP20Connection, "HTTP11Connection": HTTP11Connection}
            return cleartext.get(kind, HTTPConnection)(self.authority, secure=False, timeout=timeout)
        if kind == "HTTP11Connection":
            context = hyper.tls.init_context(cert_path=self.ca_file, alpn=("http/1.1",))
            return HTTP11Connection(self.authority, secure=True, ssl_context=context, timeout=timeout)
        context = hyper.tls.init_context(cert_path=self.ca_file)
        cls = HTTP20Connection if kind == "HTTP20Connection" else HTTPConnection
        return cls(self.authority, secure=True, ssl_context=context, timeout=timeout)

    def _log(self, since: int) -> dict[str, Any]:
        if self._control is None:
            self._control = self.connect("HTTP20Connection")
        response = self._control.getresponse(
            self._control.request("GET", f"{CONTROL_PREFIX}log?since={since}")
        )
        document: dict[str, Any] = json.loads(response.read())
        return document

    def mark(self) -> int:
        """The number of requests recorded so far (a start for :meth:`records_since`)."""
        return int(self._log(10**9)["next"])

    def records_since(self, mark: int) -> list[dict[str, Any]]:
        """Every request recorded from *mark* on, in arrival order."""
        return list(self._log(mark)["records"])

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None


def _serve_recorder(directory: Path, cert: CertFiles | None, ca_file: str | None) -> Iterator[RecorderServer]:
    """hypercorn (TLS with ``cert``, else cleartext) serving the recording app, until the generator closes."""
    process, port = start_hypercorn(directory, cert, app="tests.fuzz_recorder_app:app")
    server = RecorderServer(port, ca_file)
    try:
        yield server
    finally:
        server.close()
        process.stop()


def recorder_server(
    tmp_path_factory: pytest.TempPathFactory, server_cert_files: CertFiles, ca_file: str
) -> Iterator[RecorderServer]:
    """hypercorn over TLS serving the recording app, with a client for its log.

    Made a fixture by each test module (``pytest.fixture(scope="module")``).
    """
    yield from _serve_recorder(tmp_path_factory.mktemp("hypercorn-fuzz"), server_cert_files, ca_file)


def recorder_server_cleartext(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecorderServer]:
    """The recording app on cleartext hypercorn: HTTP/1.1, ``Upgrade: h2c`` and prior knowledge."""
    yield from _serve_recorder(tmp_path_factory.mktemp("hypercorn-fuzz-h2c"), None, None)


def all_stacks() -> str:
    """Every thread's stack, for the report of a stuck thread."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    parts = []
    for ident, frame in current_frames().items():
        parts.append(f"--- thread {names.get(ident, '?')} ({ident}) ---\n")
        parts.append("".join(traceback.format_stack(frame)))
    return "".join(parts)


@dataclass
class Outcome:
    """What one call did: its result or its exception."""

    what: str
    result: Any = None
    error: BaseException | None = None

    @property
    def refused(self) -> bool:
        """Raised a ``TypeError``/``ValueError`` (hyper's argument checks)."""
        return isinstance(self.error, (TypeError, ValueError))

    def __repr__(self) -> str:
        if self.error is not None:
            return f"{self.what} -> {type(self.error).__name__}: {self.error}"
        return f"{self.what} -> {self.result!r}"


def call(what: str, function: Callable[[], Any]) -> Outcome:
    """Run *function*; an undocumented exception fails the test at once."""
    try:
        return Outcome(what, result=function())
    except DOCUMENTED as exc:
        return Outcome(what, error=exc)
    except Exception as exc:  # noqa: BLE001 - the property under test: nothing else may escape
        pytest.fail(f"{what} raised an undocumented {type(exc).__name__}: {exc!r}\n{traceback.format_exc()}")


def run_bounded(function: Callable[[], None], limit: float, on_stuck: Callable[[], None]) -> None:
    """Run *function* in a thread; fail with every stack if it outlives *limit* seconds.

    *on_stuck* runs first (closing the connection, to let the thread go).
    """
    failure: list[BaseException] = []

    def target() -> None:
        try:
            function()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            failure.append(exc)

    worker = threading.Thread(target=target, name="fuzz-example", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        stacks = all_stacks()
        on_stuck()
        worker.join(limit)
        pytest.fail(f"a call was still waiting after {limit} s (its timeouts are far shorter)\n{stacks}")
    if failure:
        raise failure[0]


class Step:
    """One operation of a thread's program, and what it did.

    A plain class (not a dataclass) so hypothesis prints it by its repr.
    """

    def __init__(self, thread: int, op: str, args: tuple[Any, ...] = ()) -> None:
        self.thread = thread
        self.op = op
        self.args = args
        self.done = threading.Event()
        self.outcome: Outcome | None = None

    def __repr__(self) -> str:
        return f"T{self.thread}.{self.op}{self.args!r}"


class ProgramRunner:
    """Runs per-thread operation lists on 2-4 threads in one global order.

    The test thread hands out steps one at a time: each thread takes its
    steps from its own queue (a list guarded by a Condition), in order. The
    next step is handed out when the previous one finished, or when it had
    not finished after ``yield_after`` seconds (it is waiting for another
    thread's later step, e.g. an HTTP/1.1 wire held until a final send).
    That wait only shapes the interleaving; no check depends on it.
    """

    def __init__(self, threads: int, execute: Callable[[Step], Any], yield_after: float) -> None:
        self._execute = execute
        self._yield_after = yield_after
        self._cond = threading.Condition()
        self._queues: list[list[Step | None]] = [[] for _ in range(threads)]
        self._workers = [
            threading.Thread(target=self._work, args=(index,), name=f"fuzz-T{index}", daemon=True)
            for index in range(threads)
        ]
        self.errors: list[BaseException] = []

    def _work(self, index: int) -> None:
        while True:
            with self._cond:  # the queues, written by the test thread
                self._cond.wait_for(lambda: bool(self._queues[index]))
                step = self._queues[index].pop(0)
            if step is None:
                return
            try:
                step.outcome = self._execute(step)
            except BaseException as exc:  # noqa: BLE001 - pytest.fail from call(): raised by stop()
                self.errors.append(exc)
                step.outcome = Outcome(step.op, error=exc)
            finally:
                step.done.set()

    def start(self) -> None:
        """Start the threads (they wait for steps)."""
        for worker in self._workers:
            worker.start()

    def feed(self, steps: list[Step], limit: float, on_stuck: Callable[[], None]) -> None:
        """Hand out *steps* in order and wait until all are done (at most *limit* s each)."""
        for step in steps:
            with self._cond:  # the queues, read by the threads
                self._queues[step.thread].append(step)
                self._cond.notify_all()
            step.done.wait(self._yield_after)
        for step in steps:
            if not step.done.wait(limit):
                self._stuck(steps, limit, on_stuck)

    def stop(self, limit: float, on_stuck: Callable[[], None]) -> None:
        """End the threads; fail if one is still busy after *limit* s."""
        self._end_workers(limit)
        if any(worker.is_alive() for worker in self._workers):
            self._stuck([], limit, on_stuck)
        if self.errors:
            raise self.errors[0]

    def _end_workers(self, limit: float) -> None:
        """Tell every thread to end (a ``None`` step after its queue) and wait up to *limit* s for each."""
        with self._cond:  # the queues, read by the threads
            for queue in self._queues:
                queue.append(None)
            self._cond.notify_all()
        for worker in self._workers:
            worker.join(limit)

    def _stuck(self, steps: list[Step], limit: float, on_stuck: Callable[[], None]) -> None:
        stacks = all_stacks()
        pending = [step for step in steps if not step.done.is_set()]
        busy = [worker.name for worker in self._workers if worker.is_alive()]
        on_stuck()  # e.g. close the connection, so the threads can end
        self._end_workers(limit)
        pytest.fail(f"steps {pending} (threads {busy}) still waiting after {limit} s\n{stacks}")


def tagged(records: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    """The records grouped by their ``x-fuzz-tag``."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["tag"], []).append(record)
    return groups


def response_tag(response: Any) -> str | None:
    """The tag the recorder echoed in a response's headers."""
    values = response.headers.get(TAG_HEADER)
    if not values:
        return None
    first = values[0]
    return first.decode("latin-1") if isinstance(first, bytes) else str(first)

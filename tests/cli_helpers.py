"""Running the ``hyper`` command in tests: in this process, as a subprocess, on a terminal."""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from hyper.cli import main
from tests.servers import REPO_ROOT

#: Bound on how long one run of the command may take in a test.
RUN_LIMIT = 60.0
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class FakeStdin(io.TextIOWrapper):
    """A non-terminal stdin holding ``data`` (what ``hyper URL < file`` sees, for in-process runs)."""

    def __init__(self, data: bytes, terminal: bool = False) -> None:
        super().__init__(io.BytesIO(data))
        self._terminal = terminal

    def isatty(self) -> bool:
        return self._terminal


def run(
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
    *argv: str,
    stdin: bytes | None = None,
) -> tuple[int, bytes, str]:
    """Run ``hyper argv`` in this process; return status, stdout and stderr.

    stdin is a terminal unless ``stdin`` is given (then it holds those bytes).
    """
    monkeypatch.setattr(sys, "stdin", FakeStdin(stdin or b"", terminal=stdin is None))
    status = main(list(argv))
    out, err = capsysbinary.readouterr()
    return status, out, err.decode()


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m hyper``: this checkout first, no proxy from outside."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


def run_program(
    *argv: str, stdin: bytes | None = None, env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m hyper argv`` with stdin from ``stdin`` (empty by default)."""
    return subprocess.run(
        [sys.executable, "-m", "hyper", *argv],
        input=stdin or b"",
        capture_output=True,
        env=env or subprocess_env(),
        cwd=cwd,
        timeout=RUN_LIMIT,
        check=False,
    )


@dataclass
class TerminalRun:
    """What a run on a pseudo-terminal showed."""

    status: int
    #: Everything written to the terminal.
    terminal: bytes
    #: What went to the stream that was not the terminal (a pipe).
    piped: bytes
    extra: dict[str, object] = field(default_factory=dict)


def run_on_terminal(
    argv: list[str],
    terminal_streams: tuple[str, ...],
    *,
    stdout_path: str | None = None,
    interrupt_when: Callable[[bytes], bool] | None = None,
    cwd: str | None = None,
) -> TerminalRun:
    """Run ``python -m hyper argv`` with some of stdin/stdout/stderr on a pseudo-terminal.

    ``stdout_path``: stdout goes to this file instead (``hyper URL > file``).
    ``interrupt_when(seen)``: send SIGINT (Ctrl-C) once the terminal output
    so far satisfies it.
    """
    controller, terminal = pty.openpty()
    stdout_file = open(stdout_path, "wb") if stdout_path else None  # noqa: SIM115 - closed below
    try:
        stdout: object = terminal if "stdout" in terminal_streams else (stdout_file or subprocess.PIPE)
        stderr: object = terminal if "stderr" in terminal_streams else subprocess.PIPE
        stdin: object = terminal if "stdin" in terminal_streams else subprocess.DEVNULL
        with subprocess.Popen(
            [sys.executable, "-m", "hyper", *argv],
            stdin=stdin,  # type: ignore[arg-type]
            stdout=stdout,  # type: ignore[arg-type]
            stderr=stderr,  # type: ignore[arg-type]
            env=subprocess_env(),
            cwd=cwd,
        ) as proc:
            os.close(terminal)
            seen = bytearray()
            interrupted = False
            deadline = time.monotonic() + RUN_LIMIT
            while time.monotonic() < deadline:
                ready, _, _ = select.select([controller], [], [], 1)
                if not ready:
                    if proc.poll() is not None:
                        break
                    continue
                try:
                    data = os.read(controller, 65536)
                except OSError:  # EIO: the program closed its end of the terminal
                    break
                if not data:
                    break
                seen += data
                if interrupt_when is not None and not interrupted and interrupt_when(bytes(seen)):
                    proc.send_signal(signal.SIGINT)
                    interrupted = True
            os.close(controller)
            pipe = proc.stderr if "stderr" not in terminal_streams else proc.stdout
            piped = pipe.read() if pipe is not None else b""
            status = proc.wait(30)
    finally:
        if stdout_file is not None:
            stdout_file.close()
    return TerminalRun(status, bytes(seen), piped)

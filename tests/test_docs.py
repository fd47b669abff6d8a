"""The documentation's examples run, and show what hyper really prints.

``docs/quickstart.rst`` is written as one session at a Python prompt against
a local :class:`hyper.testing.TestServer` that its first example starts. This
test runs every code block of the page in order, in one namespace:

* ``.. code-block:: python`` blocks are executed;
* ``.. code-block:: pycon`` blocks are run as doctests, so every output shown
  after ``>>>`` is compared with what hyper returned;
* ``.. code-block:: console`` blocks are commands: the demo is run and its
  output compared (the port and the lines shown as ``...`` may differ); the
  install command is listed in :data:`NOT_RUN` with the reason.

A block in any other language, a literal block (``::``) or a console command
in neither list fails the test, so no example of the quickstart goes
unchecked.
"""

from __future__ import annotations

import doctest
import inspect
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import hyper
from hyper.testing import TestServer

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs"
QUICKSTART = DOCS / "quickstart.rst"
API = DOCS / "api.rst"

#: Console commands of the quickstart that the test does not run, and why.
NOT_RUN = {
    "pip install .": "installs the package; the test suite runs from an installed checkout already",
}
#: Console commands the test runs, comparing their output with the page's.
RUN = {"python -m hyper.testing": [sys.executable, "-m", "hyper.testing"]}

_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block::\s*(\S*)\s*$")
_OPTION = re.compile(r"^\s+:[\w-]+:")


@dataclass(frozen=True)
class Block:
    """One ``code-block`` of a page."""

    language: str
    lineno: int  # line of the first line of code, counted from 1
    code: str


def extract_blocks(text: str) -> list[Block]:
    """Every ``.. code-block::`` of an reST text, with its dedented body."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index])
        index += 1
        if match is None:
            continue
        directive_indent = len(match[1])
        while index < len(lines) and (_OPTION.match(lines[index]) or not lines[index].strip()):
            index += 1
        start = index
        body: list[str] = []
        while index < len(lines):
            line = lines[index]
            if line.strip() and len(line) - len(line.lstrip()) <= directive_indent:
                break
            body.append(line)
            index += 1
        while body and not body[-1].strip():
            body.pop()
        indent = min(len(line) - len(line.lstrip()) for line in body if line.strip())
        code = "\n".join(line[indent:] for line in body) + "\n"
        blocks.append(Block(match[2], start + 1, code))
    return blocks


def literal_blocks(text: str) -> list[int]:
    """Line numbers of paragraphs that open an untested literal block with ``::``."""
    return [
        number
        for number, line in enumerate(text.splitlines(), 1)
        if line.rstrip().endswith("::") and not line.lstrip().startswith("..")
    ]


def run_pycon(block: Block, namespace: dict[str, Any], filename: str) -> None:
    """Run a ``>>>`` block as a doctest in ``namespace``; fail with doctest's report."""
    test = doctest.DocTestParser().get_doctest(block.code, namespace, filename, filename, block.lineno - 1)
    assert test.examples, f"{filename}:{block.lineno}: a pycon block without >>> examples"
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=report.write, clear_globs=False)
    assert result.failed == 0, report.getvalue()


def run_console(block: Block) -> None:
    """Run a console block's command and compare the output (``...`` matches anything)."""
    lines = block.code.splitlines()
    assert lines[0].startswith("$ "), f"line {block.lineno}: a console block must start with '$ '"
    command = lines[0][2:]
    if command in NOT_RUN:
        assert len(lines) == 1, f"line {block.lineno}: output shown for a command that is not run"
        return
    assert command in RUN, f"line {block.lineno}: console command {command!r} is neither run nor in NOT_RUN"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    result = subprocess.run(
        RUN[command], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=env, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The page shows one run; the port is free-chosen, so any number matches it.
    expected = re.sub(r"localhost:\d+", "localhost:...", "\n".join(lines[1:]) + "\n")
    checker = doctest.OutputChecker()
    assert checker.check_output(expected, result.stdout, doctest.ELLIPSIS), (
        f"the page shows:\n{expected}\nthe command printed:\n{result.stdout}"
    )


def close_everything(namespace: dict[str, Any]) -> None:
    """Close what a failed run left open, so the failure is not hidden by leaked sockets."""
    for value in list(namespace.values()):
        if isinstance(value, TestServer):
            continue
        close = getattr(value, "close", None)
        if callable(close) and type(value).__module__.startswith("hyper"):
            close()
    for value in list(namespace.values()):
        if isinstance(value, TestServer):
            value.stop()


def test_the_parser_finds_blocks_and_literal_paragraphs() -> None:
    text = (
        "Intro::\n\n    literal\n\n"
        ".. code-block:: python\n   :caption: x\n\n   a = 1\n   if a:\n       b = 2\n\n"
        "Text.\n\n   .. code-block:: pycon\n\n      >>> 1\n      1\n\nEnd.\n"
    )
    blocks = extract_blocks(text)
    assert blocks == [
        Block("python", 8, "a = 1\nif a:\n    b = 2\n"),
        Block("pycon", 16, ">>> 1\n1\n"),
    ]
    assert literal_blocks(text) == [1]


def test_quickstart_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # any file an example writes lands here
    text = QUICKSTART.read_text(encoding="utf-8")
    assert literal_blocks(text) == [], "quickstart.rst: use code-block directives, which this test runs"
    blocks = extract_blocks(text)
    languages = {block.language for block in blocks}
    assert languages <= {"python", "pycon", "console"}, f"blocks this test cannot run: {languages}"
    assert sum(block.language == "pycon" for block in blocks) >= 5
    namespace: dict[str, Any] = {"__name__": "quickstart"}
    ran = 0
    try:
        for block in blocks:
            where = f"{QUICKSTART.name}:{block.lineno}"
            if block.language == "python":
                exec(compile(block.code, where, "exec"), namespace)  # noqa: S102 - the docs' own code
            elif block.language == "pycon":
                run_pycon(block, namespace, where)
            else:
                run_console(block)
            ran += 1
    finally:
        close_everything(namespace)
    assert ran == len(blocks)


def exception_tree(text: str) -> dict[str, tuple[set[str], str]]:
    """The tree drawn in api.rst: class name -> (parents drawn, the rest of its line)."""
    start = text.index(".. _exceptions:")
    block = next(b for b in extract_blocks(text[start:]) if b.language == "text")
    drawn: dict[str, tuple[set[str], str]] = {}
    stack: list[tuple[int, str]] = []  # (column, name) of the entries above
    for line in block.code.splitlines():
        match = re.match(r"^([ |]*)(?:\+-- )?(\w+)(.*)$", line)
        if match is None:  # a line that only continues the notes of the one above
            name = stack[-1][1]
            drawn[name] = (drawn[name][0], drawn[name][1] + line)
            continue
        column = len(match[1])
        name, rest = match[2], match[3]
        while stack and stack[-1][0] >= column:
            stack.pop()
        parents, notes = drawn.get(name, (set(), ""))
        if stack:
            parents.add(stack[-1][1])
        drawn[name] = (parents, notes + rest)
        stack.append((column, name))
    return drawn


def test_the_exception_tree_in_the_api_reference_is_the_real_one() -> None:
    drawn = exception_tree(API.read_text(encoding="utf-8"))
    exported = [
        value
        for name in hyper.__all__
        if isinstance(value := getattr(hyper, name), type) and issubclass(value, BaseException)
    ]
    assert set(drawn) == {cls.__name__ for cls in exported} | {"Exception"}
    for cls in exported:
        parents, notes = drawn[cls.__name__]
        family = {base.__name__ for base in cls.__bases__ if issubclass(base, hyper.HyperError)}
        assert parents == (family or {"Exception"}), cls
        for base in cls.__bases__:
            if not issubclass(base, hyper.HyperError) and base is not Exception:
                assert f"also a {base.__name__}" in notes or f"builtin {base.__name__}" in notes, cls
        # Attributes named in the tree (".status") are real constructor arguments.
        parameters = inspect.signature(cls.__init__).parameters
        for attribute in re.findall(r"\.(\w+)", notes):
            assert attribute in parameters, (cls, attribute)

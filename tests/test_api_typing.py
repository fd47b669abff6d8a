"""The request API's type hints accept the everyday calls that work at run time.

hyper ships ``py.typed``, so a program's type checker holds its calls to
:data:`hyper.common.request.HeadersType` and :data:`hyper.common.body.BodyType`.
``Mapping`` and ``list`` are invariant in their item types: a
``dict[str, str]`` of headers (an inline ``{"accept": "*/*"}`` too) is no
``Mapping[str | bytes, ...]``, and a body of ``bytearray`` blocks is no
``Iterable[bytes]`` (found by review9 and review12). One ``mypy --strict``
run over a small program checks each call on its own line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent

#: Each call a program makes, one per line (the line number names it in mypy's report).
USER_CODE = """\
from hyper import HTTP11Connection, HTTP20Connection, HTTPConnection
conn = HTTP20Connection("example.org")
def blocks() -> "list[bytearray]":
    return [bytearray(b"x")]
typed: dict[str, str] = {"accept": "*/*"}
raw: dict[bytes, bytes] = {b"accept": b"*/*"}
listed: dict[str, list[str]] = {"accept": ["a", "b"]}
pairs: list[tuple[str, str]] = [("accept", "*/*")]
conn.request("GET", "/", headers={"accept": "*/*"})
conn.request("GET", "/", headers=typed)
conn.request("GET", "/", headers=raw)
conn.request("GET", "/", headers=listed)
conn.request("GET", "/", headers=pairs)
HTTP11Connection("example.org").request("GET", "/", headers=typed)
HTTPConnection("example.org").request("GET", "/", headers=typed)
conn.request("POST", "/", body=b"x", headers={"content-length": "1"})
conn.request("POST", "/", body=blocks())
conn.request("POST", "/", body=[b"x", b"y"])
conn.request("POST", "/", body=[memoryview(b"x")])
"""

#: A line mypy must refuse: proves hyper's hints were found (else every call passes as Any).
WRONG_CODE = 'conn.request("GET", "/", headers=3.5)\n'


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, str]]:
    directory = tmp_path_factory.mktemp("typing")
    module = directory / "user_code.py"
    module.write_text(USER_CODE + WRONG_CODE)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # hyper is found from this tree's root, whatever the caller's cwd
        report, _, _ = api.run(
            ["--strict", "--no-incremental", "--cache-dir", str(directory / "cache"), str(module)]
        )
    errors: dict[int, str] = {}
    for line in report.splitlines():
        found = re.match(r".*user_code\.py:(\d+): error: (.*)", line)
        if found:
            errors[int(found.group(1))] = found.group(2)
    yield errors


def test_the_check_sees_hypers_hints(mypy_errors: dict[int, str]) -> None:
    wrong_line = USER_CODE.count("\n") + 1
    assert wrong_line in mypy_errors, mypy_errors


@pytest.mark.parametrize("line", range(1, USER_CODE.count("\n") + 1))
def test_an_everyday_call_type_checks(mypy_errors: dict[int, str], line: int) -> None:
    assert line not in mypy_errors, (USER_CODE.splitlines()[line - 1], mypy_errors.get(line))

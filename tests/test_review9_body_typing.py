"""Review (review9): the request API's type hints refuse everyday calls that work at run time.

``request()`` accepts a ``dict[str, str]`` of headers and an iterable of
bytearray or memoryview blocks (``RequestBody.blocks`` takes any bytes-like
block), but mypy --strict refuses both against ``HeadersType`` and
``BodyType``: ``Mapping`` is invariant in its key type, and the body's
iterable is ``Iterable[bytes]``. One mypy run over a small user module
checks each call on its own line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent

USER_CODE = """\
from hyper import HTTP20Connection

conn = HTTP20Connection("example.org")
def blocks() -> "list[bytearray]":
    return [bytearray(b"x")]
conn.request("POST", "/", body=b"x", headers={"content-length": "1"})  # line 6
conn.request("POST", "/", body=blocks())  # line 7
conn.request("POST", "/", body=[b"x", b"y"])  # line 8: accepted today
"""


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, str]]:
    directory = tmp_path_factory.mktemp("typing")
    module = directory / "user_code.py"
    module.write_text(USER_CODE)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # hyper is found from this worktree's root, whatever the caller's cwd
        report, _, _ = api.run(
            ["--strict", "--no-incremental", "--cache-dir", str(directory / "cache"), str(module)]
        )
    errors: dict[int, str] = {}
    for line in report.splitlines():
        found = re.match(r".*user_code\.py:(\d+): error: (.*)", line)
        if found:
            errors[int(found.group(1))] = found.group(2)
    yield errors


def test_a_list_of_bytes_body_type_checks(mypy_errors: dict[int, str]) -> None:
    # The check itself works: hyper was found (else every call would pass
    # unchecked, as Any) and plain bytes items pass.
    assert 1 not in mypy_errors, mypy_errors.get(1)
    assert 8 not in mypy_errors, mypy_errors.get(8)


def test_a_dict_of_str_headers_type_checks(mypy_errors: dict[int, str]) -> None:
    assert 6 not in mypy_errors, mypy_errors.get(6)


def test_an_iterable_of_bytearray_body_type_checks(mypy_errors: dict[int, str]) -> None:
    assert 7 not in mypy_errors, mypy_errors.get(7)

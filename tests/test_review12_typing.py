"""Review 12: the ``headers`` argument's type hint accepts what every program passes.

hyper ships ``py.typed``, so a program's type checker holds its calls to
:data:`hyper.common.request.HeadersType`. ``Mapping`` is invariant in its key
type: a ``dict[str, str]`` (also an inline ``{"accept": "*/*"}``) is no
``Mapping[str | bytes, ...]``, and mypy refuses the most common call there is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_PROGRAM = """
from hyper import HTTP20Connection, HTTP11Connection, HTTPConnection

conn = HTTP20Connection("example.org")
conn.request("GET", "/", headers={"accept": "*/*"})
typed: dict[str, str] = {"accept": "*/*"}
conn.request("GET", "/", headers=typed)
raw: dict[bytes, bytes] = {b"accept": b"*/*"}
conn.request("GET", "/", headers=raw)
listed: dict[str, list[str]] = {"accept": ["a", "b"]}
conn.request("GET", "/", headers=listed)
pairs: list[tuple[str, str]] = [("accept", "*/*")]
conn.request("GET", "/", headers=pairs)
HTTP11Connection("example.org").request("GET", "/", headers=typed)
HTTPConnection("example.org").request("GET", "/", headers=typed)
"""


def test_a_program_passing_a_dict_of_str_headers_type_checks(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    program = tmp_path / "program.py"
    program.write_text(_PROGRAM, encoding="utf-8")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--config-file",
            str(config),
            str(program),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Every line of the program must pass: the call each line makes is documented.
    assert done.returncode == 0, done.stdout + done.stderr

"""A regular file's length when its size says 0: the positioned-read check and its fallbacks.

Linux's /proc and /sys files are regular files whose ``st_size`` is 0 though
they have bytes: ``hyper.common.body`` asks for one byte at the position
(``os.pread``, which moves nothing) before it declares such a body empty.
Where ``os.pread`` is missing (Windows, which has no such files) the size is
trusted, and where the read fails the length is unknown (sent to its end).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hyper.common import body as body_module
from hyper.common.body import prepare_body

PROC_FILE = Path("/proc/version")


def test_an_empty_regular_file_is_still_declared_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    with path.open("rb") as body:
        assert prepare_body(body).length == 0


def test_a_file_at_its_end_is_declared_empty_and_its_position_kept(tmp_path: Path) -> None:
    path = tmp_path / "read.bin"
    path.write_bytes(b"abc")
    with path.open("rb") as body:
        body.read()
        assert prepare_body(body).length == 0
        assert body.tell() == 3


@pytest.mark.skipif(not PROC_FILE.exists() or not hasattr(os, "pread"), reason="no /proc or pread here")
def test_a_proc_file_has_an_unknown_length_and_is_not_read_in_place() -> None:
    with PROC_FILE.open("rb") as body:
        prepared = prepare_body(body)
        assert prepared.length is None
        assert prepared.file is None  # the in-place path needs a length it can trust
        assert body.tell() == 0  # the check moved nothing


@pytest.mark.skipif(not PROC_FILE.exists(), reason="no /proc here")
def test_without_pread_the_size_is_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "pread", raising=False)
    with PROC_FILE.open("rb") as body:
        assert prepare_body(body).length == 0  # Windows' answer (it has no /proc)


def test_a_failing_positioned_read_makes_the_length_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")

    def failing_pread(fd: int, size: int, position: int) -> bytes:
        raise OSError("no positioned reads here")

    monkeypatch.setattr(os, "pread", failing_pread, raising=False)
    with path.open("rb") as body:
        assert body_module._file_length(body) is None

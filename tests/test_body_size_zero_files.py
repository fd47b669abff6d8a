"""A regular file's length when its size says 0: the positioned-read check and its fallbacks.

Linux's /proc and /sys files are regular files whose ``st_size`` is 0 though
they have bytes: ``hyper.common.body`` asks for one byte at the position
(``os.pread``, which moves nothing) before it declares such a body empty.
Where ``os.pread`` is missing (Windows, which has no such files) the size is
trusted, and where the read fails the length is unknown (sent to its end).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

import hyper.tls
from hyper import HTTP20Connection
from hyper.common import body as body_module
from hyper.common.body import prepare_body
from tests.servers import ServerInfo

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
        assert body_module.file_length(body) is None


DEV_ZERO = Path("/dev/zero")
DEV_NULL = Path("/dev/null")


@pytest.mark.skipif(not DEV_ZERO.exists(), reason="no /dev/zero here")
def test_a_character_device_has_an_unknown_length() -> None:
    # /dev/zero seeks "successfully" to offset 0: the seek/tell fallback
    # would have declared this endless body empty.
    with DEV_ZERO.open("rb") as body:
        prepared = prepare_body(body)
        assert prepared.length is None
        assert prepared.file is None  # never read in place: it has no size to hold it to


@pytest.mark.skipif(not DEV_NULL.exists(), reason="no /dev/null here")
def test_a_character_device_body_is_streamed_without_a_length(hypercorn_server: ServerInfo) -> None:
    context = hyper.tls.init_context(cert_path=hypercorn_server.ca_file)
    with HTTP20Connection(hypercorn_server.authority, ssl_context=context, timeout=30) as conn:
        with DEV_NULL.open("rb") as body:
            response = conn.getresponse(conn.request("POST", "/headers-echo", body=body))
        assert response.status == 200
        echoed = json.loads(response.read())
    assert echoed["method"] == "POST"
    assert "content-length" not in dict(echoed["headers"])  # unknown, not a declared 0


def test_a_pipe_still_has_an_unknown_length() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"abc")
    os.close(write_end)
    with os.fdopen(read_end, "rb") as body:
        assert body_module.file_length(body) is None


def test_a_regular_file_without_fstat_falls_back_to_seek_and_tell(tmp_path: Path) -> None:
    class NoDescriptor(io.BytesIO):
        def fileno(self) -> int:
            raise io.UnsupportedOperation("no descriptor")

    body = NoDescriptor(b"0123456789")
    body.seek(4)
    assert body_module.file_length(body) == 6
    assert body.tell() == 4

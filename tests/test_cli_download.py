"""Files written by the ``hyper`` command: ``--output``, ``--download``, ``--continue``, Ctrl-C.

The rule under test (see :mod:`hyper.cli.download`): an incomplete
``--output`` file is removed; an incomplete download keeps what arrived so
``--continue`` can resume; nothing ever leaves an empty file behind.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyper.cli.progress import size_text
from hyper.testing import TestServer
from tests import asgi_app
from tests.cli_helpers import run_on_terminal, run_program
from tests.servers import ServerInfo, docroot_content


def test_output_that_cannot_be_opened_fails_before_sending(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        done = run_program("-o", str(tmp_path / "no" / "such" / "dir" / "x"), f"http://127.0.0.1:{port}/")
        assert done.returncode == 2
        assert done.stderr.decode().startswith("hyper: error: cannot write ")
        assert done.stderr.count(b"\n") == 1
        # The program has ended: had it connected, the connection would be waiting here.
        readable, _, _ = select.select([listener], [], [], 0)
        assert readable == []


def test_download_names_the_file_from_the_url(nginx_server: ServerInfo, tmp_path: Path) -> None:
    args = ["--download", "--cacert", str(nginx_server.ca_file), nginx_server.url("/hello.txt")]
    done = run_program(*args, cwd=str(tmp_path))
    assert done.returncode == 0
    assert done.stdout == b""
    err = done.stderr.decode()
    assert err.startswith("HTTP/2 200 OK\n")  # the response head goes to stderr
    assert 'Downloading 1.3 KiB to "hello.txt"' in err
    # The bytes as stored: a download asks for no content coding.
    assert (tmp_path / "hello.txt").read_bytes() == docroot_content("hello.txt")
    # A second download does not overwrite the first.
    assert run_program(*args, cwd=str(tmp_path)).returncode == 0
    assert (tmp_path / "hello-1.txt").read_bytes() == docroot_content("hello.txt")


@pytest.fixture(scope="module")
def named_downloads() -> Iterator[TestServer]:
    routes = {
        "/attachment": lambda request: (
            200,
            [("content-disposition", 'attachment; filename="../../.evil name.txt"')],
            b"attached\n",
        ),
        "/utf8-name": lambda request: (
            200,
            [("content-disposition", "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")],
            b"%PDF",
        ),
        "/api/": lambda request: (200, [("content-type", "application/json")], b"{}"),
    }
    with TestServer(routes=routes) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "name"), [("/attachment", "evil name.txt"), ("/utf8-name", "résumé.pdf"), ("/api/", "api.json")]
)
def test_download_names_from_the_response(
    named_downloads: TestServer, tmp_path: Path, path: str, name: str
) -> None:
    url = f"https://localhost:{named_downloads.port}{path}"
    done = run_program("-d", "-q", "--cacert", named_downloads.ca_file, url, cwd=str(tmp_path))
    assert (done.returncode, done.stderr) == (0, b"")
    # Only a plain name, in the current directory.
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_continue_resumes_with_a_range_request(nginx_server: ServerInfo, tmp_path: Path) -> None:
    whole = docroot_content("1k.bin")
    part = tmp_path / "1k.bin.part"
    part.write_bytes(whole[:300])
    args = [
        "-d",
        "-c",
        "-o",
        str(part),
        "-p",
        "Hh",
        "--cacert",
        str(nginx_server.ca_file),
        nginx_server.url("/1k.bin"),
    ]
    done = run_program(*args)
    assert done.returncode == 0
    err = done.stderr.decode()
    assert "range: bytes=300-\n" in err
    assert "HTTP/2 206 Partial Content\n" in err
    assert "(from byte 300)" in err
    assert part.read_bytes() == whole
    # Complete already: the server's 416 says so, and the file stays as it is.
    done = run_program(*args)
    assert done.returncode == 0
    assert "already complete" in done.stderr.decode()
    assert part.read_bytes() == whole


def test_continue_starts_over_when_the_server_ignores_range(
    named_downloads: TestServer, tmp_path: Path
) -> None:
    part = tmp_path / "out.txt"
    part.write_bytes(b"stale")
    url = f"https://localhost:{named_downloads.port}/attachment"
    done = run_program("-d", "-c", "-o", str(part), "--cacert", named_downloads.ca_file, url)
    assert done.returncode == 0
    assert "ignored the Range request" in done.stderr.decode()
    assert part.read_bytes() == b"attached\n"


def test_failed_download_leaves_no_file(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    args = ["-d", "--cacert", str(hypercorn_server.ca_file), hypercorn_server.url("/status/404")]
    done = run_program(*args, cwd=str(tmp_path))
    assert done.returncode == 4
    assert "HTTP 404 Not Found: nothing downloaded" in done.stderr.decode()
    target = tmp_path / "named.bin"
    done = run_program(*args, "-o", str(target))
    assert done.returncode == 4
    assert list(tmp_path.iterdir()) == []


def test_download_cut_by_a_timeout_keeps_the_part(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    target = tmp_path / "stalled.txt"
    url = hypercorn_server.url("/stall-body")
    done = run_program(
        "-d", "--timeout", "1", "-o", str(target), "--cacert", str(hypercorn_server.ca_file), url
    )
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "hyper: error: ReadTimeout: " in err
    assert f"kept in {target}; resume with --download --continue" in err
    assert target.read_bytes() == asgi_app.STALL_FIRST_CHUNK
    # The same cut with --output alone: the incomplete file is removed.
    done = run_program("--timeout", "1", "-o", str(target), "--cacert", str(hypercorn_server.ca_file), url)
    assert done.returncode == 2
    assert f"the incomplete {target} was removed" in done.stderr.decode()
    assert not target.exists()


# -- Ctrl-C on a terminal ------------------------------------------------------------------------------


def _progress_drawn(seen: bytes) -> bool:
    # The bar counting the first chunk, drawn only after the chunk was written.
    # (Not just "a \r then a B": the terminal turns every "\n" into "\r\n", so
    # the 'Downloading 976.6 KiB' note would match before any byte arrived.)
    counted = f"% {size_text(len(asgi_app.STALL_FIRST_CHUNK))} / ".encode()
    return b"\r[" in seen and counted in seen


def test_ctrl_c_during_a_download_keeps_the_part(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    target = tmp_path / "partial.txt"
    result = run_on_terminal(
        [
            "-d",
            "-o",
            str(target),
            "--cacert",
            str(hypercorn_server.ca_file),
            hypercorn_server.url("/stall-body"),
        ],
        ("stderr",),
        interrupt_when=_progress_drawn,  # the first chunk is in the file
    )
    assert result.status == 130
    assert b"hyper: error: interrupted; 26 bytes kept in" in result.terminal
    assert b"Traceback" not in result.terminal
    assert target.read_bytes() == asgi_app.STALL_FIRST_CHUNK


def test_ctrl_c_with_output_removes_the_file(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    target = tmp_path / "partial.txt"
    result = run_on_terminal(
        ["-o", str(target), "--cacert", str(hypercorn_server.ca_file), hypercorn_server.url("/stall-body")],
        ("stderr",),
        interrupt_when=_progress_drawn,
    )
    assert result.status == 130
    assert f"the incomplete {target} was removed".encode() in result.terminal
    assert not target.exists()


@pytest.mark.parametrize("download", [False, True])
def test_ctrl_c_before_any_byte_leaves_no_empty_file(
    hypercorn_server: ServerInfo, tmp_path: Path, download: bool
) -> None:
    target = tmp_path / "empty.txt"
    options = ["-d"] if download else []
    result = run_on_terminal(
        [
            *options,
            "-v",
            "-o",
            str(target),
            "--cacert",
            str(hypercorn_server.ca_file),
            hypercorn_server.url("/stall"),
        ],
        ("stderr",),
        interrupt_when=lambda seen: b"* connected to" in seen,
    )
    assert result.status == 130
    assert b"interrupted" in result.terminal
    assert b"Traceback" not in result.terminal
    assert list(tmp_path.iterdir()) == []

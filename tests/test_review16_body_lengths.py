"""review16: the length a file body declares (a88264a, hyper/common/body.py file_length, hyper/cli/body.py).

Linux's sysfs files (``/sys/...``) are regular files whose size says a
page (4096 bytes) whatever they hold (``/sys/class/net/lo/mtu`` holds 6):
the size is trusted, the request declares ``content-length: 4096`` and then
fails with :class:`~hyper.BodyLengthError` when the file ends after its few
bytes. ``/proc`` files (size 0) were fixed by a88264a; sysfs ones were not,
though the changelog and the ``_bytes_at`` comment say so.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import hyper.tls
from hyper import HTTP20Connection
from hyper.common.body import file_length, prepare_body
from tests.cli_helpers import RUN_LIMIT, run_program, subprocess_env
from tests.servers import ServerInfo

SYSFS_FILE = Path("/sys/class/net/lo/mtu")
PROC_FILE = Path("/proc/version")
DEV_ZERO = Path("/dev/zero")


def _sysfs_size_lies() -> bool:
    """True where the sysfs file exists and its size is not its content's length."""
    try:
        return SYSFS_FILE.stat().st_size != len(SYSFS_FILE.read_bytes())
    except OSError:
        return False


needs_lying_sysfs = pytest.mark.skipif(not _sysfs_size_lies(), reason="no sysfs file whose size lies here")


@needs_lying_sysfs
def test_a_sysfs_file_is_not_declared_as_long_as_its_size_says() -> None:
    content = SYSFS_FILE.read_bytes()
    with SYSFS_FILE.open("rb") as body:
        # Unknown (sent to its end) or its true length; never the page size.
        assert file_length(body) in (None, len(content))


@needs_lying_sysfs
def test_a_sysfs_file_body_is_sent_whole(hypercorn_server: ServerInfo) -> None:
    content = SYSFS_FILE.read_bytes()
    context = hyper.tls.init_context(cert_path=hypercorn_server.ca_file)
    with HTTP20Connection(hypercorn_server.authority, ssl_context=context, timeout=30) as conn:
        with SYSFS_FILE.open("rb") as body:
            response = conn.getresponse(conn.request("POST", "/echo", body=body))
        assert response.status == 200
        assert response.read() == content


@needs_lying_sysfs
def test_cli_at_file_from_sysfs_is_sent_whole(hypercorn_server: ServerInfo) -> None:
    content = SYSFS_FILE.read_bytes()
    done = run_program(
        "--cacert", str(hypercorn_server.ca_file), "-p", "Hb", hypercorn_server.url("/echo"), f"@{SYSFS_FILE}"
    )
    assert (done.returncode, done.stderr) == (0, b"")
    assert f"content-length: {len(content)}\n".encode() in done.stdout
    assert done.stdout.endswith(content)


# ``python -m hyper ARGS`` with at most 512 MiB of address space: an endless
# read fails there, not in the machine (set in the child itself, no preexec_fn).
_HYPER_WITH_MEMORY_LIMIT = (
    "import resource, runpy, sys; "
    "resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20)); "
    "sys.argv = ['hyper', *sys.argv[1:]]; "
    "runpy.run_module('hyper', run_name='__main__', alter_sys=True)"
)


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.skipif(not sys.platform.startswith("linux") or not DEV_ZERO.exists(), reason="Linux /dev/zero")
def test_cli_at_file_of_an_endless_character_device_is_not_read_into_memory() -> None:
    # Before a88264a the size (0) was used; now a file whose size can't be
    # known is read to its end first, and a character device has no end.
    # Nothing listens on the port: a body streamed as it is read (or one
    # refused as a usage error) ends in a clear error, never a traceback.
    done = _hyper_with_memory_limit("POST", f"http://127.0.0.1:{_unused_port()}/x", f"@{DEV_ZERO}")
    assert done.returncode != 0
    assert b"Traceback" not in done.stderr, done.stderr[-300:]
    # A usage error (exit status 2) before any connection, naming the device.
    assert done.returncode == 2 and b"/dev/zero is a device with no end" in done.stderr


def _hyper_with_memory_limit(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", _HYPER_WITH_MEMORY_LIMIT, *argv],
        capture_output=True, env=subprocess_env(), timeout=RUN_LIMIT, check=False,
    )  # fmt: skip


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS as on Linux")
def test_cli_under_the_memory_limit_fails_to_connect_cleanly() -> None:
    # The control for the test above: the same run with a small body ends
    # in the connect error, with no traceback.
    done = _hyper_with_memory_limit("POST", f"http://127.0.0.1:{_unused_port()}/x", "a=b")
    assert done.returncode != 0
    assert done.stderr.startswith(b"hyper: ") and b"Traceback" not in done.stderr, done.stderr[-300:]


# -- checked and found right (not covered elsewhere) ---------------------------------------------


def test_a_socket_file_has_an_unknown_length() -> None:
    # A socket's fstat is S_ISSOCK: no size, and never the seek/tell fallback.
    left, right = socket.socketpair()
    with left, right:
        right.sendall(b"abc")
        right.shutdown(socket.SHUT_WR)
        with left.makefile("rb") as body:
            prepared = prepare_body(body)
            assert prepared.length is None
            assert b"".join(bytes(block) for block in prepared.blocks()) == b"abc"


@pytest.mark.skipif(not PROC_FILE.exists(), reason="no /proc here")
def test_a_proc_file_partly_read_is_sent_from_where_it_stands() -> None:
    content = PROC_FILE.read_bytes()
    with PROC_FILE.open("rb") as body:
        assert body.read(10) == content[:10]  # buffered: the descriptor's offset is past 10
        prepared = prepare_body(body)
        assert prepared.length is None  # size 0 says nothing
        assert b"".join(bytes(block) for block in prepared.blocks()) == content[10:]


def test_a_regular_file_opened_at_an_offset_counts_from_there(tmp_path: Path) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    os.lseek(fd, 7, os.SEEK_SET)
    with os.fdopen(fd, "rb") as body:
        assert file_length(body) == 3
        assert body.tell() == 7


@pytest.mark.skipif(not PROC_FILE.exists(), reason="no /proc here")
def test_a_proc_file_body_is_sent_whole_over_http2(hypercorn_server: ServerInfo) -> None:
    content = PROC_FILE.read_bytes()
    context = hyper.tls.init_context(cert_path=hypercorn_server.ca_file)
    with HTTP20Connection(hypercorn_server.authority, ssl_context=context, timeout=30) as conn:
        with PROC_FILE.open("rb") as body:
            response = conn.getresponse(conn.request("POST", "/echo", body=body))
        assert response.status == 200
        assert response.read() == content  # unknown length, sent to its end

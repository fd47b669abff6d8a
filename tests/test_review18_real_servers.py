"""Review 18: core9's response records against real servers, with records, without, and with h2's public API.

nginx and nghttpd answer the same requests over TLS in three client modes:
records on (the default fast path), the splitter's records off (h2's events
on the same fast path) and the fast paths off (``HYPER_FAST_PATHS=0``). The
bodies are sized around a DATA frame (16 KiB) and a window (64 KiB), empty,
and 1 MiB (many window credits), read whole, in pieces, with ``readinto``,
``read_chunked`` and by iteration; a text body comes gzip-encoded from
nginx; HEAD keeps its content-length and has no body; a conditional GET is
a 304. Every mode must give the bytes on disk and the same headers.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hyper
import hyper.tls
from hyper.http20 import h2_adapters, h2_internals
from tests.fast_paths import fast_paths_on  # noqa: F401 - a fixture, used by pytestmark
from tests.servers import ServerInfo

pytestmark = pytest.mark.usefixtures("fast_paths_on")

SIZES = (0, 1, 16383, 16384, 16385, 65535, 65536, 1 << 20)
MODES = ("records", "events", "public")


def content(size: int) -> bytes:
    """Deterministic bytes of ``size`` (not all alike, so a lost or moved piece shows)."""
    return bytes((index * 7 + index // 251) & 0xFF for index in range(size))


@pytest.fixture(scope="module")
def files(nginx_server: ServerInfo) -> dict[str, bytes]:
    """Review files in the shared docroot (nginx and nghttpd serve the same one)."""
    made = {}
    for size in SIZES:
        name = f"review18-{size}.bin"
        path = Path(nginx_server.docroot) / name  # type: ignore[arg-type]
        if not path.exists():
            path.write_bytes(content(size))
        made[name] = content(size)
    text = b"line of text that gzip squeezes well\n" * 2000
    (Path(nginx_server.docroot) / "review18-text.txt").write_bytes(text)  # type: ignore[arg-type]
    made["review18-text.txt"] = text
    return made


@contextlib.contextmanager
def in_mode(mode: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(h2_adapters.FrameSplitter, "records", mode == "records")
        if mode == "public":
            patch.setattr(h2_internals, "_enabled", False)
        yield


def connect(info: ServerInfo) -> hyper.HTTP20Connection:
    context = hyper.tls.init_context(cert_path=info.ca_file)
    return hyper.HTTP20Connection(info.host, info.port, secure=True, ssl_context=context, timeout=30)


def read_every_way(conn: hyper.HTTP20Connection, path: str, size: int) -> list[Any]:
    """The body of ``path`` five ways, and the headers a user sees; each one's result."""
    got: list[Any] = []
    response = conn.getresponse(conn.request("GET", path))
    got.append((response.status, response.headers.get_first("content-length")))
    got.append(response.read())
    response = conn.getresponse(conn.request("GET", path))
    pieces = []
    while True:
        piece = response.read(7000)
        if not piece:
            break
        pieces.append(piece)
    got.append(b"".join(pieces))
    response = conn.getresponse(conn.request("GET", path))
    buffer = bytearray(size + 10)
    total = 0
    with memoryview(buffer) as view:
        while True:
            count = response.readinto(view[total:])
            if not count:
                break
            total += count
    got.append(bytes(buffer[:total]))
    response = conn.getresponse(conn.request("GET", path))
    chunks = list(response.read_chunked())
    assert all(chunks), "read_chunked yielded an empty chunk"
    got.append(b"".join(chunks))
    response = conn.getresponse(conn.request("GET", path))
    got.append(b"".join(response))
    response = conn.getresponse(conn.request("HEAD", path))
    got.append((response.status, response.headers.get_first("content-length"), response.read()))
    return got


@pytest.mark.parametrize("server", ["nginx_server", "nghttpd_server"])
def test_bodies_around_frame_and_window_sizes_agree_in_every_mode(
    server: str, files: dict[str, bytes], request: pytest.FixtureRequest
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    results = {}
    for mode in MODES:
        with in_mode(mode):
            conn = connect(info)
            try:
                results[mode] = {size: read_every_way(conn, f"/review18-{size}.bin", size) for size in SIZES}
            finally:
                conn.close()
    for size in SIZES:
        body = files[f"review18-{size}.bin"]
        got = results["records"][size]
        assert got[0] == (200, str(size).encode())
        assert got[1:6] == [body] * 5
        assert got[6] == (200, str(size).encode(), b"")
        assert results["events"][size] == got
        assert results["public"][size] == got


def test_gzip_and_conditional_responses_from_nginx_agree_in_every_mode(
    nginx_server: ServerInfo, files: dict[str, bytes]
) -> None:
    text = files["review18-text.txt"]
    results = {}
    for mode in MODES:
        with in_mode(mode):
            conn = connect(nginx_server)
            try:
                got: list[Any] = []
                gz = {"accept-encoding": "gzip"}
                response = conn.getresponse(conn.request("GET", "/review18-text.txt", headers=gz))
                got.append(response.headers.get_first("content-encoding"))
                got.append(response.read())
                response = conn.getresponse(conn.request("GET", "/review18-text.txt", headers=gz))
                raw = response.read(decode_content=False)
                got.append(gzip.decompress(raw))
                response = conn.getresponse(conn.request("GET", "/review18-text.txt", headers=gz))
                got.append(b"".join(response.read_chunked()))
                response = conn.getresponse(conn.request("GET", "/review18-1.bin"))
                etag = response.headers.get_first("etag")
                response.read()
                assert etag is not None
                response = conn.getresponse(
                    conn.request("GET", "/review18-1.bin", headers={"if-none-match": etag})
                )
                got.append((response.status, response.read()))
                results[mode] = got
            finally:
                conn.close()
    assert results["records"] == [b"gzip", text, text, text, (304, b"")]
    assert results["events"] == results["records"]
    assert results["public"] == results["records"]


def test_many_concurrent_responses_agree_in_every_mode(
    nghttpd_server: ServerInfo, files: dict[str, bytes]
) -> None:
    """Many streams in flight (their records interleaved in one read), read back in reverse order."""
    names = [f"review18-{size}.bin" for size in SIZES] * 3
    results = {}
    for mode in MODES:
        with in_mode(mode):
            conn = connect(nghttpd_server)
            try:
                ids = [conn.request("GET", f"/{name}") for name in names]
                results[mode] = [conn.getresponse(sid).read() for sid in reversed(ids)]
            finally:
                conn.close()
    expected = [files[name] for name in reversed(names)]
    assert results["records"] == expected
    assert results["events"] == expected
    assert results["public"] == expected


CHILD = """
import sys
import hyper, hyper.tls
from hyper.http20 import h2_adapters, h2_internals
made = []
real = h2_adapters.FrameSplitter.receive
def spying(self, raw):
    events, error = real(self, raw)
    made.extend(type(item) is tuple for item in events)
    return events, error
h2_adapters.FrameSplitter.receive = spying
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
context = hyper.tls.init_context(cert_path=ca)
with hyper.HTTP20Connection(host, port, secure=True, ssl_context=context, timeout=30) as conn:
    bodies = [conn.getresponse(conn.request("GET", "/review18-16385.bin")).read() for _ in range(3)]
print(h2_internals.fast_paths_enabled(), sum(made), len(made) > 0, [len(body) for body in bodies])
"""


@pytest.mark.parametrize("setting", ["0", None])
def test_hyper_fast_paths_0_in_the_environment_makes_no_records(
    setting: str | None, nginx_server: ServerInfo, files: dict[str, bytes]
) -> None:
    """The claim end to end: a process started with HYPER_FAST_PATHS=0 never sees a record."""
    env = {key: value for key, value in os.environ.items() if key != "HYPER_FAST_PATHS"}
    if setting is not None:
        env["HYPER_FAST_PATHS"] = setting
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    args = [nginx_server.host, str(nginx_server.port), str(nginx_server.ca_file)]
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", CHILD, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    enabled, records, saw_events, lengths = done.stdout.split(" ", 3)
    assert saw_events == "True" and lengths.strip() == "[16385, 16385, 16385]"
    if setting == "0":
        assert (enabled, records) == ("False", "0")
    else:
        assert enabled == "True" and int(records) >= 6  # a RESPONSE_FIELDS and a LAST_DATA per response

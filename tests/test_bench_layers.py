"""The layer-by-layer CPU benchmark (``python -m bench.layers``) measures real exchanges.

The smoke test runs the real tool with tiny sizes (every row but pycurl,
which CI does not install): every row and layer gets a figure, and each
row's exchanges were checked byte for byte by the tool itself (it fails
otherwise).  The server's two header styles are checked for what they are
meant to differ in: whether the response header blocks refer to the HPACK
dynamic table.  No timing is asserted.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading

import h2.config
import h2.connection
import h2.events
import pytest

from bench.layers import ROWS, parse_args
from bench.layers_server import BODY, AnsweringServer, ThreadedServer
from bench.runner import REPO_ROOT


def test_quick_run_reports_every_row_and_layer() -> None:
    rows = ",".join(row for row in ROWS if row != "pycurl")
    argv = [
        sys.executable,
        "-m",
        "bench.layers",
        "--quick",
        "--rounds",
        "1",
        "--requests",
        "60",
        "--rows",
        rows,
    ]
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    for workload in ("seq", "mux"):
        for style in ("literal", "indexed"):
            assert f"## {workload}, {style} response fields" in text
    for row in [r for r in ROWS if r != "pycurl"]:
        figures = re.findall(rf"^\| {re.escape(row)} \| ([0-9.]+) \|", text, re.MULTILINE)
        assert len(figures) == 4 and all(float(f) > 0 for f in figures), (row, text)
    for layer in ("hyper's core (h2 included)", "hyper's session, API and socket calls", "TLS (OpenSSL"):
        assert len(re.findall(rf"^\| {re.escape(layer)}", text, re.MULTILINE)) == 4, text


def _header_block_sizes(style: str, requests: int) -> list[int]:
    """The size of each response's HEADERS frame from a server of *style*."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
    server = AnsweringServer(style)
    client.initiate_connection()
    client.receive_data(server.receive(client.data_to_send()))
    sizes = []
    for _ in range(requests):
        stream_id = client.get_next_available_stream_id()
        client.send_headers(
            stream_id,
            [(":method", "GET"), (":scheme", "https"), (":authority", "x"), (":path", "/")],
            end_stream=True,
        )
        answer = server.receive(client.data_to_send())
        # The HEADERS frame comes first: its 24-bit length is the block's size.
        sizes.append(int.from_bytes(answer[:3], "big"))
        body = b"".join(e.data for e in client.receive_data(answer) if isinstance(e, h2.events.DataReceived))
        assert body == BODY
    return sizes


def test_indexed_style_refers_to_the_dynamic_table_and_literal_does_not() -> None:
    literal, indexed = _header_block_sizes("literal", 3), _header_block_sizes("indexed", 3)
    assert literal[0] == literal[1] == literal[2]  # the same literals every time
    assert indexed[1] == indexed[2] < indexed[0] // 4  # one byte per field once indexed


def test_unknown_style_is_refused() -> None:
    with pytest.raises(ValueError, match="style"):
        AnsweringServer("gzip")


def test_threaded_server_closes_every_socket_and_thread() -> None:
    before = set(threading.enumerate())
    with ThreadedServer("indexed", None) as server:
        import hyper

        conn = hyper.HTTP20Connection("127.0.0.1", server.port, secure=False, timeout=10)
        with conn:
            assert conn.getresponse(conn.request("GET", "/x")).read() == BODY
    assert not server.errors
    assert set(threading.enumerate()) <= before


def test_command_line_checks_its_lists() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--rows", "hyper,nope"])
    assert parse_args(["--only", "seq"]).only == ["seq"]

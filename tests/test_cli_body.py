"""Request bodies of the ``hyper`` command: stdin, ``@file``, JSON, forms and multipart.

Each runs ``python -m hyper`` against hypercorn, whose ``/echo`` returns the
body it got (and ``x-request-method``) and ``/headers-echo`` the request head.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.cli_helpers import RUN_LIMIT, run_program, subprocess_env
from tests.servers import ServerInfo


def hyper(server: ServerInfo, *argv: str, stdin: bytes | None = None) -> tuple[int, bytes, str]:
    done = run_program("--cacert", str(server.ca_file), *argv, stdin=stdin)
    return done.returncode, done.stdout, done.stderr.decode()


def echoed_head(out: bytes) -> dict[str, str]:
    return dict(json.loads(out)["headers"])


def echo_with_stdin_from(server: ServerInfo, source: Path) -> subprocess.CompletedProcess[bytes]:
    """``hyper -p Hb URL/echo < source``: the request head hyper sent, then the echoed body."""
    with source.open("rb") as stdin:
        return subprocess.run(
            [sys.executable, "-m", "hyper", "-p", "Hb", "--cacert", str(server.ca_file), server.url("/echo")],
            stdin=stdin, capture_output=True, env=subprocess_env(), timeout=RUN_LIMIT, check=False,
        )  # fmt: skip


def test_body_from_stdin_makes_a_post(hypercorn_server: ServerInfo) -> None:
    status, out, err = hyper(
        hypercorn_server, "-p", "hb", hypercorn_server.url("/echo"), stdin=b"piped \x00 bytes"
    )
    assert (status, err) == (0, "")
    assert b"x-request-method: POST" in out
    assert out.endswith(b"\n\npiped \x00 bytes")
    # An explicit method keeps the body.
    status, out, _ = hyper(hypercorn_server, "PUT", "-p", "hb", hypercorn_server.url("/echo"), stdin=b"data")
    assert b"x-request-method: PUT" in out and out.endswith(b"\n\ndata")


def test_stdin_redirected_from_a_file_is_sent_with_its_length(
    hypercorn_server: ServerInfo, tmp_path: Path
) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, binary
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    done = echo_with_stdin_from(hypercorn_server, source)
    assert done.returncode == 0
    # -p Hb: the request head (showing the length hyper sent) and the echoed body.
    assert f"content-length: {len(payload)}\n".encode() in done.stdout
    assert done.stdout.endswith(payload)


def test_empty_stdin_is_no_body_and_ignore_stdin_leaves_it(hypercorn_server: ServerInfo) -> None:
    status, out, _ = hyper(hypercorn_server, hypercorn_server.url("/headers-echo"), stdin=b"")
    assert status == 0
    assert json.loads(out)["method"] == "GET"
    assert "content-length" not in echoed_head(out)
    status, out, _ = hyper(
        hypercorn_server, "--ignore-stdin", hypercorn_server.url("/headers-echo"), stdin=b"x"
    )
    assert json.loads(out)["method"] == "GET"


def test_stdin_and_data_items_cannot_be_mixed(hypercorn_server: ServerInfo) -> None:
    status, out, err = hyper(hypercorn_server, hypercorn_server.url("/echo"), "a=b", stdin=b"also a body")
    assert (status, out) == (2, b"")
    assert "cannot be mixed" in err and "--ignore-stdin" in err
    # With --ignore-stdin the items decide.
    status, out, _ = hyper(
        hypercorn_server, "--ignore-stdin", hypercorn_server.url("/echo"), "a=b", stdin=b"x"
    )
    assert (status, out) == (0, b'{"a": "b"}')


def test_at_file_is_the_raw_body_with_a_guessed_type(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    source = tmp_path / "doc.xml"
    source.write_bytes(b"<doc>\xc3\xa9</doc>")
    status, out, _ = hyper(hypercorn_server, hypercorn_server.url("/headers-echo"), f"@{source}")
    assert status == 0
    document = json.loads(out)
    assert document["method"] == "POST"
    headers = echoed_head(out)
    assert headers["content-type"] in ("application/xml", "text/xml")
    assert headers["content-length"] == str(len(source.read_bytes()))
    status, out, _ = hyper(
        hypercorn_server, hypercorn_server.url("/echo"), f"@{source}", "Content-Type:text/plain"
    )
    assert out == source.read_bytes()


def test_fields_from_files(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\nzoë\n", encoding="utf-8")
    doc = tmp_path / "doc.json"
    doc.write_text('{"tags": ["a", "b"], "n": 1.5}')
    status, out, _ = hyper(
        hypercorn_server, hypercorn_server.url("/echo"), f"text=@{notes}", f"doc:=@{doc}", "x=1"
    )
    assert status == 0
    assert json.loads(out) == {"text": "line one\nzoë\n", "doc": {"tags": ["a", "b"], "n": 1.5}, "x": "1"}
    doc.write_text("{not json")
    status, out, err = hyper(hypercorn_server, hypercorn_server.url("/echo"), f"doc:=@{doc}")
    assert (status, out) == (2, b"")
    assert "is not JSON" in err


def test_json_is_the_default_and_json_flag_sets_accept(hypercorn_server: ServerInfo) -> None:
    status, out, _ = hyper(hypercorn_server, "--json", hypercorn_server.url("/headers-echo"))
    assert status == 0
    headers = echoed_head(out)
    assert headers["accept"] == "application/json, */*;q=0.5"
    assert "content-type" not in headers  # no body, no type
    assert json.loads(out)["method"] == "GET"
    status, out, _ = hyper(hypercorn_server, "-j", hypercorn_server.url("/echo"), "list:=[1,2]", "s=x")
    assert json.loads(out) == {"list": [1, 2], "s": "x"}


def test_form_is_urlencoded(hypercorn_server: ServerInfo) -> None:
    status, out, _ = hyper(hypercorn_server, "-f", "-p", "Hb", hypercorn_server.url("/echo"), "a=b c", "ü=&?")
    assert status == 0
    assert b"content-type: application/x-www-form-urlencoded; charset=utf-8\n" in out
    assert out.endswith(b"\n\na=b+c&%C3%BC=%26%3F")


@pytest.mark.parametrize("flag", ["--form", "--multipart"])
def test_multipart_with_file_uploads(hypercorn_server: ServerInfo, tmp_path: Path, flag: str) -> None:
    upload = tmp_path / "picture.png"
    upload.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    other = tmp_path / "data.bin"
    other.write_bytes(b"\x00\x01")
    status, out, _ = hyper(
        hypercorn_server,
        flag,
        "-p",
        "Hb",
        hypercorn_server.url("/echo"),
        "name=zoë",
        f"pic@{upload}",
        f"blob@{other};type=application/x-test",
    )
    assert status == 0
    head, _, body = out.partition(b"\n\n")
    content_type = next(line for line in head.split(b"\n") if line.startswith(b"content-type: "))
    assert content_type.startswith(b"content-type: multipart/form-data; boundary=")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(content_type + b"\r\n\r\n" + body)
    parts = list(message.iter_parts())  # type: ignore[attr-defined]
    assert [part.get_param("name", header="content-disposition") for part in parts] == ["name", "pic", "blob"]
    assert parts[0].get_payload(decode=True) == "zoë".encode()
    assert parts[1].get_filename() == "picture.png"
    assert parts[1].get_content_type() == "image/png"
    assert parts[1].get_payload(decode=True) == upload.read_bytes()
    assert parts[2].get_content_type() == "application/x-test"
    assert parts[2].get_payload(decode=True) == b"\x00\x01"


def test_file_upload_needs_a_form(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    upload = tmp_path / "a.txt"
    upload.write_text("a")
    status, out, err = hyper(hypercorn_server, hypercorn_server.url("/echo"), f"f@{upload}")
    assert (status, out) == (2, b"")
    assert "--form" in err


def test_repeated_query_and_header_items(hypercorn_server: ServerInfo) -> None:
    status, out, _ = hyper(
        hypercorn_server, hypercorn_server.url("/headers-echo?a=1"), "q==x y", "q==z", "X-Two:1", "X-Two:2"
    )
    assert status == 0
    document = json.loads(out)
    assert document["query_string"] == "a=1&q=x+y&q=z"
    assert [value for name, value in document["headers"] if name == "x-two"] == ["1", "2"]


def test_unset_and_empty_headers(hypercorn_server: ServerInfo) -> None:
    status, out, _ = hyper(hypercorn_server, hypercorn_server.url("/headers-echo"), "User-Agent:", "X-Empty;")
    assert status == 0
    headers = echoed_head(out)
    assert "user-agent" not in headers
    assert headers["x-empty"] == ""


def test_silent_stdin_pipe_gets_a_warning_then_its_body(hypercorn_server: ServerInfo) -> None:
    # A script that pipes into hyper late (or forgot --ignore-stdin): hyper says what it waits for.
    argv = [
        sys.executable,
        "-m",
        "hyper",
        "--cacert",
        str(hypercorn_server.ca_file),
        hypercorn_server.url("/echo"),
    ]
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env()
    ) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], RUN_LIMIT)
        assert ready, "no warning about the silent stdin"
        warning = proc.stderr.readline().decode()
        assert warning.startswith("hyper: warning: no data on stdin after 10 s")
        assert "--ignore-stdin" in warning
        out, err = proc.communicate(b"late body", timeout=RUN_LIMIT)
    assert (proc.returncode, out, err) == (0, b"late body", b"")


PROC_FILE = Path("/proc/version")


@pytest.mark.skipif(not PROC_FILE.exists(), reason="no /proc here")
def test_at_file_whose_size_says_zero_is_sent_whole(hypercorn_server: ServerInfo) -> None:
    # /proc files are regular files that report size 0 yet have bytes: the
    # size would have declared content-length 0 and then refused the body.
    expected = PROC_FILE.read_bytes()
    status, out, err = hyper(hypercorn_server, "-p", "Hb", hypercorn_server.url("/echo"), f"@{PROC_FILE}")
    assert (status, err) == (0, "")
    assert f"content-length: {len(expected)}\n".encode() in out
    assert out.endswith(expected)


def test_at_file_naming_a_named_pipe_is_read_to_its_end(hypercorn_server: ServerInfo, tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    payload = b"through a fifo \x00\xff" * 1000
    # The writer opens the fifo (blocking until hyper opens it to read), writes, closes.
    writer = threading.Thread(target=fifo.write_bytes, args=(payload,), daemon=True)
    writer.start()
    status, out, err = hyper(hypercorn_server, "-p", "Hb", hypercorn_server.url("/echo"), f"@{fifo}")
    writer.join(RUN_LIMIT)
    assert (status, err) == (0, "")
    assert f"content-length: {len(payload)}\n".encode() in out
    assert out.endswith(payload)


@pytest.mark.skipif(not PROC_FILE.exists(), reason="no /proc here")
def test_stdin_redirected_from_a_file_whose_size_says_zero_is_sent(hypercorn_server: ServerInfo) -> None:
    expected = PROC_FILE.read_bytes()
    done = echo_with_stdin_from(hypercorn_server, PROC_FILE)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.startswith(b"POST /echo ")  # a body makes the default method POST
    assert f"content-length: {len(expected)}\n".encode() in done.stdout
    assert done.stdout.endswith(expected)

"""What the ``hyper`` command prints: ``--print HhBb``, ``-h``, ``-b``, ``-v`` and HEAD.

``-v`` must show the request exactly as it went out: the tests compare it
with what the server says it received (hypercorn's ``/headers-echo``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyper import __version__
from hyper.testing import TestServer
from tests.cli_helpers import run_program
from tests.servers import ServerInfo, docroot_content


def split_messages(out: bytes) -> list[tuple[str, list[tuple[str, str]], bytes]]:
    """``-v`` output as (first line, fields, body) per message (bodies must not hold blank lines)."""
    blocks = out.split(b"\n\n")
    messages = []
    index = 0
    while index < len(blocks):
        lines = blocks[index].decode("utf-8").split("\n")
        fields = [tuple(line.split(": ", 1)) for line in lines[1:]]
        index += 1
        body = b""
        if index < len(blocks) and not blocks[index].startswith(b"HTTP/"):
            body = blocks[index]
            index += 1
        messages.append((lines[0], fields, body))  # type: ignore[arg-type]
    return messages


def received_fields(body: bytes) -> list[tuple[str, str]]:
    return [(name, value) for name, value in json.loads(body)["headers"]]


def test_verbose_http2_shows_exactly_what_was_sent(hypercorn_server: ServerInfo) -> None:
    done = run_program(
        "-v",
        "--cacert",
        str(hypercorn_server.ca_file),
        hypercorn_server.url("/headers-echo?x=1"),
        "X-Test:é ☃",
        "a=b",
    )
    assert done.returncode == 0
    (request_line, sent, body), (status_line, _, echoed) = split_messages(done.stdout)
    assert request_line == "POST /headers-echo?x=1 HTTP/2"
    assert sent[0] == (":authority", hypercorn_server.authority)
    assert ("content-length", "10") in sent  # added for the body, and shown
    assert ("x-test", "é ☃") in sent  # names in lower case as sent, UTF-8 values shown as such
    assert body == b'{"a": "b"}'
    assert status_line == "HTTP/2 200 OK"
    got = [(name, value.encode("latin-1").decode("utf-8")) for name, value in received_fields(echoed)]
    # Everything but :authority arrived as shown, in order (HTTP/2 lower-cases names).
    assert sent[1:] == [f for f in got if f[0] != "host"]
    assert done.stderr.decode().startswith("* connected to 127.0.0.1:")


def test_verbose_http11_and_h2c_upgrade_show_what_was_sent(
    nginx_http11_server: ServerInfo, hypercorn_h2c_server: ServerInfo
) -> None:
    done = run_program(
        "-v", "--cacert", str(nginx_http11_server.ca_file), nginx_http11_server.url("/1k.bin"), "-p", "Hh"
    )
    assert done.returncode == 0
    (request_line, sent, _), (status_line, received, _) = split_messages(done.stdout)
    assert request_line == "GET /1k.bin HTTP/1.1"
    assert sent[0] == ("host", nginx_http11_server.authority)
    assert status_line == "HTTP/1.1 200 OK"
    assert ("content-length", "1024") in received
    # Cleartext: the first request carries hyper's h2c upgrade offer; hypercorn accepts.
    done = run_program("-v", hypercorn_h2c_server.url("/headers-echo"))
    assert done.returncode == 0
    (request_line, sent, _), (status_line, _, echoed) = split_messages(done.stdout)
    assert request_line == "GET /headers-echo HTTP/1.1"
    assert [name for name, _ in sent[-3:]] == ["connection", "upgrade", "http2-settings"]
    assert status_line == "HTTP/2 200 OK"
    got = received_fields(echoed)
    assert [name for name, _ in sent] == [name for name, _ in got]
    assert sent == got  # the SETTINGS value too: -v shows what went on the wire
    assert "* h2c upgrade offered; HTTP/2 chosen" in done.stderr.decode()


def test_post_without_body_shows_content_length_0(hypercorn_server: ServerInfo) -> None:
    done = run_program(
        "-p", "H", "--cacert", str(hypercorn_server.ca_file), "POST", hypercorn_server.url("/echo")
    )
    assert "content-length: 0\n" in done.stdout.decode()
    done = run_program(
        "-p", "H", "--cacert", str(hypercorn_server.ca_file), "DELETE", hypercorn_server.url("/echo")
    )
    assert "content-length" not in done.stdout.decode()


@pytest.mark.parametrize(
    ("options", "parts"),
    [
        (["--headers"], "h"),
        (["-h"], "h"),
        (["--body"], "b"),
        (["-b"], "b"),
        ([], "b"),  # stdout is not a terminal
        (["--print", "hb"], "hb"),
        (["-p", "H"], "H"),
        (["-p", "Bb"], "Bb"),
        (["-v"], "HBhb"),
        (["-v", "-p", "h"], "h"),
    ],
)
def test_print_chooses_the_parts(hypercorn_server: ServerInfo, options: list[str], parts: str) -> None:
    done = run_program(
        *options, "--cacert", str(hypercorn_server.ca_file), hypercorn_server.url("/echo"), "k=v"
    )
    assert done.returncode == 0
    out = done.stdout.decode()
    assert ("POST /echo HTTP/2\n" in out) == ("H" in parts)
    assert ("HTTP/2 200 OK\n" in out) == ("h" in parts)
    # The request body is sent as JSON; the echoed body comes back the same.
    assert out.count('{"k": "v"}') == ("B" in parts) + ("b" in parts)
    if parts == "b":
        assert out == '{"k": "v"}'


def test_head_prints_the_head_and_no_body(nginx_server: ServerInfo) -> None:
    done = run_program("HEAD", "-p", "Hh", "--cacert", str(nginx_server.ca_file), nginx_server.url("/1k.bin"))
    assert done.returncode == 0
    out = done.stdout.decode()
    assert out.startswith("HEAD /1k.bin HTTP/2\n")
    assert "content-length: 1024\n" in out
    assert out.endswith("\n\n")


@pytest.fixture(scope="module")
def utf8_server() -> Iterator[TestServer]:
    routes = {
        "/utf8": lambda request: (200, [("x-name", "Zoë ☃".encode()), ("x-latin1", b"caf\xe9")], b"ok\n"),
    }
    with TestServer(routes=routes) as server:
        yield server


def test_header_values_are_shown_as_utf8(utf8_server: TestServer) -> None:
    done = run_program("-h", "--cacert", utf8_server.ca_file, f"https://localhost:{utf8_server.port}/utf8")
    assert done.returncode == 0
    out = done.stdout.decode("utf-8")
    assert "x-name: Zoë ☃\n" in out
    assert "x-latin1: café\n" in out  # not UTF-8: shown as latin-1, not as garbage


def test_verbose_body_that_is_binary_goes_out_whole_when_not_a_terminal(hypercorn_server: ServerInfo) -> None:
    done = run_program(
        "-p",
        "B",
        "--cacert",
        str(hypercorn_server.ca_file),
        hypercorn_server.url("/echo"),
        stdin=b"\x00\x01\x02",
    )
    assert done.stdout == b"\x00\x01\x02"


def test_print_to_output_file_keeps_every_part(nginx_server: ServerInfo, tmp_path: Path) -> None:
    target = tmp_path / "exchange.txt"
    done = run_program(
        "-p", "hb", "-o", str(target), "--cacert", str(nginx_server.ca_file), nginx_server.url("/hello.txt")
    )
    assert (done.returncode, done.stdout) == (0, b"")
    content = target.read_bytes()
    assert content.startswith(b"HTTP/2 200 OK\n")
    assert content.endswith(b"\n\n" + docroot_content("hello.txt"))


def test_trailers_follow_the_body_with_the_head(hypercorn_server: ServerInfo) -> None:
    url = hypercorn_server.url("/trailers")
    done = run_program("-p", "hb", "--cacert", str(hypercorn_server.ca_file), url, "TE:trailers")
    assert done.returncode == 0
    assert done.stdout.endswith(b"\n\ntrailer body\n\nx-checksum: abc123\nx-trailer-two: 2\n\n")
    done = run_program("-b", "--cacert", str(hypercorn_server.ca_file), url, "TE:trailers")
    assert done.stdout == b"trailer body\n"


def test_nghttpd_over_tls_and_prior_knowledge(
    nghttpd_server: ServerInfo, nghttpd_h2c_server: ServerInfo
) -> None:
    done = run_program(
        "-v", "--cacert", str(nghttpd_server.ca_file), nghttpd_server.url("/1k.bin"), "-p", "hb"
    )
    assert done.returncode == 0
    assert done.stdout.startswith(b"HTTP/2 200 OK\n")
    assert done.stdout.endswith(b"\n\n" + docroot_content("1k.bin"))
    assert "(TLS, ALPN protocol h2)" in done.stderr.decode()
    # nghttpd --no-tls speaks only HTTP/2: negotiating finds that out, --h2 knows it.
    for options in ([], ["--h2"]):
        done = run_program(*options, "-p", "Hb", nghttpd_h2c_server.url("/hello.txt"))
        assert done.returncode == 0, done.stderr
        assert done.stdout.endswith(b"\n\n" + docroot_content("hello.txt"))
    assert done.stdout.startswith(b"GET /hello.txt HTTP/2\n:authority: ")


def test_nghttpd_echoes_a_large_stdin_upload(nghttpd_server: ServerInfo) -> None:
    payload = bytes(range(251)) * 8192  # about 2 MiB, more than the initial flow-control window
    done = run_program(
        "PUT", "--cacert", str(nghttpd_server.ca_file), nghttpd_server.url("/upload"), stdin=payload
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == payload


def test_host_item_replaces_the_host(hypercorn_server: ServerInfo, nginx_http11_server: ServerInfo) -> None:
    done = run_program(
        "-p",
        "Hhb",
        "--cacert",
        str(hypercorn_server.ca_file),
        hypercorn_server.url("/headers-echo"),
        "Host:localhost",
    )
    assert done.returncode == 0
    (_, sent, _), (_, _, echoed) = split_messages(done.stdout)
    assert sent[0] == (":authority", "localhost")
    assert [value for name, value in received_fields(echoed) if name == "host"] == ["localhost"]
    done = run_program(
        "-p",
        "H",
        "--cacert",
        str(nginx_http11_server.ca_file),
        nginx_http11_server.url("/"),
        "Host:localhost",
    )
    assert done.stdout.decode().split("\n")[1:3] == ["host: localhost", "user-agent: hyper/" + __version__]

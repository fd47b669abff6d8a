"""The ``hyper`` command: parsing, usage errors, TLS choices and failures, against real servers.

Bodies, output, redirects, downloads and proxies have their own
``test_cli_*.py`` files; :mod:`tests.cli_helpers` runs the command.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from hyper import __version__
from hyper.cli import Progress, RequestSpec, UsageError, parse_words
from hyper.cli.items import split_item
from tests import asgi_app
from tests.cli_helpers import run, run_on_terminal, run_program, subprocess_env
from tests.scripted import Peer, ScriptedServer
from tests.servers import CertFiles, ServerInfo, docroot_content

Capture = pytest.CaptureFixture[bytes]

# -- parsing the command line (pure) -------------------------------------------------------


def test_url_alone_is_a_get_over_https() -> None:
    spec = parse_words(["localhost"])
    assert (spec.method, spec.url) == ("GET", "https://localhost")


def test_localhost_shorthand() -> None:
    assert parse_words([":8443/x"]).url == "https://localhost:8443/x"
    with pytest.raises(UsageError, match="no host"):
        parse_words(["http://:8080/"])


@pytest.mark.parametrize(
    ("words", "method"),
    [
        (["get", "example.org"], "GET"),
        (["DELETE", "example.org"], "DELETE"),
        (["PROPFIND", "example.org"], "PROPFIND"),
        (["example.org", "a=b"], "POST"),
        (["example.org", "@body.txt"], "POST"),
        (["PUT", "example.org", "a=b"], "PUT"),
        (["example.org", "X-A:b"], "GET"),
    ],
)
def test_method_is_recognised_or_implied(words: list[str], method: str) -> None:
    spec = parse_words(words)
    assert spec.method == method
    assert spec.url == "https://example.org"


def test_items_take_the_earliest_separator() -> None:
    spec = parse_words(
        [
            "http://h/p?x=1",
            "Authorization:Bearer a=b",
            "url==http://x:1/",
            "name=a:b",
            "n:=[1, 2]",
            "User-Agent:",
            "X-Empty;",
            "up@file.png;type=image/x-test",
            "text=@notes.txt",
            "doc:=@doc.json",
            r"a\=b=c",
            r"q\=\=x==1",
        ]
    )
    assert spec.url == "http://h/p?x=1"
    assert spec.headers == [("Authorization", "Bearer a=b"), ("X-Empty", "")]
    assert spec.unset_headers == {"user-agent"}
    assert spec.query == [("url", "http://x:1/"), ("q==x", "1")]
    assert [(f.name, f.value, f.raw, f.path) for f in spec.data] == [
        ("name", "a:b", False, None),
        ("n", [1, 2], True, None),
        ("text", None, False, "notes.txt"),
        ("doc", None, True, "doc.json"),
        ("a=b", "c", False, None),
    ]
    assert [(f.name, f.path, f.content_type) for f in spec.files] == [("up", "file.png", "image/x-test")]


def test_split_item_and_repeated_json_fields() -> None:
    assert split_item("a:=@b") == ("a", ":=@", "b")
    assert split_item("a==b=c") == ("a", "==", "b=c")
    assert split_item("@file") == ("", "@", "file")
    assert split_item("plain") is None
    spec = parse_words(["example.org", "tag=a", "tag=b", "tag=c", "one:=1"])
    assert spec.json_document() == {"tag": ["a", "b", "c"], "one": 1}
    assert RequestSpec("GET", "https://h").has_data is False


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["ftp://example.org"], "unsupported URL scheme"),
        (["https://"], "no host"),
        (["https://h:99999/"], "Port out of range"),
        (["https://[zz]/"], "invalid URL"),
        (["http://[::1/y"], "Invalid IPv6 URL"),
        (["http://exa mple.org/"], "whitespace"),
        (["https://bad!host/"], "invalid host"),
        (["GET"], "no URL given after the method GET"),
        (["get"], "no URL given"),
        ([], "no URL given"),
        (["example.org", "plainword"], "is not an item"),
        (["example.org", "n:={oops"], "not JSON"),
        (["example.org", "Bad Name:x"], "invalid header name"),
        (["example.org", "X-Bad:one\ntwo"], "CR, LF and NUL"),
        (["example.org", "X-A;b"], "empty value"),
        (["example.org", "=x"], "no name"),
        (["example.org", "@a", "@b"], "only one @file"),
    ],
)
def test_bad_command_lines(words: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_words(words)


def test_progress_line() -> None:
    stream = io.StringIO()
    progress = Progress(stream, 4 * 1024 * 1024)
    progress.update(1024 * 1024)
    assert progress.line() == "[#######-----------------------]  25% 1.0 MiB / 4.0 MiB"
    assert stream.getvalue().startswith("\r[#######")
    progress.update(3 * 1024 * 1024)
    progress.finish()
    assert stream.getvalue().endswith("100% 4.0 MiB / 4.0 MiB\x1b[K\n")
    unknown = Progress(io.StringIO(), None)
    unknown.update(1500)
    assert unknown.line() == "1.5 KiB received"
    resumed = Progress(io.StringIO(), 2048, already=1024)
    assert resumed.line().startswith("[###############---------------]  50%")


# -- usage errors: exit status 2, one line, nothing sent -------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["GET"],
        ["https://[zz]/"],
        ["http://[::1/y"],
        ["--timeout", "-1", "example.org"],
        ["--timeout", "soon", "example.org"],
        ["--max-redirects", "-1", "example.org"],
        ["--no-such-option", "example.org"],
        ["--print", "Hx", "example.org"],
        ["--json", "--form", "example.org"],
        ["--continue", "example.org"],
        ["--all", "example.org"],
        ["--proxy", "http://proxy:3128", "example.org"],
        ["--proxy", "https:socks5://proxy:1080", "example.org"],
        ["example.org", "plainword"],
        ["example.org", "file@/nonexistent/upload.bin"],
        ["--form", "example.org", "file@/nonexistent/upload.bin"],
        ["example.org", "@/nonexistent/body.txt"],
        ["example.org", "text=@/nonexistent/notes.txt"],
        ["--form", "example.org", "raw:=1"],
        ["--cacert", "/nonexistent/ca.pem", "example.org"],
        ["-o", "/nonexistent/dir/out.bin", "example.org"],
    ],
)
def test_usage_errors_exit_2(capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    # Nothing listens on example.org here: a usage error must not even try.
    monkeypatch.setattr(socket, "create_connection", _no_network)
    status, out, err = run(capsysbinary, monkeypatch, *argv)
    assert status == 2
    assert out == b""
    assert err.count("\n") == 1
    assert err.startswith("hyper: error: ")
    assert "Traceback" not in err


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("a usage error tried to connect")


def test_output_file_of_a_usage_error_is_not_created(
    capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "out.bin"
    status, _, err = run(capsysbinary, monkeypatch, "-o", str(target), "example.org", "plainword")
    assert status == 2
    assert not target.exists()


def test_usage_errors_of_the_program_are_one_line() -> None:
    for argv in (["GET"], ["https://[zz]/"], ["http://[::1/y"], ["--bogus", "x"], ["example.org", "oops"]):
        done = run_program(*argv)
        assert done.returncode == 2, argv
        assert done.stdout == b""
        lines = done.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hyper: error: "), (argv, lines)


def test_help_and_version_exit_0(capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    status, out, _ = run(capsysbinary, monkeypatch, "--help")
    assert status == 0
    assert b"Header:Value" in out
    assert b"--check-status" in out
    status, out, _ = run(capsysbinary, monkeypatch, "--version")
    assert (status, out) == (0, f"hyper {__version__}\n".encode())


# -- exchanges -------------------------------------------------------------------------------------


def test_get_prints_the_decoded_body(
    capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch, nginx_server: ServerInfo
) -> None:
    status, out, err = run(
        capsysbinary, monkeypatch, "--cacert", str(nginx_server.ca_file), nginx_server.url("/hello.txt")
    )
    assert status == 0
    assert out == docroot_content("hello.txt")
    assert err == ""


def test_json_fields_query_items_and_credentials(
    capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch, hypercorn_server: ServerInfo
) -> None:
    url = f"https://alice:s%40fe@127.0.0.1:{hypercorn_server.port}/headers-echo?a=1"
    status, out, _ = run(
        capsysbinary,
        monkeypatch,
        "--cacert",
        str(hypercorn_server.ca_file),
        url,
        "b==2",
        "X-Test:yes",
        "name=hyper",
        "n:=3",
    )
    assert status == 0
    document = json.loads(out)
    assert document["method"] == "POST"
    assert document["query_string"] == "a=1&b=2"
    headers = dict(document["headers"])
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json, */*;q=0.5"
    assert headers["x-test"] == "yes"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"alice:s@fe").decode()

    status, out, _ = run(
        capsysbinary,
        monkeypatch,
        "--cacert",
        str(hypercorn_server.ca_file),
        hypercorn_server.url("/echo"),
        "name=hyper",
        "n:=3",
    )
    assert (status, out) == (0, b'{"name": "hyper", "n": 3}')


def test_explicit_method_and_error_status_exit_0(
    capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch, hypercorn_server: ServerInfo
) -> None:
    ca = str(hypercorn_server.ca_file)
    status, out, _ = run(
        capsysbinary, monkeypatch, "delete", "--cacert", ca, hypercorn_server.url("/headers-echo")
    )
    assert status == 0
    assert json.loads(out)["method"] == "DELETE"
    # Without --check-status a response is a success, whatever its status.
    status, out, _ = run(capsysbinary, monkeypatch, "--cacert", ca, hypercorn_server.url("/status/503"))
    assert (status, out) == (0, b"")


def test_output_writes_a_large_body_without_progress_when_not_a_terminal(
    capsysbinary: Capture,
    monkeypatch: pytest.MonkeyPatch,
    nginx_server: ServerInfo,
    docroot: str,
    tmp_path: Path,
) -> None:
    target = tmp_path / "big.bin"
    status, out, err = run(
        capsysbinary,
        monkeypatch,
        "--cacert",
        str(nginx_server.ca_file),
        "-o",
        str(target),
        nginx_server.url("/big.bin"),
    )
    assert (status, out, err) == (0, b"", "")
    assert (
        hashlib.sha256(target.read_bytes()).digest()
        == hashlib.sha256(Path(docroot, "big.bin").read_bytes()).digest()
    )


# -- TLS choices ----------------------------------------------------------------------------------


def test_unknown_ca_is_one_line_and_exit_1(
    capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch, nginx_server: ServerInfo
) -> None:
    status, out, err = run(capsysbinary, monkeypatch, nginx_server.url("/"))
    assert status == 1
    assert out == b""
    assert err.startswith("hyper: error: TLSError: ")
    assert err.count("\n") == 1


def test_wrong_host_fails_unless_insecure_which_warns_loudly(
    capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch, nginx_wrong_host_server: ServerInfo
) -> None:
    url = nginx_wrong_host_server.url("/1k.bin")
    status, _, err = run(capsysbinary, monkeypatch, "--cacert", str(nginx_wrong_host_server.ca_file), url)
    assert status == 1
    assert err.startswith("hyper: error: TLSError: ")
    status, out, err = run(capsysbinary, monkeypatch, "--insecure", url)
    assert status == 0
    assert out == docroot_content("1k.bin")
    assert "warning: --insecure" in err
    assert "NOT checked" in err
    status, out, _ = run(capsysbinary, monkeypatch, "--verify=no", "--quiet", url)
    assert (status, out) == (0, docroot_content("1k.bin"))


def test_insecure_is_off_by_default(
    capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch, nginx_server: ServerInfo
) -> None:
    status, _, err = run(
        capsysbinary, monkeypatch, "--cacert", str(nginx_server.ca_file), nginx_server.url("/")
    )
    assert status == 0
    assert "warning" not in err


def test_h2_forces_http2_when_the_server_offers_no_alpn(
    capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch, server_cert_files: CertFiles, ca_file: str
) -> None:
    # A TLS server that selects no ALPN protocol (scripted: the real test
    # servers all select h2).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_cert_files.cert_file, server_cert_files.key_file)

    connections: list[Peer] = []

    def answer(peer: Peer) -> None:
        connections.append(peer)
        if len(connections) == 1:
            # Negotiation without ALPN means HTTP/1.1: read that request raw
            # (not as HTTP/2) and never answer, until the client gives up.
            try:
                while peer.sock.recv(65536):
                    pass
            except OSError:
                pass
            return
        peer.handshake()
        request = peer.wait_request()
        peer.respond(request.stream_id, 200, [(b"content-length", b"6")], b"forced")
        peer.drain_until_closed()

    with ScriptedServer(answer, tls_context=context, handshake=False, connections=2) as server:
        url = f"https://127.0.0.1:{server.port}/"
        # Without ALPN, negotiation means HTTP/1.1, which this server ignores: a timeout (exit 2).
        status, _, err = run(capsysbinary, monkeypatch, "--timeout", "1", "--cacert", ca_file, url)
        assert status == 2
        assert err.startswith("hyper: error: ReadTimeout")
        status, out, err = run(capsysbinary, monkeypatch, "--h2", "-v", "--cacert", ca_file, url)
        assert status == 0
        assert out.endswith(b"\n\nforced")
        assert "(TLS, no ALPN protocol (HTTP/2 forced))" in err.splitlines()[0]


def test_cacert_directory(
    capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch, nginx_server: ServerInfo, tmp_path: Path
) -> None:
    ca_dir = tmp_path / "cas"
    ca_dir.mkdir()
    shutil.copy(str(nginx_server.ca_file), ca_dir / "test-ca.pem")
    subprocess.run(["openssl", "rehash", str(ca_dir)], check=True, capture_output=True, timeout=30)
    status, out, _ = run(capsysbinary, monkeypatch, "--cacert", str(ca_dir), nginx_server.url("/1k.bin"))
    assert (status, out) == (0, docroot_content("1k.bin"))


# -- failures ---------------------------------------------------------------------------------------


def test_read_timeout_is_exit_2_as_in_httpie(
    capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch, hypercorn_server: ServerInfo
) -> None:
    status, out, err = run(
        capsysbinary,
        monkeypatch,
        "--timeout",
        "0.5",
        "--cacert",
        str(hypercorn_server.ca_file),
        hypercorn_server.url("/stall"),
    )
    assert (status, out) == (2, b"")
    assert err.startswith("hyper: error: ReadTimeout: ")
    assert err.count("\n") == 1


def test_refused_connection_is_exit_1(capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, _, err = run(capsysbinary, monkeypatch, f"https://127.0.0.1:{port}/")
    assert status == 1
    assert err.startswith("hyper: error: ConnectError: ")


# -- as a program ---------------------------------------------------------------------------------------


def test_python_dash_m_hyper(nginx_server: ServerInfo) -> None:
    done = run_program("--cacert", str(nginx_server.ca_file), nginx_server.url("/1k.bin"))
    assert done.returncode == 0
    assert done.stdout == docroot_content("1k.bin")
    assert done.stderr == b""


def test_exit_codes_of_the_program(nginx_server: ServerInfo) -> None:
    assert run_program("example.org", "plainword").returncode == 2
    failure = run_program(nginx_server.url("/"))
    assert failure.returncode == 1
    assert failure.stderr.decode().startswith("hyper: error: TLSError: ")


def test_reader_going_away_ends_quietly(nginx_server: ServerInfo) -> None:
    # Like `hyper URL | head -c 10`: the pipe closes long before the body ends.
    with subprocess.Popen(
        [sys.executable, "-m", "hyper", "--cacert", str(nginx_server.ca_file), nginx_server.url("/big.bin")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert len(proc.stdout.read(10)) == 10
        proc.stdout.close()
        status = proc.wait(60)
        errors = proc.stderr.read()
    assert status == 1
    assert errors == b""


# -- on a terminal ----------------------------------------------------------------------------------------


def test_progress_bar_on_a_terminal(nginx_server: ServerInfo, tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    result = run_on_terminal(
        ["--cacert", str(nginx_server.ca_file), "--output", str(target), nginx_server.url("/big.bin")],
        ("stderr",),
    )
    assert result.status == 0
    assert result.piped == b""
    assert target.stat().st_size == 64 * 1024 * 1024
    assert b"\r[" in result.terminal
    assert result.terminal.rstrip().endswith(b"100% 64.0 MiB / 64.0 MiB\x1b[K")


def test_progress_bar_when_stdout_is_redirected_to_a_file(nginx_server: ServerInfo, tmp_path: Path) -> None:
    # `hyper URL > file` with stderr on the terminal: the bar shows there.
    target = tmp_path / "big.bin"
    result = run_on_terminal(
        ["--cacert", str(nginx_server.ca_file), nginx_server.url("/big.bin")],
        ("stderr",),
        stdout_path=str(target),
    )
    assert result.status == 0
    assert target.stat().st_size == 64 * 1024 * 1024
    assert result.terminal.rstrip().endswith(b"100% 64.0 MiB / 64.0 MiB\x1b[K")


def test_no_progress_bar_into_a_pipe_or_when_quiet(nginx_server: ServerInfo, tmp_path: Path) -> None:
    result = run_on_terminal(
        ["--cacert", str(nginx_server.ca_file), nginx_server.url("/1k.bin")], ("stderr",)
    )
    assert (result.status, result.terminal, result.piped) == (0, b"", docroot_content("1k.bin"))
    target = tmp_path / "1k.bin"
    result = run_on_terminal(
        ["-q", "--cacert", str(nginx_server.ca_file), "-o", str(target), nginx_server.url("/1k.bin")],
        ("stderr",),
    )
    assert (result.status, result.terminal) == (0, b"")
    assert target.read_bytes() == docroot_content("1k.bin")


def test_binary_body_is_not_printed_to_a_terminal(nginx_server: ServerInfo) -> None:
    result = run_on_terminal(
        ["--cacert", str(nginx_server.ca_file), nginx_server.url("/1k.bin")], ("stdout",)
    )
    assert result.status == 0
    # On a terminal the response head is shown, then a note instead of the bytes.
    assert result.terminal.startswith(b"HTTP/2 200 OK\r\n")
    assert b"NOTE: binary data not shown in terminal" in result.terminal
    assert b"\x00" not in result.terminal


def test_text_body_is_printed_to_a_terminal(hypercorn_server: ServerInfo) -> None:
    result = run_on_terminal(
        ["--body", "--cacert", str(hypercorn_server.ca_file), hypercorn_server.url("/slow-body")], ("stdout",)
    )
    assert result.status == 0
    # The body as it is, and a newline for the prompt (it ends without one).
    assert result.terminal == b"".join(asgi_app.SLOW_BODY_CHUNKS) + b"\r\n"

"""The ``hyper`` command, end to end against nginx and hypercorn on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pty
import select
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hyper import __version__
from hyper.cli import Progress, RequestSpec, UsageError, main, parse_words
from tests import asgi_app
from tests.scripted import Peer, ScriptedServer
from tests.servers import REPO_ROOT, CertFiles, ServerInfo, docroot_content


def run(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, str]:
    """Run ``hyper argv`` in this process; return status, stdout and stderr."""
    status = main(list(argv))
    out, err = capsysbinary.readouterr()
    return status, out, err.decode()


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


# -- parsing the command line (pure) -------------------------------------------------------


def test_url_alone_is_a_get_over_https() -> None:
    spec = parse_words(["localhost"])
    assert (spec.method, spec.url) == ("GET", "https://localhost")


@pytest.mark.parametrize(
    ("words", "method"),
    [
        (["get", "example.org"], "GET"),
        (["DELETE", "example.org"], "DELETE"),
        (["PROPFIND", "example.org"], "PROPFIND"),
        (["example.org", "a=b"], "POST"),
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
        ["http://h/p?x=1", "Authorization:Bearer a=b", "url==http://x:1/", "name=a:b", "n:=[1, 2]", "Empty:"]
    )
    assert spec.url == "http://h/p?x=1"
    assert spec.headers == [("Authorization", "Bearer a=b"), ("Empty", "")]
    assert spec.query == [("url", "http://x:1/")]
    assert spec.json_fields == {"name": "a:b", "n": [1, 2]}
    assert json.loads(spec.body or b"") == {"name": "a:b", "n": [1, 2]}
    assert RequestSpec("GET", "https://h").body is None


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["ftp://example.org"], "unsupported URL scheme"),
        (["https://"], "no host"),
        (["https://h:99999/"], "invalid port"),
        (["example.org", "plainword"], "is not an item"),
        (["example.org", "n:={oops"], "not JSON"),
        (["example.org", "Bad Name:x"], "invalid header name"),
        (["example.org", "X-Bad:one\ntwo"], "CR, LF and NUL"),
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


# -- usage errors: exit status 2 ---------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--timeout", "-1", "example.org"],
        ["--timeout", "soon", "example.org"],
        ["--no-such-option", "example.org"],
        ["example.org", "plainword"],
        ["--cacert", "/nonexistent/ca.pem", "example.org"],
    ],
)
def test_usage_errors_exit_2(capsysbinary: pytest.CaptureFixture[bytes], argv: list[str]) -> None:
    status, out, err = run(capsysbinary, *argv)
    assert status == 2
    assert out == b""
    assert "usage: hyper" in err
    assert err.splitlines()[-1].startswith("hyper: error: ")


def test_host_refused_by_hyper_is_a_usage_error(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    # Refused before any connection is made, so nothing needs to listen.
    status, out, err = run(capsysbinary, "http://exa mple.org/")
    assert (status, out) == (2, b"")
    assert "usage: hyper" in err
    assert err.splitlines()[-1].startswith("hyper: error: InvalidURL: ")


def test_help_and_version_exit_0(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    status, out, _ = run(capsysbinary, "--help")
    assert status == 0
    assert b"Header:Value" in out
    status, out, _ = run(capsysbinary, "--version")
    assert (status, out) == (0, f"hyper {__version__}\n".encode())


# -- exchanges -------------------------------------------------------------------------------------


def test_get_prints_the_decoded_body(
    capsysbinary: pytest.CaptureFixture[bytes], nginx_server: ServerInfo
) -> None:
    status, out, err = run(
        capsysbinary, "--cacert", str(nginx_server.ca_file), nginx_server.url("/hello.txt")
    )
    assert status == 0
    assert out == docroot_content("hello.txt")
    assert err == ""


def test_verbose_shows_protocol_and_headers(
    capsysbinary: pytest.CaptureFixture[bytes], nginx_server: ServerInfo
) -> None:
    status, out, err = run(
        capsysbinary, "-v", "--cacert", str(nginx_server.ca_file), nginx_server.url("/hello.txt"), "X-Test:1"
    )
    assert status == 0
    assert out == docroot_content("hello.txt")
    lines = err.splitlines()
    assert lines[0] == f"* connected to 127.0.0.1:{nginx_server.port} (TLS, ALPN protocol h2)"
    assert lines[1] == "> GET /hello.txt HTTP/2"
    assert f"> :authority: 127.0.0.1:{nginx_server.port}" in lines
    assert f"> user-agent: hyper/{__version__}" in lines
    assert "> x-test: 1" in lines
    assert "< HTTP/2 200 OK" in lines
    assert "< content-encoding: gzip" in lines


def test_head_shows_headers_and_prints_no_body(
    capsysbinary: pytest.CaptureFixture[bytes], nginx_server: ServerInfo
) -> None:
    status, out, err = run(
        capsysbinary, "HEAD", "-v", "--cacert", str(nginx_server.ca_file), nginx_server.url("/1k.bin")
    )
    assert status == 0
    assert out == b""
    assert "< content-length: 1024" in err.splitlines()


def test_json_fields_query_items_and_credentials(
    capsysbinary: pytest.CaptureFixture[bytes], hypercorn_server: ServerInfo
) -> None:
    url = f"https://alice:s%40fe@127.0.0.1:{hypercorn_server.port}/headers-echo?a=1"
    status, out, _ = run(
        capsysbinary,
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
        "--cacert",
        str(hypercorn_server.ca_file),
        hypercorn_server.url("/echo"),
        "name=hyper",
        "n:=3",
    )
    assert (status, out) == (0, b'{"name": "hyper", "n": 3}')


def test_explicit_method_and_error_status_exit_0(
    capsysbinary: pytest.CaptureFixture[bytes], hypercorn_server: ServerInfo
) -> None:
    status, out, _ = run(
        capsysbinary,
        "delete",
        "--cacert",
        str(hypercorn_server.ca_file),
        hypercorn_server.url("/headers-echo"),
    )
    assert status == 0
    assert json.loads(out)["method"] == "DELETE"
    # A response arrived: its status code is the server's business, not an error of the tool.
    status, out, _ = run(
        capsysbinary, "--cacert", str(hypercorn_server.ca_file), hypercorn_server.url("/status/503")
    )
    assert (status, out) == (0, b"")


def test_cleartext_prior_knowledge(
    capsysbinary: pytest.CaptureFixture[bytes], nginx_h2c_server: ServerInfo
) -> None:
    # Negotiating, the protocol is chosen with the first request (nginx's
    # answer to the h2c offer shows it speaks only HTTP/2); --h2 knows it.
    for extra, connected in (
        ([], "(cleartext, protocol chosen with the first request)"),
        (["--h2"], "(cleartext, HTTP/2 with prior knowledge)"),
    ):
        status, out, err = run(capsysbinary, *extra, "-v", nginx_h2c_server.url("/index.html"))
        assert status == 0
        assert out == docroot_content("index.html")
        lines = err.splitlines()
        assert connected in lines[0]
        assert any(line.startswith("< HTTP/2 200") for line in lines)


def test_output_writes_a_large_body_without_progress_when_not_a_terminal(
    capsysbinary: pytest.CaptureFixture[bytes], nginx_server: ServerInfo, docroot: str, tmp_path: Path
) -> None:
    target = tmp_path / "big.bin"
    status, out, err = run(
        capsysbinary, "--cacert", str(nginx_server.ca_file), "-o", str(target), nginx_server.url("/big.bin")
    )
    assert (status, out, err) == (0, b"", "")
    assert (
        hashlib.sha256(target.read_bytes()).digest()
        == hashlib.sha256(Path(docroot, "big.bin").read_bytes()).digest()
    )


# -- TLS choices ----------------------------------------------------------------------------------


def test_unknown_ca_is_one_line_and_exit_1(
    capsysbinary: pytest.CaptureFixture[bytes], nginx_server: ServerInfo
) -> None:
    status, out, err = run(capsysbinary, nginx_server.url("/"))
    assert status == 1
    assert out == b""
    assert err.startswith("hyper: error: TLSError: ")
    assert err.count("\n") == 1


def test_wrong_host_fails_unless_insecure_which_warns_loudly(
    capsysbinary: pytest.CaptureFixture[bytes], nginx_wrong_host_server: ServerInfo
) -> None:
    url = nginx_wrong_host_server.url("/1k.bin")
    status, _, err = run(capsysbinary, "--cacert", str(nginx_wrong_host_server.ca_file), url)
    assert status == 1
    assert err.startswith("hyper: error: TLSError: ")
    status, out, err = run(capsysbinary, "--insecure", url)
    assert status == 0
    assert out == docroot_content("1k.bin")
    assert "WARNING: --insecure" in err
    assert "NOT checked" in err


def test_insecure_is_off_by_default(
    capsysbinary: pytest.CaptureFixture[bytes], nginx_server: ServerInfo
) -> None:
    status, _, err = run(capsysbinary, "--cacert", str(nginx_server.ca_file), nginx_server.url("/"))
    assert status == 0
    assert "WARNING" not in err


def test_h2_forces_http2_when_the_server_offers_no_alpn(
    capsysbinary: pytest.CaptureFixture[bytes], server_cert_files: CertFiles, ca_file: str
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
        # Without ALPN, negotiation means HTTP/1.1, which this server ignores.
        status, _, err = run(capsysbinary, "--timeout", "1", "--cacert", ca_file, url)
        assert status == 1
        assert err.startswith("hyper: error: ReadTimeout")
        status, out, err = run(capsysbinary, "--h2", "-v", "--cacert", ca_file, url)
        assert (status, out) == (0, b"forced")
        assert "(TLS, no ALPN protocol (HTTP/2 forced))" in err.splitlines()[0]


def test_cacert_directory(
    capsysbinary: pytest.CaptureFixture[bytes], nginx_server: ServerInfo, tmp_path: Path
) -> None:
    ca_dir = tmp_path / "cas"
    ca_dir.mkdir()
    shutil.copy(str(nginx_server.ca_file), ca_dir / "test-ca.pem")
    subprocess.run(["openssl", "rehash", str(ca_dir)], check=True, capture_output=True, timeout=30)
    status, out, _ = run(capsysbinary, "--cacert", str(ca_dir), nginx_server.url("/1k.bin"))
    assert (status, out) == (0, docroot_content("1k.bin"))


# -- failures: exit status 1 ------------------------------------------------------------------------


def test_read_timeout_is_exit_1(
    capsysbinary: pytest.CaptureFixture[bytes], hypercorn_server: ServerInfo
) -> None:
    status, out, err = run(
        capsysbinary,
        "--timeout",
        "0.5",
        "--cacert",
        str(hypercorn_server.ca_file),
        hypercorn_server.url("/stall"),
    )
    assert (status, out) == (1, b"")
    assert err.startswith("hyper: error: ReadTimeout: ")
    assert err.count("\n") == 1


def test_refused_connection_is_exit_1(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, _, err = run(capsysbinary, f"https://127.0.0.1:{port}/")
    assert status == 1
    assert err.startswith("hyper: error: ConnectError: ")


# -- as a program ---------------------------------------------------------------------------------------


def test_python_dash_m_hyper(nginx_server: ServerInfo) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hyper", "--cacert", str(nginx_server.ca_file), nginx_server.url("/1k.bin")],
        capture_output=True,
        env=subprocess_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout == docroot_content("1k.bin")
    assert done.stderr == b""


def test_exit_codes_of_the_program(nginx_server: ServerInfo) -> None:
    usage = subprocess.run(
        [sys.executable, "-m", "hyper", "example.org", "plainword"],
        capture_output=True,
        env=subprocess_env(),
        timeout=60,
        check=False,
    )
    assert usage.returncode == 2
    failure = subprocess.run(
        [sys.executable, "-m", "hyper", nginx_server.url("/")],
        capture_output=True,
        env=subprocess_env(),
        timeout=60,
        check=False,
    )
    assert failure.returncode == 1
    assert failure.stderr.decode().startswith("hyper: error: TLSError: ")


def test_reader_going_away_ends_quietly(nginx_server: ServerInfo) -> None:
    # Like `hyper URL | head -c 10`: the pipe closes long before the body ends.
    with subprocess.Popen(
        [sys.executable, "-m", "hyper", "--cacert", str(nginx_server.ca_file), nginx_server.url("/big.bin")],
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


def _run_on_terminal(argv: list[str], terminal_stream: str) -> tuple[int, bytes, bytes]:
    """Run ``python -m hyper`` with stdout or stderr on a pseudo-terminal."""
    controller, terminal = pty.openpty()
    other = subprocess.PIPE
    with subprocess.Popen(
        [sys.executable, "-m", "hyper", *argv],
        stdout=terminal if terminal_stream == "stdout" else other,
        stderr=terminal if terminal_stream == "stderr" else other,
        env=subprocess_env(),
    ) as proc:
        os.close(terminal)
        seen = bytearray()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the program closed its end of the terminal
                break
            if not data:
                break
            seen += data
        os.close(controller)
        piped = (proc.stderr if terminal_stream == "stdout" else proc.stdout).read()  # type: ignore[union-attr]
        status = proc.wait(30)
    return status, bytes(seen), piped


def test_progress_bar_on_a_terminal(nginx_server: ServerInfo, tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    status, terminal, stdout = _run_on_terminal(
        ["--cacert", str(nginx_server.ca_file), "--output", str(target), nginx_server.url("/big.bin")],
        "stderr",
    )
    assert status == 0
    assert stdout == b""
    assert target.stat().st_size == 64 * 1024 * 1024
    assert b"\r[" in terminal
    assert terminal.rstrip().endswith(b"100% 64.0 MiB / 64.0 MiB\x1b[K")


def test_binary_body_is_not_printed_to_a_terminal(nginx_server: ServerInfo) -> None:
    status, terminal, stderr = _run_on_terminal(
        ["--cacert", str(nginx_server.ca_file), nginx_server.url("/1k.bin")], "stdout"
    )
    assert status == 0
    assert terminal == b""
    assert b"binary data; not shown on a terminal" in stderr


def test_text_body_is_printed_to_a_terminal(hypercorn_server: ServerInfo) -> None:
    status, terminal, _ = _run_on_terminal(
        ["--cacert", str(hypercorn_server.ca_file), hypercorn_server.url("/slow-body")], "stdout"
    )
    assert status == 0
    assert terminal == b"".join(asgi_app.SLOW_BODY_CHUNKS)

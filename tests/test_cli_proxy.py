"""Proxies in the ``hyper`` command: ``--proxy PROTOCOL:URL`` and the ``*_proxy``/``NO_PROXY`` environment.

tinyproxy (``proxy_server``, ``auth_proxy_server``) stands between the
command and nginx.
"""

from __future__ import annotations

import socket

from tests.cli_helpers import run_program, subprocess_env
from tests.conftest import PROXY_USER
from tests.servers import ServerInfo, docroot_content


def _proxy_url(proxy: ServerInfo, credentials: tuple[str, str] | None = None) -> str:
    user = f"{credentials[0]}:{credentials[1]}@" if credentials else ""
    return f"http://{user}{proxy.authority}"


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_proxy_option_tunnels_tls(nginx_server: ServerInfo, auth_proxy_server: ServerInfo) -> None:
    proxy = "https:" + _proxy_url(auth_proxy_server, PROXY_USER)
    done = run_program(
        "-v", "-b", "--proxy", proxy, "--cacert", str(nginx_server.ca_file), nginx_server.url("/1k.bin")
    )
    assert done.returncode == 0
    assert done.stdout == docroot_content("1k.bin")
    assert f"via proxy {auth_proxy_server.authority} (TLS, ALPN protocol h2)" in done.stderr.decode()


def test_proxy_refusal_is_exit_1(nginx_server: ServerInfo, auth_proxy_server: ServerInfo) -> None:
    proxy = "https:" + _proxy_url(auth_proxy_server, ("hyper", "wrong"))
    done = run_program("--proxy", proxy, "--cacert", str(nginx_server.ca_file), nginx_server.url("/1k.bin"))
    assert done.returncode == 1
    assert done.stderr.decode().startswith("hyper: error: ProxyError: ")
    assert done.stderr.count(b"\n") == 1


def test_cleartext_through_a_proxy_uses_the_absolute_form(
    nginx_http11_plain_server: ServerInfo, proxy_server: ServerInfo
) -> None:
    server = nginx_http11_plain_server
    done = run_program("-p", "Hb", "--proxy", "http:" + _proxy_url(proxy_server), server.url("/hello.txt"))
    assert done.returncode == 0
    out = done.stdout
    assert out.startswith(
        f"GET http://{server.authority}/hello.txt HTTP/1.1\nhost: {server.authority}\n".encode()
    )
    assert out.endswith(docroot_content("hello.txt"))


def test_proxy_from_the_environment(nginx_server: ServerInfo, auth_proxy_server: ServerInfo) -> None:
    args = ["-v", "-b", "--cacert", str(nginx_server.ca_file), nginx_server.url("/1k.bin")]
    env = subprocess_env(HTTPS_PROXY=_proxy_url(auth_proxy_server, PROXY_USER))
    done = run_program(*args, env=env)
    assert done.returncode == 0
    assert done.stdout == docroot_content("1k.bin")
    assert f"via proxy {auth_proxy_server.authority}" in done.stderr.decode()
    # --proxy wins over the environment.
    dead = f"http://127.0.0.1:{_dead_port()}"
    env = subprocess_env(https_proxy=dead)
    done = run_program("--proxy", "https:" + _proxy_url(auth_proxy_server, PROXY_USER), *args, env=env)
    assert done.returncode == 0


def test_no_proxy_bypasses_the_environment_proxy(nginx_server: ServerInfo) -> None:
    args = ["--cacert", str(nginx_server.ca_file), nginx_server.url("/1k.bin")]
    dead = f"http://127.0.0.1:{_dead_port()}"
    done = run_program(*args, env=subprocess_env(HTTPS_PROXY=dead))
    assert done.returncode == 1  # the proxy is not there
    done = run_program(*args, env=subprocess_env(HTTPS_PROXY=dead, NO_PROXY="127.0.0.1"))
    assert done.returncode == 0
    assert done.stdout == docroot_content("1k.bin")


def test_invalid_proxy_in_the_environment_is_a_usage_error(nginx_server: ServerInfo) -> None:
    env = subprocess_env(HTTPS_PROXY="socks5://127.0.0.1:1080")
    done = run_program("--cacert", str(nginx_server.ca_file), nginx_server.url("/"), env=env)
    assert done.returncode == 2
    assert done.stderr.decode().startswith("hyper: error: InvalidURL: only http:// proxies")

"""The interfaces hyper.contrib's modules use between them, against a real nginx.

The adapter reaches the raw response only through ``RawResponse.preload`` and
``RawResponse.hyper_response``, and types connections and pool keys as
``AdapterConnection`` and ``SiteKey``; these tests pin what each promises.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

import hyper
from hyper.contrib import HTTP20Adapter, RawResponse
from hyper.contrib.pool import SiteKey
from hyper.contrib.raw import AdapterConnection
from hyper.headers import HTTPHeaderMap
from tests.servers import ServerInfo, docroot_content

CONTRIB = Path(hyper.__file__).parent / "contrib"


@pytest.fixture
def adapter() -> Iterator[HTTP20Adapter]:
    adapter = HTTP20Adapter()
    yield adapter
    adapter.close()


@pytest.fixture
def session(adapter: HTTP20Adapter) -> Iterator[requests.Session]:
    """A session whose https:// requests go through ``adapter``."""
    with requests.Session() as s:
        s.trust_env = False  # the machine's proxy variables must not apply
        s.mount("https://", adapter)
        yield s


def test_hyper_response_is_the_response_the_headers_came_from(
    session: requests.Session, nginx_server: ServerInfo
) -> None:
    response = session.get(
        nginx_server.url("/hello.txt"), stream=True, verify=nginx_server.ca_file, timeout=20
    )
    raw = response.raw
    assert isinstance(raw, RawResponse)
    hyper_response = raw.hyper_response
    assert isinstance(hyper_response.headers, HTTPHeaderMap)
    assert hyper_response.status == response.status_code == 200
    assert hyper_response.headers.get_first("content-encoding") == b"gzip"
    assert response.headers["Content-Encoding"] == "gzip"
    response.close()


def test_preload_reads_the_decoded_body_and_later_reads_return_it(
    session: requests.Session, nginx_server: ServerInfo
) -> None:
    response = session.get(
        nginx_server.url("/hello.txt"), stream=True, verify=nginx_server.ca_file, timeout=20
    )
    raw = response.raw
    assert isinstance(raw, RawResponse)
    assert not raw.closed
    raw.preload()
    # What stream=False gives: the whole body, decoded, then end of body.
    expected = docroot_content("hello.txt")
    assert raw.read(10) == expected[:10]
    assert raw.read() == expected[10:]
    assert raw.closed
    assert raw.read() == b""
    # The stream was given back: the connection carries the next request.
    again = session.get(nginx_server.url("/hello.txt"), verify=nginx_server.ca_file, timeout=20)
    assert again.content == expected


def test_pool_keys_are_site_keys_and_connections_meet_the_protocol(
    adapter: HTTP20Adapter, session: requests.Session, nginx_server: ServerInfo
) -> None:
    session.get(nginx_server.url("/hello.txt"), verify=nginx_server.ca_file, timeout=20).close()
    sites = adapter._pool.sites()
    assert len(sites) == 1
    key: SiteKey = next(iter(sites))
    assert key[:3] == ("https", nginx_server.host.lower(), nginx_server.port)
    (connection,) = sites[key]
    assert isinstance(connection, hyper.HTTPConnection)
    # Each hyper connection class is a valid connection_class: ``mypy --strict`` on
    # this file checks the three against the protocol.
    classes: list[Callable[..., AdapterConnection]] = [
        hyper.HTTPConnection,
        hyper.HTTP20Connection,
        hyper.HTTP11Connection,
    ]
    assert all(callable(c) for c in classes)


def private_attribute_reads(path: Path) -> list[str]:
    """``x._name`` in ``path`` where ``x`` is neither ``self`` nor ``cls`` nor ``super()``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__") and node.attr.endswith("__"):
            continue  # dunders are public protocol
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            continue
        found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_contrib_modules_use_no_other_objects_private_attributes() -> None:
    found = [hit for path in sorted(CONTRIB.glob("*.py")) for hit in private_attribute_reads(path)]
    assert found == []

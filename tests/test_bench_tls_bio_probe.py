"""The TLS reader probe (bench/tls_bio_probe.py) gets real answers right with both readers.

Its CPU figures only mean something if both readers deliver every response:
statuses and lengths of sequential and multiplexed GETs and a byte count of a
64 MiB download, against nginx and nghttpd over real TLS. No timing is asserted.
"""

from __future__ import annotations

import pytest

from bench.tls_bio_probe import READERS, run_on
from tests.servers import BIG_BIN_SIZE, ServerInfo


@pytest.mark.parametrize("server", ["nginx_server", "nghttpd_server"])
@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize(("workload", "count", "units"), [("seq", 50, 50.0), ("mux", 300, 300.0)])
def test_both_readers_answer_every_request(
    server: str, reader: str, workload: str, count: int, units: float, request: pytest.FixtureRequest
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    assert info.ca_file is not None
    cpu, done = run_on(info.host, info.port, info.ca_file, BIG_BIN_SIZE, READERS[reader], workload, count)
    assert done == units
    assert cpu >= 0


@pytest.mark.parametrize("server", ["nginx_server", "nghttpd_server"])
@pytest.mark.parametrize("reader", sorted(READERS))
def test_both_readers_count_a_whole_download(
    server: str, reader: str, request: pytest.FixtureRequest
) -> None:
    info: ServerInfo = request.getfixturevalue(server)
    assert info.ca_file is not None
    # run_on checks the status and that exactly BIG_BIN_SIZE bytes arrived.
    _, mib = run_on(info.host, info.port, info.ca_file, BIG_BIN_SIZE, READERS[reader], "download", 0)
    assert mib == BIG_BIN_SIZE / 2**20

"""The fence around h2's and hpack's internals (:mod:`hyper.http20.h2_internals`).

1. With the h2/hpack versions hyper is tested against, the self-test passes
   and the fast paths are on (unless ``HYPER_FAST_PATHS=0`` forces them off).
2. When a relied-on internal is missing or misbehaves, the self-test says
   which, the fast paths go off with one log record, and connections still
   work end to end over real TLS, through h2's public API only.
3. The fence holds: no other module of hyper names those internals, and hpack's
   module is left as it was (the Huffman memo is hyper's own).
4. The public-API mode keeps the RFC 9113 behaviour the adaptations exist for
   (GOAWAY lets spared streams finish, WINDOW_UPDATE 0 on a stream is that
   stream's error) and treats other stream errors as connection errors,
   which RFC 9113 section 5.4 allows.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import h2.connection
import h2.stream
import hpack
import hpack.exceptions
import hpack.hpack
import hpack.huffman_table
import hpack.table
import pytest

import hyper
import hyper.tls
from hyper.exceptions import ProtocolError
from hyper.http20 import h2_adapters, h2_internals
from hyper.http20.core import H2Core
from hyper.testing import TestServer, expected_bytes
from tests import hostile_frames as hf

ROOT = Path(__file__).resolve().parent.parent
FORCED_OFF = os.environ.get(h2_internals.ENV_VAR, "").strip().lower() in ("0", "off", "false", "no")


@pytest.fixture
def fence_reevaluated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Re-run the fence's decision after the test, once its patches are undone."""
    yield
    monkeypatch.undo()
    h2_internals.evaluate()
    assert h2_internals.fast_paths_enabled() is not FORCED_OFF


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer() as srv:
        yield srv


def fetch(srv: TestServer) -> tuple[bytes, bytes, h2.connection.H2Connection]:
    """A GET and a POST over one connection; their bodies and the h2 connection used."""
    context = hyper.tls.init_context(cert_path=srv.ca_file)
    with hyper.HTTP20Connection("localhost", srv.port, ssl_context=context, timeout=30) as conn:
        got = conn.getresponse(conn.request("GET", "/bytes/300000")).read()
        echoed = conn.getresponse(conn.request("POST", "/echo", body=b"fence" * 40_000)).read()
        h2conn = _h2_of(conn)
    return got, echoed, h2conn


def _h2_of(conn: hyper.HTTP20Connection) -> h2.connection.H2Connection:
    """The h2 connection under ``conn`` (found by type, wherever the session keeps it)."""
    seen: set[int] = set()
    todo: list[object] = [conn]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, h2.connection.H2Connection):
            return obj
        if isinstance(obj, (hyper.HTTP20Connection, H2Core)) or type(obj).__module__.startswith("hyper."):
            todo.extend(v for v in vars(obj).values() if hasattr(v, "__dict__"))
    raise AssertionError("no h2 connection found")


def fence_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "hyper" and "fast paths are off" in r.getMessage()]


# -- 1. the tested versions ------------------------------------------------------------


def test_fast_paths_are_on_with_the_tested_versions() -> None:
    if FORCED_OFF:
        assert not h2_internals.fast_paths_enabled()
        assert h2_internals.ENV_VAR in (h2_internals.fast_paths_problem() or "")
    else:
        assert h2_internals.fast_paths_problem() is None, h2_internals.fast_paths_problem()
        assert h2_internals.fast_paths_enabled()
    # Whatever the switch says, the internals themselves pass the self-test.
    assert h2_internals.self_test() is None


def test_environment_variable_forces_them_off() -> None:
    code = (
        "import logging, sys; logging.basicConfig(stream=sys.stdout, level=logging.INFO); "
        "from hyper.http20 import h2_internals as f, h2_adapters as a; "
        "print('enabled', f.fast_paths_enabled()); "
        "c = a.new_client_connection(); print('adapted', isinstance(c, a.AdaptedH2Connection))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), h2_internals.ENV_VAR: "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "enabled False" in out.stdout and "adapted False" in out.stdout
    assert out.stdout.count("fast paths are off (forced off by HYPER_FAST_PATHS=0)") == 1


# -- 2. a relied-on internal missing or misbehaving ------------------------------------------


def _goaway_closes_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if h2 renamed its transition table: our override no longer applies.
    monkeypatch.setattr(
        h2_internals._GracefulGoawayStateMachine,
        "_transitions",
        h2.connection.H2ConnectionStateMachine._transitions,
    )


def _content_length_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if h2 moved its content-length check elsewhere: the fast path's call does nothing.
    monkeypatch.setattr(h2.stream.H2Stream, "_track_content_length", lambda self, length, end: None)


def _table_misses_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if hpack's table stopped going through add() for new entries.
    monkeypatch.setattr(h2_internals.CountingHeaderTable, "add", hpack.table.HeaderTable.add)


def _dispatch_table_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if h2 renamed the private method hyper calls for each parsed frame.
    monkeypatch.setattr(h2_internals, "receive_frame", lambda conn, frame: conn._handle_frame(frame))


def _import_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        h2_internals, "IMPORT_PROBLEM", "cannot import name 'StreamClosedBy' from 'h2.stream'"
    )


def _resize_bypasses_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if hpack's decoder applied a table size update without the table's
    # size setter: the table changes and its generation does not, so a block
    # remembered for that generation would be served against other entries.
    def update_encoding_context(self: hpack.Decoder, data: bytes) -> int:
        size, consumed = hpack.hpack.decode_integer(data, 5)
        if size > self.max_allowed_table_size:
            raise hpack.exceptions.InvalidTableSizeError("Encoder exceeded max allowable table size")
        table = self.header_table
        table._maxsize = size
        table._shrink()
        return consumed

    monkeypatch.setattr(hpack.Decoder, "_update_encoding_context", update_encoding_context)


def _dynamic_reads_uncounted(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if hpack's decoder read dynamic entries without get_by_index: a block
    # that reads the table would pass for one that does not.
    def decode_indexed(self: hpack.Decoder, data: bytes) -> tuple[hpack.HeaderTuple, int]:
        index, consumed = hpack.hpack.decode_integer(data, 7)
        table = self.header_table
        if index > table.STATIC_TABLE_LENGTH and index - table.STATIC_TABLE_LENGTH <= len(
            table.dynamic_entries
        ):
            return hpack.HeaderTuple(*table.dynamic_entries[index - table.STATIC_TABLE_LENGTH - 1]), consumed
        return hpack.HeaderTuple(*table.get_by_index(index)), consumed

    monkeypatch.setattr(hpack.Decoder, "_decode_indexed", decode_indexed)


BREAKAGES: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], str]] = {
    "GOAWAY transitions": (_goaway_closes_again, "GOAWAY and stream reset"),
    "content-length check": (_content_length_unchecked, "a short body was not refused"),
    "HPACK table counting": (_table_misses_entries, "HPACK tables"),
    "HPACK resize outside the table": (_resize_bypasses_the_table, "HPACK generations"),
    "HPACK dynamic reads uncounted": (_dynamic_reads_uncounted, "dynamic lookups not counted"),
    "frame dispatch": (_dispatch_table_gone, "AttributeError"),
    "missing name": (_import_failed, "cannot import name 'StreamClosedBy'"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_internal_turns_the_fast_paths_off_and_connections_still_work(
    breakage: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    server: TestServer,
    fence_reevaluated: None,
) -> None:
    breaks, symptom = BREAKAGES[breakage]
    monkeypatch.delenv(h2_internals.ENV_VAR, raising=False)  # the self-test decides, not the switch
    breaks(monkeypatch)
    caplog.set_level(logging.INFO, logger="hyper")
    problem = h2_internals.evaluate()
    assert problem is not None and symptom in problem, problem
    assert not h2_internals.fast_paths_enabled() and h2_internals.fast_paths_problem() == problem

    got, echoed, h2conn = fetch(server)
    assert got == expected_bytes(300_000) and echoed == b"fence" * 40_000
    # h2's public API only: none of the adaptations was installed.
    assert not isinstance(h2conn, h2_adapters.AdaptedH2Connection)
    assert type(h2conn.decoder) is hpack.Decoder and type(h2conn.encoder) is hpack.Encoder
    assert type(h2conn.state_machine) is h2.connection.H2ConnectionStateMachine
    # One record says why, however many connections follow.
    fetch(server)
    records = fence_logs(caplog)
    assert len(records) == 1 and records[0].levelno == logging.WARNING and problem in records[0].getMessage()


def test_a_renamed_hpack_function_turns_the_huffman_memo_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once hpack's literal decoder stops calling decode_huffman by that name, the memo cannot work."""
    with monkeypatch.context() as patch:
        patch.setattr(hpack.Decoder, "_decode_literal", lambda self, data, should_index: None)
        assert h2_internals._huffman_memo_literal_decoder() is None
    monkeypatch.setattr(h2_internals, "_LITERAL_DECODER", None)
    assert "decode_huffman" in (h2_internals.self_test() or "")


def test_a_missing_module_name_does_not_break_importing_hyper() -> None:
    """Names gone from h2/hpack (as in a future release): hyper imports, falls back, and works."""
    code = (
        "import h2.connection, h2.frame_buffer\n"
        "del h2.frame_buffer.FrameBuffer  # h2.connection keeps its own reference\n"
        "from hyper.http20 import h2_internals as f\n"
        "from hyper.http20.core import H2Core\n"
        "print(f.fast_paths_problem())\n"
        "core = H2Core(); core.initiate(); print(len(core.data_to_send()) > 24)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(h2_internals.ENV_VAR, None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "cannot import an internal" in out.stdout and "True" in out.stdout
    assert "hyper's HTTP/2 fast paths are off" in out.stderr  # a WARNING reaches stderr by default


# -- 3. the fence holds -------------------------------------------------------------------

#: Names of h2's, hpack's and hyperframe's internals; only the fence may use them.
INTERNAL_NAMES = [
    r"h2\.stream\b",
    r"h2\.frame_buffer\b",
    r"h2\.windows\b",
    r"hpack\.table\b",
    r"hpack\.hpack\b",
    r"hpack\.huffman",
    r"\b_frame_dispatch_table\b",
    r"\b_receive_frame\b",
    r"\b_begin_new_stream\b",
    r"\b_prepare_for_sending\b",
    r"\b_decode_headers\b",
    r"\b_inbound_flow_control_window_manager\b",
    r"\b_inbound_window_manager\b",
    r"\b_track_content_length\b",
    r"\b_headers_buffer\b",
    r"\b_transitions\b",
    r"\b_maxsize\b",
    r"\b_authority\b",
    r"\b_decode_literal\b",
    r"\bdecode_huffman\b",
    r"\bstate_machine\b",
    r"\.request_method\b",  # h2.stream.H2Stream.request_method
    r"\btable_size_changes\b",
    r"\bclear_outbound_data_buffer\b",
    r"\bStreamClosedBy\b",
    r"\bConnectionInputs\b",
    r"\bAllowedStreamIDs\b",
    r"_h2\.streams\b",
    r"_h2\.(en|de)coder\b",
    r"\bdynamic_entries\b",
    r"\b_current_size\b",
    r"\b_shrink\b",
    r"\.resized\b",
]
FENCE = {
    "hyper/http20/h2_internals.py",
    "hyper/http20/h2_internals_check.py",
    "hyper/http20/h2_internals_check_hpack.py",
    "hyper/http20/h2_internals_check_steps.py",
    "hyper/http20/h2_internals_count.py",
    "hyper/http20/h2_internals_data.py",
    "hyper/http20/h2_internals_hpack.py",
    "hyper/http20/h2_internals_output.py",
    "hyper/http20/h2_internals_receive.py",
    "hyper/http20/h2_internals_runs.py",
    "hyper/http20/h2_internals_steps.py",
}


def test_no_other_module_names_the_internals() -> None:
    offenders = []
    for path in sorted((ROOT / "hyper").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name in FENCE:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern in INTERNAL_NAMES:
                if re.search(pattern, code):
                    offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []


def test_hpack_module_is_left_untouched(server: TestServer) -> None:
    original = hpack.huffman_table.decode_huffman
    fetch(server)
    assert hpack.hpack.decode_huffman is original
    assert not hasattr(original, "_hyper_cached")
    # A plain hpack decoder elsewhere in the process decodes as hpack does, memo or not.
    block = hpack.Encoder().encode([(b"server", b"a-huffman-coded-value")])
    assert hpack.Decoder().decode(block) == [("server", "a-huffman-coded-value")]


@pytest.mark.skipif(FORCED_OFF, reason="the Huffman memo is a fast path")
def test_hyper_decodes_huffman_through_its_own_memo(server: TestServer) -> None:
    h2_internals._huffman_memo.clear()
    fetch(server)
    assert h2_internals._huffman_memo  # the server's header values went through it


# -- 4. the public-API mode ---------------------------------------------------------------


@pytest.fixture
def public_core(monkeypatch: pytest.MonkeyPatch, fence_reevaluated: None) -> H2Core:
    """A core built while the fast paths are off, past the server's preface."""
    monkeypatch.setenv(h2_internals.ENV_VAR, "0")
    h2_internals.evaluate()
    core = H2Core()
    core.initiate()
    assert not isinstance(core._h2, h2_adapters.AdaptedH2Connection)
    core.receive(hf.settings())
    core.data_to_send()
    return core


GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.org"), (b":path", b"/")]


def test_public_mode_lets_streams_spared_by_goaway_finish(public_core: H2Core) -> None:
    first = public_core.open_stream(GET, end_stream=True)
    second = public_core.open_stream(GET, end_stream=True)
    public_core.data_to_send()
    public_core.receive(
        hf.goaway(first, debug=b"bye")
        + hf.response_headers(first, (b"content-length", b"5"))
        + hf.data(first, b"hello", end_stream=True)
    )
    assert public_core.goaway is not None and public_core.goaway[1:] == (first, b"bye")
    assert public_core.fatal is None
    assert public_core.take_data(first) == b"hello" and public_core.streams[first].ended
    assert public_core.accepting_streams() is not None  # no new streams after GOAWAY
    assert second > first


def test_public_mode_resets_only_the_stream_of_a_zero_window_update(public_core: H2Core) -> None:
    first = public_core.open_stream(GET, end_stream=True)
    second = public_core.open_stream(GET, end_stream=True)
    public_core.data_to_send()
    public_core.receive(hf.window_update(first, 0) + hf.response_headers(second, end_stream=True))
    frames = hf.parse_frames(public_core.data_to_send())
    assert [(type(f).__name__, f.stream_id, f.error_code) for f in frames] == [("RstStreamFrame", first, 0x1)]
    assert isinstance(public_core.streams[first].error, ProtocolError)
    assert public_core.fatal is None and public_core.streams[second].ended


def test_public_mode_makes_other_stream_errors_connection_errors(public_core: H2Core) -> None:
    stream_id = public_core.open_stream(GET, end_stream=True)
    public_core.data_to_send()
    # Content-length 10 with 3 bytes: h2 refuses it, and h2's public API ends the connection.
    public_core.receive(
        hf.response_headers(stream_id, (b"content-length", b"10"))
        + hf.data(stream_id, b"abc", end_stream=True)
    )
    assert isinstance(public_core.fatal, ProtocolError)
    codes = {
        f.error_code for f in hf.parse_frames(public_core.data_to_send()) if type(f).__name__ == "GoAwayFrame"
    }
    assert codes == {0x1}

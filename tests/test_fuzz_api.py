"""API-level fuzzer (issue 12): hyper's public calls against a real server.

hypothesis generates methods, URLs, header fields in every documented shape
(and some undocumented ones), bodies of every accepted and refused type,
constructor timeouts, and programs of ``putrequest``/``putheader``/
``endheaders``/``send``/``getresponse``/``read``/``close`` calls run on 2-4
threads sharing one connection. The calls go to hypercorn over TLS serving
:mod:`tests.fuzz_recorder_app`, which records every request that arrives,
for :class:`~hyper.HTTP20Connection`, :class:`~hyper.HTTP11Connection` and
:class:`~hyper.HTTPConnection`. The properties:

* every call returns or raises a documented exception (a ``HyperError``, or
  ``TypeError``/``ValueError`` for arguments), and the one docs/api.rst
  names where the input is clearly valid or clearly wrong (see
  :mod:`tests.fuzz_api_inputs`);
* nothing reaches the server for a refused call, and an accepted request
  arrives exactly once, with its body whole (compared by SHA-256);
* each response carries the tag of the request it answers;
* afterwards the connection still serves a normal request;
* no call waits beyond its timeouts: every example runs under a watchdog
  that fails with every thread's stack when something is still waiting.

The runs are deterministic (``derandomize=True``) and sized to finish in
well under a minute. For a longer hunt, set ``HYPER_FUZZ_EXAMPLES``: each
test then runs that many examples, e.g.::

    HYPER_FUZZ_EXAMPLES=2000 PYTHONPATH=$PWD python3 -m pytest -q tests/test_fuzz_api.py

``HYPER_FUZZ_SEED`` (an integer) switches from the fixed derandomized
examples to random ones from that seed, to look somewhere new.
Failures found this way are kept as minimal tests in
``tests/test_fuzz_api_found.py`` (strict xfails until fixed), and the fuzzer
steers around them (``KNOWN_BUGS`` in :mod:`tests.fuzz_api_programs`) so that
it keeps finding new ones; drop an entry when its test starts passing.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz_api_harness import (
    KINDS,
    Outcome,
    ProgramRunner,
    RecorderServer,
    Step,
    call,
    new_tag,
    recorder_server,
    recorder_server_cleartext,
    response_tag,
    run_bounded,
    sha256,
    tagged,
)
from tests.fuzz_api_inputs import (
    Headers,
    Piece,
    Verdict,
    allowed_outcomes,
    bodies,
    headers,
    methods,
    timeouts,
    urls,
)
from tests.fuzz_api_programs import KNOWN_BUGS, Program, is_upgrade, programs
from tests.fuzz_recorder_app import TAG_HEADER

# On a failure hypothesis' pytest plugin imports libcst (to suggest a patch),
# whose import warns; with warnings as errors that hides the failure behind an
# INTERNALERROR. Import it once here, with that warning ignored.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

_EXAMPLES = int(os.environ.get("HYPER_FUZZ_EXAMPLES", "0"))
_SEED = os.environ.get("HYPER_FUZZ_SEED")
# A long hunt outlives the suite's 120 s per test (pyproject.toml): allow
# each example its worst case (a few read timeouts) instead.
if _EXAMPLES:
    pytestmark = pytest.mark.timeout(max(120, _EXAMPLES * 15))

#: Read timeout of fuzzed connections: far above a loopback round trip on a
#: loaded machine, far below the watchdog's limit.
READ_TIMEOUT = 10.0
#: How long one example may run before the watchdog calls it stuck.
WATCHDOG = 90.0
#: How long a thread program waits for a step before handing out the next
#: one (the step is then waiting for another thread). Shapes the interleaving only.
YIELD_AFTER = 0.5


def fuzz_settings(ci_examples: int) -> Any:
    """hypothesis settings: *ci_examples* by default, ``HYPER_FUZZ_EXAMPLES`` if set."""

    def apply(test: Any) -> Any:
        configured = settings(
            max_examples=_EXAMPLES or ci_examples,
            derandomize=_SEED is None,
            deadline=None,
            database=None,
            # The explain phase imports libcst, whose import warns (an error here).
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )(test)
        return seed(int(_SEED))(configured) if _SEED is not None else configured

    return apply


recorder = pytest.fixture(scope="module", name="recorder")(recorder_server)
recorder_h2c = pytest.fixture(scope="module", name="recorder_h2c")(recorder_server_cleartext)


# -- checking what arrived -------------------------------------------------------


def _kind_of(outcome: Outcome) -> str:
    if outcome.error is None:
        return "ok"
    if isinstance(outcome.error, TypeError):
        return "type"
    if isinstance(outcome.error, ValueError):
        return "value"
    return "hyper"


def _check_sentinel(conn: Any, *, read: bool = True) -> str:
    """A plain request on *conn* must still work and get its own response."""
    tag = new_tag("sentinel")
    stream_id = conn.request("GET", "/sentinel", headers={TAG_HEADER: tag})
    response = conn.getresponse(stream_id)
    assert response.status == 200
    assert response_tag(response) == tag, "the sentinel got another request's response"
    if read:
        assert json.loads(response.read())["tag"] == tag
    response.close()
    return tag


# -- one request() at a time -------------------------------------------------------


@st.composite
def request_calls(draw: st.DrawFn, authority: str) -> tuple[Piece, Piece, Piece, Headers]:
    return (
        draw(methods()),
        draw(urls(authority)),
        draw(bodies()),
        draw(headers()),
    )


def _do_request(conn: Any, method: Piece, url: Piece, body: Piece, hdrs: Headers, tag: str) -> Outcome:
    return call(
        f"request({method!r}, {url!r}, body={body!r}, headers={hdrs!r})",
        lambda: conn.request(method.make(), url.make(), body=body.make(), headers=hdrs.make(tag)),
    )


@pytest.mark.parametrize("kind", KINDS)
@fuzz_settings(25)
@given(data=st.data())
def test_request_arguments(recorder: RecorderServer, kind: str, data: st.DataObject) -> None:
    """A few request() calls with generated arguments, then a plain one."""
    calls = data.draw(st.lists(request_calls(recorder.authority), min_size=1, max_size=4), label="calls")
    if kind == "HTTP11Connection" and "http11-upgrade-field" in KNOWN_BUGS:
        upgrade = any(
            is_upgrade(f.name) and f.verdict is not Verdict.TYPE for *_, h in calls for f in h.items
        )
        assume(not upgrade)  # test_http11_caller_upgrade_field
    mark = recorder.mark()
    conn = recorder.connect(kind, timeout=READ_TIMEOUT)
    expectations: dict[str, tuple[Outcome, list[Verdict], Piece, Piece, Piece, Headers]] = {}
    refused_tags: list[tuple[str, Outcome]] = []

    def example() -> None:
        for method, url, body, hdrs in calls:
            tag = new_tag()
            verdicts = [method.verdict, url.verdict, body.verdict, *hdrs.verdicts]
            outcome = _do_request(conn, method, url, body, hdrs, tag)
            allowed = allowed_outcomes(verdicts)
            assert _kind_of(outcome) in allowed, f"{outcome}: the docs allow only {allowed}"
            if outcome.refused and body.verdict is not Verdict.LATE_TYPE:
                refused_tags.append((tag, outcome))
            if outcome.error is None:
                response = conn.getresponse(outcome.result)
                assert response_tag(response) == tag, (
                    f"{outcome}: got the response to {response_tag(response)}"
                )
                answer = response.read()
                if isinstance(method.make(), (str, bytes)) and _method_text(method) != "HEAD":
                    assert json.loads(answer)["tag"] == tag
                response.close()
                expectations[tag] = (outcome, verdicts, method, url, body, hdrs)
        _check_sentinel(conn)

    try:
        run_bounded(example, WATCHDOG, conn.close)
    finally:
        conn.close()
    groups = tagged(recorder.records_since(mark))
    for tag, outcome in refused_tags:
        assert tag not in groups, f"{outcome}: refused, yet the server received {groups[tag]}"
    for tag, (outcome, verdicts, method, url, body, hdrs) in expectations.items():
        assert len(groups.get(tag, [])) == 1, f"{outcome}: arrived {len(groups.get(tag, []))} times"
        record = groups[tag][0]
        assert record["complete"], f"{outcome}: arrived incomplete: {record}"
        received = {(name, value) for name, value in record["headers"]}
        missing = [pair for pair in _expected_fields(hdrs) if pair not in received]
        assert not missing, f"{outcome}: the fields {missing} did not arrive; got {record['headers']}"
        assert record["method"].upper() == _method_text(method).upper() or Verdict.EITHER in verdicts, record
        if url.payload is not None and url.verdict is Verdict.OK:
            assert record["target"] == url.payload.decode(), f"{outcome}: the server got {record['target']!r}"
        if body.payload is not None:
            assert (record["body_len"], record["body_sha256"]) == (len(body.payload), sha256(body.payload)), (
                f"{outcome}: the server got {record['body_len']} body bytes, not {len(body.payload)}"
            )
    unknown = [tag for tag in groups if tag is None or tag.startswith("t") and tag not in expectations]
    unknown = [tag for tag in unknown if tag not in dict(refused_tags)]
    stray = [tag for tag in unknown if tag is None]
    assert not stray, f"requests without a tag arrived: {groups[None]}"


def _wire_text(value: Any) -> str:
    """A header value as the server sees it (Latin-1 text of the bytes sent)."""
    if isinstance(value, int):
        value = str(value)
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return raw.strip(b" \t").decode("latin-1")


def _expected_fields(hdrs: Headers) -> list[tuple[str, str]]:
    """The (name, value) pairs of accepted fields that must arrive as given."""
    if hdrs.verdict is not Verdict.OK:
        return []
    pairs = [(f.name, f.value) for f in hdrs.items]
    if hdrs.shape == "dict":
        pairs = list(dict(pairs).items())  # a repeated key keeps its last value
    return [(_wire_text(name).lower(), _wire_text(value)) for name, value in pairs]


def _method_text(method: Piece) -> str:
    value = method.make()
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


# -- constructor timeouts ----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@fuzz_settings(15)
@given(timeout=timeouts())
def test_constructor_timeouts(recorder: RecorderServer, kind: str, timeout: Piece) -> None:
    """A timeout is checked by the constructor; an accepted one serves requests."""
    outcome = call(f"{kind}(timeout={timeout!r})", lambda: recorder.connect(kind, timeout=timeout.make()))
    allowed = allowed_outcomes([timeout.verdict])
    assert _kind_of(outcome) in allowed, f"{outcome}: the docs allow only {allowed}"
    if outcome.error is None:
        conn = outcome.result
        try:
            run_bounded(lambda: _check_sentinel(conn), WATCHDOG, conn.close)
        finally:
            conn.close()


# -- threads sharing one connection -------------------------------------------------


def _check_arrivals(program: Program, records: list[dict[str, Any]]) -> list[str]:
    """What the server received, against what each thread's calls say was sent."""
    groups = tagged(records)
    problems = []
    if None in groups:
        problems.append(f"requests without a tag arrived: {groups[None]}")
    for model in program.models:
        for request in model.requests:
            arrived = groups.get(request.tag, [])
            if request.state == "refused" and arrived:
                problems.append(f"request {request.tag} was refused, yet arrived: {arrived}")
            if len(arrived) > 1:
                problems.append(f"request {request.tag} arrived {len(arrived)} times: {arrived}")
            if request.response_body is None or len(arrived) != 1:
                continue
            record = arrived[0]
            if not record["complete"]:
                problems.append(f"request {request.tag} was answered but arrived incomplete: {record}")
            if request.body_known:
                sent = b"".join(request.chunks)
                if (record["body_len"], record["body_sha256"]) != (len(sent), sha256(sent)):
                    problems.append(
                        f"request {request.tag}: the server got {record['body_len']} body bytes, "
                        f"the calls that succeeded sent {len(sent)} ({sent[:80]!r})"
                    )
    return problems


@pytest.mark.parametrize("kind", KINDS)
@fuzz_settings(12)
@given(data=st.data())
def test_thread_programs(recorder: RecorderServer, kind: str, data: st.DataObject) -> None:
    """2-4 threads interleave incremental requests, misuse and close() on one TLS connection."""
    http11 = kind == "HTTP11Connection"
    # Over HTTP/2 no call waits for another thread, so the connection may
    # have no timeout at all: the watchdog is then the only bound.
    unbounded = not http11 and data.draw(st.booleans(), label="timeout=None")
    steps = data.draw(programs(recorder.authority, unbounded), label="program")
    _run_program(recorder, kind, steps, timeout=None if unbounded else READ_TIMEOUT, timeouts_expected=http11)


@fuzz_settings(12)
@given(data=st.data())
def test_thread_programs_negotiating_in_cleartext(recorder_h2c: RecorderServer, data: st.DataObject) -> None:
    """The same on a cleartext HTTPConnection: the first call of any thread picks h2c or HTTP/1.1."""
    steps = data.draw(programs(recorder_h2c.authority, secure=False), label="program")
    _run_program(recorder_h2c, "HTTPConnection", steps, timeout=READ_TIMEOUT, timeouts_expected=True)


def _run_program(
    recorder: RecorderServer, kind: str, steps: list[Step], *, timeout: float | None, timeouts_expected: bool
) -> None:
    threads = 1 + max(step.thread for step in steps)
    mark = recorder.mark()
    conn = recorder.connect(kind, timeout=timeout)
    program = Program(conn, threads, timeouts_expected=timeouts_expected)
    runner = ProgramRunner(threads, program.execute, YIELD_AFTER)
    runner.start()
    try:
        runner.feed(steps, WATCHDOG, conn.close)
        # The same threads finish their open bodies: hyper keeps a request's
        # state per thread.
        runner.feed(program.finishing_steps(), WATCHDOG, conn.close)
        runner.stop(WATCHDOG, conn.close)
        run_bounded(lambda: _check_sentinel(conn), WATCHDOG, conn.close)
    finally:
        program.close_responses()
        conn.close()
    problems = program.problems + _check_arrivals(program, recorder.records_since(mark))
    assert not problems, "\n".join(problems)


# -- the watchdog itself -------------------------------------------------------------


def test_watchdog_fails_with_the_stack_of_a_stuck_thread() -> None:
    """A step that never returns is reported with every thread's stack, then released."""
    release = threading.Event()

    def execute(step: Step) -> Outcome:
        if step.op == "hang":
            release.wait()  # until the watchdog's on_stuck sets it
        return Outcome(step.op)

    runner = ProgramRunner(2, execute, yield_after=0.01)
    runner.start()
    with pytest.raises(pytest.fail.Exception) as failure:
        runner.feed([Step(0, "fine"), Step(1, "hang")], 0.5, release.set)
    assert "T1.hang" in str(failure.value)
    assert "release.wait()" in str(failure.value), "the stuck thread's stack is missing"
    runner.stop(10.0, release.set)

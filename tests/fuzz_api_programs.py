"""Thread programs for the API fuzzer: what each thread does, and what each call must do.

A program is one list of operations per thread (2-4 threads) and a global
order in which they are handed out (see
:class:`tests.fuzz_api_harness.ProgramRunner`). Every thread builds its own
requests, as the API requires: ``putheader``/``endheaders``/``send`` for a
``putrequest`` come from the thread that called ``putrequest``. Some
operations are deliberate misuse (a ``send`` with no request of one's own, a
second ``putrequest``, ``getresponse()`` without an id, ``close()`` from any
thread); those must fail with a documented exception and harm no other
thread's request.

:class:`ThreadModel` is each thread's view of its own request, used to say
which outcomes the docs allow for the next call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from hyper import HyperTimeout
from tests.fuzz_api_harness import DOCUMENTED, Outcome, Step, call, new_tag, response_tag
from tests.fuzz_api_inputs import Field, Piece, Verdict, allowed_outcomes, bodies, fields, methods, urls
from tests.fuzz_recorder_app import TAG_HEADER

#: Failures already found and kept in tests/test_fuzz_api_found.py, which
#: the fuzzer steers around so that it can find others. Remove an entry when
#: its xfail test starts passing.
KNOWN_BUGS: frozenset[str] = frozenset()

#: Operations that use the thread's own request state.
OPS = (
    "request",
    "putrequest",
    "putheader",
    "endheaders",
    "send",
    "getresponse",
    "getresponse_any",
    "read",
    "response_close",
    "close",
)


@st.composite
def thread_ops(
    draw: st.DrawFn, authority: str, allow_close: bool, unbounded: bool, secure: bool
) -> list[tuple[str, tuple[Any, ...]]]:
    """One thread's operations: mostly whole requests, some misuse mixed in."""
    ops: list[tuple[str, tuple[Any, ...]]] = []
    for _ in range(draw(st.integers(1, 3))):
        shape = draw(st.sampled_from(["request", "incremental", "incremental", "misuse"]))
        if shape == "request":
            ops.append(("request", (draw(methods()), draw(urls(authority, secure)), draw(bodies()))))
        elif shape == "incremental":
            ops.append(("putrequest", (draw(methods()), draw(urls(authority, secure)))))
            for header in draw(st.lists(fields(), max_size=2)):
                ops.append(("putheader", (header,)))
            body = draw(st.one_of(st.none(), bodies()))
            final = draw(st.booleans())
            if body is not None and "endheaders-body-then-send" in KNOWN_BUGS:
                ops.append(("endheaders", (body, True)))
            else:
                ops.append(("endheaders", (body, final)))
                for _ in range(draw(st.integers(0, 2))):
                    ops.append(("send", (draw(bodies()), False)))
                if draw(st.integers(0, 9)):  # now and then a request is left unfinished
                    ops.append(("send", (draw(bodies()), True)))
        else:
            choices = ["send", "putheader", "endheaders", "response_close"]
            if not unbounded:  # it may wait for another thread's abandoned request
                choices.append("getresponse_any")
            if allow_close:
                choices.append("close")
            misuse = draw(st.sampled_from(choices))
            if misuse == "send":
                ops.append(("send", (draw(bodies()), draw(st.booleans()))))
            elif misuse == "putheader":
                ops.append(("putheader", (draw(fields()),)))
            elif misuse == "endheaders":
                ops.append(("endheaders", (None, True)))
            else:
                ops.append((misuse, ()))
        if draw(st.booleans()):
            ops.append(("getresponse", ()))
            if draw(st.booleans()):
                ops.append(("read", ()))
    return ops


@st.composite
def programs(draw: st.DrawFn, authority: str, unbounded: bool = False, secure: bool = True) -> list[Step]:
    """2-4 threads' operations in one global order.

    With *unbounded* (a connection without timeouts) no operation may wait
    for another thread's request that might never finish.
    """
    threads = draw(st.integers(2, 4))
    allow_close = draw(st.integers(0, 4)) == 0
    per_thread = [draw(thread_ops(authority, allow_close, unbounded, secure)) for _ in range(threads)]
    remaining = [list(ops) for ops in per_thread]
    steps: list[Step] = []
    while any(remaining):
        index = draw(st.sampled_from([i for i, ops in enumerate(remaining) if ops]))
        op, args = remaining[index].pop(0)
        steps.append(Step(index, op, args))
    return steps


@dataclass
class Request:
    """One request a thread made: its tag, what was accepted for its body, how it ended."""

    tag: str
    verdicts: list[Verdict]
    stream_id: int | None = None
    #: ``pending`` (putrequest done), ``open`` (headers sent), ``done`` (final sent),
    #: ``refused`` (nothing may have been sent), ``unknown`` (the docs leave it open).
    state: str = "pending"
    chunks: list[bytes] = field(default_factory=list)
    #: Some body's bytes are not known (a refused generator part-way).
    body_known: bool = True
    response_tag: str | None = None
    response_body: dict[str, Any] | None = None


@dataclass
class ThreadModel:
    """A thread's own requests, touched only by that thread."""

    requests: list[Request] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)

    @property
    def current(self) -> Request | None:
        return self.requests[-1] if self.requests else None


@dataclass
class Program:
    """Runs a program's steps on a shared connection and judges each outcome."""

    conn: Any
    threads: int
    #: HTTP/1.1 serialises requests: a thread may wait for another's request
    #: to finish and time out (documented); over HTTP/2 nothing waits so.
    timeouts_expected: bool
    models: list[ThreadModel] = field(init=False)
    #: Set when some thread called close(): from then on, any documented error is allowed.
    closed: bool = False
    #: Tags of every response any thread took, to find one handed out twice.
    taken: list[str | None] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.models = [ThreadModel() for _ in range(self.threads)]

    @property
    def http11(self) -> bool:
        """The connection speaks, or may yet choose, HTTP/1.1."""
        return bool(self.conn.version != "HTTP/2")

    @property
    def http2(self) -> bool:
        """The connection speaks, or may yet choose, HTTP/2."""
        return bool(self.conn.version != "HTTP/1.1")

    # -- judging ------------------------------------------------------------------

    def _judge(self, step: Step, outcome: Outcome, allowed: set[str]) -> None:
        kind = _kind(outcome)
        if kind == "timeout" and (self.timeouts_expected or "timeout" in allowed):
            return  # a bounded wait for another thread; the watchdog bounds it
        if self.closed and kind in ("hyper", "timeout"):
            return  # some thread closed the connection under this call
        if kind not in allowed:
            self.problems.append(f"{step}: {outcome} (the docs allow {sorted(allowed)})")

    # -- executing ----------------------------------------------------------------

    def execute(self, step: Step) -> Outcome:
        model = self.models[step.thread]
        handler = getattr(self, f"_op_{step.op}")
        outcome: Outcome = handler(step, model, *step.args)
        return outcome

    def _own_body_open(self, model: ThreadModel) -> bool:
        """HTTP/1.1 refuses a new request while this thread's own body is still open."""
        return self.http11 and any(request.state == "open" for request in model.requests)

    def _in_progress_allowed(self, allowed: set[str]) -> set[str]:
        """What a new request may do while this thread's putrequest() is unfinished.

        HTTP/2 abandons the unsent putrequest() and goes on; HTTP/1.1 refuses
        with a HyperError (a connection still negotiating may become either).
        """
        return (allowed if self.http2 else allowed - {"ok"}) | ({"hyper"} if self.http11 else set())

    def _op_request(self, step: Step, model: ThreadModel, method: Piece, url: Piece, body: Piece) -> Outcome:
        own_open = self._own_body_open(model)
        previous = model.current
        # request() while this thread's own putrequest() is unfinished (see _in_progress_allowed).
        in_progress = previous is not None and previous.state == "pending"
        request = Request(new_tag(), [method.verdict, url.verdict, body.verdict])
        outcome = call(
            str(step),
            lambda: self.conn.request(
                method.make(), url.make(), body=body.make(), headers={TAG_HEADER: request.tag}
            ),
        )
        allowed = allowed_outcomes(request.verdicts)
        if in_progress:
            allowed = self._in_progress_allowed(allowed)
        if own_open:
            allowed = (allowed if self.http2 else set()) | {"hyper"}
        self._judge(step, outcome, allowed)
        if outcome.error is not None and in_progress:
            return outcome  # the unfinished putrequest() stays this thread's request
        if outcome.error is None and in_progress and previous is not None:
            previous.state = "refused"  # abandoned unsent (HTTP/2)
        model.requests.append(request)
        if outcome.error is None:
            request.stream_id = outcome.result
            request.state = "done"
            request.chunks.append(body.payload or b"")
            request.body_known = body.payload is not None
        else:
            request.state = (
                "refused" if outcome.refused and body.verdict is not Verdict.LATE_TYPE else "unknown"
            )
        return outcome

    def _op_putrequest(self, step: Step, model: ThreadModel, method: Piece, url: Piece) -> Outcome:
        previous = model.current
        in_progress = previous is not None and previous.state == "pending"
        request = Request(new_tag(), [method.verdict, url.verdict])
        outcome = call(str(step), lambda: self.conn.putrequest(method.make(), url.make()))
        allowed = allowed_outcomes(request.verdicts)
        if in_progress:
            allowed = self._in_progress_allowed(allowed)
        self._judge(step, outcome, allowed)
        if outcome.error is None and in_progress and previous is not None:
            previous.state = "refused"  # abandoned unsent (HTTP/2)
        if outcome.error is None:
            request.stream_id = outcome.result
            model.requests.append(request)
            # The tag goes first, so a request that arrives can be told apart.
            tag_outcome = call(f"{step} tag", lambda: self.conn.putheader(TAG_HEADER, request.tag))
            if tag_outcome.error is not None:
                self._judge(step, tag_outcome, {"ok"})
                request.state = "unknown"
        elif not in_progress:
            request.state = "refused"
            model.requests.append(request)
        return outcome

    def _op_putheader(self, step: Step, model: ThreadModel, header: Field) -> Outcome:
        request = model.current
        if self.http11 and is_upgrade(header.name) and "http11-upgrade-field" in KNOWN_BUGS:
            return Outcome(f"{step} skipped: a known bug (http11-upgrade-field)")
        outcome = call(str(step), lambda: self.conn.putheader(header.name, header.value))
        if request is None or request.state != "pending":
            self._judge(step, outcome, {"hyper"})  # InvalidStreamID: no request of its own
            return outcome
        allowed = allowed_outcomes(list(header.parts))
        if Verdict.EITHER in request.verdicts:
            allowed |= {"hyper"}  # an earlier refused field may have abandoned it
        self._judge(step, outcome, allowed)
        if outcome.error is not None or Verdict.EITHER in header.parts:
            # A refused field: the request may be abandoned or left as it was
            # (the classes' docstrings differ). An accepted field the docs say
            # nothing about (transfer-encoding...) may make endheaders() fail.
            request.verdicts.append(Verdict.EITHER)
        return outcome

    def _op_endheaders(self, step: Step, model: ThreadModel, body: Piece | None, final: bool) -> Outcome:
        own_open = self._own_body_open(model)
        request = model.current
        make = (lambda: None) if body is None else body.make
        outcome = call(str(step), lambda: self.conn.endheaders(make(), final))
        if own_open and outcome.error is not None and request is not None and request.state == "pending":
            # HTTP/1.1 refuses while this thread's own body is open; the
            # pending request left this thread's hands unsent.
            self._judge(step, outcome, {"hyper"})
            request.state = "refused"
            return outcome
        if request is None or request.state != "pending":
            self._judge(step, outcome, {"hyper"})  # InvalidStreamID: no request of its own
            return outcome
        verdicts = [Verdict.OK if body is None else body.verdict]
        allowed = allowed_outcomes(verdicts)
        if Verdict.EITHER in request.verdicts:
            # e.g. a put transfer-encoding that only endheaders() refuses over
            # HTTP/1.1 (test_http11_putheader_checks_transfer_encoding_at_once).
            allowed |= {"hyper", "value", "type"}
        self._judge(step, outcome, allowed)
        if outcome.error is None:
            request.state = "done" if final else "open"
            if body is not None:
                request.chunks.append(body.payload or b"")
                request.body_known = body.payload is not None
        else:
            late = body is not None and body.verdict is Verdict.LATE_TYPE
            request.state = "refused" if outcome.refused and not late else "unknown"
        return outcome

    def _op_send(self, step: Step, model: ThreadModel, body: Piece, final: bool) -> Outcome:
        request = model.current
        stray = request is None or request.state != "open"
        if stray and self.http11 and "http11-stray-send" in KNOWN_BUGS:
            return Outcome(f"{step} skipped: a known bug (http11-stray-send)")
        # Without an open request of its own, HTTP/2 send() goes to the thread's
        # latest stream; when that one is finished, the bytes vanish.
        finished = stray and any(r.state == "done" for r in model.requests)
        if finished and self.http2 and "http2-send-after-final" in KNOWN_BUGS:
            return Outcome(f"{step} skipped: a known bug (http2-send-after-final)")
        outcome = call(str(step), lambda: self.conn.send(body.make(), final))
        if request is not None and request.state == "unknown":
            # After a failure part-way (a generator's bad item) the docs say nothing.
            self._judge(step, outcome, {"ok", "hyper", "type", "value"})
            return outcome
        if request is None or request.state != "open":
            # No request of this thread's own is waiting for a body: never
            # another thread's (the API's rule), so a documented error.
            allowed = {"hyper"} | ({"type"} if body.verdict is Verdict.TYPE else set())
            if body.payload == b"" and any(r.stream_id is not None for r in model.requests):
                allowed.add("ok")  # nothing to send on its own latest (finished) stream: a no-op
            self._judge(step, outcome, allowed)
            return outcome
        self._judge(step, outcome, allowed_outcomes([body.verdict]))
        if outcome.error is None:
            request.chunks.append(body.payload or b"")
            if final:
                request.state = "done"
        elif not outcome.refused or body.verdict is Verdict.LATE_TYPE:
            request.state = "unknown"
        return outcome

    def _op_finish(self, step: Step, model: ThreadModel, request: Request) -> Outcome:
        """End an open request body (the epilogue, so the connection can be checked)."""
        stream_id = request.stream_id
        outcome = call(str(step), lambda: self.conn.send(b"", final=True, stream_id=stream_id))
        self._judge(step, outcome, {"ok", "hyper"})
        if outcome.error is None:
            request.state = "done"
        return outcome

    def finishing_steps(self) -> list[Step]:
        """Steps that end every open request body, each from the thread that began it."""
        return [
            Step(index, "finish", (request,))
            for index, model in enumerate(self.models)
            for request in model.requests
            if request.state == "open"
        ]

    def _op_getresponse(self, step: Step, model: ThreadModel) -> Outcome:
        request = model.current
        if request is None or request.state != "done" or request.stream_id is None:
            return Outcome(f"{step} skipped: no finished request")
        stream_id = request.stream_id
        outcome = call(str(step), lambda: self.conn.getresponse(stream_id))
        # Another thread's getresponse() without an id may have taken it.
        self._judge(step, outcome, {"ok", "hyper"})
        if outcome.error is None:
            self._took(step, outcome.result, model)
            request.response_tag = response_tag(outcome.result)
            if request.response_tag != request.tag:
                self.problems.append(f"{step}: got the response to {request.response_tag}, not {request.tag}")
        return outcome

    def _op_getresponse_any(self, step: Step, model: ThreadModel) -> Outcome:
        outcome = call(str(step), lambda: self.conn.getresponse())
        # It may wait for another thread's unfinished request: a timeout is fine.
        self._judge(step, outcome, {"ok", "hyper", "timeout"})
        if outcome.error is None:
            self._took(step, outcome.result, model)
        return outcome

    def _took(self, step: Step, response: Any, model: ThreadModel) -> None:
        tag = response_tag(response)
        if tag is not None and tag in self.taken:
            self.problems.append(f"{step}: the response to {tag} was handed out twice")
        self.taken.append(tag)
        model.responses.append(response)

    def _op_read(self, step: Step, model: ThreadModel) -> Outcome:
        if not model.responses:
            return Outcome(f"{step} skipped: no response")
        response = model.responses[-1]
        outcome = call(str(step), response.read)
        self._judge(step, outcome, {"ok", "hyper"})
        if outcome.error is None and outcome.result:
            try:
                body = json.loads(outcome.result)
            except ValueError:
                self.problems.append(
                    f"{step}: a response body that is not the recorder's: {outcome.result[:200]!r}"
                )
                return outcome
            if body.get("tag") != response_tag(response):
                self.problems.append(
                    f"{step}: body of {body.get('tag')} under the headers of {response_tag(response)}"
                )
            for request in model.requests:
                if request.tag == body.get("tag"):
                    request.response_body = body
        return outcome

    def _op_response_close(self, step: Step, model: ThreadModel) -> Outcome:
        if not model.responses:
            return Outcome(f"{step} skipped: no response")
        outcome = call(str(step), model.responses[-1].close)
        self._judge(step, outcome, {"ok"})
        return outcome

    def _op_close(self, step: Step, model: ThreadModel) -> Outcome:
        self.closed = True
        outcome = call(str(step), self.conn.close)
        self._judge(step, outcome, {"ok"})
        return outcome

    def close_responses(self) -> None:
        for model in self.models:
            for response in model.responses:
                try:
                    response.close()
                except DOCUMENTED:
                    pass


def _kind(outcome: Outcome) -> str:
    error = outcome.error
    if error is None:
        return "ok"
    if isinstance(error, HyperTimeout):
        return "timeout"
    if isinstance(error, TypeError):
        return "type"
    if isinstance(error, ValueError):
        return "value"
    return "hyper"


def is_upgrade(name: Any) -> bool:
    """The field name is ``upgrade`` (any case, str or bytes)."""
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    return isinstance(name, str) and name.lower() == "upgrade"

"""The report of ``python -m bench.compare``: same-round ratios B/A, Markdown and JSON."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.config import UNITS, Sizes

if TYPE_CHECKING:  # bench.compare imports this module
    from bench.compare import Side

#: Lines of :func:`bench.machine.machine_details` that matter for an A/B run
#: (the peers' versions and the current tree's hyper do not).
MACHINE_LABELS = (
    "date (UTC)",
    "CPU",
    "cores",
    "OS",
    "Python",
    "OpenSSL (Python)",
    "nginx",
    "nghttpd",
    "h2o",
    "h2 / hpack",
)


@dataclass
class Run:
    """Everything one comparison produced."""

    sides: tuple[Side, Side]
    servers: list[str]
    workloads: list[str]
    sizes: Sizes
    rounds: int
    #: One per run, in the order run (see :func:`bench.compare.measure`).
    records: list[dict[str, Any]]
    command: str
    load_start: str
    load_end: str
    duration: float
    server_errors: list[str] = field(default_factory=list)
    #: (label, value) pairs from :func:`bench.machine.machine_details`.
    details: list[tuple[str, str]] = field(default_factory=list)


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free confidence interval for the median of *values*.

    The k-th smallest and k-th largest values, with k the largest rank such
    that the chance of k-1 or fewer of n values falling below the true median
    is at most (1 - *confidence*) / 2 (the sign test's binomial(n, 1/2)).
    ``None`` when n is too small for any such interval (n < 6 at 95 %).
    """
    n = len(values)
    tail, k = 0.0, 0
    while k < n:
        tail += math.comb(n, k) / 2**n  # P(at most k values below the median)
        if tail > (1 - confidence) / 2:
            break
        k += 1
    if k == 0:
        return None
    ordered = sorted(values)
    return ordered[k - 1], ordered[n - k]


@dataclass
class Paired:
    """One measure of A and B per round, and their same-round ratios B/A."""

    #: round -> value of A / of B (only rounds where that side succeeded).
    a: dict[int, float]
    b: dict[int, float]

    @property
    def ratios(self) -> list[float]:
        """B / A for every round where both succeeded, in round order."""
        return [self.b[n] / self.a[n] for n in sorted(self.a) if n in self.b and self.a[n] > 0]

    @property
    def median_a(self) -> float | None:
        """Median of A's values."""
        return statistics.median(self.a.values()) if self.a else None

    @property
    def median_b(self) -> float | None:
        """Median of B's values."""
        return statistics.median(self.b.values()) if self.b else None

    @property
    def median_ratio(self) -> float | None:
        """Median of the same-round ratios B/A."""
        ratios = self.ratios
        return statistics.median(ratios) if ratios else None

    @property
    def spread(self) -> tuple[float, float] | None:
        """Smallest and largest same-round ratio."""
        ratios = self.ratios
        return (min(ratios), max(ratios)) if ratios else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95 % confidence interval of the median ratio (:func:`median_interval`)."""
        return median_interval(self.ratios)

    def verdict(self, higher: str, lower: str) -> str:
        """*higher* or *lower* when the whole interval is above or below 1, else no difference."""
        interval = self.interval
        if interval is None:
            return "too few rounds to tell" if self.ratios else "no complete pair"
        if interval[0] > 1.0:
            return higher
        if interval[1] < 1.0:
            return lower
        return "no difference shown"


@dataclass
class Row:
    """One workload on one server: both sides' speed and client CPU cost per round."""

    workload: str
    server: str
    #: Rates: req/s, or MB/s (higher is better).
    speed: Paired
    #: Client CPU seconds per request, or per MB (lower is better).
    cpu: Paired
    #: Runs that failed, stalled or were skipped after a stall (not budget skips).
    failures: int

    def verdict(self) -> str:
        """Speed verdict from the confidence interval of the median ratio."""
        return self.speed.verdict("B faster", "B slower")

    def as_dict(self) -> dict[str, Any]:
        """The row for the JSON output."""
        result: dict[str, Any] = {
            "workload": self.workload,
            "server": self.server,
            "unit": UNITS[self.workload],
        }
        for name, paired in (("", self.speed), ("cpu_", self.cpu)):
            spread, interval = paired.spread, paired.interval
            result.update(
                {
                    f"{name}median_a": paired.median_a,
                    f"{name}median_b": paired.median_b,
                    f"{name}median_ratio": paired.median_ratio,
                    f"{name}ratio_min": spread[0] if spread else None,
                    f"{name}ratio_max": spread[1] if spread else None,
                    f"{name}ci_low": interval[0] if interval else None,
                    f"{name}ci_high": interval[1] if interval else None,
                    f"{name}pairs": len(paired.ratios),
                }
            )
        result.update(failures=self.failures, verdict=self.verdict())
        result["cpu_verdict"] = self.cpu.verdict("B costs more CPU", "B costs less CPU")
        return result


def rate(record: dict[str, Any]) -> float | None:
    """The run's rate (req/s, or MB/s with MB = 10^6 bytes), ``None`` unless it succeeded."""
    value = record.get("rate") if record.get("ok") else None
    return float(value) if value is not None else None


def cpu_cost(record: dict[str, Any]) -> float | None:
    """Client CPU seconds per request (or per MB), ``None`` unless the run succeeded and says."""
    if not record.get("ok") or record.get("cpu_seconds") is None:
        return None
    per = 1e6 if UNITS[record["workload"]] == "MB/s" else 1.0
    return float(record["cpu_seconds"]) / (float(record["amount"]) / per)


def describe(record: dict[str, Any]) -> str:
    """One run in a few words, for the progress log and the runs table."""
    value = rate(record)
    if value is None:
        return str(record.get("error", "failed"))
    return f"{value:,.0f} {UNITS[record['workload']]}"


def rows(run: Run) -> list[Row]:
    """One :class:`Row` per workload and server, in report order."""
    result = []
    for workload in run.workloads:
        for server in run.servers:
            mine = [r for r in run.records if r["workload"] == workload and r["server"] == server]
            speed, cpu = Paired({}, {}), Paired({}, {})
            for record in mine:
                for paired, value in ((speed, rate(record)), (cpu, cpu_cost(record))):
                    if value is not None:
                        (paired.a if record["side"] == "A" else paired.b)[record["round"]] = value
            failures = sum(1 for r in mine if not r.get("ok") and not r.get("budget"))
            result.append(Row(workload, server, speed, cpu, failures))
    return result


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def _figure(value: float | None, workload: str) -> str:
    return "–" if value is None else f"{value:,.0f} {UNITS[workload]}"


def _cpu_figure(value: float | None, workload: str) -> str:
    if value is None:
        return "–"
    if UNITS[workload] == "MB/s":
        return f"{value * 1e3:.2f} ms/MB"
    return f"{value * 1e6:,.0f} µs/req"


def _ratio_cells(paired: Paired) -> list[str]:
    ratio, spread, interval = paired.median_ratio, paired.spread, paired.interval
    return [
        "–" if ratio is None else f"{ratio:.3f}",
        "–" if spread is None else f"{spread[0]:.3f} – {spread[1]:.3f}",
        "–" if interval is None else f"{interval[0]:.3f} – {interval[1]:.3f}",
    ]


def summary_table(run: Run) -> list[str]:
    """The headline table: medians of A and B, median same-round ratio B/A, spread, interval."""
    body = []
    for row in rows(run):
        pairs = f"{len(row.speed.ratios)}/{run.rounds}" + (f", {row.failures} failed" if row.failures else "")
        body.append(
            [
                run.sizes.describe(row.workload),
                row.server,
                _figure(row.speed.median_a, row.workload),
                _figure(row.speed.median_b, row.workload),
                *_ratio_cells(row.speed),
                pairs,
                row.verdict(),
            ]
        )
    header = [
        "workload",
        "server",
        "A median",
        "B median",
        "B/A (median of rounds)",
        "B/A spread (min – max)",
    ]
    return _table(header + ["95 % CI of the median B/A", "pairs", "verdict"], body)


def cpu_table(run: Run) -> list[str]:
    """The client's CPU time per request (or MB), A and B, and the same-round ratios."""
    body = []
    for row in rows(run):
        body.append(
            [
                run.sizes.describe(row.workload),
                row.server,
                _cpu_figure(row.cpu.median_a, row.workload),
                _cpu_figure(row.cpu.median_b, row.workload),
                *_ratio_cells(row.cpu),
                row.cpu.verdict("B costs more CPU", "B costs less CPU"),
            ]
        )
    header = ["workload", "server", "A CPU", "B CPU", "B/A (median of rounds)", "B/A spread (min – max)"]
    return _table(header + ["95 % CI of the median B/A", "verdict"], body)


def runs_table(run: Run) -> list[str]:
    """Every pair of runs, in the order they ran."""
    body = []
    pairs: dict[tuple[int, str, str], dict[str, dict[str, Any]]] = {}
    for record in run.records:
        pairs.setdefault((record["round"], record["server"], record["workload"]), {})[record["side"]] = record
    for (round_index, server, workload), pair in pairs.items():
        first = min(pair.values(), key=lambda r: int(r["position"]))["side"]
        a, b = pair.get("A", {}), pair.get("B", {})
        cells = [str(round_index + 1), server, workload, first, describe(a), describe(b)]
        for measure in (rate, cpu_cost):
            value_a, value_b = measure(a), measure(b)
            cells.append(f"{value_b / value_a:.3f}" if value_a and value_b else "–")
        body.append(cells)
    return _table(["round", "server", "workload", "first", "A", "B", "B/A", "CPU B/A"], body)


def sides_table(run: Run) -> list[str]:
    """Which revision each side is, and where its hyper was imported from."""
    body = []
    for side in run.sides:
        mine = [r for r in run.records if r["side"] == side.label and r.get("hyper_file")]
        where = f"`<tmp>/{side.tree.name}/hyper/__init__.py`"
        body.append([side.label, f"`{side.rev}`", f"`{side.commit}`", side.subject, where, str(len(mine))])
    return _table(["side", "revision", "commit", "subject", "hyper imported from", "runs checked"], body)


def markdown(run: Run) -> str:
    """The whole report."""
    lines = [
        f"# hyper A/B: `{run.sides[0].rev}` (A) vs `{run.sides[1].rev}` (B)",
        "",
        "```",
        run.command,
        "```",
        "",
        *sides_table(run),
        "",
        "Each side ran in fresh worker processes of the same harness (this tree's `bench/worker.py` and "
        "`bench/clients.py`) with only that revision's `hyper/` first on `sys.path`; every run reported "
        "`hyper.__file__` and was checked against its side's tree.",
        "",
        f"{run.rounds} rounds; in each, every workload ran on every server with A and B back to back "
        "(A first in odd-numbered rounds, B first in even-numbered ones). **B/A** is the rate of B over "
        "the rate of A in the same round (> 1: B is faster); the table gives the median of those "
        "ratios and their smallest and largest. The medians of A and B are over all rounds.",
        "",
        *summary_table(run),
        "",
        "The 95 % confidence interval of the median ratio is distribution-free (sign test: the k-th "
        "smallest and k-th largest ratio); the verdict says B faster or slower only when the whole "
        "interval is above or below 1.",
        "",
        "Client CPU time (the worker process, all threads, during the timed part) per request or per "
        "MB: what the library costs, less moved by other processes than the wall clock. B/A < 1: B "
        "costs less.",
        "",
        *cpu_table(run),
        "",
        f"Machine load average (1, 5, 15 min) at start: {run.load_start}; at end: {run.load_end}. "
        f"Duration {run.duration / 60:.1f} min.",
        "",
    ]
    failed = [r for r in run.records if not r.get("ok")]
    if failed:
        lines += ["## Runs that failed, stalled or were skipped", ""]
        for r in failed:
            lines.append(f"- round {r['round'] + 1}, {r['server']} {r['workload']} {r['side']}: {r['error']}")
        lines.append("")
    if run.server_errors:
        lines += ["## Server error log lines", "", *[f"- {line}" for line in run.server_errors], ""]
    lines += ["## Every run", "", *runs_table(run), ""]
    if run.details:
        lines += ["## Machine", "", *_table(["", ""], [[label, value] for label, value in run.details]), ""]
    return "\n".join(lines)


def as_json(run: Run) -> dict[str, Any]:
    """Every run and the summary rows, for tools and tests."""
    return {
        "command": run.command,
        "sides": [
            {
                "label": side.label,
                "rev": side.rev,
                "commit": side.commit,
                "subject": side.subject,
                "hyper_init": str(side.hyper_init),
            }
            for side in run.sides
        ],
        "servers": run.servers,
        "workloads": run.workloads,
        "rounds": run.rounds,
        "rows": [row.as_dict() for row in rows(run)],
        "records": run.records,
        "load_start": run.load_start,
        "load_end": run.load_end,
        "duration": run.duration,
    }

"""The report of ``python -m bench.compare``: same-round ratios B/A, Markdown and JSON."""

from __future__ import annotations

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


@dataclass
class Row:
    """One workload on one server: both sides' figures and the same-round ratios."""

    workload: str
    server: str
    rates_a: list[float]
    rates_b: list[float]
    #: (round, rate of B / rate of A) for every round where both succeeded.
    ratios: list[tuple[int, float]]
    #: Runs that failed, stalled or were skipped after a stall (not budget skips).
    failures: int

    @property
    def median_a(self) -> float | None:
        """Median rate of A's successful runs."""
        return statistics.median(self.rates_a) if self.rates_a else None

    @property
    def median_b(self) -> float | None:
        """Median rate of B's successful runs."""
        return statistics.median(self.rates_b) if self.rates_b else None

    @property
    def median_ratio(self) -> float | None:
        """Median of the same-round ratios B/A (> 1: B is faster)."""
        return statistics.median(r for _, r in self.ratios) if self.ratios else None

    @property
    def spread(self) -> tuple[float, float] | None:
        """Smallest and largest same-round ratio."""
        values = [r for _, r in self.ratios]
        return (min(values), max(values)) if values else None

    def verdict(self) -> str:
        """Whether B was faster or slower in every round, or the rounds disagree."""
        spread = self.spread
        if spread is None:
            return "no complete pair"
        if len(self.ratios) < 3:
            return "too few rounds to tell"
        if spread[1] < 1.0:
            return "B slower in every round"
        if spread[0] > 1.0:
            return "B faster in every round"
        return "1.0 within the spread"

    def as_dict(self) -> dict[str, Any]:
        """The row for the JSON output."""
        spread = self.spread
        return {
            "workload": self.workload,
            "server": self.server,
            "unit": UNITS[self.workload],
            "median_a": self.median_a,
            "median_b": self.median_b,
            "median_ratio": self.median_ratio,
            "ratio_min": spread[0] if spread else None,
            "ratio_max": spread[1] if spread else None,
            "pairs": len(self.ratios),
            "failures": self.failures,
            "verdict": self.verdict(),
        }


def rate(record: dict[str, Any]) -> float | None:
    """The run's rate (req/s, or MB/s with MB = 10^6 bytes), ``None`` unless it succeeded."""
    value = record.get("rate") if record.get("ok") else None
    return float(value) if value is not None else None


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
            by_round: dict[int, dict[str, float]] = {}
            for record in mine:
                value = rate(record)
                if value is not None:
                    by_round.setdefault(record["round"], {})[record["side"]] = value
            ratios = [(n, got["B"] / got["A"]) for n, got in sorted(by_round.items()) if len(got) == 2]
            result.append(
                Row(
                    workload,
                    server,
                    rates_a=[got["A"] for got in by_round.values() if "A" in got],
                    rates_b=[got["B"] for got in by_round.values() if "B" in got],
                    ratios=ratios,
                    failures=sum(1 for r in mine if not r.get("ok") and not r.get("budget")),
                )
            )
    return result


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def _figure(value: float | None, workload: str) -> str:
    return "–" if value is None else f"{value:,.0f} {UNITS[workload]}"


def summary_table(run: Run) -> list[str]:
    """The headline table: medians of A and B, median same-round ratio B/A, spread."""
    body = []
    for row in rows(run):
        spread = row.spread
        ratio = row.median_ratio
        body.append(
            [
                run.sizes.describe(row.workload),
                row.server,
                _figure(row.median_a, row.workload),
                _figure(row.median_b, row.workload),
                "–" if ratio is None else f"{ratio:.3f}",
                "–" if spread is None else f"{spread[0]:.3f} – {spread[1]:.3f}",
                f"{len(row.ratios)}/{run.rounds}" + (f", {row.failures} failed" if row.failures else ""),
                row.verdict(),
            ]
        )
    header = ["workload", "server", "A median", "B median", "B/A (median of rounds)", "B/A spread"]
    return _table(header + ["pairs", "verdict"], body)


def runs_table(run: Run) -> list[str]:
    """Every pair of runs, in the order they ran."""
    body = []
    pairs: dict[tuple[int, str, str], dict[str, dict[str, Any]]] = {}
    for record in run.records:
        pairs.setdefault((record["round"], record["server"], record["workload"]), {})[record["side"]] = record
    for (round_index, server, workload), pair in pairs.items():
        first = min(pair.values(), key=lambda r: int(r["position"]))["side"]
        a, b = pair.get("A", {}), pair.get("B", {})
        rate_a, rate_b = rate(a), rate(b)
        ratio = f"{rate_b / rate_a:.3f}" if rate_a and rate_b else "–"
        body.append([str(round_index + 1), server, workload, first, describe(a), describe(b), ratio])
    return _table(["round", "server", "workload", "first", "A", "B", "B/A"], body)


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

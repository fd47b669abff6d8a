"""Turning run results into tables: medians, ratios, targets, RSS, machine."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.config import NOTES, RSS_LIMIT_MIB, TARGETS, UNITS, Sizes

#: Column titles.
TITLES = {
    "h2load": "h2load (C)",
    "curl": "curl CLI",
    "pycurl": "pycurl",
    "floor": "pure-Python floor",
    "httpx": "httpx http2",
    "niquests": "niquests",
    "hyper": "hyper",
    "hyper-batch": "hyper batch()",
    "tls": "Python TLS limit",
}


@dataclass
class Cell:
    """All runs of one client on one workload."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    #: Why the client did not run at all ("not installed", "n/a", ...).
    skipped: str | None = None

    @property
    def rates(self) -> list[float]:
        """Rates of the successful runs (req/s, or MB/s with MB = 10^6 bytes)."""
        return [run["rate"] for run in self.runs if run.get("ok")]

    @property
    def median(self) -> float | None:
        """Median rate of the successful runs."""
        rates = self.rates
        return statistics.median(rates) if rates else None

    @property
    def stalled(self) -> bool:
        """Whether any run stalled (was killed at its timeout)."""
        return any(run.get("stalled") for run in self.runs)

    def max_of(self, key: str) -> float | None:
        """Largest value of *key* over the successful runs."""
        values = [run[key] for run in self.runs if run.get("ok") and run.get(key) is not None]
        return max(values) if values else None

    def text(self) -> str:
        """The table cell: median, or why there is none."""
        if self.skipped is not None:
            return self.skipped
        median = self.median
        if median is None:
            if self.stalled:
                return "stalled"
            if self.runs and all(run.get("budget") for run in self.runs):
                return "skipped (time budget)"
            return "error" if self.runs else "–"
        text = f"{median:,.0f}"
        failures = len(self.runs) - len(self.rates)
        if failures:
            text += f" ({failures} {'stalled' if self.stalled else 'failed'})"
        return text


Results = dict[tuple[str, str], Cell]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(row) for row in rows)]


def medians_table(results: Results, workloads: list[str], clients: list[str], sizes: Sizes) -> list[str]:
    """Markdown table: one row per workload, one column per client (medians)."""
    rows = []
    for workload in workloads:
        cells = [results.get((workload, client), Cell(skipped="–")).text() for client in clients]
        rows.append([sizes.describe(workload), UNITS[workload], *cells])
    return _table(["workload", "unit", *(TITLES[c] for c in clients)], rows)


def ratio(results: Results, workload: str, peer: str) -> float | None:
    """Median of hyper divided by median of *peer* on *workload*."""
    mine = results.get((workload, "hyper"), Cell()).median
    theirs = results.get((workload, peer), Cell()).median
    if mine is None or not theirs:
        return None
    return mine / theirs


def round_ratios(results: Results, workload: str, peer: str) -> list[tuple[int, float]]:
    """(round, hyper / *peer*) for every round in which both have a figure."""

    def by_run(client: str) -> dict[int, float]:
        cell = results.get((workload, client), Cell())
        return {run["run"]: run["rate"] for run in cell.runs if run.get("ok") and "run" in run}

    mine, theirs = by_run("hyper"), by_run(peer)
    return [(index, mine[index] / theirs[index]) for index in sorted(mine) if theirs.get(index)]


def paired_ratio(results: Results, workload: str, peer: str) -> float | None:
    """Median over rounds of hyper / *peer* measured in the same round (minutes apart at most).

    A shared machine's load drifts between rounds; a ratio of two figures taken
    side by side in one round cancels most of that drift, a ratio of medians
    taken from different rounds does not.
    """
    ratios = [value for _, value in round_ratios(results, workload, peer)]
    return statistics.median(ratios) if ratios else None


def ratios_table(results: Results, workloads: list[str], clients: list[str]) -> list[str]:
    """Markdown table of hyper / peer for every peer that has a figure."""
    peers = [c for c in clients if c != "hyper"]
    rows = []
    for workload in workloads:
        cells = []
        for peer in peers:
            value = ratio(results, workload, peer)
            cells.append("–" if value is None else f"{value:.2f}x")
        rows.append([workload, *cells])
    return _table(["workload", *(f"hyper / {TITLES[p]}" for p in peers)], rows)


def _format_ratio(value: float, peer: str) -> str:
    return f"{value:.0%}" if peer == "tls" else f"{value:.2f}x"


def targets_table(by_server: dict[str, Results], workloads: list[str]) -> list[str]:
    """Every target on every server: same-round ratios, their median, ratio of medians, met."""
    rows = []
    for target in TARGETS:
        if target.workload not in workloads:
            continue
        for server_name, results in by_server.items():
            peer = target.peer
            value = ratio(results, target.workload, peer)
            per_round = round_ratios(results, target.workload, peer)
            paired = paired_ratio(results, target.workload, peer)
            hyper_cell = results.get((target.workload, "hyper"), Cell())
            peer_cell = results.get((target.workload, peer))
            if value is None:
                if hyper_cell.stalled and hyper_cell.median is None:
                    why = "hyper stalled"
                elif peer_cell is None:
                    why = f"{TITLES[peer]} not run"
                elif peer_cell.skipped is not None:
                    why = f"{TITLES[peer]}: {peer_cell.skipped}"
                else:
                    why = "no figure"
                rounds_text, measured, measured_paired, met = why, "–", "–", "–"
            else:
                decisive = paired if paired is not None else value
                met = "met" if decisive >= target.minimum else "**missed**"
                rounds_text = ", ".join(_format_ratio(r, peer) for _, r in per_round) or "–"
                measured = _format_ratio(value, peer)
                measured_paired = "–" if paired is None else _format_ratio(paired, peer)
            if peer == "tls":
                wanted = f">= {target.minimum:.0%} of the TLS limit"
            else:
                wanted = f">= {target.minimum:g}x {TITLES[peer]}"
            rows.append(
                [
                    f"{target.issue}",
                    server_name,
                    target.workload,
                    wanted,
                    rounds_text,
                    measured_paired,
                    measured,
                    met,
                ]
            )
    return _table(
        [
            "issue",
            "server",
            "workload",
            "target",
            "same-round ratios (round 1, 2, ...)",
            "median of same-round ratios",
            "ratio of medians",
            "met (same-round)",
        ],
        rows,
    )


def resources_table(results: Results, workloads: list[str], clients: list[str]) -> list[str]:
    """Peak RSS growth (MiB, worst run) and connections opened per run."""
    rows = []
    for client in clients:
        if client in ("tls", "h2load", "curl"):
            continue
        cells = []
        for workload in workloads:
            cell = results.get((workload, client))
            growth = cell.max_of("rss_growth_kib") if cell else None
            conns = cell.max_of("connections") if cell else None
            text = "–" if growth is None else f"{growth / 1024:.1f}"
            if conns is not None:
                text += f" / {conns:.0f}"
            cells.append(text)
        rows.append([TITLES[client], *cells])
    return _table(["client", *workloads], rows)


def runs_table(results: Results, workloads: list[str], clients: list[str]) -> list[str]:
    """Every run's rate (or failure), for the record."""
    rows = []
    for workload in workloads:
        for client in clients:
            cell = results.get((workload, client))
            if cell is None or not cell.runs:
                continue
            texts = []
            for run in cell.runs:
                if run.get("ok"):
                    texts.append(f"{run['rate']:,.0f}")
                elif run.get("budget"):
                    texts.append("skipped")
                else:
                    texts.append("stalled" if run.get("stalled") else "error")
            rows.append([workload, TITLES[client], ", ".join(texts)])
    return _table(["workload", "client", "runs"], rows)


def failures(results: Results) -> list[str]:
    """One line per failed run, with its error message."""
    lines = []
    for (workload, client), cell in results.items():
        for index, run in enumerate(cell.runs, 1):
            if not run.get("ok"):
                lines.append(f"- {workload} / {client} attempt {index}: {run.get('error', '?')}")
    return lines


def notes(clients: list[str], workloads: list[str]) -> list[str]:
    """How clients do the workloads where it is not obvious."""
    return [
        f"- {text}"
        for (client, workload), text in NOTES.items()
        if client in clients and workload in workloads
    ]


def server_section(
    name: str, results: Results, workloads: list[str], clients: list[str], sizes: Sizes
) -> list[str]:
    """Medians, ratios, resources and every run of one server."""
    connections = (
        "connections nginx accepted during the run (warm-up included; most, over runs)"
        if name == "nginx"
        else f"({name} counts no connections)"
    )
    return [
        f"## {name}",
        "",
        "### Medians",
        "",
        *medians_table(results, workloads, clients, sizes),
        "",
        "### Ratios of medians (hyper / peer)",
        "",
        *ratios_table(results, workloads, clients),
        "",
        "### Peak RSS growth and connections",
        "",
        "Peak RSS growth of the client process during the timed workload (MiB, worst run)",
        f"/ {connections}.",
        "",
        *resources_table(results, workloads, clients),
        "",
        "### All runs",
        "",
        *runs_table(results, workloads, clients),
        "",
    ]


def markdown_report(
    by_server: dict[str, Results],
    workloads: list[str],
    clients: list[str],
    sizes: Sizes,
    details: list[tuple[str, str]],
    command: str,
    duration: float,
    profiles: list[str],
    server_errors: list[str],
    runs: int,
) -> str:
    """The whole report as Markdown (bench/RESULTS.md)."""
    servers = ", ".join(by_server)
    lines = [
        "# hyper benchmark results",
        "",
        f"Produced by `{command}` in {duration:.0f} s. Servers: {servers}, on 127.0.0.1, TLS 1.3,",
        f"one connection per client unless noted, {runs} round(s) (a failed run is tried once more;",
        "failures are listed below), each Python client run in a fresh process; medians of the",
        "successful runs. MB = 10^6 bytes. Figures on a shared machine move 10-30 % between runs:",
        "compare ratios within one round, not absolute figures across runs.",
        "",
        "## Machine",
        "",
        *_table(["", ""], [[label, value] for label, value in details]),
        "",
        "## Targets",
        "",
        "In each round every client runs once against each server, all in the same minutes;",
        "a same-round ratio divides hyper's figure by the peer's from the same round and server,",
        'which cancels most of the load drift between rounds. "met" uses the median of those;',
        "the ratio of the medians is shown too. Issue 14's targets hold for every server.",
        f"Issue 5 limit on memory: peak RSS growth under {RSS_LIMIT_MIB} MiB for a 1 GiB body",
        f"(this run: {sizes.body_mib} MiB bodies; see the RSS tables).",
        "",
        *targets_table(by_server, workloads),
        "",
        "How clients do the workloads where it is not obvious:",
        "",
        *notes(clients, workloads),
        "",
        "Every server answers an upload only after its last byte (bench/more_servers.py);",
        "the floor client does not upload.",
        "",
    ]
    for name, results in by_server.items():
        lines += server_section(name, results, workloads, clients, sizes)
    failed = [f"- {name}: {line[2:]}" for name, results in by_server.items() for line in failures(results)]
    if failed:
        lines += ["## Failures", "", *failed, ""]
    if server_errors:
        lines += ["## Server error logs (distinct messages)", "", "```", *server_errors, "```", ""]
    if profiles:
        lines += ["## Profiles (hyper, cProfile)", "", *profiles, ""]
    return "\n".join(lines)

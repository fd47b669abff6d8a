"""The A/B benchmark (``python -m bench.compare``) measures each revision's own hyper.

The smoke test runs the real tool with tiny sizes against nginx, comparing
HEAD with itself: every workload gets a row, every run succeeded and reported
``hyper.__file__`` from its own side's exported tree (never the checkout's).
The other tests check the import check, revision handling and the arithmetic
of same-round ratios on made-up records.  No timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.compare import CompareError, Side, check_import, export_side, import_problem
from bench.compare_report import Run, markdown, median_interval, rows
from bench.config import QUICK, UNITS, WORKLOADS
from bench.runner import REPO_ROOT


def _git_head() -> str | None:
    proc = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


HEAD = _git_head()
needs_git = pytest.mark.skipif(HEAD is None, reason="not a git checkout")


@needs_git
def test_head_against_head_on_nginx(tmp_path: Path) -> None:
    report, summary = tmp_path / "ab.md", tmp_path / "ab.json"
    argv = [sys.executable, "-m", "bench.compare", "HEAD", "HEAD", "--servers", "nginx", "--quick"]
    argv += ["--rounds", "2", "--output", str(report), "--json", str(summary)]
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=100, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data: dict[str, Any] = json.loads(summary.read_text())

    # Both sides are HEAD, exported into two different trees, neither the checkout.
    sides = {side["label"]: side for side in data["sides"]}
    assert [sides["A"]["commit"], sides["B"]["commit"]] == [HEAD, HEAD]
    inits = {label: Path(side["hyper_init"]) for label, side in sides.items()}
    assert inits["A"] != inits["B"]
    assert REPO_ROOT / "hyper" / "__init__.py" not in inits.values()

    # Every run succeeded and imported its own side's hyper; the order alternated.
    records = data["records"]
    assert len(records) == 2 * len(WORKLOADS) * 2
    for record in records:
        assert record["ok"], record
        assert Path(record["hyper_file"]) == inits[record["side"]], record
    firsts = {r["round"]: r["side"] for r in records if r["position"] == 0}
    assert firsts == {0: "A", 1: "B"}

    # One row per workload, each with both medians and two same-round ratios.
    assert [(row["workload"], row["server"]) for row in data["rows"]] == [(w, "nginx") for w in WORKLOADS]
    for row in data["rows"]:
        assert row["pairs"] == 2 and row["failures"] == 0
        assert row["median_a"] > 0 and row["median_b"] > 0
        assert row["ratio_min"] <= row["median_ratio"] <= row["ratio_max"]
        assert row["cpu_pairs"] == 2 and row["cpu_median_a"] > 0 and row["cpu_median_b"] > 0

    text = report.read_text()
    for workload in WORKLOADS:
        label = QUICK.describe(workload)
        # One row in the speed table, one in the CPU table.
        speed, cpu = [line for line in text.splitlines() if line.startswith(f"| {label} | nginx |")]
        assert UNITS[workload] in speed
        assert ("ms/MB" if UNITS[workload] == "MB/s" else "µs/req") in cpu
    assert "python -m bench.compare HEAD HEAD --servers nginx --quick" in text
    assert "at start:" in text and "at end:" in text


def test_a_tree_without_hyper_is_caught(tmp_path: Path) -> None:
    # With no hyper/ in the side's tree, the import falls through to the
    # checkout's hyper: the check must notice, not measure the wrong code.
    side = Side("A", "fake", "0" * 40, "no hyper here", tmp_path)
    with pytest.raises(CompareError, match="not .*" + "hyper"):
        check_import(side, 60.0)


def test_import_problem() -> None:
    side = Side("B", "x", "1" * 40, "", Path("/nonexistent/B-tree"))
    assert import_problem(side, {"ok": True, "hyper_file": str(side.hyper_init)}) is None
    assert "did not report" in str(import_problem(side, {"ok": True}))
    assert "not /nonexistent" in str(import_problem(side, {"ok": True, "hyper_file": "/elsewhere/hyper.py"}))


@needs_git
def test_an_unknown_revision_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CompareError, match="not a revision"):
        export_side("A", "no-such-branch-abbench", tmp_path)


@needs_git
def test_export_holds_only_that_revisions_hyper(tmp_path: Path) -> None:
    side = export_side("A", "HEAD", tmp_path)
    assert side.commit == HEAD
    assert side.hyper_init.is_file()
    assert sorted(p.name for p in side.tree.iterdir()) == ["hyper"]  # no bench/ or tests/
    check_import(side, 60.0)


def test_a_directory_side_is_a_copy_taken_at_the_start(tmp_path: Path) -> None:
    # A directory (an uncommitted tree, another worktree) can be a side: its
    # hyper/ is copied, so edits during the run cannot reach the measured code.
    source = tmp_path / "tree"
    (source / "hyper").mkdir(parents=True)
    (source / "hyper" / "__init__.py").write_text("MARK = 'copied'\n")
    (source / "hyper" / "__pycache__").mkdir()
    side = export_side("B", str(source), tmp_path / "sides")
    (source / "hyper" / "__init__.py").write_text("MARK = 'edited later'\n")
    assert side.hyper_init.read_text() == "MARK = 'copied'\n"
    assert not (side.tree / "hyper" / "__pycache__").exists()
    assert side.commit == f"directory {source.resolve()}" and side.short == side.commit
    assert side.subject == "(not a git checkout)"
    check_import(side, 60.0)


@needs_git
def test_the_checkout_itself_as_a_directory_side(tmp_path: Path) -> None:
    side = export_side("A", str(REPO_ROOT), tmp_path)
    assert side.hyper_init.is_file() and side.hyper_init != REPO_ROOT / "hyper" / "__init__.py"
    assert side.subject.startswith(f"checkout at {str(HEAD)[:12]} (")
    check_import(side, 60.0)


def test_a_directory_without_hyper_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CompareError, match="neither a revision nor a directory"):
        export_side("A", str(tmp_path), tmp_path / "sides")


def _record(round_index: int, side: str, rate: float | None, cpu: float = 0.5) -> dict[str, Any]:
    record: dict[str, Any] = {"round": round_index, "server": "nginx", "workload": "seq", "side": side}
    record["position"] = 0
    if rate is None:
        return {**record, "ok": False, "error": "boom"}
    return {**record, "ok": True, "rate": rate, "amount": 100, "cpu_seconds": cpu}


def test_same_round_ratios_spread_and_failures() -> None:
    records = [
        _record(0, "A", 100.0),
        _record(0, "B", 110.0, cpu=0.25),
        _record(1, "B", 90.0),
        _record(1, "A", 100.0),
        _record(2, "A", 50.0),  # a slow round for both: its ratio is still 1.2
        _record(2, "B", 60.0),
        _record(3, "A", 100.0),
        _record(3, "B", None),  # failed: no ratio for round 4, and reported
    ]
    side = Side("A", "a", "2" * 40, "", Path("/a"))
    run = Run((side, side), ["nginx"], ["seq"], QUICK, 4, records, "cmd", "1 1 1", "2 2 2", 1.0)
    (row,) = rows(run)
    assert row.speed.ratios == pytest.approx([1.1, 0.9, 1.2])
    assert row.speed.median_ratio == pytest.approx(1.1)
    assert row.speed.spread == pytest.approx((0.9, 1.2))
    assert row.verdict() == "too few rounds to tell"  # no 95 % interval from 3 pairs
    assert row.failures == 1
    assert row.speed.median_a == 100.0 and row.speed.median_b == 90.0
    # CPU per request: 0.5 s / 100 requests, except B's 0.25 s in round 1.
    assert row.cpu.ratios == pytest.approx([0.5, 1.0, 1.0])
    assert row.cpu.median_a == pytest.approx(0.005)
    text = markdown(run)
    assert "3/4, 1 failed" in text
    assert "round 4, nginx seq B: boom" in text
    assert "| 1 | nginx | seq | A | 100 req/s | 110 req/s | 1.100 | 0.500 |" in text


def test_median_interval_uses_sign_test_ranks() -> None:
    assert median_interval([1.0] * 5) is None  # 2 / 2**5 > 5 %: no 95 % interval from 5 values
    assert median_interval([3.0, 1.0, 2.0, 6.0, 5.0, 4.0]) == (1.0, 6.0)  # n=6: the extremes
    values = [float(v) for v in range(1, 12)]  # n=11: 2nd smallest and 2nd largest
    assert median_interval(values) == (2.0, 10.0)


def test_verdict_needs_the_whole_interval_on_one_side() -> None:
    from bench.compare_report import Paired

    slower = Paired(dict.fromkeys(range(8), 100.0), {n: 90.0 + n for n in range(8)})
    assert slower.verdict("faster", "slower") == "slower"  # ratios 0.90..0.97
    mixed = Paired(dict.fromkeys(range(8), 100.0), {n: 96.0 + n for n in range(8)})
    assert mixed.verdict("faster", "slower") == "no difference shown"  # 0.96..1.03

"""Two revisions of hyper side by side in one run: ``python -m bench.compare REV_A REV_B``.

Each revision's ``hyper`` package is exported with ``git archive`` into a
temporary tree; the servers (nginx, nghttpd, h2o, with the CA and document
root of ``python -m bench``) are started once.  Then, round after round, every
workload runs on every server with A's hyper and with B's hyper, one right
after the other (A first in even rounds, B first in odd ones), each in a fresh
worker process.  The worker is always the *current* tree's
:mod:`bench.worker` and :mod:`bench.clients`: only the library differs, never
the harness.  A worker reports ``hyper.__file__`` and every run is checked to
have imported its own revision's tree.

On a shared machine the absolute figures move a lot between minutes, but the
two runs of one round see nearly the same machine: the report's headline is
the median of the same-round ratios B/A, with their spread (min-max).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import compare_report, machine
from bench.config import WORKLOADS, Sizes
from bench.peers import log
from bench.runner import REPO_ROOT, choose_sizes, nginx_errors, run_one, run_subprocess
from bench.server import SERVER_NAMES, BenchServer, pick_work_dir, prepare_files, start_server
from bench.worker import RESULT_MARKER
from tests.servers import ServerStartError

#: Servers compared by default (issue 13's before/after: the two required ones).
DEFAULT_SERVERS = ("nginx", "nghttpd")
#: Seconds for ``git`` commands and for the import check of each tree.
GIT_TIMEOUT = 60.0


class CompareError(Exception):
    """The comparison cannot be made (unknown revision, wrong hyper imported, ...)."""


@dataclass(frozen=True)
class Side:
    """One of the two revisions compared."""

    #: "A" or "B".
    label: str
    #: The revision as given on the command line (e.g. ``main``).
    rev: str
    #: Its full commit hash.
    commit: str
    #: First line of its commit message.
    subject: str
    #: The directory holding this revision's ``hyper`` package.
    tree: Path

    @property
    def short(self) -> str:
        """The commit abbreviated, or the whole "directory ..." note."""
        return self.commit if self.commit.startswith("directory ") else self.commit[:12]

    @property
    def hyper_init(self) -> Path:
        """The ``hyper/__init__.py`` every worker of this side must import."""
        return self.tree / "hyper" / "__init__.py"


# ---------------------------------------------------------------------------
# The revisions' trees
# ---------------------------------------------------------------------------


def _git(*args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise CompareError(f"git {' '.join(args)}: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc.stdout.strip()


def export_side(label: str, rev: str, base: Path) -> Side:
    """Resolve *rev* and write its ``hyper`` package into a fresh tree under *base*.

    *rev* is a git revision of this checkout, or a directory holding a
    ``hyper`` package (a worktree, an export, an uncommitted change): its
    ``hyper/`` is copied as it is on disk at the start of the run.
    """
    if Path(rev).is_dir():
        return _copy_directory_side(label, Path(rev), base)
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except CompareError as exc:
        raise CompareError(f"{label}: {rev!r} is not a revision of {REPO_ROOT}") from exc
    subject = _git("log", "-1", "--format=%s", commit)
    tree = base / f"{label}-{commit[:12]}"
    tree.mkdir(parents=True)
    # Only hyper/ is exported: the harness (bench/, tests/servers.py) stays the
    # current tree's, so that both sides are timed by the same code.
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, "hyper"],
        capture_output=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    if archive.returncode != 0:
        why = archive.stderr.decode(errors="replace").strip()
        raise CompareError(f"{label}: git archive {commit[:12]} hyper: {why}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tree, filter="data")
        else:  # Python < 3.10.12 has no filters; the archive is our own repository's
            tar.extractall(tree)
    side = Side(label, rev, commit, subject, tree)
    if not side.hyper_init.is_file():
        raise CompareError(f"{label}: revision {commit[:12]} has no hyper/__init__.py")
    return side


def _copy_directory_side(label: str, source: Path, base: Path) -> Side:
    """A side whose ``hyper/`` is a copy of *source*'s, taken now.

    A copy rather than the directory itself, so that edits made while the
    comparison runs (a worktree in use) cannot change one side half-way.
    """
    package = source / "hyper"
    if not (package / "__init__.py").is_file():
        raise CompareError(f"{label}: {source} is neither a revision nor a directory with hyper/__init__.py")
    tree = base / f"{label}-directory"
    shutil.copytree(package, tree / "hyper", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # The commit column says where the code came from; a git checkout also
    # names its HEAD, with "+changes" when the copied files differ from it.
    commit = f"directory {source.resolve()}"
    subject = "(not a git checkout)"
    head = subprocess.run(
        ["git", "-C", str(source), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    if head.returncode == 0:
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--", "hyper"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
        changes = "+changes" if dirty.stdout.strip() else "clean"
        subject = f"checkout at {head.stdout.strip()} ({changes} in hyper/)"
    return Side(label, str(source), commit, subject, tree)


def check_import(side: Side, timeout: float) -> None:
    """Import ``hyper`` the way the workers will, and check it comes from *side*'s tree.

    This also compiles the tree's bytecode before anything is timed.
    """
    code = (
        "import json, hyper; "
        f"print({RESULT_MARKER!r} + json.dumps({{'ok': True, 'hyper_file': hyper.__file__}}))"
    )
    result = run_subprocess([sys.executable, "-c", code], timeout, side.tree)
    problem = import_problem(side, result)
    if problem is not None or not result.get("ok"):
        raise CompareError(f"{side.label}: {problem or result.get('error')}")


def import_problem(side: Side, result: dict[str, Any]) -> str | None:
    """Why *result* is not a run of *side*'s hyper, or ``None`` when it is."""
    reported = result.get("hyper_file")
    if reported is None:
        return "the worker did not report which hyper it imported"
    if Path(reported).resolve() != side.hyper_init.resolve():
        return f"imported {reported}, not {side.hyper_init}"
    return None


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def measure(
    sides: tuple[Side, Side],
    servers: list[BenchServer],
    workloads: list[str],
    sizes: Sizes,
    rounds: int,
    budget: float,
    work_dir: Path,
) -> list[dict[str, Any]]:
    """Every round, every server and workload: A and B back to back.  One record per run."""
    records: list[dict[str, Any]] = []
    stopped: set[tuple[str, str]] = set()  # (server, workload) pairs that stalled once
    since = time.monotonic()
    for round_index in range(rounds):
        # Swap the order every round, so neither side always runs right
        # after the server served the other (caches, CPU frequency, load).
        order = sides if round_index % 2 == 0 else (sides[1], sides[0])
        for server in servers:
            for workload in workloads:
                # Both sides of a pair run, or neither: a ratio needs both.
                skip: dict[str, Any] | None = None
                if (server.name, workload) in stopped:
                    skip = {"ok": False, "skipped": True, "error": "skipped: stalled in an earlier round"}
                elif time.monotonic() - since > budget:
                    skip = {"ok": False, "skipped": True, "budget": True}
                    skip["error"] = "skipped: time budget used up"
                for position, side in enumerate(order):
                    record: dict[str, Any] = {
                        "round": round_index,
                        "server": server.name,
                        "workload": workload,
                        "side": side.label,
                        "position": position,
                    }
                    if skip is not None:
                        record.update(skip)
                    else:
                        record.update(run_side(side, workload, server, sizes, work_dir))
                        if record.get("stalled"):
                            # Not waited on again; the other side still runs this round.
                            stopped.add((server.name, workload))
                    records.append(record)
                    log(
                        f"[round {round_index + 1}/{rounds}] {server.name:7} {workload:8} "
                        f"{side.label} {compare_report.describe(record)}"
                    )
    return records


def run_side(side: Side, workload: str, server: BenchServer, sizes: Sizes, work_dir: Path) -> dict[str, Any]:
    """One run of *side*'s hyper on *workload*; a failed check of the import is fatal."""
    result = run_one("hyper", workload, server, sizes, work_dir, None, side.tree)
    if result is None:  # hyper runs every workload
        return {"ok": False, "error": f"no {workload} workload for hyper"}
    if result.get("ok") or result.get("hyper_file") is not None:
        problem = import_problem(side, result)
        if problem is not None:
            raise CompareError(f"{side.label} on {server.name} {workload}: {problem}")
    return result


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _list_option(
    parser: argparse.ArgumentParser, name: str, value: str, allowed: tuple[str, ...]
) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        parser.error(f"--{name}: unknown {', '.join(unknown) or 'empty list'}; choose from {allowed}")
    return items


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description="Compare two revisions of hyper side by side in one run: same servers, same "
        "harness, alternating runs, medians of same-round ratios B/A.",
    )
    parser.add_argument(
        "rev_a", metavar="REV_A", help="the 'before' revision (a git revision, or a directory holding hyper/)"
    )
    parser.add_argument("rev_b", metavar="REV_B", help="the 'after' revision (the same kinds)")
    parser.add_argument(
        "--servers", default=",".join(DEFAULT_SERVERS), help=f"comma-separated, of {','.join(SERVER_NAMES)}"
    )
    parser.add_argument(
        "--only", default=",".join(WORKLOADS), help=f"comma-separated, of {','.join(WORKLOADS)}"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5; 1-50)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--body-mib", type=int, help="download/upload body size in MiB (default 100)")
    parser.add_argument("--timeout", type=float, help="seconds before a run counts as stalled (default 45)")
    parser.add_argument(
        "--budget", type=float, default=1500.0, help="seconds of measuring; later runs are skipped (1500)"
    )
    parser.add_argument("--output", metavar="FILE", help="also write the Markdown report there")
    parser.add_argument("--json", metavar="FILE", help="also write every run and the summary as JSON")
    args = parser.parse_args(argv)
    args.servers = _list_option(parser, "servers", args.servers, SERVER_NAMES)
    args.only = _list_option(parser, "only", args.only, WORKLOADS)
    if not 1 <= args.rounds <= 50:
        parser.error("--rounds must be between 1 and 50")
    return args


def _load() -> str:
    with contextlib.suppress(OSError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.compare``: 0 when every run succeeded, 1 when one failed, 2 when none could."""
    args_list = sys.argv[1:] if argv is None else argv
    args = parse_args(args_list)
    sizes = choose_sizes(args)
    started = time.monotonic()
    load_start = _load()
    unused = set(SERVER_NAMES) - set(args.servers)
    details = [
        (label, value)
        for label, value in machine.machine_details()
        if label in compare_report.MACHINE_LABELS and label not in unused
    ]
    fast_paths = os.environ.get("HYPER_FAST_PATHS", "unset (each revision's default)")
    details.append(("HYPER_FAST_PATHS", fast_paths))
    work_dir = pick_work_dir()
    servers: list[BenchServer] = []
    server_errors: list[str] = []
    records: list[dict[str, Any]] = []
    try:
        side_a = export_side("A", args.rev_a, work_dir / "revisions")
        side_b = export_side("B", args.rev_b, work_dir / "revisions")
        for side in (side_a, side_b):
            check_import(side, GIT_TIMEOUT)
            log(f"{side.label}: {side.rev} = {side.short} ({side.subject}), hyper from {side.tree}")
        files = prepare_files(work_dir, sizes.body_bytes)
        for name in args.servers:
            log(f"starting {name} ...")
            servers.append(start_server(name, work_dir, files))
        records = measure((side_a, side_b), servers, args.only, sizes, args.rounds, args.budget, work_dir)
    except (CompareError, ServerStartError) as exc:
        log(f"cannot compare: {exc}")
        return 2
    finally:
        for server in servers:
            server.process.stop()
            server_errors += [f"{server.name}: {line}" for line in nginx_errors(server)]
        shutil.rmtree(work_dir, ignore_errors=True)

    run = compare_report.Run(
        sides=(side_a, side_b),
        servers=args.servers,
        workloads=args.only,
        sizes=sizes,
        rounds=args.rounds,
        records=records,
        command="python -m bench.compare " + shlex.join(args_list),
        load_start=load_start,
        load_end=_load(),
        duration=time.monotonic() - started,
        server_errors=server_errors,
        details=details,
    )
    text = compare_report.markdown(run)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
        log(f"wrote {args.output}")
    if args.json:
        Path(args.json).write_text(json.dumps(compare_report.as_json(run), indent=1) + "\n")
    failed = [r for r in records if not r.get("ok") and not r.get("budget")]
    if failed:
        log(f"{len(failed)} run(s) failed, stalled or were skipped after a stall: see the report")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

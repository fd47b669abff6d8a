"""The soak's configuration and its result: the figures, the report and the verdict.

Split from :mod:`bench.soak` (which runs the soak) so that each stays small.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.soak_stats import Sample


@dataclass(frozen=True)
class SoakConfig:
    """How big and how bounded the soak is."""

    requests: int = 1_000_000
    threads: int = 8
    goaway_every: int = 100_000
    restarts: int = 3
    #: hyper's timeout: bounds every blocking call of the connection.
    timeout: float = 30.0
    #: A thread with no progress for this long is stuck (must exceed ``timeout``).
    stuck_after: float = 120.0
    #: The whole run's bound, in seconds.
    max_seconds: float = 3 * 3600.0
    samples: int = 20
    rss_growth_limit_mib: float = 16.0
    #: Most dead sessions allowed in memory at a sample (1-2 is normal: the
    #: session the server just closed, an error a thread is handling).
    dead_session_limit: int = 4

    def __post_init__(self) -> None:
        if self.requests < 1 or self.threads < 1 or self.goaway_every < 1 or self.restarts < 0:
            raise ValueError("requests, threads and goaway_every must be >= 1, restarts >= 0")
        if self.dead_session_limit < 0:
            raise ValueError("dead_session_limit must be >= 0")
        if self.stuck_after <= self.timeout:
            raise ValueError("stuck_after must be longer than timeout, or a bounded wait looks stuck")


@dataclass
class SoakResult:
    """Everything the soak measured; ``problems`` empty means it passed."""

    config: SoakConfig
    completed: int = 0
    seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    #: Retries by cause: "goaway-refused", "restart: <ExceptionName>".
    retries: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    connections: int = 0
    restarts: int = 0
    fds_before: int | None = None
    fds_after: int | None = None
    #: The run's sessions and h2 states reachable after close() and a full
    #: collection (must be 0).
    sessions_left: int | None = None

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not self.problems

    def warm_sample(self) -> Sample | None:
        """The first sample after the warm-up.

        The warm-up is 10 % of the requests, and at least two connections'
        worth (two GOAWAYs), since each connection fills h2's table of
        closed streams (hyper keeps 4096) and the allocator's arenas settle
        before memory levels off; never more than half the run.
        """
        cfg = self.config
        warm_up = min(max(cfg.requests // 10, 2 * cfg.goaway_every), cfg.requests // 2)
        warm = [s for s in self.samples if s.done >= warm_up]
        return warm[0] if warm else None

    @property
    def max_dead(self) -> int:
        """The most dead sessions seen in memory at any sample."""
        return max((s.dead for s in self.samples), default=0)

    def report(self) -> str:
        """A plain-text report of the figures and any problems."""
        cfg = self.config
        rate = self.completed / self.seconds if self.seconds else 0.0
        lines = [
            f"soak: {self.completed:,} of {cfg.requests:,} requests in {self.seconds:.1f} s "
            f"({rate:,.0f} req/s), {cfg.threads} threads on one HTTP20Connection",
            f"connections opened by nginx: {self.connections} (GOAWAY every {cfg.goaway_every:,} "
            f"requests, {self.restarts} of {cfg.restarts} restarts)",
            "retries: " + (", ".join(f"{k} x{v}" for k, v in sorted(self.retries.items())) or "none"),
            f"open fds: {self.fds_before} before connecting, {self.fds_after} after close()",
            "samples (requests, seconds, RSS MiB, fds, h2 connection states in memory, "
            "of them dead, Python blocks, MiB the C allocator holds free):",
        ]
        lines += [
            f"  {s.done:>10,} {s.seconds:8.1f} {s.rss_mib:9.1f} {s.fds!s:>5} {s.sessions:>5} {s.dead:>5}"
            f" {s.blocks:>9,} {s.malloc_free_mib:7.1f}"
            for s in self.samples
        ]
        warm = self.warm_sample()
        if warm is not None and self.samples and warm.rss_bytes and self.samples[-1].rss_bytes:
            first, end = self.samples[0], self.samples[-1]
            growth = (end.rss_bytes - warm.rss_bytes) / 2**20 if end.rss_bytes else float("nan")
            lines.append(
                f"RSS: {first.rss_mib:.1f} MiB at the start, {warm.rss_mib:.1f} MiB after warm-up "
                f"({warm.done:,} requests), {end.rss_mib:.1f} MiB at the end "
                f"(growth after warm-up {growth:+.1f} MiB, limit {cfg.rss_growth_limit_mib:g})"
            )
            if warm.malloc_free is not None and end.malloc_free is not None:
                lines.append(
                    f"the C allocator holds {warm.malloc_free_mib:.1f} MiB free after warm-up, "
                    f"{end.malloc_free_mib:.1f} MiB at the end (freed memory it kept: fragmentation)"
                )
        lines.append(
            f"dead sessions in memory: at most {self.max_dead} at a sample (limit {cfg.dead_session_limit}); "
            f"left after close() and a full collection: {self.sessions_left}"
        )
        lines.append("PASS" if self.ok else "FAIL:\n  " + "\n  ".join(self.problems))
        return "\n".join(lines)

"""SendResult: what a send did, summarised; failures are data until you ask to raise."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from pathlib import Path

import polars as pl

from .._errors import DeliveryError
from .._util import render
from ..store import LogStore


@dataclass(frozen=True)
class SendResult:
    """Counts per final state of each dispatch, attempts per outcome and per host.

    ``to_polars()`` reads the run's attempt rows from the log: through the caller's
    LogStore while it is open, else from the file."""

    run_id: str
    log_path: Path
    planned: int
    skipped_delivered: int
    delivered: int
    failed: int
    rehearsed: int  # dispatches logged dry_run (a dry run: nothing sent)
    cancelled: int
    attempts: int
    seconds: float
    by_outcome: dict[str, int] = field(default_factory=dict)
    by_host: pl.DataFrame = field(default_factory=pl.DataFrame)
    failed_ids: tuple[str, ...] = ()
    state: str = "completed"
    paused: int = 0  # dispatches not sent: their host's circuit breaker opened
    superseded: int = 0  # not fired: superseded within the delay (send(..., events=))
    store: InitVar[LogStore | None] = None  # the caller's open store, kept out of the fields
    waiting: int = 0  # retries an earlier run left that are not due yet: not sent
    carried: int = 0  # retries this run leaves due for a later run (a rule's retry: for)
    hosts_paused: tuple[str, ...] = ()  # hosts this run's circuit breaker paused
    exhausted: int = 0  # postbacks that ended failed with no retry left
    resent: int = 0  # delivered postbacks sent again on purpose (backfill --resend-delivered)

    def __post_init__(self, store: LogStore | None) -> None:
        object.__setattr__(self, "_store", store)

    @property
    def has_failures(self) -> bool:
        """Some dispatch ended undelivered (failed, paused, or cancelled with its result
        unknown)."""
        return self.failed > 0 or self.cancelled > 0 or self.paused > 0

    def raise_on_failures(self) -> SendResult:
        """Raise DeliveryError when any dispatch ended undelivered; else return self."""
        if self.has_failures:
            sample = ", ".join(self.failed_ids[:5])
            raise DeliveryError(
                f"{self.failed + self.cancelled + self.paused:,} of "
                f"{self.planned - self.skipped_delivered:,} "
                f"postbacks were not delivered in run {self.run_id} (e.g. {sample}); re-run "
                "send or backfill to retry them"
            )
        return self

    @property
    def attempts_per_second(self) -> float:
        """Attempts per second over the run."""
        return self.attempts / self.seconds if self.seconds > 0 else 0.0

    def to_polars(self) -> pl.DataFrame:
        """This run's attempt rows from the log."""
        store = getattr(self, "_store", None)
        if isinstance(store, LogStore) and not store.closed:
            return store.attempts("run_id = ?", [self.run_id])
        with LogStore(self.log_path, read_only=True) as store:
            return store.attempts("run_id = ?", [self.run_id])

    def summary(self) -> str:
        """One line: the run, its postbacks by final state, attempts, time and rate."""
        todo = self.planned - self.skipped_delivered
        parts = [f"{self.delivered:,} delivered", f"{self.failed:,} failed"]
        if self.rehearsed:
            parts.append(f"{self.rehearsed:,} dry-run")
        if self.cancelled:
            parts.append(f"{self.cancelled:,} cancelled")
        if self.paused:
            paused_hosts = self._paused_hosts()
            parts.append(f"{self.paused:,} paused (circuit breaker: {paused_hosts})")
        skipped = (
            f"; {self.skipped_delivered:,} already delivered were skipped"
            if self.skipped_delivered
            else ""
        )
        if self.waiting:
            skipped += f"; {self.waiting:,} retries not due yet wait for a later run"
        if self.carried:
            skipped += f"; {self.carried:,} retries left due for a later run"
        if self.resent:
            skipped += f"; {self.resent:,} delivered postbacks re-sent on purpose"
        if self.superseded:
            skipped += (
                f"; {self.superseded:,} superseded within their delay were not fired "
                "(the transaction reached another status)"
            )
        return (
            f"run {self.run_id} ({self.state}): {todo:,} postbacks, {', '.join(parts)} in "
            f"{self.attempts:,} attempts, {self.seconds:.1f}s "
            f"({self.attempts_per_second:,.0f}/s){skipped}"
        )

    def _paused_hosts(self) -> str:
        if "paused" not in self.by_host.columns:
            return "?"
        hosts = self.by_host.filter(pl.col("paused") > 0)["host"].to_list()
        return ", ".join(hosts[:5]) + (" …" if len(hosts) > 5 else "")

    def __str__(self) -> str:
        lines = [self.summary()]
        if self.by_outcome:
            lines.append(
                "  attempts by outcome: "
                + ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_outcome.items()))
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        outcomes = pl.DataFrame(
            {"outcome": list(self.by_outcome), "attempts": list(self.by_outcome.values())},
            schema={"outcome": pl.String, "attempts": pl.Int64},
        )
        return render(
            "Send result",
            self.summary(),
            [("Attempts by outcome", outcomes), ("Per host", self.by_host)],
        )

"""backfill: plan -> reconcile -> send only missed + failed -> log. Safe to repeat."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import polars as pl

from .._errors import InputError
from .._util import When, blocking, parse_when, render
from ..plan import Plan, build_plan
from ..sending import (
    Breaker,
    Clock,
    Engine,
    LogSource,
    Retry,
    SendOptions,
    SendResult,
    pick_options,
    run_send,
)
from ..store import LogStore, open_log, settle_journals
from ._reconcile import Reconciliation, reconcile_store

#: backfill's defaults: send's, except a short retry schedule (0.5 s, 2 s, 5 s) that stops
#: after a minute. A backfill is usually run by someone waiting for it (a notebook cell, a
#: terminal); a partner that is down leaves its postbacks failed for a later backfill
#: instead of holding the cell for hours. Pass ``retry=``/``max_duration=`` for longer.
BACKFILL_DEFAULTS = SendOptions(retry=Retry.short(), max_duration=timedelta(minutes=1))
_D = BACKFILL_DEFAULTS


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill found (``reconciliation``, before it sent anything), what it picked
    (``to_send``: the missed and failed dispatches of the window), what sending them did
    (``sent``) and, per rule, what this backfill delivered (``outcomes``)."""

    reconciliation: Reconciliation
    to_send: Plan
    sent: SendResult | None
    #: per rule: postbacks this backfill sent, and how many of them ended delivered
    outcomes: pl.DataFrame | None = None

    @property
    def has_failures(self) -> bool:
        """Some postback it sent ended undelivered."""
        return self.sent is not None and self.sent.has_failures

    def would_send(self) -> pl.DataFrame:
        """Per rule and host: how many postbacks this backfill sends (or would send)."""
        return self.to_send.frame.group_by("rule", "host").len("postbacks").sort("rule", "host")

    def headline(self) -> str:
        """One line: what this backfill sent and delivered, and where the plan stands now."""
        n = len(self.to_send)
        sent = self.sent
        if sent is None or sent.dry_run:
            return f"backfill would send {n:,} postbacks (missed + failed); dry run, none sent"
        before = self.reconciliation.totals["delivered"]
        total = self.reconciliation.dispatches.height
        return (
            f"backfill sent {n - sent.cancelled:,} of {n:,} postbacks (missed + failed): "
            f"{sent.delivered:,} delivered, {sent.failed:,} failed"
            + (f", {sent.cancelled:,} cancelled" if sent.cancelled else "")
            + f"; now {before + sent.delivered:,} of {total:,} dispatches are delivered "
            f"(before: {before:,})"
        )

    def __str__(self) -> str:
        lines = [str(self.reconciliation), ""]
        n = len(self.to_send)
        verb = "sent" if self.sent is not None and self.sent.dry_run == 0 else "would send"
        lines.append(f"backfill {verb} {n:,} postbacks (missed + failed):")
        lines += [f"  {r}  {h}: {c:,}" for r, h, c in self.would_send().iter_rows()]
        if self.sent is None or self.sent.dry_run:
            lines.append("example requests (one per rule):")
            lines += [f"  {r}: {m} {u}" for r, m, u in self.examples().iter_rows()]
        if self.sent is not None:
            lines.append(str(self.sent))
            if not self.sent.dry_run:
                lines.append(self.headline())
        return "\n".join(lines)

    def examples(self) -> pl.DataFrame:
        """One postback per rule as it goes on the wire (method and URL, secrets as
        ``{env:NAME}``): what a dry run would have sent."""
        return (
            self.to_send.frame.unique("rule", keep="first", maintain_order=True)
            .select("rule", "method", "url")
            .sort("rule")
        )

    def _repr_html_(self) -> str:
        tables = []
        if self.outcomes is not None and self.outcomes.height:
            tables.append(("Delivered by this backfill, per rule", self.outcomes))
        if self.sent is None or self.sent.dry_run:
            tables.append(("Example requests, one per rule", self.examples()))
        tables += [
            ("To send, per rule and host", self.would_send()),
            ("Before the backfill: reconciliation per rule", self.reconciliation.counts()),
        ]
        return render(
            "Backfill",
            f"{self.headline()}. Before it: {self.reconciliation.summary()}",
            tables,
        )


def _outcomes(store: LogStore, sent: SendResult) -> pl.DataFrame:
    """Per rule: the postbacks a run sent and how they ended (delivered or not)."""
    return store.sql(
        """
        WITH d AS (
            SELECT rule, dispatch_id, bool_or(outcome = 'delivered') AS ok
            FROM postback_log WHERE run_id = ? GROUP BY ALL)
        SELECT rule, count(*) AS sent, count(*) FILTER (WHERE ok) AS delivered,
            count(*) FILTER (WHERE NOT ok) AS undelivered
        FROM d GROUP BY rule ORDER BY rule""",
        [sent.run_id],
    )


async def backfill(
    source: Any,
    /,
    log: LogSource = None,
    *,
    rules: Any = None,
    since: When = None,
    until: When = None,
    concurrency: int = _D.concurrency,
    per_host: int = _D.per_host,
    rate: float | None = _D.rate,
    retry: Retry = _D.retry,
    dry_run: bool = _D.dry_run,
    speed: float | None = _D.speed,
    ignore_due: bool = _D.ignore_due,
    max_duration: timedelta | float | None = _D.max_duration,
    progress: bool = _D.progress,
    clock: Clock = _D.clock,
    transport: httpx.AsyncBaseTransport | None = _D.transport,
    environ: Mapping[str, str] | None = _D.environ,
    engine: Engine = _D.engine,
    allow_hosts: Sequence[str] | None = _D.allow_hosts,
    deny_private: bool = _D.deny_private,
    breaker: Breaker = _D.breaker,
    workers: int | None = _D.workers,
    options: SendOptions | None = None,
) -> BackfillResult:
    """Send every postback of a plan that the log does not show as delivered: the missed
    and failed dispatches due in ``[since, until)`` and not in the future. Running it
    twice sends nothing the second time.

    ``backfill(plan, log)`` takes a Plan; ``backfill(events, log, rules=rules)`` builds the
    plan first (``events``/``rules``: anything ``build_plan`` takes). The send options are
    those of ``send`` (see ``SendOptions``), but retries default to the short schedule for
    at most a minute (``BACKFILL_DEFAULTS``); each run gets the full retry schedule.
    """
    opts = pick_options(options, locals(), BACKFILL_DEFAULTS)
    if isinstance(source, Plan):
        if rules is not None:
            raise InputError(
                "backfill got a Plan and rules=: a plan already has its rules; pass rules= "
                "only with events"
            )
        plan = source
    elif rules is None:
        raise InputError(
            f"backfill needs a Plan, or events with rules= (got a {type(source).__name__} "
            "without rules)"
        )
    else:
        plan = build_plan(source, rules)
    lo, hi = parse_when(since, name="since"), parse_when(until, name="until")
    window = plan.filter(pl.col("due_at") <= datetime.now(UTC))
    if lo is not None:
        window = window.filter(pl.col("due_at") >= lo)
    if hi is not None:
        window = window.filter(pl.col("due_at") < hi)
    store, owned = open_log(log)
    try:
        with store.sending("this backfill"):
            settle_journals(store)  # a dead send's attempts count before anything is decided
            rec = reconcile_store(window.frame, store, since=lo, until=hi)
            # reconcile keeps the plan's rows in order: its states are a mask over the window
            todo = window.filter(rec.dispatches["state"].is_in(["missed", "failed"]))
            sent, outcomes = None, None
            if len(todo) or not opts.dry_run:
                # the whole window goes to the sender, which skips what the log shows
                # delivered by the same linking as reconcile (and warns of imported rows
                # linking nowhere)
                sent = await run_send(
                    window.frame, store, opts, kind="backfill", keep_store=not owned, held=True
                )
                if not opts.dry_run:
                    outcomes = _outcomes(store, sent)
        return BackfillResult(rec, todo, sent, outcomes)
    finally:
        if owned:
            store.close()


backfill_sync = blocking(
    backfill,
    """``backfill`` for scripts; also works inside a running notebook loop (it then runs on
    its own loop in a worker thread). Same parameters as ``backfill``.""",
)

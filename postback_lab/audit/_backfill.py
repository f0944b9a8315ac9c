"""backfill: plan -> reconcile -> send only missed + failed -> log. Safe to repeat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from ..plan import Plan, build_plan
from ..send import SendResult, send
from ..store import LogStore, open_log
from ._reconcile import Reconciliation, reconcile_store


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill found and what it sent."""

    reconciliation: Reconciliation
    to_send: Plan
    sent: SendResult | None

    @property
    def has_failures(self) -> bool:
        return self.sent is not None and self.sent.has_failures

    def would_send(self) -> pl.DataFrame:
        """Per rule and host: how many postbacks this backfill sends (or would send)."""
        return self.to_send.frame.group_by("rule", "host").len("postbacks").sort("rule", "host")

    def __str__(self) -> str:
        lines = [str(self.reconciliation), ""]
        n = len(self.to_send)
        verb = "sent" if self.sent is not None and self.sent.dry_run == 0 else "would send"
        lines.append(f"backfill {verb} {n:,} postbacks (missed + failed):")
        lines += [f"  {r}  {h}: {c:,}" for r, h, c in self.would_send().iter_rows()]
        if self.sent is not None:
            lines.append(str(self.sent))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from ..notebook._html import render

        return render(
            "report.html.j2",
            title="Backfill",
            summary=str(self).splitlines()[0],
            tables=[
                ("To send, per rule and host", self.would_send()),
                ("Reconciliation per rule", self.reconciliation.counts()),
            ],
        )


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    from ..events._parse import timestamp

    parsed = pl.select(timestamp(pl.lit(str(value)), pl.String())).item()
    if parsed is None:
        from .._errors import InputError

        raise InputError(
            f"{value!r} is not a date or time; write e.g. 2026-11-01 or 2026-11-01T12:00:00Z"
        )
    return parsed


async def backfill(
    events: Any,
    rules: Any,
    log: LogStore | str | None = None,
    *,
    since: Any = None,
    until: Any = None,
    dry_run: bool = False,
    **send_options: Any,
) -> BackfillResult:
    """Send every postback of ``rules`` over ``events`` that the log does not show as
    delivered (due in ``[since, until)`` and not in the future). Running it twice sends
    nothing the second time."""
    plan = events if isinstance(events, Plan) and rules is None else build_plan(events, rules)
    lo, hi = _when(since), _when(until)
    now = datetime.now(UTC)
    window = plan.filter(pl.col("due_at") <= now)
    if lo is not None:
        window = window.filter(pl.col("due_at") >= lo)
    if hi is not None:
        window = window.filter(pl.col("due_at") < hi)
    store, owned = open_log(log)
    try:
        rec = reconcile_store(window.frame, store)
        # reconcile keeps the plan's rows in order: its states are a mask over the window
        todo = window.filter(rec.dispatches["state"].is_in(["missed", "failed"]))
        sent = None
        if len(todo) or not dry_run:
            send_options.setdefault("progress", True)
            sent = await send(todo, store, dry_run=dry_run, kind="backfill", **send_options)
        return BackfillResult(rec, todo, sent)
    finally:
        if owned:
            store.close()


def backfill_sync(*args: Any, **kwargs: Any) -> BackfillResult:
    """``backfill`` for scripts; also works inside a running notebook loop."""
    from ..send._sender import run_sync

    return run_sync(backfill(*args, **kwargs))

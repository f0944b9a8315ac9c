"""backfill: plan -> reconcile -> send only missed + failed -> log. Safe to repeat."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import httpx
import polars as pl

from .._errors import InputError, StoreError, UnlinkedImportsError, did_you_mean
from .._util import When, blocking, parse_when, render
from ..events import EventsSource
from ..plan import Plan, build_plan
from ..rules import RulesSource
from ..sending import (
    Breaker,
    Clock,
    Engine,
    LogSource,
    Retry,
    SendOptions,
    SendResult,
    Timing,
    pick_options,
    run_send,
    with_goals,
    with_rule_policies,
)
from ..store import LogStore, describe, log_writer, open_log, settle_journals, unlinked_rows
from ._reconcile import Reconciliation, reconcile_store
from ._replay import Targets, check_resend

#: backfill's defaults: send's, except a short retry schedule (0.5 s, 2 s, 5 s) that stops
#: after a minute. A backfill is usually run by someone waiting for it (a notebook cell, a
#: terminal); a partner that is down leaves its postbacks failed for a later backfill
#: instead of holding the cell for hours. Pass ``retry=``/``max_duration=`` for longer.
#: ``postback-lab backfill`` uses it too (without ``--retries``/``--retry-for``).
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
    #: imported rows that link to no dispatch but could be deliveries of ``to_send``
    #: (a real backfill stops on them unless ``allow_unlinked``)
    unlinked: pl.DataFrame | None = None
    #: of ``to_send``, the delivered postbacks re-sent on purpose (``resend_delivered``)
    resend: int = 0
    #: of the postbacks this backfill delivered, those that were not delivered before it
    #: (None: all of them, as without ``resend_delivered``)
    newly_delivered: int | None = None

    @property
    def has_failures(self) -> bool:
        """Some postback it sent ended undelivered."""
        return self.sent is not None and self.sent.has_failures

    @property
    def _newly(self) -> int:
        sent = self.sent
        delivered = sent.delivered if sent is not None else 0
        return delivered if self.newly_delivered is None else self.newly_delivered

    @property
    def _what(self) -> str:
        extra = f" + {self.resend:,} delivered, re-sent on purpose" if self.resend else ""
        return f"missed + failed{extra}"

    def would_send(self) -> pl.DataFrame:
        """Per rule and host: how many postbacks this backfill sends (or would send)."""
        return self.to_send.frame.group_by("rule", "host").len("postbacks").sort("rule", "host")

    def headline(self) -> str:
        """One line: what this backfill sent and delivered, and where the plan stands now."""
        n = len(self.to_send)
        sent = self.sent
        if sent is None or sent.rehearsed:
            return f"backfill would send {n:,} postbacks ({self._what}); dry run, none sent"
        before = self.reconciliation.totals["delivered"]
        total = self.reconciliation.dispatches.height
        return (
            f"backfill sent {n - sent.cancelled:,} of {n:,} postbacks ({self._what}): "
            f"{sent.delivered:,} delivered, {sent.failed:,} failed"
            + (f", {sent.cancelled:,} cancelled" if sent.cancelled else "")
            + f"; now {before + self._newly:,} of {total:,} dispatches are delivered "
            f"(before: {before:,})"
        )

    def __str__(self) -> str:
        lines = [str(self.reconciliation), ""]
        n = len(self.to_send)
        verb = "sent" if self.sent is not None and self.sent.rehearsed == 0 else "would send"
        lines.append(f"backfill {verb} {n:,} postbacks ({self._what}):")
        lines += [f"  {r}  {h}: {c:,}" for r, h, c in self.would_send().iter_rows()]
        if self.unlinked is not None and self.unlinked.height:
            lines.append(unlinked_warning(self.unlinked, self.to_send))
        if self.sent is None or self.sent.rehearsed:
            lines.append("example requests (one per rule):")
            lines += [f"  {r}: {m} {u}" for r, m, u in self.examples().iter_rows()]
        if self.sent is not None:
            lines.append(str(self.sent))
            if not self.sent.rehearsed:
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
        if self.sent is None or self.sent.rehearsed:
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
    plan_or_events: Plan | EventsSource,
    /,
    log: LogSource = None,
    *,
    rules: RulesSource | None = None,
    since: When = None,
    until: When = None,
    concurrency: int = _D.concurrency,
    per_host: int = _D.per_host,
    rate: float | None = _D.rate,
    retry: Retry = _D.retry,
    dry_run: bool = _D.dry_run,
    timing: Timing = _D.timing,
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
    rule_retry: Mapping[str, Retry] | None = _D.rule_retry,
    host_breaker: Mapping[str, Breaker] | None = _D.host_breaker,
    notify: Sequence[tuple[str, str | None]] = _D.notify,
    options: SendOptions | None = None,
    allow_unlinked: bool = False,
    rule: Iterable[str] | str | None = None,
    publisher: Iterable[object] | str | int | None = None,
    offer: Iterable[object] | str | int | None = None,
    host: Iterable[str] | str | None = None,
    status_code: Iterable[object] | str | int | None = None,
    resend_delivered: int | None = None,
    reason: str | None = None,
    announce: Callable[[str], None] | None = None,
) -> BackfillResult:
    """Send every postback of a plan that the log does not show as delivered: the missed
    and failed dispatches due in ``[since, until)`` and not in the future. Running it
    twice sends nothing the second time.

    ``backfill(plan, log)`` takes a Plan; ``backfill(events, log, rules=rules)`` builds the
    plan first (``events``/``rules``: anything ``build_plan`` takes). The send options are
    those of ``send`` (see ``SendOptions``), but retries default to the short schedule for
    at most a minute (``BACKFILL_DEFAULTS``); each run gets the full retry schedule.

    Before sending, a backfill whose log holds imported rows that link to no dispatch but
    could be deliveries of what it would send (the same rule or no rule, fired after those
    conversions) stops with ``UnlinkedImportsError`` (CLI exit 1) naming counts and
    examples: an unlinked delivery means it cannot tell what was delivered, and sending
    could pay twice. ``allow_unlinked=True`` (``--allow-unlinked``) sends anyway.

    Targeted replay: ``rule``, ``publisher``, ``offer``, ``host`` (a value or a list each)
    and ``status_code`` (``5xx``, ``429``, ``500-504``: each dispatch's last answer, the
    reconciliation's ``last_status_code``) narrow what is sent. ``resend_delivered=N``
    with a ``reason`` also re-sends the delivered postbacks that match, on purpose: N must
    equal how many match (a dry run shows it), and the reason is kept on the run.
    ``announce(line)`` is told how many postbacks go before any is sent.
    """
    replay = Targets.of(
        rule=rule, publisher=publisher, offer=offer, host=host, status_code=status_code
    )
    check_resend(0 if resend_delivered is None else resend_delivered, resend_delivered, reason)
    opts = pick_options(options, locals(), BACKFILL_DEFAULTS)
    if isinstance(plan_or_events, Plan):
        if rules is not None:
            raise InputError(
                "backfill got a Plan and rules=: a plan already has its rules; pass rules= "
                "only with events"
            )
        plan = plan_or_events
    elif rules is None:
        raise InputError(
            "backfill needs a Plan, or events with rules= (got a "
            f"{type(plan_or_events).__name__} without rules)"
        )
    else:
        plan = build_plan(plan_or_events, rules)
    plan = Plan(with_goals(plan), plan.rules, plan.events)
    names = plan.rules.names if len(plan.rules) else plan.frame["rule"].unique().to_list()
    for name in replay.rule or ():  # a misspelt rule would quietly match nothing
        if name not in names:
            raise InputError(f"rule={name!r}: no such rule in the plan{did_you_mean(name, names)}")
    lo, hi = parse_when(since, name="since"), parse_when(until, name="until")
    due = plan.filter(pl.col("due_at") <= opts.clock.now())  # the injected clock
    window = due
    if lo is not None:
        window = window.filter(pl.col("due_at") >= lo)
    if hi is not None:
        window = window.filter(pl.col("due_at") < hi)
    if replay.narrowed:
        window = window.filter(replay.plan_mask(window.frame))
    opts = with_rule_policies(opts, plan)
    store, owned = _existing_log(log)
    try:
        with log_writer(store).sending("this backfill"):
            settle_journals(store)  # a dead send's attempts count before anything is decided
            # imported rows link against every due dispatch, not only the window's: a
            # delivery of one outside the window (or the replay's filters) is no stray,
            # and never counts for a dispatch inside it
            whole = None if window is due else due.frame
            rec = reconcile_store(window.frame, store, since=lo, until=hi, whole=whole)
            # reconcile keeps the plan's rows in order: its states are a mask over the window
            state = rec.dispatches["state"]
            codes = replay.code_mask(rec.dispatches["last_status_code"])
            todo = window.filter(state.is_in(["missed", "failed"]) & codes)
            linked = rec.linked
            unlinked = (
                unlinked_rows(linked, todo.frame) if linked is not None and len(todo) else None
            )
            if unlinked is not None and unlinked.height and not (allow_unlinked or opts.dry_run):
                raise UnlinkedImportsError(unlinked_warning(unlinked, todo, stopped=True))
            again = window.filter((state == "delivered") & codes)
            resend: frozenset[str] = frozenset()
            if resend_delivered is not None:
                check_resend(len(again), resend_delivered, reason)
                resend = frozenset(again.frame["dispatch_id"].to_list())
                todo = Plan(pl.concat([todo.frame, again.frame]), plan.rules, plan.events)
            if announce is not None:
                announce(_announcement(replay, len(todo), len(resend), opts.dry_run))
            sent, outcomes, newly = None, None, None
            if len(todo) or not opts.dry_run:
                # without a status-code filter or a re-send the whole window goes to the
                # sender, which skips what the log shows delivered by the same linking as
                # reconcile (and warns of imported rows linking nowhere)
                chosen = todo.frame if replay.status_code or resend else window.frame
                sent = await run_send(
                    chosen,
                    store,
                    opts,
                    kind="backfill",
                    keep_store=not owned,
                    held=True,
                    resend=resend,
                    reason=reason if resend else None,
                )
                if not opts.dry_run:
                    outcomes = _outcomes(store, sent)
                    if resend:
                        newly = _newly_delivered(store, sent.run_id, resend)
        return BackfillResult(
            rec, todo, sent, outcomes, unlinked=unlinked, resend=len(resend), newly_delivered=newly
        )
    finally:
        if owned:
            store.close()


def _existing_log(log: LogSource) -> tuple[LogStore, bool]:
    """The log to backfill, which must exist: backfill sends what the history of earlier
    sends lacks, and a missing log (a typo, the wrong folder) would re-send everything."""
    try:
        return open_log(log, "update")
    except StoreError as exc:
        if not str(exc).startswith("no such log"):
            raise
        raise StoreError(
            f"{exc}; backfill sends what the log of earlier sends lacks. To send a plan with "
            "no history, use send (postback-lab send PLAN --db LOG)"
        ) from None


def _newly_delivered(store: LogStore, run_id: str, resend: frozenset[str]) -> int:
    """Dispatches a run delivered that were not delivered before it (not re-sent ones)."""
    again = pl.DataFrame({"dispatch_id": list(resend)}, schema={"dispatch_id": pl.String})
    return int(
        store.sql(
            "SELECT count(DISTINCT dispatch_id) FROM postback_log WHERE run_id = ? AND "
            "outcome = 'delivered' AND dispatch_id NOT IN (SELECT dispatch_id FROM again)",
            [run_id],
            again=again,
        ).item()
    )


def _announcement(replay: Targets, n: int, resend: int, dry_run: bool) -> str:
    """The line said before a backfill sends: how many postbacks match, which filters."""
    verb = "would send" if dry_run else "sending"
    what = f"{n:,} postbacks (missed + failed"
    what += f", {resend:,} delivered re-sent on purpose)" if resend else ")"
    return f"backfill: {what} match {replay.describe()}; {verb} them"


backfill_sync = blocking(
    backfill,
    """``backfill`` for scripts; also works inside a running notebook loop (it then runs on
    its own loop in a worker thread). Same parameters as ``backfill``.""",
)


def unlinked_warning(unlinked: pl.DataFrame, todo: Plan, *, stopped: bool = False) -> str:
    """The paragraph on imported rows that may be deliveries of what a backfill sends:
    their count per rule, the first examples and what to do."""
    n = unlinked.height
    per_rule = unlinked.group_by("rule").len().sort("len", descending=True, nulls_last=True)
    counts = ", ".join(
        f"{n_:,} {'without a rule' if r is None else f'of rule {r!r}'}"
        for r, n_ in per_rule.iter_rows()
    )
    head = (
        f"backfill stopped before sending: {n:,} imported attempt{'s' if n != 1 else ''} "
        if stopped
        else f"warning: {n:,} imported attempt{'s' if n != 1 else ''} "
    )
    lines = [
        head + f"({counts}) link to no dispatch but could be deliveries of the "
        f"{len(todo):,} postbacks it would send, so it cannot tell what was delivered:"
    ]
    rules = todo.frame["rule"].unique().sort().to_list()
    for r in unlinked.head(EXAMPLES).iter_rows(named=True):
        lines.append("  " + describe(r, rules))
    if n > EXAMPLES:
        lines.append(f"  ... and {n - EXAMPLES:,} more")
    lines.append(
        "  import the log with the rule of its rows (--rule, --rules, or a postback-name "
        "column) and its conversion or click ids, remove a wrong import (postback-lab "
        "import-log --undo RUN_ID), or send anyway with allow_unlinked=True "
        "(--allow-unlinked)"
    )
    return "\n".join(lines)


EXAMPLES = 5

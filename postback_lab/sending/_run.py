"""A send from start to end: skip what was delivered, check secrets and hosts, number
attempts after the log's, run one scheduler loop per host, record the run, summarise."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from datetime import datetime, timedelta
from typing import Any

import duckdb
import httpx
import polars as pl

from .._errors import InputError, StoreError
from .._util import blocking, first_line
from ..events import EventsSource
from ..plan import Plan, PlanSource, read_plan
from ..store import (
    LogSource,
    LogStore,
    due_retries,
    log_writer,
    open_log,
    pause_host,
    paused_hosts,
    probe_failed,
    resume_host,
    save_retries,
    set_run_reason,
    tag_run,
)
from ._alerts import exhausted_alert, host_paused_alert, post_alert
from ._breaker import Breaker, rule_breakers
from ._dry import dry_run
from ._guard import check_allowlist, masked_urls
from ._http import Engine
from ._limits import Clock
from ._options import DEFAULTS, SendOptions, Timing
from ._progress import Bar, progress_bar
from ._recheck import Recheck
from ._request import check_env
from ._result import SendResult
from ._retry import Retry, rule_policies
from ._scheduler import Run, host_loop, until_done_or_broken
from ._workers import send_with_workers, shards, worker_count
from ._writer import LogWriter

_D = DEFAULTS


def _to_stderr(result: SendResult) -> None:
    print(f"send cancelled: {result.summary()}", file=sys.stderr)


_cancel_report: list[Callable[[SendResult], None]] = [_to_stderr]


def on_cancel(report: Callable[[SendResult], None] | None) -> None:
    """How a cancelled run (Ctrl-C, a notebook's Interrupt) is reported: by ``report``
    (IPython folds it into its one-line interrupt message), or on stderr (None)."""
    _cancel_report[0] = report or _to_stderr


async def send(
    plan: PlanSource,
    log: LogSource = None,
    *,
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
    events: EventsSource | Callable[[], EventsSource] | None = None,
) -> SendResult:
    """Fire ``plan`` and log every attempt to ``log`` (a LogStore or DuckDB path).

    Dispatches already delivered are skipped; nothing fires before ``due_at`` unless
    ``timing`` says otherwise (``"now"``, ``Replay(speed)``); every attempt is a log row.
    The keyword options are those of ``SendOptions`` (see there); ``options=`` passes a
    prepared SendOptions instead (then no keyword option may be given with it).
    ``events`` (fresh events: anything ``read_events`` takes, or a function returning
    them): a dispatch of a delayed rule whose transaction reached another status within
    the delay is not fired (firing rule 7), checked against the events read again just
    before each due batch fires (counted in ``SendResult.superseded``; such a send runs
    in this process).
    """
    opts = pick_options(options, locals())
    p = plan if isinstance(plan, Plan) else read_plan(plan)
    opts = with_rule_policies(opts, p)
    frame = with_goals(p)
    store, owned = open_log(log)
    try:
        return await run_send(
            frame,
            store,
            opts,
            kind="send",
            keep_store=not owned,
            recheck=None if events is None else Recheck(events, frame),
        )
    finally:
        if owned:
            store.close()


send_sync = blocking(
    send,
    """``send`` for scripts; also works inside a running notebook loop (it then runs on its
    own loop in a worker thread). Same parameters as ``send``.""",
)


def with_goals(plan: Plan) -> pl.DataFrame:
    """The plan frame with the ``goal`` of each dispatch's event when the plan has its
    events (a plan read from a file has none: the log's goal stays empty)."""
    frame = plan.frame
    ev = plan.events.frame if plan.events is not None else None
    if ev is None or "goal" not in ev.columns or "goal" in frame.columns:
        return frame
    goals = (
        ev.select("transaction_id", "status", "goal")
        .filter(pl.col("goal").is_not_null())
        .unique(["transaction_id", "status"], keep="first")
    )
    return frame.join(
        goals, on=["transaction_id", "status"], how="left", nulls_equal=True, maintain_order="left"
    )


def with_rule_policies(options: SendOptions, plan: Plan) -> SendOptions:
    """``options`` with the ``retry:`` schedules and ``pause:`` thresholds of the plan's
    rules, unless the caller gave ``rule_retry``/``host_breaker`` itself."""
    if not len(plan.rules):
        return options
    if options.rule_retry is None and (policies := rule_policies(plan.rules)):
        options = replace(options, rule_retry=policies)
    if options.host_breaker is None and (
        breakers := rule_breakers(plan.rules, plan.frame, options.breaker)
    ):
        options = replace(options, host_breaker=breakers)
    return options


def pick_options(
    given: SendOptions | None, keywords: Mapping[str, Any], defaults: SendOptions = DEFAULTS
) -> SendOptions:
    """``given`` when the caller passed ``options=`` (then every keyword option must be
    left at its default, or an InputError names the ones given: they would be ignored),
    else SendOptions built from ``keywords`` (a ``send``-like function's ``locals()``: its
    keywords are named like the fields)."""
    if given is None:
        return SendOptions(**{f.name: keywords[f.name] for f in fields(SendOptions)})
    if not isinstance(given, SendOptions):
        raise InputError(f"options={given!r} must be a SendOptions")
    extra = [
        f.name
        for f in fields(SendOptions)
        if not _unchanged(keywords[f.name], getattr(defaults, f.name))
    ]
    if extra:
        raise InputError(
            f"options= was given with {', '.join(k + '=' for k in extra)}: pass the send "
            "options either as options= or as keywords, not both (e.g. "
            f"options=dataclasses.replace(options, {extra[0]}=...))"
        )
    return given


def _unchanged(value: object, default: object) -> bool:
    """A keyword left at its default (compared by identity first: a transport, a clock)."""
    if value is default:
        return True
    try:
        return bool(value == default)
    except Exception:  # a value that cannot compare is not the default
        return False


async def run_send(
    frame: pl.DataFrame,
    store: LogStore,
    options: SendOptions,
    *,
    kind: str,
    keep_store: bool = False,
    held: bool = False,
    recheck: Recheck | None = None,
    resend: frozenset[str] = frozenset(),
    reason: str | None = None,
) -> SendResult:
    """Send the dispatches of a plan frame that ``store`` does not show delivered, as a
    run of ``kind`` (``send`` or ``backfill``). ``keep_store``: the caller keeps ``store``
    open, and the result reads its rows through it. ``held``: the caller already holds
    the store for this run (``LogStore.sending``); else it is held here. ``recheck``:
    firing rule 7 checked against fresh events before each due batch fires. ``resend``:
    delivered dispatches to send again on purpose, with the operator's ``reason`` (kept
    on the run)."""
    if held:
        return await _run(frame, store, options, kind, keep_store, recheck, resend, reason)
    with log_writer(store).sending(f"this {kind}"):
        return await _run(frame, store, options, kind, keep_store, recheck, resend, reason)


async def _run(
    frame: pl.DataFrame,
    store: LogStore,
    options: SendOptions,
    kind: str,
    keep_store: bool,
    recheck: Recheck | None,
    resend: frozenset[str] = frozenset(),
    reason: str | None = None,
) -> SendResult:
    started = time.perf_counter()
    log_writer(store).recover_inflight()
    frame = frame.unique("dispatch_id", keep="first", maintain_order=True)
    if frame["host"].str.contains("@", literal=True).any():  # a plan written by hand
        frame = frame.with_columns(pl.col("host").str.replace(r"^[^@]*@", ""))
    planned = frame.height
    delivered = store.delivered_ids(frame) - resend
    todo = frame.filter(~pl.col("dispatch_id").is_in(list(delivered))) if delivered else frame
    now = options.clock.now()
    # retries an earlier run left: those due now continue their schedule, the others wait
    carried = due_retries(store, todo["dispatch_id"]) if todo.height else {}
    waiting = {d for d, r in carried.items() if r.due_at > now and not options.fire_now}
    if waiting:
        todo = todo.filter(~pl.col("dispatch_id").is_in(list(waiting)))
    secrets = check_env(todo, options.environ) if not options.dry_run else {}
    check_allowlist(todo["host"].unique().to_list(), options.allow_hosts)
    last = store.last_attempts(todo["dispatch_id"]) if todo.height else {}
    todo = todo.with_columns(masked_urls(pl.col("url")).alias("log_url"))
    run_id = log_writer(store).start_run(
        "dry_run" if options.dry_run else kind, planned, planned - todo.height - len(waiting)
    )
    if reason is not None:
        set_run_reason(store, run_id, reason)
    window = options.retry_window
    pauses = {} if options.dry_run else paused_hosts(store, todo["host"].unique().to_list())
    run = Run(
        options=options,
        writer=LogWriter(log_writer(store), run_id, options.dry_run),
        secrets=secrets,
        deadline=now + window if window is not None else None,
        bar=_progress_bar(todo.height, options.progress),
        recheck=None if options.dry_run else recheck,
        held={h: (p, p.cooled(now, options.breaker_of(h).cool_down)) for h, p in pauses.items()},
        resumed={d: r for d, r in carried.items() if d not in waiting},
    )
    origin = frame["due_at"].min()
    hosts = todo["host"].n_unique()
    one = options.dry_run or run.recheck is not None  # the re-check runs in this process
    workers = 1 if one else worker_count(options, hosts, rows=todo.height)
    loops = []
    for (host,), part in (
        []
        if options.dry_run or workers > 1  # see _dry, _workers
        else todo.sort("due_at", maintain_order=True).group_by("host", maintain_order=True)
    ):
        dues = _effective_due(
            part["due_at"],
            origin if isinstance(origin, datetime) else None,
            now,
            options.replay_speed,
            options.fire_now or options.dry_run,
        )
        loops.append(asyncio.create_task(host_loop(run, str(host), part, dues, last)))
    if options.dry_run and recheck is not None:  # a dry run shows what would be skipped
        later = recheck.superseded(todo["dispatch_id"].to_list())
        todo = todo.filter(~pl.col("dispatch_id").is_in(list(later)))
        run.final["superseded"] = len(later)
    state = "completed"
    try:
        if options.dry_run:
            _dry_run(store, run_id, todo, last, now, run)
        elif workers > 1:
            due = _effective_due(
                todo["due_at"],
                origin if isinstance(origin, datetime) else None,
                now,
                options.replay_speed,
                options.fire_now,
            )
            ordered = todo.with_columns(due.alias("__due")).sort("due_at", maintain_order=True)
            gone = await send_with_workers(store, run, run_id, shards(ordered, workers), last)
            if gone:
                state = "cancelled"
                print(
                    f"{gone} send worker(s) stopped unexpectedly; their completed attempts "
                    "were recovered from their journals: run again to send the rest",
                    file=sys.stderr,
                )
        else:
            await until_done_or_broken(loops, run)
    except BaseException:
        state = "cancelled"
        raise
    finally:
        for t in [*loops, *run.in_flight]:
            t.cancel()
        await asyncio.gather(*loops, *run.in_flight, return_exceptions=True)
        run.writer.flush()
        if run.writer.error is not None:  # also when the last batch could not be appended
            state = "failed"
        if run.bar is not None:
            run.bar.close()
        _finish(store, run_id, state, run)
        if not options.dry_run:  # rehearsal rows stay untagged: a big dry run stays quick
            with contextlib.suppress(StoreError):
                tag_run(store, run_id, todo)
            _keep_health(store, run_id, run)
        result = SendResult(
            run_id=run_id,
            log_path=store.path,
            planned=planned,
            skipped_delivered=planned - todo.height - len(waiting),
            delivered=run.final["delivered"],
            failed=run.final["failed"],
            rehearsed=run.final["dry_run"],
            cancelled=run.final["cancelled"]
            + (todo.height - sum(run.final.values()) if state != "completed" else 0),
            attempts=run.attempts,
            seconds=time.perf_counter() - started,
            by_outcome=dict(run.by_outcome),
            by_host=_host_frame(run.host_stats),
            failed_ids=tuple(run.failed_ids),
            state=state,
            paused=run.final["paused"],
            superseded=run.final["superseded"],
            store=store if keep_store else None,
            waiting=len(waiting),
            carried=len(run.carry),
            hosts_paused=tuple(sorted(run.opened)),
            exhausted=sum(run.exhausted.values()),
            resent=len(resend & set(todo["dispatch_id"].to_list())) if resend else 0,
        )
        if state == "cancelled":
            _cancel_report[0](result)
    if run.writer.error is not None:
        raise _log_failure(store, run_id, run, result) from run.writer.error
    if options.notify and not options.dry_run:
        _alert(run, options)
    return result


def _keep_health(store: LogStore, run_id: str, run: Run) -> None:
    """Keep in the log what later runs need: the hosts this run paused, the probes of
    hosts paused before, and the retries it leaves due (those it made are gone)."""
    now = run.options.clock.now()
    with contextlib.suppress(StoreError):
        for host, (why, failures) in run.opened.items():
            pause_host(store, host, why, failures=failures, now=now)
        for host, ok in run.probes.items():
            if ok:
                resume_host(store, host, "resumed: a probe was delivered", now=now)
            elif host not in run.opened:
                probe_failed(store, host, now=now)
        save_retries(store, run_id, run.carry, run.consumed)


def _alert(run: Run, options: SendOptions) -> None:
    """Post the run's alerts (hosts paused, retries exhausted); a problem is said on
    stderr, never raised."""
    alerts = []
    if run.opened:
        alerts.append(host_paused_alert(run.opened))
    if run.exhausted:
        alerts.append(exhausted_alert(run.exhausted))
    for alert in alerts:
        for problem in post_alert(alert, options.notify, environ=options.environ):
            print(f"warning: {problem}", file=sys.stderr)


def _dry_run(
    store: LogStore,
    run_id: str,
    todo: pl.DataFrame,
    last: Mapping[str, int],
    now: datetime,
    run: Run,
) -> None:
    """Log every dispatch of ``todo`` as a dry run, counted in ``run``."""
    try:
        per_host = dry_run(store, run_id, todo, last, now, run.options.rate)
    except (StoreError, duckdb.Error, OSError) as exc:
        run.writer.unlogged += todo.height
        run.writer.fail(exc, log=True)
        return
    n = todo.height
    run.attempts = n
    run.final["dry_run"] = n
    run.by_outcome["dry_run"] = n
    run.host_stats.update((h, Counter(dry_run=c)) for h, c in per_host.items())
    if run.bar is not None:
        run.bar.update(n)


def _finish(store: LogStore, run_id: str, state: str, run: Run) -> None:
    """Record how the run ended. When the log cannot be written the run stays 'running'
    under this process (the next send marks it crashed) and its journal is kept: it holds
    the attempts the log lacks, replayed once the log can be written again."""
    if state == "failed" and not run.writer.complete:
        log_writer(store).close_journal(run_id)
        with contextlib.suppress(StoreError):
            log_writer(store).finish_run(
                run_id,
                state,
                run.attempts,
                run.final["delivered"],
                run.final["failed"] + run.final["cancelled"] + run.final["paused"],
                keep_journal=True,
            )
        return
    with contextlib.suppress(StoreError) if state == "failed" else contextlib.nullcontext():
        log_writer(store).finish_run(
            run_id,
            state,
            run.attempts,
            run.final["delivered"],
            run.final["failed"] + run.final["cancelled"] + run.final["paused"],
        )


def _log_failure(store: LogStore, run_id: str, run: Run, result: SendResult) -> StoreError:
    """One sentence: the log could not be written, sending stopped, where the rest is."""
    w = run.writer
    why = first_line(w.error) if w.error is not None else "unknown error"
    if isinstance(w.error, StoreError):  # already says "<log>: cannot write the log (...)"
        why = why.removeprefix(f"{store.path}: cannot write the log (").removesuffix(")")
    journal = log_writer(store).journal_path(run_id)
    what = f"the log ({why})" if w.failed_in == "log" else f"its crash journal {journal} ({why})"
    if w.complete:
        kept = "; every attempt made is in the log"
    elif journal.exists():
        kept = (
            f"; the journal {journal} keeps the attempts the log lacks and the next send or "
            "backfill adds them"
        )
    else:
        kept = f"; {w.unlogged:,} attempts could not be logged"
    return StoreError(
        f"{store.path}: cannot write {what}; sending stopped after {result.attempts:,} "
        f"attempts{kept}. Free space (or fix the file's permissions) and run again: "
        "nothing delivered is sent twice"
    )


def _effective_due(
    due: pl.Series, origin: datetime | None, now: datetime, speed: float | None, ignore: bool
) -> pl.Series:
    """When each item goes: its due time, now (``ignore``), or its place on the plan's
    timeline replayed ``speed`` times faster from now."""
    if ignore:
        return pl.repeat(now, due.len(), dtype=due.dtype, eager=True)
    if speed and origin is not None:
        offset = (due - origin) / speed
        return pl.select(pl.lit(now, dtype=due.dtype) + offset).to_series()
    return due


def _host_frame(stats: dict[str, Counter[str]]) -> pl.DataFrame:
    rows = [{"host": h, "attempts": sum(c.values()), **c} for h, c in stats.items()]
    return pl.DataFrame(rows).fill_null(0) if rows else pl.DataFrame({"host": [], "attempts": []})


def _progress_bar(total: int, enabled: bool) -> Bar | None:
    return progress_bar(total, enabled)

"""The async sender: one scheduler loop per host over the due-sorted plan, a retry heap,
batched log writes, in-flight markers, and limits (global, per host, per-host rate).

Nothing fires before its ``due_at``; a dispatch already delivered in the log is skipped;
every attempt is a log row; cancellation logs what was in flight and re-raises.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from .._errors import InputError
from ..plan import Plan, read_plan
from ..rules._template import env_names, resolve_env
from ..store import LogStore, open_log
from ._guard import check_allowlist, mask, private_reason
from ._http import Outcome, fetch, make_transport
from ._limits import Clock, TokenBucket
from ._result import SendResult
from ._retry import Retry

FLUSH_ROWS = 500
FLUSH_SECONDS = 1.0
_FIELDS = (
    "dispatch_id",
    "rule",
    "transaction_id",
    "offer_id",
    "publisher_id",
    "status",
    "method",
    "url",
    "body",
    "host",
    "due_at",
    "headers",
    "timeout_s",
)


class _Item:
    """One dispatch on its way: the plan row, the next attempt number, when it is due."""

    __slots__ = ("attempt", "due", "row")

    def __init__(self, row: tuple[Any, ...], attempt: int, due: datetime) -> None:
        self.row = row
        self.attempt = attempt
        self.due = due

    def get(self, name: str) -> Any:
        return self.row[_FIELDS.index(name)]


class _LogWriter:
    """Buffers attempt rows and appends them in batches (every 500 rows or second)."""

    def __init__(self, store: LogStore, run_id: str, dry_run: bool) -> None:
        self.store = store
        self.run_id = run_id
        self.dry_run = dry_run
        self.rows: list[dict[str, Any]] = []
        self.last = time.monotonic()

    def add(self, item: _Item, fired_at: datetime, o: Outcome) -> None:
        g = item.get
        row = {
            "dispatch_id": g("dispatch_id"),
            "run_id": self.run_id,
            "attempt": item.attempt,
            "rule": g("rule"),
            "transaction_id": g("transaction_id"),
            "offer_id": g("offer_id"),
            "publisher_id": g("publisher_id"),
            "method": g("method"),
            "url": g("url"),
            "host": g("host"),
            "due_at": g("due_at"),
            "fired_at": fired_at,
            "latency_ms": o.latency_ms,
            "status_code": o.status_code,
            "outcome": o.outcome,
            "error": o.error,
            "response_body": o.response_body,
            "status": g("status"),
            "source": "sent",
        }
        self.rows.append(row)
        if not self.dry_run:
            self.store.journal(self.run_id, "done", [row])
        if len(self.rows) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            rows, self.rows = self.rows, []
            # numbered after the log's; retried marks once, when the run finishes
            self.store.append(rows, check_attempts=False, mark=False)
        self.last = time.monotonic()

    def inflight(self, items: list[_Item], now: datetime) -> None:
        g = _FIELDS.index
        self.store.journal(
            self.run_id,
            "start",
            [
                {
                    "dispatch_id": it.row[0],
                    "run_id": self.run_id,
                    "attempt": it.attempt,
                    "rule": it.row[g("rule")],
                    "transaction_id": it.row[g("transaction_id")],
                    "offer_id": it.row[g("offer_id")],
                    "publisher_id": it.row[g("publisher_id")],
                    "method": it.row[g("method")],
                    "url": it.row[g("url")],
                    "host": it.row[g("host")],
                    "due_at": it.row[g("due_at")].isoformat(),
                    "fired_at": now.isoformat(),
                    "status": it.row[g("status")],
                }
                for it in items
            ],
        )


class _Run:
    """State shared by the host loops of one send."""

    def __init__(
        self,
        *,
        writer: _LogWriter,
        retry: Retry,
        clock: Clock,
        concurrency: int,
        per_host: int,
        rate: float | None,
        dry_run: bool,
        transport: Any,
        environ: dict[str, str] | None,
        deadline: datetime | None,
        bar: Any,
    ) -> None:
        self.writer = writer
        self.retry = retry
        self.clock = clock
        self.global_sem = asyncio.Semaphore(concurrency)
        self.per_host = per_host
        self.rate = rate
        self.dry_run = dry_run
        self.transport = transport
        self.engine = "httpx"
        self.secrets: dict[str, str] = {}
        self.deny_private = False
        self.environ = environ
        self.deadline = deadline
        self.bar = bar
        self.rng = random.Random(0)
        self.final: Counter[str] = Counter()
        self.by_outcome: Counter[str] = Counter()
        self.host_stats: dict[str, Counter[str]] = {}
        self.failed_ids: list[str] = []
        self.retrying = 0
        self.attempts = 0
        self.in_flight: set[asyncio.Task[None]] = set()


def _rows(frame: pl.DataFrame) -> Iterator[tuple[Any, ...]]:
    for chunk in frame.iter_slices(5_000):
        yield from chunk.select(_FIELDS).iter_rows()


async def _race(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _host_loop(
    run: _Run, host: str, frame: pl.DataFrame, dues: pl.Series, last: dict[str, int]
) -> None:
    """Fire one host's items in due order, at most ``per_host`` at once."""
    pool = None if run.dry_run else make_transport(run.per_host, run.transport, run.engine)
    bucket = TokenBucket(run.rate, run.clock) if run.rate else None
    stats = run.host_stats.setdefault(host, Counter())
    fresh = zip(_rows(frame), dues, strict=True)
    head: _Item | None = None
    heap: list[tuple[datetime, int, _Item]] = []
    seq = itertools.count()
    wake = asyncio.Event()
    running = 0

    def next_fresh() -> _Item | None:
        for row, due in fresh:
            return _Item(row, last.get(row[0], 0) + 1, due)
        return None

    async def attempt(item: _Item) -> None:
        nonlocal running
        o: Outcome | None = None
        fired = run.clock.now()
        try:
            async with run.global_sem:
                fired = run.clock.now()
                o = await _fire(run, pool, item)
        except asyncio.CancelledError:
            o = Outcome(
                "cancelled", None, None, "cancelled before an answer: the result is unknown", None
            )
            raise
        except Exception as exc:  # a bug must not hang the run: log it as a failed attempt
            o = Outcome("failed", None, None, f"internal error {type(exc).__name__}: {exc}", None)
        finally:
            running -= 1
            assert o is not None
            run.attempts += 1
            run.by_outcome[o.outcome] += 1
            stats[o.outcome] += 1
            run.writer.add(item, fired, o)
            wait = None
            if o.outcome not in ("delivered", "dry_run", "cancelled") and o.retryable:
                wait = run.retry.wait(item.attempt, o.retry_after, rng=run.rng)
            again = run.clock.now() + timedelta(seconds=wait) if wait is not None else None
            if again is not None and (run.deadline is None or again <= run.deadline):
                heapq.heappush(heap, (again, next(seq), _Item(item.row, item.attempt + 1, again)))
                run.retrying += 1
            else:
                _final(run, item, o)
            wake.set()

    blocked = await private_reason(host) if run.deny_private and not run.dry_run else None
    try:
        head = next_fresh()
        while blocked is not None and head is not None:  # fail, unsent, every item
            o = Outcome("failed", None, None, blocked, None)
            run.attempts += 1
            run.by_outcome["failed"] += 1
            stats["failed"] += 1
            run.writer.add(head, run.clock.now(), o)
            _final(run, head, o)
            head = next_fresh()
        while head is not None or heap or running:
            if head is None and not heap:
                wake.clear()
                await wake.wait()
                continue
            use_heap = bool(heap) and (head is None or heap[0][0] <= head.due)
            due = heap[0][0] if use_heap else head.due  # type: ignore[union-attr]
            delay = (due - run.clock.now()).total_seconds()
            if delay > 0:
                wake.clear()
                await _race(run.clock.sleep(delay), wake.wait())
                continue
            if running >= run.per_host:
                wake.clear()
                await wake.wait()
                continue
            batch: list[_Item] = []
            now = run.clock.now()
            while running + len(batch) < run.per_host:
                if heap and heap[0][0] <= now and (head is None or heap[0][0] <= head.due):
                    batch.append(heapq.heappop(heap)[2])
                    run.retrying -= 1
                elif head is not None and head.due <= now:
                    batch.append(head)
                    head = next_fresh()
                else:
                    break
            if not run.dry_run:
                run.writer.inflight(batch, now)
            for item in batch:
                if bucket is not None:
                    await bucket.take()
                running += 1
                task = asyncio.create_task(attempt(item))
                run.in_flight.add(task)
                task.add_done_callback(run.in_flight.discard)
            if run.writer.rows and time.monotonic() - run.writer.last > FLUSH_SECONDS:
                run.writer.flush()
    finally:
        if pool is not None:
            await pool.aclose()


def _final(run: _Run, item: _Item, o: Outcome) -> None:
    state = {"delivered": "delivered", "dry_run": "dry_run", "cancelled": "cancelled"}.get(
        o.outcome, "failed"
    )
    run.final[state] += 1
    if state in ("failed", "cancelled"):
        run.failed_ids.append(item.get("dispatch_id"))
    if run.bar is not None:
        run.bar.update(1)
        run.bar.set_postfix(
            delivered=run.final["delivered"],
            failed=run.final["failed"],
            retrying=run.retrying,
            refresh=False,
        )


async def _fire(run: _Run, pool: Any, item: _Item) -> Outcome:
    if run.dry_run:
        return Outcome("dry_run", None, 0.0, None, None)
    try:
        url = resolve_env(item.get("url"), run.environ)
        headers = {
            k: resolve_env(v, run.environ)
            for k, v in json.loads(item.get("headers") or "{}").items()
        }
        body = item.get("body")
        body = resolve_env(body, run.environ) if body is not None else None
    except KeyError as exc:
        return Outcome("failed", None, None, f"environment variable {exc.args[0]} is not set", None)
    headers["Idempotency-Key"] = item.get("dispatch_id")
    if body is not None and "content-type" not in {k.lower() for k in headers}:
        headers["Content-Type"] = (
            "application/json"
            if body.lstrip().startswith(("{", "["))
            else "text/plain; charset=utf-8"
        )
    o = await fetch(pool, item.get("method"), url, headers, body, item.get("timeout_s"))
    if run.secrets and (o.error or o.response_body):  # partners echo requests back
        o = dataclasses.replace(
            o, error=mask(o.error, run.secrets), response_body=mask(o.response_body, run.secrets)
        )
    return o


def _check_env(frame: pl.DataFrame, environ: dict[str, str] | None) -> dict[str, str]:
    """The secrets the plan needs ({env:NAME} -> value); an InputError if one is unset."""
    import os

    env = os.environ if environ is None else environ
    names: set[str] = set()
    for col in ("url", "headers", "body"):
        for text in frame[col].drop_nulls().unique().to_list():
            names.update(env_names(text))
    missing = sorted(n for n in names if n not in env)
    if missing:
        raise InputError(
            f"the plan needs the environment variable(s) {', '.join(missing)} "
            "({env:...} macros); set them and run again"
        )
    return {n: env[n] for n in names}


async def send(
    plan: Plan | pl.DataFrame | str | Any,
    log: LogStore | str | None = None,
    *,
    concurrency: int = 64,
    per_host: int = 8,
    rate: float | None = None,
    retry: Retry | None = None,
    dry_run: bool = False,
    speed: float | None = None,
    ignore_due: bool = False,
    max_duration: timedelta | float | None = None,
    progress: bool = True,
    clock: Clock | None = None,
    transport: Any = None,
    environ: dict[str, str] | None = None,
    kind: str = "send",
    engine: str = "aiohttp",
    allow_hosts: list[str] | None = None,
    deny_private: bool = False,
) -> SendResult:
    """Fire ``plan`` and log every attempt to ``log`` (a LogStore or DuckDB path).

    Dispatches already delivered are skipped; nothing fires before ``due_at`` unless
    ``ignore_due``; ``speed=60`` replays the plan's timeline 60x faster from now;
    ``max_duration`` drops retries that would fall after it (they stay failed for a later
    backfill). ``dry_run`` renders and logs ``dry_run`` rows without opening a socket.
    ``allow_hosts`` (patterns like ``*.example.com``) refuses a plan with other hosts;
    ``deny_private`` fails, unsent, every host that resolves to a private, loopback,
    link-local or metadata address.
    """
    p = plan if isinstance(plan, Plan) else read_plan(plan)
    if concurrency < 1 or per_host < 1 or (rate is not None and rate <= 0):
        raise InputError("concurrency and per-host must be at least 1 and rate more than 0")
    clock = clock or Clock()
    retry = retry or Retry()
    store, owned = open_log(log)
    try:
        return await _send(
            p.frame,
            store,
            concurrency=concurrency,
            per_host=per_host,
            rate=rate,
            retry=retry,
            dry_run=dry_run,
            speed=speed,
            ignore_due=ignore_due,
            max_duration=max_duration,
            progress=progress,
            clock=clock,
            transport=transport,
            environ=environ,
            kind=kind,
            engine=engine,
            allow_hosts=allow_hosts,
            deny_private=deny_private,
        )
    finally:
        if owned:
            store.close()


async def _send(
    frame: pl.DataFrame,
    store: LogStore,
    *,
    concurrency: int,
    per_host: int,
    rate: float | None,
    retry: Retry,
    dry_run: bool,
    speed: float | None,
    ignore_due: bool,
    max_duration: timedelta | float | None,
    progress: bool,
    clock: Clock,
    transport: Any,
    environ: dict[str, str] | None,
    kind: str,
    engine: str,
    allow_hosts: list[str] | None,
    deny_private: bool,
) -> SendResult:
    started = time.perf_counter()
    store.recover_inflight()
    frame = frame.unique("dispatch_id", keep="first", maintain_order=True)
    planned = frame.height
    delivered = store.delivered_ids(frame["dispatch_id"])
    todo = frame.filter(~pl.col("dispatch_id").is_in(list(delivered))) if delivered else frame
    secrets = _check_env(todo, environ) if not dry_run else {}
    check_allowlist(todo["host"].unique().to_list(), allow_hosts)
    last = store.last_attempts(todo["dispatch_id"]) if todo.height else {}
    run_id = store.start_run("dry_run" if dry_run else kind, planned, planned - todo.height)
    writer = _LogWriter(store, run_id, dry_run)
    now = clock.now()
    if isinstance(max_duration, (int, float)):
        max_duration = timedelta(seconds=max_duration)
    deadline = now + max_duration if max_duration is not None else None
    bar = _progress_bar(todo.height, progress)
    run = _Run(
        writer=writer,
        retry=retry,
        clock=clock,
        concurrency=concurrency,
        per_host=per_host,
        rate=rate,
        dry_run=dry_run,
        transport=transport,
        environ=environ,
        deadline=deadline,
        bar=bar,
    )
    run.engine = engine
    run.secrets = secrets
    run.deny_private = deny_private

    loops = []
    for (host,), part in todo.sort("due_at", maintain_order=True).group_by(
        "host", maintain_order=True
    ):
        dues = _effective_due(
            part["due_at"], frame["due_at"].min(), now, speed, ignore_due or dry_run
        )
        loops.append(asyncio.create_task(_host_loop(run, str(host), part, dues, last)))
    state = "completed"
    try:
        await asyncio.gather(*loops)
    except BaseException:
        state = "cancelled"
        for t in [*loops, *run.in_flight]:
            t.cancel()
        await asyncio.gather(*loops, *run.in_flight, return_exceptions=True)
        raise
    finally:
        writer.flush()
        if bar is not None:
            bar.close()
        store.finish_run(
            run_id,
            state,
            run.attempts,
            run.final["delivered"],
            run.final["failed"] + run.final["cancelled"],
        )
        result = SendResult(
            run_id=run_id,
            log_path=store.path,
            planned=planned,
            skipped_delivered=planned - todo.height,
            delivered=run.final["delivered"],
            failed=run.final["failed"],
            dry_run=run.final["dry_run"],
            cancelled=run.final["cancelled"]
            + (todo.height - sum(run.final.values()) if state == "cancelled" else 0),
            attempts=run.attempts,
            seconds=time.perf_counter() - started,
            by_outcome=dict(run.by_outcome),
            by_host=_host_frame(run.host_stats),
            failed_ids=tuple(run.failed_ids),
            state=state,
        )
        if state == "cancelled":
            import sys

            print(f"send cancelled: {result.summary()}", file=sys.stderr)
    return result


def _effective_due(
    due: pl.Series, origin: datetime | None, now: datetime, speed: float | None, ignore: bool
) -> pl.Series:
    if ignore:
        return pl.repeat(now, due.len(), dtype=due.dtype, eager=True)
    if speed:
        assert origin is not None
        offset = (due - origin) / speed
        return pl.select(pl.lit(now, dtype=due.dtype) + offset).to_series()
    return due


def _host_frame(stats: dict[str, Counter[str]]) -> pl.DataFrame:
    rows = [{"host": h, "attempts": sum(c.values()), **c} for h, c in stats.items()]
    return pl.DataFrame(rows).fill_null(0) if rows else pl.DataFrame({"host": [], "attempts": []})


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="postbacks", unit="pb", smoothing=0.1)


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running loop (Jupyter):
    then it runs on a fresh loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def send_sync(plan: Any, log: LogStore | str | None = None, **kwargs: Any) -> SendResult:
    """``send`` for scripts; also works inside a running notebook loop (runs in a thread)."""
    return run_sync(send(plan, log, **kwargs))  # type: ignore[no-any-return]

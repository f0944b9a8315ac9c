"""The scheduler of a send: one loop per host over its due-sorted dispatches and a retry
heap, at most ``per_host`` in flight (and ``concurrency`` over all hosts), each attempt
logged and, when it failed and the run's schedule allows, queued again."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import polars as pl

from ..store import DueRetry, HostPause
from ._breaker import HostHealth
from ._guard import mask, private_reason
from ._http import Outcome, make_transport
from ._limits import TokenBucket
from ._options import SendOptions
from ._progress import SAY_WAIT, Bar, say
from ._recheck import Recheck
from ._request import fire
from ._writer import FIELDS, Item, LogWriter


@dataclass
class Run:
    """What the host loops of one send share: its options, log writer, secrets, deadline
    and progress bar (given), and its counters (kept as it goes)."""

    options: SendOptions
    writer: LogWriter
    secrets: Mapping[str, str]
    deadline: datetime | None
    bar: Bar | None
    #: firing rule 7 against fresh events, checked before each due batch fires (or None)
    recheck: Recheck | None = None
    global_sem: asyncio.Semaphore = field(init=False)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    final: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)
    host_stats: dict[str, Counter[str]] = field(default_factory=dict)
    failed_ids: list[str] = field(default_factory=list)
    retrying: int = 0
    attempts: int = 0
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    next_retry: dict[str, datetime | None] = field(default_factory=dict)  # per host
    shown: float = 0.0  # when the bar was last redrawn (monotonic seconds) ...
    drawn: str = ""  # ... and with what text
    #: hosts paused by an earlier run (from the log), and whether each may be probed now
    held: Mapping[str, tuple[HostPause, bool]] = field(default_factory=dict)
    #: retries an earlier run left, due now: their dispatches continue that schedule
    resumed: Mapping[str, DueRetry] = field(default_factory=dict)
    #: what this run leaves for later ones and learned about hosts (kept in the log after)
    carry: dict[str, DueRetry] = field(default_factory=dict)
    consumed: set[str] = field(default_factory=set)
    opened: dict[str, tuple[str, int]] = field(default_factory=dict)  # host -> why, failures
    probes: dict[str, bool] = field(default_factory=dict)  # host -> probe delivered
    exhausted: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule, host)
    give_up: dict[str, datetime] = field(default_factory=dict)  # dispatch -> stop retrying
    waiting_for: datetime | None = None  # the retry time a waiting line was printed for

    def __post_init__(self) -> None:
        self.global_sem = asyncio.Semaphore(self.options.concurrency)

    def record(self, stats: Counter[str], item: Item, fired_at: datetime, o: Outcome) -> None:
        """Count and log one attempt (a ``paused`` row is logged but is no attempt: no
        request was made)."""
        if o.outcome != "paused":
            self.attempts += 1
        self.by_outcome[o.outcome] += 1
        stats[o.outcome] += 1
        self.writer.add(item, fired_at, o)
        if o.outcome not in ("delivered", "dry_run"):
            self.show()  # a failure shows at once, not only when its postback ends

    def finish(self, item: Item, o: Outcome) -> None:
        """``item`` ended with ``o`` (no more tries in this run)."""
        state = _FINAL.get(o.outcome, "failed")
        self.final[state] += 1
        if state in ("failed", "cancelled", "paused"):
            self.failed_ids.append(item.get("dispatch_id"))
        if self.bar is not None:
            self.bar.update(1)
            self.show()

    def show(self, *, now: bool = False) -> None:
        """The bar's text, key numbers first and short enough for 80 columns: postbacks
        delivered, failed, and waiting for a retry with when the next goes (redrawn at
        most 4 times/s, or ``now``: before the run waits, so what it waits for is on
        screen). When everything left waits for retries due later, one line says so."""
        if self.bar is None:
            return
        parts = [f"delivered {self.final['delivered']:,}", f"failed {self.final['failed']:,}"]
        soon = min((t for t in self.next_retry.values() if t is not None), default=None)
        if self.retrying:
            parts.append(f"retrying {self.retrying:,}")
            if soon is not None:
                parts[-1] += f", next {soon:%H:%M:%S} UTC"
        text = " · ".join(parts)
        if now and soon is not None and self.retrying:
            self._say_waiting(soon)
        if text == self.drawn:
            return
        tick = time.monotonic()
        redraw = now or tick - self.shown >= 0.25
        if redraw:
            self.shown, self.drawn = tick, text
        self.bar.set_postfix_str(text, refresh=redraw)

    def _say_waiting(self, soon: datetime) -> None:
        """One line when all that is left waits for retries (once per wait)."""
        bar = self.bar
        left = bar.n + self.retrying + len(self.in_flight) if bar is not None else 0
        if bar is None or left < (bar.total or 0) or soon == self.waiting_for:
            return
        if (soon - self.options.clock.now()).total_seconds() < SAY_WAIT:
            return
        self.waiting_for = soon
        n = self.retrying
        say(
            bar,
            f"waiting for {n:,} {'retry' if n == 1 else 'retries'} due {soon:%H:%M:%S} UTC; "
            "Ctrl-C leaves them to a later backfill",
        )


_FINAL = {
    "delivered": "delivered",
    "dry_run": "dry_run",
    "cancelled": "cancelled",
    "paused": "paused",
}


def _rows(frame: pl.DataFrame) -> Iterator[tuple[Any, ...]]:
    for chunk in frame.iter_slices(5_000):
        yield from chunk.select(FIELDS).iter_rows()


async def _race(*aws: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def host_loop(
    run: Run, host: str, frame: pl.DataFrame, dues: pl.Series, last: Mapping[str, int]
) -> None:
    """Fire one host's dispatches in due order, at most ``per_host`` at once; ``last`` is
    the highest attempt number each dispatch already has in the log."""
    opts = run.options
    pool = None if opts.dry_run else make_transport(opts.per_host, opts.engine, opts.transport)
    bucket = TokenBucket(opts.rate, opts.clock) if opts.rate else None
    stats = run.host_stats.setdefault(host, Counter())
    fresh = zip(_rows(frame), dues, strict=True)
    heap: list[tuple[datetime, int, Item]] = []
    seq = itertools.count()
    wake = asyncio.Event()
    running = 0
    breaker = opts.breaker_of(host)
    health = HostHealth(breaker) if breaker.enabled and not opts.dry_run else None
    paused: str | None = None  # why the breaker paused this host
    probing = False  # the host was paused by an earlier run: one attempt decides
    held = None if opts.dry_run else run.held.get(host)
    if held is not None:
        pause, probing = held
        if not probing:
            paused = (
                f"not sent: {host} is paused since {pause.since:%Y-%m-%d %H:%M:%S} UTC "
                f"({pause.reason}); 'postback-lab hosts resume {host}' resumes it"
            )

    def next_fresh() -> Item | None:
        for row, due in fresh:
            carried = run.resumed.get(row[0])
            return Item(row, last.get(row[0], 0) + 1, carried.next_try if carried else 1, due)
        return None

    async def attempt(item: Item) -> None:
        nonlocal running, paused, probing
        o: Outcome | None = None
        fired = opts.clock.now()
        try:
            async with run.global_sem:
                fired = opts.clock.now()
                o = await _try(run, pool, item)
        except asyncio.CancelledError:
            o = Outcome(
                "cancelled", None, None, "cancelled before an answer: the result is unknown", None
            )
            raise
        except Exception as exc:  # a bug must not hang the run: log it as a failed attempt
            err = mask(f"internal error {type(exc).__name__}: {exc}", run.secrets)
            o = Outcome("failed", None, None, err, None)
        finally:
            running -= 1
            assert o is not None
            run.record(stats, item, fired, o)
            did = item.get("dispatch_id")
            if did in run.resumed and o.outcome != "cancelled":
                run.consumed.add(did)
            failed = o.outcome not in ("delivered", "dry_run", "cancelled")
            if probing and o.outcome != "cancelled":
                probing = False
                run.probes[host] = not failed
                if failed:
                    paused = (
                        f"not sent: {host} stays paused, its probe failed "
                        f"({o.error or o.status_code or o.outcome})"
                    )
            if health is not None and paused is None and o.outcome != "cancelled":
                why = health.record(failed, opts.clock.monotonic())
                if why is not None:
                    paused = f"not sent: the circuit breaker paused {host} after {why}"
                    bad = ("delivered", "dry_run", "cancelled", "paused")
                    run.opened[host] = (why, sum(v for k, v in stats.items() if k not in bad))
            policy = opts.retry_of(item.get("rule"))
            carried = run.resumed.get(did) if run.resumed else None
            give_up = None  # when the schedule stops: ``within`` after the first attempt
            if carried is not None:
                give_up = carried.give_up_at
            elif policy.within is not None:  # kept only for these (a big send has many)
                give_up = run.give_up.setdefault(did, fired + timedelta(seconds=policy.within))
            wait = None
            if failed and o.retryable:
                wait = policy.wait(item.tries, o.retry_after, rng=run.rng)
            again = opts.clock.now() + timedelta(seconds=wait) if wait is not None else None
            if again is not None and give_up is not None and again > give_up:
                again = None  # the schedule's time is up
            if again is not None and (run.deadline is None or again <= run.deadline):
                heapq.heappush(heap, (again, next(seq), item.again(again)))
                run.retrying += 1
                run.next_retry[host] = heap[0][0]
                run.show()
            else:
                if again is not None and policy.within is not None and paused is None:
                    run.carry[did] = DueRetry(again, item.tries + 1, give_up)
                elif failed and again is None:
                    run.exhausted[(item.get("rule"), host)] += 1
                run.give_up.pop(did, None)
                run.finish(item, o)
            wake.set()

    blocked = await private_reason(host) if opts.deny_private and not opts.dry_run else None
    try:
        head = next_fresh()
        while blocked is not None and head is not None:  # fail, unsent, every item
            o = Outcome("failed", None, None, blocked, None)
            run.record(stats, head, opts.clock.now(), o)
            run.finish(head, o)
            head = next_fresh()
        while head is not None or heap or running:
            if run.writer.error is not None:  # the log cannot be written: stop sending
                return
            if paused is not None:  # log what is left as paused, wait for what is out
                while head is not None or heap:
                    if head is not None:
                        item, head = head, next_fresh()
                    else:
                        item = heapq.heappop(heap)[2]
                        run.retrying -= 1
                    o = Outcome("paused", None, None, paused, None)
                    run.record(stats, item, opts.clock.now(), o)
                    run.finish(item, o)
                if running:
                    wake.clear()
                    await wake.wait()
                continue
            if head is None and not heap:
                wake.clear()
                await wake.wait()
                continue
            use_heap = bool(heap) and (head is None or heap[0][0] <= head.due)
            if use_heap:
                due = heap[0][0]
            else:
                assert head is not None
                due = head.due
            delay = (due - opts.clock.now()).total_seconds()
            if delay > 0:
                run.show(now=True)
                wake.clear()
                await _race(opts.clock.sleep(delay), wake.wait())
                continue
            limit = 1 if probing else opts.per_host  # a probe goes alone
            if running >= limit:
                wake.clear()
                await wake.wait()
                continue
            batch: list[Item] = []
            now = opts.clock.now()
            while running + len(batch) < limit:
                if heap and heap[0][0] <= now and (head is None or heap[0][0] <= head.due):
                    batch.append(heapq.heappop(heap)[2])
                    run.retrying -= 1
                    run.next_retry[host] = heap[0][0] if heap else None
                elif head is not None and head.due <= now:
                    batch.append(head)
                    head = next_fresh()
                else:
                    break
            if run.recheck is not None and batch:
                batch = await _drop_superseded(run, batch)
                if not batch:
                    continue
            if not opts.dry_run and not run.writer.inflight(batch, now):
                return
            for item in batch:
                if bucket is not None:
                    await bucket.take()
                running += 1
                task = asyncio.create_task(attempt(item))
                run.in_flight.add(task)
                task.add_done_callback(run.in_flight.discard)
            if run.writer.due_flush():
                run.writer.flush()
    finally:
        if pool is not None:
            await pool.aclose()


async def _drop_superseded(run: Run, batch: list[Item]) -> list[Item]:
    """``batch`` less the first tries that fresh events show superseded within their
    delay (read again now, off the loop): not fired, not logged, counted."""
    assert run.recheck is not None
    first = [item.get("dispatch_id") for item in batch if item.tries == 1]
    gone = await asyncio.to_thread(run.recheck.superseded, first) if first else set()
    if not gone:
        return batch
    kept = []
    for item in batch:
        if item.tries == 1 and item.get("dispatch_id") in gone:
            run.final["superseded"] += 1
            if run.bar is not None:
                run.bar.update(1)
        else:
            kept.append(item)
    return kept


async def _try(run: Run, pool: httpx.AsyncBaseTransport | None, item: Item) -> Outcome:
    if pool is None:  # a dry run
        return Outcome("dry_run", None, 0.0, None, None)
    return await fire(pool, item, run.options.environ, run.secrets)


async def until_done_or_broken(loops: list[asyncio.Task[None]], run: Run) -> None:
    """Wait for every host loop, or until the log cannot be written (then return at once:
    the caller stops the loops)."""
    everything: asyncio.Future[Any] = asyncio.gather(*loops)
    broken: asyncio.Future[Any] = asyncio.ensure_future(run.writer.broken.wait())
    try:
        await asyncio.wait([everything, broken], return_when=asyncio.FIRST_COMPLETED)
        if everything.done():
            everything.result()  # a bug in a loop surfaces here
    finally:
        broken.cancel()
        if not everything.done():
            everything.cancel()
            await asyncio.gather(everything, return_exceptions=True)

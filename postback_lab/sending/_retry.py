"""Retry policy: a schedule of delays, jitter that never fires early, Retry-After hints."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from .._util import parse_duration
from ..rules import RuleSet


@dataclass(frozen=True)
class Retry:
    """``delays[i]`` seconds before retry i+1; jitter adds up to ``jitter`` x delay (never
    less); a ``Retry-After`` hint raises the wait up to ``max_retry_after``.

    ``Retry()`` is the default schedule (5s, 5m, 30m, 2h); ``Retry.short()`` suits an
    interactive backfill; ``Retry.none()`` makes every failure final.

    The schedule belongs to a run: each send or backfill gives a dispatch up to
    ``max_attempts`` tries, counted from 1 within that run, so a backfill of a postback
    that failed earlier gets the full schedule again (and a dry run uses none of it). The
    ``attempt`` numbers in the log are another count: unique per dispatch over all runs,
    they keep counting up (a dispatch tried twice yesterday is tried as 3, 4 … today).

    ``within`` (a rule's ``retry: {for: D}``, in seconds) makes the schedule outlive a
    run: retries go on until ``within`` after the dispatch's first attempt; one that falls
    after the run's own window is left in the log, due, and the next send or backfill
    after that time makes it (once), continuing the schedule where it stopped.
    """

    delays: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0)
    jitter: float = 0.1
    max_retry_after: float = 3600.0
    within: float | None = None

    @classmethod
    def policy(cls, schedule: tuple[float, ...] | None, within: float | None) -> Retry:
        """A rule's ``retry:`` (schedule and ``for``, either may be None: the default
        schedule, no limit but the run's)."""
        base = cls() if schedule is None else cls(delays=tuple(schedule))
        return cls(base.delays, base.jitter, base.max_retry_after, within)

    @classmethod
    def short(cls) -> Retry:
        """0.5s, 2s, 5s: for an interactive backfill."""
        return cls(delays=(0.5, 2.0, 5.0), jitter=0.1, max_retry_after=30.0)

    @classmethod
    def none(cls) -> Retry:
        """No retries: every failure is final for this run."""
        return cls(delays=())

    @classmethod
    def parse(cls, text: str) -> Retry:
        """``default``, ``short``, ``none``, a number of retries ``N`` (the default
        schedule's first N delays, its last one repeating) or durations like ``1s,5s,30s``."""
        t = text.strip().lower()
        if t == "default":
            return cls()
        if t == "short":
            return cls.short()
        if t in ("none", "0", ""):
            return cls.none()
        if t.isdigit():  # N retries on the default schedule (its last delay repeats)
            base = cls().delays
            n = int(t)
            return cls(delays=tuple(base[min(i, len(base) - 1)] for i in range(n)))
        return cls(delays=tuple(parse_duration(p).total_seconds() for p in t.split(",")))

    @property
    def max_attempts(self) -> int:
        """Tries of one dispatch in one run: the first and one per delay."""
        return len(self.delays) + 1

    def wait(
        self,
        attempt: int,
        retry_after: str | None = None,
        *,
        rng: random.Random | None = None,
        now: datetime | None = None,
    ) -> float | None:
        """Seconds to wait after the failed ``attempt``-th try of this run (1-based), or
        None when it was the last try the schedule allows."""
        if attempt > len(self.delays):
            return None
        base = self.delays[attempt - 1]
        hint = parse_retry_after(retry_after, now)
        if hint is not None:
            base = max(base, min(hint, self.max_retry_after))
        r = (rng or random).random()
        return base * (1 + self.jitter * r)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (``'120'``) or an HTTP date; None when absent or malformed."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    try:
        when = parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def rule_policies(
    rules: RuleSet, *, schedule: Retry | None = None, within: float | None = None
) -> dict[str, Retry]:
    """The retry schedule of each rule with a ``retry:`` key; ``schedule`` (the delays of
    ``--retries``) and ``within`` (``--retry-for``) override what the rules say."""
    out = {}
    for r in rules:
        if r.retry_schedule is None and r.retry_for is None:
            continue
        base = Retry.policy(r.retry_schedule, r.retry_for)
        if schedule is not None:
            base = replace(base, delays=schedule.delays, max_retry_after=schedule.max_retry_after)
        if within is not None:
            base = replace(base, within=within)
        out[r.name] = base
    return out

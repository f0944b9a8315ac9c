"""A per-host circuit breaker: after too many failures a host is paused for the rest of
the run, and its remaining dispatches are logged as ``paused`` (no request is made); a
later send or backfill picks them up like failed ones."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from .._errors import InputError
from ..rules import RuleSet


@dataclass(frozen=True)
class Breaker:
    """Open (pause the host) after ``consecutive`` failed attempts in a row, or when at
    least ``min_attempts`` attempts within the last ``window`` seconds failed at
    ``failure_rate`` (a ratio) or more (defaults: 10 in a row, like Everflow; 70% of >= 10
    in 5 minutes, like Convoy). ``Breaker.off()`` never opens. ``cool_down``: seconds
    after a pause (or a failed probe) before a later run sends one probe to the host
    (half-open).

    A failed attempt is one not delivered (timeouts and connection errors included)."""

    consecutive: int | None = 10
    failure_rate: float | None = 0.7
    min_attempts: int = 10
    window: float = 300.0
    cool_down: float = 600.0

    def __post_init__(self) -> None:
        if self.consecutive is not None and (
            not isinstance(self.consecutive, int) or self.consecutive < 1
        ):
            raise InputError(f"Breaker consecutive={self.consecutive!r} must be 1 or more")
        if self.failure_rate is not None and not (0 < self.failure_rate <= 1):
            raise InputError(
                f"Breaker failure_rate={self.failure_rate!r} must be more than 0 and at most 1"
            )
        if self.min_attempts < 1 or not (math.isfinite(self.window) and self.window > 0):
            raise InputError("Breaker min_attempts must be 1 or more and window more than 0s")
        if not (math.isfinite(self.cool_down) and self.cool_down >= 0):
            raise InputError(f"Breaker cool_down={self.cool_down!r} must be 0 or more seconds")

    @classmethod
    def off(cls) -> Breaker:
        """A breaker that never opens."""
        return cls(consecutive=None, failure_rate=None)

    @property
    def enabled(self) -> bool:
        return self.consecutive is not None or self.failure_rate is not None


class HostHealth:
    """The failures of one host during a run, against a Breaker."""

    def __init__(self, breaker: Breaker) -> None:
        self.breaker = breaker
        self.in_a_row = 0
        self.recent: deque[tuple[float, bool]] = deque()
        self.failed_recent = 0

    def record(self, failed: bool, now: float) -> str | None:
        """Count one attempt (at monotonic time ``now``); the reason the host must pause,
        or None."""
        b = self.breaker
        self.in_a_row = self.in_a_row + 1 if failed else 0
        if b.consecutive is not None and self.in_a_row >= b.consecutive:
            return f"{self.in_a_row} failed attempts in a row"
        if b.failure_rate is None:
            return None
        self.recent.append((now, failed))
        self.failed_recent += failed
        while self.recent and self.recent[0][0] < now - b.window:
            self.failed_recent -= self.recent.popleft()[1]
        n = len(self.recent)
        if n >= b.min_attempts and self.failed_recent >= b.failure_rate * n:
            return (
                f"{self.failed_recent} of the last {n} attempts failed "
                f"(>= {b.failure_rate:.0%} within {b.window:g}s)"
            )
        return None


def rule_breakers(
    rules: RuleSet, frame: pl.DataFrame, base: Breaker | None = None
) -> dict[str, Breaker]:
    """A breaker per host from the rules' ``pause:`` thresholds (over ``base``, the run's
    breaker): each host the rule's dispatches in ``frame`` go to. A host shared by rules
    with different thresholds gets the strictest (fewest failures in a row)."""
    base = base or Breaker()
    out: dict[str, Breaker] = {}
    for rule in rules:
        if not rule.pause:
            continue
        given = dict(rule.pause)
        changes: dict[str, Any] = {}
        if "after" in given:
            changes["consecutive"] = None if given["after"] is None else int(given["after"])
        if "rate" in given:  # the rules file's pause: {rate: 50%}
            changes["failure_rate"] = given["rate"]
        if given.get("min_attempts") is not None:
            changes["min_attempts"] = int(given["min_attempts"] or 1)
        for key in ("window", "cool_down"):
            if given.get(key) is not None:
                changes[key] = given[key]
        breaker = replace(base, **changes)
        hosts = frame.filter(pl.col("rule") == rule.name)["host"].unique().to_list()
        for host in hosts:
            now = out.get(host)
            if now is None or _stricter(breaker, now):
                out[host] = breaker
    return out


def _stricter(a: Breaker, b: Breaker) -> bool:
    big = 10**9
    first = (a.consecutive or big, a.failure_rate or 2.0)
    return first < (b.consecutive or big, b.failure_rate or 2.0)

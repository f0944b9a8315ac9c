"""A per-host circuit breaker: after too many failures a host is paused for the rest of
the run, and its remaining dispatches are logged as ``paused`` (no request is made); a
later send or backfill picks them up like failed ones."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from .._errors import InputError


@dataclass(frozen=True)
class Breaker:
    """Open (pause the host) after ``consecutive`` failed attempts in a row, or when at
    least ``min_attempts`` attempts within the last ``window`` seconds failed at ``rate``
    or more (defaults: 10 in a row, like Everflow; 70% of >= 10 in 5 minutes, like
    Convoy). ``Breaker.off()`` never opens. ``cool_down``: seconds after a pause (or a
    failed probe) before a later run sends one probe to the host (half-open).

    A failed attempt is one not delivered (timeouts and connection errors included)."""

    consecutive: int | None = 10
    rate: float | None = 0.7
    min_attempts: int = 10
    window: float = 300.0
    cool_down: float = 600.0

    def __post_init__(self) -> None:
        if self.consecutive is not None and (
            not isinstance(self.consecutive, int) or self.consecutive < 1
        ):
            raise InputError(f"Breaker consecutive={self.consecutive!r} must be 1 or more")
        if self.rate is not None and not (0 < self.rate <= 1):
            raise InputError(f"Breaker rate={self.rate!r} must be more than 0 and at most 1")
        if self.min_attempts < 1 or not (math.isfinite(self.window) and self.window > 0):
            raise InputError("Breaker min_attempts must be 1 or more and window more than 0s")
        if not (math.isfinite(self.cool_down) and self.cool_down >= 0):
            raise InputError(f"Breaker cool_down={self.cool_down!r} must be 0 or more seconds")

    @classmethod
    def off(cls) -> Breaker:
        """A breaker that never opens."""
        return cls(consecutive=None, rate=None)

    @property
    def enabled(self) -> bool:
        return self.consecutive is not None or self.rate is not None


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
        if b.rate is None:
            return None
        self.recent.append((now, failed))
        self.failed_recent += failed
        while self.recent and self.recent[0][0] < now - b.window:
            self.failed_recent -= self.recent.popleft()[1]
        n = len(self.recent)
        if n >= b.min_attempts and self.failed_recent >= b.rate * n:
            return (
                f"{self.failed_recent} of the last {n} attempts failed "
                f"(>= {b.rate:.0%} within {b.window:g}s)"
            )
        return None

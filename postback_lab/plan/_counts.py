"""Explain counts: per rule, how many events each reason excluded, and how many fired."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

#: reasons every rule reports, even when nothing was excluded for them
ALWAYS = ("duplicate", "invalid_body", "fired")


@dataclass
class Counts:
    """Per rule, how many events each reason excluded (``fired`` included); counts of
    several buckets of events add up."""

    by_rule: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, rule: str, counts: dict[str, int]) -> None:
        mine = self.by_rule.setdefault(rule, {})
        for reason, n in counts.items():
            mine[reason] = mine.get(reason, 0) + n

    def merge(self, other: Counts) -> Counts:
        """These counts plus ``other``'s (e.g. of another bucket of transactions)."""
        out = Counts({r: dict(c) for r, c in self.by_rule.items()})
        for rule, counts in other.by_rule.items():
            out.add(rule, counts)
        return out

    def body_errors(self) -> dict[str, int]:
        return {r: c["invalid_body"] for r, c in self.by_rule.items() if c.get("invalid_body")}

    def to_frame(self) -> pl.DataFrame:
        """Long: rule, reason, events (the reasons of a rule that excluded nothing are
        left out, except duplicate, invalid_body and fired)."""
        rows = [
            {"rule": rule, "reason": reason, "events": n}
            for rule, counts in self.by_rule.items()
            for reason, n in counts.items()
            if n or reason in ALWAYS
        ]
        schema = {"rule": pl.String(), "reason": pl.String(), "events": pl.Int64()}
        return pl.DataFrame(rows, schema=schema)

"""What-if: compare two plans built from the same events with different rules."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from .._util import render


@dataclass(frozen=True)
class PlanDiff:
    """Dispatches only in the new plan (added), only in the old (removed), and in both with
    a different URL, body or due time (changed, with old and new values)."""

    added: pl.DataFrame
    removed: pl.DataFrame
    changed: pl.DataFrame

    def counts(self) -> pl.DataFrame:
        """Per rule: added, removed, changed."""
        parts = [
            f.group_by("rule").len().rename({"len": name})
            for name, f in (
                ("added", self.added),
                ("removed", self.removed),
                ("changed", self.changed),
            )
        ]
        out = pl.DataFrame({"rule": pl.concat([p["rule"] for p in parts]).unique().sort()})
        for p in parts:
            out = out.join(p, on="rule", how="left")
        return out.fill_null(0)

    @property
    def is_empty(self) -> bool:
        return not (self.added.height or self.removed.height or self.changed.height)

    def __str__(self) -> str:
        head = (
            f"{self.added.height:,} added, {self.removed.height:,} removed, "
            f"{self.changed.height:,} changed"
        )
        rows = [f"  {r}: +{a:,} -{d:,} ~{c:,}" for r, a, d, c in self.counts().iter_rows()]
        return "\n".join([head, *rows])

    def _repr_html_(self) -> str:
        return render(
            "What-if: plan differences", str(self).splitlines()[0], [("Per rule", self.counts())]
        )


def diff_frames(old: pl.DataFrame, new: pl.DataFrame) -> PlanDiff:
    """Added, removed and changed dispatches from plan frame ``old`` to ``new``."""
    added = new.join(old.select("dispatch_id"), on="dispatch_id", how="anti")
    removed = old.join(new.select("dispatch_id"), on="dispatch_id", how="anti")
    both = old.select(
        "dispatch_id", "rule", "transaction_id", "status", "url", "body", "due_at"
    ).join(new.select("dispatch_id", "url", "body", "due_at"), on="dispatch_id", suffix="_new")
    changed = both.filter(
        (pl.col("url") != pl.col("url_new"))
        | pl.col("body").ne_missing(pl.col("body_new"))
        | (pl.col("due_at") != pl.col("due_at_new"))
    )
    return PlanDiff(added, removed, changed)

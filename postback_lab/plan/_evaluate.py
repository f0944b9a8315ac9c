"""Which rows fire each rule, and why the others do not: the firing conditions evaluated
once per signature, then on the few rows each rule gathers.

A rule's scope (conditions 1-5) is evaluated on the frame's signatures (a few hundred
rows instead of millions); the rule gathers the rows of the signatures it accepts, then
checks its macros' values (6) and rule 7 on those rows only, and keeps the earliest row
per (transaction_id, status). Rules with the same scope, macros and delay share the
gathered rows. Every exclusion is counted by reason on the way, so ``explain`` costs
nothing more.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .._util import first_of
from ..rules import Rule
from ._rows import SIGNATURE, Signatures, duplicated, next_change, signatures
from ._scope import STATIC, scope
from ._supersede import NEXT_CHANGE, cancels, not_superseded

#: the event columns every plan row carries (the click id links imported platform logs)
CORE = (
    "transaction_id",
    "event_type",
    "status",
    "offer_id",
    "publisher_id",
    "occurred_at",
    "click_id",
)
_DUP = "__dup"


def _code(name: str) -> str:
    return "missing" if name.startswith("missing ") else name


@dataclass
class Selection:
    """The rows that fire one rule (deduped, in plan order) with the columns asked for,
    the events each reason excluded, and ``texts``: rendered macro columns that rules
    sharing these rows reuse."""

    rows: pl.DataFrame
    counts: dict[str, int]
    passed: int  # rows that passed every condition, before the dedupe
    texts: dict[str, pl.Series] = field(default_factory=dict)


class Evaluator:
    """Evaluates rules over one events frame (what every rule shares is computed once).

    ``select`` may be called from several threads at once (one rule each): rules that
    share their rows wait for the first of them to gather the rows, and the rows are let
    go when the last of them has taken them."""

    def __init__(self, frame: pl.DataFrame, rules: Iterable[Rule]) -> None:
        self.rules = list(rules)
        used = columns_used(self.rules)
        # one chunk per column: gathering rows from many chunks is many times slower
        self.frame = frame.select(list(used)).rechunk() if frame.n_chunks() > 1 else frame
        # the three groupings every rule shares, at once: NumPy's sorts let go of the GIL
        enabled = [r for r in self.rules if r.enabled]
        with ThreadPoolExecutor(2) as pool:
            dup = pool.submit(duplicated, self.frame) if enabled else None
            change = (
                pool.submit(lambda: next_change(self.frame, with_status=False)[0])
                if any(cancels(r) for r in enabled)
                else None
            )
            self.sigs: Signatures = signatures(frame)
            self._dup: np.ndarray | None = None if dup is None else dup.result()
            self._change: pl.Series | None = None if change is None else change.result()
        self._static = self._evaluate_static()
        # rules that select the same rows, and the columns they need between them
        self._columns: dict[tuple[object, ...], dict[str, None]] = {}
        self._left: dict[tuple[object, ...], int] = {}  # rules yet to take these rows
        for r in self.rules:
            if r.enabled:
                key = self._key(r)
                self._columns.setdefault(key, dict.fromkeys(CORE)).update(dict.fromkeys(r.columns))
                self._left[key] = self._left.get(key, 0) + 1
        self._cache: dict[tuple[object, ...], Future[Selection]] = {}
        self._lock = threading.Lock()

    # -- once per frame, when first needed ------------------------------------
    @property
    def dup(self) -> np.ndarray:
        if self._dup is None:
            self._dup = duplicated(self.frame, self.sigs.status_codes)
        return self._dup

    @property
    def change(self) -> pl.Series:
        if self._change is None:
            self._change = next_change(self.frame, self.sigs.status_codes, with_status=False)[0]
        return self._change

    # -- per rule ----------------------------------------------------------------
    def _evaluate_static(self) -> dict[str, tuple[np.ndarray, dict[str, int]]]:
        """Per rule, the signatures that pass its scope and the events each condition
        excluded: every rule in one query over the signatures (a query per rule cost
        ~2 ms each, most of a small plan's set-up)."""
        table = self.sigs.table
        reasons = table.select(
            *(
                first_of(
                    [(~cond, pl.lit(name)) for name, cond in scope(r) if name in STATIC],
                    pl.lit(None),
                )
                .cast(pl.String)
                .alias(f"__r{i}")
                for i, r in enumerate(self.rules)
            ),
            "__rows",
        )
        excluded = (
            reasons.unpivot(index="__rows", variable_name="__rule", value_name="reason")
            .filter(pl.col("reason").is_not_null())
            .group_by("__rule", "reason")
            .agg(pl.col("__rows").sum())
        )
        counts: dict[str, dict[str, int]] = {}
        for column, reason, n in excluded.iter_rows():
            counts.setdefault(column, {})[reason] = int(n)
        return {
            r.name: (
                np.flatnonzero(reasons[f"__r{i}"].is_null().to_numpy()),
                counts.get(f"__r{i}", {}),
            )
            for i, r in enumerate(self.rules)
        }

    def _key(self, rule: Rule) -> tuple[object, ...]:
        passing = self._static[rule.name][0]
        delay = rule.delay if cancels(rule) else None
        return (passing.tobytes(), rule.required_columns, delay)

    def counts(self, rule: Rule) -> dict[str, int]:
        """The events the rule's scope excluded, by reason (for a disabled rule, all)."""
        return dict(self._static[rule.name][1])

    def select(self, index: int) -> Selection:
        """The rows that fire ``self.rules[index]`` (an enabled rule)."""
        rule = self.rules[index]
        key = self._key(rule)
        with self._lock:
            pending = self._cache.get(key)
            mine = pending is None
            if pending is None:
                pending = self._cache[key] = Future()
            self._left[key] -= 1
            if not self._left[key]:  # the last rule of these rows: let them go after
                del self._cache[key]
        if mine:
            try:
                pending.set_result(self._gather(rule, list(self._columns[key])))
            except BaseException as exc:
                pending.set_exception(exc)
                raise
        got = pending.result()
        counts = self.counts(rule)
        counts.update(got.counts)
        return Selection(got.rows, counts, got.passed, got.texts)

    def _gather(self, rule: Rule, columns: Sequence[str]) -> Selection:
        positions = self.sigs.rows(self._static[rule.name][0])
        rows = self.frame.select(columns)[positions]
        extra = []
        if cancels(rule):
            extra.append(self.change.gather(positions).alias(NEXT_CHANGE))
        extra.append(pl.Series(_DUP, self.dup[positions]))
        rows = rows.with_columns(extra)
        counts: dict[str, int] = {}
        required = [pl.col(c).is_not_null() for c in rule.required_columns]
        has_values = pl.all_horizontal(required) if required else pl.lit(True)
        checks = rows.select(
            has_values.alias("values"),
            (not_superseded(rule) if cancels(rule) else pl.lit(True)).alias("rule7"),
        )
        values, rule7 = checks["values"], checks["rule7"]
        missing = int((~values).sum())
        superseded = int((values & ~rule7).sum())
        if missing:
            counts["missing"] = missing
        if superseded:
            counts["superseded"] = superseded
        if missing or superseded:
            rows = rows.filter(values & rule7)
        passed = rows.height
        rows = _earliest(rows).drop([_DUP, NEXT_CHANGE], strict=False)
        return Selection(rows, counts, passed)


def columns_used(rules: Iterable[Rule]) -> dict[str, None]:
    """The event columns planning reads: the plan's, the scopes' and the rules' macros."""
    used = dict.fromkeys([*CORE, *SIGNATURE])
    for r in rules:
        used.update(dict.fromkeys(r.columns))
    return used


def _earliest(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per (transaction_id, status), the earliest: rows without a twin as they
    are, then the twins sorted by time, first kept (the plan's order since the start)."""
    dup = rows[_DUP]
    if not dup.any():
        return rows
    twins = (
        rows.filter(dup)
        .sort("occurred_at", maintain_order=True)
        .unique(["transaction_id", "status"], keep="first", maintain_order=True)
    )
    return pl.concat([rows.filter(~dup), twins])

"""The audit's one-query figures equal a plain per-group computation in Polars (distinct
dispatches, delivered dispatches, attempts, failures, latency quantiles) on random logs:
retries across days and status codes, dry runs, time windows."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from postback_lab import LogStore
from postback_lab.auditing import audit

T0 = datetime(2024, 3, 1, tzinfo=UTC)
OUTCOMES = {200: "delivered", 204: "delivered", 500: "failed", 429: "failed", None: "timeout"}

attempt_st = st.tuples(
    st.integers(0, 3 * 24 * 60),  # minutes after T0: three days
    st.sampled_from(sorted(OUTCOMES, key=str)),
    st.floats(1, 500, allow_nan=False).map(lambda v: round(v, 1)),
    st.booleans(),  # a dry run
)
dispatch_st = st.tuples(
    st.sampled_from(["sales", "leads"]),
    st.sampled_from(["1", "2", "3"]),
    st.lists(attempt_st, min_size=1, max_size=4),
)


def _rows(dispatches: list) -> list[dict]:
    rows = []
    for i, (rule, publisher, attempts) in enumerate(dispatches):
        # attempts of a dispatch are numbered in firing order, as the sender writes them
        for n, (minute, code, latency, dry) in enumerate(
            sorted(attempts, key=lambda a: a[0]), start=1
        ):
            rows.append(
                {
                    "dispatch_id": f"d{i}",
                    "run_id": "r",
                    "attempt": n,
                    "rule": rule,
                    "transaction_id": f"t{i}",
                    "publisher_id": publisher,
                    "fired_at": T0 + timedelta(minutes=minute),
                    "latency_ms": latency,
                    "status_code": code,
                    "outcome": "dry_run" if dry else OUTCOMES[code],
                }
            )
    return rows


def _expected(rows: list[dict], by: list[str], lo: datetime | None, hi: datetime | None):
    f = pl.DataFrame(rows).with_columns(
        pl.col("fired_at").dt.truncate("1d").alias("day"),
        pl.col("fired_at").dt.truncate("1h").alias("hour"),
    )
    f = f.filter(pl.col("outcome") != "dry_run")
    if lo is not None:
        f = f.filter(pl.col("fired_at") >= lo)
    if hi is not None:
        f = f.filter(pl.col("fired_at") < hi)
    ok = pl.col("outcome") == "delivered"
    aggs = [
        pl.col("dispatch_id").n_unique().alias("dispatches"),
        pl.col("dispatch_id").filter(ok).n_unique().alias("delivered"),
        pl.len().alias("attempts"),
        (~ok).sum().alias("failed_attempts"),
        pl.col("latency_ms").quantile(0.5, "linear").alias("p50_latency_ms"),
        pl.col("latency_ms").quantile(0.95, "linear").alias("p95_latency_ms"),
    ]
    out = f.group_by(by).agg(aggs) if by else f.select(aggs).filter(pl.col("attempts") > 0)
    return sorted(out.select(*by, *[a.meta.output_name() for a in aggs]).rows(), key=str)


def _rounded(rows: list[tuple]) -> list[tuple]:
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows]


@settings(max_examples=60, deadline=None)
@given(
    dispatches=st.lists(dispatch_st, min_size=1, max_size=25),
    by=st.sampled_from(
        [
            ["publisher_id", "day"],
            ["rule"],
            ["status_code"],
            ["hour"],
            ["rule", "outcome"],
            [],
        ]
    ),
    window=st.tuples(
        st.none() | st.integers(0, 3 * 24 * 60), st.none() | st.integers(0, 3 * 24 * 60)
    ),
    written=st.sampled_from(["marked", "retries first", "unmarked, read-only"]),
)
def test_audit_equals_a_plain_per_group_computation(dispatches, by, window, written):
    """Either way the log was written the audit counts the same: with the retried marks
    (also when a retry was appended before its first attempt), or, on a read-only log
    whose marks lag, by joining with the retried dispatches."""
    rows = _rows(dispatches)
    lo, hi = (None if m is None else T0 + timedelta(minutes=m) for m in window)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "log.duckdb"
        with LogStore(db) as s:
            if written == "retries first":
                s.append([r for r in rows if r["attempt"] != 1])
                s.append([r for r in rows if r["attempt"] == 1])
            else:
                s.append(rows, mark=written == "marked")
        with LogStore(db, read_only=True) as s:
            assert (s.retried_upto() == s.count() - 1) == (written != "unmarked, read-only")
            frame = audit(s, by=by, since=lo, until=hi).frame
    got = frame.select(
        *by,
        "dispatches",
        "delivered",
        "attempts",
        "failed_attempts",
        "p50_latency_ms",
        "p95_latency_ms",
    )
    got = got.with_columns(
        pl.col(c).dt.replace_time_zone("UTC") for c in by if c in ("day", "hour")
    )
    assert _rounded(sorted(got.rows(), key=str)) == _rounded(_expected(rows, by, lo, hi))

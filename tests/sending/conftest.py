from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from postback_lab import read_plan
from postback_lab.plan import PLAN_SCHEMA, with_dispatch_ids
from postback_lab.receiver import Receiver


def make_plan(
    urls: list[str],
    *,
    due: list[datetime] | None = None,
    rule: str = "r",
    timeout_s: float | None = None,
    method: str = "GET",
    body: str | None = None,
    headers: str | None = None,
):
    """A plan with one dispatch per URL (transaction ids t0, t1, …)."""
    n = len(urls)
    now = datetime.now(UTC) - timedelta(seconds=1)
    frame = pl.DataFrame(
        {
            "rule": [rule] * n,
            "transaction_id": [f"t{i}" for i in range(n)],
            "event_type": ["conversion"] * n,
            "status": ["approved"] * n,
            "offer_id": ["1"] * n,
            "publisher_id": ["7"] * n,
            "method": [method] * n,
            "url": urls,
            "body": [body] * n,
            "host": [u.split("/")[2] for u in urls],
            "due_at": due or [now] * n,
            "headers": [headers] * n,
            "timeout_s": [timeout_s] * n,
            "occurred_at": due or [now] * n,
        },
        schema_overrides={k: v for k, v in PLAN_SCHEMA.items() if k != "dispatch_id"},
    )
    return read_plan(with_dispatch_ids(frame))


@pytest.fixture
def receiver():
    with Receiver() as rx:
        yield rx


@pytest.fixture
def db(tmp_path):
    return tmp_path / "log.duckdb"

"""One definition of a postback (a dispatch) in the audit, the explorer's headline, ``log
show`` and reconcile: an imported attempt counts as an attempt of the dispatch it links to,
so an imported failure that a later send delivered is one delivered postback, and rows of
an export without a conversion-status column are not postbacks of their own."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postback_lab import LogStore, Receiver, Retry, build_plan, send_sync
from postback_lab.auditing import audit, backfill_sync, headline, reconcile
from postback_lab.store import import_log

from .test_reconcile_backfill_audit import T0, _events, _rules


def _export(path: Path, rows: list[tuple[str, int, str]], status: bool) -> Path:
    """A platform export: (transaction, response code, rule as the platform spells it),
    fired a few minutes after the conversion, with or without a conversion-status column."""
    frame = pl.DataFrame(
        {
            "Firing Time": [
                (T0 + timedelta(minutes=int(t[1:]) + 2 + n)).strftime("%Y-%m-%d %H:%M:%S")
                for n, (t, _, _) in enumerate(rows)
            ],
            "Transaction ID": [t for t, _, _ in rows],
            "Response Code": [c for _, c, _ in rows],
            "Postback Name": [r for _, _, r in rows],
        }
    )
    if status:
        frame = frame.with_columns(pl.lit("approved").alias("Status"))
    frame.write_csv(path)
    return path


def _figures(db: Path, plan) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(delivered, postbacks) by reconcile, by the audit, and by the log's headline."""
    rec = reconcile(plan, db).totals
    whole = audit(db, by=[]).overall
    with LogStore(db) as store:
        head = headline(store)
    return (
        (rec["delivered"], rec["delivered"] + rec["failed"]),
        (whole.delivered, whole.postbacks),
        (head.delivered, head.postbacks),
    )


def test_imported_failures_a_backfill_delivered_count_once(tmp_path):
    """The issue's case: an export without a status column (failures and one delivery,
    one rule name in capitals), then a backfill: 6 of 6 delivered everywhere."""
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        plan = build_plan(_events(), _rules(rx.url))
        LogStore(db).close()
        export = [("t1", 500, "sales"), ("t2", 500, "SALES"), ("t3", 200, "sales")]
        import_log(_export(tmp_path / "e.csv", export, status=False), db)
        backfill_sync(plan, db, retry=Retry.none(), progress=False)
        assert len(rx.requests) == 5  # t3 was delivered by the platform
    assert _figures(db, plan) == ((6, 6), (6, 6), (6, 6))
    by_rule = audit(db, by=["rule"]).to_polars()
    assert by_rule.select("rule", "dispatches", "delivered", "attempts").rows() == [
        ("sales", 6, 6, 8)
    ]
    by_pub = audit(db, by=["publisher_id"]).to_polars()
    # the imported failures of t1 and t2 count for their dispatch's publisher; t3 was
    # never sent by us, so the log does not know its publisher
    assert by_pub.select("publisher_id", "dispatches", "delivered", "attempts").rows() == [
        ("12", 3, 3, 3),
        ("7", 2, 2, 4),
        (None, 1, 1, 1),
    ]
    shown = subprocess.run(
        [sys.executable, "-m", "postback_lab.cli", "log", "show", "--db", str(db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.startswith("100.0% delivered (6 of 6 postbacks) · 8 attempts, 25.0% failed")


def test_audit_by_rule_groups_imported_spellings_under_one_rule(tmp_path):
    """Imported names that differ in case or spacing are one rule (issue 27 item 9)."""
    db = tmp_path / "log.duckdb"
    LogStore(db).close()
    export = [
        ("t1", 500, "Sales"),
        ("t1", 200, " sales "),
        ("t2", 500, "SALES"),
        ("t3", 200, "Sales"),
    ]
    import_log(_export(tmp_path / "e.csv", export, status=False), db)
    got = audit(db, by=["rule"]).to_polars()
    assert got.select("rule", "dispatches", "delivered", "attempts").rows() == [("Sales", 3, 2, 4)]


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("import"),
            st.lists(
                st.tuples(
                    st.sampled_from(["t1", "t2", "t3", "t4", "t5", "t6"]),
                    st.sampled_from([200, 500, 503]),
                    st.sampled_from(["sales", "SALES", " Sales "]),
                ),
                min_size=1,
                max_size=5,
            ),
            st.booleans(),  # the export has a conversion-status column
        ),
        st.tuples(st.just("send"), st.sets(st.integers(0, 5), min_size=1), st.booleans()),
        st.tuples(st.just("backfill"), st.booleans()),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_audit_and_reconcile_agree_after_any_imports_sends_and_backfills(steps):
    with tempfile.TemporaryDirectory() as tmp, Receiver(seed=7) as rx:
        db = Path(tmp) / "log.duckdb"
        plan = build_plan(_events(), _rules(rx.url))
        LogStore(db).close()
        for n, step in enumerate(steps):
            if step[0] == "import":
                import_log(_export(Path(tmp) / f"e{n}.csv", step[1], step[2]), db)
                continue
            rx.fail_rate = 0.5 if step[-1] else 0.0
            if step[0] == "send":
                part = plan.frame.with_row_index("__n").filter(pl.col("__n").is_in(sorted(step[1])))
                send_sync(
                    plan.filter(pl.col("dispatch_id").is_in(part["dispatch_id"].implode())),
                    db,
                    retry=Retry.none(),
                    progress=False,
                )
            else:
                backfill_sync(plan, db, retry=Retry.none(), progress=False)
        rec, aud, head = _figures(db, plan)
        assert aud == rec and head == rec

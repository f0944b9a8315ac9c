"""The explorer's search filters: the conversion status, "not these" on any filter (the
same LogFilter exclusions as ``log show --not-rule``), and a search over response bodies."""

from __future__ import annotations

from datetime import UTC, datetime

from postback_lab import LogStore, explore

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_status_exclusion_and_body_search(tmp_path):
    db = tmp_path / "log.duckdb"
    rows = [
        {
            "dispatch_id": f"d{i}",
            "attempt": 1,
            "rule": "sales" if i < 3 else "leads",
            "transaction_id": f"t{i}",
            "host": "p.example",
            "status": "approved" if i % 2 else "rejected",
            "fired_at": T0,
            "status_code": 200 if i != 4 else 503,
            "outcome": "delivered" if i != 4 else "failed",
            "response_body": "slow down: quota" if i == 4 else "ok",
        }
        for i in range(5)
    ]
    with LogStore(db) as s:
        s.append(rows)
    ex = explore(db)
    try:
        assert list(ex.filters["status"].options) == ["approved", "rejected"]
        ex.filters["status"].value = ("rejected",)
        assert sorted(ex.rows()["transaction_id"]) == ["t0", "t2", "t4"]
        ex.exclude["status"].value = True  # not rejected
        assert sorted(ex.rows()["transaction_id"]) == ["t1", "t3"]
        ex.filters["status"].value = ()
        ex.exclude["status"].value = False
        ex.filters["rule"].value = ("sales",)
        ex.exclude["rule"].value = True
        assert sorted(ex.rows()["transaction_id"]) == ["t3", "t4"]
        ex.text.value = "QUOTA"
        assert ex.rows()["transaction_id"].to_list() == ["t4"]
        assert ex.kpi_text().startswith("0.0% delivered (0 of 1 postbacks)")
    finally:
        ex.close()

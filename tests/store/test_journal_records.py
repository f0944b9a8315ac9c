"""The sender's compact 'done' journal records (only what the attempt added) are replayed
into whole log rows from their 'start' records."""

from __future__ import annotations

import json

from postback_lab import LogStore
from postback_lab.store._journal import replay


def test_a_compact_done_record_takes_the_rest_of_its_row_from_its_start(tmp_path):
    journal = tmp_path / "log.duckdb.inflight-run1.jsonl"
    head = {
        "dispatch_id": "d1",
        "run_id": "run1",
        "rule": "r",
        "transaction_id": "t1",
        "offer_id": "o",
        "publisher_id": "p",
        "method": "GET",
        "url": "http://x.test/p?t=t1",
        "host": "x.test",
        "status": "approved",
        "due_at": "2024-01-01T00:00:00+00:00",
        "fired_at": "2024-01-01T00:00:01+00:00",
    }
    lines = [
        {"k": "start", **head, "attempt": 1},
        {"k": "start", **head, "dispatch_id": "d2", "transaction_id": "t2", "attempt": 3},
        {
            "k": "done",
            "dispatch_id": "d1",
            "run_id": "run1",
            "attempt": 1,
            "fired_at": "2024-01-01T00:00:01.500000+00:00",
            "latency_ms": 12.5,
            "status_code": 200,
            "outcome": "delivered",
            "error": None,
            "response_body": "OK",
        },
    ]
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = replay(journal).sort("dispatch_id")
    assert rows.select(
        "dispatch_id", "attempt", "transaction_id", "url", "offer_id", "outcome", "status_code"
    ).rows() == [
        ("d1", 1, "t1", "http://x.test/p?t=t1", "o", "delivered", 200),
        ("d2", 3, "t2", "http://x.test/p?t=t1", "o", "cancelled", None),
    ]
    assert rows["latency_ms"].to_list() == [12.5, None]
    assert str(rows["fired_at"][0]) == "2024-01-01 00:00:01.500000+00:00"
    with LogStore(tmp_path / "log.duckdb") as s:  # and they append as log rows
        assert s.append(rows, check_attempts=False) == 2

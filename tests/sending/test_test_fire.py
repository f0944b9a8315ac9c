"""Test-fire: one postback of one rule, fired once, shown exactly, logged as 'test' —
and the real send still happens."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from postback_lab import (
    InputError,
    LogStore,
    Receiver,
    backfill_sync,
    build_plan,
    read_rules,
    reconcile,
    test_rule_sync,
)
from postback_lab.cli import main
from postback_lab.sending import Retry, send_sync

SECRET = "tok-123456"
EVENTS = pl.DataFrame(
    {
        "transaction_id": ["t1", "t2"],
        "status": ["approved", "rejected"],
        "occurred_at": ["2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z"],
        "external_transaction_id": ["aff-1", "aff-2"],
        "payout": [12.5, 3.0],
    }
)


def _rules(url: str):  # type: ignore[no-untyped-def]
    return read_rules(
        [
            {
                "name": "CRM",
                "method": "POST",
                "url": url + "/crm?key={env:CRM_TOKEN}",
                "headers": {"Authorization": "Bearer {env:CRM_TOKEN}"},
                "body": '{"id": "{{ transaction_id }}", "amount": {{ payout }}}',
            }
        ]
    )


def test_rule_test_fires_once_logs_test_and_the_real_send_still_happens(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_TOKEN", SECRET)
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rules = _rules(rx.url)
        result = test_rule_sync(
            rules["CRM"], EVENTS, transaction_id="t1", log=db, real_transaction=True
        )
        assert result.ok and result.status_code == 200
        (got,) = rx.received()
        assert json.loads(got.body) == {"id": "t1", "amount": 12.5}
        assert got.headers["authorization"] == f"Bearer {SECRET}"
        # shown with the secret masked, everything else exact
        assert result.url == rx.url + "/crm?key={env:CRM_TOKEN}"
        assert result.headers["Authorization"] == "Bearer {env:CRM_TOKEN}"
        assert result.body == '{"id": "t1", "amount": 12.5}'
        assert SECRET not in str(result) and SECRET not in result._repr_html_()
        with LogStore(db) as log:
            rows = log.attempts().select("transaction_id", "outcome", "status_code", "attempt")
            assert rows.rows() == [("t1", "test", 200, 1)]
        # the plan's own send is not skipped: a test never counts as delivered
        sent = send_sync(build_plan(EVENTS, rules), db, retry=Retry.none(), progress=False)
        assert sent.delivered == 1 and sent.skipped_delivered == 0
        assert len(rx.received()) == 2
        with LogStore(db) as log:
            assert log.attempts().filter(pl.col("transaction_id") == "t1")["attempt"].to_list() == [
                1,
                2,
            ]


def test_sample_and_dry_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_TOKEN", SECRET)
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rule = _rules(rx.url)["CRM"]
        shown = test_rule_sync(rule, dry_run=True, log=db)
        assert not shown.fired and rx.received() == []
        assert shown.transaction_id == "test-crm"
        assert json.loads(shown.body or "") == {"id": "test-crm", "amount": 1}
        assert not db.exists()
        fired = test_rule_sync(rule, log=db)
        assert fired.ok and len(rx.received()) == 1


def test_a_transaction_that_does_not_fire_says_why() -> None:
    rule = _rules("https://h.example")["CRM"]
    with pytest.raises(
        InputError,
        match="transaction 't2' does not fire rule 'CRM': not fired: status is 'rejected'",
    ):
        test_rule_sync(rule, EVENTS, transaction_id="t2", dry_run=True)


def test_cli_test_command(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CRM_TOKEN", SECRET)
    events = tmp_path / "e.csv"
    EVENTS.write_csv(events)
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rules = tmp_path / "r.yaml"
        rules.write_text(
            "postbacks:\n  - name: Partner\n"
            f"    url: {rx.url}/pb?cid={{external_transaction_id}}&p={{payout}}\n"
        )
        args = ["test", "--rules", str(rules), "--rule", "Partner", "--db", str(db)]
        real = [*args, "--events", str(events), "--transaction-id", "t1"]
        assert main(real) == 2  # a real conversion needs the flag
        assert "transaction 't1' is a real conversion" in capsys.readouterr().err
        assert rx.received() == []
        assert main([*real, "--real-transaction"]) == 0
        out = capsys.readouterr().out
        assert f"> GET {rx.url}/pb?cid=aff-1&p=12.5" in out and "< 200" in out
        assert rx.received()[0].query == [("cid", "aff-1"), ("p", "12.5")]
        rx.set_script("/pb", ["500"])
        assert main([*args, "--sample"]) == 1
        assert "not accepted: HTTP 500" in capsys.readouterr().out
        assert main([*args[:-4], "--rule", "Partnr", "--sample", "--db", str(db)]) == 2
        assert "no rule named 'Partnr' (did you mean 'Partner'?)" in capsys.readouterr().err


def test_a_test_fire_carries_its_own_ids_so_the_real_send_is_the_only_real_one(
    tmp_path, monkeypatch
):
    """A test-fire of a real transaction is refused without the flag (nothing sent, no
    log); with it, its Idempotency-Key and webhook-id are its own, the log says 'test',
    and the later backfill sends the real postback with the dispatch id: a partner that
    de-duplicates by key keeps the real one."""
    monkeypatch.setenv("WH_SECRET", "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5")
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rules = read_rules(
            [
                {
                    "name": "Signed",
                    "url": rx.url + "/pb?t={transaction_id}",
                    "sign": {"secret": "{env:WH_SECRET}"},
                }
            ]
        )
        plan = build_plan(EVENTS, rules)
        dispatch = plan.frame.filter(pl.col("transaction_id") == "t1")["dispatch_id"].item()
        with pytest.raises(InputError, match="transaction 't1' is a real conversion: "):
            test_rule_sync(rules["Signed"], EVENTS, transaction_id="t1", log=db)
        assert rx.received() == [] and not db.exists()

        fired = test_rule_sync(
            rules["Signed"], EVENTS, transaction_id="t1", log=db, real_transaction=True
        )
        assert fired.ok
        with LogStore(db) as log:
            (run,) = log.runs().filter(pl.col("kind") == "test")["run_id"].to_list()
        result = backfill_sync(plan, db, retry=Retry.none(), progress=False)
        assert result.sent is not None and result.sent.delivered == 1
        got = [
            (r.query, r.headers["idempotency-key"], r.headers["webhook-id"]) for r in rx.received()
        ]
    test_id = f"test:{dispatch}:{run}"
    assert got[0] == ([("t", "t1")], test_id, test_id)
    assert got[1] == ([("t", "t1")], dispatch, dispatch)  # the real one: once, its own key
    assert len(got) == 2
    with LogStore(db, read_only=True) as log:
        rows = log.attempts().filter(pl.col("dispatch_id") == dispatch)
        assert rows.select("outcome", "attempt").rows() == [("test", 1), ("delivered", 2)]
    assert reconcile(plan, db).totals["delivered"] == 1

"""Imported attempts link to dispatches by one rule (rule + transaction id, + status when
given; rule names ignoring case and spaces), shared by reconcile, send and backfill: a send
after an import fires nothing that reconcile calls delivered, and imported rows that link
to nothing are reported before anything is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from postback_lab import LogStore, Receiver, Retry, build_plan, read_rules
from postback_lab._errors import UnlinkedImportsError
from postback_lab.auditing import backfill_sync, reconcile
from postback_lab.cli import main
from postback_lab.sending import send_sync
from postback_lab.store import import_log

T0 = datetime(2024, 1, 1, tzinfo=UTC)
APPROVED, REJECTED = "Affili approved sales", "Affili rejected"


def _events() -> pl.DataFrame:
    """t1-t4 approved, t5-t6 rejected (so each transaction has one dispatch)."""
    return pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(1, 7)],
            "status": ["approved"] * 4 + ["rejected"] * 2,
            "occurred_at": [T0 + timedelta(minutes=i) for i in range(6)],
            "publisher_id": "7",
        }
    )


def _plan(base: str):
    rules = read_rules(
        [
            {"name": APPROVED, "fire_on": "approved", "url": base + "/a?t={transaction_id}"},
            {"name": REJECTED, "fire_on": "rejected", "url": base + "/r?t={transaction_id}"},
        ]
    )
    return build_plan(_events(), rules)


def _export(tmp_path: Path, lines: list[str], status: bool = True) -> Path:
    """An export: (rule, transaction, code[, status]) per line, fired after the plan."""
    head = "Firing Time,Transaction ID,Response Code,Postback Name" + (",Status" if status else "")
    rows = []
    for i, line in enumerate(lines):
        rule, tid, code, *st = line.split("|")
        when = f"2024-01-01 01:{i:02d}:00"
        rows.append(",".join([when, tid, code, rule, *(st if status else [])]))
    path = tmp_path / "export.csv"
    path.write_text(head + "\n" + "\n".join(rows) + "\n")
    return path


def _sent(rx: Receiver) -> list[str]:
    return sorted(q for r in rx.received() for k, q in r.query if k == "t")


def _states(plan, db) -> dict[str, str]:
    return dict(reconcile(plan, db).dispatches.select("transaction_id", "state").iter_rows())


DELIVERED_T1_T2_T5 = {
    "t1": "delivered",
    "t2": "delivered",
    "t3": "failed",
    "t4": "missed",
    "t5": "delivered",
    "t6": "missed",
}


def test_approved_declined_export_then_send_fires_only_what_was_not_delivered(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        plan = _plan(rx.url)
        export = _export(
            tmp_path,
            [
                f"{APPROVED}|t1|200|Approved",
                f"{APPROVED}|t2|200|Approved",
                f"{APPROVED}|t3|500|Approved",
                f"{REJECTED}|t5|200|Declined",
            ],
        )
        import_log(export, db)
        assert _states(plan, db) == DELIVERED_T1_T2_T5
        rec = reconcile(plan, db)  # each imported attempt counts once
        assert rec.duplicates.height == 0 and rec.dispatches["attempts"].sum() == 4
        result = send_sync(plan, db, progress=False, retry=Retry.none())
        assert _sent(rx) == ["t3", "t4", "t6"]
        assert (result.skipped_delivered, result.delivered) == (3, 3)
        again = send_sync(plan, db, progress=False)
        assert again.attempts == 0 and len(rx.received()) == 3


def test_export_without_status_column_then_cli_send_refires_nothing_delivered(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        plan = _plan(rx.url)
        plan.write_parquet(tmp_path / "plan.parquet")
        export = _export(
            tmp_path,
            [
                f"{APPROVED}|t1|200",
                f"{APPROVED}|t2|200",
                f"{APPROVED}|t3|500",
                f"{REJECTED}|t5|200",
            ],
            status=False,
        )
        assert main(["import-log", str(export), "--db", str(db)]) == 0
        assert _states(plan, db) == DELIVERED_T1_T2_T5
        code = main(["send", str(tmp_path / "plan.parquet"), "--db", str(db), "--no-progress"])
        assert code == 0
        assert _sent(rx) == ["t3", "t4", "t6"]


def test_rule_names_differing_in_case_and_spaces_link(tmp_path, capsys):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        plan = _plan(rx.url)
        export = _export(
            tmp_path,
            [
                f"{APPROVED.upper()}|t1|200|approved",
                "  affili  approved   SALES |t2|200",
                f"{REJECTED.lower()}|t5|200|rejected",
            ],
        )
        import_log(export, db)
        rec = reconcile(plan, db)
        assert rec.totals["delivered"] == 3 and rec.unexpected.height == 0
        send_sync(plan, db, progress=False, retry=Retry.none())
        assert _sent(rx) == ["t3", "t4", "t6"]
    assert "warning" not in capsys.readouterr().err


def test_rows_linking_to_nothing_are_reported_before_sending(tmp_path, capsys):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        plan = _plan(rx.url)
        export = _export(
            tmp_path,
            [
                "Affili approved sale|t1|200|approved",  # not the rule's name
                f"{APPROVED}|t2|200|pending",  # no dispatch for that status
                f"{APPROVED}|t99|200|approved",  # not a transaction of the plan
                f"{APPROVED}|t3|200|approved",
            ],
        )
        import_log(export, db)
        capsys.readouterr()
        send_sync(plan, db, progress=False, retry=Retry.none())
        err = capsys.readouterr().err
        # t1 and t2 go again (nothing delivered links to them), and the user is told why
        assert _sent(rx) == ["t1", "t2", "t4", "t5", "t6"]
    assert err.startswith(
        "warning: 3 imported attempts of this plan's rules match none of its dispatches "
        "(by conversion id, else click id, rule and status)"
    )
    assert (
        "  rule 'Affili approved sale' (closest rule in the plan: 'Affili approved sales'), "
        "transaction 't1', status 'approved', fired 2024-01-01 01:00:00, code 200"
    ) in err
    assert f"  rule '{APPROVED}', transaction 't2', status 'pending'" in err
    # a delivery of the plan's rule for a conversion the plan lacks: another id space?
    assert f"  rule '{APPROVED}', transaction 't99', status 'approved'" in err
    rec = reconcile(plan, db)
    assert sorted(rec.unexpected["transaction_id"].to_list()) == ["t1", "t2", "t99"]


def test_backfill_after_import_sends_only_the_missing_and_warns_once(tmp_path, capsys):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        plan = _plan(rx.url)
        export = _export(
            tmp_path,
            [
                f"{APPROVED.upper()}|t1|200|Approved",
                f"{APPROVED}|t2|200",
                f"{APPROVED}|t3|500|approved",
                "Affili rejectd|t5|200|Declined",
            ],
        )
        import_log(export, db)
        capsys.readouterr()
        # a delivery it cannot link may be t5's: the backfill stops before sending
        with pytest.raises(UnlinkedImportsError) as stop:
            backfill_sync(plan, db, progress=False, retry=Retry.none())
        assert rx.received() == []
        assert str(stop.value).startswith(
            "backfill stopped before sending: 1 imported attempt (1 of rule 'Affili rejectd') "
            "link to no dispatch but could be deliveries of the 4 postbacks it would send"
        )
        assert "closest rule in the plan: 'Affili rejected'" in str(stop.value)
        result = backfill_sync(plan, db, progress=False, retry=Retry.none(), allow_unlinked=True)
        assert _sent(rx) == ["t3", "t4", "t5", "t6"]
        assert sorted(result.to_send.frame["transaction_id"]) == ["t3", "t4", "t5", "t6"]
        assert result.sent.delivered == 4 and result.sent.skipped_delivered == 2
    err = capsys.readouterr().err
    assert err.count("warning: 1 imported attempt of this plan's rules") == 1
    assert "closest rule in the plan: 'Affili rejected'" in err


def test_links_and_delivered_ids_agree_with_reconcile(tmp_path):
    plan = _plan("https://p.example")
    db = tmp_path / "log.duckdb"
    import_log(_export(tmp_path, [f"{APPROVED}|t1|200|approved", f"{APPROVED.lower()}|t2|200"]), db)
    with LogStore(db) as s:
        ids = s.delivered_ids(plan.frame)
        links = s.links(plan.frame)
    rec = reconcile(plan, db)
    assert ids == set(rec.ids("delivered")) and len(ids) == 2
    assert links.unlinked.height == 0 and links.warning() is None


def test_an_exact_name_wins_over_one_differing_only_in_case():
    from postback_lab.store._link import resolve_rules

    assert resolve_rules(["Sales", "SALES", "sales ", "other"], ["Sales", "sales"]) == {
        "Sales": "Sales"
    }
    assert resolve_rules([" SALES", None], ["Sales", "Refunds"]) == {" SALES": "Sales"}


@pytest.mark.parametrize("status", [True, False])
def test_old_logs_with_unnormalised_statuses_still_link(tmp_path, status):
    """Rows imported before statuses were normalised say 'Approved': still linked."""
    plan = _plan("https://p.example")
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        s.append(
            [
                {
                    "rule": APPROVED,
                    "transaction_id": "t1",
                    "status": "Approved" if status else None,
                    "fired_at": T0 + timedelta(hours=1),
                    "status_code": 200,
                    "outcome": "delivered",
                    "attempt": 1,
                    "run_id": "import-old",
                    "source": "imported",
                }
            ],
            check_attempts=False,
        )
        assert s.delivered_ids(plan.frame) == set(
            plan.frame.filter(pl.col("transaction_id") == "t1")["dispatch_id"]
        )

"""Imported rows that link to no dispatch: reconcile counts them unexpected with examples,
a backfill stops before sending when they could be its deliveries (exit 1) unless told
``--allow-unlinked``; import-log with ``--rules`` links rows of a log without a postback
name by their URL, publisher and offer, checks ``--rule``, exits 1 on rows it cannot link,
and ``--undo RUN_ID`` takes an import back out."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from postback_lab import LogStore, Receiver, Retry, build_plan, read_events, read_rules
from postback_lab._errors import LogImportError, UnlinkedImportsError
from postback_lab.auditing import backfill_sync, reconcile
from postback_lab.cli import main
from postback_lab.store import import_log, remove_import

DOCS = Path(__file__).parent.parent / "fixtures" / "presets" / "docs"
RULE = "Partner approved"


def _rules_file(tmp_path: Path, base: str) -> Path:
    path = tmp_path / "postbacks.yaml"
    path.write_text(
        "postbacks:\n"
        f"  - name: {RULE}\n"
        "    fire_on: approved\n"
        f"    url: {base}/pb?t={{transaction_id}}\n"
    )
    return path


def _log_with_an_unknown_conversion(tmp_path: Path) -> Path:
    """Everflow's log plus a delivery of a conversion the export lacks (another id space)."""
    text = (DOCS / "everflow_postback_log.csv").read_text()
    text += (
        "2026-11-03 19:00:02,ffffffffffffffffffffffffffffffff,c1b2c3d4e5f60718293a4b5c6d7e8f99,"
        "42,7,https://partner.example/pb?click_id=p-9,200,OK\n"
    )
    path = tmp_path / "everflow_log.csv"
    path.write_text(text)
    return path


def test_unlinked_rows_are_unexpected_and_stop_a_backfill(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rules = read_rules(_rules_file(tmp_path, rx.url))
        plan = build_plan(read_events(DOCS / "everflow_conversions.csv", preset="everflow"), rules)
        import_log(_log_with_an_unknown_conversion(tmp_path), db, preset="everflow", rule=RULE)
        rec = reconcile(plan, db)
        assert rec.totals["unexpected"] == 1
        assert rec.unexpected["transaction_id"].to_list() == ["ffffffffffffffffffffffffffffffff"]
        with pytest.raises(UnlinkedImportsError) as stop:
            backfill_sync(plan, db, progress=False, retry=Retry.none())
        assert rx.received() == []
        assert str(stop.value).splitlines()[:2] == [
            "backfill stopped before sending: 1 imported attempt (1 of rule 'Partner approved') "
            "link to no dispatch but could be deliveries of the 2 postbacks it would send, so "
            "it cannot tell what was delivered:",
            "  rule 'Partner approved', transaction 'ffffffffffffffffffffffffffffffff' (click "
            "'c1b2c3d4e5f60718293a4b5c6d7e8f99'), fired 2026-11-03 19:00:02, code 200",
        ]
        dry = backfill_sync(plan, db, progress=False, dry_run=True)  # a dry run shows it
        assert "could be deliveries of the 2 postbacks" in str(dry)
        done = backfill_sync(plan, db, progress=False, retry=Retry.none(), allow_unlinked=True)
        assert done.sent is not None and done.sent.delivered == 2


def test_cli_backfill_exits_1_on_unlinked_rows_and_sends_with_allow_unlinked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rules = _rules_file(tmp_path, rx.url)
        log = str(_log_with_an_unknown_conversion(tmp_path))
        assert (
            main(["import-log", log, "--db", str(db), "--source", "everflow", "--rule", RULE]) == 0
        )
        args = [str(DOCS / "everflow_conversions.csv"), "--rules", str(rules), "--db", str(db)]
        args += ["--source", "everflow", "--no-progress", "--retries", "none"]
        capsys.readouterr()
        assert main(["backfill", *args]) == 1
        assert "backfill stopped before sending: 1 imported attempt" in capsys.readouterr().err
        assert rx.received() == []
        assert main(["backfill", *args, "--allow-unlinked"]) == 0
        assert len(rx.received()) == 2


# -- import-log --rules: a multi-partner log without a postback-name column ------------------

RULES = """\
postbacks:
  - name: Affili sales
    fire_on: approved
    publishers: [7]
    url: https://affili.example/postback?clickid={external_transaction_id}&amount={payout}
  - name: Push Partners sales
    fire_on: approved
    publishers: [12]
    url: https://push.example/s2s/{external_transaction_id}?goal=sale
  - name: Push Partners leads
    fire_on: approved
    publishers: [12]
    url: https://push.example/s2s/{external_transaction_id}?goal=lead
"""

MULTI = """\
Firing Time,Transaction ID,Response Code,URL,Publisher ID
2026-11-03 10:00:00,t1,200,https://affili.example/postback?clickid=A1&amount=12.5,7
2026-11-03 10:01:00,t2,200,https://push.example/s2s/B2?goal=sale,12
2026-11-03 10:02:00,t3,500,https://push.example/s2s/B3?goal=lead,12
2026-11-03 10:03:00,t4,200,https://other.example/pb?c=Z,9
"""


def test_rules_link_rows_by_url_publisher_and_offer(tmp_path: Path) -> None:
    (tmp_path / "postbacks.yaml").write_text(RULES)
    export = tmp_path / "multi.csv"
    export.write_text(MULTI)
    db = tmp_path / "log.duckdb"
    result = import_log(export, db, rules=tmp_path / "postbacks.yaml")
    with LogStore(db) as s:
        got = s.attempts().select("transaction_id", "rule").rows()
    assert got == [
        ("t1", "Affili sales"),
        ("t2", "Push Partners sales"),
        ("t3", "Push Partners leads"),
        ("t4", None),  # no rule of the file fires that URL
    ]
    assert result.without_rule == 1


def test_cli_import_exits_1_when_rows_cannot_be_linked_and_undo_removes_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "postbacks.yaml").write_text(RULES)
    export = tmp_path / "multi.csv"
    export.write_text(MULTI)
    db = tmp_path / "log.duckdb"
    code = main(
        ["import-log", str(export), "--db", str(db), "--rules", str(tmp_path / "postbacks.yaml")]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "error: 1 imported rows cannot be linked to a dispatch" in err
    run_id = err.split("--undo ")[1].split()[0]
    with LogStore(db) as s:
        assert s.count() == 4
    assert main(["import-log", "--undo", run_id, "--db", str(db)]) == 0
    assert f"removed import {run_id}: 4 rows" in capsys.readouterr().out
    with LogStore(db) as s:
        assert s.count() == 0 and s.runs().height == 0
    assert main(["import-log", "--undo", run_id, "--db", str(db)]) == 2
    assert f"'{run_id}' is not in the log; imports in the log: (none)" in capsys.readouterr().err


def test_a_mistyped_rule_is_checked_against_the_rules(tmp_path: Path) -> None:
    (tmp_path / "postbacks.yaml").write_text(RULES)
    export = tmp_path / "multi.csv"
    export.write_text(MULTI)
    with pytest.raises(LogImportError) as err:
        import_log(
            export, tmp_path / "l.duckdb", rule="Afili sales", rules=tmp_path / "postbacks.yaml"
        )
    assert "--rule 'Afili sales': " in str(err.value)
    assert "has no such rule (did you mean 'Affili sales'?)" in str(err.value)
    assert not (tmp_path / "l.duckdb").exists()


def test_remove_import_refuses_a_send_run(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    LogStore(db).close()
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO runs (run_id, kind, state) VALUES ('r1', 'send', 'completed')")
    with pytest.raises(LogImportError, match="'r1' is not an import run"):
        remove_import("r1", db)


def test_cli_import_source_defaults_to_auto(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "log.duckdb"
    log = str(DOCS / "cake_postback_log.csv")
    assert main(["import-log", log, "--db", str(db), "--rule", RULE]) == 0
    assert "preset=auto: read as CAKE's postback log" in capsys.readouterr().out


def test_a_narrowed_backfill_does_not_stop_on_imports_of_dispatches_outside_its_window(
    tmp_path: Path,
) -> None:
    """Imported rows link against the whole plan: a delivery of a conversion outside the
    window (or the replay's filters) links to its dispatch, so it is no unlinked row."""
    db = tmp_path / "log.duckdb"
    text = (DOCS / "everflow_postback_log.csv").read_text()
    text += (
        "2026-11-03 19:00:02,6659e555b03845279bcdb9c2d0391b9f,c1b2c3d4e5f60718293a4b5c6d7e8f92,"
        "42,7,https://partner.example/pb?click_id=p-4,200,OK\n"
    )
    log = tmp_path / "everflow_log.csv"
    log.write_text(text)
    with Receiver() as rx:
        rules = read_rules(_rules_file(tmp_path, rx.url))
        plan = build_plan(read_events(DOCS / "everflow_conversions.csv", preset="everflow"), rules)
        import_log(log, db, preset="everflow", rule=RULE)
        assert reconcile(plan, db).totals["unexpected"] == 0
        done = backfill_sync(
            plan, db, until="2026-11-03T16:00:00Z", progress=False, retry=Retry.none()
        )
        assert done.unlinked is None or done.unlinked.height == 0
        assert sorted(done.to_send.frame["transaction_id"].to_list()) == [
            "307971a211b74db98c3c11d5e83c082a"
        ]
        assert len(rx.received()) == 1


def test_cli_backfill_reads_its_window_in_the_timezone_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since/--until without an offset are read in --timezone, as plan reads them."""
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rules = _rules_file(tmp_path, rx.url)
        log = str(DOCS / "everflow_postback_log.csv")
        assert (
            main(["import-log", log, "--db", str(db), "--source", "everflow", "--rule", RULE]) == 0
        )
        capsys.readouterr()
        args = ["backfill", str(DOCS / "everflow_conversions.csv"), "--rules", str(rules)]
        args += ["--db", str(db), "--source", "everflow", "--timezone", "America/New_York"]
        args += ["--until", "2026-11-03T16:00", "--dry-run", "--format", "json"]
        assert main(args) == 0
        out = json.loads(capsys.readouterr().out)
        # 14:25 and 15:01 New York time are before 16:00 New York time: one of them failed
        assert out["to_send"] == 1
        assert rx.received() == []

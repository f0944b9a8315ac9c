"""``import-log --rules FILE`` reads the export's statuses with the file's ``statuses:``
(your spellings, statuses left out), as every command that reads events with that file
does; ``--status-map``/``--ignore-status`` win, status by status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from postback_lab import LogStore, import_log, read_rules
from postback_lab.cli import main

EXPORT = """\
Firing Time,Transaction ID,Response Code,Postback Name,Status
2026-11-03 10:00:00,T1,200,sales,Sale
2026-11-03 10:01:00,T2,500,sales,trash
2026-11-03 10:02:00,T3,200,sales,ping
2026-11-03 10:03:00,T4,200,sales,approved
2026-11-03 10:04:00,T5,200,sales,test
"""

RULES = """\
statuses:
  map: {Sale: approved, trash: rejected}
  ignore: [ping, test]
postbacks:
  - name: sales
    fire_on: all
    url: https://p.example/?c={click_id}
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    export, rules = tmp_path / "export.csv", tmp_path / "postbacks.yaml"
    export.write_text(EXPORT)
    rules.write_text(RULES)
    return export, rules


def _imported(db: Path) -> list[tuple[str, str, str, int]]:
    with LogStore(db, read_only=True) as s:
        rows = s.sql(
            "SELECT transaction_id, status, outcome, status_code FROM postback_log "
            "ORDER BY transaction_id"
        )
    return rows.rows()


def test_import_log_reads_statuses_with_the_rules_files(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    export, rules = files
    db = tmp_path / "log.duckdb"
    assert main(["import-log", str(export), "--rules", str(rules), "--db", str(db)]) == 0
    out = capsys.readouterr()
    assert _imported(db) == [
        ("T1", "approved", "delivered", 200),
        ("T2", "rejected", "failed", 500),
        ("T4", "approved", "delivered", 200),
    ]
    assert "quarantined" not in out.err
    assert f"{export}: imported 3 attempts as run import-" in out.out
    assert f"{export}: 2 rows with an ignored status (ping, test) left out" in out.out


def test_import_log_flags_win_over_the_rules_file(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The flags take sale, ping and trash from the file; its ``ignore: [test]`` stays."""
    export, rules = files
    db = tmp_path / "log.duckdb"
    flags = ["--status-map", "sale=rejected,ping=approved", "--ignore-status", "trash"]
    args = ["import-log", str(export), "--rules", str(rules), "--db", str(db), *flags]
    assert main([*args, "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows"], summary["quarantined"]) == (3, 0)
    assert _imported(db) == [
        ("T1", "rejected", "delivered", 200),
        ("T3", "approved", "delivered", 200),
        ("T4", "approved", "delivered", 200),
    ]


def test_the_api_applies_the_statuses_of_the_rules_it_is_given(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    export, rules = files
    result = import_log(export, tmp_path / "a.duckdb", rules=rules)
    assert (result.rows, result.quarantined) == (3, 0)
    assert any("2 rows with an ignored status (ping, test) left out" in n for n in result.notes)
    ruleset = read_rules(rules)
    result = import_log(
        export, tmp_path / "b.duckdb", rules=ruleset, status_map={"test": "pending"}
    )
    assert (result.rows, result.quarantined) == (4, 0)
    assert _imported(tmp_path / "b.duckdb") == [
        ("T1", "approved", "delivered", 200),
        ("T2", "rejected", "failed", 500),
        ("T4", "approved", "delivered", 200),
        ("T5", "pending", "delivered", 200),
    ]

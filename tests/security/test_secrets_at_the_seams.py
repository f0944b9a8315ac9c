"""Secrets and hostile text where two features meet: a platform's export brings
``user:password@`` URLs into the log (masked at import, in url, host, error and answer, so
``log show`` and ``log export`` never print them), and rule names, errors and answers that
a spreadsheet would run as formulas (neutralised in every CSV output)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from postback_lab import LogStore
from postback_lab.cli import main
from postback_lab.store import import_log

PASSWORD = "hunter22"


def _export(tmp_path: Path) -> Path:
    path = tmp_path / "export.csv"
    path.write_text(
        "Firing Time,Transaction ID,Response Code,Postback Name,URL,Error,Server Response\n"
        f"2024-01-01T00:00:00Z,t1,200,sales,https://admin:{PASSWORD}@p.example/pb?t=t1,,ok\n"
        f"2024-01-01T00:01:00Z,t2,,sales,https://admin:{PASSWORD}@p.example/pb?t=t2,"
        f'"connect to https://admin:{PASSWORD}@p.example/pb failed",'
        f'"echo http://bob:{PASSWORD}@p.example/ and HTTPS://eve:{PASSWORD}@q.example/x"\n'
    )
    return path


def test_import_masks_passwords_in_urls_hosts_errors_and_answers(tmp_path, capsys):
    db = tmp_path / "log.duckdb"
    result = import_log(_export(tmp_path), db)
    assert result.rows == 2
    with LogStore(db, read_only=True) as s:
        rows = s.attempts().sort("transaction_id")
        for col in ("url", "host", "error", "response_body"):
            assert not rows[col].str.contains(PASSWORD).any(), col
        assert rows["url"].to_list() == [
            "https://admin:***@p.example/pb?t=t1",
            "https://admin:***@p.example/pb?t=t2",
        ]
        assert rows["host"].to_list() == ["p.example", "p.example"]
        assert rows["error"].to_list() == [None, "connect to https://admin:***@p.example/pb failed"]
        assert rows["response_body"].to_list()[1] == (
            "echo http://bob:***@p.example/ and HTTPS://eve:***@q.example/x"
        )
    capsys.readouterr()
    assert main(["log", "show", "--db", str(db)]) == 0
    assert main(["log", "show", "--db", str(db), "--format", "csv"]) == 0
    assert main(["log", "export", "--db", str(db), "--to", str(tmp_path / "out.csv")]) == 0
    assert PASSWORD not in capsys.readouterr().out
    assert PASSWORD not in (tmp_path / "out.csv").read_text()


FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "plain"]


def test_csv_output_neutralises_cells_that_start_like_a_formula(tmp_path, capsys):
    """`log export --to x.csv`, `log show --format csv` and `audit --format csv` prefix a
    text cell starting with = + - @ tab or CR with a single quote (OWASP's guidance)."""
    export = tmp_path / "export.csv"
    pl.DataFrame(
        {
            "Firing Time": [f"2024-01-01T00:0{i}:00Z" for i in range(len(FORMULAS))],
            "Transaction ID": [f"t{i}" for i in range(len(FORMULAS))],
            "Response Code": [500] * len(FORMULAS),
            "Postback Name": FORMULAS,
            "Error": FORMULAS,
            "Server Response": FORMULAS,
        }
    ).write_csv(export)
    db = tmp_path / "log.duckdb"
    import_log(export, db)  # (the importer trims the tab and CR an export's cells start with)
    with LogStore(db) as s:
        s.append(
            [
                {
                    "dispatch_id": "d",
                    "rule": "\tx",
                    "error": "\rx",
                    "response_body": "\tx",
                    "fired_at": datetime(2024, 1, 2, tzinfo=UTC),
                    "attempt": 1,
                    "outcome": "failed",
                }
            ]
        )
    want = [f"'{f}" if f != "plain" else f for f in [*FORMULAS, "\tx"]]

    assert main(["log", "export", "--db", str(db), "--to", str(tmp_path / "out.csv")]) == 0
    out = pl.read_csv(tmp_path / "out.csv").sort("fired_at")
    for col in ("rule", "response_body"):
        assert out[col].to_list() == want, col
    assert out["error"].to_list() == [*want[:-1], "'\rx"]
    assert out["status_code"].to_list() == [500] * len(FORMULAS) + [None]  # numbers as they are

    capsys.readouterr()
    assert main(["log", "show", "--db", str(db), "--format", "csv"]) == 0
    shown = pl.read_csv(io.StringIO(capsys.readouterr().out)).sort("fired_at")
    assert shown["rule"].to_list() == want
    assert shown["error"].to_list() == [*want[:-1], "'\rx"]

    assert main(["audit", "--db", str(db), "--format", "csv"]) == 0
    audited = pl.read_csv(io.StringIO(capsys.readouterr().out))
    assert sorted(audited["rule"].to_list()) == sorted(want)

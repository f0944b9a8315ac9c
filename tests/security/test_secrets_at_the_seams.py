"""Secrets where two features meet: a platform's export brings ``user:password@`` URLs into
the log (masked at import, in url, host, error and answer, so ``log show`` and ``log
export`` never print them)."""

from __future__ import annotations

from pathlib import Path

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

"""import_log reads a platform export like events are read: statuses normalised, presets
and explicit columns, bad rows quarantined (never the file), each attempt added once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from postback_lab import LogImportError, LogStore
from postback_lab.cli import main
from postback_lab.store import import_log

FIXTURES = Path(__file__).parent.parent / "fixtures"
PRESETS = FIXTURES / "presets"
HEAD = "Firing Time,Transaction ID,Response Code,Postback Name,Status\n"


def _write(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _logged(db: Path, *cols: str) -> list[tuple]:
    with LogStore(db, read_only=True) as s:
        return s.attempts().sort("fired_at", "transaction_id").select(cols).rows()


def test_statuses_are_normalised_like_events(tmp_path):
    export = _write(
        tmp_path,
        HEAD + "2024-01-01 10:00:00,t1,200,sales,Approved\n"
        "2024-01-01 10:01:00,t2,200,sales,Declined\n"
        "2024-01-01 10:02:00,t3,200,sales, on hold \n"
        "2024-01-01 10:03:00,t4,200,sales,PENDING\n",
    )
    db = tmp_path / "log.duckdb"
    result = import_log(export, db)
    assert (result.rows, result.quarantined, result.without_status) == (4, 0, 0)
    assert _logged(db, "transaction_id", "status") == [
        ("t1", "approved"),
        ("t2", "rejected"),
        ("t3", "pending"),
        ("t4", "pending"),
    ]


def test_a_platforms_own_status_spellings_with_its_preset(tmp_path):
    """Affise writes statuses as numbers: 1 approved, 2 pending, 3 declined, 5 hold."""
    export = _write(
        tmp_path,
        "Date,Action ID,Offer ID,Partner ID,URL,Http code,Response,Status\n"
        "2026-11-03 14:25:12,a1,17,7,https://aff.example/pb?c=1,200,OK,1\n"
        "2026-11-03 14:26:12,a2,17,7,https://aff.example/pb?c=2,200,OK,3\n"
        "2026-11-03 14:27:12,a3,17,7,https://aff.example/pb?c=3,404,Not Found,5\n",
    )
    db = tmp_path / "log.duckdb"
    result = import_log(export, db, preset="affise", rule="Affise sales")
    assert (result.rows, result.quarantined) == (3, 0)
    assert _logged(db, "rule", "transaction_id", "status", "status_code", "outcome", "host") == [
        ("Affise sales", "a1", "approved", 200, "delivered", "aff.example"),
        ("Affise sales", "a2", "rejected", 200, "delivered", "aff.example"),
        ("Affise sales", "a3", "pending", 404, "failed", "aff.example"),
    ]
    # without the preset the numbers mean nothing: quarantined, with a hint
    other = import_log(
        export,
        tmp_path / "other.duckdb",
        rule="Affise sales",
        rename={"Action ID": "transaction_id"},
    )
    assert other.rows == 0 and other.quarantined == 3
    assert (
        other.quarantine["reason"][0] == "unknown status '1' (valid: approved, rejected, pending)"
    )
    assert any("--source" in n for n in other.notes)


@pytest.mark.parametrize(
    ("platform", "rows", "first"),
    [
        ("affise", 2, ("5f1a2b3c4d5e6f7a8b9c0d1e", 200, "delivered", None)),
        ("binom", 1, ("b1n0m000001", 200, "delivered", None)),
        ("cake", 2, ("880012", 503, "failed", None)),  # 9:05 AM before 2:25 PM
        ("everflow", 2, ("9c0534c99eb34b57bda16f92b6d5d3d4", 200, "delivered", None)),
        ("integr8", 2, ("I8T00001", 200, "delivered", None)),
        ("keitaro", 2, ("3f5k2a1b9c", 200, "delivered", "approved")),
        ("tune", 2, ("1e0f4a1c-0001", 200, "delivered", None)),
        ("voluum", 1, ("VCLK000000000000000000001", 200, "delivered", None)),
    ],
)
def test_every_presets_postback_log_imports_by_name_and_by_auto(tmp_path, platform, rows, first):
    export = PRESETS / f"{platform}_postback_log.csv"
    named = import_log(export, tmp_path / "named.duckdb", preset=platform)
    auto = import_log(export, tmp_path / "auto.duckdb", preset="auto")
    assert named.rows == auto.rows == rows and named.quarantined == 0
    if platform == "tune":  # TUNE's log headers are the common names: auto cannot tell
        assert any("no platform's postback-log columns recognised" in n for n in auto.notes)
    else:
        assert any(f"read as {_title(platform)}'s postback log" in n for n in auto.notes)
    for db in ("named", "auto"):
        got = _logged(
            tmp_path / f"{db}.duckdb", "transaction_id", "status_code", "outcome", "status"
        )
        assert got[0] == first


def _title(name: str) -> str:
    from postback_lab.events import get_preset

    return get_preset(name).title


def test_integr8_delivery_status_is_not_the_conversions(tmp_path):
    """integr8's log has Status = Success|Failed (the delivery) and code 0 = unreachable."""
    export = PRESETS / "integr8_postback_log.csv"
    db = tmp_path / "log.duckdb"
    result = import_log(export, db)  # no preset: the Status column is looked at, then left
    assert result.rows == 2 and result.quarantined == 0
    assert any("holds delivery results" in n for n in result.notes)
    assert _logged(db, "rule", "transaction_id", "status", "status_code", "outcome") == [
        ("Affili approved sales", "I8T00001", None, 200, "delivered"),
        ("Affili rejected fraud", "I8T00002", None, None, "timeout"),
    ]


def test_bad_rows_are_quarantined_with_line_value_and_reason(tmp_path):
    export = _write(
        tmp_path,
        HEAD + "not a date,t1,200,sales,approved\n"
        "2024-01-01 10:00:00,,200,sales,approved\n"
        "2024-01-01 10:01:00,t3,abc,sales,approved\n"
        "2024-01-01 10:02:00,t4,200,sales,weird\n"
        "2024-01-01 10:03:00,t5,200,sales,approved\n"
        "2024-01-01 10:04:00,t6,,sales,approved\n"
        "2024-01-01 10:05:00,t7,999,sales,approved\n"
        ",t8,200,sales,approved\n",
    )
    db = tmp_path / "log.duckdb"
    result = import_log(export, db)
    assert result.rows == 2 and result.quarantined == 6
    assert result.quarantine.select("source", "line", "reason").rows() == [
        (str(export), 2, "bad fired_at 'not a date'"),
        (str(export), 3, "missing transaction_id"),
        (str(export), 4, "bad status_code 'abc' (an HTTP status, 100-599, or 0 for no response)"),
        (str(export), 5, "unknown status 'weird' (valid: approved, rejected, pending)"),
        (str(export), 8, "bad status_code '999' (an HTTP status, 100-599, or 0 for no response)"),
        (str(export), 9, "missing fired_at"),
    ]
    assert '"Firing Time":"not a date"' in result.quarantine["raw"][0]
    assert "6 rows quarantined (first: line 2: bad fired_at 'not a date'" in str(result)
    assert _logged(db, "transaction_id", "status_code", "outcome") == [
        ("t5", 200, "delivered"),
        ("t6", None, "failed"),
    ]


def test_ragged_rows_are_quarantined_too(tmp_path):
    export = _write(
        tmp_path,
        HEAD + "2024-01-01 10:00:00,t1,200,sales,approved\n"
        "2024-01-01 10:01:00,t2,200,sales,approved,extra,fields\n"
        "2024-01-01 10:02:00,t3,200,sales,approved\n",
    )
    result = import_log(export, tmp_path / "log.duckdb")
    assert result.rows == 2
    assert result.quarantine.select("line", "reason").rows() == [
        (3, "ragged row: 7 fields, the header has 5")
    ]


def test_rule_option_and_explicit_columns(tmp_path):
    export = _write(
        tmp_path,
        "Sent At;Conversion;HTTP;Pixel\n"
        "03/11/2026 14:25;c1;200;\n"
        "03/11/2026 14:26;c2;500;Other pixel\n",
        "pixels.csv",
    )
    db = tmp_path / "log.duckdb"
    with pytest.raises(LogImportError, match="no column for transaction_id, status_code"):
        import_log(export, db)
    result = import_log(
        export,
        db,
        rule="Sales",
        rename={"transaction_id": "Conversion", "HTTP": "status_code", "Pixel": "rule"},
    )
    assert (result.rows, result.without_rule) == (2, 0)
    assert _logged(db, "fired_at", "rule", "transaction_id", "status_code") == [
        (datetime(2026, 3, 11, 14, 25, tzinfo=UTC), "Sales", "c1", 200),
        (datetime(2026, 3, 11, 14, 26, tzinfo=UTC), "Other pixel", "c2", 500),
    ]
    with pytest.raises(LogImportError) as err:
        import_log(export, db, rename={"Sent": "fired_at"})
    assert "the export has no column 'Sent' (closest: 'Sent At')" in str(err.value)


def test_rows_without_a_rule_are_reported_as_unlinkable(tmp_path):
    export = _write(
        tmp_path,
        "Firing Time,Transaction ID,Response Code\n"
        + "".join(f"2024-01-01 10:0{i}:00,t{i},200\n" for i in range(7)),
    )
    result = import_log(export, tmp_path / "log.duckdb")
    assert (result.rows, result.without_rule) == (7, 7)
    text = str(result)
    assert "warning: 7 rows name no rule and cannot be linked to a dispatch" in text
    assert "--rule NAME" in text
    assert "  line 2: transaction 't0'" in text and "  line 6: transaction 't4'" in text
    assert "line 7:" not in text and "... and 2 more" in text
    assert result.unlinkable["transaction_id"].to_list() == ["t0", "t1", "t2", "t3", "t4"]


def _attempts(n: int) -> list[str]:
    """n distinct attempts: a few per transaction, some failing then delivered."""
    lines = []
    for i in range(n):
        tid, k = divmod(i, 3)
        code = 200 if k == 2 else (500 if k == 0 else 503)
        lines.append(
            f"2024-01-0{1 + i % 5} {i // 60 % 24:02d}:{i % 60:02d}:00,t{tid},{code},sales,"
        )
    return lines


def test_overlapping_exports_add_each_attempt_once(tmp_path):
    rows = _attempts(1_167)
    head = "Firing Time,Transaction ID,Response Code,Postback Name,Status\n"
    first = _write(tmp_path, head + "\n".join(rows[:800]) + "\n", "a.csv")
    second = _write(tmp_path, head + "\n".join(rows[400:]) + "\n", "b.csv")
    db = tmp_path / "log.duckdb"
    a = import_log(first, db)
    b = import_log(second, db)
    assert (a.rows, a.duplicates) == (800, 0)
    assert (b.rows, b.duplicates) == (367, 400)
    assert "400 already in the log were skipped" in str(b)
    with LogStore(db, read_only=True) as s:
        assert s.count() == 1_167
        # attempts still numbered 1..n per transaction, in firing order
        bad = s.sql(
            "SELECT transaction_id FROM postback_log GROUP BY 1 "
            "HAVING list_sort(list(attempt)) <> range(1, count(*) + 1)"
        )
        assert bad.height == 0
    again = import_log(second, db)
    assert again.already_imported and (again.rows, again.duplicates) == (0, 767)
    assert "nothing added; 767 already in the log were skipped" in str(again)


def test_an_attempt_listed_twice_in_one_export_is_two_attempts_once(tmp_path):
    line = "2024-01-01 10:00:00,t1,500,sales,approved\n"
    export = _write(tmp_path, HEAD + line + line)
    db = tmp_path / "log.duckdb"
    assert import_log(export, db).rows == 2
    spaced = _write(tmp_path, HEAD + line.replace("sales", " SALES "), "again.csv")
    assert (import_log(spaced, db).rows, import_log(export, db).rows) == (0, 0)
    with LogStore(db, read_only=True) as s:
        assert s.count() == 2


def test_a_rule_spelt_differently_takes_the_logs_spelling(tmp_path):
    db = tmp_path / "log.duckdb"
    import_log(_write(tmp_path, HEAD + "2024-01-01 10:00:00,t1,500,Affili sales,approved\n"), db)
    import_log(
        _write(tmp_path, HEAD + "2024-01-01 10:05:00,t1,200, AFFILI  SALES,approved\n", "b.csv"),
        db,
    )
    assert _logged(db, "rule", "attempt", "outcome") == [
        ("Affili sales", 1, "failed"),
        ("Affili sales", 2, "delivered"),
    ]


def test_import_result_reads_well(tmp_path):
    export = _write(tmp_path, HEAD + "2024-01-01 10:00:00,t1,200,sales,approved\n")
    result = import_log(export, tmp_path / "log.duckdb")
    assert "PosixPath" not in repr(result)
    assert repr(result) == (
        f"ImportResult({str(export)!r}, run_id={result.run_id!r}, added=1, "
        "already_in_log=0, quarantined=0, without_rule=0)"
    )
    assert str(result).startswith(
        f"{export}: imported 1 attempt as run {result.run_id} (1 delivered, 0 not)"
    )
    assert "<table" in result._repr_html_() or "Import" in result._repr_html_()


def test_a_frame_imports_too(tmp_path):
    frame = pl.DataFrame(
        {
            "Firing Time": [datetime(2024, 1, 1, 10, tzinfo=UTC)],
            "Transaction ID": ["t1"],
            "Response Code": [204],
            "Postback Name": ["sales"],
        }
    )
    result = import_log(frame, tmp_path / "log.duckdb")
    assert result.rows == 1 and result.path == "<DataFrame>"
    assert _logged(tmp_path / "log.duckdb", "transaction_id", "status_code", "outcome") == [
        ("t1", 204, "delivered")
    ]


def test_cli_import_log_with_source_rule_and_columns(tmp_path, capsys):
    db = tmp_path / "log.duckdb"
    export = _write(
        tmp_path,
        "Datetime;Subid;Status;Postback URL;Response code;Response\n"
        "2026-11-03 14:25:11;3f5k2a1b9c;sale;https://ts.example/pb?cid=1;200;ok\n"
        "2026-11-03 15:00:02;4g6l3b2c0d;lead;https://ts.example/pb?cid=2;500;error\n"
        "yesterday;5h7m4c3d1e;sale;https://ts.example/pb?cid=3;200;ok\n",
    )
    code = main(["import-log", str(export), "--db", str(db), "--source", "keitaro", "--rule", "TS"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "imported 2 attempts" in out and "1 row quarantined" in out
    assert f"quarantined: {export} line 4: bad fired_at 'yesterday'" in err
    assert _logged(db, "rule", "transaction_id", "status", "outcome") == [
        ("TS", "3f5k2a1b9c", "approved", "delivered"),
        ("TS", "4g6l3b2c0d", "pending", "failed"),
    ]
    other = _write(tmp_path, "When,Conv,Code\n2024-01-01 10:00:00,c1,200\n", "other.csv")
    code = main(
        [
            "import-log",
            str(other),
            "--db",
            str(db),
            "--columns",
            "When=fired_at,Conv=transaction_id,Code=status_code",
            "--rule",
            "TS",
        ]
    )
    assert code == 0 and "imported 1 attempt" in capsys.readouterr().out
    assert main(["import-log", str(other), "--db", str(db), "--source", "nope"]) == 2
    assert "not a known platform" in capsys.readouterr().err


def test_the_exports_digest_streams_the_file(tmp_path, monkeypatch):
    """The run id hashes the export and the options it was read with, the file in chunks
    as it is read from disk (never read whole into memory): same digest as before."""
    import hashlib
    import json

    from postback_lab.store import _export_read

    export = _write(tmp_path, HEAD + "2024-01-01 10:00:00,t1,200,sales,Approved\n")
    whole = export.read_bytes()

    def refuse(self: Path) -> bytes:
        raise AssertionError(f"{self} read whole")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    monkeypatch.setattr(_export_read, "CHUNK", 7)  # several chunks for one small file
    result = import_log(export, tmp_path / "log.duckdb")
    mapping = {
        "fired_at": "Firing Time",
        "rule": "Postback Name",
        "status": "Status",
        "status_code": "Response Code",
        "transaction_id": "Transaction ID",
    }
    options = json.dumps([None, None, sorted(mapping.items()), "UTC"]).encode()
    assert result.run_id == "import-" + hashlib.sha256(options + whole).hexdigest()[:12]

"""An export that matches no preset: every missing column named at once with close
headers, a read that quarantines every row is an error (exit 2), and ``auto`` says when it
recognises nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from postback_lab import EventsError, read_events
from postback_lab.cli import main

HEADERS = "Txn Ref,Event Date,Conv State,Amount,Partner\n"


def test_every_missing_column_is_named_at_once_with_close_headers(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADERS + "T1,2026-11-03 10:00,sale,12,7\n")
    with pytest.raises(EventsError) as err:
        read_events(path)
    assert str(err.value) == (
        f"{path}: no column for 'transaction_id' (close: 'Txn Ref', 'Conv State'), "
        "'occurred_at' (close: "
        "'Event Date'), 'status' (close: 'Conv State'); columns found: Txn Ref, Event Date, "
        "Conv State, Amount, Partner; map a header with rename={'Txn Ref': 'transaction_id'}, "
        "on the command line --columns 'Txn Ref=transaction_id'"
    )


def test_auto_says_it_recognised_no_platform(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADERS + "T1,2026-11-03 10:00,sale,12,7\n")
    with pytest.raises(EventsError) as err:
        read_events(path, preset="auto")
    assert str(err.value).endswith(
        "(preset=auto: no platform's headers recognised; read with common aliases)"
    )


def test_a_read_that_quarantines_every_row_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADERS + "T1,2026-11-03 10:00,sale,12,7\nT2,2026-11-03 11:00,lead,0,7\n")
    columns = "Txn Ref=transaction_id,Event Date=occurred_at,Conv State=status"
    with pytest.raises(EventsError) as err:
        read_events(path, rename=dict(c.split("=") for c in columns.split(",")))
    assert str(err.value).startswith(
        f"{path}: every row (2) was quarantined, so nothing was read: unknown status (2); "
        "first: line 2: unknown status 'sale' (valid: approved, rejected, pending)."
    )
    rules = tmp_path / "postbacks.yaml"
    rules.write_text("postbacks:\n  - name: r\n    url: https://p.example/?t={transaction_id}\n")
    assert main(["plan", str(path), "--rules", str(rules), "--columns", columns]) == 2
    assert "every row (2) was quarantined" in capsys.readouterr().err
    # mapped as the user's tracker does, the same file reads
    ok = main(
        [
            "plan",
            str(path),
            "--rules",
            str(rules),
            "--columns",
            columns,
            "--status-map",
            "sale=approved,lead=pending",
        ]
    )
    assert ok == 0
    assert "1 postback" in capsys.readouterr().out

"""Each platform's export reads with no hand mapping: ``preset=NAME`` or ``preset='auto'``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from postback_lab import EventsError, read_events

FIXTURES = Path(__file__).parent.parent / "fixtures" / "presets"
COLS = ("transaction_id", "status", "occurred_at", "click_id", "offer_id", "publisher_id", "payout")


def _t(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


EXPECTED = {
    "everflow": [
        (
            "9c0534c99eb34b57bda16f92b6d5d3d4",
            "approved",
            _t(2026, 11, 3, 14, 25, 10),
            "a1b2c3d4e5f60718293a4b5c6d7e8f90",
            "0042",
            "7",
            12.5,
        ),
        (
            "307971a211b74db98c3c11d5e83c082a",
            "pending",
            _t(2026, 11, 3, 15, 1, 44),
            "b1b2c3d4e5f60718293a4b5c6d7e8f91",
            "0042",
            "12",
            12.5,
        ),
        (
            "5759e555b03845279bcdb9c2d0391b9e",
            "rejected",
            _t(2026, 11, 3, 16, 12, 3),
            "c1b2c3d4e5f60718293a4b5c6d7e8f92",
            "0017",
            "7",
            0.0,
        ),
        (
            "6659e555b03845279bcdb9c2d0391b9f",
            "approved",
            _t(2026, 11, 3, 18, 40),
            "c1b2c3d4e5f60718293a4b5c6d7e8f92",
            "0017",
            "7",
            30.0,
        ),
    ],
    "affise": [
        (
            "5f1a2b3c4d5e6f7a8b9c0d1e",
            "approved",
            _t(2026, 11, 3, 14, 25, 10),
            "6a1b2c3d4e5f6a7b8c9d0e1f",
            "17",
            "7",
            12.5,
        ),
        (
            "5f1a2b3c4d5e6f7a8b9c0d1f",
            "pending",
            _t(2026, 11, 3, 15, 25, 10),
            "6a1b2c3d4e5f6a7b8c9d0e20",
            "17",
            "7",
            12.5,
        ),
        (
            "5f1a2b3c4d5e6f7a8b9c0d20",
            "rejected",
            _t(2026, 11, 3, 16, 25, 10),
            "6a1b2c3d4e5f6a7b8c9d0e21",
            "18",
            "12",
            0.0,
        ),
        (
            "5f1a2b3c4d5e6f7a8b9c0d21",
            "pending",
            _t(2026, 11, 3, 17, 25, 10),
            "6a1b2c3d4e5f6a7b8c9d0e22",
            "18",
            "12",
            3.0,
        ),
    ],
    "cake": [
        ("880011", "approved", _t(2026, 11, 3, 14, 25, 10), None, "17", "1005", 1250.0),
        ("880012", "pending", _t(2026, 11, 3, 9, 5), None, "17", "1005", 25.0),
        ("880013", "rejected", _t(2026, 11, 4, 23, 59, 59), None, "18", "1006", 0.0),
    ],
    "keitaro": [
        ("3f5k2a1b9c", "approved", _t(2026, 11, 3, 14, 25, 10), "3f5k2a1b9c", "17", "4", 12.5),
        ("4g6l3b2c0d", "pending", _t(2026, 11, 3, 15, 0), "4g6l3b2c0d", "17", "4", 0.0),
        ("5h7m4c3d1e", "rejected", _t(2026, 11, 3, 15, 30), "5h7m4c3d1e", "18", "5", 0.0),
    ],
    "tune": [
        (
            "1e0f4a1c-0001",
            "approved",
            _t(2026, 11, 3, 9, 0),
            "102f8b1c6a3e4b7d9e0f",
            "0101",
            "33",
            5.0,
        ),
        (
            "1e0f4a1c-0002",
            "pending",
            _t(2026, 11, 3, 9, 30),
            "102f8b1c6a3e4b7d9e10",
            "0101",
            "33",
            5.0,
        ),
        (
            "1e0f4a1c-0003",
            "rejected",
            _t(2026, 11, 3, 10, 0),
            "102f8b1c6a3e4b7d9e11",
            "0102",
            "34",
            1.0,
        ),
    ],
    "voluum": [
        (
            "VCLK000000000000000000001",
            "approved",
            _t(2026, 11, 3, 14, 25, 10),
            "VCLK000000000000000000001",
            "o-17",
            "ts-4",
            12.5,
        ),
        (
            "tx-2",
            "approved",
            _t(2026, 11, 3, 15, 25, 10),
            "VCLK000000000000000000002",
            "o-17",
            "ts-4",
            1.0,
        ),
    ],
    "binom": [
        ("b1n0m000001", "approved", _t(2026, 11, 3, 14, 25, 10), "b1n0m000001", "17", "4", 12.5),
        ("b1n0m000002", "pending", _t(2026, 11, 3, 15, 25, 10), "b1n0m000002", "17", "4", 0.0),
    ],
    "integr8": [
        ("I8T00001", "approved", _t(2026, 11, 3, 14, 25, 10), None, "017", "7", 12.5),
        ("I8T00002", "rejected", _t(2026, 11, 3, 14, 30, 10), None, "017", "7", 0.0),
    ],
}


@pytest.mark.parametrize("name", list(EXPECTED))
@pytest.mark.parametrize("how", ["named", "auto"])
def test_platform_export_reads_without_mapping(name: str, how: str) -> None:
    events = read_events(
        FIXTURES / f"{name}_conversions.csv", preset=name if how == "named" else "auto"
    )
    assert events.quarantine.height == 0, events.quarantine.rows()
    assert events.frame.select(COLS).rows() == EXPECTED[name]
    if how == "auto":
        assert "preset=auto: read as" in events.notes[0]


@pytest.mark.parametrize(
    ("name", "header"),
    [
        # named as the conversion postback's parameters in each platform's docs
        ("voluum", "cid,txid,postback_timestamp,payout,currency"),
        ("binom", "cnv_id,txid,time,payout,cnv_currency"),
    ],
)
def test_trackers_read_columns_named_as_their_postback_parameters(
    tmp_path: Path, name: str, header: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(f"{header}\nCLK1,tx-1,2026-11-03 14:25:10,12.50,EUR\n", encoding="utf-8")
    got = read_events(path, preset=name).frame
    row = got.select("click_id", "transaction_id", "occurred_at", "payout", "currency").row(0)
    assert row == ("CLK1", "tx-1", _t(2026, 11, 3, 14, 25, 10), 12.5, "EUR")


def test_binom_cnv_status_is_the_status(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("cnv_id,time,cnv_status\nb1,2026-11-03 14:25:10,lead\n", encoding="utf-8")
    got = read_events(path, preset="binom").frame
    assert got.select("transaction_id", "click_id", "status").row(0) == ("b1", "b1", "pending")


def test_unknown_columns_stay_usable() -> None:
    events = read_events(FIXTURES / "everflow_conversions.csv", preset="everflow")
    assert events.frame["Conversion IP"].to_list() == [
        "203.0.113.7",
        "198.51.100.4",
        "192.0.2.55",
        "192.0.2.55",
    ]


def test_rename_an_extra_column_with_spaces() -> None:
    events = read_events(
        FIXTURES / "everflow_conversions.csv", preset="everflow", rename={"Conversion IP": "ip"}
    )
    assert "Conversion IP" not in events.frame.columns
    assert events.frame["ip"][0] == "203.0.113.7"


def test_unknown_source_names_the_valid_ones() -> None:
    with pytest.raises(
        EventsError, match="preset='evrflow' is not a known platform; valid: everflow, affise"
    ):
        read_events(FIXTURES / "everflow_conversions.csv", preset="evrflow")


def test_semicolon_file_and_decimal_comma_without_a_preset(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "id;date;status;payout\nt1;2026-11-03 10:00;approved;1.250,50\nt2;2026-11-03 11:00;approved;12,5\n"
    )
    events = read_events(
        path, rename={"id": "transaction_id", "date": "occurred_at"}, decimal_comma=True
    )
    assert events.frame.select("transaction_id", "payout").rows() == [("t1", 1250.5), ("t2", 12.5)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("11/03/2026 14:25", _t(2026, 11, 3, 14, 25)),
        ("11/03/2026 8:45:12 AM", _t(2026, 11, 3, 8, 45, 12)),
        ("Nov 3 2026 5:10 PM", _t(2026, 11, 3, 17, 10)),
    ],
)
def test_us_dates(tmp_path: Path, raw: str, expected: datetime) -> None:
    path = tmp_path / "e.csv"
    path.write_text(f'transaction_id,occurred_at,status,payout\nt1,"{raw}",approved,"1,250.00"\n')
    events = read_events(path)
    assert events.frame.select("occurred_at", "payout").row(0) == (expected, 1250.0)


def test_timezone_of_naive_times_and_the_note(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("transaction_id,occurred_at,status\nt1,2026-07-01 12:00,approved\n")
    utc = read_events(path)
    assert utc.frame["occurred_at"][0] == _t(2026, 7, 1, 12)
    assert "read as UTC" in utc.notes[-1] and "note:" in str(utc)
    berlin = read_events(path, timezone="Europe/Berlin")
    assert berlin.frame["occurred_at"][0] == _t(2026, 7, 1, 10)
    assert berlin.notes == ()


def test_day_first_dates_with_date_format(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("transaction_id,occurred_at,status\nt1,03/11/2026 14:25,approved\n")
    events = read_events(path, date_format="%d/%m/%Y %H:%M")
    assert events.frame["occurred_at"][0] == _t(2026, 11, 3, 14, 25)


def test_nonfinite_payout_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "transaction_id,occurred_at,status,payout\nt1,2026-07-01,approved,1e400\n"
        "t2,2026-07-01,approved,12\n"
    )
    events = read_events(path)
    assert events.quarantine.select("line", "reason").rows() == [(2, "bad payout '1e400'")]
    assert events.frame["transaction_id"].to_list() == ["t2"]


def test_one_bad_ndjson_line_is_quarantined_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson"
    path.write_text(
        '{"transaction_id":"t1","occurred_at":"2026-11-01T00:00:00Z","status":"approved"}\n'
        '{"transaction_id":"t2", bad json\n'
        "[1, 2]\n"
        '{"transaction_id":"t3","occurred_at":"2026-11-01T00:00:00Z","status":"approved"}\n'
    )
    events = read_events(path)
    assert events.frame["transaction_id"].to_list() == ["t1", "t3"]
    assert events.quarantine.select("line", "reason").rows() == [
        (2, "not JSON: Expecting property name enclosed in double quotes at character 25"),
        (3, "not a JSON object"),
    ]


def test_a_column_written_twice_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("transaction_id,occurred_at,status,sub1,sub1\nt1,2026-11-01,approved,a,b\n")
    with pytest.raises(
        EventsError, match=r"column 'sub1' appears twice in the header \(columns 4 and 5\)"
    ):
        read_events(path)

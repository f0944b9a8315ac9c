"""Each platform's export names the conversion and the click as the platform does, and
reads the way its UI writes it (issue: real platform exports). The exports are written
from each platform's public documentation: tests/fixtures/presets/docs/README.md lists the
pages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from postback_lab import EventsError, build_plan, read_events, read_rules
from postback_lab.store import import_log, read_export

DOCS = Path(__file__).parent.parent / "fixtures" / "presets" / "docs"


def _t(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- 1. every preset keeps the conversion id and the click id -----------------------------

IDS = {
    "everflow": ("9c0534c99eb34b57bda16f92b6d5d3d4", "a1b2c3d4e5f60718293a4b5c6d7e8f90"),
    "tune": ("1e0f4a1c-0001", "102f8b1c6a3e4b7d9e0f"),
    "cake": ("880011", "41557321"),
    "affise": ("5f1a2b3c4d5e6f7a8b9c0d1e", "6a1b2c3d4e5f6a7b8c9d0e1f"),
    "keitaro": ("3f5k2a1b9c:1", "3f5k2a1b9c"),
    "voluum": ("tx-1", "VCLK000000000000000000001"),
    "binom": ("cnv-1", "b1n0m000001"),
    "integr8": ("I8T00001", "CLK-1"),
}


@pytest.mark.parametrize("name", list(IDS))
def test_every_preset_fills_the_conversion_and_the_click(name: str) -> None:
    ev = read_events(DOCS / f"{name}_conversions.csv", preset=name)
    assert ev.frame.select("transaction_id", "click_id").row(0) == IDS[name]


LOG_IDS = {  # (transaction_id, click_id) of each log's first row, as imported
    "everflow": ("9c0534c99eb34b57bda16f92b6d5d3d4", "a1b2c3d4e5f60718293a4b5c6d7e8f90"),
    "tune": ("102f8b1c6a3e4b7d9e0f", "102f8b1c6a3e4b7d9e0f"),  # names only the click
    "cake": ("880011", None),
    "affise": ("6a1b2c3d4e5f6a7b8c9d0e1f", "6a1b2c3d4e5f6a7b8c9d0e1f"),
    "keitaro": ("3f5k2a1b9c:1", "3f5k2a1b9c"),
    "voluum": ("VCLK000000000000000000001", "VCLK000000000000000000001"),
    "binom": ("b1n0m000001", "b1n0m000001"),
    "integr8": ("I8T00001", None),
}


@pytest.mark.parametrize("name", list(LOG_IDS))
def test_every_postback_log_keeps_the_ids_it_names(name: str) -> None:
    rows = read_export(DOCS / f"{name}_postback_log.csv", preset=name)
    assert rows.select("transaction_id", "click_id").row(0) == LOG_IDS[name]


def test_everflow_log_links_by_conversion_id_not_by_click(tmp_path: Path) -> None:
    """Two conversions on one click: the log's delivered row is the first one's only."""
    rules = read_rules(
        [{"name": "r", "fire_on": "approved", "url": "https://p.example/?t={transaction_id}"}]
    )
    ev = read_events(DOCS / "everflow_conversions.csv", preset="everflow")
    ev = ev.frame.with_columns(pl.lit("conversion").alias("event_type"))  # both fire
    plan = build_plan(ev, rules)
    db = tmp_path / "log.duckdb"
    import_log(DOCS / "everflow_postback_log.csv", db, preset="everflow", rule="r")
    from postback_lab.auditing import reconcile

    states = dict(reconcile(plan, db).dispatches.select("transaction_id", "state").iter_rows())
    assert states == {
        "9c0534c99eb34b57bda16f92b6d5d3d4": "delivered",
        "307971a211b74db98c3c11d5e83c082a": "failed",
        "5759e555b03845279bcdb9c2d0391b9e": "missed",  # same click, another conversion
        "6659e555b03845279bcdb9c2d0391b9f": "missed",
    }


# -- 3. Keitaro: TID numbers conversions within a click -----------------------------------


def test_keitaro_pair_keeps_two_clicks_first_conversions_apart() -> None:
    ev = read_events(DOCS / "keitaro_conversions.csv", preset="keitaro")
    assert ev.frame.select("transaction_id", "click_id", "status", "publisher_id").rows() == [
        ("3f5k2a1b9c:1", "3f5k2a1b9c", "approved", "PropellerAds"),
        ("4g6l3b2c0d:1", "4g6l3b2c0d", "rejected", "PropellerAds"),
        ("3f5k2a1b9c:2", "3f5k2a1b9c", "approved", "PropellerAds"),
        ("5h7m4c3d1e:1", "5h7m4c3d1e", "approved", "Zeropark"),
    ]


def test_keitaro_one_clicks_rejection_never_supersedes_another_clicks_sale() -> None:
    rules = read_rules(
        [
            {
                "name": "approved",
                "fire_on": "approved",
                "delay": "2h",
                "publishers": ["PropellerAds"],
                "url": "https://ts.example/pb?cid={click_id}",
            }
        ]
    )
    plan = build_plan(read_events(DOCS / "keitaro_conversions.csv", preset="keitaro"), rules)
    assert sorted(plan.frame["transaction_id"]) == ["3f5k2a1b9c:1", "3f5k2a1b9c:2"]


def test_keitaro_subid_alone_is_the_conversion_without_a_tid() -> None:
    frame = pl.DataFrame(
        {"Subid": ["s1", "s2"], "TID": ["", "3"], "Status": ["sale", "lead"]}
    ).with_columns(pl.lit("2026-11-03 10:00:00").alias("Postback datetime"))
    ev = read_events(frame, preset="keitaro")
    assert ev.frame["transaction_id"].to_list() == ["s1", "s2:3"]


# -- 4. CAKE as the UI exports it -----------------------------------------------------------


def test_cake_money_with_symbols_and_a_blank_disposition() -> None:
    ev = read_events(DOCS / "cake_conversions.csv", preset="cake")
    assert ev.quarantine.height == 0
    assert ev.frame.select("transaction_id", "status", "payout", "revenue").rows() == [
        ("880011", "approved", 18.0, 25.0),  # blank Disposition: Conversion Status says
        ("880012", "approved", 1018.5, 1500.0),
        ("880013", "rejected", 0.0, 0.0),
        ("880014", "approved", 18.0, 25.0),
    ]


# -- 5. mapped as the export says ------------------------------------------------------------


def test_tune_status_code_is_the_rejection_reason() -> None:
    ev = read_events(DOCS / "tune_conversions.csv", preset="tune")
    rejected = ev.frame.filter(pl.col("status") == "rejected")
    assert rejected.select("transaction_id", "rejection_reason").rows() == [
        ("1e0f4a1c-0003", "Duplicate conversion")
    ]


def test_everflow_is_event_rows_are_events_named_by_their_goal() -> None:
    ev = read_events(DOCS / "everflow_conversions.csv", preset="everflow")
    assert ev.frame.select("event_type", "goal").rows() == [
        ("conversion", None),
        ("conversion", None),
        ("event", "Deposit"),
        ("conversion", None),
    ]


def test_affise_labelled_offer_and_partner_cells_hold_their_ids() -> None:
    ev = read_events(DOCS / "affise_conversions.csv", preset="affise")
    assert ev.frame.select("offer_id", "publisher_id").rows() == [
        ("101", "7"),
        ("101", "7"),
        ("102", "12"),
        ("101", "12"),
    ]
    rules = read_rules(
        [
            {
                "name": "crypto",
                "fire_on": "approved",
                "offers": [101],
                "url": "https://p.example/?t={transaction_id}",
            }
        ]
    )
    assert len(build_plan(ev, rules)) == 3


def test_integr8_error_response_is_kept_and_code_0_is_a_connection_error(
    tmp_path: Path,
) -> None:
    db = tmp_path / "log.duckdb"
    import_log(DOCS / "integr8_postback_log.csv", db, preset="integr8")
    from postback_lab import LogStore

    with LogStore(db) as s:
        rows = s.attempts().select("transaction_id", "status_code", "outcome", "error").rows()
    assert rows == [
        ("I8T00001", 200, "delivered", None),
        ("I8T00002", None, "connection_error", "Connection timed out"),
    ]


# -- 6. the user's own statuses ---------------------------------------------------------------

RAW = """transaction_id,occurred_at,status
t1,2026-11-03 10:00:00,sale
t2,2026-11-03 10:01:00,trash
t3,2026-11-03 10:02:00,ping
t4,2026-11-03 10:03:00,rebill
t5,2026-11-03 10:04:00,weird
t6,2026-11-03 10:05:00,weird
t7,2026-11-03 10:06:00,test
"""


def test_status_map_and_ignore_list(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(RAW)
    ev = read_events(
        path,
        status_map={"sale": "approved", "TRASH": "rejected", "rebill": "approved"},
        ignore_status=["ping", "test"],
    )
    assert ev.frame.select("transaction_id", "status").rows() == [
        ("t1", "approved"),
        ("t2", "rejected"),
        ("t4", "approved"),
    ]
    # an unknown status is never guessed: quarantined, and counted in a note
    assert ev.quarantine.select("line", "reason").rows() == [
        (6, "unknown status 'weird' (valid: approved, rejected, pending)"),
        (7, "unknown status 'weird' (valid: approved, rejected, pending)"),
    ]
    assert f"{path}: 2 rows with an ignored status (ping, test) left out" in ev.notes
    assert any(n.startswith("unknown status 'weird' on 2 rows (quarantined)") for n in ev.notes)


def test_status_map_wins_over_the_presets_spelling(tmp_path: Path) -> None:
    ev = read_events(
        DOCS / "keitaro_conversions.csv", preset="keitaro", status_map={"sale": "pending"}
    )
    assert ev.frame["status"].to_list() == ["pending", "rejected", "pending", "pending"]


def test_status_map_to_an_unknown_status_is_an_error() -> None:
    with pytest.raises(EventsError, match="status_map sale=paid: a status maps to one of"):
        read_events(pl.DataFrame({"transaction_id": ["t"]}), status_map={"sale": "paid"})


def test_import_log_status_map_and_ignore(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "Firing Time,Transaction ID,Response Code,Postback Name,Status\n"
        "2026-11-03 10:00:00,t1,200,r,sale\n"
        "2026-11-03 10:01:00,t2,200,r,ping\n"
        "2026-11-03 10:02:00,t3,200,r,weird\n"
    )
    result = import_log(
        path, tmp_path / "l.duckdb", status_map={"sale": "approved"}, ignore_status="ping"
    )
    assert result.rows == 1 and result.quarantined == 1
    assert any("1 row with an ignored status (ping) left out" in n for n in result.notes)
    assert any(n.startswith("unknown status 'weird' on 1 row") for n in result.notes)


# -- real-world formats, table-driven -----------------------------------------------------------

MONEY = [
    ("$18.00", 18.0),
    ("$1,018.50", 1018.5),
    ("1.018,50 €", 1018.5),
    ("€1.250,00", 1250.0),
    ("USD 18.00", 18.0),
    ("18.00 EUR", 18.0),
    ("-$5", -5.0),
    ("12,5", 12.5),
    ("1 018,50", 1018.5),
    ("R$ 10,00", 10.0),
    ("£3", 3.0),
]


@pytest.mark.parametrize(("raw", "expected"), MONEY)
def test_money_as_exports_write_it(tmp_path: Path, raw: str, expected: float) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        f'transaction_id,occurred_at,status,payout\nt1,2026-11-03 10:00:00,approved,"{raw}"\n'
    )
    assert read_events(path).frame["payout"].to_list() == [expected]


TIMES = [  # (cell, read options, UTC instant)
    ("11/3/2026 2:25:10 PM", {}, _t(2026, 11, 3, 14, 25, 10)),
    ("11/3/2026 9:05 AM", {}, _t(2026, 11, 3, 9, 5)),
    ("03/11/2026 14:25", {"date_format": "%d/%m/%Y %H:%M"}, _t(2026, 11, 3, 14, 25)),
    ("03.11.2026 14:25:10", {}, _t(2026, 11, 3, 14, 25, 10)),
    ("2026-11-03 09:25:10", {"timezone": "America/New_York"}, _t(2026, 11, 3, 14, 25, 10)),
    ("2026-07-03 16:25:10", {"timezone": "Europe/Berlin"}, _t(2026, 7, 3, 14, 25, 10)),
    ("2026-11-03T14:25:10+01:00", {}, _t(2026, 11, 3, 13, 25, 10)),
    ("1793716510", {}, _t(2026, 11, 3, 14, 35, 10)),
]


@pytest.mark.parametrize(("raw", "options", "expected"), TIMES)
def test_times_as_exports_write_them(
    tmp_path: Path, raw: str, options: dict[str, str], expected: datetime
) -> None:
    path = tmp_path / "e.csv"
    path.write_text(f"transaction_id,occurred_at,status\nt1,{raw},approved\n")
    assert read_events(path, **options).frame["occurred_at"].to_list() == [expected]  # type: ignore[arg-type]


BLANKS = [  # (preset, headers, row, column, value): the second header fills a blank first
    ("cake", ["Disposition", "Conversion Status"], ["", "Approved"], "status", "approved"),
    ("cake", ["Price", "Paid"], ["", "$7.00"], "payout", 7.0),
    ("everflow", ["Conversion Date", "Date"], ["", "2026-11-03 10:00:00"], "occurred_at", None),
    ("tune", ["Stat.tune_event_id", "Conversion ID"], ["", "c-9"], "transaction_id", "c-9"),
    ("voluum", ["Transaction ID", "Click ID"], ["", "VCLK9"], "transaction_id", "VCLK9"),
]


@pytest.mark.parametrize(("preset", "headers", "row", "column", "value"), BLANKS)
def test_a_blank_column_never_hides_a_filled_one(
    preset: str, headers: list[str], row: list[str], column: str, value: object
) -> None:
    base = {"Conversion ID": "c1", "Status": "approved", "Conversion Date": "2026-11-03 10:00"}
    base = {k: v for k, v in base.items() if k not in headers}
    if preset == "voluum":
        base = {"Postback timestamp": "2026-11-03 10:00:00"}
    if preset == "tune":
        base = {"Stat.datetime": "2026-11-03 10:00:00", "Stat.status": "approved"}
    if preset == "cake":
        base = {"Conversion ID": "c1", "Conversion Date": "11/3/2026 10:00 AM"}
        if column == "payout":
            base["Disposition"] = "Approved"
    cells = {**base, **dict(zip(headers, row, strict=True))}
    ev = read_events(pl.DataFrame({k: [v] for k, v in cells.items()}), preset=preset)
    assert ev.quarantine.height == 0, ev.quarantine.rows()
    got = ev.frame[column][0]
    assert got == (_t(2026, 11, 3, 10) if value is None else value)

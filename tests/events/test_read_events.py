"""read_events: formats, aliases, time zones, quarantine and the missing-column error."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from postback_lab import EventsError, read_events

CSV = """
txn_id,type,status,reason,goal,timestamp,clickid,aff_click_id,offer,affiliate_id,sum,sub1,extra
t1,conversion,approved,,sale,2024-01-02T03:04:05+02:00,c1,x1,007,12,12.50,a b,foo
t2,Conversion,DECLINED,vpn_proxy,,2024-01-02 03:04:05,c2,x2,7,12,3,,bar
,conversion,approved,,,2024-01-02,c3,x3,7,12,3,,bar
t4,conversion,weird,,,2024-01-02,c4,x4,7,12,3,,bar
t5,conversion,approved,,,yesterday,c5,x5,7,12,3,,bar
t6,click,,,,1704164645,c6,,7,12,,,bar
"""


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_csv_aliases_types_and_quarantine(write):
    path = write("events.csv", CSV)
    ev = read_events(path)
    f = ev.frame
    assert f["transaction_id"].to_list() == ["t1", "t2", "t6"]
    assert f["event_type"].to_list() == ["conversion", "conversion", "click"]
    assert f["status"].to_list() == ["approved", "rejected", "approved"]
    assert f["rejection_reason"].to_list() == [None, "vpn_proxy", None]
    assert f["occurred_at"].to_list() == [
        utc(2024, 1, 2, 1, 4, 5),
        utc(2024, 1, 2, 3, 4, 5),
        utc(2024, 1, 2, 3, 4, 5),
    ]
    assert f["offer_id"].to_list() == ["007", "7", "7"]  # ids stay text, zeros kept
    assert f["publisher_id"].to_list() == ["12", "12", "12"]
    assert f["payout"].to_list() == [12.5, 3.0, None]
    assert f["click_id"].to_list() == ["c1", "c2", "c6"]
    assert f["external_transaction_id"].to_list() == ["x1", "x2", None]
    assert f["extra"].to_list() == ["foo", "bar", "bar"]  # unknown columns are kept
    assert f.schema["occurred_at"] == pl.Datetime("us", "UTC")

    q = ev.quarantine
    assert q.columns == ["source", "line", "reason", "raw"]
    assert q.select("line", "reason").rows() == [
        (4, "missing transaction_id"),
        (5, "unknown status 'weird' (valid: approved, rejected, pending)"),
        (6, "bad timestamp 'yesterday'"),
    ]
    assert set(q["source"]) == {str(path)}
    assert json.loads(q["raw"][1])["status"] == "weird"
    assert "3 rows quarantined" in str(ev)


def test_explicit_columns_win_over_aliases(write):
    path = write(
        "e.csv",
        """
        id,when,state,txn_id
        A,2024-05-01T00:00:00Z,approved,ignored
    """,
    )
    ev = read_events(path, rename={"id": "transaction_id", "when": "occurred_at"})
    assert ev.frame["transaction_id"].to_list() == ["A"]
    assert ev.frame["txn_id"].to_list() == ["ignored"]
    # the mapping may also be written canonical -> source
    ev2 = read_events(path, rename={"transaction_id": "id", "occurred_at": "when"})
    assert ev2.frame["transaction_id"].to_list() == ["A"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-10T12:00:00Z", utc(2024, 3, 10, 12)),
        ("2024-03-10T12:00:00+05:30", utc(2024, 3, 10, 6, 30)),
        ("2024-03-10T12:00:00-0800", utc(2024, 3, 10, 20)),
        ("2024-03-10 12:00:00+02", utc(2024, 3, 10, 10)),
        ("2024-03-10 12:00:00", utc(2024, 3, 10, 12)),
        ("2024-03-10T12:00:00.250", datetime(2024, 3, 10, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2024-03-10 12:00", utc(2024, 3, 10, 12)),
        ("2024-03-10", utc(2024, 3, 10)),
        ("2024/03/10 12:00:00", utc(2024, 3, 10, 12)),
        ("1710072000", utc(2024, 3, 10, 12)),
        ("1710072000000", utc(2024, 3, 10, 12)),
    ],
)
def test_timestamp_formats_naive_is_utc_offsets_honoured(text, expected):
    frame = pl.DataFrame({"transaction_id": ["a"], "occurred_at": [text], "status": ["approved"]})
    ev = read_events(frame)
    assert ev.quarantine.height == 0
    assert ev.frame["occurred_at"].to_list() == [expected]


def test_typed_timestamps_from_frames_are_converted_to_utc():
    aware = pl.DataFrame(
        {
            "transaction_id": ["a"],
            "status": ["approved"],
            "occurred_at": pl.Series([datetime(2024, 1, 1, 12)]).dt.replace_time_zone(
                "Europe/Berlin"
            ),
        }
    )
    assert read_events(aware).frame["occurred_at"].to_list() == [utc(2024, 1, 1, 11)]
    naive = pl.DataFrame(
        {"transaction_id": ["a"], "status": ["approved"], "occurred_at": [datetime(2024, 1, 1, 12)]}
    )
    assert read_events(naive).frame["occurred_at"].to_list() == [utc(2024, 1, 1, 12)]


def _canonical_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "transaction_id": ["t1", "t2"],
            "status": ["approved", "declined"],
            "occurred_at": ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"],
            "offer_id": [7, 12],
            "payout": [1.5, 2.0],
        }
    )


def _check(ev) -> None:
    assert ev.frame["transaction_id"].to_list() == ["t1", "t2"]
    assert ev.frame["status"].to_list() == ["approved", "rejected"]
    assert ev.frame["offer_id"].to_list() == ["7", "12"]
    assert ev.frame["occurred_at"].to_list() == [utc(2024, 1, 1), utc(2024, 1, 1, 1)]
    assert ev.quarantine.height == 0


def test_parquet_ndjson_globs_and_lists(tmp_path):
    f = _canonical_frame()
    f.write_parquet(tmp_path / "a.parquet")
    f.write_ndjson(tmp_path / "a.ndjson")
    f.write_csv(tmp_path / "part-1.csv")
    f.with_columns(pl.col("transaction_id") + "b").write_csv(tmp_path / "part-2.csv")
    _check(read_events(tmp_path / "a.parquet"))
    _check(read_events(str(tmp_path / "a.ndjson")))
    both = read_events(str(tmp_path / "part-*.csv"))
    assert both.frame["transaction_id"].to_list() == ["t1", "t2", "t1b", "t2b"]
    listed = read_events([tmp_path / "a.parquet", tmp_path / "a.ndjson"])
    assert listed.frame.height == 4


def test_frames_of_every_kind():
    f = _canonical_frame()
    _check(read_events(f))
    _check(read_events(f.lazy()))
    _check(read_events(f.to_pandas()))
    _check(read_events(f.to_arrow()))
    assert isinstance(f.to_arrow(), pa.Table)
    assert isinstance(f.to_pandas(), pd.DataFrame)


def test_duckdb_table(tmp_path):
    db = tmp_path / "ev.duckdb"
    f = _canonical_frame()
    with duckdb.connect(str(db)) as con:
        con.register("f", f.to_arrow())
        con.execute("CREATE TABLE conversions AS SELECT * FROM f")
    _check(read_events(f"duckdb:{db}::conversions"))
    with pytest.raises(EventsError, match="cannot read the table"):
        read_events(f"duckdb:{db}::nope")


def test_missing_required_column_lists_found_and_closest(write):
    path = write(
        "e.csv",
        """
        transactoin_id,occurred_at,status
        a,2024-01-01,approved
    """,
    )
    with pytest.raises(EventsError) as err:
        read_events(path)
    assert str(err.value) == (
        f"{path}: no column for 'transaction_id' (close: 'transactoin_id'); columns found: "
        "transactoin_id, occurred_at, status; map a header with "
        "rename={'transactoin_id': 'transaction_id'}, on the command line "
        "--columns 'transactoin_id=transaction_id'"
    )


def test_event_type_for_the_whole_file_and_click_status_default(write):
    path = write(
        "clicks.csv",
        """
        click_id,transaction_id,time
        c1,k1,2024-01-01T00:00:00Z
    """,
    )
    ev = read_events(path, event_type="clicks")
    assert ev.frame.select("event_type", "status").rows() == [("click", "approved")]
    with pytest.raises(EventsError, match="event_type='nope'"):
        read_events(path, event_type="nope")


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(EventsError, match="no such file"):
        read_events(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(EventsError, match=r"unknown file type '\.xlsx'"):
        read_events(tmp_path / "x.xlsx")


def test_mixed_layouts_in_one_column_all_parse(write):
    path = write(
        "mixed.csv",
        """
        transaction_id,occurred_at,status
        a,2024-03-10T12:00:00Z,approved
        b,2024-03-10 12:00:00+02,approved
        c,2024/03/10 12:00:00,approved
        d,1710072000,approved
        e,10.03.2024 12:00,approved
        f,2024-03-10,approved
        g,March 10,approved
    """,
    )
    ev = read_events(path)
    assert ev.frame["occurred_at"].to_list() == [
        utc(2024, 3, 10, 12),
        utc(2024, 3, 10, 10),
        utc(2024, 3, 10, 12),
        utc(2024, 3, 10, 12),
        utc(2024, 3, 10, 12),
        utc(2024, 3, 10),
    ]
    assert q_reasons(ev) == [(8, "bad timestamp 'March 10'")]


def q_reasons(ev) -> list[tuple[int, str]]:
    return ev.quarantine.select("line", "reason").rows()


def test_large_file_read_in_batches_keeps_order_and_every_bad_row(tmp_path):
    # big enough for the reader to hand back several batches: order and line numbers hold
    n = 120_000
    ids = [f"t{i}" if i % 9_999 else "" for i in range(n)]
    pl.DataFrame(
        {
            "transaction_id": ids,
            "status": ["approved"] * n,
            "occurred_at": ["2024-01-02T03:04:05Z"] * n,
            "offer_id": [str(i % 7) for i in range(n)],
            "publisher_id": ["p"] * n,
        }
    ).write_csv(tmp_path / "big.csv")
    ev = read_events(tmp_path / "big.csv")
    assert ev.frame.n_chunks() > 1  # really went through several batches
    assert ev.frame["transaction_id"].to_list() == [i for i in ids if i]
    assert ev.quarantine["line"].to_list() == [i + 2 for i in range(0, n, 9_999)]
    assert set(ev.quarantine["reason"]) == {"missing transaction_id"}


def test_events_is_a_frozen_value_whose_length_is_its_rows(write):
    import dataclasses

    import pytest

    from postback_lab import Events

    ev = read_events(
        write(
            "e.csv",
            """
            transaction_id,status,occurred_at
            t1,approved,2024-01-01
            t2,approved,2024-01-02
            t3,approved,not a time
            """,
        )
    )
    assert isinstance(ev, Events) and not isinstance(ev, tuple)
    assert len(ev) == 2 == ev.frame.height and ev.quarantine.height == 1
    assert ev.to_polars() is ev.frame
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.frame = ev.frame.head(1)  # type: ignore[misc]
    assert "Events" in ev._repr_html_() and "1 event rows were quarantined" in ev._repr_html_()

"""``plan --engine local|spark`` reads the events as ``plan`` does: the column mapping,
the time zone and layout of the times, the status spellings and ignored statuses of the
rules file's ``statuses:`` and of the flags (which win); and keeps the window and scope
(--since/--until in --timezone, --rule, --publisher). Each engine's plan, notes,
quarantine warning and JSON summary are exactly those of the default engine."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest

import postback_lab as pbl
from postback_lab import sample
from postback_lab.cli import main

from .conftest import PANDAS_WARNING, same_plan

pytestmark = pytest.mark.filterwarnings(PANDAS_WARNING)

#: the rules file's statuses: its own spellings, a test status left out
STATUSES = """
statuses:
  map: {sale: approved, lost: rejected}
  ignore: [ping]
"""

#: the reading flags of each case (the events need --columns in both)
CASES = {
    "rules file": ["--columns", "Order Ref=transaction_id", "--timezone", "America/New_York"],
    "flags win": [
        "--columns",
        "Order Ref=transaction_id,When=occurred_at",
        "--date-format",
        "%d/%m/%Y %H:%M:%S",
        "--timezone",
        "Europe/Berlin",
        "--status-map",
        "sale=pending,ping=approved",
        "--ignore-status",
        "lost",
    ],
    "window": [
        *("--columns", "Order Ref=transaction_id", "--timezone", "America/New_York"),
        *("--since", "2026-11-01T14:00", "--until", "2026-11-03"),
        *("--rule", "Partner B leads", "--rule", "Affili approved sales"),
        *("--publisher", "7", "--publisher", "44"),
    ],
}


def export(seed: int) -> pl.DataFrame:
    """Sample export rows under another transaction header, with naive times (two
    layouts), the tracker's own statuses (sale, lost, ping) and one it never defined."""
    raw = sample.generate(250, seed=seed).with_row_index("n")
    status = (
        pl.when(pl.col("n") % 29 == 3)
        .then(pl.lit("bogus"))
        .when((pl.col("status") == "approved") & (pl.col("n") % 3 == 0))
        .then(pl.lit("sale"))
        .when((pl.col("status") == "rejected") & (pl.col("n") % 2 == 0))
        .then(pl.lit("lost"))
        .when((pl.col("status") == "pending") & (pl.col("n") % 4 == 0))
        .then(pl.lit("ping"))
        .otherwise(pl.col("status"))
    )
    naive = pl.col("timestamp").str.strip_suffix("Z")
    return (
        raw.with_columns(
            status.alias("status"),
            naive.alias("timestamp"),
            naive.str.to_datetime("%Y-%m-%dT%H:%M:%S")
            .dt.strftime("%d/%m/%Y %H:%M:%S")
            .alias("When"),
        )
        .rename({"txn_id": "Order Ref"})
        .drop("n")
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two Parquet exports and the sample rules with a ``statuses:`` section."""
    d = tmp_path_factory.mktemp("reading")
    files = [d / "export-1.parquet", d / "export-2.parquet"]
    export(11).write_parquet(files[0])
    export(12).write_parquet(files[1])
    rules = d / "rules.yaml"
    rules.write_text(sample.rules_yaml("http://127.0.0.1:8765") + STATUSES)
    return d, [str(f) for f in files], str(rules)


def plan(args, capsys):
    """``postback-lab plan ARGS --format json``: exit code, the summary, stderr lines."""
    capsys.readouterr()
    code = main(["plan", *args, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), sorted(err.splitlines())


@pytest.mark.parametrize("engine", ["local", "spark"])
@pytest.mark.parametrize("case", list(CASES))
def test_engine_reads_the_events_as_plan_does(request, inputs, capsys, engine, case):
    if engine == "spark":
        request.getfixturevalue("spark")  # the active session the CLI plans on
    d, files, rules = inputs
    flags = [*files, "--rules", rules, *CASES[case]]
    one, one_err = plan([*flags, "-o", str(d / f"{case}-one.parquet")], capsys)
    out = d / f"{case}-{engine}"
    got, got_err = plan([*flags, "--engine", engine, "--partitions", "3", "-o", str(out)], capsys)
    assert same_plan(pbl.read_plan(out).frame, pbl.read_plan(d / f"{case}-one.parquet").frame)
    assert {k: v for k, v in got.items() if k != "output"} == {
        k: v for k, v in one.items() if k != "output"
    }
    assert got_err == one_err
    if case == "window":
        assert (got["rules"], got["first_due"], got["last_due"]) == (
            {"Affili approved sales": 6, "Partner B leads": 8},
            "2026-11-01T19:57:37+00:00",
            "2026-11-03T04:25:48+00:00",
        )
    postbacks, quarantined, left_out, rows = EXPECTED[case]
    assert (got["postbacks"], got["quarantined"]) == (postbacks, quarantined)
    assert [e.rsplit("/", 1)[1] for e in got_err if "ignored status" in e] == left_out
    mine = pbl.read_plan(out).frame.filter(pl.col("transaction_id") == "T00000095")
    assert mine.sort("rule", "occurred_at").select("rule", "status", "occurred_at").rows() == rows


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo("UTC"))


#: per case: postbacks, quarantined rows (the 40 'bogus'), the notes of rows left out,
#: and the plan rows of T00000095, whose 'sale' row (14:57:37 local on 2026-11-01) is
#: approved by the rules file (19:57:37 UTC in New York) and pending under --status-map
#: (a second pending row changes nothing: no postback)
EXPECTED = {
    "rules file": (
        263,
        40,
        [
            "export-1.parquet: 64 rows with an ignored status (ping) left out",
            "export-2.parquet: 60 rows with an ignored status (ping) left out",
        ],
        [
            ("Affili approved sales", "approved", utc(2026, 11, 8, 23, 44, 3)),
            ("Partner B leads", "pending", utc(2026, 11, 1, 7, 50, 7)),
            ("Partner B leads", "approved", utc(2026, 11, 1, 19, 57, 37)),
        ],
    ),
    "flags win": (
        212,
        40,
        [
            "export-1.parquet: 14 rows with an ignored status (lost) left out",
            "export-2.parquet: 16 rows with an ignored status (lost) left out",
        ],
        [
            ("Affili approved sales", "approved", utc(2026, 11, 8, 17, 44, 3)),
            ("Partner B leads", "pending", utc(2026, 11, 1, 1, 50, 7)),
        ],
    ),
    # 14:00 New York (19:00 UTC) to 2026-11-03 00:00 New York (05:00 UTC), two rules
    # and two publishers: the first due is T00000095's approved lead, 14:57:37 local
    "window": (
        14,
        40,
        [
            "export-1.parquet: 64 rows with an ignored status (ping) left out",
            "export-2.parquet: 60 rows with an ignored status (ping) left out",
        ],
        [("Partner B leads", "approved", utc(2026, 11, 1, 19, 57, 37))],
    ),
}


def test_engine_local_reads_csv_exports_as_plan_does(inputs, capsys):
    """CSV events (read whole, then bucketed by DuckDB) take the same flags."""
    d, files, rules = inputs
    csvs = []
    for f in files:
        csvs.append(str(d / f.rsplit("/", 1)[1].replace(".parquet", ".csv")))
        pl.read_parquet(f).write_csv(csvs[-1], separator=";")
    flags = [*csvs, "--rules", rules, "--sep", ";", *CASES["window"]]
    one, one_err = plan([*flags, "-o", str(d / "csv-one.parquet")], capsys)
    got, got_err = plan([*flags, "--engine", "local", "-o", str(d / "csv-local")], capsys)
    assert same_plan(
        pbl.read_plan(d / "csv-local").frame, pbl.read_plan(d / "csv-one.parquet").frame
    )
    assert {k: v for k, v in got.items() if k != "output"} == {
        k: v for k, v in one.items() if k != "output"
    }
    assert got_err == one_err
    assert (got["postbacks"], got["quarantined"]) == (14, 40)
